//! Run job code natively under `cargo test`, against an in-memory host.
//!
//! Inside a component, the SDK's calls go to the real host. Compiled for your machine (as
//! `cargo test` does), they go to the [`Host`] installed by [`Host::run`], whose catalog you
//! choose, so both sides of a version check are easy to test:
//!
//! ```
//! use driftless_sdk::{kv, testing::Host, versioning};
//!
//! let old_host = Host::new().provide("driftless:kv", "1.0.0");
//! let answer = old_host.run(|| versioning::supports("driftless:kv", "^1.1"));
//! assert!(!answer);
//!
//! let host = Host::new();
//! host.run(|| kv::v1::increment("n", 2).unwrap());
//! assert_eq!(host.kv_get("", "n").as_deref(), Some(&b"2"[..]));
//! ```
//!
//! Calling a function the catalog lacks panics with the message the real host's trap carries,
//! so a job that forgets to check [`crate::versioning`] fails its test the way it would fail
//! in production.

use crate::bindings::driftless::job::context::{AttemptInfo, Level};
use crate::kv::{Error as KvError, ErrorCode};
use driftless_rules::{kv as rules, version};
use semver::Version;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The modules the SDK's bindings were generated against: what [`Host::new`] provides.
pub const SDK_CATALOG: &[(&str, &str)] = &[
    ("driftless:job", "1.0.0"),
    ("driftless:versioning", "1.0.0"),
    ("driftless:kv", "1.1.0"),
    ("driftless:kv", "2.0.0"),
];

/// An in-memory host for native tests. Cloning shares the state.
#[derive(Clone, Default)]
pub struct Host {
    state: Rc<RefCell<HostState>>,
}

/// A line the job logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Severity, lowercase (`info`, `warn`, ...).
    pub level: &'static str,
    /// The message.
    pub message: String,
}

#[doc(hidden)]
#[derive(Default)]
pub struct HostState {
    pub(crate) catalog: Vec<(String, Version)>,
    pub(crate) versioning_enabled: bool,
    pub(crate) checkpoint: Option<Vec<u8>>,
    kv: Kv,
    logs: Vec<LogLine>,
    progress: Option<(u8, String)>,
    info: Option<AttemptInfo>,
    restricted: bool,
}

impl Host {
    /// A host that provides [`SDK_CATALOG`], with an empty kv store.
    pub fn new() -> Self {
        let host = Host::default();
        {
            let mut s = host.state.borrow_mut();
            s.versioning_enabled = true;
            s.catalog = SDK_CATALOG
                .iter()
                .map(|(p, v)| (p.to_string(), Version::parse(v).expect("valid")))
                .collect();
        }
        host
    }

    /// Provide exactly these versions of `package` (the first call per package replaces the
    /// default versions of it; later calls add more): `Host::new().provide("driftless:kv", "1.0.0")`
    /// pretends to be a host that has only kv 1.0.
    pub fn provide(self, package: &str, version: &str) -> Self {
        {
            let mut s = self.state.borrow_mut();
            let version =
                Version::parse(version).expect("provide() takes a semver version such as 1.0.0");
            if !s.restricted {
                s.catalog.retain(|(p, _)| p != package);
            }
            s.restricted = true;
            s.catalog.push((package.to_string(), version));
        }
        self
    }

    /// Pretend the host is not versioning-aware (`WORKFLOW_VERSIONING` unset).
    pub fn without_versioning(self) -> Self {
        self.state.borrow_mut().versioning_enabled = false;
        self
    }

    /// Put `value` under `key` in `bucket` (`""` is kv 1.x's keyspace) before the job runs.
    pub fn with_kv(self, bucket: &str, key: &str, value: &[u8]) -> Self {
        self.state
            .borrow_mut()
            .kv
            .0
            .insert((bucket.to_string(), key.to_string()), value.to_vec());
        self
    }

    /// Run `f` with this host installed for the calling thread.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = None);
            }
        }
        let _reset = Reset;
        f()
    }

    /// Run a job function the way the runtime does: JSON in, JSON out.
    pub fn run_json<I, O, E>(
        &self,
        job: impl FnOnce(I) -> Result<O, E>,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, crate::Error>
    where
        I: serde::de::DeserializeOwned,
        O: serde::Serialize,
        E: Into<crate::Error>,
    {
        let bytes = serde_json::to_vec(&input).expect("a JSON value encodes");
        let out = self
            .run(|| crate::__private::run_json(&bytes, job))
            .map_err(crate::Error::from)?;
        Ok(serde_json::from_slice(&out).expect("run_json writes JSON"))
    }

    /// The value under `key` in `bucket`, after the job ran.
    pub fn kv_get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().kv.get(bucket, key)
    }

    /// Everything the job logged.
    pub fn logs(&self) -> Vec<LogLine> {
        self.state.borrow().logs.clone()
    }

    /// The last progress the job reported.
    pub fn last_progress(&self) -> Option<(u8, String)> {
        self.state.borrow().progress.clone()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Host>> = const { RefCell::new(None) };
}

