//! Attestations the way `cosign attest` makes them (SPEC §11): a DSSE envelope
//! (`payloadType: application/vnd.in-toto+json`) whose payload is an in-toto Statement about the
//! image digest, signed over DSSE's pre-authentication encoding. sostle's MECIPOL profile is the
//! predicate, `predicateType: https://sostle.eose.ca/mecipol/v1`.
//!
//! Stored as cosign stores them: layers of the OCI manifest tagged `sha256-<hex>.att`, media type
//! `application/vnd.dsse.envelope.v1+json`, annotations `predicateType` and an empty
//! `dev.cosignproject.cosign/signature` (the signature is inside the envelope).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The OCI media type of an attestation layer.
pub const MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The Statement type cosign writes.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// The Statement type of in-toto attestation v1 (read too).
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a MECIPOL profile.
pub const MECIPOL_PREDICATE: &str = "https://sostle.eose.ca/mecipol/v1";
/// The largest envelope read.
pub const MAX_ENVELOPE: usize = 1024 * 1024;

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What the payload is.
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// The signatures over PAE(payloadType, payload).
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Key hint (cosign leaves it empty).
    #[serde(default)]
    pub keyid: String,
    /// Base64 DER ECDSA signature.
    pub sig: String,
}

/// An in-toto Statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// `https://in-toto.io/Statement/v0.1` (cosign) or `…/v1`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// What the predicate is.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The claim.
    pub predicate: serde_json::Value,
}

/// A subject: a name and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The repository.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: std::collections::BTreeMap<String, String>,
}

/// Why an attestation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// Larger than [`MAX_ENVELOPE`] (its size in bytes).
    #[error("the envelope is {0} bytes, above the {MAX_ENVELOPE} read")]
    TooLarge(usize),
    /// Not DSSE's JSON.
    #[error("not a DSSE envelope ({0})")]
    NotEnvelope(String),
    /// A payload type other than in-toto's.
    #[error("payloadType is `{0}`, not {PAYLOAD_TYPE}")]
    PayloadType(String),
    /// The payload is not base64.
    #[error("the payload is not base64 ({0})")]
    NotBase64(String),
    /// The payload is not an in-toto Statement.
    #[error("the payload is not an in-toto Statement ({0})")]
    NotStatement(String),
    /// A statement type other than in-toto's.
    #[error("statement type `{0}` is not in-toto's")]
    StatementType(String),
    /// The payload does not decode again for the signature check.
    #[error("{0}")]
    Payload(String),
    /// The envelope has no signature.
    #[error("the envelope carries no signature")]
    Unsigned,
    /// No lock key made any of its signatures.
    #[error("the envelope is not signed by the lock key")]
    NotByLockKey,
    /// The predicate is of another type.
    #[error("predicate type {0} is not {MECIPOL_PREDICATE}")]
    PredicateType(String),
    /// The statement is about other images (`NAME@sha256:HEX`, comma-separated).
    #[error("the attestation is about {about}, not {digest}")]
    OtherImage {
        /// The statement's subjects.
        about: String,
        /// The image's digest.
        digest: String,
    },
    /// The predicate lacks a field a profile has (its name).
    #[error("the predicate is not a MECIPOL profile (no {0})")]
    NoProfileField(&'static str),
    /// The profile locks another image.
    #[error("the profile locks {locked}, not {digest}")]
    OtherDigest {
        /// The profile's `image_digest`.
        locked: String,
        /// The image's digest.
        digest: String,
    },
    /// The profile has no `image_digest`.
    #[error("the profile names no image_digest")]
    NoDigest,
    /// The predicate does not decode as a profile.
    #[error("the predicate is not a MECIPOL profile ({0})")]
    NotProfile(String),
    /// The profile (its id) authorizes L6.
    #[error("{0} authorizes L6, which no lock may")]
    AuthorizesL6(String),
}

/// DSSE's pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

impl Statement {
    /// A statement that `predicate` of `predicate_type` holds for `name` at `digest`
    /// (`sha256:<hex>`), in cosign's Statement version.
    pub fn new(
        name: &str,
        digest: &str,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        Statement {
            kind: STATEMENT_V01.into(),
            predicate_type: predicate_type.into(),
            subject: vec![Subject {
                name: name.into(),
                digest: [("sha256".to_string(), hex.to_string())]
                    .into_iter()
                    .collect(),
            }],
            predicate,
        }
    }

    /// Whether a subject is the image at `digest` (`sha256:<hex>`).
    pub fn is_about(&self, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.subject
            .iter()
            .any(|s| s.digest.get("sha256").is_some_and(|d| d == hex))
    }
}

