//! The OpenTelemetry exporters against the real SDK: `SdkTracerProvider` and
//! `SdkLoggerProvider` with simple processors, writing into a temporary directory.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanEvents, SpanExporter, SpanLinks};
use serde_json::{json, Value as Json};
use tempfile::TempDir;
use tracekit_exporters::{FileLogExporter, FileSpanExporter, LogWriter, WriterGuard};

// ---------------------------------------------------------------------------------------------
// helpers

fn writer_in(dir: &TempDir) -> (LogWriter, WriterGuard) {
    LogWriter::builder()
        .root(dir.path())
        .build()
        .expect("writer starts")
}

fn log_path(dir: &TempDir, component: &str) -> PathBuf {
    dir.path()
        .join("logs")
        .join(component)
        .join(format!("{component}.log"))
}

/// Every line of a file, parsed.
fn records(path: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// The one record of `path` whose message is `message`.
fn by_message<'r>(records: &'r [Json], message: &str) -> &'r Json {
    let found: Vec<_> = records.iter().filter(|r| r["message"] == message).collect();
    assert_eq!(
        found.len(),
        1,
        "records with message {message:?}: {records:#?}"
    );
    found[0]
}

/// Polls a future once: the exporters do their work inside `export` and never wait.
fn poll_once<F: Future>(f: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    match std::pin::pin!(f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("export returned a pending future"),
    }
}

fn sample_span(name: &'static str) -> SpanData {
    let start = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128),
            SpanId::from(0xb7ad_6b71_6920_3331_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: name.into(),
        start_time: start,
        end_time: start + Duration::from_millis(3),
        attributes: vec![KeyValue::new("component", "late")],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("test").build(),
    }
}

// ---------------------------------------------------------------------------------------------
// (1) spans

