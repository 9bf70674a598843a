//! Verifying one cosign signature against a trust policy: the signature over the exact payload
//! bytes, the payload's digest against the image's, and who signed — a configured key, or a
//! keyless identity whose Fulcio certificate chains to a configured root at the time a verified
//! Rekor bundle says the signature was made.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use der::{Decode, DecodePem, Encode};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::Digest as _;
use x509_cert::Certificate;

use crate::keys::{hex, key_id};
use crate::payload::{SimpleSigning, SIGNATURE_ANNOTATION};

/// One signature as cosign stores it: a layer of the `.sig` manifest (the payload is the blob,
/// the rest are the layer's annotations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The exact signed bytes.
    pub payload: Vec<u8>,
    /// `dev.cosignproject.cosign/signature`: base64 DER ECDSA.
    pub signature: String,
    /// `dev.sigstore.cosign/certificate`: the keyless signer's PEM certificate.
    pub certificate: Option<String>,
    /// `dev.sigstore.cosign/chain`: the PEM chain up to (and perhaps including) the root.
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle`: the Rekor bundle JSON.
    pub bundle: Option<String>,
}

/// Who may sign.
#[derive(Debug, Clone)]
pub enum Signer {
    /// A public key (`cosign.pub`).
    Key {
        /// The name the config gives it.
        name: String,
        /// The key.
        key: VerifyingKey,
    },
    /// A keyless identity: a Fulcio certificate for `identity` from `issuer`.
    Keyless {
        /// The name the config gives it.
        name: String,
        /// The certificate's subject alternative name (an email or a URI), exactly.
        identity: String,
        /// The OIDC issuer recorded in the certificate, exactly.
        issuer: String,
        /// The Fulcio roots the certificate must chain to.
        roots: Vec<Certificate>,
    },
}

impl Signer {
    /// The signer's name.
    pub fn name(&self) -> &str {
        match self {
            Signer::Key { name, .. } | Signer::Keyless { name, .. } => name,
        }
    }

    /// How a person recognises it in a message: `key NAME (sha256:…)` or `IDENTITY via ISSUER`.
    pub fn describe(&self) -> String {
        match self {
            Signer::Key { name, key } => format!("key {name} ({})", key_id(key)),
            Signer::Keyless {
                identity, issuer, ..
            } => format!("{identity} via {issuer}"),
        }
    }
}

/// A Rekor log's public key.
#[derive(Debug, Clone)]
pub struct RekorKey {
    key: VerifyingKey,
    log_id: String,
}

impl RekorKey {
    /// Reads the log's PKIX PEM public key; its log ID is the SHA-256 of the SPKI DER.
    pub fn from_pem(pem: &[u8]) -> Result<RekorKey, crate::keys::KeyError> {
        let key = crate::keys::load_public_key(pem)?;
        let der = p256::pkcs8::EncodePublicKey::to_public_key_der(&key)
            .map_err(|e| crate::keys::KeyError::Public(e.to_string()))?;
        Ok(RekorKey {
            key,
            log_id: hex(&sha2::Sha256::digest(der.as_bytes())),
        })
    }
}

/// The signers and logs a verification trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Any one of these suffices.
    pub signers: Vec<Signer>,
    /// Rekor logs whose bundles give a keyless signature its time.
    pub rekor: Vec<RekorKey>,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// The signer's name in the trust policy.
    pub signer: String,
    /// How the signer is described (key id or identity).
    pub by: String,
    /// `critical.identity.docker-reference` of the payload.
    pub docker_reference: String,
    /// When Rekor logged it (Unix seconds), if a verified bundle says.
    pub integrated_time: Option<i64>,
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The payload is not cosign's simple-signing JSON.
    #[error(transparent)]
    Payload(#[from] crate::payload::PayloadError),
    /// The payload signs another image.
    #[error("the payload signs {signed}, not this image's {image}")]
    OtherImage {
        /// The digest the payload signs.
        signed: String,
        /// The image's digest.
        image: String,
    },
    /// The signature annotation is not base64.
    #[error("annotation {SIGNATURE_ANNOTATION} is not base64 ({0})")]
    AnnotationNotBase64(String),
    /// A signature (or a SignedEntryTimestamp) is not ECDSA P-256.
    #[error("the signature is not a DER ECDSA P-256 signature")]
    NotEcdsa,
    /// The trust policy names no signer.
    #[error("no signer is trusted")]
    NoSigner,
    /// No trusted signer verifies; why not, per signer.
    #[error("{}", refusals(.0))]
    Refused(Vec<Refusal>),
    /// The signature is not by this key.
    #[error("not signed by this key")]
    NotThisKey,
    /// A keyless signer, but the signature has no certificate.
    #[error("the signature carries no certificate (it is not keyless)")]
    NoCertificate,
    /// The certificate does not parse.
    #[error("the certificate is not PEM X.509 ({0})")]
    CertificateNotPem(String),
    /// The certificate does not encode.
    #[error("{0}")]
    Der(String),
    /// The signature is not by the certificate's key.
    #[error("not signed by the certificate's key")]
    NotCertificateKey,
    /// A keyless signature, but no Rekor log is trusted.
    #[error("a keyless signature needs a trusted time: configure a Rekor public key")]
    NoTrustedTime,
    /// A keyless signature without a Rekor bundle.
    #[error("the keyless signature has no Rekor bundle to give it a time")]
    NoBundle,
    /// The certificate chain does not parse.
    #[error("the certificate chain is not PEM X.509 ({0})")]
    ChainNotPem(String),
    /// The bundle's body is not base64.
    #[error("the bundle body is not base64 ({0})")]
    BodyNotBase64(String),
    /// The bundle's body is not a hashedrekord entry.
    #[error("the bundle body is not a hashedrekord entry ({0})")]
    BodyNotEntry(String),
    /// The bundle holds another kind of entry.
    #[error("the bundle holds a `{0}` entry, not hashedrekord")]
    EntryKind(String),
    /// The bundle is not cosign's JSON.
    #[error("the Rekor bundle is not JSON of cosign's shape ({0})")]
    BundleJson(String),
    /// The bundle comes from a log that is not trusted (its log ID).
    #[error("the bundle is from log {0}, which is not trusted")]
    UntrustedLog(String),
    /// The SignedEntryTimestamp is not base64.
    #[error("the SignedEntryTimestamp is not base64 ({0})")]
    SetNotBase64(String),
    /// The SignedEntryTimestamp does not verify.
    #[error("the bundle's SignedEntryTimestamp does not verify with the Rekor key")]
    SetRefused,
    /// The logged signature is not base64.
    #[error("the bundle's signature is not base64 ({0})")]
    LoggedSignatureNotBase64(String),
    /// The signature is not base64.
    #[error("the signature is not base64 ({0})")]
    SignatureNotBase64(String),
    /// The bundle logs another signature.
    #[error("the bundle logs another signature")]
    OtherSignature,
    /// The bundle logs another payload.
    #[error("the bundle logs another payload")]
    OtherPayload,
    /// The logged public key is not base64.
    #[error("the bundle's public key is not base64 ({0})")]
    LoggedKeyNotBase64(String),
    /// The logged public key is not PEM.
    #[error("the bundle's public key is not PEM ({0})")]
    LoggedKeyNotPem(String),
    /// The bundle logs another key or certificate.
    #[error("the bundle logs another signer")]
    OtherSigner,
    /// The certificate's key is not ECDSA P-256.
    #[error("the certificate's key is not ECDSA P-256")]
    CertificateKey,
    /// The certificate had expired, or was not yet valid, when the signature was logged.
    #[error("the certificate was not valid when the signature was logged")]
    CertificateNotValid,
    /// The root had expired, or was not yet valid, when the signature was logged.
    #[error("the Fulcio root was not valid when the signature was logged")]
    RootNotValid,
    /// The certificate does not chain to a configured root.
    #[error("the certificate does not chain to a configured Fulcio root")]
    NoChain,
    /// The chain is longer than sostle walks.
    #[error("the certificate chain is too long")]
    ChainTooLong,
    /// The certificate is not for code signing.
    #[error("the certificate is not for code signing")]
    NotCodeSigning,
    /// The certificate is for another identity.
    #[error("the certificate is for {found}, not {want}")]
    OtherIdentity {
        /// The certificate's identities (`no identity` when it has none).
        found: String,
        /// The identity the signer requires.
        want: String,
    },
    /// The certificate is from another OIDC issuer.
    #[error("the certificate's OIDC issuer is {found}, not {want}")]
    OtherIssuer {
        /// The certificate's issuer.
        found: String,
        /// The issuer the signer requires.
        want: String,
    },
    /// The certificate names no OIDC issuer.
    #[error("the certificate names no OIDC issuer")]
    NoIssuer,
}

/// Why one trusted signer does not verify a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The signer as [`Signer::describe`] has it.
    pub signer: String,
    /// Why not.
    pub why: VerifyError,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.signer, self.why)
    }
}

fn refusals(r: &[Refusal]) -> String {
    r.iter()
        .map(Refusal::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks `sig` against every signer of `trust` for the image manifest `digest`
/// (`sha256:<hex>`). `Ok` names the first signer that verifies; `Err` says, per signer, why not.
pub fn verify(sig: &SignatureLayer, digest: &str, trust: &Trust) -> Result<Verified, VerifyError> {
    let payload = SimpleSigning::decode(&sig.payload)?;
    if payload.digest() != digest {
        return Err(VerifyError::OtherImage {
            signed: payload.digest().to_string(),
            image: digest.to_string(),
        });
    }
    let raw = B64
        .decode(sig.signature.trim())
        .map_err(|e| VerifyError::AnnotationNotBase64(e.to_string()))?;
    let signature = parse_signature(&raw)?;
    if trust.signers.is_empty() {
        return Err(VerifyError::NoSigner);
    }
    let mut why = Vec::new();
    for signer in &trust.signers {
        match check_signer(signer, sig, &signature, trust) {
            Ok(time) => {
                return Ok(Verified {
                    signer: signer.name().to_string(),
                    by: signer.describe(),
                    docker_reference: payload.critical.identity.docker_reference.clone(),
                    integrated_time: time,
                })
            }
            Err(why_not) => why.push(Refusal {
                signer: signer.describe(),
                why: why_not,
            }),
        }
    }
    Err(VerifyError::Refused(why))
}

/// A DER ECDSA P-256 signature (what cosign writes), or the fixed 64-byte form.
fn parse_signature(raw: &[u8]) -> Result<Signature, VerifyError> {
    Signature::from_der(raw)
        .or_else(|_| Signature::from_slice(raw))
        .map_err(|_| VerifyError::NotEcdsa)
}

fn check_signer(
    signer: &Signer,
    sig: &SignatureLayer,
    signature: &Signature,
    trust: &Trust,
) -> Result<Option<i64>, VerifyError> {
    match signer {
        Signer::Key { key, .. } => {
            key.verify(&sig.payload, signature)
                .map_err(|_| VerifyError::NotThisKey)?;
            // A bundle, when the signature has one and a log is trusted, must hold.
            match (&sig.bundle, trust.rekor.is_empty()) {
                (Some(b), false) => {
                    let public = p256::pkcs8::EncodePublicKey::to_public_key_der(key)
                        .map(|d| d.as_bytes().to_vec())
                        .unwrap_or_default();
                    verify_bundle(b, sig, &SignerMaterial::Key(public), &trust.rekor).map(Some)
                }
                _ => Ok(None),
            }
        }
        Signer::Keyless {
            identity,
            issuer,
            roots,
            ..
        } => {
            let pem = sig
                .certificate
                .as_deref()
                .ok_or(VerifyError::NoCertificate)?;
            let leaf = Certificate::from_pem(pem.trim().as_bytes())
                .map_err(|e| VerifyError::CertificateNotPem(e.to_string()))?;
            let leaf_key = leaf_key(&leaf)?;
            leaf_key
                .verify(&sig.payload, signature)
                .map_err(|_| VerifyError::NotCertificateKey)?;
            if trust.rekor.is_empty() {
                return Err(VerifyError::NoTrustedTime);
            }
            let bundle = sig.bundle.as_deref().ok_or(VerifyError::NoBundle)?;
            let leaf_der = leaf.to_der().map_err(|e| VerifyError::Der(e.to_string()))?;
            let time = verify_bundle(
                bundle,
                sig,
                &SignerMaterial::Certificate(leaf_der),
                &trust.rekor,
            )?;
            let chain = match &sig.chain {
                Some(c) => Certificate::load_pem_chain(c.as_bytes())
                    .map_err(|e| VerifyError::ChainNotPem(e.to_string()))?,
                None => Vec::new(),
            };
            verify_chain(&leaf, &chain, roots, time)?;
            check_identity(&leaf, identity, issuer)?;
            Ok(Some(time))
        }
    }
}

enum SignerMaterial {
    /// SPKI DER of a public key.
    Key(Vec<u8>),
    /// DER of the leaf certificate.
    Certificate(Vec<u8>),
}

/// cosign's `dev.sigstore.cosign/bundle`: Rekor's SignedEntryTimestamp and what it signs.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Bundle {
    /// Base64 DER ECDSA signature by the log over the canonical payload.
    #[serde(rename = "SignedEntryTimestamp")]
    pub set: String,
    /// The entry as logged.
    #[serde(rename = "Payload")]
    pub payload: BundlePayload,
}

/// The logged entry a bundle's SET covers (fields in canonical, sorted order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct BundlePayload {
    /// Base64 of the entry body (canonical JSON).
    pub body: String,
    /// When the log integrated it (Unix seconds).
    #[serde(rename = "integratedTime")]
    pub integrated_time: i64,
    /// SHA-256 of the log's public key, hex.
    #[serde(rename = "logID")]
    pub log_id: String,
    /// Its index in the log.
    #[serde(rename = "logIndex")]
    pub log_index: i64,
}

#[derive(serde::Deserialize)]
struct Entry {
    kind: String,
    spec: EntrySpec,
}

#[derive(serde::Deserialize)]
struct EntrySpec {
    data: EntryData,
    signature: EntrySignature,
}

#[derive(serde::Deserialize)]
struct EntryData {
    hash: EntryHash,
}

#[derive(serde::Deserialize)]
struct EntryHash {
    algorithm: String,
    value: String,
}

#[derive(serde::Deserialize)]
struct EntrySignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: EntryKey,
}

#[derive(serde::Deserialize)]
struct EntryKey {
    content: String,
}

/// Verifies a Rekor bundle offline: its SignedEntryTimestamp by a trusted log over the
/// canonical entry, and that the entry is this signature (same signature bytes, the payload's
/// SHA-256, the same key or certificate). Returns the integrated time.
fn verify_bundle(
    json: &str,
    sig: &SignatureLayer,
    signer: &SignerMaterial,
    logs: &[RekorKey],
) -> Result<i64, VerifyError> {
    let b = check_set(json, logs)?;
    let body = B64
        .decode(b.payload.body.trim())
        .map_err(|e| VerifyError::BodyNotBase64(e.to_string()))?;
    let entry: Entry =
        serde_json::from_slice(&body).map_err(|e| VerifyError::BodyNotEntry(e.to_string()))?;
    if entry.kind != "hashedrekord" {
        return Err(VerifyError::EntryKind(entry.kind));
    }
    check_entry(&entry, sig, signer)?;
    Ok(b.payload.integrated_time)
}

/// A bundle whose SignedEntryTimestamp verifies with one of `logs` (its log ID names the key):
/// the signature is over the canonical JSON of body, integratedTime, logID, logIndex.
pub(crate) fn check_set(json: &str, logs: &[RekorKey]) -> Result<Bundle, VerifyError> {
    let b: Bundle =
        serde_json::from_str(json).map_err(|e| VerifyError::BundleJson(e.to_string()))?;
    let log = logs
        .iter()
        .find(|l| l.log_id == b.payload.log_id)
        .ok_or_else(|| VerifyError::UntrustedLog(b.payload.log_id.clone()))?;
    let set = B64
        .decode(b.set.trim())
        .map_err(|e| VerifyError::SetNotBase64(e.to_string()))?;
    let set = parse_signature(&set)?;
    let canonical = serde_json::to_vec(&b.payload).map_err(|e| VerifyError::Der(e.to_string()))?;
    log.key
        .verify(&canonical, &set)
        .map_err(|_| VerifyError::SetRefused)?;
    Ok(b)
}

/// Whether a hashedrekord entry is this signature: the same signature bytes, the payload's
/// SHA-256, the same key or certificate.
fn check_entry(
    entry: &Entry,
    sig: &SignatureLayer,
    signer: &SignerMaterial,
) -> Result<(), VerifyError> {
    let logged_sig = B64
        .decode(entry.spec.signature.content.trim())
        .map_err(|e| VerifyError::LoggedSignatureNotBase64(e.to_string()))?;
    let this_sig = B64
        .decode(sig.signature.trim())
        .map_err(|e| VerifyError::SignatureNotBase64(e.to_string()))?;
    if logged_sig != this_sig {
        return Err(VerifyError::OtherSignature);
    }
    let want = hex(&sha2::Sha256::digest(&sig.payload));
    if entry.spec.data.hash.algorithm != "sha256" || entry.spec.data.hash.value != want {
        return Err(VerifyError::OtherPayload);
    }
    let logged = B64
        .decode(entry.spec.signature.public_key.content.trim())
        .map_err(|e| VerifyError::LoggedKeyNotBase64(e.to_string()))?;
    let logged_der = pem_rfc7468::decode_vec(&logged)
        .map(|(_, d)| d)
        .map_err(|e| VerifyError::LoggedKeyNotPem(e.to_string()))?;
    let matches = match signer {
        SignerMaterial::Key(spki) => &logged_der == spki,
        SignerMaterial::Certificate(der) => &logged_der == der,
    };
    if !matches {
        return Err(VerifyError::OtherSigner);
    }
    Ok(())
}

fn leaf_key(cert: &Certificate) -> Result<VerifyingKey, VerifyError> {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| VerifyError::Der(e.to_string()))?;
    VerifyingKey::from_public_key_der(&spki).map_err(|_| VerifyError::CertificateKey)
}

const ECDSA_SHA256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const EKU_CODE_SIGNING: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Fulcio's OIDC issuer extension (v1: the raw string).
const FULCIO_ISSUER_V1: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension (v2: a DER UTF8String).
const FULCIO_ISSUER_V2: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

/// Whether `issuer` signed `cert` (ECDSA P-256/SHA-256 or P-384/SHA-384).
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    let Some(sig) = cert.signature.as_bytes() else {
        return false;
    };
    let Ok(spki) = issuer.tbs_certificate.subject_public_key_info.to_der() else {
        return false;
    };
    let alg = cert.signature_algorithm.oid;
    if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
        let Ok(s) = p384::ecdsa::Signature::from_der(sig) else {
            return false;
        };
        return match alg {
            a if a == ECDSA_SHA384 => k.verify(&tbs, &s).is_ok(),
            a if a == ECDSA_SHA256 => {
                use p384::ecdsa::signature::hazmat::PrehashVerifier;
                k.verify_prehash(&sha2::Sha256::digest(&tbs), &s).is_ok()
            }
            _ => false,
        };
    }
    if let Ok(k) = VerifyingKey::from_public_key_der(&spki) {
        let Ok(s) = Signature::from_der(sig) else {
            return false;
        };
        return match alg {
            a if a == ECDSA_SHA256 => k.verify(&tbs, &s).is_ok(),
            a if a == ECDSA_SHA384 => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                k.verify_prehash(&sha2::Sha384::digest(&tbs), &s).is_ok()
            }
            _ => false,
        };
    }
    false
}

fn valid_at(cert: &Certificate, t: i64) -> bool {
    let v = &cert.tbs_certificate.validity;
    let secs = |x: x509_cert::time::Time| {
        i64::try_from(x.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    secs(v.not_before) <= t && t <= secs(v.not_after)
}

fn is_ca(cert: &Certificate) -> bool {
    use x509_cert::ext::pkix::BasicConstraints;
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.19"))
        .any(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|b| b.ca))
}

/// The leaf must chain, through CA certificates of `chain`, to one of `roots`, every link
/// valid at `t` (the time Rekor logged the signature: Fulcio leaves live ten minutes).
fn verify_chain(
    leaf: &Certificate,
    chain: &[Certificate],
    roots: &[Certificate],
    t: i64,
) -> Result<(), VerifyError> {
    if !valid_at(leaf, t) {
        return Err(VerifyError::CertificateNotValid);
    }
    let mut current = leaf.clone();
    for _ in 0..8 {
        if let Some(root) = roots.iter().find(|r| {
            r.tbs_certificate.subject == current.tbs_certificate.issuer && signed_by(&current, r)
        }) {
            if !valid_at(root, t) {
                return Err(VerifyError::RootNotValid);
            }
            return Ok(());
        }
        let Some(next) = chain.iter().find(|c| {
            c.tbs_certificate.subject == current.tbs_certificate.issuer
                && is_ca(c)
                && signed_by(&current, c)
                && valid_at(c, t)
        }) else {
            return Err(VerifyError::NoChain);
        };
        if next.tbs_certificate.subject == next.tbs_certificate.issuer {
            // A self-signed root that is not one of ours ends the walk.
            return Err(VerifyError::NoChain);
        }
        current = next.clone();
    }
    Err(VerifyError::ChainTooLong)
}

fn check_identity(leaf: &Certificate, identity: &str, issuer: &str) -> Result<(), VerifyError> {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
    let exts = || leaf.tbs_certificate.extensions.iter().flatten();
    let code_signing = exts()
        .filter(|e| e.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.37"))
        .any(|e| {
            ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .is_ok_and(|u| u.0.contains(&EKU_CODE_SIGNING))
        });
    if !code_signing {
        return Err(VerifyError::NotCodeSigning);
    }
    let mut names = Vec::new();
    for e in exts().filter(|e| e.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.17")) {
        if let Ok(san) = SubjectAltName::from_der(e.extn_value.as_bytes()) {
            for n in san.0 {
                match n {
                    GeneralName::Rfc822Name(s) => names.push(s.to_string()),
                    GeneralName::UniformResourceIdentifier(s) => names.push(s.to_string()),
                    _ => {}
                }
            }
        }
    }
    if !names.iter().any(|n| n == identity) {
        return Err(VerifyError::OtherIdentity {
            found: if names.is_empty() {
                "no identity".to_string()
            } else {
                names.join(", ")
            },
            want: identity.to_string(),
        });
    }
    let mut found = None;
    for e in exts() {
        if e.extn_id == FULCIO_ISSUER_V2 {
            if let Ok(s) = der::asn1::Utf8StringRef::from_der(e.extn_value.as_bytes()) {
                found = Some(s.as_str().to_string());
            }
        } else if e.extn_id == FULCIO_ISSUER_V1 && found.is_none() {
            found = std::str::from_utf8(e.extn_value.as_bytes())
                .ok()
                .map(str::to_string);
        }
    }
    match found {
        Some(f) if f == issuer => Ok(()),
        Some(found) => Err(VerifyError::OtherIssuer {
            found,
            want: issuer.to_string(),
        }),
        None => Err(VerifyError::NoIssuer),
    }
}
