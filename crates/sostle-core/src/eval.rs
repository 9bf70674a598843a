//! Evaluation: one resource (a parsed document) in, one [`ResourceReport`] out — the layer it
//! belongs to, the layer gate's result and one result per policy of the suite. No I/O: the
//! clock, namespace labels, the token secret and the lock registry all come in through
//! [`EvalContext`], so the CLI and the webhook reach the same decision on the same object.

use std::sync::Arc;

use jiff::Timestamp;

use crate::config::Config;
use crate::epoch;
use crate::exemption::{self, Annotations, ExemptionLedger, Judgement};
use crate::layer::Layer;
use crate::manifest::{Node, Pos, Value};
use crate::policies::{self, Check};
use crate::suite::{Gate, Scope, Verdict};
use crate::token;

/// The outcome of one (resource, policy) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The policy passed.
    Pass,
    /// DENY: the policy failed.
    Fail,
    /// WARN: the policy failed with a warning verdict.
    Warn,
    /// Failed, but a valid exemption covers it.
    Exempted,
    /// Not applicable to this kind or layer.
    Skip,
}

impl Outcome {
    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Exempted => "exempted",
            Outcome::Skip => "skip",
        }
    }
}

/// One offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The container it concerns, if any.
    pub container: Option<String>,
    /// The field path, e.g. `spec.template.spec.containers[0].resources.limits.cpu`.
    pub path: String,
    /// Where the field is (or, when it is missing, its nearest existing parent).
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// A one-line fix.
    pub fix: std::borrow::Cow<'static, str>,
}

/// The result of one policy (or the layer gate) on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResult {
    /// Policy id (`layer_gate` for the gate).
    pub policy: Arc<str>,
    /// The outcome.
    pub outcome: Outcome,
    /// The offending fields (empty on pass and skip).
    pub violations: Vec<Violation>,
    /// The exemption that names this policy, when the policy failed: honoured (`exempted`) or
    /// refused with every reason.
    pub exemption: Option<Box<Judgement>>,
}

/// Which layer a resource was judged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// A layer.
    Layer(Layer),
    /// No layer could be found: out of scope, never denied.
    Unlayered,
    /// `kube-system` and co: never governed.
    Ungoverned,
}

impl LayerStatus {
    /// `L3`, `trial`, `unlayered` or `ungoverned`.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerStatus::Layer(l) => l.as_str(),
            LayerStatus::Unlayered => "unlayered",
            LayerStatus::Ungoverned => "ungoverned",
        }
    }

    /// The layer, if any.
    pub fn layer(self) -> Option<Layer> {
        match self {
            LayerStatus::Layer(l) => Some(l),
            _ => None,
        }
    }
}

/// What the resource is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, if set.
    pub namespace: Option<String>,
    /// `metadata.name`, or `metadata.generateName` when only that is set.
    pub name: String,
}

impl ResourceRef {
    /// `kind/namespace/name` (namespace omitted when unset).
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// A problem with the object itself (a wrong type, a missing kind), reported as a run error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// The field path.
    pub path: String,
    /// Where it is.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

/// Everything decided about one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceReport {
    /// The resource.
    pub resource: ResourceRef,
    /// Where the document starts.
    pub pos: Pos,
    /// The layer it was judged at.
    pub layer: LayerStatus,
    /// The epoch day of the evaluation.
    pub epoch_day: i64,
    /// The layer gate first, then one result per policy, in suite order.
    pub results: Vec<PolicyResult>,
    /// Problems with the object's shape.
    pub errors: Vec<ShapeError>,
    /// The object's exemption annotations, if it has any.
    pub exemption: Option<Annotations>,
}

/// Layers of namespaces as labelled on Namespace objects (from the input, or the cluster).
pub trait NamespaceLabels {
    /// The layer named by the namespace's `sostle-layer` label, if the namespace is known and
    /// carries one.
    fn label_layer(&self, namespace: &str) -> Option<Layer>;
}

impl NamespaceLabels for std::collections::HashMap<String, Layer> {
    fn label_layer(&self, namespace: &str) -> Option<Layer> {
        self.get(namespace).copied()
    }
}

/// No namespace labels known.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLabels;

impl NamespaceLabels for NoLabels {
    fn label_layer(&self, _: &str) -> Option<Layer> {
        None
    }
}

/// The lock registry (the ledger, or the cluster's signed profiles): the second half of
/// `deny_no_mecipol_image`. Without one, that policy is static only, and says so.
pub trait LockRegistry: Sync {
    /// Checks that `image` holds a lock authorizing `layer` and is not older than the lock
    /// named by `current_profile` (the workload's `mecipol-profile` annotation). Returns the
    /// reasons it does not.
    fn check(
        &self,
        image: &str,
        layer: Layer,
        current_profile: Option<&str>,
    ) -> Vec<crate::mecipol::LockProblem>;
}

