//! `trace_request`: everything one request left in the files, in time order, with its
//! pipeline stages, data flow, span tree and errors.
//!
//! One pass over the components' main files takes the lines holding `"request_id":"<id>"`
//! (a memmem search, then a parse). The same pass notes, per file, the trace ids of records
//! that name no request: spans exported without a `request.id` attribute, and log records
//! of OTel-only code (the `FileLogExporter` without that attribute). When the request's
//! records carry one of those trace ids, a second pass over just those files takes the
//! records of the request's traces that name no request (a record naming another request
//! stays out). Noting them costs a search per line for the line's first `"trace_id":"` and
//! a `"request_id":` before it (about a fifth more CPU time on the benchmark set, where every
//! line has a trace id).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use memchr::memmem::Finder;
use serde::Serialize;
use serde_json::Value;
use tracekit_exporters::layout;

use super::files::{self, LogFile};
use super::record::{key_value_needle, LogEntry, RecordView};
use super::scan::{self, Block, ScanReport, SkipReason, Skips};
use super::time::Timestamp;
use super::LogAnalyzer;

/// The demo service's pipeline, in order: stages are listed in this order, then any other
/// component in order of its first record.
///
/// ```
/// assert_eq!(tracekit_analyzer::PIPELINE_STAGES[0], "candidate");
/// ```
pub const PIPELINE_STAGES: [&str; 5] = [
    "candidate",
    "ranking",
    "exploration",
    "diversity",
    "serving",
];

/// One component's part in a request.
///
/// A stage runs from the start of its first record to the end of its last: a timing record
/// is logged when its operation ends, so it covers `duration_ms` before its timestamp; a span
/// record covers `span.start` to `span.end`; any other record is an instant.
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// let t = LogAnalyzer::new("no/such/dir").trace_request("req-1");
/// assert!(t.stages.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    /// The component.
    pub component: String,
    /// When its first record started.
    pub start: Timestamp,
    /// When its last record ended.
    pub end: Timestamp,
    /// `end - start`, in milliseconds.
    pub duration_ms: f64,
    /// Its records.
    pub records: usize,
    /// Of which `ERROR` or `CRITICAL`.
    pub errors: usize,
    /// Its timing records: function and `duration_ms`, in time order.
    pub timings: Vec<(String, f64)>,
    /// The numeric `data` fields of its records (other than `duration_ms`), in order of first
    /// appearance, each with its last value: the counts that flow through the stage.
    pub data_flow: Vec<(String, f64)>,
}

/// One span of the span tree, flattened depth-first (children by start time).
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// assert!(LogAnalyzer::new("no/such/dir").trace_request("r").spans.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanRow {
    /// Depth in the tree (roots are 0).
    pub depth: usize,
    /// The span id.
    pub span_id: String,
    /// The parent span id, when the record names one.
    pub parent_span_id: Option<String>,
    /// The span's name.
    pub name: String,
    /// The component of the record.
    pub component: String,
    /// When it started.
    pub start: Timestamp,
    /// When it ended.
    pub end: Timestamp,
    /// Its duration.
    pub duration_ms: f64,
    /// `ok`, `error` or `unset`.
    pub status: String,
}

/// The answer of [`LogAnalyzer::trace_request`]; it serialises to the JSON that
/// `trace_request --export` writes.
///
/// ```
/// # use tracekit_analyzer::LogAnalyzer;
/// let t = LogAnalyzer::new("no/such/dir").trace_request("req-1");
/// assert!(!t.found());
/// let json = serde_json::to_value(&t).unwrap();
/// assert_eq!(json["request_id"], "req-1");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestTrace {
    /// The request id asked for.
    pub request_id: String,
    /// The user ids seen, in order of first appearance.
    pub user_ids: Vec<String>,
    /// The session ids seen.
    pub session_ids: Vec<String>,
    /// The trace ids seen.
    pub trace_ids: Vec<String>,
    /// When its first record started (see [`Stage`]).
    pub start: Option<Timestamp>,
    /// When its last record ended.
    pub end: Option<Timestamp>,
    /// `end - start`, in milliseconds.
    pub duration_ms: f64,
    /// Its records, in time order (ties in file order).
    pub entries: Vec<LogEntry>,
    /// The pipeline stages (see [`PIPELINE_STAGES`]).
    pub stages: Vec<Stage>,
    /// The span tree, when span records exist.
    pub spans: Vec<SpanRow>,
    /// The `ERROR` and `CRITICAL` records, in time order.
    pub errors: Vec<LogEntry>,
    /// What was read and skipped.
    pub scan: ScanReport,
}

