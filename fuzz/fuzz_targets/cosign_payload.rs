//! Fuzzes the simple-signing payload decoder and the private-key reader (cosign's encrypted
//! PEM envelope, PKCS#8, SEC1) with arbitrary bytes: errors, never panics. The scrypt cost is
//! read from the file, so inputs asking for more than sostle accepts must be refused up front.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sostle_sign::keys;
use sostle_sign::payload::SimpleSigning;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = SimpleSigning::decode(data) {
        assert!(sostle_sign::payload::is_sha256_digest(p.digest()));
    }
    let _ = keys::load_private_key(data, b"");
    let _ = keys::load_importable_key(data);
    let _ = keys::load_public_key(data);
});
