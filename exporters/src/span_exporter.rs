//! [`FileSpanExporter`]: finished OpenTelemetry spans as span records of the contract.

use std::fmt;
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::exporter_state::ExporterState;
use crate::last_values::LastValues;
use crate::otel_value::write_value;
use crate::semconv::{self, Lift, Lifted};
use crate::{
    normalize_component, Exception, FieldWriter, Fields, Level, LogWriter, Record, SpanInfo,
    SpanStatus, WriteError,
};

/// An OpenTelemetry [`SpanExporter`] that writes each finished span as one span record of the
/// record contract, through a shared [`LogWriter`].
///
/// # Installing it
///
/// Install it with the SDK's **simple** processor,
/// [`SdkTracerProvider::builder().with_simple_exporter(..)`](opentelemetry_sdk::trace::TracerProviderBuilder::with_simple_exporter).
/// The [`LogWriter`] already queues and batches losslessly on its own thread, so the SDK's
/// batch processor would only add a second, lossy queue (2048 spans by default) and a thread.
/// The simple processor calls [`export`](SpanExporter::export) on the thread that ends the
/// span, under a lock, and drives it with `futures_executor::block_on`; this exporter does all
/// its work (encoding the record and queueing the line) inside that call and never awaits.
///
/// `export` does not wait for the file: it returns once the line is queued. Under the
/// lossless policy (the default) a full queue makes it wait for room, by design, so that no
/// span is lost; under the lossy policy a full queue drops the record and the export fails.
///
/// [`shutdown`](SpanExporter::shutdown) flushes the writer but does not stop it: the span and
/// the log exporter usually share one writer, and its [`WriterGuard`](crate::WriterGuard)
/// stops it. After `shutdown`, `export` fails with
/// [`OTelSdkError::AlreadyShutdown`](opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown).
/// Note that the SDK's simple processor does not forward `force_flush` to its exporter, so
/// `SdkTracerProvider::force_flush` does not reach the files: call [`LogWriter::flush`] (or
/// shut the provider down) when the lines must be on disk.
///
/// # The record
///
/// | record key | from |
/// | --- | --- |
/// | `timestamp` | the span's end time (a span is written when it ends) |
/// | `level` | `ERROR` when the status is an error, else `INFO` |
/// | `component` | the `component` attribute, else [`with_default_component`](Self::with_default_component), else the writer's default |
/// | `logger` | the instrumentation scope's name |
/// | `request_id`, `user_id`, `session_id` | the `request.id`, `user.id`, `session.id` attributes (strings or integers) |
/// | `trace_id`, `span_id` | the span context |
/// | `message` | the span's name |
/// | `context` | `code.function.name`, `code.file.path`, `code.line.number` (or the older `code.function`, `code.filepath`, `code.lineno`), `thread.id`, `process.pid` (default: this process) |
/// | `exception` | the span's last `exception` event (`exception.type`, `exception.message`, `exception.stacktrace`); without one, `exception.*` span attributes |
/// | `span` | `name`, `kind` (`internal`, `server`, `client`, `producer`, `consumer`), `parent_span_id` (when there is a parent), `start`, `end`, `duration_ms`, `status` (`unset`, `ok`, `error` plus `status_message`) `attributes`: every attribute not lifted into a key above, with its type, after redaction (a key set several times: its last value), and `links` (`trace_id`, `span_id` of each linked span) |
///
/// When a key appears several times among the attributes, only its last value counts, for
/// the keys above as for `span.attributes`.
///
/// Span records are never timing records. Span events other than exceptions are not written:
/// the log records written while the span was active already carry its ids.
///
/// # Examples
///
/// ```
/// use opentelemetry::trace::{Span, Status, Tracer, TracerProvider};
/// use opentelemetry::KeyValue;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use tracekit_exporters::{FileSpanExporter, LogWriter};
///
/// # let dir = tempfile::tempdir()?;
/// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(FileSpanExporter::new(writer.clone()))
///     .build();
///
/// let mut span = provider.tracer("recommendations").start("rank_candidates");
/// span.set_attribute(KeyValue::new("component", "ranking"));
/// span.set_attribute(KeyValue::new("num_candidates", 1500_i64));
/// span.set_status(Status::error("model timed out"));
/// span.end();
///
/// provider.shutdown()?; // flushes the writer
/// drop(guard); // stops it
///
/// let text = std::fs::read_to_string(dir.path().join("logs/ranking/ranking.log"))?;
/// let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(line["level"], "ERROR");
/// assert_eq!(line["message"], "rank_candidates");
/// assert_eq!(line["span"]["attributes"]["num_candidates"], 1500);
/// assert_eq!(line["span"]["status_message"], "model timed out");
/// assert!(dir.path().join("logs/errors/errors.log").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileSpanExporter {
    state: ExporterState,
    default_component: Option<String>,
}

impl fmt::Debug for FileSpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSpanExporter")
            .field("root", &self.state.writer().root())
            .field("default_component", &self.default_component())
            .finish_non_exhaustive()
    }
}

