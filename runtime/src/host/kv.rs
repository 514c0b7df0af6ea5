//! `driftless:kv` 1.0.0, 1.1.0 and 2.0.0 over one [`KvBackend`](super::services::KvBackend).
//!
//! Validation and error mapping live here once; each version's trait impl only adapts types.
//! 1.x keys live in the bucket named `""`, so both majors see the same data.

use super::bindings::driftless::{kv1_0_0, kv1_1_0, kv2_0_0};
use super::error::ServiceError;
use super::services::KvBackendError;
use super::state::HostState;
use wasmtime::component::{HasSelf, Linker};

use driftless_rules::kv::{self as rules, Refused};
pub use driftless_rules::kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// The 1.x keyspace inside the shared store.
const V1_BUCKET: &str = "";

#[derive(Debug, Clone, Copy)]
enum Code {
    InvalidKey,
    TooLarge,
    WrongType,
    Unavailable,
}

struct Failure {
    code: Code,
    message: String,
}

impl From<KvBackendError> for Failure {
    fn from(e: KvBackendError) -> Self {
        let code = match e {
            KvBackendError::NotANumber(_) | KvBackendError::Overflow(_) => Code::WrongType,
            KvBackendError::Unavailable(_) => Code::Unavailable,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn check(bucket: &str, key: &str, value: Option<&[u8]>) -> Result<(), Failure> {
    rules::check(bucket, key, value).map_err(|e| Failure {
        code: match e {
            Refused::TooLarge(_) => Code::TooLarge,
            _ => Code::InvalidKey,
        },
        message: e.to_string(),
    })
}

/// A backend failure in a call that has no error channel (1.x `get`) ends the attempt.
fn trap(e: KvBackendError) -> wasmtime::Error {
    wasmtime::Error::new(ServiceError(e.to_string()))
}

impl HostState {
    async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        check(bucket, key, None)?;
        Ok(self.kv.get(bucket, key).await?)
    }

    async fn kv_set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), Failure> {
        check(bucket, key, Some(value))?;
        self.kv.set(bucket, key, value);
        Ok(())
    }

    async fn kv_delete(&self, bucket: &str, key: &str) -> Result<bool, Failure> {
        check(bucket, key, None)?;
        Ok(self.kv.delete(bucket, key).await?)
    }

    async fn kv_list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, KvBackendError> {
        self.kv.list_keys(bucket, prefix).await
    }

    async fn kv_increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, Failure> {
        check(bucket, key, None)?;
        Ok(self.kv.increment(bucket, key, delta).await?)
    }

    /// 1.x `get`: no error channel, so an invalid key reads as absent and an unavailable
    /// backend ends the attempt.
    async fn kv1_get(&self, key: &str) -> wasmtime::Result<Option<String>> {
        if check(V1_BUCKET, key, None).is_err() {
            return Ok(None);
        }
        let value = self.kv.get(V1_BUCKET, key).await.map_err(trap)?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn kv1_delete(&self, key: &str) -> wasmtime::Result<bool> {
        match self.kv_delete(V1_BUCKET, key).await {
            Ok(existed) => Ok(existed),
            Err(f) if matches!(f.code, Code::InvalidKey) => Ok(false),
            Err(f) => Err(wasmtime::Error::new(ServiceError(f.message))),
        }
    }
}

macro_rules! error_conversion {
    ($($module:ident),*) => {$(
        impl From<Failure> for $module::store::Error {
            fn from(f: Failure) -> Self {
                use $module::store::ErrorCode as C;
                let code = match f.code {
                    Code::InvalidKey => C::InvalidKey,
                    Code::TooLarge => C::TooLarge,
                    Code::WrongType => C::WrongType,
                    Code::Unavailable => C::Unavailable,
                };
                $module::store::Error { code, message: f.message }
            }
        }
    )*};
}
error_conversion!(kv1_0_0, kv1_1_0, kv2_0_0);

/// The four functions kv 1.0 and 1.1 share, for the trait of either version.
macro_rules! kv1_common {
    ($module:ident) => {
        async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
            self.kv1_get(&key).await
        }

        async fn set(
            &mut self,
            key: String,
            value: String,
        ) -> wasmtime::Result<Result<(), $module::store::Error>> {
            Ok(self
                .kv_set(V1_BUCKET, &key, value.as_bytes())
                .await
                .map_err(Into::into))
        }

        async fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
            self.kv1_delete(&key).await
        }

        async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
            self.kv_list(V1_BUCKET, &prefix).await.map_err(trap)
        }
    };
}

impl kv1_0_0::store::Host for HostState {
    kv1_common!(kv1_0_0);
}

impl kv1_1_0::store::Host for HostState {
    kv1_common!(kv1_1_0);

    async fn get_many(&mut self, keys: Vec<String>) -> wasmtime::Result<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.kv1_get(&key).await?);
        }
        Ok(out)
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, kv1_1_0::store::Error>> {
        Ok(self
            .kv_increment(V1_BUCKET, &key, delta)
            .await
            .map_err(Into::into))
    }
}

impl kv2_0_0::store::Host for HostState {
    async fn get(
        &mut self,
        bucket: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv2_0_0::store::Error>> {
        Ok(self.kv_get(&bucket, &key).await.map_err(Into::into))
    }

    async fn set(
        &mut self,
        bucket: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv2_0_0::store::Error>> {
        Ok(self.kv_set(&bucket, &key, &value).await.map_err(Into::into))
    }

    async fn delete(
        &mut self,
        bucket: String,
        key: String,
    ) -> wasmtime::Result<Result<bool, kv2_0_0::store::Error>> {
        Ok(self.kv_delete(&bucket, &key).await.map_err(Into::into))
    }

    async fn list_keys(
        &mut self,
        bucket: String,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, kv2_0_0::store::Error>> {
        Ok(self
            .kv_list(&bucket, &prefix)
            .await
            .map_err(|e| Failure::from(e).into()))
    }

    async fn increment(
        &mut self,
        bucket: String,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, kv2_0_0::store::Error>> {
        Ok(self
            .kv_increment(&bucket, &key, delta)
            .await
            .map_err(Into::into))
    }
}

/// Link `driftless:kv/store@1.0.0`.
pub fn add_v1_0<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    kv1_0_0::store::add_to_linker::<T, HasSelf<HostState>>(linker, get)
}

/// Link `driftless:kv/store@1.1.0`.
pub fn add_v1_1<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    kv1_1_0::store::add_to_linker::<T, HasSelf<HostState>>(linker, get)
}

/// Link `driftless:kv/store@2.0.0`.
pub fn add_v2_0<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    kv2_0_0::store::add_to_linker::<T, HasSelf<HostState>>(linker, get)
}
