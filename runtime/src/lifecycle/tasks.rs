//! The task-version rules: versions are numbered after the task's highest and never reused,
//! the same bytes deployed again change nothing, `current` moves only by a deploy or a
//! rollback (each audited), the current version and versions that queued or running jobs pin
//! cannot be unregistered, and an unregistered version is never pinned again.

/// Why a task rule refuses a change; the store reports it as its own error (not found, a
/// conflict, or a version that is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such task or version.
    NotFound(String),
    /// The change contradicts the task's state.
    Conflict(String),
    /// A job would be pinned to a version that is not registered.
    VersionGone {
        /// The task.
        task: String,
        /// The version.
        version: u32,
    },
}

type Ruled<T> = Result<T, Refusal>;

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
) -> Ruled<u32> {
    let current = current.ok_or_else(|| no_task(task))?;
    match requested {
        Some((v, None)) => Err(no_version(task, v)),
        Some((v, Some(VersionRow::Unregistered))) => Err(Refusal::Conflict(format!(
            "version {v} of task {task} was unregistered; deploy its component again to get a new version"
        ))),
        Some((v, Some(VersionRow::Registered))) if v == current => {
            Err(Refusal::Conflict(format!(
                "version {v} of task {task} is already current; nothing to roll back"
            )))
        }
        Some((v, Some(VersionRow::Registered))) => Ok(v),
        None => below.ok_or_else(|| {
            Refusal::Conflict(format!(
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
) -> Ruled<()> {
    let current = current.ok_or_else(|| no_task(task))?;
    match row {
        None | Some(VersionRow::Unregistered) => Err(no_version(task, version)),
        Some(VersionRow::Registered) if version == current => Err(Refusal::Conflict(format!(
            "version {version} is the current version of task {task}; deploy or roll back to another version first"
        ))),
        Some(VersionRow::Registered) => Ok(()),
    }
}

/// Resolving `task@version` (`None`: `current`) that found `row`.
pub fn resolved(task: &str, version: Option<u32>, row: Option<(u32, VersionRow)>) -> Ruled<u32> {
    match (row, version) {
        (None, None) => Err(no_task(task)),
        (None, Some(v)) => Err(no_version(task, v)),
        (Some((v, VersionRow::Unregistered)), _) => Err(gone(task, v)),
        (Some((v, VersionRow::Registered)), _) => Ok(v),
    }
}

/// A job pinned to a version that is not registered (never, or no longer).
pub fn gone(task: &str, version: u32) -> Refusal {
    Refusal::VersionGone {
        task: task.to_string(),
        version,
    }
}

/// No such task.
pub fn no_task(task: &str) -> Refusal {
    Refusal::NotFound(format!("task {task}"))
}

fn no_version(task: &str, version: u32) -> Refusal {
    Refusal::NotFound(format!("version {version} of task {task}"))
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
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            rollback("t", Some(3), Some((3, Some(VersionRow::Registered))), None),
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            rollback("t", None, None, None),
            Err(Refusal::NotFound(_))
        ));
    }
}