impl FileSpanExporter {
    /// An exporter writing through `writer` (a clone of the handle; the writer is shared).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, _guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
    /// let exporter = tracekit_exporters::FileSpanExporter::new(writer.clone());
    /// assert_eq!(exporter.default_component(), "app");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(writer: LogWriter) -> FileSpanExporter {
        FileSpanExporter {
            state: ExporterState::new(writer),
            default_component: None,
        }
    }

    /// Sets the component for spans without a `component` attribute (normalised like every
    /// component name). Without it, the writer's default component is used.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (writer, _guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
    /// let exporter = tracekit_exporters::FileSpanExporter::new(writer)
    ///     .with_default_component("Gateway");
    /// assert_eq!(exporter.default_component(), "gateway");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_default_component(mut self, component: impl AsRef<str>) -> FileSpanExporter {
        self.default_component = Some(normalize_component(component.as_ref()).into_owned());
        self
    }

    /// The component used for spans without a `component` attribute.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, _guard) = tracekit_exporters::LogWriter::builder()
    ///     .root(dir.path())
    ///     .default_component("service")
    ///     .build()?;
    /// assert_eq!(tracekit_exporters::FileSpanExporter::new(writer).default_component(), "service");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn default_component(&self) -> &str {
        self.default_component
            .as_deref()
            .unwrap_or_else(|| self.state.writer().encoder().default_component())
    }

    /// The writer this exporter writes through.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, _guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
    /// let exporter = tracekit_exporters::FileSpanExporter::new(writer);
    /// assert_eq!(exporter.writer().root(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> &LogWriter {
        self.state.writer()
    }

    fn write_span(&self, writer: &LogWriter, span: &SpanData) -> Result<(), WriteError> {
        let exception_event = span
            .events
            .iter()
            .rev()
            .find(|e| e.name == semconv::EXCEPTION_EVENT);
        let lift = Lift {
            exception: exception_event.is_none(),
            timing: false,
        };
        let last = LastValues::of(|| span.attributes.iter().map(|kv| kv.key.as_str()));
        let lifted = Lifted::collect(
            last.keep(span.attributes.iter())
                .map(|kv| (kv.key.as_str(), &kv.value)),
            lift,
        );
        let (level, status) = match &span.status {
            Status::Error { description } => {
                (Level::ERROR, SpanStatus::Error(description.as_ref()))
            }
            Status::Ok => (Level::INFO, SpanStatus::Ok),
            Status::Unset => (Level::INFO, SpanStatus::Unset),
        };
        let status_text = match status {
            SpanStatus::Error(description) => description,
            _ => "",
        };
        let exception = match exception_event {
            Some(event) => Some(event_exception(&event.attributes, status_text)),
            None => lifted.exception(status_text),
        };
        let attributes = SpanAttributes {
            attributes: &span.attributes,
            last: &last,
            lift,
        };
        let parent = span.parent_span_id;
        let info = SpanInfo {
            name: &span.name,
            kind: kind_name(&span.span_kind),
            parent_span_id: (parent != SpanId::INVALID).then_some(parent),
            start: span.start_time,
            end: span.end_time,
            status,
            attributes: Some(&attributes),
            links: &span.links.links,
        };
        let component = lifted
            .component
            .filter(|c| !c.is_empty())
            .or(self.default_component.as_deref())
            .unwrap_or("");
        let mut record = Record::new(level, component, &span.name)
            .timestamp(span.end_time)
            .trace(span.span_context.trace_id(), span.span_context.span_id())
            .context(lifted.code_context(None))
            .span(info);
        let scope = span.instrumentation_scope.name();
        if !scope.is_empty() {
            record = record.logger(scope);
        }
        record.request_id = lifted.request_id.as_deref();
        record.user_id = lifted.user_id.as_deref();
        record.session_id = lifted.session_id.as_deref();
        record.exception = exception;
        writer.write(&record)
    }
}

impl SpanExporter for FileSpanExporter {
    /// Writes each span as a record; see the type's documentation for the mapping and for
    /// when this can wait.
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self
            .state
            .write_all("span records", &batch, |writer, span| {
                self.write_span(writer, span)
            });
        std::future::ready(result)
    }

    /// Refuses further exports and flushes the writer (at most `timeout`), leaving it running.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.state.shutdown(timeout)
    }

    /// Waits until every span exported so far is in the files.
    fn force_flush(&self) -> OTelSdkResult {
        self.state.flush(crate::writer::DEFAULT_SHUTDOWN_TIMEOUT)
    }
}

/// The exception of an `exception` span event.
fn event_exception<'a>(attributes: &'a [KeyValue], status_text: &'a str) -> Exception<'a> {
    let text = |name: &str| {
        attributes
            .iter()
            .rev()
            .find(|kv| kv.key.as_str() == name)
            .and_then(|kv| match &kv.value {
                opentelemetry::Value::String(s) => Some(s.as_str()),
                _ => None,
            })
    };
    Exception {
        kind: text(semconv::EXCEPTION_TYPE).unwrap_or(semconv::DEFAULT_EXCEPTION_TYPE),
        message: text(semconv::EXCEPTION_MESSAGE).unwrap_or(status_text),
        traceback: text(semconv::EXCEPTION_STACKTRACE),
    }
}

fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

/// The span's attributes that were not lifted into record keys (each key's last value).
struct SpanAttributes<'a> {
    attributes: &'a [KeyValue],
    last: &'a LastValues,
    lift: Lift,
}

impl Fields for SpanAttributes<'_> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        for kv in self.last.keep(self.attributes.iter()) {
            let key = kv.key.as_str();
            if !semconv::is_lifted(key, &kv.value, self.lift) {
                write_value(w, key, &kv.value);
            }
        }
    }
}
