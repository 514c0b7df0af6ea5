//! A real `driftless serve` process for end-to-end tests: started on 127.0.0.1 with an
//! ephemeral port and its own data directory, killed when dropped.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running daemon process.
pub struct DaemonProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when it serves TLS).
    pub url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl DaemonProcess {
    /// Start `bin serve` on a free loopback port with `data_dir` and `extra` arguments; waits
    /// for the line that announces the address. Its log goes to `data_dir/daemon.log`.
    pub fn start(bin: &str, data_dir: &Path, extra: &[&str]) -> DaemonProcess {
        Self::start_with_env(bin, data_dir, extra, &[])
    }

    /// As [`start`](Self::start), with extra environment variables (e.g. `DRIFTLESS_FAULT`).
    pub fn start_with_env(
        bin: &str,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> DaemonProcess {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("daemon.log"))
            .unwrap();
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(bin)
            .arg("serve")
            .args(listen)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("DRIFTLESS_LOG", "warn,driftless=info")
            .env_remove("DRIFTLESS_PROVIDE")
            .env_remove("DRIFTLESS_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start driftless serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(data_dir.join("daemon.log")).unwrap_or_default();
                panic!("the daemon did not announce its address; its log:\n{log}")
            });
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .expect("address in the first line")
            .to_string();
        DaemonProcess {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// A daemon named `node` on the PostgreSQL `store` that another node takes over from
    /// within seconds: two agents, leases of 2 s, a node TTL of 1.5 s and a reaper every 200 ms.
    /// Its data directory is `root/dir`; `env` is added to its environment.
    pub fn quick_takeover_node(
        bin: &str,
        (root, dir): (&Path, &str),
        store: &str,
        node: &str,
        env: &[(&str, &str)],
    ) -> DaemonProcess {
        let args = [
            "--store",
            store,
            "--node",
            node,
            "--agents",
            "2",
            "--lease-ms",
            "2000",
            "--node-ttl-ms",
            "1500",
            "--reap-ms",
            "200",
        ];
        DaemonProcess::start_with_env(bin, &root.join(dir), &args, env)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal (`TERM`, `INT`, ...) with `kill`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Wait up to `timeout` for the process to exit; its exit code (`None`: still running, or
    /// killed by a signal).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = &mut self.child;
        crate::poll::poll(timeout, async || child.try_wait().expect("try_wait"))
            .await
            .and_then(|status| status.code())
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A small JSON client for the API. Like the CLI, it sends `x-driftless-client: 1` on every
/// request (a daemon in open mode refuses state-changing requests a web page could send, such
/// as a multipart submit, without it).
pub struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    /// A client for the daemon at `url`.
    pub fn new(url: &str) -> Client {
        Self::build(url, None, None)
    }

    /// A client for the daemon at `url` that sends `token` as its bearer token.
    pub fn with_token(url: &str, token: &str) -> Client {
        Self::build(url, Some(token), None)
    }

    /// A client for an HTTPS daemon at `url` whose certificate `ca_pem` (a PEM CA) signed.
    pub fn with_ca(url: &str, ca_pem: &str) -> Client {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("a PEM CA");
        Self::build(url, None, Some(ca))
    }

    fn build(url: &str, token: Option<&str>, ca: Option<reqwest::Certificate>) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-driftless-client", "1".parse().unwrap());
        if let Some(token) = token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        Client {
            http: ca
                .into_iter()
                .fold(reqwest::Client::builder(), |b, ca| {
                    b.add_root_certificate(ca)
                })
                .default_headers(headers)
                .build()
                .expect("a client"),
            url: url.to_string(),
        }
    }

    /// `POST /v1/jobs` with the component as `application/wasm`; `query` holds options.
    pub async fn submit(
        &self,
        wasm: &[u8],
        query: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/jobs", self.url))
            .query(query)
            .header("content-type", "application/wasm")
            .body(wasm.to_vec());
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        Self::json(req.send().await.expect("submit")).await
    }

    /// Any request, answered as (status, JSON or text as a JSON string).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        Self::json(req.send().await.expect("request")).await
    }

    /// A request builder for `method path`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    /// Make a token named `name` with `scopes` through the API (this client holds an admin
    /// token); its secret.
    pub async fn make_token(&self, name: &str, scopes: &[&str]) -> String {
        let (status, body) = self
            .send(
                self.request(reqwest::Method::POST, "/v1/admin/tokens")
                    .json(&serde_json::json!({"name": name, "scopes": scopes})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["secret"].as_str().unwrap().to_string()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// Wait (long-poll) until the job is terminal, up to `secs` per poll and 120 s in all.
    pub async fn wait(&self, id: &str) -> Value {
        for _ in 0..12 {
            let (status, job) = self.get(&format!("/v1/jobs/{id}?wait=10")).await;
            assert_eq!(status, 200, "{job}");
            if ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or(""))
            {
                return job;
            }
        }
        panic!("job {id} did not finish in 120 s");
    }

    async fn json(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Daemons named `names` on one store (`store`: a PostgreSQL URL), `agents` agents each, their
/// data directories under `root`, with a client each; returns once the registry shows every
/// one live.
pub async fn cluster(
    bin: &str,
    root: &Path,
    store: &str,
    names: &[&str],
    agents: u32,
) -> (Vec<DaemonProcess>, Vec<Client>) {
    let agents = agents.to_string();
    let nodes: Vec<DaemonProcess> = names
        .iter()
        .map(|n| {
            DaemonProcess::start(
                bin,
                &root.join(n),
                &["--store", store, "--node", n, "--agents", &agents],
            )
        })
        .collect();
    let clients: Vec<Client> = nodes.iter().map(|n| Client::new(&n.url)).collect();
    crate::poll::until("every node live", Duration::from_secs(15), async || {
        let (_, body) = clients[0].get("/v1/nodes").await;
        body["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["state"] == "live").count() == names.len())
    })
    .await;
    (nodes, clients)
}
