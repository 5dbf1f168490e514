//! [`Guard`]: keeps tracekit running; dropping it flushes everything to the files.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::exporters::{LogWriter, WriterGuard};
use crate::sink::Sink;

/// Keeps tracekit running; dropping it flushes every span and record to the files, waiting
/// at most the [shutdown timeout](crate::Builder::shutdown_timeout).
///
/// Spans still open when it drops are not written. Records written after it dropped are
/// discarded.
#[must_use = "dropping the guard shuts the log writer down: keep it alive for the program's life"]
pub struct Guard {
    pub(crate) writer: LogWriter,
    pub(crate) writer_guard: Option<WriterGuard>,
    pub(crate) tracer_provider: SdkTracerProvider,
    pub(crate) logger_provider: SdkLoggerProvider,
    pub(crate) timeout: Duration,
    pub(crate) sink: Arc<Sink>,
    #[cfg(feature = "otlp")]
    pub(crate) otlp: Option<crate::otlp::OtlpRuntime>,
    #[cfg(feature = "otlp")]
    pub(crate) otlp_events: Option<SdkLoggerProvider>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("writer", &self.writer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// The log writer (its [`status`](LogWriter::status) counts what was written).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
    /// assert_eq!(guard.writer().root(), dir.path());
    /// guard.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> &LogWriter {
        &self.writer
    }

    /// The tracer provider behind the tracing bridge (also the global one after
    /// [`init`](crate::Builder::init)).
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer, TracerProvider};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (_dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// guard.tracer_provider().tracer("ranking").in_span("score", |_cx| {});
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert!(text.contains(r#""span":{"name":"score""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The logger provider whose records land in the same files: hand it to an OpenTelemetry
    /// log appender or call the logs API on it (after [`init`](crate::Builder::init) it is also
    /// [`tracekit::logger_provider()`](crate::logger_provider)).
    ///
    /// ```
    /// use opentelemetry::logs::{LogRecord, Logger, LoggerProvider, Severity};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (_dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// let logger = guard.logger_provider().logger("billing");
    /// let mut record = logger.create_log_record();
    /// record.set_severity_number(Severity::Warn);
    /// record.set_body("card declined".into());
    /// logger.emit(record);
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert!(text.contains("\"level\":\"WARNING\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.logger_provider
    }

    /// Flushes and stops everything now, within the shutdown timeout; `Drop` does the same.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
    /// guard.shutdown()?; // errors (a full disk, a timeout) are returned instead of dropped
    /// assert!(dir.path().join("logs/app/app.log").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> Result<(), crate::exporters::WriteError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), crate::exporters::WriteError> {
        let Some(writer_guard) = self.writer_guard.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.timeout;
        // The OTLP export gets half the time at most: a collector that does not answer must
        // not keep the files from being flushed. Its processors' own shutdown then returns
        // at once.
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.shutdown(self.timeout / 2);
        }
        #[cfg(feature = "otlp")]
        if let Some(events) = &self.otlp_events {
            let _ = events.shutdown_with_timeout(remaining(deadline));
        }
        // Ended spans and emitted log records are already queued (simple processors export
        // synchronously); the providers' shutdown stops further exports and flushes.
        let _ = self
            .tracer_provider
            .shutdown_with_timeout(remaining(deadline));
        let _ = self
            .logger_provider
            .shutdown_with_timeout(remaining(deadline));
        let result = self.writer.shutdown_with_timeout(remaining(deadline));
        drop(writer_guard);
        result
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
