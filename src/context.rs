//! [`LogContext`]: the request context carried into every line and every child span.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::StringValue;
use tracing::instrument::Instrumented;
use tracing::span::EnteredSpan;
use tracing::{Instrument, Span};

use crate::context_value::ContextValue;
use crate::exporters::normalize_component;
use crate::keys::{CONTEXT_TARGET, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::scope::{
    FieldName, OwnValues, NAMED_COMPONENT, NAMED_REQUEST_ID, NAMED_SESSION_ID, NAMED_USER_ID,
};
use crate::sink::Handle;

/// A request context: request, user and session ids plus any extra key-values, carried into
/// every record and every child span written inside it (the seed's `LogContext`).
///
/// Entering a context opens an ordinary `tracing` span named `request` (target
/// `tracekit::context`, level `ERROR` so that level filters let it through), which the
/// OpenTelemetry bridge makes an SDK span with the attributes `request.id`, `user.id` and
/// `session.id` (plus the extra key-values) and the caller's code location. Its context is
/// current while it is entered: child spans, from `tracing` or the OTel API, nest under it,
/// `tracing::Span::current().context()` (tracing-opentelemetry's `OpenTelemetrySpanExt`)
/// returns it, and the tracer provider's sampler and processors see it. The same three keys go
/// into the W3C baggage, so [`inject`](crate::inject) hands them to downstream services.
/// Inside it, every line carries `request_id`, `user_id`, `session_id`, `trace_id` and
/// `span_id`, and the extra key-values in `data`.
///
/// Contexts nest: an inner context's values override, the others are inherited.
///
/// # Examples
///
/// ```
/// use tracekit::LogContext;
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// LogContext::new()
///     .request_id("req-123")
///     .user_id("user-456")
///     .field("experiment", "ranking_v2")
///     .in_scope(|| {
///         tracing::info!("Request received");
///         // Nested: a new session, same request and user.
///         let _inner = LogContext::new().session_id("session-789").enter();
///         tracing::info!("Request completed");
///     });
/// # });
/// # drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
/// let completed = text.lines().find(|l| l.contains("Request completed")).unwrap();
/// let completed: serde_json::Value = serde_json::from_str(completed)?;
/// assert_eq!(completed["request_id"], "req-123");
/// assert_eq!(completed["session_id"], "session-789");
/// assert_eq!(completed["data"]["experiment"], "ranking_v2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Async code, tasks and threads
///
/// Use [`instrument`](Self::instrument) for a future: the context follows it across `.await`
/// on any worker thread. A spawned task or thread does not inherit the caller's span on its
/// own; hand it on the `tracing` way:
///
/// ```
/// use tracing::Instrument;
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// let _cx = tracekit::LogContext::new().request_id("req-1").enter();
/// let span = tracing::Span::current();
/// let dispatch = tracing::dispatcher::get_default(|d| d.clone());
/// std::thread::spawn(move || {
///     tracing::dispatcher::with_default(&dispatch, || {
///         span.in_scope(|| tracing::info!("in the worker thread"));
///     })
/// })
/// .join()
/// .unwrap();
/// // In async code: tokio::spawn(work().instrument(tracing::Span::current()));
/// # });
/// # drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// (With [`tracekit::init`](crate::init) the dispatcher is global, so the thread needs only
/// `span.in_scope(..)`.)
#[derive(Clone, Default)]
#[must_use = "a LogContext does nothing until it is entered"]
pub struct LogContext {
    request_id: Option<Arc<str>>,
    user_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    component: Option<Arc<str>>,
    fields: Vec<(Arc<str>, ContextValue)>,
    parent: Option<opentelemetry::Context>,
}

impl fmt::Debug for LogContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogContext")
            .field("request_id", &self.request_id)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("component", &self.component)
            .field("fields", &self.fields)
            .field("remote_parent", &self.parent.is_some())
            .finish()
    }
}

impl LogContext {
    /// An empty context: entering it inherits everything from the enclosing one.
    ///
    /// ```
    /// let _cx = tracekit::LogContext::new().enter(); // changes nothing: no id of its own
    /// ```
    pub fn new() -> LogContext {
        LogContext::default()
    }

