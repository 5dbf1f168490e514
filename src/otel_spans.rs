//! The OpenTelemetry layer, restricted to spans.
//!
//! tracing-opentelemetry turns every event inside a span into an OTel span event: formatted
//! attributes, allocated per event, held until the span ends. tracekit already writes every
//! event as a record when it happens, so those copies would only cost time and memory (a
//! request logging 1M lines would hold 1M events, or 128 with the SDK's default limit and the
//! cost of building the rest). This wrapper forwards everything but events; the event layer
//! sets the span status on `ERROR` events itself. Request-context spans are not forwarded
//! either: tracekit keeps them itself (see `context_span`). (tracing-opentelemetry's own
//! `with_counting_event_filter` is not an option: in 0.34 it prints to stdout on every event.)

use std::any::TypeId;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Forwards every callback of `L` except `on_event`.
#[derive(Debug)]
pub(crate) struct SpansOnly<L>(pub L);

impl<S, L> Layer<S> for SpansOnly<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.0.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // A request context's span is tracekit's own (see `context_span`); without its data
        // the OpenTelemetry layer passes over the span's other callbacks.
        if attrs.metadata().target() == crate::layer::CONTEXT_TARGET {
            return;
        }
        // A span whose explicit parent is a request context: the OpenTelemetry layer would
        // not find the parent's span data and start a new trace. Its context, made current,
        // is the parent instead (the layer takes the current context for a contextual span).
        let context_parent = attrs.parent().and_then(|parent| {
            let span = ctx.span(parent)?;
            if span.metadata().target() != crate::layer::CONTEXT_TARGET {
                return None;
            }
            let ext = span.extensions();
            ext.get::<crate::layer::ScopeExt>()?.0.otel.clone()
        });
        match context_parent {
            Some(cx) => {
                let _current = cx.attach();
                let contextual = Attributes::new(attrs.metadata(), attrs.values());
                self.0.on_new_span(&contextual, id, ctx);
            }
            None => self.0.on_new_span(attrs, id, ctx),
        }
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(span, follows, ctx);
    }

    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {}

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx);
    }

    // SAFETY: forwards to the inner layer, whose implementation upholds the contract; `Self`
    // is returned as a pointer to `self`.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: see above.
            unsafe { self.0.downcast_raw(id) }
        }
    }
}
