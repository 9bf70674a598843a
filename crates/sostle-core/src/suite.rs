//! The suite as data: the ten policies of SPEC §3 and the layer table of SPEC §2 (namespaces,
//! gates, approvers), each a plain table with a built-in default that `SostleConfig` extends or
//! overrides. Adding a policy is one entry here plus one function in `policies.rs`.

use crate::layer::{Layer, LayerSet};

/// The id of the layer gate's result, the first result of every report; a gate, never a
/// policy of the table, so never exemptable.
pub const LAYER_GATE: &str = "layer_gate";

/// What a failing policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The resource is refused (`fail`).
    Deny,
    /// The resource is admitted with a warning (`warn`).
    Warn,
}

/// A day-based change of verdict (the γ₁ escalation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// From this epoch day on…
    pub from_day: i64,
    /// …the policy has this verdict.
    pub verdict: Verdict,
}

/// Which kinds a policy judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Workload kinds only.
    Workloads,
    /// Workload kinds and RoleBindings.
    WorkloadsAndRoleBindings,
}

/// An extra condition on an exemption at some layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExemptCondition {
    /// The exemption's TRB trial must be open (needs a ledger).
    TrialOpen,
    /// The reviewer must hold this role.
    ReviewedBy(String),
}

/// Where a policy may be exempted, and on what extra condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemptRule {
    /// The layers this rule covers.
    pub layers: LayerSet,
    /// An extra condition, if any.
    pub condition: Option<ExemptCondition>,
}

/// One policy of the suite.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    /// The exact id users write (`deny_no_limits`).
    pub id: String,
    /// One line saying what the policy asks for.
    pub summary: String,
    /// The layers it applies at.
    pub layers: LayerSet,
    /// Its verdict on failure.
    pub verdict: Verdict,
    /// A day-based escalation, if any.
    pub escalation: Option<Escalation>,
    /// The kinds it judges.
    pub scope: Scope,
    /// Where it may be exempted (empty: never).
    pub exempt: Vec<ExemptRule>,
    /// The warmth floor (for `warn_trendal_missing`).
    pub floor: f64,
    /// Whether it runs at all.
    pub enabled: bool,
}

impl PolicySpec {
    /// The verdict on epoch day `day`.
    pub fn verdict_on(&self, day: i64) -> Verdict {
        match self.escalation {
            Some(e) if day >= e.from_day => e.verdict,
            _ => self.verdict,
        }
    }
}

/// What a layer's own admission gate checks (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Never denies.
    Open,
    /// WARN on declared write operations.
    ReadOnly,
    /// WARN unless `sostle.eose.ca/sso: google`.
    Sso,
    /// DENY unless a registered crew member is named.
    Crew,
    /// Crew plus a valid SOSTLE token.
    Token,
    /// Crew with `l5-authorized` plus `kay-approved=true`.
    KayApproved,
    /// DENY every workload.
    Closed,
    /// All five MEGSCIFIAR gates open and the `megscifiar` role.
    Mega,
}

/// One row of the layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// The layer.
    pub layer: Layer,
    /// Its namespace.
    pub namespace: String,
    /// Its gate.
    pub gate: Gate,
    /// Roles that may approve (review) at this layer; `self` means anyone, owner included.
    pub approvers: Vec<String>,
}

/// The default policy table (SPEC §3 and the exemption matrix of §6).
pub fn default_policies() -> Vec<PolicySpec> {
    let all = LayerSet::range(0, 7).with(Layer::Trial);
    let from = |n: u8| LayerSet::range(n, 7).with(Layer::Trial);
    let never = Vec::new;
    let rule = |layers: LayerSet| ExemptRule {
        layers,
        condition: None,
    };
    let p =
        |id: &str, summary: &str, layers: LayerSet, verdict: Verdict, exempt: Vec<ExemptRule>| {
            PolicySpec {
                id: id.to_string(),
                summary: summary.to_string(),
                layers,
                verdict,
                escalation: None,
                scope: Scope::Workloads,
                exempt,
                floor: 0.5,
                enabled: true,
            }
        };
    vec![
        p(
            "deny_no_limits",
            "every container and init container sets CPU and memory limits",
            all,
            Verdict::Deny,
            vec![
                rule(LayerSet::NONE.with(Layer::L3).with(Layer::Trial)),
                ExemptRule {
                    layers: LayerSet::NONE.with(Layer::L4),
                    condition: Some(ExemptCondition::TrialOpen),
                },
            ],
        ),
        p(
            "deny_no_readonly",
            "every container and init container has a read-only root filesystem",
            from(2),
            Verdict::Deny,
            vec![rule(LayerSet::NONE.with(Layer::Trial))],
        ),
        p(
            "deny_privileged",
            "no container is privileged",
            all,
            Verdict::Deny,
            never(),
        ),
        p(
            "deny_latest_tag",
            "every image has a tag other than `latest`, or a digest",
            from(1),
            Verdict::Deny,
            never(),
        ),
        p(
            "deny_no_liveness",
            "every regular container has a liveness probe",
            from(2),
            Verdict::Deny,
            vec![rule(LayerSet::NONE.with(Layer::L2))],
        ),
        PolicySpec {
            escalation: Some(Escalation {
                from_day: 100,
                verdict: Verdict::Deny,
            }),
            ..p(
                "warn_no_gamma1_label",
                "the workload carries label gamma1=14134725141734693",
                from(3),
                Verdict::Warn,
                never(),
            )
        },
        p(
            "warn_no_security_ctx",
            "the pod or every container sets a security context",
            from(2),
            Verdict::Warn,
            vec![rule(LayerSet::range(0, 5).with(Layer::Trial))],
        ),
        PolicySpec {
            scope: Scope::WorkloadsAndRoleBindings,
            ..p(
                "deny_cross_layer",
                "the workload does not reach into another layer",
                LayerSet::range(3, 7),
                Verdict::Deny,
                vec![ExemptRule {
                    layers: LayerSet::range(3, 5),
                    condition: Some(ExemptCondition::ReviewedBy("kay".into())),
                }],
            )
        },
        p(
            "deny_no_mecipol_image",
            "the workload runs a MECIPOL-locked image",
            LayerSet::range(3, 7),
            Verdict::Deny,
            never(),
        ),
        p(
            "warn_trendal_missing",
            "the workload names a warm trendal",
            LayerSet::range(3, 5),
            Verdict::Warn,
            never(),
        ),
    ]
}

