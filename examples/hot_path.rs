//! A driver for counting the instructions of tracekit's hot paths with callgrind, free of the
//! machine's noise (docs/perf-journal.md quotes its counts).
//!
//! ```sh
//! cargo build --release --example hot_path
//! for n in 20000 40000; do
//!   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=hp.$n \
//!     target/release/examples/hot_path event $n
//! done
//! # instructions per event on the calling thread: (total of hp.40000-01 - total of
//! # hp.20000-01) / 20000, totals from `callgrind_annotate hp.N-01 | grep TOTALS`
//! ```
//!
//! Modes, each repeated N times inside an outer `LogContext` (request, user and session
//! ids, component `candidate`), the writer flushed every 10,000:
//! - `event`: `tracing::info!` with a message and three fields (u64, &str, f64);
//! - `context`: a `LogContext` with new request and user ids, entered and dropped;
//! - `span`: a plain `info_span!` (tracing-opentelemetry) entered and dropped;
//! - `request`: the anchors' request: a `LogContext` with request, user and session ids around
//!   one `event`, at the top level (no outer context);
//! - `anchor`: the same request as a plain `info_span!` with the three ids as fields, bridged
//!   by tracing-opentelemetry into an SDK with a simple processor and tracekit's
//!   `FileSpanExporter` (the anchor of `benches/anchors.rs`);
//! - `floor`: what `context` asks of its dependencies alone (`tracing`, the registry,
//!   `opentelemetry` baggage and context: `benches/common/floor.rs`), inside an outer OTel
//!   context with the same three ids.
//!
//! Add `global` as a third argument to install the subscriber as the global default (what
//! `tracekit::init()` does) instead of a scoped one (what the benches do).

use std::hint::black_box;

#[path = "../benches/common/floor.rs"]
mod floor;

use tracekit::exporters::{Compression, LogWriter};
use tracekit::LogContext;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: hot_path event|context|span|request|anchor|floor N [global]");
        std::process::exit(2);
    };
    if !["event", "context", "span", "request", "anchor", "floor"].contains(&mode.as_str()) {
        eprintln!("unknown mode {mode:?}: event, context, span, request, anchor or floor");
        std::process::exit(2);
    }
    if mode == "anchor" || mode == "request" {
        return requests(mode == "anchor", n);
    }
    if mode == "floor" {
        let dispatch = floor::dispatch();
        let body = || {
            let _outer = floor::outer().attach();
            for _ in 0..n {
                floor::open_close();
            }
        };
        if args.next().as_deref() == Some("global") {
            tracing::dispatcher::set_global_default(dispatch).expect("no other global subscriber");
            body();
        } else {
            tracing::dispatcher::with_default(&dispatch, body);
        }
        return;
    }
    let global = args.next().as_deref() == Some("global");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter("info")
        .panic_hook(false)
        .log_writer(LogWriter::builder().compression(Compression::None))
        .build()
        .expect("tracekit set up");
    let writer = guard.writer().clone();
    let body = || {
        let _cx = LogContext::new()
            .request_id("req-abc-123")
            .user_id("user-456")
            .session_id("session-789")
            .component("candidate")
            .enter();
        for i in 0..n {
            match mode.as_str() {
                "event" => tracing::info!(
                    num_candidates = black_box(1500_u64),
                    source = "in_network",
                    duration_ms = black_box(45.2),
                    "Generated candidates"
                ),
                "context" => drop(black_box(
                    LogContext::new()
                        .request_id(black_box("req-1"))
                        .user_id("user-1")
                        .enter(),
                )),
                _ => drop(black_box(tracing::info_span!("work").entered())),
            }
            if i % 10_000 == 9_999 {
                writer.flush().expect("flush");
            }
        }
    };
    if global {
        tracing::dispatcher::set_global_default(dispatch).expect("no other global subscriber");
        body();
    } else {
        tracing::dispatcher::with_default(&dispatch, body);
    }
    drop(guard);
}

/// The anchors' request, `n` times: tracekit's `LogContext`, or the plain span `anchor`.
fn requests(anchor: bool, n: u64) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let writer_builder = LogWriter::builder()
        .root(dir.path())
        .compression(Compression::None);
    let (dispatch, writer, guards): (tracing::Dispatch, LogWriter, Box<dyn std::any::Any>) =
        if anchor {
            let (writer, guard) = writer_builder.build().expect("writer");
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_simple_exporter(tracekit::exporters::FileSpanExporter::new(writer.clone()))
                .build();
            let subscriber = tracing_subscriber::registry()
                .with(LevelFilter::INFO)
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("anchor")));
            let dispatch = tracing::Dispatch::new(subscriber);
            (dispatch, writer, Box::new((provider, guard)))
        } else {
            let (dispatch, guard) = tracekit::builder()
                .root(dir.path())
                .filter("info")
                .panic_hook(false)
                .log_writer(writer_builder)
                .build()
                .expect("tracekit set up");
            let writer = guard.writer().clone();
            (dispatch, writer, Box::new(guard))
        };
    let event = || {
        tracing::info!(
            num_candidates = black_box(1500_u64),
            source = "in_network",
            duration_ms = black_box(45.2),
            "Generated candidates"
        )
    };
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..n {
            if anchor {
                tracing::info_span!(
                    "request",
                    request_id = black_box("req-abc-123"),
                    user_id = "user-456",
                    session_id = "session-789"
                )
                .in_scope(event);
            } else {
                LogContext::new()
                    .request_id(black_box("req-abc-123"))
                    .user_id("user-456")
                    .session_id("session-789")
                    .in_scope(event);
            }
            if i % 10_000 == 9_999 {
                writer.flush().expect("flush");
            }
        }
    });
    drop(dispatch);
    drop(guards);
}
