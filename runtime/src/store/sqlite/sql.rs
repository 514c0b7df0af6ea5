//! [`Sql`] on a SQLite connection: statements run at once, through the connection's
//! prepared-statement cache, with PostgreSQL's `$n` parameters written as SQLite's `?n`.

use super::{backend, refused};
use crate::store::StoreResult;
use crate::store::sql::{Dialect, Record, Sql, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A connection running the shared operations (the writer's inside its batch, or a reader's).
/// It owns its connection, so it can be sent with the operation to the thread that runs it,
/// and the column names of each statement it ran (shared by the records it returns).
pub(crate) struct Lite(pub Connection, pub(super) Names);

/// Column names by statement text, read once per connection.
pub(crate) type Names = HashMap<&'static str, Arc<[String]>>;

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::TextList(l) => ToSqlOutput::Owned(rusqlite::types::Value::Text(
                serde_json::to_string(l).expect("strings serialize"),
            )),
        })
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

/// `sql` with `$n` parameters as `?n`, translated once per statement text.
pub(super) fn translated(sql: &'static str) -> &'static str {
    static SEEN: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    if let Some(t) = seen.lock().expect("statement cache").get(sql) {
        return t;
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    let t: &'static str = Box::leak(out.into_boxed_str());
    seen.lock().expect("statement cache").insert(sql, t);
    t
}

impl Lite {
    fn prepare(&self, sql: &'static str) -> StoreResult<rusqlite::CachedStatement<'_>> {
        self.0.prepare_cached(translated(sql)).map_err(refused)
    }
}

fn records(
    stmt: &mut Statement<'_>,
    names: Arc<[String]>,
    params: &[Value],
) -> StoreResult<Vec<Record>> {
    let width = names.len();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(refused)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(refused)? {
        let values = (0..width)
            .map(|i| row.get_ref(i).map(value))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(backend)?;
        out.push(Record::new(names.clone(), values));
    }
    Ok(out)
}

impl Sql for Lite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn exec(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<u64> {
        let mut stmt = self.prepare(sql)?;
        stmt.execute(rusqlite::params_from_iter(params))
            .map(|n| n as u64)
            .map_err(refused)
    }

    async fn rows(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Vec<Record>> {
        let Lite(conn, names) = self;
        let mut stmt = conn.prepare_cached(translated(sql)).map_err(refused)?;
        let names = names
            .entry(sql)
            .or_insert_with(|| stmt.column_names().iter().map(|n| n.to_string()).collect())
            .clone();
        records(&mut stmt, names, params)
    }

    async fn notify(&mut self, _channel: &'static str, _payload: &str) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbered_parameters_become_sqlites() {
        assert_eq!(
            super::translated("UPDATE t SET a = $2 WHERE b = $1 AND c = '$x'"),
            "UPDATE t SET a = ?2 WHERE b = ?1 AND c = '$x'"
        );
    }
}
