//! End to end: encode, queue and batched write, lossless, until flushed.
//!
//! Each iteration writes `BATCH` records spread over 1 or 2 producer threads, then waits
//! for `flush()`: the time is what it takes for all of them to reach the files. Peak RSS of
//! the whole bench process is printed at the end.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry::trace::{SpanId, TraceId};
use tracekit::exporters::{CodeContext, Compression, Level, LogWriter, Record, Value};

const BATCH: u64 = 200_000;

fn write_records(writer: &LogWriter, n: u64, thread: u64) {
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let ctx = CodeContext {
        function: Some("generate_candidate_pool"),
        file: Some("src/candidate_generation.rs"),
        line: Some(123),
        ..CodeContext::here()
    };
    for i in 0..n {
        let data = [
            ("num_candidates", Value::U64(1500)),
            ("thread", Value::U64(thread)),
            ("seq", Value::U64(i)),
        ];
        let record = Record::new(Level::INFO, "candidate", "Generated candidates")
            .request_id("req-abc-123")
            .user_id("user-456")
            .session_id("session-789")
            .trace(trace_id, span_id)
            .data(&data)
            .context(ctx);
        writer.write(black_box(&record)).unwrap();
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("writer_end_to_end");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    // The defaults (100 MiB files, gzip level 1 on the archiver thread, 16 MiB queue), with
    // two backups kept so the disk stays bounded; then the same without compression, to show
    // what the archiver costs on two cores.
    for (name, compression) in [
        ("gzip", Compression::default()),
        ("plain", Compression::None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, guard) = LogWriter::builder()
            .root(dir.path())
            .compression(compression)
            .max_backups(2)
            .build()
            .unwrap();
        let writer = Arc::new(writer);
        for threads in [1u64, 2] {
            group.bench_function(format!("lossless_{threads}_threads_{name}"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        std::thread::scope(|s| {
                            for t in 0..threads {
                                let writer = Arc::clone(&writer);
                                s.spawn(move || write_records(&writer, BATCH / threads, t));
                            }
                        });
                        writer.flush().unwrap();
                    }
                    start.elapsed()
                })
            });
        }
        let status = writer.status();
        drop(guard);
        assert_eq!(
            status.records_dropped + status.records_lost,
            0,
            "{status:?}"
        );
        println!(
            "writer_end_to_end/{name}: {} records written, {} rotations, {} archives compressed",
            status.records_written, status.rotations, status.archives_compressed
        );
    }
    group.finish();
    println!(
        "writer_end_to_end: peak RSS of the bench process {} KiB",
        peak_rss_kib()
    );
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
