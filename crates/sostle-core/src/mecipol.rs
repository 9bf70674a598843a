//! The MECIPOL lock (SPEC §7): a signed profile per locked image, and the lock set that answers
//! `deny_no_mecipol_image`'s registry half — does the image hold a lock authorizing the layer,
//! and is it not older than the workload's current lock. One home for the profile: the ledger
//! stores it, the webhook loads it from a profiles directory, both judge it here.

pub use crate::config::locks::{LockPolicy, LockSource};
use crate::layer::Layer;

/// The body of a MECIPOL profile: SPEC §7's fields plus `image_digest`, what `sostle lock`
/// signs (over its canonical JSON), stores, attaches and the webhook reads back. One type for
/// all of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileBody {
    /// `profile-001`.
    pub profile_id: String,
    /// The locked image as the trial named it.
    pub image: String,
    /// The digest the trial ran (`sha256:…`), when known.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// Epoch day of the lock.
    pub gamma1_epoch: i64,
    /// DENY policies that passed.
    pub policies_passed: Vec<String>,
    /// Policies that failed but were validly exempted.
    pub policies_exempted: Vec<String>,
    /// Those exemptions.
    pub exemptions: Vec<ProfileExemption>,
    /// Hours Falco watched the trial without a violation.
    pub falco_clean_hours: i64,
    /// CRITICAL CVEs Trivy reported.
    pub trivy_critical_cves: u64,
    /// The Rekor entry's URL, or null offline.
    pub rekor_entry: Option<String>,
    /// When it was locked (RFC 3339).
    pub locked_at: String,
    /// The layers whose DENY policies all pass or are exempted (never L6).
    pub sostle_layers_authorized: Vec<String>,
    /// The trial it came from.
    pub trial: String,
    /// The trial's target layer.
    pub target: String,
}

/// An exemption recorded in a profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProfileExemption {
    /// The exempted policy.
    pub policy: String,
    /// The trial the exemption's reason names.
    pub reason: String,
    /// Its expiry date (`YYYY-MM-DD`).
    pub expires: String,
}

impl ProfileBody {
    /// The body as JSON (field order as above).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The bytes that are signed: canonical JSON (sorted keys, no whitespace).
    pub fn canonical(&self) -> String {
        crate::digest::canonical_json(&self.to_json())
    }

    /// The base64 DER ECDSA P-256 signature over [`ProfileBody::canonical`].
    pub fn sign(&self, key: &p256::ecdsa::SigningKey) -> String {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = key.sign(self.canonical().as_bytes());
        data_encoding::BASE64.encode(sig.to_der().as_bytes())
    }

    /// Reads a body, saying which field is missing or wrong.
    pub fn decode(v: &serde_json::Value) -> Result<ProfileBody, ProfileDecodeError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            ProfileDecodeError {
                field: if path == "." { String::new() } else { path },
                message: e.inner().to_string(),
            }
        })
    }

    /// The stored form: this body with its signature.
    pub fn into_profile(self, signature: String) -> Profile {
        Profile {
            id: self.profile_id.clone(),
            trial: self.trial.clone(),
            image: self.image.clone(),
            locked_at: self.locked_at.clone(),
            profile: self.to_json(),
            signature,
        }
    }
}

/// A profile body that does not decode: the field (empty for the whole body) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
#[non_exhaustive]
pub struct ProfileDecodeError {
    /// The field path (`sostle_layers_authorized[0]`), empty when the body itself is wrong.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why a stored profile is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileRefusal {
    /// The `.sig` text is not base64.
    #[error("signature is not base64: {0}")]
    NotBase64(data_encoding::DecodeError),
    /// The signature bytes are not a DER ECDSA signature.
    #[error("signature is not DER ECDSA: {0}")]
    NotDer(p256::ecdsa::Error),
    /// The signature does not verify with the key over the bytes.
    #[error("signature does not verify against the public key")]
    DoesNotVerify,
    /// The bytes are not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The JSON is not a profile body.
    #[error("not a MECIPOL profile: {0}")]
    NotProfile(ProfileDecodeError),
}

