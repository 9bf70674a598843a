//! `sostle ledger migrate | copy`: the ledger's schema and moving a history between ledgers.

use std::io::Write;

use anyhow::Context;
use sostle_ledger::{Ledger, Location};

use crate::cli::{LedgerCommand, LedgerFormat};

pub fn run(cmd: LedgerCommand) -> anyhow::Result<u8> {
    match cmd {
        LedgerCommand::Migrate { common, ledger } => {
            let config = crate::settings::config(common.config.as_deref())?;
            let l = crate::settings::ledger::open_ledger(&ledger, &config)?;
            println!(
                "ledger {}: schema version {} (current)",
                l.location(),
                l.schema_version()?
            );
            Ok(crate::exit::OK)
        }
        LedgerCommand::Copy { from, to, output } => {
            let from = Location::parse(&from);
            let to = Location::parse(&to);
            if from == to {
                anyhow::bail!("FROM and TO are the same ledger ({from})");
            }
            let source =
                crate::settings::ledger::named(Ledger::open_existing(&from), "FROM", &from)?;
            let mut target = crate::settings::ledger::named(Ledger::open(&to), "TO", &to)?;
            crate::settings::ledger::warn_about(&source);
            crate::settings::ledger::warn_about(&target);
            let report = match target.copy_from(&source) {
                Ok(r) => r,
                Err(e @ sostle_ledger::Error::Conflict(_)) => {
                    eprintln!("refused: {e}");
                    return Ok(crate::exit::FAIL);
                }
                Err(e) => return Err(e).with_context(|| format!("copy {from} → {to}")),
            };
            let mut w = std::io::stdout().lock();
            match output {
                LedgerFormat::Json => {
                    serde_json::to_writer_pretty(
                        &mut w,
                        &serde_json::json!({"from": from.to_string(), "to": to.to_string(), "tables": report.tables}),
                    )?;
                    writeln!(w)?;
                }
                LedgerFormat::Human => {
                    writeln!(w, "copied {from} → {to}")?;
                    for t in &report.tables {
                        writeln!(
                            w,
                            "  {:<13} {:>6} copied, {:>6} already there",
                            t.table, t.copied, t.present
                        )?;
                    }
                }
            }
            Ok(crate::exit::OK)
        }
    }
}
