//! The tracekit event layer: the hot path that turns every `tracing` event into one record.
//!
//! Each span gets a [`Scope`] computed once in `on_new_span` (inherited from its parent, its own
//! fields overriding) and cached in the span's extensions: request, user and session ids,
//! component, function name and the OpenTelemetry trace and span ids. The layer keeps its own
//! per-thread stack of the spans entered, with their scopes, so an event costs no registry
//! lookup: one `Arc` clone of the innermost scope on that stack, one pass over its fields (which
//! encodes `data` into a per-thread buffer, with each field's key escaped and
//! redaction-checked once per call site, and keeps the message and the other record keys
//! aside) and the line around it: its repeated parts (component, logger, ids, code context)
//! come from a per-thread cache of record heads keyed by (layer, scope, call site), so only
//! the timestamp, level, message and data are encoded per event.
//!
//! The spans of [`LogContext`](crate::LogContext)s are this layer's own (see
//! `context_span`): it opens their OTel span context, makes it current while they are
//! entered, and writes their span record when they close.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{SpanId, Status, TraceContextExt, TraceId};
use opentelemetry::KeyValue;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::context::{ContextValue, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::context_span::ContextSpan;
use crate::exporters::{
    current_thread_id, normalize_component, CodeContext, EncodedFields, Exception, FieldKey,
    FieldWriter, Level, LogWriter, Record, RecordEncoder, RecordHead,
};

/// The target of the spans [`LogContext`](crate::LogContext) opens. They carry request context
/// but are not functions, so `context.function` skips them.
pub(crate) const CONTEXT_TARGET: &str = "tracekit::context";

/// The event field that marks a `CRITICAL` record (see [`critical!`](crate::critical)).
///
/// ```
/// assert_eq!(tracekit::CRITICAL_FIELD, "tracekit.critical");
/// ```
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
    /// Tells this layer's cached record heads from another's (see [`next_serial`]).
    pub serial: u64,
    /// The span processors added to the builder: they also receive request-context spans.
    pub span_processors: Vec<Arc<dyn opentelemetry_sdk::trace::SpanProcessor>>,
    /// The live OTLP log stream, for the records that bypass `tracing` events (see
    /// [`Shared::write_direct`]); events reach it through their own layer.
    #[cfg(feature = "otlp")]
    pub otlp_records: OnceLock<opentelemetry_sdk::logs::SdkLogger>,
}

/// A process-wide serial number: never 0, never reused, so that a thread's cached record
/// heads, keyed by serials, cannot be mistaken for those of a dropped layer or scope.
///
/// Each thread takes serials from a block of its own: every span opened takes one, and a
/// shared counter would be a locked instruction, and a contended line, per span.
pub(crate) fn next_serial() -> u64 {
    const BLOCK: u64 = 1 << 16;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        /// The next serial of this thread's block, and the block's end.
        static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    BLOCK_LEFT.with(|left| {
        let (mut next, mut end) = left.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        left.set((next + 1, end));
        next
    })
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

    /// Writes a record that bypasses `tracing` events ([`Logger`](crate::Logger), the
    /// decorators, the panic hook): [`write`](Self::write), and the live OTLP log stream
    /// when there is one.
    pub(crate) fn write_direct<'a>(&self, scope: Option<&'a Scope>, record: Record<'a>) {
        self.write(scope, record);
        #[cfg(feature = "otlp")]
        if let Some(logger) = self.otlp_records.get() {
            crate::otlp::emit_record(logger, self.writer.encoder(), scope, &record);
        }
    }

    /// Writes one record in `scope`, and marks the scope's span as failed for errors.
    pub(crate) fn write<'a>(&self, scope: Option<&'a Scope>, mut record: Record<'a>) {
        // A record with a head (the event layer's) already carries the scope's ids.
        if let (Some(scope), None) = (scope, record.head) {
            record = scope.ids(record);
        }
        // Lossless by default: a full queue waits. A writer that is shut down drops the record,
        // and the library has nowhere else to report that (it never writes to stderr).
        let _ = self.writer.write(&record);
        if record.level.is_error() {
            if let Some(scope) = scope {
                scope.set_error(record.message);
            }
        }
    }
}

/// The request context of one span, computed once when the span opens.
#[derive(Debug)]
pub(crate) struct Scope {
    /// Its ids, component, function and extras.
    pub values: Values,
    /// The span's OpenTelemetry context, to set its status on errors.
    pub otel: Option<opentelemetry::Context>,
    /// Set anew by [`Scope::seal`] each time a scope is stored: the key of cached heads.
    pub serial: u64,
    /// The span of a [`LogContext`](crate::LogContext), which tracekit writes itself.
    pub context_span: Option<ContextSpan>,
}

impl Scope {
    /// Marks the scope's span as failed.
    pub(crate) fn set_error(&self, message: &str) {
        match (&self.context_span, &self.otel) {
            (Some(span), _) => span.set_error(message),
            (None, Some(cx)) => cx.span().set_status(Status::error(message.to_owned())),
            (None, None) => {}
        }
    }

