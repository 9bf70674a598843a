//! The extension point of the one pass: kinds of policy beyond the native suite. The engine
//! runs gate → native policies → every [`PolicySource`] in the order given → exemptions, and
//! nothing runs after it: image signatures and locks checked at a registry (`sostle-sign`,
//! the webhook's prefetched checks) and user Rego (`sostle-rego`) are sources. A source judges
//! one document and returns results in the engine's own types, so a new kind of policy is one
//! implementation of this trait, used by the CLI, the webhook, `verify` and the controller
//! alike.

use crate::config::Config;
use crate::layer::Layer;
use crate::manifest::Node;
use crate::report::{PolicyResult, ResourceRef};

/// What a source sees of one document.
#[derive(Debug, Clone, Copy)]
pub struct SourceInput<'a> {
    /// The document.
    pub root: &'a Node,
    /// What it is (kind, name, namespace), as the engine read it.
    pub resource: &'a ResourceRef,
    /// The layer it is judged at (`None`: unlayered, ungoverned or a document without `kind`).
    pub layer: Option<Layer>,
    /// The config the engine judges with.
    pub config: &'a Config,
}

/// A source could not judge a document (a Rego rule failed to evaluate): the document is
/// reported with this error and without the source's results.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A kind of policy the engine runs after its native checks.
pub trait PolicySource {
    /// The source's results for one document.
    fn judge(&self, input: &SourceInput<'_>) -> Result<Vec<PolicyResult>, SourceError>;

    /// Whether documents without `kind` (a values file, a CI workflow) are judged too, as
    /// conftest judges any document. A document no source judges this way is skipped.
    fn judges_kindless(&self) -> bool {
        false
    }

    /// Whether an exemption may concern the source's results. Image signatures and locks,
    /// like layer gates, are not judged against exemptions at all.
    fn exemptable(&self) -> bool {
        true
    }
}
