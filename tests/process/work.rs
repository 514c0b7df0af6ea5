//! The CPU-heavy work path and two failure classes, against real processes: compiling big
//! uploads off the async runtime (with a bounded queue that answers 503 `compile-busy`),
//! `/readyz` on a full disk, and an output over the limit failing at once.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::{until, until_some};
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_driftless");
/// How long a node may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(20);

fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (DaemonProcess, Client) {
    let d = DaemonProcess::start_with_env(BIN, dir, extra, env);
    let c = Client::new(&d.url);
    (d, c)
}

/// An unsigned LEB128.
fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A section: its id, its size, its contents.
fn section(id: u8, contents: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(contents.len(), out);
    out.extend_from_slice(contents);
}

/// `base` (a job component) with one more core module, compiled with the component but never
/// instantiated, of `functions` functions of straight-line arithmetic on their parameter, and
/// a custom section that pads the whole to `total` bytes; `salt` makes its hash its own.
fn heavy_component(base: &[u8], functions: usize, total: usize, salt: u8) -> Vec<u8> {
    let mut body = vec![0x00, 0x20, 0x00]; // no locals; local.get 0
    for i in 0..400u32 {
        let k = (i * 7919 + u32::from(salt)) % 64;
        // i32.const k; i32.add; i32.const k+3; i32.mul; i32.const 5; i32.rotl; local.tee 0
        body.extend_from_slice(&[0x41, k as u8, 0x6a, 0x41, (k + 3) as u8, 0x6c]);
        body.extend_from_slice(&[0x41, 0x05, 0x77, 0x22, 0x00]);
    }
    body.push(0x0b);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f], &mut module); // (i32) -> i32
    let mut funcs = Vec::new();
    leb(functions, &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, functions));
    section(3, &funcs, &mut module);
    let mut code = Vec::new();
    leb(functions, &mut code);
    for _ in 0..functions {
        leb(body.len(), &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut module);
    let mut out = base.to_vec();
    section(1, &module, &mut out); // a core module section of the component
    let name = b"driftless-test-padding";
    let overhead = 1 + 5 + 1 + name.len();
    let pad = total.saturating_sub(out.len() + overhead);
    let mut custom = vec![name.len() as u8];
    custom.extend_from_slice(name);
    custom.extend(std::iter::repeat_n(salt, pad));
    out.push(0);
    // A fixed 5-byte LEB size, so the total comes out exact.
    let n = custom.len();
    out.extend_from_slice(&[
        (n as u8 & 0x7f) | 0x80,
        ((n >> 7) as u8 & 0x7f) | 0x80,
        ((n >> 14) as u8 & 0x7f) | 0x80,
        ((n >> 21) as u8 & 0x7f) | 0x80,
        (n >> 28) as u8 & 0x7f,
    ]);
    out.extend_from_slice(&custom);
    out
}

/// `PUT /v1/components`: the status, the body, the `Retry-After` header and how long it took.
async fn upload(c: &Client, wasm: Vec<u8>) -> (u16, Value, Option<String>, Duration) {
    let started = Instant::now();
    let response = c
        .request(Method::PUT, "/v1/components")
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body, retry_after, started.elapsed())
}

/// A metric's value in `/metrics`.
async fn metric(c: &Client, name: &str) -> f64 {
    let (_, text) = c.get("/metrics").await;
    text.as_str()
        .unwrap_or("")
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[tokio::test]
async fn big_compiles_leave_the_node_responsive_and_uploads_beyond_the_queue_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (d, c) = start(
        dir.path(),
        &[
            "--agents",
            "1",
            "--compile-workers",
            "2",
            "--compile-queue",
            "0",
        ],
        &[],
    );
    let c = Arc::new(c);
    let hello = bytes(HELLO);
    let heavy = |salt| heavy_component(&hello, 200, 28 << 20, salt);
    let (a, b) = (heavy(1), heavy(2));
    assert_eq!(a.len(), 28 << 20);

    // /healthz every 20 ms for as long as the compiles run.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn({
        let (c, stop) = (c.clone(), stop.clone());
        async move {
            let mut slowest = Duration::ZERO;
            let mut probes = 0;
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                assert_eq!(c.get("/healthz").await.0, 200);
                slowest = slowest.max(started.elapsed());
                probes += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, probes)
        }
    });
    let first = tokio::spawn({
        let c = c.clone();
        async move { upload(&c, a).await }
    });
    let second = tokio::spawn({
        let c = c.clone();
        async move { upload(&c, b).await }
    });
    until("both uploads to be compiling", WAIT, async || {
        metric(&c, "driftless_compiles_running").await == 2.0
    })
    .await;
    // Both workers busy, no queue: another component is refused at once, with Retry-After.
    let (status, body, retry_after, took) = upload(&c, hello.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("compile-busy")),
        "{body}"
    );
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(took < Duration::from_millis(500), "refused in {took:?}");

    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    stop.store(true, Ordering::SeqCst);
    let (slowest, probes) = probe.await.unwrap();
    for (status, body, _, _) in [&first, &second] {
        assert_eq!(*status, 201, "{body}");
    }
    eprintln!(
        "two concurrent 28 MiB uploads took {:?} and {:?} (inspection and compile); the slowest of {probes} /healthz probes took {slowest:?}",
        first.3, second.3
    );
    assert!(
        slowest < Duration::from_millis(250),
        "/healthz took {slowest:?} while components compiled"
    );
    assert_eq!(metric(&c, "driftless_compiles_refused_total").await, 1.0);
    assert_eq!(metric(&c, "driftless_compile_queue_depth").await, 0.0);
    // The refused component goes through once the pool has room.
    assert_eq!(upload(&c, hello).await.0, 201);
    drop(d);
}

