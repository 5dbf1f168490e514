//! `log_analyzer export --otlp-json`: every line parses strictly with the official OTLP
//! protobuf definitions (PyPI opentelemetry-proto, `google.protobuf.json_format.Parse`), and
//! ids, times, severities and attributes round-trip.
//!
//! OTLP/JSON writes trace and span ids as hex, where the generic protobuf JSON mapping reads
//! bytes as base64 (the OTLP specification calls this out). `json_format.Parse` therefore
//! decodes the hex text as base64; the ids round-trip when the decoded bytes encode back to
//! the very same text, which the script prints and the test compares with the records.

#[path = "../../tests/interop_support/mod.rs"]
mod interop_support;

use std::error::Error;
use std::fmt;
use std::process::Command;

use interop_support::{main_records, peers, record_nanos, severity};
use serde_json::Value;
use tracekit::LogContext;

/// Parses each line with the protobuf definitions (unknown fields are errors) and prints,
/// per line, what it decoded: ids as hex, times and severities as numbers.
const PARSE: &str = r#"
import base64, json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

def text(b):
    # The id's text as the generic protobuf JSON mapping reads and writes it (base64).
    return base64.b64encode(b).decode()

def attrs(kvs):
    return {kv.key: json_format.MessageToDict(kv.value) for kv in kvs}

out = []
for n, line in enumerate(open(sys.argv[1]), 1):
    body = json.loads(line)
    if "resourceSpans" in body:
        req = json_format.Parse(line, ExportTraceServiceRequest())
        for rs in req.resource_spans:
            res = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append({"kind": "span", "trace_id": text(s.trace_id), "span_id": text(s.span_id),
                                "parent": text(s.parent_span_id), "name": s.name,
                                "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                                "status": s.status.code, "scope": ss.scope.name,
                                "attributes": attrs(s.attributes), "resource": res})
    elif "resourceLogs" in body:
        req = json_format.Parse(line, ExportLogsServiceRequest())
        for rl in req.resource_logs:
            res = attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    out.append({"kind": "log", "trace_id": text(r.trace_id), "span_id": text(r.span_id),
                                "time": r.time_unix_nano, "severity": r.severity_number,
                                "severity_text": r.severity_text, "body": r.body.string_value,
                                "scope": sl.scope.name, "attributes": attrs(r.attributes),
                                "resource": res})
    else:
        sys.exit(f"line {n}: neither resourceSpans nor resourceLogs")
print(json.dumps(out))
"#;

#[derive(Debug)]
struct Refused;
impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}
impl Error for Refused {}

fn write_records(root: &std::path::Path) {
    let (dispatch, guard) = tracekit::builder()
        .root(root)
        .filter("trace")
        .panic_hook(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!("outside any request");
        for (req, user) in [("req-exp-1", "user-1"), ("req-exp-2", "user-2")] {
            LogContext::new()
                .request_id(req)
                .user_id(user)
                .session_id("sess-1")
                .in_scope(|| {
                    let span = tracing::info_span!("serve", component = "serving");
                    let _e = span.enter();
                    tracing::info!(
                        num_candidates = 1500_u64,
                        score = 0.25,
                        ok = true,
                        big = u64::MAX,
                        negative = -3_i64,
                        "served"
                    );
                    tracing::warn!(api_token = "s3cr3t", "slow");
                    tracing::error!(error = &Refused as &dyn Error, "failed");
                    tracekit::critical!("down");
                });
        }
    });
    drop(guard);
}

fn export(root: &std::path::Path, out: &std::path::Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_log_analyzer"))
        .arg("export")
        .arg("--otlp-json")
        .arg(out)
        .arg("--dir")
        .arg(root)
        .args(["--service-name", "export-test"])
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "export failed: {status}");
}

