//! The event layer against a real subscriber: which span an event belongs to, what it
//! inherits, and that cached heads never outlive what they were built from.

use std::error::Error;
use std::fmt;

use crate::{CRITICAL_FIELD, TIMING_FIELD};

/// A tracekit subscriber writing under `root`, with `default` as the default component.
fn subscriber(root: &std::path::Path, default: &str) -> (tracing::Dispatch, crate::Guard) {
    crate::builder()
        .root(root)
        .default_component(default)
        .panic_hook(false)
        .build()
        .unwrap()
}

/// The records written under `f`, parsed, with `component` `t` (so in `logs/t/t.log`).
fn records(f: impl FnOnce()) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = subscriber(dir.path(), "t");
    tracing::dispatcher::with_default(&dispatch, f);
    drop(guard);
    let text = std::fs::read_to_string(dir.path().join("logs/t/t.log")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r.get("span").is_none())
        .collect()
}

#[derive(Debug)]
struct Boom;
impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("boom")
    }
}
impl Error for Boom {}

#[test]
fn spans_inherit_from_the_parent_the_registry_gives_them() {
    // A contextual span's parent comes from the layer's own stack; explicit parents and
    // roots from the registry. The event inside each child shows what it inherited.
    let other = tempfile::tempdir().unwrap();
    let child = |n: u64, span: tracing::Span| span.in_scope(|| tracing::info!(n, "in child"));
    let records = records(|| {
        let a = tracing::info_span!("a", request_id = "req-a");
        let b = tracing::info_span!("b", request_id = "req-b");
        let _in_a = a.enter();
        child(1, tracing::info_span!("child"));
        {
            let _in_b = b.enter();
            child(2, tracing::info_span!("child"));
            {
                // Entered again while entered: the registry keeps `b` current.
                let _again = a.enter();
                child(3, tracing::info_span!("child"));
            }
            child(4, tracing::info_span!(parent: &a, "child"));
            child(5, tracing::info_span!(parent: None, "child"));
            // Another subscriber on this thread sees none of these spans.
            let (dispatch, guard) = subscriber(other.path(), "u");
            tracing::dispatcher::with_default(&dispatch, || {
                child(6, tracing::info_span!("child"));
            });
            drop(guard);
            // A span opened here and entered later keeps the parent it opened under.
            let later = tracing::info_span!("child");
            drop(_in_b);
            child(7, later);
        }
        drop(_in_a);
        child(8, tracing::info_span!("child"));
    });
    let seen: Vec<(u64, Option<&str>)> = records
        .iter()
        .map(|r| (r["data"]["n"].as_u64().unwrap(), r["request_id"].as_str()))
        .collect();
    let (a, b) = (Some("req-a"), Some("req-b"));
    assert_eq!(
        seen,
        [(1, a), (2, b), (3, b), (4, a), (5, None), (7, b), (8, None)]
    );
    let text = std::fs::read_to_string(other.path().join("logs/u/u.log")).unwrap();
    let theirs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r.get("span").is_none())
        .collect();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["request_id"], serde_json::Value::Null);
}