    /// Sets the request id (`request_id` in records, `request.id` in OTel).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::LogContext::new().request_id("req-123").in_scope(|| tracing::info!("Request received"));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(record["request_id"], "req-123");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request_id(mut self, id: impl AsRef<str>) -> Self {
        self.request_id = Some(id.as_ref().into());
        self
    }

    /// Sets the user id (`user_id` in records, `user.id` in OTel).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::LogContext::new().user_id("user-456").in_scope(|| tracing::info!("Request received"));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(record["user_id"], "user-456");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user_id(mut self, id: impl AsRef<str>) -> Self {
        self.user_id = Some(id.as_ref().into());
        self
    }

    /// Sets the session id (`session_id` in records, `session.id` in OTel).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::LogContext::new().session_id("session-789").in_scope(|| tracing::info!("Request received"));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(record["session_id"], "session-789");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_id(mut self, id: impl AsRef<str>) -> Self {
        self.session_id = Some(id.as_ref().into());
        self
    }

    /// Sets the component of every record inside that names none itself.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::LogContext::new().component("serving").in_scope(|| tracing::info!("Request received"));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/serving/serving.log"))?;
    /// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(record["component"], "serving");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn component(mut self, component: impl AsRef<str>) -> Self {
        self.component = Some(component.as_ref().into());
        self
    }

    /// Adds a key-value written into the `data` of every record inside (after redaction) and
    /// set as an attribute of the context's span. A later value for the same key wins.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::LogContext::new()
    ///     .field("client", "ios")
    ///     .field("experiment_bucket", 7_u32)
    ///     .in_scope(|| tracing::info!("Request received"));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(record["data"]["client"], "ios");
    /// assert_eq!(record["data"]["experiment_bucket"], 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn field(mut self, key: impl Into<Arc<str>>, value: impl Into<ContextValue>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
        self
    }

    /// Continues a remote trace: the context's span becomes a child of `parent` (usually from
    /// [`extract`](crate::extract)), and the request, user and session ids that are not set
    /// explicitly are taken from its baggage.
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// // Headers as an upstream service sends them (`tracekit::inject` writes these).
    /// let headers = HashMap::from([(
    ///     "traceparent".to_owned(),
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    /// )]);
    /// tracekit::LogContext::new()
    ///     .request_id("req-123")
    ///     .parent(tracekit::extract(&headers))
    ///     .in_scope(|| tracing::info!("Downstream work"));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(record["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parent(mut self, parent: opentelemetry::Context) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Opens the context's span without entering it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let span = tracekit::LogContext::new().request_id("req-1").span();
    /// span.in_scope(|| tracing::info!("inside"));
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn span(self) -> Span {
        self.open(Location::caller())
    }

    /// Opens the context's span, located at `location` (where the caller opened it).
    fn open(mut self, location: &'static Location<'static>) -> Span {
        let base = self.parent.take();
        if let Some(parent) = &base {
            let baggage = parent.baggage();
            for (slot, key) in [
                (&mut self.request_id, REQUEST_ID_KEY),
                (&mut self.user_id, USER_ID_KEY),
                (&mut self.session_id, SESSION_ID_KEY),
            ] {
                if slot.is_none() {
                    *slot = baggage.get(key).map(|v| v.as_str().into());
                }
            }
        }
        let ours = [&self.request_id, &self.user_id, &self.session_id];
        // Normalized here, as records write it, so that the span's attribute says the same.
        let mut component = self
            .component
            .take()
            .map(|c| match normalize_component(&c) {
                Cow::Borrowed(_) => c,
                Cow::Owned(normal) => Arc::from(normal),
            });
        // The span's OpenTelemetry parent, with our ids in its baggage: made current while the
        // span opens, the OpenTelemetry layer takes it as the parent of a contextual span.
        let parent = match base {
            Some(base) => Some(with_ids(&base, ours).unwrap_or(base)),
            None => opentelemetry::Context::map_current(|current| with_ids(current, ours)),
        };
        let span = {
            let _parent = parent.map(opentelemetry::Context::attach);
            // ERROR level: enabled under every filter short of `off` (see `Builder`).
            tracing::error_span!(
                target: CONTEXT_TARGET,
                "request",
                request.id = self.request_id.as_deref(),
                user.id = self.user_id.as_deref(),
                session.id = self.session_id.as_deref(),
                component = component.as_deref(),
            )
        };
        // The tracekit layer completes it: its own values (the event layer does not read them
        // from the fields: these are shared with the records) and its location (not a field,
        // which every subscriber would show).
        span.with_subscriber(|(id, dispatch)| {
            if let Some(handle) = dispatch.downcast_ref::<Handle>() {
                let mut named = 0;
                for (set, bit) in [
                    (self.request_id.is_some(), NAMED_REQUEST_ID),
                    (self.user_id.is_some(), NAMED_USER_ID),
                    (self.session_id.is_some(), NAMED_SESSION_ID),
                    (component.is_some(), NAMED_COMPONENT),
                ] {
                    if set {
                        named |= bit;
                    }
                }
                let own = OwnValues {
                    request_id: self.request_id.take(),
                    user_id: self.user_id.take(),
                    session_id: self.session_id.take(),
                    component: component.take(),
                    fields: std::mem::take(&mut self.fields)
                        .into_iter()
                        .map(|(k, v)| (FieldName::Shared(k), v))
                        .collect(),
                    named,
                    ..OwnValues::default()
                };
                (handle.opened)(dispatch, id, own, location);
            }
        });
        span
    }

    /// Enters the context on this thread until the guard is dropped.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let _cx = tracekit::LogContext::new().request_id("req-1").enter();
    /// tracing::info!("carries request_id req-1");
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn enter(self) -> LogContextGuard {
        LogContextGuard(self.open(Location::caller()).entered())
    }

    /// Runs `f` inside the context.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let n = tracekit::LogContext::new().user_id("u-1").in_scope(|| 40 + 2);
    /// assert_eq!(n, 42);
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        f()
    }

    /// Wraps `future` so that it runs inside the context on every poll, on whichever thread.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let fut = tracekit::LogContext::new().request_id("req-1").instrument(async {
    ///     tracing::info!("inside, across awaits");
    /// });
    /// # drop(fut);
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn instrument<F: Future>(self, future: F) -> Instrumented<F> {
        future.instrument(self.span())
    }
}

