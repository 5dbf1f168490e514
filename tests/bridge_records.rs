//! The tracing bridge, one subscriber per test (not installed globally): components, levels,
//! fields, request context, spans, propagation and the OpenTelemetry APIs.

mod bridge_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use serde_json::{json, Value};
use tracekit::exporters::Level;
use tracekit::LogContext;
use tracing::{debug, error, info, info_span, trace, warn};

use bridge_support::{component_records, file_records, one};

/// Runs `f` with a fresh tracekit subscriber writing under a temporary root (all levels
/// enabled), drops the guard, and returns the root and every component record.
fn run(
    builder: tracekit::Builder,
    f: impl FnOnce(&tracekit::Guard),
) -> (tempfile::TempDir, Vec<Value>) {
    run_filtered("trace", builder, f)
}

/// [`run`] with these level directives.
fn run_filtered(
    directives: &str,
    builder: tracekit::Builder,
    f: impl FnOnce(&tracekit::Guard),
) -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = builder.root(dir.path()).filter(directives).build().unwrap();
    tracing::dispatcher::with_default(&dispatch, || f(&guard));
    drop(guard);
    let records = component_records(dir.path());
    (dir, records)
}

#[test]
fn component_resolution_order() {
    let builder = tracekit::builder()
        .component_for_target("myapp::ranking", "ranking")
        .component_for_target("myapp::ranking::model", "Model");
    let (_dir, records) = run(builder, |_| {
        info_span!(target: "myapp::ranking", "outer", component = "serving").in_scope(|| {
            info!(target: "myapp::ranking", component = "candidate", "explicit field");
            info_span!("inner", component = "diversity").in_scope(|| {
                info_span!("plain").in_scope(|| {
                    info!(target: "myapp::ranking", "innermost span with a component");
                });
            });
            info!(target: "myapp::ranking", "enclosing span");
        });
        info!(target: "myapp::ranking::model::v2", "target mapping, longest prefix");
        info!(target: "myapp::ranking", "target mapping");
        info!(target: "myapp::rankings", "no mapping: not a whole segment");
    });
    let component = |m: &str| one(&records, m)["component"].as_str().unwrap().to_owned();
    assert_eq!(component("explicit field"), "candidate");
    assert_eq!(component("innermost span with a component"), "diversity");
    assert_eq!(component("enclosing span"), "serving");
    assert_eq!(component("target mapping, longest prefix"), "model");
    assert_eq!(component("target mapping"), "ranking");
    assert_eq!(component("no mapping: not a whole segment"), "app");
    // Span records go to their (inherited or mapped) component too.
    let span = |name: &str| {
        records
            .iter()
            .find(|r| r["span"]["name"] == name)
            .unwrap_or_else(|| panic!("span {name}"))["component"]
            .clone()
    };
    assert_eq!(span("outer"), "serving");
    assert_eq!(span("plain"), "diversity");
}

#[test]
fn six_levels_with_names_and_severities() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, records) = run(tracekit::builder().default_component("levels"), |_| {
        trace!("t");
        debug!("d");
        info!("i");
        warn!("w");
        error!("e");
        tracekit::critical!("c");
    });
    drop(dir);
    let levels: Vec<_> = records
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels,
        ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    );
    let severities: Vec<u8> = levels
        .iter()
        .map(|l| l.parse::<Level>().unwrap().severity_number())
        .collect();
    assert_eq!(severities, [1, 5, 9, 13, 17, 21]);
    // The marker is not data.
    assert!(one(&records, "c").get("data").is_none());
}

#[test]
fn errors_and_criticals_are_copied_to_errors_log() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder().root(dir.path()).build().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        warn!("not copied");
        error!("copied");
        tracekit::critical!(target: "x", "also copied");
    });
    drop(guard);
    let errors = file_records(&dir.path().join("logs/errors/errors.log"));
    let levels: Vec<_> = errors.iter().map(|r| r["level"].clone()).collect();
    assert_eq!(levels, [json!("ERROR"), json!("CRITICAL")]);
}

#[derive(Debug)]
struct Timeout;
impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("model server timed out")
    }
}
impl std::error::Error for Timeout {}

