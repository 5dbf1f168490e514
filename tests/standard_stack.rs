//! tracekit as a layer of the standard stack: composed with other layers and filters, a
//! `LogContext` as an ordinary SDK span under the standard span APIs, span fields on event
//! lines, code locations on span records.

mod bridge_support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{
    Link, SpanKind, Status, TraceContextExt, TraceId, TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample, SpanData, SpanProcessor,
};
use serde_json::{json, Value};
use tracekit::{LogContext, SpanFields};
use tracing::{info, info_span, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use bridge_support::{component_records, one};

/// Runs `f` under `registry + EnvFilter(trace) + tracekit` built by `builder` on a temporary
/// root; returns the root and every component record.
fn run(builder: tracekit::Builder, f: impl FnOnce()) -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = builder.root(dir.path()).filter("trace").build().unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    drop(guard);
    let records = component_records(dir.path());
    (dir, records)
}

/// The span record named `name`.
fn span_record<'a>(records: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<_> = records
        .iter()
        .filter(|r| r["span"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "span records named {name}: {records:#?}");
    found[0]
}

/// Every span a tracer provider ends, as its processors get it.
#[derive(Clone, Debug, Default)]
struct SpanProbe {
    started: Arc<Mutex<Vec<String>>>,
    ended: Arc<Mutex<Vec<SpanData>>>,
}

impl SpanProcessor for SpanProbe {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {
        let name = span
            .exported_data()
            .map(|d| d.name.to_string())
            .unwrap_or_default();
        self.started.lock().unwrap().push(name);
    }

    fn on_end(&self, span: SpanData) {
        self.ended.lock().unwrap().push(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(
        &self,
        _timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

impl SpanProbe {
    fn ended(&self, name: &str) -> SpanData {
        let ended = self.ended.lock().unwrap();
        let found: Vec<_> = ended.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "spans named {name}");
        found[0].clone()
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// A buffer a `fmt` layer writes to.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A layer of the user's own: counts the events it sees.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for Counter {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The workload of the composition test.
fn workload() {
    LogContext::new()
        .request_id("req-1")
        .user_id("user-1")
        .component("serving")
        .in_scope(|| {
            info!(num_candidates = 1500_u64, "Generated candidates");
            info_span!("rank", model = "v2").in_scope(|| {
                warn!(latency_ms = 12.5, "slow model");
            });
            tracing::error!("Ranking failed");
        });
    info!("outside");
}

/// What a record says, without what differs from run to run (times, ids, threads).
fn stable(record: &Value) -> Value {
    let mut r = record.clone();
    let obj = r.as_object_mut().unwrap();
    for key in ["timestamp", "trace_id", "span_id"] {
        obj.remove(key);
    }
    if let Some(context) = obj.get_mut("context").and_then(Value::as_object_mut) {
        context.remove("thread");
        context.remove("line");
    }
    if let Some(span) = obj.get_mut("span").and_then(Value::as_object_mut) {
        for key in ["start", "end", "duration_ms", "parent_span_id"] {
            span.remove(key);
        }
        if let Some(attributes) = span.get_mut("attributes").and_then(Value::as_object_mut) {
            for key in ["busy_ns", "idle_ns", "thread.id"] {
                attributes.remove(key);
            }
        }
    }
    r
}

#[test]
fn the_layer_composes_with_fmt_a_user_layer_and_per_layer_filters() {
    // tracekit alone, as init would set it up.
    let (_alone_dir, alone) = run(tracekit::builder(), workload);

    // The same workload in company: an EnvFilter, a fmt layer into a buffer, a layer of the
    // user's own, and tracekit behind a per-layer filter of its own.
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = tracekit::builder()
        .root(dir.path())
        .otel_globals(false)
        .panic_hook(false)
        .layer()
        .unwrap();
    let buffer = Buffer::default();
    let make = buffer.clone();
    let counter = Counter::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || make.clone())
                .with_ansi(false),
        )
        .with(counter.clone())
        .with(layer.with_filter(tracing_subscriber::filter::LevelFilter::TRACE));
    tracing::subscriber::with_default(subscriber, workload);
    drop(guard);
    let composed = component_records(dir.path());

    // Each sees every event.
    assert_eq!(counter.0.load(Ordering::Relaxed), 4);
    let text = buffer.text();
    for message in [
        "Generated candidates",
        "slow model",
        "Ranking failed",
        "outside",
    ] {
        assert!(text.contains(message), "fmt missed {message}: {text}");
    }
    // tracekit's files are the same as alone.
    let mut a: Vec<Value> = alone.iter().map(stable).collect();
    let mut b: Vec<Value> = composed.iter().map(stable).collect();
    a.sort_by_key(|v| v.to_string());
    b.sort_by_key(|v| v.to_string());
    assert_eq!(a, b);
    assert_eq!(a.len(), 6, "4 events and 2 spans: {a:#?}");
}

#[test]
fn a_per_layer_filter_on_tracekit_keeps_the_request_context() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = tracekit::builder()
        .root(dir.path())
        .otel_globals(false)
        .panic_hook(false)
        .layer()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(tracing_subscriber::filter::LevelFilter::WARN));
    tracing::subscriber::with_default(subscriber, || {
        LogContext::new().request_id("req-w").in_scope(|| {
            info!("below the layer's level");
            warn!("kept");
        });
    });
    drop(guard);
    let records = component_records(dir.path());
    let kept = one(&records, "kept");
    assert_eq!(kept["request_id"], "req-w");
    assert!(records
        .iter()
        .all(|r| r["message"] != "below the layer's level"));
}

#[test]
fn the_layer_alone_on_a_registry_writes_every_event() {
    // No level filter of its own and none below it: nothing turns events off.
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = tracekit::builder()
        .root(dir.path())
        .otel_globals(false)
        .panic_hook(false)
        .layer()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::trace!("t");
        info!("i");
    });
    drop(guard);
    let records = component_records(dir.path());
    assert_eq!(records.len(), 2, "{records:#?}");
}