/// Checks a stored profile (a profiles directory's `profile-NNN.json` and its `.sig`): the
/// signature verifies with `key` over the exact bytes, and they decode as a profile.
pub fn verify_stored(
    bytes: &[u8],
    signature_b64: &str,
    key: &p256::ecdsa::VerifyingKey,
) -> Result<Profile, ProfileRefusal> {
    use p256::ecdsa::signature::Verifier as _;
    let der = data_encoding::BASE64
        .decode(signature_b64.trim().as_bytes())
        .map_err(ProfileRefusal::NotBase64)?;
    let sig = p256::ecdsa::Signature::from_der(&der).map_err(ProfileRefusal::NotDer)?;
    key.verify(bytes, &sig)
        .map_err(|_| ProfileRefusal::DoesNotVerify)?;
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(ProfileRefusal::NotJson)?;
    let body = ProfileBody::decode(&json).map_err(ProfileRefusal::NotProfile)?;
    let mut p = body.into_profile(signature_b64.trim().to_string());
    // Keep the bytes' own JSON (fields this version does not know stay visible).
    p.profile = json;
    Ok(p)
}

/// A MECIPOL profile and its signature, as the ledger and a profiles directory hold it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// `profile-001`.
    pub id: String,
    /// The trial it came from.
    pub trial: String,
    /// The locked image.
    pub image: String,
    /// The profile JSON (SPEC §7).
    pub profile: serde_json::Value,
    /// Base64 DER ECDSA P-256 signature over the profile's canonical JSON.
    pub signature: String,
    /// When it was locked.
    pub locked_at: String,
}

impl Profile {
    /// The sequence number of `profile-NNN`.
    pub fn seq(&self) -> Option<u64> {
        profile_seq(&self.id)
    }

    /// The digest the profile locks (`image_digest`), when it names one.
    pub fn digest(&self) -> Option<&str> {
        self.profile
            .get("image_digest")
            .and_then(serde_json::Value::as_str)
    }

    /// Whether this profile locks `image` as a workload writes it: the same reference, or the
    /// same repository pinned to the locked digest (`repo:tag@sha256:…`, `repo@sha256:…`).
    pub fn locks_image(&self, image: &str) -> bool {
        if self.image == image {
            return true;
        }
        let (Some(digest), Some((name, d))) = (self.digest(), image.rsplit_once('@')) else {
            return false;
        };
        let repo = |s: &str| crate::images::parse_image(s).name.to_string();
        d == digest && repo(name) == repo(&self.image)
    }

    /// Whether the profile's `sostle_layers_authorized` lists `layer`.
    pub fn authorizes(&self, layer: Layer) -> bool {
        self.profile
            .get("sostle_layers_authorized")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|a| a.iter().any(|l| l.as_str() == Some(layer.as_str())))
    }
}

/// Why `sostle promote` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromotionRefusal {
    /// The layer's gate is closed (L6 in the built-in table): nothing is promoted there.
    #[error("{0} is closed: nothing is ever promoted there")]
    Closed(Layer),
    /// The trial namespace is entered by a burst, not a promotion.
    #[error("promote targets a layer; bursting into chaos-trial is `sostle trial burst`")]
    IntoTrial,
    /// The profile does not list the layer.
    #[error("{profile} does not authorize {layer} (it authorizes {})", authorized_list(.authorized))]
    NotAuthorized {
        /// `profile-NNN`.
        profile: String,
        /// The layer asked for.
        layer: Layer,
        /// The layers it lists.
        authorized: Vec<String>,
    },
    /// A container of the workload runs an image the profile does not lock.
    #[error("{name} runs {}, but {profile} locks {image}", .images.join(", "))]
    OtherImage {
        /// The workload's name.
        name: String,
        /// Its images.
        images: Vec<String>,
        /// `profile-NNN`.
        profile: String,
        /// The image the profile locks.
        image: String,
    },
    /// The workload already carries a newer lock.
    #[error("downgrade: the workload is locked by {current}, newer than {profile} ({image})")]
    Downgrade {
        /// The profile on the workload.
        current: String,
        /// The older profile asked for.
        profile: String,
        /// The image the profile locks.
        image: String,
    },
}

