//! Components compiled once per blake3 hash: in memory, and on disk so a restart does not
//! recompile.
//!
//! Deserializing a precompiled artifact runs native code, so only artifacts this engine wrote
//! are ever loaded: each file carries a keyed blake3 MAC (key: `cache.key`, made on first use,
//! readable only by its owner) over the source hash and the artifact, checked before
//! `Component::deserialize`. Artifacts live under a folder named for the engine's
//! compatibility fingerprint, so a wasmtime upgrade or config change starts a fresh folder.
//!
//! The disk cache is bounded in bytes: after each write (and at start), the least recently
//! used artifacts (by modification time, which a load from disk renews) are removed until the
//! artifacts fit, so a node running for months does not fill its disk with compiled code.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"driftless-cwasm1";
/// Components kept compiled in memory; past this, the oldest-inserted is dropped (its disk
/// artifact stays).
const MEMORY_ENTRIES: usize = 512;

/// The blake3 hash of a component's bytes, as lowercase hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// How the cache has served requests since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Served from memory.
    pub memory_hits: u64,
    /// Loaded from a verified disk artifact.
    pub disk_hits: u64,
    /// Compiled from source.
    pub compiles: u64,
    /// Disk artifacts refused (bad MAC, corrupt, or incompatible) and replaced.
    pub rejected_artifacts: u64,
    /// Disk artifacts removed to keep the cache under its bound.
    pub evictions: u64,
    /// Their bytes.
    pub evicted_bytes: u64,
}

/// Why a component could not be compiled or cached.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// wasmtime refused the component.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The cache folder or key could not be used.
    #[error(
        "the compile cache at {path} cannot be used ({source}); check the data directory's permissions and free space"
    )]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Compiled components by source hash.
pub struct CompileCache {
    dir: Option<PathBuf>,
    key: [u8; 32],
    memory: Mutex<(HashMap<String, Component>, Vec<String>)>,
    /// The most bytes of artifacts kept on disk.
    max_bytes: u64,
    /// Held while the disk cache is trimmed, so two trims do not count one removal twice.
    trimming: Mutex<()>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
    rejected: AtomicU64,
    evictions: AtomicU64,
    evicted_bytes: AtomicU64,
}