#[test]
fn inside_a_log_context_the_standard_span_apis_work() {
    let probe = SpanProbe::default();
    let other = SdkTracerProvider::builder().build();
    let linked = other.tracer("t").start("elsewhere");
    let linked_cx = opentelemetry::trace::Span::span_context(&linked).clone();
    let mut seen = None;
    let (_dir, records) = run(tracekit::builder().span_processor(probe.clone()), || {
        LogContext::new().request_id("req-s").in_scope(|| {
            let span = tracing::Span::current();
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            assert!(sc.is_valid(), "the request span's context");
            // opentelemetry's own current context is the same span.
            assert_eq!(
                opentelemetry::Context::current()
                    .span()
                    .span_context()
                    .span_id(),
                sc.span_id()
            );
            span.set_attribute("order_id", 42_i64);
            span.set_status(Status::error("declined"));
            span.add_link(linked_cx.clone());
            info!("inside");
            info_span!("child").in_scope(|| info!("in the child"));
            seen = Some(sc);
        });
    });
    let sc = seen.unwrap();
    // The records inside carry the span's ids.
    let inside = one(&records, "inside");
    assert_eq!(inside["trace_id"], sc.trace_id().to_string());
    assert_eq!(inside["span_id"], sc.span_id().to_string());
    // The span record has what the standard calls set.
    let request = span_record(&records, "request");
    assert_eq!(request["span_id"], sc.span_id().to_string());
    assert_eq!(request["span"]["attributes"]["order_id"], 42);
    assert_eq!(request["span"]["status"], "error");
    assert_eq!(request["span"]["status_message"], "declined");
    assert_eq!(
        request["span"]["links"],
        json!([{"trace_id": linked_cx.trace_id().to_string(), "span_id": linked_cx.span_id().to_string()}])
    );
    // A child tracing span is the request span's child.
    let child = span_record(&records, "child");
    assert_eq!(child["span"]["parent_span_id"], sc.span_id().to_string());
    assert_eq!(child["request_id"], "req-s");
    // The SDK span, as processors see it.
    let data = probe.ended("request");
    assert_eq!(data.span_context.span_id(), sc.span_id());
    assert_eq!(attribute(&data, "order_id"), Some(42_i64.into()));
    assert_eq!(attribute(&data, "request.id"), Some("req-s".into()));
    assert_eq!(data.status, Status::error("declined"));
    assert_eq!(data.links.links[0].span_context, linked_cx);
    assert!(probe
        .started
        .lock()
        .unwrap()
        .contains(&"request".to_owned()));
}

