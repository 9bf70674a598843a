//! The embedded ledger: one SQLite file (by default `.sostle/ledger.db`) holding trials and
//! their evidence, MECIPOL profiles (locks), registered exemption witnesses, PELEGO novelty
//! fingerprints and trendals.
//!
//! Every write is one transaction begun `IMMEDIATE` (so concurrent writers queue on the busy
//! timeout instead of failing), the journal is WAL, and IDs come from a counter table bumped
//! inside the same transaction as the row they name — an ID is never reused, even across
//! processes filing at the same moment. A file that is not a sostle ledger (another SQLite
//! database, or not a database at all) is refused, never overwritten.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// `PRAGMA application_id` of a sostle ledger ("SOST").
pub const APPLICATION_ID: i32 = 0x534F_5354;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Ledger errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file exists but is not a sostle ledger.
    #[error("{path} is not a sostle ledger ({reason}); refusing to use or overwrite it")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The ledger was written by a newer sostle.
    #[error("{path} has ledger schema {found}, newer than this sostle ({SCHEMA_VERSION}); upgrade sostle")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i32,
    },
    /// A record was not found.
    #[error("{0} is not in the ledger")]
    NotFound(String),
    /// SQLite failed.
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON value did not decode.
    #[error("ledger: stored record does not decode: {0}")]
    Json(#[from] serde_json::Error),
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
    /// The target layer (`L2`).
    pub target: String,
    /// Epoch day it was filed.
    pub epoch_day: i64,
    /// When it was filed.
    pub filed_at: String,
    /// When it was burst (the trial window starts).
    pub burst_at: Option<String>,
    /// When it was closed.
    pub closed_at: Option<String>,
    /// The last verdict reached.
    pub verdict: Option<String>,
    /// The subject: resources, images, manifest digests and the documents themselves.
    pub subject: serde_json::Value,
    /// The charge: results at the target layer and in the trial namespace, exemptions needed.
    pub charge: serde_json::Value,
}

/// One piece of evidence (or a phase record) of a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Sequence number within the ledger.
    pub id: i64,
    /// The trial.
    pub trial: String,
    /// `falco`, `trivy`, `events`, `live`, `verdict`, `lock`, `promote`…
    pub kind: String,
    /// When it was recorded.
    pub recorded_at: String,
    /// Epoch day it was recorded.
    pub epoch_day: i64,
    /// Where it came from (file name).
    pub source: String,
    /// What it says.
    pub data: serde_json::Value,
}

pub use sostle_core::mecipol::Profile;

/// A registered exemption witness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witness {
    /// `sha256:…`.
    pub hash: String,
    /// When it was registered.
    pub registered_at: String,
    /// Who registered it.
    pub registered_by: String,
    /// The values it covers.
    pub values: serde_json::Value,
}

/// A trendal (SPEC §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trendal {
    /// `TRENDAL-L3-YONE-BOSUN-001`.
    pub id: String,
    /// Layer.
    pub layer: String,
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
    /// `active` or `reaped`.
    pub state: String,
    /// When it was spawned.
    pub spawned_at: String,
    /// When it was reaped.
    pub reaped_at: Option<String>,
    /// Why it was reaped.
    pub reap_reason: Option<String>,
    /// The manifest it was spawned with.
    pub manifest: serde_json::Value,
}

