//! The daemon on a network: its deadlines (headers, keep-alive idle, request body), its
//! connection cap, HTTPS with a CA the CLI is given, and PostgreSQL over TLS. Raw sockets
//! stand in for slow and idle clients. (Declared as a test of the runtime package so the real
//! binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::examples::HELLO;
use driftless_tests::poll::until;
use driftless_tests::postgres::PgServer;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// An HTTP/1.1 answer read off a raw socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn connect(d: &DaemonProcess) -> TcpStream {
    TcpStream::connect(("127.0.0.1", d.port()))
        .await
        .expect("connect to the daemon")
}

/// Read one answer (headers, then `content-length` bytes of body) within 10 s.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.expect("read an answer");
            assert!(
                n > 0,
                "the connection closed before an answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "the connection closed within the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = &buf[head_end..head_end + length];
        Answer {
            status,
            headers,
            body: serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into())),
        }
    })
    .await
    .expect("an answer within 10 s")
}

/// Send `GET path` on a keep-alive connection and read the answer.
async fn get(stream: &mut TcpStream, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    read_answer(stream).await
}

/// How long until the daemon closes the connection (end of file or reset), at most 10 s.
async fn closed_within(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the daemon closed the connection within 10 s");
    start.elapsed()
}

/// Raise this process's soft descriptor limit to `at_least` (tests open many sockets).
fn raise_own_descriptor_limit(at_least: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= at_least,
            "this test needs a hard descriptor limit of at least {at_least} (ulimit -Hn is {})",
            limit.rlim_max
        );
        if limit.rlim_cur < at_least {
            limit.rlim_cur = at_least;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// Header timeout 300 ms, idle timeout 1.5 s, body timeout 500 ms; each deadline is checked
/// on its own connection, at once.
#[tokio::test]
async fn stalled_headers_idle_connections_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(
        BIN,
        dir.path(),
        &[
            "--header-timeout-ms",
            "300",
            "--idle-timeout-ms",
            "1500",
            "--body-timeout-ms",
            "500",
        ],
    );
    let within = |closed: Duration, deadline_ms: u64| {
        let deadline = Duration::from_millis(deadline_ms);
        assert!(
            closed >= deadline - Duration::from_millis(50)
                && closed < deadline + Duration::from_millis(1500),
            "closed after {closed:?}, the deadline is {deadline:?}"
        );
    };

    let stalled = async {
        // A request line and then nothing: closed at the header timeout.
        let mut s = connect(&d).await;
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        within(closed_within(&mut s).await, 300);
    };
    let silent = async {
        // Connected and nothing sent: closed at the header timeout too.
        let mut s = connect(&d).await;
        within(closed_within(&mut s).await, 300);
    };
    let second_request_stalls = async {
        // After one request, half of the next one: the header deadline runs from its first
        // byte, not the idle one.
        let mut s = connect(&d).await;
        assert_eq!(get(&mut s, "/healthz").await.status, 200);
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost:")
            .await
            .unwrap();
        within(closed_within(&mut s).await, 300);
    };
    let idle = async {
        // A keep-alive connection lives past the header timeout while it waits, serves a
        // second request, and is closed at the idle timeout after its last answer.
        let mut s = connect(&d).await;
        assert_eq!(get(&mut s, "/healthz").await.status, 200);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(get(&mut s, "/healthz").await.status, 200);
        within(closed_within(&mut s).await, 1500);
    };
    let slow_body = async {
        // A submission that announces 1000 bytes and sends 10: 408 at the body deadline.
        let mut s = connect(&d).await;
        s.write_all(
            b"POST /v1/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/wasm\r\ncontent-length: 1000\r\n\r\n\0asm\x0d\0\x01\0\0\0",
        )
        .await
        .unwrap();
        let sent = Instant::now();
        let answer = read_answer(&mut s).await;
        let took = sent.elapsed();
        assert_eq!(answer.status, 408, "{answer:?}");
        assert_eq!(
            answer.body["error"]["code"], "request-timeout",
            "{answer:?}"
        );
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--body-timeout-ms"),
            "{answer:?}"
        );
        assert_eq!(answer.header("connection"), Some("close"));
        within(took, 500);
        closed_within(&mut s).await;
    };
    tokio::join!(stalled, silent, second_request_stalls, idle, slow_body);

    // Nothing was stored from the cut-off submission, and the daemon still serves.
    let c = Client::new(&d.url);
    let (status, jobs) = c.get("/v1/jobs").await;
    assert_eq!(status, 200);
    assert_eq!(jobs["jobs"], json!([]), "{jobs}");
}

/// 2,000 open connections (half idle between requests, half never sent anything) and a
/// new client's `/healthz` answers stay fast.
#[tokio::test]
async fn two_thousand_idle_connections_leave_the_daemon_responsive() {
    const IDLE: usize = 2000;
    raise_own_descriptor_limit(IDLE as u64 + 256);
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--max-connections", "2100"]);
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut s = connect(&d).await;
        if i % 2 == 0 {
            assert_eq!(get(&mut s, "/healthz").await.status, 200);
        }
        idle.push(s);
    }
    let held = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    assert!(
        held > IDLE,
        "the daemon holds {held} descriptors, fewer than the connections"
    );

    let c = Client::new(&d.url);
    let mut took = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(c.get("/healthz").await.0, 200);
        took.push(start.elapsed());
    }
    took.sort();
    eprintln!("/healthz with {IDLE} idle connections open: {took:?}");
    assert!(
        took.iter().all(|t| *t < Duration::from_millis(50)),
        "/healthz answers took {took:?}"
    );
    // The idle connections are still served.
    for s in idle.iter_mut().step_by(2).take(20) {
        assert_eq!(get(s, "/healthz").await.status, 200);
    }
}

