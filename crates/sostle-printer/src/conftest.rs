//! conftest's own output formats — its lines (`FAIL - file - namespace - msg` and the `N tests,
//! N passed, …` summary), its JSON, table and Azure DevOps output — counted the way conftest
//! counts: per file and Rego namespace, one test per rule definition, each message a failure or
//! warning, an `exception` an exception.

use serde::Serialize;
use sostle_check::Located;
use sostle_core::Outcome;
use std::io::{self, Write};

use crate::{Format, Printer, Tail};

/// What the conftest printers need to know of the user policies.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The namespaces evaluated, with their rule definition counts.
    pub namespaces: Vec<(String, usize)>,
    /// Leave exceptions out.
    pub suppress_exceptions: bool,
    /// ANSI colour.
    pub color: bool,
}

impl Meta {
    /// From the loaded user policies, if any.
    pub fn new(user: Option<&sostle_rego::UserPolicies>, suppress: bool, color: bool) -> Meta {
        Meta {
            namespaces: user
                .map(|u| {
                    u.namespaces()
                        .iter()
                        .map(|n| (n.clone(), u.definitions(n)))
                        .collect()
                })
                .unwrap_or_default(),
            suppress_exceptions: suppress,
            color,
        }
    }
}

/// conftest's `CheckResult`: one file against one namespace.
#[derive(Debug, Serialize)]
struct Check {
    filename: String,
    namespace: String,
    successes: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Message>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<Message>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exceptions: Vec<Message>,
}

#[derive(Debug, Serialize)]
struct Message {
    msg: String,
    metadata: serde_json::Value,
}

impl Message {
    fn new(msg: String, query: &str) -> Message {
        Message {
            msg,
            metadata: serde_json::json!({ "query": query }),
        }
    }
}

/// The namespace sostle's own suite reports under in conftest's formats.
const SUITE_NAMESPACE: &str = "sostle";

/// The checks of one file: one per user namespace, and `sostle` when the suite judged something.
fn checks(resources: &[Located], meta: &Meta) -> Vec<Check> {
    let Some(first) = resources.first() else {
        return Vec::new();
    };
    let file = first.file.to_string();
    let mut out = Vec::new();
    for (ns, definitions) in &meta.namespaces {
        let prefix = format!("rego:{ns}/");
        // No user results here for this namespace (with --combine they are all in `Combined`).
        if !resources
            .iter()
            .flat_map(|l| &l.report.results)
            .any(|r| r.policy.starts_with(prefix.as_str()))
        {
            continue;
        }
        let mut c = Check {
            filename: file.clone(),
            namespace: ns.clone(),
            successes: 0,
            warnings: Vec::new(),
            failures: Vec::new(),
            exceptions: Vec::new(),
        };
        for l in resources {
            let before = c.successes + c.warnings.len() + c.failures.len() + c.exceptions.len();
            for r in &l.report.results {
                let Some(rule) = r.policy.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let query = format!("data.{ns}.{rule}");
                match r.outcome {
                    Outcome::Pass => c.successes += 1,
                    Outcome::Fail => c.failures.extend(
                        r.violations
                            .iter()
                            .map(|v| Message::new(v.message.clone(), &query)),
                    ),
                    Outcome::Warn => c.warnings.extend(
                        r.violations
                            .iter()
                            .map(|v| Message::new(v.message.clone(), &query)),
                    ),
                    Outcome::Skip | Outcome::Exempted => {
                        let name = rule.split_once('_').map_or("", |(_, s)| s);
                        let q = format!("data.{ns}.exception[_][_] == {name:?}");
                        c.exceptions.push(Message::new(q.clone(), &q));
                    }
                }
            }
            // conftest counts a test per rule definition; definitions that added nothing passed.
            let counted =
                c.successes + c.warnings.len() + c.failures.len() + c.exceptions.len() - before;
            if counted < *definitions {
                c.successes += definitions - counted;
            }
        }
        out.push(c);
    }
    let mut suite = Check {
        filename: file,
        namespace: SUITE_NAMESPACE.into(),
        successes: 0,
        warnings: Vec::new(),
        failures: Vec::new(),
        exceptions: Vec::new(),
    };
    let mut judged = false;
    for l in resources {
        for r in l
            .report
            .results
            .iter()
            .filter(|r| !r.policy.starts_with("rego:"))
        {
            let query = format!("sostle.{}", r.policy);
            let msgs = || {
                r.violations
                    .iter()
                    .map(|v| Message::new(format!("{}: {}", r.policy, v.message), &query))
                    .collect::<Vec<_>>()
            };
            match r.outcome {
                Outcome::Skip => continue,
                Outcome::Pass => suite.successes += 1,
                Outcome::Fail => suite.failures.extend(msgs()),
                Outcome::Warn => suite.warnings.extend(msgs()),
                Outcome::Exempted => suite.exceptions.push(Message::new(
                    format!("{}: exempted by its sostle exemption", r.policy),
                    &query,
                )),
            }
            judged = true;
        }
    }
    if judged {
        out.push(suite);
    }
    out
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    successes: usize,
    warnings: usize,
    failures: usize,
    exceptions: usize,
}

