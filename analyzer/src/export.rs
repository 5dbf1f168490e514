//! OTLP JSON from the files: span records become OTLP spans, the other records OTLP log
//! records, in `ExportTraceServiceRequest` and `ExportLogsServiceRequest` bodies as the
//! OTLP/JSON encoding defines them (camelCase fields, hex trace and span ids, 64-bit integers
//! and nanosecond times as strings, enums as numbers).
//!
//! [`LogAnalyzer::export_otlp_json`] writes them as JSON lines (`log_analyzer export
//! --otlp-json FILE`); `log_analyzer forward` posts the same bodies to an OTLP/HTTP endpoint.
//!
//! The mapping is in [`OtlpBatch`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::files::{discover, primary};
use super::time::parse_rfc3339;
use super::{LogAnalyzer, Timestamp};

/// Which records to export. The default exports everything.
///
/// ```
/// use tracekit_analyzer::{ExportFilter, Timestamp};
/// let filter = ExportFilter {
///     since: Timestamp::parse("2025-11-16T10:00:00Z"),
///     request_id: Some("req-123".into()),
///     ..ExportFilter::default()
/// };
/// assert!(filter.until.is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records at or before this time.
    pub until: Option<Timestamp>,
    /// Records of this request only.
    pub request_id: Option<String>,
}

