//! The one place that decides where host calls go: to the real host imports inside a
//! component, or to [`crate::testing`]'s in-memory host when job code runs natively in
//! `cargo test`.

use crate::bindings::driftless::job::context::{AttemptInfo, Level};
use crate::bindings::driftless::versioning::versioning::DeclaredImport;
use crate::kv::Error as KvError;

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::driftless::job::context;
    use crate::bindings::driftless::kv1_1_0::store as kv1;
    use crate::bindings::driftless::kv2_0_0::store as kv2;
    use crate::bindings::driftless::versioning::versioning;

    pub fn context_info() -> AttemptInfo {
        context::info()
    }
    pub fn context_log(level: Level, message: &str) {
        context::log(level, message)
    }
    pub fn context_progress(percent: u8, message: &str) {
        context::progress(percent, message)
    }
    pub fn context_checkpoint_save(data: &[u8]) {
        context::checkpoint_save(data)
    }
    pub fn context_checkpoint_load() -> Option<Vec<u8>> {
        context::checkpoint_load()
    }
    pub fn kv1_get(key: &str) -> Option<String> {
        kv1::get(key)
    }
    pub fn kv1_set(key: &str, value: &str) -> Result<(), KvError> {
        Ok(kv1::set(key, value)?)
    }
    pub fn kv1_delete(key: &str) -> bool {
        kv1::delete(key)
    }
    pub fn kv1_list_keys(prefix: &str) -> Vec<String> {
        kv1::list_keys(prefix)
    }
    pub fn kv1_get_many(keys: &[String]) -> Vec<Option<String>> {
        kv1::get_many(keys)
    }
    pub fn kv1_increment(key: &str, delta: i64) -> Result<i64, KvError> {
        Ok(kv1::increment(key, delta)?)
    }
    pub fn kv2_get(bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(kv2::get(bucket, key)?)
    }
    pub fn kv2_set(bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        Ok(kv2::set(bucket, key, value)?)
    }
    pub fn kv2_delete(bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(kv2::delete(bucket, key)?)
    }
    pub fn kv2_list_keys(bucket: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        Ok(kv2::list_keys(bucket, prefix)?)
    }
    pub fn kv2_increment(bucket: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        Ok(kv2::increment(bucket, key, delta)?)
    }
    pub fn versioning_enabled() -> bool {
        std::env::var(crate::versioning::ENV_VAR).is_ok_and(|v| v == "1")
    }
    pub fn versioning_level() -> u32 {
        versioning::level()
    }
    pub fn versioning_catalog() -> Vec<(String, String)> {
        versioning::catalog()
            .into_iter()
            .map(|m| (m.name, m.version))
            .collect()
    }
    pub fn versioning_provided(package: &str) -> Vec<String> {
        versioning::provided(package)
    }
    pub fn versioning_declared() -> Vec<DeclaredImport> {
        versioning::declared()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use crate::testing::with_host;

    pub fn context_info() -> AttemptInfo {
        with_host(|h| h.info())
    }
    pub fn context_log(level: Level, message: &str) {
        with_host(|h| h.log(level, message))
    }
    pub fn context_progress(percent: u8, message: &str) {
        with_host(|h| h.progress(percent, message))
    }
    pub fn context_checkpoint_save(data: &[u8]) {
        with_host(|h| h.checkpoint = Some(data.to_vec()))
    }
    pub fn context_checkpoint_load() -> Option<Vec<u8>> {
        with_host(|h| h.checkpoint.clone())
    }
    pub fn kv1_get(key: &str) -> Option<String> {
        with_host(|h| {
            h.kv1("get")
                .get("", key)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        })
    }
    pub fn kv1_set(key: &str, value: &str) -> Result<(), KvError> {
        with_host(|h| h.kv1("set").set("", key, value.as_bytes()))
    }
    pub fn kv1_delete(key: &str) -> bool {
        with_host(|h| h.kv1("delete").delete("", key))
    }
    pub fn kv1_list_keys(prefix: &str) -> Vec<String> {
        with_host(|h| h.kv1("list-keys").list_keys("", prefix))
    }
    pub fn kv1_get_many(keys: &[String]) -> Vec<Option<String>> {
        with_host(|h| {
            let kv = h.kv1_1("get-many");
            keys.iter()
                .map(|k| {
                    kv.get("", k)
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                })
                .collect()
        })
    }
    pub fn kv1_increment(key: &str, delta: i64) -> Result<i64, KvError> {
        with_host(|h| h.kv1_1("increment").increment("", key, delta))
    }
    pub fn kv2_get(bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        with_host(|h| Ok(h.kv2("get").get(bucket, key)))
    }
    pub fn kv2_set(bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        with_host(|h| h.kv2("set").set(bucket, key, value))
    }
    pub fn kv2_delete(bucket: &str, key: &str) -> Result<bool, KvError> {
        with_host(|h| Ok(h.kv2("delete").delete(bucket, key)))
    }
    pub fn kv2_list_keys(bucket: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        with_host(|h| Ok(h.kv2("list-keys").list_keys(bucket, prefix)))
    }
    pub fn kv2_increment(bucket: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        with_host(|h| h.kv2("increment").increment(bucket, key, delta))
    }
    pub fn versioning_enabled() -> bool {
        with_host(|h| h.versioning_enabled)
    }
    pub fn versioning_level() -> u32 {
        1
    }
    pub fn versioning_catalog() -> Vec<(String, String)> {
        with_host(|h| {
            h.catalog
                .iter()
                .map(|(p, v)| (p.clone(), v.to_string()))
                .collect()
        })
    }
    pub fn versioning_provided(package: &str) -> Vec<String> {
        with_host(|h| {
            h.catalog
                .iter()
                .filter(|(p, _)| p == package)
                .map(|(_, v)| v.to_string())
                .collect()
        })
    }
    pub fn versioning_declared() -> Vec<DeclaredImport> {
        Vec::new()
    }
}

pub use imp::*;
