//! `SostleConfig` (SPEC §5): the one YAML file that holds the epoch origin, the crew registry,
//! suite and layer overrides, MEGSCIFIAR gates, token and exemption settings and the chaos pool.
//!
//! Loading is all-or-nothing: the text is parsed, deserialized (unknown keys are errors) and
//! validated into a new [`Config`]; any problem is a [`ConfigError`] with the key path and its
//! line, and nothing of the file is applied.
//!
//! This module is the model; `raw` mirrors the file as written, `validate` checks it one
//! function per section, and `images` and `locks` hold those sections' types (re-exported at
//! [`crate::images`] and [`crate::mecipol`], beside the rules that read them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;

use crate::approval::CrewKey;
use crate::epoch;
use crate::layer::{Layer, LayerSet};
use crate::manifest::{self, Node};
use crate::suite::{self, LayerSpec, PolicySpec};
use images::{CacheSpec, ImagePolicy, RegistrySpec, SignerSource, SignerSpec};
use locks::{LockPolicy, LockSource};

pub(crate) mod images;
pub(crate) mod locks;
mod raw;
mod validate;

/// The roles a crew member can hold.
pub const ROLES: [&str; 7] = [
    "crew",
    "l3",
    "l5-authorized",
    "bosun",
    "imhotep",
    "kay",
    "megscifiar",
];

/// A registered crew member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrewMember {
    /// Crew name (`BOSUN`).
    pub name: String,
    /// Identity such as `kayyo@pemos.ca`, if any.
    pub identity: Option<String>,
    /// Roles held.
    pub roles: Vec<String>,
    /// Public keys whose signatures prove this member's approvals (`crew[].keys`).
    pub keys: Vec<CrewKey>,
    /// The identities the API server authenticates that act for this member
    /// (`crew[].subjects`: `user:NAME`, `group:NAME`, `serviceaccount:NAMESPACE/NAME`).
    pub subjects: Vec<Subject>,
}

impl CrewMember {
    /// Whether the member holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether `requester` acts for this member: its user or one of its groups is one of the
    /// member's subjects, or its user name is the member's identity.
    pub fn acts_for(&self, requester: &Requester) -> bool {
        self.identity.as_deref() == Some(requester.user.as_str())
            || self.subjects.iter().any(|s| s.matches(requester))
    }
}

/// An identity the API server authenticates, as a crew entry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `user:NAME`: a user name (a certificate's CN, an OIDC claim…).
    User(String),
    /// `group:NAME`: a group the user is in.
    Group(String),
    /// `serviceaccount:NAMESPACE/NAME`: a service account (a GitOps controller's), whose user
    /// name is `system:serviceaccount:NAMESPACE:NAME`.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl Subject {
    /// Parses `user:NAME`, `group:NAME` or `serviceaccount:NAMESPACE/NAME`.
    pub fn parse(text: &str) -> Result<Subject, SubjectError> {
        let bad = || SubjectError::NotASubject(text.to_string());
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match kind {
            "user" => Ok(Subject::User(rest.to_string())),
            "group" => Ok(Subject::Group(rest.to_string())),
            "serviceaccount" => {
                let (ns, name) = rest.split_once('/').ok_or_else(bad)?;
                if ns.is_empty() || name.is_empty() || name.contains('/') {
                    return Err(bad());
                }
                Ok(Subject::ServiceAccount {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(bad()),
        }
    }

    /// Whether the requester is this subject (or, for a group, in it).
    pub fn matches(&self, r: &Requester) -> bool {
        match self {
            Subject::User(u) => r.user == *u,
            Subject::Group(g) => r.groups.iter().any(|x| x == g),
            Subject::ServiceAccount { namespace, name } => {
                r.user
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    == Some((namespace.as_str(), name.as_str()))
            }
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user:{u}"),
            Subject::Group(g) => write!(f, "group:{g}"),
            Subject::ServiceAccount { namespace, name } => {
                write!(f, "serviceaccount:{namespace}/{name}")
            }
        }
    }
}

/// A subject (`crew[].subjects`, `--as`) that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// Not `user:NAME`, `group:NAME` or `serviceaccount:NAMESPACE/NAME`.
    #[error(
        "`{0}` is not a subject: write user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME"
    )]
    NotASubject(String),
    /// A group where a requester (a user or a service account) is wanted.
    #[error("`{0}`: a requester is a user or a service account (give groups with --as-group)")]
    GroupRequester(String),
}

