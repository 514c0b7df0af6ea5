//! The task-version rules: versions are numbered after the task's highest and never reused,
//! the same bytes deployed again change nothing, `current` moves only by a deploy or a
//! rollback (each audited), the current version and versions that queued or running jobs pin
//! cannot be unregistered, and an unregistered version is never pinned again.

use crate::store::{StoreError, StoreResult};

/// An audited change of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new version became current.
    Deploy,
    /// `current` moved back to an earlier version.
    Rollback,
    /// A version was unregistered.
    DeleteVersion,
}

impl Action {
    /// The name stored in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::DeleteVersion => "delete-version",
        }
    }
}

/// A version's row as the rules need it: `None` when there is no such version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRow {
    /// Registered.
    Registered,
    /// Unregistered (its number is not reused).
    Unregistered,
}

/// What a deploy finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployFacts {
    /// `current` before, if the task exists.
    pub current: Option<u32>,
    /// A registered version with the same component, if any (the newest).
    pub same_bytes: Option<u32>,
    /// The highest version number ever given to the task (unregistered ones included).
    pub highest: Option<u32>,
}

/// What a deploy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    /// The bytes are already a registered version: nothing changes.
    Unchanged {
        /// That version.
        version: u32,
    },
    /// Record `version` and make it current.
    Record {
        /// The new version's number.
        version: u32,
    },
}

/// The deploy rule.
pub fn deploy(f: DeployFacts) -> Deploy {
    match f.same_bytes {
        Some(version) => Deploy::Unchanged { version },
        None => Deploy::Record {
            version: f.highest.unwrap_or(0) + 1,
        },
    }
}

/// The rollback rule: the version `current` moves to, from the task's `current`, the
/// requested version (with its row) and the newest registered version below `current`.
pub fn rollback(
    task: &str,
    current: Option<u32>,
    requested: Option<(u32, Option<VersionRow>)>,
    below: Option<u32>,
) -> StoreResult<u32> {
    let current = current.ok_or_else(|| no_task(task))?;
    match requested {
        Some((v, None)) => Err(no_version(task, v)),
        Some((v, Some(VersionRow::Unregistered))) => Err(StoreError::Conflict(format!(
            "version {v} of task {task} was unregistered; deploy its component again to get a new version"
        ))),
        Some((v, Some(VersionRow::Registered))) if v == current => {
            Err(StoreError::Conflict(format!(
                "version {v} of task {task} is already current; nothing to roll back"
            )))
        }
        Some((v, Some(VersionRow::Registered))) => Ok(v),
        None => below.ok_or_else(|| {
            StoreError::Conflict(format!(
                "task {task} has no registered version below its current {current}; name one with `to`"
            ))
        }),
    }
}

/// The first half of the unregister rule, before pins are counted: the version must be a
/// registered version other than `current`.
pub fn may_unregister(
    task: &str,
    version: u32,
    current: Option<u32>,
    row: Option<VersionRow>,
) -> StoreResult<()> {
    let current = current.ok_or_else(|| no_task(task))?;
    match row {
        None | Some(VersionRow::Unregistered) => Err(no_version(task, version)),
        Some(VersionRow::Registered) if version == current => Err(StoreError::Conflict(format!(
            "version {version} is the current version of task {task}; deploy or roll back to another version first"
        ))),
        Some(VersionRow::Registered) => Ok(()),
    }
}

/// Resolving `task@version` (`None`: `current`) that found `row`.
pub fn resolved(
    task: &str,
    version: Option<u32>,
    row: Option<(u32, VersionRow)>,
) -> StoreResult<u32> {
    match (row, version) {
        (None, None) => Err(no_task(task)),
        (None, Some(v)) => Err(no_version(task, v)),
        (Some((v, VersionRow::Unregistered)), _) => Err(gone(task, v)),
        (Some((v, VersionRow::Registered)), _) => Ok(v),
    }
}

/// A job pinned to a version that is not registered (never, or no longer).
pub fn gone(task: &str, version: u32) -> StoreError {
    StoreError::TaskVersionGone {
        task: task.to_string(),
        version,
    }
}

/// No such task.
pub fn no_task(task: &str) -> StoreError {
    StoreError::NotFound(format!("task {task}"))
}

fn no_version(task: &str, version: u32) -> StoreError {
    StoreError::NotFound(format!("version {version} of task {task}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_after_the_highest_and_same_bytes_change_nothing() {
        let f = DeployFacts {
            current: Some(2),
            same_bytes: None,
            highest: Some(3),
        };
        assert_eq!(deploy(f), Deploy::Record { version: 4 });
        let f = DeployFacts {
            same_bytes: Some(1),
            ..f
        };
        assert_eq!(deploy(f), Deploy::Unchanged { version: 1 });
    }

    #[test]
    fn rollback_targets_and_refusals() {
        assert_eq!(rollback("t", Some(3), None, Some(2)), Ok(2));
        assert!(matches!(
            rollback("t", Some(1), None, None),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            rollback("t", Some(3), Some((3, Some(VersionRow::Registered))), None),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            rollback("t", None, None, None),
            Err(StoreError::NotFound(_))
        ));
    }
}
