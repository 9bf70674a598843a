//! The admission webhook (SPEC §10): AdmissionReview v1 in, the engine's decision out — the
//! same decision `sostle test` reaches on the same object.
//!
//! `router()` serves `POST /validate/{layer}`, `POST /mutate/{layer}`, `GET /healthz`,
//! `GET /readyz` and `GET /metrics`. The layer comes from the path: the API server calls the
//! webhook entry whose `namespaceSelector` matched the namespace's `sostle-layer` label, so no
//! lookup is needed per request. Each request takes a semaphore permit and is evaluated on a
//! blocking thread with a time cap below the API server's timeout; errors map to HTTP in one
//! place ([`ApiError`]); an internal failure denies at L3 and above and admits with a warning
//! below (configurable). Config and signed MECIPOL profiles are swapped in atomically by
//! [`AppState::reload`]; a bad new config is refused and the old one kept.
//!
//! The house (as kubewarden's policy-server keeps it): [`settings`](crate::Settings) and the
//! door's constants ([`door`]), `state` (load, reload), `error` ([`ApiError`], [`LoadError`]),
//! `review` (decoding), `decide` (validation, Namespace relabelling, the chaos patch),
//! `handlers` (the routes), `metrics`, and [`serve`] (the thread-per-core TLS loop, reloads on
//! file change, drain on SIGTERM).

mod decide;
mod error;
mod handlers;
mod metrics;
mod review;
pub mod serve;
mod settings;
mod state;

pub use decide::*;
pub use error::*;
pub use handlers::*;
pub use metrics::*;
pub use review::*;
pub use settings::*;
pub use state::*;