fn authorized_list(layers: &[String]) -> String {
    if layers.is_empty() {
        "no layer".to_string()
    } else {
        layers.join(", ")
    }
}

/// Whether anything may be promoted to `layer` with `body` (SPEC §7): never to a layer whose
/// gate is closed or to the trial namespace, and only to a layer the profile authorizes.
pub fn check_promotion_layer(
    body: &ProfileBody,
    layer: Layer,
    config: &crate::config::Config,
) -> Result<(), PromotionRefusal> {
    match layer {
        Layer::Trial => Err(PromotionRefusal::IntoTrial),
        _ if config.gate(layer) == crate::suite::Gate::Closed => {
            Err(PromotionRefusal::Closed(layer))
        }
        _ if body
            .sostle_layers_authorized
            .iter()
            .any(|l| l == layer.as_str()) =>
        {
            Ok(())
        }
        _ => Err(PromotionRefusal::NotAuthorized {
            profile: body.profile_id.clone(),
            layer,
            authorized: body.sostle_layers_authorized.clone(),
        }),
    }
}

/// Whether the workload `obj` may be promoted with `profile`: every container runs the locked
/// image (or the workload would fail `deny_no_mecipol_image` where it lands), and the
/// workload is not locked by a newer profile already.
pub fn check_promotion(profile: &Profile, obj: &serde_json::Value) -> Result<(), PromotionRefusal> {
    let images = crate::workload::json_images(obj);
    let meta = obj.get("metadata");
    if !images.is_empty() && !images.iter().all(|i| profile.locks_image(i)) {
        return Err(PromotionRefusal::OtherImage {
            name: meta
                .and_then(|m| m.get("name"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_string(),
            images,
            profile: profile.id.clone(),
            image: profile.image.clone(),
        });
    }
    let current = meta
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("mecipol-profile"))
        .and_then(serde_json::Value::as_str);
    if let Some(current) = current {
        if let (Some(cur), Some(new)) = (profile_seq(current), profile.seq()) {
            if new < cur {
                return Err(PromotionRefusal::Downgrade {
                    current: current.to_string(),
                    profile: profile.id.clone(),
                    image: profile.image.clone(),
                });
            }
        }
    }
    Ok(())
}

fn profile_seq(id: &str) -> Option<u64> {
    id.strip_prefix("profile-")?.parse().ok()
}

/// Why an image's lock does not hold at a layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockProblem {
    /// The image holds no lock at all.
    #[error(
        "image {image} holds no MECIPOL lock in the lock registry (no signed profile locks it)"
    )]
    NoLock {
        /// The image.
        image: String,
    },
    /// It holds locks, none authorizing the layer.
    #[error("no lock of image {image} authorizes {layer} ({})", profiles.join(", "))]
    NotAuthorized {
        /// The image.
        image: String,
        /// The layer.
        layer: Layer,
        /// Its locks.
        profiles: Vec<String>,
    },
    /// The image's registry holds no verified MECIPOL attestation for its digest.
    #[error("image {image} holds no verified MECIPOL attestation in its registry{}", if refused.is_empty() { String::new() } else { format!(" ({})", refused.join("; ")) })]
    NoAttestedLock {
        /// The image.
        image: String,
        /// Attestations found but refused, with the reason.
        refused: Vec<String>,
    },
    /// The registry holding the image's attestations could not be asked.
    #[error("the lock of image {image} cannot be checked: {reason}")]
    Unavailable {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
    /// The workload names a current lock the registry does not hold.
    #[error("mecipol-profile {current} is not in the lock registry")]
    UnknownProfile {
        /// The `mecipol-profile` annotation.
        current: String,
    },
    /// The image's newest lock is older than the workload's current lock of another image.
    #[error("downgrade: image {image} (locked in profile-{newest:03}) is older than the workload's current lock {current} ({current_image})")]
    Downgrade {
        /// The image.
        image: String,
        /// Its newest lock's sequence number.
        newest: u64,
        /// The workload's current lock.
        current: String,
        /// The image of that lock.
        current_image: String,
    },
}