#[test]
fn spans_become_span_records() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _guard) = writer_in(&dir);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(
            FileSpanExporter::new(writer.clone()).with_default_component("gateway"),
        )
        .build();
    let tracer = provider.tracer("checkout-service");

    let parent = tracer
        .span_builder("handle_request")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("request.id", "req-abc-123"),
            KeyValue::new("user.id", 456_i64),
            KeyValue::new("session.id", "sess-789"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("sample_ratio", 0.25),
            KeyValue::new("cache.hit", true),
            KeyValue::new("user_password", "hunter2"),
            KeyValue::new("shard.ids", Value::Array(Array::I64(vec![3, 5, 8]))),
            KeyValue::new(
                "tags",
                Value::Array(Array::String(vec!["a".into(), "b".into()])),
            ),
        ])
        .start(&tracer);
    let parent_sc = parent.span_context().clone();
    let cx = Context::current_with_span(parent);

    let mut child = tracer
        .span_builder("score_candidates")
        .with_attributes(vec![
            KeyValue::new("component", "ranking"),
            KeyValue::new("code.function.name", "ranking::score"),
            KeyValue::new("code.filepath", "src/ranking.rs"),
            KeyValue::new("code.line.number", 42_i64),
            KeyValue::new("thread.id", 4242_i64),
            KeyValue::new("model", "gbdt-v3"),
        ])
        .start_with_context(&tracer, &cx);
    let child_sc = child.span_context().clone();
    child.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", "TimeoutError"),
            KeyValue::new("exception.message", "model timed out after 50ms"),
            KeyValue::new("exception.stacktrace", "at ranking::score\nat main"),
        ],
    );
    child.add_event("retrying", vec![KeyValue::new("attempt", 2_i64)]);
    child.set_status(Status::error("model timeout"));
    child.end();
    cx.span().end();
    drop(cx);

    provider.shutdown().expect("shutdown flushes");
    assert!(
        !writer.is_shutdown(),
        "the exporter must not stop the shared writer"
    );

    // The parent: no component attribute, so the exporter's default component.
    let gateway = records(&log_path(&dir, "gateway"));
    assert_eq!(gateway.len(), 1);
    let p = &gateway[0];
    assert_eq!(p["level"], "INFO");
    assert_eq!(p["component"], "gateway");
    assert_eq!(p["logger"], "checkout-service");
    assert_eq!(p["request_id"], "req-abc-123");
    assert_eq!(p["user_id"], "456");
    assert_eq!(p["session_id"], "sess-789");
    assert_eq!(p["trace_id"], parent_sc.trace_id().to_string());
    assert_eq!(p["span_id"], parent_sc.span_id().to_string());
    assert_eq!(p["message"], "handle_request");
    assert!(p.get("exception").is_none());
    assert!(
        p.get("data").is_none(),
        "span attributes go under span, not data"
    );
    let ps = &p["span"];
    assert_eq!(ps["name"], "handle_request");
    assert_eq!(ps["kind"], "server");
    assert!(
        ps.get("parent_span_id").is_none(),
        "a root span has no parent"
    );
    assert_eq!(ps["status"], "unset");
    assert_eq!(
        ps["attributes"],
        json!({
            "http.response.status_code": 200,
            "sample_ratio": 0.25,
            "cache.hit": true,
            "user_password": "[REDACTED]",
            "shard.ids": [3, 5, 8],
            "tags": ["a", "b"],
        }),
        "typed attributes, ids lifted out, password redacted"
    );
    assert!(ps["attributes"]["http.response.status_code"].is_i64());
    assert!(ps["attributes"]["sample_ratio"].is_f64());
    assert!(!std::fs::read_to_string(log_path(&dir, "gateway"))
        .unwrap()
        .contains("hunter2"));
    let (start, end) = (ps["start"].as_str().unwrap(), ps["end"].as_str().unwrap());
    assert!(end >= start, "end {end} before start {start}");
    assert!(ps["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        p["timestamp"], ps["end"],
        "a span record is stamped with its end"
    );

    // The child: routed by its component attribute, an error.
    let ranking = records(&log_path(&dir, "ranking"));
    assert_eq!(ranking.len(), 1);
    let c = &ranking[0];
    assert_eq!(c["level"], "ERROR");
    assert_eq!(c["component"], "ranking");
    assert_eq!(c["trace_id"], parent_sc.trace_id().to_string());
    assert_eq!(c["span_id"], child_sc.span_id().to_string());
    assert_eq!(c["span"]["parent_span_id"], parent_sc.span_id().to_string());
    assert_eq!(c["span"]["kind"], "internal");
    assert_eq!(c["span"]["status"], "error");
    assert_eq!(c["span"]["status_message"], "model timeout");
    assert_eq!(c["span"]["attributes"], json!({"model": "gbdt-v3"}));
    assert_eq!(
        c["context"],
        json!({
            "function": "ranking::score",
            "file": "src/ranking.rs",
            "line": 42,
            "thread": 4242,
            "process": std::process::id(),
        })
    );
    assert_eq!(
        c["exception"],
        json!({
            "type": "TimeoutError",
            "message": "model timed out after 50ms",
            "traceback": "at ranking::score\nat main",
        })
    );
    assert!(c.get("request_id").is_none());

    // The error copy, and no timing copy.
    let errors = records(&dir.path().join("logs/errors/errors.log"));
    assert_eq!(errors, vec![c.clone()]);
    assert!(!dir.path().join("logs/performance/performance.log").exists());
    assert!(!log_path(&dir, "app").exists());
}

