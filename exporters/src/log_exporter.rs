//! [`FileLogExporter`]: OpenTelemetry log records as records of the contract.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord};

use crate::exporter_state::ExporterState;
use crate::last_values::LastValues;
use crate::otel_value::{any_value_text, AttributeValue};
use crate::semconv::{self, Lift, Lifted};
use crate::{
    current_thread_id, normalize_component, FieldWriter, Fields, Level, LogWriter, Record,
    WriteError,
};

/// Log attributes lift every record key they can feed, and the timing marker.
const LOG_LIFT: Lift = Lift {
    exception: true,
    timing: true,
};

/// An OpenTelemetry [`LogExporter`] that writes each log record as one record of the record
/// contract, through a shared [`LogWriter`].
///
/// # Installing it
///
/// Install it with the SDK's **simple** processor,
/// [`SdkLoggerProvider::builder().with_simple_exporter(..)`](opentelemetry_sdk::logs::LoggerProviderBuilder::with_simple_exporter).
/// The [`LogWriter`] already queues and batches losslessly on its own thread, so the SDK's
/// batch processor would only add a second, lossy queue (2048 records by default) and a
/// thread. The simple processor calls [`export`](LogExporter::export) on the thread that emits
/// the record, under a lock, and drives it with `futures_executor::block_on`; this exporter
/// does all its work (encoding the record and queueing the line) inside that call and never
/// awaits.
///
/// `export` does not wait for the file: it returns once the line is queued. Under the
/// lossless policy (the default) a full queue makes it wait for room, by design, so that no
/// record is lost; under the lossy policy a full queue drops the record and the export fails.
///
/// [`shutdown`](LogExporter::shutdown) flushes the writer but does not stop it: the span and
/// the log exporter usually share one writer, and its [`WriterGuard`](crate::WriterGuard)
/// stops it. After `shutdown`, `export` fails with
/// [`OTelSdkError::AlreadyShutdown`](opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown).
/// `LogExporter` has no `force_flush` and the simple processor's does nothing, so
/// `SdkLoggerProvider::force_flush` does not reach the files: call [`LogWriter::flush`] (or
/// shut the provider down) when the lines must be on disk.
///
/// # The record
///
/// | record key | from |
/// | --- | --- |
/// | `timestamp` | the record's timestamp, else its observed timestamp, else now |
/// | `level` | the severity number (`FATAL` is `CRITICAL`), else the severity text (`WARN`, `error`, `FATAL2` ...), else `INFO` |
/// | `component` | the `component` attribute, else [`with_default_component`](Self::with_default_component), else the writer's default |
/// | `logger` | the record's target, else the instrumentation scope's name |
/// | `request_id`, `user_id`, `session_id` | the `request.id`, `user.id`, `session.id` attributes (strings or integers) |
/// | `trace_id`, `span_id` | the record's trace context, which the SDK's logger fills from the active span |
/// | `message` | the body: a string as it is, any other value as compact JSON (map keys sorted and redacted); without a body, the event name |
/// | `data` | every attribute not lifted into another key, with its type (nested lists and maps stay nested, bytes become text), after redaction |
/// | `context` | `code.function.name`, `code.file.path`, `code.line.number` (or the older `code.function`, `code.filepath`, `code.lineno`), `thread.id` (default: the exporting thread, which under the simple processor is the thread that emitted the record), `process.pid` (default: this process) |
/// | `exception` | `exception.type` (default `Error`), `exception.message` (default: the message), `exception.stacktrace`, when any of them is given |
///
/// When a key appears several times among the attributes, only its last value counts, for
/// the keys above as for `data`.
///
/// A record with the boolean attribute `tracekit.timing` set to `true` is a timing record:
/// it is also written to `logs/performance/performance.log`. The marker itself is not written
/// to `data`; put the measurement (conventionally `duration_ms`) in another attribute.
///
/// # Examples
///
/// ```
/// use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use tracekit_exporters::{FileLogExporter, LogWriter};
///
/// # let dir = tempfile::tempdir()?;
/// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
/// let provider = SdkLoggerProvider::builder()
///     .with_simple_exporter(FileLogExporter::new(writer.clone()))
///     .build();
///
/// let logger = provider.logger("recommendations");
/// let mut record = logger.create_log_record();
/// record.set_severity_number(Severity::Info);
/// record.set_body(AnyValue::from("Generated candidates"));
/// record.add_attribute("component", "candidate");
/// record.add_attribute("num_candidates", 1500_i64);
/// record.add_attribute("duration_ms", 45.2);
/// record.add_attribute("tracekit.timing", true);
/// logger.emit(record);
///
/// provider.shutdown()?; // flushes the writer
/// drop(guard); // stops it
///
/// let text = std::fs::read_to_string(dir.path().join("logs/candidate/candidate.log"))?;
/// let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(line["level"], "INFO");
/// assert_eq!(line["message"], "Generated candidates");
/// assert_eq!(line["data"], serde_json::json!({"num_candidates": 1500, "duration_ms": 45.2}));
/// assert!(dir.path().join("logs/performance/performance.log").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileLogExporter {
    state: ExporterState,
    default_component: Option<String>,
}

impl fmt::Debug for FileLogExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLogExporter")
            .field("root", &self.state.writer().root())
            .field("default_component", &self.default_component())
            .finish_non_exhaustive()
    }
}