#[derive(Debug)]
struct RankingFailed {
    source: Timeout,
}
impl std::fmt::Display for RankingFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ranking failed")
    }
}
impl std::error::Error for RankingFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[test]
fn fields_keep_their_types_and_context() {
    let (_dir, records) = run(tracekit::builder(), |_| {
        info!(
            big = u64::MAX,
            neg = -5_i64,
            score = 0.25,
            ok = true,
            name = "ada",
            shown = %"display",
            debugged = ?vec![1, 2],
            password = "hunter2",
            "Generated {} candidates",
            3
        );
        let err = RankingFailed { source: Timeout };
        info_span!("rank_candidates").in_scope(|| {
            error!(
                error = &err as &dyn std::error::Error,
                attempt = 2_u64,
                backtrace = "at rank (src/ranking.rs:10)",
                "Ranking failed"
            );
        });
    });
    let r = one(&records, "Generated 3 candidates");
    assert_eq!(r["data"]["big"], json!(u64::MAX));
    assert_eq!(r["data"]["neg"], -5);
    assert_eq!(r["data"]["score"], 0.25);
    assert_eq!(r["data"]["ok"], true);
    assert_eq!(r["data"]["name"], "ada");
    assert_eq!(r["data"]["shown"], "display");
    assert_eq!(r["data"]["debugged"], "[1, 2]");
    assert_eq!(r["data"]["password"], "[REDACTED]");
    assert_eq!(r["logger"], "bridge_records");
    assert_eq!(r["context"]["function"], "bridge_records");
    assert_eq!(r["context"]["file"], file!());
    assert!(r["context"]["line"].as_u64().unwrap() > 0);
    assert_eq!(
        r["context"]["thread"],
        tracekit::exporters::current_thread_id()
    );
    assert_eq!(r["context"]["process"], std::process::id());
    assert!(r.get("trace_id").is_none(), "outside a span");

    let e = one(&records, "Ranking failed");
    assert_eq!(e["level"], "ERROR");
    assert_eq!(e["context"]["function"], "rank_candidates");
    assert_eq!(e["exception"]["type"], "RankingFailed");
    assert_eq!(e["exception"]["message"], "ranking failed");
    assert_eq!(
        e["exception"]["traceback"],
        "caused by: model server timed out\nat rank (src/ranking.rs:10)"
    );
    assert_eq!(e["data"], json!({ "attempt": 2 }));
    assert!(e["trace_id"].is_string() && e["span_id"].is_string());
}

#[test]
fn log_context_sync_and_nested() {
    let (_dir, records) = run(tracekit::builder(), |_| {
        LogContext::new()
            .request_id("req-1")
            .user_id("user-1")
            .field("experiment", "v2")
            .field("shard", 7_u64)
            .in_scope(|| {
                info!("outer");
                {
                    let _inner = LogContext::new()
                        .user_id("user-2")
                        .session_id("s-2")
                        .field("shard", 8_u64)
                        .enter();
                    info!(experiment = "own", "inner");
                    info_span!("child_work").in_scope(|| info!("in child span"));
                }
                info!("outer again");
            });
        info!("outside");
    });
    let outer = one(&records, "outer");
    assert_eq!(
        (
            &outer["request_id"],
            &outer["user_id"],
            outer.get("session_id")
        ),
        (&json!("req-1"), &json!("user-1"), None)
    );
    assert_eq!(outer["data"], json!({ "experiment": "v2", "shard": 7 }));
    let inner = one(&records, "inner");
    assert_eq!(inner["request_id"], "req-1", "inherited");
    assert_eq!(inner["user_id"], "user-2", "overridden");
    assert_eq!(inner["session_id"], "s-2");
    assert_eq!(inner["data"], json!({ "experiment": "own", "shard": 8 }));
    assert_eq!(inner["trace_id"], outer["trace_id"]);
    assert_ne!(inner["span_id"], outer["span_id"]);
    assert_eq!(
        inner["context"]["function"], "bridge_records",
        "contexts are not functions"
    );
    let child = one(&records, "in child span");
    assert_eq!(child["context"]["function"], "child_work");
    assert_eq!(
        (&child["user_id"], &child["session_id"]),
        (&json!("user-2"), &json!("s-2"))
    );
    assert_eq!(one(&records, "outer again")["user_id"], "user-1");
    let outside = one(&records, "outside");
    assert!(outside.get("request_id").is_none() && outside.get("trace_id").is_none());

    // Span records: the context spans carry their attributes, child spans inherit them.
    let span = |name: &str| {
        records
            .iter()
            .find(|r| r["span"]["name"] == name)
            .unwrap()
            .clone()
    };
    let child_span = span("child_work");
    assert_eq!(child_span["request_id"], "req-1");
    assert_eq!(child_span["user_id"], "user-2");
    assert_eq!(child_span["span_id"], child["span_id"]);
    assert_eq!(child_span["span"]["parent_span_id"], inner["span_id"]);
    let request_spans: Vec<_> = records
        .iter()
        .filter(|r| r["span"]["name"] == "request")
        .collect();
    assert_eq!(request_spans.len(), 2);
    assert!(request_spans
        .iter()
        .any(|s| s["span"]["attributes"]["experiment"] == "v2"));
}

