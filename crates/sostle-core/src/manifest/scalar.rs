//! Scalars resolved as Kubernetes' YAML decoder resolves them: `sigs.k8s.io/yaml` over the YAML
//! 1.1 flavoured `go-yaml` v2 (`resolve.go`), which is what `kubectl` and the API server read a
//! manifest with. The rules, in go-yaml's order:
//!
//! - a quoted or block scalar without a tag is a string;
//! - a plain scalar's first character is the hint: a sign or digit may be a number, one of
//!   `yYnNtTfFoO~` may be in the table of words, `.` may be a float; anything else is a string;
//! - the table: `y Y yes Yes YES true True TRUE on On ON` are true, `n N no No NO false False
//!   FALSE off Off OFF` are false, `"" ~ null Null NULL` are null, `.inf`/`.nan` spellings floats;
//! - numbers: underscores removed, then Go's `ParseInt(s, 0, 64)` (`0x`, `0o`, `0b` prefixes in
//!   either case, a leading `0` is octal), then `ParseUint`, then the float pattern
//!   `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`; a date-like `YYYY-…` stays text
//!   (timestamps reach JSON as the string written);
//! - an explicit core tag (`!!str`, `!!bool`, `!!int`, `!!float`, `!!null`, `!!timestamp`)
//!   resolves the text whatever its quoting and must agree with it (`!!bool "1"` is an error, as
//!   in go-yaml; `!!float 1` is the float 1); `!!binary` is base64-decoded text; any other tag
//!   leaves the text a string.

use super::node::{Text, Value};

const CORE: &str = "tag:yaml.org,2002:";

/// A scalar that does not decode as its explicit tag says, in go-yaml's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TagError {
    /// `!!binary` text that is not base64.
    #[error("!!binary value contains invalid base64 data")]
    InvalidBase64,
    /// `!!binary` bytes that are not UTF-8.
    #[error("!!binary value is not UTF-8 text")]
    NotUtf8,
    /// A value of one core tag written with another (`!!bool "1"`).
    #[error("cannot decode !!{got} `{text}` as a !!{want}")]
    Mismatch {
        /// The tag the text resolves to.
        got: &'static str,
        /// The text.
        text: String,
        /// The tag written.
        want: String,
    },
}

/// Resolves a scalar. `tag` is the resolved tag (handle and suffix) when one was written.
/// Errors are go-yaml's: a value that does not match its explicit tag.
pub(crate) fn resolve_scalar(
    text: &str,
    plain: bool,
    tag: Option<(&str, &str)>,
) -> Result<Value, TagError> {
    let core = match tag {
        None => None,
        Some((handle, suffix)) if handle == CORE => Some(suffix),
        // A local or foreign tag (`!foo`, `!`): go-yaml leaves the text a string.
        Some(_) => return Ok(Value::Str(text.into())),
    };
    match core {
        None if !plain => return Ok(Value::Str(text.into())),
        None => return Ok(resolve_plain(text)),
        Some("str") => return Ok(Value::Str(text.into())),
        Some("binary") => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = data_encoding::BASE64
                .decode(compact.as_bytes())
                .map_err(|_| TagError::InvalidBase64)?;
            return String::from_utf8(bytes)
                .map(|s| Value::Str(s.into()))
                .map_err(|_| TagError::NotUtf8);
        }
        _ => {}
    }
    let Some(want) = core else {
        return Ok(resolve_plain(text));
    };
    let got = resolve_plain(text);
    let got_tag = if want == "timestamp" && is_timestamp(text) {
        "timestamp"
    } else {
        value_tag(&got, text)
    };
    match (want, got) {
        ("float", Value::Int(i)) => Ok(Value::Float(i as f64)),
        ("timestamp", _) if got_tag == "timestamp" => Ok(Value::Str(text.into())),
        (want, got) if got_tag == want => Ok(got),
        (want, _) => Err(TagError::Mismatch {
            got: got_tag,
            text: text.to_string(),
            want: want.to_string(),
        }),
    }
}

/// The core tag go-yaml gives a resolved plain value.
fn value_tag(v: &Value, text: &str) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) if is_timestamp(text) => "timestamp",
        _ => "str",
    }
}

