//! `--output github`: GitHub Actions workflow annotations.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use sostle_core::Outcome;

use crate::{exemption_line, findings};

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `--output github`: workflow commands that annotate the file and line in a pull request.
pub(crate) struct Github;

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
            for (r, j) in crate::exempted(l) {
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
