//! Shared by the `decorators_*` tests: a subscriber per test, records read back from the files.
#![allow(dead_code)]

#[path = "../bridge_support/mod.rs"]
mod bridge_support;

use std::path::Path;

#[allow(unused_imports)]
pub use bridge_support::{check_contract, component_records, file_records, one};
use serde_json::Value;

/// The files one test wrote, read back after its guard flushed them.
pub struct Logs {
    pub dir: tempfile::TempDir,
}

impl Logs {
    /// Every record of every component's main file (span records included).
    pub fn all(&self) -> Vec<Value> {
        component_records(self.dir.path())
    }

    /// The records of the component's main file, without span records.
    pub fn component(&self, component: &str) -> Vec<Value> {
        self.file(&format!("logs/{component}/{component}.log"))
            .into_iter()
            .filter(|r| r.get("span").is_none())
            .collect()
    }

    /// The span records of every component.
    pub fn spans(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|r| r.get("span").is_some())
            .collect()
    }

    pub fn performance(&self) -> Vec<Value> {
        self.file("logs/performance/performance.log")
    }

    /// The error records of `errors/`, without the span records of failed spans (which the
    /// writer copies there too).
    pub fn errors(&self) -> Vec<Value> {
        self.file("logs/errors/errors.log")
            .into_iter()
            .filter(|r| r.get("span").is_none())
            .collect()
    }

    fn file(&self, rel: &str) -> Vec<Value> {
        file_records(&self.dir.path().join(rel))
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `f` with a fresh tracekit subscriber as the thread's default (level directives
/// `filter`, default component `app`), then drops the guard (flushing everything).
pub fn run(filter: &str, f: impl FnOnce()) -> Logs {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter(filter)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    drop(guard);
    Logs { dir }
}

/// The records whose `context.function` is `function`.
pub fn of_function<'a>(records: &'a [Value], function: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["context"]["function"] == function)
        .collect()
}

/// A timing record's duration, checked to be a non-negative float.
pub fn duration_ms(record: &Value) -> f64 {
    let ms = record["data"]["duration_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no duration_ms in {record}"));
    assert!(ms >= 0.0, "{record}");
    ms
}
