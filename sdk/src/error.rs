use crate::bindings::driftless::job::types::JobError;

/// How a job fails: a stable code, a sentence for the reader, and whether a retry could help.
///
/// The runtime shows `code` and `message` in the job's status; a retryable error uses up one
/// attempt and the job is tried again (with backoff) while it has attempts left, a fatal one
/// fails the job at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Short, stable, machine-readable code (`bad-input`, `upstream-down`, ...).
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Whether another attempt could succeed.
    pub retryable: bool,
}

impl Error {
    /// An error another attempt cannot fix (bad input, a missing capability).
    pub fn fatal(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// An error another attempt may not hit (a dependency that was briefly down).
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: true,
        }
    }

    /// The input was understood but is not acceptable: a fatal `bad-input` error.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::fatal("bad-input", message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        JobError {
            code: e.code,
            message: e.message,
            retryable: e.retryable,
        }
    }
}

impl From<JobError> for Error {
    fn from(e: JobError) -> Self {
        Error {
            code: e.code,
            message: e.message,
            retryable: e.retryable,
        }
    }
}
