//! Anchors: tracekit against the crates people would pick instead, in the same run, on the
//! same event (`INFO`, a message and three fields, inside a request context carrying request,
//! user and session ids), each writing one JSON line per event to a file in a temporary
//! directory:
//!
//! - `tracekit`: `tracekit::builder()` and a `LogContext` (component `candidate`, which has no
//!   daily file: one line per event, as for the others), lossless writer, archives
//!   uncompressed;
//! - `fmt_json`: tracing-subscriber `fmt().json()` (its defaults: the span and span list in
//!   each line) through tracing-appender's `non_blocking`, lossless (`lossy(false)`), into a
//!   `BufWriter<File>` (the worker flushes whenever its queue runs empty);
//! - `otel`: opentelemetry-appender-tracing (span attributes copied onto each record) into the
//!   SDK's `BatchLogProcessor` with its default queue of 2,048 records, and a minimal exporter
//!   written here (the SDK has none for files) that serializes each record with serde_json
//!   into a `BufWriter<File>` and flushes after each batch. The processor drops records when
//!   its queue is full: the bench counts the records that reach the file;
//! - `otel_queue_64k`: the same with a queue of 65,536 records, which holds a timed chunk, so
//!   the per-event cost is that of records that are kept (per-event benches only);
//! - `slog`: slog-async (`OverflowStrategy::Block`, channel of 32,768 records, so that a chunk
//!   fits as in the others' queues; its default is 128) over slog-json into a
//!   `BufWriter<File>`, the ids as the request logger's key-values.
//!
//! Per-event caller cost: events timed in chunks of `CHUNK`, the tool drained between chunks
//! outside the timing (tracekit: `flush`; tracing-appender and slog: until their worker has
//! written every record; OTel: `force_flush`); p50/p99 of single events (the median of three
//! rounds: before, between and after the tool's benches) and a disabled (`DEBUG`) event; for
//! tracekit also a `LogContext` opened and closed inside the request context (issue 3 wants it
//! in the same run as the anchors). End-to-end throughput: `BATCH`
//! events from 1 or 2 threads until they are all written (OTel: until `force_flush` returns),
//! each measurement in a child process (this binary run again with `TRACEKIT_ANCHOR_CHILD`
//! set), so that the peak RSS is the tool's own.
//! A summary with ratios against tracekit closes the run, with tracekit's times scaled to the
//! machine where issue 3 measured `fmt_json` at 2.9 µs per event.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::{time_in_chunks, CHUNK};
use criterion::{Bencher, BenchmarkId, Criterion, SamplingMode, Throughput};
use opentelemetry::logs::AnyValue;
use opentelemetry_appender_tracing::layer::{OpenTelemetryTracingBridge, TracingSpanAttributes};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use slog::Drain;
use tracekit::exporters::{Compression, LogWriter};
use tracekit::LogContext;
use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Events per iteration of the throughput benches, split between the threads.
const BATCH: u64 = 200_000;
/// Set in a child process: `<tool> <threads> <iterations>`.
const CHILD_ENV: &str = "TRACEKIT_ANCHOR_CHILD";
/// Starts the line a child reports on.
const CHILD_REPORT: &str = "anchor-child-report";
/// How long a drain waits before it declares the tool stuck.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The message of the event (the macros need it as a literal: keep them in step).
const MESSAGE: &str = "Generated candidates";
const REQUEST_ID: &str = "req-abc-123";
const USER_ID: &str = "user-456";
const SESSION_ID: &str = "session-789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Tracekit,
    FmtJson,
    Otel,
    OtelQueue64k,
    Slog,
}

impl Tool {
    const PER_EVENT: [Tool; 5] = [
        Tool::Tracekit,
        Tool::FmtJson,
        Tool::Otel,
        Tool::OtelQueue64k,
        Tool::Slog,
    ];
    const THROUGHPUT: [Tool; 4] = [Tool::Tracekit, Tool::FmtJson, Tool::Otel, Tool::Slog];

