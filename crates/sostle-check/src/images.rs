//! `--verify-images` from the worker threads: the config's `images` policy checked at the
//! registry through `sostle-sign`'s checker, each call blocking on a small I/O runtime.

use std::sync::Arc;

use sostle_core::Layer;

/// `--verify-images`: the config's `images` policy checked at the registry, from the worker
/// threads (each call blocks on a small I/O runtime; verdicts are cached per digest).
pub struct ImageVerifier {
    checker: sostle_sign::checker::Checker,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for ImageVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageVerifier")
            .field("checker", &self.checker)
            .finish_non_exhaustive()
    }
}

/// Why image signatures cannot be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// The config names no signer, or no layer that requires one.
    #[error("--verify-images: the config requires no signatures (images.signers is empty, or images.require names no layer)")]
    NothingRequired,
    /// The config's image policy does not make a checker.
    #[error("invalid config: {0}")]
    Config(String),
    /// The I/O runtime did not start.
    #[error("the I/O runtime did not start: {0}")]
    Runtime(#[from] std::io::Error),
}

impl ImageVerifier {
    /// A verifier for the config's `images` policy; an error when it names no signers.
    pub fn new(policy: &sostle_core::images::ImagePolicy) -> Result<ImageVerifier, VerifierError> {
        if !policy.enabled() {
            return Err(VerifierError::NothingRequired);
        }
        let checker = sostle_sign::checker::Checker::new(
            policy,
            &sostle_core::mecipol::LockPolicy::default(),
            Arc::new(sostle_sign::checker::Silent),
        )
        .map_err(|e| VerifierError::Config(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(ImageVerifier { checker, runtime })
    }
}

impl sostle_core::images::ImageSignatures for ImageVerifier {
    fn check(&self, image: &str, layer: Layer) -> Option<sostle_core::images::ImageCheck> {
        self.runtime.block_on(self.checker.check(image, layer))
    }
}
