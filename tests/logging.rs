//! The seed's `test_logging`: what a user checks after adding tracekit to a service. Logs are
//! written to the right locations, every line is valid JSON in the record contract, the
//! decorators work, the request context reaches every component, and errors carry their
//! stack traces.
//!
//! Each test writes into its own temporary root through its own subscriber
//! (`Builder::build` + `set_default`), so the tests run in parallel without sharing a file.

mod bridge_support;

use std::path::Path;

use bridge_support::{check_contract, component_records, file_records, one};
use serde_json::{json, Value};
use tracekit::LogContext;

const SEED_COMPONENTS: [&str; 8] = [
    "app",
    "candidate",
    "ranking",
    "exploration",
    "diversity",
    "serving",
    "ab_test",
    "feedback",
];

/// Runs `f` with a tracekit subscriber writing under a fresh root, flushes, returns the root.
fn with_tracekit(f: impl FnOnce()) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter("debug")
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    drop(guard);
    dir
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(future)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn logs_are_written_to_the_right_locations() {
    let dir = with_tracekit(|| {
        for component in SEED_COMPONENTS {
            let logger = tracekit::get_logger(module_path!(), component);
            logger.info("Processing started", json!({ "stage": component }));
        }
        tracekit::get_logger(module_path!(), "ranking")
            .error("Model timed out", json!({ "model": "ranker_v2" }));
        tracekit::critical!(component = "serving", "Model store unreachable");
    });
    let logs = dir.path().join("logs");
    for component in SEED_COMPONENTS {
        let records = file_records(&logs.join(component).join(format!("{component}.log")));
        assert!(
            records.iter().any(|r| r["message"] == "Processing started"),
            "no record in logs/{component}/{component}.log"
        );
        assert!(records.iter().all(|r| r["component"] == component));
    }
    // ERROR and CRITICAL are copied to errors/, and nothing else is.
    let errors = file_records(&logs.join("errors/errors.log"));
    let levels: Vec<_> = errors
        .iter()
        .map(|r| {
            (
                r["component"].as_str().unwrap(),
                r["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(levels, [("ranking", "ERROR"), ("serving", "CRITICAL")]);
    // Nothing lands outside the component directories, errors/ and performance/.
    for entry in std::fs::read_dir(&logs).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            SEED_COMPONENTS.contains(&name.as_str()) || name == "errors",
            "unexpected directory logs/{name}"
        );
    }
}

#[test]
fn every_line_is_valid_json_in_the_record_contract() {
    let dir = with_tracekit(|| {
        let logger = tracekit::get_logger(module_path!(), "candidate");
        LogContext::new()
            .request_id("req-json")
            .user_id("user-456")
            .in_scope(|| {
                logger.info(
                    "Generated candidates",
                    json!({ "num_candidates": 1500, "sources": ["in_network", "out_network"],
                            "note": "line one\nline two \u{2028} \"quoted\"" }),
                );
                tracing::info!(component = "ranking", duration_ms = 45.2, "Scored");
                logger.warning(
                    "Login",
                    json!({ "password": "hunter2", "nested": { "api_key": "k" } }),
                );
            });
        block_on(decorated_ok("user-456", 3));
    });
    let mut seen = 0;
    for file in walk(&dir.path().join("logs")) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with('\n'), "{} ends mid-line", file.display());
        for line in text.lines() {
            check_contract(line);
            seen += 1;
        }
    }
    assert!(seen >= 6, "only {seen} records");
    // Structured data stays structured; a newline in a value does not break the line.
    let records = component_records(dir.path());
    let r = one(&records, "Generated candidates");
    assert_eq!(r["data"]["num_candidates"], 1500);
    assert_eq!(r["data"]["sources"][1], "out_network");
    assert!(r["data"]["note"].as_str().unwrap().contains('\n'));
    // Sensitive keys are redacted at any depth.
    let login = one(&records, "Login");
    assert_eq!(login["data"]["password"], "[REDACTED]");
    assert_eq!(login["data"]["nested"]["api_key"], "[REDACTED]");
}

