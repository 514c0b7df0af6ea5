//! The checked-in OpenAPI document against the [`wire`](crate::wire) types, field by field:
//! a representative value of each body type is serialized and walked against its schema. A
//! field sent but not documented, documented but never sent, required but missing, or of
//! another JSON type fails; so does a documented body that is not one of the checked schemas.

use super::system::OPENAPI;
use crate::compat::{Ahead, Catalog, CompatReport, ImportVerdict, Retyped, Rule, Status, Verdict};
use crate::engine::Limits;
use crate::wire::*;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// What the walk found: the schemas it entered, every documented property it met and those
/// a sample sent.
#[derive(Default, Clone)]
struct Walk {
    visited: BTreeSet<String>,
    documented: BTreeSet<String>,
    sent: BTreeSet<String>,
}

/// A schema's properties merged over `allOf`: name → (schema, where it is documented).
type Properties<'a> = Vec<(String, &'a Value, String)>;

impl Walk {
    /// Check `value` (at `path` in a sample) against `schema` (at `at` in the document).
    fn check(
        &mut self,
        doc: &Value,
        value: &Value,
        schema: &Value,
        at: &str,
        path: &str,
    ) -> Result<(), String> {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            self.visited.insert(name.to_string());
            let target = &doc["components"]["schemas"][name];
            return self.check(doc, value, target, name, path);
        }
        if let Some(branches) = schema
            .get("oneOf")
            .or(schema.get("anyOf"))
            .and_then(Value::as_array)
        {
            return self.one_of(doc, value, branches, at, path);
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            return Err(format!(
                "{path}: {value} is not the documented constant {c} ({at})"
            ));
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array)
            && !e.contains(value)
        {
            return Err(format!(
                "{path}: {value} is not one of the documented values {e:?} ({at})"
            ));
        }
        check_type(value, schema, at, path)?;
        self.check_inside(doc, value, schema, at, path)
    }

    /// The first branch `value` matches, keeping what that branch's walk found.
    fn one_of(
        &mut self,
        doc: &Value,
        value: &Value,
        branches: &[Value],
        at: &str,
        path: &str,
    ) -> Result<(), String> {
        let mut errors = vec![];
        for (i, branch) in branches.iter().enumerate() {
            let mut attempt = self.clone();
            match attempt.check(doc, value, branch, &format!("{at}/oneOf/{i}"), path) {
                Ok(()) => {
                    *self = attempt;
                    return Ok(());
                }
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "{path}: matches no branch of {at}: {}",
            errors.join("; ")
        ))
    }

    /// An array's items, an object's fields, or a scalar's `allOf` parts.
    fn check_inside(
        &mut self,
        doc: &Value,
        value: &Value,
        schema: &Value,
        at: &str,
        path: &str,
    ) -> Result<(), String> {
        match value {
            Value::Array(items) => match schema.get("items") {
                Some(s) => items.iter().enumerate().try_for_each(|(i, v)| {
                    self.check(doc, v, s, &format!("{at}/items"), &format!("{path}[{i}]"))
                }),
                None if schema.get("allOf").is_none() => {
                    Err(format!("{path}: an array without documented items ({at})"))
                }
                None => Ok(()),
            },
            Value::Object(fields)
                if schema.get("properties").is_some() || schema.get("allOf").is_some() =>
            {
                let (props, required) = self.merged(doc, schema, at);
                self.check_object(doc, fields, &props, &required, schema, path)
            }
            Value::Object(fields) => match schema.get("additionalProperties") {
                Some(s) if s.is_object() => fields.iter().try_for_each(|(k, v)| {
                    self.check(
                        doc,
                        v,
                        s,
                        &format!("{at}/additionalProperties"),
                        &format!("{path}.{k}"),
                    )
                }),
                // `{}`: any JSON value (a job's input and output).
                _ if schema.get("type").is_none() => Ok(()),
                _ => Err(format!(
                    "{path}: documented as a free-form object, not field by field ({at})"
                )),
            },
            // A scalar documented through `allOf` (a `$ref` with a description of its own).
            _ => schema
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .try_for_each(|part| self.check(doc, value, part, &format!("{at}/allOf"), path)),
        }
    }

    /// The properties and required names of an object schema, over `allOf`.
    fn merged<'a>(
        &mut self,
        doc: &'a Value,
        schema: &'a Value,
        at: &str,
    ) -> (Properties<'a>, Vec<String>) {
        let mut props = Properties::new();
        let mut required = vec![];
        let mut parts = vec![(schema, at.to_string())];
        while let Some((part, at)) = parts.pop() {
            if let Some(r) = part.get("$ref").and_then(Value::as_str) {
                let name = r.trim_start_matches("#/components/schemas/");
                self.visited.insert(name.to_string());
                parts.push((&doc["components"]["schemas"][name], name.to_string()));
                continue;
            }
            for (i, p) in part
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                parts.push((p, format!("{at}/allOf/{i}")));
            }
            for (name, s) in part
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                props.push((name.clone(), s, format!("{at}.{name}")));
            }
            required.extend(
                part.get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
        }
        (props, required)
    }

    fn check_object(
        &mut self,
        doc: &Value,
        fields: &Map<String, Value>,
        props: &Properties,
        required: &[String],
        schema: &Value,
        path: &str,
    ) -> Result<(), String> {
        for (_, _, at) in props {
            self.documented.insert(at.clone());
        }
        for (key, v) in fields {
            let Some((_, s, at)) = props.iter().find(|(n, _, _)| n == key) else {
                if let Some(extra) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                    self.check(
                        doc,
                        v,
                        extra,
                        "additionalProperties",
                        &format!("{path}.{key}"),
                    )?;
                    continue;
                }
                return Err(format!("{path}.{key}: sent, but not documented"));
            };
            self.sent.insert(at.clone());
            self.check(doc, v, s, at, &format!("{path}.{key}"))?;
        }
        match required.iter().find(|r| !fields.contains_key(*r)) {
            Some(r) => Err(format!("{path}.{r}: documented as required, but not sent")),
            None => Ok(()),
        }
    }
}

