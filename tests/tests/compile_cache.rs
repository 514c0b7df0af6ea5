//! Components compile once per hash; a restart (a new engine on the same cache folder) loads
//! the artifact instead of recompiling, and only artifacts this engine wrote are ever loaded.

use driftless::compat::Catalog;
use driftless::engine::{Engine, EngineConfig};
use driftless_tests::{bytes, examples::HELLO, output_json, run, sandbox_on, test_limits};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn engine_on(dir: &Path) -> Arc<Engine> {
    Engine::new(EngineConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 4,
        ..EngineConfig::default()
    })
    .unwrap()
}

async fn prepare_and_run(engine: &Arc<Engine>) {
    let sandbox = sandbox_on(engine.clone(), Catalog::full());
    let r = run(&sandbox, &bytes(HELLO), &json!({"n": 1}), test_limits())
        .await
        .unwrap();
    assert_eq!(output_json(&r), json!({"n": 1}));
}

fn artifact(dir: &Path) -> std::path::PathBuf {
    let hash = driftless::engine::hash_hex(&bytes(HELLO));
    let mut found = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap().flatten() {
        let p = sub.path().join(format!("{hash}.cwasm"));
        if p.exists() {
            found.push(p);
        }
    }
    assert_eq!(found.len(), 1, "one artifact per hash");
    found.pop().unwrap()
}

#[tokio::test]
async fn restart_loads_instead_of_recompiling_and_refuses_foreign_artifacts() {
    let dir = tempfile::tempdir().unwrap();

    let first = engine_on(dir.path());
    prepare_and_run(&first).await;
    prepare_and_run(&first).await;
    let s = first.cache_stats();
    assert_eq!((s.compiles, s.disk_hits), (1, 0));
    drop(first);

    // A restart: the artifact is verified and loaded, nothing is compiled.
    let second = engine_on(dir.path());
    prepare_and_run(&second).await;
    let s = second.cache_stats();
    assert_eq!((s.compiles, s.disk_hits, s.rejected_artifacts), (0, 1, 0));
    drop(second);

    // A corrupted artifact is refused (never deserialized) and replaced.
    let path = artifact(dir.path());
    let mut data = std::fs::read(&path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&path, &data).unwrap();
    let third = engine_on(dir.path());
    prepare_and_run(&third).await;
    let s = third.cache_stats();
    assert_eq!((s.compiles, s.disk_hits, s.rejected_artifacts), (1, 0, 1));
    drop(third);

    // An artifact written under another key (another engine, or someone else) is refused too.
    std::fs::write(dir.path().join("cache.key"), [7u8; 32]).unwrap();
    let fourth = engine_on(dir.path());
    prepare_and_run(&fourth).await;
    let s = fourth.cache_stats();
    assert_eq!((s.compiles, s.rejected_artifacts), (1, 1));
}
