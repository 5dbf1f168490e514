//! The tracekit event layer: the hot path that turns every `tracing` event into one record.
//!
//! Each span gets a [`Scope`] computed once in `on_new_span` (inherited from its parent, its own
//! fields overriding) and cached in the span's extensions: request, user and session ids,
//! component, function name and the OpenTelemetry trace and span ids. An event then costs one
//! span lookup, one `Arc` clone, one pass over its fields (which encodes `data` into a
//! per-thread buffer and keeps the message and the other record keys aside) and the encoding
//! of the line around it into the writer's thread-local line buffer.

use std::cell::RefCell;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{SpanId, Status, TraceContextExt, TraceId};
use opentelemetry::KeyValue;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::context::ContextValue;
use crate::exporters::{
    current_thread_id, normalize_component, CodeContext, EncodedFields, Exception, FieldWriter,
    Level, LogWriter, Record,
};

/// The target of the spans [`LogContext`](crate::LogContext) opens. They carry request context
/// but are not functions, so `context.function` skips them.
pub(crate) const CONTEXT_TARGET: &str = "tracekit::context";

/// The event field that marks a `CRITICAL` record (see [`critical!`](crate::critical)).
pub const CRITICAL_FIELD: &str = "tracekit.critical";

/// The boolean event field that marks a timing record: `tracekit.timing = true` also writes the
/// record to `performance/performance.log` (the decorators use it; so can any event that
/// carries a `duration_ms`). Like [`CRITICAL_FIELD`] it never appears in `data`.
///
/// ```no_run
/// let started = std::time::Instant::now();
/// // ... the work ...
/// tracing::info!(
///     { tracekit::TIMING_FIELD } = true,
///     function = "rank",
///     duration_ms = started.elapsed().as_secs_f64() * 1e3,
///     "rank completed"
/// );
/// ```
pub const TIMING_FIELD: &str = "tracekit.timing";

/// Field names that feed record keys instead of `data`.
const MESSAGE: &str = "message";
const COMPONENT: &str = "component";
/// A captured backtrace (`backtrace = %bt`): part of the exception when the event has one.
const BACKTRACE: &str = "backtrace";

/// What the layer shares with [`Logger`](crate::Logger) and the panic hook.
#[derive(Debug)]
pub(crate) struct Shared {
    pub writer: LogWriter,
    /// `(target prefix, component)`, longest prefix first.
    pub targets: Vec<(String, String)>,
    /// The static level directives, for [`Logger`](crate::Logger)s without a level of their own.
    pub logger_levels: tracing_subscriber::filter::Targets,
    pub pid: u32,
}

impl Shared {
    /// The component configured for `target`, or `""` (the writer's default component).
    pub(crate) fn component_for_target(&self, target: &str) -> &str {
        for (prefix, component) in &self.targets {
            if let Some(rest) = target.strip_prefix(prefix.as_str()) {
                if rest.is_empty() || rest.starts_with("::") {
                    return component;
                }
            }
        }
        ""
    }

    /// Writes one record in `scope`, and marks the scope's span as failed for errors.
    pub(crate) fn write<'a>(&self, scope: Option<&'a Scope>, mut record: Record<'a>) {
        if let Some(scope) = scope {
            record.request_id = scope.request_id.as_deref();
            record.user_id = scope.user_id.as_deref();
            record.session_id = scope.session_id.as_deref();
            if scope.trace_id != TraceId::INVALID {
                record = record.trace(scope.trace_id, scope.span_id);
            }
        }
        // Lossless by default: a full queue waits. A writer that is shut down drops the record,
        // and the library has nowhere else to report that (it never writes to stderr).
        let _ = self.writer.write(&record);
        if record.level.is_error() {
            if let Some(cx) = scope.and_then(|s| s.otel.as_ref()) {
                cx.span()
                    .set_status(Status::error(record.message.to_owned()));
            }
        }
    }
}

