//! The OTLP side of `tracing` events: each event the filter lets through becomes an OTLP log
//! record with the same request context and trace ids as its line in the files.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{TraceFlags, TraceId};
use opentelemetry::Key;
use opentelemetry_sdk::logs::SdkLogger;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::exception::{type_name_len, write_source_chain};
use crate::exporters::{current_thread_id, normalize_component, Redactor, REDACTED};
use crate::scope::{fresh_scope, Scope};
use crate::sink::Sink;
use crate::{CRITICAL_FIELD, TIMING_FIELD};

/// Sends every event it sees to an OTLP logger, when there is one. (Not an `Option` of a
/// layer: tracing-subscriber takes a `None` layer directly on the registry for a maximum
/// level of `OFF`, which would turn every event off.)
pub(crate) struct OtlpLogLayer {
    logger: Option<SdkLogger>,
    sink: Arc<Sink>,
    redactor: Redactor,
}

impl fmt::Debug for OtlpLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpLogLayer").finish_non_exhaustive()
    }
}

impl OtlpLogLayer {
    pub(crate) fn new(logger: Option<SdkLogger>, sink: Arc<Sink>) -> OtlpLogLayer {
        let redactor = sink.writer.encoder().redactor().clone();
        OtlpLogLayer {
            logger,
            sink,
            redactor,
        }
    }
}

impl<S> Layer<S> for OtlpLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(logger) = &self.logger else {
            return;
        };
        let scope = ctx.event_span(event).and_then(|span| fresh_scope(&span));
        let meta = event.metadata();
        let mut fields = Fields {
            redactor: &self.redactor,
            attributes: Vec::new(),
            message: String::new(),
            component: None,
            critical: false,
            exception: None,
        };
        event.record(&mut fields);
        let (severity, text) = match *meta.level() {
            tracing::Level::TRACE => (Severity::Trace, "TRACE"),
            tracing::Level::DEBUG => (Severity::Debug, "DEBUG"),
            tracing::Level::INFO => (Severity::Info, "INFO"),
            tracing::Level::WARN => (Severity::Warn, "WARNING"),
            _ if fields.critical => (Severity::Fatal, "CRITICAL"),
            _ => (Severity::Error, "ERROR"),
        };
        let mut record = logger.create_log_record();
        let now = SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_target(meta.target().to_owned());
        record.set_body(AnyValue::from(std::mem::take(&mut fields.message)));
        let mut attrs = std::mem::take(&mut fields.attributes);
        let scope = scope.as_deref();
        if let Some(s) = scope {
            for (key, value) in [
                ("request.id", &s.request_id),
                ("user.id", &s.user_id),
                ("session.id", &s.session_id),
            ] {
                if let Some(v) = value {
                    attrs.push((Key::from_static_str(key), AnyValue::from(v.to_string())));
                }
            }
            if let Some((trace_id, span_id)) = s.trace_ids() {
                record.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
            }
        }
        let component = fields
            .component
            .take()
            .or_else(|| {
                scope
                    .and_then(|s| s.component.as_deref())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| {
                let c = self.sink.component_for_target(meta.target());
                if c.is_empty() {
                    self.sink.writer.encoder().default_component().to_owned()
                } else {
                    c.to_owned()
                }
            });
        let component = normalize_component(&component).into_owned();
        attrs.push((Key::from_static_str("component"), AnyValue::from(component)));
        if let Some(function) = scope.and_then(|s| s.function).or(meta.module_path()) {
            attrs.push((
                Key::from_static_str("code.function.name"),
                AnyValue::from(function),
            ));
        }
        if let Some(file) = meta.file() {
            attrs.push((Key::from_static_str("code.file.path"), AnyValue::from(file)));
        }
        if let Some(line) = meta.line() {
            attrs.push((
                Key::from_static_str("code.line.number"),
                AnyValue::Int(i64::from(line)),
            ));
        }
        attrs.push((
            Key::from_static_str("thread.id"),
            AnyValue::Int(i64::try_from(current_thread_id()).unwrap_or(i64::MAX)),
        ));
        if let Some((kind, message, stack)) = fields.exception.take() {
            attrs.push((Key::from_static_str("exception.type"), AnyValue::from(kind)));
            attrs.push((
                Key::from_static_str("exception.message"),
                AnyValue::from(message),
            ));
            if !stack.is_empty() {
                attrs.push((
                    Key::from_static_str("exception.stacktrace"),
                    AnyValue::from(stack),
                ));
            }
        }
        // The fields of the spans around the event that it does not set itself.
        for (name, value) in scope.and_then(|s| s.fields.as_deref()).unwrap_or_default() {
            if meta.fields().field(&**name).is_none() {
                let value = if self.redactor.is_redacted(name) {
                    AnyValue::from(REDACTED)
                } else {
                    span_field_value(value)
                };
                attrs.push((Key::from(name.to_string()), value));
            }
        }
        record.add_attributes(attrs);
        logger.emit(record);
    }
}

