//! The panic hook: a panic becomes a `CRITICAL` record before the previous hook runs.

use std::backtrace::Backtrace;
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::time::Duration;

use crate::exporters::{current_thread_id, CodeContext, Exception, Level, Record};
use crate::scope::Scope;
use crate::sink::{current_scope, Sink};

/// How long the hook waits for the record to reach the file: the process may be about to end.
const PANIC_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the hook; the hook it replaces runs after it.
pub(crate) fn install(sink: Arc<Sink>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A decorated call that logs panics will catch this one and write it with its own
        // context (and this backtrace): one record per panic.
        if !crate::decorators::take_over_panic(info) {
            write_panic(&sink, info);
        }
        previous(info);
    }));
}

fn write_panic(sink: &Sink, info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let backtrace = Backtrace::force_capture().to_string();
    let scope = current_scope();
    let location = info.location().map(|l| (l.file(), l.line()));
    write_record(sink, scope.as_deref(), message, location, &backtrace);
}

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
