//! The embedded backend: one SQLite file, WAL journal, `synchronous = FULL`, write transactions
//! begun `IMMEDIATE` so concurrent writers queue on the busy timeout instead of failing. The file
//! carries `application_id` "SOST" and its schema version in `user_version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::sql::{Backend, Param, Row, Value};
use crate::{Error, Result, APPLICATION_ID, SCHEMA_VERSION};

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

/// An open SQLite ledger file.
#[derive(Debug)]
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(i),
            Param::Real(f) => ValueRef::Real(f),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// `$1` → `?1`: the statements are written in PostgreSQL's placeholders.
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Sqlite {
    /// Opens (creating when `create`) and migrates the ledger file at `path`; a file that is not
    /// a sostle ledger is refused untouched.
    pub fn open(path: &Path, create: bool) -> Result<Sqlite> {
        if create {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        } else if !path.exists() {
            return Err(Error::NoLedger(format!(
                "{}: no ledger file there (`sostle ledger migrate --ledger {0}` or a trial command creates one)",
                path.display()
            )));
        }
        let foreign = |reason: String| Error::Foreign {
            location: path.display().to_string(),
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
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Both read in one transaction: another process may be creating this ledger at this
        // moment, and its tables and application id must be seen together or not at all.
        conn.execute_batch("BEGIN")?;
        let read = (|| -> Result<(i32, i64)> {
            let app: i32 = conn
                .query_row("PRAGMA application_id", [], |r| r.get(0))
                .map_err(|e| foreign(e.to_string()))?;
            let tables: i64 = conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )?;
            Ok((app, tables))
        })();
        let _ = conn.execute_batch("COMMIT");
        let (app, tables) = read?;
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
        wal(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let ledger = Sqlite {
            conn,
            path: path.to_path_buf(),
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn migrate(&self) -> Result<()> {
        self.begin()?;
        let run = || -> Result<()> {
            let version: i32 = self
                .conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(Error::TooNew {
                    location: self.path.display().to_string(),
                    found: version,
                });
            }
            for (v, sql) in (1..).zip(MIGRATIONS) {
                if v > version {
                    self.conn.execute_batch(sql)?;
                    self.conn.pragma_update(None, "user_version", v)?;
                }
            }
            self.conn
                .pragma_update(None, "application_id", APPLICATION_ID)?;
            Ok(())
        };
        match run() {
            Ok(()) => self.commit(),
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }
}

/// Puts the file in WAL mode. Changing the journal mode needs the file to itself, and SQLite
/// answers BUSY at once (no busy handler) while another connection has it open — as when several
/// processes open a new ledger at the same moment — so it is retried until one of them has
/// switched it (or the busy timeout has passed).
fn wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long a writer waits for another one.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn value(v: ValueRef<'_>) -> Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| Error::Decode(format!("stored text is not UTF-8: {e}")))?
                .to_string(),
        ),
        ValueRef::Blob(_) => return Err(Error::Decode("unexpected BLOB column".into())),
    })
}

impl Backend for Sqlite {
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(&dialect(sql))?;
        let n = stmt.execute(rusqlite::params_from_iter(params))?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(&dialect(sql))?;
        let cols = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(cols);
            for i in 0..cols {
                values.push(value(r.get_ref(i)?)?);
            }
            out.push(Row { values });
        }
        Ok(out)
    }

    fn begin(&self) -> Result<()> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&self) -> Result<()> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&self) -> Result<()> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }

    fn after_import(&self) -> Result<()> {
        // AUTOINCREMENT keeps sqlite_sequence at the largest id inserted, explicit ones included.
        Ok(())
    }

    fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn schema_version(&self) -> Result<i32> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}
