//! `--output tap`: TAP version 13.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use sostle_core::Outcome;

/// `--output tap`: TAP version 13; warnings are `not ok … # TODO` (reported, not failing). The
/// plan (`1..N`) comes last, as TAP allows, so results stream.
#[derive(Default)]
pub(crate) struct Tap {
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
                        let why = crate::exemption_of(r);
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
