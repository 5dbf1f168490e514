//! The shipped Collector config (`trace/otelcol/config.yaml`) in the real OpenTelemetry
//! Collector: it reads files the project wrote and forwards them over OTLP/HTTP to rotel,
//! which prints what it received.

mod interop_support;

use std::error::Error;
use std::fmt;
use std::process::Command;
use std::time::Duration;

use interop_support::{main_records, peers, record_nanos, severity, Process, Rotel};
use tracekit::LogContext;

#[derive(Debug)]
struct Timeout;
impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upstream timed out")
    }
}
impl Error for Timeout {}

/// Writes records of all six levels, with and without request context, inside spans, with an
/// exception; ERROR/CRITICAL are copied to errors/, timing records to performance/ and `app`
/// records to the daily file: copies the config must skip.
fn write_records(root: &std::path::Path) {
    let (dispatch, guard) = tracekit::builder()
        .root(root)
        .filter("trace")
        .panic_hook(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::trace!("trace level");
        tracing::debug!(component = "ranking", "debug level");
        LogContext::new()
            .request_id("req-col-1")
            .user_id("user-7")
            .session_id("sess-9")
            .in_scope(|| {
                let span = tracing::info_span!("rank", component = "ranking");
                let _e = span.enter();
                tracing::info!(num_candidates = 1500_u64, model = "v2", "ranked");
                tracing::warn!(latency_ms = 12.5, "slow model");
                tracing::error!(error = &Timeout as &dyn Error, "upstream failed");
                tracekit::critical!("store down");
                tracing::info!(
                    { tracekit::TIMING_FIELD } = true,
                    duration_ms = 3.5,
                    "timed"
                );
            });
    });
    drop(guard);
}

#[test]
fn shipped_config_forwards_the_files_to_an_otlp_receiver() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    write_records(&root);
    assert!(root.join("logs/errors/errors.log").exists());
    assert!(root.join("logs/performance/performance.log").exists());
    assert!(root.join("logs/app/app_daily.log").exists());
    let records = main_records(&root);
    assert_eq!(records.len(), 9, "7 events and 2 spans: {records:#?}");

    let mut rotel = Rotel::start(&peers, dir.path());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/trace/otelcol/config.yaml");
    let mut cmd = Command::new(peers.otelcol());
    cmd.arg("--config")
        .arg(config)
        .env("TRACEKIT_DIR", &root)
        .env("TRACEKIT_OTLP_ENDPOINT", rotel.endpoint())
        .env("OTEL_SERVICE_NAME", "collector-test");
    let col_log = dir.path().join("otelcol.out");
    let mut collector = Process::spawn("otelcol-contrib", cmd, &col_log);

    let (logs, _) = rotel.wait_for(records.len(), 0, Duration::from_secs(60));
    collector.assert_running(&col_log);
    // Time for a duplicate (a copy from errors/, performance/ or the daily file) to show up.
    std::thread::sleep(Duration::from_secs(2));
    let logs_now = rotel.logs();
    assert_eq!(
        logs_now.len(),
        records.len(),
        "every record exactly once:\n{}",
        rotel.output()
    );
    drop(collector);

    for record in &records {
        let message = record["message"].as_str().unwrap();
        let found: Vec<_> = logs.iter().filter(|l| l.body() == message).collect();
        assert_eq!(found.len(), 1, "{message}: {found:#?}");
        let log = found[0];
        let ts = record["timestamp"].as_str().unwrap();
        assert_eq!(
            log.field("Timestamp").parse::<u128>().unwrap(),
            record_nanos(ts),
            "{message}: time to the microsecond"
        );
        let level = record["level"].as_str().unwrap();
        assert_eq!(log.severity_number(), Some(severity(level)), "{message}");
        assert_eq!(log.field("SeverityText"), level);
        assert_eq!(
            log.field("Trace ID"),
            record["trace_id"].as_str().unwrap_or(""),
            "{message}"
        );
        assert_eq!(
            log.field("Span ID"),
            record["span_id"].as_str().unwrap_or(""),
            "{message}"
        );
        for (key, attr) in [
            ("request_id", "request.id"),
            ("user_id", "user.id"),
            ("session_id", "session.id"),
            ("component", "component"),
            ("logger", "logger"),
        ] {
            assert_eq!(
                log.str_attr(attr),
                record[key].as_str(),
                "{message}: {key} -> {attr}"
            );
        }
        assert_eq!(
            log.str_attr("code.file.path"),
            record["context"]["file"].as_str(),
            "{message}"
        );
        assert_eq!(
            log.num_attr("process.pid"),
            record["context"]["process"].as_f64(),
            "{message}"
        );
        assert_eq!(
            log.resource.get("service.name").map(String::as_str),
            Some("Str(collector-test)")
        );
        for gone in [
            "timestamp",
            "level",
            "message",
            "trace_id",
            "request_id",
            "context",
        ] {
            assert!(!log.attributes.contains_key(gone), "{message}: {gone} left");
        }
    }
    let ranked = logs.iter().find(|l| l.body() == "ranked").unwrap();
    let data = &ranked.attributes["data"];
    assert!(
        data.contains("num_candidates") && data.contains("1500") && data.contains("model:Str(v2)"),
        "data as a map attribute: {data}"
    );
    let failed = logs.iter().find(|l| l.body() == "upstream failed").unwrap();
    assert_eq!(failed.str_attr("exception.type"), Some("Timeout"));
    assert_eq!(
        failed.str_attr("exception.message"),
        Some("upstream timed out")
    );
    let span_record = logs.iter().find(|l| l.body() == "rank").unwrap();
    assert!(span_record.attributes["span"].contains("duration_ms"));
}