impl ExportFilter {
    /// True when `record` passes the filter.
    ///
    /// ```
    /// use tracekit_analyzer::ExportFilter;
    /// let filter = ExportFilter { request_id: Some("r1".into()), ..ExportFilter::default() };
    /// assert!(filter.matches(&serde_json::json!({"request_id": "r1", "timestamp": "2025-11-16T10:00:00.000000Z"})));
    /// assert!(!filter.matches(&serde_json::json!({"request_id": "r2"})));
    /// ```
    pub fn matches(&self, record: &Value) -> bool {
        if let Some(id) = &self.request_id {
            if record.get("request_id").and_then(Value::as_str) != Some(id.as_str()) {
                return false;
            }
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(t) = record
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(Timestamp::parse)
        else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// The OTLP signal a record belongs to.
///
/// ```
/// use tracekit_analyzer::Signal;
/// assert_eq!(Signal::Traces.path(), "/v1/traces");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Span records.
    Traces,
    /// Every other record.
    Logs,
}

impl Signal {
    /// The OTLP/HTTP path of the signal.
    ///
    /// ```
    /// assert_eq!(tracekit_analyzer::Signal::Logs.path(), "/v1/logs");
    /// ```
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// Record batches turned into OTLP JSON request bodies, grouped by resource and scope.
///
/// | record | OTLP |
/// | --- | --- |
/// | `timestamp` | log `timeUnixNano` and `observedTimeUnixNano` (span records: `span.start` / `span.end`) |
/// | `level` | `severityNumber` TRACE 1, DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21, and `severityText` |
/// | `message` | log `body` (span records: the span's `name`) |
/// | `trace_id`, `span_id`, `span.parent_span_id` | `traceId`, `spanId`, `parentSpanId` |
/// | `request_id`, `user_id`, `session_id` | attributes `request.id`, `user.id`, `session.id` |
/// | `component`, `logger` | attribute `component`; the instrumentation scope is the logger |
/// | `context` | `code.function.name`, `code.file.path`, `code.line.number`, `thread.id`; `process.pid` is a resource attribute |
/// | `exception` | `exception.type`, `exception.message`, `exception.stacktrace` |
/// | `data`, `span.attributes` | attributes, one per key, with their types (objects become key-value lists) |
/// | `span.kind`, `span.status` | `kind` (1 internal .. 5 consumer), `status` (`code` 0 unset, 1 ok, 2 error, and `message`) |
///
/// Records are grouped by resource (`service.name` and the record's `process.pid`) and scope.
///
/// ```
/// use tracekit_analyzer::OtlpBatch;
/// let mut batch = OtlpBatch::new("checkout");
/// let record = serde_json::json!({
///     "timestamp": "2025-11-16T12:34:56.789123Z", "level": "WARNING", "component": "app",
///     "request_id": "req-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
///     "span_id": "00f067aa0ba902b7", "message": "slow", "data": {"n": 3},
///     "context": {"process": 42}
/// });
/// assert!(batch.push(&record));
/// let body = batch.logs_request().unwrap();
/// let log = &body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
/// assert_eq!(log["timeUnixNano"], "1763296496789123000");
/// assert_eq!(log["severityNumber"], 13);
/// assert_eq!(log["body"]["stringValue"], "slow");
/// assert!(batch.traces_request().is_none());
/// ```
#[derive(Debug)]
pub struct OtlpBatch {
    service_name: String,
    /// (signal, process.pid, scope) -> spans or log records.
    groups: BTreeMap<(Signal, Option<i64>, String), Vec<Value>>,
    spans: usize,
    logs: usize,
}

impl OtlpBatch {
    /// An empty batch whose resources carry `service.name` = `service_name`.
    ///
    /// ```
    /// let batch = tracekit_analyzer::OtlpBatch::new("recsys");
    /// assert!(batch.is_empty());
    /// ```
    pub fn new(service_name: impl Into<String>) -> OtlpBatch {
        OtlpBatch {
            service_name: service_name.into(),
            groups: BTreeMap::new(),
            spans: 0,
            logs: 0,
        }
    }

    /// Adds one record; false (and nothing added) when it is not a record (no `timestamp`,
    /// or a span record without valid ids and times).
    ///
    /// ```
    /// let mut batch = tracekit_analyzer::OtlpBatch::new("recsys");
    /// assert!(!batch.push(&serde_json::json!({"message": "no timestamp"})));
    /// ```
    pub fn push(&mut self, record: &Value) -> bool {
        let Some(obj) = record.as_object() else {
            return false;
        };
        let pid = obj
            .get("context")
            .and_then(|c| c.get("process"))
            .and_then(Value::as_i64);
        let scope = obj
            .get("logger")
            .and_then(Value::as_str)
            .unwrap_or("tracekit")
            .to_owned();
        let (signal, item) = match obj.get("span") {
            Some(span) if span.is_object() => match span_json(obj, span) {
                Some(s) => (Signal::Traces, s),
                None => return false,
            },
            _ => match log_json(obj) {
                Some(l) => (Signal::Logs, l),
                None => return false,
            },
        };
        match signal {
            Signal::Traces => self.spans += 1,
            Signal::Logs => self.logs += 1,
        }
        self.groups
            .entry((signal, pid, scope))
            .or_default()
            .push(item);
        true
    }

    /// The number of span records in the batch.
    ///
    /// ```
    /// let mut batch = tracekit_analyzer::OtlpBatch::new("recsys");
    /// batch.push(&serde_json::json!({"timestamp": "2025-11-16T12:00:00Z", "level": "INFO"}));
    /// assert_eq!((batch.spans(), batch.logs()), (0, 1));
    /// ```
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// The number of log records in the batch (see [`spans`](Self::spans)).
    ///
    /// ```
    /// assert_eq!(tracekit_analyzer::OtlpBatch::new("recsys").logs(), 0);
    /// ```
    pub fn logs(&self) -> usize {
        self.logs
    }

    /// True when the batch holds nothing.
    ///
    /// ```
    /// assert!(tracekit_analyzer::OtlpBatch::new("recsys").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Empties the batch.
    ///
    /// ```
    /// let mut batch = tracekit_analyzer::OtlpBatch::new("recsys");
    /// batch.push(&serde_json::json!({"timestamp": "2025-11-16T12:00:00Z", "level": "INFO"}));
    /// batch.clear();
    /// assert!(batch.is_empty() && batch.logs_request().is_none());
    /// ```
    pub fn clear(&mut self) {
        self.groups.clear();
        self.spans = 0;
        self.logs = 0;
    }

    /// The `ExportTraceServiceRequest` of the span records, or `None` without any.
    ///
    /// ```
    /// assert!(tracekit_analyzer::OtlpBatch::new("recsys").traces_request().is_none());
    /// ```
    pub fn traces_request(&self) -> Option<Value> {
        self.request(Signal::Traces)
    }

    /// The `ExportLogsServiceRequest` of the log records, or `None` without any (see the
    /// [type's example](OtlpBatch)).
    ///
    /// ```
    /// assert!(tracekit_analyzer::OtlpBatch::new("recsys").logs_request().is_none());
    /// ```
    pub fn logs_request(&self) -> Option<Value> {
        self.request(Signal::Logs)
    }

    /// The request body of `signal`, or `None` when the batch holds none of it.
    ///
    /// ```
    /// use tracekit_analyzer::{OtlpBatch, Signal};
    /// let mut batch = OtlpBatch::new("recsys");
    /// batch.push(&serde_json::json!({"timestamp": "2025-11-16T12:00:00Z", "level": "INFO"}));
    /// assert_eq!(batch.request(Signal::Logs), batch.logs_request());
    /// ```
    pub fn request(&self, signal: Signal) -> Option<Value> {
        let (outer, scopes_key, items_key) = match signal {
            Signal::Traces => ("resourceSpans", "scopeSpans", "spans"),
            Signal::Logs => ("resourceLogs", "scopeLogs", "logRecords"),
        };
        let mut resources: Vec<(Option<i64>, Vec<Value>)> = Vec::new();
        for ((s, pid, scope), items) in &self.groups {
            if *s != signal {
                continue;
            }
            let scope = json!({"scope": {"name": scope}, items_key: items});
            match resources.last_mut() {
                Some((p, scopes)) if p == pid => scopes.push(scope),
                _ => resources.push((*pid, vec![scope])),
            }
        }
        if resources.is_empty() {
            return None;
        }
        let resources: Vec<Value> = resources
            .into_iter()
            .map(|(pid, scopes)| {
                let mut attrs = vec![kv(
                    "service.name",
                    json!({"stringValue": self.service_name}),
                )];
                if let Some(pid) = pid {
                    attrs.push(kv("process.pid", json!({"intValue": pid.to_string()})));
                }
                json!({"resource": {"attributes": attrs}, scopes_key: scopes})
            })
            .collect();
        Some(json!({ outer: resources }))
    }
}

/// What [`LogAnalyzer::export_otlp_json`] wrote.
///
/// ```
/// let r = tracekit_analyzer::ExportReport::default();
/// assert_eq!(r.spans + r.logs, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Span records exported.
    pub spans: u64,
    /// Log records exported.
    pub logs: u64,
    /// Lines that are not records (malformed JSON, or no timestamp).
    pub skipped: u64,
    /// Files read.
    pub files: u64,
    /// Request lines written.
    pub requests: u64,
}

/// Records per request line of the export.
const RECORDS_PER_REQUEST: usize = 1000;

impl LogAnalyzer {
    /// Writes every record of the main files (live and archived, each record once) that
    /// passes `filter` to `out` as OTLP JSON lines: one `ExportTraceServiceRequest` or
    /// `ExportLogsServiceRequest` per line, up to 1000 records each, resources carrying
    /// `service.name` = `service_name`. See [`OtlpBatch`] for the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_analyzer::{ExportFilter, LogAnalyzer};
    /// use tracekit_exporters::{Level, LogWriter, Record};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// writer.write(&Record::new(Level::INFO, "ranking", "ranked").request_id("req-1"))?;
    /// drop(guard);
    ///
    /// let mut out = Vec::new();
    /// let report = LogAnalyzer::new(dir.path())
    ///     .export_otlp_json(&ExportFilter::default(), "recsys", &mut out)?;
    /// assert_eq!((report.logs, report.spans), (1, 0));
    /// let line: serde_json::Value = serde_json::from_slice(&out)?;
    /// assert!(line["resourceLogs"].is_array());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn export_otlp_json(
        &self,
        filter: &ExportFilter,
        service_name: &str,
        out: &mut dyn Write,
    ) -> io::Result<ExportReport> {
        let files = discover(self.root());
        let mut report = ExportReport::default();
        let mut batch = OtlpBatch::new(service_name);
        for i in primary(&files) {
            let reader = match open_log(&files[i].path, files[i].compressed) {
                Ok(r) => r,
                // Rotated or compressed since it was listed: its new name was not listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            report.files += 1;
            for line in reader.split(b'\n') {
                let line = line?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let Ok(record) = serde_json::from_slice::<Value>(&line) else {
                    report.skipped += 1;
                    continue;
                };
                if !filter.matches(&record) {
                    continue;
                }
                if !batch.push(&record) {
                    report.skipped += 1;
                    continue;
                }
                if batch.spans() + batch.logs() >= RECORDS_PER_REQUEST {
                    write_batch(&mut batch, out, &mut report)?;
                }
            }
        }
        write_batch(&mut batch, out, &mut report)?;
        out.flush()?;
        Ok(report)
    }
}

fn write_batch(
    batch: &mut OtlpBatch,
    out: &mut dyn Write,
    report: &mut ExportReport,
) -> io::Result<()> {
    report.spans += batch.spans() as u64;
    report.logs += batch.logs() as u64;
    for signal in [Signal::Traces, Signal::Logs] {
        if let Some(body) = batch.request(signal) {
            serde_json::to_writer(&mut *out, &body)?;
            out.write_all(b"\n")?;
            report.requests += 1;
        }
    }
    batch.clear();
    Ok(())
}

/// A reader of a log file, gunzipped when `compressed`.
pub(crate) fn open_log(path: &Path, compressed: bool) -> io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    let reader: Box<dyn Read> = if compressed {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, reader)))
}