#[test]
fn events_find_their_span_as_the_registry_does() {
    // The layer keeps its own stack of entered spans (not the registry's lookups); every
    // event must land in the span the registry calls current.
    let other = tempfile::tempdir().unwrap();
    let records = records(|| {
        let a = tracing::info_span!("a", request_id = "req-a");
        let b = tracing::info_span!("b", request_id = "req-b");
        let _in_a = a.enter();
        tracing::info!(n = 1, "in a");
        {
            let _in_b = b.enter();
            tracing::info!(n = 2, "in b");
            {
                // Entered again while entered: the registry keeps `b` current.
                let _again = a.enter();
                tracing::info!(n = 3, "a again");
            }
            tracing::info!(n = 4, "b after");
            tracing::info!(parent: &a, n = 5, "explicit parent");
            tracing::info!(parent: None, n = 6, "no parent");
            // Another subscriber on this thread sees none of these spans.
            let (dispatch, guard) = subscriber(other.path(), "u");
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(n = 7, "other, no span");
                let _c = tracing::info_span!("c", request_id = "req-c").entered();
                tracing::info!(n = 8, "other, in c");
            });
            drop(guard);
            tracing::info!(n = 9, "b after the other");
        }
        tracing::info!(n = 10, "a after");
        drop(_in_a);
        tracing::info!(n = 11, "none");
    });
    let seen = |records: &[serde_json::Value]| -> Vec<(u64, Option<String>, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r["data"]["n"].as_u64().unwrap(),
                    r["request_id"].as_str().map(str::to_owned),
                    r["context"]["function"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let here = module_path!().to_owned();
    let (a, b) = (Some("req-a".to_owned()), Some("req-b".to_owned()));
    assert_eq!(
        seen(&records),
        [
            (1, a.clone(), "a".to_owned()),
            (2, b.clone(), "b".to_owned()),
            (3, b.clone(), "b".to_owned()),
            (4, b.clone(), "b".to_owned()),
            (5, a.clone(), "a".to_owned()),
            (6, None, here.clone()),
            (9, b.clone(), "b".to_owned()),
            (10, a, "a".to_owned()),
            (11, None, here.clone()),
        ]
    );
    let text = std::fs::read_to_string(other.path().join("logs/u/u.log")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r.get("span").is_none())
        .collect();
    assert_eq!(
        seen(&records),
        [
            (7, None, here),
            (8, Some("req-c".to_owned()), "c".to_owned())
        ]
    );
}

#[test]
fn a_request_contexts_otel_context_is_current_only_while_entered() {
    // Its guard lives in the layer's stack frame: attached on enter, dropped on exit, so
    // the OpenTelemetry API (and tracing-opentelemetry's child spans) see it exactly then.
    use opentelemetry::trace::TraceContextExt;
    fn current() -> opentelemetry::trace::SpanContext {
        opentelemetry::Context::current()
            .span()
            .span_context()
            .clone()
    }
    records(|| {
        assert!(!current().is_valid(), "nothing current before");
        let outer = crate::LogContext::new().request_id("req-o").span();
        let entered = outer.enter();
        let outer_id = current().span_id();
        assert!(current().is_valid());
        {
            let _inner = crate::LogContext::new().user_id("user-i").enter();
            let inner_id = current().span_id();
            assert!(current().is_valid());
            assert_ne!(inner_id, outer_id, "the inner context is current");
            // A plain span entered and left inside does not take the context away.
            tracing::info_span!("work").in_scope(|| {
                assert_ne!(current().span_id(), outer_id);
            });
            assert_eq!(current().span_id(), inner_id);
        }
        assert_eq!(
            current().span_id(),
            outer_id,
            "the outer one is current again"
        );
        drop(entered);
        assert!(!current().is_valid(), "nothing current after");
        // Entered again later: current again.
        outer.in_scope(|| assert_eq!(current().span_id(), outer_id));
    });
}

#[test]
fn one_pass_keeps_record_keys_out_of_data() {
    let records = records(|| {
        let _cx = crate::LogContext::new()
            .field("experiment", "v2")
            .field("attempt", 1_u64)
            .enter();
        // A backtrace before the error is still the exception's; a second error is data.
        tracing::error!(
            backtrace = "at f (a.rs:1)",
            error = &Boom as &dyn Error,
            other = &Boom as &dyn Error,
            attempt = 3_u64,
            "first"
        );
        // Without an error, a backtrace is an ordinary field.
        tracing::warn!(backtrace = ?"bt", n = 1_i64, "second");
        crate::critical!(token = "t0k", "third");
    });
    let first = &records[0];
    assert_eq!(first["message"], "first");
    assert_eq!(first["exception"]["type"], "Boom");
    assert_eq!(first["exception"]["traceback"], "at f (a.rs:1)");
    assert_eq!(
        first["data"],
        serde_json::json!({"experiment": "v2", "other": "boom", "attempt": 3})
    );
    let second = &records[1];
    assert_eq!(
        second["data"],
        serde_json::json!({"experiment": "v2", "attempt": 1, "n": 1, "backtrace": "\"bt\""})
    );
    assert!(second.get("exception").is_none());
    let third = &records[2];
    assert_eq!(third["level"], "CRITICAL");
    assert_eq!(third["data"]["token"], "[REDACTED]");
    assert!(third["data"].get(CRITICAL_FIELD).is_none());
}

#[test]
fn timing_field_marks_a_timing_record() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = subscriber(dir.path(), "t");
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!({ TIMING_FIELD } = true, duration_ms = 1.5, "timed");
        tracing::info!(duration_ms = 2.5, "not timed");
    });
    drop(guard);
    let perf =
        std::fs::read_to_string(dir.path().join("logs/performance/performance.log")).unwrap();
    let perf: Vec<serde_json::Value> = perf
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(perf.len(), 1);
    assert_eq!(perf[0]["message"], "timed");
    assert_eq!(perf[0]["data"], serde_json::json!({"duration_ms": 1.5}));
    assert_eq!(perf[0]["component"], "t");
}