/// Whether `value`'s JSON type is one the schema allows.
fn check_type(value: &Value, schema: &Value, at: &str, path: &str) -> Result<(), String> {
    let allowed: Vec<&str> = match schema.get("type") {
        None => return Ok(()),
        Some(Value::String(t)) => vec![t.as_str()],
        Some(types) => types
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number")) {
        Ok(())
    } else {
        Err(format!(
            "{path}: sent as {actual}, documented as {allowed:?} ({at})"
        ))
    }
}

fn report() -> CompatReport {
    CompatReport {
        verdict: Verdict::Degraded,
        catalog: vec!["driftless:kv@1.1.0".into()],
        imports: vec![ImportVerdict {
            import: "driftless:kv/store@1.2.0".into(),
            package: "driftless:kv".into(),
            version: Some("1.2.0".into()),
            optional: true,
            functions: vec!["get".into()],
            provided: vec!["1.1.0".into()],
            resolved: Some("1.1.0".into()),
            status: Status::Degraded,
            rule: Rule::MissingFunctions,
            missing_functions: vec!["get".into()],
            retyped: vec![Retyped {
                function: "get".into(),
                job: "func(key: string) -> option<string>".into(),
                host: "func(key: string) -> string".into(),
            }],
            ahead: Some(Ahead::Job),
            message: "the job is ahead".into(),
        }],
        summary: "degraded".into(),
    }
}

