//! SOSTLE tokens (SPEC §5): `v1.<expires-unix>.<mac>`, where `mac` is the first 32 characters of
//! lowercase unpadded base32 of HMAC-SHA256(secret, `sostle-token/v1|<crew>|<layer>|<expires>`).
//! Verification compares in constant time and says why a token is refused.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::layer::Layer;

fn mac(secret: &[u8], crew: &str, layer: Layer, expires: i64) -> String {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would never verify.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    m.update(format!("sostle-token/v1|{crew}|{}|{expires}", layer.as_str()).as_bytes());
    let enc = BASE32_NOPAD.encode(&m.finalize().into_bytes());
    enc.get(..32).unwrap_or(&enc).to_ascii_lowercase()
}

/// Issues a token for `crew` at `layer`, valid until `expires` (Unix seconds).
pub fn issue(secret: &[u8], crew: &str, layer: Layer, expires: i64) -> String {
    format!("v1.{expires}.{}", mac(secret, crew, layer, expires))
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not of the form `v1.<expires>.<mac>`.
    #[error("token is not of the form v1.<expires-unix>.<mac>")]
    Malformed,
    /// Past its expiry.
    #[error("token expired at {0}")]
    Expired(String),
    /// Valid, but issued to another crew member or layer.
    #[error("token was issued to {crew} at {layer}, not to {want_crew} at {want_layer}")]
    Foreign {
        /// Crew the token belongs to.
        crew: String,
        /// Layer it was issued for.
        layer: Layer,
        /// Crew that presented it.
        want_crew: String,
        /// Layer it was presented at.
        want_layer: Layer,
    },
    /// The MAC matches no crew member and layer: forged, or signed with another secret.
    #[error("token signature does not verify (forged, or issued with another secret)")]
    BadSignature,
}

/// The shortest token secret accepted (from the config or `SOSTLE_TOKEN_SECRET`).
pub const MIN_SECRET_LEN: usize = 16;

/// Verifies `token` for `crew` at `layer` at time `now` (Unix seconds). `known_crew` is used
/// only to explain a foreign token.
pub fn verify<'a>(
    secret: &[u8],
    token: &str,
    crew: &str,
    layer: Layer,
    now: i64,
    known_crew: impl IntoIterator<Item = &'a str>,
) -> Result<(), TokenError> {
    let mut parts = token.splitn(3, '.');
    let (Some("v1"), Some(exp), Some(given)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let expires: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    // One spelling per token: the MAC covers the number, so `01796…` or `+1796…` would
    // otherwise verify as another string for the same token.
    if exp != expires.to_string() {
        return Err(TokenError::Malformed);
    }
    if given.len() != 32 {
        return Err(TokenError::Malformed);
    }
    let matches = |c: &str, l: Layer| {
        bool::from(
            mac(secret, c, l, expires)
                .as_bytes()
                .ct_eq(given.as_bytes()),
        )
    };
    if matches(crew, layer) {
        if expires <= now {
            let when = jiff::Timestamp::from_second(expires)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| expires.to_string());
            return Err(TokenError::Expired(when));
        }
        return Ok(());
    }
    for other in known_crew {
        for l in Layer::ALL {
            if matches(other, l) {
                return Err(TokenError::Foreign {
                    crew: other.to_string(),
                    layer: l,
                    want_crew: crew.to_string(),
                    want_layer: layer,
                });
            }
        }
    }
    Err(TokenError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let s = b"s3cret";
        let t = issue(s, "BOSUN", Layer::L4, 2_000_000_000);
        assert!(t.len() <= 63, "{t}");
        assert_eq!(verify(s, &t, "BOSUN", Layer::L4, 1_900_000_000, []), Ok(()));
        assert!(matches!(
            verify(s, &t, "BOSUN", Layer::L4, 2_000_000_001, []),
            Err(TokenError::Expired(_))
        ));
        assert!(matches!(
            verify(s, &t, "RICK", Layer::L4, 1_900_000_000, ["BOSUN", "RICK"]),
            Err(TokenError::Foreign { .. })
        ));
        assert!(matches!(
            verify(s, &t, "BOSUN", Layer::L5, 1_900_000_000, ["BOSUN"]),
            Err(TokenError::Foreign {
                layer: Layer::L4,
                ..
            })
        ));
        assert_eq!(
            verify(b"other", &t, "BOSUN", Layer::L4, 1, ["BOSUN"]),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(s, "v2.1.x", "BOSUN", Layer::L4, 1, []),
            Err(TokenError::Malformed)
        );
    }
}
