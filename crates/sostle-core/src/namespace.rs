//! Which layer a namespace is: its `sostle-layer` label (from the input or the cluster), the config's assignment, or the default; the system namespaces are never governed.

use crate::config::Config;
use crate::layer::Layer;
use crate::report::LayerStatus;

/// Namespaces that are never governed.
pub const UNGOVERNED: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// A Namespace object's `sostle-layer` label that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamespaceError {
    /// The label names no layer.
    #[error("label sostle-layer `{0}` is not a layer (L0…L7 or trial)")]
    NotALayer(String),
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

/// The layer of namespace `ns`: never governed for the system namespaces, else its label, the
/// config's assignment (explicit, a layer's namespace, the name pattern), the config's default
/// layer, or unlayered.
pub fn namespace_layer(config: &Config, ns: &str, labels: &dyn NamespaceLabels) -> LayerStatus {
    if UNGOVERNED.contains(&ns) {
        return LayerStatus::Ungoverned;
    }
    if let Some(l) = labels.label_layer(ns) {
        return LayerStatus::Layer(l);
    }
    if let Some(l) = config.namespace_layer(ns) {
        return LayerStatus::Layer(l);
    }
    match config.default_layer {
        Some(l) => LayerStatus::Layer(l),
        None => LayerStatus::Unlayered,
    }
}
