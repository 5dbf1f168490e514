//! The clock records are stamped with: the system clock, read through the CPU's time-stamp
//! counter where the kernel itself keeps time with it.
//!
//! `SystemTime::now()` costs about 22 ns here (the kernel's vDSO fences the counter read and
//! retries around its own update lock), a tenth of an event's whole cost. On x86_64 Linux
//! with the `tsc` clocksource (the kernel has checked that the counter is constant-rate and
//! in step across cores), [`now`] reads the counter unfenced and scales it to wall time
//! with a line fitted to the system clock: about 6 ns.
//!
//! The line is re-anchored to the system clock every 100 ms (by whichever thread reads the
//! clock then): continuous at the anchor and with a rate that absorbs the error over the next
//! interval, so the clock stays within microseconds of the system clock and does not go back
//! on its own; an error over 1 ms (the system clock was set) is taken as a step, back if the
//! system clock went back. Every 100th anchor (about every 10 s) checks the clocksource
//! again: a kernel that stopped trusting the counter turns it off. Until the first line is
//! fitted (the first 50 ms), elsewhere, and with another clocksource, [`now`] is
//! `SystemTime::now()`.
//!
//! This is the clock of record timestamps, read on the caller's thread for every record.
//! The writer's rotation and retention decisions use its [`Clock`](crate::Clock) instead,
//! which tests replace to cross midnight or age archives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current wall-clock time, as records are stamped with it (see the module docs).
///
/// ```
/// use std::time::{Duration, SystemTime};
///
/// let before = SystemTime::now();
/// let now = tracekit_exporters::clock::now();
/// let after = SystemTime::now();
/// // Within microseconds of the system clock.
/// assert!(now + Duration::from_millis(5) >= before && now <= after + Duration::from_millis(5));
/// ```
#[inline]
pub fn now() -> SystemTime {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(ns) = tsc::now_ns() {
        return UNIX_EPOCH + Duration::from_nanos(ns);
    }
    SystemTime::now()
}

/// Nanoseconds since the Unix epoch by the system clock (0 before it).
fn system_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
}

/// A line from counter ticks to Unix nanoseconds: `base_ns` at `base_tick`, `mult / 2^32`
/// ns per tick after it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Line {
    base_tick: u64,
    base_ns: u64,
    mult: u64,
}

impl Line {
    fn at(&self, tick: u64) -> u64 {
        let elapsed = tick.saturating_sub(self.base_tick);
        self.base_ns + ((u128::from(elapsed) * u128::from(self.mult)) >> 32) as u64
    }
}

/// An error larger than this is the system clock being set: taken as a step.
const STEP_NS: i128 = 1_000_000;

