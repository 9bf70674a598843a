//! The ledger: trials and their evidence, MECIPOL profiles (locks), registered exemption
//! witnesses, PELEGO novelty fingerprints and trendals — in an embedded SQLite file (by default
//! `.sostle/ledger.db`) or in a PostgreSQL database a team shares (`postgres://…`).
//!
//! One API over two backends ([`sql::Backend`]: [`sqlite::Sqlite`], [`postgres::Postgres`]);
//! the commands do not know which. Every write happens inside [`Ledger::atomically`]: one
//! transaction, all of it or none of it. Numbers (`TRB-CHAOS-NNN`, `profile-NNN`, a trendal's
//! `-NNN`) come from a counter row bumped inside the transaction that files the record, so a
//! number is never reused and a failed filing leaves no gap. A file or database that is not a
//! sostle ledger is refused, never written to.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sostle_core::layer::Layer;
use sostle_core::trendal::TrendalState;
use sostle_core::trial::{Charge, EvidenceKind, StoredEvidence, Subject, TrialState, TrialVerdict};

pub mod postgres;
pub mod sql;
pub mod sqlite;

use sql::{first, Backend, Param, Row, Value};

/// `PRAGMA application_id` of a sostle ledger file ("SOST").
pub const APPLICATION_ID: i32 = 0x534F_5354;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Ledger errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file or database exists but is not a sostle ledger.
    #[error("{location} is not a sostle ledger ({reason}); refusing to use or overwrite it")]
    Foreign {
        /// The file or database.
        location: String,
        /// Why.
        reason: String,
    },
    /// The ledger was written by a newer sostle.
    #[error("{location} has ledger schema {found}, newer than this sostle ({SCHEMA_VERSION}); upgrade sostle")]
    TooNew {
        /// The file or database.
        location: String,
        /// Its schema version.
        found: i32,
    },
    /// A record was not found.
    #[error("{0} is not in the ledger")]
    NotFound(String),
    /// There is no ledger where one was to be read (no file; an empty database): the message
    /// names the place and how to make one.
    #[error("{0}")]
    NoLedger(String),
    /// SQLite failed.
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server failed or went away.
    #[error("ledger {location}: {message}")]
    Server {
        /// The database (password removed).
        location: String,
        /// What happened.
        message: String,
    },
    /// The ledger location is malformed.
    #[error("{0}")]
    Config(String),
    /// A stored JSON value did not decode.
    #[error("ledger: stored record does not decode: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value is not what the schema says.
    #[error("ledger: stored record does not decode: {0}")]
    Decode(String),
    /// `ledger copy` found a record that differs from the one of the same name already there.
    #[error("ledger copy: {0}")]
    Conflict(String),
    /// The directory for the ledger could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Ledger result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A trial record (SPEC §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// `TRB-CHAOS-001`.
    pub id: String,
    /// The target layer.
    pub target: Layer,
    /// Epoch day it was filed.
    pub epoch_day: i64,
    /// When it was filed.
    pub filed_at: Timestamp,
    /// When it was burst (the trial window starts).
    pub burst_at: Option<Timestamp>,
    /// When it was closed.
    pub closed_at: Option<Timestamp>,
    /// The last verdict reached.
    pub verdict: Option<TrialVerdict>,
    /// The subject: resources, images, manifest digests and the documents themselves.
    pub subject: Subject,
    /// The charge: results at the target layer and in the trial namespace, exemptions needed.
    pub charge: Charge,
}

impl Trial {
    /// Charged, burst or closed.
    pub fn state(&self) -> TrialState {
        TrialState::of(self.burst_at, self.closed_at)
    }
}

/// One piece of evidence (or a phase record) of a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Sequence number within the ledger.
    pub id: i64,
    /// The trial.
    pub trial: String,
    /// What kind of record it is.
    pub kind: EvidenceKind,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Epoch day it was recorded.
    pub epoch_day: i64,
    /// Where it came from (file name).
    pub source: String,
    /// What it says (decoded by [`sostle_core::trial::Evidence::decode`]: a record another
    /// version wrote is the reader's error to report, not the ledger's to drop).
    pub data: serde_json::Value,
}

impl Evidence {
    /// The record as the trial rules read it.
    pub fn stored(&self) -> StoredEvidence<'_> {
        StoredEvidence {
            id: self.id,
            trial: &self.trial,
            kind: self.kind,
            source: &self.source,
            recorded_at: self.recorded_at,
            data: &self.data,
        }
    }
}

