//! The span processors tracekit adds to its tracer provider around the exporters.

use std::time::Duration;

use opentelemetry::trace::Span as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::exporters::current_thread_id;

/// Stamps every span with the OS thread that started it (`thread.id`, the number the records'
/// `context.thread` holds), whichever API started it: `tracing` spans and the OpenTelemetry
/// API's alike, then hands it to the processor it wraps (the files' own). Registered first, so
/// the processors after it see the attribute; one processor, not two, because the SDK hands
/// every processor after the first its own copy of each ended span.
#[derive(Debug)]
pub(crate) struct ThreadStamp<P>(pub P);

impl<P: SpanProcessor> SpanProcessor for ThreadStamp<P> {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        let thread = i64::try_from(current_thread_id()).unwrap_or(i64::MAX);
        span.set_attribute(KeyValue::new("thread.id", thread));
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// Hands the processor each ended span with one value per attribute key, the last one set: the SDK
/// keeps every `set_attribute` call, and tracekit sets some attributes again with their
/// proper type after tracing-opentelemetry set them (an unsigned field is set as its `Debug`
/// text there). The specification says a later value for a key replaces the earlier one.
#[derive(Debug)]
pub(crate) struct LastValueWins(pub Box<dyn SpanProcessor>);

impl SpanProcessor for LastValueWins {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        crate::exporters::keep_last_values(&mut span.attributes);
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    #[derive(Debug, Default, Clone)]
    struct Probe(Arc<Mutex<Vec<SpanData>>>);

    impl SpanProcessor for Probe {
        fn on_start(&self, _: &mut Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn processors_get_the_last_value_of_a_key() {
        let probe = Probe::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(LastValueWins(Box::new(probe.clone())))
            .build();
        let mut span = provider.tracer("t").start("checkout");
        span.set_attribute(KeyValue::new("order_id", "42"));
        span.set_attribute(KeyValue::new("component", "ranking"));
        span.set_attribute(KeyValue::new("order_id", 42_i64));
        span.end();
        assert_eq!(
            probe.0.lock().unwrap()[0].attributes,
            [
                KeyValue::new("component", "ranking"),
                KeyValue::new("order_id", 42_i64)
            ]
        );
    }
}