/// The line after `prev`, anchored at `tick` where the system clock reads `wall`; `rate` is
/// the counter's measured ns per tick (`2^32` fixed point) and `interval` the ticks until the
/// next anchor. Continuous at `tick`, and meets the system clock at the next anchor.
fn refit(prev: &Line, tick: u64, wall: u64, rate: u64, interval: u64) -> Line {
    let ours = prev.at(tick);
    let error = i128::from(wall) - i128::from(ours);
    if error.abs() > STEP_NS || interval == 0 {
        return Line {
            base_tick: tick,
            base_ns: wall,
            mult: rate,
        };
    }
    // Absorb `error` over `interval` ticks: at most 1 ms per interval, so the rate stays
    // positive for any interval of 1 ms or more.
    let correction = (error << 32) / i128::from(interval);
    let mult = (i128::from(rate) + correction).clamp(1, i128::from(u64::MAX)) as u64;
    Line {
        base_tick: tick,
        base_ns: ours,
        mult,
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use std::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};
    use std::sync::Mutex;

    use super::{refit, system_ns, Line};

    /// Fit the first line after this long; re-anchor it this often.
    const FIRST_FIT_NS: u64 = 50_000_000;
    const ANCHOR_EVERY_NS: u64 = 100_000_000;

    const UNKNOWN: u8 = 0;
    const FITTING: u8 = 1;
    const READY: u8 = 2;
    const OFF: u8 = 3;

    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
    /// The published line, under a sequence lock (odd while it is written).
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static BASE_TICK: AtomicU64 = AtomicU64::new(0);
    static BASE_NS: AtomicU64 = AtomicU64::new(0);
    static MULT: AtomicU64 = AtomicU64::new(0);
    /// Ticks between anchors, once the rate is known.
    static INTERVAL: AtomicU64 = AtomicU64::new(u64::MAX);

    /// Anchors since the clocksource was last checked.
    static ANCHORS: AtomicU64 = AtomicU64::new(0);

    /// The last system-clock sample, `(tick, ns)`, and the counter's rate measured up to it
    /// (ns per tick, `2^32` fixed point): the rate is measured between samples.
    static SAMPLE: Mutex<(u64, u64, u64)> = Mutex::new((0, 0, 0));

    fn tick() -> u64 {
        // SAFETY: `rdtsc` exists on every x86_64 CPU and only reads the counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// The counter and the system clock read together: the best of three tries (a thread
    /// preempted between the reads would pair a tick with a later time).
    fn sample() -> (u64, u64) {
        let mut best = (u64::MAX, 0, 0);
        for _ in 0..3 {
            let before = tick();
            let wall = system_ns();
            let after = tick();
            let spread = after.wrapping_sub(before);
            if spread < best.0 {
                best = (spread, before + spread / 2, wall);
            }
        }
        (best.1, best.2)
    }

    /// Unix nanoseconds from the counter, or `None` when the system clock is to be read.
    #[inline]
    pub(super) fn now_ns() -> Option<u64> {
        if STATE.load(Ordering::Acquire) != READY {
            return slow();
        }
        loop {
            let seq = SEQ.load(Ordering::Acquire);
            let line = Line {
                base_tick: BASE_TICK.load(Ordering::Relaxed),
                base_ns: BASE_NS.load(Ordering::Relaxed),
                mult: MULT.load(Ordering::Relaxed),
            };
            let tick = tick();
            fence(Ordering::Acquire);
            if seq & 1 == 0 && SEQ.load(Ordering::Relaxed) == seq {
                // Due for a new anchor, or the counter went back (wrapping: far ahead).
                if tick.wrapping_sub(line.base_tick) > INTERVAL.load(Ordering::Relaxed) {
                    anchor(tick);
                }
                return Some(line.at(tick));
            }
            std::hint::spin_loop();
        }
    }

    /// Before the first line: decide whether the counter is usable, and fit the line once
    /// the first sample is old enough.
    #[cold]
    fn slow() -> Option<u64> {
        match STATE.load(Ordering::Acquire) {
            UNKNOWN => {
                if kernel_uses_it() {
                    let mut last = SAMPLE.lock().unwrap_or_else(|e| e.into_inner());
                    if STATE.load(Ordering::Acquire) == UNKNOWN {
                        let (tick, wall) = sample();
                        *last = (tick, wall, 0);
                        STATE.store(FITTING, Ordering::Release);
                    }
                } else {
                    let _ =
                        STATE.compare_exchange(UNKNOWN, OFF, Ordering::AcqRel, Ordering::Acquire);
                }
                None
            }
            FITTING => {
                let Ok(mut last) = SAMPLE.try_lock() else {
                    return None;
                };
                let (tick0, wall0, _) = *last;
                if STATE.load(Ordering::Acquire) != FITTING || system_ns() < wall0 + FIRST_FIT_NS {
                    return None;
                }
                let (tick, wall) = sample();
                let ticks = tick.saturating_sub(tick0);
                if ticks == 0 {
                    // The counter does not move: leave it.
                    STATE.store(OFF, Ordering::Release);
                    return None;
                }
                let rate = ((u128::from(wall.saturating_sub(wall0)) << 32) / u128::from(ticks))
                    .min(u128::from(u64::MAX)) as u64;
                // A counter between 10 MHz and 100 GHz, or none of it.
                if !((1u64 << 32) / 100..=(100u64 << 32)).contains(&rate) {
                    STATE.store(OFF, Ordering::Release);
                    return None;
                }
                let interval = (u128::from(ANCHOR_EVERY_NS) << 32) / u128::from(rate.max(1));
                publish(&Line {
                    base_tick: tick,
                    base_ns: wall,
                    mult: rate,
                });
                INTERVAL.store(interval.min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
                *last = (tick, wall, rate);
                STATE.store(READY, Ordering::Release);
                None
            }
            _ => None,
        }
    }

    /// Re-anchors the line to the system clock, unless another thread is doing it.
    #[cold]
    fn anchor(seen: u64) {
        let Ok(mut last) = SAMPLE.try_lock() else {
            return;
        };
        let current = Line {
            base_tick: BASE_TICK.load(Ordering::Relaxed),
            base_ns: BASE_NS.load(Ordering::Relaxed),
            mult: MULT.load(Ordering::Relaxed),
        };
        let interval = INTERVAL.load(Ordering::Relaxed);
        let (ahead, behind) = (
            seen.wrapping_sub(current.base_tick),
            current.base_tick.wrapping_sub(seen),
        );
        if ahead <= interval || behind <= interval {
            // Another thread has just anchored it (or read the counter a moment before).
            return;
        }
        if ANCHORS.fetch_add(1, Ordering::Relaxed) % 100 == 99 && !kernel_uses_it() {
            STATE.store(OFF, Ordering::Release);
            return;
        }
        let (tick, wall) = sample();
        let (tick0, wall0, known) = *last;
        // The rate since the last sample, unless the system clock was set or the counter
        // went back in between (then more than 0.1% off the rate known so far).
        let rate = match (tick.checked_sub(tick0), wall.checked_sub(wall0)) {
            (Some(ticks), Some(ns)) if ticks > 0 => {
                ((u128::from(ns) << 32) / u128::from(ticks)).min(u128::from(u64::MAX)) as u64
            }
            _ => known,
        };
        let rate = match rate.abs_diff(known) <= known / 1000 {
            true => rate,
            false => known,
        };
        publish(&refit(&current, tick, wall, rate, interval));
        *last = (tick, wall, rate);
    }

    /// The kernel keeps time with the counter (and has checked it is fit for that).
    fn kernel_uses_it() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    }

    /// Publishes `line` (the caller holds `SAMPLE`, so there is one writer).
    fn publish(line: &Line) {
        let seq = SEQ.load(Ordering::Relaxed);
        SEQ.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        BASE_TICK.store(line.base_tick, Ordering::Relaxed);
        BASE_NS.store(line.base_ns, Ordering::Relaxed);
        MULT.store(line.mult, Ordering::Relaxed);
        SEQ.store(seq + 2, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2.25 GHz: 2^32 / 2.25 ns per tick.
    const RATE: u64 = ((1u128 << 32) * 4 / 9) as u64;
    const INTERVAL: u64 = 225_000_000; // 100 ms of ticks

    #[test]
    fn a_refit_line_is_continuous_and_meets_the_system_clock_at_the_next_anchor() {
        let prev = Line {
            base_tick: 1_000,
            base_ns: 5_000_000_000,
            mult: RATE,
        };
        let tick = 1_000 + INTERVAL;
        let ours = prev.at(tick);
        for error in [-900_000i64, -3_000, 0, 2_500, 999_999] {
            let wall = (ours as i64 + error) as u64;
            let next = refit(&prev, tick, wall, RATE, INTERVAL);
            assert_eq!(
                next.at(tick),
                ours,
                "continuous at the anchor ({error} ns off)"
            );
            let met = next.at(tick + INTERVAL) as i64;
            let truth = (wall + prev.at(1_000 + 2 * INTERVAL) - prev.at(1_000 + INTERVAL)) as i64;
            assert!((met - truth).abs() <= 2, "{error} ns off: {met} vs {truth}");
            assert!(next.mult > 0);
        }
    }

    #[test]
    fn an_error_over_a_millisecond_is_a_step() {
        let prev = Line {
            base_tick: 0,
            base_ns: 5_000_000_000,
            mult: RATE,
        };
        let tick = INTERVAL;
        let wall = prev.at(tick) - 3_000_000;
        let next = refit(&prev, tick, wall, RATE, INTERVAL);
        assert_eq!(
            next,
            Line {
                base_tick: tick,
                base_ns: wall,
                mult: RATE
            }
        );
    }

    #[test]
    fn a_line_neither_overflows_nor_goes_back_over_long_gaps() {
        let line = Line {
            base_tick: 10,
            base_ns: 1_700_000_000_000_000_000,
            mult: RATE,
        };
        // A tick from before the anchor (another core read it a moment earlier) reads as
        // the anchor; an hour later is an hour later.
        assert_eq!(line.at(5), line.base_ns);
        let hour = 3_600 * 2_250_000_000u64;
        let later = line.at(10 + hour) - line.base_ns;
        // Within the fixed point's precision (2^-32 ns per tick: about a microsecond an hour).
        assert!((later as i64 - 3_600_000_000_000).abs() < 5_000, "{later}");
    }

    #[test]
    fn the_clock_keeps_to_the_system_clock_and_never_goes_back() {
        // Long enough for the first fit (50 ms) and several anchors (every 100 ms).
        let until = SystemTime::now() + Duration::from_millis(400);
        let mut last = now();
        let mut worst = Duration::ZERO;
        while SystemTime::now() < until {
            let before = SystemTime::now();
            let t = now();
            let after = SystemTime::now();
            assert!(t >= last, "went back: {last:?} then {t:?}");
            last = t;
            let off = if t < before {
                before.duration_since(t).unwrap()
            } else {
                t.duration_since(after).unwrap_or(Duration::ZERO)
            };
            worst = worst.max(off);
        }
        // The counter's line is fitted to the system clock: microseconds apart, not
        // milliseconds (a bad rate or a stale anchor would be off by far more).
        assert!(
            worst < Duration::from_micros(500),
            "{worst:?} off the system clock"
        );
        // Where the kernel keeps time with the counter, the counter is what was read.
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let source = std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            );
            if source.is_ok_and(|s| s.trim() == "tsc") {
                assert!(
                    tsc::now_ns().is_some(),
                    "the counter's line was never fitted"
                );
            }
        }
    }
}