pub use sostle_core::mecipol::Profile;

/// A registered exemption witness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witness {
    /// `sha256:…`.
    pub hash: String,
    /// When it was registered.
    pub registered_at: Timestamp,
    /// Who registered it.
    pub registered_by: String,
    /// The values it covers.
    pub values: serde_json::Value,
}

/// A trendal (SPEC §8): what it was spawned as, and its life since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trendal {
    /// `TRENDAL-L3-YONE-BOSUN-001`.
    pub id: String,
    /// Its layer, silo, crew, spiral, trial, warmth (as it is now), namespace and manifest.
    #[serde(flatten)]
    pub spawn: NewTrendal,
    /// Active or reaped.
    pub state: TrendalState,
    /// When it was spawned.
    pub spawned_at: Timestamp,
    /// When it was reaped.
    pub reaped_at: Option<Timestamp>,
    /// Why it was reaped.
    pub reap_reason: Option<String>,
}

/// A trendal to file: what `add_trendal`'s caller knows (the ledger numbers it, marks it
/// active and stamps the time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTrendal {
    /// Layer.
    pub layer: Layer,
    /// Silo.
    pub silo: String,
    /// Owning crew member.
    pub crew: String,
    /// Crew spiral (`BOSUN+RICK+CODY`).
    pub spiral: Option<String>,
    /// Trial, when it runs on the chaos pool.
    pub trial: Option<String>,
    /// Warmth in [0, 1].
    pub warmth: f64,
    /// Namespace.
    pub namespace: String,
    /// The manifest it is spawned with.
    pub manifest: serde_json::Value,
}

/// Where a ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    File(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// A URL starting `postgres://` or `postgresql://` is a database; anything else a file.
    pub fn parse(s: &str) -> Location {
        if postgres::is_url(s) {
            Location::Postgres(s.to_string())
        } else {
            Location::File(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => f.write_str(&postgres::redact(u)),
        }
    }
}

/// Reads of a ledger, inside a transaction ([`Tx`]) or outside one ([`Ledger`]).
#[derive(Debug)]
pub struct Db {
    backend: Box<dyn Backend>,
}

/// An open ledger.
#[derive(Debug)]
pub struct Ledger {
    db: Db,
    location: Location,
}

