//! tracekit-analyzer: reads the tracekit log files back and answers questions about them.
//!
//! The files are the record contract of [`tracekit_exporters`] (one JSON line per record, a
//! directory per component, `errors/` and `performance/` copies, gzip archives). This crate
//! depends on that crate only, not on `tracekit`: a service that logs never compiles it.
//! The roles, from the bytes up:
//!
//! | role | what | where |
//! | --- | --- | --- |
//! | file finder | every log file under the root, with its [`FileRole`] (main, daily, copy) | [`LogFile`], [`LogAnalyzer::files`] |
//! | scanner | whole lines out of many files (plain or gzip) in parallel, bounded memory, bad lines counted | [`ScanReport`], [`ScanProgress`] |
//! | record reader | a line as a [`LogEntry`], or read at the encoder's fixed layout without parsing it (the layout from [`tracekit_exporters::layout`]) | [`LogEntry`], [`Timestamp`] |
//! | queries | the seed's questions: a request's trace, errors, timings, slow operations, a summary | [`LogAnalyzer`] |
//! | reports | plain values the queries return, `serde::Serialize` for JSON | [`RequestTrace`], [`ErrorReport`], [`PerformanceReport`], [`SlowReport`], [`Summary`] |
//! | renderers | reports as text tables ([`output`]), a self-contained HTML timeline ([`html`]); JSON is serde's | [`output`], [`html`] |
//! | export | the records as OTLP JSON lines | [`OtlpBatch`], [`LogAnalyzer::export_otlp_json`] |
//! | forward | the records to an OTLP/HTTP endpoint, at least once, with a checkpoint (feature `otlp`) | `forward::Forwarder` |
//!
//! The binaries `trace_request` and `log_analyzer` (in `src/bin/`) are thin: arguments, a
//! query, a renderer, an exit status. The library never prints.
//!
//! # Feature flags
//!
//! | feature | default | what |
//! | --- | --- | --- |
//! | `otlp` | off | `forward` and `log_analyzer forward`; brings an HTTP client (reqwest) |
//!
//! # Examples
//!
//! ```
//! use tracekit_analyzer::LogAnalyzer;
//! use tracekit_exporters::{Level, LogWriter, Record, Value};
//!
//! # let dir = tempfile::tempdir()?;
//! let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
//! for ms in [12.0, 30.0, 2500.0] {
//!     let data = [("duration_ms", Value::F64(ms))];
//!     writer.write(&Record::new(Level::INFO, "ranking", "rank done").request_id("req-1").data(&data).timing(true))?;
//! }
//! drop(guard);
//!
//! let analyzer = LogAnalyzer::new(dir.path());
//! let perf = analyzer.analyze_performance("ranking", None)?;
//! assert_eq!(perf.duration_ms.unwrap().p50, 30.0);
//! assert_eq!(analyzer.slow_operations("ranking", 1000.0, None)?.operations.len(), 1);
//! assert_eq!(analyzer.trace_request("req-1").entries.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, rust_2018_idioms)]

mod errors;
mod export;
mod files;
#[cfg(feature = "otlp")]
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod html;
pub mod output;
mod performance;
mod record;
mod scan;
mod stats;
mod summary;
mod time;
mod trace;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use errors::{ErrorFilter, ErrorReport, ErrorSource};
pub use export::{ExportFilter, ExportReport, OtlpBatch, Signal};
pub use files::{FileRole, LogFile};
pub use performance::{FunctionStats, PerformanceReport, SlowOperation, SlowReport};
pub use record::{ExceptionInfo, LogEntry, MAX_DEPTH};
pub use scan::{FileError, ScanProgress, ScanReport, SkipReason, Skipped};
pub use stats::{percentile_sorted, DurationStats};
pub use summary::{ComponentSummary, Summary};
pub use time::{TimeParseError, Timestamp};
pub use trace::{RequestTrace, SpanRow, Stage, PIPELINE_STAGES};

use scan::ScanConfig;