/// Signs `statement` into a DSSE envelope (its JSON bytes, as stored).
pub fn sign(key: &SigningKey, statement: &Statement) -> Vec<u8> {
    let body = serde_json::to_vec(statement).unwrap_or_default();
    let sig: DerSignature = key.sign(&pae(PAYLOAD_TYPE, &body));
    let envelope = Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: B64.encode(&body),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: B64.encode(sig.as_bytes()),
        }],
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Decodes an envelope and its statement without checking any signature (for display and
/// fuzzing); [`verify`] is what decisions use.
pub fn decode(bytes: &[u8]) -> Result<(Envelope, Statement), AttestError> {
    if bytes.len() > MAX_ENVELOPE {
        return Err(AttestError::TooLarge(bytes.len()));
    }
    let e: Envelope =
        serde_json::from_slice(bytes).map_err(|e| AttestError::NotEnvelope(e.to_string()))?;
    if e.payload_type != PAYLOAD_TYPE {
        return Err(AttestError::PayloadType(e.payload_type));
    }
    let body = B64
        .decode(e.payload.trim())
        .map_err(|err| AttestError::NotBase64(err.to_string()))?;
    let s: Statement =
        serde_json::from_slice(&body).map_err(|err| AttestError::NotStatement(err.to_string()))?;
    if s.kind != STATEMENT_V01 && s.kind != STATEMENT_V1 {
        return Err(AttestError::StatementType(s.kind));
    }
    Ok((e, s))
}

/// Verifies an envelope with `keys` (any one) and returns its statement: a signature over
/// PAE(payloadType, the exact payload bytes).
pub fn verify(bytes: &[u8], keys: &[VerifyingKey]) -> Result<Statement, AttestError> {
    let (e, s) = decode(bytes)?;
    let body = B64
        .decode(e.payload.trim())
        .map_err(|err| AttestError::Payload(err.to_string()))?;
    let signed = pae(&e.payload_type, &body);
    if e.signatures.is_empty() {
        return Err(AttestError::Unsigned);
    }
    for sig in &e.signatures {
        let Ok(raw) = B64.decode(sig.sig.trim()) else {
            continue;
        };
        let Ok(der) = p256::ecdsa::Signature::from_der(&raw) else {
            continue;
        };
        if keys.iter().any(|k| k.verify(&signed, &der).is_ok()) {
            return Ok(s);
        }
    }
    Err(AttestError::NotByLockKey)
}

/// The MECIPOL profile an attestation carries, after every check: the envelope verifies with a
/// lock key, the statement is about `digest`, its predicate type is MECIPOL's, the predicate
/// is a profile (`profile_id`, `sostle_layers_authorized`, `locked_at`) for that digest
/// (`image_digest`), and it does not authorize L6. `image` is the reference as the workload
/// writes it (the lock set matches on it).
pub fn mecipol_profile(
    envelope: &[u8],
    keys: &[VerifyingKey],
    image: &str,
    digest: &str,
) -> Result<sostle_core::mecipol::Profile, AttestError> {
    let s = verify(envelope, keys)?;
    if s.predicate_type != MECIPOL_PREDICATE {
        return Err(AttestError::PredicateType(s.predicate_type));
    }
    if !s.is_about(digest) {
        let names: Vec<String> = s
            .subject
            .iter()
            .map(|x| {
                format!(
                    "{}@sha256:{}",
                    x.name,
                    x.digest.get("sha256").map_or("?", String::as_str)
                )
            })
            .collect();
        return Err(AttestError::OtherImage {
            about: names.join(", "),
            digest: digest.to_string(),
        });
    }
    let p = &s.predicate;
    let text = |k: &str| p.get(k).and_then(serde_json::Value::as_str);
    let id = text("profile_id").ok_or(AttestError::NoProfileField("profile_id"))?;
    if !p
        .get("sostle_layers_authorized")
        .is_some_and(serde_json::Value::is_array)
    {
        return Err(AttestError::NoProfileField("sostle_layers_authorized"));
    }
    match text("image_digest") {
        Some(d) if d == digest => {}
        Some(d) => {
            return Err(AttestError::OtherDigest {
                locked: d.to_string(),
                digest: digest.to_string(),
            })
        }
        None => return Err(AttestError::NoDigest),
    }
    let body = sostle_core::mecipol::ProfileBody::decode(p)
        .map_err(|e| AttestError::NotProfile(e.to_string()))?;
    let mut profile = body.into_profile(String::new());
    profile.image = image.to_string();
    profile.profile = p.clone();
    if profile.authorizes(sostle_core::Layer::L6) {
        return Err(AttestError::AuthorizesL6(id.to_string()));
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_mecipol_profile_for_this_digest_signed_by_a_lock_key_is_a_lock() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let keys = [*key.verifying_key()];
        let d = format!("sha256:{}", "ab".repeat(32));
        let other = format!("sha256:{}", "cd".repeat(32));
        let profile = |extra: serde_json::Value| {
            let mut p = serde_json::json!({"profile_id": "profile-001", "image": "reg/app:1", "image_digest": d,
                "gamma1_epoch": 98, "policies_passed": ["deny_no_limits"], "policies_exempted": [], "exemptions": [],
                "falco_clean_hours": 25, "trivy_critical_cves": 0, "rekor_entry": null,
                "sostle_layers_authorized": ["L2", "L3"], "locked_at": "2026-05-12T11:00:00Z",
                "trial": "TRB-CHAOS-001", "target": "L2"});
            if let (Some(m), Some(e)) = (p.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    m.insert(k.clone(), v.clone());
                }
            }
            p
        };
        let env = |predicate_type: &str, about: &str, p: serde_json::Value| {
            sign(&key, &Statement::new("reg/app", about, predicate_type, p))
        };
        let ok = mecipol_profile(
            &env(MECIPOL_PREDICATE, &d, profile(serde_json::json!({}))),
            &keys,
            "reg/app:1",
            &d,
        );
        let ok = match ok {
            Ok(p) => p,
            Err(e) => {
                assert_eq!(e.to_string(), "", "a real lock must verify");
                return;
            }
        };
        assert_eq!(
            (ok.id.as_str(), ok.image.as_str(), ok.trial.as_str()),
            ("profile-001", "reg/app:1", "TRB-CHAOS-001")
        );
        assert!(ok.authorizes(sostle_core::Layer::L3));
        let refused = |bytes: Vec<u8>| {
            mecipol_profile(&bytes, &keys, "reg/app:1", &d)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(refused(env(
            "https://slsa.dev/provenance/v1",
            &d,
            profile(serde_json::json!({}))
        ))
        .starts_with("predicate type https://slsa.dev/provenance/v1 is not"));
        assert!(refused(env(
            MECIPOL_PREDICATE,
            &other,
            profile(serde_json::json!({}))
        ))
        .starts_with("the attestation is about reg/app@sha256:cdcd"));
        assert_eq!(
            refused(env(MECIPOL_PREDICATE, &d, serde_json::json!({"sbom": []}))),
            "the predicate is not a MECIPOL profile (no profile_id)"
        );
        assert_eq!(
            refused(env(
                MECIPOL_PREDICATE,
                &d,
                profile(serde_json::json!({"image_digest": other}))
            )),
            format!("the profile locks {other}, not {d}")
        );
        assert_eq!(
            refused(env(
                MECIPOL_PREDICATE,
                &d,
                profile(serde_json::json!({"sostle_layers_authorized": ["L5", "L6"]}))
            )),
            "profile-001 authorizes L6, which no lock may"
        );
        let mut partial = profile(serde_json::json!({}));
        if let Some(m) = partial.as_object_mut() {
            m.remove("policies_passed");
        }
        assert_eq!(
            refused(env(MECIPOL_PREDICATE, &d, partial)),
            "the predicate is not a MECIPOL profile (missing field `policies_passed`)"
        );
        // Truncated or not an envelope at all.
        let good = env(MECIPOL_PREDICATE, &d, profile(serde_json::json!({})));
        assert!(
            refused(good.get(..good.len() / 2).unwrap_or_default().to_vec())
                .starts_with("not a DSSE envelope")
        );
        assert!(refused(b"<html>".to_vec()).starts_with("not a DSSE envelope"));
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn envelopes_verify_with_their_key_only_and_bind_the_digest() {
        let key = SigningKey::from_bytes(&[7u8; 32].into())
            .unwrap_or_else(|_| SigningKey::random(&mut rand_core::OsRng));
        let d = format!("sha256:{}", "ab".repeat(32));
        let s = Statement::new(
            "reg/app",
            &d,
            MECIPOL_PREDICATE,
            serde_json::json!({"profile": "profile-001"}),
        );
        let bytes = sign(&key, &s);
        assert_eq!(verify(&bytes, &[*key.verifying_key()]), Ok(s.clone()));
        assert!(s.is_about(&d));
        assert!(!s.is_about(&format!("sha256:{}", "cd".repeat(32))));
        let other = SigningKey::random(&mut rand_core::OsRng);
        assert_eq!(
            verify(&bytes, &[*other.verifying_key()]),
            Err(AttestError::NotByLockKey)
        );
        // A changed payload no longer verifies.
        let mut e: Envelope = serde_json::from_slice(&bytes).unwrap_or_else(|_| Envelope {
            payload_type: String::new(),
            payload: String::new(),
            signatures: vec![],
        });
        let mut forged = s.clone();
        forged.predicate = serde_json::json!({"profile": "profile-999"});
        e.payload = B64.encode(serde_json::to_vec(&forged).unwrap_or_default());
        let e = serde_json::to_vec(&e).unwrap_or_default();
        assert!(verify(&e, &[*key.verifying_key()]).is_err());
    }
}