#[test]
fn span_defaults_and_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _guard) = LogWriter::builder()
        .root(dir.path())
        .default_component("service")
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(writer.clone()))
        .build();
    let tracer = provider.tracer("");

    let mut ok = tracer
        .span_builder("fetch_profile")
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new("component", "")])
        .start(&tracer);
    ok.set_status(Status::Ok);
    ok.end();

    // `Span::record_error` adds an `exception` event with only a message.
    let mut failed = tracer.start("parse");
    failed.record_error(&std::io::Error::other("bad header"));
    failed.set_status(Status::error("parse failed"));
    failed.end();

    // No event: `exception.*` span attributes (as tracing-opentelemetry writes them) are used.
    let mut attr_error = tracer
        .span_builder("decode")
        .with_kind(SpanKind::Consumer)
        .with_attributes(vec![
            KeyValue::new("exception.message", "truncated frame"),
            KeyValue::new("request.id", Value::Array(Array::Bool(vec![true]))),
        ])
        .start(&tracer);
    attr_error.end();

    provider.shutdown().unwrap();

    let lines = records(&log_path(&dir, "service"));
    assert_eq!(lines.len(), 3);
    let ok = by_message(&lines, "fetch_profile");
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["span"]["status"], "ok");
    assert_eq!(ok["span"]["kind"], "client");
    assert!(
        ok.get("logger").is_none(),
        "an unnamed scope writes no logger"
    );
    assert_eq!(
        ok["component"], "service",
        "an empty component is no component"
    );
    assert!(ok["span"].get("attributes").is_none());
    assert_eq!(ok["context"], json!({"process": std::process::id()}));

    let failed = by_message(&lines, "parse");
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(
        failed["exception"],
        json!({"type": "Error", "message": "bad header"})
    );

    let decode = by_message(&lines, "decode");
    assert_eq!(decode["level"], "INFO");
    assert_eq!(decode["span"]["kind"], "consumer");
    assert_eq!(
        decode["exception"],
        json!({"type": "Error", "message": "truncated frame"})
    );
    assert!(
        decode.get("request_id").is_none(),
        "a list is no request id"
    );
    assert_eq!(
        decode["span"]["attributes"],
        json!({"request.id": [true]}),
        "an attribute that cannot be lifted stays an attribute"
    );
}

/// The SDK appends a repeated attribute without replacing it (tracing-opentelemetry sets a
/// `u64` field as `"42"`, then the tracekit layer sets `42`): the record has each key once,
/// with its last value, lifted keys included.
#[test]
fn a_repeated_span_attribute_is_written_once_with_its_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = writer_in(&dir);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(writer.clone()))
        .build();
    let mut span = provider.tracer("orders").start("checkout");
    span.set_attribute(KeyValue::new("order_id", "42"));
    span.set_attribute(KeyValue::new("component", "cart"));
    span.set_attribute(KeyValue::new("request.id", "req-old"));
    span.set_attribute(KeyValue::new("order_id", 42_i64));
    span.set_attribute(KeyValue::new("component", "orders"));
    span.set_attribute(KeyValue::new("request.id", "req-new"));
    span.end();
    provider.shutdown().unwrap();
    drop(guard);

    assert!(!log_path(&dir, "cart").exists(), "the first component lost");
    let text = std::fs::read_to_string(log_path(&dir, "orders")).unwrap();
    assert_eq!(text.matches("\"order_id\"").count(), 1, "{text}");
    let r: Json = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(r["span"]["attributes"], json!({"order_id": 42}));
    assert_eq!(r["request_id"], "req-new");
}

// ---------------------------------------------------------------------------------------------
// (2) logs