/// A span field's value as an OTLP attribute value (as the span's attribute has it).
fn span_field_value(value: &crate::ContextValue) -> AnyValue {
    match value.to_otel() {
        opentelemetry::Value::I64(n) => AnyValue::Int(n),
        opentelemetry::Value::F64(n) => AnyValue::Double(n),
        opentelemetry::Value::Bool(b) => AnyValue::Boolean(b),
        other => AnyValue::from(other.to_string()),
    }
}

/// An event's fields as OTLP attributes, with the record keys kept aside.
struct Fields<'r> {
    redactor: &'r Redactor,
    attributes: Vec<(Key, AnyValue)>,
    message: String,
    component: Option<String>,
    critical: bool,
    /// (type, message, stacktrace) of the first error field.
    exception: Option<(String, String, String)>,
}

impl Fields<'_> {
    fn push(&mut self, field: &Field, value: AnyValue) {
        let name = field.name();
        let value = if self.redactor.is_redacted(name) {
            AnyValue::from(REDACTED)
        } else {
            value
        };
        self.attributes.push((Key::from_static_str(name), value));
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, AnyValue::Double(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, AnyValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = match i64::try_from(value) {
            Ok(i) => AnyValue::Int(i),
            Err(_) => AnyValue::from(value.to_string()),
        };
        self.push(field, v);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            CRITICAL_FIELD => self.critical = value,
            TIMING_FIELD if !value => {}
            _ => self.push(field, AnyValue::Boolean(value)),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "component" => self.component = Some(value.to_owned()),
            _ => self.push(field, AnyValue::from(value.to_owned())),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.exception.is_some() {
            self.push(field, AnyValue::from(value.to_string()));
            return;
        }
        let debug = format!("{value:?}");
        let len = type_name_len(&debug);
        let kind = if len == 0 { "Error" } else { &debug[..len] };
        let mut stack = String::new();
        write_source_chain(&mut stack, value);
        self.exception = Some((kind.to_owned(), value.to_string(), stack));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "component" => self.component = Some(format!("{value:?}")),
            _ => {
                let text = format!("{value:?}");
                let text = self.redactor.scrub_debug(&text).into_owned();
                self.push(field, AnyValue::from(text));
            }
        }
    }
}

