//! Runs each review of BODIES.jsonl once through the webhook's decode (`decode`), decode and
//! validation (`full`), the whole router without sockets (`router`: routing, metrics, the
//! answer; `router-idle` sets the router up and sends nothing, its baseline), or none of it
//! (`none`: reading the file and loading the engine only), so
//! `scripts/instructions-webhook.sh` can count instructions per request under callgrind —
//! a measure that, unlike time, does not move with the other load on a shared machine.
//! Usage: handler_once BODIES.jsonl none|decode|full

// A measuring tool run by hand: its results go to stdout, its usage errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use sostle_webhook::{load, parse_review, validate, Settings};

// The allocator the `sostle` binary uses, so the counts are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(mode)) = (args.next(), args.next()) else {
        eprintln!("usage: handler_once BODIES.jsonl none|decode|full|router|router-idle");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match load(&Settings::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Ok(now) = jiff::Timestamp::from_second(1_790_000_000) else {
        return ExitCode::from(2);
    };
    // Something to print, so nothing is optimized away.
    let mut out = 0usize;
    if mode.starts_with("router") {
        use tower::ServiceExt;
        let (Ok(state), Ok(rt)) = (
            sostle_webhook::AppState::new(Settings::default()),
            tokio::runtime::Builder::new_current_thread().build(),
        ) else {
            return ExitCode::from(2);
        };
        let app = sostle_webhook::router(state);
        rt.block_on(async {
            for line in text.lines().filter(|_| mode == "router") {
                let req = axum::http::Request::post("/validate/L3")
                    .body(axum::body::Body::from(line.as_bytes().to_vec()));
                if let Ok(req) = req {
                    let Ok(resp) = app.clone().oneshot(req).await;
                    out += usize::from(resp.status().is_success());
                }
            }
        });
        println!("{out}");
        return ExitCode::SUCCESS;
    }
    for line in text.lines() {
        match mode.as_str() {
            "none" => out += line.len(),
            "decode" => out += usize::from(parse_review(line.as_bytes()).is_ok()),
            _ => {
                if let Ok(req) = parse_review(line.as_bytes()) {
                    out += validate(&loaded, sostle_core::Layer::L3, &req, now, None, None)
                        .message
                        .len();
                }
            }
        }
    }
    println!("{out}");
    ExitCode::SUCCESS
}
