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
//! The OpenTelemetry layer runs before this one (see `layer`); once it has started a span's SDK
//! span, this layer completes it with what tracekit adds (see `sdk_span`).

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::KeyValue;
use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::completion::{complete, complete_entered};
use crate::event_fields::{Callsites, EventVisitor, KeyFields, BACKTRACE};
use crate::exporters::{current_thread_id, CodeContext, EncodedFields, Exception, Level, Record};
use crate::heads::{HeadKey, Heads};
use crate::keys::CONTEXT_TARGET;
use crate::scope::{
    fresh_scope, is_completed, nearest_scope, replace_scope, OwnValues, OwnVisitor, Scope, ScopeExt,
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
        let parent = nearest_scope(span.parent());
        let scope = if meta.target() == CONTEXT_TARGET {
            // A request context: its values come right after, shared (see `layer`). It is not
            // a function: the lines inside keep the enclosing one's.
            Scope::resolve(OwnValues::default(), None, parent.as_ref())
        } else {
            let mut own = OwnVisitor::new(&self.span_fields);
            attrs.record(&mut own);
            Scope::resolve(own.own, Some(meta.name()), parent.as_ref())
        };
        span.extensions_mut().insert(ScopeExt(Arc::new(scope)));
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        // The OpenTelemetry layer, before this one, has started the span's SDK span.
        let Some(span) = ctx.span(id) else { return };
        if is_completed(&span) {
            // Entered before (a future polled again).
            return;
        }
        if let (Some(scope), Some(dispatch)) = (fresh_scope(&span), self.dispatch()) {
            complete_entered(&span, &scope, &dispatch, &self.sink);
        }
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut own = OwnVisitor::new(&self.span_fields);
        values.record(&mut own);
        let Some(old) = fresh_scope(&span) else {
            return;
        };
        if own.own.is_empty() {
            return;
        }
        if let Some(sdk) = old.sdk.get() {
            // Completed already: what it adds goes to the SDK span now.
            let otel_span = sdk.cx.span();
            otel_span.set_attributes(
                own.own
                    .unsigned
                    .iter()
                    .map(|(key, value)| KeyValue::new(*key, value.to_otel())),
            );
            if let Some(message) = &own.own.error {
                otel_span.set_status(Status::error(message.clone()));
            }
        }
        // The recorded fields over the span's own values, resolved as when it opened.
        let parent = nearest_scope(span.parent());
        let next = Arc::new(old.successor(own.own, parent.as_ref()));
        replace_scope(&span, &old, next);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let scope = ctx.event_span(event).and_then(|span| {
            let scope = fresh_scope(&span)?;
            if scope.sdk.get().is_none() {
                // An event for a span not entered yet: its record needs the span's ids.
                if let Some(dispatch) = self.dispatch() {
                    complete(&span, &scope, &dispatch, &self.sink);
                }
            }
            Some(scope)
        });
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.write_event(event, scope.as_deref(), &mut scratch),
            // Re-entered from a field's Display impl that logs: use a fresh buffer.
            Err(_) => self.write_event(event, scope.as_deref(), &mut Scratch::default()),
        });
    }
}

impl EventLayer {
    /// The dispatcher this layer is part of.
    fn dispatch(&self) -> Option<Dispatch> {
        self.dispatch.get().and_then(WeakDispatch::upgrade)
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