/// An open ledger.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE trials (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, target TEXT NOT NULL,
        epoch_day INTEGER NOT NULL, filed_at TEXT NOT NULL, burst_at TEXT, closed_at TEXT,
        verdict TEXT, subject TEXT NOT NULL, charge TEXT NOT NULL);
     CREATE TABLE evidence (
        id INTEGER PRIMARY KEY AUTOINCREMENT, trial TEXT NOT NULL REFERENCES trials(id),
        kind TEXT NOT NULL, recorded_at TEXT NOT NULL, epoch_day INTEGER NOT NULL,
        source TEXT NOT NULL, data TEXT NOT NULL);
     CREATE INDEX evidence_trial ON evidence(trial, id);
     CREATE TABLE fingerprints (
        trial TEXT PRIMARY KEY REFERENCES trials(id), pattern TEXT NOT NULL, recorded_at TEXT NOT NULL);
     CREATE TABLE witnesses (
        hash TEXT PRIMARY KEY, registered_at TEXT NOT NULL, registered_by TEXT NOT NULL, vals TEXT NOT NULL);
     CREATE TABLE profiles (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, trial TEXT NOT NULL REFERENCES trials(id),
        image TEXT NOT NULL, profile TEXT NOT NULL, signature TEXT NOT NULL, locked_at TEXT NOT NULL);
     CREATE INDEX profiles_image ON profiles(image);
     CREATE TABLE trendals (
        id TEXT PRIMARY KEY, prefix TEXT NOT NULL, seq INTEGER NOT NULL, layer TEXT NOT NULL,
        silo TEXT NOT NULL, crew TEXT NOT NULL, spiral TEXT, trial TEXT, warmth REAL NOT NULL,
        namespace TEXT NOT NULL, state TEXT NOT NULL, spawned_at TEXT NOT NULL, reaped_at TEXT,
        reap_reason TEXT, manifest TEXT NOT NULL, UNIQUE(prefix, seq));",
];

fn ts(t: Timestamp) -> String {
    t.to_string()
}

impl Ledger {
    /// Opens the ledger at `path`, creating it (and its directory) when missing.
    pub fn open(path: &Path) -> Result<Ledger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Self::open_with(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
    }