/// Verified profiles, consulted as the lock registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockSet {
    /// The profiles.
    pub profiles: Vec<Profile>,
}

impl LockSet {
    /// The lock set of `profiles` (verified by the caller).
    pub fn new(profiles: Vec<Profile>) -> LockSet {
        LockSet { profiles }
    }

    /// The newest lock of `image`: highest sequence, then latest `locked_at`.
    pub fn newest_lock(&self, image: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .filter(|p| p.locks_image(image))
            .max_by(|a, b| (a.seq(), &a.locked_at).cmp(&(b.seq(), &b.locked_at)))
    }

    /// Whether `image` holds a lock authorizing `layer`, and is not older than the lock named by
    /// `current_profile` (the workload's `mecipol-profile`): every problem, in that order.
    pub fn check(
        &self,
        image: &str,
        layer: Layer,
        current_profile: Option<&str>,
    ) -> Vec<LockProblem> {
        let mut problems = Vec::new();
        let locks: Vec<&Profile> = self
            .profiles
            .iter()
            .filter(|p| p.locks_image(image))
            .collect();
        if locks.is_empty() {
            problems.push(LockProblem::NoLock {
                image: image.to_string(),
            });
        } else if !locks.iter().any(|p| p.authorizes(layer)) {
            problems.push(LockProblem::NotAuthorized {
                image: image.to_string(),
                layer,
                profiles: locks.iter().map(|p| p.id.clone()).collect(),
            });
        }
        if let Some(current) = current_profile {
            match self.profiles.iter().find(|p| p.id == current) {
                None => problems.push(LockProblem::UnknownProfile {
                    current: current.to_string(),
                }),
                Some(cur) => {
                    // Newer is a higher sequence, then a later locked_at (locks from two
                    // ledgers may share a number; RFC 3339 UTC instants order as text).
                    let newest = locks
                        .iter()
                        .filter_map(|p| Some((p.seq()?, p.locked_at.as_str())))
                        .max();
                    if let (Some((n, n_at)), Some(c)) = (newest, cur.seq()) {
                        if (n, n_at) < (c, cur.locked_at.as_str()) && !cur.locks_image(image) {
                            problems.push(LockProblem::Downgrade {
                                image: image.to_string(),
                                newest: n,
                                current: current.to_string(),
                                current_image: cur.image.clone(),
                            });
                        }
                    }
                }
            }
        }
        problems
    }
}

/// Locks read from registries for one request: the verified profiles of each image (in a
/// [`LockSet`]), the attestations refused and why, and the images whose registry could not be
/// asked. The webhook fills it before the evaluation, which does no I/O.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryLocks {
    /// Profiles from verified attestations, `image` as the workload writes it.
    pub set: LockSet,
    /// Per image, the attestations refused and why.
    pub refused: std::collections::BTreeMap<String, Vec<String>>,
    /// Per image, why its attestations could not be read.
    pub unavailable: std::collections::BTreeMap<String, String>,
}

impl LockRegistry for RegistryLocks {
    fn newest_lock(&self, image: &str) -> Option<&Profile> {
        self.set.newest_lock(image)
    }