/// What an evaluation needs from outside: the clock and the environment.
pub struct EvalContext<'a> {
    /// Now.
    pub now: Timestamp,
    /// The `--sostle-layer` flag, if given.
    pub layer_override: Option<Layer>,
    /// Namespace labels known to the caller.
    pub namespaces: &'a dyn NamespaceLabels,
    /// Secret for SOSTLE tokens, if any.
    pub token_secret: Option<&'a [u8]>,
    /// The lock registry, if any.
    pub locks: Option<&'a dyn LockRegistry>,
    /// The ledger's witnesses and trials, if a ledger is in use.
    pub ledger: Option<&'a dyn ExemptionLedger>,
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("now", &self.now)
            .field("layer_override", &self.layer_override)
            .field("token_secret", &self.token_secret.map(|_| "<redacted>"))
            .field("locks", &self.locks.is_some())
            .field("ledger", &self.ledger.is_some())
            .finish()
    }
}

/// Namespaces that are never governed.
pub const UNGOVERNED: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Where a workload kind keeps its pod spec, in the three spellings its readers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodSpecAt {
    /// The keys from the root, e.g. `["spec", "template", "spec"]`.
    pub keys: &'static [&'static str],
    /// The same, dotted (`spec.template.spec`): the prefix of violation paths.
    pub dotted: &'static str,
    /// The same as a JSON pointer (`/spec/template/spec`): the base of JSONPatch paths.
    pub pointer: &'static str,
}

/// Where `kind` keeps its pod spec; `None` for kinds that are not [`WORKLOAD_KINDS`].
pub fn pod_spec_at(kind: &str) -> Option<PodSpecAt> {
    if !WORKLOAD_KINDS.contains(&kind) {
        return None;
    }
    Some(match kind {
        "Pod" => PodSpecAt {
            keys: &["spec"],
            dotted: "spec",
            pointer: "/spec",
        },
        "CronJob" => PodSpecAt {
            keys: &["spec", "jobTemplate", "spec", "template", "spec"],
            dotted: "spec.jobTemplate.spec.template.spec",
            pointer: "/spec/jobTemplate/spec/template/spec",
        },
        _ => PodSpecAt {
            keys: &["spec", "template", "spec"],
            dotted: "spec.template.spec",
            pointer: "/spec/template/spec",
        },
    })
}

/// The pod-bearing kinds.
pub const WORKLOAD_KINDS: [&str; 8] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

/// The engine: a validated config and the native checks, ready to evaluate any number of
/// resources from any number of threads.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Arc<Config>,
    gate_id: Arc<str>,
    ids: Vec<Arc<str>>,
    checks: Vec<Check>,
}