#[tokio::test]
async fn a_compile_past_its_deadline_answers_503_and_its_result_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, c) = start(
        dir.path(),
        &["--agents", "1", "--compile-timeout-ms", "50"],
        &[],
    );
    let heavy = heavy_component(&bytes(HELLO), 200, 4 << 20, 3);
    let (status, body, retry_after, took) = upload(&c, heavy.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("compile-timeout")),
        "{body}"
    );
    assert!(retry_after.is_some());
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("--compile-timeout-ms"), "{message}");
    // The compile went on; once it ended, the same upload is answered from the cache.
    until("the compile to end", WAIT, async || {
        metric(&c, "driftless_compiles_running").await == 0.0
    })
    .await;
    let (status, body, _, _) = upload(&c, heavy).await;
    assert_eq!(status, 201, "{body}");
}

/// A tmpfs of `size` mounted on `dir` until dropped; `None` (with the reason printed) when
/// this process may not mount one.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "skipping the real full-disk check: cannot mount a tmpfs ({}); the injected-fault test covers the same path",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping the real full-disk check: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// What a full disk must look like from outside: `/readyz` fails saying so, a submission is
/// refused with 503 `store-unavailable` saying the disk is full and leaves nothing behind;
/// once there is room again (`make_room`), the node is ready and takes jobs.
async fn full_disk_is_reported_and_harmless(c: &Client, make_room: impl FnOnce()) {
    let (status, body) = until_some("/readyz to fail", WAIT, async || {
        let (status, body) = c.get("/readyz").await;
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("not-ready"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("full"), "{message}");

    let (status, body) = c
        .submit(
            &bytes(HELLO),
            &[("input", json!({"n": 1}).to_string())],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("store-unavailable")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("disk holding the database is full"),
        "{message}"
    );

    make_room();
    until("/readyz to pass again", WAIT, async || {
        c.get("/readyz").await.0 == 200
    })
    .await;
    let (_, listed) = c.get("/v1/jobs").await;
    assert_eq!(listed["jobs"], json!([]), "nothing half-written");
    let (status, body) = c
        .submit(
            &bytes(HELLO),
            &[("input", json!({"n": 2}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["job"]["id"].as_str().unwrap();
    let (_, job) = c.get(&format!("/v1/jobs/{id}?wait=20")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}

#[tokio::test]
async fn readyz_and_writes_on_a_real_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(dir.path(), "64m") else {
        return;
    };
    let (_d, c) = start(&dir.path().join("data"), &["--agents", "1"], &[]);
    assert_eq!(c.get("/readyz").await.0, 200);
    // Fill the file system.
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 1 << 16];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    full_disk_is_reported_and_harmless(&c, || std::fs::remove_file(&filler).unwrap()).await;
}

#[tokio::test]
async fn readyz_and_writes_while_an_injected_fault_fills_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("disk-is-full");
    let (_d, c) = start(
        &dir.path().join("data"),
        &["--agents", "1"],
        &[("DRIFTLESS_FAULT_DISK_FULL", flag.to_str().unwrap())],
    );
    assert_eq!(c.get("/readyz").await.0, 200);
    std::fs::write(&flag, b"").unwrap();
    full_disk_is_reported_and_harmless(&c, || std::fs::remove_file(&flag).unwrap()).await;
}

#[tokio::test]
async fn an_output_over_the_limit_fails_at_once_as_output_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, c) = start(dir.path(), &["--agents", "2"], &[]);
    // 3 MiB is read and refused with its size; 150 MiB (more than wasmtime's default limit on
    // what a call may copy to the host, which it once failed on as a retryable `host-error`)
    // is refused while it is read, before the host holds a copy.
    let mut ids = vec![];
    for (size, memory_mib) in [(3usize << 20, 64), (150 << 20, 1024)] {
        let (status, body) = c
            .submit(
                &bytes(HUGE_OUTPUT),
                &[
                    ("input", json!({"output_bytes": size}).to_string()),
                    ("memory_mib", memory_mib.to_string()),
                    ("max_attempts", "3".into()),
                ],
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["job"]["id"].as_str().unwrap().to_string());
    }
    for (id, size) in ids.iter().zip(["3145730 bytes", "more than 4194304 bytes"]) {
        let (_, job) = c.get(&format!("/v1/jobs/{id}?wait=60")).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["error"]["code"], "output-too-large", "{job}");
        assert_eq!(job["error"]["retryable"], false, "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        let message = job["error"]["message"].as_str().unwrap();
        assert!(message.contains(size), "names the size: {message}");
        assert!(message.contains("the limit is 1048576 bytes"), "{message}");
    }
}