    fn name(self) -> &'static str {
        match self {
            Tool::Tracekit => "tracekit",
            Tool::FmtJson => "fmt_json",
            Tool::Otel => "otel",
            Tool::OtelQueue64k => "otel_queue_64k",
            Tool::Slog => "slog",
        }
    }

    fn from_name(name: &str) -> Option<Tool> {
        Tool::PER_EVENT.into_iter().find(|t| t.name() == name)
    }
}

/// The event, through `tracing`.
#[inline(always)]
fn tracing_event() {
    tracing::info!(
        num_candidates = black_box(1500_u64),
        source = "in_network",
        duration_ms = black_box(45.2),
        "Generated candidates"
    )
}

#[inline(always)]
fn tracing_disabled() {
    tracing::debug!(num_candidates = black_box(1500_u64), "not written")
}

/// The same event through slog.
#[inline(always)]
fn slog_event(logger: &slog::Logger) {
    slog::info!(logger, "Generated candidates";
        "num_candidates" => black_box(1500_u64),
        "source" => "in_network",
        "duration_ms" => black_box(45.2));
}

/// Compiled out in release builds by slog's default static maximum level (`Info`).
#[inline(always)]
fn slog_disabled(logger: &slog::Logger) {
    slog::debug!(logger, "not written"; "num_candidates" => black_box(1500_u64));
}

/// How the event is made inside a request context.
#[derive(Clone, Copy)]
enum Emit<'a> {
    Tracing,
    Slog(&'a slog::Logger),
}

impl Emit<'_> {
    fn event(self) {
        match self {
            Emit::Tracing => tracing_event(),
            Emit::Slog(logger) => slog_event(logger),
        }
    }
}

/// A writer that counts the lines passing through it: how far a worker thread has got.
struct LineCounter<W> {
    inner: W,
    lines: Arc<AtomicU64>,
}

impl<W: Write> Write for LineCounter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let lines = memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        self.lines.fetch_add(lines, Ordering::Release);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A slog drain that counts the records its inner drain has written.
struct CountedDrain<D> {
    inner: D,
    records: Arc<AtomicU64>,
}

impl<D: Drain> Drain for CountedDrain<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<Self::Ok, Self::Err> {
        let result = self.inner.log(record, values);
        self.records.fetch_add(1, Ordering::Release);
        result
    }
}

/// The OTel anchor's exporter: one JSON line per log record (serde_json) into a buffered file,
/// flushed after each batch. Minimal, but it does the work any file exporter must do.
#[derive(Debug)]
struct JsonLinesLogExporter {
    out: Mutex<BufWriter<File>>,
    exported: Arc<AtomicU64>,
}

impl JsonLinesLogExporter {
    fn write_batch(&self, batch: &LogBatch<'_>) -> io::Result<u64> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (record, scope) in batch.iter() {
            let time = record.timestamp().or(record.observed_timestamp());
            let line = OtelLine {
                time_unix_nano: time.map(unix_nanos),
                severity_text: record.severity_text(),
                severity_number: record.severity_number().map(|s| s as i32),
                target: record.target().map(|t| t.as_ref()),
                scope: scope.name(),
                body: record.body().map(JsonAny),
                attributes: Attributes(record),
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            n += 1;
        }
        out.flush()?;
        Ok(n)
    }
}

impl LogExporter for JsonLinesLogExporter {
    fn export(
        &self,
        batch: LogBatch<'_>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = match self.write_batch(&batch) {
            Ok(n) => {
                self.exported.fetch_add(n, Ordering::Release);
                Ok(())
            }
            Err(e) => Err(OTelSdkError::InternalFailure(e.to_string())),
        };
        std::future::ready(result)
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Serialize)]
struct OtelLine<'a> {
    time_unix_nano: Option<u64>,
    severity_text: Option<&'a str>,
    severity_number: Option<i32>,
    target: Option<&'a str>,
    scope: &'a str,
    body: Option<JsonAny<'a>>,
    attributes: Attributes<'a>,
}

