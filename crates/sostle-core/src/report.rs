//! What an evaluation reports: the outcome of each (resource, policy) pair, the violations with their positions, the layer a resource was judged at, shape errors, and the report of one resource.

use std::sync::Arc;

use crate::exemption::{Annotations, Judgement};
use crate::layer::Layer;
use crate::manifest::Pos;

pub use crate::suite::LAYER_GATE;

/// The kind reported for a document that has none (a values file, a CI workflow) when a
/// source (user Rego) judges it.
pub const NOT_KUBERNETES_KIND: &str = "(no kind)";

/// The name of `--combine`'s one evaluation, as conftest names its input.
pub const COMBINED: &str = "Combined";
/// Its kind in reports.
pub const COMBINED_KIND: &str = "(combined)";

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
