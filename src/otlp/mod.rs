//! Live OTLP export next to the files (feature `otlp`).
//!
//! When an endpoint is configured ([`Builder::otlp_endpoint`](crate::Builder::otlp_endpoint)
//! or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`), [`init`](crate::init) also sends every span and every
//! `tracing` event (and every record of the OpenTelemetry logs API) over OTLP/HTTP, protobuf
//! by default, JSON with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`.
//!
//! ```no_run
//! // Or leave the code alone and set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318.
//! let _guard = tracekit::builder()
//!     .service_name("recsys")
//!     .otlp_endpoint("http://localhost:4318")
//!     .init();
//! tracing::info!(num_candidates = 1500_u64, "Generated candidates"); // the file and OTLP
//! ```
//!
//! | variable | effect |
//! | --- | --- |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`, `_TRACES_ENDPOINT`, `_LOGS_ENDPOINT` | where; a signal without an endpoint is not exported |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` (and per signal) | `http/protobuf` (default) or `http/json`; `grpc` is refused at set-up (not built in) |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT` (and per signal) | request headers, the export timeout (default 10 s) |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the resource |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | which traces the OTLP stream carries ([`OtlpSampler`]); the files keep every span |
//! | `OTEL_TRACES_EXPORTER=none`, `OTEL_LOGS_EXPORTER=none` | turn a signal's OTLP export off |
//!
//! # Never in the service's way
//!
//! Spans and records reach the OTLP side through a bounded queue that is only ever
//! `try_send`-ed into (2048 spans, 8192 log records): a collector that is down, slow or
//! refusing never blocks the service or touches the files. One thread per signal batches
//! (512 per request, at most 1 s apart) and exports. What a full queue drops and what a
//! failed export loses is counted and written to the files as a `WARNING` record (logger
//! `tracekit::otlp`): the first at once, then at most one a minute, and a last one at
//! shutdown. Shutdown waits for the last export at most the guard's shutdown timeout.
//!
//! # What is sent
//!
//! Spans: the tracing bridge's OpenTelemetry spans, with their attributes (`request.id`,
//! `user.id`, `session.id`, `component`, `code.*`, `thread.id`). Log records: each `tracing`
//! event with its severity (TRACE 1 .. CRITICAL 21) and text, the message as body, the
//! trace context, `request.id`, `user.id`, `session.id`, `component`, `code.*`,
//! `thread.id`, `exception.*` for an error field, and the event's fields as attributes
//! (redacted like the files). [`Logger`](crate::Logger) records and panic records are
//! written to the files only.

mod log_layer;
mod pipeline;
mod sampler;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as _, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::exporters::LogWriter;

pub(crate) use log_layer::{emit_record, OtlpLogLayer};
use pipeline::{block_on, Export, Pipeline, PipelineConfig};
pub use sampler::{OtlpSampler, ENV_SAMPLER, ENV_SAMPLER_ARG};

/// The OTLP settings of the [`Builder`](crate::Builder).
#[derive(Clone, Debug, Default)]
pub(crate) struct OtlpSettings {
    pub endpoint: Option<String>,
    pub enabled: Option<bool>,
    pub sampler: Option<OtlpSampler>,
}

/// Why the OTLP export could not be set up.
///
/// ```
/// let err: tracekit::InitError = tracekit::OtlpError::from_message("protocol \"grpc\" is not supported").into();
/// assert!(err.to_string().contains("grpc"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("OTLP export: {0}")]
pub struct OtlpError(String);

impl OtlpError {
    /// An error with this message (for code that wraps tracekit's set-up).
    ///
    /// ```
    /// let e = tracekit::OtlpError::from_message("bad endpoint");
    /// assert_eq!(e.to_string(), "OTLP export: bad endpoint");
    /// ```
    pub fn from_message(message: impl Into<String>) -> OtlpError {
        OtlpError(message.into())
    }
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
}

