//! The decorators with tracekit's panic hook installed (`init`, global: one test in this
//! binary): each panic is written once, by the innermost decorator that catches it, with the
//! backtrace and location taken at the panic; panics nobody decorated still get the hook's
//! record; a panic caught inside a decorated call is not lost.

mod decorators_support;

use decorators_support::{one, Logs};
use tracekit::{log_errors, log_performance, trace_execution, LogContext};

#[log_errors]
fn inner_explodes(depth: u32) -> u32 {
    panic!("inner exploded at depth {depth}")
}

#[trace_execution(component = "serving")]
fn outer_calls(depth: u32) -> u32 {
    inner_explodes(depth + 1)
}

#[log_errors(reraise = false)]
fn swallows() -> Option<u32> {
    let caught = std::panic::catch_unwind(|| panic!("caught inside the call"));
    assert_eq!(
        caught.unwrap_err().downcast_ref::<&str>(),
        Some(&"caught inside the call")
    );
    Some(1)
}

#[log_performance]
fn only_timed() -> u32 {
    panic!("no error decorator here")
}

#[test]
fn each_panic_is_written_once_with_the_panic_sites_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let guard = tracekit::builder().root(dir.path()).filter("info").init();
    LogContext::new().request_id("req-h").in_scope(|| {
        let r = std::panic::catch_unwind(|| outer_calls(1));
        assert_eq!(
            r.unwrap_err().downcast_ref::<String>().unwrap(),
            "inner exploded at depth 2"
        );
        assert_eq!(swallows(), Some(1));
        let message = |r: std::thread::Result<u32>| {
            let payload = r.unwrap_err();
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap()
        };
        assert_eq!(
            message(std::panic::catch_unwind(only_timed)),
            "no error decorator here"
        );
        assert_eq!(
            message(std::panic::catch_unwind(|| panic!("not decorated"))),
            "not decorated"
        );
        // Again, after all of the above: a fresh panic is written again.
        assert_eq!(
            message(std::panic::catch_unwind(|| inner_explodes(7))),
            "inner exploded at depth 7"
        );
    });
    drop(guard);

    let logs = Logs { dir };
    let critical: Vec<_> = logs
        .errors()
        .into_iter()
        .filter(|r| r["level"] == "CRITICAL")
        .collect();
    let messages: Vec<_> = critical
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "inner_explodes panicked",
            "panic: caught inside the call",
            "panic: no error decorator here",
            "panic: not decorated",
            "inner_explodes panicked",
        ],
        "{critical:#?}"
    );
    let first = &critical[0];
    assert_eq!(first["request_id"], "req-h");
    assert_eq!(first["component"], "serving", "inside outer_calls' span");
    assert_eq!(first["data"]["args"], serde_json::json!({"depth": 2}));
    let traceback = first["exception"]["traceback"].as_str().unwrap();
    assert!(
        traceback.starts_with("panicked at tests/decorators_panic_hook.rs:"),
        "{traceback}"
    );
    assert!(
        traceback.contains("inner_explodes"),
        "the backtrace of the panic site: {traceback}"
    );
    assert_eq!(critical[4]["data"]["args"], serde_json::json!({"depth": 7}));
    // The timing record of outer_calls says error, and no second CRITICAL came from it.
    let perf = logs.performance();
    assert_eq!(
        one(&perf, "outer_calls finished")["data"]["status"],
        "error"
    );
    assert_eq!(one(&perf, "only_timed finished")["data"]["status"], "error");
}