/// Who asks: the identity the API server authenticated (an AdmissionReview's `userInfo`), or
/// the one `sostle test --as` names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requester {
    /// The user name (`system:serviceaccount:NS:NAME` for a service account).
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
}

impl Requester {
    /// A requester from a subject as `--as` names it (`user:NAME`,
    /// `serviceaccount:NAMESPACE/NAME`), with extra groups.
    pub fn from_subject(text: &str, groups: Vec<String>) -> Result<Requester, SubjectError> {
        let user = match Subject::parse(text)? {
            Subject::User(u) => u,
            Subject::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
            Subject::Group(_) => return Err(SubjectError::GroupRequester(text.to_string())),
        };
        Ok(Requester { user, groups })
    }

    /// Whether this is one of Kubernetes' own controllers or a node, which make pods from
    /// templates already judged at the door under their creator's identity (a ReplicaSet's
    /// pods, a Job's, a static pod's mirror): `system:serviceaccount:kube-system:*` and
    /// `system:node:*` in group `system:nodes`.
    pub fn is_cluster_controller(&self) -> bool {
        self.user.starts_with("system:serviceaccount:kube-system:")
            || (self.user.starts_with("system:node:")
                && self.groups.iter().any(|g| g == "system:nodes"))
            || self.user == "system:kube-controller-manager"
    }
}

/// One MEGSCIFIAR gate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MegGate {
    /// Whether it is open.
    pub open: bool,
    /// Who opened it.
    pub opened_by: Option<String>,
    /// When it was opened.
    pub opened_at: Option<Timestamp>,
}

/// The spot chaos node pool settings (used by bootstrap and trials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaosPool {
    /// Node pool name.
    pub name: String,
    /// VM size.
    pub vm_size: String,
    /// Autoscaler minimum.
    pub min_count: u32,
    /// Autoscaler maximum.
    pub max_count: u32,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Epoch origin.
    pub origin: Timestamp,
    /// Layer for namespaces that have none, if set.
    pub default_layer: Option<Layer>,
    /// Explicit namespace → layer assignments.
    pub namespaces: BTreeMap<String, Layer>,
    /// The crew registry.
    pub crew: Vec<CrewMember>,
    /// The policy table.
    pub policies: Vec<PolicySpec>,
    /// The layer table.
    pub layers: Vec<LayerSpec>,
    /// The exemption matrix for user (Rego) policies, SPEC §6's last row.
    pub user_exempt: Vec<suite::UserExemptRule>,
    /// Opt-in layer scopes of user rules (`suite.userPolicyScope`); none: every rule judges
    /// every document.
    pub user_scope: Vec<suite::UserScopeRule>,
    /// MEGSCIFIAR gates 1–5.
    pub gates: [MegGate; 5],
    /// Token secret from the config (the environment variable wins in the CLI).
    pub token_secret: Option<String>,
    /// Longest an exemption may run, in days.
    pub exemption_max_days: u32,
    /// Users allowed to write exemption annotations on UPDATE (webhook).
    pub exemption_writers: Vec<String>,
    /// Whether an exemption needs a signed approval (`exemptions.requireApproval`, default true).
    pub require_approval: bool,
    /// Users (or `group:NAME`) allowed to add, change or remove a Namespace's layer (webhook).
    pub layer_writers: Vec<String>,
    /// The chaos pool.
    pub chaos_pool: ChaosPool,
    /// The AKS cluster (for bootstrap).
    pub cluster: Cluster,
    /// Image signatures: signers, what each layer requires, registries (`images`).
    pub images: ImagePolicy,
    /// MECIPOL locks: the keys that sign them and where the webhook reads them (`locks`).
    pub locks: LockPolicy,
    /// The transparency log `sostle sign` and `sostle lock` write to (`rekor`).
    pub rekor: RekorSpec,
    /// The ledger (`ledger.url`): a `postgres://` URL or an SQLite file; `--ledger` and
    /// `SOSTLE_LEDGER` win over it.
    pub ledger_url: Option<String>,
}

