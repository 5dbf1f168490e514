//! Item 7: injection. Fields holding `\n`, `\r`, U+2028, U+2029, U+0085, ANSI escape
//! sequences, NUL and invalid UTF-8, through every way into a record (message, event
//! fields, `?` and `%` values, bytes, Logger data keys and values, request ids, span names
//! and attributes, errors, OpenTelemetry log bodies and attributes), give exactly one valid
//! JSON line per record, holding the value exactly (U+FFFD for invalid UTF-8); and the
//! analysis tools print them escaped, in text and in JSON: no raw control character
//! reaches the terminal.

#[path = "../../tests/reliability_support/mod.rs"]
mod reliability_support;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use reliability_support::{all_output, raw_control};

const HOSTILE: [&str; 10] = [
    "line\nbreak",
    "carriage\rreturn",
    "line\u{2028}separator",
    "paragraph\u{2029}separator",
    "next\u{85}line",
    "\x1b[31mred\x1b[0m \x1b[2J\x1b[H",
    "nul\0byte",
    "\x1b]0;title\x07bell",
    "del\x7f and \u{9b}31m csi",
    "\u{202e}bidi override",
];
/// Not UTF-8: a lone continuation byte, a truncated sequence, an overlong NUL.
const INVALID: &[u8] = b"bad \xff\xfe \xc3( \xc0\x80 end";

