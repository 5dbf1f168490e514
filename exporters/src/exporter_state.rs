//! The exporter contract both file exporters share: writes go to a shared [`LogWriter`],
//! `export` after `shutdown` fails with `AlreadyShutdown`, `shutdown` and `force_flush` flush
//! the writer without stopping it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

use crate::{LogWriter, WriteError};

#[derive(Debug)]
pub(crate) struct ExporterState {
    writer: LogWriter,
    shut_down: AtomicBool,
}

impl ExporterState {
    pub(crate) fn new(writer: LogWriter) -> ExporterState {
        ExporterState {
            writer,
            shut_down: AtomicBool::new(false),
        }
    }

    pub(crate) fn writer(&self) -> &LogWriter {
        &self.writer
    }

    /// Writes every item with `write`; fails with `AlreadyShutdown` after [`shutdown`].
    ///
    /// An item that is not accepted (a full queue under the lossy policy) does not stop the
    /// others; a stopped writer does. The error counts what was not written.
    ///
    /// [`shutdown`]: Self::shutdown
    pub(crate) fn write_all<T>(
        &self,
        what: &str,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&LogWriter, T) -> Result<(), WriteError>,
    ) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let mut items = items.into_iter();
        let (mut written, mut failed) = (0usize, 0usize);
        let mut first_error = None;
        while let Some(item) = items.next() {
            match write(&self.writer, item) {
                Ok(()) => written += 1,
                Err(e) => {
                    failed += 1;
                    let stopped = e == WriteError::Shutdown;
                    first_error.get_or_insert(e);
                    if stopped {
                        failed += items.count();
                        break;
                    }
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(OTelSdkError::InternalFailure(format!(
                "tracekit file exporter: {failed} of {} {what} not written: {e}",
                written + failed
            ))),
        }
    }

    /// Waits until everything written so far is in the files, at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.writer
            .flush_with_timeout(timeout)
            .map_err(|e| {
                match e {
            WriteError::Timeout(d) => OTelSdkError::Timeout(d),
            WriteError::Shutdown => OTelSdkError::InternalFailure(
                "tracekit file exporter: the log writer stopped before every record was written"
                    .to_owned(),
            ),
            other => OTelSdkError::InternalFailure(format!("tracekit file exporter: {other}")),
        }
            })
    }

    /// Refuses further exports and flushes. The writer keeps running: other exporters may
    /// share it, and its [`WriterGuard`](crate::WriterGuard) stops it.
    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Release);
        self.flush(timeout)
    }
}
