//! [`LogContext`]: the request context carried into every line and every child span.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::StringValue;
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::span::EnteredSpan;
use tracing::{Instrument, Span};

use crate::exporters::FieldWriter;
use crate::layer::{PendingContext, CONTEXT_TARGET, OPENED, PENDING};

/// The OpenTelemetry attribute and baggage key of the request id.
pub const REQUEST_ID_KEY: &str = "request.id";
/// The OpenTelemetry attribute and baggage key of the user id (semantic conventions).
pub const USER_ID_KEY: &str = "user.id";
/// The OpenTelemetry attribute and baggage key of the session id (semantic conventions).
pub const SESSION_ID_KEY: &str = "session.id";

/// A request context: request, user and session ids plus any extra key-values, carried into
/// every record and every child span written inside it (the seed's `LogContext`).
///
/// Entering a context opens a `tracing` span named `request` (target `tracekit::context`)
/// that is an OpenTelemetry span with the attributes `request.id`, `user.id` and `session.id`
/// (plus the extra key-values): its span context is current while it is entered, so child
/// spans, from `tracing` or the OTel API, nest under it, and span processors added with
/// [`Builder::span_processor`](crate::Builder::span_processor) receive it. tracekit keeps this
/// span itself rather than through tracing-opentelemetry, which makes opening and closing a
/// context several times cheaper. The same three keys go into the W3C baggage, so
/// [`inject`](crate::inject) hands them to downstream services. Inside it, every line carries
/// `request_id`, `user_id`, `session_id`, `trace_id` and `span_id`, and the extra key-values
/// in `data`.
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
    pub fn span(self) -> Span {
        self.open(false)
    }

    /// Opens the context's span; `entering`: the caller enters it right away (see
    /// `layer::OPENED`).
    fn open(mut self, entering: bool) -> Span {
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
        // The new OTel span takes the current OTel context (with our baggage) as its parent,
        // read in place: no copy of it to drop again.
        let ours = [&self.request_id, &self.user_id, &self.session_id];
        let parent = match &base {
            Some(base) => with_ids(base, ours),
            None => opentelemetry::Context::map_current(|base| with_ids(base, ours)),
        };
        // The event layer takes the values and the parent as the span opens (see
        // `PendingContext`); the span's fields stay empty unless no tracekit layer is there.
        PENDING.set(Some(PendingContext {
            request_id: self.request_id,
            user_id: self.user_id,
            session_id: self.session_id,
            component: self.component,
            extras: self.fields,
            parent,
            entering,
        }));
        // ERROR level: enabled under every filter short of `off` (see `Builder::build`).
        let span = tracing::error_span!(
            target: CONTEXT_TARGET,
            "request",
            request.id = Empty,
            user.id = Empty,
            session.id = Empty,
            component = Empty,
        );
        if let Some(unclaimed) = PENDING.take() {
            // Another subscriber (or a disabled span): it gets the values as fields.
            for (field, value) in [
                ("request.id", &unclaimed.request_id),
                ("user.id", &unclaimed.user_id),
                ("session.id", &unclaimed.session_id),
                ("component", &unclaimed.component),
            ] {
                if let Some(v) = value {
                    span.record(field, &**v);
                }
            }
        }
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
    pub fn enter(self) -> LogContextGuard {
        let entered = self.open(true).entered();
        OPENED.set(None);
        LogContextGuard(entered)
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
    pub fn instrument<F: Future>(self, future: F) -> Instrumented<F> {
        future.instrument(self.span())
    }
}

/// `base` with `ours` (request, user and session id, those that are set) in its baggage.
///
/// Copying baggage costs a validated, hashed, allocating insert per entry: it is skipped when
/// the ids are already there as they would be written (a nested context that changes none:
/// one pass over the inherited entries, without hashing), and the entries this context
/// replaces are not copied. The values are shared with the records' ids, not copied.
#[inline(always)]
fn with_ids(base: &opentelemetry::Context, ours: [&Option<Arc<str>>; 3]) -> opentelemetry::Context {
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
        return base.clone();
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
    base.with_baggage(baggage)
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

/// A value of a [`LogContext`] key-value.
///
/// ```
/// use tracekit::ContextValue;
/// assert_eq!(ContextValue::from(3_u64), ContextValue::U64(3));
/// assert_eq!(ContextValue::from("a"), ContextValue::Str("a".into()));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ContextValue {
    /// A string.
    Str(Arc<str>),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl ContextValue {
    pub(crate) fn write(&self, w: &mut FieldWriter<'_>, key: &str) {
        match self {
            ContextValue::Str(s) => w.str(key, s),
            ContextValue::I64(n) => w.i64(key, *n),
            ContextValue::U64(n) => w.u64(key, *n),
            ContextValue::F64(n) => w.f64(key, *n),
            ContextValue::Bool(b) => w.bool(key, *b),
        }
    }

    pub(crate) fn to_otel(&self) -> opentelemetry::Value {
        match self {
            ContextValue::Str(s) => opentelemetry::Value::from(Arc::clone(s)),
            ContextValue::I64(n) => (*n).into(),
            // OTel has no unsigned integers: large values become strings rather than wrap.
            ContextValue::U64(n) => match i64::try_from(*n) {
                Ok(i) => i.into(),
                Err(_) => n.to_string().into(),
            },
            ContextValue::F64(n) => (*n).into(),
            ContextValue::Bool(b) => (*b).into(),
        }
    }
}

macro_rules! context_value_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {$(
        impl From<$t> for ContextValue {
            fn from(v: $t) -> Self {
                ContextValue::$variant(<$conv>::from(v))
            }
        }
    )*};
}

context_value_from! {
    &str => Str as Arc<str>,
    String => Str as Arc<str>,
    Arc<str> => Str as Arc<str>,
    i64 => I64 as i64,
    i32 => I64 as i64,
    u64 => U64 as u64,
    u32 => U64 as u64,
    f64 => F64 as f64,
    bool => Bool as bool,
}

impl From<usize> for ContextValue {
    fn from(v: usize) -> Self {
        ContextValue::U64(v as u64)
    }
}
