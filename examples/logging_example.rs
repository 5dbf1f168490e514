//! The seed's usage examples with tracekit, one small section each.
//!
//! ```text
//! cargo run --example logging_example                 # writes under ./trace
//! TRACEKIT_DIR=/tmp/trace cargo run --example logging_example
//! ```
//!
//! Nothing is printed by the library: look at `trace/logs/<component>/<component>.log`,
//! `trace/logs/errors/errors.log`, or run the analysis tools on the directory.

use std::fmt;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use serde_json::json;
use tracekit::LogContext;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Root directory: TRACEKIT_DIR, else `trace`. Levels: TRACEKIT_LOG / RUST_LOG, else info.
    let guard = tracekit::builder()
        .service_name("recommendation-engine")
        .component_for_target("logging_example::ranking", "ranking")
        .init();

    basic_logging();
    request_context();
    performance_tracking()?;
    error_handling();
    full_tracing()?;
    critical();
    redaction();
    opentelemetry_api(&guard);

    // Dropping the guard flushes every span and record to the files.
    let logs = guard.writer().root().join("logs");
    drop(guard);
    // The library itself never prints; the example tells you where to look.
    println!("wrote the examples' records under {}", logs.display());
    println!("try: cargo run --bin log_analyzer -- summary");
    Ok(())
}

/// Basic logging: a component logger (the seed's `get_logger`) and plain `tracing` macros.
fn basic_logging() {
    let logger = tracekit::get_logger(module_path!(), "candidate");
    logger.info(
        "Processing started",
        json!({ "user_id": "user-456", "num_candidates": 1500 }),
    );

    // Plain tracing: the component comes from the `component` field, an enclosing span's
    // `component`, the target mapping (see `main`), or `app`.
    tracing::info!(
        component = "candidate",
        in_network = 750_u64,
        out_network = 750_u64,
        "Generated candidates"
    );
    ranking::score();
}

mod ranking {
    /// The target `logging_example::ranking` maps to the `ranking` component.
    pub fn score() {
        tracing::debug!(model = "v2", "not written at the default level (info)");
        tracing::info!(scored = 1500_u64, duration_ms = 45.2, "Candidates scored");
    }
}

/// Request context: every line and span inside carries request, user and session ids.
fn request_context() {
    let logger = tracekit::get_logger(module_path!(), "serving");
    LogContext::new()
        .request_id("req-123")
        .user_id("user-456")
        .session_id("session-789")
        .in_scope(|| {
            logger.info("Request received", ());
            // A span inside the context: its record and its lines carry the same ids.
            tracing::info_span!("serve_recommendations", component = "serving").in_scope(|| {
                tracing::info!(count = 20_u64, "Recommendations served");
            });
            // Headers for a downstream call: W3C traceparent + baggage with the ids.
            let mut headers = std::collections::HashMap::new();
            tracekit::inject(&mut headers);
            tracing::debug!(traceparent = %headers["traceparent"], "Calling the ranking service");
            logger.info("Request completed", json!({ "duration_ms": 87.5 }));
        });
}

#[derive(Debug)]
struct CandidateCountError(u32);

impl fmt::Display for CandidateCountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid candidate count {}", self.0)
    }
}

impl std::error::Error for CandidateCountError {}

/// Error handling: `#[log_errors]`, an error field or `Logger::exception` write the record's
/// `exception` (type, message, source chain); an `ERROR` inside a span marks the span as
/// failed.
fn error_handling() {
    let _cx = LogContext::new().request_id("req-124").enter();
    tracing::info_span!("generate_candidate_pool", component = "candidate").in_scope(|| {
        let err = CandidateCountError(0);
        tracing::error!(
            error = &err as &dyn std::error::Error,
            requested = 0_u64,
            "Candidate generation failed"
        );
        // The decorator: the Err is logged with its exception and arguments, then returned.
        if let Err(err) = critical_operation("fifteen hundred") {
            tracing::warn!(%err, "Falling back to the default count");
        }
    });
    let logger = tracekit::get_logger(module_path!(), "candidate");
    if let Err(err) = "fifteen hundred".parse::<u32>() {
        logger.exception(
            "Invalid candidate count",
            &err,
            json!({ "raw": "fifteen hundred" }),
        );
    }
}