fn emit<L: Logger>(
    logger: &L,
    severity: Option<Severity>,
    body: &'static str,
    attrs: Vec<(&'static str, AnyValue)>,
) {
    let mut record = logger.create_log_record();
    if let Some(s) = severity {
        record.set_severity_number(s);
    }
    record.set_body(AnyValue::from(body));
    for (k, v) in attrs {
        record.add_attribute(k, v);
    }
    logger.emit(record);
}

#[test]
fn log_records_map_to_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _guard) = writer_in(&dir);
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(writer.clone()))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_simple_exporter(
            FileLogExporter::new(writer.clone()).with_default_component("payments"),
        )
        .build();
    let tracer = tracer_provider.tracer("payments-api");
    let logger = logger_provider.logger("payments-scope");

    let span = tracer.start("charge");
    let sc = span.span_context().clone();
    {
        let _active = Context::current_with_span(span).attach();

        for (severity, body) in [
            (Severity::Trace, "sev trace"),
            (Severity::Debug, "sev debug"),
            (Severity::Info, "sev info"),
            (Severity::Warn, "sev warn"),
            (Severity::Error, "sev error"),
            (Severity::Fatal, "sev fatal"),
            (Severity::Trace4, "sev trace4"),
            (Severity::Warn3, "sev warn3"),
            (Severity::Error2, "sev error2"),
            (Severity::Fatal4, "sev fatal4"),
        ] {
            emit(&logger, Some(severity), body, vec![]);
        }

        // Severity text only, then nothing at all.
        let mut record = logger.create_log_record();
        record.set_severity_text("warn");
        record.set_body("text warn".into());
        logger.emit(record);
        emit(&logger, None, "no severity", vec![]);

        // Every lifted attribute, typed data, redaction, a target.
        let details: HashMap<Key, AnyValue> = [
            (Key::from("last4"), AnyValue::from("4242")),
            (Key::from("cvv_secret"), AnyValue::from("123")),
            (
                Key::from("limits"),
                AnyValue::Map(Box::new(
                    [(Key::from("daily"), AnyValue::Int(500))]
                        .into_iter()
                        .collect(),
                )),
            ),
        ]
        .into_iter()
        .collect();
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_target("payments::charge");
        record.set_body("charging card".into());
        record.add_attributes([
            ("request.id", AnyValue::from("req-1")),
            ("user.id", AnyValue::from(77_i64)),
            ("session.id", AnyValue::from("sess-1")),
            ("component", AnyValue::from("billing")),
            ("code.function.name", AnyValue::from("charge_card")),
            ("code.file.path", AnyValue::from("src/charge.rs")),
            ("code.line.number", AnyValue::from(88_i64)),
            ("thread.id", AnyValue::from(31_i64)),
            ("process.pid", AnyValue::from(1234_i64)),
            ("amount_cents", AnyValue::from(1999_i64)),
            ("fee_ratio", AnyValue::from(0.029)),
            ("retry", AnyValue::from(false)),
            (
                "tags",
                AnyValue::ListAny(Box::new(vec![AnyValue::from("vip"), AnyValue::Int(1)])),
            ),
            ("card", AnyValue::Map(Box::new(details))),
            ("raw", AnyValue::from(&b"hi\xff"[..])),
            ("api_key", AnyValue::from("sk-live-123")),
        ]);
        logger.emit(record);

        // Legacy code names, an exception.
        emit(
            &logger,
            Some(Severity::Error),
            "card declined",
            vec![
                ("code.function", AnyValue::from("decline")),
                ("code.filepath", AnyValue::from("src/decline.rs")),
                ("code.lineno", AnyValue::from(12_i64)),
                ("exception.type", AnyValue::from("CardDeclined")),
                ("exception.message", AnyValue::from("insufficient funds")),
                ("exception.stacktrace", AnyValue::from("at charge\nat main")),
                ("attempt", AnyValue::from(2_i64)),
            ],
        );

        // A timing record.
        emit(
            &logger,
            Some(Severity::Info),
            "charge timing",
            vec![
                ("tracekit.timing", AnyValue::from(true)),
                ("duration_ms", AnyValue::from(12.5)),
                ("operation", AnyValue::from("charge")),
            ],
        );
        // Not a timing record: the marker is false.
        emit(
            &logger,
            Some(Severity::Info),
            "not timing",
            vec![
                ("tracekit.timing", AnyValue::from(false)),
                ("duration_ms", AnyValue::from(1.0)),
            ],
        );

        // A structured body, a fixed timestamp.
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_timestamp(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
        record.set_body(AnyValue::Map(Box::new(
            [
                (Key::from("step"), AnyValue::from("auth")),
                (Key::from("token"), AnyValue::from("abc")),
                (Key::from("n"), AnyValue::Int(2)),
            ]
            .into_iter()
            .collect(),
        )));
        logger.emit(record);
    }
    // Outside the span: no ids. Observed timestamp only.
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Info);
    record.set_observed_timestamp(UNIX_EPOCH + Duration::from_secs(86_400));
    record.set_body("after the span".into());
    logger.emit(record);

    logger_provider.shutdown().unwrap();
    tracer_provider.shutdown().unwrap();

    let payments = records(&log_path(&dir, "payments"));
    for (body, level) in [
        ("sev trace", "TRACE"),
        ("sev debug", "DEBUG"),
        ("sev info", "INFO"),
        ("sev warn", "WARNING"),
        ("sev error", "ERROR"),
        ("sev fatal", "CRITICAL"),
        ("sev trace4", "TRACE"),
        ("sev warn3", "WARNING"),
        ("sev error2", "ERROR"),
        ("sev fatal4", "CRITICAL"),
        ("text warn", "WARNING"),
        ("no severity", "INFO"),
    ] {
        let r = by_message(&payments, body);
        assert_eq!(r["level"], level, "{body}");
        assert_eq!(r["component"], "payments");
        assert_eq!(r["logger"], "payments-scope", "scope name without a target");
        assert_eq!(r["trace_id"], sc.trace_id().to_string(), "{body}");
        assert_eq!(r["span_id"], sc.span_id().to_string(), "{body}");
        assert!(r.get("data").is_none(), "{body}: no attributes, no data");
        // Emitted (and, by the simple processor, exported) on this thread.
        assert_eq!(
            r["context"],
            json!({"thread": tracekit_exporters::current_thread_id(), "process": std::process::id()})
        );
    }

    let billing = records(&log_path(&dir, "billing"));
    assert_eq!(billing.len(), 1);
    let b = &billing[0];
    assert_eq!(b["component"], "billing");
    assert_eq!(b["logger"], "payments::charge");
    assert_eq!(b["request_id"], "req-1");
    assert_eq!(b["user_id"], "77");
    assert_eq!(b["session_id"], "sess-1");
    assert_eq!(b["trace_id"], sc.trace_id().to_string());
    assert_eq!(
        b["context"],
        json!({"function": "charge_card", "file": "src/charge.rs", "line": 88, "thread": 31, "process": 1234})
    );
    assert_eq!(
        b["data"],
        json!({
            "amount_cents": 1999,
            "fee_ratio": 0.029,
            "retry": false,
            "tags": ["vip", 1],
            "card": {"cvv_secret": "[REDACTED]", "last4": "4242", "limits": {"daily": 500}},
            "raw": "hi\u{fffd}",
            "api_key": "[REDACTED]",
        })
    );
    assert!(b["data"]["amount_cents"].is_i64() && b["data"]["fee_ratio"].is_f64());
    assert!(b.get("exception").is_none());

    let declined = by_message(&payments, "card declined");
    assert_eq!(declined["level"], "ERROR");
    assert_eq!(
        declined["exception"],
        json!({"type": "CardDeclined", "message": "insufficient funds", "traceback": "at charge\nat main"})
    );
    assert_eq!(
        declined["context"],
        json!({"function": "decline", "file": "src/decline.rs", "line": 12,
            "thread": tracekit_exporters::current_thread_id(), "process": std::process::id()})
    );
    assert_eq!(declined["data"], json!({"attempt": 2}));

    let timing = by_message(&payments, "charge timing");
    assert_eq!(
        timing["data"],
        json!({"duration_ms": 12.5, "operation": "charge"})
    );
    let not_timing = by_message(&payments, "not timing");
    assert_eq!(not_timing["data"], json!({"duration_ms": 1.0}));
    let performance = records(&dir.path().join("logs/performance/performance.log"));
    assert_eq!(performance, vec![timing.clone()]);

    let structured = by_message(&payments, r#"{"n":2,"step":"auth","token":"[REDACTED]"}"#);
    assert_eq!(structured["timestamp"], "2023-11-14T22:13:20.123456Z");

    let after = by_message(&payments, "after the span");
    assert!(after.get("trace_id").is_none() && after.get("span_id").is_none());
    assert_eq!(after["timestamp"], "1970-01-02T00:00:00.000000Z");

    // errors/ holds exactly the ERROR and CRITICAL records.
    let errors = records(&dir.path().join("logs/errors/errors.log"));
    let mut messages: Vec<_> = errors
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        [
            "card declined",
            "sev error",
            "sev error2",
            "sev fatal",
            "sev fatal4"
        ]
    );

    // The span itself went to the writer's default component.
    let app = records(&log_path(&dir, "app"));
    assert_eq!(app.len(), 1);
    assert_eq!(app[0]["span_id"], sc.span_id().to_string());
}