impl std::ops::Deref for Ledger {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

/// One transaction: the writes, and reads that see them.
#[derive(Debug)]
pub struct Tx<'a> {
    db: &'a Db,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

fn ts(t: Timestamp) -> String {
    t.to_string()
}

const TRIAL_COLS: &str =
    "id, target, epoch_day, filed_at, burst_at, closed_at, verdict, subject, charge";
const PROFILE_COLS: &str = "id, trial, image, profile, signature, locked_at";
const TRENDAL_COLS: &str = "id, layer, silo, crew, spiral, trial, warmth, namespace, state, spawned_at, reaped_at, reap_reason, manifest";
const EVIDENCE_COLS: &str = "id, trial, kind, recorded_at, epoch_day, source, data";
const WITNESS_COLS: &str = "hash, registered_at, registered_by, vals";

/// A stored value that must parse as `what`: the record and column named when it does not.
fn typed<T>(
    record: &str,
    column: &str,
    text: String,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    parse(&text).ok_or_else(|| Error::Decode(format!("{record}: {column} {text:?} is not valid")))
}

fn time(record: &str, column: &str, text: String) -> Result<Timestamp> {
    text.parse::<Timestamp>()
        .map_err(|e| Error::Decode(format!("{record}: {column} {text:?}: {e}")))
}

fn opt_time(record: &str, column: &str, text: Option<String>) -> Result<Option<Timestamp>> {
    text.map(|t| time(record, column, t)).transpose()
}

fn trial_row(r: &Row) -> Result<Trial> {
    let id = r.text(0)?;
    fn json<T: serde::de::DeserializeOwned>(
        r: &Row,
        i: usize,
        id: &str,
        column: &str,
    ) -> Result<T> {
        r.json(i).map_err(|e| match e {
            Error::Json(j) => Error::Decode(format!("trial {id}: {column}: {j}")),
            other => other,
        })
    }
    Ok(Trial {
        target: typed(&format!("trial {id}"), "target", r.text(1)?, Layer::parse)?,
        epoch_day: r.int(2)?,
        filed_at: time(&format!("trial {id}"), "filed_at", r.text(3)?)?,
        burst_at: opt_time(&format!("trial {id}"), "burst_at", r.opt_text(4)?)?,
        closed_at: opt_time(&format!("trial {id}"), "closed_at", r.opt_text(5)?)?,
        verdict: r
            .opt_text(6)?
            .map(|v| typed(&format!("trial {id}"), "verdict", v, TrialVerdict::parse))
            .transpose()?,
        subject: json(r, 7, &id, "subject")?,
        charge: json(r, 8, &id, "charge")?,
        id,
    })
}

fn profile_row(r: &Row) -> Result<Profile> {
    Ok(Profile {
        id: r.text(0)?,
        trial: r.text(1)?,
        image: r.text(2)?,
        profile: r.json(3)?,
        signature: r.text(4)?,
        locked_at: r.text(5)?,
    })
}

fn trendal_row(r: &Row) -> Result<Trendal> {
    let id = r.text(0)?;
    let record = format!("trendal {id}");
    Ok(Trendal {
        spawn: NewTrendal {
            layer: typed(&record, "layer", r.text(1)?, Layer::parse)?,
            silo: r.text(2)?,
            crew: r.text(3)?,
            spiral: r.opt_text(4)?,
            trial: r.opt_text(5)?,
            warmth: r.real(6)?,
            namespace: r.text(7)?,
            manifest: r.json(12)?,
        },
        state: typed(&record, "state", r.text(8)?, TrendalState::parse)?,
        spawned_at: time(&record, "spawned_at", r.text(9)?)?,
        reaped_at: opt_time(&record, "reaped_at", r.opt_text(10)?)?,
        reap_reason: r.opt_text(11)?,
        id,
    })
}

fn evidence_row(r: &Row) -> Result<Evidence> {
    let id = r.int(0)?;
    let record = format!("evidence #{id}");
    Ok(Evidence {
        id,
        trial: r.text(1)?,
        kind: typed(&record, "kind", r.text(2)?, EvidenceKind::parse)?,
        recorded_at: time(&record, "recorded_at", r.text(3)?)?,
        epoch_day: r.int(4)?,
        source: r.text(5)?,
        data: r.json(6)?,
    })
}

fn witness_row(r: &Row) -> Result<Witness> {
    let hash = r.text(0)?;
    Ok(Witness {
        registered_at: time(&format!("witness {hash}"), "registered_at", r.text(1)?)?,
        hash,
        registered_by: r.text(2)?,
        values: r.json(3)?,
    })
}

fn all<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

impl Db {
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.backend.query(sql, params)
    }

    fn one<T>(&self, sql: &str, key: &str, f: fn(&Row) -> Result<T>) -> Result<T> {
        f(&first(self.query(sql, &[Param::Text(key)])?, key)?)
    }

    /// One trial.
    pub fn trial(&self, id: &str) -> Result<Trial> {
        self.one(
            &format!("SELECT {TRIAL_COLS} FROM trials WHERE id = $1"),
            id,
            trial_row,
        )
    }

    /// Every trial, oldest first.
    pub fn trials(&self) -> Result<Vec<Trial>> {
        all(
            self.query(
                &format!("SELECT {TRIAL_COLS} FROM trials ORDER BY seq"),
                &[],
            )?,
            trial_row,
        )
    }

