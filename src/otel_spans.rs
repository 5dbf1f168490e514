//! The OpenTelemetry layer, restricted to spans, and the event layer, as one layer.
//!
//! tracing-opentelemetry turns every event inside a span into an OTel span event: formatted
//! attributes, allocated per event, held until the span ends. tracekit already writes every
//! event as a record when it happens, so those copies would only cost time and memory (a
//! request logging 1M lines would hold 1M events, or 128 with the SDK's default limit and the
//! cost of building the rest). [`Bridge`] gives the OpenTelemetry layer every callback but
//! events; the event layer sets the span status on `ERROR` events itself. (tracing-opentelemetry's
//! own `with_counting_event_filter` is not an option: in 0.34 it prints to stdout on every
//! event.)
//!
//! Request-context spans are not the OpenTelemetry layer's either: tracekit keeps them itself
//! (see `context_span`). As separate layers, the OpenTelemetry layer would still look each
//! of them up in the registry on enter, exit and close to find nothing to do (about 740
//! instructions per request context); as one layer, the event layer's own lookups (and its
//! stack of entered spans, on exit) tell which spans to pass on.

use std::any::TypeId;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::layer::{ScopeExt, TracekitLayer, CONTEXT_TARGET};

/// The OpenTelemetry layer `L` (every callback but `on_event`, and none for request-context
/// spans) followed by the event layer, in the order `Registry::with(L).with(event layer)`
/// would call them.
#[derive(Debug)]
pub(crate) struct Bridge<L> {
    pub otel: L,
    pub tracekit: TracekitLayer,
}

impl<S, L> Layer<S> for Bridge<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.otel.on_register_dispatch(subscriber);
        self.tracekit.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.otel.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.otel.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.otel.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.otel_new_span(attrs, id, ctx.clone());
        self.tracekit.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.otel.on_record(span, values, ctx.clone());
        self.tracekit.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.otel.on_follows_from(span, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.tracekit.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.tracekit.enter(id, &ctx) {
            self.otel.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.tracekit.exit(id) {
            self.otel.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.tracekit.close(&id, &ctx) {
            self.otel.on_close(id, ctx);
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.otel.on_id_change(old, new, ctx);
    }

    // SAFETY: `Self` and the event layer are returned as pointers to themselves; anything
    // else is the OpenTelemetry layer's answer, whose implementation upholds the contract.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<TracekitLayer>() {
            Some(&self.tracekit as *const TracekitLayer as *const ())
        } else {
            // SAFETY: see above.
            unsafe { self.otel.downcast_raw(id) }
        }
    }
}

impl<L> Bridge<L> {
    /// The OpenTelemetry layer's `on_new_span`, except for request-context spans.
    fn otel_new_span<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        L: Layer<S>,
    {
        // A request context's span is tracekit's own (see `context_span`); without its data
        // the OpenTelemetry layer would pass over the span's other callbacks anyway.
        if attrs.metadata().target() == CONTEXT_TARGET {
            return;
        }
        // A span whose explicit parent is a request context: the OpenTelemetry layer would
        // not find the parent's span data and start a new trace. Its context, made current,
        // is the parent instead (the layer takes the current context for a contextual span).
        let context_parent = attrs.parent().and_then(|parent| {
            let span = ctx.span(parent)?;
            if span.metadata().target() != CONTEXT_TARGET {
                return None;
            }
            let ext = span.extensions();
            ext.get::<ScopeExt>()?.0.otel.clone()
        });
        match context_parent {
            Some(cx) => {
                let _current = cx.attach();
                let contextual = Attributes::new(attrs.metadata(), attrs.values());
                self.otel.on_new_span(&contextual, id, ctx);
            }
            None => self.otel.on_new_span(attrs, id, ctx),
        }
    }
}
