//! The tracing bridge on the caller's thread: an enabled `INFO` event with three fields inside
//! a `LogContext`, a disabled event, opening and closing a `LogContext` (its span record
//! included) and the floor under it (what its dependencies alone cost: `common/floor.rs`),
//! and the anchor: tracing-subscriber's `fmt().json()` formatting the same event
//! (into `io::sink`, so without any I/O: a conservative anchor).
//!
//! The tracekit subscriber writes into a temporary directory through the lossless writer.
//! Events are timed in chunks of `CHUNK` with a flush between chunks, outside the timing: the
//! numbers are the caller's own cost, not the disk's (sustained throughput is the `writer`
//! bench's subject). Archives are not compressed, so that no gzip thread competes for the CPU,
//! and events go to the `candidate` component, which has no daily file (as in the `writer`
//! bench).
//! At the end the bench prints the p50 and p99 of single enabled events, timed one by one.

use std::hint::black_box;
use std::time::{Duration, Instant};

mod common;
#[path = "common/floor.rs"]
mod floor;

use common::{time_in_chunks, CHUNK};
use criterion::{criterion_group, criterion_main, Bencher, Criterion, Throughput};
use tracekit::exporters::{Compression, LogWriter};
use tracekit::LogContext;

fn timed_in_chunks(b: &mut Bencher<'_>, writer: &LogWriter, mut f: impl FnMut()) {
    b.iter_custom(|iters| time_in_chunks(iters, |_| writer.flush().unwrap(), &mut f));
}

fn info_event() {
    tracing::info!(
        num_candidates = black_box(1500_u64),
        source = "in_network",
        duration_ms = black_box(45.2),
        "Generated candidates"
    )
}

/// p50 and p99 of single events, each timed on its own (`Instant` costs ~20 ns of it).
fn percentiles(writer: &LogWriter) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(200_000);
    for _ in 0..20 {
        for _ in 0..CHUNK {
            let start = Instant::now();
            info_event();
            samples.push(start.elapsed());
        }
        writer.flush().unwrap();
    }
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

/// The `data` of the `Logger` bench.
#[derive(serde::Serialize)]
struct Generated {
    num_candidates: u64,
    source: &'static str,
    duration_ms: f64,
}

/// Events per iteration of the sustained bench, half on each of two threads.
const SUSTAINED_BATCH: u64 = 200_000;

/// Two threads log `SUSTAINED_BATCH` events inside their own request contexts, then the writer
/// is flushed: the time until everything is in the files.
fn sustained(dispatch: &tracing::Dispatch, writer: &LogWriter) {
    std::thread::scope(|s| {
        for t in 0..2_u64 {
            s.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    let _cx = LogContext::new()
                        .request_id(format!("req-{t}"))
                        .component("candidate")
                        .enter();
                    for _ in 0..SUSTAINED_BATCH / 2 {
                        info_event();
                    }
                })
            });
        }
    });
    writer.flush().unwrap();
}

/// Peak resident set size of the process, from `/proc/self/status`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bridge(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter("info")
        .panic_hook(false)
        .log_writer(LogWriter::builder().compression(Compression::None))
        .build()
        .unwrap();
    let mut group = c.benchmark_group("bridge");
    group.throughput(Throughput::Elements(1));
    let writer = guard.writer().clone();
    let mut p = None;
    tracing::dispatcher::with_default(&dispatch, || {
        let _cx = LogContext::new()
            .request_id("req-abc-123")
            .user_id("user-456")
            .session_id("session-789")
            .component("candidate")
            .enter();
        group.bench_function("info_event_3_fields_in_context", |b| {
            timed_in_chunks(b, &writer, info_event)
        });
        p = Some(percentiles(&writer));
        let logger = tracekit::get_logger("bench", "candidate");
        group.bench_function("logger_info_3_fields_in_context", |b| {
            timed_in_chunks(b, &writer, || {
                logger.info(
                    "Generated candidates",
                    Generated {
                        num_candidates: black_box(1500),
                        source: "in_network",
                        duration_ms: black_box(45.2),
                    },
                )
            })
        });
        group.bench_function("disabled_event", |b| {
            b.iter(|| tracing::debug!(num_candidates = black_box(1500_u64), "not written"))
        });
        group.bench_function("span_open_close", |b| {
            // The reference for the LogContext: a plain span, its OTel span and span record.
            timed_in_chunks(b, &writer, || {
                drop(black_box(tracing::info_span!("work").entered()));
            })
        });
        group.bench_function("log_context_open_close", |b| {
            timed_in_chunks(b, &writer, || {
                let cx = LogContext::new()
                    .request_id(black_box("req-1"))
                    .user_id("user-1")
                    .enter();
                drop(black_box(cx));
            })
        });
    });
    // The dependencies' share of the LogContext above (see `common/floor.rs`).
    let registry_only = floor::dispatch();
    tracing::dispatcher::with_default(&registry_only, || {
        let _outer = floor::outer().attach();
        group.bench_function("log_context_floor", |b| b.iter(floor::open_close));
    });
    group.bench_function("get_otel_context_of_started_span", |b| {
        // What the event layer pays once per span (plus starting the OTel span) for its ids.
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("probe");
            let id = span.id().unwrap();
            b.iter(|| tracing_opentelemetry::get_otel_context(black_box(&id), &dispatch))
        })
    });
    group.throughput(Throughput::Elements(SUSTAINED_BATCH));
    group.sample_size(10);
    group.bench_function("sustained_2_threads_until_flushed", |b| {
        b.iter(|| sustained(&dispatch, &writer))
    });
    group.sample_size(100);
    group.throughput(Throughput::Elements(1));
    let status = writer.status();
    assert_eq!(status.records_dropped + status.records_lost, 0, "lossless");
    drop(guard);
    if let Some(kib) = peak_rss_kib() {
        println!("bridge: peak RSS {} MiB", kib / 1024);
    }
    if let Some((p50, p99)) = p {
        println!("bridge/info_event_3_fields_in_context single events: p50 {p50:?}, p99 {p99:?}");
    }

    let anchor = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(anchor, || {
        let _span =
            tracing::info_span!("request", request_id = "req-abc-123", user_id = "user-456")
                .entered();
        group.bench_function("anchor_fmt_json_info_event_3_fields", |b| {
            b.iter(info_event)
        });
    });
    group.finish();
}

criterion_group!(benches, bridge);
criterion_main!(benches);