fn job() -> Job {
    Job {
        id: "job_0190a5e8c1d27f4b8a3c9e2d1f0b6a57".into(),
        status: JobStatus::Failed,
        component: "ab".repeat(32),
        task: Some("resize@3".into()),
        attempts: 1,
        max_attempts: 3,
        created_ms: 1,
        updated_ms: 2,
        finished_ms: Some(3),
        run_after_ms: 1,
        output: Some(json!({"any": "json"})),
        output_text: Some("text".into()),
        error: Some(JobFailure {
            code: "timeout".into(),
            message: "it ran too long".into(),
            retryable: true,
        }),
        progress: Some(Progress {
            percent: 40,
            message: "halfway".into(),
        }),
        cancel_requested: false,
        limits: Limits::default(),
        optional_imports: vec!["driftless:kv/store@1.1.0".into()],
        class: Some("cd".repeat(32)),
        priority: 5,
        concurrency_key: Some("customer-42".into()),
        concurrency_limit: Some(2),
        schedule: Some(JobSchedule {
            name: "nightly".into(),
            tick_ms: 1_000,
        }),
    }
}

/// A job with every optional field absent.
fn sparse_job() -> Job {
    Job {
        task: None,
        finished_ms: None,
        output: None,
        output_text: None,
        error: None,
        progress: None,
        class: None,
        concurrency_key: None,
        concurrency_limit: None,
        schedule: None,
        status: JobStatus::Queued,
        ..job()
    }
}

fn summary() -> JobSummary {
    let j = job();
    JobSummary {
        id: j.id,
        status: JobStatus::Failed,
        component: j.component,
        task: j.task,
        attempts: 1,
        max_attempts: 3,
        created_ms: 1,
        updated_ms: 2,
        finished_ms: Some(3),
        input_bytes: 12,
        output_bytes: Some(1 << 20),
        error: Some("timeout".into()),
    }
}

/// A summary with every optional field absent.
fn sparse_summary() -> JobSummary {
    JobSummary {
        task: None,
        finished_ms: None,
        output_bytes: None,
        error: None,
        status: JobStatus::Queued,
        ..summary()
    }
}

fn record() -> JobRecord {
    let outcomes = [
        json!({"kind": "succeeded", "output_bytes": 12}),
        json!({"kind": "failed", "code": "bad", "message": "no", "retryable": false}),
        json!({"kind": "trapped", "reason": "timeout", "message": "too long"}),
        json!({"kind": "lost", "message": "its lease expired"}),
        json!({"kind": "rejected-at-claim", "message": "cannot prepare"}),
    ];
    let attempt = |(i, outcome): (usize, Value)| Attempt {
        number: i as u32 + 1,
        agent: "node-1/0".into(),
        state: AttemptState::Failed,
        started_ms: 1,
        finished_ms: Some(2),
        lease_expires_ms: 3,
        outcome: Some(outcome),
    };
    let verdict = NodeVerdict {
        node: "node-1".into(),
        process: "host:1:2".into(),
        address: "127.0.0.1:7878".into(),
        state: NodeState::Draining,
        verdict: Verdict::Accepted,
        summary: "every import is satisfied".into(),
        report: report(),
    };
    JobRecord {
        job: job(),
        attempt_list: outcomes.into_iter().enumerate().map(attempt).collect(),
        agent: Some("node-1/0".into()),
        placement: Some(Placement {
            runnable_on: vec!["node-1".into()],
            waiting: Some("no live node can run it".into()),
            nodes: vec![verdict],
        }),
        input: Some(json!({"width": 10})),
    }
}

fn task() -> Task {
    Task {
        name: "resize".into(),
        current: 2,
        generation: 7,
        created_ms: 1,
        updated_ms: 2,
        versions: vec![TaskVersion {
            version: 1,
            component: "ab".repeat(32),
            created_ms: 1,
            deployed_by: "ana@host".into(),
            deleted_ms: Some(5),
            max_concurrency: Some(4),
            imports: vec!["driftless:kv/store@1.1.0: satisfied".into()],
            jobs: JobCounts::default(),
        }],
        nodes: vec![NodeResolution {
            node: "node-1".into(),
            version: 2,
            generation: 7,
            at_ms: 3,
        }],
        audit: vec![AuditEntry {
            at_ms: 1,
            action: "rollback".into(),
            actor: "ana@host".into(),
            request_id: "req".into(),
            old_version: Some(2),
            new_version: Some(1),
        }],
        this_node: ThisNode {
            node: "node-1".into(),
            generation: 7,
            resolves_current_to: Some(2),
        },
    }
}

