//! The config's `locks` section (SPEC §7): the keys that sign MECIPOL locks and where the
//! webhook reads them. It lives beside the config that holds it; [`crate::mecipol`] re-exports
//! it with the lock set that uses it.

/// Where the webhook finds locks (`locks.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockSource {
    /// MECIPOL attestations beside each image in its registry (`sha256-<hex>.att`), signed by
    /// a lock key: the default once `locks.keys` is set.
    #[default]
    Registry,
    /// A profiles directory (`sostle webhook --profiles DIR`), for air-gapped clusters.
    Profiles,
}

/// The config's `locks` section: the keys that sign locks and where locks are read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockPolicy {
    /// Public keys (PKIX PEM) whose signatures make a lock.
    pub keys: Vec<String>,
    /// Where the webhook reads locks.
    pub source: LockSource,
}

impl LockPolicy {
    /// Whether the webhook reads locks from registries.
    pub fn from_registry(&self) -> bool {
        !self.keys.is_empty() && self.source == LockSource::Registry
    }
}