#[test]
fn set_parent_on_a_log_context_continues_the_remote_trace() {
    let remote = opentelemetry::trace::SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        opentelemetry::trace::TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let (_dir, records) = run(tracekit::builder(), || {
        let span = LogContext::new().request_id("req-p").span();
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote.clone()))
            .expect("the span has not started yet");
        span.in_scope(|| info!("downstream"));
        // An ordinary span too: the tracing-opentelemetry way to continue a trace.
        let plain = info_span!("handler");
        plain
            .set_parent(opentelemetry::Context::new().with_remote_span_context(remote.clone()))
            .unwrap();
        plain.in_scope(|| info!("in the handler"));
    });
    for message in ["downstream", "in the handler"] {
        assert_eq!(
            one(&records, message)["trace_id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
    for name in ["request", "handler"] {
        assert_eq!(
            span_record(&records, name)["span"]["parent_span_id"],
            "00f067aa0ba902b7"
        );
    }
}

/// Records every span name it is asked about and drops the spans named `dropped`.
#[derive(Clone, Debug)]
struct NamingSampler(Arc<Mutex<Vec<String>>>);

impl ShouldSample for NamingSampler {
    fn should_sample(
        &self,
        _parent: Option<&opentelemetry::Context>,
        _trace_id: TraceId,
        name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        self.0.lock().unwrap().push(name.to_owned());
        let decision = if name == "dropped" {
            SamplingDecision::Drop
        } else {
            SamplingDecision::RecordAndSample
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: TraceState::default(),
        }
    }
}

#[test]
fn the_providers_sampler_and_processors_see_the_request_span() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let probe = SpanProbe::default();
    let builder = tracekit::builder()
        .sampler(NamingSampler(Arc::clone(&names)))
        .span_processor(probe.clone());
    let (_dir, records) = run(builder, || {
        LogContext::new().request_id("req-x").in_scope(|| {
            info_span!("dropped").in_scope(|| info!("in a dropped span"));
        });
    });
    let names = names.lock().unwrap();
    assert!(names.contains(&"request".to_owned()), "{names:?}");
    assert_eq!(probe.ended("request").name, "request");
    // The sampler decides for the files too: the dropped span has no record, its event has.
    assert!(records.iter().all(|r| r["span"]["name"] != "dropped"));
    assert_eq!(one(&records, "in a dropped span")["request_id"], "req-x");
}

#[test]
fn baggage_carries_the_three_ids_across_services() {
    let mut headers = HashMap::new();
    let (_dir, _records) = run(tracekit::builder(), || {
        LogContext::new()
            .request_id("req-b")
            .user_id("user-b")
            .session_id("session-b")
            .in_scope(|| tracekit::inject(&mut headers));
    });
    let baggage = &headers["baggage"];
    for pair in ["request.id=req-b", "user.id=user-b", "session.id=session-b"] {
        assert!(baggage.contains(pair), "{baggage}");
    }
}

#[test]
fn otel_api_spans_from_the_global_tracer_are_children_of_the_request() {
    // The one test of this binary that installs the globals.
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = tracekit::builder()
        .root(dir.path())
        .panic_hook(false)
        .layer()
        .unwrap();
    let mut request_span = None;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        LogContext::new().request_id("req-g").in_scope(|| {
            request_span = Some(
                tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .span_id(),
            );
            opentelemetry::global::tracer("billing").in_span("charge", |_cx| {
                info!("charging");
            });
        });
    });
    drop(guard);
    let records = component_records(dir.path());
    let charge = span_record(&records, "charge");
    assert_eq!(
        charge["span"]["parent_span_id"],
        request_span.unwrap().to_string()
    );
    // The bare OpenTelemetry API's span says where it ran: thread and process.
    assert!(charge["context"]["thread"].as_u64().unwrap() > 0);
    assert_eq!(charge["context"]["process"], std::process::id());
    assert_eq!(one(&records, "charging")["request_id"], "req-g");
}

