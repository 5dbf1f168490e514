//! The decorators on sync fns of every shape, read back from the files: fields, durations,
//! status, arguments (redacted, skipped, Serialize or Debug), request context and trace ids.

mod decorators_support;

use std::fmt;
use std::time::Duration;

use decorators_support::{duration_ms, of_function, one, run};
use serde_json::json;
use tracekit::{log_errors, log_performance, trace_execution, LogContext};

#[derive(Debug)]
enum RankError {
    EmptyPool,
    Model(std::num::ParseIntError),
}

impl fmt::Display for RankError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RankError::EmptyPool => f.write_str("no candidates to rank"),
            RankError::Model(_) => f.write_str("model score unreadable"),
        }
    }
}

impl std::error::Error for RankError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RankError::Model(e) => Some(e),
            RankError::EmptyPool => None,
        }
    }
}

impl From<std::num::ParseIntError> for RankError {
    fn from(e: std::num::ParseIntError) -> Self {
        RankError::Model(e)
    }
}

/// Serialize-able: written structured, not as a Debug string.
#[derive(Debug, serde::Serialize)]
struct Request {
    count: u32,
    sources: Vec<&'static str>,
}

/// Debug only.
#[derive(Debug)]
struct Opaque(u8);

/// Neither Debug nor Serialize: must be skipped or redacted by name.
struct Secret(#[allow(dead_code)] String);

#[log_performance(log_args = true, log_result = true)]
fn score(user_id: &str, request: Request, weight: Opaque, password: Secret) -> u32 {
    std::thread::sleep(Duration::from_millis(2));
    let _ = password;
    request.count * u32::from(weight.0) + user_id.len() as u32
}

#[log_performance(skip(model))]
fn rank(raw: &str, model: Secret) -> Result<u32, RankError> {
    let _ = model;
    if raw.is_empty() {
        return Err(RankError::EmptyPool);
    }
    let n: u32 = raw.parse()?;
    Ok(n * 2)
}

#[test]
fn log_performance_writes_one_timing_record_per_call() {
    let logs = run("info", || {
        let request = Request {
            count: 3,
            sources: vec!["in_network", "out_network"],
        };
        let n = score("user-456", request, Opaque(2), Secret("hunter2".into()));
        assert_eq!(n, 14);
        assert_eq!(rank("21", Secret("m".into())).unwrap(), 42);
        assert!(matches!(
            rank("", Secret("m".into())),
            Err(RankError::EmptyPool)
        ));
        assert!(matches!(
            rank("x", Secret("m".into())),
            Err(RankError::Model(_))
        ));
    });
    let app = logs.component("app");
    let perf = logs.performance();
    assert_eq!(app.len(), 4, "{app:#?}");
    assert_eq!(perf, app, "every timing record is copied to performance/");

    let score = of_function(&app, "score")[0];
    assert_eq!(score["level"], "INFO");
    assert_eq!(score["message"], "score finished");
    assert_eq!(score["logger"], "decorators_sync");
    assert_eq!(score["context"]["file"], "tests/decorators_sync.rs");
    assert!(score["context"]["line"].as_u64().unwrap() > 0);
    let ms = duration_ms(score);
    assert!((2.0..1000.0).contains(&ms), "slept 2 ms: {ms}");
    assert_ne!(ms.fract(), 0.0, "sub-millisecond precision: {ms}");
    assert_eq!(score["data"]["status"], "success");
    assert_eq!(
        score["data"]["args"],
        json!({
            "user_id": "user-456",
            "request": {"count": 3, "sources": ["in_network", "out_network"]},
            "weight": "Opaque(2)",
            "password": "[REDACTED]",
        })
    );
    assert_eq!(score["data"]["result"], 14);

    let ranks = of_function(&app, "rank");
    assert_eq!(ranks.len(), 3);
    let statuses: Vec<_> = ranks.iter().map(|r| r["data"]["status"].clone()).collect();
    assert_eq!(statuses, ["success", "error", "error"]);
    for r in &ranks {
        assert_eq!(
            r["data"]["args"].as_object().unwrap().len(),
            1,
            "model skipped"
        );
        assert!(
            r["data"].get("result").is_none(),
            "log_result defaults to false"
        );
        assert!(
            r.get("exception").is_none(),
            "log_performance alone logs no error"
        );
    }
    assert_eq!(ranks[0]["data"]["args"]["raw"], "21");
    assert!(logs.errors().is_empty());
}

#[log_errors]
fn load_rank(raw: &str, api_key: &str) -> Result<u32, RankError> {
    let _ = api_key;
    Ok(raw.parse::<u32>()?)
}

#[log_errors(log_args = false)]
fn boxed(raw: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(raw.parse::<u32>()?)
}

#[log_errors]
fn with_anyhow(raw: &str) -> anyhow::Result<u32> {
    use anyhow::Context as _;
    raw.parse::<u32>().context("reading the rank")
}

#[log_errors]
fn stringly(raw: &str) -> Result<u32, String> {
    raw.parse::<u32>()
        .map_err(|e| format!("bad rank {raw:?}: {e}"))
}

#[test]
fn log_errors_writes_the_exception_and_returns_the_error() {
    let logs = run("info", || {
        let err = load_rank("x", "sk-live-1").unwrap_err();
        assert!(matches!(err, RankError::Model(_)), "returned unchanged");
        assert_eq!(load_rank("5", "k").unwrap(), 5);
        assert_eq!(
            boxed("").unwrap_err().to_string(),
            "cannot parse integer from empty string"
        );
        assert_eq!(
            with_anyhow("y").unwrap_err().to_string(),
            "reading the rank"
        );
        assert_eq!(
            stringly("z").unwrap_err(),
            "bad rank \"z\": invalid digit found in string"
        );
    });
    let errors = logs.errors();
    assert_eq!(errors.len(), 4, "one per failing call: {errors:#?}");
    assert_eq!(logs.component("app"), errors, "no record for the success");

    let e = one(&errors, "load_rank failed");
    assert_eq!(e["level"], "ERROR");
    assert_eq!(e["context"]["function"], "load_rank");
    assert_eq!(e["exception"]["type"], "RankError");
    assert_eq!(e["exception"]["message"], "model score unreadable");
    assert_eq!(
        e["exception"]["traceback"],
        "caused by: invalid digit found in string"
    );
    assert_eq!(
        e["data"]["args"],
        json!({"raw": "x", "api_key": "[REDACTED]"})
    );

    let e = one(&errors, "boxed failed");
    assert_eq!(
        e["exception"]["type"], "ParseIntError",
        "the error in the box"
    );
    assert_eq!(
        e["exception"]["message"],
        "cannot parse integer from empty string"
    );
    assert!(e.get("data").is_none(), "log_args = false");

    let e = one(&errors, "with_anyhow failed");
    assert_eq!(e["exception"]["message"], "reading the rank");
    assert!(e["exception"]["traceback"]
        .as_str()
        .unwrap()
        .starts_with("caused by: invalid digit found in string"));

    let e = one(&errors, "stringly failed");
    assert_eq!(e["exception"]["type"], "String");
    assert_eq!(
        e["exception"]["message"],
        "bad rank \"z\": invalid digit found in string"
    );
}

// ---- Methods, generics, impl Trait, trait impls.

struct Ranker {
    calls: u32,
    name: String,
}

impl Ranker {
    #[log_performance(log_result = true)]
    fn name(&self) -> &str {
        &self.name
    }

    #[log_performance]
    fn bump(&mut self, by: u32) -> u32 {
        self.calls += by;
        self.calls
    }

    #[log_errors(reraise = true)]
    fn into_calls(self) -> Result<u32, RankError> {
        if self.calls == 0 {
            return Err(RankError::EmptyPool);
        }
        Ok(self.calls)
    }
}

trait Scorer {
    fn score(&self, item: u64) -> Result<f64, RankError>;
}

impl Scorer for Ranker {
    #[log_performance(log_args = true)]
    #[log_errors]
    fn score(&self, item: u64) -> Result<f64, RankError> {
        if item == 0 {
            Err(RankError::EmptyPool)
        } else {
            Ok(item as f64 / 2.0)
        }
    }
}

#[log_performance(log_result = true)]
fn total<T: Into<u64> + Copy + fmt::Debug>(items: &[T]) -> u64 {
    items.iter().map(|&i| i.into()).sum()
}

#[log_performance]
fn first<T: serde::Serialize>(items: &[T]) -> Option<&T> {
    items.first()
}

#[log_performance(log_result = false, skip(filter))]
fn evens(limit: u32, filter: impl Fn(u32) -> bool + Copy) -> impl Iterator<Item = u32> {
    let _ = filter;
    (0..limit).filter(move |n| n % 2 == 0 && filter(*n))
}

#[test]
fn methods_generics_impl_trait_and_trait_impls() {
    let logs = run("info", || {
        let mut r = Ranker {
            calls: 0,
            name: "two_tower".into(),
        };
        assert_eq!(r.name(), "two_tower");
        assert_eq!(r.bump(2), 2);
        assert_eq!(r.score(3).unwrap(), 1.5);
        assert!(matches!(r.score(0), Err(RankError::EmptyPool)));
        assert_eq!(r.into_calls().unwrap(), 2);
        assert_eq!(total(&[1_u8, 2, 3]), 6);
        assert_eq!(total(&[10_u32]), 10);
        assert_eq!(first(&[(1, "a")]), Some(&(1, "a")));
        assert_eq!(evens(7, |_| true).collect::<Vec<_>>(), [0, 2, 4, 6]);
    });
    let app = logs.component("app");
    let name = of_function(&app, "name")[0];
    assert_eq!(name["data"]["result"], "two_tower");
    assert!(name["data"].get("args").is_none(), "self is never logged");
    let bump = of_function(&app, "bump")[0];
    assert_eq!(bump["data"]["args"], json!({"by": 2}));

    // Stacked: one timing record per call, one error record per failing call.
    let score = of_function(&app, "score");
    let timings: Vec<_> = score
        .iter()
        .filter(|r| r["data"].get("duration_ms").is_some())
        .collect();
    let failures: Vec<_> = score.iter().filter(|r| r["level"] == "ERROR").collect();
    assert_eq!(timings.len(), 2, "{score:#?}");
    assert_eq!(failures.len(), 1);
    assert_eq!(timings[1]["data"]["status"], "error");
    assert_eq!(failures[0]["exception"]["type"], "RankError");
    assert_eq!(failures[0]["data"]["args"], json!({"item": 0}));
    assert_eq!(
        of_function(&app, "into_calls").len(),
        0,
        "no error, no record"
    );

    let totals = of_function(&app, "total");
    // In a generic fn the bounds decide: `T: Debug` only gives the Debug form...
    assert_eq!(totals[0]["data"]["args"], json!({"items": "[1, 2, 3]"}));
    assert_eq!(totals[0]["data"]["result"], 6);
    assert_eq!(totals[1]["data"]["result"], 10);
    // ... and a `T: Serialize` bound the structured one.
    assert_eq!(
        of_function(&app, "first")[0]["data"]["args"],
        json!({"items": [[1, "a"]]})
    );
    let evens = of_function(&app, "evens")[0];
    assert_eq!(evens["data"]["args"]["limit"], 7);
    assert!(evens["data"]["args"].get("filter").is_none());
}

// ---- Request context, trace ids, trace_execution's span.

#[trace_execution(component = "serving")]
fn serve(user_id: &str, token: &str) -> Vec<u32> {
    let _ = token;
    tracing::info!(candidates = 2_u64, "ranked");
    inner_step(3)
}

#[log_performance]
fn inner_step(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[test]
fn records_carry_the_request_context_and_nest_under_the_call_span() {
    let logs = run("info", || {
        LogContext::new()
            .request_id("req-123")
            .user_id("user-456")
            .session_id("session-789")
            .field("experiment", "v2")
            .in_scope(|| {
                assert_eq!(serve("user-456", "t0k"), [0, 1, 2]);
            });
    });
    let serving = logs.component("serving");
    let messages: Vec<_> = serving
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "serve started",
            "ranked",
            "inner_step finished",
            "serve finished"
        ]
    );
    let trace_id = serving[0]["trace_id"].as_str().unwrap();
    let span_id = serving[0]["span_id"].as_str().unwrap();
    for r in &serving {
        assert_eq!(r["request_id"], "req-123");
        assert_eq!(r["user_id"], "user-456");
        assert_eq!(r["session_id"], "session-789");
        assert_eq!(r["trace_id"], trace_id);
        assert_eq!(r["span_id"], span_id, "all inside serve's span");
        assert_eq!(r["data"]["experiment"], "v2");
    }
    assert_eq!(
        serving[1]["context"]["function"], "serve",
        "the span names the function"
    );
    assert_eq!(
        serving[0]["data"]["args"],
        json!({"user_id": "user-456", "token": "[REDACTED]"})
    );
    let finished = &serving[3];
    assert_eq!(finished["data"]["status"], "success");
    duration_ms(finished);
    assert!(
        finished["data"].get("args").is_none(),
        "args are in the entry record"
    );

    // The call's span: a child of the LogContext span, in serving/.
    let spans = logs.spans();
    let serve_span = spans.iter().find(|s| s["span"]["name"] == "serve").unwrap();
    let request_span = spans
        .iter()
        .find(|s| s["span"]["name"] == "request")
        .unwrap();
    assert_eq!(serve_span["component"], "serving");
    assert_eq!(serve_span["span_id"], span_id);
    assert_eq!(
        serve_span["span"]["parent_span_id"],
        request_span["span_id"]
    );
    assert_eq!(request_span["trace_id"], trace_id);

    // Two timing records in performance/.
    let perf = logs.performance();
    assert_eq!(perf.len(), 2);
    assert!(perf.iter().all(|r| r["request_id"] == "req-123"));
}