pub(crate) fn with_host<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    let host = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!("driftless-sdk: a host call outside a component needs a test host; wrap the call in `driftless_sdk::testing::Host::new().run(|| ...)`")
    });
    let mut state = host.state.borrow_mut();
    f(&mut state)
}

impl HostState {
    pub(crate) fn info(&self) -> AttemptInfo {
        self.info.clone().unwrap_or(AttemptInfo {
            job_id: "test-job".into(),
            attempt: 1,
            max_attempts: 1,
            task: None,
        })
    }

    pub(crate) fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.logs.push(LogLine {
            level,
            message: message.to_string(),
        });
    }

    pub(crate) fn progress(&mut self, percent: u8, message: &str) {
        self.progress = Some((percent, message.to_string()));
    }

    fn require(&mut self, package: &str, min: &str, function: &str) -> &mut Kv {
        let min = Version::parse(min).expect("valid");
        let ok = self
            .catalog
            .iter()
            .any(|(p, v)| p == package && version::serves(v, &min));
        if !ok {
            let provided: Vec<String> = self
                .catalog
                .iter()
                .filter(|(p, _)| p == package)
                .map(|(_, v)| v.to_string())
                .collect();
            panic!(
                "optional import not provided: `{package}/store@{min}#{function}` is not available on this host (it provides {package} {}); check `versioning::supports` before calling it",
                if provided.is_empty() {
                    "no version".to_string()
                } else {
                    provided.join(", ")
                }
            );
        }
        &mut self.kv
    }

    pub(crate) fn kv1(&mut self, function: &str) -> &mut Kv {
        self.require("driftless:kv", "1.0.0", function)
    }

    pub(crate) fn kv1_1(&mut self, function: &str) -> &mut Kv {
        self.require("driftless:kv", "1.1.0", function)
    }

    pub(crate) fn kv2(&mut self, function: &str) -> &mut Kv {
        self.require("driftless:kv", "2.0.0", function)
    }
}

/// A refusal of the shared kv rules, as the kv interface reports it.
fn refused(e: rules::Refused) -> KvError {
    let code = match e {
        rules::Refused::InvalidKey(_) => ErrorCode::InvalidKey,
        rules::Refused::TooLarge(_) => ErrorCode::TooLarge,
        rules::Refused::NotANumber(_) | rules::Refused::Overflow(_) => ErrorCode::WrongType,
    };
    KvError {
        code,
        message: e.to_string(),
    }
}

#[doc(hidden)]
#[derive(Default)]
pub struct Kv(BTreeMap<(String, String), Vec<u8>>);

impl Kv {
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.0.get(&(bucket.to_string(), key.to_string())).cloned()
    }

    pub(crate) fn set(&mut self, bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        rules::check(bucket, key, Some(value)).map_err(refused)?;
        self.0
            .insert((bucket.to_string(), key.to_string()), value.to_vec());
        Ok(())
    }

    pub(crate) fn delete(&mut self, bucket: &str, key: &str) -> bool {
        self.0
            .remove(&(bucket.to_string(), key.to_string()))
            .is_some()
    }

    pub(crate) fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.0
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }

    pub(crate) fn increment(
        &mut self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        rules::check(bucket, key, None).map_err(refused)?;
        let next =
            rules::add_to_counter(key, self.get(bucket, key).as_deref(), delta).map_err(refused)?;
        self.set(bucket, key, next.to_string().as_bytes())?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::Host;
    use crate::kv::{self, ErrorCode};
    use driftless_rules::kv::MAX_VALUE_BYTES;

    #[test]
    fn the_test_host_refuses_what_the_runtime_refuses() {
        let host = Host::new();
        host.run(|| {
            let big = "x".repeat(MAX_VALUE_BYTES + 1);
            let e = kv::v1::set("k", &big).unwrap_err();
            assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
            let e = kv::v2::set("b", "", b"v").unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidKey, "{}", e.message);
            kv::v1::set("n", &i64::MAX.to_string()).unwrap();
            let e = kv::v1::increment("n", 1).unwrap_err();
            assert_eq!(e.code, ErrorCode::WrongType);
            assert!(e.message.contains("overflow"), "{}", e.message);
            kv::v1::set("word", "seven").unwrap();
            let e = kv::v2::increment("", "word", 1).unwrap_err();
            assert!(e.message.contains("not a decimal integer"), "{}", e.message);
        });
        assert_eq!(
            host.kv_get("", "n"),
            Some(i64::MAX.to_string().into_bytes())
        );
    }

    #[test]
    #[should_panic(expected = "driftless:kv/store@1.1.0#increment` is not available")]
    fn a_call_the_catalog_lacks_fails_like_the_runtimes_trap() {
        Host::new()
            .provide("driftless:kv", "1.0.0")
            .run(|| kv::v1::increment("n", 1).ok());
    }
}
