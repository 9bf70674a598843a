//! `sostle verify DIR`: policy unit tests as data — the crew-spiral 121 of SPEC §7. Each case
//! names a policy, a *yang* manifest that must violate it and a *yin* manifest that must pass
//! it (optionally a layer and `now`). Both are evaluated, witnessed (SHA-256 of their canonical
//! JSON) and epoch-stamped; the case closes only when yang fails and yin passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use sostle_core::{manifest, Engine, EvalContext, Layer};

use crate::cli::{VerifyArgs, VerifyFormat};

struct Case {
    file: String,
    note: String,
    policy: String,
    layer: Option<Layer>,
    now: jiff::Timestamp,
    yang: String,
    yin: String,
    /// `config:` — a SostleConfig for this case (relative to the case file), e.g. one that
    /// registers the keys a signed yin needs.
    config: Option<PathBuf>,
}

struct Verdict {
    case: Case,
    yang_hash: String,
    yin_hash: String,
    yang_outcome: String,
    yin_outcome: String,
    day: i64,
    ok: bool,
    error: Option<String>,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut items: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    items.sort();
    for p in items {
        if p.is_dir() {
            files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

fn read_case(path: &Path, default_now: jiff::Timestamp) -> anyhow::Result<Case> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let l = manifest::load(&text);
    if let Some(e) = l.errors.first() {
        return Err(anyhow!(
            "{}:{}:{}: {}",
            path.display(),
            e.line,
            e.col,
            e.message
        ));
    }
    let root = &l
        .documents
        .first()
        .ok_or_else(|| anyhow!("{}: empty case", path.display()))?
        .root;
    let field = |k: &str| {
        root.get(k)
            .and_then(manifest::Node::as_str)
            .map(str::to_string)
    };
    let need = |k: &str| {
        field(k).ok_or_else(|| {
            anyhow!(
                "{}:{}: the case needs `{k}`",
                path.display(),
                root.locate(&[k]).line
            )
        })
    };
    Ok(Case {
        file: path.display().to_string(),
        note: field("note").unwrap_or_default(),
        policy: need("policy")?,
        layer: match field("layer") {
            Some(l) => Some(
                Layer::parse(&l)
                    .ok_or_else(|| anyhow!("{}: `{l}` is not a layer", path.display()))?,
            ),
            None => None,
        },
        now: match field("now") {
            Some(n) => sostle_core::epoch::parse_rfc3339(&n)
                .map_err(|m| anyhow!("{}: now: {m}", path.display()))?,
            None => default_now,
        },
        yang: need("yang")?,
        yin: need("yin")?,
        config: field("config").map(|c| path.parent().unwrap_or(Path::new(".")).join(c)),
    })
}

fn canonical_hash(text: &str) -> anyhow::Result<(manifest::Node, String)> {
    let l = manifest::load(text);
    if let Some(e) = l.errors.first() {
        return Err(anyhow!("{}:{}: {}", e.line, e.col, e.message));
    }
    let d = l
        .documents
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no document"))?;
    let canonical = sostle_core::digest::canonical_json(&d.root.to_json());
    let hash = sostle_core::digest::sha256_hex(canonical.as_bytes());
    Ok((d.root, format!("sha256:{hash}")))
}

/// The outcome of `policy` on one manifest, by the engine's one pass (native policies and the
/// user's Rego alike).
fn outcome_of(
    engine: &Engine,
    root: &manifest::Node,
    case: &Case,
    sources: &[&dyn sostle_core::PolicySource],
) -> anyhow::Result<String> {
    let ctx = EvalContext {
        layer_override: case.layer,
        sources,
        ..EvalContext::new(case.now)
    };
    let report = engine.evaluate(root, &ctx);
    let policy = &case.policy;
    if let Some(r) = report.results.iter().find(|r| *r.policy == **policy) {
        return Ok(r.outcome.as_str().to_string());
    }
    if let Some(e) = report.errors.first() {
        return Err(anyhow!("{}", e.message));
    }
    Err(anyhow!(
        "no policy `{policy}` (native ids, or rego:<namespace>/<rule> with --policy)"
    ))
}

/// Judges one case: both manifests witnessed and evaluated; closed when yang fails (or warns)
/// and yin passes.
fn judge(engine: &Engine, case: Case, sources: &[&dyn sostle_core::PolicySource]) -> Verdict {
    let mut v = Verdict {
        yang_hash: String::new(),
        yin_hash: String::new(),
        yang_outcome: String::new(),
        yin_outcome: String::new(),
        day: engine.epoch_day(case.now),
        ok: false,
        error: None,
        case,
    };
    let result = (|| -> anyhow::Result<()> {
        let (yang, yh) = canonical_hash(&v.case.yang).context("yang")?;
        let (yin, ih) = canonical_hash(&v.case.yin).context("yin")?;
        v.yang_hash = yh;
        v.yin_hash = ih;
        v.yang_outcome = outcome_of(engine, &yang, &v.case, sources)?;
        v.yin_outcome = outcome_of(engine, &yin, &v.case, sources)?;
        Ok(())
    })();
    if let Err(e) = result {
        v.error = Some(format!("{e:#}"));
    }
    v.ok = v.error.is_none()
        && matches!(v.yang_outcome.as_str(), "fail" | "warn")
        && v.yin_outcome == "pass";
    v
}

/// Reads and judges every case under `dirs`; an unreadable case is reported and counted.
fn judge_all(
    args: &VerifyArgs,
    engine: &Engine,
    now: jiff::Timestamp,
    sources: &[&dyn sostle_core::PolicySource],
) -> anyhow::Result<(Vec<Verdict>, usize)> {
    let mut paths = Vec::new();
    for d in &args.dirs {
        files(d, &mut paths).with_context(|| format!("{}", d.display()))?;
    }
    let mut verdicts = Vec::new();
    let mut load_errors = 0;
    for p in &paths {
        let case = match read_case(p, now) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                load_errors += 1;
                continue;
            }
        };
        let own_engine = match &case.config {
            Some(c) => match crate::settings::config(Some(c)) {
                Ok(cfg) => Some(Engine::new(Arc::new(cfg))),
                Err(e) => {
                    eprintln!("error: {}: config: {e:#}", case.file);
                    load_errors += 1;
                    continue;
                }
            },
            None => None,
        };
        verdicts.push(judge(own_engine.as_ref().unwrap_or(engine), case, sources));
    }
    Ok((verdicts, load_errors))
}