/// Counts the OTel span events of every span that ends.
#[derive(Debug, Default, Clone)]
struct EventProbe {
    spans: Arc<AtomicUsize>,
    events: Arc<AtomicUsize>,
}

impl opentelemetry_sdk::trace::SpanProcessor for EventProbe {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        self.spans.fetch_add(1, Ordering::SeqCst);
        self.events.fetch_add(span.events.len(), Ordering::SeqCst);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(
        &self,
        _: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

#[test]
fn span_status_and_no_span_events() {
    let probe = EventProbe::default();
    let builder = tracekit::builder().span_processor(probe.clone());
    let (_dir, records) = run(builder, |_| {
        info_span!("busy").in_scope(|| {
            for i in 0..10_000_u64 {
                info!(i, "line");
            }
        });
        info_span!("fails").in_scope(|| error!("boom"));
        let span = info_span!("records_error", error = tracing::field::Empty);
        span.record("error", &Timeout as &dyn std::error::Error);
        drop(span);
        info_span!("fine").in_scope(|| warn!("only a warning"));
    });
    assert_eq!(probe.spans.load(Ordering::SeqCst), 4);
    assert_eq!(
        probe.events.load(Ordering::SeqCst),
        0,
        "log lines must not pile up as span events"
    );
    let span = |name: &str| {
        records
            .iter()
            .find(|r| r["span"]["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(span("fails")["span"]["status"], "error");
    assert_eq!(span("fails")["span"]["status_message"], "boom");
    assert_eq!(span("fails")["level"], "ERROR");
    assert_eq!(span("records_error")["span"]["status"], "error");
    assert_eq!(span("fine")["span"]["status"], "unset");
    assert_eq!(span("busy")["span"]["status"], "unset");
    assert!(span("busy")["span"]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        records.iter().filter(|r| r["message"] == "line").count(),
        10_000
    );
}

/// A directive naming a span enables its level inside that span only (the filter tracks
/// spans only when a directive needs it).
#[test]
fn span_directives_apply_inside_the_named_span() {
    let (_dir, records) = run_filtered("warn,[checkout]=debug", tracekit::builder(), |_| {
        debug!("before");
        info_span!("checkout").in_scope(|| {
            debug!("inside");
            info_span!("payment").in_scope(|| debug!("nested"));
        });
        debug!("after");
        warn!("warned");
    });
    let mut messages: Vec<&str> = records
        .iter()
        .filter(|r| r.get("span").is_none())
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    messages.sort();
    assert_eq!(messages, ["inside", "nested", "warned"]);
}

/// The baggage current inside nested contexts, as `key=value;metadata` sorted.
fn current_baggage() -> Vec<String> {
    let cx = opentelemetry::Context::current();
    let mut entries: Vec<String> = cx
        .baggage()
        .iter()
        .map(|(k, (v, m))| format!("{k}={v};{}", m.as_str()))
        .collect();
    entries.sort();
    entries
}

/// Each context's baggage holds its own ids and inherits the rest, foreign entries (with
/// their metadata) included; an id inherited with metadata is written anew without it.
#[test]
fn nested_contexts_carry_their_ids_in_baggage() {
    let remote = tracekit::extract(&HashMap::from([(
        "baggage".to_owned(),
        "tenant=acme;tier=gold,request.id=r0,session.id=s1;sampled".to_owned(),
    )]));
    let mut seen = Vec::new();
    run(tracekit::builder(), |_| {
        // The remote context is current (not the contexts' explicit parent, which would
        // take its ids as their own).
        let _remote = remote.attach();
        let _outer = LogContext::new().request_id("r1").enter();
        seen.push(current_baggage());
        LogContext::new()
            .request_id("r2")
            .in_scope(|| seen.push(current_baggage()));
        // The same id as the outer context: nothing to change.
        LogContext::new()
            .request_id("r1")
            .in_scope(|| seen.push(current_baggage()));
        // The session id as inherited, but the inherited entry has metadata.
        LogContext::new()
            .session_id("s1")
            .in_scope(|| seen.push(current_baggage()));
        seen.push(current_baggage());
    });
    let entries = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let outer = entries(&[
        "request.id=r1;",
        "session.id=s1;sampled",
        "tenant=acme;tier=gold",
    ]);
    assert_eq!(seen[0], outer);
    assert_eq!(
        seen[1],
        entries(&[
            "request.id=r2;",
            "session.id=s1;sampled",
            "tenant=acme;tier=gold",
        ])
    );
    assert_eq!(seen[2], outer);
    assert_eq!(
        seen[3],
        entries(&["request.id=r1;", "session.id=s1;", "tenant=acme;tier=gold"])
    );
    assert_eq!(seen[4], outer);
}

#[test]
fn inject_extract_round_trip() {
    let mut headers = HashMap::new();
    let mut http_headers = http::HeaderMap::new();
    let (_a, upstream) = run(tracekit::builder(), |_| {
        let _cx = LogContext::new()
            .request_id("req-42")
            .user_id("user-7")
            .enter();
        info!("upstream");
        tracekit::inject(&mut headers);
        tracekit::inject_headers(&mut http_headers);
    });
    let up = one(&upstream, "upstream");
    assert!(headers["traceparent"].contains(up["trace_id"].as_str().unwrap()));
    assert!(headers["traceparent"].contains(up["span_id"].as_str().unwrap()));

    // A second, independent tracer continues the trace.
    let cx = tracekit::extract(&headers);
    assert_eq!(
        cx.baggage().get("request.id").map(|v| v.as_str()),
        Some("req-42")
    );
    assert_eq!(
        cx.baggage().get("user.id").map(|v| v.as_str()),
        Some("user-7")
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let span = provider
        .tracer("downstream")
        .start_with_context("handle", &cx);
    assert_eq!(
        span.span_context().trace_id().to_string(),
        up["trace_id"].as_str().unwrap()
    );

    // A downstream tracekit service continues trace and request ids.
    let from_http = tracekit::extract_headers(&http_headers);
    let (_b, downstream) = run(tracekit::builder(), |_| {
        LogContext::new()
            .session_id("s-1")
            .parent(from_http)
            .in_scope(|| info!("downstream"));
    });
    let down = one(&downstream, "downstream");
    assert_eq!(down["trace_id"], up["trace_id"]);
    assert_eq!(down["request_id"], "req-42");
    assert_eq!(down["user_id"], "user-7");
    assert_eq!(down["session_id"], "s-1");
    let request = downstream
        .iter()
        .find(|r| r["span"]["name"] == "request")
        .unwrap();
    assert_eq!(request["span"]["parent_span_id"], up["span_id"]);
}

#[test]
fn component_logger() {
    let directives = "info,ranking=trace";
    let (_dir, records) = run_filtered(directives, tracekit::builder(), |_| {
        let logger = tracekit::get_logger("myapp::candidate", "candidate");
        LogContext::new().request_id("req-9").in_scope(|| {
            logger.info(
                "Processing started",
                json!({ "num_candidates": 1500, "sources": ["in", "out"], "api_key": "k" }),
            );
            logger.debug("below the directives' level", ());
            logger.warning("plain", ());
            logger.critical("scalar data", 3);
        });
        let verbose = logger.clone().with_level(Level::TRACE);
        verbose.trace("own level", ());
        let quiet = logger.with_level(Level::ERROR);
        quiet.warning("below its own level", ());
        tracekit::get_logger("x", "ranking").trace("component directive", ());
    });
    let r = one(&records, "Processing started");
    assert_eq!(r["component"], "candidate");
    assert_eq!(r["logger"], "myapp::candidate");
    assert_eq!(r["request_id"], "req-9");
    assert_eq!(
        r["data"],
        json!({ "num_candidates": 1500, "sources": ["in", "out"], "api_key": "[REDACTED]" })
    );
    assert_eq!(r["context"]["file"], file!());
    assert!(records
        .iter()
        .all(|r| r["message"] != "below the directives' level"
            && r["message"] != "below its own level"));
    assert!(one(&records, "plain").get("data").is_none());
    assert_eq!(one(&records, "scalar data")["level"], "CRITICAL");
    assert_eq!(one(&records, "scalar data")["data"], json!({ "value": 3 }));
    assert_eq!(one(&records, "own level")["level"], "TRACE");
    assert_eq!(one(&records, "component directive")["component"], "ranking");
}

#[test]
fn opentelemetry_api_lands_in_the_same_files() {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    let (_dir, records) = run(tracekit::builder(), |guard| {
        let tracer = guard.tracer_provider().tracer("billing");
        let logger = guard.logger_provider().logger("billing");
        // An OTel span inside a tracing span is its child (the OTel context is active).
        info_span!("tracing_parent").in_scope(|| {
            tracer.in_span("charge", |cx| {
                cx.span()
                    .set_attribute(opentelemetry::KeyValue::new("component", "billing"));
                let mut record = logger.create_log_record();
                record.set_severity_number(Severity::Fatal);
                record.set_body("card processor down".into());
                record.add_attribute("component", "billing");
                logger.emit(record);
            });
        });
    });
    let log = one(&records, "card processor down");
    assert_eq!(
        (&log["level"], &log["component"]),
        (&json!("CRITICAL"), &json!("billing"))
    );
    let charge = records
        .iter()
        .find(|r| r["span"]["name"] == "charge")
        .unwrap();
    let parent = records
        .iter()
        .find(|r| r["span"]["name"] == "tracing_parent")
        .unwrap();
    assert_eq!(charge["trace_id"], parent["trace_id"]);
    assert_eq!(charge["span"]["parent_span_id"], parent["span_id"]);
}

/// Keeps every span a span processor receives.
#[derive(Debug, Default, Clone)]
struct SpanProbe(Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanProcessor for SpanProbe {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        self.0.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(
        &self,
        _: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// A span's OpenTelemetry attributes carry the request keys and component once each: its own
/// fields under those keys (set by tracing-opentelemetry) are not set again; inherited ones,
/// and a field under another name (`request_id`), get the semantic-convention key.
#[test]
fn span_attributes_carry_each_request_key_once() {
    let probe = SpanProbe::default();
    let builder = tracekit::builder().span_processor(probe.clone());
    run(builder, |_| {
        info_span!("outer", user.id = "u-1", session_id = "s-1").in_scope(|| {
            info_span!("own", request.id = "r-own", component = "serving").in_scope(|| {});
            info_span!("underscored", request_id = "r-2").in_scope(|| {});
        });
    });
    let spans = probe.0.lock().unwrap();
    let keys = |name: &str| -> Vec<(String, String)> {
        let span = spans.iter().find(|s| s.name == name).unwrap();
        let mut keys: Vec<(String, String)> = span
            .attributes
            .iter()
            .filter(|kv| {
                [
                    "request.id",
                    "request_id",
                    "user.id",
                    "session.id",
                    "component",
                ]
                .contains(&kv.key.as_str())
            })
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        keys.sort();
        keys
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        keys("own"),
        pairs(&[
            ("component", "serving"),
            ("request.id", "r-own"),
            ("session.id", "s-1"),
            ("user.id", "u-1"),
        ])
    );
    assert_eq!(
        keys("underscored"),
        pairs(&[
            ("request.id", "r-2"),
            ("request_id", "r-2"),
            ("session.id", "s-1"),
            ("user.id", "u-1"),
        ])
    );
}

/// A request context's span is a real OTel span: children opened with `tracing`, with the
/// OTel API and after an `.await` on another worker thread nest under it; an error inside
/// fails it; span processors receive it with the request attributes, as the files do.
#[test]
fn request_context_span_is_an_otel_span() {
    let probe = SpanProbe::default();
    let builder = tracekit::builder().span_processor(probe.clone());
    let (_dir, records) = run(builder, |guard| {
        let tracer = guard.tracer_provider().tracer("api");
        LogContext::new()
            .request_id("req-5")
            .user_id("user-5")
            .field("experiment", "v2")
            .in_scope(|| {
                info!("direct");
                info_span!("child").in_scope(|| info!("in child"));
                tracer.in_span("api_child", |_| {});
                LogContext::new()
                    .session_id("s-5")
                    .in_scope(|| info!("nested"));
                error!("failed");
            });
        // A span given a request context as its explicit parent, from outside it.
        let detached = LogContext::new().request_id("req-explicit").span();
        info_span!(parent: &detached, "explicit_child").in_scope(|| info!("explicit"));
        drop(detached);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        runtime.block_on(async move {
            let task = async {
                info!("before await");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                tokio::task::yield_now().await;
                info_span!("after_await").in_scope(|| info!("after await"));
            };
            let task = tracing::instrument::WithSubscriber::with_subscriber(
                LogContext::new().request_id("req-async").instrument(task),
                dispatch,
            );
            tokio::spawn(task).await.unwrap();
        });
    });
    let span = |name: &str, request: &str| {
        let found: Vec<_> = records
            .iter()
            .filter(|r| r["span"]["name"] == name && r["request_id"] == request)
            .collect();
        assert_eq!(found.len(), 1, "{name} spans of {request}: {found:#?}");
        found[0].clone()
    };
    let direct = one(&records, "direct");
    let request = records
        .iter()
        .find(|r| r["span"]["name"] == "request" && r["span_id"] == direct["span_id"])
        .expect("the request span's record")
        .clone();
    assert_eq!(request["span_id"], direct["span_id"]);
    assert_eq!(request["trace_id"], direct["trace_id"]);
    assert!(request["span"].get("parent_span_id").is_none());
    assert_eq!(request["level"], "ERROR");
    assert_eq!(request["span"]["status"], "error");
    assert_eq!(request["span"]["status_message"], "failed");
    assert_eq!(request["user_id"], "user-5");
    assert_eq!(request["span"]["attributes"]["experiment"], "v2");
    assert_eq!(request["logger"], "tracekit");
    let api_child = records
        .iter()
        .find(|r| r["span"]["name"] == "api_child")
        .unwrap()
        .clone();
    for child in [span("child", "req-5"), api_child] {
        assert_eq!(child["span"]["parent_span_id"], request["span_id"]);
        assert_eq!(child["trace_id"], request["trace_id"]);
    }
    let nested = one(&records, "nested");
    let nested_span = records
        .iter()
        .find(|r| r["span"]["name"] == "request" && r["session_id"] == "s-5")
        .unwrap();
    assert_eq!(nested_span["span_id"], nested["span_id"]);
    assert_eq!(nested_span["span"]["parent_span_id"], request["span_id"]);
    assert_eq!(nested_span["span"]["status"], "unset");

    let explicit = span("request", "req-explicit");
    let explicit_child = span("explicit_child", "req-explicit");
    assert_eq!(
        explicit_child["span"]["parent_span_id"],
        explicit["span_id"]
    );
    assert_eq!(explicit_child["trace_id"], explicit["trace_id"]);

    let async_request = span("request", "req-async");
    let after = span("after_await", "req-async");
    assert_eq!(after["span"]["parent_span_id"], async_request["span_id"]);
    assert_eq!(
        one(&records, "after await")["trace_id"],
        async_request["trace_id"]
    );

    // The processor got the same spans, request contexts included, with their attributes.
    let spans = probe.0.lock().unwrap();
    let span_records = records.iter().filter(|r| r.get("span").is_some()).count();
    assert_eq!(spans.len(), span_records);
    let data = spans
        .iter()
        .find(|s| s.span_context.span_id().to_string() == request["span_id"])
        .expect("the request span reached the processor");
    assert_eq!(data.name, "request");
    assert_eq!(data.status, opentelemetry::trace::Status::error("failed"));
    let attr = |key: &str| {
        data.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("request.id").as_deref(), Some("req-5"));
    assert_eq!(attr("user.id").as_deref(), Some("user-5"));
    assert_eq!(attr("experiment").as_deref(), Some("v2"));
}

/// A context's component is normalized once, where it is set: its span and a child span that
/// inherits it carry the normalized name as their OTel `component` attribute, and the records
/// land in that component's directory.
#[test]
fn context_component_is_normalized_for_otel() {
    let probe = SpanProbe::default();
    let builder = tracekit::builder().span_processor(probe.clone());
    let (_dir, records) = run(builder, |_| {
        LogContext::new()
            .request_id("req-c")
            .component("CandidateGenerator")
            .in_scope(|| info_span!("work").in_scope(|| info!("inside")));
    });
    assert_eq!(one(&records, "inside")["component"], "candidate_generator");
    let spans = probe.0.lock().unwrap();
    for name in ["request", "work"] {
        let data = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("span {name}"));
        let component = data
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "component")
            .map(|kv| kv.value.to_string());
        assert_eq!(component.as_deref(), Some("candidate_generator"), "{name}");
    }
}

/// A request context whose fields are recorded after it opened gets a new scope: an error
/// logged before still fails its span.
#[test]
fn a_request_context_keeps_its_error_when_its_fields_are_recorded_later() {
    let (_dir, records) = run(tracekit::builder(), |_| {
        let span = LogContext::new().request_id("req-rec").span();
        span.in_scope(|| error!("failed early"));
        span.record("component", "ranking");
        span.in_scope(|| info!("after the record"));
        span.in_scope(|| error!("failed later"));
        span.record("user.id", "user-9");
        drop(span);
    });
    assert_eq!(one(&records, "after the record")["component"], "ranking");
    let request = records
        .iter()
        .find(|r| r["span"]["name"] == "request" && r["request_id"] == "req-rec")
        .expect("the request span's record");
    assert_eq!(request["component"], "ranking");
    assert_eq!(request["span"]["status"], "error");
    assert_eq!(request["user_id"], "user-9");
    assert_eq!(request["span"]["status_message"], "failed later");
}

/// Request contexts work under any filter short of `off`.
#[test]
fn request_context_under_a_strict_filter() {
    let (_dir, records) = run_filtered("error", tracekit::builder(), |_| {
        LogContext::new().request_id("req-strict").in_scope(|| {
            warn!("filtered out");
            error!("kept");
        });
    });
    let kept = one(&records, "kept");
    assert_eq!(kept["request_id"], "req-strict");
    assert!(records.iter().all(|r| r["message"] != "filtered out"));
    let request = records
        .iter()
        .find(|r| r["span"]["name"] == "request")
        .expect("the context's span record");
    assert_eq!(request["span_id"], kept["span_id"]);
}

/// Under a subscriber that is not tracekit's, a context's values are its span's fields; a
/// context opened while contexts are filtered out leaves nothing behind for the next one.
#[test]
fn request_context_values_without_tracekit() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let make = buffer.clone();
    let fmt = tracing_subscriber::fmt()
        .with_writer(move || make.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(fmt, || {
        LogContext::new()
            .request_id("req-fmt")
            .user_id("user-fmt")
            .in_scope(|| info!("inside"));
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains(r#"request{request.id="req-fmt" user.id="user-fmt"}"#),
        "{text}"
    );

    let (_dir, records) = run_filtered("off", tracekit::builder(), |_| {
        let _off = LogContext::new().request_id("req-off").enter();
    });
    assert!(records.is_empty());
    let (_dir, records) = run(tracekit::builder(), |_| {
        let _skipped = LogContext::new().request_id("req-none").span();
        LogContext::new()
            .user_id("user-2")
            .in_scope(|| info!("second"));
    });
    let second = one(&records, "second");
    assert_eq!(second["user_id"], "user-2");
    assert_eq!(second.get("request_id"), None, "{second}");
}

#[derive(Debug)]
#[allow(dead_code)]
struct DbConfig {
    host: &'static str,
    password: &'static str,
}

#[tracekit::log_performance(log_args = true)]
fn connect(config: &DbConfig) -> usize {
    config.host.len()
}

/// Secrets inside `Debug`-formatted values (a `?field`, a decorated fn's argument that has
/// only `Debug`) are scrubbed by field name, as structured data is by key.
#[test]
fn debug_formatted_secrets_are_scrubbed() {
    let canary = "CANARY-dbg-7731";
    let config = DbConfig {
        host: "db.internal",
        password: canary,
    };
    let (dir, records) = run(tracekit::builder(), |_| {
        info!(config = ?config, "connecting");
        connect(&config);
    });
    let connecting = one(&records, "connecting");
    let text = connecting["data"]["config"].as_str().unwrap();
    assert!(
        text.contains("db.internal") && text.contains("[REDACTED]"),
        "{text}"
    );
    let mut all = String::new();
    for entry in walk(dir.path()) {
        all.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
    }
    assert!(all.contains("db.internal"), "the arguments were logged");
    assert!(!all.contains(canary), "the canary reached a file");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