    /// `record` with this scope's request, user and session ids and trace and span ids.
    pub(crate) fn ids<'a>(&'a self, mut record: Record<'a>) -> Record<'a> {
        record.request_id = self.values.request_id.as_deref();
        record.user_id = self.values.user_id.as_deref();
        record.session_id = self.values.session_id.as_deref();
        if self.values.trace_id != TraceId::INVALID {
            record = record.trace(self.values.trace_id, self.values.span_id);
        }
        record
    }

    /// The scope that takes this one's place in its span when the span's fields are
    /// recorded, with the `values` they give: a request context's span state follows, linked
    /// to this scope (records that still hold it may mark it failed).
    fn successor(self: &Arc<Scope>, values: Values) -> Scope {
        Scope {
            values,
            otel: self.otel.clone(),
            serial: 0,
            context_span: self.context_span.as_ref().map(|span| span.successor(self)),
        }
    }

    /// The scope as stored in a span, with a serial of its own.
    pub(crate) fn seal(mut self) -> Arc<Scope> {
        self.serial = next_serial();
        Arc::new(self)
    }
}

/// One extra key-value of a [`LogContext`](crate::LogContext).
pub(crate) type Extra = (Arc<str>, ContextValue);

/// The span extension holding its [`Scope`].
pub(crate) struct ScopeExt(pub Arc<Scope>);

/// The event layer, run by [`Bridge`](crate::otel_spans::Bridge) after the OpenTelemetry
/// layer, which must see a span first.
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

/// What [`LogContext::span`](crate::LogContext::span) hands to the event layer for the
/// request-context span it is about to open, through [`PENDING`]: its ids and extra
/// key-values as they are (no copies through span fields), and its parent OTel context
/// (with the baggage).
pub(crate) struct PendingContext {
    pub request_id: Option<Arc<str>>,
    pub user_id: Option<Arc<str>>,
    pub session_id: Option<Arc<str>>,
    pub component: Option<Arc<str>>,
    pub extras: Vec<Extra>,
    pub parent: opentelemetry::Context,
    /// The span is entered right after it opens (`LogContext::enter` and `in_scope`): its
    /// scope waits in [`OPENED`] for `on_enter`.
    pub entering: bool,
}

thread_local! {
    /// Set by `LogContext::span` right before it opens its span, taken by `on_new_span` of
    /// that span (spans open synchronously on the opening thread); taken back by
    /// `LogContext::span` when no tracekit layer took it.
    pub(crate) static PENDING: Cell<Option<PendingContext>> = const { Cell::new(None) };

    /// The scope of the request context `LogContext::enter` (or `in_scope`) just opened, from
    /// its `on_new_span` to its `on_enter` a moment later on the same thread, which then needs
    /// no registry lookup; cleared by `LogContext` once the span is entered.
    pub(crate) static OPENED: Cell<Option<(Id, Arc<Scope>)>> = const { Cell::new(None) };
}

impl PendingContext {
    /// The context's values over those of `parent` (its ids, component and extras; cloning
    /// only what it inherits), its OTel parent and whether it is entered right away.
    fn take(self, parent: Option<&Scope>) -> (Values, opentelemetry::Context, bool) {
        let mut values = SpanFields {
            request_id: self.request_id,
            user_id: self.user_id,
            session_id: self.session_id,
            component: self.component,
            ..SpanFields::default()
        }
        .resolve(parent);
        if !self.extras.is_empty() {
            let mut merged: Vec<Extra> = values
                .extras
                .as_deref()
                .map(<[_]>::to_vec)
                .unwrap_or_default();
            for (k, v) in self.extras {
                match merged.iter_mut().find(|(mk, _)| *mk == k) {
                    Some(slot) => slot.1 = v,
                    None => merged.push((k, v)),
                }
            }
            values.extras = Some(merged.into());
        }
        (values, self.parent, self.entering)
    }
}

