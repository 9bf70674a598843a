//! sostle-core: the pure engine of sostle.
//!
//! Files and requests become a [`manifest::Node`] tree that keeps every field's line and column;
//! the [`eval::Engine`] judges each object against its layer's gate and the policy suite (a data
//! table, [`suite`], with config overrides, [`config`]); the results carry exact positions.
//! Nothing here touches the file system, the network, stdout or the clock: the CLI and the
//! admission webhook pass those in, and so reach the same decision on the same object.

pub mod approval;
pub mod config;
pub mod digest;
pub mod epoch;
pub mod eval;
pub mod exemption;
mod gates;
pub mod images;
pub mod kay;
pub mod layer;
pub mod manifest;
pub mod mecipol;
pub mod namespace;
pub mod policies;
pub mod report;
pub mod source;
pub mod suite;
pub mod token;
pub mod trendal;
pub mod trial;
pub mod workload;

pub use config::{Config, ConfigError};
pub use eval::{Engine, EvalContext};
pub use layer::Layer;
pub use report::{Outcome, PolicyResult, ResourceReport, Violation};
pub use source::{PolicySource, SourceError, SourceInput};
