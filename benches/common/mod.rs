//! What the benches share: timing a caller in chunks, with the drain between chunks outside
//! the timing.

use std::time::{Duration, Instant};

/// Calls per timed chunk: well inside the writers' queues, so the caller never waits.
pub const CHUNK: u64 = 10_000;

/// Runs `f` `iters` times in chunks of [`CHUNK`] and returns the time spent in `f`; after each
/// chunk, `drain(n)` (not timed) waits until the `n` calls' records are written.
pub fn time_in_chunks(iters: u64, mut drain: impl FnMut(u64), mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        total += start.elapsed();
        drain(n);
        left -= n;
    }
    total
}