/// One call site logs again and again while what its record head depends on changes: the
/// span, a recorded field of the span, the event's own component, the layer. Each line
/// must show the values of its own moment, never a cached head of an earlier one.
#[test]
fn cached_heads_follow_every_change() {
    fn log(component: Option<&str>, n: u64) {
        match component {
            Some(c) => tracing::info!(component = c, n, token = "t0k", "line"),
            None => tracing::info!(n, token = "t0k", "line"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = subscriber(dir.path(), "t");
    tracing::dispatcher::with_default(&dispatch, || {
        for round in 0..2_u64 {
            let _a = crate::LogContext::new().request_id("req-a").enter();
            log(None, 10 * round);
            let span = tracing::info_span!("work", request_id = tracing::field::Empty);
            let _s = span.enter();
            log(None, 10 * round + 1);
            span.record("request_id", "req-b");
            log(None, 10 * round + 2);
            log(Some("x"), 10 * round + 3);
            log(Some("y"), 10 * round + 4);
            log(None, 10 * round + 5);
        }
    });
    drop(guard);
    let mut records: Vec<serde_json::Value> = ["t", "x", "y"]
        .iter()
        .flat_map(|c| {
            let text = std::fs::read_to_string(dir.path().join(format!("logs/{c}/{c}.log")));
            let text = text.unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|r| r.get("span").is_none())
                .collect::<Vec<_>>()
        })
        .collect();
    records.sort_by_key(|r| r["data"]["n"].as_u64());
    let seen: Vec<(u64, &str, &str, &str)> = records
        .iter()
        .map(|r| {
            assert_eq!(r["data"]["token"], "[REDACTED]");
            (
                r["data"]["n"].as_u64().unwrap(),
                r["request_id"].as_str().unwrap(),
                r["component"].as_str().unwrap(),
                r["context"]["function"].as_str().unwrap(),
            )
        })
        .collect();
    let here = module_path!();
    for round in 0..2 {
        let n = 10 * round;
        assert_eq!(
            &seen[6 * round as usize..6 * round as usize + 6],
            [
                (n, "req-a", "t", here),
                (n + 1, "req-a", "t", "work"),
                (n + 2, "req-b", "t", "work"),
                (n + 3, "req-b", "x", "work"),
                (n + 4, "req-b", "y", "work"),
                (n + 5, "req-b", "t", "work"),
            ]
        );
    }
    // Another layer (another default component) on the same thread, same call site.
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = subscriber(dir.path(), "other");
    tracing::dispatcher::with_default(&dispatch, || log(None, 99));
    drop(guard);
    let text = std::fs::read_to_string(dir.path().join("logs/other/other.log")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (line["component"].as_str(), line["data"]["n"].as_u64()),
        (Some("other"), Some(99))
    );
    assert!(line.get("request_id").is_none());
}