/// An OTel `AnyValue` as JSON.
struct JsonAny<'a>(&'a AnyValue);

impl Serialize for JsonAny<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AnyValue::Int(i) => s.serialize_i64(*i),
            AnyValue::Double(f) => s.serialize_f64(*f),
            AnyValue::String(v) => s.serialize_str(v.as_str()),
            AnyValue::Boolean(b) => s.serialize_bool(*b),
            AnyValue::Bytes(b) => s.collect_seq(b.iter()),
            AnyValue::ListAny(l) => s.collect_seq(l.iter().map(JsonAny)),
            AnyValue::Map(m) => s.collect_map(m.iter().map(|(k, v)| (k.as_str(), JsonAny(v)))),
            other => s.collect_str(&format_args!("{other:?}")),
        }
    }
}

/// A record's attributes as a JSON object.
struct Attributes<'a>(&'a opentelemetry_sdk::logs::SdkLogRecord);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (key, value) in self.0.attributes_iter() {
            map.serialize_entry(key.as_str(), &JsonAny(value))?;
        }
        map.end()
    }
}

/// One tool, set up to write into `file`.
struct Anchor {
    tool: Tool,
    file: PathBuf,
    sink: Sink,
    /// Enabled events made so far.
    produced: AtomicU64,
    /// Timed chunks of the enabled-event bench: nanoseconds and events (warm-up included).
    timed_nanos: AtomicU64,
    timed_events: AtomicU64,
}

enum Sink {
    Tracekit {
        dispatch: Dispatch,
        guard: tracekit::Guard,
    },
    FmtJson {
        dispatch: Dispatch,
        guard: tracing_appender::non_blocking::WorkerGuard,
        lines: Arc<AtomicU64>,
    },
    Otel {
        dispatch: Dispatch,
        provider: SdkLoggerProvider,
        exported: Arc<AtomicU64>,
    },
    Slog {
        logger: slog::Logger,
        guard: slog_async::AsyncGuard,
        records: Arc<AtomicU64>,
    },
}

fn buffered_file(path: &Path) -> BufWriter<File> {
    BufWriter::new(File::create(path).expect("create the anchor's file"))
}

