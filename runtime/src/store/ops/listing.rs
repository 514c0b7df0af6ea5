//! Job summaries by task and by node, for `GET /v1/jobs?task=&node=` (the console's job
//! filters): one statement whose filters are each off when their parameter is `NULL` (cast,
//! so PostgreSQL knows each parameter's type), newest
//! first from the `seq` cursor, so it reads jobs in queue order until it has a page. A job is
//! on a node when any of its attempts ran under one of that node's agent identities
//! (`node/n`), found through the attempts' `(job_id, number)` index.

use super::jobs::{summary, summary_columns};
use crate::store::sql::{Sql, params};
use crate::store::{JobStatus, JobSummary, StoreResult};

/// Which jobs [`list`] shows; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs with this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// ... and of this version of it.
    pub version: Option<u32>,
    /// Only jobs with an attempt on this node.
    pub node: Option<String>,
}

macro_rules! filtered {
    ($error_code:literal) => {
        concat!(
            summary_columns!($error_code),
            " WHERE (CAST($2 AS TEXT) IS NULL OR status = $2) AND (CAST($3 AS TEXT) IS NULL OR task_name = $3) AND (CAST($4 AS INTEGER) IS NULL OR task_version = $4) AND (CAST($5 AS BIGINT) IS NULL OR seq < $5) AND (CAST($6 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id AND substr(a.agent, 1, length($6) + 1) = $6 || '/')) ORDER BY seq DESC LIMIT $1"
        )
    };
}

/// Job summaries matching `filter`, newest first, before the `seq` cursor `before`, at most
/// `limit` (read as [`super::jobs::list`] reads them: sizes, never the bytes).
pub(crate) async fn list(
    s: &mut impl Sql,
    filter: &JobFilter,
    before: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<JobSummary>> {
    let sql = match s.dialect() {
        crate::store::sql::Dialect::Sqlite => filtered!("json_extract(error, '$.code')"),
        crate::store::sql::Dialect::Postgres => filtered!("(error::jsonb ->> 'code')"),
    };
    let rows = s
        .rows(
            sql,
            params![
                limit,
                filter.status.map(JobStatus::as_str),
                filter.task.as_deref(),
                filter.version,
                before,
                filter.node.as_deref(),
            ],
        )
        .await?;
    rows.iter().map(summary).collect()
}