    /// Ids and open/closed state of every trial (cheap: no JSON).
    pub fn trial_states(&self) -> Result<Vec<(String, bool)>> {
        self.query(
            "SELECT id, CASE WHEN closed_at IS NULL THEN 1 ELSE 0 END FROM trials ORDER BY seq",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)? == 1)))
        .collect()
    }

    fn exists(&self, id: &str) -> Result<()> {
        let n = first(
            self.query(
                "SELECT count(*) FROM trials WHERE id = $1",
                &[Param::Text(id)],
            )?,
            id,
        )?
        .int(0)?;
        if n == 0 {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// A trial's evidence, oldest first.
    pub fn evidence(&self, id: &str) -> Result<Vec<Evidence>> {
        all(
            self.query(
                &format!("SELECT {EVIDENCE_COLS} FROM evidence WHERE trial = $1 ORDER BY id"),
                &[Param::Text(id)],
            )?,
            evidence_row,
        )
    }

    /// Every recorded fingerprint, oldest trial first.
    pub fn fingerprints(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.query(
            "SELECT f.trial, f.pattern FROM fingerprints f JOIN trials t ON t.id = f.trial ORDER BY t.seq",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.json(1)?)))
        .collect()
    }

    /// One registered witness.
    pub fn witness(&self, hash: &str) -> Result<Witness> {
        self.one(
            &format!("SELECT {WITNESS_COLS} FROM witnesses WHERE hash = $1"),
            hash,
            witness_row,
        )
    }

    /// Every registered witness.
    pub fn witnesses(&self) -> Result<Vec<Witness>> {
        all(
            self.query(
                &format!("SELECT {WITNESS_COLS} FROM witnesses ORDER BY registered_at, hash"),
                &[],
            )?,
            witness_row,
        )
    }

    /// One profile.
    pub fn profile(&self, id: &str) -> Result<Profile> {
        self.one(
            &format!("SELECT {PROFILE_COLS} FROM profiles WHERE id = $1"),
            id,
            profile_row,
        )
    }

    /// Every profile, oldest first.
    pub fn profiles(&self) -> Result<Vec<Profile>> {
        all(
            self.query(
                &format!("SELECT {PROFILE_COLS} FROM profiles ORDER BY seq"),
                &[],
            )?,
            profile_row,
        )
    }

    /// One trendal.
    pub fn trendal(&self, id: &str) -> Result<Trendal> {
        self.one(
            &format!("SELECT {TRENDAL_COLS} FROM trendals WHERE id = $1"),
            id,
            trendal_row,
        )
    }

    /// Every trendal, in spawn order.
    pub fn trendals(&self) -> Result<Vec<Trendal>> {
        all(
            self.query(
                &format!("SELECT {TRENDAL_COLS} FROM trendals ORDER BY spawned_at, prefix, seq"),
                &[],
            )?,
            trendal_row,
        )
    }
}

impl Ledger {
    /// Opens the ledger at `location`, creating it when missing (an SQLite file and its
    /// directory; the tables in an empty PostgreSQL database) and migrating it.
    pub fn open(location: &Location) -> Result<Ledger> {
        Self::open_with(location, true)
    }

    /// Opens an existing ledger; a missing file or an empty database is an error.
    pub fn open_existing(location: &Location) -> Result<Ledger> {
        Self::open_with(location, false)
    }

    fn open_with(location: &Location, create: bool) -> Result<Ledger> {
        let backend: Box<dyn Backend> = match location {
            Location::File(p) => Box::new(sqlite::Sqlite::open(p, create)?),
            Location::Postgres(u) => Box::new(postgres::Postgres::open(u, create)?),
        };
        Ok(Ledger {
            db: Db { backend },
            location: location.clone(),
        })
    }

    /// What opening the ledger noticed but did not stop for (a password file others can
    /// read, say): the caller shows them as warnings.
    pub fn warnings(&self) -> &[String] {
        self.db.backend.warnings()
    }