/// The default layer table (SPEC §2).
pub fn default_layers() -> Vec<LayerSpec> {
    let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Layer::ALL
        .into_iter()
        .map(|layer| {
            let (gate, approvers) = match layer {
                Layer::L0 => (Gate::Open, roles(&["self"])),
                Layer::L1 => (Gate::ReadOnly, roles(&["crew"])),
                Layer::L2 => (Gate::Sso, roles(&["l3"])),
                Layer::L3 => (Gate::Crew, roles(&["bosun", "imhotep", "kay"])),
                Layer::L4 => (Gate::Token, roles(&["imhotep", "kay"])),
                Layer::L5 => (Gate::KayApproved, roles(&["kay"])),
                Layer::L6 => (Gate::Closed, roles(&[])),
                Layer::L7 => (Gate::Mega, roles(&["megscifiar"])),
                Layer::Trial => (Gate::Open, roles(&["bosun", "imhotep", "kay"])),
            };
            LayerSpec {
                layer,
                namespace: layer.default_namespace().to_string(),
                gate,
                approvers,
            }
        })
        .collect()
}

/// One row of the exemption matrix for policies outside the table (user Rego policies,
/// `rego:<namespace>/<rule>`): at these layers, rules whose name matches one of `patterns`
/// (`warn_*`, `deny_*`, `*`; `warn_*` also matches `warn`) and is not in `except` may be exempted,
/// on `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserExemptRule {
    /// The layers.
    pub layers: LayerSet,
    /// Rule-name patterns.
    pub patterns: Vec<String>,
    /// Rule names excluded.
    pub except: Vec<String>,
    /// An extra condition, if any.
    pub condition: Option<ExemptCondition>,
}

/// Opt-in layer scope of user (Rego) rules (`suite.userPolicyScope`): a rule whose id matches one
/// of `rules` judges only documents at one of `layers`. Rules no row names judge every document,
/// as under conftest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScopeRule {
    /// Rule-id globs (`rego:main/deny_*`, `rego:kubernetes.*/*`).
    pub rules: Vec<String>,
    /// The layers those rules judge.
    pub layers: LayerSet,
}

/// Shell-style glob: `*` any run, `?` one character, anything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.split_first(), n.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => {
                go(rest, n) || n.split_first().is_some_and(|(_, nr)| go(p, nr))
            }
            (Some((b'?', rest)), Some((_, nr))) => go(rest, nr),
            (Some((a, rest)), Some((b, nr))) if a == b => go(rest, nr),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Whether a rule name matches a pattern (`*`, `warn_*` — which also matches `warn` — or a name).
pub fn pattern_matches(pattern: &str, rule: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => rule.starts_with(prefix) || Some(rule) == prefix.strip_suffix('_'),
        None => rule == pattern,
    }
}

/// SPEC §6's last row as data: L0 any `warn_*`; L1 `warn_*`; L2 `warn_*` and
/// `deny_no_readonly`; L3 (and the trial namespace) any `deny_*` except `deny_privileged`;
/// L4 none; L5 any, reviewed by Kay; L6, L7 none.
pub fn default_user_exempt_rules() -> Vec<UserExemptRule> {
    let rule = |layers: LayerSet,
                patterns: &[&str],
                except: &[&str],
                condition: Option<ExemptCondition>| UserExemptRule {
        layers,
        patterns: patterns.iter().map(|s| s.to_string()).collect(),
        except: except.iter().map(|s| s.to_string()).collect(),
        condition,
    };
    vec![
        rule(LayerSet::range(0, 2), &["warn_*"], &[], None),
        rule(
            LayerSet::NONE.with(Layer::L2),
            &["deny_no_readonly"],
            &[],
            None,
        ),
        rule(
            LayerSet::NONE.with(Layer::L3).with(Layer::Trial),
            &["deny_*", "violation_*"],
            &["deny_privileged"],
            None,
        ),
        rule(
            LayerSet::NONE.with(Layer::L5),
            &["*"],
            &[],
            Some(ExemptCondition::ReviewedBy("kay".into())),
        ),
    ]
}

/// Whether a user policy may be exempted at `layer` by `rules`: `None` when no row allows it,
/// else the condition of the first row that does.
pub fn user_policy_exemptable(
    rules: &[UserExemptRule],
    policy_id: &str,
    layer: Layer,
) -> Option<Option<ExemptCondition>> {
    let rule = policy_id.rsplit('/').next().unwrap_or(policy_id);
    rules
        .iter()
        .find(|r| {
            r.layers.contains(layer)
                && r.patterns.iter().any(|p| pattern_matches(p, rule))
                && !r.except.iter().any(|e| e == rule)
        })
        .map(|r| r.condition.clone())
}
