//! Item 8: secrets. Canary values under keys containing `password`, `token`, `secret` or
//! `api_key`, in any case and at any depth, through every way into the files: `tracing`
//! event fields, Logger data (serde, nested maps, arrays of objects, structs), LogContext
//! fields, W3C baggage, span fields (at creation and recorded later), OpenTelemetry span
//! attributes and events, OpenTelemetry log record attributes (nested maps), rotated and
//! gzipped archives. Each canary appears 0 times in any file (gunzipped); the redaction
//! marker stands in its place.
//!
//! OTLP payloads: the live OTLP exporter is not on this branch yet; the file exporters'
//! records (`FileSpanExporter`, `FileLogExporter`, through the OpenTelemetry API here) are
//! what exists.

mod reliability_support;

use std::collections::BTreeMap;

use reliability_support::{all_output, count, Rng};
use serde::Serialize;
use tracekit::exporters::{Compression, DailyFiles, LogWriter};

/// Key spellings that must be redacted.
const KEYS: [&str; 16] = [
    "password",
    "Password",
    "PASSWORD",
    "db_password",
    "userPassword",
    "token",
    "access_token",
    "AuthToken",
    "secret",
    "client_secret",
    "SecretValue",
    "api_key",
    "API_KEY",
    "x_api_key",
    "X-Api_Key-Header",
    "passwordHash",
];

#[derive(Serialize)]
struct Config {
    host: &'static str,
    password: String,
    nested: Inner,
}

#[derive(Serialize)]
struct Inner {
    #[serde(rename = "apiKey_api_key")]
    key: String,
    tokens: Vec<String>,
    list: Vec<BTreeMap<String, String>>,
}

