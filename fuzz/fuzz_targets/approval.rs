//! Fuzzes the approval decoder and the exemption judgement behind it: an arbitrary
//! `sostle.eose.ca/exempt-approval` value (and a manifest around it) is decoded and checked against
//! a registered key; it must be a clean refusal, never a panic, and never honoured unless it is a
//! real signature over the witness (which random bytes are not).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sostle_core::approval::{self, CrewKey};
use sostle_core::exemption::{witness, Values};
use sostle_core::{manifest, Config, Engine, EvalContext, Outcome};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let mut c = Config::default();
        let key = p256::ecdsa::SigningKey::from_bytes(&[2u8; 32].into()).unwrap_or_else(|e| panic!("{e}"));
        for m in &mut c.crew {
            if m.name == "IMHOTEP" {
                m.keys.push(CrewKey::new(*key.verifying_key()));
            }
        }
        Engine::new(Arc::new(c))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = approval::decode(text);
    let _ = CrewKey::from_pem(text);
    let v = Values {
        applies_to: "chaos-trial/p".into(),
        from: "deny_no_limits".into(),
        expires: "2026-02-20T00:00:00Z".into(),
        owner: "BOSUN".into(),
        reason: "TRB-CHAOS-001".into(),
        reviewed: "IMHOTEP".into(),
    };
    let w = witness(&v);
    let object = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: chaos-trial\n  annotations:\n    sostle.eose.ca/exempt-from: deny_no_limits\n    sostle.eose.ca/exempt-applies-to: chaos-trial/p\n    sostle.eose.ca/exempt-reason: TRB-CHAOS-001\n    sostle.eose.ca/exempt-expires: \"2026-02-20T00:00:00Z\"\n    sostle.eose.ca/exempt-owner: BOSUN\n    sostle.eose.ca/exempt-reviewed: IMHOTEP\n    sostle.eose.ca/exempt-witness: \"{w}\"\n    sostle.eose.ca/exempt-approval: {}\nspec:\n  containers:\n  - name: c\n    image: c:1\n",
        serde_json::to_string(text).unwrap_or_default()
    );
    let loaded = manifest::load(&object);
    let Some(doc) = loaded.documents.first() else {
        return;
    };
    let ctx = EvalContext::new(sostle_core::epoch::default_origin());
    let report = engine().evaluate(&doc.root, &ctx);
    for r in &report.results {
        if &*r.policy == "deny_no_limits" {
            assert_ne!(r.outcome, Outcome::Exempted, "random bytes honoured as an approval");
        }
    }
});