#[tracekit::log_performance(log_args = true, log_result = true)]
async fn decorated_ok(user_id: &str, count: usize) -> Vec<u32> {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let _ = user_id;
    (0..count as u32).collect()
}

#[derive(Debug)]
struct InvalidCount(i64);

impl std::fmt::Display for InvalidCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid candidate count {}", self.0)
    }
}

impl std::error::Error for InvalidCount {}

#[tracekit::log_errors(reraise = true)]
fn decorated_err(count: i64) -> Result<u32, InvalidCount> {
    u32::try_from(count).map_err(|_| InvalidCount(count))
}

#[tracekit::trace_execution(component = "serving")]
async fn decorated_traced(user_id: &str) -> usize {
    tracing::info!(user_id, "Ranking the pool");
    2
}

#[test]
fn decorators_write_timing_entry_exit_and_error_records() {
    let dir = with_tracekit(|| {
        assert_eq!(block_on(decorated_ok("user-456", 3)), vec![0, 1, 2]);
        assert!(matches!(decorated_err(-1), Err(InvalidCount(-1))));
        assert_eq!(decorated_err(5).unwrap(), 5);
        assert_eq!(block_on(decorated_traced("user-9")), 2);
    });
    let logs = dir.path().join("logs");

    // log_performance: one timing record with duration, status, arguments, result; copied
    // to performance/.
    let perf = file_records(&logs.join("performance/performance.log"));
    let timing: Vec<_> = perf
        .iter()
        .filter(|r| r["context"]["function"] == "decorated_ok")
        .collect();
    assert_eq!(timing.len(), 1, "{perf:#?}");
    let t = timing[0];
    assert_eq!(t["data"]["status"], "success");
    assert_eq!(
        t["data"]["args"],
        json!({ "user_id": "user-456", "count": 3 })
    );
    assert_eq!(t["data"]["result"], json!([0, 1, 2]));
    assert!(t["data"]["duration_ms"].as_f64().unwrap() >= 2.0, "{t}");

    // log_errors: the Err is logged once, with its exception and arguments, in errors/.
    let errors = file_records(&logs.join("errors/errors.log"));
    let failed: Vec<_> = errors
        .iter()
        .filter(|r| r["context"]["function"] == "decorated_err")
        .collect();
    assert_eq!(failed.len(), 1, "{errors:#?}");
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["exception"]["type"], "InvalidCount");
    assert_eq!(
        failed[0]["exception"]["message"],
        "invalid candidate count -1"
    );
    assert_eq!(failed[0]["data"]["args"]["count"], -1);

    // trace_execution: entry, the body's lines, exit (timing) in serving/, plus the span.
    let serving = file_records(&logs.join("serving/serving.log"));
    let messages: Vec<_> = serving
        .iter()
        .filter(|r| r.get("span").is_none())
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "decorated_traced started",
            "Ranking the pool",
            "decorated_traced finished"
        ]
    );
    let span = serving
        .iter()
        .find(|r| r.get("span").is_some())
        .expect("the call's span record");
    assert_eq!(span["span"]["name"], "decorated_traced");
    let inner = one(&serving, "Ranking the pool");
    assert_eq!(inner["trace_id"], span["trace_id"]);
    assert!(perf
        .iter()
        .any(|r| r["message"] == "decorated_traced finished"));
}

#[tracekit::trace_execution(component = "candidate")]
async fn stage_candidate() -> usize {
    tokio::task::yield_now().await;
    stage_ranking(40).await
}

#[tracekit::trace_execution(component = "ranking")]
async fn stage_ranking(n: usize) -> usize {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    tracekit::get_logger(module_path!(), "ranking").info("Scored", json!({ "scored": n }));
    n / 2
}

