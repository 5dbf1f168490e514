//! Whole-process behaviour, each case in a child process (this binary re-executed with
//! `BRIDGE_CHILD` set; `harness = false`, so the child's stdout and stderr are its own):
//! nothing on stdout/stderr, the panic hook, a program using only the OpenTelemetry API, and
//! volume (1e6 events and 1e5 spans, all present after the guard drops).

mod bridge_support;

use std::path::Path;
use std::process::{Command, Output};

use bridge_support::{component_records, file_records};
use serde_json::Value;

const CHILD: &str = "BRIDGE_CHILD";

fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let cases: [(&str, fn()); 7] = [
        ("child_logging_at_every_level_is_silent", silent),
        ("tracekit_log_wins_over_rust_log", filter_precedence),
        ("panic_hook_writes_a_critical_record", panic_hook),
        ("opentelemetry_api_only_program", otel_only),
        (
            "million_events_all_present_after_guard_drop",
            million_events,
        ),
        ("tight_loop_of_spans_is_lossless", many_spans),
        (
            "an_event_keeps_its_scope_while_its_fields_log",
            reentrant_event,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut passed = 0;
    for (name, case) in cases {
        if filter.iter().all(|f| name.contains(f.as_str())) {
            case();
            println!("test {name} ... ok");
            passed += 1;
        }
    }
    // A panic above fails the binary; reaching here means every selected case passed.
    println!(
        "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; {} filtered out",
        cases.len() - passed
    );
}

fn run_child(mode: &str, root: &Path) -> Output {
    child_command(mode, root)
        .env("TRACEKIT_LOG", "trace")
        .output()
        .unwrap()
}

fn child_command(mode: &str, root: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD, mode)
        .env("TRACEKIT_DIR", root)
        .env("OTEL_SERVICE_NAME", "bridge-test")
        .env_remove("RUST_LOG");
    command
}

fn filter_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let out = child_command("filter", dir.path())
        .env("TRACEKIT_LOG", "warn")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let messages: Vec<_> = component_records(dir.path())
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"warn".to_owned()));
    assert!(messages.contains(&"logger warning".to_owned()));

    // Without TRACEKIT_LOG, RUST_LOG applies.
    let dir = tempfile::tempdir().unwrap();
    let out = child_command("filter", dir.path())
        .env_remove("TRACEKIT_LOG")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let records = component_records(dir.path());
    assert!(records.iter().any(|r| r["message"] == "debug"));
    assert_eq!(records.len(), 5);
}

fn child(mode: &str) {
    match mode {
        "silent" => child_silent(),
        "panic" => {
            let _guard = tracekit::init();
            let _cx = tracekit::LogContext::new().request_id("req-panic").enter();
            panic!("boom {}", 42);
        }
        "otel-only" => child_otel_only(),
        "filter" => {
            let _guard = tracekit::init();
            tracing::debug!("debug");
            tracing::info!("info");
            tracing::warn!("warn");
            tracekit::get_logger("child", "ranking").info("logger info", ());
            tracekit::get_logger("child", "ranking").warning("logger warning", ());
        }
        "reentrant" => child_reentrant(),
        other => unreachable!("unknown mode {other}"),
    }
}

/// A field whose `Display` changes the current span's request id and logs: the nested event
/// reaches the subscriber (a global one; a scoped one would drop it) while the outer event is
/// written, and looks the span's scope up again, replacing on the layer's stack of entered
/// spans the one the outer event is being written with.
struct Meddler(tracing::Span);

impl std::fmt::Display for Meddler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.record("request_id", "req-new");
        // Allocations here would reuse the outer scope's memory had it been freed too early.
        let filler: Vec<String> = (0..64).map(|i| format!("filler-{i:032}")).collect();
        tracing::info!(n = 2, filler = filler.len(), "nested");
        f.write_str("meddled")
    }
}

fn child_reentrant() {
    let _guard = tracekit::init();
    for round in 0..100_u64 {
        let span = tracing::info_span!("work", request_id = "req-old", round);
        let _in = span.enter();
        tracing::info!(n = 1, m = %Meddler(span.clone()), "outer");
        tracing::info!(n = 3, "after");
    }
}

