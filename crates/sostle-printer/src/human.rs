//! `--output human`: grouped by file, file:line:col, the source line, a fix per finding, a
//! summary line; colour when asked.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use sostle_core::Outcome;

use crate::PrintOptions;

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// `s` in colour `code` when `on`, else as it is.
    fn wrap_if(&self, on: bool, code: &str, s: String) -> String {
        if on {
            self.wrap(code, &s)
        } else {
            s
        }
    }
}

/// `--output human`: findings grouped by file, `file:line:col`, the source line with a caret, a
/// fix each, a summary line.
pub(crate) struct Human {
    p: Paint,
    verbose: bool,
    current: Option<std::sync::Arc<str>>,
}

impl Human {
    pub(crate) fn new(opts: PrintOptions) -> Human {
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
            for (r, j) in crate::exempted(l) {
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
            self.p.wrap_if(s.fail > 0, "31;1", fail),
            self.p.wrap_if(s.warn > 0, "33;1", warn),
            s.exempted,
            s.skip,
            self.p.wrap_if(s.errors > 0, "31;1", errors),
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