/// The event layer's callbacks, called by [`Bridge`](crate::otel_spans::Bridge) after the
/// OpenTelemetry layer's.
impl TracekitLayer {
    pub(crate) fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    pub(crate) fn on_new_span<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        // A contextual span's parent is the current span: the innermost scope on this
        // thread's stack, without the registry's lookups when the stack can tell.
        let parent = match attrs.is_contextual().then(|| self.entered_scope(&ctx)) {
            Some(Some(scope)) => scope,
            _ => span
                .parent()
                .and_then(|p| p.extensions().get::<ScopeExt>().map(|s| Arc::clone(&s.0))),
        };
        let meta = attrs.metadata();
        if meta.target() == CONTEXT_TARGET {
            // A request context: its span is tracekit's own (see `context_span`). Its values
            // and parent come from `LogContext::span` (its fields are empty); a context span
            // opened some other way has its fields, and the current OTel context as parent.
            let (values, parent, error, entering) = match PENDING.take() {
                Some(pending) => {
                    let (values, parent, entering) = pending.take(parent.as_deref());
                    (values, parent, None, entering)
                }
                None => {
                    let mut own = SpanFields::default();
                    attrs.record(&mut own);
                    let error = own.error.take();
                    (
                        own.resolve(parent.as_deref()),
                        opentelemetry::Context::current(),
                        error,
                        false,
                    )
                }
            };
            let scope = crate::context_span::open(values, parent, error);
            if entering {
                OPENED.set(Some((id.clone(), Arc::clone(&scope))));
            }
            span.extensions_mut().insert(ScopeExt(scope));
            return;
        }
        let mut own = SpanFields::default();
        attrs.record(&mut own);
        // Which semantic-convention keys the span's own fields already gave its OTel span.
        let named = own.named;
        let error = own.error.take();
        let mut scope = own.over(parent.as_deref());
        scope.values.function = Some(meta.name());
        // The OpenTelemetry layer ran first and holds the span; starting it here fixes its ids
        // once. `get_otel_context` locks the span's extensions, so no extension guard is held.
        if let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) {
            if let Some(cx) = tracing_opentelemetry::get_otel_context(id, &dispatch) {
                let otel_span = cx.span();
                let sc = otel_span.span_context();
                scope.values.trace_id = sc.trace_id();
                scope.values.span_id = sc.span_id();
                // The OS thread id (as in records), and the inherited context: child spans'
                // records carry it too.
                let mut inherited = vec![KeyValue::new(
                    "thread.id",
                    i64::try_from(current_thread_id()).unwrap_or(i64::MAX),
                )];
                // Where the span was opened.
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
                let pairs = [
                    (REQUEST_ID_KEY, NAMED_REQUEST_ID, &scope.values.request_id),
                    (USER_ID_KEY, NAMED_USER_ID, &scope.values.user_id),
                    (SESSION_ID_KEY, NAMED_SESSION_ID, &scope.values.session_id),
                ];
                for (key, bit, value) in pairs {
                    if let (0, Some(v)) = (named & bit, value) {
                        inherited.push(KeyValue::new(key, Arc::clone(v)));
                    }
                }
                if named & NAMED_COMPONENT == 0 {
                    let component = match &scope.values.component {
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
                if let Some(message) = error {
                    otel_span.set_status(Status::error(message));
                }
                scope.otel = Some(cx.clone());
            }
        }
        span.extensions_mut().insert(ScopeExt(scope.seal()));
    }

    pub(crate) fn on_record<S>(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
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
        let error = own.error.take();
        // The recorded fields over the span's own scope, as over a parent's when it opened.
        let values = own.resolve(Some(&old.0));
        let sealed = old.0.successor(values).seal();
        old.0 = Arc::clone(&sealed);
        drop(ext);
        // Entered spans hold the old scope: they look it up again.
        SCOPE_EPOCH.fetch_add(1, Ordering::Release);
        if let Some(message) = error {
            sealed.set_error(&message);
        }
    }

    pub(crate) fn on_event<S>(&self, event: &Event<'_>, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let scope = match event.is_contextual().then(|| self.entered_scope(&ctx)) {
            Some(Some(scope)) => scope,
            _ => ctx
                .event_span(event)
                .and_then(|s| s.extensions().get::<ScopeExt>().map(|e| Arc::clone(&e.0))),
        };
        self.write_with_scratch(event, scope.as_deref());
    }
}

impl TracekitLayer {
    /// `on_enter`: pushes the span and its scope on this thread's stack. True for a request
    /// context's span, whose OTel context is then current (the OpenTelemetry layer has
    /// nothing to do for it).
    pub(crate) fn enter<S>(&self, id: &Id, ctx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (request_context, scope) = match OPENED.take() {
            Some((opened, scope)) if opened == *id => (true, Some(scope)),
            _ => {
                let Some(span) = ctx.span(id) else {
                    return false;
                };
                let scope = span
                    .extensions()
                    .get::<ScopeExt>()
                    .map(|s| Arc::clone(&s.0));
                (span.metadata().target() == CONTEXT_TARGET, scope)
            }
        };
        // A request context's OTel context is current while its span is entered, as
        // tracing-opentelemetry does for its spans: child spans and `inject` see it.
        let attached = match &scope {
            Some(s) if request_context => s.otel.as_ref().map(|cx| cx.clone().attach()),
            _ => None,
        };
        let layer = self.shared.serial;
        let _ = ENTERED.try_with(|entered| {
            if let Ok(mut entered) = entered.try_borrow_mut() {
                let duplicate = entered.iter().any(|f| f.layer == layer && f.id == *id);
                entered.push(EnteredSpan {
                    layer,
                    id: id.clone(),
                    duplicate,
                    request_context,
                    epoch: SCOPE_EPOCH.load(Ordering::Acquire),
                    scope,
                    _attached: attached,
                });
            }
        });
        request_context
    }

    /// `on_exit`: takes the span off this thread's stack (its OTel context stops being
    /// current). True when it was a request context's span.
    pub(crate) fn exit(&self, id: &Id) -> bool {
        let layer = self.shared.serial;
        let exited = ENTERED
            .try_with(|entered| {
                let mut entered = entered.try_borrow_mut().ok()?;
                let at = entered
                    .iter()
                    .rposition(|f| f.layer == layer && f.id == *id)?;
                Some(entered.remove(at))
            })
            .ok()
            .flatten();
        exited.is_some_and(|frame| frame.request_context)
    }

