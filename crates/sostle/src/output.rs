//! Printers for `sostle test`: human, json (SPEC §13), junit, sarif 2.1.0, tap, github
//! annotations and wgpolicyk8s.io PolicyReports. Each writes to any `Write`, so tests print
//! into a `Vec`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;
use sostle_core::{Config, Outcome, PolicyResult, Violation};

use crate::check::{Located, Report};

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

#[derive(Serialize)]
struct JsonResource<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    file: &'a str,
    /// For rendered input: the file the document came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    line: u32,
    document: usize,
    resource: JsonResource<'a>,
    layer: &'static str,
    policy: &'a str,
    outcome: Outcome,
    violations: Vec<JsonViolation<'a>>,
    exemption: Option<&'a sostle_core::exemption::Judgement>,
}

#[derive(Serialize)]
struct JsonViolation<'a> {
    container: Option<&'a str>,
    path: &'a str,
    line: u32,
    column: u32,
    message: &'a str,
    fix: &'a str,
}

#[derive(Serialize)]
struct JsonError<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    message: &'a str,
}

fn resource_json(l: &Located) -> JsonResource<'_> {
    let r = &l.report.resource;
    JsonResource {
        api_version: &r.api_version,
        kind: &r.kind,
        namespace: r.namespace.as_deref(),
        name: &r.name,
    }
}

/// The results of some resources as §13 JSON result objects.
pub fn json_results(resources: &[Located]) -> serde_json::Value {
    let mut results = Vec::with_capacity(resources.len() * 11);
    push_results(resources, &mut results);
    serde_json::to_value(&results).unwrap_or_default()
}

fn push_results<'a>(resources: &'a [Located], results: &mut Vec<JsonResult<'a>>) {
    for l in resources {
        for r in &l.report.results {
            results.push(JsonResult {
                file: &l.file,
                source: l.origin.as_deref(),
                line: l.report.pos.line,
                document: l.document,
                resource: resource_json(l),
                layer: l.report.layer.as_str(),
                policy: &r.policy,
                outcome: r.outcome,
                violations: r
                    .violations
                    .iter()
                    .map(|v| JsonViolation {
                        container: v.container.as_deref(),
                        path: &v.path,
                        line: v.pos.line,
                        column: v.pos.col,
                        message: &v.message,
                        fix: &v.fix,
                    })
                    .collect(),
                exemption: r.exemption.as_deref(),
            });
        }
    }
}

