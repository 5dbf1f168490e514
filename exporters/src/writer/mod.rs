//! The writer: callers encode their records ([`LogWriter::write`]) and hand the lines to one
//! background writer thread through a bounded queue (`queue`). The writer batches, routes,
//! rotates and archives.

mod archive;
mod builder;
mod config;
mod context;
mod queue;
mod rolling;
mod worker;

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use builder::LogWriterBuilder;
use config::Config;
pub use config::{Clock, Compression, DailyFiles, FsyncPolicy, LossPolicy, SystemClock};
use queue::Queue;

use crate::encoder::RecordEncoder;
use crate::error::{BuildError, WriteError};
use crate::record::Record;

/// The record is `ERROR` or `CRITICAL`: also goes to `errors/`.
pub(crate) const FLAG_ERROR: u8 = 1;
/// The record is a timing record: also goes to `performance/`.
pub(crate) const FLAG_TIMING: u8 = 2;
/// The writer's own record: not counted as written.
pub(crate) const FLAG_INTERNAL: u8 = 4;

/// How long a dropped [`WriterGuard`] waits for the writer to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub written: AtomicU64,
    pub lost: AtomicU64,
    pub io_errors: AtomicU64,
    pub rotations: AtomicU64,
    pub bytes_written: AtomicU64,
    pub archives_compressed: AtomicU64,
    pub archives_deleted: AtomicU64,
    pub archive_errors: AtomicU64,
    pub syncs: AtomicU64,
}

/// A value alone on its cache lines (128 bytes: x86's adjacent-line prefetcher pulls lines
/// in pairs), so that writes to it do not take lines other threads read from their caches.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) struct Shared {
    pub config: Config,
    pub encoder: RecordEncoder,
    /// On lines of its own: every caller writes it, the writer thread at each batch.
    pub queue: CachePadded<Queue>,
    /// Written by the writer thread: kept off the lines callers read.
    pub counters: CachePadded<Counters>,
    pub archiver: archive::ArchiverHandle,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A handle to the background writer: cheap to clone, safe to share between threads.
///
/// [`write`](Self::write) encodes a [`Record`] on the calling thread into a reused buffer and
/// queues the line; the writer thread writes it to the component's file (and to `errors/`,
/// `performance/` and the daily file where that applies) in batches of one `write` call per
/// file.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Level, LogWriter, Record};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
/// writer.write(&Record::new(Level::ERROR, "ranking", "model timed out"))?;
/// writer.flush()?;
/// assert!(dir.path().join("logs/errors/errors.log").exists());
/// assert_eq!(writer.status().records_written, 1);
/// drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("root", &self.shared.config.root)
            .field("status", &self.status())
            .finish()
    }
}

/// Flushes and stops the writer when dropped (waiting at most
/// [`DEFAULT_SHUTDOWN_TIMEOUT`]).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
/// drop(guard);
/// assert!(writer.is_shutdown());
/// # Ok::<(), tracekit_exporters::BuildError>(())
/// ```
#[must_use = "dropping the guard stops the writer: keep it alive while records are written"]
#[derive(Debug)]
pub struct WriterGuard {
    writer: LogWriter,
}

impl WriterGuard {
    /// The writer this guard stops.
    pub fn writer(&self) -> &LogWriter {
        &self.writer
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let _ = self.writer.shutdown_with_timeout(DEFAULT_SHUTDOWN_TIMEOUT);
    }
}

/// The writer's counters, as [`LogWriter::status`] reads them.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, _guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
/// let status = writer.status();
/// assert_eq!(status.records_dropped + status.records_lost + status.io_errors, 0);
/// # Ok::<(), tracekit_exporters::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStatus {
    /// Records written to their component file.
    pub records_written: u64,
    /// Records dropped because the queue was full (lossy policy only).
    pub records_dropped: u64,
    /// Records that could not be written (I/O failures), plus records written to a file that
    /// was deleted underneath the writer before it noticed (those also count as written).
    pub records_lost: u64,
    /// Failed I/O operations (writes, opens, renames, syncs).
    pub io_errors: u64,
    /// Files rotated.
    pub rotations: u64,
    /// Bytes written, copies to errors/, performance/ and daily files included.
    pub bytes_written: u64,
    /// Archives compressed.
    pub archives_compressed: u64,
    /// Archives deleted by backup limits or retention.
    pub archives_deleted: u64,
    /// Failed archive operations (compression, deletion).
    pub archive_errors: u64,
    /// `fdatasync` calls made under the fsync policy.
    pub syncs: u64,
    /// Bytes waiting in the queue now.
    pub queued_bytes: u64,
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The flags that send `record` to `errors/` and `performance/` as well.
fn routes(record: &Record<'_>) -> u8 {
    let mut flags = 0;
    if record.level.is_error() {
        flags |= FLAG_ERROR;
    }
    if record.timing {
        flags |= FLAG_TIMING;
    }
    flags
}