/// The environment variable naming the root directory (the writer's too). Default `trace`.
///
/// ```
/// assert_eq!(tracekit_analyzer::ENV_DIR, "TRACEKIT_DIR");
/// ```
pub const ENV_DIR: &str = "TRACEKIT_DIR";

/// An invalid argument to a query.
///
/// ```
/// use tracekit_analyzer::{AnalyzeError, LogAnalyzer};
/// let err = LogAnalyzer::new("trace").analyze_performance("../etc", None).unwrap_err();
/// assert!(matches!(err, AnalyzeError::InvalidComponent(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// A component name must be `[a-z0-9_]+`, as the writer makes them.
    #[error("invalid component name {0:?}: expected lower-case letters, digits and _")]
    InvalidComponent(String),
}

/// Queries over a tracekit log directory.
///
/// Cheap to build: it holds settings only, and finds the files again for every query, so it
/// sees files rotated since the last one. It answers the seed's questions from the files the
/// writer produced (live, daily, rotated and gzip-archived), in parallel, parsing only the
/// lines a cheap byte search (memchr/memmem) could not rule out:
///
/// | question | method | reads |
/// | --- | --- | --- |
/// | what happened to request R? | [`trace_request`](LogAnalyzer::trace_request) | main files of every component |
/// | which errors, since when? | [`find_errors`](LogAnalyzer::find_errors) | `errors/` (the index of error records) |
/// | how fast is component C? | [`analyze_performance`](LogAnalyzer::analyze_performance) | C's main files |
/// | what was slow in C? | [`slow_operations`](LogAnalyzer::slow_operations) | C's main files |
/// | what is in here? | [`summary`](LogAnalyzer::summary) | main files of every component |
///
/// # Counting each record once
///
/// Every record stands in one main file of its component (`logs/<c>/<c>.log` or one of its
/// archives); daily files, `errors/` and `performance/` hold copies (see [`FileRole`]).
/// Counting queries read main files only. [`find_errors`](LogAnalyzer::find_errors) reads
/// `errors/` instead, which holds each error record once; when there is no `errors/` at all
/// it falls back to the main files.
///
/// # Timing records
///
/// A timing record is one whose `data.duration_ms` is a number: that is what the writer's
/// `performance/` copy holds, and what [`analyze_performance`](LogAnalyzer::analyze_performance)
/// and [`slow_operations`](LogAnalyzer::slow_operations) measure. Span records keep their
/// duration in `span.duration_ms` and are not timing records; they form the span tree of a
/// [`RequestTrace`].
///
/// # Bad input
///
/// A malformed line, a partial last line, invalid UTF-8, a line longer than
/// [`max_line_len`](LogAnalyzer::max_line_len) (16 MiB by default) or nested deeper than
/// [`MAX_DEPTH`] is skipped and counted in the result's [`ScanReport`]; a file that cannot be
/// read is reported there too. Lines are checked when a query looks at them: a query that
/// rules a line out by a byte search never parses it, and
/// [`analyze_performance`](LogAnalyzer::analyze_performance) and
/// [`summary`](LogAnalyzer::summary) read a line in the encoder's own layout at its keys
/// (`timestamp`, `level`, `data`, `context`) without parsing the rest; the summary, which
/// counts every line, also checks each for UTF-8, nesting and its closing brace, and parses
/// error records whole.
///
/// # Speed
///
/// Files are cut into 8 MiB chunks scanned in parallel (gzip files whole), read into one
/// reused buffer per worker; a memchr/memmem search for the request id, the error's type or
/// component, or `"duration_ms":` finds the candidate lines, and only those are parsed,
/// borrowing their strings from the buffer. `find_errors` reads `errors/` only, the
/// per-component queries their component's files only.
///
/// | setting | default |
/// | --- | --- |
/// | root | `$TRACEKIT_DIR`, else `trace` |
/// | [`threads`](Self::threads) | the available parallelism |
/// | [`max_line_len`](Self::max_line_len) | 16 MiB |
///
/// # Examples
///
/// ```
/// use tracekit_analyzer::{ErrorFilter, LogAnalyzer};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let analyzer = LogAnalyzer::new(dir.path()).threads(2);
/// let report = analyzer.find_errors(&ErrorFilter { component: Some("candidate".into()), ..ErrorFilter::default() })?;
/// assert!(report.errors.is_empty()); // an empty directory: nothing found
/// # Ok::<(), tracekit_analyzer::AnalyzeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LogAnalyzer {
    root: PathBuf,
    threads: usize,
    max_line: usize,
    progress: Arc<ScanProgress>,
}

