//! The writer: callers hand their encoded records ([`LogWriter::write`]) to one background
//! writer thread through a bounded queue, a ring they fill outside its lock (`ring`). The
//! writer batches, routes, rotates and archives.

mod archive;
mod ring;
mod rolling;
mod worker;

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, LogWriterBuilder, LossPolicy};
use crate::encoder::RecordEncoder;
use crate::error::{BuildError, WriteError};
use crate::record::Record;

use archive::ArchiveName;
use ring::Ring;

/// The record is `ERROR` or `CRITICAL`: also goes to `errors/`.
pub(crate) const FLAG_ERROR: u8 = 1;
/// The record is a timing record: also goes to `performance/`.
pub(crate) const FLAG_TIMING: u8 = 2;
/// The writer's own record: not counted as written.
pub(crate) const FLAG_INTERNAL: u8 = 4;
/// The entry holds the address and length of a boxed line too long for the ring.
pub(crate) const FLAG_BOXED: u8 = 8;

/// How long a dropped [`WriterGuard`] waits for the writer to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writer thread is doing, as callers need to know it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum WriterState {
    /// Taking or writing a batch: nobody needs to wake it.
    #[default]
    Busy,
    /// Letting records gather after a batch, for at most [`DOZE`](worker::DOZE): the caller
    /// that fills the queue to a quarter wakes it (under a steady stream no other caller pays
    /// for a wake-up).
    Gathering,
    /// Asleep with nothing queued: the next caller wakes it.
    Idle,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Ring bytes reserved so far (a position, not wrapped).
    pub head: u64,
    /// Ring bytes the writer has consumed and given back.
    pub tail: u64,
    /// Bytes of boxed lines (too long for the ring) not yet written.
    pub boxed: usize,
    /// Records accepted so far.
    pub submitted: u64,
    /// Records the writer has finished with (written or accounted as lost).
    pub processed: u64,
    /// What the writer thread is doing, so callers know when to wake it.
    pub writer: WriterState,
    /// Callers waiting for room in the queue.
    pub room_waiters: u32,
    /// Callers waiting in `flush` or `shutdown`.
    pub progress_waiters: u32,
    /// A flush is waiting: the writer should not linger.
    pub flush_requested: bool,
    /// No more records are accepted.
    pub closed: bool,
    /// The writer thread has exited.
    pub finished: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub lost: AtomicU64,
    pub io_errors: AtomicU64,
    pub rotations: AtomicU64,
    pub bytes_written: AtomicU64,
    pub archives_compressed: AtomicU64,
    pub archives_deleted: AtomicU64,
    pub archive_errors: AtomicU64,
    pub syncs: AtomicU64,
}