    /// `on_close`: writes a request context's span record. True for a request context's span.
    pub(crate) fn close<S>(&self, id: &Id, ctx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else {
            return false;
        };
        if span.metadata().target() != CONTEXT_TARGET {
            return false;
        }
        // Read under the extensions' read lock: nothing writes them while the span closes.
        let ext = span.extensions();
        if let Some(ScopeExt(scope)) = ext.get::<ScopeExt>() {
            if let Some(own) = &scope.context_span {
                crate::context_span::close(&self.shared, scope, own);
            }
        }
        true
    }

    /// The scope of the innermost span this layer saw entered on this thread, as the
    /// registry's current span would give it (a re-entered span does not count again), but
    /// without the registry's lookups: `Some(None)` when no span is entered, `None` when
    /// this thread's stack cannot answer (then the registry does).
    #[inline]
    fn entered_scope<S>(&self, ctx: &Context<'_, S>) -> Option<Option<Arc<Scope>>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let layer = self.shared.serial;
        ENTERED
            .try_with(|entered| {
                let mut entered = entered.try_borrow_mut().ok()?;
                let Some(frame) = entered
                    .iter_mut()
                    .rev()
                    .find(|f| f.layer == layer && !f.duplicate)
                else {
                    return Some(None);
                };
                let epoch = SCOPE_EPOCH.load(Ordering::Acquire);
                if frame.epoch != epoch {
                    let span = ctx.span(&frame.id)?;
                    frame.scope = span
                        .extensions()
                        .get::<ScopeExt>()
                        .map(|s| Arc::clone(&s.0));
                    frame.epoch = epoch;
                }
                Some(frame.scope.clone())
            })
            .ok()
            .flatten()
    }

