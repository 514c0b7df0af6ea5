//! wire: the bodies of the HTTP API, as types. The server builds its answers from them and the
//! CLI reads them back, so both ends agree by construction; `runtime/openapi.json` is checked
//! against them field by field (`api::openapi`'s tests).
//!
//! The job and attempt states ([`JobStatus`], [`AttemptState`]), a job's failure
//! ([`JobFailure`]), its limits ([`Limits`]), the compat report ([`CompatReport`]) and the
//! catalog's [`Module`]s are the lifecycle's, the engine's and compat's own types, serialized
//! as they are.

mod error;
mod jobs;
mod nodes;
mod schedules;
mod tasks;
mod tokens;

pub use crate::compat::{CompatReport, Module, Verdict};
pub use crate::engine::Limits;
pub use crate::lifecycle::states::{AttemptState, JobFailure, JobStatus};
pub use crate::tokens::Scope;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use jobs::{
    Activity, ActivityBucket, ActivityQuery, Attempt, CheckAnswer, ComponentAnswer, Event,
    EventList, GetQuery, Job, JobList, JobRecord, JobSpec, JobSummary, JobView, LimitQuery,
    ListQuery, ModuleList, PageQuery, Progress, SubmitAnswer, SubmitQuery,
};
pub use nodes::{
    DrainRequested, Inflight, InflightAttempt, NodeInfo, NodeList, NodeState, NodeVerdict,
    Placement,
};
pub use schedules::{
    JobSchedule, Schedule, ScheduleAnswer, ScheduleDeleted, ScheduleList, ScheduleRecord,
    ScheduleSpec, ScheduledJob,
};
pub use tasks::{
    AuditEntry, DeleteQuery, DeployAnswer, DeployQuery, JobCounts, NodeResolution, RollbackAnswer,
    RollbackSpec, Task, TaskList, TaskSummary, TaskVersion, ThisNode, UnregisterAnswer,
};
pub use tokens::{TokenCreated, TokenInfo, TokenList, TokenRevoked, TokenSpec, WhoAmI};