impl RequestTrace {
    /// True when any record was found (see the example on [`RequestTrace`]).
    pub fn found(&self) -> bool {
        !self.entries.is_empty()
    }
}

type Found = Vec<(i64, usize, u64, LogEntry)>;

impl LogAnalyzer {
    /// Everything request `request_id` left in the components' main files.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_analyzer::LogAnalyzer;
    /// use tracekit_exporters::{Level, LogWriter, Record, Value};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
    /// let counts = [("candidates_out", Value::U64(300))];
    /// writer.write(&Record::new(Level::INFO, "ranking", "ranked").request_id("req-9").data(&counts))?;
    /// writer.write(&Record::new(Level::INFO, "candidate", "generated").request_id("req-9"))?;
    /// writer.write(&Record::new(Level::INFO, "candidate", "other request").request_id("req-10"))?;
    /// drop(guard);
    ///
    /// let trace = LogAnalyzer::new(dir.path()).trace_request("req-9");
    /// assert_eq!(trace.entries.len(), 2);
    /// let stages: Vec<&str> = trace.stages.iter().map(|s| s.component.as_str()).collect();
    /// assert_eq!(stages, ["candidate", "ranking"]);
    /// assert_eq!(trace.stages[1].data_flow, vec![("candidates_out".to_string(), 300.0)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trace_request(&self, request_id: &str) -> RequestTrace {
        let all = self.files();
        let selected = files::primary(&all);
        let needle = key_value_needle(layout::REQUEST_ID, request_id);
        let pass = Pass {
            needle: needle.as_deref(),
            exclude: None,
            probe_spans: true,
        };
        let (mut found, probes, mut scan) = self.collect(&all, &selected, pass, |v| {
            v.request_id
                .as_ref()
                .is_some_and(|r| r.as_str() == request_id)
        });
        let trace_ids: HashSet<String> =
            found.iter().filter_map(|f| f.3.trace_id.clone()).collect();
        for tid in &trace_ids {
            // Only the files where the first pass saw a span of this trace without a
            // request id are read again.
            let files: Vec<usize> = probes
                .iter()
                .filter(|(_, t)| t.as_slice() == tid.as_bytes())
                .map(|(f, _)| *f)
                .collect::<BTreeSet<usize>>()
                .into_iter()
                .collect();
            if files.is_empty() {
                continue;
            }
            let tneedle = key_value_needle(layout::TRACE_ID, tid);
            let pass = Pass {
                needle: tneedle.as_deref(),
                // Lines holding the request id were judged by the first pass.
                exclude: needle.as_deref(),
                probe_spans: false,
            };
            let (extra, _, scan2) = self.collect(&all, &files, pass, |v| {
                v.request_id.is_none() && v.trace_id.as_ref().is_some_and(|t| t.as_str() == tid)
            });
            found.extend(extra);
            merge_scan(&mut scan, scan2);
        }
        found.sort_by_key(|f| (f.0, f.1, f.2));
        found.dedup_by_key(|f| (f.1, f.2));
        let entries: Vec<LogEntry> = found.into_iter().map(|f| f.3).collect();
        build(request_id, entries, scan)
    }

    /// The records on lines holding `pass.needle` (all lines without one), but not
    /// `pass.exclude`, that `keep` accepts; and, when probing, the (file, trace id) of every
    /// record that names no request (by the trace id before which no `request_id` stands).
    fn collect(
        &self,
        all: &[LogFile],
        selected: &[usize],
        pass: Pass<'_>,
        keep: impl Fn(&RecordView<'_>) -> bool + Sync,
    ) -> (Found, HashSet<(usize, [u8; 32])>, ScanReport) {
        let finder = pass.needle.map(Finder::new);
        let exclude = pass.exclude.map(Finder::new);
        let request_key = Finder::new(layout::REQUEST_ID.quoted());
        // `"trace_id":"`: the key and its value's opening quote, as the encoder writes them.
        let trace_key_bytes = [layout::TRACE_ID.quoted(), b"\""].concat();
        let trace_key = Finder::new(&trace_key_bytes);
        type Acc = (Found, HashSet<(usize, [u8; 32])>);
        let visit = |acc: &mut Acc, skips: &mut Skips, block: Block<'_>| {
            let mut take = |offset: u64, line: &[u8]| {
                if exclude.as_ref().is_some_and(|x| x.find(line).is_some()) {
                    return;
                }
                match RecordView::parse(line) {
                    Ok(v) if keep(&v) => acc.0.push((v.micros, block.file, offset, v.to_entry())),
                    Ok(_) => {}
                    Err(reason) => skips.add(block.file, reason),
                }
            };
            match &finder {
                Some(f) => block.lines_with(f).for_each(|(o, l)| take(o, l)),
                None => block.lines().for_each(|(o, l)| take(o, l)),
            }
            if pass.probe_spans {
                // The block is in cache now: a second search over it is cheap. Each line's
                // first `"trace_id":"` is its top-level one (the encoder writes it before
                // `message`), and `request_id` comes before it when present.
                let bytes = block.bytes;
                let mut pos = 0;
                while let Some(i) = trace_key.find(&bytes[pos..]).map(|i| pos + i) {
                    let line_start =
                        memchr::memrchr(b'\n', &bytes[pos..i]).map_or(pos, |n| pos + n + 1);
                    let line_end =
                        memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                    pos = (line_end + 1).min(bytes.len());
                    if request_key.find(&bytes[line_start..i]).is_some() {
                        continue;
                    }
                    let at = i + trace_key_bytes.len();
                    if let Some(id) = bytes[..line_end]
                        .get(at..at + 32)
                        .and_then(|t| <[u8; 32]>::try_from(t).ok())
                    {
                        acc.1.insert((block.file, id));
                    }
                }
            }
        };
        let (parts, scan) = scan::scan(
            all,
            selected,
            self.config(),
            &self.progress,
            Acc::default,
            visit,
        );
        let mut found = Found::new();
        let mut probes = HashSet::new();
        for (f, p) in parts {
            found.extend(f);
            probes.extend(p);
        }
        (found, probes, scan)
    }
}