fn nodes() -> NodeList {
    NodeList {
        this_process: "host:1:2".into(),
        node_ttl_ms: 10_000,
        nodes: vec![NodeInfo {
            process: "host:1:2".into(),
            node: "node-1".into(),
            address: "127.0.0.1:7878".into(),
            version: "0.1.0".into(),
            catalog: vec!["driftless:kv@1.1.0".into()],
            agents: 2,
            identities: vec!["node-1/0".into()],
            started_ms: 1,
            heartbeat_ms: 2,
            heartbeat_age_ms: 3,
            draining: false,
            inflight: 1,
            gone_ms: Some(4),
            state: NodeState::Gone,
            this_process: true,
        }],
    }
}

fn inflight() -> Inflight {
    Inflight {
        node: "node-1".into(),
        draining: true,
        count: 1,
        attempts: vec![InflightAttempt {
            job: job().id,
            agent: "node-1/0".into(),
            attempt: 1,
            running_ms: 5,
        }],
        agents: vec!["node-1/0".into()],
        holder: "host:1:2".into(),
    }
}

fn value(v: impl Serialize) -> Value {
    serde_json::to_value(v).expect("a wire type serializes")
}

/// A representative value of every body type, with the schema that documents it.
fn samples() -> Vec<(&'static str, Value)> {
    let error = |report| ErrorBody {
        error: ErrorDetail {
            code: ErrorCode::Rejected,
            message: "the job's imports do not fit this host".into(),
        },
        report,
    };
    vec![
        ("Error", value(error(Some(Box::new(report()))))),
        ("Error", value(error(None))),
        (
            "JobSpec",
            value(JobSpec {
                component: Some("ab".repeat(32)),
                task: Some("resize@2".into()),
                input: Some(json!({"width": 10})),
                timeout_ms: Some(1000),
                memory_mib: Some(64),
                max_attempts: Some(3),
                optional_imports: vec!["driftless:kv/store@1.1.0".into()],
                priority: Some(5),
                delay_ms: None,
                not_before: Some("2026-12-24T18:00:00+01:00".into()),
                concurrency_key: Some("customer-42".into()),
                concurrency_limit: Some(2),
            }),
        ),
        (
            "JobSpec",
            value(JobSpec {
                task: Some("resize".into()),
                delay_ms: Some(60_000),
                ..JobSpec::default()
            }),
        ),
        (
            "SubmitResponse",
            value(SubmitAnswer {
                job: JobView::Job(Box::new(job())),
                created: true,
                report: report(),
            }),
        ),
        (
            "SubmitResponse",
            value(SubmitAnswer {
                job: JobView::Record(Box::new(record())),
                created: false,
                report: report(),
            }),
        ),
    ]
    .into_iter()
    .chain(job_samples())
    .chain(task_samples())
    .chain(schedule_samples())
    .chain([
        ("NodeList", value(nodes())),
        (
            "DrainRequested",
            value(DrainRequested {
                node: "node-b".into(),
                draining: true,
                processes: 1,
                message: "node-b drains at its next heartbeat (every 1000 ms)".into(),
            }),
        ),
        ("Inflight", value(inflight())),
        (
            "Activity",
            value(Activity {
                from_ms: 1,
                step_ms: 15_000,
                buckets: vec![ActivityBucket {
                    at_ms: 15_001,
                    queued: 3,
                    running: 2,
                    succeeded: 10,
                    failed: 1,
                    cancelled: 0,
                }],
            }),
        ),
        (
            "WhoAmI",
            value(WhoAmI {
                token: Some("ci".into()),
                open: false,
                scopes: vec![Scope::Read],
                node: "node-1".into(),
            }),
        ),
        (
            "WhoAmI",
            value(WhoAmI {
                token: None,
                open: true,
                scopes: Scope::ALL.to_vec(),
                node: "node-1".into(),
            }),
        ),
    ])
    .chain(token_samples())
    .collect()
}