pub fn run(args: VerifyArgs) -> anyhow::Result<u8> {
    let crate::settings::Settings { config, now, .. } =
        crate::settings::Settings::resolve(&args.common)?;
    let engine = Engine::new(Arc::new(config));
    let user = if args.rego.policy.is_empty() {
        None
    } else {
        Some(sostle_rego::RegoSource::new(
            sostle_rego::UserPolicies::load(
                &args.rego.policy,
                &args.rego.data,
                &args.rego.namespace,
                args.rego.all_namespaces,
                std::time::Duration::from_secs(2),
                args.rego.strict,
            )
            .map_err(|e| anyhow!("--policy: {e}"))?,
        ))
    };
    let sources: Vec<&dyn sostle_core::PolicySource> = user
        .iter()
        .map(|u| u as &dyn sostle_core::PolicySource)
        .collect();
    let (verdicts, load_errors) = judge_all(&args, &engine, now, &sources)?;
    let tests = if args.rego.policy.is_empty() {
        Vec::new()
    } else {
        sostle_rego::run_tests(
            &args.rego.policy,
            &args.rego.data,
            std::time::Duration::from_secs(10),
            args.rego.strict,
        )
        .map_err(|e| anyhow!("--policy: {e}"))?
    };
    let failed_tests = tests
        .iter()
        .filter(|t| t.outcome != sostle_rego::TestOutcome::Pass)
        .count();
    // conftest verify's summary line (every unit test is a test; none warns, none is excepted).
    let summary = format!(
        "{}, 0 skipped",
        crate::conftest::summary(tests.len() - failed_tests, 0, failed_tests, 0)
    );
    let test_error = |t: &sostle_rego::RegoTest| match &t.outcome {
        sostle_rego::TestOutcome::Error(e) => Some(e.clone()),
        _ => None,
    };
    let mut w = std::io::stdout().lock();
    match args.output {
        VerifyFormat::Human => {
            for v in &verdicts {
                let mark = if v.ok { "closed" } else { "OPEN  " };
                writeln!(
                    w,
                    "{mark} {} — {} ({})",
                    v.case.policy, v.case.note, v.case.file
                )?;
                writeln!(
                    w,
                    "       yang {} → {}   yin {} → {}   epoch day {}",
                    short(&v.yang_hash),
                    v.yang_outcome,
                    short(&v.yin_hash),
                    v.yin_outcome,
                    v.day
                )?;
                if let Some(e) = &v.error {
                    writeln!(w, "       error: {e}")?;
                } else if !v.ok {
                    writeln!(w, "       the trial stays open: yang must fail (got {}), yin must pass (got {})", v.yang_outcome, v.yin_outcome)?;
                }
            }
            if !verdicts.is_empty() || !args.dirs.is_empty() {
                let closed = verdicts.iter().filter(|v| v.ok).count();
                writeln!(
                    w,
                    "{} cases: {closed} closed, {} open; {load_errors} unreadable",
                    verdicts.len(),
                    verdicts.len() - closed
                )?;
            }
            if !args.rego.policy.is_empty() {
                if !verdicts.is_empty() {
                    writeln!(w)?;
                }
                for t in tests
                    .iter()
                    .filter(|t| t.outcome != sostle_rego::TestOutcome::Pass)
                {
                    writeln!(w, "FAIL - {} -  - {}", t.file, t.query())?;
                    if let Some(e) = test_error(t) {
                        writeln!(w, "       error: {e}")?;
                    }
                }
                writeln!(w)?;
                writeln!(w, "{summary}")?;
            }
        }
        VerifyFormat::Tap => {
            writeln!(w, "TAP version 13")?;
            writeln!(w, "1..{}", verdicts.len() + tests.len())?;
            let mut n = 0;
            for v in &verdicts {
                n += 1;
                let ok = if v.ok { "ok" } else { "not ok" };
                writeln!(
                    w,
                    "{ok} {n} - {} - {} ({})",
                    v.case.policy, v.case.note, v.case.file
                )?;
            }
            for t in &tests {
                n += 1;
                let ok = if t.outcome == sostle_rego::TestOutcome::Pass {
                    "ok"
                } else {
                    "not ok"
                };
                writeln!(w, "{ok} {n} - {} - {}", t.file, t.query())?;
                if let Some(e) = test_error(t) {
                    writeln!(w, "# error: {e}")?;
                }
            }
        }
        VerifyFormat::Json => {
            let cases: Vec<serde_json::Value> = verdicts
                .iter()
                .map(|v| {
                    serde_json::json!({"file": v.case.file, "policy": v.case.policy, "note": v.case.note,
                        "closed": v.ok, "yang": {"sha256": v.yang_hash, "outcome": v.yang_outcome},
                        "yin": {"sha256": v.yin_hash, "outcome": v.yin_outcome}, "epoch_day": v.day,
                        "error": v.error})
                })
                .collect();
            let units: Vec<serde_json::Value> = tests
                .iter()
                .map(|t| {
                    serde_json::json!({"file": t.file, "namespace": t.namespace, "name": t.name,
                        "outcome": match t.outcome { sostle_rego::TestOutcome::Pass => "pass",
                            sostle_rego::TestOutcome::Fail => "fail", sostle_rego::TestOutcome::Error(_) => "error" },
                        "error": test_error(t)})
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut w,
                &serde_json::json!({"cases": cases, "tests": units, "summary": summary}),
            )?;
            writeln!(w)?;
        }
        VerifyFormat::Junit => {
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
            };
            writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
            writeln!(
                w,
                r#"<testsuite name="sostle verify" tests="{}" failures="{}">"#,
                verdicts.len() + tests.len(),
                verdicts.iter().filter(|v| !v.ok).count() + failed_tests
            )?;
            for t in &tests {
                write!(
                    w,
                    r#"  <testcase classname="{}" name="{}">"#,
                    esc(&t.file),
                    esc(&t.query())
                )?;
                if t.outcome != sostle_rego::TestOutcome::Pass {
                    let why = test_error(t).unwrap_or_else(|| "false or undefined".into());
                    write!(w, r#"<failure message="{}"/>"#, esc(&why))?;
                }
                writeln!(w, "</testcase>")?;
            }
            for v in &verdicts {
                write!(
                    w,
                    r#"  <testcase classname="{}" name="{}">"#,
                    esc(&v.case.policy),
                    esc(&format!("{} ({})", v.case.note, v.case.file))
                )?;
                if !v.ok {
                    let why = v.error.clone().unwrap_or_else(|| {
                        format!(
                            "yang {} (want fail), yin {} (want pass)",
                            v.yang_outcome, v.yin_outcome
                        )
                    });
                    write!(w, r#"<failure message="{}"/>"#, esc(&why))?;
                }
                writeln!(
                    w,
                    "<system-out>yang {} yin {} epoch day {}</system-out></testcase>",
                    v.yang_hash, v.yin_hash, v.day
                )?;
            }
            writeln!(w, "</testsuite>")?;
        }
    }
    Ok(if load_errors > 0 {
        crate::exit::ERROR
    } else if verdicts.iter().all(|v| v.ok) && failed_tests == 0 {
        crate::exit::OK
    } else {
        crate::exit::FAIL
    })
}

fn short(h: &str) -> &str {
    h.get(..19).unwrap_or(h)
}