#[test]
fn canaries_under_secret_keys_never_reach_a_file() {
    use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry::{Key, KeyValue};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Small files: the canaries' records also go through rotation and gzip.
    let writer = LogWriter::builder()
        .max_file_size(4096)
        .error_file_size(4096)
        .max_backups(10_000)
        .daily_files(DailyFiles::All)
        .compression(Compression::Gzip { level: 1 });
    let (dispatch, guard) = tracekit::builder()
        .root(root)
        .filter("trace")
        .log_writer(writer)
        .build()
        .unwrap();
    let mut canaries: Vec<String> = Vec::new();
    let mut canary = |what: &str| {
        let c = format!("CANARY{}x{}", canaries.len(), what.len());
        canaries.push(c.clone());
        c
    };
    let seed = Rng::seed_from_env("secrets");
    let mut rng = Rng::new(seed);
    tracing::dispatcher::with_default(&dispatch, || {
        let logger = tracekit::get_logger("secrets", "secrets");
        let tracer = guard.tracer_provider().tracer("secrets");
        let otel_logger = guard.logger_provider().logger("secrets");
        // tracing field names are static: the spellings a program can write.
        tracing::info!(
            component = "secrets",
            password = canary("f1").as_str(),
            Password = canary("f2").as_str(),
            API_KEY = canary("f3").as_str(),
            x_api_key = canary("f4").as_str(),
            user.auth_token = canary("f5").as_str(),
            clientSecret = %canary("f6"),
            session_token = ?canary("f7"),
            "event fields"
        );
        tracing::error!(
            component = "secrets",
            db_password = canary("e1").as_str(),
            error = &std::io::Error::other("refused") as &dyn std::error::Error,
            "error with fields"
        );
        for key in KEYS {
            // Logger data: a flat map, a map nested at a random depth, an array of objects.
            let mut flat = BTreeMap::new();
            flat.insert(key.to_string(), canary(key));
            logger.info("flat", &flat);
            let depth = 1 + rng.below(6);
            let mut v = serde_json::json!({ key: canary(key) });
            for d in 0..depth {
                v = if d % 2 == 0 {
                    serde_json::json!({ format!("level{d}"): v })
                } else {
                    serde_json::json!([1, v])
                };
            }
            logger.warning("nested", serde_json::json!({ "payload": v }));
            logger.error(
                "array",
                serde_json::json!({ "items": [{ "name": "a", key: canary(key) }] }),
            );
            // Context fields and the OpenTelemetry API.
            tracekit::LogContext::new()
                .request_id("req-secret")
                .field(key.to_string(), canary(key))
                .field("visible_context", "VISIBLE-context")
                .in_scope(|| tracing::info!(component = "secrets", "in context"));
            let mut span = tracer.start("otel span");
            span.set_attribute(KeyValue::new("component", "secrets"));
            span.set_attribute(KeyValue::new(key.to_string(), canary(key)));
            span.set_attribute(KeyValue::new("visible", "VISIBLE-otel-span"));
            span.add_event(
                "event",
                vec![
                    KeyValue::new(key.to_string(), canary(key)),
                    KeyValue::new("visible", "VISIBLE-span-event"),
                ],
            );
            span.end();
            let mut record = otel_logger.create_log_record();
            record.set_body(AnyValue::String("otel log".into()));
            record.add_attribute("component", "secrets");
            record.add_attribute(key.to_string(), canary(key));
            let mut map = std::collections::HashMap::new();
            map.insert(
                Key::from(key.to_string()),
                AnyValue::String(canary(key).into()),
            );
            map.insert(
                Key::from("visible"),
                AnyValue::String("VISIBLE-otel-map".into()),
            );
            record.add_attribute(
                "nested",
                AnyValue::ListAny(Box::new(vec![AnyValue::Map(Box::new(map))])),
            );
            otel_logger.emit(record);
        }
        logger.info(
            "struct",
            Config {
                host: "db",
                password: canary("s1"),
                nested: Inner {
                    key: canary("s2"),
                    tokens: vec![canary("s3"), canary("s4")],
                    list: vec![BTreeMap::from([("Secret".to_string(), canary("s5"))])],
                },
            },
        );
        // Span fields: at creation, recorded later, and a child's.
        let span = tracing::info_span!(
            "login",
            component = "secrets",
            api_key = canary("sp1").as_str(),
            refresh_token = tracing::field::Empty,
            visible = "VISIBLE-span-field"
        );
        span.record("refresh_token", canary("sp2").as_str());
        span.in_scope(|| {
            tracing::info_span!("child", Password = canary("sp3").as_str()).in_scope(|| {
                tracing::info!(component = "secrets", "inside spans");
            });
        });
        drop(span);
        // Baggage from an incoming request.
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "baggage",
            format!(
                "api_key={},user.password={},tenant=VISIBLE-baggage",
                canary("b1"),
                canary("b2")
            )
            .parse()
            .unwrap(),
        );
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let parent = tracekit::extract_headers(&headers);
        tracekit::LogContext::new()
            .parent(parent)
            .in_scope(|| tracing::info!(component = "secrets", "with baggage"));
    });
    let writer = guard.writer().clone();
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(std::time::Duration::from_secs(60)));
    drop(guard);
    assert!(writer.status().rotations > 5, "{:?}", writer.status());

    let outputs = all_output(root);
    let mut redacted = 0;
    for (path, bytes) in &outputs {
        for c in &canaries {
            assert_eq!(
                count(bytes, c.as_bytes()),
                0,
                "{c} leaked into {} (seed {seed})",
                path.display()
            );
        }
        redacted += count(bytes, b"\"[REDACTED]\"");
    }
    // Something was logged in the canaries' place: every canary's record is there.
    assert!(
        redacted >= canaries.len(),
        "{redacted} redactions for {} canaries",
        canaries.len()
    );
    let all: Vec<u8> = outputs.iter().flat_map(|(_, b)| b.clone()).collect();
    for message in [
        "event fields",
        "struct",
        "inside spans",
        "with baggage",
        "otel log",
    ] {
        assert!(count(&all, message.as_bytes()) > 0, "{message} missing");
    }
    // Each way in does write its non-secret neighbours: the zero counts above are not
    // zero because nothing of that kind reaches the files. (Span events other than
    // `exception` and baggage entries are not written at all today; their canaries guard
    // the day they are.)
    for visible in [
        "VISIBLE-context",
        "VISIBLE-otel-span",
        "VISIBLE-otel-map",
        "VISIBLE-span-field",
    ] {
        assert!(count(&all, visible.as_bytes()) > 0, "{visible} not written");
    }
    for unwritten in ["VISIBLE-span-event", "VISIBLE-baggage"] {
        assert_eq!(
            count(&all, unwritten.as_bytes()),
            0,
            "{unwritten}: update the comment"
        );
    }
}