impl Anchor {
    fn start(tool: Tool, dir: &Path) -> Anchor {
        let mut file = dir.join(format!("{}.log", tool.name()));
        let sink = match tool {
            Tool::Tracekit => {
                let (dispatch, guard) = tracekit::builder()
                    .root(dir)
                    .filter("info")
                    .panic_hook(false)
                    .log_writer(
                        LogWriter::builder()
                            .compression(Compression::None)
                            // Nothing rotates during a run: the file holds every record.
                            .max_file_size(1 << 40),
                    )
                    .build()
                    .expect("tracekit set-up");
                file = dir.join("logs/candidate/candidate.log");
                Sink::Tracekit { dispatch, guard }
            }
            Tool::FmtJson => {
                let lines = Arc::new(AtomicU64::new(0));
                let writer = LineCounter {
                    inner: buffered_file(&file),
                    lines: lines.clone(),
                };
                let (non_blocking, guard) =
                    tracing_appender::non_blocking::NonBlockingBuilder::default()
                        .lossy(false)
                        .finish(writer);
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(non_blocking)
                    .finish();
                Sink::FmtJson {
                    dispatch: Dispatch::new(subscriber),
                    guard,
                    lines,
                }
            }
            Tool::Otel | Tool::OtelQueue64k => {
                let exported = Arc::new(AtomicU64::new(0));
                let exporter = JsonLinesLogExporter {
                    out: Mutex::new(buffered_file(&file)),
                    exported: exported.clone(),
                };
                let mut config = BatchConfigBuilder::default();
                if tool == Tool::OtelQueue64k {
                    config = config.with_max_queue_size(65_536);
                }
                let processor = BatchLogProcessor::builder(exporter)
                    .with_batch_config(config.build())
                    .build();
                let provider = SdkLoggerProvider::builder()
                    .with_log_processor(processor)
                    .build();
                let bridge = OpenTelemetryTracingBridge::builder(&provider)
                    .with_tracing_span_attributes(TracingSpanAttributes::all())
                    .build();
                let subscriber = tracing_subscriber::registry()
                    .with(LevelFilter::INFO)
                    .with(bridge);
                Sink::Otel {
                    dispatch: Dispatch::new(subscriber),
                    provider,
                    exported,
                }
            }
            Tool::Slog => {
                let records = Arc::new(AtomicU64::new(0));
                let json = slog_json::Json::new(buffered_file(&file))
                    .add_default_keys()
                    .build()
                    .fuse();
                let counted = CountedDrain {
                    inner: json,
                    records: records.clone(),
                };
                let (drain, guard) = slog_async::Async::new(counted)
                    .overflow_strategy(slog_async::OverflowStrategy::Block)
                    .chan_size(32_768)
                    .build_with_guard();
                let drain = slog::LevelFilter::new(drain.fuse(), slog::Level::Info).fuse();
                let logger = slog::Logger::root(drain, slog::o!());
                Sink::Slog {
                    logger,
                    guard,
                    records,
                }
            }
        };
        Anchor {
            tool,
            file,
            sink,
            produced: AtomicU64::new(0),
            timed_nanos: AtomicU64::new(0),
            timed_events: AtomicU64::new(0),
        }
    }

