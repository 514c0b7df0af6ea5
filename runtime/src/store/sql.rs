//! The one way both backends run SQL: values, rows read by column name, and the [`Sql`]
//! executor that the shared operations ([`super::ops`]) are written against.
//!
//! Statements are written once, PostgreSQL-style (`$1`, `$2`, ...); SQLite runs them as `?1`,
//! `?2`, ... (the same numbered binding). Where the dialects differ, an operation asks
//! [`Sql::dialect`] and picks its variant. Values travel as [`Value`]: integers bind to any
//! integer column (PostgreSQL's `INTEGER` and `BIGINT` alike), booleans to PostgreSQL's
//! `BOOLEAN` and SQLite's integers.

use super::{StoreError, StoreResult};
use std::sync::Arc;

/// Which database runs a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The embedded store.
    Sqlite,
    /// The shared store.
    Postgres,
}

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// SQL `NULL`.
    Null,
    /// Any integer column.
    Int(i64),
    /// `BOOLEAN` (PostgreSQL) or 0/1 (SQLite).
    Bool(bool),
    /// Text.
    Text(String),
    /// Bytes (`BYTEA`, `BLOB`).
    Bytes(Vec<u8>),
    /// A list of text: `TEXT[]` on PostgreSQL, a JSON array on SQLite (read with `json_each`).
    TextList(Vec<String>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<&[String]> for Value {
    fn from(v: &[String]) -> Value {
        Value::TextList(v.to_vec())
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Value {
        Value::TextList(v)
    }
}

/// Parameters for a statement: `params![a, b, c]`.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($v)),*] as &[$crate::store::sql::Value]
    };
}
pub(crate) use params;

/// One row of a result, read by column name.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    names: Arc<[String]>,
    values: Vec<Value>,
}

/// A value converted out of a [`Record`].
pub(crate) trait FromValue: Sized {
    /// The value, or why it does not fit.
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}
impl FromValue for i32 {
    fn from_value(v: &Value) -> Option<i32> {
        i64::from_value(v).and_then(|i| i32::try_from(i).ok())
    }
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> Option<u32> {
        i64::from_value(v).map(|i| u32::try_from(i).unwrap_or(0))
    }
}
impl FromValue for u64 {
    fn from_value(v: &Value) -> Option<u64> {
        i64::from_value(v).map(|i| u64::try_from(i).unwrap_or(0))
    }
}
impl FromValue for u8 {
    fn from_value(v: &Value) -> Option<u8> {
        i64::from_value(v).map(|i| u8::try_from(i).unwrap_or(u8::MAX))
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            Value::Text(s) => Some(s.clone().into_bytes()),
            _ => None,
        }
    }
}
impl FromValue for Vec<String> {
    fn from_value(v: &Value) -> Option<Vec<String>> {
        match v {
            Value::TextList(l) => Some(l.clone()),
            Value::Text(json) => serde_json::from_str(json).ok(),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl Record {
    /// A row of `values` under `names`.
    pub(crate) fn new(names: Arc<[String]>, values: Vec<Value>) -> Record {
        Record { names, values }
    }

    /// Column `name`, converted.
    pub(crate) fn get<T: FromValue>(&self, name: &str) -> StoreResult<T> {
        let at = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| StoreError::Backend(format!("the row has no column `{name}`")))?;
        T::from_value(&self.values[at]).ok_or_else(|| {
            StoreError::Backend(format!(
                "column `{name}` holds {:?}, not the type expected",
                self.values[at]
            ))
        })
    }

    /// A JSON column, decoded (`None` for `NULL` or text that does not decode).
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> StoreResult<Option<T>> {
        Ok(self
            .get::<Option<String>>(name)?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }
}

/// A connection (or transaction) that runs statements; one implementation per backend.
///
/// SQLite's runs each statement at once on the writer's (or a reader's) connection, so its
/// futures are always ready; PostgreSQL's sends it to the server.
pub(crate) trait Sql: Send {
    /// Which database this is.
    fn dialect(&self) -> Dialect;
    /// Run a statement; how many rows it changed.
    fn exec(
        &mut self,
        sql: &'static str,
        params: &[Value],
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Run a query; its rows.
    fn rows(
        &mut self,
        sql: &'static str,
        params: &[Value],
    ) -> impl Future<Output = StoreResult<Vec<Record>>> + Send;
    /// Tell listeners on `channel` (PostgreSQL's NOTIFY, delivered at commit); SQLite has no
    /// other process to tell.
    fn notify(
        &mut self,
        channel: &'static str,
        payload: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The first row, if any.
    fn row(
        &mut self,
        sql: &'static str,
        params: &[Value],
    ) -> impl Future<Output = StoreResult<Option<Record>>> + Send {
        async move { Ok(self.rows(sql, params).await?.into_iter().next()) }
    }

    /// The one row a statement must return.
    fn one(
        &mut self,
        sql: &'static str,
        params: &[Value],
    ) -> impl Future<Output = StoreResult<Record>> + Send {
        async move {
            self.row(sql, params)
                .await?
                .ok_or_else(|| StoreError::Backend(format!("no row from `{sql}`")))
        }
    }
}

/// Run a future that never waits: SQLite's operations, whose statements all complete
/// synchronously, on the thread that holds the connection.
pub(crate) fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => {
            unreachable!("an SQLite store operation waited; its statements run synchronously")
        }
    }
}
