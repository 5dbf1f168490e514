//! Duration statistics with exact percentiles.
//!
//! Percentiles are exact, from all the values (sorted), by linear interpolation between the
//! two closest ranks: for `n` sorted values `x[0..n]` and a fraction `p`, the rank is
//! `h = (n - 1) * p`, and the percentile is `x[⌊h⌋] + (h - ⌊h⌋) * (x[⌊h⌋ + 1] - x[⌊h⌋])`.
//! This is the "linear" method of NumPy (its default), Hyndman and Fan's type 7, and DuckDB's
//! `quantile_cont`, so answers can be checked against any of them. With one value, every
//! percentile is that value.

use serde::Serialize;

/// Count, mean, min, max and the p50/p90/p95/p99 of a set of durations in milliseconds.
///
/// # Examples
///
/// ```
/// use tracekit_analyzer::DurationStats;
///
/// let s = DurationStats::from_values(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
/// assert_eq!((s.count, s.min, s.max, s.mean), (4, 1.0, 4.0, 2.5));
/// assert_eq!(s.p50, 2.5); // halfway between 2 and 3
/// assert!((s.p99 - 3.97).abs() < 1e-9);
/// assert!(DurationStats::from_values(Vec::new()).is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DurationStats {
    /// How many values.
    pub count: u64,
    /// Their arithmetic mean.
    pub mean: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

impl DurationStats {
    /// The statistics of `values` (NaN values are dropped), or `None` when there are none.
    ///
    /// Runs in linear time: the values the percentiles need are found by selection
    /// (`select_nth_unstable`), not by sorting everything.
    pub fn from_values(mut values: Vec<f64>) -> Option<DurationStats> {
        values.retain(|v| !v.is_nan());
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for &v in &values {
            min = min.min(v);
            max = max.max(v);
            sum += v;
        }
        const PS: [f64; 4] = [0.50, 0.90, 0.95, 0.99];
        // Each percentile needs ranks ⌊h⌋ and ⌊h⌋ + 1; select them in ascending order, each
        // selection leaving larger values to its right.
        let mut ranks: Vec<usize> = PS
            .iter()
            .flat_map(|&p| {
                let lo = ((n - 1) as f64 * p).floor() as usize;
                [lo, (lo + 1).min(n - 1)]
            })
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        let mut at = std::collections::HashMap::with_capacity(ranks.len());
        let mut start = 0;
        for &k in &ranks {
            let (_, v, _) = values[start..].select_nth_unstable_by(k - start, f64::total_cmp);
            at.insert(k, *v);
            start = k + 1;
        }
        let pct = |p: f64| {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            at[&lo] + (h - lo as f64) * (at[&hi] - at[&lo])
        };
        Some(DurationStats {
            count: n as u64,
            mean: sum / n as f64,
            min,
            max,
            p50: pct(0.50),
            p90: pct(0.90),
            p95: pct(0.95),
            p99: pct(0.99),
        })
    }
}

/// The `p` quantile (0 to 1) of sorted, non-empty `values`, by linear interpolation.
///
/// ```
/// use tracekit_analyzer::percentile_sorted;
/// let v = [10.0, 20.0, 30.0, 40.0, 50.0];
/// assert_eq!(percentile_sorted(&v, 0.5), 30.0);
/// assert_eq!(percentile_sorted(&v, 0.9), 46.0);
/// assert_eq!(percentile_sorted(&v, 1.0), 50.0);
/// ```
pub fn percentile_sorted(values: &[f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "percentile of no values");
    let h = (values.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(values.len() - 1);
    values[lo] + (h - lo as f64) * (values[hi] - values[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear() {
        // numpy.percentile(range(1, 101), [50, 90, 95, 99]) == [50.5, 90.1, 95.05, 99.01]
        let s = DurationStats::from_values((1..=100).map(f64::from).collect()).unwrap();
        assert!((s.p50 - 50.5).abs() < 1e-9);
        assert!((s.p90 - 90.1).abs() < 1e-9);
        assert!((s.p95 - 95.05).abs() < 1e-9);
        assert!((s.p99 - 99.01).abs() < 1e-9);
    }

    #[test]
    fn selection_agrees_with_sorting() {
        let mut x = 12345u64;
        for n in [1usize, 2, 3, 10, 101, 1000, 4099] {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 40) % 500) as f64 / 4.0
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let s = DurationStats::from_values(values).unwrap();
            for (got, p) in [(s.p50, 0.5), (s.p90, 0.9), (s.p95, 0.95), (s.p99, 0.99)] {
                assert_eq!(got, percentile_sorted(&sorted, p), "n={n} p={p}");
            }
            assert_eq!((s.min, s.max), (sorted[0], sorted[n - 1]));
        }
    }

    #[test]
    fn one_value() {
        let s = DurationStats::from_values(vec![7.0]).unwrap();
        assert_eq!((s.p50, s.p99, s.min, s.max), (7.0, 7.0, 7.0, 7.0));
    }
}
