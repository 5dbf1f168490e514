//! The OpenTelemetry SDK span behind a `tracing` span, once tracekit has completed it (see
//! `completion`), shared by the span's successive scopes.

use std::panic::Location;
use std::sync::OnceLock;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry::KeyValue;

/// A span's SDK span once tracekit has completed it.
#[derive(Debug, Default)]
pub(crate) struct SdkSpan {
    pub(crate) started: OnceLock<Started>,
    /// A request context's location: its caller's.
    pub(crate) location: OnceLock<&'static Location<'static>>,
}

/// A started, completed SDK span.
#[derive(Debug)]
pub(crate) struct Started {
    /// The span's OpenTelemetry context (the SDK span and the baggage).
    pub cx: opentelemetry::Context,
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

impl SdkSpan {
    /// The completed SDK span, if it is.
    #[inline]
    pub(crate) fn get(&self) -> Option<&Started> {
        self.started.get()
    }

    /// Sets a request context's location, for when the SDK span is completed (or now, when
    /// it already is).
    pub(crate) fn locate(&self, location: &'static Location<'static>) {
        let _ = self.location.set(location);
        if let Some(started) = self.get() {
            started
                .cx
                .span()
                .set_attributes(location_attributes(location));
        }
    }
}

pub(crate) fn location_attributes(location: &'static Location<'static>) -> [KeyValue; 2] {
    [
        KeyValue::new("code.file.path", location.file()),
        KeyValue::new("code.line.number", i64::from(location.line())),
    ]
}
