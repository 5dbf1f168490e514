//! `analyze_performance` and `slow_operations`: the timing records of one component.

use std::collections::HashMap;

use memchr::memmem::Finder;
use serde::Serialize;

use super::files::{self, LogFile};
use super::record::{
    is_error_level, quick_level, quick_timestamp, FastTiming, LogEntry, RecordView, TimingReader,
    DURATION,
};
use super::scan::{self, Block, ScanReport, Skips};
use super::stats::DurationStats;
use super::time::Timestamp;
use super::{check_component, AnalyzeError, LogAnalyzer};

/// The statistics of one function's timing records.
///
/// ```
/// use tracekit_analyzer::{DurationStats, FunctionStats};
/// let f = FunctionStats { function: "rank".into(), duration_ms: DurationStats::from_values(vec![1.0, 3.0]).unwrap() };
/// assert_eq!(f.total_ms(), 4.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionStats {
    /// `context.function`, else the record's message.
    pub function: String,
    /// Its durations.
    pub duration_ms: DurationStats,
}

impl FunctionStats {
    /// The time spent in it: count × mean.
    pub fn total_ms(&self) -> f64 {
        self.duration_ms.count as f64 * self.duration_ms.mean
    }
}

/// The answer of [`LogAnalyzer::analyze_performance`].
///
/// ```
/// use tracekit_analyzer::LogAnalyzer;
/// let r = LogAnalyzer::new("no/such/dir").analyze_performance("ranking", None).unwrap();
/// assert_eq!((r.records, r.error_rate), (0, 0.0));
/// assert!(r.duration_ms.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerformanceReport {
    /// The component.
    pub component: String,
    /// Only records at or after this instant were counted.
    pub since: Option<Timestamp>,
    /// Records of the component.
    pub records: u64,
    /// Of which `ERROR` or `CRITICAL`.
    pub errors: u64,
    /// `errors / records` (0 without records).
    pub error_rate: f64,
    /// The durations of all timing records; `None` without any.
    pub duration_ms: Option<DurationStats>,
    /// Per function, the most total time first.
    pub functions: Vec<FunctionStats>,
    /// What was read and skipped.
    pub scan: ScanReport,
}

/// One timing record over the threshold.
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// let r = LogAnalyzer::new("no/such/dir").slow_operations("ranking", 1000.0, Some(10)).unwrap();
/// assert!(r.operations.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlowOperation {
    /// Its `data.duration_ms`.
    pub duration_ms: f64,
    /// `context.function`, else the message.
    pub function: String,
    /// The record.
    pub record: LogEntry,
}

/// The answer of [`LogAnalyzer::slow_operations`].
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// let r = LogAnalyzer::new("no/such/dir").slow_operations("ranking", 250.0, None).unwrap();
/// assert_eq!((r.component.as_str(), r.threshold_ms, r.total), ("ranking", 250.0, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlowReport {
    /// The component.
    pub component: String,
    /// Operations slower than this were kept.
    pub threshold_ms: f64,
    /// How many there were, before the limit.
    pub total: u64,
    /// The slowest first (then oldest first), at most `limit`.
    pub operations: Vec<SlowOperation>,
    /// What was read and skipped.
    pub scan: ScanReport,
}

#[derive(Default)]
struct PerfAcc {
    records: u64,
    errors: u64,
    values: Vec<f64>,
    per_function: HashMap<Box<str>, Vec<f64>>,
    /// The function of the last timing record, and its durations so far: timing records of
    /// one function come in runs, so most skip the hash map (pushed into it on a change).
    last: Option<(Box<str>, Vec<f64>)>,
}

impl PerfAcc {
    fn timing(&mut self, ms: f64, function: &str) {
        self.values.push(ms);
        if let Some((f, v)) = &mut self.last {
            if **f == *function {
                v.push(ms);
                return;
            }
        }
        if let Some((f, v)) = self.last.take() {
            self.per_function.entry(f).or_default().extend(v);
        }
        let v = self.per_function.remove(function).unwrap_or_default();
        self.last = Some((function.into(), v));
        if let Some((_, v)) = &mut self.last {
            v.push(ms);
        }
    }

    /// The per-function durations, the last run included.
    fn into_functions(mut self) -> HashMap<Box<str>, Vec<f64>> {
        if let Some((f, v)) = self.last.take() {
            self.per_function.entry(f).or_default().extend(v);
        }
        self.per_function
    }
}