    fn check(&self, image: &str, layer: Layer, current_profile: Option<&str>) -> Vec<LockProblem> {
        if let Some(reason) = self.unavailable.get(image) {
            return vec![LockProblem::Unavailable {
                image: image.to_string(),
                reason: reason.clone(),
            }];
        }
        self.set
            .check(image, layer, current_profile)
            .into_iter()
            .map(|p| match p {
                LockProblem::NoLock { image } => LockProblem::NoAttestedLock {
                    refused: self.refused.get(&image).cloned().unwrap_or_default(),
                    image,
                },
                other => other,
            })
            .collect()
    }
}

impl LockRegistry for LockSet {
    fn newest_lock(&self, image: &str) -> Option<&Profile> {
        LockSet::newest_lock(self, image)
    }

    fn check(&self, image: &str, layer: Layer, current_profile: Option<&str>) -> Vec<LockProblem> {
        LockSet::check(self, image, layer, current_profile)
    }
}

/// The lock registry (the ledger, or the cluster's signed profiles): the second half of
/// `deny_no_mecipol_image`. Without one, that policy is static only, and says so.
pub trait LockRegistry: Sync {
    /// Checks that `image` holds a lock authorizing `layer` and is not older than the lock
    /// named by `current_profile` (the workload's `mecipol-profile` annotation). Returns the
    /// reasons it does not.
    fn check(&self, image: &str, layer: Layer, current_profile: Option<&str>) -> Vec<LockProblem>;

    /// The newest lock of `image` (highest sequence, then latest `locked_at`), if any.
    fn newest_lock(&self, image: &str) -> Option<&Profile>;
}

/// The containers of a workload with their images: (sort, name, image).
fn container_images(root: &crate::manifest::Node) -> Vec<(&'static str, &str, &str)> {
    use crate::manifest::Node;
    let kind = root.get("kind").and_then(Node::as_str).unwrap_or_default();
    let Some(at) = crate::workload::pod_spec_at(kind) else {
        return Vec::new();
    };
    let Some(spec) = root.get_path(at.keys) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sort in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec.get(sort).and_then(Node::as_seq).unwrap_or_default() {
            if let (Some(name), Some(image)) = (
                c.get("name").and_then(Node::as_str),
                c.get("image").and_then(Node::as_str),
            ) {
                out.push((sort, name, image));
            }
        }
    }
    out
}