    fn write_with_scratch(&self, event: &Event<'_>, scope: Option<&Scope>) {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.write_event(event, scope, &mut scratch),
            // Re-entered from a field's Display impl that logs: use a fresh buffer.
            Err(_) => self.write_event(event, scope, &mut Scratch::default()),
        });
    }

    fn write_event(&self, event: &Event<'_>, scope: Option<&Scope>, scratch: &mut Scratch) {
        scratch.clear();
        let meta = event.metadata();
        let Scratch {
            data,
            fields,
            callsites,
            ..
        } = scratch;
        let roles = callsites.roles(&self.shared, meta);
        data.write(self.shared.writer.encoder(), |w| {
            if let Some(extras) = scope.and_then(|s| s.values.extras.as_deref()) {
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
                roles,
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
        let Scratch {
            data,
            fields,
            heads,
            ..
        } = scratch;
        let fields = &*fields;
        let key = HeadKey {
            layer: self.shared.serial,
            scope: scope.map_or(0, |s| s.serial),
            callsite: meta as *const _ as usize,
        };
        let slot = &mut heads[key.slot()];
        let event_component = fields.has_component.then_some(fields.component.as_str());
        if !slot.matches(&key, event_component) {
            let component: &str = match (
                event_component,
                scope.and_then(|s| s.values.component.as_deref()),
            ) {
                (Some(c), _) | (None, Some(c)) => c,
                (None, None) => self.shared.component_for_target(meta.target()),
            };
            let function = scope
                .and_then(|s| s.values.function)
                .or_else(|| meta.module_path());
            let mut base = Record::new(level, component, "")
                .logger(meta.target())
                .context(CodeContext {
                    function,
                    file: meta.file(),
                    line: meta.line(),
                    thread: Some(current_thread_id()),
                    process: Some(self.shared.pid),
                });
            if let Some(scope) = scope {
                base = scope.ids(base);
            }
            self.shared
                .writer
                .encoder()
                .encode_head(&base, &mut slot.head);
            slot.key = key;
            slot.component.clear();
            slot.has_component = fields.has_component;
            if let Some(c) = event_component {
                slot.component.push_str(c);
            }
        }
        let mut record = Record::new(level, "", &fields.message)
            .timing(fields.timing)
            .data(&*data)
            .head(&slot.head);
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
    /// The spans entered on this thread, innermost last, with their scopes: what an event
    /// belongs to, without asking the registry.
    static ENTERED: RefCell<Vec<EnteredSpan>> = const { RefCell::new(Vec::new()) };
}

/// Bumped whenever a span's scope is replaced (`on_record`), so that entered spans holding
/// the old one look it up again.
static SCOPE_EPOCH: AtomicU64 = AtomicU64::new(0);

/// One span entered on this thread, as one layer saw it (the registry's own stack, plus the
/// scope).
struct EnteredSpan {
    /// The layer's serial: several subscribers can enter spans on one thread.
    layer: u64,
    id: Id,
    /// Entered again while already entered: the registry does not make it current again.
    duplicate: bool,
    /// The span of a request context.
    request_context: bool,
    /// [`SCOPE_EPOCH`] when `scope` was read.
    epoch: u64,
    scope: Option<Arc<Scope>>,
    /// A request context's OTel context, current while it is entered.
    _attached: Option<opentelemetry::ContextGuard>,
}

/// Per-thread buffers for one event: its `data`, encoded while its fields are visited, and
/// the fields that become record keys instead.
#[derive(Default)]
struct Scratch {
    data: EncodedFields,
    fields: KeyFields,
    /// Record heads of recent (layer, span scope, call site) triples: the parts of a record
    /// that only these determine, encoded once (see [`RecordHead`]).
    heads: Heads,
    /// What to do with each field of recent call sites.
    callsites: Callsites,
}

/// Cached heads, direct-mapped by [`HeadKey::slot`].
struct Heads(Box<[CachedHead; HEAD_SLOTS]>);

const HEAD_SLOTS: usize = 64;

impl Default for Heads {
    fn default() -> Self {
        Heads(Box::new(std::array::from_fn(|_| CachedHead::default())))
    }
}

impl std::ops::Index<usize> for Heads {
    type Output = CachedHead;
    fn index(&self, i: usize) -> &CachedHead {
        &self.0[i]
    }
}

impl std::ops::IndexMut<usize> for Heads {
    fn index_mut(&mut self, i: usize) -> &mut CachedHead {
        &mut self.0[i]
    }
}

/// What a record head depends on besides an event's own `component` field. Serials are never
/// reused and call sites are `'static`, so equal keys mean equal heads.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct HeadKey {
    layer: u64,
    scope: u64,
    callsite: usize,
}

impl HeadKey {
    #[inline]
    fn slot(&self) -> usize {
        let h = (self.callsite as u64 >> 4) ^ self.scope.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h ^ (h >> 29)) as usize % HEAD_SLOTS
    }
}

#[derive(Default)]
struct CachedHead {
    /// All zero (no layer has serial 0) until first filled.
    key: HeadKey,
    has_component: bool,
    /// The event's own `component` field, when it had one.
    component: String,
    head: RecordHead,
}

impl CachedHead {
    #[inline]
    fn matches(&self, key: &HeadKey, component: Option<&str>) -> bool {
        self.key == *key
            && match component {
                None => !self.has_component,
                Some(c) => self.has_component && self.component == c,
            }
    }
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

/// What the layer does with one field of a call site, decided once per call site.
enum Role {
    Message,
    Component,
    Backtrace,
    Critical,
    Timing,
    /// Into `data`, under this key.
    Data(FieldKey),
}

impl Role {
    fn of(encoder: &RecordEncoder, name: &str) -> Role {
        match name {
            MESSAGE => Role::Message,
            COMPONENT => Role::Component,
            BACKTRACE => Role::Backtrace,
            CRITICAL_FIELD => Role::Critical,
            TIMING_FIELD => Role::Timing,
            name => Role::Data(FieldKey::new(encoder, name)),
        }
    }
}

/// The roles of a call site's fields, by field index, for one layer.
#[derive(Default)]
struct CallsiteRoles {
    layer: u64,
    callsite: usize,
    roles: Vec<Role>,
}

/// Per-thread [`CallsiteRoles`], direct-mapped by call site address.
struct Callsites(Box<[CallsiteRoles; CALLSITE_SLOTS]>);

const CALLSITE_SLOTS: usize = 64;

impl Default for Callsites {
    fn default() -> Self {
        Callsites(Box::new(std::array::from_fn(|_| CallsiteRoles::default())))
    }
}

impl Callsites {
    /// The roles of `meta`'s fields under `layer`, computed on first use.
    #[inline]
    fn roles(&mut self, layer: &Shared, meta: &'static tracing::Metadata<'static>) -> &[Role] {
        let callsite = meta as *const _ as usize;
        let slot = &mut self.0[(callsite >> 4) % CALLSITE_SLOTS];
        if slot.layer != layer.serial || slot.callsite != callsite {
            let encoder = layer.writer.encoder();
            slot.roles.clear();
            slot.roles
                .extend(meta.fields().iter().map(|f| Role::of(encoder, f.name())));
            slot.layer = layer.serial;
            slot.callsite = callsite;
        }
        &slot.roles
    }
}

/// Visits an event's fields once: record keys into [`KeyFields`], the rest into `data`.
struct EventVisitor<'w, 'b> {
    w: &'w mut FieldWriter<'b>,
    fields: &'w mut KeyFields,
    roles: &'w [Role],
}

impl<'w> EventVisitor<'w, '_> {
    /// The `data` key of `field`, or `None` for a record key (whatever its type).
    #[inline]
    fn data_key(&self, field: &Field) -> Option<&'w FieldKey> {
        let roles: &'w [Role] = self.roles;
        match roles.get(field.index()) {
            Some(Role::Data(key)) => Some(key),
            _ => None,
        }
    }

    #[inline]
    fn role(&self, field: &Field) -> Option<&'w Role> {
        let roles: &'w [Role] = self.roles;
        roles.get(field.index())
    }
}

