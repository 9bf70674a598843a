//! `--output junit`: JUnit XML, one test case per resource and policy.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use sostle_core::Outcome;

use crate::{violation_text, xml_escape};

/// `--output junit`: a test suite per file, a test case per resource and policy. (The root
/// `<testsuites>` carries no totals: they are known only at the end of a streamed run, and
/// JUnit readers sum the suites.)
#[derive(Default)]
pub(crate) struct Junit {
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
                        let why = crate::exemption_of(r);
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