/// The bodies of `/v1/admin/tokens`.
fn token_samples() -> Vec<(&'static str, Value)> {
    let info = |last_used_ms| TokenInfo {
        name: "ci".into(),
        scopes: vec![Scope::Read, Scope::Submit],
        created_ms: 1,
        created_by: "admin".into(),
        last_used_ms,
    };
    vec![
        (
            "TokenSpec",
            value(TokenSpec {
                name: "ci".into(),
                scopes: vec![Scope::Deploy, Scope::Admin],
            }),
        ),
        (
            "TokenCreated",
            value(TokenCreated {
                token: info(Some(2)),
                secret: format!("dl_{}", "0".repeat(64)),
            }),
        ),
        (
            "TokenCreated",
            value(TokenCreated {
                token: info(None),
                secret: format!("dl_{}", "0".repeat(64)),
            }),
        ),
        (
            "TokenList",
            value(TokenList {
                tokens: vec![info(Some(2)), info(None)],
            }),
        ),
        (
            "TokenRevoked",
            value(TokenRevoked {
                name: "ci".into(),
                revoked: true,
            }),
        ),
    ]
}

/// The bodies of `/v1/jobs` and `/v1/components`, `/v1/check`, `/v1/modules`.
fn job_samples() -> Vec<(&'static str, Value)> {
    vec![
        ("Job", value(job())),
        ("Job", value(sparse_job())),
        ("JobRecord", value(record())),
        (
            "JobRecord",
            value(JobRecord {
                job: sparse_job(),
                attempt_list: vec![],
                agent: None,
                placement: None,
                input: None,
            }),
        ),
        (
            "JobList",
            value(JobList {
                jobs: vec![summary(), sparse_summary()],
                next: Some(7),
            }),
        ),
        (
            "JobList",
            value(JobList {
                jobs: vec![],
                next: None,
            }),
        ),
        (
            "EventList",
            value(EventList {
                events: vec![Event {
                    attempt: Some(1),
                    at_ms: 1,
                    kind: "claimed".into(),
                    message: "claimed by node-1/0".into(),
                }],
                next: Some("12".into()),
            }),
        ),
        (
            "ComponentResponse",
            value(ComponentAnswer {
                component: "ab".repeat(32),
                created: true,
                report: report(),
            }),
        ),
        (
            "CheckResponse",
            value(CheckAnswer {
                accepted: true,
                report: report(),
                text: report().to_string(),
            }),
        ),
        (
            "ModuleList",
            value(ModuleList {
                node: "node-1".into(),
                modules: Catalog::with_provides::<&str>(&[])
                    .expect("catalog")
                    .modules()
                    .to_vec(),
            }),
        ),
    ]
}

/// The bodies of `/v1/tasks`.
fn task_samples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "TaskList",
            value(TaskList {
                tasks: vec![TaskSummary {
                    name: "resize".into(),
                    current: 2,
                    versions: 2,
                    updated_ms: 1,
                }],
                next: Some("resize".into()),
            }),
        ),
        ("Task", value(task())),
        (
            "DeployResponse",
            value(DeployAnswer {
                task: "resize".into(),
                version: 2,
                previous: Some(1),
                created: true,
                component: "ab".repeat(32),
                report: report(),
            }),
        ),
        ("RollbackSpec", value(RollbackSpec { to: Some(1) })),
        (
            "RollbackResponse",
            value(RollbackAnswer {
                task: "resize".into(),
                version: 1,
                previous: Some(2),
            }),
        ),
        (
            "UnregisterResponse",
            value(UnregisterAnswer {
                task: "resize".into(),
                version: 1,
                deleted: true,
            }),
        ),
    ]
}

