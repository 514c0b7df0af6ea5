//! The node registry as this node sees it, and placement. Every node process registers itself
//! (name, address, catalog, agents) and heartbeats (the loop is in `loops.rs`); a process
//! that stops heartbeating is marked gone, its identities freed and its attempts returned to
//! the queue. Each job carries a
//! compatibility class (what it needs from a host); a node judges each class against its own
//! catalog once and claims only jobs of the classes it satisfies, so in a mixed-version cluster
//! a job only ever runs on a node that can run it.

use crate::compat::{self, Catalog, CompatReport, Module, Verdict};
use crate::store::{NodeRecord, Store, StoreResult};
use crate::wire::{NodeState, NodeVerdict, Placement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read of the registry is reused (admission and job status read it).
const NODES_FRESH: Duration = Duration::from_millis(500);

/// A node's view of the cluster: the classes its catalog satisfies and a recent registry read.
pub struct Registry {
    catalog: Catalog,
    store: Arc<dyn Store>,
    /// How long gone node processes still count (see `NodeConfig::remember_nodes`).
    remember: Duration,
    book: Mutex<Book>,
    nodes: Mutex<Option<(Instant, Arc<Vec<NodeRecord>>)>>,
}

/// The classes judged so far.
#[derive(Default)]
struct Book {
    /// The last class sequence number read from the store.
    after: i64,
    /// Class → whether this node's catalog satisfies it.
    judged: HashMap<String, bool>,
    /// The satisfied ones, as handed to every claim.
    satisfied: Arc<[String]>,
}

impl Registry {
    /// A view for a node providing `catalog`, reading the registry in `store` and counting
    /// node processes gone within `remember`.
    pub fn new(catalog: Catalog, store: Arc<dyn Store>, remember: Duration) -> Registry {
        Registry {
            catalog,
            store,
            remember,
            book: Mutex::default(),
            nodes: Mutex::default(),
        }
    }

    /// The classes this node may claim.
    pub fn classes(&self) -> Arc<[String]> {
        self.book.lock().expect("book lock").satisfied.clone()
    }

    /// Record this node's verdict on a class it judged itself (at admission).
    pub fn learn(&self, class: &str, satisfied: bool) {
        let mut book = self.book.lock().expect("book lock");
        if book.judged.contains_key(class) {
            return;
        }
        book.judged.insert(class.to_string(), satisfied);
        if satisfied {
            let mut list = book.satisfied.to_vec();
            list.push(class.to_string());
            book.satisfied = list.into();
        }
    }

    /// Judge the classes stored since the last call (jobs admitted through other nodes).
    /// Returns how many this node can run.
    pub async fn catch_up(&self) -> StoreResult<usize> {
        let after = self.book.lock().expect("book lock").after;
        let new = self.store.requirement_classes(after).await?;
        let mut runnable = 0;
        for class in &new {
            let ok = compat::judge_spec(&class.spec, &self.catalog)
                .map(|r| r.verdict != Verdict::Rejected)
                .unwrap_or(false);
            runnable += usize::from(ok);
            self.learn(&class.class, ok);
        }
        if let Some(last) = new.last() {
            let mut book = self.book.lock().expect("book lock");
            book.after = book.after.max(last.seq);
        }
        Ok(runnable)
    }

    /// The registered node processes: live ones and those gone within `remember`.
    async fn nodes(&self) -> StoreResult<Arc<Vec<NodeRecord>>> {
        if let Some((at, nodes)) = &*self.nodes.lock().expect("nodes lock")
            && at.elapsed() < NODES_FRESH
        {
            return Ok(nodes.clone());
        }
        let nodes = Arc::new(
            self.store
                .list_nodes(self.store.now() - self.remember.as_millis() as i64)
                .await?,
        );
        *self.nodes.lock().expect("nodes lock") = Some((Instant::now(), nodes.clone()));
        Ok(nodes)
    }

    /// Where a job with requirements `spec` can run, from every registered node process's
    /// verdict.
    pub async fn placement(&self, spec: &str) -> StoreResult<Placement> {
        let nodes = self.nodes().await?;
        let verdicts = nodes
            .iter()
            .map(|n| {
                let report = judge_on(spec, n);
                NodeVerdict {
                    node: n.node.clone(),
                    process: n.process.clone(),
                    address: n.address.clone(),
                    state: state_of(n),
                    verdict: report.verdict,
                    summary: report.summary.clone(),
                    report,
                }
            })
            .collect();
        Ok(placement(verdicts))
    }

    /// The report of the first registered node process (live ones first) whose catalog
    /// satisfies `spec`, if any: admission accepts a job another node can run.
    pub async fn capable(&self, spec: &str) -> StoreResult<Option<(NodeRecord, CompatReport)>> {
        let nodes = self.nodes().await?;
        let mut ordered: Vec<&NodeRecord> = nodes.iter().collect();
        ordered.sort_by_key(|n| (n.gone_ms.is_some(), n.draining));
        Ok(ordered.into_iter().find_map(|n| {
            let report = judge_on(spec, n);
            (report.verdict != Verdict::Rejected).then(|| (n.clone(), report))
        }))
    }
}

/// A registered node process's state: `live`, `draining` or `gone`.
pub fn state_of(n: &NodeRecord) -> NodeState {
    NodeState::of(n.gone_ms.is_some(), n.draining)
}

/// A registered node process's catalog, as it registered it (`None`: unreadable).
pub fn catalog_of(n: &NodeRecord) -> Option<Catalog> {
    serde_json::from_str::<Vec<Module>>(&n.catalog)
        .ok()
        .map(Catalog::from_modules)
}

/// Judge `spec` against a registered node's catalog.
fn judge_on(spec: &str, node: &NodeRecord) -> CompatReport {
    match catalog_of(node).map(|c| compat::judge_spec(spec, &c)) {
        Some(Ok(report)) => report,
        _ => CompatReport {
            verdict: Verdict::Rejected,
            catalog: vec![],
            imports: vec![],
            summary: "its registered catalog or this job's requirements could not be read".into(),
        },
    }
}

/// Where a job can run, from every node's verdict on it.
fn placement(nodes: Vec<NodeVerdict>) -> Placement {
    let runnable_on: Vec<String> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Live && n.verdict != Verdict::Rejected)
        .map(|n| n.node.clone())
        .collect();
    let waiting = runnable_on.is_empty().then(|| {
        let capable: Vec<String> = nodes
            .iter()
            .filter(|n| n.verdict != Verdict::Rejected)
            .map(|n| format!("{} ({})", n.node, n.state))
            .collect();
        if capable.is_empty() {
            "no registered node provides what this job imports; it waits until a node whose catalog satisfies it joins (GET /v1/nodes shows the catalogs)".to_string()
        } else {
            format!(
                "no live node can run this job now; it waits for one of: {}. It runs as soon as one is live and not draining",
                capable.join(", ")
            )
        }
    });
    // Two processes of one node name run side by side during a hand-over: name it once.
    let mut runnable_on = runnable_on;
    runnable_on.sort();
    runnable_on.dedup();
    Placement {
        runnable_on,
        waiting,
        nodes,
    }
}
