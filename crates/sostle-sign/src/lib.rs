//! Image signatures the way cosign makes them (SPEC §11): keys in cosign's formats, the
//! simple-signing payload, verification by key or by a keyless (Fulcio) identity with a Rekor
//! bundle checked offline, and the OCI registry the signatures live in (`sha256-<hex>.sig`).
//!
//! The pure parts (`keys`, `payload`, `verify`) do no I/O; `registry` talks to registries
//! through `oci-client`, with a timeout on every call; `checker` applies the config's
//! `images` policy with a verdict cache, for the CLI and the webhook alike.

pub mod attest;
pub mod bundle;
pub mod checker;
pub mod keys;
pub mod payload;
pub mod registry;
pub mod rekor;
pub mod verify;

pub use verify::{verify, RekorKey, SignatureLayer, Signer, Trust, Verified, VerifyError};

/// reqwest leaves rustls' crypto to the application; ring is the provider the rest of sostle
/// uses. Installing it twice is harmless.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