#[test]
fn context_tracking_reaches_every_component_across_await() {
    let dir = with_tracekit(|| {
        let serving = tracekit::get_logger(module_path!(), "serving");
        serving.info("Before any request", ());
        let served = block_on(
            LogContext::new()
                .request_id("req-ctx-1")
                .user_id("user-456")
                .session_id("session-789")
                .instrument(async {
                    serving.info("Request received", ());
                    let n = stage_candidate().await;
                    serving.info("Request completed", json!({ "count": n }));
                    n
                }),
        );
        assert_eq!(served, 20);
        // A second request right after: its ids, not the first one's.
        LogContext::new().request_id("req-ctx-2").in_scope(|| {
            serving.info("Second request", ());
        });
    });
    let records = component_records(dir.path());
    let first: Vec<_> = records
        .iter()
        .filter(|r| r["request_id"] == "req-ctx-1")
        .collect();
    let components: std::collections::BTreeSet<_> = first
        .iter()
        .map(|r| r["component"].as_str().unwrap())
        .collect();
    assert!(
        components.is_superset(&["serving", "candidate", "ranking"].into()),
        "{components:?}"
    );
    for r in &first {
        assert_eq!(r["user_id"], "user-456", "{r}");
        assert_eq!(r["session_id"], "session-789", "{r}");
    }
    // One trace for the whole request.
    let traces: std::collections::BTreeSet<_> =
        first.iter().map(|r| r["trace_id"].to_string()).collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(one(&records, "Scored")["request_id"], "req-ctx-1");
    let before = one(&records, "Before any request");
    assert!(before.get("request_id").is_none(), "{before}");
    let second = one(&records, "Second request");
    assert_eq!(second["request_id"], "req-ctx-2");
    assert!(second.get("user_id").is_none(), "{second}");
}

#[tracekit::log_errors(reraise = false)]
fn panicking_stage(count: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if count == 0 {
        panic!("candidate count must be positive");
    }
    Ok(count)
}

#[derive(Debug)]
struct StageError(std::num::ParseIntError);

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ranking stage failed")
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn error_logging_captures_stack_traces() {
    let dir = with_tracekit(|| {
        let _cx = LogContext::new().request_id("req-err").enter();
        // A panic: CRITICAL, with where it panicked and the backtrace.
        let err = panicking_stage(0).unwrap_err();
        assert!(err.to_string().contains("candidate count must be positive"));
        // An error with a cause: the source chain is the traceback.
        let cause = "x".parse::<i32>().unwrap_err();
        tracekit::get_logger(module_path!(), "ranking").exception(
            "Ranking failed",
            &StageError(cause),
            json!({ "model": "ranker_v2" }),
        );
        // A tracing event with an error field.
        let err = StageError("".parse::<i32>().unwrap_err());
        tracing::error!(
            component = "ranking",
            error = &err as &dyn std::error::Error,
            "Rescoring failed"
        );
    });
    let all = file_records(&dir.path().join("logs/errors/errors.log"));
    // The request's span failed too: its record (status error) is copied to errors/.
    let (spans, errors): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.get("span").is_some());
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0]["span"]["status"], "error");
    assert_eq!(spans[0]["request_id"], "req-err");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    for r in &errors {
        assert_eq!(r["request_id"], "req-err");
        let exception = r["exception"].as_object().expect("exception");
        for key in ["type", "message", "traceback"] {
            assert!(
                exception
                    .get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty()),
                "exception.{key} missing in {r}"
            );
        }
    }
    let panic = &errors[0];
    assert_eq!(panic["level"], "CRITICAL");
    assert_eq!(panic["exception"]["type"], "panic");
    assert_eq!(
        panic["exception"]["message"],
        "candidate count must be positive"
    );
    let traceback = panic["exception"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("tests/logging.rs"), "{traceback}");
    assert!(traceback.contains("panicking_stage"), "{traceback}");

    let ranking = &errors[1];
    assert_eq!(ranking["exception"]["type"], "StageError");
    assert_eq!(
        ranking["exception"]["traceback"],
        "caused by: invalid digit found in string"
    );
    assert_eq!(
        errors[2]["exception"]["traceback"],
        "caused by: cannot parse integer from empty string"
    );
    // The same records are in their components' files.
    let records = component_records(dir.path());
    assert_eq!(one(&records, "Ranking failed")["component"], "ranking");
    assert_eq!(lines(&dir.path().join("logs/errors/errors.log")).len(), 4);
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