/// The counts and lists a printer writes last.
#[derive(Debug, Clone, Copy)]
pub struct Tail<'a> {
    /// Epoch day of the run.
    pub epoch_day: i64,
    /// Counts, run errors and skipped inputs.
    pub totals: &'a crate::check::Totals,
    /// Helm charts met.
    pub charts: &'a [crate::check::Chart],
    /// Files left out by an ignore file or for being hidden that hold Kubernetes objects.
    pub ignored: &'a [crate::inputs::Ignored],
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
    format: crate::cli::Format,
    opts: PrintOptions,
    config: &Config,
    epoch_day: i64,
    conftest: crate::conftest::Meta,
) -> io::Result<Box<dyn Printer>> {
    use crate::cli::Format;
    Ok(match format {
        Format::Conftest | Format::ConftestJson | Format::Table | Format::Azuredevops => {
            crate::conftest::printer(format, conftest)
                .ok_or_else(|| io::Error::other("not a conftest format"))?
        }
        Format::Human => Box::new(Human::new(opts)),
        Format::Json => Box::new(Json::new(epoch_day)),
        Format::Junit => Box::new(Junit::default()),
        Format::Sarif => Box::new(Sarif::new(config)),
        Format::Tap => Box::new(Tap::default()),
        Format::Github => Box::new(Github),
        Format::Policyreport => Box::new(PolicyReports::new(opts)?),
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
    print_report(&mut Json::new(report.epoch_day), report, w)
}

/// Writes `value` pretty, every line after the first indented by `indent` spaces.
fn write_indented(w: &mut dyn Write, value: &impl Serialize, indent: usize) -> io::Result<()> {
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

struct Json {
    epoch_day: i64,
    started: bool,
    first: bool,
}

impl Json {
    fn new(epoch_day: i64) -> Json {
        Json {
            epoch_day,
            started: false,
            first: true,
        }
    }

    fn start(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if !self.started {
            self.started = true;
            write!(
                w,
                "{{\n  \"report\": \"sostle/v1\",\n  \"epoch_day\": {},\n  \"results\": [",
                self.epoch_day
            )?;
        }
        Ok(())
    }
}

impl Printer for Json {
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        self.start(w)?;
        let mut results = Vec::new();
        push_results(resources, &mut results);
        for r in &results {
            w.write_all(if self.first { b"\n    " } else { b",\n    " })?;
            self.first = false;
            write_indented(w, r, 4)?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        self.start(w)?;
        w.write_all(if self.first { b"]" } else { b"\n  ]" })?;
        let errors: Vec<JsonError<'_>> = tail
            .totals
            .errors
            .iter()
            .map(|e| JsonError {
                file: &e.file,
                line: e.line,
                column: e.column,
                message: &e.message,
            })
            .collect();
        w.write_all(b",\n  \"errors\": ")?;
        write_indented(w, &errors, 2)?;
        w.write_all(b",\n  \"skipped\": ")?;
        write_indented(w, &tail.totals.skipped, 2)?;
        w.write_all(b",\n  \"charts\": ")?;
        write_indented(w, &tail.charts, 2)?;
        w.write_all(b",\n  \"ignored\": ")?;
        write_indented(w, &tail.ignored, 2)?;
        w.write_all(b",\n  \"summary\": ")?;
        write_indented(w, &tail.totals.summary, 2)?;
        w.write_all(b"\n}\n")
    }
}

fn findings(l: &Located) -> impl Iterator<Item = (&PolicyResult, &Violation)> {
    l.report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Warn))
        .flat_map(|r| r.violations.iter().map(move |v| (r, v)))
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// `--output human`: findings grouped by file, `file:line:col`, the source line with a caret, a
/// fix each, a summary line.
struct Human {
    p: Paint,
    verbose: bool,
    current: Option<std::sync::Arc<str>>,
}

impl Human {
    fn new(opts: PrintOptions) -> Human {
        Human {
            p: Paint(opts.color),
            verbose: opts.verbose,
            current: None,
        }
    }
}

impl Printer for Human {
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        for l in resources {
            for r in l
                .report
                .results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Warn))
            {
                for v in &r.violations {
                    if self.current.as_deref() != Some(&*l.file) {
                        if self.current.is_some() {
                            writeln!(w)?;
                        }
                        writeln!(w, "{}", self.p.wrap("1", &l.file))?;
                        self.current = Some(l.file.clone());
                    }
                    let (tag, code) = match r.outcome {
                        Outcome::Fail => ("FAIL", "31;1"),
                        _ => ("WARN", "33;1"),
                    };
                    writeln!(
                        w,
                        "  {}:{}:{}: {} {} {} [{}]",
                        l.file,
                        v.pos.line,
                        v.pos.col,
                        self.p.wrap(code, tag),
                        self.p.wrap("1", &r.policy),
                        l.report.resource.display(),
                        l.report.layer.as_str()
                    )?;
                    if let Some(o) = &l.origin {
                        writeln!(w, "      in {o}")?;
                    }
                    writeln!(w, "      {}", v.message)?;
                    if let Some(text) = l.line_text(v.pos.line) {
                        snippet(w, &self.p, code, v.pos.line, v.pos.col, text)?;
                    }
                    writeln!(w, "      {} {}", self.p.wrap("36", "fix:"), v.fix)?;
                }
                if let Some(j) = r.exemption.as_deref() {
                    writeln!(
                        w,
                        "      {} the exemption of {} is not honoured:",
                        self.p.wrap("33", "exemption:"),
                        r.policy
                    )?;
                    for problem in &j.problems {
                        writeln!(w, "        - {problem}")?;
                    }
                }
            }
            for r in l
                .report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Exempted)
            {
                let Some(j) = r.exemption.as_deref() else {
                    continue;
                };
                if self.current.as_deref() != Some(&*l.file) {
                    if self.current.is_some() {
                        writeln!(w)?;
                    }
                    writeln!(w, "{}", self.p.wrap("1", &l.file))?;
                    self.current = Some(l.file.clone());
                }
                let pos = r.violations.first().map_or(j.annotations.pos, |v| v.pos);
                writeln!(
                    w,
                    "  {}:{}:{}: {} {} {} [{}]",
                    l.file,
                    pos.line,
                    pos.col,
                    self.p.wrap("36;1", "EXEMPT"),
                    self.p.wrap("1", &r.policy),
                    l.report.resource.display(),
                    l.report.layer.as_str()
                )?;
                writeln!(
                    w,
                    "      {} — owner {}, reviewed by {}, until {}",
                    j.annotations.reason.as_deref().unwrap_or(""),
                    j.annotations.owner.as_deref().unwrap_or(""),
                    j.annotations.reviewed.as_deref().unwrap_or(""),
                    j.annotations.expires.as_deref().unwrap_or("")
                )?;
                for warning in &j.warnings {
                    writeln!(w, "      {} {warning}", self.p.wrap("33;1", "warning:"))?;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        if self.current.is_some() {
            writeln!(w)?;
        }
        for e in &tail.totals.errors {
            let at = match (e.line, e.column) {
                (0, _) => e.file.clone(),
                (l, 0) => format!("{}:{l}", e.file),
                (l, c) => format!("{}:{l}:{c}", e.file),
            };
            writeln!(w, "{} {at}: {}", self.p.wrap("31;1", "error:"), e.message)?;
        }
        for ig in tail.ignored {
            writeln!(
                w,
                "{} {}: holds Kubernetes objects but is left out by {} (`--no-ignore --hidden` checks it)",
                self.p.wrap("33;1", "ignored:"),
                ig.file,
                ig.rule
            )?;
        }
        if self.verbose {
            for sk in &tail.totals.skipped {
                let at = match (sk.line, sk.document) {
                    (0, _) | (_, None) => sk.file.to_string(),
                    (l, Some(d)) => format!("{}:{l} (document {d})", sk.file),
                };
                writeln!(w, "{} {at}: {}", self.p.wrap("2", "skipped:"), sk.reason)?;
            }
        }
        let s = tail.totals.summary;
        let fail = format!("{} fail", s.fail);
        let warn = format!("{} warn", s.warn);
        let errors = format!("{} error{}", s.errors, if s.errors == 1 { "" } else { "s" });
        let (files, docs) = (tail.totals.skipped_files, tail.totals.skipped_documents);
        let mut skipped = String::new();
        if files > 0 {
            skipped.push_str(&format!(
                "; {files} file{} not Kubernetes (skipped)",
                if files == 1 { "" } else { "s" }
            ));
        }
        if docs > 0 {
            skipped.push_str(&format!(
                "; {docs} other document{} not Kubernetes (skipped)",
                if docs == 1 { "" } else { "s" }
            ));
        }
        if !tail.ignored.is_empty() {
            let n = tail.ignored.len();
            skipped.push_str(&format!(
                "; {n} file{} of Kubernetes objects ignored",
                if n == 1 { "" } else { "s" }
            ));
        }
        writeln!(
            w,
            "{} resources: {} pass, {}, {}, {} exempted, {} skip; {} (epoch day {}){skipped}",
            s.resources,
            s.pass,
            if s.fail > 0 {
                self.p.wrap("31;1", &fail)
            } else {
                fail
            },
            if s.warn > 0 {
                self.p.wrap("33;1", &warn)
            } else {
                warn
            },
            s.exempted,
            s.skip,
            if s.errors > 0 {
                self.p.wrap("31;1", &errors)
            } else {
                errors
            },
            tail.epoch_day
        )
    }
}

/// The source line a finding points at, with a caret under its column (as rustc and ruff show
/// them); tabs before the column are kept so the caret lines up.
fn snippet(
    w: &mut dyn Write,
    p: &Paint,
    code: &str,
    line: u32,
    col: u32,
    text: &str,
) -> io::Result<()> {
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    let pad: String = text
        .chars()
        .take(col.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    writeln!(w, "      {} {text}", p.wrap("34", &format!("{number} |")))?;
    writeln!(
        w,
        "      {} {pad}{}",
        p.wrap("34", &format!("{gutter} |")),
        p.wrap(code, "^")
    )
}

fn xml_escape(s: &str) -> String {
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

fn violation_text(file: &str, vs: &[Violation]) -> String {
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

/// `--output junit`: a test suite per file, a test case per resource and policy. (The root
/// `<testsuites>` carries no totals: they are known only at the end of a streamed run, and
/// JUnit readers sum the suites.)
#[derive(Default)]
struct Junit {
    started: bool,
}

impl Junit {
    fn start(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if !self.started {
            self.started = true;
            writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
            writeln!(w, r#"<testsuites name="sostle">"#)?;
        }
        Ok(())
    }
}

impl Printer for Junit {
    fn file(&mut self, w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        self.start(w)?;
        let Some(first) = ls.first() else {
            return Ok(());
        };
        let file: &str = &first.file;
        let results = ls.iter().flat_map(|l| &l.report.results);
        let (mut tests, mut failures, mut skipped) = (0, 0, 0);
        for r in results {
            tests += 1;
            match r.outcome {
                Outcome::Fail => failures += 1,
                Outcome::Skip | Outcome::Exempted => skipped += 1,
                _ => {}
            }
        }
        writeln!(
            w,
            r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" skipped="{skipped}" errors="0">"#,
            xml_escape(file)
        )?;
        for l in ls {
            for r in &l.report.results {
                let name = format!(
                    "{} {} [{}]",
                    l.report.resource.display(),
                    r.policy,
                    l.report.layer.as_str()
                );
                write!(
                    w,
                    r#"    <testcase classname="{}" name="{}""#,
                    xml_escape(file),
                    xml_escape(&name)
                )?;
                match r.outcome {
                    Outcome::Pass => writeln!(w, "/>")?,
                    Outcome::Skip => writeln!(w, "><skipped/></testcase>")?,
                    Outcome::Exempted => {
                        let why = r
                            .exemption
                            .as_deref()
                            .map(exemption_line)
                            .unwrap_or_default();
                        writeln!(
                            w,
                            r#"><skipped message="{}"/></testcase>"#,
                            xml_escape(&format!("exempted: {why}"))
                        )?
                    }
                    Outcome::Fail => {
                        let first = r.violations.first().map_or("", |v| v.message.as_str());
                        writeln!(
                            w,
                            r#"><failure type="{}" message="{}">{}</failure></testcase>"#,
                            xml_escape(&r.policy),
                            xml_escape(first),
                            xml_escape(&violation_text(file, &r.violations))
                        )?;
                    }
                    Outcome::Warn => writeln!(
                        w,
                        "><system-out>WARN {}</system-out></testcase>",
                        xml_escape(&violation_text(file, &r.violations))
                    )?,
                }
            }
        }
        writeln!(w, "  </testsuite>")?;
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        self.start(w)?;
        if !tail.totals.errors.is_empty() {
            writeln!(
                w,
                r#"  <testsuite name="sostle errors" tests="{0}" failures="0" skipped="0" errors="{0}">"#,
                tail.totals.errors.len()
            )?;
            for e in &tail.totals.errors {
                writeln!(
                    w,
                    r#"    <testcase classname="{}" name="{}:{}:{}"><error message="{}"/></testcase>"#,
                    xml_escape(&e.file),
                    xml_escape(&e.file),
                    e.line,
                    e.column,
                    xml_escape(&e.message)
                )?;
            }
            writeln!(w, "  </testsuite>")?;
        }
        writeln!(w, "</testsuites>")
    }
}

/// `--output sarif`: SARIF 2.1.0, one result per offending field, with regions; results are
/// written as files complete, the invocation (errors) after them.
struct Sarif {
    rules: Vec<serde_json::Value>,
    started: bool,
    first: bool,
}

impl Sarif {
    fn new(config: &Config) -> Sarif {
        let mut rules = vec![json!({
            "id": sostle_core::report::LAYER_GATE,
            "name": sostle_core::report::LAYER_GATE,
            "shortDescription": {"text": "the layer's own admission gate (SPEC §2)"},
            "defaultConfiguration": {"level": "error"},
        })];
        for p in &config.policies {
            rules.push(json!({
            "id": p.id,
            "name": p.id,
            "shortDescription": {"text": p.summary},
            "defaultConfiguration": {"level": if p.verdict == sostle_core::suite::Verdict::Deny { "error" } else { "warning" }},
            "properties": {"layers": p.layers.to_string()},
        }));
        }
        Sarif {
            rules,
            started: false,
            first: true,
        }
    }

    fn start(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let tool = json!({"driver": {
            "name": "sostle",
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": "https://github.com/eose/sostle",
            "rules": self.rules,
        }});
        w.write_all(b"{\n  \"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\",\n  \"version\": \"2.1.0\",\n  \"runs\": [\n    {\n      \"tool\": ")?;
        write_indented(w, &tool, 6)?;
        w.write_all(b",\n      \"results\": [")
    }
}

impl Printer for Sarif {
    fn file(&mut self, w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        self.start(w)?;
        let mut results = Vec::new();
        for l in ls {
            for (r, v) in findings(l) {
                results.push(json!({
                "ruleId": &*r.policy,
                "level": if r.outcome == Outcome::Fail { "error" } else { "warning" },
                "message": {"text": format!("{} — fix: {}", v.message, v.fix)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&l.file)},
                        "region": {"startLine": v.pos.line.max(1), "startColumn": v.pos.col.max(1)},
                    },
                    "logicalLocations": [{"fullyQualifiedName": format!("{}#{}", l.report.resource.display(), v.path), "kind": "resource"}],
                }],
                "properties": {
                    "resource": l.report.resource.display(),
                    "layer": l.report.layer.as_str(),
                    "container": v.container,
                    "path": v.path,
                    "document": l.document,
                },
            }));
            }
        }
        for l in ls {
            for r in l
                .report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Exempted)
            {
                let justification = r
                    .exemption
                    .as_deref()
                    .map(exemption_line)
                    .unwrap_or_default();
                for v in &r.violations {
                    results.push(json!({
                    "ruleId": &*r.policy,
                    "level": "note",
                    "message": {"text": format!("{} — exempted", v.message)},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri(&l.file)},
                            "region": {"startLine": v.pos.line.max(1), "startColumn": v.pos.col.max(1)},
                        },
                    }],
                    "suppressions": [{"kind": "external", "status": "accepted", "justification": justification}],
                    "properties": {"resource": l.report.resource.display(), "layer": l.report.layer.as_str(), "path": v.path},
                }));
                }
            }
        }
        for r in &results {
            w.write_all(if self.first {
                b"\n        "
            } else {
                b",\n        "
            })?;
            self.first = false;
            write_indented(w, r, 8)?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        self.start(w)?;
        w.write_all(if self.first { b"]" } else { b"\n      ]" })?;
        let notifications: Vec<_> = tail
            .totals
            .errors
            .iter()
            .map(|e| {
                let mut loc =
                    json!({"physicalLocation": {"artifactLocation": {"uri": uri(&e.file)}}});
                if e.line > 0 {
                    if let Some(physical) = loc.get_mut("physicalLocation") {
                        set(
                            physical,
                            "region",
                            json!({"startLine": e.line, "startColumn": e.column.max(1)}),
                        );
                    }
                }
                json!({"level": "error", "message": {"text": e.message}, "locations": [loc]})
            })
            .collect();
        let invocations = json!([{
            "executionSuccessful": tail.totals.errors.is_empty(),
            "toolExecutionNotifications": notifications,
        }]);
        w.write_all(b",\n      \"invocations\": ")?;
        write_indented(w, &invocations, 6)?;
        w.write_all(b",\n      \"properties\": ")?;
        write_indented(w, &json!({"epoch_day": tail.epoch_day}), 6)?;
        w.write_all(b"\n    }\n  ]\n}\n")
    }
}

