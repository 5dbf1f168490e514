//! [`TracekitLayer`]: tracekit as one `tracing-subscriber` layer, the OpenTelemetry bridge
//! included.
//!
//! It is two standard pieces and tracekit's own:
//! - tracing-opentelemetry's `OpenTelemetryLayer`, which sees spans but not events: every span
//!   (a [`LogContext`](crate::LogContext) included) is an SDK span of tracekit's tracer provider, with its sampler, limits and processors, and the standard
//!   span APIs (`OpenTelemetrySpanExt`) work on it. Events are not copied into the spans as
//!   span events: they are records in the files already;
//! - the event layer (`events`), which writes every event as a record, with the request
//!   context and fields of the spans around it, read from the registry's span extensions;
//! - with feature `otlp` and a live log stream, the layer that sends events over OTLP.

use std::any::TypeId;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Tracer as SdkTracer;
use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layered};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::completion::complete;
use crate::events::EventLayer;
use crate::keys::{COMPONENT, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::scope::{
    fresh_scope, is_completed, nearest_scope, replace_scope, OwnValues, Scope, ScopeExt,
};
use crate::sink::Handle;

/// The OpenTelemetry layer, restricted to spans.
type Bridge<S> = SpansOnly<OpenTelemetryLayer<S, SdkTracer>>;

#[cfg(feature = "otlp")]
type Inner<S> = Layered<crate::otlp::OtlpLogLayer, Layered<EventLayer, Bridge<S>, S>, S>;
#[cfg(not(feature = "otlp"))]
type Inner<S> = Layered<EventLayer, Bridge<S>, S>;

/// tracekit as a [`Layer`]: the files, the OpenTelemetry SDK spans and the standard span APIs,
/// from one `.with(layer)` on any subscriber built on tracing-subscriber's registry. Made by
/// [`Builder::layer`](crate::Builder::layer), with the [`Guard`](crate::Guard) that flushes it.
///
/// It composes with other layers and filters as any layer does: a `fmt` layer for the console,
/// an `EnvFilter`, per-layer filters (`layer.with_filter(..)`). Spans are SDK spans of the
/// guard's [tracer provider](crate::Guard::tracer_provider) (tracing-opentelemetry inside), so
/// `tracing::Span::current().context()`, `set_attribute`, `set_parent` and the OpenTelemetry
/// API's spans all work as they do with tracing-opentelemetry alone.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::Layer;
///
/// # let dir = tempfile::tempdir()?;
/// let (layer, guard) = tracekit::builder().root(dir.path()).otel_globals(false).layer()?;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::EnvFilter::new("info"))
///     .with(layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
/// tracing::subscriber::with_default(subscriber, || {
///     let _checkout = tracing::info_span!("checkout", order_id = 42_u64).entered();
///     tracing::info!("paid");
/// });
/// drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
/// let paid: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(paid["data"]["order_id"], 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TracekitLayer<S> {
    inner: Inner<S>,
    handle: Handle,
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> fmt::Debug for TracekitLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracekitLayer")
            .field("root", &self.handle.sink.writer.root())
            .finish_non_exhaustive()
    }
}

impl<S> TracekitLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    pub(crate) fn new(
        otel: OpenTelemetryLayer<S, SdkTracer>,
        events: EventLayer,
        #[cfg(feature = "otlp")] otlp: crate::otlp::OtlpLogLayer,
    ) -> TracekitLayer<S> {
        let handle = Handle {
            sink: Arc::clone(&events.sink),
            current: current_scope::<S>,
            opened: context_opened::<S>,
        };
        let bridge = SpansOnly(otel);
        let inner = bridge.and_then(events);
        #[cfg(feature = "otlp")]
        let inner = inner.and_then(otlp);
        TracekitLayer {
            inner,
            handle,
            dispatch: OnceLock::new(),
        }
    }

    /// The dispatcher this layer is part of.
    fn dispatch(&self) -> Option<Dispatch> {
        self.dispatch.get().and_then(WeakDispatch::upgrade)
    }
}

