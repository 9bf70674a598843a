//! Checking images against the config's `images` policy, with a cache: tag → digest at the
//! registry, the `.sig` signatures, verification by the signers a layer requires.
//!
//! Verdicts are cached per (digest, the set of signers asked for) with a TTL and a size bound;
//! tag resolutions are cached with the same TTL. When the registry cannot be asked, a cached
//! verdict (even one past its TTL) is served rather than failing: an outage does not turn
//! every admitted image into a denial.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sostle_core::images::{ImageCheck, ImagePolicy, SignerSource};
use sostle_core::mecipol::{LockPolicy, Profile};
use sostle_core::Layer;

use crate::registry::{Credentials, Options, Registry, RegistryError, Resolved};
use crate::verify::{RekorKey, Signer, Trust};

/// Where the checker reports what it does (metrics); every method has a no-op default.
pub trait Observe: Send + Sync {
    /// A verdict came from the cache (`"hit"`, `"stale"` during an outage) or not (`"miss"`).
    fn cache(&self, _result: &'static str) {}
    /// A registry call took `seconds`; `ok` unless it failed.
    fn registry(&self, _seconds: f64, _ok: bool) {}
    /// A verification ended: `"verified"`, `"unsigned"` or `"unavailable"`.
    fn verdict(&self, _result: &'static str) {}
}

/// Observes nothing.
#[derive(Debug)]
pub struct Silent;
impl Observe for Silent {}

struct Entry<T> {
    value: T,
    at: Instant,
    ttl: Duration,
}

/// The longest a denial is cached: an image signed after it was refused is admitted soon.
pub const DENIAL_TTL: Duration = Duration::from_secs(30);

/// A bounded map whose entries age out.
struct Cache<T> {
    map: HashMap<String, Entry<T>>,
    ttl: Duration,
    max: usize,
}

impl<T: Clone> Cache<T> {
    fn new(ttl: Duration, max: usize) -> Cache<T> {
        Cache {
            map: HashMap::new(),
            ttl,
            max: max.max(1),
        }
    }

    /// The value and whether it is still fresh.
    fn get(&self, key: &str) -> Option<(T, bool)> {
        self.map
            .get(key)
            .map(|e| (e.value.clone(), e.at.elapsed() < e.ttl))
    }

    fn put(&mut self, key: String, value: T) {
        let ttl = self.ttl;
        self.put_for(key, value, ttl);
    }

    /// Keeps a verdict: one that admits for the TTL, a denial for at most [`DENIAL_TTL`], so
    /// an image signed (or locked) after it was refused is admitted soon.
    fn put_judged(&mut self, key: String, value: T, admits: bool) {
        let ttl = if admits {
            self.ttl
        } else {
            self.ttl.min(DENIAL_TTL)
        };
        self.put_for(key, value, ttl);
    }

    fn put_for(&mut self, key: String, value: T, ttl: Duration) {
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            self.map.retain(|_, e| e.at.elapsed() < e.ttl);
            if self.map.len() >= self.max {
                if let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.at)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        self.map.insert(
            key,
            Entry {
                value,
                at: Instant::now(),
                ttl,
            },
        );
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A policy that cannot be used (a key or root that does not parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// The config key, e.g. `images.signers[1].fulcioRoots[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// What an image's attestation manifest proves: the MECIPOL profiles whose attestations
/// verified, and the others with the reason each was refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockFindings {
    /// Verified profiles (`image` as the workload writes it).
    pub profiles: Vec<Profile>,
    /// Refused attestations and unreadable layers, with the reason.
    pub refused: Vec<String>,
}

/// Checks images for the layers of one policy: signatures (`images`) and MECIPOL attestations
/// (`locks`), through one registry client and its caches.
pub struct Checker {
    registry: Registry,
    signers: Vec<Signer>,
    rekor: Vec<RekorKey>,
    policy: ImagePolicy,
    locks: LockPolicy,
    lock_keys: Vec<p256::ecdsa::VerifyingKey>,
    digests: Mutex<Cache<Resolved>>,
    verdicts: Mutex<Cache<ImageCheck>>,
    attested: Mutex<Cache<LockFindings>>,
    observe: Arc<dyn Observe>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("signers", &self.signers.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Builds the signers of a policy (keys parsed, roots parsed).
pub fn signers(policy: &ImagePolicy) -> Result<(Vec<Signer>, Vec<RekorKey>), PolicyError> {
    let mut out = Vec::new();
    for (i, s) in policy.signers.iter().enumerate() {
        let path = format!("images.signers[{i}]");
        out.push(match &s.source {
            SignerSource::Key { pem } => Signer::Key {
                name: s.name.clone(),
                key: crate::keys::load_public_key(pem.as_bytes()).map_err(|e| PolicyError {
                    path: format!("{path}.key"),
                    message: e.to_string(),
                })?,
            },
            SignerSource::Keyless {
                identity,
                issuer,
                roots,
            } => {
                let mut certs = Vec::new();
                for (j, pem) in roots.iter().enumerate() {
                    let c =
                        x509_cert::Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
                            PolicyError {
                                path: format!("{path}.fulcioRoots[{j}]"),
                                message: format!("not PEM X.509 certificates ({e})"),
                            }
                        })?;
                    certs.extend(c);
                }
                Signer::Keyless {
                    name: s.name.clone(),
                    identity: identity.clone(),
                    issuer: issuer.clone(),
                    roots: certs,
                }
            }
        });
    }
    let mut rekor = Vec::new();
    for (i, pem) in policy.rekor_keys.iter().enumerate() {
        rekor.push(RekorKey::from_pem(pem.as_bytes()).map_err(|e| PolicyError {
            path: format!("images.rekorKeys[{i}]"),
            message: e.to_string(),
        })?);
    }
    Ok((out, rekor))
}

impl Checker {
    /// A checker for `policy` and `locks`, with credentials from the Docker config.
    pub fn new(
        policy: &ImagePolicy,
        locks: &LockPolicy,
        observe: Arc<dyn Observe>,
    ) -> Result<Checker, PolicyError> {
        Checker::with_credentials(policy, locks, Credentials::DockerConfig, observe)
    }

    /// A checker for `policy` and `locks` with the given credentials.
    pub fn with_credentials(
        policy: &ImagePolicy,
        locks: &LockPolicy,
        credentials: Credentials,
        observe: Arc<dyn Observe>,
    ) -> Result<Checker, PolicyError> {
        let (signers, rekor) = signers(policy)?;
        let mut lock_keys = Vec::new();
        for (i, pem) in locks.keys.iter().enumerate() {
            lock_keys.push(crate::keys::load_public_key(pem.as_bytes()).map_err(|e| {
                PolicyError {
                    path: format!("locks.keys[{i}]"),
                    message: e.to_string(),
                }
            })?);
        }
        let registry = Registry::new(Options {
            insecure: policy.registries.insecure.clone(),
            extra_ca_pem: policy
                .registries
                .ca
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .collect(),
            timeout: Duration::from_secs(u64::from(policy.registries.timeout_seconds)),
            credentials,
        })
        .map_err(|e| PolicyError {
            path: "images.registries".into(),
            message: e.to_string(),
        })?;
        let ttl = Duration::from_secs(u64::from(policy.cache.ttl_seconds));
        let max = usize::try_from(policy.cache.entries).unwrap_or(usize::MAX);
        Ok(Checker {
            registry,
            signers,
            rekor,
            policy: policy.clone(),
            locks: locks.clone(),
            lock_keys,
            digests: Mutex::new(Cache::new(ttl, max)),
            verdicts: Mutex::new(Cache::new(ttl, max)),
            attested: Mutex::new(Cache::new(ttl, max)),
            observe,
        })
    }

    /// The policies this checker applies.
    pub fn policy(&self) -> (&ImagePolicy, &LockPolicy) {
        (&self.policy, &self.locks)
    }

    /// Whether locks are read from registries.
    pub fn reads_locks(&self) -> bool {
        self.locks.from_registry()
    }

    /// The MECIPOL attestations of `image`, verified with the lock keys; `Err` (the reason)
    /// when its registry cannot be asked and nothing is cached.
    pub async fn locks(&self, image: &str) -> Result<LockFindings, Unreachable> {
        let resolved = match self.resolve(image).await {
            Ok(r) => r,
            Err(e) if e.is_outage() => return Err(Unreachable(e.to_string())),
            Err(e) => {
                return Ok(LockFindings {
                    profiles: Vec::new(),
                    refused: vec![format!("cannot be resolved: {e}")],
                })
            }
        };
        let key = resolved.by_digest();
        let cached = self.attested.lock().ok().and_then(|c| c.get(&key));
        if let Some((v, true)) = &cached {
            self.observe.cache("hit");
            return Ok(relabel(v, image));
        }
        let started = Instant::now();
        let found = self.registry.attestations(&resolved).await;
        self.observe
            .registry(started.elapsed().as_secs_f64(), found.is_ok());
        let findings = match found {
            Err(e) if e.is_outage() => {
                return match cached {
                    Some((v, _)) => {
                        self.observe.cache("stale");
                        Ok(relabel(&v, image))
                    }
                    None => Err(Unreachable(e.to_string())),
                }
            }
            Err(e) => LockFindings {
                profiles: Vec::new(),
                refused: vec![format!("attestations unreadable: {e}")],
            },
            Ok(atts) => {
                let mut f = LockFindings::default();
                for (i, a) in atts.layers.iter().enumerate() {
                    if a.predicate_type
                        .as_deref()
                        .is_some_and(|t| t != crate::attest::MECIPOL_PREDICATE)
                    {
                        continue; // another kind of attestation (SBOM, provenance): not ours to judge
                    }
                    match crate::attest::mecipol_profile(
                        &a.envelope,
                        &self.lock_keys,
                        image,
                        &resolved.digest,
                    ) {
                        Ok(p) => f.profiles.push(p),
                        Err(why) => f.refused.push(format!("attestation {}: {why}", i + 1)),
                    }
                }
                f.refused.extend(atts.unreadable);
                f
            }
        };
        self.observe.cache("miss");
        if let Ok(mut c) = self.attested.lock() {
            let admits = !findings.profiles.is_empty();
            c.put_judged(key, findings.clone(), admits);
        }
        Ok(findings)
    }

    /// Whether `layer` requires a signature.
    pub fn required(&self, layer: Layer) -> bool {
        !self.policy.required_at(layer).is_empty()
    }

    /// The number of cached verdicts.
    pub fn cached(&self) -> usize {
        self.verdicts.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn trust(&self, names: &[String]) -> Trust {
        Trust {
            signers: self
                .signers
                .iter()
                .filter(|s| names.iter().any(|n| n == s.name()))
                .cloned()
                .collect(),
            rekor: self.rekor.clone(),
        }
    }

    async fn resolve(&self, image: &str) -> Result<Resolved, RegistryError> {
        let cached = self.digests.lock().ok().and_then(|c| c.get(image));
        if let Some((r, true)) = &cached {
            return Ok(r.clone());
        }
        let started = Instant::now();
        match self.registry.resolve(image).await {
            Ok(r) => {
                if !image.contains('@') {
                    self.observe.registry(started.elapsed().as_secs_f64(), true);
                }
                if let Ok(mut c) = self.digests.lock() {
                    c.put(image.to_string(), r.clone());
                }
                Ok(r)
            }
            Err(e) => {
                self.observe
                    .registry(started.elapsed().as_secs_f64(), false);
                match cached {
                    Some((r, _)) if e.is_outage() => Ok(r),
                    _ => Err(e),
                }
            }
        }
    }

    /// Checks `image` for `layer`; `None` when the layer requires no signature.
    pub async fn check(&self, image: &str, layer: Layer) -> Option<ImageCheck> {
        let names = self.policy.required_at(layer);
        if names.is_empty() {
            return None;
        }
        let check = self.check_with(image, names).await;
        self.observe.verdict(match check {
            ImageCheck::Verified { .. } => "verified",
            ImageCheck::Unsigned(_) => "unsigned",
            ImageCheck::Unavailable(_) => "unavailable",
        });
        Some(check)
    }

    async fn check_with(&self, image: &str, names: &[String]) -> ImageCheck {
        let resolved = match self.resolve(image).await {
            Ok(r) => r,
            Err(e) if e.is_outage() => {
                return ImageCheck::Unavailable(format!("image {image}: {e}"))
            }
            Err(e) => return ImageCheck::Unsigned(format!("image {image} cannot be checked: {e}")),
        };
        let key = format!("{}|{}", resolved.by_digest(), names.join(","));
        let cached = self.verdicts.lock().ok().and_then(|c| c.get(&key));
        if let Some((v, true)) = &cached {
            self.observe.cache("hit");
            return v.clone();
        }
        let trust = self.trust(names);
        let started = Instant::now();
        let found = self.registry.signatures(&resolved).await;
        self.observe
            .registry(started.elapsed().as_secs_f64(), found.is_ok());
        let verdict = match found {
            Err(e) if e.is_outage() => {
                if let Some((v, _)) = cached {
                    self.observe.cache("stale");
                    return v;
                }
                self.observe.cache("miss");
                return ImageCheck::Unavailable(format!("image {image}: {e}"));
            }
            Err(e) => {
                ImageCheck::Unsigned(format!("image {image} has no readable signatures: {e}"))
            }
            Ok(sigs) => judge(image, &resolved, &sigs, &trust),
        };
        self.observe.cache("miss");
        if let Ok(mut c) = self.verdicts.lock() {
            let admits = matches!(verdict, ImageCheck::Verified { .. });
            c.put_judged(key, verdict.clone(), admits);
        }
        verdict
    }
}

/// Cached findings for the reference `image` (the cache is keyed by digest; the lock set
/// matches on the reference the workload writes).
fn relabel(f: &LockFindings, image: &str) -> LockFindings {
    let mut f = f.clone();
    for p in &mut f.profiles {
        p.image = image.to_string();
    }
    f
}

/// The verdict on the signatures found for an image.
pub fn judge(
    image: &str,
    resolved: &Resolved,
    sigs: &crate::registry::Signatures,
    trust: &Trust,
) -> ImageCheck {
    let wanted: Vec<String> = trust.signers.iter().map(Signer::describe).collect();
    let mut why = Vec::new();
    for (i, l) in sigs.layers.iter().enumerate() {
        match crate::verify(l, &resolved.digest, trust) {
            Ok(v) => {
                return ImageCheck::Verified {
                    digest: resolved.digest.clone(),
                    by: v.by,
                }
            }
            Err(e) => why.push(format!("signature {}: {e}", i + 1)),
        }
    }
    why.extend(sigs.unreadable.iter().cloned());
    let head = format!("image {image} has no signature by {}", wanted.join(" or "));
    if sigs.layers.is_empty() && sigs.unreadable.is_empty() {
        ImageCheck::Unsigned(format!(
            "{head} (it has no signatures at {})",
            resolved.signature_tag()
        ))
    } else {
        ImageCheck::Unsigned(format!("{head} ({})", why.join("; ")))
    }
}

/// An image's registry could not be asked, and nothing was cached: why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest_first() {
        let mut c: Cache<u32> = Cache::new(Duration::from_secs(300), 3);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            c.put(k.into(), u32::try_from(i).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(2));
        }
        c.put("d".into(), 3);
        assert_eq!(c.len(), 3);
        assert!(c.get("a").is_none(), "the oldest went");
        assert_eq!(c.get("d"), Some((3, true)));
        // Replacing an entry does not evict another.
        c.put("b".into(), 9);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("b"), Some((9, true)));
    }

    #[test]
    fn a_denial_is_kept_at_most_thirty_seconds() {
        let mut c: Cache<u32> = Cache::new(Duration::from_secs(300), 8);
        c.put_judged("admitted".into(), 1, true);
        c.put_judged("denied".into(), 0, false);
        let ttl = |k: &str| c.map.get(k).map(|e| e.ttl);
        assert_eq!(ttl("admitted"), Some(Duration::from_secs(300)));
        assert_eq!(ttl("denied"), Some(DENIAL_TTL));
        // A TTL below 30 s applies to denials too.
        let mut short: Cache<u32> = Cache::new(Duration::from_secs(5), 8);
        short.put_judged("denied".into(), 0, false);
        assert_eq!(
            short.map.get("denied").map(|e| e.ttl),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn stale_entries_stay_readable_as_stale_until_evicted() {
        let mut c: Cache<u32> = Cache::new(Duration::from_secs(300), 2);
        c.put_for("denied".into(), 1, Duration::ZERO);
        assert_eq!(c.get("denied"), Some((1, false)), "kept, but not fresh");
        c.put("x".into(), 2);
        // Full: the expired entry goes before any fresh one.
        c.put("y".into(), 3);
        assert!(c.get("denied").is_none());
        assert_eq!(c.len(), 2);
    }
}
