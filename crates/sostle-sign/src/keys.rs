//! Keys in cosign's formats (SPEC §11).
//!
//! `cosign.key` is a PEM block labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older
//! `ENCRYPTED COSIGN PRIVATE KEY`) whose body is JSON:
//! `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":…},"cipher":{"name":"nacl/secretbox","nonce":…},"ciphertext":…}`.
//! The scrypt output (32 bytes) is the secretbox key; the plaintext is a PKCS#8 DER ECDSA P-256
//! key. `cosign.pub` is a PKIX `PUBLIC KEY` PEM. A plain PKCS#8 `PRIVATE KEY` PEM is read too
//! (the format sostle wrote before it spoke cosign's).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// The PEM label cosign writes today.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign releases wrote.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The environment variable cosign reads the password from.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// cosign's scrypt cost: N = 2^15, r = 8, p = 1.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The largest N a key file may ask for (2^20: ~1 GiB of memory at r = 8); more is refused
/// rather than letting a file make us allocate without bound.
const SCRYPT_MAX_LOG_N: u8 = 20;

/// Why a key cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM at all.
    #[error("not a PEM key ({0})")]
    NotPem(String),
    /// A PEM block of a kind we do not read.
    #[error("a `{0}` PEM block is not a private key sostle reads (cosign's ENCRYPTED SIGSTORE PRIVATE KEY, or PKCS#8 PRIVATE KEY)")]
    Label(String),
    /// A SEC1 `EC PRIVATE KEY` given where cosign's format is needed.
    #[error("a SEC1 `EC PRIVATE KEY` is not cosign's format: run `sostle key import` on it first")]
    Sec1,
    /// The encrypted envelope is not cosign's JSON.
    #[error("the encrypted key is not cosign's JSON envelope ({0})")]
    Envelope(String),
    /// The password does not open the key.
    #[error("wrong password (COSIGN_PASSWORD) or a damaged key: decryption failed")]
    Password,
    /// The decrypted key is not PKCS#8.
    #[error("the decrypted key is not PKCS#8 ({0}); cosign refuses such keys too")]
    NotPkcs8(String),
    /// A key on a curve other than P-256, or not ECDSA.
    #[error("not an ECDSA P-256 key ({0})")]
    Curve(String),
    /// A public key that cannot be read.
    #[error("not a PKIX P-256 public key ({0})")]
    Public(String),
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Reads a private key: cosign's encrypted PEM (either label, opened with `password`) or a
/// plain PKCS#8 PEM. A SEC1 key, another curve, a wrong password or garbage is an error.
pub fn load_private_key(pem: &[u8], password: &[u8]) -> Result<SigningKey, KeyError> {
    let (label, der) = decode_pem(pem)?;
    match label.as_str() {
        SIGSTORE_LABEL | COSIGN_LABEL => {
            let plain = decrypt(&der, password)?;
            pkcs8_key(&plain)
        }
        "PRIVATE KEY" => pkcs8_key(&der),
        "EC PRIVATE KEY" => Err(KeyError::Sec1),
        other => Err(KeyError::Label(other.to_string())),
    }
}

/// Whether a private-key PEM is encrypted (needs a password).
pub fn is_encrypted(pem: &[u8]) -> bool {
    matches!(decode_pem(pem), Ok((l, _)) if l == SIGSTORE_LABEL || l == COSIGN_LABEL)
}

/// Reads a key to import: PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY` (P-256), as
/// `cosign import-key-pair` accepts.
pub fn load_importable_key(pem: &[u8]) -> Result<SigningKey, KeyError> {
    let (label, der) = decode_pem(pem)?;
    match label.as_str() {
        "PRIVATE KEY" => pkcs8_key(&der),
        "EC PRIVATE KEY" => {
            let secret = p256::SecretKey::from_sec1_der(&der)
                .map_err(|e| KeyError::Curve(format!("SEC1: {e}")))?;
            Ok(SigningKey::from(secret))
        }
        SIGSTORE_LABEL | COSIGN_LABEL => Err(KeyError::Label(format!(
            "{label}` (already a cosign key; nothing to import"
        ))),
        other => Err(KeyError::Label(other.to_string())),
    }
}

/// A new random P-256 key.
pub fn generate() -> SigningKey {
    SigningKey::random(&mut OsRng)
}

/// The key as cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (scrypt N=32768 r=8 p=1, a fresh
/// 32-byte salt and 24-byte nonce, nacl/secretbox over the PKCS#8 DER).
pub fn encrypt_private_key(key: &SigningKey, password: &[u8]) -> Result<String, KeyError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Curve(e.to_string()))?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng
        .try_fill_bytes(&mut salt)
        .and_then(|()| OsRng.try_fill_bytes(&mut nonce))
        .map_err(|e| KeyError::Random(e.to_string()))?;
    let secret = derive(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
    let cipher = XSalsa20Poly1305::new(&secret.into());
    let ciphertext = cipher
        .encrypt(&nonce.into(), der.as_bytes())
        .map_err(|_| KeyError::Password)?;
    let envelope = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1u64 << SCRYPT_LOG_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(ciphertext),
    };
    let json = serde_json::to_vec(&envelope).map_err(|e| KeyError::Envelope(e.to_string()))?;
    pem_rfc7468::encode_string(SIGSTORE_LABEL, LineEnding::LF, &json)
        .map_err(|e| KeyError::NotPem(e.to_string()))
}