/// A plain scalar, as go-yaml resolves an untagged one.
pub(crate) fn resolve_plain(text: &str) -> Value {
    let hint = text.as_bytes().first().copied();
    match hint {
        None => return Value::Null,
        Some(b'+' | b'-' | b'0'..=b'9' | b'.') => {}
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => {}
        Some(_) => return Value::Str(text.into()),
    }
    match text {
        "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    match hint {
        Some(b'.') => {
            // go-yaml: strconv.ParseFloat on the text as written (no underscores allowed).
            if is_yaml_float(text) {
                if let Some(f) = finite(text) {
                    return Value::Float(f);
                }
            }
            Value::Str(text.into())
        }
        Some(b'+' | b'-' | b'0'..=b'9') => resolve_number(text),
        _ => Value::Str(text.into()),
    }
}

fn resolve_number(text: &str) -> Value {
    if is_timestamp(text) {
        // A timestamp decodes into an interface{} as the text written.
        return Value::Str(text.into());
    }
    let cleaned: Text;
    let plain = if text.contains('_') {
        cleaned = text.replace('_', "").into();
        cleaned.as_str()
    } else {
        text
    };
    if let Some(i) = parse_int(plain) {
        return Value::Int(i);
    }
    if let Some(u) = parse_uint(plain) {
        // Beyond i64: JSON carries the exact integer; the tree keeps it as a number.
        return Value::Float(u as f64);
    }
    if is_yaml_float(plain) {
        if let Some(f) = finite(plain) {
            return Value::Float(f);
        }
    }
    if let Some(bin) = plain.strip_prefix("-0b") {
        if let Ok(v) = i64::from_str_radix(&format!("-{bin}"), 2) {
            return Value::Int(v);
        }
    }
    Value::Str(text.into())
}

fn finite(text: &str) -> Option<f64> {
    // Go's ParseFloat reports a value out of range as an error (go-yaml then keeps the text).
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then a `0x`/`0o`/`0b` prefix (either
/// case), a leading `0` for octal, or decimal digits.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (radix, digits) = radix_of(body)?;
    // Through i128 so i64::MIN parses.
    let v = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign).
fn parse_uint(text: &str) -> Option<u64> {
    let (radix, digits) = radix_of(text)?;
    u64::from_str_radix(digits, radix).ok()
}

fn radix_of(body: &str) -> Option<(u32, &str)> {
    let b = body.as_bytes();
    let (radix, digits) = match (b.first(), b.get(1)) {
        (Some(b'0'), Some(b'x' | b'X')) => (16, body.get(2..)?),
        (Some(b'0'), Some(b'o' | b'O')) => (8, body.get(2..)?),
        (Some(b'0'), Some(b'b' | b'B')) => (2, body.get(2..)?),
        (Some(b'0'), Some(_)) => (8, body.get(1..)?),
        _ => (10, body),
    };
    // from_str_radix accepts a sign of its own; Go does not accept one after the prefix.
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((radix, digits))
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub(crate) fn is_yaml_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml's `parseTimestamp`: four digits and a dash, then one of its layouts
/// (`2006-1-2`, `2006-1-2 15:4:5.999999999`, `2006-1-2T15:4:5.999999999Z07:00`).
fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 8 || !b.iter().take(4).all(u8::is_ascii_digit) || b.get(4) != Some(&b'-') {
        return false;
    }
    let rest = text.get(5..).unwrap_or_default();
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..)),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let (Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let small = |s: &str, max: u32| {
        (1..=2).contains(&s.len())
            && s.bytes().all(|c| c.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v))
    };
    if !small(m, 12) || !small(d, 31) {
        return false;
    }
    let Some(time) = time else { return true };
    // 15:4:5 with an optional fraction and (after T) a zone Z or ±hh:mm.
    let zone_at = time
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, 'Z' | '+' | '-'))
        .map(|(i, _)| i);
    let (clock, zone) = match zone_at {
        Some(i) => (time.get(..i).unwrap_or_default(), time.get(i..)),
        None => (time, None),
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let mut hms = clock.split(':');
    let (Some(h), Some(mi), Some(s), None) = (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return false;
    };
    let num = |s: &str, max: u32| {
        (1..=2).contains(&s.len())
            && s.bytes().all(|c| c.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|v| v <= max)
    };
    if !num(h, 23) || !num(mi, 59) || !num(s, 59) {
        return false;
    }
    match zone {
        None => true,
        Some("Z") => true,
        Some(z) => {
            let z = z.get(1..).unwrap_or_default();
            let mut p = z.split(':');
            matches!((p.next(), p.next(), p.next()), (Some(h), Some(m), None) if h.len() == 2 && m.len() == 2 && num(h, 23) && num(m, 59))
        }
    }
}