impl<S> Layer<S> for TracekitLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // A span never entered, whose SDK span the OpenTelemetry layer starts and ends now:
        // completed first, or it would be exported without what tracekit adds.
        if let Some(span) = ctx.span(&id).filter(|span| !is_completed(span)) {
            if let (Some(scope), Some(dispatch)) = (fresh_scope(&span), self.dispatch()) {
                complete(&span, &scope, &dispatch, &self.handle.sink);
            }
        }
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // SAFETY: `Self` and the handle are returned as pointers to themselves, which live as
    // long as `self`; anything else is the inner layers' answer, whose implementations
    // uphold the same contract (tracing-opentelemetry's `WithContext` is found there).
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<Handle>() {
            Some(&self.handle as *const Handle as *const ())
        } else {
            // SAFETY: see above.
            unsafe { self.inner.downcast_raw(id) }
        }
    }
}

/// The OpenTelemetry layer without events: every other call goes through unchanged.
///
/// Not a per-layer filter: a filter that turns events away from one layer of several makes
/// the registry ask every layer's filters about every event (and every span) instead of
/// caching each call site's interest, and trips over tokio-rs/tracing#2519 (a stale
/// per-layer decision hiding the next span). tracing-opentelemetry's own
/// `FilteredOpenTelemetryLayer` wraps the layer the same way.
#[derive(Debug)]
struct SpansOnly<L>(L);

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

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(span, follows, ctx);
    }

    // Events are records in the files already, not span events: `on_event` is not passed on.

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

    // SAFETY: the inner layer's answer (tracing-opentelemetry's `WithContext` is found there),
    // whose implementation upholds the trait's contract.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        // SAFETY: see above.
        unsafe { self.0.downcast_raw(id) }
    }
}

/// [`Handle::current`] for subscribers of type `S`.
fn current_scope<S>(dispatch: &Dispatch) -> Option<Arc<Scope>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let subscriber = dispatch.downcast_ref::<S>()?;
    let handle = dispatch.downcast_ref::<Handle>()?;
    let current = dispatch.current_span();
    let mut span = subscriber.span(current.id()?);
    while let Some(s) = span {
        if let Some(scope) = fresh_scope(&s) {
            // The records written in it need its ids.
            complete(&s, &scope, dispatch, &handle.sink);
            return Some(scope);
        }
        span = s.parent();
    }
    None
}

/// [`Handle::opened`] for subscribers of type `S`.
fn context_opened<S>(
    dispatch: &Dispatch,
    id: &Id,
    own: OwnValues,
    location: &'static Location<'static>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = dispatch.downcast_ref::<S>().and_then(|s| s.span(id)) else {
        return;
    };
    let shared = {
        let mut ext = span.extensions_mut();
        let Some(slot) = ext.get_mut::<ScopeExt>() else {
            // The tracekit layer does not see the span (a per-layer filter).
            return;
        };
        if let Some(sdk) = slot.0.sdk.get() {
            // Completed already (another layer asked for its context, with what the span
            // inherits): its own values now.
            sdk.cx.span().set_attributes(context_attributes(&own));
        }
        slot.0.sdk.locate(location);
        // The span's scope is this thread's alone until it is entered or handed on: set in
        // place.
        if let Some(scope) = Arc::get_mut(&mut slot.0) {
            scope.set_context(own);
            return;
        }
        Arc::clone(&slot.0)
    };
    // Shared already: recorded as `span.record` records fields.
    let parent = nearest_scope(span.parent());
    let next = Arc::new(shared.successor(own, parent.as_ref()));
    replace_scope(&span, &shared, next);
}

/// A request context's own values as its SDK span's attributes.
fn context_attributes(own: &OwnValues) -> Vec<KeyValue> {
    let ids = [
        (REQUEST_ID_KEY, &own.request_id),
        (USER_ID_KEY, &own.user_id),
        (SESSION_ID_KEY, &own.session_id),
        (COMPONENT, &own.component),
    ];
    let ids = ids
        .into_iter()
        .filter_map(|(key, value)| Some(KeyValue::new(key, value.clone()?)));
    let fields = own
        .fields
        .iter()
        .map(|(name, value)| KeyValue::new(name.to_string(), value.to_otel()));
    ids.chain(fields).collect()
}
