//! Evaluation: one resource (a parsed document) in, one [`ResourceReport`] out — the layer it
//! belongs to, the layer gate's result and one result per policy of the suite. No I/O: the
//! clock, namespace labels, the token secret and the lock registry all come in through
//! [`EvalContext`], so the CLI and the webhook reach the same decision on the same object.

use std::sync::Arc;

use jiff::Timestamp;

use crate::config::Config;
use crate::epoch;
use crate::exemption::{self, Annotations, ExemptionLedger};
use crate::gates;
use crate::layer::Layer;
use crate::manifest::{Node, Value};
use crate::mecipol::LockRegistry;
use crate::namespace::{NamespaceLabels, NoLabels, UNGOVERNED};
use crate::policies::{self, Check};
use crate::report::{
    LayerStatus, Outcome, PolicyResult, ResourceRef, ResourceReport, ShapeError, Violation,
    COMBINED, COMBINED_KIND, NOT_KUBERNETES_KIND,
};
use crate::source::{PolicySource, SourceInput};
use crate::suite::{Scope, Verdict};
use crate::workload::{Workload, WORKLOAD_KINDS};
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
    /// Who asks (the AdmissionReview's `userInfo`, `sostle test --as`): the L3 gate then
    /// holds only for a requester that acts for the crew member the workload names. `None`:
    /// the CLI without `--as` judges the label alone.
    pub requester: Option<&'a crate::config::Requester>,
    /// The kinds of policy run after the native checks, in order (image signatures, user
    /// Rego): see [`PolicySource`].
    pub sources: &'a [&'a dyn PolicySource],
}