// ---------------------------------------------------------------------------------------------
// (3) the exporter contract

/// The bare logs API through an `SdkLoggerProvider` with the simple exporter: a record
/// without `thread.id` says which thread emitted it, and a repeated attribute counts once, with
/// its last value.
#[test]
fn bare_api_log_records_carry_their_thread_and_last_values() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = writer_in(&dir);
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(FileLogExporter::new(writer.clone()))
        .build();
    let logger = provider.logger("checkout");
    let emitted_on = std::thread::spawn(move || {
        emit(
            &logger,
            Some(Severity::Info),
            "order placed",
            vec![
                ("order_id", AnyValue::from("42")),
                ("user.id", AnyValue::from("u-old")),
                ("order_id", AnyValue::from(42_i64)),
                ("user.id", AnyValue::from("u-new")),
            ],
        );
        tracekit_exporters::current_thread_id()
    })
    .join()
    .unwrap();
    assert_ne!(emitted_on, tracekit_exporters::current_thread_id());
    provider.shutdown().unwrap();
    drop(guard);

    let text = std::fs::read_to_string(log_path(&dir, "app")).unwrap();
    assert_eq!(text.matches("\"order_id\"").count(), 1, "{text}");
    let r: Json = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(r["data"], json!({"order_id": 42}));
    assert_eq!(r["user_id"], "u-new");
    assert_eq!(
        r["context"],
        json!({"thread": emitted_on, "process": std::process::id()})
    );
}

