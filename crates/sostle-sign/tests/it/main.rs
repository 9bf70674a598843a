//! Integration tests of sostle-sign: real cosign keys and signatures from `../shared/fixtures`
//! (made by cosign itself; provenance in fixtures/SOURCES.md), and a real OCI registry.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixtures;
mod registry;
mod rekor;
