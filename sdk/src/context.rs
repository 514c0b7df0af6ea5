//! The attempt a job runs in: who it is, its log, its progress and its checkpoints
//! (`driftless:job/context@1.0.0`).

use crate::sys;
use serde::{Serialize, de::DeserializeOwned};

pub use crate::bindings::driftless::job::context::{AttemptInfo, Level};

/// Which job and attempt this is.
pub fn info() -> AttemptInfo {
    sys::context_info()
}

/// Append a line to the job's log at `level`.
pub fn log(level: Level, message: &str) {
    sys::context_log(level, message)
}

/// Append an `info` line to the job's log.
pub fn info_log(message: &str) {
    log(Level::Info, message)
}

/// Append a `warn` line to the job's log.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Report progress (clamped to 0..=100) with a short message.
pub fn progress(percent: u8, message: &str) {
    sys::context_progress(percent.min(100), message)
}

/// Save `state` as this job's checkpoint (JSON). A later attempt can [`load_checkpoint`] it.
pub fn save_checkpoint<T: Serialize>(state: &T) -> Result<(), crate::Error> {
    let bytes = serde_json::to_vec(state).map_err(|e| {
        crate::Error::fatal(
            "bad-checkpoint",
            format!("the checkpoint could not be encoded as JSON: {e}"),
        )
    })?;
    sys::context_checkpoint_save(&bytes);
    Ok(())
}

/// The last checkpoint saved by any attempt of this job, decoded from JSON.
pub fn load_checkpoint<T: DeserializeOwned>() -> Result<Option<T>, crate::Error> {
    match sys::context_checkpoint_load() {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            crate::Error::fatal(
                "bad-checkpoint",
                format!("the saved checkpoint does not decode as this job's state ({e}); was it saved by another version of the job?"),
            )
        }),
    }
}
