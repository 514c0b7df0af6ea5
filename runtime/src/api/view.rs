//! How jobs look over HTTP.

use crate::store::{Job, JobRecord};
use serde_json::{Value, json};

/// Output bytes as JSON when they are JSON, else as text.
fn output(bytes: &Option<Vec<u8>>) -> (Value, Value) {
    match bytes {
        None => (Value::Null, Value::Null),
        Some(b) => match serde_json::from_slice::<Value>(b) {
            Ok(v) => (v, Value::Null),
            Err(_) => (
                Value::Null,
                Value::String(String::from_utf8_lossy(b).into_owned()),
            ),
        },
    }
}

/// A job, without its attempts.
pub fn job(j: &Job) -> Value {
    let (out, out_text) = output(&j.output);
    json!({
        "id": j.id,
        "status": j.status,
        "component": j.component,
        "task": j.task,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "created_ms": j.created_ms,
        "updated_ms": j.updated_ms,
        "finished_ms": j.finished_ms,
        "run_after_ms": j.run_after_ms,
        "output": out,
        "output_text": out_text,
        "error": j.error,
        "progress": j.progress.as_ref().map(|(p, m)| json!({"percent": p, "message": m})),
        "cancel_requested": j.cancel_requested,
        "limits": j.limits,
        "optional_imports": j.optional_imports,
    })
}

/// A job with its attempts.
pub fn record(r: &JobRecord) -> Value {
    let mut v = job(&r.job);
    v["attempt_list"] = serde_json::to_value(&r.attempt_list).unwrap_or_default();
    v["agent"] = r
        .attempt_list
        .last()
        .map(|a| Value::String(a.agent.clone()))
        .unwrap_or(Value::Null);
    v
}
