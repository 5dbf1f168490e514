//! The OpenTelemetry span of a [`LogContext`](crate::LogContext), kept by tracekit itself.
//!
//! A request context is opened and closed once per request, and through tracing-opentelemetry
//! and the SDK its span costs several microseconds: span data behind a lock, attributes
//! converted and held, timings, the SDK span, its end and the exporter's generic attribute
//! lifting. tracekit already holds everything such a span carries (its ids, request, user and
//! session ids, component and extra fields in the span's scope), so the event layer gives it a
//! span context of its own (ids from the SDK's random generator, the trace of the current OTel
//! context), makes that context current while the span is entered (so child spans, from
//! `tracing` or the OTel API, and [`inject`](crate::inject) see it), and writes its span record
//! when it closes: the same record `FileSpanExporter` writes for an SDK span. Span processors
//! added with [`Builder::span_processor`](crate::Builder::span_processor) (an OTLP exporter)
//! receive it as `SpanData`, as they would from the SDK.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanProcessor};

use crate::context::{REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::exporters::{
    current_thread_id, CodeContext, FieldWriter, Fields, Level, Record, SpanInfo, SpanStatus,
};
use crate::layer::{next_serial, Extra, Scope, Shared, Values};

/// The name of a request context's span (and of its record's message).
pub(crate) const CONTEXT_SPAN_NAME: &str = "request";

/// The instrumentation scope (`logger`) of request-context spans: the tracer name the
/// tracing bridge uses for all other spans.
pub(crate) const SCOPE_NAME: &str = "tracekit";

/// What a request context's span needs beyond the rest of its [`Scope`] to be written when it
/// closes (held in the scope itself: no allocation of its own).
#[derive(Debug)]
pub(crate) struct ContextSpan {
    start: SystemTime,
    parent: SpanId,
    parent_is_remote: bool,
    /// The OS thread that opened it.
    thread: u64,
    /// Set by an `ERROR` record inside it (the last one wins, as in the SDK).
    error: Mutex<Option<String>>,
    /// `error` was set: most spans close without taking its lock.
    failed: AtomicBool,
    /// The span's first scope, which holds its error state, when this scope replaced it (the
    /// span's fields were recorded after it opened): records that still hold an older scope
    /// mark the span failed there too.
    first: Option<Arc<Scope>>,
}

impl ContextSpan {
    /// Where this span's error state is: here, or in its first scope.
    fn state(&self) -> &ContextSpan {
        self.first
            .as_ref()
            .and_then(|first| first.context_span.as_ref())
            .unwrap_or(self)
    }

    /// Marks the span as failed.
    pub(crate) fn set_error(&self, message: &str) {
        let state = self.state();
        let mut error = state.error.lock().unwrap_or_else(PoisonError::into_inner);
        *error = Some(message.to_owned());
        state.failed.store(true, Ordering::Release);
    }

    /// The same span in the scope that replaces `scope` (this span's scope).
    pub(crate) fn successor(&self, scope: &Arc<Scope>) -> ContextSpan {
        ContextSpan {
            start: self.start,
            parent: self.parent,
            parent_is_remote: self.parent_is_remote,
            thread: self.thread,
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
            first: Some(self.first.clone().unwrap_or_else(|| Arc::clone(scope))),
        }
    }

    /// The error message, once.
    fn take_error(&self) -> Option<String> {
        let state = self.state();
        if !state.failed.load(Ordering::Acquire) {
            return None;
        }
        let mut error = state.error.lock().unwrap_or_else(PoisonError::into_inner);
        error.take()
    }
}

/// Opens a request context's span: a new span id in the trace of `parent` (the current OTel
/// context, which also brings the baggage), or a new trace; returns the span's scope, with
/// `values`, built where it is stored.
pub(crate) fn open(
    values: Values,
    parent: opentelemetry::Context,
    error: Option<String>,
) -> Arc<Scope> {
    let ids = RandomIdGenerator::default();
    let parent_span = parent.span();
    let parent_sc = parent_span.span_context();
    let (trace_id, flags, state, parent_id, parent_is_remote) = if parent_sc.is_valid() {
        (
            parent_sc.trace_id(),
            parent_sc.trace_flags(),
            parent_sc.trace_state().clone(),
            parent_sc.span_id(),
            parent_sc.is_remote(),
        )
    } else {
        (
            ids.new_trace_id(),
            TraceFlags::SAMPLED,
            TraceState::default(),
            SpanId::INVALID,
            false,
        )
    };
    let span_id = ids.new_span_id();
    let sc = SpanContext::new(trace_id, span_id, flags, false, state);
    let otel = parent.with_remote_span_context(sc);
    drop(parent);
    Arc::new(Scope {
        values: Values {
            trace_id,
            span_id,
            ..values
        },
        otel: Some(otel),
        serial: next_serial(),
        context_span: Some(ContextSpan {
            start: SystemTime::now(),
            parent: parent_id,
            parent_is_remote,
            thread: current_thread_id(),
            failed: AtomicBool::new(error.is_some()),
            error: Mutex::new(error),
            first: None,
        }),
    })
}

/// The extra key-values as span attributes.
struct ExtraAttributes<'a>(&'a [Extra]);

