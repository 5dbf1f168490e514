//! tracekit: trace logging for services, bridged to OpenTelemetry.
//!
//! Every record is one JSON line in a directory per component under `trace/logs/`, with
//! `ERROR`/`CRITICAL` records copied to `trace/logs/errors/` and timing records to
//! `trace/logs/performance/`. The files follow one record contract (see `trace/README.md`)
//! that the bundled analysis tools, a stock OpenTelemetry Collector and your own scripts read.
//!
//! # Quick start
//!
//! One call sets everything up; then the standard `tracing` macros, [`LogContext`], component
//! [`Logger`]s and the `opentelemetry` API all write the same files:
//!
//! ```no_run
//! use tracekit::LogContext;
//!
//! fn main() -> Result<(), tracekit::InitError> {
//!     let _guard = tracekit::init()?; // flushes everything when dropped
//!
//!     let logger = tracekit::get_logger(module_path!(), "serving");
//!     LogContext::new().request_id("req-123").user_id("user-456").in_scope(|| {
//!         logger.info("Request received", ());
//!         tracing::info!(component = "candidate", num_candidates = 1500_u64, "Generated candidates");
//!         tracekit::critical!("Model store unreachable");
//!     });
//!     Ok(())
//! }
//! ```
//!
//! | piece | what |
//! | --- | --- |
//! | [`init`], [`builder`], [`Guard`] | set-up from the environment, flush on drop |
//! | [`LogContext`] | request, user and session ids in every line and child span, across `.await` |
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
//! Event fields go to `data` with their types (`u64` stays a number); an `&dyn Error` field
//! becomes the record's `exception` (type, message and `source()` chain, plus a `backtrace`
//! field's text when the event has one: `backtrace = %std::backtrace::Backtrace::capture()`).
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

mod context;
mod context_span;
mod decorators;
mod filter;
mod init;
mod layer;
mod level;
mod logger;
mod otel_spans;
#[cfg(feature = "otlp")]
pub mod otlp;
mod panic;
mod propagation;

pub use context::{
    ContextValue, LogContext, LogContextGuard, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY,
};
pub use decorators::{FromPanic, Panicked};
pub use init::{
    builder, init, logger_provider, try_init, Builder, Guard, InitError, DEFAULT_FILTER,
    DEFAULT_SHUTDOWN_TIMEOUT, ENV_FILTER, ENV_FILTER_FALLBACK,
};
pub use layer::{CRITICAL_FIELD, TIMING_FIELD};
pub use logger::{get_logger, Logger};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpError, OtlpSampler};
pub use propagation::{
    current_context, extract, extract_from, extract_headers, inject, inject_context, inject_headers,
};

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
