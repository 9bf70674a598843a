//! Fuzzes the path untrusted bytes take: the loader (YAML/JSON → tree with positions), then the
//! engine over every document at a governed layer. Any panic, hang or unbounded allocation is a
//! finding.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sostle_core::{manifest, Config, Engine, EvalContext, Layer};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(Arc::new(Config::default())))
}

fuzz_target!(|data: &[u8]| {
    let loaded = manifest::load_bytes(data);
    let ctx = EvalContext {
        layer_override: Some(Layer::L4),
        token_secret: Some(b"fuzz-secret-0123456789"),
        ..EvalContext::new(sostle_core::epoch::default_origin())
    };
    // Memory is bounded by bytes (issue #24): what the documents hold, text and nodes, stays
    // within the loader's expansion budget however many aliases the input uses.
    let mut held = 0usize;
    for d in &loaded.documents {
        let mut work = vec![&d.root];
        while let Some(n) = work.pop() {
            held += 64;
            match &n.value {
                manifest::Value::Str(s) => held += s.len(),
                manifest::Value::Seq(items) => work.extend(items.iter()),
                manifest::Value::Map(entries) => {
                    for e in entries {
                        held += e.key.len();
                        work.push(&e.value);
                    }
                }
                _ => {}
            }
        }
    }
    assert!(held <= manifest::Limits::default().max_bytes + data.len() * 64, "{held}");
    for d in &loaded.documents {
        let r = engine().evaluate(&d.root, &ctx);
        assert_eq!(r.results.len(), 11);
    }
    // Config parsing sees the same bytes.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_yaml(text);
    }
});
