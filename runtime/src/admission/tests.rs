//! Admission reads a component once and inspects it once, also when this node rejects it and
//! the cluster is asked.

use super::*;
use crate::compat::Catalog;
use crate::compat::Verdict;
use crate::engine::{Engine, EngineConfig, Sandbox};
use crate::host::MemoryKv;
use crate::node::NodeConfig;
use crate::store::sqlite::SqliteStore;
use crate::store::{BlobStore, NodeRegistration, NodeStore, Store, now_ms};
use std::cell::Cell;

thread_local! {
    /// How many blobs admission read on this thread.
    pub(super) static READS: Cell<usize> = const { Cell::new(0) };
}

/// A node providing only kv 1.0, over a fresh SQLite store, and the kv 2.x example (which it
/// rejects).
struct Fixture {
    _dir: tempfile::TempDir,
    node: Arc<Node>,
    store: Arc<SqliteStore>,
    kv_v2: Upload,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("driftless.db")).unwrap());
        let catalog = Catalog::with_provides(&["driftless:kv@1.0.0"]).unwrap();
        let engine = Engine::new(EngineConfig {
            max_instances: 2,
            ..EngineConfig::default()
        })
        .unwrap();
        let sandbox = Sandbox::new(engine, catalog, Arc::new(MemoryKv::default())).unwrap();
        let node = Node::new(
            NodeConfig::default(),
            store.clone() as Arc<dyn Store>,
            Arc::new(sandbox),
        );
        Fixture {
            _dir: dir,
            node,
            store,
            kv_v2: upload(driftless_tests::examples::KV_V2),
        }
    }

    /// Register another node whose catalog provides kv 2.0.
    async fn kv2_node_joins(&self) {
        let catalog = Catalog::with_provides(&["driftless:kv@2.0.0"]).unwrap();
        self.store
            .register_node(NodeRegistration {
                process: "host-b:1:1".into(),
                node: "node-b".into(),
                address: "127.0.0.1:1".into(),
                version: "test".into(),
                catalog: serde_json::to_string(catalog.modules()).unwrap(),
                agents: 1,
                now_ms: now_ms(),
            })
            .await
            .unwrap();
    }

    /// Admit and count (blob reads on this thread, inspections by this node's sandbox).
    async fn counted(
        &self,
        component: Component<'_>,
    ) -> (Result<Admitted, AdmissionError>, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        READS.with(|r| r.set(0));
        let inspections = &self.node.sandbox().inspections;
        inspections.store(0, SeqCst);
        let result = admit(&self.node, component, &[]).await;
        (result, READS.with(Cell::get), inspections.load(SeqCst))
    }
}

/// An example component as an upload.
fn upload(path: &str) -> Upload {
    let bytes = std::fs::read(path).unwrap();
    Upload {
        hash: hash_hex(&bytes),
        bytes: bytes.into(),
    }
}

#[tokio::test]
async fn a_rejected_upload_is_inspected_once_and_not_stored() {
    let f = Fixture::new();
    let (result, reads, inspections) = f.counted(Component::Upload(&f.kv_v2)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AdmissionError::Rejected(_)), "{err}");
    assert!(
        err.to_string()
            .contains("No other node of the cluster can run it either")
    );
    assert_eq!((reads, inspections), (0, 1));
    assert_eq!(f.store.get_blob(&f.kv_v2.hash).await.unwrap(), None);
}

#[tokio::test]
async fn a_stored_component_no_node_can_run_is_read_and_inspected_once() {
    let f = Fixture::new();
    let hash = f.kv_v2.hash.clone();
    f.store.put_blob(&hash, &f.kv_v2.bytes).await.unwrap();
    let (result, reads, inspections) = f.counted(Component::Stored(&hash)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AdmissionError::Rejected(_)), "{err}");
    assert_eq!(err.report().unwrap().verdict, Verdict::Rejected);
    assert_eq!((reads, inspections), (1, 1));
}

#[tokio::test]
async fn a_stored_component_another_node_can_run_is_read_and_inspected_once() {
    let f = Fixture::new();
    let hash = f.kv_v2.hash.clone();
    f.store.put_blob(&hash, &f.kv_v2.bytes).await.unwrap();
    f.kv2_node_joins().await;
    let (result, reads, inspections) = f.counted(Component::Stored(&hash)).await;
    let admitted = result.unwrap();
    // Admitted for the node that provides kv 2.0, with its report.
    assert_eq!(admitted.runs_on.as_deref(), Some("node-b"));
    let report: CompatReport = serde_json::from_str(&admitted.report_json).unwrap();
    assert_eq!(report.verdict, Verdict::Accepted);
    assert_eq!((reads, inspections), (1, 1));
}

#[tokio::test]
async fn a_component_this_node_prepared_is_not_read_again() {
    let f = Fixture::new();
    let hello = upload(driftless_tests::examples::HELLO);
    let (result, _, inspections) = f.counted(Component::Upload(&hello)).await;
    let admitted = result.unwrap();
    assert_eq!((admitted.runs_on, inspections), (None, 1));
    let (result, reads, inspections) = f.counted(Component::Stored(&admitted.hash)).await;
    assert_eq!(result.unwrap().hash, admitted.hash);
    assert_eq!((reads, inspections), (0, 0));
}