fn kv(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

/// An OTLP `AnyValue` of a JSON value: 64-bit integers as strings, objects as key-value lists.
fn any_value(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            // u64 past i64::MAX and floats.
            None => json!({ "doubleValue": n.as_f64().unwrap_or(0.0) }),
        },
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(a) => {
            json!({"arrayValue": {"values": a.iter().map(any_value).collect::<Vec<_>>()}})
        }
        Value::Object(o) => json!({"kvlistValue": {"values": attributes_of(o)}}),
    }
}

fn attributes_of(o: &Map<String, Value>) -> Vec<Value> {
    o.iter().map(|(k, v)| kv(k, any_value(v))).collect()
}

fn severity_number(level: &str) -> u8 {
    match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARNING" => 13,
        "ERROR" => 17,
        "CRITICAL" => 21,
        _ => 0,
    }
}

fn nanos(timestamp: Option<&Value>) -> Option<String> {
    let micros = parse_rfc3339(timestamp?.as_str()?.as_bytes())?;
    Some(i128::from(micros).checked_mul(1000)?.max(0).to_string())
}

fn hex_id(v: Option<&Value>, len: usize) -> Option<&str> {
    let s = v?.as_str()?;
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// The attributes every record kind shares: ids, component, code context, exception.
fn common_attributes(r: &Map<String, Value>) -> Vec<Value> {
    let mut attrs = Vec::new();
    for (key, name) in [
        ("request_id", "request.id"),
        ("user_id", "user.id"),
        ("session_id", "session.id"),
        ("component", "component"),
    ] {
        if let Some(v) = r.get(key).and_then(Value::as_str) {
            attrs.push(kv(name, json!({ "stringValue": v })));
        }
    }
    if let Some(c) = r.get("context").and_then(Value::as_object) {
        for (key, name) in [
            ("function", "code.function.name"),
            ("file", "code.file.path"),
            ("line", "code.line.number"),
            ("thread", "thread.id"),
        ] {
            if let Some(v) = c.get(key) {
                attrs.push(kv(name, any_value(v)));
            }
        }
    }
    if let Some(e) = r.get("exception").and_then(Value::as_object) {
        for (key, name) in [
            ("type", "exception.type"),
            ("message", "exception.message"),
            ("traceback", "exception.stacktrace"),
        ] {
            if let Some(v) = e.get(key) {
                attrs.push(kv(name, any_value(v)));
            }
        }
    }
    attrs
}

fn log_json(r: &Map<String, Value>) -> Option<Value> {
    let time = nanos(r.get("timestamp"))?;
    let level = r.get("level").and_then(Value::as_str).unwrap_or("");
    let mut attrs = common_attributes(r);
    if let Some(data) = r.get("data").and_then(Value::as_object) {
        attrs.extend(attributes_of(data));
    }
    let mut log = Map::new();
    log.insert("timeUnixNano".into(), json!(time));
    log.insert("observedTimeUnixNano".into(), json!(time));
    log.insert("severityNumber".into(), json!(severity_number(level)));
    log.insert("severityText".into(), json!(level));
    if let Some(m) = r.get("message").and_then(Value::as_str) {
        log.insert("body".into(), json!({ "stringValue": m }));
    }
    log.insert("attributes".into(), Value::Array(attrs));
    if let (Some(t), Some(s)) = (hex_id(r.get("trace_id"), 32), hex_id(r.get("span_id"), 16)) {
        log.insert("traceId".into(), json!(t));
        log.insert("spanId".into(), json!(s));
        log.insert("flags".into(), json!(1));
    }
    Some(Value::Object(log))
}

fn span_json(r: &Map<String, Value>, span: &Value) -> Option<Value> {
    let trace_id = hex_id(r.get("trace_id"), 32)?;
    let span_id = hex_id(r.get("span_id"), 16)?;
    let start = nanos(span.get("start"))?;
    let end = nanos(span.get("end"))?;
    let kind = match span.get("kind").and_then(Value::as_str) {
        Some("server") => 2,
        Some("client") => 3,
        Some("producer") => 4,
        Some("consumer") => 5,
        _ => 1,
    };
    let mut attrs = common_attributes(r);
    if let Some(a) = span.get("attributes").and_then(Value::as_object) {
        attrs.extend(attributes_of(a));
    }
    let mut status = Map::new();
    let code = match span.get("status").and_then(Value::as_str) {
        Some("ok") => 1,
        Some("error") => 2,
        _ => 0,
    };
    status.insert("code".into(), json!(code));
    if let Some(m) = span.get("status_message").and_then(Value::as_str) {
        status.insert("message".into(), json!(m));
    }
    let name = span
        .get("name")
        .or_else(|| r.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = Map::new();
    out.insert("traceId".into(), json!(trace_id));
    out.insert("spanId".into(), json!(span_id));
    if let Some(parent) = hex_id(span.get("parent_span_id"), 16) {
        out.insert("parentSpanId".into(), json!(parent));
    }
    out.insert("flags".into(), json!(1));
    out.insert("name".into(), json!(name));
    out.insert("kind".into(), json!(kind));
    out.insert("startTimeUnixNano".into(), json!(start));
    out.insert("endTimeUnixNano".into(), json!(end));
    out.insert("attributes".into(), Value::Array(attrs));
    out.insert("status".into(), Value::Object(status));
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_otlp_json_encoding() {
        assert_eq!(any_value(&json!(5)), json!({"intValue": "5"}));
        assert_eq!(any_value(&json!(1.5)), json!({"doubleValue": 1.5}));
        assert_eq!(
            any_value(&json!(u64::MAX)),
            json!({"doubleValue": u64::MAX as f64})
        );
        assert_eq!(
            any_value(&json!({"a": [true, null]})),
            json!({"kvlistValue": {"values": [{"key": "a", "value": {"arrayValue": {"values": [{"boolValue": true}, {}]}}}]}})
        );
    }

    #[test]
    fn span_records_become_spans() {
        let record = json!({
            "timestamp": "2025-11-16T12:00:01.000000Z", "level": "ERROR", "component": "ranking",
            "logger": "recsys", "request_id": "req-1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
            "message": "rank",
            "span": {"name": "rank", "kind": "server", "parent_span_id": "00f067aa0ba902b8",
                     "start": "2025-11-16T12:00:00.000001Z", "end": "2025-11-16T12:00:01.000000Z",
                     "duration_ms": 1000.0, "status": "error", "status_message": "timeout",
                     "attributes": {"n": 3}}
        });
        let mut batch = OtlpBatch::new("svc");
        assert!(batch.push(&record));
        let body = batch.traces_request().unwrap();
        let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(
            body["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"],
            "recsys"
        );
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1763294400000001000");
        assert_eq!(span["status"], json!({"code": 2, "message": "timeout"}));
        assert_eq!(span["parentSpanId"], "00f067aa0ba902b8");
        assert!(batch.logs_request().is_none());
    }

    #[test]
    fn groups_by_process_and_scope() {
        let mut batch = OtlpBatch::new("svc");
        for (pid, logger) in [(1, "a"), (2, "a"), (1, "b"), (1, "a")] {
            let r = json!({"timestamp": "2025-11-16T12:00:00.000000Z", "level": "INFO",
                           "logger": logger, "message": "m", "context": {"process": pid}});
            assert!(batch.push(&r));
        }
        let body = batch.logs_request().unwrap();
        let resources = body["resourceLogs"].as_array().unwrap();
        assert_eq!(resources.len(), 2);
        assert_eq!(resources[0]["scopeLogs"].as_array().unwrap().len(), 2);
        assert_eq!(
            resources[0]["scopeLogs"][0]["logRecords"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(!batch.push(&json!({"level": "INFO"})), "no timestamp");
    }
}