/// The public half as PKIX PEM (`cosign.pub`).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// Reads a PKIX `PUBLIC KEY` PEM holding a P-256 key.
pub fn load_public_key(pem: &[u8]) -> Result<VerifyingKey, KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::Public("not UTF-8 text".into()))?;
    if text.contains("PRIVATE KEY-----") {
        return Err(KeyError::Public(
            "this is a private key: give the public one (cosign.pub)".into(),
        ));
    }
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
        if p384::ecdsa::VerifyingKey::from_public_key_pem(text.trim()).is_ok() {
            KeyError::Curve("a P-384 key".into())
        } else {
            KeyError::Public(e.to_string())
        }
    })
}

/// A short, stable name for a public key: `sha256:` and the first 16 hex digits of the SHA-256
/// of its SPKI DER.
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::Digest as _;
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let hex = hex(&sha2::Sha256::digest(der));
    format!("sha256:{}", hex.get(..16).unwrap_or(&hex))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn decode_pem(pem: &[u8]) -> Result<(String, Vec<u8>), KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::NotPem("not UTF-8 text".into()))?;
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| KeyError::NotPem("no -----BEGIN line".into()))?;
    let block = text.get(start..).unwrap_or_default().trim_end();
    let (label, der) =
        pem_rfc7468::decode_vec(block.as_bytes()).map_err(|e| KeyError::NotPem(e.to_string()))?;
    Ok((label.to_string(), der))
}

fn pkcs8_key(der: &[u8]) -> Result<SigningKey, KeyError> {
    match SigningKey::from_pkcs8_der(der) {
        Ok(k) => Ok(k),
        Err(e) => {
            if p256::SecretKey::from_sec1_der(der).is_ok() {
                Err(KeyError::NotPkcs8("it is a SEC1 EC PRIVATE KEY".into()))
            } else if p384::SecretKey::from_pkcs8_der(der).is_ok() {
                Err(KeyError::Curve("a P-384 key".into()))
            } else {
                Err(KeyError::Curve(e.to_string()))
            }
        }
    }
}

fn decrypt(body: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| KeyError::Envelope(e.to_string()))?;
    if env.kdf.name != "scrypt" {
        return Err(KeyError::Envelope(format!(
            "kdf `{}`, not scrypt",
            env.kdf.name
        )));
    }
    if env.cipher.name != "nacl/secretbox" {
        return Err(KeyError::Envelope(format!(
            "cipher `{}`, not nacl/secretbox",
            env.cipher.name
        )));
    }
    let n = env.kdf.params.n;
    if !n.is_power_of_two() || n < 2 {
        return Err(KeyError::Envelope(format!(
            "scrypt N={n} is not a power of two"
        )));
    }
    let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
    if log_n > SCRYPT_MAX_LOG_N {
        return Err(KeyError::Envelope(format!(
            "scrypt N={n} is above the 2^{SCRYPT_MAX_LOG_N} sostle accepts"
        )));
    }
    let field = |name: &str, v: &str| {
        B64.decode(v)
            .map_err(|e| KeyError::Envelope(format!("{name} is not base64: {e}")))
    };
    let salt = field("kdf.salt", &env.kdf.salt)?;
    let nonce = field("cipher.nonce", &env.cipher.nonce)?;
    let ciphertext = field("ciphertext", &env.ciphertext)?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| KeyError::Envelope("cipher.nonce is not 24 bytes".into()))?;
    let secret = derive(password, &salt, log_n, env.kdf.params.r, env.kdf.params.p)?;
    XSalsa20Poly1305::new(&secret.into())
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map_err(|_| KeyError::Password)
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], KeyError> {
    if r == 0 || p == 0 || u64::from(r) * u64::from(p) > 64 {
        return Err(KeyError::Envelope(format!(
            "scrypt r={r} p={p} out of range"
        )));
    }
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| KeyError::Envelope(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| KeyError::Envelope(format!("scrypt: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_round_trip_with_their_password_only() -> Result<(), KeyError> {
        let key = generate();
        let pem = encrypt_private_key(&key, b"s3cret")?;
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(is_encrypted(pem.as_bytes()));
        let back = load_private_key(pem.as_bytes(), b"s3cret")?;
        assert_eq!(back.verifying_key(), key.verifying_key());
        assert_eq!(
            load_private_key(pem.as_bytes(), b"other"),
            Err(KeyError::Password)
        );
        // cosign allows an empty password, and so do we.
        let empty = encrypt_private_key(&key, b"")?;
        assert_eq!(
            load_private_key(empty.as_bytes(), b"")?.verifying_key(),
            key.verifying_key()
        );
        Ok(())
    }

    #[test]
    fn garbage_and_other_labels_are_refused_with_the_reason() {
        assert!(matches!(
            load_private_key(b"hello", b""),
            Err(KeyError::NotPem(_))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            load_private_key(cert.as_bytes(), b""),
            Err(KeyError::Label(_))
        ));
        let bad_json =
            pem_rfc7468::encode_string(SIGSTORE_LABEL, LineEnding::LF, b"{").unwrap_or_default();
        assert!(matches!(
            load_private_key(bad_json.as_bytes(), b""),
            Err(KeyError::Envelope(_))
        ));
    }
}
