//! Fuzzes the AdmissionReview decoder and the validation behind it with arbitrary bodies: a
//! malformed review must be a clean error (400), never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sostle_core::Layer;
use sostle_webhook::{load, parse_review, validate, Loaded, Settings};

fn loaded() -> &'static Loaded {
    static L: OnceLock<Loaded> = OnceLock::new();
    L.get_or_init(|| match load(&Settings::default()) {
        Ok(l) => l,
        Err(e) => panic!("default settings load: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_review(data) {
        for layer in [Layer::L0, Layer::L4, Layer::Trial] {
            let d = validate(loaded(), layer, &req, sostle_core::epoch::default_origin(), Some(b"fuzz-secret-0123456789"), None);
            assert!(d.allowed || !d.message.is_empty());
        }
    }
});