#[test]
fn span_export_after_shutdown_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _guard) = writer_in(&dir);
    let exporter = FileSpanExporter::new(writer.clone());

    poll_once(exporter.export(vec![sample_span("before")])).unwrap();
    exporter.force_flush().unwrap();
    assert_eq!(records(&log_path(&dir, "late")).len(), 1);

    exporter.shutdown().unwrap();
    let err = poll_once(exporter.export(vec![sample_span("after")])).unwrap_err();
    assert!(matches!(err, OTelSdkError::AlreadyShutdown), "{err:?}");
    let err = poll_once(exporter.export(Vec::new())).unwrap_err();
    assert!(matches!(err, OTelSdkError::AlreadyShutdown), "{err:?}");

    assert!(!writer.is_shutdown());
    writer.flush().unwrap();
    let lines = records(&log_path(&dir, "late"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "before");
    assert_eq!(lines[0]["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(lines[0]["span_id"], "b7ad6b7169203331");
}

#[test]
fn log_export_after_shutdown_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _guard) = writer_in(&dir);
    let exporter = FileLogExporter::new(writer.clone()).with_default_component("late");
    // A record made by a real SDK logger (SdkLogRecord has no public constructor).
    let provider = SdkLoggerProvider::builder().build();
    let mut record = provider.logger("test").create_log_record();
    record.set_body("one".into());
    let scope = InstrumentationScope::builder("test").build();

    poll_once(exporter.export(LogBatch::new(&[(&record, &scope)]))).unwrap();
    exporter.shutdown().unwrap();
    assert_eq!(
        records(&log_path(&dir, "late")).len(),
        1,
        "shutdown flushes"
    );

    let err = poll_once(exporter.export(LogBatch::new(&[(&record, &scope)]))).unwrap_err();
    assert!(matches!(err, OTelSdkError::AlreadyShutdown), "{err:?}");
    assert!(!writer.is_shutdown());
    writer.flush().unwrap();
    assert_eq!(records(&log_path(&dir, "late")).len(), 1);
}

#[test]
fn a_stopped_writer_is_an_internal_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = writer_in(&dir);
    let spans = FileSpanExporter::new(writer.clone());
    let logs = FileLogExporter::new(writer);
    drop(guard);

    let err = poll_once(spans.export(vec![sample_span("a"), sample_span("b")])).unwrap_err();
    match err {
        OTelSdkError::InternalFailure(msg) => {
            assert!(msg.contains("2 of 2 span records"), "{msg}");
            assert!(msg.contains("shut down"), "{msg}");
        }
        other => panic!("expected InternalFailure, got {other:?}"),
    }
    let provider = SdkLoggerProvider::builder().build();
    let record = provider.logger("test").create_log_record();
    let scope = InstrumentationScope::builder("test").build();
    let err = poll_once(logs.export(LogBatch::new(&[(&record, &scope)]))).unwrap_err();
    assert!(matches!(err, OTelSdkError::InternalFailure(m) if m.contains("1 of 1 log records")));
    // Nothing was queued, so shutting the exporters down still succeeds.
    spans.shutdown().unwrap();
    logs.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------
// (4) a program using only the OpenTelemetry API produces contract-valid files

