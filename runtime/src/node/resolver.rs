//! The task resolver: task references (`name`, `name@current`, `name@7`) and the node's
//! resolution cache.
//!
//! A job that names a task is pinned at submit time to one immutable version (and so to one
//! component): its retries and its recovery after a crash run the same code whatever is
//! deployed meanwhile. Resolving `current` is cached per node; every deploy or rollback bumps
//! the store's task generation, and a node drops its cache when it sees a newer generation —
//! at once for changes made through this node, on the store's notification or within one
//! refresh (`loops.rs`) for changes made elsewhere.

use crate::store::{ResolvedTask, Store, StoreResult, now_ms};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Longest task name.
pub const MAX_NAME: usize = 64;

/// A parsed task reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The task's name.
    pub name: String,
    /// A pinned version; `None` means `current`.
    pub version: Option<u32>,
}

/// Why a task reference or name is not valid.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadTaskRef(pub String);

/// Check a task name: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), BadTaskRef> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(BadTaskRef(format!(
            "`{name}` is not a task name: use 1 to {MAX_NAME} characters of a-z, 0-9, `-`, `_` and `.`, starting with a letter or digit"
        )))
    }
}

impl TaskRef {
    /// Parse `name`, `name@current` or `name@7`.
    pub fn parse(text: &str) -> Result<TaskRef, BadTaskRef> {
        let (name, version) = match text.split_once('@') {
            None => (text, None),
            Some((name, "current")) => (name, None),
            Some((name, v)) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => (name, Some(n)),
                _ => {
                    return Err(BadTaskRef(format!(
                        "`{text}`: after `@` comes `current` or a version number (1, 2, ...)"
                    )));
                }
            },
        };
        check_name(name)?;
        Ok(TaskRef {
            name: name.to_string(),
            version,
        })
    }
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => write!(f, "{}@current", self.name),
        }
    }
}

#[derive(Default)]
struct Cache {
    /// The task generation the entries were resolved at (or after).
    generation: i64,
    current: HashMap<String, ResolvedTask>,
}

/// One node's cache of what each task's `current` resolves to.
pub struct Resolver {
    node: String,
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
}

impl Resolver {
    /// A resolver for `node` over `store`.
    pub fn new(node: String, store: Arc<dyn Store>) -> Resolver {
        Resolver {
            node,
            store,
            cache: Mutex::default(),
        }
    }

    /// The version and component a reference names now. Pinned versions are looked up in
    /// the store every time (they may have been unregistered); `current` is cached.
    pub async fn resolve(&self, r: &TaskRef) -> StoreResult<ResolvedTask> {
        if r.version.is_some() {
            return self.store.resolve_task(&r.name, r.version).await;
        }
        if let Some(hit) = self.lock().current.get(&r.name) {
            return Ok(hit.clone());
        }
        let resolved = self.store.resolve_task(&r.name, None).await?;
        self.remember(&resolved).await;
        Ok(resolved)
    }

    /// Cache a resolution of `current` (unless a newer generation was seen meanwhile) and
    /// report it to the store, where operators see what every node resolves.
    async fn remember(&self, resolved: &ResolvedTask) {
        {
            let mut cache = self.lock();
            if resolved.generation < cache.generation {
                return;
            }
            if resolved.generation > cache.generation {
                cache.current.clear();
                cache.generation = resolved.generation;
            }
            cache
                .current
                .insert(resolved.task.clone(), resolved.clone());
        }
        if let Err(e) = self
            .store
            .report_resolution(
                &self.node,
                &resolved.task,
                resolved.version,
                resolved.generation,
                now_ms(),
            )
            .await
        {
            tracing::warn!(task = %resolved.task, error = %e, "could not record this node's task resolution");
        }
    }

    /// Drop every cached resolution older than `generation` (a deploy or rollback happened),
    /// then resolve the dropped tasks again so this node's reported resolutions move on.
    pub async fn invalidate(&self, generation: i64) {
        let dropped: Vec<String> = {
            let mut cache = self.lock();
            if generation <= cache.generation {
                return;
            }
            cache.generation = generation;
            cache.current.drain().map(|(name, _)| name).collect()
        };
        for name in dropped {
            match self.store.resolve_task(&name, None).await {
                Ok(resolved) => self.remember(&resolved).await,
                Err(e) => tracing::debug!(task = %name, error = %e, "task no longer resolves"),
            }
        }
    }

    /// Drop `task`'s cached resolution, so the next resolve reads the store (its resolved
    /// version was found unregistered).
    pub fn forget(&self, task: &str) {
        self.lock().current.remove(task);
    }

    /// Compare the cache with the store's generation and invalidate when it moved (the
    /// backstop for changes made through other nodes).
    pub async fn refresh(&self) -> StoreResult<()> {
        let generation = self.store.task_generation().await?;
        self.invalidate(generation).await;
        Ok(())
    }

    /// What this node resolves each cached task's `current` to, and the cache's generation.
    pub fn snapshot(&self) -> (i64, Vec<ResolvedTask>) {
        let cache = self.lock();
        let mut v: Vec<ResolvedTask> = cache.current.values().cloned().collect();
        v.sort_by(|a, b| a.task.cmp(&b.task));
        (cache.generation, v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().expect("resolver cache lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(
            TaskRef::parse("resize").unwrap(),
            TaskRef {
                name: "resize".into(),
                version: None
            }
        );
        assert_eq!(TaskRef::parse("resize@current").unwrap().version, None);
        assert_eq!(TaskRef::parse("resize@7").unwrap().version, Some(7));
        assert_eq!(TaskRef::parse("resize@7").unwrap().to_string(), "resize@7");
        for bad in ["", "Resize", "-x", "a b", "x@0", "x@latest", "x@1.2"] {
            assert!(TaskRef::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(
            TaskRef::parse("x@latest")
                .unwrap_err()
                .0
                .contains("`current` or a version number")
        );
    }
}
