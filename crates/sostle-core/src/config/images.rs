//! The config's `images` section as the engine keeps it (SPEC §11): who may sign, what each
//! layer requires, how to reach registries, the verdict cache. It lives beside the config that
//! holds it; [`crate::images`] re-exports it with the rule that reads it.

use std::collections::BTreeMap;

use crate::layer::{Layer, LayerSet};

/// The layers that require a signature when `images.require` is not given: L3–L7.
pub fn default_required_layers() -> LayerSet {
    LayerSet::range(3, 7)
}

/// Who may sign, what each layer requires, and how to reach registries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImagePolicy {
    /// The signers, by name.
    pub signers: Vec<SignerSpec>,
    /// Rekor public keys (PEM) whose bundles give keyless signatures their time.
    pub rekor_keys: Vec<String>,
    /// Per layer, the names of the signers any one of which must have signed (absent: none
    /// required at that layer).
    pub require: BTreeMap<Layer, Vec<String>>,
    /// How to reach registries.
    pub registries: RegistrySpec,
    /// The verdict cache.
    pub cache: CacheSpec,
}

impl ImagePolicy {
    /// The signers required at `layer` (any one suffices); empty when none is required.
    pub fn required_at(&self, layer: Layer) -> &[String] {
        self.require.get(&layer).map_or(&[], Vec::as_slice)
    }

    /// Whether any layer requires a signature.
    pub fn enabled(&self) -> bool {
        self.require.values().any(|v| !v.is_empty())
    }

    /// The default requirement: every signer, at L3–L7.
    pub fn default_require(signers: &[SignerSpec]) -> BTreeMap<Layer, Vec<String>> {
        if signers.is_empty() {
            return BTreeMap::new();
        }
        let names: Vec<String> = signers.iter().map(|s| s.name.clone()).collect();
        default_required_layers()
            .iter()
            .map(|l| (l, names.clone()))
            .collect()
    }
}

/// One signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSpec {
    /// The name layers refer to.
    pub name: String,
    /// What proves the signer.
    pub source: SignerSource,
}

/// What proves a signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerSource {
    /// A public key (PKIX PEM, `cosign.pub`).
    Key {
        /// The PEM text.
        pem: String,
    },
    /// A keyless identity: a Fulcio certificate for `identity`, issued after `issuer` vouched.
    Keyless {
        /// The certificate's email or URI subject alternative name, exactly.
        identity: String,
        /// The OIDC issuer, exactly.
        issuer: String,
        /// The Fulcio root certificates (PEM).
        roots: Vec<String>,
    },
}

/// How to reach registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    /// Hosts (`host:port`) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Extra CA certificates (PEM).
    pub ca: Vec<String>,
    /// The limit on each registry call, in seconds.
    pub timeout_seconds: u32,
}

impl Default for RegistrySpec {
    fn default() -> RegistrySpec {
        RegistrySpec {
            insecure: Vec::new(),
            ca: Vec::new(),
            timeout_seconds: 3,
        }
    }
}

/// The verdict cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSpec {
    /// How long a verdict (and a tag's digest) is used before it is asked again, in seconds.
    pub ttl_seconds: u32,
    /// The most verdicts kept.
    pub entries: u32,
}

impl Default for CacheSpec {
    fn default() -> CacheSpec {
        CacheSpec {
            ttl_seconds: 300,
            entries: 10_000,
        }
    }
}
