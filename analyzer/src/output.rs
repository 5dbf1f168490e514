//! Text reports for people: aligned tables, colour only when asked for, and log content that
//! can never drive the terminal.
//!
//! Every string that comes from a log file passes through [`escape_control`] before it is
//! rendered: control characters (C0, DEL, C1), line and paragraph separators and bidi
//! overrides are shown as escapes (`\n`, `\u{1b}`), so a record cannot move the cursor, change
//! colours or reorder what is shown. The renderers return strings; the binaries print them.
//!
//! # Examples
//!
//! ```
//! use tracekit_analyzer::output::{escape_control, Style};
//!
//! assert_eq!(escape_control("ok\x1b[31m\n"), "ok\\u{1b}[31m\\n");
//! let style = Style::plain();
//! assert_eq!(style.level("ERROR"), "ERROR");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{
    ErrorReport, LogEntry, PerformanceReport, RequestTrace, ScanReport, SlowReport, Summary,
    Timestamp,
};

/// Whether to colour: decided once, from the stream and the environment.
///
/// ```
/// use tracekit_analyzer::output::Style;
/// // Never on a pipe or a file; never when NO_COLOR is set to anything but "".
/// assert!(!Style::detect(false).color);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Emit ANSI colours.
    pub color: bool,
}

impl Style {
    /// No colour.
    ///
    /// ```
    /// # use tracekit_analyzer::output::Style;
    /// assert_eq!(Style::plain().heading("x"), "x");
    /// ```
    pub fn plain() -> Style {
        Style { color: false }
    }

