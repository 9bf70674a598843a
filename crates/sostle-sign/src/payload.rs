//! cosign's "simple signing" payload: the JSON document a signature is made over.
//!
//! cosign (Go `encoding/json` over its struct) writes it in one order with no spaces:
//! `{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":"cosign container image signature"},"optional":O}`.
//! The signature is over those exact bytes, so a verifier never re-serializes: it checks the
//! signature over the bytes it fetched, then decodes them to learn what was signed.

use serde::{Deserialize, Serialize};

/// The value of `critical.type`.
pub const TYPE: &str = "cosign container image signature";
/// The OCI media type of a signature layer.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that carries the base64 DER signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation that carries a keyless signer's certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation that carries the certificate chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The layer annotation that carries the Rekor bundle (JSON).
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The largest payload sostle reads: real ones are a few hundred bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The simple-signing payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// What is signed.
    pub critical: Critical,
    /// Free-form claims (cosign `-a key=value`), or null.
    pub optional: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `critical`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Critical {
    /// `identity`.
    pub identity: Identity,
    /// `image`.
    pub image: Image,
    /// Always [`TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The repository (with tag, if one was signed) the signer named.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the image manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// A payload that is not cosign's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Larger than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes is larger than the {MAX_PAYLOAD} sostle reads")]
    TooLarge(usize),
    /// Not the JSON shape.
    #[error("payload is not cosign's simple-signing JSON ({0})")]
    Json(String),
    /// `critical.type` is something else.
    #[error("payload type is `{0}`, not `{TYPE}`")]
    Type(String),
    /// The digest is not `sha256:<64 hex>`.
    #[error("payload digest `{0}` is not sha256:<64 hex digits>")]
    Digest(String),
}

impl SimpleSigning {
    /// The payload cosign writes for `reference` at `digest`.
    pub fn new(reference: &str, digest: &str) -> SimpleSigning {
        SimpleSigning {
            critical: Critical {
                identity: Identity {
                    docker_reference: reference.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: TYPE.to_string(),
            },
            optional: None,
        }
    }

    /// The bytes to sign (cosign's field order, no whitespace).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes signed bytes, refusing anything that is not cosign's payload.
    pub fn decode(bytes: &[u8]) -> Result<SimpleSigning, PayloadError> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(PayloadError::TooLarge(bytes.len()));
        }
        let p: SimpleSigning =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
        if p.critical.kind != TYPE {
            return Err(PayloadError::Type(p.critical.kind));
        }
        if !is_sha256_digest(&p.critical.image.docker_manifest_digest) {
            return Err(PayloadError::Digest(
                p.critical.image.docker_manifest_digest,
            ));
        }
        Ok(p)
    }

    /// The signed manifest digest.
    pub fn digest(&self) -> &str {
        &self.critical.image.docker_manifest_digest
    }
}

/// Whether `s` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_cosigns_order_without_spaces() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let p = SimpleSigning::new("registry.example/app", &d);
        let s = String::from_utf8(p.to_bytes()).unwrap_or_default();
        assert_eq!(
            s,
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.example/app\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
        assert_eq!(SimpleSigning::decode(s.as_bytes()), Ok(p));
    }

    #[test]
    fn other_payloads_are_refused() {
        assert!(matches!(
            SimpleSigning::decode(b"<html>"),
            Err(PayloadError::Json(_))
        ));
        let other = br#"{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"sha256:00"},"type":"x"},"optional":null}"#;
        assert!(matches!(
            SimpleSigning::decode(other),
            Err(PayloadError::Type(_))
        ));
        let short = br#"{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(matches!(
            SimpleSigning::decode(short),
            Err(PayloadError::Digest(_))
        ));
    }
}
