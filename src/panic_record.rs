//! The record of a panic, written by the panic hook and by the decorators (which catch a
//! panic the hook handed over to them).

use std::time::Duration;

use crate::exporters::{current_thread_id, CodeContext, Exception, Level, Record};
use crate::scope::Scope;
use crate::sink::Sink;

/// How long the record may wait to reach the file: the process may be about to end.
pub(crate) const PANIC_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes the `CRITICAL` record of a panic (also for a panic a decorator was handed but that
/// was caught before it reached the decorator) and flushes.
pub(crate) fn write_record(
    sink: &Sink,
    scope: Option<&Scope>,
    message: &str,
    location: Option<(&str, u32)>,
    backtrace: &str,
) {
    let thread = std::thread::current();
    let text = format!("panic: {message}");
    let component = scope.and_then(|s| s.component.as_deref()).unwrap_or("");
    let record = Record::new(Level::CRITICAL, component, &text)
        .logger("panic")
        .context(CodeContext {
            function: scope.and_then(|s| s.function).or(thread.name()),
            file: location.map(|l| l.0),
            line: location.map(|l| l.1),
            thread: Some(current_thread_id()),
            process: Some(sink.pid),
        })
        .exception(Exception {
            kind: "panic",
            message,
            traceback: Some(backtrace),
        });
    sink.write_direct(scope, record);
    let _ = sink.writer.flush_with_timeout(PANIC_FLUSH_TIMEOUT);
}
