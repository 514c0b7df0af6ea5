//! `driftless:job/context@1.0.0`: which attempt this is, log lines, progress, checkpoints.

use super::bindings::driftless::job::context::{self, AttemptInfo, Level};
use super::error::ServiceError;
use super::joblog::Source;
use super::state::HostState;
use wasmtime::component::{HasSelf, Linker};

/// Largest checkpoint a job may save.
pub const MAX_CHECKPOINT_BYTES: usize = 1 << 20;

impl context::Host for HostState {
    async fn info(&mut self) -> wasmtime::Result<AttemptInfo> {
        Ok(AttemptInfo {
            job_id: self.job.job_id.clone(),
            attempt: self.job.attempt,
            max_attempts: self.job.max_attempts,
            task: self.job.task.clone(),
        })
    }

    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log
            .append(Source::Context, format!("[{level}] {message}\n").as_bytes());
        Ok(())
    }

    async fn progress(&mut self, percent: u8, message: String) -> wasmtime::Result<()> {
        self.services
            .progress(percent.min(100), &message)
            .await
            .map_err(wasmtime::Error::new)
    }

    async fn checkpoint_save(&mut self, data: Vec<u8>) -> wasmtime::Result<()> {
        if data.len() > MAX_CHECKPOINT_BYTES {
            return Err(wasmtime::Error::new(ServiceError(format!(
                "the job saved a checkpoint of {} bytes; the limit is {MAX_CHECKPOINT_BYTES} bytes: keep checkpoints small (store bulk data in kv)",
                data.len()
            ))));
        }
        self.services
            .checkpoint_save(&data)
            .await
            .map_err(wasmtime::Error::new)
    }

    async fn checkpoint_load(&mut self) -> wasmtime::Result<Option<Vec<u8>>> {
        self.services
            .checkpoint_load()
            .await
            .map_err(wasmtime::Error::new)
    }
}

/// Link `driftless:job/context@1.0.0`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    context::add_to_linker::<T, HasSelf<HostState>>(linker, get)
}