/// The bodies of `/v1/schedules`.
fn schedule_samples() -> Vec<(&'static str, Value)> {
    let schedule = |last: Option<i64>| Schedule {
        name: "nightly".into(),
        task: "report".into(),
        cron: "0 30 2 * * *".into(),
        timezone: "Europe/Berlin".into(),
        input: json!({"full": true}),
        created_ms: 1,
        updated_ms: 2,
        next_tick_ms: 3,
        last_tick_ms: last,
        last_job: last.map(|_| job().id),
        fired: 4,
        skipped: 1,
    };
    vec![
        (
            "ScheduleSpec",
            value(ScheduleSpec {
                task: "report".into(),
                cron: "0 30 2 * * *".into(),
                input: Some(json!({"full": true})),
                timezone: Some("Europe/Berlin".into()),
            }),
        ),
        (
            "ScheduleSpec",
            value(ScheduleSpec {
                task: "report".into(),
                cron: "*/5 * * * *".into(),
                ..ScheduleSpec::default()
            }),
        ),
        (
            "ScheduleResponse",
            value(ScheduleAnswer {
                schedule: schedule(None),
                created: true,
            }),
        ),
        (
            "ScheduleRecord",
            value(ScheduleRecord {
                schedule: schedule(Some(2)),
                jobs: vec![
                    ScheduledJob {
                        id: job().id,
                        tick_ms: 2,
                        status: JobStatus::Succeeded,
                        task: Some("report@3".into()),
                    },
                    ScheduledJob {
                        id: job().id,
                        tick_ms: 1,
                        status: JobStatus::Queued,
                        task: None,
                    },
                ],
            }),
        ),
        (
            "ScheduleList",
            value(ScheduleList {
                schedules: vec![schedule(Some(2)), schedule(None)],
                next: Some("nightly".into()),
            }),
        ),
        (
            "ScheduleDeleted",
            value(ScheduleDeleted {
                name: "nightly".into(),
                deleted: true,
            }),
        ),
    ]
}

fn document() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

/// Every wire type's JSON matches its schema, and every documented property is sent.
#[test]
fn wire_types_match_the_document_field_by_field() {
    let doc = document();
    let mut walk = Walk::default();
    let mut errors = vec![];
    for (name, sample) in samples() {
        let schema = json!({"$ref": format!("#/components/schemas/{name}")});
        if let Err(e) = walk.check(&doc, &sample, &schema, name, name) {
            errors.push(e);
        }
    }
    let never_sent: Vec<_> = walk.documented.difference(&walk.sent).collect();
    let unchecked: Vec<_> = doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
        .filter(|k| !walk.visited.contains(*k))
        .collect();
    assert!(
        errors.is_empty() && never_sent.is_empty() && unchecked.is_empty(),
        "runtime/openapi.json disagrees with the wire types:\n{}\ndocumented but never sent: {never_sent:?}\nschemas no wire type is checked against: {unchecked:?}",
        errors.join("\n")
    );
}

/// The document's error codes are exactly [`ErrorCode::ALL`], each with its status.
#[test]
fn error_codes_match_the_document() {
    let doc = document();
    let documented: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ours: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        documented.iter().collect::<BTreeSet<_>>(),
        ours.iter().collect::<BTreeSet<_>>()
    );
    let text = doc["components"]["schemas"]["ErrorCode"]["description"]
        .as_str()
        .expect("description");
    for code in ErrorCode::ALL {
        let line = format!("`{}` ({})", code.as_str(), code.status().as_u16());
        assert!(
            text.contains(&line),
            "the ErrorCode description lacks {line}"
        );
    }
}