impl Queue {
    /// Whether an entry of `room` ring bytes, carrying a boxed line of `boxed_len` bytes (0
    /// for a line in the ring), fits now: in the ring's `capacity`, and with the boxed lines
    /// waiting within `boxed_limit`. A boxed line longer than the limit is let in alone (it
    /// waits for the others to be written, not forever); lines in the ring never wait for
    /// boxed ones.
    fn admits(&self, room: usize, capacity: usize, boxed_len: usize, boxed_limit: usize) -> bool {
        self.head - self.tail + room as u64 <= capacity as u64
            && (boxed_len == 0 || self.boxed == 0 || self.boxed + boxed_len <= boxed_limit)
    }
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
    pub queue: CachePadded<Mutex<Queue>>,
    /// The queued lines (positions in `queue`).
    pub ring: Ring,
    /// The writer waits here for records.
    pub work: Condvar,
    /// Lossless callers wait here for room.
    pub room: Condvar,
    /// Flushers and shutdown wait here for progress.
    pub progress: Condvar,
    /// Written by the writer thread: kept off the lines callers read.
    pub counters: CachePadded<Counters>,
    pub archiver: archive::ArchiverHandle,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
        let ring = Ring::new(config.queue_bytes);
        let archiver = archive::ArchiverHandle::new();
        let shared = Arc::new(Shared {
            config,
            encoder,
            queue: CachePadded(Mutex::new(Queue::default())),
            ring,
            work: Condvar::new(),
            room: Condvar::new(),
            progress: Condvar::new(),
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
        self.write_with(routes(record), |line| self.shared.encoder.encode(record, line))
    }

    /// Fills the calling thread's buffer with `encode` and queues it: a line whose component
    /// stands at the range returned.
    fn write_with(
        &self,
        flags: u8,
        encode: impl FnOnce(&mut Vec<u8>) -> std::ops::Range<usize>,
    ) -> Result<(), WriteError> {
        let queue = |line: &mut Vec<u8>| {
            let component = encode(line);
            self.submit(line, component, flags)
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

    /// Queues an encoded line whose component name stands at `component`: reserves its room
    /// in the ring under the lock, fills it after (see `ring`).
    pub(crate) fn submit(
        &self,
        line: &[u8],
        component: std::ops::Range<usize>,
        mut flags: u8,
    ) -> Result<(), WriteError> {
        let shared = &*self.shared;
        let ring = &shared.ring;
        // A line longer than a quarter of the ring goes boxed: the ring carries its address.
        let boxed = Ring::size_of(line.len()) > ring.quarter();
        let (size, boxed_len) = match boxed {
            true => (Ring::size_of(ring::BOXED_LEN), line.len()),
            false => (Ring::size_of(line.len()), 0),
        };
        let mut q = shared.lock();
        let pad = loop {
            if q.closed {
                return Err(WriteError::Shutdown);
            }
            let pad = ring.pad_before(q.head, size);
            if q.admits(
                pad + size,
                ring.capacity(),
                boxed_len,
                shared.config.queue_bytes,
            ) {
                break pad;
            }
            match shared.config.loss_policy {
                LossPolicy::Lossy => {
                    // Counted under the lock, so the writer's final report is exact.
                    shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return Err(WriteError::QueueFull);
                }
                LossPolicy::Lossless => {
                    // Rare: wake the writer even if it only gathers.
                    q.writer = WriterState::Busy;
                    shared.work.notify_one();
                    q.room_waiters += 1;
                    q = shared.room.wait(q).unwrap_or_else(PoisonError::into_inner);
                    q.room_waiters -= 1;
                }
            }
        };
        let pos = q.head;
        q.head += (pad + size) as u64;
        q.boxed += boxed_len;
        q.submitted += 1;
        let wake = match q.writer {
            WriterState::Idle => true,
            WriterState::Gathering => q.head - q.tail >= ring.quarter() as u64,
            WriterState::Busy => false,
        };
        if wake {
            q.writer = WriterState::Busy;
        }
        drop(q);
        let comp_start = component.start as u16;
        let comp_len = component.len() as u8;
        if boxed {
            flags |= FLAG_BOXED;
            let address = ring::boxed(line);
            // SAFETY: reserved above; the writer takes the box back (`ring::unbox`).
            unsafe { ring.publish(pos, pad, &address, comp_start, comp_len, flags) };
        } else {
            // SAFETY: reserved above, for this line.
            unsafe { ring.publish(pos, pad, line, comp_start, comp_len, flags) };
        }
        if wake {
            shared.work.notify_one();
        }
        Ok(())
    }

    /// Waits until every record queued before this call has been written (or accounted as
    /// lost), at most `timeout`.
    pub fn flush_with_timeout(&self, timeout: Duration) -> Result<(), WriteError> {
        let shared = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut q = shared.lock();
        let target = q.submitted;
        while q.processed < target {
            if q.finished {
                return Err(WriteError::Shutdown);
            }
            q.flush_requested = true;
            q.writer = WriterState::Busy;
            shared.work.notify_one();
            let now = Instant::now();
            if now >= deadline {
                return Err(WriteError::Timeout(timeout));
            }
            q.progress_waiters += 1;
            q = shared
                .progress
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            q.progress_waiters -= 1;
        }
        Ok(())
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
        {
            let mut q = shared.lock();
            if !q.closed {
                q.closed = true;
                q.writer = WriterState::Busy;
                shared.work.notify_one();
                shared.room.notify_all();
            }
            while !q.finished {
                let now = Instant::now();
                if now >= deadline {
                    return Err(WriteError::Timeout(timeout));
                }
                q = shared
                    .progress
                    .wait_timeout(q, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
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
        self.shared.lock().closed
    }

    /// Waits until every rotated file so far has been compressed and pruned (backups and
    /// retention), at most `timeout`. Returns false on timeout.
    pub fn wait_for_archives(&self, timeout: Duration) -> bool {
        self.shared.archiver.wait_idle(timeout)
    }

    /// The counters.
    pub fn status(&self) -> WriterStatus {
        let c = &self.shared.counters;
        let queued_bytes = {
            let q = self.shared.lock();
            q.head - q.tail + q.boxed as u64
        };
        WriterStatus {
            records_written: c.written.load(Ordering::Relaxed),
            records_dropped: c.dropped.load(Ordering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn the_ring_and_the_boxed_lines_have_separate_budgets() {
        let (ring, limit) = (1024, 1000);
        let mut q = Queue {
            head: 1000,
            tail: 200,
            ..Queue::default()
        };
        // The ring: 224 bytes left.
        assert!(q.admits(224, ring, 0, limit));
        assert!(!q.admits(232, ring, 0, limit));
        // A boxed line longer than the limit comes in alone.
        assert!(q.admits(32, ring, 5000, limit));
        q.boxed = 5000;
        assert!(!q.admits(32, ring, 10, limit), "a second boxed line waits");
        assert!(
            q.admits(32, ring, 0, limit),
            "a line in the ring does not wait for boxed ones"
        );
        q.boxed = 600;
        assert!(q.admits(32, ring, 400, limit));
        assert!(!q.admits(32, ring, 401, limit));
    }
}