    /// Runs `body` on this thread inside a request context with the three ids.
    fn in_request<R>(&self, body: impl FnOnce(Emit<'_>) -> R) -> R {
        match &self.sink {
            Sink::Tracekit { dispatch, .. } => tracing::dispatcher::with_default(dispatch, || {
                let _cx = LogContext::new()
                    .request_id(REQUEST_ID)
                    .user_id(USER_ID)
                    .session_id(SESSION_ID)
                    .component("candidate")
                    .enter();
                body(Emit::Tracing)
            }),
            Sink::FmtJson { dispatch, .. } | Sink::Otel { dispatch, .. } => {
                tracing::dispatcher::with_default(dispatch, || {
                    let _span = tracing::info_span!(
                        "request",
                        request_id = REQUEST_ID,
                        user_id = USER_ID,
                        session_id = SESSION_ID
                    )
                    .entered();
                    body(Emit::Tracing)
                })
            }
            Sink::Slog { logger, .. } => {
                let request = logger.new(slog::o!(
                    "request_id" => REQUEST_ID,
                    "user_id" => USER_ID,
                    "session_id" => SESSION_ID,
                ));
                body(Emit::Slog(&request))
            }
        }
    }

    /// `n` more enabled events were made: waits until the tool has written them all (OTel:
    /// until `force_flush` returns; what the processor dropped never comes).
    fn drain(&self, n: u64) {
        let target = self.produced.fetch_add(n, Ordering::Relaxed) + n;
        match &self.sink {
            Sink::Tracekit { guard, .. } => guard.writer().flush().expect("tracekit flush"),
            Sink::FmtJson { lines, .. } => wait_for(lines, target, self.tool),
            Sink::Otel { provider, .. } => provider.force_flush().expect("OTel force_flush"),
            Sink::Slog { records, .. } => wait_for(records, target, self.tool),
        }
    }

    /// Drains, shuts the tool down (everything reaches the file) and returns the number of
    /// enabled events made, the event lines in the file and the first of them.
    fn finish(self) -> (u64, u64, String) {
        let produced = self.produced.load(Ordering::Relaxed);
        match self.sink {
            Sink::Tracekit { dispatch, guard } => {
                let status = guard.writer().status();
                assert_eq!(status.records_dropped + status.records_lost, 0, "lossless");
                drop(dispatch);
                guard.shutdown().expect("tracekit shutdown");
            }
            Sink::FmtJson {
                dispatch,
                guard,
                lines,
            } => {
                wait_for(&lines, produced, self.tool);
                drop(dispatch);
                drop(guard);
            }
            Sink::Otel {
                dispatch,
                provider,
                exported,
            } => {
                drop(dispatch);
                provider.shutdown().expect("OTel shutdown");
                let in_file = count_events(&self.file);
                assert_eq!(
                    in_file,
                    exported.load(Ordering::Acquire),
                    "exported = in file"
                );
            }
            Sink::Slog {
                logger,
                guard,
                records,
            } => {
                wait_for(&records, produced, self.tool);
                drop(logger);
                drop(guard);
            }
        }
        (produced, count_events(&self.file), first_event(&self.file))
    }

    fn record_timing(&self, elapsed: Duration, events: u64) {
        self.timed_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.timed_events.fetch_add(events, Ordering::Relaxed);
    }

    /// Mean time of an enabled event over every timed chunk, warm-up included.
    fn mean_event(&self) -> Duration {
        let events = self.timed_events.load(Ordering::Relaxed).max(1);
        Duration::from_nanos(self.timed_nanos.load(Ordering::Relaxed) / events)
    }
}

/// Waits until `counter` reaches `target`.
fn wait_for(counter: &AtomicU64, target: u64, tool: Tool) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let now = counter.load(Ordering::Acquire);
        if now >= target {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {now} of {target} records written after {DRAIN_TIMEOUT:?}",
            tool.name()
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The first event line in `path`, to show what each tool writes.
fn first_event(path: &Path) -> String {
    let Ok(file) = File::open(path) else {
        return String::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains(MESSAGE))
        .unwrap_or_default()
}

/// The event lines in `path`: lines holding the event's message (tracekit's file also holds the
/// span record of each `LogContext`).
fn count_events(path: &Path) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let finder = memchr::memmem::Finder::new(MESSAGE);
    let mut line = Vec::new();
    let mut events = 0;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .expect("read the anchor's file")
            == 0
        {
            return events;
        }
        events += u64::from(finder.find(&line).is_some());
    }
}

/// Times `f` in chunks of `CHUNK`, draining the tool between chunks outside the timing.
fn timed_in_chunks(b: &mut Bencher<'_>, anchor: &Anchor, mut f: impl FnMut()) {
    b.iter_custom(|iters| {
        let total = time_in_chunks(iters, |n| anchor.drain(n), &mut f);
        anchor.record_timing(total, iters);
        total
    });
}

