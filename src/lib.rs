//! tracekit

pub mod analyzer;