fn parse(python: &std::path::Path, file: &std::path::Path) -> Vec<Value> {
    let out = Command::new(python)
        .args(["-c", PARSE])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the OTLP protobuf definitions refused the export:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn export_parses_strictly_with_the_otlp_protobuf_definitions() {
    let python = peers().python_with_proto();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    write_records(&root);
    let records = main_records(&root);
    let file = dir.path().join("all.jsonl");
    export(&root, &file, &[]);
    let decoded = parse(&python, &file);
    assert_eq!(decoded.len(), records.len(), "each record once");

    for record in &records {
        let trace_id = record["trace_id"].as_str().unwrap_or("");
        let span_id = record["span_id"].as_str().unwrap_or("");
        let matches: Vec<&Value> = decoded
            .iter()
            .filter(|d| d["trace_id"] == trace_id && d["span_id"] == span_id)
            .filter(|d| {
                d["body"] == record["message"]
                    || (record.get("span").is_some() && d["kind"] == "span")
            })
            .collect();
        assert_eq!(matches.len(), 1, "{record}: {matches:#?}");
        let d = matches[0];
        assert_eq!(d["resource"]["service.name"]["stringValue"], "export-test");
        assert_eq!(
            d["resource"]["process.pid"]["intValue"],
            record["context"]["process"].to_string()
        );
        if let Some(span) = record.get("span") {
            assert_eq!(d["name"], span["name"]);
            assert_eq!(d["parent"], span["parent_span_id"].as_str().unwrap_or(""));
            let start = d["start"].as_str().map_or_else(
                || d["start"].as_u64().unwrap() as u128,
                |s| s.parse().unwrap(),
            );
            assert_eq!(start, record_nanos(span["start"].as_str().unwrap()));
        } else {
            let time = d["time"].as_u64().map_or_else(
                || d["time"].as_str().unwrap().parse::<u128>().unwrap(),
                u128::from,
            );
            assert_eq!(time, record_nanos(record["timestamp"].as_str().unwrap()));
            let level = record["level"].as_str().unwrap();
            assert_eq!(d["severity"], severity(level));
            assert_eq!(d["severity_text"], level);
            assert_eq!(d["scope"], record["logger"]);
        }
        for (key, attr) in [
            ("request_id", "request.id"),
            ("user_id", "user.id"),
            ("session_id", "session.id"),
        ] {
            assert_eq!(
                d["attributes"][attr]["stringValue"].as_str(),
                record[key].as_str(),
                "{record}"
            );
        }
    }
    let served: Vec<&Value> = decoded.iter().filter(|d| d["body"] == "served").collect();
    assert_eq!(served.len(), 2);
    let a = &served[0]["attributes"];
    assert_eq!(a["num_candidates"]["intValue"], "1500");
    assert_eq!(a["score"]["doubleValue"], 0.25);
    assert_eq!(a["ok"]["boolValue"], true);
    assert_eq!(a["negative"]["intValue"], "-3");
    assert!(a["big"].is_object(), "u64::MAX survives: {a}");
    let slow = decoded.iter().find(|d| d["body"] == "slow").unwrap();
    assert_eq!(slow["attributes"]["api_token"]["stringValue"], "[REDACTED]");
    let failed = decoded.iter().find(|d| d["body"] == "failed").unwrap();
    assert_eq!(
        failed["attributes"]["exception.type"]["stringValue"],
        "Refused"
    );

    // Filters: one request only.
    let one = dir.path().join("one.jsonl");
    export(&root, &one, &["--request-id", "req-exp-2"]);
    let decoded = parse(&python, &one);
    let expected = records
        .iter()
        .filter(|r| r["request_id"] == "req-exp-2")
        .count();
    assert!(expected >= 5, "{expected}");
    assert_eq!(decoded.len(), expected);
    assert!(decoded
        .iter()
        .all(|d| d["attributes"]["request.id"]["stringValue"] == "req-exp-2"));
    // A window that ends before everything: nothing, exit status 1.
    let none = dir.path().join("none.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_log_analyzer"))
        .args(["export", "--otlp-json"])
        .arg(&none)
        .arg("--dir")
        .arg(&root)
        .args(["--until", "2000-01-01"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&none).unwrap(), "");
}