/// What one pass over the files looks for.
#[derive(Clone, Copy)]
struct Pass<'a> {
    needle: Option<&'a [u8]>,
    exclude: Option<&'a [u8]>,
    probe_spans: bool,
}

/// Adds a later pass over the same files: lines it parsed were not parsed before, but the
/// scanner's own skips (too long, partial) are the same lines again.
fn merge_scan(into: &mut ScanReport, other: ScanReport) {
    into.bytes += other.bytes;
    for s in other.skipped {
        let rescan = matches!(s.reason, SkipReason::TooLong | SkipReason::Partial);
        match into
            .skipped
            .iter_mut()
            .find(|x| x.file == s.file && x.reason == s.reason)
        {
            Some(x) if rescan => x.lines = x.lines.max(s.lines),
            Some(x) => x.lines += s.lines,
            None => into.skipped.push(s),
        }
    }
    for e in other.errors {
        if !into.errors.contains(&e) {
            into.errors.push(e);
        }
    }
}

/// When a record's work started and ended (see [`Stage`]).
fn extent(e: &LogEntry) -> (Timestamp, Timestamp) {
    if let Some(span) = &e.span {
        let t = |k: &str| {
            span.get(k)
                .and_then(Value::as_str)
                .and_then(Timestamp::parse)
        };
        if let (Some(s), Some(end)) = (t("start"), t("end")) {
            return (s.min(end), end.max(s));
        }
    }
    match e.duration_ms() {
        Some(ms) if ms > 0.0 => {
            let micros = (ms * 1000.0).round() as i64;
            (
                Timestamp::from_micros(e.timestamp.micros().saturating_sub(micros)),
                e.timestamp,
            )
        }
        _ => (e.timestamp, e.timestamp),
    }
}