impl<'a> EvalContext<'a> {
    /// A context at `now` with nothing else known: no layer flag, no namespace labels, no
    /// token secret, no locks, no ledger, no requester, no sources. Callers set the fields
    /// they have.
    pub fn new(now: Timestamp) -> EvalContext<'a> {
        EvalContext {
            now,
            layer_override: None,
            namespaces: &NoLabels,
            token_secret: None,
            locks: None,
            ledger: None,
            requester: None,
            sources: &[],
        }
    }
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("now", &self.now)
            .field("layer_override", &self.layer_override)
            .field("token_secret", &self.token_secret.map(|_| "<redacted>"))
            .field("locks", &self.locks.is_some())
            .field("ledger", &self.ledger.is_some())
            .field("requester", &self.requester)
            .field("sources", &self.sources.len())
            .finish()
    }
}

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
            gate_id: Arc::from(crate::report::LAYER_GATE),
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
        crate::namespace::namespace_layer(&self.config, ns, labels)
    }

    /// Whether a document is judged: it has a `kind`, or a source judges documents without
    /// one. Any other document is not a Kubernetes object and is skipped by the caller.
    pub fn judges(&self, root: &Node, ctx: &EvalContext<'_>) -> bool {
        !is_kindless(root) || ctx.sources.iter().any(|s| s.judges_kindless())
    }

    /// Evaluates one document — the one pass: the layer gate, the native policies, every
    /// source of `ctx` (image signatures, user Rego), then the exemptions. A document without
    /// `kind` is judged by the sources that judge such documents only, as `(no kind)`.
    pub fn evaluate(&self, root: &Node, ctx: &EvalContext<'_>) -> ResourceReport {
        if is_kindless(root) {
            let name = root
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Node::as_str)
                .map_or_else(String::new, str::to_string);
            return self.judge_by_sources(root, NOT_KUBERNETES_KIND, name, ctx);
        }
        let mut errors = Vec::new();
        let resource = resource_ref(root, &mut errors);
        if resource.kind == "Namespace" {
            if let Some(Err(m)) = namespace_object_layer(root) {
                errors.push(ShapeError {
                    path: String::new(),
                    pos: root.locate(&["metadata", "labels", "sostle-layer"]),
                    message: m.to_string(),
                });
            }
        }
        let epoch_day = self.epoch_day(ctx.now);
        let layer = self.resolve(root, &resource, ctx);
        let workload = if WORKLOAD_KINDS.contains(&resource.kind.as_str()) {
            Some(Workload::new(root, &resource.kind, &mut errors))
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
                        config: &self.config,
                        spec,
                        layer: l,
                        root,
                        namespace: resource.namespace.as_deref(),
                        namespaces: ctx.namespaces,
                        locks: ctx.locks,
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
        for source in ctx.sources {
            let input = SourceInput {
                root,
                resource: &resource,
                layer: layer.layer(),
                config: &self.config,
            };
            if let Some(mut found) = judged(*source, &input, &mut errors) {
                if source.exemptable() {
                    let (a, r) = (annotations.as_ref(), &resource);
                    self.judge_exemptions(a, r, layer, &mut found, ctx);
                }
                results.append(&mut found);
            }
        }
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

    /// Every document at once (`--combine`, conftest's combined input: an array of
    /// `{path, contents}`), judged by the sources that judge documents without `kind`, and
    /// reported as the one resource `Combined`.
    pub fn evaluate_combined(&self, input: &Node, ctx: &EvalContext<'_>) -> ResourceReport {
        let mut r = self.judge_by_sources(input, COMBINED_KIND, COMBINED.to_string(), ctx);
        r.pos = crate::manifest::Pos::default();
        r
    }

    /// A document that is no Kubernetes object, judged by the sources that judge such
    /// documents, unlayered (a user rule scoped to layers skips it).
    fn judge_by_sources(
        &self,
        root: &Node,
        kind: &str,
        name: String,
        ctx: &EvalContext<'_>,
    ) -> ResourceReport {
        let resource = ResourceRef {
            kind: kind.into(),
            name,
            ..ResourceRef::default()
        };
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for source in ctx.sources.iter().filter(|s| s.judges_kindless()) {
            let input = SourceInput {
                root,
                resource: &resource,
                layer: None,
                config: &self.config,
            };
            results.extend(judged(*source, &input, &mut errors).into_iter().flatten());
        }
        ResourceReport {
            resource,
            pos: root.pos,
            layer: LayerStatus::Unlayered,
            epoch_day: self.epoch_day(ctx.now),
            results,
            errors,
            exemption: None,
        }
    }

    /// Judges the resource's exemption (if it has one) for every failing result it concerns:
    /// those it lists, or all of them when `exempt-from` itself is missing (so the problem is
    /// reported rather than the annotations silently ignored).
    fn judge_exemptions(
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
        let gate = self.config.gate(l);
        let g = gates::GateCtx {
            config: &self.config,
            root,
            kind: &resource.kind,
            layer: l,
            token_secret: ctx.token_secret,
            now: ctx.now,
            requester: ctx.requester,
        };
        let violations = gates::check(gate, &g);
        let verdict = gates::verdict(gate);
        if violations.is_empty() {
            result(Outcome::Pass, violations)
        } else {
            result(verdict, violations)
        }
    }
}

/// A source's results for one document; its failure is the document's error.
fn judged(
    source: &dyn PolicySource,
    input: &SourceInput<'_>,
    errors: &mut Vec<ShapeError>,
) -> Option<Vec<PolicyResult>> {
    match source.judge(input) {
        Ok(found) => Some(found),
        Err(e) => {
            errors.push(ShapeError {
                path: String::new(),
                pos: input.root.pos,
                message: e.to_string(),
            });
            None
        }
    }
}

/// Whether a document has no `kind` (or is no mapping): not a Kubernetes object.
fn is_kindless(root: &Node) -> bool {
    root.as_map().is_none() || root.get("kind").is_none()
}

/// The `sostle-layer` label of a Namespace object: `None` when absent, `Some(Err)` when it is
/// not a layer.
pub fn namespace_object_layer(
    root: &Node,
) -> Option<Result<Layer, crate::namespace::NamespaceError>> {
    let v = root
        .get_path(&["metadata", "labels", "sostle-layer"])?
        .scalar_text()?;
    Some(Layer::parse(&v).ok_or(crate::namespace::NamespaceError::NotALayer(v)))
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
