//! Criterion benchmarks over `../shared/corpus`, each beside its baseline in the same run:
//! serde_yaml parse-only (the yardstick), sostle's loader parse-only, and parse plus
//! the whole suite at the trial layer; plus one in-memory Deployment through the engine (the
//! webhook's per-request path). Run: `cargo bench -p sostle-core --bench engine`.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sostle_core::{manifest, Config, Engine, EvalContext, Layer};

fn corpus() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut items: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        items.sort();
        for p in items {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
        &mut files,
    );
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

fn ctx() -> EvalContext<'static> {
    EvalContext {
        layer_override: Some(Layer::Trial),
        ..EvalContext::new(
            sostle_core::epoch::parse_rfc3339("2026-11-27T00:00:00Z").unwrap_or_default(),
        )
    }
}

fn corpus_benches(c: &mut Criterion) {
    let texts = corpus();
    let bytes: usize = texts.iter().map(String::len).sum();
    let engine = Engine::new(Arc::new(Config::default()));
    let ctx = ctx();
    let mut g = c.benchmark_group("corpus");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("serde_yaml_parse_only_baseline", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for t in &texts {
                for d in serde_yaml::Deserializer::from_str(t) {
                    if <serde_yaml::Value as serde::Deserialize>::deserialize(d).is_ok() {
                        n += 1;
                    }
                }
            }
            n
        })
    });
    g.bench_function("sostle_parse_only", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| manifest::load(t).documents.len())
                .sum::<usize>()
        })
    });
    g.bench_function("sostle_parse_and_evaluate_trial", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| {
                    let l = manifest::load(t);
                    l.documents
                        .iter()
                        .map(|d| engine.evaluate(&d.root, &ctx).results.len())
                        .sum::<usize>()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

const DEPLOYMENT: &str = include_str!("../../../examples/mefine-static/deployment.yaml");

fn one_object(c: &mut Criterion) {
    let engine = Engine::new(Arc::new(Config::default()));
    let ctx = ctx();
    let loaded = manifest::load(DEPLOYMENT);
    let Some(doc) = loaded.documents.first() else {
        return;
    };
    let json = doc.root.to_json();
    let mut g = c.benchmark_group("one_deployment");
    g.bench_function("evaluate_in_memory", |b| {
        b.iter(|| engine.evaluate(&doc.root, &ctx))
    });
    g.bench_function("parse_and_evaluate_text", |b| {
        b.iter(|| {
            let l = manifest::load(DEPLOYMENT);
            l.documents
                .iter()
                .map(|d| engine.evaluate(&d.root, &ctx).results.len())
                .sum::<usize>()
        })
    });
    g.bench_function("from_json_and_evaluate (webhook path)", |b| {
        b.iter(|| engine.evaluate(&manifest::from_json(&json), &ctx))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = corpus_benches, one_object
}
criterion_main!(benches);
