//! How the store's records look over HTTP: each one as its [`wire`](crate::wire) type.

use super::error::ApiError;
use crate::store;
use crate::wire::{self, CompatReport, ErrorCode};
use serde_json::Value;

/// Output bytes as JSON when they are JSON, else as text.
fn output(bytes: &Option<Vec<u8>>) -> (Option<Value>, Option<String>) {
    match bytes {
        None => (None, None),
        Some(b) => match serde_json::from_slice::<Value>(b) {
            Ok(v) => (Some(v), None),
            Err(_) => (None, Some(String::from_utf8_lossy(b).into_owned())),
        },
    }
}

impl From<&store::Job> for wire::Job {
    fn from(j: &store::Job) -> Self {
        let (output, output_text) = output(&j.output);
        wire::Job {
            id: j.id.clone(),
            status: j.status,
            component: j.component.clone(),
            task: j.task.as_ref().map(ToString::to_string),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_ms: j.created_ms,
            updated_ms: j.updated_ms,
            finished_ms: j.finished_ms,
            run_after_ms: j.run_after_ms,
            output,
            output_text,
            error: j.error.clone(),
            progress: j
                .progress
                .as_ref()
                .map(|(percent, message)| wire::Progress {
                    percent: *percent,
                    message: message.clone(),
                }),
            cancel_requested: j.cancel_requested,
            limits: j.limits,
            optional_imports: j.optional_imports.clone(),
            class: j.class.clone(),
            priority: j.priority,
            concurrency_key: j.concurrency.as_ref().map(|c| c.key.clone()),
            concurrency_limit: j.concurrency.as_ref().map(|c| c.limit),
            schedule: j.schedule.as_ref().map(|s| wire::JobSchedule {
                name: s.name.clone(),
                tick_ms: s.tick_ms,
            }),
        }
    }
}

impl From<&store::JobSummary> for wire::JobSummary {
    fn from(j: &store::JobSummary) -> Self {
        wire::JobSummary {
            id: j.id.clone(),
            status: j.status,
            component: j.component.clone(),
            task: j.task.as_ref().map(ToString::to_string),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_ms: j.created_ms,
            updated_ms: j.updated_ms,
            finished_ms: j.finished_ms,
            input_bytes: j.input_bytes,
            output_bytes: j.output_bytes,
            error: j.error_code.clone(),
        }
    }
}

impl From<&store::Attempt> for wire::Attempt {
    fn from(a: &store::Attempt) -> Self {
        wire::Attempt {
            number: a.number,
            agent: a.agent.clone(),
            state: a.state,
            started_ms: a.started_ms,
            finished_ms: a.finished_ms,
            lease_expires_ms: a.lease_expires_ms,
            outcome: a.outcome.clone(),
        }
    }
}

impl From<&store::JobRecord> for wire::JobRecord {
    fn from(r: &store::JobRecord) -> Self {
        wire::JobRecord {
            job: wire::Job::from(&r.job),
            attempt_list: r.attempt_list.iter().map(wire::Attempt::from).collect(),
            agent: r.attempt_list.last().map(|a| a.agent.clone()),
            placement: None,
            input: serde_json::from_slice(&r.job.input).ok(),
        }
    }
}

impl From<store::Event> for wire::Event {
    fn from(e: store::Event) -> Self {
        wire::Event {
            attempt: e.attempt,
            at_ms: e.at_ms,
            kind: e.kind,
            message: e.message,
        }
    }
}

/// A compat report stored as JSON text (with a job or a task version), read back.
pub fn report(json: &str) -> Result<CompatReport, ApiError> {
    serde_json::from_str(json).map_err(|e| {
        tracing::error!(error = %e, "a stored compat report does not read back");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the stored compat report could not be read; nothing was changed. Check the daemon's log",
        )
    })
}

impl From<store::TaskSummary> for wire::TaskSummary {
    fn from(t: store::TaskSummary) -> Self {
        wire::TaskSummary {
            name: t.name,
            current: t.current,
            versions: t.versions,
            updated_ms: t.updated_ms,
        }
    }
}

impl From<store::TaskVersion> for wire::TaskVersion {
    fn from(v: store::TaskVersion) -> Self {
        let j = v.jobs;
        wire::TaskVersion {
            version: v.version,
            component: v.component,
            created_ms: v.created_ms,
            deployed_by: v.deployed_by,
            deleted_ms: v.deleted_ms,
            max_concurrency: v.max_concurrency,
            imports: v.imports,
            jobs: wire::JobCounts {
                queued: j.queued,
                running: j.running,
                succeeded: j.succeeded,
                failed: j.failed,
                cancelled: j.cancelled,
            },
        }
    }
}

impl From<store::AuditEntry> for wire::AuditEntry {
    fn from(a: store::AuditEntry) -> Self {
        wire::AuditEntry {
            at_ms: a.at_ms,
            action: a.action,
            actor: a.actor,
            request_id: a.request_id,
            old_version: a.old_version,
            new_version: a.new_version,
        }
    }
}

impl From<store::NodeResolution> for wire::NodeResolution {
    fn from(n: store::NodeResolution) -> Self {
        wire::NodeResolution {
            node: n.node,
            version: n.version,
            generation: n.generation,
            at_ms: n.at_ms,
        }
    }
}

/// A task, with what the answering node resolves its `current` to.
pub fn task(t: store::Task, this_node: wire::ThisNode) -> wire::Task {
    wire::Task {
        name: t.name,
        current: t.current,
        generation: t.generation,
        created_ms: t.created_ms,
        updated_ms: t.updated_ms,
        versions: t.versions.into_iter().map(Into::into).collect(),
        nodes: t.nodes.into_iter().map(Into::into).collect(),
        audit: t.audit.into_iter().map(Into::into).collect(),
        this_node,
    }
}

/// A stored schedule as the API shows it.
pub fn schedule(s: store::Schedule) -> wire::Schedule {
    wire::Schedule {
        input: serde_json::from_slice(&s.input).unwrap_or(Value::Null),
        name: s.name,
        task: s.task,
        cron: s.cron,
        timezone: s.timezone,
        created_ms: s.created_ms,
        updated_ms: s.updated_ms,
        next_tick_ms: s.next_tick_ms,
        last_tick_ms: s.last_tick_ms,
        last_job: s.last_job,
        fired: s.fired,
        skipped: s.skipped,
    }
}

impl From<store::ScheduledJob> for wire::ScheduledJob {
    fn from(j: store::ScheduledJob) -> Self {
        wire::ScheduledJob {
            id: j.id,
            tick_ms: j.tick_ms,
            status: j.status,
            task: j.task.as_ref().map(ToString::to_string),
        }
    }
}
