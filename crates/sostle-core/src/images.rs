//! Image signatures as the suite sees them (SPEC §11): who may sign (`images.signers`), which
//! layers require a signature by whom (`images.require`, by default L3–L7 once any signer is
//! configured), and the `deny_unsigned_image` result built from checks made elsewhere.
//!
//! The checks themselves need a registry and cryptography (the `sostle-sign` crate); this
//! module holds the data and the rule, so the CLI (`sostle test --verify-images`) and the
//! webhook reach the same decision from the same checks.

use std::sync::Arc;

pub use crate::config::images::{
    default_required_layers, CacheSpec, ImagePolicy, RegistrySpec, SignerSource, SignerSpec,
};
use crate::layer::Layer;
use crate::manifest::Node;
use crate::report::{Outcome, PolicyResult, Violation};
use crate::workload::{Group, Workload};

/// The policy id of the signature requirement.
pub const POLICY: &str = "deny_unsigned_image";

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
