//! admission: the first stage of the flow. A component is read and inspected once, judged
//! against this node's catalog and, when this node rejects it, against the cluster (the
//! catalogs the other registered nodes registered), then placed: stored, with the report of a
//! node that can run it and the job's compatibility class. Job submission and task deploy both
//! come through here, so both refuse, with the same report and error, a component no node
//! of the cluster can run.

use crate::compat::{CompatReport, InspectError, Requirements};
use crate::engine::{Judged, Limits, PrepareError, Prepared, Ready, WhenBusy, hash_hex};
use crate::node::Node;
use crate::node::resolver::TaskRef;
use crate::store::{NewJob, ResolvedTask, StoreError, TaskPin, Turn};
use bytes::Bytes;
use std::sync::Arc;

/// Attempts a job is allowed when its submission names no number.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Bodies up to this size are hashed where they are; bigger ones on a blocking thread.
const HASH_INLINE_BYTES: usize = 1 << 20;

/// An uploaded component: its bytes and their blake3 hash, computed once.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The component's bytes.
    pub bytes: Bytes,
    /// Their [`hash_hex`].
    pub hash: String,
}

impl Upload {
    /// Hash `bytes`: a big body on a blocking thread, never on the async runtime's.
    pub async fn new(bytes: Bytes) -> Upload {
        if bytes.len() <= HASH_INLINE_BYTES {
            let hash = hash_hex(&bytes);
            return Upload { bytes, hash };
        }
        let shared = bytes.clone();
        let hash = tokio::task::spawn_blocking(move || hash_hex(&shared))
            .await
            .expect("hashing does not panic");
        Upload { bytes, hash }
    }
}

/// Where the component to admit comes from.
#[derive(Debug, Clone, Copy)]
pub enum Component<'b> {
    /// Uploaded with the request: stored once admitted.
    Upload(&'b Upload),
    /// Stored earlier, named by hash.
    Stored(&'b str),
}

/// A component admission accepted, stored.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The component's hash.
    pub hash: String,
    /// The report against the catalog of a node that can run it (this one if it can), as
    /// JSON serialized once.
    pub report_json: Arc<str>,
    /// What a job of it needs from a host.
    pub requirements: Requirements,
    /// The node whose report it is, when this node cannot run it.
    pub runs_on: Option<String>,
}

impl Admitted {
    fn here(p: &Prepared) -> Admitted {
        Admitted {
            hash: p.hash.clone(),
            report_json: p.report_json.clone(),
            requirements: p.requirements.clone(),
            runs_on: None,
        }
    }

    /// A job `id` of this component with `input`, accepted at `now_ms`, with the defaults of
    /// a submission that names nothing else (limits, [`DEFAULT_MAX_ATTEMPTS`], its turn at
    /// once): its report and requirements, and for a job of a deployed task the version it
    /// pins, the task's kv scope (`task:NAME`; any other job's scope is its own id) and the
    /// version's concurrency limit, if it has one (the key `task:NAME`). Every job is made
    /// here: a submission over the API (which sets its options on top) and a schedule's
    /// firing alike.
    pub fn job(
        &self,
        task: Option<&ResolvedTask>,
        id: String,
        input: Vec<u8>,
        now_ms: i64,
    ) -> NewJob {
        NewJob {
            kv_scope: task.map_or_else(|| id.clone(), |t| format!("task:{}", t.task)),
            id,
            component: self.hash.clone(),
            input,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            limits: Limits::default(),
            optional_imports: Vec::new(),
            report: self.report_json.clone(),
            requirements: Some(self.requirements.clone()),
            task: task.map(|t| TaskPin::new(t.task.clone(), t.version)),
            idempotency_key: None,
            request_hash: None,
            now_ms,
            turn: Turn {
                concurrency: task.and_then(ResolvedTask::concurrency),
                ..Turn::default()
            },
            schedule: None,
        }
    }
}

