//! The panic hook: a panic becomes a `CRITICAL` record before the previous hook runs.

use std::backtrace::Backtrace;
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::time::Duration;

use crate::exporters::{current_thread_id, CodeContext, Exception, Level, Record};
use crate::layer::{current_scope, Scope, Shared};

/// How long the hook waits for the record to reach the file: the process may be about to end.
const PANIC_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the hook; the hook it replaces runs after it.
pub(crate) fn install(shared: Arc<Shared>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        write_panic(&shared, info);
        previous(info);
    }));
}

fn write_panic(shared: &Shared, info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let backtrace = Backtrace::force_capture().to_string();
    let thread = std::thread::current();
    let scope = tracing::dispatcher::get_default(current_scope);
    let scope: Option<&Scope> = scope.as_deref();
    let text = format!("panic: {message}");
    let component = scope.and_then(|s| s.component.as_deref()).unwrap_or("");
    let record = Record::new(Level::CRITICAL, component, &text)
        .logger("panic")
        .context(CodeContext {
            function: scope.and_then(|s| s.function).or(thread.name()),
            file: info.location().map(|l| l.file()),
            line: info.location().map(|l| l.line()),
            thread: Some(current_thread_id()),
            process: Some(shared.pid),
        })
        .exception(Exception {
            kind: "panic",
            message,
            traceback: Some(&backtrace),
        });
    shared.write(scope, record);
    let _ = shared.writer.flush_with_timeout(PANIC_FLUSH_TIMEOUT);
}