/// Keep at most this much of a calling thread's encode buffer between records.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

impl LogWriter {
    /// A builder with the defaults (and the environment); see [`LogWriterBuilder`].
    pub fn builder() -> LogWriterBuilder {
        LogWriterBuilder::default()
    }

    pub(crate) fn start(config: Config) -> Result<(LogWriter, WriterGuard), BuildError> {
        for dir in [config.logs_dir(), config.archive_dir()] {
            rolling::create_dir(&dir, config.dir_mode).map_err(|source| BuildError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        let encoder = RecordEncoder::new(config.redactor.clone(), &config.default_component);
        let queue = Queue::new(config.queue_bytes, config.loss_policy);
        let archiver = archive::ArchiverHandle::new();
        let shared = Arc::new(Shared {
            config,
            encoder,
            queue: CachePadded(queue),
            counters: CachePadded(Counters::default()),
            archiver,
            threads: Mutex::new(Vec::new()),
        });
        let archiver_thread = archive::spawn(Arc::clone(&shared)).map_err(BuildError::Spawn)?;
        let writer_thread = match worker::spawn(Arc::clone(&shared)) {
            Ok(t) => t,
            Err(e) => {
                shared.archiver.stop();
                return Err(BuildError::Spawn(e));
            }
        };
        shared
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([writer_thread, archiver_thread]);
        let writer = LogWriter { shared };
        Ok((writer.clone(), WriterGuard { writer }))
    }

    /// The encoder this writer uses (its redaction and default component).
    pub fn encoder(&self) -> &RecordEncoder {
        &self.shared.encoder
    }

    /// The root directory.
    pub fn root(&self) -> &std::path::Path {
        &self.shared.config.root
    }

    /// Encodes `record` and queues it.
    ///
    /// Under the lossless policy (the default) this waits while the queue is full; under the
    /// lossy policy a full queue drops the record, counts it and returns
    /// [`WriteError::QueueFull`]. After shutdown it returns [`WriteError::Shutdown`].
    pub fn write(&self, record: &Record<'_>) -> Result<(), WriteError> {
        let flags = routes(record);
        let queue = |line: &mut Vec<u8>| {
            let component = self.shared.encoder.encode(record, line);
            self.shared.queue.push(line, component, flags)
        };
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                let result = queue(&mut line);
                if line.capacity() > KEEP_LINE_CAPACITY {
                    *line = Vec::new();
                }
                result
            }
            // Re-entered from inside an encode (a Display impl that logs): use a fresh buffer.
            Err(_) => queue(&mut Vec::new()),
        })
    }

    /// Waits until every record queued before this call has been written (or accounted as
    /// lost), at most `timeout`.
    pub fn flush_with_timeout(&self, timeout: Duration) -> Result<(), WriteError> {
        self.shared.queue.flush(timeout)
    }

    /// [`flush_with_timeout`](Self::flush_with_timeout) with [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub fn flush(&self) -> Result<(), WriteError> {
        self.flush_with_timeout(DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// Stops accepting records, writes everything queued, stops the writer and archiver
    /// threads. Idempotent: later calls return `Ok` at once. Waits at most `timeout`; an
    /// archive still being compressed then is finished at the next start.
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<(), WriteError> {
        let shared = &*self.shared;
        let deadline = Instant::now() + timeout;
        if !shared.queue.close(deadline) {
            return Err(WriteError::Timeout(timeout));
        }
        shared.archiver.stop();
        if !shared
            .archiver
            .wait_stopped(deadline.saturating_duration_since(Instant::now()))
        {
            return Err(WriteError::Timeout(timeout));
        }
        let threads = std::mem::take(
            &mut *shared
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
        Ok(())
    }

    /// [`shutdown_with_timeout`](Self::shutdown_with_timeout) with
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub fn shutdown(&self) -> Result<(), WriteError> {
        self.shutdown_with_timeout(DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// True once shutdown has begun.
    pub fn is_shutdown(&self) -> bool {
        self.shared.queue.is_closed()
    }

    /// Waits until every rotated file so far has been compressed and pruned (backups and
    /// retention), at most `timeout`. Returns false on timeout.
    pub fn wait_for_archives(&self, timeout: Duration) -> bool {
        self.shared.archiver.wait_idle(timeout)
    }

    /// The counters.
    pub fn status(&self) -> WriterStatus {
        let c = &self.shared.counters;
        let queued_bytes = self.shared.queue.queued_bytes() as u64;
        WriterStatus {
            records_written: c.written.load(Ordering::Relaxed),
            records_dropped: self.shared.queue.dropped(),
            records_lost: c.lost.load(Ordering::Relaxed),
            io_errors: c.io_errors.load(Ordering::Relaxed),
            rotations: c.rotations.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            archives_compressed: c.archives_compressed.load(Ordering::Relaxed),
            archives_deleted: c.archives_deleted.load(Ordering::Relaxed),
            archive_errors: c.archive_errors.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            queued_bytes,
        }
    }
}
