//! The names tracekit gives fields, attributes and targets.

/// The OpenTelemetry attribute and baggage key of the request id.
pub const REQUEST_ID_KEY: &str = "request.id";
/// The OpenTelemetry attribute and baggage key of the user id (semantic conventions).
pub const USER_ID_KEY: &str = "user.id";
/// The OpenTelemetry attribute and baggage key of the session id (semantic conventions).
pub const SESSION_ID_KEY: &str = "session.id";

/// The `component` field of a span or event, and the span attribute of the same name.
pub(crate) const COMPONENT: &str = "component";

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