    /// Colour when the output is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    ///
    /// ```
    /// # use tracekit_analyzer::output::Style;
    /// use std::io::IsTerminal;
    /// let style = Style::detect(std::io::stdout().is_terminal());
    /// # let _ = style;
    /// ```
    pub fn detect(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !no_color,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// A level name, coloured by severity.
    ///
    /// ```
    /// # use tracekit_analyzer::output::Style;
    /// assert_eq!(Style { color: true }.level("ERROR"), "\x1b[1;31mERROR\x1b[0m");
    /// assert_eq!(Style { color: true }.level("INFO"), "INFO");
    /// ```
    pub fn level(&self, level: &str) -> String {
        let code = match level {
            "ERROR" | "CRITICAL" => "1;31",
            "WARNING" => "33",
            "DEBUG" | "TRACE" => "2",
            _ => "",
        };
        if code.is_empty() {
            escape_control(level).into_owned()
        } else {
            self.paint(code, &escape_control(level))
        }
    }

    /// A heading (bold).
    ///
    /// ```
    /// # use tracekit_analyzer::output::Style;
    /// assert_eq!(Style { color: true }.heading("stages"), "\x1b[1mstages\x1b[0m");
    /// ```
    pub fn heading(&self, s: &str) -> String {
        self.paint("1", s)
    }

    /// Secondary text (faint).
    ///
    /// ```
    /// # use tracekit_analyzer::output::Style;
    /// assert_eq!(Style::plain().dim("note"), "note");
    /// ```
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// `s` with every character that could act on a terminal written as an escape.
///
/// ```
/// use tracekit_analyzer::output::escape_control;
/// assert_eq!(escape_control("plain text, ünïcode"), "plain text, ünïcode");
/// assert_eq!(escape_control("a\tb\rc\u{7f}\u{85}\u{202e}"), "a\\tb\\rc\\u{7f}\\u{85}\\u{202e}");
/// ```
pub fn escape_control(s: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if bad(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        Cow::Borrowed(s)
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        Cow::Owned(out)
    }
}

/// A table of text cells, left-aligned except for columns marked numeric.
struct Table {
    headers: Vec<&'static str>,
    numeric: Vec<bool>,
    rows: Vec<Vec<(String, String)>>, // (plain for width, painted for display)
}

impl Table {
    fn new(headers: &[&'static str], numeric: &[bool]) -> Table {
        Table {
            headers: headers.to_vec(),
            numeric: numeric.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| (c.clone(), c)).collect());
    }

    /// A row whose cells carry colour codes: widths come from the plain texts.
    fn painted_row(&mut self, cells: Vec<(String, String)>) {
        self.rows.push(cells);
    }

    fn render(&self, style: &Style, out: &mut String) {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (plain, _)) in row.iter().enumerate().take(n) {
                width[i] = width[i].max(plain.chars().count());
            }
        }
        let line = |cells: Vec<(&str, &str)>, out: &mut String| {
            let mut s = String::new();
            for (i, (plain, shown)) in cells.iter().enumerate() {
                let pad = width[i].saturating_sub(plain.chars().count());
                if i > 0 {
                    s.push_str("  ");
                }
                if self.numeric[i] {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(shown);
                } else {
                    s.push_str(shown);
                    if i + 1 < cells.len() {
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        let header = self.headers.iter().map(|h| (*h, *h)).collect();
        let mut head = String::new();
        line(header, &mut head);
        out.push_str(&style.heading(head.trim_end()));
        out.push('\n');
        for row in &self.rows {
            line(
                row.iter().map(|(p, s)| (p.as_str(), s.as_str())).collect(),
                out,
            );
        }
    }
}

fn ms(v: f64) -> String {
    format!("{v:.1}")
}

/// The footer: skipped lines and unreadable files (nothing when there were none).
///
/// ```
/// use tracekit_analyzer::output::{render_footer, Style};
/// use tracekit_analyzer::{ScanReport, SkipReason, Skipped};
/// let scan = ScanReport {
///     skipped: vec![Skipped { file: "candidate/candidate.log".into(), reason: SkipReason::Malformed, lines: 3 }],
///     ..ScanReport::default()
/// };
/// assert_eq!(render_footer(&scan, &Style::plain()), "skipped 3 malformed lines in candidate/candidate.log\n");
/// ```
pub fn render_footer(scan: &ScanReport, style: &Style) -> String {
    let mut out = String::new();
    for s in &scan.skipped {
        out.push_str(&style.dim(&escape_control(&s.to_string())));
        out.push('\n');
    }
    for e in &scan.errors {
        let _ = writeln!(out, "could not read {}", escape_control(&e.to_string()));
    }
    out
}

fn key_data(e: &LogEntry) -> String {
    let mut parts = Vec::new();
    if let Some(serde_json::Value::Object(m)) = &e.data {
        for (k, v) in m {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{k}={v}"));
        }
    }
    clip(&escape_control(&parts.join(" ")), 80).into_owned()
}

/// `errors`: a table of the records, then counts by type.
///
/// ```
/// use tracekit_analyzer::{output::{render_errors, Style}, ErrorFilter, LogAnalyzer};
/// let report = LogAnalyzer::new("no/such/dir").find_errors(&ErrorFilter::default()).unwrap();
/// assert!(render_errors(&report, &Style::plain()).contains("no errors found"));
/// ```
pub fn render_errors(report: &ErrorReport, style: &Style) -> String {
    let mut out = String::new();
    if report.errors.is_empty() {
        out.push_str("no errors found\n");
        return out;
    }
    let mut t = Table::new(
        &["time", "level", "component", "type", "request", "message"],
        &[false; 6],
    );
    for e in &report.errors {
        let level = escape_control(&e.level).into_owned();
        t.painted_row(vec![
            (e.timestamp.to_string(), e.timestamp.to_string()),
            (level.clone(), style.level(&e.level)),
            cell(&e.component),
            cell(e.error_type().unwrap_or("-")),
            cell(e.request_id.as_deref().unwrap_or("-")),
            cell(&clip(&error_message(e), 100)),
        ]);
    }
    t.render(style, &mut out);
    let _ = writeln!(
        out,
        "\n{} of {} errors shown",
        report.errors.len(),
        report.total
    );
    let mut t = Table::new(&["type", "count"], &[false, true]);
    for (k, n) in &report.by_type {
        t.row(vec![escape_control(k).into_owned(), n.to_string()]);
    }
    out.push('\n');
    t.render(style, &mut out);
    out
}

fn cell(s: &str) -> (String, String) {
    let e = escape_control(s).into_owned();
    (e.clone(), e)
}

fn error_message(e: &LogEntry) -> String {
    match e.exception.as_ref().and_then(|x| x.message.as_deref()) {
        Some(m) if m != e.message => format!("{}: {m}", e.message),
        _ => e.message.clone(),
    }
}

fn stats_row(name: &str, s: &super::DurationStats) -> Vec<String> {
    vec![
        escape_control(name).into_owned(),
        s.count.to_string(),
        ms(s.mean),
        ms(s.min),
        ms(s.p50),
        ms(s.p90),
        ms(s.p95),
        ms(s.p99),
        ms(s.max),
    ]
}

const STATS_HEADERS: [&str; 9] = [
    "function", "count", "mean", "min", "p50", "p90", "p95", "p99", "max",
];

/// `performance COMPONENT`: overall and per-function statistics, and the error rate.
///
/// ```
/// use tracekit_analyzer::{output::{render_performance, Style}, LogAnalyzer};
/// let r = LogAnalyzer::new("no/such/dir").analyze_performance("ranking", None).unwrap();
/// assert!(render_performance(&r, &Style::plain()).contains("no timing records"));
/// ```
pub fn render_performance(r: &PerformanceReport, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {} records, {} errors ({:.2}% error rate)",
        style.heading(&r.component),
        r.records,
        r.errors,
        r.error_rate * 100.0
    );
    let Some(all) = &r.duration_ms else {
        out.push_str("no timing records (data.duration_ms)\n");
        return out;
    };
    out.push('\n');
    let mut t = Table::new(
        &STATS_HEADERS,
        &[false, true, true, true, true, true, true, true, true],
    );
    t.row(stats_row("(all)", all));
    for f in &r.functions {
        t.row(stats_row(&f.function, &f.duration_ms));
    }
    t.render(style, &mut out);
    out.push_str(&style.dim("durations in ms; percentiles exact (linear interpolation)"));
    out.push('\n');
    out
}

/// `slow COMPONENT`: the slowest operations over the threshold.
///
/// ```
/// use tracekit_analyzer::{output::{render_slow, Style}, LogAnalyzer};
/// let r = LogAnalyzer::new("no/such/dir").slow_operations("ranking", 1000.0, None).unwrap();
/// assert!(render_slow(&r, &Style::plain()).contains("no operations over 1000 ms"));
/// ```
pub fn render_slow(r: &SlowReport, style: &Style) -> String {
    let mut out = String::new();
    if r.operations.is_empty() {
        let _ = writeln!(
            out,
            "no operations over {} ms in {}",
            r.threshold_ms, r.component
        );
        return out;
    }
    let mut t = Table::new(
        &["duration_ms", "time", "function", "request", "message"],
        &[true, false, false, false, false],
    );
    for op in &r.operations {
        let e = &op.record;
        t.row(vec![
            ms(op.duration_ms),
            e.timestamp.to_string(),
            escape_control(&op.function).into_owned(),
            escape_control(e.request_id.as_deref().unwrap_or("-")).into_owned(),
            clip(&escape_control(&e.message), 80).into_owned(),
        ]);
    }
    t.render(style, &mut out);
    let _ = writeln!(
        out,
        "\n{} of {} operations over {} ms shown",
        r.operations.len(),
        r.total,
        r.threshold_ms
    );
    out
}

fn time_or_dash(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// `summary`: one row per component.
///
/// ```
/// use tracekit_analyzer::{output::{render_summary, Style}, LogAnalyzer};
/// let s = LogAnalyzer::new("no/such/dir").summary();
/// assert!(render_summary(&s, &Style::plain()).contains("no records"));
/// ```
pub fn render_summary(s: &Summary, style: &Style) -> String {
    let mut out = String::new();
    if s.components.is_empty() {
        out.push_str("no records found\n");
        return out;
    }
    let mut t = Table::new(
        &[
            "component",
            "records",
            "errors",
            "timings",
            "p50",
            "p95",
            "p99",
            "first",
            "last",
            "errors by type",
        ],
        &[
            false, true, true, true, true, true, true, false, false, false,
        ],
    );
    for c in &s.components {
        let (n, p50, p95, p99) = match &c.duration_ms {
            Some(d) => (d.count.to_string(), ms(d.p50), ms(d.p95), ms(d.p99)),
            None => ("0".into(), "-".into(), "-".into(), "-".into()),
        };
        let types: Vec<String> = c
            .errors_by_type
            .iter()
            .map(|(k, n)| format!("{}={n}", escape_control(k)))
            .collect();
        t.row(vec![
            escape_control(&c.component).into_owned(),
            c.records.to_string(),
            c.errors.to_string(),
            n,
            p50,
            p95,
            p99,
            time_or_dash(c.first),
            time_or_dash(c.last),
            clip(&types.join(" "), 60).into_owned(),
        ]);
    }
    t.render(style, &mut out);
    let _ = writeln!(
        out,
        "\n{} records in {} files ({} bytes)",
        s.records, s.scan.files, s.scan.bytes
    );
    out
}

/// `trace_request`: header, timeline, stages, data flow, span tree and errors.
///
/// ```
/// use tracekit_analyzer::{output::{render_trace, Style}, LogAnalyzer};
/// let t = LogAnalyzer::new("no/such/dir").trace_request("req-1");
/// assert!(render_trace(&t, &Style::plain()).contains("req-1"));
/// ```
pub fn render_trace(t: &RequestTrace, style: &Style) -> String {
    let mut out = String::new();
    let join = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            escape_control(&v.join(", ")).into_owned()
        }
    };
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("request"),
        escape_control(&t.request_id)
    );
    let _ = writeln!(out, "user      {}", join(&t.user_ids));
    let _ = writeln!(out, "session   {}", join(&t.session_ids));
    let _ = writeln!(out, "trace     {}", join(&t.trace_ids));
    let _ = writeln!(out, "start     {}", time_or_dash(t.start));
    let _ = writeln!(out, "end       {}", time_or_dash(t.end));
    let _ = writeln!(
        out,
        "duration  {} ms, {} records, {} errors",
        ms(t.duration_ms),
        t.entries.len(),
        t.errors.len()
    );
    let Some(start) = t.start else {
        return out;
    };

    let _ = writeln!(out, "\n{}", style.heading("timeline"));
    let mut tl = Table::new(
        &["+ms", "component", "level", "message", "data"],
        &[true, false, false, false, false],
    );
    for e in &t.entries {
        tl.painted_row(vec![
            cell(&ms(e.timestamp.millis_since(start))),
            cell(&e.component),
            (escape_control(&e.level).into_owned(), style.level(&e.level)),
            cell(&clip(&e.message, 80)),
            cell(&key_data(e)),
        ]);
    }
    tl.render(style, &mut out);

    let _ = writeln!(out, "\n{}", style.heading("stages"));
    let mut st = Table::new(
        &[
            "stage",
            "+ms",
            "duration_ms",
            "records",
            "errors",
            "timings",
        ],
        &[false, true, true, true, true, false],
    );
    for s in &t.stages {
        let timings: Vec<String> = s
            .timings
            .iter()
            .map(|(f, d)| format!("{}={}", escape_control(f), ms(*d)))
            .collect();
        st.row(vec![
            escape_control(&s.component).into_owned(),
            ms(s.start.millis_since(start)),
            ms(s.duration_ms),
            s.records.to_string(),
            s.errors.to_string(),
            clip(&timings.join(" "), 80).into_owned(),
        ]);
    }
    st.render(style, &mut out);

    if t.stages.iter().any(|s| !s.data_flow.is_empty()) {
        let _ = writeln!(out, "\n{}", style.heading("data flow"));
        for s in &t.stages {
            if s.data_flow.is_empty() {
                continue;
            }
            let fields: Vec<String> = s
                .data_flow
                .iter()
                .map(|(k, v)| format!("{}={v}", escape_control(k)))
                .collect();
            let _ = writeln!(
                out,
                "{:<12} {}",
                escape_control(&s.component),
                fields.join(" ")
            );
        }
    }

    if !t.spans.is_empty() {
        let _ = writeln!(out, "\n{}", style.heading("spans"));
        for s in &t.spans {
            let indent = "  ".repeat(s.depth.min(40));
            let _ = writeln!(
                out,
                "{indent}{} [{}] {} ms +{} {}",
                escape_control(&s.name),
                escape_control(&s.component),
                ms(s.duration_ms),
                ms(s.start.millis_since(start)),
                escape_control(&s.status)
            );
        }
    }

    if !t.errors.is_empty() {
        let _ = writeln!(out, "\n{}", style.heading("errors"));
        for e in &t.errors {
            let _ = writeln!(
                out,
                "{} {} {} {}: {}",
                e.timestamp,
                style.level(&e.level),
                escape_control(&e.component),
                escape_control(e.error_type().unwrap_or("-")),
                escape_control(&error_message(e))
            );
            if let Some(tb) = e.exception.as_ref().and_then(|x| x.traceback.as_deref()) {
                for l in tb.lines() {
                    let _ = writeln!(out, "    {}", escape_control(l));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_over_a_terminal() {
        // The only test that touches NO_COLOR.
        std::env::set_var("NO_COLOR", "1");
        assert!(!Style::detect(true).color);
        std::env::set_var("NO_COLOR", "");
        assert!(
            Style::detect(true).color,
            "an empty NO_COLOR does not count"
        );
        std::env::remove_var("NO_COLOR");
        assert!(Style::detect(true).color);
        assert!(!Style::detect(false).color);
    }

    #[test]
    fn tables_align_by_characters_not_bytes() {
        let mut t = Table::new(&["a", "n"], &[false, true]);
        t.row(vec!["ünï".into(), "1".into()]);
        t.row(vec!["x".into(), "100".into()]);
        let mut out = String::new();
        t.render(&Style::plain(), &mut out);
        assert_eq!(out, "a      n\nünï    1\nx    100\n");
    }
}
