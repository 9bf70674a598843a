//! The printers of `sostle verify`: for people (unit-test failures as conftest prints them),
//! JUnit XML, TAP and JSON.

use std::io::{self, Write};

use sostle_check::cases::Verdict;
use sostle_rego::{RegoTest, TestOutcome};

/// Output formats of `sostle verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    /// For people (unit-test failures as conftest prints them, then its summary line).
    Human,
    /// JUnit XML.
    Junit,
    /// TAP version 13, one line per case and unit test.
    Tap,
    /// JSON: `{"cases": […], "tests": [{"file", "namespace", "name", "outcome", "error"}], "summary"}`.
    Json,
}

/// What a `sostle verify` run found.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRun<'a> {
    /// The judged cases.
    pub verdicts: &'a [Verdict],
    /// The Rego unit tests run.
    pub tests: &'a [RegoTest],
    /// Case files that could not be read.
    pub load_errors: usize,
    /// Whether case directories were given.
    pub dirs_given: bool,
    /// Whether user policies were given.
    pub policies_given: bool,
    /// conftest verify's summary line.
    pub summary: &'a str,
}

impl VerifyRun<'_> {
    /// Unit tests that did not pass.
    pub fn failed_tests(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| t.outcome != TestOutcome::Pass)
            .count()
    }
}

/// Prints the run in `format`.
pub fn print(w: &mut dyn Write, format: VerifyFormat, r: &VerifyRun<'_>) -> io::Result<()> {
    match format {
        VerifyFormat::Human => human(w, r),
        VerifyFormat::Tap => tap(w, r),
        VerifyFormat::Json => json(w, r),
        VerifyFormat::Junit => junit(w, r),
    }
}

fn test_error(t: &RegoTest) -> Option<String> {
    match &t.outcome {
        TestOutcome::Error(e) => Some(e.clone()),
        _ => None,
    }
}

fn human(w: &mut dyn Write, r: &VerifyRun<'_>) -> io::Result<()> {
    for v in r.verdicts {
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
            writeln!(
                w,
                "       the trial stays open: yang must fail (got {}), yin must pass (got {})",
                v.yang_outcome, v.yin_outcome
            )?;
        }
    }
    if !r.verdicts.is_empty() || r.dirs_given {
        let closed = r.verdicts.iter().filter(|v| v.ok).count();
        writeln!(
            w,
            "{} cases: {closed} closed, {} open; {} unreadable",
            r.verdicts.len(),
            r.verdicts.len() - closed,
            r.load_errors
        )?;
    }
    if r.policies_given {
        if !r.verdicts.is_empty() {
            writeln!(w)?;
        }
        for t in r.tests.iter().filter(|t| t.outcome != TestOutcome::Pass) {
            writeln!(w, "FAIL - {} -  - {}", t.file, t.query())?;
            if let Some(e) = test_error(t) {
                writeln!(w, "       error: {e}")?;
            }
        }
        writeln!(w)?;
        writeln!(w, "{}", r.summary)?;
    }
    Ok(())
}

fn tap(w: &mut dyn Write, r: &VerifyRun<'_>) -> io::Result<()> {
    writeln!(w, "TAP version 13")?;
    writeln!(w, "1..{}", r.verdicts.len() + r.tests.len())?;
    let mut n = 0;
    for v in r.verdicts {
        n += 1;
        let ok = if v.ok { "ok" } else { "not ok" };
        writeln!(
            w,
            "{ok} {n} - {} - {} ({})",
            v.case.policy, v.case.note, v.case.file
        )?;
    }
    for t in r.tests {
        n += 1;
        let ok = if t.outcome == TestOutcome::Pass {
            "ok"
        } else {
            "not ok"
        };
        writeln!(w, "{ok} {n} - {} - {}", t.file, t.query())?;
        if let Some(e) = test_error(t) {
            writeln!(w, "# error: {e}")?;
        }
    }
    Ok(())
}

fn json(w: &mut dyn Write, r: &VerifyRun<'_>) -> io::Result<()> {
    let cases: Vec<serde_json::Value> = r
        .verdicts
        .iter()
        .map(|v| {
            serde_json::json!({"file": v.case.file, "policy": v.case.policy, "note": v.case.note,
                "closed": v.ok, "yang": {"sha256": v.yang_hash, "outcome": v.yang_outcome},
                "yin": {"sha256": v.yin_hash, "outcome": v.yin_outcome}, "epoch_day": v.day,
                "error": v.error})
        })
        .collect();
    let units: Vec<serde_json::Value> = r
        .tests
        .iter()
        .map(|t| {
            serde_json::json!({"file": t.file, "namespace": t.namespace, "name": t.name,
                "outcome": match t.outcome { TestOutcome::Pass => "pass",
                    TestOutcome::Fail => "fail", TestOutcome::Error(_) => "error" },
                "error": test_error(t)})
        })
        .collect();
    serde_json::to_writer_pretty(
        &mut *w,
        &serde_json::json!({"cases": cases, "tests": units, "summary": r.summary}),
    )?;
    writeln!(w)?;
    Ok(())
}

fn junit(w: &mut dyn Write, r: &VerifyRun<'_>) -> io::Result<()> {
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
        r.verdicts.len() + r.tests.len(),
        r.verdicts.iter().filter(|v| !v.ok).count() + r.failed_tests()
    )?;
    for t in r.tests {
        write!(
            w,
            r#"  <testcase classname="{}" name="{}">"#,
            esc(&t.file),
            esc(&t.query())
        )?;
        if t.outcome != TestOutcome::Pass {
            let why = test_error(t).unwrap_or_else(|| "false or undefined".into());
            write!(w, r#"<failure message="{}"/>"#, esc(&why))?;
        }
        writeln!(w, "</testcase>")?;
    }
    for v in r.verdicts {
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
    Ok(())
}

fn short(h: &str) -> &str {
    h.get(..19).unwrap_or(h)
}
