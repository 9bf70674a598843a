//! The γ₁ epoch: whole days since the origin (default 2026-02-03T00:00:00Z, so Day 97 is
//! 2026-05-11). The clock is always passed in; nothing here reads the system time.

use jiff::Timestamp;

/// γ₁ as a number.
pub const GAMMA1: f64 = 14.134_725_141_734_693;
/// γ₁ in its label form.
pub const GAMMA1_LABEL: &str = "14134725141734693";
/// The default epoch origin.
pub const DEFAULT_ORIGIN: &str = "2026-02-03T00:00:00Z";

/// Whole days from `origin` to `now` (negative before the origin; floor division).
pub fn epoch_day(origin: Timestamp, now: Timestamp) -> i64 {
    let secs = now.as_second() - origin.as_second();
    secs.div_euclid(86_400)
}

/// A text that is not a time.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EpochError {
    /// The text is not an RFC 3339 timestamp; `reason` says why (jiff's words).
    #[error("`{text}` is not an RFC 3339 timestamp ({reason})")]
    NotRfc3339 {
        /// The text as given.
        text: String,
        /// Why it does not parse.
        reason: jiff::Error,
    },
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, EpochError> {
    s.trim()
        .parse::<Timestamp>()
        .map_err(|reason| EpochError::NotRfc3339 {
            text: s.to_string(),
            reason,
        })
}

/// The default origin as a timestamp.
pub fn default_origin() -> Timestamp {
    // 2026-02-03T00:00:00Z
    Timestamp::from_second(1_770_076_800).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn day_97_is_2026_05_11() {
        let origin = parse_rfc3339(DEFAULT_ORIGIN).unwrap();
        assert_eq!(origin, default_origin());
        let d = parse_rfc3339("2026-05-11T21:00:00Z").unwrap();
        assert_eq!(epoch_day(origin, d), 97);
        let before = parse_rfc3339("2026-02-02T23:59:59Z").unwrap();
        assert_eq!(epoch_day(origin, before), -1);
    }
}
