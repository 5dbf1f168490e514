//! [`Sink`]: where a tracekit layer's records go, shared with the writers that bypass `tracing`
//! events ([`Logger`](crate::Logger), the decorators, the panic hook), which find it, and the
//! current span's scope, through the current dispatcher ([`with_current`]).

use std::panic::Location;
use std::sync::Arc;

use tracing::span::Id;
use tracing::Dispatch;

use crate::exporters::{LogWriter, Record};
use crate::scope::{OwnValues, Scope, WithScopeFields};

/// What the layer shares with [`Logger`](crate::Logger)s, the decorators and the panic hook.
#[derive(Debug)]
pub(crate) struct Sink {
    pub writer: LogWriter,
    /// `(target prefix, component)`, longest prefix first.
    pub targets: Vec<(String, String)>,
    /// The static level directives, for [`Logger`](crate::Logger)s without a level of their own.
    pub logger_levels: tracing_subscriber::filter::Targets,
    pub pid: u32,
    /// Tells this layer's cached record heads from another's.
    pub serial: u64,
    /// The live OTLP log stream, for the records that bypass `tracing` events (see
    /// [`Sink::write_direct`]); events reach it through their own layer.
    #[cfg(feature = "otlp")]
    pub otlp_records: std::sync::OnceLock<opentelemetry_sdk::logs::SdkLogger>,
}

impl Sink {
    /// The component configured for `target`, or `""` (the writer's default component).
    pub(crate) fn component_for_target(&self, target: &str) -> &str {
        for (prefix, component) in &self.targets {
            if let Some(rest) = target.strip_prefix(prefix.as_str()) {
                if rest.is_empty() || rest.starts_with("::") {
                    return component;
                }
            }
        }
        ""
    }

    /// Writes a record that bypasses `tracing` events ([`Logger`](crate::Logger), the
    /// decorators, the panic hook) in `scope`, with the scope's fields after the record's own
    /// `data`; and to the live OTLP log stream when there is one.
    pub(crate) fn write_direct(&self, scope: Option<&Scope>, record: Record<'_>) {
        let with_fields = scope
            .filter(|s| s.fields.is_some())
            .map(|scope| WithScopeFields {
                data: record.data,
                scope,
            });
        let mut record = record;
        if let Some(with_fields) = &with_fields {
            record.data = Some(with_fields);
        }
        self.write(scope, record);
        #[cfg(feature = "otlp")]
        if let Some(logger) = self.otlp_records.get() {
            crate::otlp::emit_record(logger, self.writer.encoder(), scope, &record);
        }
    }

    /// Writes one record in `scope`, and marks the scope's span as failed for errors.
    pub(crate) fn write<'a>(&self, scope: Option<&'a Scope>, mut record: Record<'a>) {
        // A record with a head (the event layer's) already carries the scope's ids.
        if let (Some(scope), None) = (scope, record.head) {
            record = scope.ids(record);
        }
        // Lossless by default: a full queue waits. A writer that is shut down drops the record,
        // and the library has nowhere else to report that (it never writes to stderr).
        let _ = self.writer.write(&record);
        if record.level.is_error() {
            if let Some(scope) = scope {
                scope.set_error(record.message);
            }
        }
    }
}

/// What a tracekit layer answers to `Dispatch::downcast_ref`: its [`Sink`] and, for the
/// subscriber it is part of, how to find a span's scope.
#[derive(Debug)]
pub(crate) struct Handle {
    pub sink: Arc<Sink>,
    /// The scope of the current span of a dispatcher.
    pub current: fn(&Dispatch) -> Option<Arc<Scope>>,
    /// Completes a [`LogContext`](crate::LogContext)'s span once it is open: its own values
    /// (ids, component and key-values, whose keys are known only at run time) into its scope,
    /// and its location (the caller's) for its OpenTelemetry span.
    pub opened: fn(&Dispatch, &Id, OwnValues, &'static Location<'static>),
}

/// Calls `f` with the layer's sink and the current span's scope, when the current dispatcher
/// has a tracekit layer: the path of writers that bypass `tracing` events
/// ([`Logger`](crate::Logger), the decorators, the panic hook). `None` without one.
pub(crate) fn with_current<R>(f: impl FnOnce(&Sink, Option<&Scope>) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let handle = dispatch.downcast_ref::<Handle>()?;
        let scope = (handle.current)(dispatch);
        f.take().map(|f| f(&handle.sink, scope.as_deref()))
    })
}

/// The current span's scope under the current dispatcher, if it has a tracekit layer.
pub(crate) fn current_scope() -> Option<Arc<Scope>> {
    tracing::dispatcher::get_default(|dispatch| {
        let handle = dispatch.downcast_ref::<Handle>()?;
        (handle.current)(dispatch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_prefixes_match_whole_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _guard) = LogWriter::builder().root(dir.path()).build().unwrap();
        let sink = Sink {
            writer,
            targets: vec![
                ("myapp::ranking::model".into(), "model".into()),
                ("myapp::ranking".into(), "ranking".into()),
            ],
            logger_levels: Default::default(),
            pid: 1,
            serial: crate::scope::next_serial(),
            #[cfg(feature = "otlp")]
            otlp_records: std::sync::OnceLock::new(),
        };
        assert_eq!(sink.component_for_target("myapp::ranking"), "ranking");
        assert_eq!(sink.component_for_target("myapp::ranking::x"), "ranking");
        assert_eq!(sink.component_for_target("myapp::ranking::model"), "model");
        assert_eq!(sink.component_for_target("myapp::rankings"), "");
        assert_eq!(sink.component_for_target("other"), "");
    }
}
