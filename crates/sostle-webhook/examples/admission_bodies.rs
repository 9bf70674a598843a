//! Writes one AdmissionReview v1 body per line for every Deployment in a corpus directory — the
//! load `scripts/bench-webhook.sh` sends with wrk. Usage: admission_bodies CORPUS_DIR > bodies.jsonl

// A measuring tool run by hand: its results go to stdout, its usage errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut items: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    items.sort();
    for p in items {
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/corpus".into());
    let mut files = Vec::new();
    walk(Path::new(&dir), &mut files);
    let mut n = 0;
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for d in sostle_core::manifest::load(&text).documents {
            let obj = d.root.to_json();
            if obj.get("kind").and_then(|k| k.as_str()) != Some("Deployment") {
                continue;
            }
            n += 1;
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or("sostle-l3-crew")
                .to_string();
            let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                "uid": format!("bench-{n}"), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": obj.pointer("/metadata/name").cloned().unwrap_or_default(), "namespace": ns,
                "operation": "CREATE", "userInfo": {"username": "bench"}, "object": obj, "dryRun": false}});
            println!("{review}");
        }
    }
    eprintln!("{n} Deployment reviews");
}
