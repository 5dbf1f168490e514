//! A service instrumented with the OpenTelemetry API only (no `tracing`), writing the tracekit
//! record contract through `FileSpanExporter` and `FileLogExporter`.
//!
//! ```text
//! cargo run -p tracekit-exporters --example otel_only
//! TRACEKIT_DIR=/tmp/trace cargo run -p tracekit-exporters --example otel_only
//! ```

use std::error::Error;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracekit_exporters::{FileLogExporter, FileSpanExporter, LogWriter};

fn main() -> Result<(), Box<dyn Error>> {
    // One writer for both exporters; the root is TRACEKIT_DIR, else `trace`.
    let (writer, guard) = LogWriter::builder().build()?;

    // Simple processors: the writer already queues and batches on its own thread.
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(writer.clone()).with_default_component("api"))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_simple_exporter(FileLogExporter::new(writer.clone()).with_default_component("api"))
        .build();

    let tracer = tracer_provider.tracer("recommendation-service");
    let logger = logger_provider.logger("recommendation-service");
    serve_request(&tracer, &logger);

    // Shutting the providers down flushes the writer; dropping the guard stops it.
    tracer_provider.shutdown()?;
    logger_provider.shutdown()?;
    let status = writer.status();
    drop(guard);

    let logs = writer.root().join("logs");
    println!(
        "wrote {} records under {}",
        status.records_written,
        logs.display()
    );
    for file in [
        "api/api.log",
        "ranking/ranking.log",
        "errors/errors.log",
        "performance/performance.log",
    ] {
        println!("  {}", logs.join(file).display());
    }
    Ok(())
}

/// One request, instrumented with the OpenTelemetry API only.
fn serve_request<T, L>(tracer: &T, logger: &L)
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
    L: Logger,
{
    let request = tracer
        .span_builder("GET /recommendations")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("request.id", "req-abc-123"),
            KeyValue::new("user.id", "user-456"),
            KeyValue::new("session.id", "sess-789"),
            KeyValue::new("http.request.method", "GET"),
        ]);
    tracer.in_span_with_builder(request, |cx| {
        // The SDK logger takes the trace context from the active span.
        emit(
            logger,
            Severity::Info,
            "Request received",
            [("num_requested", 50_i64.into())],
        );

        tracer.in_span("rank_candidates", |cx| {
            let span = cx.span();
            span.set_attribute(KeyValue::new("component", "ranking"));
            span.set_attribute(KeyValue::new("num_candidates", 1500_i64));
            emit(
                logger,
                Severity::Info,
                "Ranked candidates",
                [
                    ("component", "ranking".into()),
                    ("tracekit.timing", true.into()),
                    ("duration_ms", 45.2.into()),
                    ("model", "gbdt-v3".into()),
                ],
            );
        });

        emit(
            logger,
            Severity::Warn,
            "Feature store slow, using cached features",
            [("latency_ms", 870_i64.into())],
        );
        emit(
            logger,
            Severity::Error,
            "Feature store unavailable",
            [
                ("exception.type", "ConnectionError".into()),
                (
                    "exception.message",
                    "connection refused (10.0.0.7:6379)".into(),
                ),
                (
                    "exception.stacktrace",
                    "at feature_store::fetch\nat rank_candidates".into(),
                ),
                ("code.function.name", "feature_store::fetch".into()),
                ("code.file.path", "src/feature_store.rs".into()),
                ("code.line.number", 88_i64.into()),
            ],
        );
        emit(logger, Severity::Fatal, "Giving up on request", []);
        cx.span()
            .set_status(Status::error("feature store unavailable"));
    });
}

fn emit<L: Logger, const N: usize>(
    logger: &L,
    severity: Severity,
    body: &'static str,
    attributes: [(&'static str, AnyValue); N],
) {
    let mut record = logger.create_log_record();
    record.set_severity_number(severity);
    record.set_severity_text(severity.name());
    record.set_body(body.into());
    record.add_attributes(attributes);
    logger.emit(record);
}
