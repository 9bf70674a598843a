//! Integration tests of sostle-sign: real cosign keys and signatures from `../shared/fixtures`
//! (made by cosign itself; provenance in fixtures/SOURCES.md), and a real OCI registry.

mod fixtures;