impl Engine {
    /// Builds the engine for a config. Every policy of the table has a native check (the
    /// config loader refuses unknown ids).
    pub fn new(config: Arc<Config>) -> Engine {
        let ids = config
            .policies
            .iter()
            .map(|p| Arc::from(p.id.as_str()))
            .collect();
        let checks = config
            .policies
            .iter()
            .map(|p| policies::native(&p.id).unwrap_or(policies::unknown))
            .collect();
        Engine {
            config,
            gate_id: Arc::from("layer_gate"),
            ids,
            checks,
        }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The epoch day at `now`.
    pub fn epoch_day(&self, now: Timestamp) -> i64 {
        epoch::epoch_day(self.config.origin, now)
    }

    /// The layer of a namespace, without the flag: its label, the config, the name pattern,
    /// the config's default layer.
    pub fn namespace_layer(&self, ns: &str, labels: &dyn NamespaceLabels) -> LayerStatus {
        if UNGOVERNED.contains(&ns) {
            return LayerStatus::Ungoverned;
        }
        if let Some(l) = labels.label_layer(ns) {
            return LayerStatus::Layer(l);
        }
        if let Some(l) = self.config.namespace_layer(ns) {
            return LayerStatus::Layer(l);
        }
        match self.config.default_layer {
            Some(l) => LayerStatus::Layer(l),
            None => LayerStatus::Unlayered,
        }
    }

    /// Evaluates one object.
    pub fn evaluate(&self, root: &Node, ctx: &EvalContext<'_>) -> ResourceReport {
        let mut errors = Vec::new();
        let resource = resource_ref(root, &mut errors);
        let epoch_day = self.epoch_day(ctx.now);
        let layer = self.resolve(root, &resource, ctx);
        let workload = if WORKLOAD_KINDS.contains(&resource.kind.as_str()) {
            Some(policies::Workload::new(root, &resource.kind, &mut errors))
        } else {
            None
        };
        let is_rolebinding = resource.kind == "RoleBinding";
        let mut results = Vec::with_capacity(self.checks.len() + 1);
        results.push(self.gate(root, &resource, layer, workload.is_some(), ctx));
        for ((spec, check), id) in self.config.policies.iter().zip(&self.checks).zip(&self.ids) {
            let applies_kind = workload.is_some()
                || (is_rolebinding && spec.scope == Scope::WorkloadsAndRoleBindings);
            let applies = spec.enabled
                && applies_kind
                && layer.layer().is_some_and(|l| spec.layers.contains(l));
            let (outcome, violations) = match (applies, layer.layer()) {
                (true, Some(l)) => {
                    let pctx = policies::PolicyCtx {
                        engine: self,
                        spec,
                        layer: l,
                        root,
                        namespace: resource.namespace.as_deref(),
                        ctx,
                    };
                    let mut v = check(&pctx, workload.as_ref());
                    if v.is_empty() && !errors.is_empty() {
                        v = errors
                            .iter()
                            .map(|e: &ShapeError| Violation {
                                container: None,
                                path: e.path.clone(),
                                pos: e.pos,
                                message: format!("cannot be checked: {}", e.message),
                                fix: "fix the field's type".into(),
                            })
                            .collect();
                    }
                    if v.is_empty() {
                        (Outcome::Pass, v)
                    } else {
                        match spec.verdict_on(epoch_day) {
                            Verdict::Deny => (Outcome::Fail, v),
                            Verdict::Warn => (Outcome::Warn, v),
                        }
                    }
                }
                _ => (Outcome::Skip, Vec::new()),
            };
            results.push(PolicyResult {
                policy: id.clone(),
                outcome,
                violations,
                exemption: None,
            });
        }
        let annotations = Annotations::read(root);
        self.judge_exemptions(annotations.as_ref(), &resource, layer, &mut results, ctx);
        ResourceReport {
            resource,
            pos: root.pos,
            layer,
            epoch_day,
            results,
            errors,
            exemption: annotations,
        }
    }

    /// Judges the resource's exemption (if it has one) for every failing result it concerns:
    /// those it lists, or all of them when `exempt-from` itself is missing (so the problem is
    /// reported rather than the annotations silently ignored). Also used for results added after
    /// evaluation (user Rego policies).
    pub fn judge_exemptions(
        &self,
        annotations: Option<&Annotations>,
        resource: &ResourceRef,
        layer: LayerStatus,
        results: &mut [PolicyResult],
        ctx: &EvalContext<'_>,
    ) {
        let (Some(ann), Some(l)) = (annotations, layer.layer()) else {
            return;
        };
        let from_missing = ann.from.as_deref().is_none_or(|f| f.trim().is_empty());
        let target = Engine::exemption_target(resource);
        // One signature check for every policy the exemption is judged for.
        let approval = exemption::ApprovalCheck::default();
        for r in results {
            if !matches!(r.outcome, Outcome::Fail | Outcome::Warn) {
                continue;
            }
            if !from_missing && !ann.lists(&r.policy) {
                // Present but not for this policy: say so on the result (SPEC §13), rather than
                // leave the reader to wonder why the exemption did nothing.
                r.exemption = Some(Box::new(exemption::not_listed(ann, &r.policy)));
                continue;
            }
            let subject = exemption::Subject {
                policy: self.config.policy(&r.policy),
                policy_id: &r.policy,
                layer: l,
                resource: &target,
            };
            let j =
                exemption::judge_with(ann, subject, &self.config, ctx.now, ctx.ledger, &approval);
            if j.valid {
                r.outcome = Outcome::Exempted;
            }
            r.exemption = Some(Box::new(j));
        }
    }

    /// `<namespace>/<name>` as an exemption's `applies-to` must name the resource (namespace
    /// `default` when the object sets none).
    pub fn exemption_target(resource: &ResourceRef) -> String {
        format!(
            "{}/{}",
            resource.namespace.as_deref().unwrap_or("default"),
            resource.name
        )
    }

    fn resolve(&self, root: &Node, resource: &ResourceRef, ctx: &EvalContext<'_>) -> LayerStatus {
        let ns = if resource.kind == "Namespace" && resource.api_version == "v1" {
            Some(resource.name.as_str())
        } else {
            resource.namespace.as_deref()
        };
        if let Some(ns) = ns {
            if UNGOVERNED.contains(&ns) {
                return LayerStatus::Ungoverned;
            }
        }
        if let Some(l) = ctx.layer_override {
            return LayerStatus::Layer(l);
        }
        if resource.kind == "Namespace" {
            if let Some(l) = namespace_object_layer(root).and_then(Result::ok) {
                return LayerStatus::Layer(l);
            }
        }
        match ns {
            Some(ns) => self.namespace_layer(ns, ctx.namespaces),
            None => match self.config.default_layer {
                Some(l) => LayerStatus::Layer(l),
                None => LayerStatus::Unlayered,
            },
        }
    }

    fn gate(
        &self,
        root: &Node,
        resource: &ResourceRef,
        layer: LayerStatus,
        is_workload: bool,
        ctx: &EvalContext<'_>,
    ) -> PolicyResult {
        let result = |outcome, violations| PolicyResult {
            policy: self.gate_id.clone(),
            outcome,
            violations,
            exemption: None,
        };
        let Some(l) = layer.layer() else {
            return result(Outcome::Skip, Vec::new());
        };
        if !is_workload {
            return result(Outcome::Pass, Vec::new());
        }
        let gate = self.config.layer(l).map_or(Gate::Open, |s| s.gate);
        let labels = root.get_path(&["metadata", "labels"]);
        let annotations = root.get_path(&["metadata", "annotations"]);
        let label = |k: &str| labels.and_then(|m| m.get(k)).and_then(Node::scalar_text);
        let annotation = |k: &str| {
            annotations
                .and_then(|m| m.get(k))
                .and_then(Node::scalar_text)
        };
        let at = |path: &[&str]| root.locate(path);
        let v = |path: String, pos: Pos, message: String, fix: &'static str| Violation {
            container: None,
            path,
            pos,
            message,
            fix: fix.into(),
        };
        let crew_check =
            |need_role: Option<&str>| -> Result<&crate::config::CrewMember, Violation> {
                let pos = at(&["metadata", "labels", "crew-member"]);
                let path = "metadata.labels.crew-member".to_string();
                let Some(name) = label("crew-member") else {
                    return Err(v(
                        path,
                        pos,
                        format!(
                            "{l} admits only registered crew, and label crew-member is missing"
                        ),
                        "set label crew-member=<registered crew name>",
                    ));
                };
                let Some(member) = self.config.crew_member(&name) else {
                    return Err(v(
                        path,
                        pos,
                        format!("crew-member `{name}` is not registered crew"),
                        "name a crew member registered in the SostleConfig",
                    ));
                };
                if let Some(role) = need_role {
                    if !member.has_role(role) {
                        return Err(v(
                            path,
                            pos,
                            format!(
                                "crew member {} lacks the `{role}` role that {l} requires",
                                member.name
                            ),
                            "name a crew member who holds the role, or ask for it in the config",
                        ));
                    }
                }
                Ok(member)
            };
        let mut violations = Vec::new();
        let mut verdict = Outcome::Fail;
        match gate {
            Gate::Open => {}
            Gate::ReadOnly => {
                verdict = Outcome::Warn;
                if let Some(ops) = annotation("sostle.eose.ca/operations") {
                    let writes: Vec<&str> = ops
                        .split(',')
                        .map(str::trim)
                        .filter(|o| {
                            ["write", "create", "update", "patch", "delete"]
                                .contains(&o.to_ascii_lowercase().as_str())
                        })
                        .collect();
                    if !writes.is_empty() {
                        violations.push(v(
                            "metadata.annotations.sostle.eose.ca/operations".into(),
                            at(&["metadata", "annotations", "sostle.eose.ca/operations"]),
                            format!("{l} is read-only, but the workload declares write operations: {}", writes.join(",")),
                            "remove write,create,update,patch,delete from sostle.eose.ca/operations",
                        ));
                    }
                }
            }
            Gate::Sso => {
                verdict = Outcome::Warn;
                match annotation("sostle.eose.ca/sso") {
                    Some(s) if s == "google" => {}
                    other => violations.push(v(
                        "metadata.annotations.sostle.eose.ca/sso".into(),
                        at(&["metadata", "annotations", "sostle.eose.ca/sso"]),
                        match other {
                            Some(s) => format!("{l} expects Google SSO, but sostle.eose.ca/sso is `{s}`"),
                            None => format!("{l} expects Google SSO, and annotation sostle.eose.ca/sso is missing"),
                        },
                        "set annotation sostle.eose.ca/sso: google",
                    )),
                }
            }
            Gate::Crew => {
                if let Err(e) = crew_check(None) {
                    violations.push(e);
                }
            }
            Gate::Token => match crew_check(None) {
                Err(e) => violations.push(e),
                Ok(member) => {
                    let pos = at(&["metadata", "labels", "sostle-token"]);
                    let path = "metadata.labels.sostle-token".to_string();
                    match (label("sostle-token"), ctx.token_secret) {
                        (None, _) => violations.push(Violation {
                            fix: format!("issue one with `sostle token issue --crew NAME --layer {l} --expires …` and set label sostle-token").into(),
                            ..v(
                                path,
                                pos,
                                format!("{l} needs a SOSTLE token, and label sostle-token is missing"),
                                "",
                            )
                        }),
                        (Some(_), None) => violations.push(v(
                            path,
                            pos,
                            "no token secret is configured, so the SOSTLE token cannot be verified".into(),
                            "set SOSTLE_TOKEN_SECRET or tokens.secret in the config",
                        )),
                        (Some(t), Some(secret)) => {
                            let names = self.config.crew.iter().map(|c| c.name.as_str());
                            if let Err(e) = token::verify(secret, &t, &member.name, l, ctx.now.as_second(), names) {
                                violations.push(v(
                                    path,
                                    pos,
                                    format!("SOSTLE token refused: {e}"),
                                    "issue a fresh token for this crew member and layer",
                                ));
                            }
                        }
                    }
                }
            },
            Gate::KayApproved => {
                if let Err(e) = crew_check(Some("l5-authorized")) {
                    violations.push(e);
                }
                if label("kay-approved").as_deref() != Some("true") {
                    violations.push(v(
                        "metadata.labels.kay-approved".into(),
                        at(&["metadata", "labels", "kay-approved"]),
                        format!("{l} admits only what Kay approved, and label kay-approved is not `true`"),
                        "ask Kay to approve, then set label kay-approved=true",
                    ));
                }
            }
            Gate::Closed => violations.push(v(
                "kind".into(),
                at(&["kind"]),
                format!(
                    "{l} is closed: no {} may run here (ConfigMaps and Secrets only)",
                    resource.kind
                ),
                "deploy the workload to another layer",
            )),
            Gate::Mega => {
                let closed: Vec<String> = self
                    .config
                    .gates
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| !g.open)
                    .map(|(i, _)| format!("gate-{}", i + 1))
                    .collect();
                if !closed.is_empty() {
                    violations.push(v(
                        "kind".into(),
                        at(&["kind"]),
                        format!(
                            "{l} needs all five MEGSCIFIAR gates open; closed: {}",
                            closed.join(", ")
                        ),
                        "open the gates in the SostleConfig (each names who opened it)",
                    ));
                }
                if let Err(e) = crew_check(Some("megscifiar")) {
                    violations.push(e);
                }
            }
        }
        if violations.is_empty() {
            result(Outcome::Pass, violations)
        } else {
            result(verdict, violations)
        }
    }
}