impl FileLogExporter {
    /// An exporter writing through `writer` (a clone of the handle; the writer is shared).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, _guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
    /// let exporter = tracekit_exporters::FileLogExporter::new(writer.clone());
    /// assert_eq!(exporter.default_component(), "app");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(writer: LogWriter) -> FileLogExporter {
        FileLogExporter {
            state: ExporterState::new(writer),
            default_component: None,
        }
    }

    /// Sets the component for records without a `component` attribute (normalised like
    /// every component name). Without it, the writer's default component is used.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (writer, _guard) = tracekit_exporters::LogWriter::builder().root(dir.path()).build()?;
    /// let exporter = tracekit_exporters::FileLogExporter::new(writer)
    ///     .with_default_component("PaymentService");
    /// assert_eq!(exporter.default_component(), "payment_service");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_default_component(mut self, component: impl AsRef<str>) -> FileLogExporter {
        self.default_component = Some(normalize_component(component.as_ref()).into_owned());
        self
    }

    /// The component used for records without a `component` attribute.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, _guard) = tracekit_exporters::LogWriter::builder()
    ///     .root(dir.path())
    ///     .default_component("service")
    ///     .build()?;
    /// assert_eq!(tracekit_exporters::FileLogExporter::new(writer).default_component(), "service");
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
    /// let exporter = tracekit_exporters::FileLogExporter::new(writer);
    /// assert_eq!(exporter.writer().root(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> &LogWriter {
        self.state.writer()
    }

    fn write_log(
        &self,
        writer: &LogWriter,
        log: &SdkLogRecord,
        scope: &InstrumentationScope,
    ) -> Result<(), WriteError> {
        let last = LastValues::of(|| log.attributes_iter().map(|(k, _)| k.as_str()));
        let lifted = Lifted::collect(
            last.keep(log.attributes_iter())
                .map(|(k, v)| (k.as_str(), v)),
            LOG_LIFT,
        );
        let message: Cow<'_, str> = match log.body() {
            Some(body) => any_value_text(body, writer.encoder().redactor()),
            None => Cow::Borrowed(log.event_name().unwrap_or("")),
        };
        let timestamp = log
            .timestamp()
            .or(log.observed_timestamp())
            .unwrap_or_else(SystemTime::now);
        let component = lifted
            .component
            .filter(|c| !c.is_empty())
            .or(self.default_component.as_deref())
            .unwrap_or("");
        let data = LogAttributes { log, last: &last };
        // The SDK's simple processor exports on the thread that emits the record.
        let mut record = Record::new(level_of(log), component, &message)
            .timestamp(timestamp)
            .data(&data)
            .context(lifted.code_context(Some(current_thread_id())))
            .timing(lifted.timing);
        if let Some(tc) = log.trace_context() {
            record = record.trace(tc.trace_id, tc.span_id);
        }
        let logger = log
            .target()
            .map(|t| t.as_ref())
            .filter(|t| !t.is_empty())
            .or_else(|| Some(scope.name()).filter(|s| !s.is_empty()));
        record.logger = logger;
        record.request_id = lifted.request_id.as_deref();
        record.user_id = lifted.user_id.as_deref();
        record.session_id = lifted.session_id.as_deref();
        record.exception = lifted.exception(&message);
        writer.write(&record)
    }
}

impl LogExporter for FileLogExporter {
    /// Writes each log record; see the type's documentation for the mapping and for when
    /// this can wait.
    fn export(
        &self,
        batch: LogBatch<'_>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self
            .state
            .write_all("log records", batch.iter(), |writer, (log, scope)| {
                self.write_log(writer, log, scope)
            });
        std::future::ready(result)
    }

    /// Refuses further exports and flushes the writer (at most `timeout`), leaving it running.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.state.shutdown(timeout)
    }
}

/// The level: the severity number, else the severity text, else `INFO`.
fn level_of(log: &SdkLogRecord) -> Level {
    log.severity_number()
        .and_then(|n| Level::from_severity_number(n as u8))
        .or_else(|| log.severity_text().and_then(parse_severity_text))
        .unwrap_or(Level::INFO)
}

/// A level name in any case, with or without the OTel sub-level digit (`WARN2`, `FATAL4`).
fn parse_severity_text(text: &str) -> Option<Level> {
    let text = text.trim();
    text.parse().ok().or_else(|| {
        text.trim_end_matches(|c: char| c.is_ascii_digit())
            .parse()
            .ok()
    })
}

/// The record's attributes that were not lifted into record keys (each key's last value):
/// the `data` object.
struct LogAttributes<'a> {
    log: &'a SdkLogRecord,
    last: &'a LastValues,
}

impl Fields for LogAttributes<'_> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        for (key, value) in self.last.keep(self.log.attributes_iter()) {
            let key = key.as_str();
            if !semconv::is_lifted(key, value, LOG_LIFT) {
                value.write_field(w, key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_text_parses_names_and_sub_levels() {
        assert_eq!(parse_severity_text("warn"), Some(Level::WARNING));
        assert_eq!(parse_severity_text(" Error3 "), Some(Level::ERROR));
        assert_eq!(parse_severity_text("FATAL"), Some(Level::CRITICAL));
        assert_eq!(parse_severity_text("notice"), None);
        assert_eq!(parse_severity_text("42"), None);
    }
}