/// A request handler instrumented with the OpenTelemetry API only: nothing here knows the
/// SDK or tracekit.
fn handle_request<T, L>(tracer: &T, logger: &L, request: u32)
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
    L: Logger,
{
    let log = |severity: Severity, body: String, attrs: Vec<KeyValue>| {
        let mut record = logger.create_log_record();
        record.set_severity_number(severity);
        record.set_severity_text(severity.name());
        record.set_body(body.into());
        for kv in attrs {
            record.add_attribute(kv.key, AnyValue::from(kv.value.to_string()));
        }
        logger.emit(record);
    };
    let builder = tracer
        .span_builder(format!("GET /recommendations/{request}"))
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("request.id", format!("req-{request}")),
            KeyValue::new("user.id", format!("user-{request}")),
            KeyValue::new("session.id", "sess-1"),
        ]);
    tracer.in_span_with_builder(builder, |cx| {
        log(Severity::Info, "request received".into(), vec![]);
        tracer.in_span("rank", |cx| {
            cx.span()
                .set_attribute(KeyValue::new("component", "ranking"));
            cx.span()
                .set_attribute(KeyValue::new("candidates", 1500_i64));
            log(
                Severity::Debug,
                "scored \"candidates\"\nwith tabs\t and unicode é".into(),
                vec![KeyValue::new("component", "ranking")],
            );
            let mut record = logger.create_log_record();
            record.set_severity_number(Severity::Info);
            record.set_body("ranked".into());
            record.add_attribute("tracekit.timing", true);
            record.add_attribute("duration_ms", 45.2);
            record.add_attribute("component", "ranking");
            logger.emit(record);
        });
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Error);
        record.set_body("feature store unavailable".into());
        record.add_attribute("exception.type", "ConnectionError");
        record.add_attribute("exception.message", "connection refused");
        logger.emit(record);
        log(Severity::Warn, "falling back".into(), vec![]);
        log(Severity::Fatal, "giving up".into(), vec![]);
        cx.span().set_status(Status::error("unavailable"));
    });
}

const KEY_ORDER: [&str; 14] = [
    "timestamp",
    "level",
    "component",
    "logger",
    "request_id",
    "user_id",
    "session_id",
    "trace_id",
    "span_id",
    "message",
    "data",
    "context",
    "exception",
    "span",
];