struct FingerprintHasher(blake3::Hasher);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A stable hex fingerprint of everything that makes an artifact loadable by `engine`.
fn fingerprint(engine: &wasmtime::Engine) -> String {
    let mut h = FingerprintHasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finalize().to_hex()[..16].to_string()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn load_or_make_key(base: &Path) -> Result<[u8; 32], CacheError> {
    let path = base.join("cache.key");
    if let Ok(bytes) = fs::read(&path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| CacheError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    let tmp = base.join(format!("cache.key.{}", std::process::id()));
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io(&tmp))?;
        f.write_all(&key).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    // Another process may have won the race: use whatever is on disk now.
    let bytes = fs::read(&path).map_err(io(&path))?;
    Ok(<[u8; 32]>::try_from(bytes.as_slice()).unwrap_or(key))
}

impl CompileCache {
    /// A cache in memory only (`dir` = None) or also on disk under `dir`, holding at most
    /// `max_bytes` of artifacts there (the least recently used go first).
    pub fn new(
        engine: &wasmtime::Engine,
        dir: Option<&Path>,
        max_bytes: u64,
    ) -> Result<Self, CacheError> {
        let (dir, key) = match dir {
            None => (None, [0u8; 32]),
            Some(base) => {
                fs::create_dir_all(base).map_err(io(base))?;
                let key = load_or_make_key(base)?;
                let dir = base.join(fingerprint(engine));
                fs::create_dir_all(&dir).map_err(io(&dir))?;
                (Some(dir), key)
            }
        };
        let cache = CompileCache {
            dir,
            key,
            memory: Mutex::default(),
            max_bytes,
            trimming: Mutex::default(),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
        };
        cache.trim(None);
        Ok(cache)
    }

    /// Remove the least recently used artifacts (oldest modification time first) until the
    /// rest fit in the bound; `keep` (the artifact just written) goes last, and only if it
    /// alone is over the bound. Files another process removes meanwhile are skipped.
    fn trim(&self, keep: Option<&Path>) {
        let Some(dir) = &self.dir else {
            return;
        };
        let _one_at_a_time = self.trimming.lock().expect("trim lock");
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut artifacts: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = artifacts.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        // Oldest first; the artifact just written last of all.
        artifacts.sort_by_key(|(modified, _, path)| (Some(path.as_path()) == keep, *modified));
        for (_, len, path) in artifacts {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
                self.evictions.fetch_add(1, Ordering::Relaxed);
                self.evicted_bytes.fetch_add(len, Ordering::Relaxed);
                tracing::debug!(path = %path.display(), bytes = len, "compile cache: removed the least recently used artifact");
            }
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            rejected_artifacts: self.rejected.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            evicted_bytes: self.evicted_bytes.load(Ordering::Relaxed),
        }
    }

    /// The artifact path for a source hash, when the cache is on disk.
    pub fn artifact_path(&self, hash: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{hash}.cwasm")))
    }

    fn mac(&self, hash: &str, artifact: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(hash.as_bytes());
        h.update(artifact);
        h.finalize()
    }

    /// The compiled component for `bytes` (whose hash is `hash`), compiling at most once.
    pub fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        hash: &str,
        bytes: &[u8],
    ) -> Result<Component, CacheError> {
        if let Some(c) = self.memory.lock().expect("cache lock").0.get(hash) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(c.clone());
        }
        let component = match self.load(engine, hash) {
            Some(c) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                self.used(hash);
                c
            }
            None => {
                let c = Component::new(engine, bytes)
                    .map_err(|e| CacheError::Compile(format!("{e:#}")))?;
                self.compiles.fetch_add(1, Ordering::Relaxed);
                // The compiled component is good whether or not the disk copy is written.
                if let Err(e) = self.store(hash, &c) {
                    tracing::warn!(error = %e, "could not write the compile cache; the component is compiled again after a restart");
                }
                c
            }
        };
        let mut memory = self.memory.lock().expect("cache lock");
        let (map, order) = &mut *memory;
        if map.len() >= MEMORY_ENTRIES && !order.is_empty() {
            let oldest = order.remove(0);
            map.remove(&oldest);
        }
        if map.insert(hash.to_string(), component.clone()).is_none() {
            order.push(hash.to_string());
        }
        Ok(component)
    }

    /// Mark an artifact used now (its modification time), so trimming removes it last.
    fn used(&self, hash: &str) {
        if let Some(path) = self.artifact_path(hash)
            && let Ok(f) = fs::File::options().append(true).open(&path)
        {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    fn load(&self, engine: &wasmtime::Engine, hash: &str) -> Option<Component> {
        let path = self.artifact_path(hash)?;
        let file = fs::read(&path).ok()?;
        let verified = file.len() > MAGIC.len() + 32 && &file[..MAGIC.len()] == MAGIC && {
            let (mac, artifact) = file[MAGIC.len()..].split_at(32);
            blake3::Hash::from_bytes(mac.try_into().expect("32 bytes")) == self.mac(hash, artifact)
        };
        let loaded = verified
            .then(|| {
                let artifact = &file[MAGIC.len() + 32..];
                // SAFETY: the artifact carries a MAC under this node's private key over exactly
                // these bytes, so this engine (same fingerprint folder) wrote it; wasmtime
                // rechecks its own compatibility header and fails safely on a mismatch.
                unsafe { Component::deserialize(engine, artifact) }.ok()
            })
            .flatten();
        if loaded.is_none() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), "refusing a compile-cache artifact this engine did not write (or a corrupt one); recompiling");
            let _ = fs::remove_file(&path);
        }
        loaded
    }

    fn store(&self, hash: &str, component: &Component) -> Result<(), CacheError> {
        let Some(path) = self.artifact_path(hash) else {
            return Ok(());
        };
        let artifact = component
            .serialize()
            .map_err(|e| CacheError::Compile(format!("{e:#}")))?;
        // One temporary file per writer: two agents compiling the same component at once
        // must not truncate or rename each other's file.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!(
            "tmp{}.{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        {
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(MAGIC).map_err(io(&tmp))?;
            f.write_all(self.mac(hash, &artifact).as_bytes())
                .map_err(io(&tmp))?;
            f.write_all(&artifact).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        self.trim(Some(&path));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A small component of its own, numbered `i`.
    fn wat(i: usize) -> String {
        format!("(component (core module (func (export \"f{i}\") (result i32) i32.const {i})))")
    }

    fn set_age(cache: &CompileCache, hash: &str, secs: u64) {
        let f = fs::File::options()
            .append(true)
            .open(cache.artifact_path(hash).unwrap())
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    fn on_disk(cache: &CompileCache, hash: &str) -> bool {
        cache.artifact_path(hash).unwrap().exists()
    }

    #[test]
    fn the_disk_cache_stays_under_its_bound_dropping_the_least_recently_used() {
        let engine = wasmtime::Engine::default();
        let probe_dir = tempfile::tempdir().unwrap();
        let probe = CompileCache::new(&engine, Some(probe_dir.path()), u64::MAX).unwrap();
        probe
            .get_or_compile(&engine, "p", wat(9).as_bytes())
            .unwrap();
        let size = fs::metadata(probe.artifact_path("p").unwrap())
            .unwrap()
            .len();

        // Room for two artifacts and a half.
        let dir = tempfile::tempdir().unwrap();
        let bound = size * 5 / 2;
        let first = CompileCache::new(&engine, Some(dir.path()), bound).unwrap();
        first
            .get_or_compile(&engine, "a", wat(1).as_bytes())
            .unwrap();
        first
            .get_or_compile(&engine, "b", wat(2).as_bytes())
            .unwrap();
        assert!(on_disk(&first, "a") && on_disk(&first, "b"));
        assert_eq!(first.stats().evictions, 0);
        // `a` was written before `b`; then a restart loads `a` from disk, which marks it used.
        set_age(&first, "a", 100);
        set_age(&first, "b", 50);
        let second = CompileCache::new(&engine, Some(dir.path()), bound).unwrap();
        second
            .get_or_compile(&engine, "a", wat(1).as_bytes())
            .unwrap();
        assert_eq!(second.stats().disk_hits, 1);
        // A third artifact does not fit: the least recently used (`b`) goes.
        second
            .get_or_compile(&engine, "c", wat(3).as_bytes())
            .unwrap();
        assert!(on_disk(&second, "a") && on_disk(&second, "c"));
        assert!(
            !on_disk(&second, "b"),
            "the least recently used artifact was removed"
        );
        let stats = second.stats();
        assert_eq!(stats.evictions, 1);
        assert!(stats.evicted_bytes > 0 && stats.evicted_bytes <= size * 2);
        // What was removed compiles again when needed.
        second
            .get_or_compile(&engine, "b", wat(2).as_bytes())
            .unwrap();
        assert!(on_disk(&second, "b"));

        // A lower bound at start trims at once, down to what fits.
        let third = CompileCache::new(&engine, Some(dir.path()), size + size / 2).unwrap();
        let left = ["a", "b", "c"]
            .iter()
            .filter(|h| on_disk(&third, h))
            .count();
        assert_eq!(left, 1, "one artifact fits");
        assert_eq!(third.stats().evictions, 1);
    }
}
