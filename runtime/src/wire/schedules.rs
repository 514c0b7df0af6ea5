//! `/v1/schedules`: cron schedules that submit jobs to a deployed task.

use super::JobStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `PUT /v1/schedules/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The deployed task each tick submits a job to (its `current` version at that tick).
    pub task: String,
    /// A cron pattern: five fields (minute hour day-of-month month day-of-week), or six with
    /// seconds first.
    pub cron: String,
    /// The jobs' input, any JSON value (default `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The IANA time zone the pattern is read in (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// The task each tick submits a job to.
    pub task: String,
    /// The cron pattern.
    pub cron: String,
    /// The IANA time zone the pattern is read in.
    pub timezone: String,
    /// The jobs' input.
    pub input: Value,
    /// Created at (ms since the epoch).
    pub created_ms: i64,
    /// Last put.
    pub updated_ms: i64,
    /// Its next tick.
    pub next_tick_ms: i64,
    /// The tick that fired last.
    pub last_tick_ms: Option<i64>,
    /// The job that tick made.
    pub last_job: Option<String>,
    /// Ticks fired since it was created.
    pub fired: u64,
    /// Missed ticks skipped since it was created (ticks more than a minute late).
    pub skipped: u64,
}

/// A job a schedule made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledJob {
    /// The job's id.
    pub id: String,
    /// The tick that made it.
    pub tick_ms: i64,
    /// Where it is.
    pub status: JobStatus,
    /// The task version it is pinned to, `name@version`.
    pub task: Option<String>,
}

/// `GET /v1/schedules/{name}`: the schedule and the newest jobs it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The newest jobs it made, newest tick first.
    pub jobs: Vec<ScheduledJob>,
}

/// The answer to `PUT /v1/schedules/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleAnswer {
    /// The schedule as stored.
    pub schedule: Schedule,
    /// False when it replaced a schedule of that name.
    pub created: bool,
}

/// `GET /v1/schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleList {
    /// Schedules, by name.
    pub schedules: Vec<Schedule>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The answer to `DELETE /v1/schedules/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleDeleted {
    /// The schedule.
    pub name: String,
    /// Always true.
    pub deleted: bool,
}

/// The schedule and tick that made a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSchedule {
    /// The schedule's name.
    pub name: String,
    /// The tick (ms since the epoch).
    pub tick_ms: i64,
}
