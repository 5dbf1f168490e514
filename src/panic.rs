//! The panic hook: a panic becomes a `CRITICAL` record before the previous hook runs.

use std::backtrace::Backtrace;
use std::panic::PanicHookInfo;
use std::sync::Arc;

use crate::panic_record::write_record;
use crate::sink::{current_scope, Sink};

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