    /// Opens an existing ledger; a missing file is an error.
    pub fn open_existing(path: &Path) -> Result<Ledger> {
        if !path.exists() {
            return Err(Error::NotFound(path.display().to_string()));
        }
        Self::open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Ledger> {
        let foreign = |reason: String| Error::Foreign {
            path: path.to_path_buf(),
            reason,
        };
        // A non-empty file must start with the SQLite header before SQLite touches it.
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.len() > 0 {
                let mut head = [0u8; 16];
                let ok = std::fs::File::open(path)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                    .is_ok();
                if !ok || &head != b"SQLite format 3\0" {
                    return Err(foreign("not an SQLite database".into()));
                }
            }
        }
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let app: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| foreign(e.to_string()))?;
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if app != APPLICATION_ID && !(app == 0 && tables == 0) {
            return Err(foreign(format!(
                "application id {app:#x}{}",
                if tables > 0 {
                    format!(", {tables} tables of another application")
                } else {
                    String::new()
                }
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let v = i32::try_from(i).unwrap_or(i32::MAX) + 1;
            if v > version {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", v)?;
            }
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        Ok(())
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn next(tx: &rusqlite::Transaction<'_>, counter: &str) -> Result<i64> {
        tx.execute(
            "INSERT INTO counters(name, value) VALUES (?1, 1)
             ON CONFLICT(name) DO UPDATE SET value = value + 1",
            params![counter],
        )?;
        Ok(tx.query_row(
            "SELECT value FROM counters WHERE name = ?1",
            params![counter],
            |r| r.get(0),
        )?)
    }

    /// Files a new trial with the next `TRB-CHAOS-NNN` (three digits, four after 999).
    pub fn file_trial(
        &mut self,
        target: &str,
        epoch_day: i64,
        now: Timestamp,
        subject: &serde_json::Value,
        charge: &serde_json::Value,
    ) -> Result<Trial> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = Self::next(&tx, "trial")?;
        let id = format!("TRB-CHAOS-{seq:03}");
        tx.execute(
            "INSERT INTO trials(id, seq, target, epoch_day, filed_at, subject, charge)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                seq,
                target,
                epoch_day,
                ts(now),
                subject.to_string(),
                charge.to_string()
            ],
        )?;
        tx.commit()?;
        self.trial(&id)
    }

    fn row_trial(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Trial, String, String)> {
        Ok((
            Trial {
                id: r.get(0)?,
                target: r.get(1)?,
                epoch_day: r.get(2)?,
                filed_at: r.get(3)?,
                burst_at: r.get(4)?,
                closed_at: r.get(5)?,
                verdict: r.get(6)?,
                subject: serde_json::Value::Null,
                charge: serde_json::Value::Null,
            },
            r.get(7)?,
            r.get(8)?,
        ))
    }

    const TRIAL_COLS: &'static str =
        "id, target, epoch_day, filed_at, burst_at, closed_at, verdict, subject, charge";

    /// One trial.
    pub fn trial(&self, id: &str) -> Result<Trial> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {} FROM trials WHERE id = ?1", Self::TRIAL_COLS),
                params![id],
                Self::row_trial,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let (mut t, subject, charge) = row;
        t.subject = serde_json::from_str(&subject)?;
        t.charge = serde_json::from_str(&charge)?;
        Ok(t)
    }

    /// Every trial, oldest first.
    pub fn trials(&self) -> Result<Vec<Trial>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM trials ORDER BY seq",
            Self::TRIAL_COLS
        ))?;
        let rows = stmt.query_map([], Self::row_trial)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut t, subject, charge) = row?;
            t.subject = serde_json::from_str(&subject)?;
            t.charge = serde_json::from_str(&charge)?;
            out.push(t);
        }
        Ok(out)
    }

    /// Ids and open/closed state of every trial (cheap: no JSON).
    pub fn trial_states(&self) -> Result<Vec<(String, bool)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, closed_at IS NULL FROM trials ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn exists(&self, id: &str) -> Result<()> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM trials WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        if n == 0 {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// Records the burst: the trial window starts now (a second burst keeps the first time).
    pub fn burst(&mut self, id: &str, now: Timestamp) -> Result<Trial> {
        self.exists(id)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE trials SET burst_at = COALESCE(burst_at, ?2) WHERE id = ?1",
            params![id, ts(now)],
        )?;
        tx.commit()?;
        self.trial(id)
    }

    /// Records evidence (all items in one transaction: all or none).
    pub fn add_evidence(
        &mut self,
        id: &str,
        items: &[(String, String, serde_json::Value)],
        now: Timestamp,
        epoch_day: i64,
    ) -> Result<()> {
        self.exists(id)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (kind, source, data) in items {
            tx.execute(
                "INSERT INTO evidence(trial, kind, recorded_at, epoch_day, source, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, kind, ts(now), epoch_day, source, data.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A trial's evidence, oldest first.
    pub fn evidence(&self, id: &str) -> Result<Vec<Evidence>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, trial, kind, recorded_at, epoch_day, source, data FROM evidence
             WHERE trial = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok((
                Evidence {
                    id: r.get(0)?,
                    trial: r.get(1)?,
                    kind: r.get(2)?,
                    recorded_at: r.get(3)?,
                    epoch_day: r.get(4)?,
                    source: r.get(5)?,
                    data: serde_json::Value::Null,
                },
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut e, data) = row?;
            e.data = serde_json::from_str(&data)?;
            out.push(e);
        }
        Ok(out)
    }

    /// Records the verdict reached (and closes the trial when `close`).
    pub fn set_verdict(
        &mut self,
        id: &str,
        verdict: &str,
        close: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.exists(id)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE trials SET verdict = ?2 WHERE id = ?1",
            params![id, verdict],
        )?;
        if close {
            tx.execute(
                "UPDATE trials SET closed_at = COALESCE(closed_at, ?2) WHERE id = ?1",
                params![id, ts(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a trial's failure fingerprint (first record wins).
    pub fn add_fingerprint(&mut self, id: &str, pattern: &[String], now: Timestamp) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO fingerprints(trial, pattern, recorded_at) VALUES (?1, ?2, ?3)",
            params![id, serde_json::to_string(pattern)?, ts(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every recorded fingerprint, oldest trial first.
    pub fn fingerprints(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT f.trial, f.pattern FROM fingerprints f JOIN trials t ON t.id = f.trial ORDER BY t.seq",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (t, p) = row?;
            out.push((t, serde_json::from_str(&p)?));
        }
        Ok(out)
    }

    /// Registers an exemption witness (registering the same hash again keeps the first time).
    pub fn register_witness(
        &mut self,
        hash: &str,
        by: &str,
        values: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Witness> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO witnesses(hash, registered_at, registered_by, vals) VALUES (?1, ?2, ?3, ?4)",
            params![hash, ts(now), by, values.to_string()],
        )?;
        tx.commit()?;
        let (registered_at, registered_by, vals): (String, String, String) = self
            .conn
            .query_row(
                "SELECT registered_at, registered_by, vals FROM witnesses WHERE hash = ?1",
                params![hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(hash.to_string()))?;
        Ok(Witness {
            hash: hash.to_string(),
            registered_at,
            registered_by,
            values: serde_json::from_str(&vals)?,
        })
    }

    /// Every registered witness.
    pub fn witnesses(&self) -> Result<Vec<Witness>> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash, registered_at, registered_by, vals FROM witnesses ORDER BY registered_at, hash")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, registered_at, registered_by, vals) = row?;
            out.push(Witness {
                hash,
                registered_at,
                registered_by,
                values: serde_json::from_str(&vals)?,
            });
        }
        Ok(out)
    }

    /// Writes the next profile: `make` receives the new `profile-NNN` id and returns the profile
    /// JSON and its signature; both are stored in the same transaction as the id.
    pub fn add_profile<F>(
        &mut self,
        trial: &str,
        image: &str,
        now: Timestamp,
        make: F,
    ) -> Result<Profile>
    where
        F: FnOnce(&str) -> std::result::Result<(serde_json::Value, String), String>,
    {
        self.exists(trial)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = Self::next(&tx, "profile")?;
        let id = format!("profile-{seq:03}");
        let (profile, signature) =
            make(&id).map_err(|m| Error::NotFound(format!("signature for {id}: {m}")))?;
        tx.execute(
            "INSERT INTO profiles(id, seq, trial, image, profile, signature, locked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                seq,
                trial,
                image,
                profile.to_string(),
                signature,
                ts(now)
            ],
        )?;
        tx.commit()?;
        self.profile(&id)
    }

    fn row_profile(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Profile, String)> {
        Ok((
            Profile {
                id: r.get(0)?,
                trial: r.get(1)?,
                image: r.get(2)?,
                profile: serde_json::Value::Null,
                signature: r.get(4)?,
                locked_at: r.get(5)?,
            },
            r.get(3)?,
        ))
    }

    /// One profile.
    pub fn profile(&self, id: &str) -> Result<Profile> {
        let (mut p, json) = self
            .conn
            .query_row(
                "SELECT id, trial, image, profile, signature, locked_at FROM profiles WHERE id = ?1",
                params![id],
                Self::row_profile,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        p.profile = serde_json::from_str(&json)?;
        Ok(p)
    }

    /// Every profile, oldest first.
    pub fn profiles(&self) -> Result<Vec<Profile>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, trial, image, profile, signature, locked_at FROM profiles ORDER BY seq",
        )?;
        let rows = stmt.query_map([], Self::row_profile)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut p, json) = row?;
            p.profile = serde_json::from_str(&json)?;
            out.push(p);
        }
        Ok(out)
    }

    /// Spawns a trendal with the next number for its prefix (`TRENDAL-L3-YONE-BOSUN`).
    #[allow(clippy::too_many_arguments)]
    pub fn add_trendal<F>(&mut self, prefix: &str, now: Timestamp, make: F) -> Result<Trendal>
    where
        F: FnOnce(&str) -> Trendal,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = Self::next(&tx, &format!("trendal:{prefix}"))?;
        let id = format!("{prefix}-{seq:03}");
        let t = make(&id);
        tx.execute(
            "INSERT INTO trendals(id, prefix, seq, layer, silo, crew, spiral, trial, warmth, namespace,
                                  state, spawned_at, manifest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'active', ?11, ?12)",
            params![
                id, prefix, seq, t.layer, t.silo, t.crew, t.spiral, t.trial, t.warmth, t.namespace,
                ts(now), t.manifest.to_string()
            ],
        )?;
        tx.commit()?;
        self.trendal(&id)
    }

    const TRENDAL_COLS: &'static str = "id, layer, silo, crew, spiral, trial, warmth, namespace, state, spawned_at, reaped_at, reap_reason, manifest";

    fn row_trendal(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Trendal, String)> {
        Ok((
            Trendal {
                id: r.get(0)?,
                layer: r.get(1)?,
                silo: r.get(2)?,
                crew: r.get(3)?,
                spiral: r.get(4)?,
                trial: r.get(5)?,
                warmth: r.get(6)?,
                namespace: r.get(7)?,
                state: r.get(8)?,
                spawned_at: r.get(9)?,
                reaped_at: r.get(10)?,
                reap_reason: r.get(11)?,
                manifest: serde_json::Value::Null,
            },
            r.get(12)?,
        ))
    }

    /// One trendal.
    pub fn trendal(&self, id: &str) -> Result<Trendal> {
        let (mut t, m) = self
            .conn
            .query_row(
                &format!("SELECT {} FROM trendals WHERE id = ?1", Self::TRENDAL_COLS),
                params![id],
                Self::row_trendal,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        t.manifest = serde_json::from_str(&m)?;
        Ok(t)
    }

    /// Every trendal, in spawn order.
    pub fn trendals(&self) -> Result<Vec<Trendal>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM trendals ORDER BY spawned_at, prefix, seq",
            Self::TRENDAL_COLS
        ))?;
        let rows = stmt.query_map([], Self::row_trendal)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut t, m) = row?;
            t.manifest = serde_json::from_str(&m)?;
            out.push(t);
        }
        Ok(out)
    }

    /// Sets a trendal's warmth.
    pub fn warm_trendal(&mut self, id: &str, warmth: f64) -> Result<Trendal> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE trendals SET warmth = ?2 WHERE id = ?1 AND state = 'active'",
            params![id, warmth],
        )?;
        tx.commit()?;
        if n == 0 {
            return Err(Error::NotFound(format!("active trendal {id}")));
        }
        self.trendal(id)
    }

    /// Marks a trendal reaped.
    pub fn reap_trendal(&mut self, id: &str, reason: &str, now: Timestamp) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE trendals SET state = 'reaped', reaped_at = ?2, reap_reason = ?3 WHERE id = ?1 AND state = 'active'",
            params![id, ts(now), reason],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Runs SQLite's integrity check; `Ok(())` when the file is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
            .filter_map(|w| {
                w.registered_at
                    .parse::<Timestamp>()
                    .ok()
                    .map(|t| (w.hash, t))
            })
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