/// Sends a record written straight to the files (by a [`Logger`](crate::Logger), the
/// decorators or the panic hook, which bypass `tracing` events) to the OTLP logger, with the
/// same attributes as an event's.
pub(crate) fn emit_record(
    logger: &SdkLogger,
    encoder: &crate::exporters::RecordEncoder,
    scope: Option<&Scope>,
    r: &crate::exporters::Record<'_>,
) {
    use crate::exporters::Level;
    let (severity, text) = match r.level {
        Level::TRACE => (Severity::Trace, "TRACE"),
        Level::DEBUG => (Severity::Debug, "DEBUG"),
        Level::INFO => (Severity::Info, "INFO"),
        Level::WARNING => (Severity::Warn, "WARNING"),
        Level::ERROR => (Severity::Error, "ERROR"),
        _ => (Severity::Fatal, "CRITICAL"),
    };
    let mut record = logger.create_log_record();
    record.set_timestamp(r.timestamp);
    record.set_observed_timestamp(SystemTime::now());
    record.set_severity_number(severity);
    record.set_severity_text(text);
    if let Some(target) = r.logger {
        record.set_target(target.to_owned());
    }
    record.set_body(AnyValue::from(r.message.to_owned()));
    let mut attrs: Vec<(Key, AnyValue)> = Vec::new();
    // The data as the files have it (redacted), one attribute per top-level key.
    if let Some(data) = r.data {
        let mut line = Vec::new();
        encoder.encode(
            &crate::exporters::Record::new(r.level, "c", "").data(data),
            &mut line,
        );
        if let Ok(serde_json::Value::Object(mut top)) = serde_json::from_slice(&line) {
            if let Some(serde_json::Value::Object(data)) = top.remove("data") {
                for (key, value) in data.into_iter().filter(|(_, v)| !v.is_null()) {
                    attrs.push((Key::from(key), json_to_any(value)));
                }
            }
        }
    }
    let ids = [
        (
            "request.id",
            scope.and_then(|s| s.request_id.as_deref()).or(r.request_id),
        ),
        (
            "user.id",
            scope.and_then(|s| s.user_id.as_deref()).or(r.user_id),
        ),
        (
            "session.id",
            scope.and_then(|s| s.session_id.as_deref()).or(r.session_id),
        ),
    ];
    for (key, value) in ids {
        if let Some(v) = value {
            attrs.push((Key::from_static_str(key), AnyValue::from(v.to_owned())));
        }
    }
    let trace = scope
        .and_then(Scope::trace_ids)
        .or(r.trace_id.zip(r.span_id));
    if let Some((trace_id, span_id)) = trace.filter(|(t, _)| *t != TraceId::INVALID) {
        record.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
    }
    let component = if r.component.is_empty() {
        encoder.default_component().to_owned()
    } else {
        normalize_component(r.component).into_owned()
    };
    attrs.push((Key::from_static_str("component"), AnyValue::from(component)));
    if let Some(ctx) = r.context {
        if let Some(function) = ctx.function {
            attrs.push((
                Key::from_static_str("code.function.name"),
                AnyValue::from(function.to_owned()),
            ));
        }
        if let Some(file) = ctx.file {
            attrs.push((
                Key::from_static_str("code.file.path"),
                AnyValue::from(file.to_owned()),
            ));
        }
        if let Some(line) = ctx.line {
            attrs.push((
                Key::from_static_str("code.line.number"),
                AnyValue::Int(i64::from(line)),
            ));
        }
        if let Some(thread) = ctx.thread {
            attrs.push((
                Key::from_static_str("thread.id"),
                AnyValue::Int(i64::try_from(thread).unwrap_or(i64::MAX)),
            ));
        }
    }
    if let Some(exc) = r.exception {
        attrs.push((
            Key::from_static_str("exception.type"),
            AnyValue::from(exc.kind.to_owned()),
        ));
        attrs.push((
            Key::from_static_str("exception.message"),
            AnyValue::from(exc.message.to_owned()),
        ));
        if let Some(tb) = exc.traceback {
            attrs.push((
                Key::from_static_str("exception.stacktrace"),
                AnyValue::from(tb.to_owned()),
            ));
        }
    }
    record.add_attributes(attrs);
    logger.emit(record);
}

/// A JSON value (as the files hold it) as an OTLP value.
fn json_to_any(value: serde_json::Value) -> AnyValue {
    match value {
        serde_json::Value::Null => AnyValue::from("null"),
        serde_json::Value::Bool(b) => AnyValue::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => n
                .as_f64()
                .filter(|_| n.as_u64().is_none())
                .map_or_else(|| AnyValue::from(n.to_string()), AnyValue::Double),
        },
        serde_json::Value::String(s) => AnyValue::from(s),
        serde_json::Value::Array(items) => {
            AnyValue::ListAny(Box::new(items.into_iter().map(json_to_any).collect()))
        }
        serde_json::Value::Object(map) => AnyValue::Map(Box::new(
            map.into_iter()
                .map(|(k, v)| (Key::from(k), json_to_any(v)))
                .collect(),
        )),
    }
}