    /// Where the ledger lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back when it returns
    /// an error (or panics, or the connection is lost) — the ledger holds all of it or none.
    pub fn atomically<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        struct Open<'a> {
            backend: &'a dyn Backend,
            done: bool,
        }
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                if !self.done {
                    // The connection may be gone, and the transaction with it.
                    let _ = self.backend.rollback();
                }
            }
        }
        self.db.backend.begin()?;
        let mut open = Open {
            backend: &*self.db.backend,
            done: false,
        };
        let out = f(&Tx { db: &self.db })?;
        self.db.backend.commit()?;
        open.done = true;
        Ok(out)
    }

    /// The backend's soundness check (`["ok"]` when sound).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.db.backend.integrity_check()
    }

    /// The schema version of the open ledger (after migration: [`SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> Result<i32> {
        self.db.backend.schema_version()
    }

    /// Copies every record of `from` into this ledger in one transaction. A record already here
    /// and identical is left as it is (so a copy can be repeated); one that differs from the
    /// record of the same name here is a conflict, and nothing is copied. Counters move up to
    /// the larger of the two, so numbers filed here afterwards follow both histories.
    pub fn copy_from(&mut self, from: &Ledger) -> Result<CopyReport> {
        let mut tables = Vec::new();
        for t in COPY_TABLES {
            let rows = from.query(
                &format!("SELECT {} FROM {} ORDER BY {}", t.cols, t.name, t.key),
                &[],
            )?;
            tables.push((t, rows));
        }
        let report = self.atomically(|tx| {
            let mut report = CopyReport::default();
            for (t, rows) in &tables {
                let n = t.cols.split(',').count();
                let placeholders = (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                let insert = if t.name == "counters" {
                    "INSERT INTO counters(name, value) VALUES ($1, $2)
                     ON CONFLICT(name) DO UPDATE SET value = CASE WHEN counters.value < excluded.value
                     THEN excluded.value ELSE counters.value END"
                        .to_string()
                } else {
                    format!(
                        "INSERT INTO {}({}) VALUES ({placeholders}) ON CONFLICT DO NOTHING",
                        t.name, t.cols
                    )
                };
                let select = format!("SELECT {} FROM {} WHERE {} = $1", t.cols, t.name, t.key);
                let mut copied = 0u64;
                let mut present = 0u64;
                for row in rows {
                    let params: Vec<Param<'_>> = row.values.iter().map(Value::as_param).collect();
                    if tx.backend.execute(&insert, &params)? == 1 && t.name != "counters" {
                        copied += 1;
                        continue;
                    }
                    if t.name == "counters" {
                        continue;
                    }
                    let key = params.first().copied().unwrap_or(Param::Null);
                    let here = tx.backend.query(&select, &[key])?;
                    let name = || format!("{} {}", t.what, row.values.first().map(Value::describe).unwrap_or_default());
                    match here.first() {
                        Some(h) if h.values == row.values => present += 1,
                        Some(_) => {
                            return Err(Error::Conflict(format!(
                                "{} differs from the one already in the target ledger; nothing was copied",
                                name()
                            )))
                        }
                        None => {
                            return Err(Error::Conflict(format!(
                                "{} collides with a different record of the target ledger on a unique column; nothing was copied",
                                name()
                            )))
                        }
                    }
                }
                if t.name != "counters" {
                    report.tables.push(CopyCount {
                        table: t.name.to_string(),
                        copied,
                        present,
                    });
                }
            }
            tx.backend.after_import()?;
            Ok::<_, Error>(report)
        })?;
        Ok(report)
    }
}

/// A table `ledger copy` moves, parents before children.
#[derive(Debug)]
struct CopyTable {
    name: &'static str,
    what: &'static str,
    cols: &'static str,
    key: &'static str,
}

const COPY_TABLES: &[CopyTable] = &[
    CopyTable { name: "counters", what: "counter", cols: "name, value", key: "name" },
    CopyTable { name: "trials", what: "trial", cols: "id, seq, target, epoch_day, filed_at, burst_at, closed_at, verdict, subject, charge", key: "id" },
    CopyTable { name: "evidence", what: "evidence", cols: "id, trial, kind, recorded_at, epoch_day, source, data", key: "id" },
    CopyTable { name: "fingerprints", what: "fingerprint of", cols: "trial, pattern, recorded_at", key: "trial" },
    CopyTable { name: "witnesses", what: "witness", cols: "hash, registered_at, registered_by, vals", key: "hash" },
    CopyTable { name: "profiles", what: "profile", cols: "id, seq, trial, image, profile, signature, locked_at", key: "id" },
    CopyTable { name: "trendals", what: "trendal", cols: "id, prefix, seq, layer, silo, crew, spiral, trial, warmth, namespace, state, spawned_at, reaped_at, reap_reason, manifest", key: "id" },
];

/// What `ledger copy` did, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Per table, in copy order.
    pub tables: Vec<CopyCount>,
}

/// One table's count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyCount {
    /// The table.
    pub table: String,
    /// Records copied.
    pub copied: u64,
    /// Records already there, identical.
    pub present: u64,
}

impl Value {
    fn as_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Real(f) => Param::Real(*f),
            Value::Text(s) => Param::Text(s),
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Int(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

impl Tx<'_> {
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.db.backend.execute(sql, params)
    }

    /// The next number of `counter`, bumped inside this transaction (a row lock on PostgreSQL,
    /// the write lock on SQLite: racing filers queue; a rollback takes the number back).
    fn next(&self, counter: &str) -> Result<i64> {
        first(
            self.query(
                "INSERT INTO counters(name, value) VALUES ($1, 1)
                 ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                &[Param::Text(counter)],
            )?,
            counter,
        )?
        .int(0)
    }

