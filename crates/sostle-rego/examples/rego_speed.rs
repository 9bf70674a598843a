//! Compares two ways of running the exported suite through regorus over a corpus, one thread:
//! the engine per document (`Suite::evaluate`) and a policy compiled once per layer and clock
//! (`Suite::compile`). Usage: rego_speed [CORPUS_DIR]

// A measuring tool run by hand: its results go to stdout, its usage errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use sostle_core::{manifest, Config, Layer};

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

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/corpus".into());
    let mut files = Vec::new();
    walk(Path::new(&dir), &mut files);
    let docs: Vec<serde_json::Value> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            manifest::load(&t)
                .documents
                .into_iter()
                .map(|d| d.root.to_json())
                .collect::<Vec<_>>()
        })
        .collect();
    let config = Config::default();
    let now_ns: i128 = 1_795_737_600 * 1_000_000_000;
    let suite = sostle_rego::Suite::new(&config)?;
    // The engine evaluated per document, as regorus's eval_rule does it.
    let t = Instant::now();
    let mut n = 0;
    for d in &docs {
        n += suite
            .evaluate_uncompiled(d, Some(Layer::Trial), now_ns)?
            .deny
            .len();
    }
    let a = t.elapsed();
    let compiled = suite.compile(Some(Layer::Trial), now_ns)?;
    let t = Instant::now();
    let mut m = 0;
    for d in &docs {
        m += compiled.evaluate(d)?.deny.len();
    }
    let b = t.elapsed();
    println!("{} documents; engine per document: {:.1} ms ({n} denials); compiled once: {:.1} ms ({m} denials)", docs.len(), a.as_secs_f64() * 1e3, b.as_secs_f64() * 1e3);
    Ok(())
}
