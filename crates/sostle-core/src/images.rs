//! Image signatures as the suite sees them (SPEC §11): who may sign (`images.signers`), which
//! layers require a signature by whom (`images.require`, by default L3–L7 once any signer is
//! configured), and the `deny_unsigned_image` result built from checks made elsewhere.
//!
//! The checks themselves need a registry and cryptography (the `sostle-sign` crate); this
//! module holds the data and the rule, so the CLI (`sostle test --verify-images`) and the
//! webhook reach the same decision from the same checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::layer::{Layer, LayerSet};
use crate::manifest::Node;
use crate::report::{Outcome, PolicyResult, Violation};
use crate::workload::{Group, Workload};

/// The policy id of the signature requirement.
pub const POLICY: &str = "deny_unsigned_image";

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

/// What checking one image's signatures found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCheck {
    /// A signature by a required signer verified.
    Verified {
        /// The image's digest.
        digest: String,
        /// Who signed (`key release (sha256:…)`, or `IDENTITY via ISSUER`).
        by: String,
    },
    /// No signature by a required signer verified: why, in a sentence.
    Unsigned(String),
    /// The registry could not be asked (and nothing was cached): why.
    Unavailable(String),
}

/// Checks made for an object's images (by whatever reached the registry).
pub trait ImageSignatures {
    /// The check of `image` at `layer`; `None` when the layer requires no signature.
    fn check(&self, image: &str, layer: Layer) -> Option<ImageCheck>;
}

/// Image signatures as a [`PolicySource`](crate::source::PolicySource) of the one pass: the
/// checks made (at the registry, or prefetched by the webhook) judged at the document's layer.
/// Not exemptable, as the layer gates are not.
pub struct SignatureSource<'a> {
    /// The checks.
    pub checks: &'a dyn ImageSignatures,
    /// Whether an unreachable registry is a warning (the layer fails open) rather than a failure.
    pub fail_open: bool,
}

impl std::fmt::Debug for SignatureSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureSource")
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl crate::source::PolicySource for SignatureSource<'_> {
    fn judge(
        &self,
        input: &crate::source::SourceInput<'_>,
    ) -> Result<Vec<PolicyResult>, crate::source::SourceError> {
        Ok(input
            .layer
            .and_then(|l| signature_result(input.root, l, self.checks, self.fail_open))
            .into_iter()
            .collect())
    }

    fn exemptable(&self) -> bool {
        false
    }
}

/// The `deny_unsigned_image` result for a workload at `layer`: a violation at each container's
/// `image` whose signature did not verify; an image whose registry could not be asked is a
/// violation too, or a warning where the layer fails open. `None` when the object is not a
/// workload or the layer requires no signature.
pub fn signature_result(
    root: &Node,
    layer: Layer,
    checks: &dyn ImageSignatures,
    fail_open: bool,
) -> Option<PolicyResult> {
    let kind = root.get("kind").and_then(Node::as_str)?;
    crate::workload::pod_spec_at(kind)?;
    let workload = Workload::new(root, kind, &mut Vec::new());
    let mut fail = Vec::new();
    let mut warn = Vec::new();
    let mut any = false;
    for c in workload.containers(&[Group::Init, Group::Regular, Group::Ephemeral]) {
        let Some(image) = c.image() else { continue };
        let Some(check) = checks.check(image, layer) else {
            continue;
        };
        any = true;
        let v = |message: String, fix: &'static str| Violation {
            container: Some(c.name()),
            path: c.path(&["image"]),
            pos: c.node.locate(&["image"]),
            message,
            fix: fix.into(),
        };
        match check {
            ImageCheck::Verified { .. } => {}
            ImageCheck::Unsigned(why) => fail.push(v(
                why,
                "sign the image (sostle sign IMAGE --key cosign.key, or cosign sign) with a signer this layer requires",
            )),
            ImageCheck::Unavailable(why) if fail_open => warn.push(v(
                format!("{why}; admitted unchecked at {layer}, which fails open"),
                "make the registry reachable from sostle",
            )),
            ImageCheck::Unavailable(why) => fail.push(v(
                why,
                "make the registry reachable from sostle; the layer fails closed",
            )),
        }
    }
    if !any {
        return None;
    }
    let (outcome, violations) = if !fail.is_empty() {
        fail.extend(warn);
        (Outcome::Fail, fail)
    } else if !warn.is_empty() {
        (Outcome::Warn, warn)
    } else {
        (Outcome::Pass, Vec::new())
    };
    Some(PolicyResult {
        policy: Arc::from(POLICY),
        outcome,
        violations,
        exemption: None,
    })
}

/// An image reference split into its parts (`registry:5000/app:tag@sha256:…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest.
    pub name: &'a str,
    /// The tag, if any.
    pub tag: Option<&'a str>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<&'a str>,
}

/// Splits an image reference; a `:` before the last `/` is a registry port, not a tag.
pub fn parse_image(image: &str) -> ImageRef<'_> {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest.rfind(':').filter(|i| *i >= last_slash) {
        Some(i) => ImageRef {
            name: rest.get(..i).unwrap_or(rest),
            tag: rest.get(i + 1..).filter(|t| !t.is_empty()),
            digest,
        },
        None => ImageRef {
            name: rest,
            tag: None,
            digest,
        },
    }
}

pub(crate) fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
