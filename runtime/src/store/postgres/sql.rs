//! [`Sql`] on a PostgreSQL connection or transaction, through the connection's cache of
//! prepared statements.

use super::pg;
use crate::store::sql::{Dialect, Record, Sql, Value};
use crate::store::{StoreError, StoreResult};
use bytes::BytesMut;
use deadpool_postgres::{GenericClient, Object};
use std::error::Error;
use std::sync::Arc;
use tokio_postgres::Row;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A pooled connection running the shared operations, in a transaction or not. A transaction
/// left open (its operation was abandoned midway) closes the connection instead of returning
/// it to the pool, which rolls the transaction back.
pub(crate) struct Pg {
    client: Option<Object>,
    open: bool,
}

impl Pg {
    /// Run on `client`.
    pub(super) fn new(client: Object) -> Pg {
        Pg {
            client: Some(client),
            open: false,
        }
    }

    /// The connection.
    pub(super) fn client(&mut self) -> &mut Object {
        self.client.as_mut().expect("a connection until dropped")
    }

    /// Start a transaction with `begin` (`BEGIN`, or `BEGIN ISOLATION LEVEL ...`).
    pub(super) async fn begin(&mut self, begin: &str) -> StoreResult<()> {
        // Open from the moment `begin` may be sent: an operation abandoned while it is in
        // flight (an aborted heartbeat, a client gone) must not hand the pool a connection
        // inside a transaction, where the next caller's writes would never commit.
        self.open = true;
        self.client().batch_execute(begin).await.map_err(pg)?;
        Ok(())
    }

    /// Commit the transaction.
    pub(super) async fn commit(&mut self) -> StoreResult<()> {
        self.client().batch_execute("COMMIT").await.map_err(pg)?;
        self.open = false;
        Ok(())
    }

    /// Roll the transaction back (a connection that cannot is closed on drop).
    pub(super) async fn rollback(&mut self) {
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.open = false;
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let (true, Some(client)) = (self.open, self.client.take()) {
            drop(Object::take(client));
        }
    }
}

type BoxError = Box<dyn Error + Sync + Send>;

/// `v` as `ty` if `T` can be sent as `ty`.
fn as_type<T: ToSql>(v: &T, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    if T::accepts(ty) {
        v.to_sql(ty, out)
    } else {
        Err(format!("a {} cannot be sent as {ty}", std::any::type_name::<T>()).into())
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => as_type(&i16::try_from(*i)?, ty, out),
                Type::INT4 => as_type(&i32::try_from(*i)?, ty, out),
                _ => as_type(i, ty, out),
            },
            Value::Bool(b) => as_type(b, ty, out),
            Value::Text(s) => as_type(s, ty, out),
            Value::Bytes(b) => as_type(b, ty, out),
            Value::TextList(l) => as_type(l, ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn value(row: &Row, i: usize) -> StoreResult<Value> {
    let ty = row.columns()[i].type_();
    let v = match *ty {
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(i64::from)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(i64::from)),
        Type::INT8 => row.try_get::<_, Option<i64>>(i),
        Type::BOOL => {
            return Ok(row
                .try_get::<_, Option<bool>>(i)
                .map_err(pg)?
                .map_or(Value::Null, Value::Bool));
        }
        Type::BYTEA => {
            return Ok(row
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(pg)?
                .map_or(Value::Null, Value::Bytes));
        }
        Type::TEXT_ARRAY => {
            return Ok(row
                .try_get::<_, Option<Vec<String>>>(i)
                .map_err(pg)?
                .map_or(Value::Null, Value::TextList));
        }
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            return Ok(row
                .try_get::<_, Option<String>>(i)
                .map_err(pg)?
                .map_or(Value::Null, Value::Text));
        }
        ref other => {
            return Err(StoreError::Backend(format!(
                "column `{}` has type {other}, which the store does not read",
                row.columns()[i].name()
            )));
        }
    };
    Ok(v.map_err(pg)?.map_or(Value::Null, Value::Int))
}

/// Rows as [`Record`]s (the column names shared by every row).
pub(super) fn records(rows: &[Row]) -> StoreResult<Vec<Record>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let names: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|row| {
            let values = (0..names.len())
                .map(|i| value(row, i))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Record::new(names.clone(), values))
        })
        .collect()
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Sql for Pg {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn exec(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<u64> {
        let c = self.client();
        let stmt = c.prepare_cached(sql).await.map_err(pg)?;
        c.execute(&stmt, &refs(params)).await.map_err(pg)
    }

    async fn rows(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Vec<Record>> {
        let c = self.client();
        let stmt = c.prepare_cached(sql).await.map_err(pg)?;
        let rows = c.query(&stmt, &refs(params)).await.map_err(pg)?;
        records(&rows)
    }

    async fn notify(&mut self, channel: &'static str, payload: &str) -> StoreResult<()> {
        self.exec(
            "SELECT pg_notify($1, $2)",
            &[Value::from(channel), Value::from(payload)],
        )
        .await?;
        Ok(())
    }
}