/// Why a component was not admitted. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Not a driftless component (not wasm, a core module, truncated, no `run`).
    #[error(transparent)]
    Invalid(#[from] InspectError),
    /// Neither this node's catalog nor any registered node's satisfies its imports; the
    /// report is this node's.
    #[error("{}", refusal(.0))]
    Rejected(Box<CompatReport>),
    /// Accepted by the rules, but it does not compile or link here.
    #[error(transparent)]
    Prepare(PrepareError),
    /// No component with that hash is stored.
    #[error("no component with hash {0} is stored; upload it with PUT /v1/components")]
    UnknownComponent(String),
    /// The task (or the version) a submission names does not exist.
    #[error(
        "{what} does not exist; deploy it with PUT /v1/tasks/{task} (GET /v1/tasks lists tasks)"
    )]
    UnknownTask {
        /// What was not found (`task demo`, `version 3 of task demo`).
        what: String,
        /// The task's name.
        task: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a component no node of the cluster can run was refused, from this node's report.
pub fn refusal(report: &CompatReport) -> String {
    format!(
        "the job's imports do not fit this host, so nothing was stored: {}. No other node of the cluster can run it either (GET /v1/nodes shows each node's catalog)",
        report.summary
    )
}

impl AdmissionError {
    /// The compat report, where one applies.
    pub fn report(&self) -> Option<&CompatReport> {
        match self {
            AdmissionError::Rejected(r) => Some(r),
            AdmissionError::Prepare(e) => e.report(),
            _ => None,
        }
    }
}

impl From<PrepareError> for AdmissionError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Invalid(i) => AdmissionError::Invalid(i),
            other => AdmissionError::Prepare(other),
        }
    }
}

/// Admit `component` on `node` (with the optional imports declared at submission): judged
/// against this node's catalog, else against the cluster's; an upload is stored once admitted.
/// A component this node prepared before is neither read, inspected nor hashed again; one it
/// did not is inspected and compiled on the engine's compile pool, which refuses the work
/// when it is full ([`crate::engine::PoolError`]).
pub async fn admit(
    node: &Node,
    component: Component<'_>,
    optional: &[String],
) -> Result<Admitted, AdmissionError> {
    match component {
        Component::Upload(upload) => {
            let admitted = match node.sandbox().cached(&upload.hash, optional) {
                Some(prepared) => Admitted::here(&prepared),
                None => judge_and_place(node, &upload.hash, upload.bytes.clone(), optional).await?,
            };
            node.store().put_blob(&upload.hash, &upload.bytes).await?;
            Ok(admitted)
        }
        Component::Stored(hash) => match node.sandbox().cached(hash, optional) {
            Some(prepared) => Ok(Admitted::here(&prepared)),
            None => {
                let bytes = read(node, hash).await?;
                judge_and_place(node, hash, bytes.into(), optional).await
            }
        },
    }
}

/// Resolve a deployed task's reference now (`name`, `name@current`: its current version;
/// `name@7`) and admit that version's component, as for a job that pins it: a submission to
/// a task and a schedule's firing come through here alike.
pub async fn admit_task(
    node: &Node,
    r: &TaskRef,
    optional: &[String],
) -> Result<(Admitted, ResolvedTask), AdmissionError> {
    let resolved = node.resolve_task(r).await.map_err(|e| match e {
        StoreError::NotFound(what) => AdmissionError::UnknownTask {
            what,
            task: r.name.clone(),
        },
        other => other.into(),
    })?;
    let admitted = admit(node, Component::Stored(&resolved.component), optional).await?;
    Ok((admitted, resolved))
}

/// A stored component's bytes (read once per admission).
async fn read(node: &Node, hash: &str) -> Result<Vec<u8>, AdmissionError> {
    #[cfg(test)]
    tests::READS.with(|r| r.set(r.get() + 1));
    node.store()
        .get_blob(hash)
        .await?
        .ok_or_else(|| AdmissionError::UnknownComponent(hash.to_string()))
}

/// Inspect and judge once; build here when this node can run it, else look for a node of the
/// cluster that can.
async fn judge_and_place(
    node: &Node,
    hash: &str,
    bytes: Bytes,
    optional: &[String],
) -> Result<Admitted, AdmissionError> {
    let ready = node
        .sandbox()
        .judge_and_build(WhenBusy::Refuse, hash, bytes, optional)
        .await?;
    match ready {
        Ready::Rejected(judged) => elsewhere(node, *judged).await,
        Ready::Prepared(prepared) => {
            node.learn_class(&prepared.requirements.class, true);
            Ok(Admitted::here(&prepared))
        }
    }
}

/// A component this node's catalog rejects: accepted when a registered node (live, or gone
/// recently: one restarting in a rolling upgrade) can run it, with that node's report;
/// refused with this node's report otherwise.
async fn elsewhere(node: &Node, judged: Judged) -> Result<Admitted, AdmissionError> {
    let Some((capable, report)) = node.capable_node(&judged.requirements.spec).await? else {
        return Err(AdmissionError::Rejected(Box::new(judged.report)));
    };
    tracing::info!(runs_on = %capable.node, "this node cannot run the component; admitted for a node whose catalog can");
    node.learn_class(&judged.requirements.class, false);
    Ok(Admitted {
        hash: judged.hash,
        report_json: serde_json::to_string(&report)
            .expect("a report serializes")
            .into(),
        requirements: judged.requirements,
        runs_on: Some(capable.node),
    })
}

#[cfg(test)]
mod tests;
