//! Completing the SDK span behind a `tracing` span with what tracekit adds.
//!
//! tracing-opentelemetry keeps a span's SDK span unstarted until it is needed (the span is
//! entered, its context asked for, a child opened under it, or it closes), so that
//! `OpenTelemetrySpanExt::set_parent` works on a span just opened. tracekit waits as well:
//! it [completes](complete) the SDK span once it has started (or starts it, when a record
//! needs its ids first), adding what tracing-opentelemetry does not know: the code location
//! (a [`LogContext`](crate::LogContext)'s is its caller's), the request ids and component the
//! span inherits, unsigned fields as numbers, a context's key-values and an error recorded
//! on the span.

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::KeyValue;
use tracing::Dispatch;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::keys::{COMPONENT, CONTEXT_TARGET, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::scope::{
    FieldName, Scope, NAMED_COMPONENT, NAMED_REQUEST_ID, NAMED_SESSION_ID, NAMED_USER_ID,
};
use crate::sdk_span::{location_attributes, Started};
use crate::sink::Sink;

/// Completes `span`'s SDK span with what tracekit adds, once, starting it first if nothing
/// has yet; `scope` is the span's current scope.
pub(crate) fn complete<'a, 's, R>(
    span: &SpanRef<'a, R>,
    scope: &'s Scope,
    dispatch: &Dispatch,
    sink: &Sink,
) -> &'s Started
where
    R: LookupSpan<'a>,
{
    // Locks the span's extensions: no extension guard may be held here.
    complete_with(span, scope, sink, || {
        tracing_opentelemetry::get_otel_context(&span.id(), dispatch).unwrap_or_default()
    })
}

/// [`complete`] for a span being entered, after the OpenTelemetry layer entered it: its
/// context is the current OpenTelemetry context then (tracing-opentelemetry makes it
/// current), which saves a second look-up of the span.
pub(crate) fn complete_entered<'a, 's, R>(
    span: &SpanRef<'a, R>,
    scope: &'s Scope,
    dispatch: &Dispatch,
    sink: &Sink,
) -> &'s Started
where
    R: LookupSpan<'a>,
{
    let current = opentelemetry::Context::current();
    if !current.has_active_span() {
        return complete(span, scope, dispatch, sink);
    }
    complete_with(span, scope, sink, || current)
}

fn complete_with<'a, 's, R>(
    span: &SpanRef<'a, R>,
    scope: &'s Scope,
    sink: &Sink,
    context: impl FnOnce() -> opentelemetry::Context,
) -> &'s Started
where
    R: LookupSpan<'a>,
{
    scope.sdk.started.get_or_init(|| {
        let cx = context();
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        let (trace_id, span_id) = (sc.trace_id(), sc.span_id());
        otel_span.set_attributes(additions(span, scope, sink));
        if let Some(message) = &scope.own.error {
            otel_span.set_status(Status::error(message.clone()));
        }
        Started {
            cx,
            trace_id,
            span_id,
        }
    })
}

/// What tracekit adds to a span's SDK span.
fn additions<'a, R: LookupSpan<'a>>(
    span: &SpanRef<'a, R>,
    scope: &Scope,
    sink: &Sink,
) -> Vec<KeyValue> {
    let meta = span.metadata();
    let own = &scope.own;
    let mut added = Vec::with_capacity(8 + own.fields.len());
    match scope.sdk.location.get() {
        // A request context: its caller's location, the function it was opened in.
        Some(location) => {
            if let Some(function) = scope.function {
                added.push(KeyValue::new("code.function.name", function));
            }
            added.extend(location_attributes(location));
        }
        None if meta.target() != CONTEXT_TARGET => {
            added.push(KeyValue::new("code.function.name", meta.name()));
            if let Some(file) = meta.file() {
                added.push(KeyValue::new("code.file.path", file));
            }
            if let Some(line) = meta.line() {
                added.push(KeyValue::new("code.line.number", i64::from(line)));
            }
            if let Some(module) = meta.module_path() {
                added.push(KeyValue::new("code.module.name", module));
            }
        }
        None => {}
    }
    // The inherited context (and ids given under the records' names), so that the span's
    // record carries it too.
    for (key, bit, value) in [
        (REQUEST_ID_KEY, NAMED_REQUEST_ID, &scope.request_id),
        (USER_ID_KEY, NAMED_USER_ID, &scope.user_id),
        (SESSION_ID_KEY, NAMED_SESSION_ID, &scope.session_id),
    ] {
        if let (0, Some(v)) = (own.named & bit, value) {
            added.push(KeyValue::new(key, v.clone()));
        }
    }
    if own.named & NAMED_COMPONENT == 0 {
        let component = match &scope.component {
            Some(c) => Some(c.clone()),
            None => Some(sink.component_for_target(meta.target()))
                .filter(|c| !c.is_empty())
                .map(Into::into),
        };
        if let Some(c) = component {
            added.push(KeyValue::new(COMPONENT, c));
        }
    }
    // tracing-opentelemetry sets these as their `Debug` text; a later value of a key wins.
    for (key, value) in &own.unsigned {
        added.push(KeyValue::new(*key, value.to_otel()));
    }
    // A request context's key-values (tracing fields are the OpenTelemetry layer's).
    for (name, value) in &own.fields {
        if let FieldName::Shared(name) = name {
            added.push(KeyValue::new(name.to_string(), value.to_otel()));
        }
    }
    added
}
