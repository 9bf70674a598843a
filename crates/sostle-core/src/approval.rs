//! Signed approvals of exemptions (SPEC §6): the reviewer's ECDSA P-256 signature over the exact
//! ASCII bytes of the witness value (`sha256:<64 hex>`), carried base64 (DER) in the annotation
//! `sostle.eose.ca/exempt-approval`.
//!
//! The witness hash alone proves nothing about who reviewed: anyone can compute it. The approval
//! does, because only the holder of a private key registered for the reviewer (`crew[].keys`)
//! can make it. Anyone can check one with `openssl dgst -sha256 -verify pub.pem -signature sig.der`
//! over the witness bytes. Signing is deterministic (RFC 6979), so tests are repeatable.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};

/// The annotation that holds the approval.
pub const ANNOTATION: &str = "sostle.eose.ca/exempt-approval";

/// A public key registered for a crew member.
#[derive(Debug, Clone)]
pub struct CrewKey {
    key: VerifyingKey,
    /// Short fingerprint: the first 16 hex digits of the SHA-256 of the key's DER (SPKI).
    pub id: String,
}

impl PartialEq for CrewKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for CrewKey {}

impl CrewKey {
    /// The key of a verifying key.
    pub fn new(key: VerifyingKey) -> CrewKey {
        let der = key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let hex = crate::digest::sha256_hex(&der);
        CrewKey {
            key,
            id: hex.get(..16).unwrap_or(&hex).to_string(),
        }
    }

    /// Parses a PKIX (`PUBLIC KEY`) PEM holding a P-256 key.
    pub fn from_pem(pem: &str) -> Result<CrewKey, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            if pem.contains("PRIVATE KEY") {
                KeyError::PrivateGiven
            } else {
                KeyError::Public(e.to_string())
            }
        })?;
        Ok(CrewKey::new(key))
    }

    /// The key as PKIX PEM.
    pub fn pem(&self) -> String {
        use p256::pkcs8::LineEnding;
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The verifying key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Whether `approval` (base64 DER) is this key's signature over `witness`.
    pub fn verifies(&self, witness: &str, approval: &Signature) -> bool {
        self.key.verify(witness.as_bytes(), approval).is_ok()
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PKIX P-256 public key.
    #[error("not a PKIX PEM P-256 public key ({0})")]
    Public(String),
    /// A private key where a public one belongs.
    #[error("this is a private key: register the public key (cosign.pub) instead")]
    PrivateGiven,
    /// Not a PKCS#8 P-256 private key.
    #[error("not a PKCS#8 PEM P-256 private key ({0})")]
    Private(String),
}

/// Parses a PKCS#8 PEM P-256 private key.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Private(e.to_string()))
}

/// The approval of `witness` by `key`: base64 of the DER ECDSA P-256 (SHA-256) signature over
/// the witness's ASCII bytes.
pub fn sign(key: &SigningKey, witness: &str) -> String {
    let sig: DerSignature = key.sign(witness.as_bytes());
    data_encoding::BASE64.encode(sig.as_bytes())
}

/// Why an approval annotation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not base64.
    #[error("{ANNOTATION} is not base64")]
    Base64,
    /// Base64, but not a DER ECDSA signature.
    #[error("{ANNOTATION} is not a DER ECDSA P-256 signature")]
    Der,
}

/// Decodes the annotation's value (base64 of a DER signature; whitespace is ignored).
pub fn decode(value: &str) -> Result<Signature, DecodeError> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let der = data_encoding::BASE64
        .decode(compact.as_bytes())
        .map_err(|_| DecodeError::Base64)?;
    Signature::from_der(&der).map_err(|_| DecodeError::Der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    #[test]
    fn an_approval_verifies_with_its_key_only() {
        let w = "sha256:0a4172c9fa76a36de1a1d2b0a15fea0cb0fd7ccc197672c34fb5df5ab26c9f27";
        let a = sign(&key(7), w);
        let sig = decode(&a).unwrap();
        assert!(CrewKey::new(*key(7).verifying_key()).verifies(w, &sig));
        assert!(!CrewKey::new(*key(8).verifying_key()).verifies(w, &sig));
        let other = "sha256:1a4172c9fa76a36de1a1d2b0a15fea0cb0fd7ccc197672c34fb5df5ab26c9f27";
        assert!(!CrewKey::new(*key(7).verifying_key()).verifies(other, &sig));
        // Deterministic (RFC 6979).
        assert_eq!(a, sign(&key(7), w));
    }

    #[test]
    fn bad_annotations_are_named() {
        assert_eq!(decode("not base64!"), Err(DecodeError::Base64));
        assert_eq!(decode("aGVsbG8="), Err(DecodeError::Der));
    }

    #[test]
    fn keys_from_pem() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let k = key(3);
        let public = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let ck = CrewKey::from_pem(&public).unwrap();
        assert_eq!(ck.id.len(), 16);
        let private = k.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(CrewKey::from_pem(&private), Err(KeyError::PrivateGiven));
        assert!(signing_key_from_pem(&private).is_ok());
        assert!(matches!(
            CrewKey::from_pem("garbage"),
            Err(KeyError::Public(_))
        ));
    }
}