impl Fields for ExtraAttributes<'_> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        for (key, value) in self.0 {
            value.write(w, key);
        }
    }
}

/// Writes the span record of a closing request context, and hands the span to the extra
/// span processors.
pub(crate) fn close(shared: &Shared, scope: &Scope, span: &ContextSpan) {
    let end = SystemTime::now();
    let error = span.take_error();
    let (level, status) = match &error {
        Some(message) => (Level::ERROR, SpanStatus::Error(message)),
        None => (Level::INFO, SpanStatus::Unset),
    };
    let extras = scope.values.extras.as_deref().unwrap_or_default();
    let attributes = ExtraAttributes(extras);
    let info = SpanInfo {
        name: CONTEXT_SPAN_NAME,
        kind: "internal",
        parent_span_id: (span.parent != SpanId::INVALID).then_some(span.parent),
        start: span.start,
        end,
        status,
        // None when there are none (the same line, nothing to encode on this thread).
        attributes: (!extras.is_empty()).then_some(&attributes as &dyn Fields),
    };
    let record = Record::at(
        end,
        level,
        scope.values.component.as_deref().unwrap_or(""),
        CONTEXT_SPAN_NAME,
    )
    .logger(SCOPE_NAME)
    .context(CodeContext {
        thread: Some(span.thread),
        process: Some(shared.pid),
        ..CodeContext::default()
    })
    .span(info);
    // A writer that is shut down drops the record; the library has nowhere else to say so.
    let _ = shared.writer.write(&scope.ids(record));

    if !shared.span_processors.is_empty() {
        let data = span_data(scope, span, end, error);
        for processor in &shared.span_processors {
            processor.on_end(data.clone());
        }
    }
}

/// The span as the SDK would have ended it.
fn span_data(
    scope: &Scope,
    span: &ContextSpan,
    end: SystemTime,
    error: Option<String>,
) -> SpanData {
    let mut attributes = Vec::new();
    for (key, value) in [
        (REQUEST_ID_KEY, &scope.values.request_id),
        (USER_ID_KEY, &scope.values.user_id),
        (SESSION_ID_KEY, &scope.values.session_id),
        ("component", &scope.values.component),
    ] {
        if let Some(v) = value {
            attributes.push(KeyValue::new(key, Arc::clone(v)));
        }
    }
    attributes.push(KeyValue::new(
        "thread.id",
        i64::try_from(span.thread).unwrap_or(i64::MAX),
    ));
    for (key, value) in scope.values.extras.as_deref().unwrap_or_default() {
        attributes.push(KeyValue::new(Arc::clone(key), value.to_otel()));
    }
    let span_context = scope
        .otel
        .as_ref()
        .map(|cx| cx.span().span_context().clone())
        .unwrap_or_else(SpanContext::empty_context);
    SpanData {
        span_context,
        parent_span_id: span.parent,
        parent_span_is_remote: span.parent_is_remote,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(CONTEXT_SPAN_NAME),
        start_time: span.start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: match error {
            Some(description) => Status::error(description),
            None => Status::Unset,
        },
        instrumentation_scope: InstrumentationScope::builder(SCOPE_NAME).build(),
    }
}

/// A span processor shared between the SDK tracer provider (for SDK spans) and the event
/// layer (for request-context spans).
#[derive(Debug)]
pub(crate) struct SharedProcessor(pub Arc<dyn SpanProcessor>);

impl SpanProcessor for SharedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    // The resource was set on the processor before it was shared.
}