/// The request context of one span, computed once when the span opens.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    pub request_id: Option<Arc<str>>,
    pub user_id: Option<Arc<str>>,
    pub session_id: Option<Arc<str>>,
    pub component: Option<Arc<str>>,
    /// The innermost instrumented span's name.
    pub function: Option<&'static str>,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The span's OpenTelemetry context, to set its status on errors.
    pub otel: Option<opentelemetry::Context>,
    /// Extra key-values of a [`LogContext`](crate::LogContext), written into every line's `data`.
    pub extras: Option<Arc<[Extra]>>,
}

/// One extra key-value of a [`LogContext`](crate::LogContext).
pub(crate) type Extra = (Arc<str>, ContextValue);

impl Default for Scope {
    fn default() -> Self {
        Scope {
            request_id: None,
            user_id: None,
            session_id: None,
            component: None,
            function: None,
            trace_id: TraceId::INVALID,
            span_id: SpanId::INVALID,
            otel: None,
            extras: None,
        }
    }
}

/// The span extension holding its [`Scope`].
pub(crate) struct ScopeExt(pub Arc<Scope>);

/// The event layer. Install it after the OpenTelemetry layer, which must see a span first.
#[derive(Debug)]
pub(crate) struct TracekitLayer {
    pub shared: Arc<Shared>,
    dispatch: OnceLock<WeakDispatch>,
}

impl TracekitLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> TracekitLayer {
        TracekitLayer {
            shared,
            dispatch: OnceLock::new(),
        }
    }
}

/// The scope of the current span of `dispatch`, for writers that bypass `tracing` events
/// ([`Logger`](crate::Logger), the panic hook).
pub(crate) fn current_scope(dispatch: &Dispatch) -> Option<Arc<Scope>> {
    let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
    let current = registry.current_span();
    let span = registry.span(current.id()?)?;
    let ext = span.extensions();
    ext.get::<ScopeExt>().map(|s| Arc::clone(&s.0))
}

/// Merges `extras` over the extra key-values span `id` inherited; `None` when the span is
/// unknown to a tracekit subscriber.
pub(crate) fn set_extras(dispatch: &Dispatch, id: &Id, extras: &[Extra]) -> Option<()> {
    let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
    let span = registry.span(id)?;
    let mut ext = span.extensions_mut();
    let old = ext.get_mut::<ScopeExt>()?;
    let mut scope = (*old.0).clone();
    let mut merged: Vec<Extra> = scope
        .extras
        .as_deref()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    for (k, v) in extras {
        match merged.iter_mut().find(|(mk, _)| mk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => merged.push((Arc::clone(k), v.clone())),
        }
    }
    scope.extras = Some(merged.into());
    old.0 = Arc::new(scope);
    Some(())
}