fn uri(file: &str) -> String {
    file.replace('\\', "/").replace(' ', "%20")
}

/// `--output tap`: TAP version 13; warnings are `not ok … # TODO` (reported, not failing). The
/// plan (`1..N`) comes last, as TAP allows, so results stream.
#[derive(Default)]
struct Tap {
    started: bool,
    n: usize,
}

impl Tap {
    fn start(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if !self.started {
            self.started = true;
            writeln!(w, "TAP version 13")?;
        }
        Ok(())
    }
}

impl Printer for Tap {
    fn file(&mut self, w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        self.start(w)?;
        for l in ls {
            for r in &l.report.results {
                self.n += 1;
                let n = self.n;
                let name = format!(
                    "{} {} {} [{}]",
                    l.file,
                    l.report.resource.display(),
                    r.policy,
                    l.report.layer.as_str()
                );
                let name = name.replace('#', "\\#");
                match r.outcome {
                    Outcome::Pass => writeln!(w, "ok {n} - {name}")?,
                    Outcome::Skip => writeln!(w, "ok {n} - {name} # SKIP not applicable")?,
                    Outcome::Exempted => {
                        let why = r
                            .exemption
                            .as_deref()
                            .map(exemption_line)
                            .unwrap_or_default();
                        writeln!(
                            w,
                            "ok {n} - {name} # SKIP exempted: {}",
                            why.replace('#', "\\#")
                        )?
                    }
                    Outcome::Fail | Outcome::Warn => {
                        if r.outcome == Outcome::Warn {
                            writeln!(w, "not ok {n} - {name} # TODO warn")?;
                        } else {
                            writeln!(w, "not ok {n} - {name}")?;
                        }
                        writeln!(w, "  ---")?;
                        writeln!(
                            w,
                            "  severity: {}",
                            if r.outcome == Outcome::Fail {
                                "fail"
                            } else {
                                "warn"
                            }
                        )?;
                        writeln!(w, "  violations:")?;
                        for v in &r.violations {
                            writeln!(
                                w,
                                "    - at: {}",
                                serde_json::to_string(&format!(
                                    "{}:{}:{}",
                                    l.file, v.pos.line, v.pos.col
                                ))
                                .unwrap_or_default()
                            )?;
                            writeln!(
                                w,
                                "      path: {}",
                                serde_json::to_string(&v.path).unwrap_or_default()
                            )?;
                            writeln!(
                                w,
                                "      message: {}",
                                serde_json::to_string(&v.message).unwrap_or_default()
                            )?;
                            writeln!(
                                w,
                                "      fix: {}",
                                serde_json::to_string(&v.fix).unwrap_or_default()
                            )?;
                        }
                        writeln!(w, "  ...")?;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        self.start(w)?;
        for e in &tail.totals.errors {
            self.n += 1;
            let n = self.n;
            writeln!(
                w,
                "not ok {n} - error {}:{}:{}: {}",
                e.file,
                e.line,
                e.column,
                e.message.replace('#', "\\#")
            )?;
        }
        writeln!(w, "1..{}", self.n)
    }
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `--output github`: workflow commands that annotate the file and line in a pull request.
struct Github;

impl Printer for Github {
    fn file(&mut self, w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        for l in ls {
            for (r, v) in findings(l) {
                let level = if r.outcome == Outcome::Fail {
                    "error"
                } else {
                    "warning"
                };
                writeln!(
                    w,
                    "::{level} file={},line={},col={},title={}::{}",
                    gh_prop(&l.file),
                    v.pos.line,
                    v.pos.col,
                    gh_prop(&format!("{} {}", r.policy, l.report.resource.display())),
                    gh_data(&format!("{} — fix: {}", v.message, v.fix))
                )?;
            }
        }
        for l in ls {
            for r in l
                .report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Exempted)
            {
                let Some(j) = r.exemption.as_deref() else {
                    continue;
                };
                let pos = r.violations.first().map_or(j.annotations.pos, |v| v.pos);
                let level = if j.warnings.is_empty() {
                    "notice"
                } else {
                    "warning"
                };
                let mut text = format!("{} exempted: {}", r.policy, exemption_line(j));
                for warning in &j.warnings {
                    text.push_str(&format!("; {warning}"));
                }
                writeln!(
                    w,
                    "::{level} file={},line={},col={},title={}::{}",
                    gh_prop(&l.file),
                    pos.line,
                    pos.col,
                    gh_prop(&format!(
                        "{} {} exempted",
                        r.policy,
                        l.report.resource.display()
                    )),
                    gh_data(&text)
                )?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        for e in &tail.totals.errors {
            let mut props = format!("file={}", gh_prop(&e.file));
            if e.line > 0 {
                props.push_str(&format!(",line={}", e.line));
            }
            if e.column > 0 {
                props.push_str(&format!(",col={}", e.column));
            }
            writeln!(
                w,
                "::error {props},title=sostle error::{}",
                gh_data(&e.message)
            )?;
        }
        for ig in tail.ignored {
            writeln!(
                w,
                "::warning file={},title=sostle ignored::{}",
                gh_prop(&ig.file),
                gh_data(&format!(
                    "holds Kubernetes objects but is left out by {} (--no-ignore --hidden checks it)",
                    ig.rule
                ))
            )?;
        }
        let s = tail.totals.summary;
        writeln!(
        w,
        "sostle: {} resources: {} pass, {} fail, {} warn, {} exempted, {} skip; {} errors (epoch day {})",
        s.resources, s.pass, s.fail, s.warn, s.exempted, s.skip, s.errors, tail.epoch_day
    )
    }
}

/// Bytes of one namespace's results kept in memory before they go to the spill file.
const SPILL_BLOCK: usize = 16 * 1024;

/// One namespace's report so far: counts, and its results (pretty JSON, comma-separated) as
/// blocks in the spill file plus the block being filled.
#[derive(Default)]
struct Group {
    summary: [usize; 5],
    count: usize,
    blocks: Vec<(u64, usize)>,
    buf: Vec<u8>,
}

/// `--output policyreport`: one `wgpolicyk8s.io/v1alpha2` PolicyReport per namespace (a
/// ClusterPolicyReport for cluster-scoped and namespace-less resources), as a YAML stream whose
/// documents are JSON (which is YAML), ready for `kubectl apply -f -`. Reports group results by
/// namespace across the whole input, so results are spilled, as they come, to an anonymous
/// temporary file in blocks per namespace and read back at the end: memory stays flat.
struct PolicyReports {
    now_seconds: i64,
    groups: BTreeMap<Option<String>, Group>,
    spill: std::fs::File,
    offset: u64,
}

impl PolicyReports {
    fn new(opts: PrintOptions) -> io::Result<PolicyReports> {
        Ok(PolicyReports {
            now_seconds: opts.now_seconds,
            groups: BTreeMap::new(),
            spill: tempfile::tempfile()?,
            offset: 0,
        })
    }
}

impl Printer for PolicyReports {
    fn file(&mut self, _w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        for l in ls {
            let res = &l.report.resource;
            let ns = res.namespace.as_deref();
            for r in &l.report.results {
                let (result, idx) = match r.outcome {
                    Outcome::Pass => ("pass", 0),
                    Outcome::Fail => ("fail", 1),
                    Outcome::Warn => ("warn", 2),
                    Outcome::Skip | Outcome::Exempted => ("skip", 4),
                };
                let group = self.groups.entry(ns.map(str::to_string)).or_default();
                if let Some(s) = group.summary.get_mut(idx) {
                    *s += 1;
                }
                let first = r.violations.first();
                let message = match r.outcome {
                    Outcome::Pass => format!("{} passed", r.policy),
                    Outcome::Skip => {
                        format!("{} does not apply at {}", r.policy, l.report.layer.as_str())
                    }
                    Outcome::Exempted => format!(
                        "{} exempted: {}",
                        r.policy,
                        r.exemption
                            .as_deref()
                            .map(exemption_line)
                            .unwrap_or_default()
                    ),
                    _ => r
                        .violations
                        .iter()
                        .map(|v| v.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                let mut properties = serde_json::Map::new();
                properties.insert("layer".into(), json!(l.report.layer.as_str()));
                properties.insert("file".into(), json!(&*l.file));
                properties.insert("document".into(), json!(l.document.to_string()));
                if let Some(v) = first {
                    properties.insert("line".into(), json!(v.pos.line.to_string()));
                    properties.insert("column".into(), json!(v.pos.col.to_string()));
                    properties.insert("path".into(), json!(v.path));
                    properties.insert("fix".into(), json!(v.fix));
                }
                if r.outcome == Outcome::Exempted {
                    properties.insert("exempted".into(), json!("true"));
                }
                if let Some(j) = r.exemption.as_deref() {
                    let a = &j.annotations;
                    properties.insert(
                        "exemption.reason".into(),
                        json!(a.reason.as_deref().unwrap_or("")),
                    );
                    properties.insert(
                        "exemption.expires".into(),
                        json!(a.expires.as_deref().unwrap_or("")),
                    );
                    properties.insert(
                        "exemption.owner".into(),
                        json!(a.owner.as_deref().unwrap_or("")),
                    );
                    properties.insert(
                        "exemption.reviewed".into(),
                        json!(a.reviewed.as_deref().unwrap_or("")),
                    );
                    properties.insert("exemption.valid".into(), json!(j.valid.to_string()));
                    if !j.problems.is_empty() {
                        properties
                            .insert("exemption.problems".into(), json!(j.problems.join("; ")));
                    }
                }
                let mut resource =
                    json!({"apiVersion": res.api_version, "kind": res.kind, "name": res.name});
                if let Some(ns) = ns {
                    set(&mut resource, "namespace", json!(ns));
                }
                let item = json!({
                    "source": "sostle",
                    "policy": &*r.policy,
                    "rule": &*r.policy,
                    "category": format!("sostle {}", l.report.layer.as_str()),
                    "result": result,
                    "severity": if r.outcome == Outcome::Fail { "high" } else { "medium" },
                    "scored": true,
                    "message": message,
                    "resources": [resource],
                    "properties": properties,
                    "timestamp": {"seconds": self.now_seconds, "nanos": 0},
                });
                let group = self.groups.entry(ns.map(str::to_string)).or_default();
                if group.count > 0 {
                    group.buf.extend_from_slice(b",\n    ");
                }
                group.count += 1;
                write_indented(&mut group.buf, &item, 4)?;
                if group.buf.len() >= SPILL_BLOCK {
                    self.spill.write_all_at(&group.buf, self.offset)?;
                    group.blocks.push((self.offset, group.buf.len()));
                    self.offset += group.buf.len() as u64;
                    group.buf.clear();
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, _tail: &Tail<'_>) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut first = true;
        for (ns, group) in &self.groups {
            let [pass, fail, warn, error, skip] = group.summary;
            let mut metadata = json!({"name": format!("sostle-{}", ns.as_deref().unwrap_or("cluster")), "labels": {"app.kubernetes.io/managed-by": "sostle"}});
            let kind = match ns {
                Some(ns) => {
                    set(&mut metadata, "namespace", json!(ns));
                    "PolicyReport"
                }
                None => "ClusterPolicyReport",
            };
            if !first {
                writeln!(w, "---")?;
            }
            first = false;
            write!(
                w,
                "{{\n  \"apiVersion\": \"wgpolicyk8s.io/v1alpha2\",\n  \"kind\": \"{kind}\",\n  \"metadata\": "
            )?;
            write_indented(w, &metadata, 2)?;
            w.write_all(b",\n  \"results\": [\n    ")?;
            let mut block = Vec::new();
            for &(offset, len) in &group.blocks {
                block.resize(len, 0);
                self.spill.read_exact_at(&mut block, offset)?;
                w.write_all(&block)?;
            }
            w.write_all(&group.buf)?;
            w.write_all(b"\n  ],\n  \"summary\": ")?;
            write_indented(
                w,
                &json!({"pass": pass, "fail": fail, "warn": warn, "error": error, "skip": skip}),
                2,
            )?;
            w.write_all(b"\n}\n")?;
        }
        Ok(())
    }
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
