//! The crate's error types.

use std::io;
use std::path::PathBuf;

/// Why [`LogWriterBuilder::build`](crate::LogWriterBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An environment variable holds a value that does not parse.
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// A directory could not be created.
    #[error("cannot create log directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer thread")]
    Spawn(#[source] io::Error),
}

/// Why a record or a flush was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The writer was shut down; the record was not written.
    #[error("the log writer is shut down")]
    Shutdown,
    /// The queue was full under the lossy policy; the record was dropped (and counted).
    #[error("the log queue is full; the record was dropped")]
    QueueFull,
    /// A flush or shutdown did not finish in time.
    #[error("timed out after {0:?} waiting for the log writer")]
    Timeout(std::time::Duration),
}
