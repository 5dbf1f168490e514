//! The event layer: every `tracing` event becomes one record, in the request context of its
//! span.
//!
//! When a span opens, its [`Scope`] is resolved once (request, user and session ids,
//! component, function, trace and span ids, the fields for event lines) and kept in the span's
//! registry extensions. An event finds its span through the registry
//! (`Context::event_span`), clones the scope's `Arc`, visits its own fields once (encoding
//! `data` into a per-thread buffer, keeping the message and the other record keys aside) and
//! writes the line around them: its repeated parts come from a per-thread cache of record
//! heads (see `heads`), so only the timestamp, level, message and data are encoded per event.
//!
//! The OpenTelemetry layer runs before this one (see `layer`): by `on_new_span` it holds the
//! span's SDK span, which this layer starts to learn its ids and completes with what
//! tracekit adds (the code location, inherited ids and component, unsigned fields as numbers).

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::KeyValue;
use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::event_fields::{Callsites, EventVisitor, KeyFields, BACKTRACE};
use crate::exporters::{current_thread_id, CodeContext, EncodedFields, Exception, Level, Record};
use crate::heads::{HeadKey, Heads};
use crate::keys::{COMPONENT, CONTEXT_TARGET, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::layer::{fresh_scope, nearest_scope, replace_scope};
use crate::scope::{
    OwnVisitor, Scope, ScopeExt, NAMED_COMPONENT, NAMED_REQUEST_ID, NAMED_SESSION_ID, NAMED_USER_ID,
};
use crate::sink::Sink;
use crate::span_fields::SpanFields;

/// Writes every event as a record; keeps each span's [`Scope`].
#[derive(Debug)]
pub(crate) struct EventLayer {
    pub sink: Arc<Sink>,
    /// Which fields of the enclosing spans go into event lines.
    span_fields: SpanFields,
    dispatch: OnceLock<WeakDispatch>,
}

impl EventLayer {
    pub(crate) fn new(sink: Arc<Sink>, span_fields: SpanFields) -> EventLayer {
        EventLayer {
            sink,
            span_fields,
            dispatch: OnceLock::new(),
        }
    }
}

impl<S> Layer<S> for EventLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let meta = attrs.metadata();
        let request_context = meta.target() == CONTEXT_TARGET;
        let mut own = OwnVisitor::new(&self.span_fields);
        attrs.record(&mut own);
        let parent = nearest_scope(span.parent());
        let name = (!request_context).then(|| meta.name());
        let OwnVisitor {
            own: values,
            error,
            named,
            unsigned,
            ..
        } = own;
        let mut scope = Scope::resolve(values, name, parent.as_ref());
        // The OpenTelemetry layer ran first and holds the span; starting it here fixes its ids
        // once. `get_otel_context` locks the span's extensions, so no extension guard is held.
        let cx = self
            .dispatch
            .get()
            .and_then(WeakDispatch::upgrade)
            .and_then(|dispatch| tracing_opentelemetry::get_otel_context(id, &dispatch));
        if let Some(cx) = cx {
            let otel_span = cx.span();
            let sc = otel_span.span_context();
            scope.trace_id = sc.trace_id();
            scope.span_id = sc.span_id();
            let mut added = Vec::with_capacity(8);
            if request_context {
                // Its location is its caller's (see `LogContext`); its function is the one
                // it was opened in.
                if let Some(function) = scope.function {
                    added.push(KeyValue::new("code.function.name", function));
                }
            } else {
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
            // The inherited context (and ids given under the records' names), so that the
            // span's record carries it too.
            for (key, bit, value) in [
                (REQUEST_ID_KEY, NAMED_REQUEST_ID, &scope.request_id),
                (USER_ID_KEY, NAMED_USER_ID, &scope.user_id),
                (SESSION_ID_KEY, NAMED_SESSION_ID, &scope.session_id),
            ] {
                if let (0, Some(v)) = (named & bit, value) {
                    added.push(KeyValue::new(key, Arc::clone(v)));
                }
            }
            if named & NAMED_COMPONENT == 0 {
                let component = match &scope.component {
                    Some(c) => Some(Arc::clone(c)),
                    None => Some(self.sink.component_for_target(meta.target()))
                        .filter(|c| !c.is_empty())
                        .map(Arc::from),
                };
                if let Some(c) = component {
                    added.push(KeyValue::new(COMPONENT, c));
                }
            }
            // The OpenTelemetry layer sets these as their `Debug` text; a later value of a key
            // wins, in the files as in the specification.
            for (key, value) in unsigned {
                added.push(KeyValue::new(key, value.to_otel()));
            }
            otel_span.set_attributes(added);
            if let Some(message) = error {
                otel_span.set_status(Status::error(message));
            }
            scope.otel = Some(cx.clone());
        }
        span.extensions_mut().insert(ScopeExt(Arc::new(scope)));
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut own = OwnVisitor::new(&self.span_fields);
        values.record(&mut own);
        let Some(old) = fresh_scope(&span) else {
            return;
        };
        if !own.unsigned.is_empty() {
            if let Some(cx) = &old.otel {
                let typed = own.unsigned.drain(..);
                cx.span()
                    .set_attributes(typed.map(|(k, v)| KeyValue::new(k, v.to_otel())));
            }
        }
        if let Some(message) = own.error.take() {
            old.set_error(&message);
        }
        if own.own.is_empty() {
            return;
        }
        // The recorded fields over the span's own values, resolved as when it opened.
        let parent = nearest_scope(span.parent());
        let next = Arc::new(old.successor(own.own, parent.as_ref()));
        replace_scope(&span, &old, next);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let scope = ctx.event_span(event).and_then(|span| fresh_scope(&span));
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.write_event(event, scope.as_deref(), &mut scratch),
            // Re-entered from a field's Display impl that logs: use a fresh buffer.
            Err(_) => self.write_event(event, scope.as_deref(), &mut Scratch::default()),
        });
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Per-thread buffers for one event: its `data`, encoded while its fields are visited, and
/// the fields that become record keys instead.
#[derive(Default)]
struct Scratch {
    data: EncodedFields,
    fields: KeyFields,
    /// Record heads of recent (layer, span scope, call site) triples.
    heads: Heads,
    /// What to do with each field of recent call sites.
    callsites: Callsites,
}