impl LogAnalyzer {
    fn component_files(&self, component: &str) -> Result<(Vec<LogFile>, Vec<usize>), AnalyzeError> {
        check_component(component)?;
        let all = self.files();
        let selected = files::primary(&all)
            .into_iter()
            .filter(|&i| all[i].component == component)
            .collect();
        Ok((all, selected))
    }

    /// The timing statistics of `component` (count, mean, min, max, p50/p90/p95/p99, exact;
    /// see [`DurationStats`]), overall and per function, and its error rate, counting records
    /// at or after `since`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_analyzer::LogAnalyzer;
    /// use tracekit_exporters::{CodeContext, Level, LogWriter, Record, Value};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// for ms in [10.0, 20.0, 30.0, 40.0] {
    ///     let data = [("duration_ms", Value::F64(ms))];
    ///     let ctx = CodeContext { function: Some("score"), ..CodeContext::default() };
    ///     writer.write(&Record::new(Level::INFO, "ranking", "scored").data(&data).context(ctx).timing(true))?;
    /// }
    /// writer.write(&Record::new(Level::ERROR, "ranking", "model timed out"))?;
    /// drop(guard);
    ///
    /// let report = LogAnalyzer::new(dir.path()).analyze_performance("ranking", None)?;
    /// let stats = report.duration_ms.unwrap();
    /// assert_eq!((stats.count, stats.mean, stats.p50), (4, 25.0, 25.0));
    /// assert_eq!(report.functions[0].function, "score");
    /// assert_eq!(report.error_rate, 0.2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn analyze_performance(
        &self,
        component: &str,
        since: Option<Timestamp>,
    ) -> Result<PerformanceReport, AnalyzeError> {
        let (all, selected) = self.component_files(component)?;
        let finder = Finder::new(DURATION);
        let since_micros = since.map_or(i64::MIN, Timestamp::micros);
        let reader = TimingReader::new();
        let visit = |acc: &mut PerfAcc, skips: &mut Skips, block: Block<'_>| {
            // One search for `"duration_ms":` runs ahead over the whole block, instead of one
            // per line: `next` is the next hit, in block offsets. Every hit is found once; a
            // line's hits tell the reader where its duration key is, when it has exactly one.
            let bytes = block.bytes;
            let mut next = finder.find(bytes);
            for (offset, line) in block.lines() {
                let start = (offset - block.offset) as usize;
                let end = start + line.len();
                let mut key = None;
                let mut hits = 0;
                while let Some(h) = next.filter(|&h| h < end) {
                    key = Some(h - start);
                    hits += 1;
                    let from = h + DURATION.len();
                    next = finder.find(&bytes[from..]).map(|i| from + i);
                }
                let has_duration = hits > 0;
                if line.is_empty() {
                    continue;
                }
                // Lines in the encoder's layout are counted without a parse, and timing
                // records among them read at their keys (see `TimingReader`).
                let layout = match quick_level(line) {
                    Some(level) if since.is_none() => Some((level, i64::MAX)),
                    Some(level) => quick_timestamp(line).map(|t| (level, t)),
                    None => None,
                };
                if let Some((level, t)) = layout {
                    if t < since_micros {
                        continue;
                    }
                    let fast = if has_duration {
                        reader.read_found(line, key.filter(|_| hits == 1))
                    } else {
                        Some(FastTiming::NotTiming)
                    };
                    if let Some(fast) = fast {
                        acc.records += 1;
                        acc.errors += u64::from(is_error_level(level));
                        if let FastTiming::Timing(ms, function) = fast {
                            acc.timing(ms, &function);
                        }
                        continue;
                    }
                }
                let view = match RecordView::parse(line) {
                    Ok(v) => v,
                    Err(reason) => {
                        skips.add(block.file, reason);
                        continue;
                    }
                };
                if view.micros < since_micros {
                    continue;
                }
                acc.records += 1;
                acc.errors += u64::from(view.is_error());
                if let Some(ms) = view.duration_ms() {
                    acc.timing(ms, &view.function());
                }
            }
        };
        let (accs, scan) = scan::scan(
            &all,
            &selected,
            self.config(),
            &self.progress,
            PerfAcc::default,
            visit,
        );
        let mut total = PerfAcc::default();
        for mut acc in accs {
            total.records += acc.records;
            total.errors += acc.errors;
            total.values.extend(std::mem::take(&mut acc.values));
            for (f, v) in acc.into_functions() {
                total.per_function.entry(f).or_default().extend(v);
            }
        }
        let mut functions: Vec<FunctionStats> = total
            .per_function
            .into_iter()
            .filter_map(|(f, v)| {
                Some(FunctionStats {
                    function: f.into(),
                    duration_ms: DurationStats::from_values(v)?,
                })
            })
            .collect();
        functions.sort_by(|a, b| {
            b.total_ms()
                .total_cmp(&a.total_ms())
                .then_with(|| a.function.cmp(&b.function))
        });
        Ok(PerformanceReport {
            component: component.to_owned(),
            since,
            records: total.records,
            errors: total.errors,
            error_rate: if total.records == 0 {
                0.0
            } else {
                total.errors as f64 / total.records as f64
            },
            duration_ms: DurationStats::from_values(total.values),
            functions,
            scan,
        })
    }

    /// The timing records of `component` whose `data.duration_ms` is over `threshold_ms`,
    /// slowest first, at most `limit` of them.
    ///
    /// A line is parsed only when one of its `"duration_ms":` numbers is over the threshold.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_analyzer::LogAnalyzer;
    /// use tracekit_exporters::{Level, LogWriter, Record, Value};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// for ms in [5.0, 1500.0, 3000.0] {
    ///     let data = [("duration_ms", Value::F64(ms))];
    ///     writer.write(&Record::new(Level::INFO, "candidate", "fetched").data(&data).timing(true))?;
    /// }
    /// drop(guard);
    ///
    /// let slow = LogAnalyzer::new(dir.path()).slow_operations("candidate", 1000.0, None)?;
    /// let ms: Vec<f64> = slow.operations.iter().map(|o| o.duration_ms).collect();
    /// assert_eq!(ms, [3000.0, 1500.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slow_operations(
        &self,
        component: &str,
        threshold_ms: f64,
        limit: Option<usize>,
    ) -> Result<SlowReport, AnalyzeError> {
        let (all, selected) = self.component_files(component)?;
        let finder = Finder::new(DURATION);
        type Acc = Vec<(f64, i64, usize, u64, LogEntry)>;
        let visit = |acc: &mut Acc, skips: &mut Skips, block: Block<'_>| {
            for (offset, line) in block.lines_with(&finder) {
                if !any_duration_over(&finder, line, threshold_ms) {
                    continue;
                }
                let view = match RecordView::parse(line) {
                    Ok(v) => v,
                    Err(reason) => {
                        skips.add(block.file, reason);
                        continue;
                    }
                };
                if let Some(ms) = view.duration_ms().filter(|&ms| ms > threshold_ms) {
                    acc.push((ms, view.micros, block.file, offset, view.to_entry()));
                }
            }
        };
        let (accs, scan) = scan::scan(
            &all,
            &selected,
            self.config(),
            &self.progress,
            Vec::new,
            visit,
        );
        let mut ops: Acc = accs.into_iter().flatten().collect();
        ops.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| (a.1, a.2, a.3).cmp(&(b.1, b.2, b.3)))
        });
        let total = ops.len() as u64;
        ops.truncate(limit.unwrap_or(usize::MAX));
        Ok(SlowReport {
            component: component.to_owned(),
            threshold_ms,
            total,
            operations: ops
                .into_iter()
                .map(|(ms, _, _, _, record)| SlowOperation {
                    duration_ms: ms,
                    function: record.function().to_owned(),
                    record,
                })
                .collect(),
            scan,
        })
    }
}

