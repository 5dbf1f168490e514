//! Shared helpers of the `bridge_*` integration tests: reading and checking record files.
#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;

/// Every record of every component's main file (not `errors/`, `performance/` or daily files),
/// checked against the record contract.
pub fn component_records(root: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let logs = root.join("logs");
    let Ok(dirs) = std::fs::read_dir(&logs) else {
        return out;
    };
    let mut dirs: Vec<_> = dirs.map(|d| d.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        if name == "errors" || name == "performance" {
            continue;
        }
        let file = dir.join(format!("{name}.log"));
        for record in file_records(&file) {
            assert_eq!(
                record["component"],
                name.as_str(),
                "record in the wrong directory"
            );
            out.push(record);
        }
    }
    out
}

/// The records of one file, each checked against the contract.
pub fn file_records(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines().map(check_contract).collect()
}

/// The record with this message; panics unless there is exactly one.
pub fn one<'a>(records: &'a [Value], message: &str) -> &'a Value {
    let found: Vec<_> = records.iter().filter(|r| r["message"] == message).collect();
    assert_eq!(
        found.len(),
        1,
        "records with message {message:?}: {found:#?}"
    );
    found[0]
}

const KEYS: [&str; 15] = [
    "timestamp",
    "level",
    "component",
    "logger",
    "request_id",
    "user_id",
    "session_id",
    "trace_id",
    "span_id",
    "message",
    "data",
    "context",
    "exception",
    "span",
    "",
];

/// Parses one line and checks the contract: key order and types, timestamp format, level
/// names, component names, id formats.
pub fn check_contract(line: &str) -> Value {
    let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let obj = value.as_object().expect("a record is an object");
    let KeysInOrder(keys) = serde_json::from_str(line).unwrap();
    let mut last = 0;
    for key in &keys {
        let pos = KEYS
            .iter()
            .position(|k| k == key)
            .unwrap_or_else(|| panic!("unknown key {key} in {line}"));
        assert!(pos >= last, "key {key} out of order in {line}");
        last = pos;
    }
    let ts = obj["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(
        ts.ends_with('Z') && &ts[10..11] == "T" && &ts[19..20] == ".",
        "{ts}"
    );
    let level = obj["level"].as_str().unwrap();
    assert!(
        ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level),
        "{level}"
    );
    let component = obj["component"].as_str().unwrap();
    assert!(
        tracekit::exporters::is_normal_component(component),
        "{component}"
    );
    for (key, len) in [("trace_id", 32), ("span_id", 16)] {
        if let Some(id) = obj.get(key) {
            let id = id.as_str().unwrap();
            assert_eq!(id.len(), len, "{key} {id}");
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
    assert!(obj["message"].is_string());
    value
}

/// The top-level keys of a JSON object, in the order they are written.
struct KeysInOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeysInOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeysInOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeysInOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(KeysInOrder(keys))
            }
        }
        d.deserialize_map(V)
    }
}
