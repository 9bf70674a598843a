//! The little SQL the ledger needs, spoken to either backend: borrowed parameters in, owned
//! values out, explicit transactions. Statements are written once with `$1…$n` placeholders
//! (PostgreSQL's); the SQLite backend rewrites them to `?1…?n`.

use crate::{Error, Result};

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(&'a str),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(s)
    }
}

impl From<i64> for Param<'_> {
    fn from(i: i64) -> Self {
        Param::Int(i)
    }
}

impl From<f64> for Param<'_> {
    fn from(f: f64) -> Self {
        Param::Real(f)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (booleans are read as 0/1).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
}

/// One row, with the statement it came from for error messages.
#[derive(Debug)]
pub struct Row {
    pub(crate) values: Vec<Value>,
}

impl Row {
    fn at(&self, i: usize) -> Result<&Value> {
        self.values
            .get(i)
            .ok_or_else(|| Error::Decode(format!("column {i} missing from a row")))
    }

    fn wrong(&self, i: usize, want: &str) -> Error {
        Error::Decode(format!(
            "column {i}: expected {want}, found {:?}",
            self.values.get(i)
        ))
    }

    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<String> {
        match self.at(i)? {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(self.wrong(i, "text")),
        }
    }

    /// Column `i` as nullable text.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            _ => Err(self.wrong(i, "text or NULL")),
        }
    }

    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.at(i)? {
            Value::Int(n) => Ok(*n),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    /// Column `i` as a float (integers widen).
    pub fn real(&self, i: usize) -> Result<f64> {
        match self.at(i)? {
            Value::Real(f) => Ok(*f),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(n) => Ok(*n as f64),
            _ => Err(self.wrong(i, "a number")),
        }
    }

    /// Column `i` as a stored JSON document.
    pub fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T> {
        match self.at(i)? {
            Value::Text(s) => Ok(serde_json::from_str(s)?),
            _ => Err(self.wrong(i, "JSON text")),
        }
    }
}

/// What a ledger backend offers: statements, and transactions begun and ended explicitly on the
/// one connection it holds. Implemented by SQLite (embedded) and PostgreSQL (shared).
pub trait Backend: std::fmt::Debug + Send {
    /// Runs a statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs a query; its rows.
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>>;
    /// Begins a write transaction (SQLite: `IMMEDIATE`, so writers queue instead of failing).
    fn begin(&self) -> Result<()>;
    /// Commits it.
    fn commit(&self) -> Result<()>;
    /// Rolls it back (errors ignored by callers: the connection may be gone, and with it the
    /// transaction).
    fn rollback(&self) -> Result<()>;
    /// After rows were copied in with explicit ids: move id generators past them.
    fn after_import(&self) -> Result<()>;
    /// The backend's own soundness check (`PRAGMA integrity_check`; the schema for PostgreSQL).
    fn integrity_check(&self) -> Result<Vec<String>>;
    /// The schema version of the open ledger.
    fn schema_version(&self) -> Result<i32>;
    /// What opening the ledger noticed but did not stop for (a password file others can
    /// read, say), for the caller to show; a library does not print.
    fn warnings(&self) -> &[String] {
        &[]
    }
}

/// The first row of `rows`, or `what` not found.
pub fn first(rows: Vec<Row>, what: &str) -> Result<Row> {
    rows.into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(what.to_string()))
}