/// The config's `rekor` section: where signatures and locks are logged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RekorSpec {
    /// The server (`https://rekor.sigstore.dev`); none: nothing is logged.
    pub url: Option<String>,
    /// The log's public key (PEM): its SignedEntryTimestamps must verify with it.
    pub key: Option<String>,
    /// Fail when the log cannot be reached (default: warn and keep the signature unlogged).
    pub required: bool,
}

/// The AKS cluster the chaos pool joins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cluster {
    /// Cluster name.
    pub name: Option<String>,
    /// Resource group.
    pub resource_group: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let member = |name: &str, identity: Option<&str>, roles: &[&str]| CrewMember {
            name: name.to_string(),
            identity: identity.map(str::to_string),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            keys: Vec::new(),
            subjects: Vec::new(),
        };
        Config {
            origin: epoch::default_origin(),
            default_layer: None,
            namespaces: BTreeMap::new(),
            crew: vec![
                member("BOSUN", None, &["crew", "l3", "bosun"]),
                member("IMHOTEP", None, &["crew", "l3", "l5-authorized", "imhotep"]),
                member("RICK", None, &["crew", "l3"]),
                member("CODY", None, &["crew", "l3"]),
                member("GREYBACK", None, &["crew", "l3"]),
                member("TAZ", None, &["crew", "l3"]),
                member(
                    "Kay",
                    Some("kayyo@pemos.ca"),
                    &["crew", "l3", "l5-authorized", "kay"],
                ),
            ],
            policies: suite::default_policies(),
            layers: suite::default_layers(),
            user_exempt: suite::default_user_exempt_rules(),
            user_scope: Vec::new(),
            gates: Default::default(),
            token_secret: None,
            exemption_max_days: 30,
            exemption_writers: Vec::new(),
            require_approval: true,
            layer_writers: Vec::new(),
            chaos_pool: ChaosPool {
                name: "chaospool".into(),
                vm_size: "Standard_B2s_v2".into(),
                min_count: 0,
                max_count: 4,
            },
            cluster: Cluster::default(),
            images: ImagePolicy::default(),
            locks: LockPolicy::default(),
            rekor: RekorSpec::default(),
            ledger_url: None,
        }
    }
}

impl Config {
    /// The layers a user rule judges, when the config scopes it (`suite.userPolicyScope`);
    /// `None`: every document, whatever its layer.
    pub fn user_rule_layers(&self, rule_id: &str) -> Option<LayerSet> {
        self.user_scope
            .iter()
            .filter(|r| r.rules.iter().any(|p| suite::glob_match(p, rule_id)))
            .map(|r| r.layers)
            .reduce(|a, b| a.union(b))
    }

    /// A crew member named by crew name or by identity.
    pub fn crew_member(&self, who: &str) -> Option<&CrewMember> {
        self.crew
            .iter()
            .find(|c| c.name == who || c.identity.as_deref() == Some(who))
    }

    /// The policy with id `id`.
    pub fn policy(&self, id: &str) -> Option<&PolicySpec> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The row of the layer table for `layer`.
    pub fn layer(&self, layer: Layer) -> Option<&LayerSpec> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// The gate the layer table gives `layer` (open for a layer the table does not list).
    pub fn gate(&self, layer: Layer) -> suite::Gate {
        self.layer(layer).map_or(suite::Gate::Open, |s| s.gate)
    }