#[test]
fn a_span_opened_after_an_enabled_check_is_still_an_sdk_span() {
    // `enabled!` leaves a per-layer filter decision behind for metadata that is neither a
    // span nor an event (tokio-rs/tracing#2519); the next span must still be bridged.
    let (_dir, records) = run(tracekit::builder(), || {
        let _ = tracing::enabled!(tracing::Level::DEBUG);
        info_span!("after_check").in_scope(|| info!("inside the checked span"));
    });
    let span = span_record(&records, "after_check");
    assert_eq!(
        one(&records, "inside the checked span")["span_id"],
        span["span_id"]
    );
}

#[test]
fn span_fields_go_into_event_lines() {
    let (dir, records) = run(tracekit::builder(), || {
        let checkout = info_span!(
            "checkout",
            order_id = 42_u64,
            cart = "c-1",
            password = "hunter2",
            status = tracing::field::Empty
        );
        checkout.in_scope(|| {
            info!("started");
            // The innermost span's value wins; the event's own fields win over all.
            info_span!("payment", cart = "c-2", attempt = 1_i64).in_scope(|| {
                info!("paying");
                info!(attempt = 3_i64, "retrying");
            });
            let late_child = info_span!("receipt");
            checkout.record("status", "paid");
            // Recorded later: counts from then on, in spans opened before too.
            info!("paid");
            late_child.in_scope(|| info!("receipt sent"));
        });
    });
    let data = |m: &str| one(&records, m)["data"].clone();
    assert_eq!(
        data("started"),
        json!({"order_id": 42, "cart": "c-1", "password": "[REDACTED]"})
    );
    assert_eq!(
        data("paying"),
        json!({"order_id": 42, "cart": "c-2", "password": "[REDACTED]", "attempt": 1})
    );
    assert_eq!(data("retrying")["attempt"], 3);
    assert_eq!(data("paid")["status"], "paid");
    assert_eq!(data("receipt sent")["status"], "paid");
    // Numbers stay numbers on the span record too, written once (not also as "42").
    let checkout = span_record(&records, "checkout");
    assert_eq!(checkout["span"]["attributes"]["order_id"], 42);
    let text = std::fs::read_to_string(dir.path().join("logs/app/app.log")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(r#""span":{"name":"checkout""#))
        .unwrap();
    assert_eq!(line.matches(r#""order_id""#).count(), 1, "{line}");
}

#[test]
fn the_span_fields_setting_chooses_which_fields() {
    let workload = || {
        info_span!("checkout", order_id = 42_u64, cart = "c-1").in_scope(|| {
            LogContext::new()
                .field("experiment", "v2")
                .in_scope(|| info!("paid"));
        })
    };
    let (_d, only) = run(
        tracekit::builder().span_fields(SpanFields::only(["order_id"])),
        workload,
    );
    assert_eq!(
        one(&only, "paid")["data"],
        json!({"order_id": 42, "experiment": "v2"})
    );
    let (_d, none) = run(tracekit::builder().span_fields(SpanFields::NONE), workload);
    // A LogContext's own key-values are always written.
    assert_eq!(one(&none, "paid")["data"], json!({"experiment": "v2"}));
}

#[test]
fn span_records_say_where_they_came_from() {
    let mut opened_at = 0;
    let (_dir, records) = run(tracekit::builder(), || {
        opened_at = line!() + 1;
        let cx = LogContext::new().request_id("req-l").enter();
        info_span!("work").in_scope(|| {});
        drop(cx);
    });
    let request = span_record(&records, "request");
    assert_eq!(request["context"]["file"], file!());
    assert_eq!(request["context"]["line"], opened_at);
    let work = span_record(&records, "work");
    assert_eq!(work["context"]["file"], file!());
    assert_eq!(work["context"]["function"], "work");
    assert_eq!(work["context"]["line"], opened_at + 1);
    for record in [request, work] {
        assert!(record["context"]["thread"].as_u64().unwrap() > 0);
        assert_eq!(record["context"]["process"], std::process::id());
    }
}