impl sostle_core::eval::LockRegistry for Snapshot {
    fn check(
        &self,
        image: &str,
        layer: sostle_core::Layer,
        current_profile: Option<&str>,
    ) -> Vec<sostle_core::mecipol::LockProblem> {
        self.locks.check(image, layer, current_profile)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> Timestamp {
        "2026-05-11T21:00:00Z".parse().unwrap()
    }

    #[test]
    fn ids_are_sequential_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut l = Ledger::open(&path).unwrap();
        let a = l
            .file_trial(
                "L2",
                97,
                now(),
                &serde_json::json!({}),
                &serde_json::json!({}),
            )
            .unwrap();
        let b = l
            .file_trial(
                "L2",
                97,
                now(),
                &serde_json::json!({}),
                &serde_json::json!({}),
            )
            .unwrap();
        assert_eq!(
            (a.id.as_str(), b.id.as_str()),
            ("TRB-CHAOS-001", "TRB-CHAOS-002")
        );
        drop(l);
        let mut l = Ledger::open(&path).unwrap();
        let c = l
            .file_trial(
                "L2",
                97,
                now(),
                &serde_json::json!({}),
                &serde_json::json!({}),
            )
            .unwrap();
        assert_eq!(c.id, "TRB-CHAOS-003");
    }

