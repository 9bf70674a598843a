//! How the webhook runs: its settings, limits and the door's routes and constants (the bootstrap
//! manifests use the same ones).

use std::path::PathBuf;
use std::time::Duration;

use sostle_core::layer::LayerSet;

/// Largest AdmissionReview body accepted (larger: 413).
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// Stack of the threads that decode and evaluate reviews: the decoder recurses once per level
/// of nesting (at most `sostle_core::manifest::MAX_JSON_DEPTH`), and debug builds use far larger
/// frames than release ones; the memory is reserved, not used, until needed.
pub const STACK_SIZE: usize = 8 << 20;
/// Longest warning sent back (the API server shows them to `kubectl` users).
pub const MAX_WARNING: usize = 120;

/// How the webhook runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SostleConfig file, if any (else the built-in default).
    pub config_path: Option<PathBuf>,
    /// Directory of signed MECIPOL profiles (`profile-NNN.json` + `.json.sig`).
    pub profiles_dir: Option<PathBuf>,
    /// Public key (SPKI PEM) the profiles must verify against.
    pub public_key: Option<PathBuf>,
    /// Token secret for the L4 gate.
    pub token_secret: Option<Vec<u8>>,
    /// Time cap on one evaluation (keep it below the webhook's `timeoutSeconds`).
    pub eval_timeout: Duration,
    /// Concurrent evaluations.
    pub max_concurrency: usize,
    /// Layers at which an internal error admits (with a warning) instead of denying.
    pub fail_open: LayerSet,
    /// Reviews up to this many bytes are evaluated on the request's own task: the native
    /// engine is linear in the object and allocation-light, so a small object costs microseconds
    /// and the hand-off to a blocking thread would cost more than the work. Larger reviews go to
    /// the blocking pool under the semaphore and the time cap. 0 sends every review there.
    pub inline_max_bytes: usize,
}

/// What the server and the manifests that point the API server at it must agree on, in one
/// place (`sostle bootstrap` writes its webhook configurations from these).
pub mod door {
    use sostle_core::layer::LayerSet;
    use sostle_core::Layer;

    /// The port the server listens on in the cluster.
    pub const PORT: u16 = 8443;
    /// The route of the Namespace entry (layer labels only for `layers.writers`).
    pub const NAMESPACES_ROUTE: &str = "/validate/namespaces";
    /// The Namespace entry's `timeoutSeconds` (it fails closed: a relabelling is refused when
    /// sostle cannot answer).
    pub const NAMESPACES_TIMEOUT_SECONDS: u32 = 5;

    /// Layers at which an internal error admits with a warning, and whose webhook entries are
    /// `failurePolicy: Ignore`: L0–L2. The others fail closed.
    pub fn fail_open() -> LayerSet {
        LayerSet::range(0, 2)
    }

    /// The route of a layer's entry: `/validate/L3`, `/mutate/trial`.
    pub fn route(kind: &str, layer: Layer) -> String {
        format!("/{kind}/{}", layer.as_str())
    }

    /// The API server's `timeoutSeconds` for a layer's entry: short where a slow answer is
    /// admitted anyway (fail open), longer where it would deny.
    pub fn timeout_seconds(layer: Layer) -> u32 {
        if fail_open().contains(layer) {
            2
        } else {
            5
        }
    }

    /// The time an image's signature check may take within a request: 60 % of the entry's
    /// timeout, so the evaluation and the answer still fit.
    pub fn image_budget(layer: Layer) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(timeout_seconds(layer)) * 600)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config_path: None,
            profiles_dir: None,
            public_key: None,
            token_secret: None,
            eval_timeout: Duration::from_millis(1500),
            max_concurrency: 64,
            fail_open: door::fail_open(),
            inline_max_bytes: 16 * 1024,
        }
    }
}
