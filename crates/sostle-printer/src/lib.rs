//! The printers of `sostle test`, as ripgrep's printer crate: one file each — [`human`], [`json`]
//! (SPEC §13), [`junit`], [`sarif`] 2.1.0, [`tap`], [`github`] annotations, wgpolicyk8s.io
//! [`policyreport`]s and [`conftest`]'s own formats. Each is a [`Printer`] fed one file's
//! findings at a time and writes to any `Write`, so tests print into a `Vec`. A new output
//! format is a file here and a variant of [`Format`]; the command line picks it up.

use std::io::{self, Write};

use serde::Serialize;
use sostle_check::{Located, Report};
use sostle_core::{Config, Outcome, PolicyResult, Violation};

pub mod conftest;
mod github;
mod human;
mod json;
mod junit;
mod policyreport;
mod sarif;
mod tap;
pub mod verify;
pub mod yaml;

pub use json::json_results;
pub use yaml::{print_yaml, List};

/// Output formats of `sostle test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Grouped by file, file:line:col, a fix per finding, a summary line.
    Human,
    /// The `sostle/v1` report (SPEC §13): one result per resource and policy.
    Json,
    /// JUnit XML: one test case per resource and policy.
    Junit,
    /// SARIF 2.1.0 with regions, for code-scanning dashboards.
    Sarif,
    /// TAP version 13.
    Tap,
    /// GitHub Actions workflow annotations.
    Github,
    /// wgpolicyk8s.io/v1alpha2 PolicyReport objects, one per namespace.
    Policyreport,
    /// conftest's own lines (`FAIL - file - namespace - msg`, then `N tests, N passed, …`), so
    /// scripts that parse conftest keep working. Also accepted as `stdout`.
    #[value(alias = "stdout")]
    Conftest,
    /// conftest's JSON (`[{"filename", "namespace", "successes", "failures": [{"msg"}], …}]`).
    ConftestJson,
    /// conftest's table: one row per finding (RESULT, FILE, NAMESPACE, MESSAGE).
    Table,
    /// Azure DevOps logging commands (`##vso[task.logissue type=error]…`), one per finding.
    Azuredevops,
}

/// Options that change how a report is printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintOptions {
    /// ANSI colour.
    pub color: bool,
    /// Epoch seconds stamped on PolicyReport results.
    pub now_seconds: i64,
    /// List skipped files and documents (human).
    pub verbose: bool,
}

/// The counts and lists a printer writes last.
#[derive(Debug, Clone, Copy)]
pub struct Tail<'a> {
    /// Epoch day of the run.
    pub epoch_day: i64,
    /// Counts, run errors and skipped inputs.
    pub totals: &'a sostle_check::Totals,
    /// Helm charts met.
    pub charts: &'a [sostle_check::Chart],
    /// Files left out by an ignore file or for being hidden that hold Kubernetes objects.
    pub ignored: &'a [sostle_check::inputs::Ignored],
}

/// A printer fed one file's resources at a time, in input order, then the tail: it writes as it
/// goes, so a run's memory does not grow with its input.
pub trait Printer {
    /// The resources of one input (all of them: a file is never split).
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()>;
    /// After the last file.
    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()>;
}

/// The printer of `format`.
pub fn printer(
    format: Format,
    opts: PrintOptions,
    config: &Config,
    epoch_day: i64,
    conftest: conftest::Meta,
) -> io::Result<Box<dyn Printer>> {
    Ok(match format {
        Format::Conftest | Format::ConftestJson | Format::Table | Format::Azuredevops => {
            conftest::printer(format, conftest)
                .ok_or_else(|| io::Error::other("not a conftest format"))?
        }
        Format::Human => Box::new(human::Human::new(opts)),
        Format::Json => Box::new(json::Json::new(epoch_day)),
        Format::Junit => Box::new(junit::Junit::default()),
        Format::Sarif => Box::new(sarif::Sarif::new(config)),
        Format::Tap => Box::new(tap::Tap::default()),
        Format::Github => Box::new(github::Github),
        Format::Policyreport => Box::new(policyreport::PolicyReports::new(opts)?),
    })
}

/// Prints a whole report with `printer` (for the commands that hold one).
pub fn print_report(
    printer: &mut dyn Printer,
    report: &Report,
    w: &mut dyn Write,
) -> io::Result<()> {
    for file in report.resources.chunk_by(|a, b| a.file == b.file) {
        printer.file(w, file)?;
    }
    printer.finish(
        w,
        &Tail {
            epoch_day: report.epoch_day,
            totals: &report.totals,
            charts: &[],
            ignored: &[],
        },
    )
}

/// `--output json`: the §13 object, written as it goes — `results` streamed, then `errors`,
/// `skipped`, `charts` and `summary` (key order carries no meaning in JSON).
pub fn json(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    print_report(&mut json::Json::new(report.epoch_day), report, w)
}

/// Writes `value` pretty, every line after the first indented by `indent` spaces.
pub(crate) fn write_indented(
    w: &mut dyn Write,
    value: &impl Serialize,
    indent: usize,
) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let pad = " ".repeat(indent);
    let mut lines = text.lines();
    if let Some(first) = lines.next() {
        w.write_all(first.as_bytes())?;
    }
    for line in lines {
        w.write_all(b"\n")?;
        w.write_all(pad.as_bytes())?;
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// The exempted results of a resource, each with its (honoured) exemption.
pub(crate) fn exempted(
    l: &Located,
) -> impl Iterator<Item = (&PolicyResult, &sostle_core::exemption::Judgement)> {
    l.report
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Exempted)
        .filter_map(|r| Some((r, r.exemption.as_deref()?)))
}

/// The line describing a result's exemption, or nothing.
pub(crate) fn exemption_of(r: &PolicyResult) -> String {
    r.exemption
        .as_deref()
        .map(exemption_line)
        .unwrap_or_default()
}

pub(crate) fn findings(l: &Located) -> impl Iterator<Item = (&PolicyResult, &Violation)> {
    l.report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Warn))
        .flat_map(|r| r.violations.iter().map(move |v| (r, v)))
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn violation_text(file: &str, vs: &[Violation]) -> String {
    vs.iter()
        .map(|v| {
            format!(
                "{file}:{}:{}: {} (fix: {})",
                v.pos.line, v.pos.col, v.message, v.fix
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line describing an exemption: reason, owner, reviewer, expiry.
pub fn exemption_line(j: &sostle_core::exemption::Judgement) -> String {
    let a = &j.annotations;
    format!(
        "{} (owner {}, reviewed by {}, until {})",
        a.reason.as_deref().unwrap_or(""),
        a.owner.as_deref().unwrap_or(""),
        a.reviewed.as_deref().unwrap_or(""),
        a.expires.as_deref().unwrap_or("")
    )
}

/// Sets `key` of the JSON object `obj` (which this module built as an object) to `v`.
pub fn set(obj: &mut serde_json::Value, key: &str, v: serde_json::Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert(key.to_string(), v);
    }
}
