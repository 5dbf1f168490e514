//! The record: one line of the contract, borrowed from the caller.

use std::fmt;
use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};

use crate::encoder::field_writer::FieldWriter;
use crate::encoder::record_head::RecordHead;
use crate::value::Value;
use crate::Level;

/// One record of the contract, borrowing everything from its producer.
///
/// Build one with [`Record::new`] and the setters, then hand it to
/// [`LogWriter::write`](crate::LogWriter::write), which encodes it on the calling thread and
/// queues the finished line. Nothing is copied until the line is encoded.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Level, Record, Value, RecordEncoder};
///
/// let data = [("num_candidates", Value::U64(1500)), ("duration_ms", Value::F64(45.2))];
/// let record = Record::new(Level::INFO, "candidate", "Generated candidates")
///     .request_id("req-abc-123")
///     .user_id("user-456")
///     .data(&data);
///
/// let mut line = Vec::new();
/// RecordEncoder::default().encode(&record, &mut line);
/// let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
/// assert_eq!(json["data"]["num_candidates"], 1500);
/// assert_eq!(json["request_id"], "req-abc-123");
/// ```
#[derive(Clone, Copy)]
pub struct Record<'a> {
    /// When it happened.
    pub timestamp: SystemTime,
    /// Its level.
    pub level: Level,
    /// Its component, normalised by the encoder (see [`normalize_component`](crate::normalize_component)).
    pub component: &'a str,
    /// The logger's name (a module path or a given name).
    pub logger: Option<&'a str>,
    /// The request it belongs to.
    pub request_id: Option<&'a str>,
    /// The user the request is for.
    pub user_id: Option<&'a str>,
    /// The user's session.
    pub session_id: Option<&'a str>,
    /// The W3C trace id; an invalid (all-zero) id is omitted.
    pub trace_id: Option<TraceId>,
    /// The innermost span's id; an invalid (all-zero) id is omitted.
    pub span_id: Option<SpanId>,
    /// The message.
    pub message: &'a str,
    /// Custom structured fields, written under `data` after redaction.
    pub data: Option<&'a dyn Fields>,
    /// Where it was logged from.
    pub context: Option<CodeContext<'a>>,
    /// The error, for error records.
    pub exception: Option<Exception<'a>>,
    /// The span, for span records.
    pub span: Option<SpanInfo<'a>>,
    /// A timing record: also written to `performance/performance.log`.
    pub timing: bool,
    /// Pre-encoded repeated parts: when set, the encoder writes them instead of `component`,
    /// `logger`, the ids and `context` (see `RecordHead`).
    #[doc(hidden)]
    pub head: Option<&'a RecordHead>,
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("timestamp", &self.timestamp)
            .field("level", &self.level)
            .field("component", &self.component)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("trace_id", &self.trace_id)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl<'a> Record<'a> {
    /// A record stamped now, with nothing but level, component and message.
    pub fn new(level: Level, component: &'a str, message: &'a str) -> Record<'a> {
        Record::at(SystemTime::now(), level, component, message)
    }

    /// A record stamped `timestamp` (no clock read), with nothing but level, component and
    /// message.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tracekit_exporters::{Level, Record, RecordEncoder};
    ///
    /// let t = UNIX_EPOCH + Duration::from_micros(1_764_892_800_123_456);
    /// let record = Record::at(t, Level::INFO, "serving", "done");
    /// let mut line = Vec::new();
    /// RecordEncoder::default().encode(&record, &mut line);
    /// assert!(line.starts_with(br#"{"timestamp":"2025-12-05T00:00:00.123456Z""#));
    /// ```
    pub fn at(
        timestamp: SystemTime,
        level: Level,
        component: &'a str,
        message: &'a str,
    ) -> Record<'a> {
        Record {
            timestamp,
            level,
            component,
            logger: None,
            request_id: None,
            user_id: None,
            session_id: None,
            trace_id: None,
            span_id: None,
            message,
            data: None,
            context: None,
            exception: None,
            span: None,
            timing: false,
            head: None,
        }
    }

    /// Sets the timestamp.
    #[must_use]
    pub fn timestamp(mut self, t: SystemTime) -> Self {
        self.timestamp = t;
        self
    }

    /// Sets the logger name.
    #[must_use]
    pub fn logger(mut self, logger: &'a str) -> Self {
        self.logger = Some(logger);
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn request_id(mut self, id: &'a str) -> Self {
        self.request_id = Some(id);
        self
    }

    /// Sets the user id.
    #[must_use]
    pub fn user_id(mut self, id: &'a str) -> Self {
        self.user_id = Some(id);
        self
    }

    /// Sets the session id.
    #[must_use]
    pub fn session_id(mut self, id: &'a str) -> Self {
        self.session_id = Some(id);
        self
    }

    /// Sets the trace and span ids.
    #[must_use]
    pub fn trace(mut self, trace_id: TraceId, span_id: SpanId) -> Self {
        self.trace_id = Some(trace_id);
        self.span_id = Some(span_id);
        self
    }

    /// Sets the structured data.
    #[must_use]
    pub fn data(mut self, data: &'a dyn Fields) -> Self {
        self.data = Some(data);
        self
    }

    /// Sets the code context.
    #[must_use]
    pub fn context(mut self, context: CodeContext<'a>) -> Self {
        self.context = Some(context);
        self
    }

    /// Sets the exception.
    #[must_use]
    pub fn exception(mut self, exception: Exception<'a>) -> Self {
        self.exception = Some(exception);
        self
    }

    /// Makes this a span record.
    #[must_use]
    pub fn span(mut self, span: SpanInfo<'a>) -> Self {
        self.span = Some(span);
        self
    }

    /// Marks this as a timing record, also written to `performance/performance.log`.
    #[must_use]
    pub fn timing(mut self, timing: bool) -> Self {
        self.timing = timing;
        self
    }

    /// Uses pre-encoded repeated parts (made by
    /// [`RecordEncoder::encode_head`](crate::RecordEncoder::encode_head)) instead of this
    /// record's component, logger, ids and context.
    #[must_use]
    #[doc(hidden)]
    pub fn head(mut self, head: &'a RecordHead) -> Self {
        self.head = Some(head);
        self
    }
}