impl<S> Layer<S> for TracekitLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<ScopeExt>().map(|s| Arc::clone(&s.0)));
        let mut scope = match &parent {
            Some(p) => Scope {
                otel: None,
                ..(**p).clone()
            },
            None => Scope::default(),
        };
        let meta = attrs.metadata();
        if meta.target() != CONTEXT_TARGET {
            scope.function = Some(meta.name());
        }
        let mut own = SpanFields::default();
        attrs.record(&mut own);
        own.apply(&mut scope);

        // The OpenTelemetry layer ran first and holds the span; starting it here fixes its ids
        // once. `get_otel_context` locks the span's extensions, so no extension guard is held.
        if let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) {
            if let Some(cx) = tracing_opentelemetry::get_otel_context(id, &dispatch) {
                let otel_span = cx.span();
                let sc = otel_span.span_context();
                scope.trace_id = sc.trace_id();
                scope.span_id = sc.span_id();
                // The OS thread id (as in records), and the inherited context: child spans'
                // records carry it too.
                let mut inherited = vec![KeyValue::new(
                    "thread.id",
                    i64::try_from(current_thread_id()).unwrap_or(i64::MAX),
                )];
                // Where the span was opened; a LogContext's span is opened inside tracekit,
                // which is no useful location.
                if meta.target() != CONTEXT_TARGET {
                    inherited.push(KeyValue::new("code.function.name", meta.name()));
                    if let Some(file) = meta.file() {
                        inherited.push(KeyValue::new("code.file.path", file));
                    }
                    if let Some(line) = meta.line() {
                        inherited.push(KeyValue::new("code.line.number", i64::from(line)));
                    }
                    if let Some(module) = meta.module_path() {
                        inherited.push(KeyValue::new("code.module.name", module));
                    }
                }
                let pairs = [
                    ("request.id", own.request_id.is_none(), &scope.request_id),
                    ("user.id", own.user_id.is_none(), &scope.user_id),
                    ("session.id", own.session_id.is_none(), &scope.session_id),
                ];
                for (key, missing, value) in pairs {
                    if let (true, Some(v)) = (missing, value) {
                        inherited.push(KeyValue::new(key, Arc::clone(v)));
                    }
                }
                if own.component.is_none() {
                    let component = match &scope.component {
                        Some(c) => Some(Arc::clone(c)),
                        None => Some(self.shared.component_for_target(meta.target()))
                            .filter(|c| !c.is_empty())
                            .map(Arc::from),
                    };
                    if let Some(c) = component {
                        inherited.push(KeyValue::new(COMPONENT, c));
                    }
                }
                otel_span.set_attributes(inherited);
                if let Some(message) = own.error {
                    otel_span.set_status(Status::error(message));
                }
                scope.otel = Some(cx.clone());
            }
        }
        span.extensions_mut().insert(ScopeExt(Arc::new(scope)));
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let mut own = SpanFields::default();
        values.record(&mut own);
        if own.is_empty() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(old) = ext.get_mut::<ScopeExt>() else {
            return;
        };
        let mut scope = (*old.0).clone();
        let error = own.error.take();
        own.apply(&mut scope);
        let otel = scope.otel.clone();
        old.0 = Arc::new(scope);
        drop(ext);
        if let (Some(message), Some(cx)) = (error, otel) {
            cx.span().set_status(Status::error(message));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let scope = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<ScopeExt>().map(|e| Arc::clone(&e.0)));
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.write_event(event, scope.as_deref(), &mut scratch),
            // Re-entered from a field's Display impl that logs: use a fresh buffer.
            Err(_) => self.write_event(event, scope.as_deref(), &mut Scratch::default()),
        });
    }
}

