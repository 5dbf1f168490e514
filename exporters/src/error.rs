//! The crate's error types.

use std::io;
use std::path::PathBuf;

/// Why [`LogWriterBuilder::build`](crate::LogWriterBuilder::build) failed.
///
/// ```
/// use tracekit_exporters::{BuildError, LogWriter};
///
/// let file = tempfile::NamedTempFile::new()?;
/// // A root below a regular file cannot be created.
/// let err = LogWriter::builder().root(file.path().join("trace")).build().unwrap_err();
/// assert!(matches!(err, BuildError::CreateDir { .. }), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use tracekit_exporters::{Level, LogWriter, Record, WriteError};
///
/// # let dir = tempfile::tempdir()?;
/// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
/// writer.shutdown()?;
/// let late = writer.write(&Record::new(Level::INFO, "app", "too late"));
/// assert_eq!(late, Err(WriteError::Shutdown));
/// # drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
