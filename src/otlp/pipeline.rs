//! The OTLP queue: a bounded channel the service only ever `try_send`s into, and one thread
//! that batches and exports. A full queue drops and counts; failed exports are counted; both
//! are reported as rate-limited `WARNING` records through the file writer.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::exporters::{Level, LogWriter, Record};

/// Sends one batch somewhere; runs on the pipeline's thread only.
pub(crate) trait Export<T>: Send + 'static {
    /// Exports `batch` (left for the caller to clear), or says why not.
    fn export(&mut self, batch: &mut Vec<T>) -> Result<(), String>;
    /// Stops the exporter.
    fn shutdown(&mut self) {}
}

/// The pipeline's counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// Queue and batch sizes, timing and reporting of one pipeline.
#[derive(Clone, Debug)]
pub(crate) struct PipelineConfig {
    /// `traces` or `logs`: named in the warnings and the thread.
    pub signal: &'static str,
    /// What one item is, in the warnings: `spans`, `log records`.
    pub items: &'static str,
    pub queue: usize,
    pub max_batch: usize,
    pub delay: Duration,
    pub warn_every: Duration,
}

enum Msg<T> {
    Item(T),
    Flush(SyncSender<()>),
}

/// The service's end of a pipeline.
#[derive(Debug)]
pub(crate) struct Pipeline<T> {
    tx: SyncSender<Msg<T>>,
    stats: Arc<Stats>,
    reporter: Arc<Reporter>,
    stop: Arc<AtomicBool>,
    done: Mutex<Option<Receiver<()>>>,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Starts the pipeline's thread.
    pub(crate) fn start(
        config: PipelineConfig,
        exporter: impl Export<T>,
        writer: LogWriter,
    ) -> std::io::Result<Pipeline<T>> {
        let (tx, rx) = mpsc::sync_channel(config.queue);
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel();
        let reporter = Arc::new(Reporter {
            writer,
            config: config.clone(),
            state: Mutex::new(ReportState::default()),
        });
        let worker = Worker {
            rx,
            exporter,
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            reporter: Arc::clone(&reporter),
            config: config.clone(),
        };
        thread::Builder::new()
            .name(format!("tracekit-otlp-{}", config.signal))
            .spawn(move || {
                worker.run();
                let _ = done_tx.send(());
            })?;
        Ok(Pipeline {
            tx,
            stats,
            reporter,
            stop,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// Queues one item, never waiting: a full queue drops it and counts.
    #[inline]
    pub(crate) fn send(&self, item: T) {
        match self.tx.try_send(Msg::Item(item)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Exports what is queued, waiting at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), String> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.tx
            .try_send(Msg::Flush(ack_tx))
            .map_err(|_| "the OTLP queue is full or stopped".to_owned())?;
        ack_rx
            .recv_timeout(timeout)
            .map_err(|_| format!("the OTLP {} flush timed out", "export"))
    }

    /// Exports what is queued and stops the thread, waiting at most `timeout`; a collector
    /// that does not answer in time is left behind (the thread ends on its own).
    pub(crate) fn shutdown(&self, timeout: Duration) {
        self.stop.store(true, Ordering::Release);
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            if done.recv_timeout(timeout).is_err() {
                // Still waiting on the collector: say what is known now, while the files
                // are still open.
                self.reporter.report(
                    &self.stats,
                    true,
                    Some("the export was still waiting on the collector at shutdown; what it held is not exported"),
                );
            }
        }
    }

    /// The counters.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// What the last warning covered.
#[derive(Default)]
struct ReportState {
    at: Option<Instant>,
    dropped: u64,
    failed: u64,
    failed_batches: u64,
    last_error: String,
}

/// Writes the rate-limited WARNING records; shared by the thread and the shutdown path.
struct Reporter {
    writer: LogWriter,
    config: PipelineConfig,
    state: Mutex<ReportState>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    fn failed(&self, error: String) {
        if let Ok(mut state) = self.state.lock() {
            state.last_error = error;
        }
    }

    /// Writes a WARNING record when something was dropped or failed since the last one, at
    /// most once per `warn_every` (the first at once). `force` ignores the interval (at
    /// shutdown); a `note` is written even when nothing new was lost.
    fn report(&self, stats: &Stats, force: bool, note: Option<&str>) {
        let Ok(mut r) = self.state.lock() else { return };
        let dropped = stats.dropped.load(Ordering::Relaxed);
        let failed = stats.failed.load(Ordering::Relaxed);
        let failed_batches = stats.failed_batches.load(Ordering::Relaxed);
        let nothing_new = dropped == r.dropped && failed == r.failed;
        if nothing_new && note.is_none() {
            return;
        }
        if !force && r.at.is_some_and(|t| t.elapsed() < self.config.warn_every) {
            return;
        }
        let (new_dropped, new_failed, new_batches) = (
            dropped - r.dropped,
            failed - r.failed,
            failed_batches - r.failed_batches,
        );
        let mut message = format!("OTLP {} export:", self.config.signal);
        if new_dropped > 0 {
            message.push_str(&format!(
                " {new_dropped} {} dropped (queue full);",
                self.config.items
            ));
        }
        if new_batches > 0 {
            message.push_str(&format!(
                " {new_batches} export requests ({new_failed} {}) failed: {};",
                self.config.items, r.last_error
            ));
        }
        if let Some(note) = note {
            message.push_str(&format!(" {note};"));
        }
        message.push_str(" the files have every record");
        let data = [
            (
                "otlp.signal",
                crate::exporters::Value::Str(self.config.signal),
            ),
            ("otlp.dropped", crate::exporters::Value::U64(new_dropped)),
            ("otlp.failed", crate::exporters::Value::U64(new_failed)),
        ];
        let _ = self.writer.write(
            &Record::new(Level::WARNING, "", &message)
                .logger("tracekit::otlp")
                .data(&data),
        );
        r.at = Some(Instant::now());
        r.dropped = dropped;
        r.failed = failed;
        r.failed_batches = failed_batches;
    }
}

struct Worker<T, E> {
    rx: Receiver<Msg<T>>,
    exporter: E,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    reporter: Arc<Reporter>,
    config: PipelineConfig,
}

/// How often the thread looks at the stop flag while the queue is quiet.
const TICK: Duration = Duration::from_millis(50);

impl<T, E: Export<T>> Worker<T, E> {
    fn run(mut self) {
        let mut batch: Vec<T> = Vec::with_capacity(self.config.max_batch);
        let mut first_at: Option<Instant> = None;
        loop {
            let wait = first_at.map_or(TICK, |t| {
                self.config.delay.saturating_sub(t.elapsed()).min(TICK)
            });
            let mut flushes = Vec::new();
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Item(item)) => {
                    first_at.get_or_insert_with(Instant::now);
                    batch.push(item);
                    // Take what is already queued without waiting.
                    while batch.len() < self.config.max_batch {
                        match self.rx.try_recv() {
                            Ok(Msg::Item(item)) => batch.push(item),
                            Ok(Msg::Flush(ack)) => {
                                flushes.push(ack);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Ok(Msg::Flush(ack)) => flushes.push(ack),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop.store(true, Ordering::Release);
                }
            }
            let stopping = self.stop.load(Ordering::Acquire);
            if stopping {
                while let Ok(msg) = self.rx.try_recv() {
                    match msg {
                        Msg::Item(item) => batch.push(item),
                        Msg::Flush(ack) => flushes.push(ack),
                    }
                }
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= self.config.delay);
            if !batch.is_empty()
                && (due || stopping || !flushes.is_empty() || batch.len() >= self.config.max_batch)
            {
                while !batch.is_empty() {
                    let n = batch.len().min(self.config.max_batch);
                    let mut chunk: Vec<T> = batch.drain(..n).collect();
                    let ok = self.export(&mut chunk);
                    self.reporter.report(&self.stats, false, None);
                    if !ok && stopping {
                        // The collector failed just now: at shutdown, do not wait on it
                        // again for each remaining batch.
                        self.stats
                            .failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        batch.clear();
                    }
                }
                first_at = None;
            }
            for ack in flushes {
                let _ = ack.try_send(());
            }
            if stopping {
                self.reporter.report(&self.stats, true, None);
                self.exporter.shutdown();
                return;
            }
            self.reporter.report(&self.stats, false, None);
        }
    }

    /// Exports one chunk; false when it failed.
    fn export(&mut self, chunk: &mut Vec<T>) -> bool {
        let n = chunk.len() as u64;
        match self.exporter.export(chunk) {
            Ok(()) => {
                self.stats.exported.fetch_add(n, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.reporter.failed(e);
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Runs a future to completion on this thread. The OTLP exporters with the blocking HTTP
/// client complete without ever returning `Pending`; parking covers the rest.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;
    impl Export<u32> for Failing {
        fn export(&mut self, _: &mut Vec<u32>) -> Result<(), String> {
            Err("connection refused".into())
        }
    }

    #[test]
    fn failures_and_drops_become_one_warning_record() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, guard) = LogWriter::builder()
            .root(dir.path())
            .default_component("t")
            .build()
            .unwrap();
        let config = PipelineConfig {
            signal: "traces",
            items: "spans",
            queue: 4,
            max_batch: 2,
            delay: Duration::from_millis(10),
            warn_every: Duration::from_secs(3600),
        };
        let p = Pipeline::start(config, Failing, writer.clone()).unwrap();
        for i in 0..1000 {
            p.send(i);
        }
        p.shutdown(Duration::from_secs(5));
        let s = p.stats();
        let (dropped, failed) = (
            s.dropped.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
        );
        assert_eq!(dropped + failed, 1000);
        assert!(dropped > 0);
        drop(guard);
        let text = std::fs::read_to_string(dir.path().join("logs/t/t.log")).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // The first at once, then one at shutdown for the rest: rate-limited, nothing lost.
        assert!(!records.is_empty() && records.len() <= 2, "{records:#?}");
        let total: u64 = records
            .iter()
            .map(|r| {
                assert_eq!(r["level"], "WARNING");
                r["data"]["otlp.dropped"].as_u64().unwrap()
                    + r["data"]["otlp.failed"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(total, 1000);
        assert!(records[0]["message"]
            .as_str()
            .unwrap()
            .contains("failed: connection refused"));
    }

    #[test]
    fn block_on_runs_a_ready_future() {
        assert_eq!(block_on(async { 7 }), 7);
    }
}
