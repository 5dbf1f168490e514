//! The cost of turning one record into one JSON line in a reused buffer.
//!
//! `tracekit` is the `RecordEncoder`; the anchors encode the same content with serde_json,
//! once from a derived struct (timestamp pre-formatted, which favours the anchor) and once
//! through a `serde_json::Value` built per record (what a dynamic logger does).
//! `tracekit_span_record` is the span record a `LogContext` writes when it closes (its ids,
//! start, end and duration), which has no anchor here: it says how much of the context's
//! open + close is this encoding.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry::trace::{SpanId, TraceId};
use serde::Serialize;
use tracekit::exporters::{CodeContext, Level, Record, RecordEncoder, Value};

#[derive(Serialize)]
struct AnchorData {
    num_candidates: u64,
    in_network: u64,
    duration_ms: f64,
}

#[derive(Serialize)]
struct AnchorContext<'a> {
    function: &'a str,
    file: &'a str,
    line: u32,
    thread: u64,
    process: u32,
}

#[derive(Serialize)]
struct AnchorRecord<'a> {
    timestamp: &'a str,
    level: &'a str,
    component: &'a str,
    request_id: &'a str,
    user_id: &'a str,
    session_id: &'a str,
    trace_id: &'a str,
    span_id: &'a str,
    message: &'a str,
    data: AnchorData,
    context: AnchorContext<'a>,
}

fn encode(c: &mut Criterion) {
    let encoder = RecordEncoder::default();
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let now = SystemTime::now();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));

    group.bench_function("tracekit_span_record", |b| {
        let mut buf = Vec::with_capacity(1024);
        let start = now - std::time::Duration::from_micros(52);
        b.iter(|| {
            buf.clear();
            let info = tracekit::exporters::SpanInfo {
                name: "request",
                kind: "internal",
                parent_span_id: Some(span_id),
                start,
                end: black_box(now),
                status: tracekit::exporters::SpanStatus::Unset,
                attributes: None,
                links: &[],
            };
            let r = Record::new(Level::INFO, "candidate", "request")
                .timestamp(now)
                .logger("tracekit")
                .request_id(black_box("req-1"))
                .user_id("user-1")
                .session_id("session-789")
                .trace(trace_id, span_id)
                .context(CodeContext {
                    thread: Some(6834),
                    process: Some(6834),
                    ..CodeContext::default()
                })
                .span(info);
            black_box(encoder.encode(&r, &mut buf));
        })
    });

    group.bench_function("tracekit_typical", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            buf.clear();
            let data = [
                ("num_candidates", Value::U64(1500)),
                ("in_network", Value::U64(750)),
                ("duration_ms", Value::F64(45.2)),
            ];
            let record = Record::new(Level::INFO, "candidate", "Generated candidates")
                .timestamp(black_box(now))
                .request_id(black_box("req-abc-123"))
                .user_id("user-456")
                .session_id("session-789")
                .trace(trace_id, span_id)
                .data(&data)
                .context(CodeContext {
                    function: Some("generate_candidate_pool"),
                    file: Some("src/candidate_generation.rs"),
                    line: Some(123),
                    thread: Some(12345),
                    process: Some(67890),
                });
            encoder.encode(&record, &mut buf);
            black_box(&buf);
        })
    });

    // The seed's example line exactly: four data fields, no trace context.
    group.bench_function("tracekit_seed_example", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            buf.clear();
            let data = [
                ("num_candidates", Value::U64(1500)),
                ("in_network", Value::U64(750)),
                ("out_network", Value::U64(750)),
                ("duration_ms", Value::F64(45.2)),
            ];
            let record = Record::new(Level::INFO, "candidate", "Generated candidates")
                .timestamp(black_box(now))
                .request_id(black_box("req-abc-123"))
                .user_id("user-456")
                .session_id("session-789")
                .data(&data)
                .context(CodeContext {
                    function: Some("generate_candidate_pool"),
                    file: Some("candidate_generation.py"),
                    line: Some(123),
                    thread: Some(12345),
                    process: Some(67890),
                });
            encoder.encode(&record, &mut buf);
            black_box(&buf);
        })
    });

    group.bench_function("serde_json_derive", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            buf.clear();
            let record = AnchorRecord {
                timestamp: black_box("2025-11-16T12:34:56.789123Z"),
                level: "INFO",
                component: "candidate",
                request_id: black_box("req-abc-123"),
                user_id: "user-456",
                session_id: "session-789",
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                span_id: "00f067aa0ba902b7",
                message: "Generated candidates",
                data: AnchorData {
                    num_candidates: 1500,
                    in_network: 750,
                    duration_ms: 45.2,
                },
                context: AnchorContext {
                    function: "generate_candidate_pool",
                    file: "src/candidate_generation.rs",
                    line: 123,
                    thread: 12345,
                    process: 67890,
                },
            };
            serde_json::to_writer(&mut buf, &record).unwrap();
            buf.push(b'\n');
            black_box(&buf);
        })
    });

    group.bench_function("serde_json_value", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            buf.clear();
            let record = serde_json::json!({
                "timestamp": black_box("2025-11-16T12:34:56.789123Z"),
                "level": "INFO",
                "component": "candidate",
                "request_id": black_box("req-abc-123"),
                "user_id": "user-456",
                "session_id": "session-789",
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "message": "Generated candidates",
                "data": {"num_candidates": 1500, "in_network": 750, "duration_ms": 45.2},
                "context": {"function": "generate_candidate_pool", "file": "src/candidate_generation.rs",
                            "line": 123, "thread": 12345, "process": 67890},
            });
            serde_json::to_writer(&mut buf, &record).unwrap();
            buf.push(b'\n');
            black_box(&buf);
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
