//! The decorators on async fns, on a multi-threaded tokio runtime: durations across awaits,
//! request context per task, spans across worker threads, errors and panics.

mod decorators_support;

use std::time::Duration;

use decorators_support::{duration_ms, of_function, one, Logs};
use serde_json::json;
use tracekit::{log_errors, log_performance, trace_execution, LogContext};
use tracing::instrument::WithSubscriber;
use tracing::Instrument as _;

/// Runs `f` on a 2-worker tokio runtime with a fresh tracekit subscriber (level `info`),
/// which every task gets through `with_current_subscriber`.
fn run_async<F: std::future::Future<Output = ()> + Send + 'static>(f: F) -> Logs {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter("info")
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(f.with_subscriber(dispatch)).await })
        .unwrap();
    drop(rt);
    drop(guard);
    Logs { dir }
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("candidate store timed out after {0} ms")]
    Timeout(u64),
    #[error("bad count")]
    Count(#[from] std::num::ParseIntError),
}

#[log_performance(log_args = true, log_result = false)]
async fn generate_candidates(user_id: String, count: usize) -> Vec<u64> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    tokio::task::yield_now().await;
    (0..count as u64).collect()
}

#[log_errors]
async fn fetch(raw: &str, timeout_ms: u64) -> Result<u64, FetchError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    if timeout_ms == 0 {
        return Err(FetchError::Timeout(250));
    }
    Ok(raw.parse::<u64>()?)
}