/// p50 and p99 of single events, each timed on its own (`Instant` adds its own ~20-40 ns).
fn percentiles(anchor: &Anchor, emit: Emit<'_>) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(20 * CHUNK as usize);
    for _ in 0..20 {
        for _ in 0..CHUNK {
            let start = Instant::now();
            emit.event();
            samples.push(start.elapsed());
        }
        anchor.drain(CHUNK);
    }
    samples.sort_unstable();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

/// The median p50 and the median p99 of several rounds of [`percentiles`].
fn median_round(rounds: Vec<(Duration, Duration)>) -> (Duration, Duration) {
    let (mut p50s, mut p99s): (Vec<_>, Vec<_>) = rounds.into_iter().unzip();
    p50s.sort_unstable();
    p99s.sort_unstable();
    (p50s[p50s.len() / 2], p99s[p99s.len() / 2])
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct PerEvent {
    tool: Tool,
    mean: Duration,
    p50: Duration,
    p99: Duration,
    produced: u64,
    in_file: u64,
    sample: String,
}

#[derive(Default)]
struct Sustained {
    nanos: u64,
    produced: u64,
    in_file: u64,
    peak_rss_kib: u64,
}

impl Sustained {
    fn events_per_sec(&self) -> f64 {
        self.produced as f64 / (self.nanos.max(1) as f64 / 1e9)
    }
}

/// A request as a span: open, one event, close (the span's record written), timed in chunks
/// with the writer flushed between them outside the timing, as the events are. tracekit: a
/// `LogContext` with the three ids; the anchor: a plain `info_span!` with the same fields
/// bridged by tracing-opentelemetry (its defaults: the event becomes a span event) into an
/// SDK tracer provider whose simple processor feeds the same `FileSpanExporter`, the
/// standard stack without tracekit's layer. Returns the means (tracekit, anchor).
fn request_spans(c: &mut Criterion) -> (Duration, Duration) {
    use opentelemetry::trace::TracerProvider as _;

    let mut group = c.benchmark_group("anchors_request");
    group.throughput(Throughput::Elements(1));
    let mut means = [Duration::ZERO; 2];
    for (i, name) in ["tracekit", "tracing_opentelemetry"]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().expect("temporary directory");
        let writer_builder = LogWriter::builder()
            .root(dir.path())
            .compression(Compression::None)
            .max_file_size(1 << 40);
        let (dispatch, writer, guards): (Dispatch, LogWriter, Box<dyn std::any::Any>) = if i == 0 {
            let (dispatch, guard) = tracekit::builder()
                .root(dir.path())
                .filter("info")
                .panic_hook(false)
                .log_writer(writer_builder)
                .build()
                .expect("tracekit set-up");
            let writer = guard.writer().clone();
            (dispatch, writer, Box::new(guard))
        } else {
            let (writer, guard) = writer_builder.build().expect("writer");
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_simple_exporter(tracekit::exporters::FileSpanExporter::new(writer.clone()))
                .build();
            let subscriber = tracing_subscriber::registry()
                .with(LevelFilter::INFO)
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("anchor")));
            (
                Dispatch::new(subscriber),
                writer,
                Box::new((provider, guard)),
            )
        };
        let (mut nanos, mut count) = (0u128, 0u64);
        tracing::dispatcher::with_default(&dispatch, || {
            group.bench_function(BenchmarkId::new("open_event_close", name), |b| {
                b.iter_custom(|iters| {
                    let total = time_in_chunks(
                        iters,
                        |_| writer.flush().expect("flush"),
                        || {
                            if i == 0 {
                                LogContext::new()
                                    .request_id(black_box(REQUEST_ID))
                                    .user_id(USER_ID)
                                    .session_id(SESSION_ID)
                                    .in_scope(tracing_event);
                            } else {
                                tracing::info_span!(
                                    "request",
                                    request_id = black_box(REQUEST_ID),
                                    user_id = USER_ID,
                                    session_id = SESSION_ID
                                )
                                .in_scope(tracing_event);
                            }
                        },
                    );
                    nanos += total.as_nanos();
                    count += iters;
                    total
                })
            });
        });
        let written = std::fs::read_to_string(dir.path().join("logs/app/app.log"))
            .unwrap_or_default()
            .matches(r#""span":{"name":"request""#)
            .count();
        assert!(written > 0, "{name} wrote its requests' span records");
        drop(dispatch);
        drop(guards);
        means[i] = Duration::from_nanos((nanos / u128::from(count.max(1))) as u64);
    }
    group.finish();
    (means[0], means[1])
}