/// Where a record was logged from: the `context` object.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::CodeContext;
///
/// let ctx = CodeContext { function: Some("generate"), line: Some(123), ..CodeContext::here() };
/// assert_eq!(ctx.process, Some(std::process::id()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeContext<'a> {
    /// The function (or instrumented span) name.
    pub function: Option<&'a str>,
    /// The source file.
    pub file: Option<&'a str>,
    /// The source line.
    pub line: Option<u32>,
    /// The numeric OS thread id.
    pub thread: Option<u64>,
    /// The process id.
    pub process: Option<u32>,
}

impl CodeContext<'_> {
    /// A context holding the current OS thread id and process id.
    pub fn here() -> CodeContext<'static> {
        CodeContext {
            thread: Some(current_thread_id()),
            process: Some(std::process::id()),
            ..CodeContext::default()
        }
    }
}

/// The numeric OS thread id of the calling thread (`gettid` on Linux), cached per thread.
///
/// ```
/// let a = tracekit_exporters::current_thread_id();
/// let b = std::thread::spawn(tracekit_exporters::current_thread_id).join().unwrap();
/// assert_ne!(a, b);
/// ```
pub fn current_thread_id() -> u64 {
    thread_local! {
        static TID: u64 = os_thread_id();
    }
    TID.with(|t| *t)
}

#[cfg(target_os = "linux")]
fn os_thread_id() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

#[cfg(not(target_os = "linux"))]
fn os_thread_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An error: the `exception` object.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::Exception;
///
/// let e = Exception { kind: "ValueError", message: "Invalid candidate count", traceback: None };
/// assert_eq!(e.kind, "ValueError");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception<'a> {
    /// The error's type name (`type` in the record).
    pub kind: &'a str,
    /// The error's message.
    pub message: &'a str,
    /// The backtrace or error chain, as one string.
    pub traceback: Option<&'a str>,
}

/// A span record's `span` object.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tracekit_exporters::{SpanInfo, SpanStatus};
///
/// let start = SystemTime::now();
/// let span = SpanInfo {
///     name: "rank",
///     kind: "internal",
///     parent_span_id: None,
///     start,
///     end: start + Duration::from_micros(1500),
///     status: SpanStatus::Ok,
///     attributes: None,
///     links: &[],
/// };
/// assert_eq!(span.duration_ms(), 1.5);
/// ```
#[derive(Clone, Copy)]
pub struct SpanInfo<'a> {
    /// The span's name.
    pub name: &'a str,
    /// `internal`, `server`, `client`, `producer` or `consumer`.
    pub kind: &'a str,
    /// The parent span, when there is one.
    pub parent_span_id: Option<SpanId>,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// How it ended.
    pub status: SpanStatus<'a>,
    /// Its own attributes, written under `span.attributes` after redaction.
    pub attributes: Option<&'a dyn Fields>,
    /// The spans it links to (`OpenTelemetrySpanExt::add_link`, `follows_from`), written as
    /// `span.links`: `[{"trace_id", "span_id"}]`.
    pub links: &'a [opentelemetry::trace::Link],
}

impl SpanInfo<'_> {
    /// Duration in milliseconds, with microsecond precision; 0 if the end precedes the start.
    pub fn duration_ms(&self) -> f64 {
        self.duration_micros() as f64 / 1000.0
    }

    /// Whole microseconds from start to end (0 when the end is before the start).
    pub(crate) fn duration_micros(&self) -> u128 {
        self.end
            .duration_since(self.start)
            .map_or(0, |d| d.as_micros())
    }
}

impl fmt::Debug for SpanInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanInfo")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("parent_span_id", &self.parent_span_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// How a span ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanStatus<'a> {
    /// Not set.
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed, with a description.
    Error(&'a str),
}

/// Structured fields that write themselves into a [`FieldWriter`].
///
/// Implemented for slices of `(&str, Value)` pairs, for `serde_json` maps, and for anything
/// that needs to stream its fields without building them first (the tracing layer's visitor,
/// the OTel exporters' attribute lists).
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{FieldWriter, Fields};
///
/// struct Counts { input: u64, output: u64 }
///
/// impl Fields for Counts {
///     fn write_fields(&self, w: &mut FieldWriter<'_>) {
///         w.u64("input", self.input);
///         w.u64("output", self.output);
///     }
/// }
/// ```
pub trait Fields {
    /// Writes each field with the writer's methods.
    fn write_fields(&self, w: &mut FieldWriter<'_>);
}

impl<'v> Fields for [(&str, Value<'v>)] {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        for (k, v) in self {
            w.value(k, v);
        }
    }
}

impl<'v> Fields for &[(&str, Value<'v>)] {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        (**self).write_fields(w);
    }
}

impl<'v, const N: usize> Fields for [(&str, Value<'v>); N] {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        self.as_slice().write_fields(w);
    }
}

impl<'v> Fields for Vec<(&str, Value<'v>)> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        self.as_slice().write_fields(w);
    }
}

impl Fields for serde_json::Map<String, serde_json::Value> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        for (k, v) in self {
            w.serialize(k, v);
        }
    }
}