fn distinct(entries: &[LogEntry], f: impl Fn(&LogEntry) -> Option<&String>) -> Vec<String> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .filter_map(f)
        .filter(|v| seen.insert(v.as_str()))
        .cloned()
        .collect()
}

fn build(request_id: &str, entries: Vec<LogEntry>, scan: ScanReport) -> RequestTrace {
    let extents: Vec<_> = entries.iter().map(extent).collect();
    let start = extents.iter().map(|x| x.0).min();
    let end = extents.iter().map(|x| x.1).max();
    let duration_ms = match (start, end) {
        (Some(s), Some(e)) => e.millis_since(s),
        _ => 0.0,
    };
    RequestTrace {
        request_id: request_id.to_owned(),
        user_ids: distinct(&entries, |e| e.user_id.as_ref()),
        session_ids: distinct(&entries, |e| e.session_id.as_ref()),
        trace_ids: distinct(&entries, |e| e.trace_id.as_ref()),
        start,
        end,
        duration_ms,
        stages: stages(&entries, &extents),
        spans: span_tree(&entries),
        errors: entries.iter().filter(|e| e.is_error()).cloned().collect(),
        entries,
        scan,
    }
}

fn stages(entries: &[LogEntry], extents: &[(Timestamp, Timestamp)]) -> Vec<Stage> {
    let mut order: Vec<&str> = Vec::new();
    let mut by: HashMap<&str, Stage> = HashMap::new();
    for (e, &(s, t)) in entries.iter().zip(extents) {
        let stage = by.entry(e.component.as_str()).or_insert_with(|| {
            order.push(e.component.as_str());
            Stage {
                component: e.component.clone(),
                start: s,
                end: t,
                duration_ms: 0.0,
                records: 0,
                errors: 0,
                timings: Vec::new(),
                data_flow: Vec::new(),
            }
        });
        stage.start = stage.start.min(s);
        stage.end = stage.end.max(t);
        stage.records += 1;
        stage.errors += usize::from(e.is_error());
        if let Some(ms) = e.duration_ms() {
            stage.timings.push((e.function().to_owned(), ms));
        }
        if let Some(Value::Object(data)) = &e.data {
            for (k, v) in data {
                let Some(n) = v.as_f64() else { continue };
                if k == "duration_ms" {
                    continue;
                }
                match stage.data_flow.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1 = n,
                    None => stage.data_flow.push((k.clone(), n)),
                }
            }
        }
    }
    let rank = |c: &str| {
        PIPELINE_STAGES
            .iter()
            .position(|p| *p == c)
            .unwrap_or(PIPELINE_STAGES.len())
    };
    // Stable: components outside the pipeline keep their order of appearance.
    order.sort_by_key(|c| rank(c));
    order
        .into_iter()
        .filter_map(|c| by.remove(c))
        .map(|mut s| {
            s.duration_ms = s.end.millis_since(s.start);
            s
        })
        .collect()
}