impl Totals {
    fn add(&mut self, c: &Check) {
        self.successes += c.successes;
        self.warnings += c.warnings.len();
        self.failures += c.failures.len();
        self.exceptions += c.exceptions.len();
    }

    /// conftest's summary line.
    fn line(&self) -> String {
        summary(
            self.successes,
            self.warnings,
            self.failures,
            self.exceptions,
        )
    }
}

/// conftest's summary line: `N tests, N passed, N warnings, N failures, N exceptions`.
pub fn summary(successes: usize, warnings: usize, failures: usize, exceptions: usize) -> String {
    let tests = successes + warnings + failures + exceptions;
    let plural = |n: usize, w: &str| {
        if n == 1 {
            w.to_string()
        } else {
            format!("{w}s")
        }
    };
    format!(
        "{tests} {}, {successes} passed, {warnings} {}, {failures} {}, {exceptions} {}",
        plural(tests, "test"),
        plural(warnings, "warning"),
        plural(failures, "failure"),
        plural(exceptions, "exception"),
    )
}

fn paint(on: bool, code: &str, s: &str) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// `-o conftest` (`stdout`): conftest's lines.
pub(crate) struct Standard {
    meta: Meta,
    totals: Totals,
}

impl Printer for Standard {
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        for c in checks(resources, &self.meta) {
            self.totals.add(&c);
            let indicator = if c.filename == "-" {
                "-".to_string()
            } else {
                format!("- {}", c.filename)
            };
            let ns = format!("- {} -", c.namespace);
            let color = self.meta.color;
            for m in &c.warnings {
                writeln!(
                    w,
                    "{} {indicator} {ns} {}",
                    paint(color, "33", "WARN"),
                    m.msg
                )?;
            }
            for m in &c.failures {
                writeln!(
                    w,
                    "{} {indicator} {ns} {}",
                    paint(color, "31", "FAIL"),
                    m.msg
                )?;
            }
            if !self.meta.suppress_exceptions {
                for m in &c.exceptions {
                    writeln!(
                        w,
                        "{} {indicator} {ns} {}",
                        paint(color, "36", "EXCP"),
                        m.msg
                    )?;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, _: &Tail<'_>) -> io::Result<()> {
        let t = self.totals;
        let code = if t.failures > 0 {
            "31"
        } else if t.warnings > 0 {
            "33"
        } else if t.exceptions > 0 {
            "36"
        } else {
            "32"
        };
        writeln!(w)?;
        writeln!(w, "{}", paint(self.meta.color, code, &t.line()))
    }
}

/// `-o conftest-json`: conftest's JSON, a tab-indented array of checks.
pub(crate) struct Json {
    meta: Meta,
    first: bool,
}

impl Printer for Json {
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        for mut c in checks(resources, &self.meta) {
            if c.filename == "-" {
                c.filename = String::new();
            }
            if self.meta.suppress_exceptions {
                c.exceptions.clear();
            }
            w.write_all(if self.first { b"[\n\t" } else { b",\n\t" })?;
            self.first = false;
            let mut buf = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(
                &mut buf,
                serde_json::ser::PrettyFormatter::with_indent(b"\t"),
            );
            c.serialize(&mut ser).map_err(io::Error::other)?;
            let text = String::from_utf8_lossy(&buf).replace('\n', "\n\t");
            w.write_all(text.as_bytes())?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, _: &Tail<'_>) -> io::Result<()> {
        w.write_all(if self.first { b"[]\n" } else { b"\n]\n" })
    }
}

/// `-o table`: one row per test, as conftest's table lists them.
pub(crate) struct Table {
    meta: Meta,
    rows: Vec<[String; 4]>,
}

impl Printer for Table {
    fn file(&mut self, _: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        for c in checks(resources, &self.meta) {
            let row = |kind: &str, msg: &str| {
                [
                    kind.to_string(),
                    c.filename.clone(),
                    c.namespace.clone(),
                    msg.to_string(),
                ]
            };
            for _ in 0..c.successes {
                self.rows.push(row("success", "SUCCESS"));
            }
            if !self.meta.suppress_exceptions {
                for m in &c.exceptions {
                    self.rows.push(row("exception", &m.msg));
                }
            }
            for m in &c.warnings {
                self.rows.push(row("warning", &m.msg));
            }
            for m in &c.failures {
                self.rows.push(row("failure", &m.msg));
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, _: &Tail<'_>) -> io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let header = ["RESULT", "FILE", "NAMESPACE", "MESSAGE"].map(str::to_string);
        let mut widths = [0usize; 4];
        for r in std::iter::once(&header).chain(&self.rows) {
            for (wd, cell) in widths.iter_mut().zip(r) {
                *wd = (*wd).max(cell.chars().count());
            }
        }
        let line = |w: &mut dyn Write, r: &[String; 4]| -> io::Result<()> {
            let cells: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, wd)| format!("{c:<wd$}"))
                .collect();
            writeln!(w, "| {} |", cells.join(" | "))
        };
        let rule: Vec<String> = widths.iter().map(|wd| "-".repeat(*wd)).collect();
        writeln!(w, "+-{}-+", rule.join("-+-"))?;
        line(w, &header)?;
        writeln!(w, "+-{}-+", rule.join("-+-"))?;
        for r in &self.rows {
            line(w, r)?;
        }
        writeln!(w, "+-{}-+", rule.join("-+-"))
    }
}

/// `-o azuredevops`: Azure Pipelines logging commands, as conftest writes them.
pub(crate) struct AzureDevOps {
    meta: Meta,
    totals: Totals,
}

impl Printer for AzureDevOps {
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        for c in checks(resources, &self.meta) {
            self.totals.add(&c);
            let tests = c.successes + c.warnings.len() + c.failures.len() + c.exceptions.len();
            writeln!(
                w,
                "##[section]Testing '{}' against {tests} policies in namespace '{}'",
                c.filename, c.namespace
            )?;
            writeln!(w, "##[group]See conftest results")?;
            for m in &c.failures {
                writeln!(
                    w,
                    "##vso[task.logissue type=error] file={} --> {}",
                    c.filename, m.msg
                )?;
            }
            for m in &c.warnings {
                writeln!(
                    w,
                    "##vso[task.logissue type=warning] file={} --> {}",
                    c.filename, m.msg
                )?;
            }
            if !self.meta.suppress_exceptions {
                for m in &c.exceptions {
                    writeln!(
                        w,
                        "##vso[task.logissue type=warning] file={} --> {}",
                        c.filename, m.msg
                    )?;
                }
            }
            if c.successes > 0 {
                writeln!(w, "success file={} {}", c.filename, c.successes)?;
            }
            writeln!(w, "##[endgroup]")?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, _: &Tail<'_>) -> io::Result<()> {
        writeln!(w, "{}", self.totals.line())
    }
}

/// The conftest-format printer of `format`, if it is one.
pub fn printer(format: Format, meta: Meta) -> Option<Box<dyn Printer>> {
    Some(match format {
        Format::Conftest => Box::new(Standard {
            meta,
            totals: Totals::default(),
        }),
        Format::ConftestJson => Box::new(Json { meta, first: true }),
        Format::Table => Box::new(Table {
            meta,
            rows: Vec::new(),
        }),
        Format::Azuredevops => Box::new(AzureDevOps {
            meta,
            totals: Totals::default(),
        }),
        _ => return None,
    })
}