/// A resolved key as `sigs.k8s.io/yaml` writes it into JSON: strings as they are, booleans
/// `true`/`false`, integers in decimal, floats in Go's `%g` at float32 precision; a null key is
/// an error there ("unsupported map key").
pub(crate) fn key_text(v: &Value) -> Option<Text> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
        Value::Int(i) => Some(i.to_string().into()),
        Value::Float(f) => Some(go_g32(*f).into()),
        _ => None,
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)` with go-yaml's spellings of the infinities.
fn go_g32(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    #[allow(clippy::cast_possible_truncation)]
    let f = f as f32;
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest digits and the decimal exponent, as `{:e}` gives them: "1.5e10".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v2() {
        for t in ["y", "Y", "yes", "on", "ON", "True"] {
            assert_eq!(resolve_plain(t), Value::Bool(true), "{t}");
        }
        for t in ["n", "N", "no", "off", "Off", "FALSE"] {
            assert_eq!(resolve_plain(t), Value::Bool(false), "{t}");
        }
        for t in ["yEs", "oN", "Yes ", "tRue", "nil"] {
            assert!(matches!(resolve_plain(t), Value::Str(_)), "{t}");
        }
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("0X1F"), Value::Int(31));
        assert_eq!(resolve_plain("0o17"), Value::Int(15));
        assert_eq!(resolve_plain("017"), Value::Int(15));
        assert_eq!(resolve_plain("0b101"), Value::Int(5));
        assert_eq!(resolve_plain("-0b101"), Value::Int(-5));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("08"), Value::Float(8.0));
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        assert_eq!(resolve_plain(".5"), Value::Float(0.5));
        assert!(matches!(resolve_plain("1:20"), Value::Str(_)));
        assert!(matches!(resolve_plain("2001-12-14"), Value::Str(_)));
        assert!(matches!(resolve_plain("1e400"), Value::Str(_)));
        assert!(matches!(resolve_plain("0x"), Value::Str(_)));
        assert!(matches!(resolve_plain("0x-1"), Value::Str(_)));
        assert!(matches!(resolve_plain("_1"), Value::Str(_)));
        assert_eq!(resolve_plain("-9223372036854775808"), Value::Int(i64::MIN));
    }

    #[test]
    fn explicit_tags_resolve_the_text_and_must_agree() {
        let core = Some((CORE, "bool"));
        assert_eq!(resolve_scalar("y", false, core), Ok(Value::Bool(true)));
        assert!(resolve_scalar("1", false, core).is_err());
        assert_eq!(
            resolve_scalar("1", true, Some((CORE, "float"))),
            Ok(Value::Float(1.0))
        );
        assert_eq!(
            resolve_scalar("true", true, Some((CORE, "str"))),
            Ok(Value::Str("true".into()))
        );
        assert_eq!(
            resolve_scalar("true", true, Some(("!", "foo"))),
            Ok(Value::Str("true".into()))
        );
        assert_eq!(
            resolve_scalar("eWVz", true, Some((CORE, "binary"))),
            Ok(Value::Str("yes".into()))
        );
    }

    #[test]
    fn keys_are_written_as_sigs_k8s_io_yaml_writes_them() {
        assert_eq!(key_text(&Value::Bool(true)).unwrap(), "true");
        assert_eq!(key_text(&Value::Int(16)).unwrap(), "16");
        assert_eq!(key_text(&Value::Float(1.5)).unwrap(), "1.5");
        assert_eq!(key_text(&Value::Float(1e10)).unwrap(), "1e+10");
        assert_eq!(key_text(&Value::Float(0.0001)).unwrap(), "0.0001");
        assert_eq!(key_text(&Value::Float(1234567.0)).unwrap(), "1.234567e+06");
        assert_eq!(key_text(&Value::Float(0.00001)).unwrap(), "1e-05");
        assert!(key_text(&Value::Null).is_none());
    }
}
