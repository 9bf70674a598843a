//! Fuzzes the attestation decoders: an arbitrary DSSE envelope and the in-toto statement in it
//! are decoded and judged as a MECIPOL lock for a fixed digest with a fixed lock key. Never a
//! panic; never a lock unless the envelope is really signed by that key (random bytes are not).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sostle_sign::attest;

fn key() -> &'static p256::ecdsa::VerifyingKey {
    static K: OnceLock<p256::ecdsa::VerifyingKey> = OnceLock::new();
    K.get_or_init(|| {
        let sk = p256::ecdsa::SigningKey::from_bytes(&[3u8; 32].into()).unwrap_or_else(|e| panic!("{e}"));
        *sk.verifying_key()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = attest::decode(data);
    let digest = format!("sha256:{}", "ab".repeat(32));
    if let Ok(p) = attest::mecipol_profile(data, &[*key()], "reg/app:1", &digest) {
        panic!("a made-up attestation locked {p:?}");
    }
});
