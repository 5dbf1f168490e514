//! `find_errors`: error records by component, time, type and request.

use std::collections::BTreeMap;

use memchr::memmem::Finder;
use serde::Serialize;
use tracekit_exporters::layout;

use super::files::{self, FileRole, LogFile};
use super::record::{key_value_needle, quick_level, quick_timestamp, LogEntry, RecordView};
use super::scan::{self, Block, ScanReport, Skips};
use super::time::Timestamp;
use super::{check_component, AnalyzeError, LogAnalyzer};

/// Which error records [`LogAnalyzer::find_errors`] returns. Every set field must match.
///
/// `since` and `until` are inclusive. With a `limit`, the most recent `limit` matches are
/// returned (still oldest first), and [`ErrorReport::total`] counts them all.
///
/// # Examples
///
/// ```
/// use tracekit_analyzer::{ErrorFilter, Timestamp};
///
/// let filter = ErrorFilter {
///     component: Some("candidate".into()),
///     since: Timestamp::parse("2025-11-16T10:00:00"),
///     error_type: Some("ValueError".into()),
///     ..ErrorFilter::default()
/// };
/// assert!(filter.request_id.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorFilter {
    /// The record's component.
    pub component: Option<String>,
    /// At or after this instant.
    pub since: Option<Timestamp>,
    /// At or before this instant.
    pub until: Option<Timestamp>,
    /// `exception.type`, exactly.
    pub error_type: Option<String>,
    /// The request id, exactly.
    pub request_id: Option<String>,
    /// At most this many records (the most recent).
    pub limit: Option<usize>,
}

/// Where the error records were read from.
///
/// ```
/// use tracekit_analyzer::ErrorSource;
/// assert_eq!(serde_json::to_value(ErrorSource::ErrorsIndex).unwrap(), "errors_index");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    /// `errors/`: one copy of every error record.
    ErrorsIndex,
    /// The components' main files (there was no `errors/`).
    ComponentFiles,
}

/// The answer of [`LogAnalyzer::find_errors`].
///
/// ```
/// use tracekit_analyzer::{ErrorFilter, LogAnalyzer};
/// let report = LogAnalyzer::new("no/such/dir").find_errors(&ErrorFilter::default()).unwrap();
/// assert_eq!((report.total, report.errors.len(), report.scan.files), (0, 0, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorReport {
    /// The matching records, oldest first (the most recent `limit` of them).
    pub errors: Vec<LogEntry>,
    /// How many records matched, before the limit.
    pub total: u64,
    /// Matches per `exception.type` (`"-"` for records without one), most frequent first.
    pub by_type: Vec<(String, u64)>,
    /// Matches per component, most frequent first.
    pub by_component: Vec<(String, u64)>,
    /// Where they were read from.
    pub source: ErrorSource,
    /// What was read and skipped.
    pub scan: ScanReport,
}

struct Hit {
    micros: i64,
    file: usize,
    offset: u64,
    entry: LogEntry,
}

