//! tracekit: trace logging for services, bridged to OpenTelemetry.
//!
//! Every record is one JSON line in a directory per component under `trace/logs/`, with
//! `ERROR`/`CRITICAL` records copied to `trace/logs/errors/` and timing records to
//! `trace/logs/performance/`. The files follow one record contract (see `trace/README.md`)
//! that the analysis tools, a stock OpenTelemetry Collector and your own scripts read.
//!
//! # With your own subscriber
//!
//! tracekit is a [`Layer`](tracing_subscriber::Layer) ([`TracekitLayer`]): add it to any
//! subscriber built on tracing-subscriber's registry, beside a `fmt` layer, an `EnvFilter`
//! or per-layer filters. The one layer brings the OpenTelemetry bridge: every span (a
//! [`LogContext`] included) is an SDK span, and the standard span APIs work on it.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! let (tracekit, _guard) = tracekit::builder().service_name("recommender").layer()?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::EnvFilter::new("info"))
//!     .with(tracing_subscriber::fmt::layer()) // the console, in development
//!     .with(tracekit)
//!     .init();
//! # Ok::<(), tracekit::InitError>(())
//! ```
//!
//! # In one call
//!
//! [`init`] does the same with an `EnvFilter` of `TRACEKIT_LOG` / `RUST_LOG` (default `info`)
//! and nothing else; then the standard `tracing` macros, [`LogContext`], component
//! [`Logger`]s and the `opentelemetry` API all write the same files:
//!
//! ```no_run
//! use tracekit::LogContext;
//!
//! let _guard = tracekit::init(); // flushes everything when dropped
//!
//! let logger = tracekit::get_logger(module_path!(), "serving");
//! LogContext::new().request_id("req-123").user_id("user-456").in_scope(|| {
//!     logger.info("Request received", ());
//!     tracing::info!(component = "candidate", num_candidates = 1500_u64, "Generated candidates");
//!     tracekit::critical!("Model store unreachable");
//! });
//! ```
//!
//! | piece | what |
//! | --- | --- |
//! | [`builder`], [`Builder::layer`], [`TracekitLayer`], [`Guard`] | the layer for your subscriber, its settings, flush on drop |
//! | [`init`], [`try_init`], [`Builder::build`] | the one-call set-ups |
//! | [`LogContext`] | request, user and session ids in every line and child span, across `.await` |
//! | [`SpanFields`] | which fields of enclosing spans go into event lines |
//! | [`get_logger`], [`Logger`] | the seed's component loggers |
//! | [`critical!`] | the `CRITICAL` level |
//! | [`log_performance`], [`log_errors`], [`trace_execution`] | the seed's decorators as attributes: timing, errors and panics, full tracing of a fn ([`Panicked`], [`FromPanic`] for `reraise = false`) |
//! | [`inject`], [`extract`] (and `_headers`) | W3C `traceparent` and `baggage` between services |
//! | [`exporters`] | the record contract, the writer and the OTel file exporters, usable alone |
//! | `otlp` (feature `otlp`) | live OTLP/HTTP export of spans and logs next to the files, `OTEL_*` variables |
//!
//! # Feature flags
//!
//! | feature | default | what |
//! | --- | --- | --- |
//! | `otlp` | off | live OTLP export (`Builder::otlp_endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT`); brings an HTTP client (reqwest, hyper) and protobuf (prost) |
//!
//! Levels: `tracing`'s `TRACE`, `DEBUG`, `INFO`, `WARN` (written `WARNING`), `ERROR`, and
//! `CRITICAL` from [`critical!`]. A record's component is the event's `component` field, else
//! the innermost span's `component` field, else the [target mapping](Builder::component_for_target),
//! else `app`.
//!
//! Event fields go to `data` with their types (`u64` stays a number), followed by the fields
//! of the spans around the event ([`SpanFields`]); an `&dyn Error` field becomes the record's
//! `exception` (type, message and `source()` chain, plus a `backtrace` field's text when the
//! event has one: `backtrace = %std::backtrace::Backtrace::capture()`).
//!
//! The library never writes to stdout or stderr. The OpenTelemetry SDK's own diagnostics are
//! compiled out: no crate in the build enables opentelemetry's `internal-logs` feature, so
//! they are dropped rather than looped back into the event layer.
//!
//! # Writing records directly
//!
//! ```
//! use tracekit::exporters::{Level, LogWriter, Record};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
//! writer.write(&Record::new(Level::INFO, "serving", "Request received").request_id("req-123"))?;
//! drop(guard);
//! assert!(dir.path().join("logs/serving/serving.log").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, rust_2018_idioms)]

/// The file exporters, the record contract and the rolling writer (crate `tracekit-exporters`).
pub use tracekit_exporters as exporters;

mod builder;
mod completion;
mod context;
mod context_value;
mod decorators;
mod event_fields;
mod events;
mod exception;
mod guard;
mod heads;
mod keys;
mod layer;
mod level;
mod logger;
#[cfg(feature = "otlp")]
pub mod otlp;
mod panic;
mod panic_record;
mod processors;
mod propagation;
mod scope;
mod sdk_span;
mod sink;
mod span_fields;

pub use builder::{
    builder, init, logger_provider, try_init, Builder, InitError, DEFAULT_FILTER,
    DEFAULT_SHUTDOWN_TIMEOUT, ENV_FILTER, ENV_FILTER_FALLBACK,
};
pub use context::{LogContext, LogContextGuard};
pub use context_value::ContextValue;
pub use decorators::{FromPanic, Panicked};
pub use guard::Guard;
pub use keys::{CRITICAL_FIELD, REQUEST_ID_KEY, SESSION_ID_KEY, TIMING_FIELD, USER_ID_KEY};
pub use layer::TracekitLayer;
pub use logger::{get_logger, Logger};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpError, OtlpSampler};
pub use propagation::{
    current_context, extract, extract_from, extract_headers, inject, inject_context, inject_headers,
};
pub use span_fields::SpanFields;

pub use tracekit_macros::{log_errors, log_performance, trace_execution};

#[doc(hidden)]
pub mod __private {
    pub use crate::decorators::{
        Arg, ArgDebug, ArgNeither, ArgSerialize, Call, CatchUnwind, DebugTag, DynError, Loggable,
        NeitherTag, OkOfOther, OkOfResult, OkValue, Outcome, ReportDebug, ReportDisplay,
        ReportDynError, ReportNone, ReportOpaque, ReportStdError, SerializeTag, Site,
    };
    pub use crate::exporters::{FieldWriter, REDACTED};
    pub use tracing;
}