    /// Files a new trial with the next `TRB-CHAOS-NNN` (three digits, four after 999).
    pub fn file_trial(
        &self,
        target: Layer,
        epoch_day: i64,
        now: Timestamp,
        subject: &Subject,
        charge: &Charge,
    ) -> Result<Trial> {
        // Through a JSON value, so the stored text has its keys sorted as it always had.
        let subject = serde_json::to_value(subject)?;
        let charge = serde_json::to_value(charge)?;
        let seq = self.next("trial")?;
        let id = format!("TRB-CHAOS-{seq:03}");
        self.execute(
            "INSERT INTO trials(id, seq, target, epoch_day, filed_at, subject, charge)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                Param::Text(&id),
                Param::Int(seq),
                Param::Text(target.as_str()),
                Param::Int(epoch_day),
                Param::Text(&ts(now)),
                Param::Text(&subject.to_string()),
                Param::Text(&charge.to_string()),
            ],
        )?;
        self.trial(&id)
    }

    /// Records the burst: the trial window starts now (a second burst keeps the first time).
    pub fn burst(&self, id: &str, now: Timestamp) -> Result<Trial> {
        self.exists(id)?;
        self.execute(
            "UPDATE trials SET burst_at = COALESCE(burst_at, $2) WHERE id = $1",
            &[Param::Text(id), Param::Text(&ts(now))],
        )?;
        self.trial(id)
    }

    /// Records evidence: `(kind, source, data)` items (`data` from
    /// [`sostle_core::trial::Evidence::to_json`]).
    pub fn add_evidence(
        &self,
        id: &str,
        items: &[(EvidenceKind, String, serde_json::Value)],
        now: Timestamp,
        epoch_day: i64,
    ) -> Result<()> {
        self.exists(id)?;
        let now = ts(now);
        for (kind, source, data) in items {
            self.execute(
                "INSERT INTO evidence(trial, kind, recorded_at, epoch_day, source, data)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    Param::Text(id),
                    Param::Text(kind.as_str()),
                    Param::Text(&now),
                    Param::Int(epoch_day),
                    Param::Text(source),
                    Param::Text(&data.to_string()),
                ],
            )?;
        }
        Ok(())
    }

    /// Records the verdict reached (and closes the trial when `close`).
    pub fn set_verdict(
        &self,
        id: &str,
        verdict: TrialVerdict,
        close: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.exists(id)?;
        self.execute(
            "UPDATE trials SET verdict = $2 WHERE id = $1",
            &[Param::Text(id), Param::Text(verdict.as_str())],
        )?;
        if close {
            self.execute(
                "UPDATE trials SET closed_at = COALESCE(closed_at, $2) WHERE id = $1",
                &[Param::Text(id), Param::Text(&ts(now))],
            )?;
        }
        Ok(())
    }

    /// Records a trial's failure fingerprint (first record wins).
    pub fn add_fingerprint(&self, id: &str, pattern: &[String], now: Timestamp) -> Result<()> {
        self.execute(
            "INSERT INTO fingerprints(trial, pattern, recorded_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[
                Param::Text(id),
                Param::Text(&serde_json::to_string(pattern)?),
                Param::Text(&ts(now)),
            ],
        )?;
        Ok(())
    }

    /// Registers an exemption witness (registering the same hash again keeps the first time).
    pub fn register_witness(
        &self,
        hash: &str,
        by: &str,
        values: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Witness> {
        self.execute(
            "INSERT INTO witnesses(hash, registered_at, registered_by, vals) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[
                Param::Text(hash),
                Param::Text(&ts(now)),
                Param::Text(by),
                Param::Text(&values.to_string()),
            ],
        )?;
        self.witness(hash)
    }

    /// Writes the next profile: `make` receives the new `profile-NNN` id and returns the profile
    /// JSON and its signature; both are stored in the same transaction as the id. Why `make`
    /// failed is the caller's error, kept as its message.
    pub fn add_profile<F>(
        &self,
        trial: &str,
        image: &str,
        now: Timestamp,
        make: F,
    ) -> Result<Profile>
    where
        F: FnOnce(
            &str,
        ) -> std::result::Result<
            (serde_json::Value, String),
            Box<dyn std::error::Error + Send + Sync>,
        >,
    {
        self.exists(trial)?;
        let seq = self.next("profile")?;
        let id = format!("profile-{seq:03}");
        let (profile, signature) =
            make(&id).map_err(|m| Error::NotFound(format!("signature for {id}: {m}")))?;
        self.execute(
            "INSERT INTO profiles(id, seq, trial, image, profile, signature, locked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                Param::Text(&id),
                Param::Int(seq),
                Param::Text(trial),
                Param::Text(image),
                Param::Text(&profile.to_string()),
                Param::Text(&signature),
                Param::Text(&ts(now)),
            ],
        )?;
        self.profile(&id)
    }

    /// Spawns a trendal with the next number for its prefix (`TRENDAL-L3-YONE-BOSUN`).
    pub fn add_trendal<F>(&self, prefix: &str, now: Timestamp, make: F) -> Result<Trendal>
    where
        F: FnOnce(&str) -> NewTrendal,
    {
        let seq = self.next(&format!("trendal:{prefix}"))?;
        let id = format!("{prefix}-{seq:03}");
        let t = make(&id);
        self.execute(
            "INSERT INTO trendals(id, prefix, seq, layer, silo, crew, spiral, trial, warmth, namespace,
                                  state, spawned_at, manifest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12)",
            &[
                Param::Text(&id),
                Param::Text(prefix),
                Param::Int(seq),
                Param::Text(t.layer.as_str()),
                Param::Text(&t.silo),
                Param::Text(&t.crew),
                Param::from(t.spiral.as_ref()),
                Param::from(t.trial.as_ref()),
                Param::Real(t.warmth),
                Param::Text(&t.namespace),
                Param::Text(&ts(now)),
                Param::Text(&t.manifest.to_string()),
            ],
        )?;
        self.trendal(&id)
    }

    /// Sets a trendal's warmth.
    pub fn warm_trendal(&self, id: &str, warmth: f64) -> Result<Trendal> {
        let n = self.execute(
            "UPDATE trendals SET warmth = $2 WHERE id = $1 AND state = 'active'",
            &[Param::Text(id), Param::Real(warmth)],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("active trendal {id}")));
        }
        self.trendal(id)
    }

    /// Marks a trendal reaped.
    pub fn reap_trendal(&self, id: &str, reason: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE trendals SET state = 'reaped', reaped_at = $2, reap_reason = $3 WHERE id = $1 AND state = 'active'",
            &[Param::Text(id), Param::Text(&ts(now)), Param::Text(reason)],
        )?;
        Ok(())
    }
}

