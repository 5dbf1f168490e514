//! Request context across `.await`, tasks and threads, with the global subscriber of
//! `tracekit::init` (one per test binary: this binary has one test).

mod bridge_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tracekit::LogContext;
use tracing::{info, Instrument};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn context_follows_requests_tasks_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let guard = tracekit::builder()
        .root(dir.path())
        .panic_hook(false)
        .init();
    // `init` panics where `try_init` returns the error, as tracing-subscriber's do.
    let second = std::panic::catch_unwind(|| tracekit::builder().root(dir.path()).init());
    assert!(second.is_err(), "a second init must panic");
    assert!(matches!(
        tracekit::builder().root(dir.path()).try_init(),
        Err(tracekit::InitError::AlreadyInitialized)
    ));

    // 100 concurrent requests, each awaiting several times (and so hopping between workers).
    let mut tasks = Vec::new();
    for n in 0..100_u64 {
        let request = LogContext::new()
            .request_id(format!("req-{n}"))
            .user_id(format!("user-{n}"))
            .instrument(async move {
                for step in 0..5_u64 {
                    info!(n, step, "step");
                    tokio::time::sleep(Duration::from_millis(1 + (n * 7 + step) % 3)).await;
                    tokio::task::yield_now().await;
                }
            });
        tasks.push(tokio::spawn(request));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // A spawned task and a thread, handed the context the tracing way.
    LogContext::new()
        .request_id("req-handoff")
        .instrument(async {
            let span = tracing::Span::current();
            tokio::spawn(async { info!("in spawned task") }.instrument(span.clone()))
                .await
                .unwrap();
            std::thread::spawn(move || span.in_scope(|| info!("in spawned thread")))
                .join()
                .unwrap();
        })
        .await;

    drop(guard);
    let records = bridge_support::component_records(dir.path());

    let mut traces: HashMap<u64, HashSet<String>> = HashMap::new();
    let steps: Vec<_> = records.iter().filter(|r| r["message"] == "step").collect();
    assert_eq!(steps.len(), 500);
    for r in steps {
        let n = r["data"]["n"].as_u64().unwrap();
        assert_eq!(r["request_id"], format!("req-{n}").as_str(), "{r}");
        assert_eq!(r["user_id"], format!("user-{n}").as_str(), "{r}");
        traces
            .entry(n)
            .or_default()
            .insert(r["trace_id"].as_str().unwrap().to_owned());
    }
    assert!(
        traces.values().all(|t| t.len() == 1),
        "one trace per request"
    );
    let distinct: HashSet<_> = traces.values().flatten().collect();
    assert_eq!(distinct.len(), 100, "no two requests share a trace");

    for message in ["in spawned task", "in spawned thread"] {
        let r = bridge_support::one(&records, message);
        assert_eq!(r["request_id"], "req-handoff", "{r}");
        assert!(r["trace_id"].is_string());
    }
    let task = bridge_support::one(&records, "in spawned task");
    let thread = bridge_support::one(&records, "in spawned thread");
    assert_eq!(task["trace_id"], thread["trace_id"]);
    assert_ne!(task["context"]["thread"], serde_json::Value::Null);
}
