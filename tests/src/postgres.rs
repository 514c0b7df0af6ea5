//! A throwaway PostgreSQL server for tests: Debian's PostgreSQL binaries (installed with
//! apt-get when missing, without creating the system's main cluster), a fresh cluster made by
//! `initdb` in a temporary directory, started by `pg_ctl` on a free loopback port with its
//! socket in that directory, and stopped when dropped. It never touches a system cluster.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running throwaway server.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<&'static str>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PgServer {
    /// Install (if needed), initialise and start a server; panics with what went wrong.
    pub fn start() -> PgServer {
        Self::start_with(None)
    }

    /// [`start`](Self::start) a server that also accepts TLS (`ssl=on`), with this
    /// certificate and key (PEM). Clients may still connect without TLS.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> PgServer {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> PgServer {
        let bin = bin_dir().unwrap_or_else(|| {
            install();
            bin_dir().expect("PostgreSQL is installed but no initdb was found")
        });
        // initdb refuses to run as root: then the cluster belongs to the `postgres` user that
        // Debian's package creates.
        let run_as = is_root().then_some("postgres");
        let dir = tempfile::Builder::new()
            .prefix("driftless-pg-")
            .tempdir()
            .expect("temp dir");
        if let Some(user) = run_as {
            ok(Command::new("chown").arg(user).arg(dir.path()), "chown");
        }
        let port = free_port();
        let server = PgServer {
            dir,
            bin,
            run_as,
            port,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            server.dir.path().display()
        );
        if let Some((cert, key)) = tls {
            // The key must belong to the server's user and be private to it.
            let (cert_file, key_file) = (
                server.dir.path().join("server.crt"),
                server.dir.path().join("server.key"),
            );
            std::fs::write(&cert_file, cert).expect("write the server certificate");
            std::fs::write(&key_file, key).expect("write the server key");
            std::fs::set_permissions(
                &key_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .expect("chmod the server key");
            if let Some(user) = run_as {
                ok(
                    Command::new("chown")
                        .arg(user)
                        .arg(&cert_file)
                        .arg(&key_file),
                    "chown",
                );
            }
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert_file.display(),
                key_file.display()
            ));
        }
        server.run(
            "pg_ctl",
            &[
                "-D",
                &server.data().display().to_string(),
                "-l",
                &server.dir.path().join("server.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        server
    }

    /// A libpq-style connection string for database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with an initdb.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

/// `apt-get install postgresql`, telling Debian's postgresql-common first not to create (and
/// start) a main cluster.
fn install() {
    assert!(
        is_root(),
        "PostgreSQL is not installed and this is not root: install Debian's `postgresql` package, or run the tests as root"
    );
    eprintln!("installing PostgreSQL from Debian's packages (first run only)...");
    let conf = Path::new("/etc/postgresql-common/createcluster.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).expect("create /etc/postgresql-common");
    let existing = std::fs::read_to_string(conf).unwrap_or_default();
    if !existing.contains("create_main_cluster = false") {
        std::fs::write(conf, format!("{existing}\ncreate_main_cluster = false\n"))
            .expect("write createcluster.conf");
    }
    ok(
        Command::new("apt-get").arg("update").arg("-qq"),
        "apt-get update",
    );
    ok(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "postgresql",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install postgresql",
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn ok(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}