impl Default for LogAnalyzer {
    /// `$TRACEKIT_DIR`, else `trace`.
    fn default() -> Self {
        let root = std::env::var_os(ENV_DIR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("trace"));
        LogAnalyzer::new(root)
    }
}

impl LogAnalyzer {
    /// An analyzer of the directory the writer was given as root (holding `logs/` and
    /// `archived/`). Given the `logs/` directory itself, it uses its parent.
    ///
    /// ```
    /// # use tracekit_analyzer::LogAnalyzer;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::create_dir(dir.path().join("logs")).unwrap();
    /// assert_eq!(LogAnalyzer::new(dir.path().join("logs")).root(), dir.path());
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> LogAnalyzer {
        let mut root = root.into();
        if !root.join("logs").is_dir() && root.file_name().is_some_and(|n| n == "logs") {
            if let Some(parent) = root.parent() {
                root = parent.to_path_buf();
            }
        }
        LogAnalyzer {
            root,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_line: 16 * 1024 * 1024,
            progress: Arc::new(ScanProgress::default()),
        }
    }

    /// Worker threads for scans (at least 1).
    ///
    /// ```
    /// # use tracekit_analyzer::LogAnalyzer;
    /// let a = LogAnalyzer::new("trace").threads(0);
    /// # let _ = a;
    /// ```
    #[must_use]
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Lines longer than this many bytes are skipped (and counted) without being buffered.
    ///
    /// ```
    /// # use tracekit_analyzer::LogAnalyzer;
    /// let a = LogAnalyzer::new("trace").max_line_len(1024 * 1024);
    /// # let _ = a;
    /// ```
    #[must_use]
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1024);
        self
    }

    /// The root directory.
    ///
    /// ```
    /// # use tracekit_analyzer::LogAnalyzer;
    /// assert_eq!(LogAnalyzer::new("trace").root(), std::path::Path::new("trace"));
    /// ```
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The progress of the running scan: a progress bar on another thread reads it.
    ///
    /// ```
    /// # use tracekit_analyzer::LogAnalyzer;
    /// let analyzer = LogAnalyzer::new("no/such/dir");
    /// let progress = analyzer.progress();
    /// let _ = analyzer.summary();
    /// assert!(!progress.is_running());
    /// assert_eq!(progress.total_bytes(), 0);
    /// ```
    pub fn progress(&self) -> Arc<ScanProgress> {
        Arc::clone(&self.progress)
    }

    /// Every log file under the root, live before archived (see [`FileRole`]).
    ///
    /// ```
    /// use tracekit_analyzer::{FileRole, LogAnalyzer};
    /// use tracekit_exporters::{Level, LogWriter, Record};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// writer.write(&Record::new(Level::ERROR, "app", "failed"))?;
    /// drop(guard);
    /// let roles: Vec<FileRole> = LogAnalyzer::new(dir.path()).files().iter().map(|f| f.role).collect();
    /// assert_eq!(roles, [FileRole::Main, FileRole::Daily, FileRole::Errors]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn files(&self) -> Vec<LogFile> {
        files::discover(&self.root)
    }

    fn config(&self) -> ScanConfig {
        ScanConfig {
            threads: self.threads,
            max_line: self.max_line,
        }
    }
}

/// Checks a component name given by a user: it names a directory.
fn check_component(c: &str) -> Result<(), AnalyzeError> {
    let ok = !c.is_empty()
        && c.len() <= 64
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AnalyzeError::InvalidComponent(c.to_owned()))
    }
}