/// False only when every `"duration_ms":` in `line` is followed by a number at most
/// `threshold`: such a line cannot be a slow operation and is not parsed.
fn any_duration_over(finder: &Finder<'_>, line: &[u8], threshold: f64) -> bool {
    let mut rest = line;
    while let Some(i) = finder.find(rest) {
        rest = &rest[i + DURATION.len()..];
        let start = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let num = &rest[start..];
        let end = num
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(num.len());
        let parsed = std::str::from_utf8(&num[..end])
            .ok()
            .and_then(|s| s.parse::<f64>().ok());
        match parsed {
            Some(v) if v <= threshold => {}
            // Over, or not a plain number (parse and decide).
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_prefilter_is_conservative() {
        let f = Finder::new(DURATION);
        assert!(!any_duration_over(
            &f,
            br#"{"data":{"duration_ms":12.5}}"#,
            100.0
        ));
        assert!(any_duration_over(
            &f,
            br#"{"data":{"duration_ms":1e3}}"#,
            100.0
        ));
        assert!(any_duration_over(
            &f,
            br#"{"span":{"duration_ms":1},"data":{"duration_ms": 500}}"#,
            100.0
        ));
        assert!(any_duration_over(
            &f,
            br#"{"data":{"duration_ms":"slow"}}"#,
            100.0
        ));
        assert!(!any_duration_over(
            &f,
            br#"{"data":{"duration_ms":100}}"#,
            100.0
        ));
    }
}
