//! Test harnesses shared by the tests (and the ledger's bench) of the sostle crates, as a
//! dev-dependency rather than files included by path: real services started and stopped by
//! the test (an OCI registry, a Rekor stack, PostgreSQL), test certificates and keys, and the
//! self-granted exemption cases every door is held to.
//!
//! For tests only: a harness that cannot do its job panics, as a failed test should.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod keys;
pub mod mallory;
pub mod postgres;
pub mod registry;