impl OtlpSettings {
    /// Which signals to export: (traces, logs).
    fn signals(&self) -> (bool, bool) {
        if self.enabled == Some(false) {
            return (false, false);
        }
        let any = self.endpoint.is_some() || env_set("OTEL_EXPORTER_OTLP_ENDPOINT");
        let traces = (any || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            && !env_is("OTEL_TRACES_EXPORTER", "none");
        let logs = (any || env_set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"))
            && !env_is("OTEL_LOGS_EXPORTER", "none");
        (traces, logs)
    }

    fn protocol(&self, signal_var: &str) -> Result<opentelemetry_otlp::Protocol, OtlpError> {
        let value = std::env::var(signal_var)
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_default();
        match value.trim() {
            "" | "http/protobuf" => Ok(opentelemetry_otlp::Protocol::HttpBinary),
            "http/json" => Ok(opentelemetry_otlp::Protocol::HttpJson),
            other => Err(OtlpError(format!(
                "protocol {other:?} is not supported: use http/protobuf (the default) or http/json"
            ))),
        }
    }

    /// The base URL given in code, with the signal's path.
    fn signal_endpoint(&self, path: &str) -> Option<String> {
        self.endpoint
            .as_deref()
            .map(|e| format!("{}{path}", e.trim_end_matches('/')))
    }

    /// Starts the pipelines the settings and the environment ask for.
    pub(crate) fn start(
        &self,
        resource: &Resource,
        writer: &LogWriter,
    ) -> Result<Option<OtlpRuntime>, OtlpError> {
        let (traces, logs) = self.signals();
        if !traces && !logs {
            return Ok(None);
        }
        let sampler = match &self.sampler {
            Some(s) => s.clone(),
            None => OtlpSampler::from_env().map_err(OtlpError)?,
        };
        let spans = if traces {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(self.protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?);
            if let Some(e) = self.signal_endpoint("/v1/traces") {
                b = b.with_endpoint(e);
            }
            let mut exporter = b.build().map_err(|e| OtlpError(e.to_string()))?;
            exporter.set_resource(resource);
            let config = PipelineConfig {
                signal: "traces",
                items: "spans",
                queue: 2048,
                max_batch: 512,
                delay: Duration::from_secs(1),
                warn_every: Duration::from_secs(60),
            };
            let pipeline = Pipeline::start(config, SpanSink(exporter), writer.clone())
                .map_err(|e| OtlpError(format!("cannot start the export thread: {e}")))?;
            Some(Arc::new(pipeline))
        } else {
            None
        };
        let logs = if logs {
            let mut b = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(self.protocol("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")?);
            if let Some(e) = self.signal_endpoint("/v1/logs") {
                b = b.with_endpoint(e);
            }
            let mut exporter = b.build().map_err(|e| OtlpError(e.to_string()))?;
            exporter.set_resource(resource);
            let config = PipelineConfig {
                signal: "logs",
                items: "log records",
                queue: 8192,
                max_batch: 512,
                delay: Duration::from_secs(1),
                warn_every: Duration::from_secs(60),
            };
            let pipeline = Pipeline::start(config, LogSink(exporter), writer.clone())
                .map_err(|e| OtlpError(format!("cannot start the export thread: {e}")))?;
            Some(Arc::new(pipeline))
        } else {
            None
        };
        Ok(Some(OtlpRuntime {
            spans,
            logs,
            sampler: Arc::new(sampler),
        }))
    }
}

/// The running OTLP pipelines.
#[derive(Debug)]
pub(crate) struct OtlpRuntime {
    spans: Option<Arc<Pipeline<SpanData>>>,
    logs: Option<Arc<Pipeline<LogItem>>>,
    sampler: Arc<OtlpSampler>,
}

impl OtlpRuntime {
    /// The span processor to add after the file exporter, if spans are exported.
    pub(crate) fn span_processor(&self) -> Option<OtlpSpanProcessor> {
        Some(OtlpSpanProcessor {
            pipeline: Arc::clone(self.spans.as_ref()?),
            sampler: Arc::clone(&self.sampler),
        })
    }

    /// The log processor to add after the file exporter, if logs are exported.
    pub(crate) fn log_processor(&self) -> Option<OtlpLogProcessor> {
        Some(OtlpLogProcessor {
            pipeline: Arc::clone(self.logs.as_ref()?),
        })
    }

    /// Exports what is queued and stops, within `timeout`.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        if let Some(p) = &self.spans {
            p.shutdown(timeout);
        }
        if let Some(p) = &self.logs {
            p.shutdown(deadline.saturating_duration_since(std::time::Instant::now()));
        }
    }
}

/// One log record and its scope, as the exporter takes them.
pub(crate) type LogItem = (SdkLogRecord, InstrumentationScope);

struct SpanSink(opentelemetry_otlp::SpanExporter);

impl Export<SpanData> for SpanSink {
    fn export(&mut self, batch: &mut Vec<SpanData>) -> Result<(), String> {
        block_on(self.0.export(std::mem::take(batch))).map_err(|e| e.to_string())
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown();
    }
}

struct LogSink(opentelemetry_otlp::LogExporter);

impl Export<LogItem> for LogSink {
    fn export(&mut self, batch: &mut Vec<LogItem>) -> Result<(), String> {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|(r, s)| (r, s)).collect();
        block_on(self.0.export(LogBatch::new(&refs))).map_err(|e| e.to_string())
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// Queues ended spans that pass the [`OtlpSampler`] for OTLP export; never blocks.
#[derive(Debug)]
pub(crate) struct OtlpSpanProcessor {
    pipeline: Arc<Pipeline<SpanData>>,
    sampler: Arc<OtlpSampler>,
}

impl SpanProcessor for OtlpSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.sampler.samples(&span) {
            self.pipeline.send(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.pipeline
            .flush(Duration::from_secs(5))
            .map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.pipeline.shutdown(timeout);
        Ok(())
    }
}

/// Queues records of the OpenTelemetry logs API (and of the tracing event layer) for OTLP
/// export; never blocks.
#[derive(Debug, Clone)]
pub(crate) struct OtlpLogProcessor {
    pipeline: Arc<Pipeline<LogItem>>,
}

impl LogProcessor for OtlpLogProcessor {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        self.pipeline.send((data.clone(), instrumentation.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.pipeline
            .flush(Duration::from_secs(5))
            .map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.pipeline.shutdown(timeout);
        Ok(())
    }
}