/// The `sostle-layer` label of a Namespace object: `None` when absent, `Some(Err)` when it is
/// not a layer.
pub fn namespace_object_layer(root: &Node) -> Option<Result<Layer, String>> {
    let v = root
        .get_path(&["metadata", "labels", "sostle-layer"])?
        .scalar_text()?;
    Some(
        Layer::parse(&v)
            .ok_or_else(|| format!("label sostle-layer `{v}` is not a layer (L0…L7 or trial)")),
    )
}

fn resource_ref(root: &Node, errors: &mut Vec<ShapeError>) -> ResourceRef {
    let text = |path: &[&str]| {
        root.get_path(path)
            .and_then(Node::as_str)
            .map(str::to_string)
    };
    if root.as_map().is_none() {
        errors.push(ShapeError {
            path: String::new(),
            pos: root.pos,
            message: format!(
                "a Kubernetes object is a mapping, not a {}",
                root.type_name()
            ),
        });
        return ResourceRef::default();
    }
    if let Some(m) = root.get("metadata") {
        if !matches!(m.value, Value::Map(_) | Value::Null) {
            errors.push(ShapeError {
                path: "metadata".into(),
                pos: m.pos,
                message: format!("metadata is a {}, expected a mapping", m.type_name()),
            });
        }
    }
    let kind = text(&["kind"]).unwrap_or_default();
    if kind.is_empty() {
        errors.push(ShapeError {
            path: "kind".into(),
            pos: root.locate(&["kind"]),
            message: "the object has no kind".into(),
        });
    }
    ResourceRef {
        api_version: text(&["apiVersion"]).unwrap_or_default(),
        kind,
        namespace: text(&["metadata", "namespace"]),
        name: text(&["metadata", "name"])
            .or_else(|| text(&["metadata", "generateName"]))
            .unwrap_or_default(),
    }
}
