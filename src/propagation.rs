//! W3C `traceparent` / `tracestate` and `baggage` headers in and out of a service.
//!
//! The helpers use their own trace-context + baggage propagator, so they work with or
//! without [`init`](crate::init) (which installs the same pair as the global propagator).

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The propagator pair `init` installs: W3C trace context, then W3C baggage.
pub(crate) fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

fn shared() -> &'static TextMapCompositePropagator {
    static PROPAGATOR: OnceLock<TextMapCompositePropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(propagator)
}

/// The OpenTelemetry context of the current `tracing` span (with its baggage), or the current
/// OTel context outside any span.
///
/// ```
/// use opentelemetry::trace::TraceContextExt;
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// tracekit::LogContext::new().request_id("req-1").in_scope(|| {
///     let cx = tracekit::current_context();
///     assert!(cx.span().span_context().is_valid()); // the request's span
/// });
/// # });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current_context() -> opentelemetry::Context {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return opentelemetry::Context::current();
    }
    span.context()
}

/// Writes the current trace context and baggage into `carrier` (`traceparent`, `baggage`).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// let _cx = tracekit::LogContext::new().request_id("req-123").enter();
/// let mut headers = HashMap::new();
/// tracekit::inject(&mut headers);
/// assert!(headers["traceparent"].starts_with("00-"));
/// assert!(headers["baggage"].contains("request.id=req-123"));
/// # });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inject(carrier: &mut HashMap<String, String>) {
    inject_context(&current_context(), carrier);
}

/// Writes `cx`'s trace context and baggage into any OpenTelemetry [`Injector`].
///
/// ```
/// use std::collections::HashMap;
///
/// let upstream = HashMap::from([(
///     "traceparent".to_owned(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
/// )]);
/// let cx = tracekit::extract(&upstream);
/// let mut downstream = HashMap::new();
/// tracekit::inject_context(&cx, &mut downstream);
/// assert_eq!(downstream["traceparent"], upstream["traceparent"]);
/// ```
pub fn inject_context(cx: &opentelemetry::Context, carrier: &mut dyn Injector) {
    shared().inject_context(cx, carrier);
}

/// Reads a remote trace context and baggage from `carrier`; hand the result to
/// [`LogContext::parent`](crate::LogContext::parent) to continue the trace and the request.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::trace::TraceContextExt;
///
/// let headers = HashMap::from([
///     ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
///     ("baggage".to_owned(), "request.id=req-123".to_owned()),
/// ]);
/// let cx = tracekit::extract(&headers);
/// assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// let ctx = tracekit::LogContext::new().parent(cx); // request_id req-123 from the baggage
/// # drop(ctx);
/// ```
pub fn extract(carrier: &HashMap<String, String>) -> opentelemetry::Context {
    extract_from(carrier)
}

/// Reads a remote trace context and baggage from any OpenTelemetry [`Extractor`].
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::trace::TraceContextExt;
///
/// let headers = HashMap::from([(
///     "traceparent".to_owned(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
/// )]);
/// let cx = tracekit::extract_from(&headers); // any Extractor: a HashMap, gRPC metadata, ...
/// assert!(cx.span().span_context().is_remote());
/// ```
pub fn extract_from(carrier: &dyn Extractor) -> opentelemetry::Context {
    shared().extract(carrier)
}

/// Writes the current trace context and baggage into HTTP headers.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// let _cx = tracekit::LogContext::new().user_id("user-456").enter();
/// let mut headers = http::HeaderMap::new();
/// tracekit::inject_headers(&mut headers);
/// assert!(headers.contains_key("traceparent"));
/// # });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inject_headers(headers: &mut http::HeaderMap) {
    inject_context(&current_context(), &mut HeaderInjector(headers));
}

/// Reads a remote trace context and baggage from HTTP headers.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?);
/// let cx = tracekit::extract_headers(&headers);
/// # drop(cx);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn extract_headers(headers: &http::HeaderMap) -> opentelemetry::Context {
    extract_from(&HeaderExtractor(headers))
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagator keys are valid header names; a value that is not a valid header value
        // (a non-visible character in a baggage entry) is left out rather than mangled.
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