    /// The layer of a namespace known to the config alone: explicit assignment, then the name
    /// pattern (including renamed layer namespaces).
    pub fn namespace_layer(&self, ns: &str) -> Option<Layer> {
        if let Some(l) = self.namespaces.get(ns) {
            return Some(*l);
        }
        if let Some(spec) = self.layers.iter().find(|l| l.namespace == ns) {
            return Some(spec.layer);
        }
        Layer::from_namespace_name(ns)
    }

    /// Whether all five MEGSCIFIAR gates are open.
    pub fn all_gates_open(&self) -> bool {
        self.gates.iter().all(|g| g.open)
    }

    /// Parses and validates a config text. Crew keys must be inline PEM here (there is no file
    /// system in the core); [`Config::from_yaml_with`] also reads key files.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_with(text, &|path| Err(KeyReadError::NoFiles(path.to_string())))
    }

    /// Whether `user` (with `groups`) is listed in `writers`: by user name, or as `group:NAME`.
    pub fn listed(writers: &[String], user: &str, groups: &[String]) -> bool {
        writers.iter().any(|w| match w.strip_prefix("group:") {
            Some(g) => groups.iter().any(|x| x == g),
            None => w == user,
        })
    }

    /// Parses and validates a config text; `read_key` returns the text of a key file named in
    /// `crew[].keys` (the caller resolves it, e.g. relative to the config file).
    pub fn from_yaml_with(text: &str, read_key: &KeyReader<'_>) -> Result<Config, ConfigError> {
        let loaded = manifest::load(text);
        if let Some(e) = loaded.errors.first() {
            return Err(ConfigError {
                path: String::new(),
                line: e.line,
                col: e.col,
                message: e.message.clone(),
            });
        }
        let root = match loaded.documents.as_slice() {
            [one] => &one.root,
            [] => {
                return Err(ConfigError::at(None, "", "the config file is empty"));
            }
            _ => {
                return Err(ConfigError::at(
                    None,
                    "",
                    "the config file must hold exactly one document (kind: SostleConfig)",
                ))
            }
        };
        let json = root.to_json();
        let raw: raw::RawConfig = serde_path_to_error::deserialize(&json).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ConfigError::at(Some(root), &path, &e.inner().to_string())
        })?;
        raw.validate(read_key)
            .map_err(|e| ConfigError::at(Some(root), &e.path, &e.message))
    }
}

/// Reads the text of a key or certificate file a config names instead of giving the PEM inline
/// (`crew[].keys`, `images.signers[].key`, `locks.keys`, …).
pub type KeyReader<'a> = dyn Fn(&str) -> Result<String, KeyReadError> + 'a;

/// A key file a config names that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyReadError {
    /// The file could not be read.
    #[error("cannot read key {}: {error}", path.display())]
    Unreadable {
        /// The file, as resolved by the reader.
        path: PathBuf,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// Files cannot be read where this config is loaded: the value is not PEM.
    #[error(
        "`{0}` is not a PEM public key, and key files cannot be read here: give the PEM inline"
    )]
    NoFiles(String),
}

/// A config problem: where (key path and position) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ConfigError {
    /// Key path such as `suite.policies.deny_no_limits.verdict`.
    pub path: String,
    /// 1-based line (0 when unknown).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub col: u32,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl ConfigError {
    fn at(root: Option<&Node>, path: &str, message: &str) -> ConfigError {
        let pos = root.map(|r| locate_path(r, path)).unwrap_or_default();
        ConfigError {
            path: path.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.to_string(),
        }
    }
}