fn reentrant_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("reentrant", dir.path());
    assert!(out.status.success(), "{out:?}");
    let seen: Vec<(u64, String, Option<String>)> = component_records(dir.path())
        .iter()
        .filter(|r| r.get("span").is_none())
        .map(|r| {
            (
                r["data"]["n"].as_u64().unwrap(),
                r["request_id"].as_str().unwrap().to_owned(),
                r["data"]["m"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let round = [
        (2, "req-new".to_owned(), None),
        (1, "req-old".to_owned(), Some("meddled".to_owned())),
        (3, "req-new".to_owned(), None),
    ];
    let expected: Vec<_> = (0..100).flat_map(|_| round.clone()).collect();
    assert_eq!(seen, expected);
}

fn child_silent() {
    use opentelemetry::trace::{Tracer, TracerProvider as _};
    // A scoped subscriber used before (tests, libraries) does not count as an init.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {});
    let guard = tracekit::init();
    assert!(matches!(
        tracekit::try_init(),
        Err(tracekit::InitError::AlreadyInitialized)
    ));
    tracing::info_span!("request_handler", component = "serving").in_scope(|| {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!(n = 1_u64, "i");
        tracing::warn!("w");
        let err = std::io::Error::other("disk gone");
        tracing::error!(error = &err as &dyn std::error::Error, "e");
        tracekit::critical!("c");
    });
    let logger =
        tracekit::get_logger("child", "ranking").with_level(tracekit::exporters::Level::TRACE);
    logger.trace("lt", ());
    logger.critical("lc", ());
    opentelemetry::global::tracer("child").in_span("otel_span", |_| {});
    let _ = guard.tracer_provider().tracer("x");
    drop(guard);
    // After shutdown: still nothing printed.
    tracing::error!("after the guard");
}

fn child_otel_only() {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::trace::{Status, TraceContextExt as _, Tracer as _};

    use opentelemetry::KeyValue;

    let guard = tracekit::init();
    let tracer = opentelemetry::global::tracer("checkout");
    let logger = tracekit::logger_provider().unwrap().logger("checkout");
    tracer.in_span("place_order", |cx| {
        let span = cx.span();
        span.set_attribute(KeyValue::new("component", "checkout"));
        span.set_attribute(KeyValue::new("request.id", "req-otel"));
        span.set_attribute(KeyValue::new("items", 3_i64));
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Warn);
        record.set_body("stock low".into());
        record.add_attribute("component", "checkout");
        record.add_attribute("sku", "A-1");
        logger.emit(record);
        tracer.in_span("charge_card", |cx| {
            cx.span().set_status(Status::error("declined"));
        });
    });
    drop(guard);
}

fn silent() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("silent", dir.path());
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = component_records(dir.path());
    let levels: Vec<_> = records
        .iter()
        .filter(|r| r.get("span").is_none())
        .map(|r| r["level"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        levels.iter().filter(|l| *l == "CRITICAL").count(),
        2,
        "{levels:?}"
    );
    for level in ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] {
        assert!(
            levels.iter().any(|l| l == level),
            "{level} missing: {levels:?}"
        );
    }
    assert!(records.iter().any(|r| r["span"]["name"] == "otel_span"));
    let errors = file_records(&dir.path().join("logs/errors/errors.log"));
    assert!(errors
        .iter()
        .any(|r| r["exception"]["message"] == "disk gone"));
}

fn panic_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("panic", dir.path());
    assert_eq!(
        out.status.code(),
        Some(101),
        "the previous hook and unwinding still run"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("boom 42"),
        "the previous (default) hook ran"
    );
    let errors = file_records(&dir.path().join("logs/errors/errors.log"));
    let r = errors
        .iter()
        .find(|r| r["level"] == "CRITICAL")
        .expect("a CRITICAL record");
    assert_eq!(r["message"], "panic: boom 42");
    assert_eq!(r["exception"]["type"], "panic");
    assert_eq!(r["exception"]["message"], "boom 42");
    assert!(r["exception"]["traceback"]
        .as_str()
        .unwrap()
        .contains("bridge_process"));
    assert_eq!(r["context"]["file"], file!());
    assert!(r["context"]["line"].as_u64().unwrap() > 0);
    assert_eq!(r["request_id"], "req-panic");
}

fn otel_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("otel-only", dir.path());
    assert!(out.status.success(), "{out:?}");
    let records = component_records(dir.path());
    let find = |m: &str| -> &Value { records.iter().find(|r| r["message"] == m).unwrap() };
    let order = find("place_order");
    assert_eq!(order["component"], "checkout");
    assert_eq!(order["request_id"], "req-otel");
    assert_eq!(order["span"]["attributes"]["items"], 3);
    let charge = find("charge_card");
    assert_eq!(charge["level"], "ERROR");
    assert_eq!(charge["span"]["parent_span_id"], order["span_id"]);
    assert_eq!(charge["trace_id"], order["trace_id"]);
    let log = find("stock low");
    assert_eq!(log["level"], "WARNING");
    assert_eq!(log["data"]["sku"], "A-1");
    assert_eq!(
        log["trace_id"], order["trace_id"],
        "logs carry the active span"
    );
    assert_eq!(
        file_records(&dir.path().join("logs/errors/errors.log")).len(),
        1
    );
}

fn million_events() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    // One file to count: no rotation, no daily copy.
    let writer = tracekit::exporters::LogWriter::builder()
        .max_file_size(u64::MAX / 2)
        .daily_files(tracekit::exporters::DailyFiles::None);
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .log_writer(writer)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let _cx = tracekit::LogContext::new().request_id("req-volume").enter();
        for i in 0..N {
            tracing::info!(i, "event");
        }
    });
    drop(guard);
    let text = std::fs::read_to_string(dir.path().join("logs/app/app.log")).unwrap();
    let mut next = 0;
    for line in text.lines().filter(|l| l.contains("\"message\":\"event\"")) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["data"]["i"], next, "in order, none missing");
        next += 1;
    }
    assert_eq!(next, N);
}

fn many_spans() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder().root(dir.path()).build().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..N {
            tracing::info_span!("tick").in_scope(|| {});
        }
    });
    assert_eq!(guard.writer().status().records_dropped, 0);
    drop(guard);
    let text = std::fs::read_to_string(dir.path().join("logs/app/app.log")).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"name\":\"tick\""))
            .count(),
        N
    );
}