impl EventLayer {
    fn write_event(&self, event: &Event<'_>, scope: Option<&Scope>, scratch: &mut Scratch) {
        let Scratch {
            data,
            fields,
            heads,
            callsites,
        } = scratch;
        data.clear();
        fields.clear();
        let meta = event.metadata();
        let encoder = self.sink.writer.encoder();
        let roles = callsites.roles(&self.sink, meta);
        data.write(encoder, |w| {
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
        let key = HeadKey {
            layer: self.sink.serial,
            scope: scope.map_or(0, |s| s.serial),
            callsite: meta as *const _ as usize,
        };
        let slot = heads.slot(&key);
        let event_component = fields.has_component.then_some(fields.component.as_str());
        if !slot.matches(&key, event_component) {
            let component: &str =
                match (event_component, scope.and_then(|s| s.component.as_deref())) {
                    (Some(c), _) | (None, Some(c)) => c,
                    (None, None) => self.sink.component_for_target(meta.target()),
                };
            let function = scope
                .and_then(|s| s.function)
                .or_else(|| meta.module_path());
            let mut base = Record::new(level, component, "")
                .logger(meta.target())
                .context(CodeContext {
                    function,
                    file: meta.file(),
                    line: meta.line(),
                    thread: Some(current_thread_id()),
                    process: Some(self.sink.pid),
                });
            if let Some(scope) = scope {
                base = scope.ids(base);
            }
            encoder.encode_head(&base, &mut slot.head);
            // The span fields the event does not set itself (its own win).
            slot.span_data.clear();
            if let Some(scope) = scope.filter(|s| s.fields.is_some()) {
                let own = meta.fields();
                slot.span_data.write(encoder, |w| {
                    scope.write_fields(w, |name| own.field(name).is_some())
                });
            }
            slot.fill(key, event_component);
        }
        if !slot.span_data.is_empty() {
            data.write(encoder, |w| {
                crate::exporters::Fields::write_fields(&slot.span_data, w)
            });
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
        self.sink.write(scope, record);
    }
}

#[cfg(test)]
mod tests;