/// Every JSON body a route documents is a named schema that the walk checks.
#[test]
fn every_json_body_is_a_checked_schema() {
    let doc = document();
    let checked: BTreeSet<&str> = samples().iter().map(|(n, _)| *n).collect();
    let mut loose = vec![];
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let bodies = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, r)| (status.clone(), &r["content"]["application/json"]["schema"]))
                .chain([(
                    "request".to_string(),
                    &op["requestBody"]["content"]["application/json"]["schema"],
                )]);
            for (status, schema) in bodies.filter(|(_, s)| !s.is_null()) {
                let name = schema["$ref"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("#/components/schemas/");
                // The document itself and a job's raw output are free-form JSON.
                let free_form = ["/openapi.json", "/v1/jobs/{id}/output"];
                if !checked.contains(name) && !free_form.contains(&path.as_str()) {
                    loose.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(
        loose.is_empty(),
        "bodies documented inline or with an unchecked schema: {loose:?}"
    );
}

/// The query parameters each route takes are the fields of its query type.
#[test]
fn query_types_match_the_documented_parameters() {
    let doc = document();
    let page = value(PageQuery {
        limit: Some(1),
        after: Some("x".into()),
    });
    let limit = value(LimitQuery { limit: Some(1) });
    let routes = [
        (
            "/v1/jobs",
            "post",
            value(SubmitQuery {
                input: Some("1".into()),
                timeout_ms: Some(1),
                memory_mib: Some(1),
                max_attempts: Some(1),
                optional: Some("x".into()),
                wait: Some(1),
                priority: Some(1),
                delay_ms: Some(1),
                not_before: Some("2026-12-24T18:00:00Z".into()),
                concurrency_key: Some("k".into()),
                concurrency_limit: Some(1),
            }),
        ),
        (
            "/v1/jobs",
            "get",
            value(ListQuery {
                status: Some(JobStatus::Queued),
                limit: Some(1),
                before: Some(1),
                task: Some("resize".into()),
                node: Some("node-a".into()),
            }),
        ),
        ("/v1/jobs/{id}", "get", value(GetQuery { wait: Some(1) })),
        ("/v1/jobs/{id}/events", "get", page.clone()),
        ("/v1/jobs/{id}/logs", "get", limit.clone()),
        ("/v1/tasks", "get", page.clone()),
        ("/v1/tasks/{name}", "get", limit.clone()),
        ("/v1/schedules", "get", page),
        ("/v1/schedules/{name}", "get", limit.clone()),
        ("/v1/nodes", "get", limit),
        (
            "/v1/activity",
            "get",
            value(ActivityQuery {
                window_s: Some(1),
                step_s: Some(1),
            }),
        ),
        (
            "/v1/tasks/{name}/versions/{version}",
            "delete",
            value(DeleteQuery { wait: Some(1) }),
        ),
        (
            "/v1/tasks/{name}",
            "put",
            value(DeployQuery {
                max_concurrency: Some(1),
            }),
        ),
    ];
    for (path, method, sample) in routes {
        let op = &doc["paths"][path];
        let documented: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .chain(op[method]["parameters"].as_array())
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let ours: BTreeSet<&str> = sample
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            documented, ours,
            "{method} {path}: documented query parameters vs the query type"
        );
    }
}

/// The walk itself: an undocumented field, a missing required one and a wrong type fail.
#[test]
fn the_walk_catches_drift() {
    let doc = document();
    let schema = json!({"$ref": "#/components/schemas/RollbackResponse"});
    let walk = |v: Value| Walk::default().check(&doc, &v, &schema, "t", "t");
    assert!(walk(json!({"task": "t", "version": 1, "previous": 2})).is_ok());
    assert!(walk(json!({"task": "t", "version": 1, "previous": 2, "extra": 1})).is_err());
    assert!(walk(json!({"task": "t", "previous": 2})).is_err());
    assert!(walk(json!({"task": 1, "version": 1, "previous": 2})).is_err());
}