fn per_event(c: &mut Criterion) -> Vec<PerEvent> {
    let mut group = c.benchmark_group("anchors");
    group.throughput(Throughput::Elements(1));
    let mut results = Vec::new();
    for tool in Tool::PER_EVENT {
        let dir = tempfile::tempdir().expect("temporary directory");
        let anchor = Anchor::start(tool, dir.path());
        let (p50, p99) = anchor.in_request(|emit| {
            // Three rounds of single events, spread over this tool's benches: the host's
            // noise comes in bursts, and one round can land in one.
            let mut rounds = vec![percentiles(&anchor, emit)];
            let id = BenchmarkId::new("info_event", tool.name());
            match emit {
                Emit::Tracing => {
                    group.bench_function(id, |b| timed_in_chunks(b, &anchor, tracing_event))
                }
                Emit::Slog(logger) => {
                    group.bench_function(id, |b| timed_in_chunks(b, &anchor, || slog_event(logger)))
                }
            };
            rounds.push(percentiles(&anchor, emit));
            if tool != Tool::OtelQueue64k {
                let id = BenchmarkId::new("disabled_event", tool.name());
                match emit {
                    Emit::Tracing => group.bench_function(id, |b| b.iter(tracing_disabled)),
                    Emit::Slog(logger) => {
                        group.bench_function(id, |b| b.iter(|| slog_disabled(logger)))
                    }
                };
            }
            rounds.push(percentiles(&anchor, emit));
            median_round(rounds)
        });
        let mean = anchor.mean_event();
        let (produced, in_file, sample) = anchor.finish();
        results.push(PerEvent {
            tool,
            mean,
            p50,
            p99,
            produced,
            in_file,
            sample,
        });
    }
    group.finish();
    results
}

fn throughput(c: &mut Criterion) -> Vec<(Tool, usize, Sustained)> {
    let mut group = c.benchmark_group("anchors_throughput");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let mut results = Vec::new();
    for tool in Tool::THROUGHPUT {
        for threads in [1, 2] {
            let mut sustained = Sustained::default();
            let id = BenchmarkId::new(format!("{}_threads", threads), tool.name());
            group.bench_function(id, |b| {
                b.iter_custom(|iters| run_child(tool, threads, iters, &mut sustained))
            });
            results.push((tool, threads, sustained));
        }
    }
    group.finish();
    results
}

/// Runs `iters` throughput iterations in a child process and adds its report to `into`.
fn run_child(tool: Tool, threads: usize, iters: u64, into: &mut Sustained) -> Duration {
    let exe = std::env::current_exe().expect("this bench's path");
    let output = Command::new(exe)
        .env(CHILD_ENV, format!("{} {threads} {iters}", tool.name()))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the child");
    assert!(output.status.success(), "child failed: {}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix(CHILD_REPORT))
        .expect("the child's report");
    let n: Vec<u64> = report
        .split_whitespace()
        .map(|v| v.parse().expect("a number"))
        .collect();
    let [nanos, produced, in_file, rss] = n[..] else {
        panic!("bad report {report:?}")
    };
    into.nanos += nanos;
    into.produced += produced;
    into.in_file += in_file;
    into.peak_rss_kib = into.peak_rss_kib.max(rss);
    Duration::from_nanos(nanos)
}

/// The child: `iters` times, `BATCH` events from `threads` threads (each in its own request
/// context) until all are written; prints the time, the counts and the peak RSS.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [tool, threads, iters] = parts[..] else {
        panic!("{CHILD_ENV}={spec:?}: expected `<tool> <threads> <iterations>`")
    };
    let tool = Tool::from_name(tool).expect("a tool name");
    let threads: u64 = threads.parse().expect("a thread count");
    let iters: u64 = iters.parse().expect("an iteration count");
    let dir = tempfile::tempdir().expect("temporary directory");
    let anchor = Anchor::start(tool, dir.path());
    let per_thread = BATCH / threads;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    anchor.in_request(|emit| {
                        for _ in 0..per_thread {
                            emit.event();
                        }
                    })
                });
            }
        });
        anchor.drain(per_thread * threads);
        total += start.elapsed();
    }
    let (produced, in_file, _) = anchor.finish();
    println!(
        "{CHILD_REPORT} {} {produced} {in_file} {}",
        total.as_nanos(),
        peak_rss_kib()
    );
}

fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.1}x", x / base)
    } else {
        "-".into()
    }
}

