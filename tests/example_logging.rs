//! `examples/logging_example.rs` runs as `cargo run --example logging_example` runs it, with
//! its root in a temporary directory (`TRACEKIT_DIR`), and writes what its sections show: a
//! file per component it logs to, the request ids on the lines of a request, errors and
//! critical records copied to `errors/`, timings to `performance/`, secrets redacted, the
//! OpenTelemetry API's records beside the others.
//!
//! The example is built by cargo itself, with this test's features and profile, into this
//! test's target directory: the binary is this checkout's even when only this test was
//! built (`cargo test --test example_logging`), and after `cargo test` built the examples
//! the build finds nothing to do.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Builds the example and returns its executable, from cargo's own report of the build.
fn build_example() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp);
    let mut build = Command::new(cargo);
    build
        .args(["build", "--workspace", "--example", "logging_example"])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target);
    if cfg!(feature = "otlp") {
        build.args(["--features", "tracekit/otlp"]);
    }
    // The profile cargo test builds with (bench under --release): the dependencies are the
    // ones it built, and the example too once cargo test built the examples.
    let profile = if cfg!(debug_assertions) {
        "test"
    } else {
        "bench"
    };
    build.args(["--profile", profile]);
    let out = build.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "building the example failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["target"]["name"] == "logging_example")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for the example:\n{stdout}"))
}

/// Every line of `logs/<dir>/<dir>.log`, each parsed; panics on a line that does not parse.
fn records(root: &Path, dir: &str) -> Vec<Value> {
    let path = root.join(format!("logs/{dir}/{dir}.log"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// The one record of `records` with this message.
fn by_message(records: &[Value], message: &str) -> Value {
    let found: Vec<_> = records.iter().filter(|r| r["message"] == message).collect();
    assert_eq!(found.len(), 1, "{message:?} in {records:#?}");
    found[0].clone()
}

#[test]
fn logging_example_writes_every_section_to_its_files() {
    let exe = build_example();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let mut run = Command::new(&exe);
    run.current_dir(dir.path());
    // The example's defaults, not the caller's settings; only the root is set.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name == "RUST_LOG" || name.starts_with("TRACEKIT_") || name.starts_with("OTEL_") {
            run.env_remove(name);
        }
    }
    run.env("TRACEKIT_DIR", &root);
    let out = run.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({:?}):\n{stdout}\n{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&root.join("logs").display().to_string()),
        "the example does not say where it wrote: {stdout}"
    );

    // A file per component, every record in the directory of its component.
    let components = [
        "candidate",
        "ranking",
        "serving",
        "ab_test",
        "feedback",
        "exploration",
    ];
    for component in components {
        let records = records(&root, component);
        assert!(!records.is_empty(), "{component}: empty");
        for r in &records {
            assert_eq!(r["component"], component, "{r}");
            assert!(
                r["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{r}"
            );
        }
    }
    let all: Vec<Value> = components.iter().flat_map(|c| records(&root, c)).collect();

    // Basic logging: fields stay numbers; the target mapping routes `ranking`; debug is off.
    let candidate = records(&root, "candidate");
    let started = by_message(&candidate, "Processing started");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["data"]["num_candidates"], 1500);
    let scored = by_message(&records(&root, "ranking"), "Candidates scored");
    assert_eq!(scored["data"]["scored"], 1500);
    assert_eq!(scored["data"]["duration_ms"], 45.2);
    assert!(
        all.iter().all(|r| r["level"] != "DEBUG"),
        "a debug record at the default level"
    );

    // Request context: the ids on every line of the request, a child span in its trace.
    let serving = records(&root, "serving");
    let received = by_message(&serving, "Request received");
    assert_eq!(received["request_id"], "req-123");
    assert_eq!(received["user_id"], "user-456");
    assert_eq!(received["session_id"], "session-789");
    let trace_id = received["trace_id"].as_str().unwrap();
    assert!(
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{received}"
    );
    let served = by_message(&serving, "Recommendations served");
    assert_eq!(served["trace_id"], trace_id);
    assert_eq!(served["session_id"], "session-789");
    assert_ne!(served["span_id"], received["span_id"]);
    let child = serving
        .iter()
        .find(|r| r["span"]["name"] == "serve_recommendations" && r["request_id"] == "req-123")
        .unwrap_or_else(|| panic!("no span record of the request's child: {serving:#?}"));
    assert_eq!(child["span_id"], served["span_id"]);
    assert_eq!(child["span"]["parent_span_id"], received["span_id"]);

    // Errors: the exception of each, ERROR and CRITICAL copied to errors/, nothing else.
    let errors = records(&root, "errors");
    assert!(
        errors
            .iter()
            .all(|r| r["level"] == "ERROR" || r["level"] == "CRITICAL"),
        "{errors:#?}"
    );
    let failed = by_message(&errors, "Candidate generation failed");
    assert_eq!(failed["exception"]["type"], "CandidateCountError");
    assert_eq!(failed["exception"]["message"], "invalid candidate count 0");
    assert_eq!(failed["request_id"], "req-124");
    let decorated = by_message(&errors, "critical_operation failed");
    assert_eq!(decorated["data"]["args"]["raw_count"], "fifteen hundred");
    assert_eq!(
        by_message(&errors, "Invalid candidate count")["exception"]["type"],
        "ParseIntError"
    );
    for critical in ["Model store unreachable", "Feedback queue lost"] {
        assert_eq!(by_message(&errors, critical)["level"], "CRITICAL");
    }
    assert_eq!(
        by_message(&records(&root, "feedback"), "Feedback queue lost")["data"]["pending"],
        5000
    );

    // Timings: a record per decorated call in performance/, with its arguments.
    let performance = records(&root, "performance");
    let timed = by_message(&performance, "generate_candidates finished");
    assert_eq!(timed["component"], "candidate");
    assert_eq!(timed["request_id"], "req-125");
    assert_eq!(timed["data"]["status"], "success");
    assert_eq!(timed["data"]["args"]["count"], 1500);
    assert!(timed["data"]["duration_ms"].as_f64().is_some(), "{timed}");
    assert_eq!(
        by_message(&performance, "serve_recommendations finished")["request_id"],
        "req-126"
    );

    // Redaction: the secret keys are masked and their values are nowhere in the files.
    let ab_test = records(&root, "ab_test");
    let configured = by_message(&ab_test, "Experiment client configured");
    assert_eq!(configured["data"]["api_key"], "[REDACTED]");
    assert_eq!(configured["data"]["user"], "ada");
    let login = by_message(&ab_test, "Login");
    assert_eq!(login["data"]["credentials"]["password"], "[REDACTED]");
    assert_eq!(login["data"]["credentials"]["session_token"], "[REDACTED]");
    for file in walk(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for secret in ["sk-live-123", "hunter2"] {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }

    // The OpenTelemetry API: its log record and its span, in the same trace.
    let exploration = records(&root, "exploration");
    let filled = by_message(&exploration, "Exploration slot filled");
    assert_eq!(filled["data"]["slot"], 3);
    let explore = exploration
        .iter()
        .find(|r| r["span"]["name"] == "explore")
        .unwrap_or_else(|| panic!("no span record of `explore`: {exploration:#?}"));
    assert_eq!(explore["span"]["attributes"]["epsilon"], 0.1);
    assert_eq!(explore["trace_id"], filled["trace_id"]);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