#[trace_execution(component = "serving")]
#[log_errors(reraise = false)]
fn fragile(n: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if n == 0 {
        panic!("division by zero requested");
    }
    if n == 1 {
        return Err("one is not allowed".into());
    }
    Ok(10 / n)
}

#[log_errors(reraise = false)]
fn maybe(n: u32) -> Option<u32> {
    assert!(n < 10, "n too large: {n}");
    Some(n)
}

#[log_performance]
#[log_errors]
fn explodes() -> u32 {
    panic!("kaboom")
}

#[test]
fn panics_are_critical_and_resumed_or_returned() {
    let logs = run("info", || {
        let _cx = LogContext::new().request_id("req-p").enter();
        let err = fragile(0).unwrap_err();
        let panicked = err
            .downcast_ref::<tracekit::Panicked>()
            .expect("the panic, as an error");
        assert_eq!(panicked.message(), "division by zero requested");
        assert_eq!(fragile(1).unwrap_err().to_string(), "one is not allowed");
        assert_eq!(fragile(5).unwrap(), 2);
        assert_eq!(maybe(3), Some(3));
        assert_eq!(maybe(30), None);
        let caught = std::panic::catch_unwind(explodes).unwrap_err();
        assert_eq!(
            caught.downcast_ref::<&str>(),
            Some(&"kaboom"),
            "resumed unchanged"
        );
    });
    let errors = logs.errors();
    let critical: Vec<_> = errors.iter().filter(|r| r["level"] == "CRITICAL").collect();
    assert_eq!(critical.len(), 3, "{errors:#?}");
    let c = one(&errors, "fragile panicked");
    assert_eq!(c["component"], "serving");
    assert_eq!(c["request_id"], "req-p");
    assert_eq!(c["exception"]["type"], "panic");
    assert_eq!(c["exception"]["message"], "division by zero requested");
    assert!(!c["exception"]["traceback"].as_str().unwrap().is_empty());
    assert_eq!(c["data"]["args"], json!({"n": 0}));
    let e = one(&errors, "fragile failed");
    assert_eq!(e["exception"]["message"], "one is not allowed");
    assert_eq!(
        one(&errors, "maybe panicked")["exception"]["message"],
        "n too large: 30"
    );

    // The timing records say error for the panics and the Err.
    let perf = logs.performance();
    let status = |f: &str| -> Vec<String> {
        of_function(&perf, f)
            .iter()
            .map(|r| r["data"]["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(status("fragile"), ["error", "error", "success"]);
    assert_eq!(status("explodes"), ["error"]);
}

#[log_performance]
fn filtered_out(n: u32) -> u32 {
    n + 1
}

#[log_errors]
fn filtered_error() -> Result<(), RankError> {
    Err(RankError::EmptyPool)
}

#[test]
fn filtered_levels_write_nothing() {
    let logs = run("warn", || {
        assert_eq!(filtered_out(1), 2);
        assert!(matches!(filtered_error(), Err(RankError::EmptyPool)));
    });
    assert!(logs.performance().is_empty());
    assert_eq!(logs.errors().len(), 1, "ERROR still passes `warn`");
    let logs = run("warn,decorators_sync=info", || {
        assert_eq!(filtered_out(1), 2);
    });
    assert_eq!(logs.performance().len(), 1, "the fn's module is the target");
    let logs = run("off", || {
        assert!(matches!(filtered_error(), Err(RankError::EmptyPool)));
        // Nothing is logged, but reraise = false still returns the panic.
        assert_eq!(maybe(30), None);
    });
    assert!(logs.errors().is_empty());
    assert!(logs.all().is_empty());
}

#[log_performance(level = "debug")]
fn chatty(n: u32) -> u32 {
    n * 2
}

#[test]
fn the_level_argument_sets_the_timing_records_level() {
    let logs = run("info", || assert_eq!(chatty(2), 4));
    assert!(logs.performance().is_empty(), "DEBUG is below info");
    let logs = run("debug", || assert_eq!(chatty(2), 4));
    let perf = logs.performance();
    assert_eq!(perf.len(), 1);
    assert_eq!(perf[0]["level"], "DEBUG");
    assert_eq!(perf[0]["message"], "chatty finished");
}
