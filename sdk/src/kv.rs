//! The durable key-value store (`driftless:kv`), scoped to the job's task.
//!
//! - [`v1`]: kv 1.x, string values. `get`, `set`, `delete` and `list_keys` exist since 1.0;
//!   `get_many` and `increment` need a 1.1 host: check with
//!   `versioning::supports("driftless:kv", "^1.1")` and declare the import optional with
//!   [`crate::optional_imports!`] if the job should also run on a 1.0 host.
//! - [`v2`]: kv 2.x, byte values in named buckets, every call fallible.
//!
//! Both majors see the same data: kv 1.x keys live in the bucket named `""`.
//!
//! What a job can rely on: kv calls belong to the running attempt. Reads see the committed
//! data plus the attempt's own writes; writes take effect only if the attempt succeeds, in the
//! transaction that records its result, so a failed, lost, cancelled or retried attempt never
//! counts. If another job changed what this attempt read before it could commit, its writes
//! are discarded and the job runs again (not charged): `get` then `set`, and `increment`, are
//! atomic. Limits (key and value sizes) are [`crate::rules::kv`]'s. Under `cargo test`,
//! [`crate::testing::Host`] applies writes at once (one attempt at a time).

/// What went wrong in a kv call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The key (or bucket) is empty or too long.
    InvalidKey,
    /// The value is too large.
    TooLarge,
    /// The stored value is not what the call expects.
    WrongType,
    /// The store could not be reached; a retry may succeed.
    Unavailable,
}

/// A failed kv call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kv {:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        let code = match e.code {
            ErrorCode::InvalidKey => "kv-invalid-key",
            ErrorCode::TooLarge => "kv-too-large",
            ErrorCode::WrongType => "kv-wrong-type",
            ErrorCode::Unavailable => "kv-unavailable",
        };
        crate::Error {
            code: code.into(),
            message: e.message,
            retryable: e.code == ErrorCode::Unavailable,
        }
    }
}

macro_rules! convert_error {
    ($module:ident) => {
        impl From<crate::bindings::driftless::$module::store::Error> for Error {
            fn from(e: crate::bindings::driftless::$module::store::Error) -> Self {
                use crate::bindings::driftless::$module::store::ErrorCode as C;
                let code = match e.code {
                    C::InvalidKey => ErrorCode::InvalidKey,
                    C::TooLarge => ErrorCode::TooLarge,
                    C::WrongType => ErrorCode::WrongType,
                    C::Unavailable => ErrorCode::Unavailable,
                };
                Error {
                    code,
                    message: e.message,
                }
            }
        }
    };
}
convert_error!(kv1_1_0);
convert_error!(kv2_0_0);

/// kv 1.x (`driftless:kv/store@1.1.0`): string values in one keyspace.
pub mod v1 {
    use super::Error;
    use crate::sys;

    /// The value stored under `key`, if any (since 1.0).
    pub fn get(key: &str) -> Option<String> {
        sys::kv1_get(key)
    }

    /// Store `value` under `key` (since 1.0).
    pub fn set(key: &str, value: &str) -> Result<(), Error> {
        sys::kv1_set(key, value)
    }

    /// Remove `key`; true if it existed (since 1.0).
    pub fn delete(key: &str) -> bool {
        sys::kv1_delete(key)
    }

    /// Keys starting with `prefix`, in byte order (since 1.0).
    pub fn list_keys(prefix: &str) -> Vec<String> {
        sys::kv1_list_keys(prefix)
    }

    /// Several values at once, in the order asked (needs a kv 1.1 host).
    pub fn get_many(keys: &[&str]) -> Vec<Option<String>> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        sys::kv1_get_many(&keys)
    }

    /// Atomically add `delta` to the integer under `key` and return it (needs a kv 1.1 host).
    pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
        sys::kv1_increment(key, delta)
    }
}

/// kv 2.x (`driftless:kv/store@2.0.0`): byte values in named buckets.
pub mod v2 {
    use super::Error;
    use crate::sys;

    /// The value stored under `key` in `bucket`, if any.
    pub fn get(bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        sys::kv2_get(bucket, key)
    }

    /// Store `value` under `key` in `bucket`.
    pub fn set(bucket: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        sys::kv2_set(bucket, key, value)
    }

    /// Remove `key` from `bucket`; true if it existed.
    pub fn delete(bucket: &str, key: &str) -> Result<bool, Error> {
        sys::kv2_delete(bucket, key)
    }

    /// Keys in `bucket` starting with `prefix`, in byte order.
    pub fn list_keys(bucket: &str, prefix: &str) -> Result<Vec<String>, Error> {
        sys::kv2_list_keys(bucket, prefix)
    }

    /// Atomically add `delta` to the integer under `key` in `bucket` and return it.
    pub fn increment(bucket: &str, key: &str, delta: i64) -> Result<i64, Error> {
        sys::kv2_increment(bucket, key, delta)
    }
}
