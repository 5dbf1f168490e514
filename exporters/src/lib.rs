//! OpenTelemetry file exporters that write the tracekit record contract: one JSON object per
//! line, in a directory per component, with error and performance side logs, size and daily
//! rotation, compressed archives and retention.
//!
//! Plug [`FileSpanExporter`] and [`FileLogExporter`] into an `SdkTracerProvider` /
//! `SdkLoggerProvider`, or hand [`Record`]s to a [`LogWriter`] yourself. This crate does not
//! depend on `tracing`; the `tracekit` crate builds the tracing bridge on top of it.
//!
//! # Files
//!
//! | path (under the root, default `trace/`) | what |
//! | --- | --- |
//! | `logs/<component>/<component>.log` | every record of the component (rotated at 100 MB) |
//! | `logs/<component>/<component>_daily.log` | the same, rotated at UTC midnight, for components with daily files (default: `app`) |
//! | `logs/errors/errors.log` | a copy of every `ERROR` and `CRITICAL` record (rotated at 50 MB) |
//! | `logs/performance/performance.log` | a copy of every timing record |
//! | `archived/<component>/<stem>.<YYYYMMDDTHHMMSS.ffffffZ>.log.gz` | rotated files, 10 per file kept, none older than 30 days |
//!
//! # Writing records directly
//!
//! ```
//! use tracekit_exporters::{Level, LogWriter, Record, Value};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
//! let data = [("num_candidates", Value::U64(1500))];
//! writer.write(&Record::new(Level::INFO, "candidate", "Generated candidates").data(&data))?;
//! drop(guard); // flushes and stops the writer thread
//!
//! let text = std::fs::read_to_string(dir.path().join("logs/candidate/candidate.log"))?;
//! assert!(text.contains("\"num_candidates\":1500"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # With the OpenTelemetry SDK
//!
//! See [`FileSpanExporter`] and [`FileLogExporter`], and `examples/otel_only.rs`.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod component;
mod encoder;
mod error;
mod exporter_state;
mod last_values;
pub mod layout;
mod level;
mod log_exporter;
mod otel_value;
mod record;
mod semconv;
mod span_exporter;
mod value;
mod writer;

pub use component::{
    is_normal as is_normal_component, normalize_component, FALLBACK_COMPONENT, MAX_COMPONENT_LEN,
    RESERVED_COMPONENTS,
};
pub use encoder::field_writer::{FieldWriter, Key, ListWriter};
pub use encoder::redaction::{Redactor, DEFAULT_REDACT_KEYS, REDACTED};
pub use encoder::RecordEncoder;
// Encoded ahead for the tracing layer's hot path: internals the `tracekit` crate needs.
#[doc(hidden)]
pub use encoder::{encoded_fields::EncodedFields, field_key::FieldKey, record_head::RecordHead};
pub use error::{BuildError, WriteError};
#[doc(hidden)]
pub use last_values::keep_last_values;
pub use level::{Level, ParseLevelError};
pub use log_exporter::FileLogExporter;
pub use record::{current_thread_id, CodeContext, Exception, Fields, Record, SpanInfo, SpanStatus};
pub use span_exporter::FileSpanExporter;
pub use value::Value;
pub use writer::{
    Clock, Compression, DailyFiles, FsyncPolicy, LogWriter, LogWriterBuilder, LossPolicy,
    SystemClock, WriterGuard, WriterStatus, DEFAULT_SHUTDOWN_TIMEOUT,
};
