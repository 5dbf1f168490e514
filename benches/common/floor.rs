//! The floor under a `LogContext`: the work of its dependencies alone, which any request
//! context that is a `tracing` span carrying its ids in OpenTelemetry baggage pays (shared by
//! the `bridge` bench and `examples/hot_path.rs`).
//!
//! One [`open_close`] is what `LogContext::new().request_id(..).user_id(..).enter()` and its
//! drop ask of `tracing`, the registry and `opentelemetry`, inside an outer request that
//! has request, user and session ids: the two ids as shared strings, the baggage rebuilt
//! (the session id copied, the two ids inserted), the OTel context with it and a new span
//! context, made current while a span (the same call site shape: four empty fields) is
//! entered in a `Registry` with a layer that does nothing, and the span's start and end times. tracekit's own work is
//! left out: its layer's callbacks, the request's scope, and the span record it writes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::StringValue;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::field::Empty;

/// A registry with a layer that does nothing (a registry alone never frees a closed span:
/// the layered subscriber does).
pub fn dispatch() -> tracing::Dispatch {
    use tracing_subscriber::layer::{Identity, SubscriberExt};
    tracing::Dispatch::new(tracing_subscriber::Registry::default().with(Identity::new()))
}

/// The outer request's OTel context: its span context and its three ids in baggage.
pub fn outer() -> opentelemetry::Context {
    let ids = RandomIdGenerator::default();
    let baggage: Baggage = [
        opentelemetry::KeyValue::new("request.id", "req-abc-123"),
        opentelemetry::KeyValue::new("user.id", "user-456"),
        opentelemetry::KeyValue::new("session.id", "session-789"),
    ]
    .into_iter()
    .collect();
    opentelemetry::Context::new()
        .with_baggage(baggage)
        .with_remote_span_context(SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
}

/// One request context's dependency work (see the module docs), inside [`outer`] made current
/// and [`dispatch`] as the default subscriber.
pub fn open_close() {
    let request_id: Arc<str> = Arc::from(black_box("req-1"));
    let user_id: Arc<str> = Arc::from(black_box("user-1"));
    let base = opentelemetry::Context::current();
    let mut baggage = Baggage::new();
    for (key, (value, metadata)) in base.baggage() {
        if key.as_str() != "request.id" && key.as_str() != "user.id" {
            baggage.insert_with_metadata(key.clone(), value.clone(), metadata.clone());
        }
    }
    baggage.insert("request.id", StringValue::from(request_id));
    baggage.insert("user.id", StringValue::from(user_id));
    let parent = base.with_baggage(baggage);
    let start = SystemTime::now();
    let sc = SpanContext::new(
        parent.span().span_context().trace_id(),
        RandomIdGenerator::default().new_span_id(),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let cx = parent.with_remote_span_context(sc);
    let span = tracing::error_span!(
        target: "tracekit::context",
        "request",
        request.id = Empty,
        user.id = Empty,
        session.id = Empty,
        component = Empty,
    )
    .entered();
    let current = cx.attach();
    drop(current);
    drop(span);
    black_box((start, SystemTime::now()));
}