    #[test]
    fn four_digits_after_999() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        l.conn
            .execute(
                "INSERT INTO counters(name, value) VALUES ('trial', 998)",
                [],
            )
            .unwrap();
        let file = |l: &mut Ledger| {
            l.file_trial(
                "L2",
                97,
                now(),
                &serde_json::json!({}),
                &serde_json::json!({}),
            )
            .unwrap()
            .id
        };
        assert_eq!(file(&mut l), "TRB-CHAOS-999");
        assert_eq!(file(&mut l), "TRB-CHAOS-1000");
    }

    #[test]
    fn foreign_files_are_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"these are my notes, not a database").unwrap();
        assert!(matches!(Ledger::open(&text), Err(Error::Foreign { .. })));
        assert_eq!(
            std::fs::read(&text).unwrap(),
            b"these are my notes, not a database"
        );
        let other = dir.path().join("other.db");
        {
            let c = Connection::open(&other).unwrap();
            c.execute_batch("CREATE TABLE photos (id INTEGER)").unwrap();
        }
        let before = std::fs::read(&other).unwrap();
        let e = Ledger::open(&other).unwrap_err();
        assert!(e.to_string().contains("not a sostle ledger"), "{e}");
        assert_eq!(std::fs::read(&other).unwrap(), before);
    }
}
