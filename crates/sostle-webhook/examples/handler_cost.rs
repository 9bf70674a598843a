//! Measures the webhook's cost per request without sockets or TLS: decode, evaluate, encode
//! (direct call) and the whole router (`oneshot`), over the corpus Deployment reviews.
//! Usage: handler_cost BODIES.jsonl (from the admission_bodies example).

// A measuring tool run by hand: its results go to stdout, its usage errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use sostle_webhook::{parse_review, router, validate, AppState, Settings};
use tower::ServiceExt;

// The allocator the `sostle` binary uses, so the costs are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bodies.jsonl".into());
    let bodies: Vec<Vec<u8>> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if bodies.is_empty() {
        eprintln!("no bodies in {path}");
        return;
    }
    let state = match AppState::new(Settings::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let loaded = state.loaded();
    let now = jiff::Timestamp::now();
    let rounds = 20;
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        for b in &bodies {
            if let Ok(req) = parse_review(b) {
                let _ = validate(&loaded, sostle_core::Layer::L3, &req, now, None, None);
                n += 1;
            }
        }
    }
    let per = t.elapsed().as_secs_f64() / f64::from(n) * 1e6;
    println!("decode + validate, direct: {per:.1} µs per request ({n} requests)");
    let t = Instant::now();
    for _ in 0..rounds {
        for b in &bodies {
            let _ = parse_review(b);
        }
    }
    println!(
        "decode only: {:.1} µs per request",
        t.elapsed().as_secs_f64() / f64::from(n) * 1e6
    );
    // Baselines for the decode: lexing the JSON alone, and the whole body into a tree, with
    // sonic-rs (what parse_review uses) and with serde_json (the alternative it was chosen over).
    let per = |f: &dyn Fn(&[u8])| {
        let t = Instant::now();
        for _ in 0..rounds {
            for b in &bodies {
                f(b);
            }
        }
        t.elapsed().as_secs_f64() / f64::from(n) * 1e6
    };
    println!(
        "JSON lexing only (IgnoredAny), sonic-rs: {:.1} µs per request",
        per(&|b| {
            let _ = sonic_rs::from_slice::<serde::de::IgnoredAny>(b);
        })
    );
    println!(
        "whole body into a tree, sonic-rs: {:.1} µs per request",
        per(&|b| {
            let _ = sonic_rs::from_slice::<sostle_core::manifest::Node>(b);
        })
    );
    println!(
        "whole body into a tree, serde_json: {:.1} µs per request",
        per(&|b| {
            let _ = serde_json::from_slice::<sostle_core::manifest::Node>(b);
        })
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let Ok(rt) = rt else { return };
    let t = Instant::now();
    let app = router(state.clone());
    rt.block_on(async {
        for _ in 0..rounds {
            for b in &bodies {
                let req = axum::http::Request::post("/validate/L3")
                    .body(axum::body::Body::from(b.clone()));
                if let Ok(req) = req {
                    let _ = app.clone().oneshot(req).await;
                }
            }
        }
    });
    println!(
        "whole router (oneshot): {:.1} µs per request",
        t.elapsed().as_secs_f64() / f64::from(n) * 1e6
    );
}
