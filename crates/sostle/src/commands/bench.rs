//! `sostle bench`: the whole check beside a parse-only pass of the same parser, over the same
//! files, in one run — ratios, not lone times, because these machines are shared and noisy.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sostle_core::{manifest, Config, Engine, Layer};

use crate::check::{self, Source, TestSettings};
use crate::cli::BenchArgs;

fn best<F: FnMut() -> usize>(iterations: u32, mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed());
    }
    (best, n)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<u8> {
    let mut errors = Vec::new();
    // Every file of the corpus, hidden directories included (the corpus keeps some there).
    let walk = crate::inputs::WalkOptions {
        hidden: true,
        ..Default::default()
    };
    let sources = crate::inputs::collect(&args.paths, &walk, &mut errors).sources;
    let texts: Vec<Vec<u8>> = sources
        .iter()
        .filter_map(|s| match s {
            Source::File(p) => std::fs::read(p).ok(),
            Source::Stdin(b) | Source::Rendered { bytes: b, .. } => Some(b.to_vec()),
        })
        .collect();
    let bytes: usize = texts.iter().map(Vec::len).sum();
    let threads = rayon::current_num_threads();
    let engine = Engine::new(Arc::new(Config::default()));
    let now = sostle_core::epoch::parse_rfc3339("2026-11-27T00:00:00Z")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = TestSettings {
        layer: Some(Layer::Trial),
        ..TestSettings::new(args.paths.clone(), now)
    };
    let n = args.iterations;
    let (parse1, docs) = best(n, || {
        texts
            .iter()
            .map(|t| manifest::load_bytes(t).documents.len())
            .sum()
    });
    let (parse_par, _) = best(n, || {
        texts
            .par_iter()
            .map(|t| manifest::load_bytes(t).documents.len())
            .sum()
    });
    let (eval_mem, results) = best(n, || {
        texts
            .par_iter()
            .map(|t| {
                let loaded = manifest::load_bytes(t);
                let ctx = sostle_core::EvalContext {
                    layer_override: settings.layer,
                    ..sostle_core::EvalContext::new(settings.now)
                };
                loaded
                    .documents
                    .iter()
                    .map(|d| engine.evaluate(&d.root, &ctx).results.len())
                    .sum::<usize>()
            })
            .sum()
    });
    let (rego_suite, user_rego, user) = time_rego(&texts, &engine, settings.now, n);
    let (whole, _) = best(n, || {
        let report = check::run(&engine, &settings, &sources, Vec::new());
        let mut sink = io::sink();
        let _ = crate::output::json(&report, &mut sink);
        report.resources.len()
    });
    let times = Times {
        parse1,
        parse_par,
        eval_mem,
        whole,
        user_rego,
        rego_suite,
    };
    let corpus = (texts.len(), bytes, docs, results, threads, n);
    print_table(&times, corpus, user.err())?;
    Ok(crate::exit::OK)
}

/// The Rego rows: the exported suite through regorus, and the example user policies (when
/// they load; else the reason, printed under the table).
fn time_rego(
    texts: &[Vec<u8>],
    engine: &Engine,
    now: jiff::Timestamp,
    n: u32,
) -> (Duration, Duration, Result<(), String>) {
    let (rego_suite, _) = best(n.min(2), || {
        let suite = sostle_rego::Suite::new(engine.config()).ok();
        texts
            .par_iter()
            .map_init(
                || suite.clone(),
                |suite, t| {
                    let Some(suite) = suite.as_mut() else {
                        return 0;
                    };
                    let loaded = manifest::load_bytes(t);
                    let now_ns = i128::from(now.as_second()) * 1_000_000_000;
                    loaded
                        .documents
                        .iter()
                        .filter_map(|d| {
                            suite
                                .evaluate(&d.root.to_json(), Some(Layer::Trial), now_ns)
                                .ok()
                        })
                        .map(|o| o.deny.len() + o.warn.len())
                        .sum::<usize>()
                },
            )
            .sum()
    });
    let user_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/rego");
    // When the example policies do not load (a binary run away from its checkout), the row is
    // timed without them and the reason is printed under the table.
    let user = sostle_rego::UserPolicies::load(
        std::slice::from_ref(&user_dir),
        &[],
        &[],
        true,
        Duration::from_secs(2),
        false,
    )
    .map_err(|e| format!("{}: {e:#}", user_dir.display()));
    let (user_rego, _) = best(n, || {
        texts
            .par_iter()
            .map_init(
                || user.as_ref().ok().cloned(),
                |u, t| {
                    let Some(u) = u.as_mut() else { return 0 };
                    let loaded = manifest::load_bytes(t);
                    loaded
                        .documents
                        .iter()
                        .filter_map(|d| u.evaluate(&d.root.to_json()).ok())
                        .map(|o| o.len())
                        .sum::<usize>()
                },
            )
            .sum()
    });
    (rego_suite, user_rego, user.map(|_| ()))
}

/// The best time of each measurement.
struct Times {
    parse1: Duration,
    parse_par: Duration,
    eval_mem: Duration,
    whole: Duration,
    user_rego: Duration,
    rego_suite: Duration,
}

/// The table, ratios against the one-thread parse.
fn print_table(
    t: &Times,
    (files, bytes, docs, results, threads, n): (usize, usize, usize, usize, usize, u32),
    user_error: Option<String>,
) -> io::Result<()> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut out = io::stdout().lock();
    writeln!(out, "corpus: {} files, {:.1} MiB, {docs} documents, {results} results per pass; {threads} threads; best of {n}", files, bytes as f64 / 1048576.0)?;
    writeln!(out, "{:<52} {:>9} {:>8}", "measurement", "ms", "ratio")?;
    let base = ms(t.parse1);
    for (name, d) in [
        ("parse only, 1 thread (baseline)", t.parse1),
        ("parse only, parallel", t.parse_par),
        (
            "parse + evaluate (trial layer), parallel, in memory",
            t.eval_mem,
        ),
        (
            "t.whole check: read + parse + evaluate + JSON, parallel",
            t.whole,
        ),
        (
            "parse + user Rego (examples/rego, regorus), parallel",
            t.user_rego,
        ),
        (
            "parse + the exported suite through regorus, parallel",
            t.rego_suite,
        ),
    ] {
        writeln!(out, "{name:<52} {:>9.1} {:>7.2}x", ms(d), ms(d) / base)?;
    }
    if let Some(why) = &user_error {
        writeln!(
            out,
            "(the example user policies did not load, so the user-Rego row measured nothing: {why})"
        )?;
    }
    writeln!(
        out,
        "exported suite through regorus vs the native engine (both parse + evaluate): {:.0}x",
        ms(t.rego_suite) / ms(t.eval_mem)
    )?;
    writeln!(
        out,
        "throughput of the t.whole check: {:.1} MiB/s, {:.0} documents/s",
        bytes as f64 / 1048576.0 / t.whole.as_secs_f64(),
        docs as f64 / t.whole.as_secs_f64()
    )?;
    Ok(())
}
