//! The configuration the writer runs with, as [`LogWriterBuilder`](super::LogWriterBuilder)
//! resolves it, and the option types it is made of.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::encoder::redaction::Redactor;

/// Whether rotated files are compressed.
///
/// Compression runs on the archiver thread, never on the writer's path.
///
/// ```
/// use tracekit_exporters::Compression;
/// assert_eq!(Compression::default(), Compression::Gzip { level: 1 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Archives stay plain `.log` files.
    None,
    /// Archives become `.log.gz` (level 0-9; 1, the default, keeps up with a busy writer).
    Gzip {
        /// The gzip level, 0-9.
        level: u32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip { level: 1 }
    }
}

/// What happens when the queue is full.
///
/// ```
/// use tracekit_exporters::LossPolicy;
/// assert_eq!(LossPolicy::default(), LossPolicy::Lossless);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LossPolicy {
    /// The caller waits until there is room: nothing is dropped.
    #[default]
    Lossless,
    /// The record is dropped and counted; a `WARNING` record states the exact count.
    Lossy,
}

/// When the writer calls `fdatasync`.
///
/// ```
/// use std::time::Duration;
/// use tracekit_exporters::FsyncPolicy;
/// let p = FsyncPolicy::Interval(Duration::from_millis(500));
/// # let _ = p;
/// assert_eq!(FsyncPolicy::default(), FsyncPolicy::Never);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never: the OS writes back in its own time (the default).
    #[default]
    Never,
    /// After each batch that holds an `ERROR` or `CRITICAL` record.
    OnError,
    /// At most this long after a write.
    Interval(Duration),
}

/// Which components also get a `<component>_daily.log`, rotated at UTC midnight.
///
/// ```
/// use tracekit_exporters::DailyFiles;
/// assert_eq!(DailyFiles::default(), DailyFiles::Components(vec!["app".into()]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DailyFiles {
    /// No daily files.
    None,
    /// Every component.
    All,
    /// These components (normalised names).
    Components(Vec<String>),
}

impl Default for DailyFiles {
    fn default() -> Self {
        DailyFiles::Components(vec!["app".into()])
    }
}

impl DailyFiles {
    pub(crate) fn includes(&self, component: &str) -> bool {
        match self {
            DailyFiles::None => false,
            DailyFiles::All => true,
            DailyFiles::Components(c) => c.iter().any(|c| c == component),
        }
    }
}

/// A source of the current time for rotation and retention decisions. Tests inject one to
/// cross midnight or age archives without waiting.
///
/// ```
/// use std::time::SystemTime;
/// use tracekit_exporters::{Clock, SystemClock};
/// assert!(SystemClock.now() <= SystemTime::now());
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The resolved, validated configuration the writer runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub root: PathBuf,
    pub max_file_size: u64,
    pub error_file_size: u64,
    pub performance_file_size: u64,
    pub max_backups: usize,
    pub retention: Duration,
    pub daily: DailyFiles,
    pub compression: Compression,
    pub redactor: Redactor,
    pub default_component: String,
    pub queue_bytes: usize,
    pub loss_policy: LossPolicy,
    pub file_mode: u32,
    pub dir_mode: u32,
    pub fsync: FsyncPolicy,
    pub clock: Arc<dyn Clock>,
    pub reopen_check: Duration,
    pub close_idle: Duration,
}

impl Config {
    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub(crate) fn archive_dir(&self) -> PathBuf {
        self.root.join("archived")
    }
}
