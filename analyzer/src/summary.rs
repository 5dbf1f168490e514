//! `summary`: per component, records, errors by type, timing percentiles and time range.

use std::collections::{BTreeMap, HashMap};

use memchr::memmem::Finder;
use serde::Serialize;

use super::errors::by_count;
use super::files;
use super::record::{
    is_error_level, quick_level, quick_timestamp, too_deep, FastTiming, RecordView, TimingReader,
    DURATION,
};
use super::scan::{self, Block, ScanReport, Skips};
use super::stats::DurationStats;
use super::time::Timestamp;
use super::LogAnalyzer;

/// One component in a [`Summary`].
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// let s = LogAnalyzer::new("no/such/dir").summary();
/// assert!(s.components.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentSummary {
    /// The component (its directory).
    pub component: String,
    /// Its records.
    pub records: u64,
    /// Of which `ERROR` or `CRITICAL`.
    pub errors: u64,
    /// Errors per `exception.type` (`"-"` without one), most frequent first.
    pub errors_by_type: Vec<(String, u64)>,
    /// Its timing records' durations.
    pub duration_ms: Option<DurationStats>,
    /// The earliest record.
    pub first: Option<Timestamp>,
    /// The latest record.
    pub last: Option<Timestamp>,
}

/// The answer of [`LogAnalyzer::summary`].
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// let s = LogAnalyzer::new("no/such/dir").summary();
/// assert_eq!((s.records, s.scan.files), (0, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Per component, by name.
    pub components: Vec<ComponentSummary>,
    /// All records.
    pub records: u64,
    /// What was read and skipped.
    pub scan: ScanReport,
}

#[derive(Default)]
struct Acc {
    records: u64,
    errors: BTreeMap<String, u64>,
    durations: Vec<f64>,
    first: Option<i64>,
    last: Option<i64>,
}

impl Acc {
    fn time(&mut self, t: i64) {
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }
}

impl LogAnalyzer {
    /// Every component's records, errors by type, timing statistics and time range.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_analyzer::LogAnalyzer;
    /// use tracekit_exporters::{Level, LogWriter, Record};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// writer.write(&Record::new(Level::INFO, "serving", "ok"))?;
    /// writer.write(&Record::new(Level::ERROR, "serving", "failed"))?;
    /// drop(guard);
    ///
    /// let summary = LogAnalyzer::new(dir.path()).summary();
    /// let serving = &summary.components[0];
    /// assert_eq!((serving.component.as_str(), serving.records, serving.errors), ("serving", 2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn summary(&self) -> Summary {
        let all = self.files();
        let selected = files::primary(&all);
        let finder = Finder::new(DURATION);
        let reader = TimingReader::new();
        let visit = |accs: &mut HashMap<String, Acc>, skips: &mut Skips, block: Block<'_>| {
            let component = &all[block.file].component;
            if !accs.contains_key(component) {
                accs.insert(component.clone(), Acc::default());
            }
            let Some(acc) = accs.get_mut(component) else {
                return;
            };
            for (_, line) in block.lines() {
                if line.is_empty() {
                    continue;
                }
                // The summary reads every line, so it checks every line: a line in the
                // encoder's layout is counted unparsed (timing records read at their keys)
                // only when it is UTF-8, not too deep and closed. Errors are parsed.
                if let Some(t) = quick_timestamp(line) {
                    let error = quick_level(line).is_some_and(is_error_level);
                    let sound = !error
                        && line.ends_with(b"}")
                        && std::str::from_utf8(line).is_ok()
                        && !too_deep(line);
                    let fast = match (sound, finder.find(line)) {
                        (false, _) => None,
                        (true, None) => Some(FastTiming::NotTiming),
                        (true, Some(_)) => reader.read(line),
                    };
                    if let Some(fast) = fast {
                        acc.records += 1;
                        acc.time(t);
                        if let FastTiming::Timing(ms, _) = fast {
                            acc.durations.push(ms);
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
                acc.records += 1;
                acc.time(view.micros);
                if view.is_error() {
                    let kind = view.exception_type().unwrap_or("-");
                    match acc.errors.get_mut(kind) {
                        Some(n) => *n += 1,
                        None => {
                            acc.errors.insert(kind.to_owned(), 1);
                        }
                    }
                }
                if let Some(ms) = view.duration_ms() {
                    acc.durations.push(ms);
                }
            }
        };
        let (parts, scan) = scan::scan(
            &all,
            &selected,
            self.config(),
            &self.progress,
            HashMap::new,
            visit,
        );
        let mut merged: BTreeMap<String, Acc> = BTreeMap::new();
        for part in parts {
            for (c, a) in part {
                let m = merged.entry(c).or_default();
                m.records += a.records;
                for (k, n) in a.errors {
                    *m.errors.entry(k).or_insert(0) += n;
                }
                m.durations.extend(a.durations);
                if let Some(f) = a.first {
                    m.time(f);
                }
                if let Some(l) = a.last {
                    m.time(l);
                }
            }
        }
        let components: Vec<ComponentSummary> = merged
            .into_iter()
            .map(|(component, a)| ComponentSummary {
                component,
                records: a.records,
                errors: a.errors.values().sum(),
                errors_by_type: by_count(a.errors),
                duration_ms: DurationStats::from_values(a.durations),
                first: a.first.map(Timestamp::from_micros),
                last: a.last.map(Timestamp::from_micros),
            })
            .collect();
        Summary {
            records: components.iter().map(|c| c.records).sum(),
            components,
            scan,
        }
    }
}
