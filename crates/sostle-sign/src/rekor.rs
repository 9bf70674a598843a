//! Rekor, the transparency log (SPEC §11): a `hashedrekord` entry for a signature
//! (`POST /api/v1/log/entries`), and the bundle cosign stores beside it
//! (`dev.sigstore.cosign/bundle`: the log's SignedEntryTimestamp over the entry). A `409` (the
//! entry exists) is not an error: the existing entry is fetched from its `Location`. What the log
//! answers is checked before it is used: the entry must be the one sent, and with the log's
//! public key the SET must verify.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::Digest as _;

use crate::verify::{Bundle, BundlePayload, RekorKey};

/// The largest answer read from a log.
const MAX_ANSWER: usize = 1024 * 1024;

/// What logging a signature gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The entry's URL (`…/api/v1/log/entries/<uuid>`).
    pub entry_url: String,
    /// cosign's bundle annotation (JSON).
    pub bundle: String,
    /// When the log integrated it.
    pub integrated_time: i64,
}

/// Why logging failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RekorError {
    /// The log could not be reached, timed out, or answered 5xx.
    #[error("Rekor at {0} unavailable: {1}")]
    Unavailable(String, String),
    /// The log refused the entry.
    #[error("Rekor at {0} refused the entry: {1}")]
    Refused(String, String),
    /// The log's answer cannot be trusted or read.
    #[error("Rekor at {0} answered badly: {1}")]
    Bad(String, String),
}

/// The `hashedrekord` v0.0.1 entry of a signature over `payload` by the key `public_pem`.
pub fn hashedrekord(payload: &[u8], signature_b64: &str, public_pem: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": crate::keys::hex(&sha2::Sha256::digest(payload))}},
            "signature": {
                "content": signature_b64,
                "publicKey": {"content": B64.encode(public_pem.as_bytes())}
            }
        }
    })
}

/// Logs `entry` at the Rekor server `url`; with `key`, the answer's SET must verify with it.
pub async fn upload(
    url: &str,
    entry: &serde_json::Value,
    key: Option<&RekorKey>,
    timeout: Duration,
) -> Result<Logged, RekorError> {
    let base = url.trim_end_matches('/');
    let u = |m: String| RekorError::Unavailable(base.to_string(), m);
    crate::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("sostle/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RekorError::Bad(base.into(), e.to_string()))?;
    let post = format!("{base}/api/v1/log/entries");
    let res = client
        .post(&post)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(serde_json::to_vec(entry).unwrap_or_default())
        .send()
        .await
        .map_err(|e| u(cause(&e)))?;
    let status = res.status();
    let (status, body) = if status == reqwest::StatusCode::CONFLICT {
        // Already logged: fetch the entry the log names.
        let location = res
            .headers()
            .get("Location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RekorError::Bad(base.into(), "409 without a Location".into()))?;
        let get = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let res = client
            .get(&get)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| u(cause(&e)))?;
        let st = res.status();
        (st, read(res, base).await?)
    } else {
        (status, read(res, base).await?)
    };
    if status.is_server_error() {
        return Err(u(format!("HTTP {status}")));
    }
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(RekorError::Refused(
            base.into(),
            format!("HTTP {status}: {text}"),
        ));
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|e| RekorError::Bad(base.into(), format!("not Rekor's JSON ({e})")))?;
    let (uuid, e) = map
        .into_iter()
        .next()
        .ok_or_else(|| RekorError::Bad(base.into(), "no entry in the answer".into()))?;
    let field = |k: &str| e.get(k).cloned().unwrap_or(serde_json::Value::Null);
    let payload = BundlePayload {
        body: field("body").as_str().unwrap_or_default().to_string(),
        integrated_time: field("integratedTime").as_i64().unwrap_or_default(),
        log_id: field("logID").as_str().unwrap_or_default().to_string(),
        log_index: field("logIndex").as_i64().unwrap_or_default(),
    };
    let set = e
        .pointer("/verification/signedEntryTimestamp")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| RekorError::Bad(base.into(), "no signedEntryTimestamp".into()))?
        .to_string();
    // The log must have logged what was sent.
    let logged: serde_json::Value = B64
        .decode(payload.body.trim())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| RekorError::Bad(base.into(), "the entry body is not base64 JSON".into()))?;
    if &logged != entry {
        return Err(RekorError::Bad(
            base.into(),
            "the log answered with another entry".into(),
        ));
    }
    let bundle = serde_json::to_string(&Bundle { set, payload }).unwrap_or_default();
    if let Some(k) = key {
        crate::verify::check_set(&bundle, std::slice::from_ref(k))
            .map_err(|m| RekorError::Bad(base.into(), m.to_string()))?;
    }
    let integrated_time = serde_json::from_str::<Bundle>(&bundle)
        .map(|b| b.payload.integrated_time)
        .unwrap_or_default();
    Ok(Logged {
        entry_url: format!("{base}/api/v1/log/entries/{uuid}"),
        bundle,
        integrated_time,
    })
}

async fn read(res: reqwest::Response, base: &str) -> Result<Vec<u8>, RekorError> {
    use futures_util::StreamExt as _;
    let mut out = Vec::new();
    let mut s = res.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| RekorError::Unavailable(base.into(), cause(&e)))?;
        out.extend_from_slice(&chunk);
        if out.len() > MAX_ANSWER {
            return Err(RekorError::Bad(
                base.into(),
                format!("an answer above {MAX_ANSWER} bytes"),
            ));
        }
    }
    Ok(out)
}

fn cause(e: &reqwest::Error) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        cur.to_string()
    }
}