/// A multi-threaded tokio runtime for the async sections (the decorators work the same on
/// sync fns and methods).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
}

/// Performance tracking: a timing record per call (also copied to performance/) with the
/// duration, the status and the arguments.
fn performance_tracking() -> Result<(), Box<dyn std::error::Error>> {
    let candidates = runtime()?.block_on(
        LogContext::new()
            .request_id("req-125")
            .user_id("user-456")
            .component("candidate")
            .instrument(generate_candidates("user-456", 1500)),
    );
    tracing::info!(
        component = "candidate",
        count = candidates.len(),
        "Pool ready"
    );
    Ok(())
}

/// Full tracing: span, entry, exit (the timing record) and errors of a call, in `serving`.
fn full_tracing() -> Result<(), Box<dyn std::error::Error>> {
    runtime()?.block_on(
        LogContext::new()
            .request_id("req-126")
            .user_id("user-456")
            .instrument(async {
                let candidates: Vec<u64> = (0..100).collect();
                let served = serve_recommendations("user-456", &candidates).await;
                tracing::info!(component = "serving", served = served.len(), "Done");
            }),
    );
    Ok(())
}

/// Performance tracking (the seed's `@log_performance(log_args=True)`).
#[tracekit::log_performance(log_args = true)]
async fn generate_candidates(user_id: &str, count: usize) -> Vec<u64> {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let _ = user_id;
    (0..count as u64).collect()
}

/// Error handling (the seed's `@log_errors(reraise=True)`): type, message, source chain and
/// the arguments land in errors/; the error is returned unchanged.
#[tracekit::log_errors(reraise = true)]
fn critical_operation(raw_count: &str) -> Result<u32, std::num::ParseIntError> {
    raw_count.parse()
}

/// Full tracing (the seed's `@trace_execution(component="serving")`): every line inside goes
/// to `serving` and nests under the call's span.
#[tracekit::trace_execution(component = "serving", skip(candidates))]
async fn serve_recommendations(user_id: &str, candidates: &[u64]) -> Vec<u64> {
    tracing::info!(user_id, pool = candidates.len(), "Ranking the pool");
    candidates.iter().rev().take(20).copied().collect()
}

/// CRITICAL: system-threatening errors, copied to `errors/errors.log` like ERROR.
fn critical() {
    tracekit::critical!(
        component = "serving",
        free_mb = 12_u64,
        "Model store unreachable"
    );
    tracekit::get_logger(module_path!(), "feedback")
        .critical("Feedback queue lost", json!({ "pending": 5000 }));
}

/// Redaction: keys containing password, token, secret or api_key are written as "[REDACTED]".
fn redaction() {
    tracing::info!(
        component = "ab_test",
        user = "ada",
        api_key = "sk-live-123",
        "Experiment client configured"
    );
    tracekit::get_logger(module_path!(), "ab_test").info(
        "Login",
        json!({ "user": "ada", "credentials": { "password": "hunter2", "session_token": "t" } }),
    );
}

/// The OpenTelemetry API: the global tracer and the logs API land in the same files.
fn opentelemetry_api(guard: &tracekit::Guard) {
    let tracer = opentelemetry::global::tracer("exploration");
    tracer.in_span("explore", |cx| {
        cx.span()
            .set_attribute(KeyValue::new("component", "exploration"));
        cx.span().set_attribute(KeyValue::new("epsilon", 0.1));
        let logger = guard.logger_provider().logger("exploration");
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_body("Exploration slot filled".into());
        record.add_attribute("component", "exploration");
        record.add_attribute("slot", 3_i64);
        logger.emit(record);
    });
}