/// What issue 3 measured tracing-subscriber `fmt().json()` + tracing-appender at, per event,
/// where it set its absolute targets: the yardstick for reading this run's times there.
const ISSUE_ANCHOR: Duration = Duration::from_nanos(2_900);

fn print_summary(
    per_event: &[PerEvent],
    requests: (Duration, Duration),
    sustained: &[(Tool, usize, Sustained)],
) {
    println!(
        "\nanchors: caller cost of an enabled event, chunks of {CHUNK} drained outside the timing \
         (mean: of every timed chunk, warm-up included; p50/p99: single events, median of \
         three rounds)"
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>12} {:>22}",
        "tool", "mean", "p50", "p99", "mean/tracekit", "in file / produced"
    );
    let base = per_event
        .iter()
        .find(|r| r.tool == Tool::Tracekit)
        .map_or(0.0, |r| r.mean.as_nanos() as f64);
    for r in per_event {
        println!(
            "{:<16} {:>10?} {:>10?} {:>10?} {:>12} {:>22}",
            r.tool.name(),
            r.mean,
            r.p50,
            r.p99,
            ratio(r.mean.as_nanos() as f64, base),
            format!(
                "{}/{} ({:.1}%)",
                r.in_file,
                r.produced,
                100.0 * r.in_file as f64 / r.produced.max(1) as f64
            ),
        );
    }
    let (context, plain_span) = requests;
    if context > Duration::ZERO {
        println!(
            "\nanchors: a request (open, one event, close): tracekit LogContext {context:?}, \
             tracing-opentelemetry plain span {plain_span:?}, ratio {}",
            ratio(context.as_nanos() as f64, plain_span.as_nanos() as f64)
        );
    }
    // This run's times on the machine where the targets were set: scaled by the anchor (when
    // a filter left its bench out, there is nothing to scale by).
    if let (Some(tk), Some(fmt)) = (
        per_event.iter().find(|r| r.tool == Tool::Tracekit),
        per_event
            .iter()
            .find(|r| r.tool == Tool::FmtJson && r.mean > Duration::ZERO),
    ) {
        let scale = ISSUE_ANCHOR.as_secs_f64() / fmt.mean.as_secs_f64();
        let at = |d: Duration| Duration::from_nanos((d.as_nanos() as f64 * scale) as u64);
        println!(
            "anchors: fmt_json here {:?} against {ISSUE_ANCHOR:?} in issue 3, so at that speed: \
             event p50 {:?}, p99 {:?}, LogContext {:?}",
            fmt.mean,
            at(tk.p50),
            at(tk.p99),
            at(context)
        );
    }
    println!("\nanchors: the first event line of each tool");
    for r in per_event {
        println!("{}: {}", r.tool.name(), r.sample);
    }
    println!(
        "\nanchors: throughput until written, {BATCH} events per iteration, one child process per \
         measurement (events/s: every child, warm-up included; in file: of the events made)"
    );
    println!(
        "{:<16} {:>7} {:>12} {:>16} {:>14} {:>10}",
        "tool", "threads", "events/s", "tracekit/this", "peak RSS MiB", "in file"
    );
    for (tool, threads, s) in sustained {
        let base = sustained
            .iter()
            .find(|(t, n, _)| *t == Tool::Tracekit && n == threads)
            .map_or(0.0, |(_, _, s)| s.events_per_sec());
        println!(
            "{:<16} {:>7} {:>12.0} {:>16} {:>14} {:>9.1}%",
            tool.name(),
            threads,
            s.events_per_sec(),
            ratio(base, s.events_per_sec()),
            s.peak_rss_kib / 1024,
            100.0 * s.in_file as f64 / s.produced.max(1) as f64
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let per_event = per_event(&mut c);
    let requests = request_spans(&mut c);
    let sustained = throughput(&mut c);
    print_summary(&per_event, requests, &sustained);
    c.final_summary();
}
