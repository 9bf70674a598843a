//! Integration tests of the engine: policy cases as data files (one YAML per case) picked up
//! by a glob runner, and properties of the loader.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cases;
mod exemptions;
mod loader;
use sostle_test_support::keys as testkeys;