/// Position of the deepest existing node on a dotted path like `crew[2].roles[0]`.
fn locate_path(root: &Node, path: &str) -> manifest::Pos {
    let mut node = root;
    let mut pos = root.pos;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, indexes) = match seg.find('[') {
            Some(i) => (seg.get(..i).unwrap_or(seg), seg.get(i..).unwrap_or("")),
            None => (seg, ""),
        };
        if !key.is_empty() {
            match node.entry(key) {
                Some(e) => {
                    pos = e.key_pos;
                    node = &e.value;
                }
                None => return pos,
            }
        }
        for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            let Ok(i) = idx.parse::<usize>() else {
                return pos;
            };
            match node.as_seq().and_then(|s| s.get(i)) {
                Some(n) => {
                    pos = n.pos;
                    node = n;
                }
                None => return pos,
            }
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::suite::Verdict;

    const HEAD: &str = "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n";

    #[test]
    fn minimal_config_is_the_default() {
        assert_eq!(Config::from_yaml(HEAD).unwrap(), Config::default());
    }

    #[test]
    fn errors_name_key_path_and_line() {
        let e = Config::from_yaml(&format!(
            "{HEAD}suite:\n  policies:\n    deny_no_limits:\n      verdict: maybe\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, "suite.policies.deny_no_limits.verdict");
        assert_eq!(e.line, 6);
        let e = Config::from_yaml(&format!(
            "{HEAD}crew:\n- name: NOVA\n  roles: [crew, pilot]\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, "crew[0].roles[1]");
        assert_eq!(e.line, 5);
        let e = Config::from_yaml(&format!("{HEAD}colour: blue\n")).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
    }

    #[test]
    fn privileged_cannot_be_made_exemptable() {
        let e = Config::from_yaml(&format!(
            "{HEAD}suite:\n  policies:\n    deny_privileged:\n      exemptable:\n      - layers: [L3]\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("never"), "{e}");
    }

    #[test]
    fn user_policy_matrix_is_data() {
        use crate::suite::user_policy_exemptable;
        let d = Config::default();
        assert_eq!(
            user_policy_exemptable(&d.user_exempt, "rego:main/warn_labels", Layer::L1),
            Some(None)
        );
        assert_eq!(
            user_policy_exemptable(&d.user_exempt, "rego:main/warn", Layer::L0),
            Some(None)
        );
        assert_eq!(
            user_policy_exemptable(&d.user_exempt, "rego:main/deny_big", Layer::L1),
            None
        );
        assert_eq!(
            user_policy_exemptable(&d.user_exempt, "rego:main/deny_big", Layer::L3),
            Some(None)
        );
        assert_eq!(
            user_policy_exemptable(&d.user_exempt, "rego:main/deny_privileged", Layer::L3),
            None
        );
        assert_eq!(
            user_policy_exemptable(&d.user_exempt, "rego:main/deny_big", Layer::L4),
            None
        );
        assert!(matches!(
            user_policy_exemptable(&d.user_exempt, "rego:x/anything", Layer::L5),
            Some(Some(_))
        ));
        let c = Config::from_yaml(&format!(
            "{HEAD}suite:\n  userPolicyExemptable:\n  - layers: [L4]\n    patterns: [warn_*]\n"
        ))
        .unwrap();
        assert_eq!(
            user_policy_exemptable(&c.user_exempt, "rego:main/warn_x", Layer::L4),
            Some(None)
        );
        assert_eq!(
            user_policy_exemptable(&c.user_exempt, "rego:main/deny_big", Layer::L3),
            None
        );
        let e = Config::from_yaml(&format!(
            "{HEAD}suite:\n  userPolicyExemptable:\n  - layers: [L6]\n    patterns: [warn_*]\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, "suite.userPolicyExemptable[0].layers");
        let e = Config::from_yaml(&format!(
            "{HEAD}suite:\n  userPolicyExemptable:\n  - layers: [L3]\n    patterns: [\"*\"]\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("deny_privileged"), "{e}");
    }

    #[test]
    fn overrides_apply() {
        let c = Config::from_yaml(&format!(
            "{HEAD}crew:\n- name: NOVA\n  identity: nova@pemos.ca\n  roles: [crew, l3]\nsuite:\n  policies:\n    warn_trendal_missing:\n      verdict: deny\n      floor: 0.7\n"
        ))
        .unwrap();
        assert!(c.crew_member("nova@pemos.ca").is_some());
        let p = c.policy("warn_trendal_missing").unwrap();
        assert_eq!((p.verdict, p.floor), (Verdict::Deny, 0.7));
    }
}