#[test]
fn async_fns_time_across_awaits_with_each_tasks_context() {
    let logs = run_async(async {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let cx = LogContext::new()
                .request_id(format!("req-{i}"))
                .user_id(format!("user-{i}"));
            let task = cx.instrument(async move {
                let c = generate_candidates(format!("user-{i}"), i).await;
                assert_eq!(c.len(), i);
                if i % 2 == 0 {
                    assert!(matches!(fetch("1", 0).await, Err(FetchError::Timeout(250))));
                } else {
                    assert!(matches!(fetch("x", 9).await, Err(FetchError::Count(_))));
                }
                assert_eq!(fetch("7", 9).await.unwrap(), 7);
            });
            tasks.push(tokio::spawn(task.with_current_subscriber()));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let perf = logs.performance();
    assert_eq!(perf.len(), 8);
    for r in &perf {
        let ms = duration_ms(r);
        assert!(ms >= 5.0, "slept 5 ms across awaits: {ms}");
        let user = r["data"]["args"]["user_id"].as_str().unwrap();
        assert_eq!(r["user_id"], user, "each task keeps its own context");
        let i: usize = user.strip_prefix("user-").unwrap().parse().unwrap();
        assert_eq!(r["request_id"], format!("req-{i}"));
        assert_eq!(r["data"]["args"]["count"], i);
        assert_eq!(r["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(r["data"]["status"], "success");
    }
    let errors = logs.errors();
    assert_eq!(errors.len(), 8, "{errors:#?}");
    for e in &errors {
        let i: usize = e["request_id"].as_str().unwrap()[4..].parse().unwrap();
        if i % 2 == 0 {
            assert_eq!(e["exception"]["type"], "FetchError");
            assert_eq!(
                e["exception"]["message"],
                "candidate store timed out after 250 ms"
            );
            assert_eq!(e["data"]["args"], json!({"raw": "1", "timeout_ms": 0}));
        } else {
            assert_eq!(e["exception"]["message"], "bad count");
            assert_eq!(
                e["exception"]["traceback"],
                "caused by: invalid digit found in string"
            );
        }
    }
}

struct Store {
    name: &'static str,
}

trait Repository {
    async fn get(&self, key: u32) -> Result<String, FetchError>;
}

impl Repository for Store {
    #[trace_execution(component = "storage", log_result = true)]
    async fn get(&self, key: u32) -> Result<String, FetchError> {
        tracing::info!(key, "looking up");
        tokio::time::sleep(Duration::from_millis(1)).await;
        tracing::info!("found");
        if key == 0 {
            return Err(FetchError::Timeout(1));
        }
        Ok(format!("{}:{key}", self.name))
    }
}

#[trace_execution(component = "serving", skip(store))]
async fn serve_recommendations(user_id: &str, store: &Store) -> Result<Vec<String>, FetchError> {
    let a = store.get(1).await?;
    // A spawned task takes the span along the tracing way.
    let b = tokio::spawn(
        async { Store { name: "replica" }.get(2).await }
            .in_current_span()
            .with_current_subscriber(),
    );
    Ok(vec![a, b.await.unwrap()?, user_id.to_owned()])
}

#[test]
fn trace_execution_spans_nest_across_awaits_and_components() {
    let logs = run_async(async {
        let store = Store { name: "primary" };
        let out = LogContext::new()
            .request_id("req-9")
            .instrument(serve_recommendations("user-1", &store))
            .await
            .unwrap();
        assert_eq!(out, ["primary:1", "replica:2", "user-1"]);
        let err = LogContext::new()
            .request_id("req-10")
            .instrument(store.get(0))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Timeout(1)));
    });
    let serving = logs.component("serving");
    let messages: Vec<_> = serving
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "serve_recommendations started",
            "serve_recommendations finished"
        ]
    );
    let storage = logs.component("storage");
    let for_req9: Vec<_> = storage
        .iter()
        .filter(|r| r["request_id"] == "req-9")
        .collect();
    // Two calls of get: started, looking up, found, finished each (the spawned one may
    // interleave with nothing, it runs after the first).
    assert_eq!(for_req9.len(), 8, "{for_req9:#?}");
    let trace_id = &serving[0]["trace_id"];
    assert!(for_req9.iter().all(|r| &r["trace_id"] == trace_id));
    let found = for_req9.iter().filter(|r| r["message"] == "found").count();
    assert_eq!(found, 2);
    let finished: Vec<_> = for_req9
        .iter()
        .filter(|r| r["message"] == "get finished")
        .collect();
    let mut results: Vec<_> = finished
        .iter()
        .map(|r| r["data"]["result"].clone())
        .collect();
    results.sort_by_key(|v| v.to_string());
    assert_eq!(results, [json!("primary:1"), json!("replica:2")]);

    // The span tree: get's spans are children of serve_recommendations' span.
    let spans = logs.spans();
    let serve = spans
        .iter()
        .find(|s| s["span"]["name"] == "serve_recommendations")
        .unwrap();
    let gets: Vec<_> = spans
        .iter()
        .filter(|s| s["span"]["name"] == "get" && s["trace_id"] == *trace_id)
        .collect();
    assert_eq!(gets.len(), 2);
    for g in &gets {
        assert_eq!(g["span"]["parent_span_id"], serve["span_id"]);
        assert_eq!(g["component"], "storage");
    }

    let failed = one(&logs.errors(), "get failed").clone();
    assert_eq!(failed["request_id"], "req-10");
    assert_eq!(failed["component"], "storage");
    assert_eq!(failed["exception"]["type"], "FetchError");
    let failed_timing: Vec<_> = of_function(&logs.performance(), "get")
        .into_iter()
        .filter(|r| r["request_id"] == "req-10")
        .cloned()
        .collect();
    assert_eq!(failed_timing[0]["data"]["status"], "error");
    assert!(failed_timing[0]["data"].get("result").is_none());
}

#[log_performance]
#[log_errors(reraise = false)]
async fn crashy(n: u32) -> Option<u32> {
    tokio::task::yield_now().await;
    if n == 0 {
        panic!("async boom");
    }
    Some(n)
}

#[log_errors]
async fn crashy_resumed() -> u32 {
    tokio::task::yield_now().await;
    panic!("resumed boom")
}

#[test]
fn async_panics_are_logged_once_and_resumed_or_returned() {
    let logs = run_async(async {
        let cx = LogContext::new().request_id("req-p");
        cx.instrument(async {
            assert_eq!(crashy(0).await, None);
            assert_eq!(crashy(2).await, Some(2));
            let join = tokio::spawn(crashy_resumed().with_current_subscriber()).await;
            let payload = join.unwrap_err().into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"resumed boom"));
        })
        .await
    });
    let errors = logs.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let c = one(&errors, "crashy panicked");
    assert_eq!(c["level"], "CRITICAL");
    assert_eq!(c["exception"]["message"], "async boom");
    assert_eq!(c["data"]["args"], json!({"n": 0}));
    assert_eq!(c["request_id"], "req-p");
    assert_eq!(
        one(&errors, "crashy_resumed panicked")["exception"]["message"],
        "resumed boom"
    );
    let statuses: Vec<_> = of_function(&logs.performance(), "crashy")
        .iter()
        .map(|r| r["data"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["error", "success"]);
}