/// The keys of the outermost object of a JSON line, in the order they appear.
fn top_level_keys(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    let (mut keys, mut depth, mut expect_key, mut i) = (Vec::new(), 0usize, false, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && expect_key {
                    keys.push(serde_json::from_str(&line[start..=i]).unwrap());
                    expect_key = false;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'}' | b']' => depth -= 1,
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    keys
}

fn is_contract_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn is_lower_hex(v: &Json, len: usize) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == len
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(log_files(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Checks one line against the record contract.
fn check_contract_line(path: &Path, line: &str) {
    let record: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let obj = record.as_object().expect("a JSON object");
    let keys = top_level_keys(line);
    assert_eq!(keys.len(), obj.len(), "key scan of {line}");
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            KEY_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or_else(|| panic!("unknown key {k} in {line}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "keys out of contract order: {keys:?}"
    );
    for required in ["timestamp", "level", "component", "message"] {
        assert!(obj.contains_key(required), "{required} missing in {line}");
    }
    assert!(
        is_contract_timestamp(record["timestamp"].as_str().unwrap()),
        "{line}"
    );
    let level = record["level"].as_str().unwrap();
    assert!(
        ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level),
        "{line}"
    );
    let component = record["component"].as_str().unwrap();
    assert!(
        !component.is_empty()
            && component
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
        "{line}"
    );
    let dir_name = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    match dir_name {
        "errors" => assert!(level == "ERROR" || level == "CRITICAL", "{line}"),
        "performance" => {}
        _ => assert_eq!(component, dir_name, "{line} in {}", path.display()),
    }
    for key in ["logger", "request_id", "user_id", "session_id", "message"] {
        if let Some(v) = obj.get(key) {
            assert!(v.is_string(), "{key} in {line}");
        }
    }
    if let Some(v) = obj.get("trace_id") {
        assert!(is_lower_hex(v, 32), "{line}");
    }
    if let Some(v) = obj.get("span_id") {
        assert!(is_lower_hex(v, 16), "{line}");
    }
    for key in ["data", "context", "exception", "span"] {
        if let Some(v) = obj.get(key) {
            assert!(v.is_object(), "{key} in {line}");
        }
    }
    if let Some(ctx) = obj.get("context").and_then(Json::as_object) {
        for (k, v) in ctx {
            match k.as_str() {
                "function" | "file" => assert!(v.is_string(), "{line}"),
                "line" | "thread" | "process" => assert!(v.is_u64(), "{line}"),
                other => panic!("unknown context key {other} in {line}"),
            }
        }
    }
    if let Some(exc) = obj.get("exception") {
        assert!(
            exc["type"].is_string() && exc["message"].is_string(),
            "{line}"
        );
    }
    if let Some(span) = obj.get("span") {
        assert!(span["name"].is_string(), "{line}");
        assert!(
            ["internal", "server", "client", "producer", "consumer"]
                .contains(&span["kind"].as_str().unwrap()),
            "{line}"
        );
        if let Some(p) = span.get("parent_span_id") {
            assert!(is_lower_hex(p, 16), "{line}");
        }
        assert!(
            is_contract_timestamp(span["start"].as_str().unwrap()),
            "{line}"
        );
        assert!(
            is_contract_timestamp(span["end"].as_str().unwrap()),
            "{line}"
        );
        assert!(span["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        assert!(
            ["unset", "ok", "error"].contains(&span["status"].as_str().unwrap()),
            "{line}"
        );
    }
}

#[test]
fn an_api_only_program_writes_contract_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = writer_in(&dir);
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(writer.clone()).with_default_component("api"))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_simple_exporter(FileLogExporter::new(writer.clone()).with_default_component("api"))
        .build();
    let tracer = tracer_provider.tracer("recommendation-service");
    let logger = logger_provider.logger("recommendation-service");

    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (tracer, logger) = (tracer.clone(), logger.clone());
            std::thread::spawn(move || {
                for r in 0..5 {
                    handle_request(&tracer, &logger, t * 100 + r);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    logger_provider.shutdown().unwrap();
    tracer_provider.shutdown().unwrap();
    drop(guard);

    let files = log_files(&dir.path().join("logs"));
    let names: Vec<_> = files
        .iter()
        .map(|f| {
            f.strip_prefix(dir.path())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "logs/api/api.log",
            "logs/errors/errors.log",
            "logs/performance/performance.log",
            "logs/ranking/ranking.log",
        ]
    );
    let mut component_lines = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.ends_with('\n'), "{} ends mid-line", path.display());
        for line in text.lines() {
            check_contract_line(path, line);
        }
        let dir_name = path.parent().unwrap().file_name().unwrap();
        if dir_name != "errors" && dir_name != "performance" {
            component_lines += text.lines().count();
        }
    }
    // Per request: 2 spans and 6 log records; 20 requests.
    assert_eq!(component_lines, 20 * 8);
    assert_eq!(
        records(&dir.path().join("logs/performance/performance.log")).len(),
        20
    );
    // The error span, the ERROR and the FATAL record of each request.
    assert_eq!(
        records(&dir.path().join("logs/errors/errors.log")).len(),
        20 * 3
    );

    // Every log record carries the ids of the span it was emitted in.
    let api = records(&log_path(&dir, "api"));
    let ranking = records(&log_path(&dir, "ranking"));
    for request in api.iter().filter(|r| r.get("span").is_some()) {
        let trace_id = &request["trace_id"];
        let in_trace: Vec<_> = api
            .iter()
            .chain(&ranking)
            .filter(|r| &r["trace_id"] == trace_id)
            .collect();
        assert_eq!(
            in_trace.len(),
            8,
            "one request's records share its trace id"
        );
        let rank_span = ranking
            .iter()
            .find(|r| &r["trace_id"] == trace_id && r.get("span").is_some())
            .unwrap();
        assert_eq!(rank_span["span"]["parent_span_id"], request["span_id"]);
        assert_eq!(rank_span["span"]["attributes"], json!({"candidates": 1500}));
        for r in in_trace.iter().filter(|r| r.get("span").is_none()) {
            let expected = if r["component"] == "ranking" {
                &rank_span["span_id"]
            } else {
                &request["span_id"]
            };
            assert_eq!(&r["span_id"], expected, "{r}");
        }
    }
}
