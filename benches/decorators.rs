//! The decorators' own cost per call, on the caller's thread: a plain fn, then the same fn
//! under each attribute with its records enabled, and with the records filtered out by
//! level (`warn` for the `INFO` timing records, `off` for `log_errors`, whose records are
//! `ERROR`).
//!
//! The tracekit subscriber writes into a temporary directory through the lossless writer;
//! calls are timed in chunks with a flush between chunks, outside the timing (as in the
//! `bridge` bench): the numbers are the caller's cost, not the disk's. Each group installs
//! its own subscriber as the thread's default, so each filter is the only one in force.

use std::hint::black_box;

mod common;

use common::{time_in_chunks, CHUNK};
use criterion::{criterion_group, Bencher, Criterion};
use tracekit::exporters::{Compression, LogWriter};

fn timed_in_chunks(b: &mut Bencher<'_>, writer: &LogWriter, mut f: impl FnMut()) {
    b.iter_custom(|iters| time_in_chunks(iters, |_| writer.flush().unwrap(), &mut f));
}

#[inline(never)]
fn plain(n: u64) -> u64 {
    black_box(n).wrapping_mul(3)
}

/// The baseline of `guarded`: the same fn without the attribute.
#[inline(never)]
fn plain_result(n: u64) -> Result<u64, std::num::ParseIntError> {
    Ok(black_box(n).wrapping_mul(3))
}

#[tracekit::log_performance(log_args = false)]
#[inline(never)]
fn timed(n: u64) -> u64 {
    black_box(n).wrapping_mul(3)
}

#[tracekit::log_performance]
#[inline(never)]
fn timed_with_args(n: u64, user_id: &str) -> u64 {
    black_box(n).wrapping_mul(3) + user_id.len() as u64
}

#[tracekit::log_errors]
#[inline(never)]
fn guarded(n: u64) -> Result<u64, std::num::ParseIntError> {
    Ok(black_box(n).wrapping_mul(3))
}

#[tracekit::log_errors(log_args = false)]
#[inline(never)]
fn guarded_no_args(n: u64) -> Result<u64, std::num::ParseIntError> {
    Ok(black_box(n).wrapping_mul(3))
}

#[tracekit::log_performance(log_args = false)]
#[tracekit::log_errors(log_args = false)]
#[inline(never)]
fn stacked(n: u64) -> Result<u64, std::num::ParseIntError> {
    Ok(black_box(n).wrapping_mul(3))
}

#[tracekit::trace_execution(component = "serving")]
#[inline(never)]
fn traced(n: u64) -> u64 {
    black_box(n).wrapping_mul(3)
}

fn subscriber(filter: &str) -> (tempfile::TempDir, tracing::Dispatch, tracekit::Guard) {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter(filter)
        .log_writer(LogWriter::builder().compression(Compression::None))
        .build()
        .unwrap();
    (dir, dispatch, guard)
}

fn enabled(c: &mut Criterion) {
    let (_dir, dispatch, guard) = subscriber("info");
    let _default = tracing::dispatcher::set_default(&dispatch);
    let writer = guard.writer().clone();
    let mut g = c.benchmark_group("decorators_enabled");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(7))));
    g.bench_function("log_performance", |b| {
        timed_in_chunks(b, &writer, || {
            black_box(timed(black_box(7)));
        })
    });
    g.bench_function("log_performance_2_args", |b| {
        timed_in_chunks(b, &writer, || {
            black_box(timed_with_args(black_box(7), black_box("user-456")));
        })
    });
    g.bench_function("log_errors_ok_with_args", |b| {
        timed_in_chunks(b, &writer, || {
            black_box(guarded(black_box(7)).unwrap());
        })
    });
    g.bench_function("log_errors_ok", |b| {
        timed_in_chunks(b, &writer, || {
            black_box(guarded_no_args(black_box(7)).unwrap());
        })
    });
    g.bench_function("log_performance_and_log_errors", |b| {
        timed_in_chunks(b, &writer, || {
            black_box(stacked(black_box(7)).unwrap());
        })
    });
    g.bench_function("trace_execution", |b| {
        timed_in_chunks(b, &writer, || {
            black_box(traced(black_box(7)));
        })
    });
    g.finish();
}

fn filtered(c: &mut Criterion) {
    let mut g = c.benchmark_group("decorators_filtered");
    {
        let (_dir, dispatch, _guard) = subscriber("warn");
        let _default = tracing::dispatcher::set_default(&dispatch);
        g.bench_function("log_performance_warn", |b| {
            b.iter(|| timed_with_args(black_box(7), black_box("user-456")))
        });
        g.bench_function("trace_execution_warn", |b| b.iter(|| traced(black_box(7))));
    }
    {
        let (_dir, dispatch, _guard) = subscriber("off");
        let _default = tracing::dispatcher::set_default(&dispatch);
        g.bench_function("log_errors_off", |b| b.iter(|| guarded(black_box(7))));
        g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(7))));
        g.bench_function("plain_result_fn", |b| b.iter(|| plain_result(black_box(7))));
    }
    g.finish();
}

criterion_group!(benches, enabled, filtered);

/// `DECORATORS_CALLS=<fn>:<n>` calls one of the fns `n` times under a subscriber (`info`,
/// or `warn` for a `<fn>_warn`) instead of benchmarking: for
/// `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=decorators::<fn>`,
/// whose instruction count divided by `n` is the cost per call, free of the machine's noise.
fn count_calls(spec: &str) {
    let (name, n) = spec.split_once(':').expect("<fn>:<n>");
    let n: u64 = n.parse().expect("a number of calls");
    let (name, filter) = match name.strip_suffix("_warn") {
        Some(base) => (base, "warn"),
        None => (name, "info"),
    };
    let (_dir, dispatch, guard) = subscriber(filter);
    let _default = tracing::dispatcher::set_default(&dispatch);
    let f: fn() = match name {
        "plain" => || {
            black_box(plain(black_box(7)));
        },
        "timed" => || {
            black_box(timed(black_box(7)));
        },
        "timed_with_args" => || {
            black_box(timed_with_args(black_box(7), black_box("user-456")));
        },
        "guarded" => || {
            black_box(guarded(black_box(7)).unwrap());
        },
        "guarded_no_args" => || {
            black_box(guarded_no_args(black_box(7)).unwrap());
        },
        "stacked" => || {
            black_box(stacked(black_box(7)).unwrap());
        },
        "traced" => || {
            black_box(traced(black_box(7)));
        },
        other => panic!("unknown fn {other}"),
    };
    for i in 0..n {
        f();
        if i % CHUNK == CHUNK - 1 {
            guard.writer().flush().unwrap();
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var("DECORATORS_CALLS") {
        count_calls(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