impl TracekitLayer {
    fn write_event(&self, event: &Event<'_>, scope: Option<&Scope>, scratch: &mut Scratch) {
        scratch.clear();
        let meta = event.metadata();
        let Scratch { data, fields, .. } = scratch;
        data.write(self.shared.writer.encoder(), |w| {
            if let Some(extras) = scope.and_then(|s| s.extras.as_deref()) {
                let own = meta.fields();
                for (key, value) in extras {
                    if own.field(&**key).is_none() {
                        value.write(w, key);
                    }
                }
            }
            // One pass: the record keys are kept aside, the rest streams into `data`.
            event.record(&mut EventVisitor {
                w,
                fields: &mut *fields,
            });
            if fields.has_backtrace && fields.error_field.is_none() {
                // Without an error it is an ordinary field.
                w.str(BACKTRACE, &fields.backtrace);
            }
        });
        let fields = &mut scratch.fields;
        let level = match *meta.level() {
            tracing::Level::TRACE => Level::TRACE,
            tracing::Level::DEBUG => Level::DEBUG,
            tracing::Level::INFO => Level::INFO,
            tracing::Level::WARN => Level::WARNING,
            _ if fields.critical => Level::CRITICAL,
            _ => Level::ERROR,
        };
        if fields.error_field.is_some() && !fields.backtrace.is_empty() {
            if !fields.exc_traceback.is_empty() {
                fields.exc_traceback.push('\n');
            }
            fields.exc_traceback.push_str(&fields.backtrace);
        }
        let fields = &scratch.fields;
        let component: &str = if fields.has_component {
            &fields.component
        } else if let Some(c) = scope.and_then(|s| s.component.as_deref()) {
            c
        } else {
            self.shared.component_for_target(meta.target())
        };
        let function = scope
            .and_then(|s| s.function)
            .or_else(|| meta.module_path());
        let mut record = Record::new(level, component, &fields.message)
            .timing(fields.timing)
            .logger(meta.target())
            .data(&scratch.data)
            .context(CodeContext {
                function,
                file: meta.file(),
                line: meta.line(),
                thread: Some(current_thread_id()),
                process: Some(self.shared.pid),
            });
        if fields.error_field.is_some() {
            record = record.exception(Exception {
                kind: &fields.exc_kind,
                message: &fields.exc_message,
                traceback: Some(fields.exc_traceback.as_str()).filter(|t| !t.is_empty()),
            });
        }
        self.shared.write(scope, record);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Per-thread buffers for one event: its `data`, encoded while its fields are visited, and
/// the fields that become record keys instead.
#[derive(Default)]
struct Scratch {
    data: EncodedFields,
    fields: KeyFields,
}

/// The event fields that feed record keys rather than `data`.
#[derive(Default)]
struct KeyFields {
    message: String,
    component: String,
    has_component: bool,
    critical: bool,
    timing: bool,
    /// The error field that became the record's exception.
    error_field: Option<&'static str>,
    exc_kind: String,
    exc_message: String,
    exc_traceback: String,
    /// A `backtrace` field: appended to the exception's traceback when there is one, else
    /// written into `data`.
    backtrace: String,
    has_backtrace: bool,
}

/// Buffers grown by one huge event are not kept.
const KEEP_SCRATCH: usize = 16 * 1024;

impl Scratch {
    fn clear(&mut self) {
        self.data.clear();
        let f = &mut self.fields;
        for s in [
            &mut f.message,
            &mut f.component,
            &mut f.exc_kind,
            &mut f.exc_message,
            &mut f.exc_traceback,
            &mut f.backtrace,
        ] {
            if s.capacity() > KEEP_SCRATCH {
                *s = String::new();
            } else {
                s.clear();
            }
        }
        f.has_component = false;
        f.critical = false;
        f.timing = false;
        f.error_field = None;
        f.has_backtrace = false;
    }
}

/// Visits an event's fields once: record keys into [`KeyFields`], the rest into `data`.
struct EventVisitor<'w, 'b> {
    w: &'w mut FieldWriter<'b>,
    fields: &'w mut KeyFields,
}

/// True for the names that never go into `data` (whatever their type).
#[inline]
fn is_key_field(name: &str) -> bool {
    matches!(name, MESSAGE | COMPONENT | CRITICAL_FIELD | TIMING_FIELD)
}

impl Visit for EventVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !is_key_field(field.name()) {
            self.w.f64(field.name(), value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !is_key_field(field.name()) {
            self.w.i64(field.name(), value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !is_key_field(field.name()) {
            self.w.u64(field.name(), value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if !is_key_field(field.name()) {
            self.w
                .value(field.name(), &crate::exporters::Value::I128(value));
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if !is_key_field(field.name()) {
            self.w
                .value(field.name(), &crate::exporters::Value::U128(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            CRITICAL_FIELD => self.fields.critical = value,
            TIMING_FIELD => self.fields.timing = value,
            MESSAGE | COMPONENT => {}
            name => self.w.bool(name, value),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let f = &mut *self.fields;
        match field.name() {
            MESSAGE => f.message.push_str(value),
            COMPONENT => {
                f.component.push_str(value);
                f.has_component = true;
            }
            BACKTRACE => {
                f.backtrace.push_str(value);
                f.has_backtrace = true;
            }
            CRITICAL_FIELD | TIMING_FIELD => {}
            name => self.w.str(name, value),
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if !is_key_field(field.name()) {
            self.w.bytes(field.name(), value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        let f = &mut *self.fields;
        if f.error_field.is_some() {
            // Only the first error is the exception; the others are data.
            if !is_key_field(field.name()) {
                self.w.display(field.name(), &value);
            }
            return;
        }
        f.error_field = Some(field.name());
        let _ = write!(f.exc_message, "{value}");
        let _ = write!(f.exc_kind, "{value:?}");
        let kind_len = type_name_len(&f.exc_kind);
        if kind_len == 0 {
            f.exc_kind.clear();
            f.exc_kind.push_str("Error");
        } else {
            f.exc_kind.truncate(kind_len);
        }
        write_source_chain(&mut f.exc_traceback, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let f = &mut *self.fields;
        match field.name() {
            MESSAGE => {
                let _ = write!(f.message, "{value:?}");
            }
            BACKTRACE => {
                let _ = write!(f.backtrace, "{value:?}");
                f.has_backtrace = true;
            }
            COMPONENT => {
                let _ = write!(f.component, "{value:?}");
                f.has_component = true;
            }
            CRITICAL_FIELD | TIMING_FIELD => {}
            name => self.w.debug(name, value),
        }
    }
}

/// The length of the type name that starts a derived `Debug` output (`ParseIntError { .. }`,
/// `Timeout(..)`), or 0 when it does not start with one.
pub(crate) fn type_name_len(debug: &str) -> usize {
    if !debug.starts_with(|c: char| c.is_ascii_uppercase()) {
        return 0;
    }
    let len = debug
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    let rest = &debug[len..];
    if rest.is_empty() || rest.starts_with([' ', '(', '{']) {
        len
    } else {
        0
    }
}

/// Writes the error's `source()` chain, one `caused by: ..` line per cause.
pub(crate) fn write_source_chain(out: &mut String, error: &(dyn Error + 'static)) {
    let mut next = error.source();
    while let Some(cause) = next {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "caused by: {cause}");
        next = cause.source();
    }
}

/// The request-context fields of a span.
#[derive(Default)]
struct SpanFields {
    request_id: Option<Arc<str>>,
    user_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    component: Option<Arc<str>>,
    /// A recorded `&dyn Error` field: the span failed.
    error: Option<String>,
}

impl SpanFields {
    fn is_empty(&self) -> bool {
        self.request_id.is_none()
            && self.user_id.is_none()
            && self.session_id.is_none()
            && self.component.is_none()
            && self.error.is_none()
    }

    fn slot(&mut self, name: &str) -> Option<&mut Option<Arc<str>>> {
        Some(match name {
            "request_id" | "request.id" => &mut self.request_id,
            "user_id" | "user.id" => &mut self.user_id,
            "session_id" | "session.id" => &mut self.session_id,
            COMPONENT => &mut self.component,
            _ => return None,
        })
    }

    fn apply(&mut self, scope: &mut Scope) {
        for (from, to) in [
            (&mut self.request_id, &mut scope.request_id),
            (&mut self.user_id, &mut scope.user_id),
            (&mut self.session_id, &mut scope.session_id),
            (&mut self.component, &mut scope.component),
        ] {
            if let Some(v) = from.take() {
                *to = Some(v);
            }
        }
        if let Some(c) = &scope.component {
            if let std::borrow::Cow::Owned(n) = normalize_component(c) {
                scope.component = Some(n.into());
            }
        }
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(slot) = self.slot(field.name()) {
            *slot = Some(value.into());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(slot) = self.slot(field.name()) {
            *slot = Some(value.to_string().into());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(slot) = self.slot(field.name()) {
            *slot = Some(value.to_string().into());
        }
    }

    fn record_error(&mut self, _field: &Field, value: &(dyn Error + 'static)) {
        self.error = Some(value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(slot) = self.slot(field.name()) {
            *slot = Some(format!("{value:?}").into());
        }
    }
}

/// Calls `f` with the layer's shared state and the current span's scope, when the current
/// dispatcher is a tracekit subscriber: the path of writers that bypass `tracing` events
/// ([`Logger`](crate::Logger), the panic hook). Returns `None` without a tracekit subscriber.
pub(crate) fn with_current<R>(f: impl FnOnce(&Shared, Option<&Scope>) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let layer = dispatch.downcast_ref::<TracekitLayer>()?;
        let scope = current_scope(dispatch);
        f.take().map(|f| f(&layer.shared, scope.as_deref()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_come_from_derived_debug() {
        assert_eq!(type_name_len("ParseIntError { kind: Empty }"), 13);
        assert_eq!(type_name_len("Timeout(3s)"), 7);
        assert_eq!(type_name_len("Unit"), 4);
        assert_eq!(type_name_len("\"text\""), 0);
        assert_eq!(type_name_len("connection refused"), 0);
        assert_eq!(type_name_len("Error: x"), 0);
    }

    /// The records written under `f`, parsed, with `component` `t` (so in `logs/t/t.log`).
    fn records(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, guard) = crate::builder()
            .root(dir.path())
            .default_component("t")
            .panic_hook(false)
            .build()
            .unwrap();
        tracing::dispatcher::with_default(&dispatch, f);
        drop(guard);
        let text = std::fs::read_to_string(dir.path().join("logs/t/t.log")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|r: &serde_json::Value| r.get("span").is_none())
            .collect()
    }

    #[derive(Debug)]
    struct Boom;
    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("boom")
        }
    }
    impl Error for Boom {}

    #[test]
    fn one_pass_keeps_record_keys_out_of_data() {
        let records = records(|| {
            let _cx = crate::LogContext::new()
                .field("experiment", "v2")
                .field("attempt", 1_u64)
                .enter();
            // A backtrace before the error is still the exception's; a second error is data.
            tracing::error!(
                backtrace = "at f (a.rs:1)",
                error = &Boom as &dyn Error,
                other = &Boom as &dyn Error,
                attempt = 3_u64,
                "first"
            );
            // Without an error, a backtrace is an ordinary field.
            tracing::warn!(backtrace = ?"bt", n = 1_i64, "second");
            crate::critical!(token = "t0k", "third");
        });
        let first = &records[0];
        assert_eq!(first["message"], "first");
        assert_eq!(first["exception"]["type"], "Boom");
        assert_eq!(first["exception"]["traceback"], "at f (a.rs:1)");
        assert_eq!(
            first["data"],
            serde_json::json!({"experiment": "v2", "other": "boom", "attempt": 3})
        );
        let second = &records[1];
        assert_eq!(
            second["data"],
            serde_json::json!({"experiment": "v2", "attempt": 1, "n": 1, "backtrace": "\"bt\""})
        );
        assert!(second.get("exception").is_none());
        let third = &records[2];
        assert_eq!(third["level"], "CRITICAL");
        assert_eq!(third["data"]["token"], "[REDACTED]");
        assert!(third["data"].get(CRITICAL_FIELD).is_none());
    }

    #[test]
    fn timing_field_marks_a_timing_record() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, guard) = crate::builder()
            .root(dir.path())
            .default_component("t")
            .panic_hook(false)
            .build()
            .unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!({ TIMING_FIELD } = true, duration_ms = 1.5, "timed");
            tracing::info!(duration_ms = 2.5, "not timed");
        });
        drop(guard);
        let perf =
            std::fs::read_to_string(dir.path().join("logs/performance/performance.log")).unwrap();
        let perf: Vec<serde_json::Value> = perf
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(perf.len(), 1);
        assert_eq!(perf[0]["message"], "timed");
        assert_eq!(perf[0]["data"], serde_json::json!({"duration_ms": 1.5}));
        assert_eq!(perf[0]["component"], "t");
    }

    #[test]
    fn target_prefixes_match_whole_segments() {
        let (writer, _guard) = LogWriter::builder()
            .root(tempfile::tempdir().unwrap().path())
            .build()
            .unwrap();
        let shared = Shared {
            writer,
            targets: vec![
                ("myapp::ranking::model".into(), "model".into()),
                ("myapp::ranking".into(), "ranking".into()),
            ],
            logger_levels: Default::default(),
            pid: 1,
        };
        assert_eq!(shared.component_for_target("myapp::ranking"), "ranking");
        assert_eq!(shared.component_for_target("myapp::ranking::x"), "ranking");
        assert_eq!(
            shared.component_for_target("myapp::ranking::model"),
            "model"
        );
        assert_eq!(shared.component_for_target("myapp::rankings"), "");
        assert_eq!(shared.component_for_target("other"), "");
    }
}
