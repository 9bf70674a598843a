//! `SostleConfig` (SPEC §5): the one YAML file that holds the epoch origin, the crew registry,
//! suite and layer overrides, MEGSCIFIAR gates, token and exemption settings and the chaos pool.
//!
//! Loading is all-or-nothing: the text is parsed, deserialized (unknown keys are errors) and
//! validated into a new [`Config`]; any problem is a [`ConfigError`] with the key path and its
//! line, and nothing of the file is applied.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use crate::approval::CrewKey;
use crate::epoch;
use crate::layer::{Layer, LayerSet};
use crate::manifest::{self, Node};
use crate::suite::{self, Escalation, ExemptCondition, ExemptRule, LayerSpec, PolicySpec, Verdict};

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
    pub fn parse(text: &str) -> Result<Subject, String> {
        let bad = || {
            format!(
                "`{text}` is not a subject: write user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME"
            )
        };
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
    pub fn from_subject(text: &str, groups: Vec<String>) -> Result<Requester, String> {
        let user = match Subject::parse(text)? {
            Subject::User(u) => u,
            Subject::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
            Subject::Group(_) => {
                return Err(format!(
                    "`{text}`: a requester is a user or a service account (give groups with --as-group)"
                ))
            }
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
    pub images: crate::images::ImagePolicy,
    /// MECIPOL locks: the keys that sign them and where the webhook reads them (`locks`).
    pub locks: crate::mecipol::LockPolicy,
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
            images: crate::images::ImagePolicy::default(),
            locks: crate::mecipol::LockPolicy::default(),
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
        Config::from_yaml_with(text, &|path| {
            Err(format!(
                "`{path}` is not a PEM public key, and key files cannot be read here: give the PEM inline"
            ))
        })
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
    pub fn from_yaml_with(
        text: &str,
        read_key: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Config, ConfigError> {
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
        let raw: RawConfig = serde_path_to_error::deserialize(&json).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ConfigError::at(Some(root), &path, &e.inner().to_string())
        })?;
        raw.validate(read_key)
            .map_err(|(path, msg)| ConfigError::at(Some(root), &path, &msg))
    }
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    api_version: String,
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    epoch: Option<RawEpoch>,
    #[serde(default)]
    default_layer: Option<String>,
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    crew: Vec<RawCrew>,
    #[serde(default)]
    suite: Option<RawSuite>,
    #[serde(default)]
    layers: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    gates: BTreeMap<String, RawGate>,
    #[serde(default)]
    tokens: Option<RawTokens>,
    #[serde(default)]
    exemptions: Option<RawExemptions>,
    #[serde(default)]
    chaos_pool: Option<RawChaosPool>,
    #[serde(default)]
    cluster: Option<RawCluster>,
    #[serde(default)]
    images: Option<RawImages>,
    #[serde(default)]
    locks: Option<RawLocks>,
    #[serde(default)]
    rekor: Option<RawRekor>,
    #[serde(default)]
    ledger: Option<RawLedger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLedger {
    url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRekor {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLocks {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawImages {
    #[serde(default)]
    signers: Vec<RawSigner>,
    #[serde(default)]
    rekor_keys: Vec<String>,
    #[serde(default)]
    require: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    registries: Option<RawRegistries>,
    #[serde(default)]
    cache: Option<RawCache>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSigner {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    fulcio_roots: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRegistries {
    #[serde(default)]
    insecure: Vec<String>,
    #[serde(default)]
    ca: Vec<String>,
    #[serde(default)]
    timeout_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCache {
    #[serde(default)]
    ttl_seconds: Option<u32>,
    #[serde(default)]
    entries: Option<u32>,
}

/// A PEM given inline, or the text of the file it names (read by the caller's reader).
fn pem_or_file(
    value: &str,
    path: &str,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, Invalid> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.to_string())
    } else {
        read(value.trim()).map_err(|m| (path.to_string(), m))
    }
}

impl RawImages {
    fn validate(
        self,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<crate::images::ImagePolicy, Invalid> {
        use crate::images::{CacheSpec, ImagePolicy, RegistrySpec, SignerSource, SignerSpec};
        let mut out = ImagePolicy::default();
        for (i, s) in self.signers.into_iter().enumerate() {
            let path = format!("images.signers[{i}]");
            if s.name.trim().is_empty() {
                return Err((format!("{path}.name"), "a signer needs a name".into()));
            }
            if out.signers.iter().any(|o| o.name == s.name) {
                return Err((
                    format!("{path}.name"),
                    format!("signer `{}` is named twice", s.name),
                ));
            }
            let source = match (s.key, s.identity, s.issuer) {
                (Some(k), None, None) if s.fulcio_roots.is_empty() => {
                    let kpath = format!("{path}.key");
                    let pem = pem_or_file(&k, &kpath, read)?;
                    CrewKey::from_pem(&pem).map_err(|e| (kpath, e.to_string()))?;
                    SignerSource::Key { pem }
                }
                (None, Some(identity), Some(issuer)) => {
                    if s.fulcio_roots.is_empty() {
                        return Err((
                            format!("{path}.fulcioRoots"),
                            "a keyless signer needs the Fulcio root certificates it chains to"
                                .into(),
                        ));
                    }
                    let mut roots = Vec::new();
                    for (j, r) in s.fulcio_roots.iter().enumerate() {
                        let rpath = format!("{path}.fulcioRoots[{j}]");
                        let pem = pem_or_file(r, &rpath, read)?;
                        if !pem.contains("-----BEGIN CERTIFICATE-----") {
                            return Err((rpath, "not a PEM certificate".into()));
                        }
                        roots.push(pem);
                    }
                    SignerSource::Keyless {
                        identity,
                        issuer,
                        roots,
                    }
                }
                _ => {
                    return Err((
                        path,
                        "a signer has either `key` (a cosign.pub), or `identity`, `issuer` and `fulcioRoots` (keyless)".into(),
                    ))
                }
            };
            out.signers.push(SignerSpec {
                name: s.name,
                source,
            });
        }
        for (i, k) in self.rekor_keys.iter().enumerate() {
            let kpath = format!("images.rekorKeys[{i}]");
            let pem = pem_or_file(k, &kpath, read)?;
            CrewKey::from_pem(&pem).map_err(|e| (kpath, e.to_string()))?;
            out.rekor_keys.push(pem);
        }
        out.require = match self.require {
            None => ImagePolicy::default_require(&out.signers),
            Some(map) => {
                let mut req = BTreeMap::new();
                for (layers, names) in map {
                    let rpath = format!("images.require.{layers}");
                    let set =
                        LayerSet::parse_items(layers.split(',')).map_err(|m| (rpath.clone(), m))?;
                    for n in &names {
                        if !out.signers.iter().any(|s| &s.name == n) {
                            return Err((
                                rpath,
                                format!("`{n}` is not a signer in images.signers"),
                            ));
                        }
                    }
                    for l in set.iter() {
                        req.insert(l, names.clone());
                    }
                }
                req
            }
        };
        let mut registries = RegistrySpec::default();
        if let Some(r) = self.registries {
            registries.insecure = r.insecure;
            for (i, c) in r.ca.iter().enumerate() {
                let cpath = format!("images.registries.ca[{i}]");
                let pem = pem_or_file(c, &cpath, read)?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err((cpath, "not a PEM certificate".into()));
                }
                registries.ca.push(pem);
            }
            if let Some(t) = r.timeout_seconds {
                if t == 0 || t > 30 {
                    return Err((
                        "images.registries.timeoutSeconds".into(),
                        "must be 1 to 30 (the webhook answers within the API server's timeout)"
                            .into(),
                    ));
                }
                registries.timeout_seconds = t;
            }
        }
        out.registries = registries;
        let mut cache = CacheSpec::default();
        if let Some(c) = self.cache {
            if let Some(t) = c.ttl_seconds {
                cache.ttl_seconds = t;
            }
            if let Some(e) = c.entries {
                if e == 0 {
                    return Err(("images.cache.entries".into(), "must be at least 1".into()));
                }
                cache.entries = e;
            }
        }
        out.cache = cache;
        Ok(out)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCluster {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    resource_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEpoch {
    origin: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCrew {
    name: String,
    #[serde(default)]
    identity: Option<String>,
    roles: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSuite {
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    user_policy_exemptable: Option<Vec<RawUserExempt>>,
    #[serde(default)]
    user_policy_scope: Vec<RawUserScope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawUserScope {
    rules: Vec<String>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawUserExempt {
    layers: Vec<String>,
    patterns: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    reviewed_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    layers: Option<Vec<String>>,
    #[serde(default)]
    verdict: Option<Verdict>,
    #[serde(default)]
    escalation: Option<Option<RawEscalation>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    floor: Option<f64>,
    #[serde(default)]
    exemptable: Option<Vec<RawExemptRule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEscalation {
    day: i64,
    verdict: Verdict,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawExemptRule {
    layers: Vec<String>,
    #[serde(default)]
    requires_open_trial: bool,
    #[serde(default)]
    reviewed_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLayer {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    approvers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGate {
    open: bool,
    #[serde(default)]
    opened_by: Option<String>,
    #[serde(default)]
    opened_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTokens {
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawExemptions {
    #[serde(default)]
    max_days: Option<u32>,
    #[serde(default)]
    writers: Vec<String>,
    #[serde(default)]
    require_approval: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawChaosPool {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    vm_size: Option<String>,
    #[serde(default)]
    min_count: Option<u32>,
    #[serde(default)]
    max_count: Option<u32>,
}

type Invalid = (String, String);

fn parse_layer(path: String, s: &str) -> Result<Layer, Invalid> {
    Layer::parse(s).ok_or_else(|| (path, format!("`{s}` is not a layer; write L0…L7 or trial")))
}

impl RawConfig {
    fn validate(
        self,
        read_key: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Config, Invalid> {
        let mut cfg = Config::default();
        if self.api_version != "sostle.eose.ca/v1" {
            return Err((
                "apiVersion".into(),
                format!(
                    "`{}` is not supported; write sostle.eose.ca/v1",
                    self.api_version
                ),
            ));
        }
        if self.kind != "SostleConfig" {
            return Err((
                "kind".into(),
                format!("`{}` is not SostleConfig", self.kind),
            ));
        }
        if let Some(e) = self.epoch {
            cfg.origin = epoch::parse_rfc3339(&e.origin).map_err(|m| ("epoch.origin".into(), m))?;
        }
        if let Some(l) = self.default_layer {
            cfg.default_layer = Some(parse_layer("defaultLayer".into(), &l)?);
        }
        for (ns, l) in self.namespaces {
            let layer = parse_layer(format!("namespaces.{ns}"), &l)?;
            cfg.namespaces.insert(ns, layer);
        }
        for (i, c) in self.crew.into_iter().enumerate() {
            let path = format!("crew[{i}]");
            if c.name.trim().is_empty() {
                return Err((format!("{path}.name"), "a crew member needs a name".into()));
            }
            for (j, r) in c.roles.iter().enumerate() {
                if !ROLES.contains(&r.as_str()) {
                    return Err((
                        format!("{path}.roles[{j}]"),
                        format!("unknown role `{r}`; roles are {}", ROLES.join(", ")),
                    ));
                }
            }
            let mut keys = Vec::new();
            for (j, k) in c.keys.iter().enumerate() {
                let kpath = format!("{path}.keys[{j}]");
                let pem = if k.trim_start().starts_with("-----BEGIN") {
                    k.clone()
                } else {
                    read_key(k.trim()).map_err(|m| (kpath.clone(), m))?
                };
                let key = CrewKey::from_pem(&pem).map_err(|e| {
                    let what = if pem.trim_start().starts_with("-----BEGIN") {
                        String::new()
                    } else {
                        format!("{}: ", k.trim())
                    };
                    (kpath.clone(), format!("{what}{e}"))
                })?;
                keys.push(key);
            }
            let mut subjects = Vec::new();
            for (j, t) in c.subjects.iter().enumerate() {
                subjects.push(Subject::parse(t).map_err(|m| (format!("{path}.subjects[{j}]"), m))?);
            }
            let member = CrewMember {
                name: c.name,
                identity: c.identity.filter(|s| !s.is_empty()),
                roles: c.roles,
                keys,
                subjects,
            };
            if let Some(id) = &member.identity {
                if cfg
                    .crew
                    .iter()
                    .any(|m| m.identity.as_ref() == Some(id) && m.name != member.name)
                {
                    return Err((
                        format!("{path}.identity"),
                        format!("identity `{id}` already belongs to another crew member"),
                    ));
                }
            }
            match cfg.crew.iter_mut().find(|m| m.name == member.name) {
                Some(existing) => *existing = member,
                None => cfg.crew.push(member),
            }
        }
        if let Some(s) = self.suite {
            for (k, r) in s.user_policy_scope.into_iter().enumerate() {
                let path = format!("suite.userPolicyScope[{k}]");
                let layers = LayerSet::parse_items(r.layers.iter().map(String::as_str))
                    .map_err(|m| (format!("{path}.layers"), m))?;
                if r.rules.is_empty() {
                    return Err((
                        format!("{path}.rules"),
                        "give at least one rule id (rego:main/deny_*)".into(),
                    ));
                }
                if let Some(bad) = r.rules.iter().find(|p| !p.starts_with("rego:")) {
                    return Err((
                        format!("{path}.rules"),
                        format!("`{bad}` is not a user rule id (rego:<namespace>/<rule>); the suite's own policies are scoped by suite.policies.<id>.layers"),
                    ));
                }
                cfg.user_scope.push(suite::UserScopeRule {
                    rules: r.rules,
                    layers,
                });
            }
            if let Some(rows) = s.user_policy_exemptable {
                let mut out = Vec::new();
                for (k, r) in rows.into_iter().enumerate() {
                    let path = format!("suite.userPolicyExemptable[{k}]");
                    let layers = LayerSet::parse_items(r.layers.iter().map(String::as_str))
                        .map_err(|m| (format!("{path}.layers"), m))?;
                    if layers.contains(Layer::L6) || layers.contains(Layer::L7) {
                        return Err((format!("{path}.layers"), "L6 and L7 exempt nothing".into()));
                    }
                    if r.patterns.is_empty() {
                        return Err((
                            format!("{path}.patterns"),
                            "give at least one rule-name pattern (warn_*, deny_*, *)".into(),
                        ));
                    }
                    // SPEC §6: deny_* at L3 "except deny_privileged"; only L5's "any, Kay only" row
                    // may cover a rule of that name.
                    let covers_privileged = r
                        .patterns
                        .iter()
                        .any(|p| suite::pattern_matches(p, "deny_privileged"))
                        && !r.except.iter().any(|e| e == "deny_privileged");
                    if covers_privileged && layers != LayerSet::NONE.with(Layer::L5) {
                        return Err((
                            format!("{path}.except"),
                            "deny_privileged can never be exempted here: add it to except".into(),
                        ));
                    }
                    let condition = match r.reviewed_by {
                        Some(role) if !ROLES.contains(&role.as_str()) => {
                            return Err((
                                format!("{path}.reviewedBy"),
                                format!("unknown role `{role}`"),
                            ))
                        }
                        Some(role) => Some(ExemptCondition::ReviewedBy(role)),
                        None => None,
                    };
                    out.push(suite::UserExemptRule {
                        layers,
                        patterns: r.patterns,
                        except: r.except,
                        condition,
                    });
                }
                cfg.user_exempt = out;
            }
            for (id, rp) in s.policies {
                let base = format!("suite.policies.{id}");
                let Some(p) = cfg.policies.iter_mut().find(|p| p.id == id) else {
                    let names: Vec<String> = suite::default_policies()
                        .into_iter()
                        .map(|p| p.id)
                        .collect();
                    return Err((
                        base,
                        format!("unknown policy `{id}`; the suite has {}", names.join(", ")),
                    ));
                };
                if let Some(layers) = rp.layers {
                    p.layers = LayerSet::parse_items(layers.iter().map(String::as_str))
                        .map_err(|m| (format!("{base}.layers"), m))?;
                }
                if let Some(v) = rp.verdict {
                    p.verdict = v;
                }
                if let Some(e) = rp.escalation {
                    p.escalation = e.map(|e| Escalation {
                        from_day: e.day,
                        verdict: e.verdict,
                    });
                }
                if let Some(en) = rp.enabled {
                    p.enabled = en;
                }
                if let Some(f) = rp.floor {
                    if !(0.0..=1.0).contains(&f) {
                        return Err((format!("{base}.floor"), format!("{f} is outside [0, 1]")));
                    }
                    p.floor = f;
                }
                if let Some(rules) = rp.exemptable {
                    let mut out = Vec::new();
                    for (k, r) in rules.into_iter().enumerate() {
                        let rpath = format!("{base}.exemptable[{k}]");
                        let layers = LayerSet::parse_items(r.layers.iter().map(String::as_str))
                            .map_err(|m| (format!("{rpath}.layers"), m))?;
                        if p.id == "deny_privileged" && layers != LayerSet::NONE {
                            return Err((rpath, "deny_privileged can never be exempted".into()));
                        }
                        if layers.contains(Layer::L6) || layers.contains(Layer::L7) {
                            return Err((
                                format!("{rpath}.layers"),
                                "L6 and L7 exempt nothing".into(),
                            ));
                        }
                        let condition = match (r.requires_open_trial, r.reviewed_by) {
                            (true, None) => Some(ExemptCondition::TrialOpen),
                            (false, Some(role)) => {
                                if !ROLES.contains(&role.as_str()) {
                                    return Err((
                                        format!("{rpath}.reviewedBy"),
                                        format!("unknown role `{role}`"),
                                    ));
                                }
                                Some(ExemptCondition::ReviewedBy(role))
                            }
                            (false, None) => None,
                            (true, Some(_)) => {
                                return Err((
                                    rpath,
                                    "give requiresOpenTrial or reviewedBy, not both".into(),
                                ))
                            }
                        };
                        out.push(ExemptRule { layers, condition });
                    }
                    p.exempt = out;
                }
            }
        }
        for (name, value) in self.layers {
            if name == "writers" {
                cfg.layer_writers = serde_json::from_value(value).map_err(|_| {
                    (
                        "layers.writers".to_string(),
                        "writers is a list of user names (or group:NAME)".to_string(),
                    )
                })?;
                continue;
            }
            let layer = parse_layer(format!("layers.{name}"), &name)?;
            let rl: RawLayer = serde_path_to_error::deserialize(value).map_err(|e| {
                let sub = e.path().to_string();
                let path = if sub == "." {
                    format!("layers.{name}")
                } else {
                    format!("layers.{name}.{sub}")
                };
                (path, e.inner().to_string())
            })?;
            let Some(spec) = cfg.layers.iter_mut().find(|l| l.layer == layer) else {
                continue;
            };
            if let Some(ns) = rl.namespace {
                spec.namespace = ns;
            }
            if let Some(a) = rl.approvers {
                for (j, r) in a.iter().enumerate() {
                    if r != "self" && !ROLES.contains(&r.as_str()) {
                        return Err((
                            format!("layers.{name}.approvers[{j}]"),
                            format!("unknown role `{r}`"),
                        ));
                    }
                }
                if matches!(layer, Layer::L6) && !a.is_empty() {
                    return Err((
                        format!("layers.{name}.approvers"),
                        "L6 is closed: it has no approvers".into(),
                    ));
                }
                spec.approvers = a;
            }
        }
        for (name, g) in self.gates {
            let path = format!("gates.{name}");
            let n: usize = name
                .strip_prefix("gate-")
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| (path.clone(), "gates are gate-1 … gate-5".to_string()))?;
            let opened_at = match g.opened_at {
                Some(t) => {
                    Some(epoch::parse_rfc3339(&t).map_err(|m| (format!("{path}.openedAt"), m))?)
                }
                None => None,
            };
            if g.open && g.opened_by.is_none() {
                return Err((
                    format!("{path}.openedBy"),
                    "an open gate must say who opened it".into(),
                ));
            }
            if let Some(who) = &g.opened_by {
                if !cfg
                    .crew
                    .iter()
                    .any(|c| &c.name == who || c.identity.as_ref() == Some(who))
                {
                    return Err((
                        format!("{path}.openedBy"),
                        format!("`{who}` is not registered crew"),
                    ));
                }
            }
            if let Some(slot) = cfg.gates.get_mut(n - 1) {
                *slot = MegGate {
                    open: g.open,
                    opened_by: g.opened_by,
                    opened_at,
                };
            }
        }
        if let Some(t) = self.tokens {
            if let Some(s) = &t.secret {
                if s.len() < crate::token::MIN_SECRET_LEN {
                    return Err((
                        "tokens.secret".into(),
                        format!(
                            "the token secret needs at least {} characters",
                            crate::token::MIN_SECRET_LEN
                        ),
                    ));
                }
            }
            cfg.token_secret = t.secret;
        }
        if let Some(e) = self.exemptions {
            if let Some(d) = e.max_days {
                if d == 0 || d > 365 {
                    return Err((
                        "exemptions.maxDays".into(),
                        "maxDays must be between 1 and 365: no permanent waivers".into(),
                    ));
                }
                cfg.exemption_max_days = d;
            }
            cfg.exemption_writers = e.writers;
            if let Some(r) = e.require_approval {
                cfg.require_approval = r;
            }
        }
        if let Some(c) = self.chaos_pool {
            if let Some(n) = c.name {
                cfg.chaos_pool.name = n;
            }
            if let Some(v) = c.vm_size {
                cfg.chaos_pool.vm_size = v;
            }
            if let Some(v) = c.min_count {
                cfg.chaos_pool.min_count = v;
            }
            if let Some(v) = c.max_count {
                cfg.chaos_pool.max_count = v;
            }
            if cfg.chaos_pool.min_count > cfg.chaos_pool.max_count {
                return Err((
                    "chaosPool.minCount".into(),
                    "minCount is above maxCount".into(),
                ));
            }
        }
        if let Some(c) = self.cluster {
            cfg.cluster = Cluster {
                name: c.name,
                resource_group: c.resource_group,
            };
        }
        if let Some(i) = self.images {
            cfg.images = i.validate(read_key)?;
        }
        if let Some(l) = self.ledger {
            if l.url.trim().is_empty() {
                return Err((
                    "ledger.url".into(),
                    "is empty (a postgres:// URL or an SQLite file)".into(),
                ));
            }
            cfg.ledger_url = Some(l.url);
        }
        if let Some(r) = self.rekor {
            if let Some(u) = &r.url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(("rekor.url".into(), format!("`{u}` is not an http(s) URL")));
                }
            }
            let key = match &r.key {
                Some(k) => {
                    let pem = pem_or_file(k, "rekor.key", read_key)?;
                    CrewKey::from_pem(&pem)
                        .map_err(|e| ("rekor.key".to_string(), e.to_string()))?;
                    Some(pem)
                }
                None => None,
            };
            cfg.rekor = RekorSpec {
                url: r.url,
                key,
                required: r.required,
            };
        }
        if let Some(l) = self.locks {
            for (i, k) in l.keys.iter().enumerate() {
                let kpath = format!("locks.keys[{i}]");
                let pem = pem_or_file(k, &kpath, read_key)?;
                CrewKey::from_pem(&pem).map_err(|e| (kpath, e.to_string()))?;
                cfg.locks.keys.push(pem);
            }
            cfg.locks.source = match l.source.as_deref() {
                None | Some("registry") => crate::mecipol::LockSource::Registry,
                Some("profiles") => crate::mecipol::LockSource::Profiles,
                Some(other) => {
                    return Err((
                        "locks.source".into(),
                        format!("`{other}` is not a lock source; write registry or profiles"),
                    ))
                }
            };
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