impl LogAnalyzer {
    /// The error records (`ERROR`, `CRITICAL`) matching `filter`.
    ///
    /// Reads `errors/` (live and archived), which holds each error record once; without any
    /// `errors/` file it reads the components' main files. `errors/` has its own rotation
    /// and backup limit (50 MiB × 10 by default), so it reaches back as far as its archives
    /// do, which for the usual share of errors is further than the components' own. Fails only on an invalid component
    /// name in the filter.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_analyzer::{ErrorFilter, LogAnalyzer};
    /// use tracekit_exporters::{Exception, Level, LogWriter, Record};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// let e = Exception { kind: "TimeoutError", message: "model timed out", traceback: None };
    /// writer.write(&Record::new(Level::ERROR, "ranking", "scoring failed").exception(e))?;
    /// writer.write(&Record::new(Level::ERROR, "candidate", "fetch failed"))?;
    /// drop(guard);
    ///
    /// let filter = ErrorFilter { component: Some("ranking".into()), ..ErrorFilter::default() };
    /// let report = LogAnalyzer::new(dir.path()).find_errors(&filter)?;
    /// assert_eq!(report.total, 1);
    /// assert_eq!(report.by_type, vec![("TimeoutError".to_string(), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_errors(&self, filter: &ErrorFilter) -> Result<ErrorReport, AnalyzeError> {
        if let Some(c) = &filter.component {
            check_component(c)?;
        }
        let all = self.files();
        let index: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].role == FileRole::Errors)
            .collect();
        let (selected, source) = if index.is_empty() {
            (files::primary(&all), ErrorSource::ComponentFiles)
        } else {
            (index, ErrorSource::ErrorsIndex)
        };
        let (hits, scan) = self.scan_errors(&all, &selected, filter, source);
        let mut hits: Vec<Hit> = hits.into_iter().flatten().collect();
        hits.sort_by_key(|h| (h.micros, h.file, h.offset));
        let mut by_type = BTreeMap::<String, u64>::new();
        let mut by_component = BTreeMap::<String, u64>::new();
        for h in &hits {
            *by_type
                .entry(h.entry.error_type().unwrap_or("-").to_owned())
                .or_insert(0) += 1;
            *by_component.entry(h.entry.component.clone()).or_insert(0) += 1;
        }
        let total = hits.len() as u64;
        if let Some(limit) = filter.limit {
            let drop = hits.len().saturating_sub(limit);
            hits.drain(..drop);
        }
        Ok(ErrorReport {
            errors: hits.into_iter().map(|h| h.entry).collect(),
            total,
            by_type: by_count(by_type),
            by_component: by_count(by_component),
            source,
            scan,
        })
    }

    fn scan_errors(
        &self,
        all: &[LogFile],
        selected: &[usize],
        filter: &ErrorFilter,
        source: ErrorSource,
    ) -> (Vec<Vec<Hit>>, ScanReport) {
        // The rarest needle finds candidate lines; the others confirm them cheaply.
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for (key, value) in [
            (layout::REQUEST_ID, &filter.request_id),
            (layout::EXCEPTION_TYPE, &filter.error_type),
            (layout::COMPONENT, &filter.component),
        ] {
            if let Some(v) = value {
                // A value the prefilter cannot express is checked after parsing only.
                if let Some(n) = key_value_needle(key, v) {
                    needles.push(n);
                }
            }
        }
        let finders: Vec<Finder<'_>> = needles.iter().map(Finder::new).collect();
        let check_level = source == ErrorSource::ComponentFiles;
        let visit = |hits: &mut Vec<Hit>, skips: &mut Skips, block: Block<'_>| {
            let mut consider = |offset: u64, line: &[u8]| {
                if finders
                    .get(1..)
                    .unwrap_or_default()
                    .iter()
                    .any(|f| f.find(line).is_none())
                {
                    return;
                }
                if check_level && quick_level(line).is_some_and(|l| !is_error(l)) {
                    return;
                }
                if let Some(t) = quick_timestamp(line) {
                    if !in_range(t, filter) {
                        return;
                    }
                }
                let view = match RecordView::parse(line) {
                    Ok(v) => v,
                    Err(reason) => return skips.add(block.file, reason),
                };
                if matches(&view, filter) {
                    hits.push(Hit {
                        micros: view.micros,
                        file: block.file,
                        offset,
                        entry: view.to_entry(),
                    });
                }
            };
            match finders.first() {
                Some(f) => block.lines_with(f).for_each(|(o, l)| consider(o, l)),
                None => block.lines().for_each(|(o, l)| consider(o, l)),
            }
        };
        scan::scan(
            all,
            selected,
            self.config(),
            &self.progress,
            Vec::new,
            visit,
        )
    }
}

fn is_error(level: &[u8]) -> bool {
    super::record::is_error_level(level)
}

fn in_range(micros: i64, f: &ErrorFilter) -> bool {
    f.since.is_none_or(|s| micros >= s.micros()) && f.until.is_none_or(|u| micros <= u.micros())
}

fn matches(v: &RecordView<'_>, f: &ErrorFilter) -> bool {
    v.is_error()
        && in_range(v.micros, f)
        && f.component
            .as_deref()
            .is_none_or(|c| v.component.as_str() == c)
        && f.error_type
            .as_deref()
            .is_none_or(|t| v.exception_type() == Some(t))
        && f.request_id
            .as_deref()
            .is_none_or(|r| v.request_id.as_ref().map(|x| x.as_str()) == Some(r))
}

/// Most frequent first, then by name.
pub(crate) fn by_count(m: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}