/// What `sostle test` and the webhook need of a ledger, loaded once into memory so many
/// threads can consult it: witnesses, trial states and profiles.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    witnesses: std::collections::HashMap<String, Timestamp>,
    trials: std::collections::HashMap<String, bool>,
    /// The profiles, as the lock registry.
    pub locks: sostle_core::mecipol::LockSet,
}

impl Snapshot {
    /// Loads the snapshot.
    pub fn load(ledger: &Ledger) -> Result<Snapshot> {
        let witnesses = ledger
            .witnesses()?
            .into_iter()
            .map(|w| (w.hash, w.registered_at))
            .collect();
        let trials = ledger.trial_states()?.into_iter().collect();
        Ok(Snapshot {
            witnesses,
            trials,
            locks: sostle_core::mecipol::LockSet::new(ledger.profiles()?),
        })
    }
}

impl sostle_core::exemption::ExemptionLedger for Snapshot {
    fn witness_registered_at(&self, witness: &str) -> Option<Timestamp> {
        self.witnesses.get(witness).copied()
    }

    fn trial_state(&self, trial: &str) -> Option<sostle_core::exemption::TrialState> {
        self.trials.get(trial).map(|open| {
            if *open {
                sostle_core::exemption::TrialState::Open
            } else {
                sostle_core::exemption::TrialState::Closed
            }
        })
    }
}

impl sostle_core::mecipol::LockRegistry for Snapshot {
    fn newest_lock(&self, image: &str) -> Option<&Profile> {
        self.locks.newest_lock(image)
    }

    fn check(
        &self,
        image: &str,
        layer: Layer,
        current_profile: Option<&str>,
    ) -> Vec<sostle_core::mecipol::LockProblem> {
        self.locks.check(image, layer, current_profile)
    }
}