#[derive(Debug)]
struct Hostile(&'static str);

impl fmt::Display for Hostile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Hostile {}

/// Logs every hostile value every way; returns how many records (events, spans, log
/// records) were written.
fn log_everything(guard: &tracekit::Guard) -> usize {
    use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

    let logger = tracekit::get_logger("inject", "inject");
    let tracer = guard.tracer_provider().tracer("inject");
    let otel_logger = guard.logger_provider().logger("inject");
    let mut n = 0;
    for (i, h) in HOSTILE.iter().enumerate() {
        let req = format!("req-{i}");
        tracekit::LogContext::new()
            .request_id(req.as_str())
            .user_id(*h)
            .in_scope(|| {
                tracing::info!(component = "inject", value = *h, i, "message {h}");
                tracing::warn!(component = "inject", debug = ?h, display = %h, bytes = INVALID, "d");
                tracing::error!(
                    component = "inject",
                    error = &Hostile(h) as &dyn std::error::Error,
                    duration_ms = 2000.0,
                    "failed: {h}"
                );
                let mut data = BTreeMap::new();
                data.insert(h.to_string(), h.to_string());
                data.insert("nested".to_string(), format!("[{h}]"));
                logger.warning(h, &data);
                tracing::info_span!("span", component = "inject", attr = *h).in_scope(|| {});
                n += 5;
            });
        let mut span = tracer.start(format!("otel {h}"));
        span.set_attribute(opentelemetry::KeyValue::new("component", "inject"));
        span.set_attribute(opentelemetry::KeyValue::new("request.id", req.clone()));
        span.set_attribute(opentelemetry::KeyValue::new(h.to_string(), h.to_string()));
        span.end();
        let mut record = otel_logger.create_log_record();
        record.set_body(AnyValue::String(h.to_string().into()));
        record.add_attribute("component", "inject");
        record.add_attribute("raw", AnyValue::Bytes(Box::new(INVALID.to_vec())));
        otel_logger.emit(record);
        n += 2;
    }
    n
}

/// No byte that could break a line or reach a terminal raw: C0 controls (the `\n` line
/// ends aside), DEL, C1 controls, U+2028/U+2029 (and bidi overrides in the tools'
/// output); and valid UTF-8.
fn assert_clean(path: &Path, bytes: &[u8], bidi: bool) {
    let text =
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: not UTF-8: {e}", path.display()));
    if let Some((at, c)) = raw_control(text, bidi) {
        panic!(
            "{}: raw {c:?} at byte {at}: {:?}",
            path.display(),
            &text[at.saturating_sub(40)..(at + 40).min(text.len())]
        );
    }
}

#[test]
fn hostile_values_give_one_escaped_json_line_per_record_and_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let writer = tracekit::exporters::LogWriter::builder()
        .daily_files(tracekit::exporters::DailyFiles::None);
    let (dispatch, guard) = tracekit::builder()
        .root(root)
        .filter("trace")
        .log_writer(writer)
        .build()
        .unwrap();
    let records = tracing::dispatcher::with_default(&dispatch, || log_everything(&guard));
    drop(guard);

    // One line per record in the component file; every file clean.
    let outputs = all_output(root);
    for (path, bytes) in &outputs {
        assert_clean(path, bytes, false);
    }
    let text = std::fs::read_to_string(root.join("logs/inject/inject.log")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .split_terminator('\n')
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), records);

    // The values come back exactly (invalid UTF-8 as U+FFFD).
    let lossy = String::from_utf8_lossy(INVALID).into_owned();
    for (i, h) in HOSTILE.iter().enumerate() {
        let req = format!("req-{i}");
        let mine: Vec<&serde_json::Value> =
            lines.iter().filter(|r| r["request_id"] == req).collect();
        assert_eq!(mine.len(), 6, "{h:?}: {mine:#?}");
        let find = |level: &str| *mine.iter().find(|r| r["level"] == level).unwrap();
        let info = mine
            .iter()
            .find(|r| r["message"] == format!("message {h}"))
            .unwrap_or_else(|| panic!("{h:?}: no message"));
        assert_eq!(info["data"]["value"], *h);
        assert_eq!(info["user_id"], *h);
        let warn = mine
            .iter()
            .find(|r| r["message"] == "d")
            .unwrap_or_else(|| panic!("{h:?}"));
        assert_eq!(warn["data"]["display"], *h);
        assert_eq!(warn["data"]["debug"], format!("{h:?}"));
        assert_eq!(warn["data"]["bytes"], lossy);
        let error = find("ERROR");
        assert_eq!(error["exception"]["message"], *h);
        assert_eq!(error["message"], format!("failed: {h}"));
        let logged = mine.iter().find(|r| r["message"] == *h).unwrap();
        assert_eq!(logged["data"][*h], *h);
        let otel = mine
            .iter()
            .find(|r| r["span"]["name"] == format!("otel {h}"))
            .unwrap_or_else(|| panic!("{h:?}: no OTel span"));
        assert_eq!(otel["span"]["attributes"][*h], *h);
        let span = mine
            .iter()
            .find(|r| r["span"]["name"] == "span")
            .unwrap_or_else(|| panic!("{h:?}: no tracing span"));
        assert_eq!(span["span"]["attributes"]["attr"], *h);
    }
    let bodies: Vec<_> = lines
        .iter()
        .filter(|r| r["data"]["raw"] == lossy.as_str())
        .collect();
    assert_eq!(bodies.len(), HOSTILE.len());

    // The analysis tools: text and JSON output, every command, no raw control character.
    let bins = [
        env!("CARGO_BIN_EXE_log_analyzer"),
        env!("CARGO_BIN_EXE_trace_request"),
    ];
    let mut runs: Vec<(usize, Vec<String>)> = Vec::new();
    for json in [false, true] {
        let mut add = |bin: usize, args: &[&str]| {
            let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if json {
                a.push("--json".into());
            }
            runs.push((bin, a));
        };
        add(0, &["errors"]);
        add(0, &["summary"]);
        add(0, &["performance", "inject"]);
        add(0, &["slow", "inject", "--threshold", "1"]);
        for i in 0..HOSTILE.len() {
            add(1, &[&format!("req-{i}")]);
        }
    }
    for (bin, args) in &runs {
        let out = Command::new(bins[*bin])
            .args(args)
            .arg("--dir")
            .arg(root)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let what = format!("{} {}", bins[*bin], args.join(" "));
        assert_eq!(out.status.code(), Some(0), "{what}: {out:?}");
        assert_clean(Path::new(&what), &out.stdout, true);
        assert_clean(Path::new(&what), &out.stderr, true);
        if args.last().is_some_and(|a| a == "--json") {
            // Still JSON, and the values still exact once parsed.
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: {e}"));
            let s = v.to_string();
            if args[0] == "req-1" {
                assert!(s.contains(r"carriage\rreturn"), "{what}");
            }
        }
    }
    // The HTML timeline holds no raw markup from the records either.
    let html = root.join("timeline.html");
    let out = Command::new(bins[1])
        .args(["req-5", "--html"])
        .arg(&html)
        .arg("--dir")
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let page = std::fs::read_to_string(&html)
        .or_else(|_| std::fs::read_to_string(root.join("analysis/timeline.html")))
        .unwrap();
    assert!(!page.contains('\x1b'), "raw ESC in the HTML page");
}
