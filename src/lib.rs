//! tracekit