/// Over `--max-connections` a new connection is answered 503 with `Retry-After` and closed;
/// once others close, new connections are served again.
#[tokio::test]
async fn over_the_connection_cap_a_client_is_refused_politely_until_others_close() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--max-connections", "8"]);
    let mut open = Vec::new();
    for _ in 0..8 {
        let mut s = connect(&d).await;
        assert_eq!(get(&mut s, "/healthz").await.status, 200);
        open.push(s);
    }
    let mut refused = connect(&d).await;
    let answer = get(&mut refused, "/healthz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.body["error"]["code"], "too-many-connections",
        "{answer:?}"
    );
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-connections")
    );
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.header("connection"), Some("close"));
    closed_within(&mut refused).await;
    // The connections already open are still served.
    assert_eq!(get(&mut open[0], "/healthz").await.status, 200);

    open.truncate(6);
    let c = Client::new(&d.url);
    until(
        "a new connection to be served again",
        Duration::from_secs(5),
        async || c.get("/healthz").await.0 == 200,
    )
    .await;
}

/// A CA and a certificate for 127.0.0.1 and localhost that it signed, as PEM files in `dir`:
/// (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "driftless test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, &pem).unwrap();
        pem
    };
    (
        write("ca.pem", ca_cert.pem()),
        write("cert.pem", leaf.pem()),
        write("key.pem", key.serialize_pem()),
    )
}

fn driftless(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("DRIFTLESS_URL")
        .env_remove("DRIFTLESS_CA_CERT")
        .output()
        .expect("run driftless");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `serve --tls-cert --tls-key` answers HTTPS; the CLI trusts it with `--ca-cert` and says
/// what to do without; a client that never starts the handshake is closed at the header
/// timeout; unreadable or half-given TLS files stop `serve` with a clear message.
#[tokio::test]
async fn https_is_served_and_the_cli_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = certificates(dir.path());
    let (cert, key, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    let d = DaemonProcess::start(
        BIN,
        &dir.path().join("node"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--header-timeout-ms",
            "500",
        ],
    );
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    let c = Client::with_ca(&d.url, &ca);
    let (status, job) = c
        .submit(
            &driftless_tests::bytes(HELLO),
            &[("input", "7".into())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let done = c.wait(job["job"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    let (ok, out, err) = driftless(&[
        "modules",
        "--url",
        &d.url,
        "--ca-cert",
        ca_file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("driftless:kv"), "{out}");
    let (ok, _, err) = driftless(&["modules", "--url", &d.url]);
    assert!(!ok);
    assert!(
        err.contains("does not trust") && err.contains("--ca-cert"),
        "{err}"
    );

    // A TLS client that connects and never says hello holds no slot past the header timeout.
    let mut silent = connect(&d).await;
    let closed = closed_within(&mut silent).await;
    assert!(
        closed < Duration::from_millis(2000),
        "closed after {closed:?}"
    );

    let missing = dir.path().join("missing.pem");
    let (ok, _, err) = driftless(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("bad").to_str().unwrap(),
        "--tls-cert",
        missing.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("cannot read the TLS cert") && err.contains("--tls-cert"),
        "{err}"
    );
    let (ok, _, err) = driftless(&[
        "serve",
        "--data-dir",
        dir.path().join("bad").to_str().unwrap(),
        "--tls-cert",
        key.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("holds no certificate"), "{err}");
    let (ok, _, err) = driftless(&["serve", "--tls-cert", cert.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("--tls-key"), "{err}");
}

/// A daemon reaches a PostgreSQL that has TLS on with `sslmode=require` (its connections are
/// encrypted), with `verify-full` against the CA given as `sslrootcert`, and refuses to start
/// with `verify-full` when the system's roots do not know that CA.
#[tokio::test]
async fn postgres_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates(dir.path());
    let pg = PgServer::start_tls(&cert, &key);
    let base = pg.url();

    let require = format!("{base}?sslmode=require");
    let a = DaemonProcess::start(
        BIN,
        &dir.path().join("a"),
        &["--store", &require, "--node", "a"],
    );
    let c = Client::new(&a.url);
    let (status, job) = c
        .submit(
            &driftless_tests::bytes(HELLO),
            &[("input", "1".into())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let done = c.wait(job["job"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    let (db, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let (encrypted, all): (i64, i64) = {
        let row = db
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*)
                   FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                  WHERE a.application_name LIKE 'driftless%'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(
        all > 0 && encrypted == all,
        "{encrypted} of the daemon's {all} connections use TLS"
    );

    let ca = dir.path().join("ca.pem");
    let full = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let b = DaemonProcess::start(
        BIN,
        &dir.path().join("b"),
        &["--store", &full, "--node", "b"],
    );
    assert_eq!(Client::new(&b.url).get("/readyz").await.0, 200);

    let unknown = format!("{base}?sslmode=verify-full");
    let (ok, _, err) = driftless(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("c").to_str().unwrap(),
        "--store",
        &unknown,
    ]);
    assert!(!ok);
    assert!(err.contains("sslrootcert"), "{err}");
}