/// `base` with `ours` (request, user and session id, those that are set) in its baggage, or
/// `None` when they are there already as they would be written (a nested context that
/// changes none: one pass over the inherited entries, without hashing).
///
/// Copying baggage costs a validated, hashed, allocating insert per entry: the entries this
/// context replaces are not copied, and the values are shared with the records' ids.
fn with_ids(
    base: &opentelemetry::Context,
    ours: [&Option<Arc<str>>; 3],
) -> Option<opentelemetry::Context> {
    const KEYS: [&str; 3] = [REQUEST_ID_KEY, USER_ID_KEY, SESSION_ID_KEY];
    // The id of ours an inherited key is, if it is one this context sets.
    let own = |key: &str| {
        let slot = match key {
            REQUEST_ID_KEY => 0,
            USER_ID_KEY => 1,
            SESSION_ID_KEY => 2,
            _ => return None,
        };
        ours[slot].as_ref()
    };
    let inherited = base.baggage();
    let mut same = 0;
    for (key, (value, metadata)) in inherited {
        if own(key.as_str()).is_some_and(|v| **v == *value.as_str()) && metadata.as_str().is_empty()
        {
            same += 1;
        }
    }
    if same == ours.iter().filter(|v| v.is_some()).count() {
        return None;
    }
    let mut baggage = Baggage::new();
    for (key, (value, metadata)) in inherited {
        if own(key.as_str()).is_none() {
            baggage.insert_with_metadata(key.clone(), value.clone(), metadata.clone());
        }
    }
    for (key, value) in KEYS.into_iter().zip(ours) {
        if let Some(v) = value {
            baggage.insert(key, StringValue::from(Arc::clone(v)));
        }
    }
    Some(base.with_baggage(baggage))
}

/// Keeps a [`LogContext`] entered on this thread; leaving it closes the context's span.
#[must_use = "the context is left as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LogContextGuard(EnteredSpan);

impl LogContextGuard {
    /// The context's span, e.g. to hand to a spawned thread or task.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let cx = tracekit::LogContext::new().request_id("req-1").enter();
    /// let span = cx.span().clone();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| span.in_scope(|| tracing::info!("on another thread, same request")));
    /// });
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn span(&self) -> &Span {
        &self.0
    }
}
