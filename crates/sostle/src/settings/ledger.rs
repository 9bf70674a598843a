//! The ledger a command uses, opened one way everywhere: `--ledger`, `SOSTLE_LEDGER`, the
//! config's `ledger.url`, or the embedded `.sostle/ledger.db`; errors name the place once;
//! what opening noticed is shown as warnings.

use std::path::PathBuf;

use sostle_core::Config;
use sostle_ledger::{Ledger, Location, Snapshot};

use crate::cli::LedgerArgs;

/// The embedded ledger's default file.
pub const DEFAULT_LEDGER: &str = ".sostle/ledger.db";

/// The ledger named by `--ledger` or `SOSTLE_LEDGER`, else the config's `ledger.url`; `None`
/// when neither names one.
fn named_ledger(args: &LedgerArgs, config: &Config) -> Option<Location> {
    args.ledger
        .as_deref()
        .or(config.ledger_url.as_deref())
        .map(Location::parse)
}

/// Opens (creating and migrating when needed) the ledger: `--ledger`, `SOSTLE_LEDGER`,
/// `ledger.url` in the config, or `.sostle/ledger.db`.
pub fn open_ledger(args: &LedgerArgs, config: &Config) -> anyhow::Result<Ledger> {
    let location =
        named_ledger(args, config).unwrap_or_else(|| Location::File(PathBuf::from(DEFAULT_LEDGER)));
    let ledger = named(Ledger::open(&location), "ledger", &location)?;
    warn_about(&ledger);
    Ok(ledger)
}

/// A ledger error, prefixed with what was being opened unless it names the place already (the
/// PostgreSQL errors do: "ledger URL: ledger URL: …" said it twice).
pub fn named<T>(
    r: Result<T, sostle_ledger::Error>,
    what: &str,
    location: &Location,
) -> anyhow::Result<T> {
    r.map_err(|e| {
        let shown = location.to_string();
        if e.to_string().contains(&shown) {
            anyhow::Error::new(e)
        } else {
            anyhow::Error::new(e).context(format!("{what} {shown}"))
        }
    })
}

/// Shows what opening `ledger` noticed but did not stop for.
pub fn warn_about(ledger: &Ledger) {
    for w in ledger.warnings() {
        eprintln!("warning: {w}");
    }
}

/// The ledger `sostle test` consults, if any: the one named, or `.sostle/ledger.db` when it
/// exists. A named ledger must exist.
pub fn snapshot(args: &LedgerArgs, config: &Config) -> anyhow::Result<Option<Snapshot>> {
    let location = match named_ledger(args, config) {
        Some(l) => l,
        None => {
            let p = PathBuf::from(DEFAULT_LEDGER);
            if !p.exists() {
                return Ok(None);
            }
            Location::File(p)
        }
    };
    let ledger = named(Ledger::open_existing(&location), "--ledger", &location)?;
    warn_about(&ledger);
    Ok(Some(Snapshot::load(&ledger)?))
}