/// An UPDATE's downgrades, judged on the images' locks (SPEC §10): for each container whose
/// image the update replaces, the new image's newest lock must not be older than the replaced
/// image's newest lock (unless that lock also locks the new image). Nothing here reads an
/// annotation, so dropping `mecipol-profile` first and changing the image next is caught.
pub fn replacement_downgrades(
    locks: &dyn LockRegistry,
    old: &crate::manifest::Node,
    new: &crate::manifest::Node,
) -> Vec<LockProblem> {
    let before = container_images(old);
    let mut out = Vec::new();
    for (sort, name, image) in container_images(new) {
        let Some((_, _, replaced)) = before
            .iter()
            .find(|(s, n, i)| *s == sort && *n == name && *i != image)
        else {
            continue;
        };
        let Some(was) = locks.newest_lock(replaced) else {
            continue;
        };
        if was.locks_image(image) {
            continue;
        }
        let Some(now) = locks.newest_lock(image) else {
            // An unlocked image is the policy's NoLock already.
            continue;
        };
        let key = |p: &Profile| (p.seq(), p.locked_at.clone());
        if key(now) < key(was) {
            out.push(LockProblem::Downgrade {
                image: image.to_string(),
                newest: now.seq().unwrap_or_default(),
                current: was.id.clone(),
                current_image: replaced.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn profile(id: &str, image: &str, layers: &[&str]) -> Profile {
        Profile {
            id: id.into(),
            trial: "TRB-CHAOS-001".into(),
            image: image.into(),
            profile: serde_json::json!({"sostle_layers_authorized": layers}),
            signature: String::new(),
            locked_at: "2026-05-11T21:00:00Z".into(),
        }
    }

    #[test]
    fn locks_with_the_same_number_from_two_ledgers_are_ordered_by_locked_at() {
        let mut early = profile("profile-001", "reg.io/a:1", &["L2"]);
        early.locked_at = "2026-05-11T21:00:00Z".into();
        let mut late = profile("profile-001", "reg.io/b:1", &["L2"]);
        late.locked_at = "2026-05-12T09:00:00Z".into();
        let set = LockSet::new(vec![late.clone(), early.clone()]);
        // The workload's current lock is the first `profile-001` found: the later one (b).
        let down = set.check("reg.io/a:1", Layer::L2, Some("profile-001"));
        assert!(
            matches!(down.as_slice(), [LockProblem::Downgrade { .. }]),
            "{down:?}"
        );
        // The other way round (current is the earlier one) is no downgrade.
        let set = LockSet::new(vec![early, late]);
        assert_eq!(
            set.check("reg.io/b:1", Layer::L2, Some("profile-001")),
            vec![]
        );
    }

    #[test]
    fn every_lock_problem_by_its_type() {
        let set = LockSet::new(vec![
            profile("profile-001", "reg.io/a:1", &["L0", "L1", "L2", "L3"]),
            profile("profile-002", "reg.io/b:1", &["L0", "L1", "L2"]),
        ]);
        assert_eq!(set.check("reg.io/a:1", Layer::L3, None), vec![]);
        assert_eq!(
            set.check("reg.io/c:1", Layer::L3, None),
            vec![LockProblem::NoLock {
                image: "reg.io/c:1".into()
            }]
        );
        let not = set.check("reg.io/b:1", Layer::L3, None);
        assert!(matches!(
            not.as_slice(),
            [LockProblem::NotAuthorized { .. }]
        ));
        assert_eq!(
            not[0].to_string(),
            "no lock of image reg.io/b:1 authorizes L3 (profile-002)"
        );
        assert!(matches!(
            set.check("reg.io/a:1", Layer::L3, Some("profile-009"))
                .as_slice(),
            [LockProblem::UnknownProfile { .. }]
        ));
        // The workload runs b (profile-002); going back to a (newest lock profile-001) is a
        // downgrade.
        let down = set.check("reg.io/a:1", Layer::L2, Some("profile-002"));
        assert!(
            matches!(down.as_slice(), [LockProblem::Downgrade { newest: 1, .. }]),
            "{down:?}"
        );
        assert!(down[0]
            .to_string()
            .starts_with("downgrade: image reg.io/a:1 (locked in profile-001)"));
        // The same image under its own current lock is no downgrade.
        assert_eq!(
            set.check("reg.io/b:1", Layer::L2, Some("profile-002")),
            vec![]
        );
    }

    #[test]
    fn a_two_step_downgrade_is_judged_on_the_replaced_images_lock() {
        let set = LockSet::new(vec![
            profile("profile-001", "reg.io/a:1", &["L3"]),
            profile("profile-002", "reg.io/a:2", &["L3"]),
        ]);
        let pod = |image: &str| {
            crate::manifest::load(&format!(
                "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {image}\n"
            ))
            .documents
            .remove(0)
            .root
        };
        // No annotation anywhere: step one dropped it. a:2 replaced by the older a:1.
        let problems = replacement_downgrades(&set, &pod("reg.io/a:2"), &pod("reg.io/a:1"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .to_string()
            .starts_with("downgrade: image reg.io/a:1 (locked in profile-001) is older than the workload's current lock profile-002 (reg.io/a:2)"));
        // Upgrading, or keeping the image, is no downgrade.
        assert!(replacement_downgrades(&set, &pod("reg.io/a:1"), &pod("reg.io/a:2")).is_empty());
        assert!(replacement_downgrades(&set, &pod("reg.io/a:2"), &pod("reg.io/a:2")).is_empty());
    }
}