impl Visit for EventVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(key) = self.data_key(field) {
            self.w.f64(key, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(key) = self.data_key(field) {
            self.w.i64(key, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(key) = self.data_key(field) {
            self.w.u64(key, value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if let Some(key) = self.data_key(field) {
            self.w.value(key, &crate::exporters::Value::I128(value));
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if let Some(key) = self.data_key(field) {
            self.w.value(key, &crate::exporters::Value::U128(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match self.role(field) {
            Some(Role::Critical) => self.fields.critical = value,
            Some(Role::Timing) => self.fields.timing = value,
            Some(Role::Data(key)) => self.w.bool(key, value),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let role = self.role(field);
        let f = &mut *self.fields;
        match role {
            Some(Role::Message) => f.message.push_str(value),
            Some(Role::Component) => {
                f.component.push_str(value);
                f.has_component = true;
            }
            Some(Role::Backtrace) => {
                f.backtrace.push_str(value);
                f.has_backtrace = true;
            }
            Some(Role::Data(key)) => self.w.str(key, value),
            _ => {}
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if let Some(key) = self.data_key(field) {
            self.w.bytes(key, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        let f = &mut *self.fields;
        if f.error_field.is_some() {
            // Only the first error is the exception; the others are data.
            if let Some(key) = self.data_key(field) {
                self.w.display(key, &value);
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
        let role = self.role(field);
        let f = &mut *self.fields;
        match role {
            Some(Role::Message) => {
                let _ = write!(f.message, "{value:?}");
            }
            Some(Role::Backtrace) => {
                let _ = write!(f.backtrace, "{value:?}");
                f.has_backtrace = true;
            }
            Some(Role::Component) => {
                let _ = write!(f.component, "{value:?}");
                f.has_component = true;
            }
            Some(Role::Data(key)) => self.w.debug(key, value),
            _ => {}
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
    /// `NAMED_*` bits: the fields recorded under their OTel attribute key (`request.id`, not
    /// `request_id`), which tracing-opentelemetry already set on the span.
    named: u8,
}

const NAMED_REQUEST_ID: u8 = 1;
const NAMED_USER_ID: u8 = 2;
const NAMED_SESSION_ID: u8 = 4;
const NAMED_COMPONENT: u8 = 8;

impl SpanFields {
    fn is_empty(&self) -> bool {
        self.request_id.is_none()
            && self.user_id.is_none()
            && self.session_id.is_none()
            && self.component.is_none()
            && self.error.is_none()
    }

    fn slot(&mut self, name: &str) -> Option<&mut Option<Arc<str>>> {
        self.named |= match name {
            REQUEST_ID_KEY => NAMED_REQUEST_ID,
            USER_ID_KEY => NAMED_USER_ID,
            SESSION_ID_KEY => NAMED_SESSION_ID,
            COMPONENT => NAMED_COMPONENT,
            _ => 0,
        };
        Some(match name {
            "request_id" | REQUEST_ID_KEY => &mut self.request_id,
            "user_id" | USER_ID_KEY => &mut self.user_id,
            "session_id" | SESSION_ID_KEY => &mut self.session_id,
            COMPONENT => &mut self.component,
            _ => return None,
        })
    }

    /// The values of a span with these fields under `parent`: its own ids and component
    /// over the ones it inherits (which are not cloned when it has its own).
    fn resolve(self, parent: Option<&Scope>) -> Values {
        let pick = |own: Option<Arc<str>>, theirs: fn(&Scope) -> &Option<Arc<str>>| {
            own.or_else(|| parent.and_then(|p| theirs(p).clone()))
        };
        Values {
            request_id: pick(self.request_id, |p| &p.values.request_id),
            user_id: pick(self.user_id, |p| &p.values.user_id),
            session_id: pick(self.session_id, |p| &p.values.session_id),
            // An inherited component was normalized where it was set.
            component: pick(self.component.map(normalized), |p| &p.values.component),
            function: parent.and_then(|p| p.values.function),
            trace_id: parent.map_or(TraceId::INVALID, |p| p.values.trace_id),
            span_id: parent.map_or(SpanId::INVALID, |p| p.values.span_id),
            extras: parent.and_then(|p| p.values.extras.clone()),
        }
    }

    /// The scope of a span with these fields under `parent` (see [`resolve`](Self::resolve)).
    fn over(self, parent: Option<&Scope>) -> Scope {
        Scope {
            values: self.resolve(parent),
            otel: None,
            serial: 0,
            context_span: None,
        }
    }
}

/// A component name set on a span, as records write it.
fn normalized(component: Arc<str>) -> Arc<str> {
    match normalize_component(&component) {
        std::borrow::Cow::Owned(n) => n.into(),
        std::borrow::Cow::Borrowed(_) => component,
    }
}

/// A span's request-context values: its own fields over those of its parent's scope (see
/// [`SpanFields::resolve`]).
#[derive(Clone, Debug)]
pub(crate) struct Values {
    pub request_id: Option<Arc<str>>,
    pub user_id: Option<Arc<str>>,
    pub session_id: Option<Arc<str>>,
    pub component: Option<Arc<str>>,
    /// The innermost instrumented span's name.
    pub function: Option<&'static str>,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// Extra key-values of a [`LogContext`](crate::LogContext), written into every line's `data`.
    pub extras: Option<Arc<[Extra]>>,
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
    fn serials_are_never_zero_and_never_repeat_across_threads() {
        // Threads take blocks of their own: more serials than a block, from four threads.
        let per_thread = (1 << 16) + 100;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread).map(|_| next_serial()).collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_else(|_| panic!("serials thread")))
            .collect();
        all.sort_unstable();
        let total = all.len();
        all.dedup();
        assert_eq!(all.len(), total, "a serial was handed out twice");
        assert!(all[0] > 0, "serial 0 means none");
    }

    #[test]
    fn type_names_come_from_derived_debug() {
        assert_eq!(type_name_len("ParseIntError { kind: Empty }"), 13);
        assert_eq!(type_name_len("Timeout(3s)"), 7);
        assert_eq!(type_name_len("Unit"), 4);
        assert_eq!(type_name_len("\"text\""), 0);
        assert_eq!(type_name_len("connection refused"), 0);
        assert_eq!(type_name_len("Error: x"), 0);
    }

    /// A tracekit subscriber writing under `root`, with `default` as the default component.
    fn subscriber(root: &std::path::Path, default: &str) -> (tracing::Dispatch, crate::Guard) {
        crate::builder()
            .root(root)
            .default_component(default)
            .panic_hook(false)
            .build()
            .unwrap()
    }

    /// The records written under `f`, parsed, with `component` `t` (so in `logs/t/t.log`).
    fn records(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, guard) = subscriber(dir.path(), "t");
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
    fn spans_inherit_from_the_parent_the_registry_gives_them() {
        // A contextual span's parent comes from the layer's own stack; explicit parents and
        // roots from the registry. The event inside each child shows what it inherited.
        let other = tempfile::tempdir().unwrap();
        let child = |n: u64, span: tracing::Span| span.in_scope(|| tracing::info!(n, "in child"));
        let records = records(|| {
            let a = tracing::info_span!("a", request_id = "req-a");
            let b = tracing::info_span!("b", request_id = "req-b");
            let _in_a = a.enter();
            child(1, tracing::info_span!("child"));
            {
                let _in_b = b.enter();
                child(2, tracing::info_span!("child"));
                {
                    // Entered again while entered: the registry keeps `b` current.
                    let _again = a.enter();
                    child(3, tracing::info_span!("child"));
                }
                child(4, tracing::info_span!(parent: &a, "child"));
                child(5, tracing::info_span!(parent: None, "child"));
                // Another subscriber on this thread sees none of these spans.
                let (dispatch, guard) = subscriber(other.path(), "u");
                tracing::dispatcher::with_default(&dispatch, || {
                    child(6, tracing::info_span!("child"));
                });
                drop(guard);
                // A span opened here and entered later keeps the parent it opened under.
                let later = tracing::info_span!("child");
                drop(_in_b);
                child(7, later);
            }
            drop(_in_a);
            child(8, tracing::info_span!("child"));
        });
        let seen: Vec<(u64, Option<&str>)> = records
            .iter()
            .map(|r| (r["data"]["n"].as_u64().unwrap(), r["request_id"].as_str()))
            .collect();
        let (a, b) = (Some("req-a"), Some("req-b"));
        assert_eq!(
            seen,
            [(1, a), (2, b), (3, b), (4, a), (5, None), (7, b), (8, None)]
        );
        let text = std::fs::read_to_string(other.path().join("logs/u/u.log")).unwrap();
        let theirs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|r: &serde_json::Value| r.get("span").is_none())
            .collect();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0]["request_id"], serde_json::Value::Null);
    }

    #[test]
    fn events_find_their_span_as_the_registry_does() {
        // The layer keeps its own stack of entered spans (not the registry's lookups); every
        // event must land in the span the registry calls current.
        let other = tempfile::tempdir().unwrap();
        let records = records(|| {
            let a = tracing::info_span!("a", request_id = "req-a");
            let b = tracing::info_span!("b", request_id = "req-b");
            let _in_a = a.enter();
            tracing::info!(n = 1, "in a");
            {
                let _in_b = b.enter();
                tracing::info!(n = 2, "in b");
                {
                    // Entered again while entered: the registry keeps `b` current.
                    let _again = a.enter();
                    tracing::info!(n = 3, "a again");
                }
                tracing::info!(n = 4, "b after");
                tracing::info!(parent: &a, n = 5, "explicit parent");
                tracing::info!(parent: None, n = 6, "no parent");
                // Another subscriber on this thread sees none of these spans.
                let (dispatch, guard) = subscriber(other.path(), "u");
                tracing::dispatcher::with_default(&dispatch, || {
                    tracing::info!(n = 7, "other, no span");
                    let _c = tracing::info_span!("c", request_id = "req-c").entered();
                    tracing::info!(n = 8, "other, in c");
                });
                drop(guard);
                tracing::info!(n = 9, "b after the other");
            }
            tracing::info!(n = 10, "a after");
            drop(_in_a);
            tracing::info!(n = 11, "none");
        });
        let seen = |records: &[serde_json::Value]| -> Vec<(u64, Option<String>, String)> {
            records
                .iter()
                .map(|r| {
                    (
                        r["data"]["n"].as_u64().unwrap(),
                        r["request_id"].as_str().map(str::to_owned),
                        r["context"]["function"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let here = module_path!().to_owned();
        let (a, b) = (Some("req-a".to_owned()), Some("req-b".to_owned()));
        assert_eq!(
            seen(&records),
            [
                (1, a.clone(), "a".to_owned()),
                (2, b.clone(), "b".to_owned()),
                (3, b.clone(), "b".to_owned()),
                (4, b.clone(), "b".to_owned()),
                (5, a.clone(), "a".to_owned()),
                (6, None, here.clone()),
                (9, b.clone(), "b".to_owned()),
                (10, a, "a".to_owned()),
                (11, None, here.clone()),
            ]
        );
        let text = std::fs::read_to_string(other.path().join("logs/u/u.log")).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|r: &serde_json::Value| r.get("span").is_none())
            .collect();
        assert_eq!(
            seen(&records),
            [
                (7, None, here),
                (8, Some("req-c".to_owned()), "c".to_owned())
            ]
        );
    }

    #[test]
    fn a_request_contexts_otel_context_is_current_only_while_entered() {
        // Its guard lives in the layer's stack frame: attached on enter, dropped on exit, so
        // the OpenTelemetry API (and tracing-opentelemetry's child spans) see it exactly then.
        use opentelemetry::trace::TraceContextExt;
        fn current() -> opentelemetry::trace::SpanContext {
            opentelemetry::Context::current()
                .span()
                .span_context()
                .clone()
        }
        records(|| {
            assert!(!current().is_valid(), "nothing current before");
            let outer = crate::LogContext::new().request_id("req-o").span();
            let entered = outer.enter();
            let outer_id = current().span_id();
            assert!(current().is_valid());
            {
                let _inner = crate::LogContext::new().user_id("user-i").enter();
                let inner_id = current().span_id();
                assert!(current().is_valid());
                assert_ne!(inner_id, outer_id, "the inner context is current");
                // A plain span entered and left inside does not take the context away.
                tracing::info_span!("work").in_scope(|| {
                    assert_ne!(current().span_id(), outer_id);
                });
                assert_eq!(current().span_id(), inner_id);
            }
            assert_eq!(
                current().span_id(),
                outer_id,
                "the outer one is current again"
            );
            drop(entered);
            assert!(!current().is_valid(), "nothing current after");
            // Entered again later: current again.
            outer.in_scope(|| assert_eq!(current().span_id(), outer_id));
        });
    }

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
        let (dispatch, guard) = subscriber(dir.path(), "t");
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

    /// One call site logs again and again while what its record head depends on changes: the
    /// span, a recorded field of the span, the event's own component, the layer. Each line
    /// must show the values of its own moment, never a cached head of an earlier one.
    #[test]
    fn cached_heads_follow_every_change() {
        fn log(component: Option<&str>, n: u64) {
            match component {
                Some(c) => tracing::info!(component = c, n, token = "t0k", "line"),
                None => tracing::info!(n, token = "t0k", "line"),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, guard) = subscriber(dir.path(), "t");
        tracing::dispatcher::with_default(&dispatch, || {
            for round in 0..2_u64 {
                let _a = crate::LogContext::new().request_id("req-a").enter();
                log(None, 10 * round);
                let span = tracing::info_span!("work", request_id = tracing::field::Empty);
                let _s = span.enter();
                log(None, 10 * round + 1);
                span.record("request_id", "req-b");
                log(None, 10 * round + 2);
                log(Some("x"), 10 * round + 3);
                log(Some("y"), 10 * round + 4);
                log(None, 10 * round + 5);
            }
        });
        drop(guard);
        let mut records: Vec<serde_json::Value> = ["t", "x", "y"]
            .iter()
            .flat_map(|c| {
                let text = std::fs::read_to_string(dir.path().join(format!("logs/{c}/{c}.log")));
                let text = text.unwrap();
                text.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .filter(|r| r.get("span").is_none())
                    .collect::<Vec<_>>()
            })
            .collect();
        records.sort_by_key(|r| r["data"]["n"].as_u64());
        let seen: Vec<(u64, &str, &str, &str)> = records
            .iter()
            .map(|r| {
                assert_eq!(r["data"]["token"], "[REDACTED]");
                (
                    r["data"]["n"].as_u64().unwrap(),
                    r["request_id"].as_str().unwrap(),
                    r["component"].as_str().unwrap(),
                    r["context"]["function"].as_str().unwrap(),
                )
            })
            .collect();
        let here = module_path!();
        for round in 0..2 {
            let n = 10 * round;
            assert_eq!(
                &seen[6 * round as usize..6 * round as usize + 6],
                [
                    (n, "req-a", "t", here),
                    (n + 1, "req-a", "t", "work"),
                    (n + 2, "req-b", "t", "work"),
                    (n + 3, "req-b", "x", "work"),
                    (n + 4, "req-b", "y", "work"),
                    (n + 5, "req-b", "t", "work"),
                ]
            );
        }
        // Another layer (another default component) on the same thread, same call site.
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, guard) = subscriber(dir.path(), "other");
        tracing::dispatcher::with_default(&dispatch, || log(None, 99));
        drop(guard);
        let text = std::fs::read_to_string(dir.path().join("logs/other/other.log")).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            (line["component"].as_str(), line["data"]["n"].as_u64()),
            (Some("other"), Some(99))
        );
        assert!(line.get("request_id").is_none());
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
            serial: next_serial(),
            span_processors: Vec::new(),
            #[cfg(feature = "otlp")]
            otlp_records: OnceLock::new(),
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