fn span_tree(entries: &[LogEntry]) -> Vec<SpanRow> {
    struct Node<'a> {
        row: SpanRow,
        parent: Option<&'a str>,
    }
    let mut nodes: Vec<Node<'_>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for e in entries {
        let (Some(span), Some(id)) = (&e.span, &e.span_id) else {
            continue;
        };
        if index.contains_key(id.as_str()) {
            continue;
        }
        let (start, end) = extent(e);
        let text = |k: &str| span.get(k).and_then(Value::as_str);
        index.insert(id, nodes.len());
        nodes.push(Node {
            row: SpanRow {
                depth: 0,
                span_id: id.clone(),
                parent_span_id: text("parent_span_id").map(str::to_owned),
                name: text("name").unwrap_or(&e.message).to_owned(),
                component: e.component.clone(),
                start,
                end,
                duration_ms: span
                    .get("duration_ms")
                    .and_then(Value::as_f64)
                    .unwrap_or_else(|| end.millis_since(start)),
                status: text("status").unwrap_or("unset").to_owned(),
            },
            parent: text("parent_span_id"),
        });
    }
    let mut children: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match n.parent.and_then(|p| index.get(p)).filter(|&&p| p != i) {
            Some(&p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (nodes[i].row.start, i));
    by_start(&mut roots);
    for v in children.values_mut() {
        by_start(v);
    }
    // Iterative depth-first walk: a chain of spans of any length cannot overflow the stack.
    // Spans in a parent cycle (never written by a real tracer) are appended as roots.
    let mut out = Vec::with_capacity(nodes.len());
    let mut visited = vec![false; nodes.len()];
    let mut pending: Vec<usize> = (0..nodes.len()).rev().collect();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    loop {
        let Some((i, depth)) = stack.pop() else {
            match pending.pop() {
                Some(i) if !visited[i] => {
                    stack.push((i, 0));
                    continue;
                }
                Some(_) => continue,
                None => break,
            }
        };
        if visited[i] {
            continue;
        }
        visited[i] = true;
        let mut row = nodes[i].row.clone();
        row.depth = depth;
        out.push(row);
        if let Some(kids) = children.get(&i) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_entry(id: &str, parent: Option<&str>, start: &str) -> LogEntry {
        let mut span =
            serde_json::json!({"name": id, "start": start, "end": start, "status": "ok"});
        if let Some(p) = parent {
            span["parent_span_id"] = p.into();
        }
        LogEntry {
            timestamp: Timestamp::parse(start).unwrap(),
            level: "INFO".into(),
            component: "c".into(),
            logger: None,
            request_id: None,
            user_id: None,
            session_id: None,
            trace_id: None,
            span_id: Some(id.into()),
            message: id.into(),
            data: None,
            context: None,
            exception: None,
            span: Some(span),
        }
    }

    #[test]
    fn span_tree_is_depth_first_by_start() {
        let e = vec![
            span_entry("child2", Some("root"), "2025-01-01T00:00:03Z"),
            span_entry("grandchild", Some("child1"), "2025-01-01T00:00:02Z"),
            span_entry("child1", Some("root"), "2025-01-01T00:00:01Z"),
            span_entry("root", None, "2025-01-01T00:00:00Z"),
            span_entry("orphan", Some("missing"), "2025-01-01T00:00:04Z"),
        ];
        let rows: Vec<(usize, String)> = span_tree(&e)
            .into_iter()
            .map(|r| (r.depth, r.name))
            .collect();
        let want = [
            (0, "root"),
            (1, "child1"),
            (2, "grandchild"),
            (1, "child2"),
            (0, "orphan"),
        ];
        assert_eq!(rows, want.map(|(d, n)| (d, n.to_string())));
    }

    #[test]
    fn cycles_and_long_chains_terminate() {
        let mut e = vec![
            span_entry("a", Some("b"), "2025-01-01T00:00:00Z"),
            span_entry("b", Some("a"), "2025-01-01T00:00:00Z"),
        ];
        let ids: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
        for i in 0..ids.len() {
            let parent = i.checked_sub(1).map(|p| ids[p].as_str());
            e.push(span_entry(&ids[i], parent, "2025-01-01T00:00:01Z"));
        }
        let rows = span_tree(&e);
        assert_eq!(rows.len(), 100_002);
        assert_eq!(rows.iter().map(|r| r.depth).max(), Some(99_999));
    }
}
