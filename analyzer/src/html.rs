//! One self-contained HTML page for a request: a waterfall of its stages and spans and the
//! table of its records.
//!
//! No script, no external asset (inline CSS only), and every piece of log content is
//! escaped ([`escape_html`]), so a message holding `<script>` is shown, never run. The page
//! also carries a `Content-Security-Policy` that forbids scripts, as a second fence.
//!
//! # Examples
//!
//! ```
//! use tracekit_analyzer::{html::render_html, LogAnalyzer};
//!
//! let trace = LogAnalyzer::new("no/such/dir").trace_request("<req>");
//! let page = render_html(&trace);
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! assert!(page.contains("&lt;req&gt;") && !page.contains("<req>"));
//! ```

use std::fmt::Write as _;

use super::output::escape_control;
use super::{LogEntry, RequestTrace, Timestamp};

/// `s` escaped for HTML text and attribute values; control characters shown as escapes.
///
/// ```
/// use tracekit_analyzer::html::escape_html;
/// assert_eq!(escape_html("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
/// ```
pub fn escape_html(s: &str) -> String {
    let s = escape_control(s);
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;width:100%}td,th{padding:2px 8px;border-bottom:1px solid #eee;\
text-align:left;vertical-align:top}th{background:#f4f4f4}\
.num{text-align:right;font-variant-numeric:tabular-nums}\
.wf td.label{white-space:nowrap;width:22em}.track{position:relative;height:14px;background:#fafafa}\
.bar{position:absolute;top:1px;height:12px;background:#4a7fd4;min-width:2px}\
.bar.stage{background:#7aa86b}.bar.error{background:#d9534f}\
.ERROR,.CRITICAL{color:#c00;font-weight:bold}.WARNING{color:#a60}\
pre{margin:0;white-space:pre-wrap;font-size:12px}code{font-size:12px}";

/// The page for `trace` (see the module example).
///
/// ```
/// use tracekit_analyzer::{html::render_html, LogAnalyzer};
/// let page = render_html(&LogAnalyzer::new("no/such/dir").trace_request("r"));
/// assert!(page.contains("no records found") && page.ends_with("</html>\n"));
/// ```
pub fn render_html(trace: &RequestTrace) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let id = escape_html(&trace.request_id);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>request {id}</title><style>{STYLE}</style></head><body>\n<h1>request {id}</h1>\n"
    );
    let list = |v: &[String]| escape_html(&v.join(", "));
    let time = |t: Option<Timestamp>| t.map_or_else(|| "-".into(), |t| t.to_string());
    let _ = writeln!(
        h,
        "<table><tr><th>user</th><td>{}</td></tr><tr><th>session</th><td>{}</td></tr>\
         <tr><th>trace</th><td>{}</td></tr><tr><th>start</th><td>{}</td></tr>\
         <tr><th>end</th><td>{}</td></tr><tr><th>duration</th><td>{:.3} ms, {} records, {} errors</td></tr></table>",
        list(&trace.user_ids),
        list(&trace.session_ids),
        list(&trace.trace_ids),
        time(trace.start),
        time(trace.end),
        trace.duration_ms,
        trace.entries.len(),
        trace.errors.len()
    );
    if let Some(start) = trace.start {
        waterfall(&mut h, trace, start);
        records(&mut h, &trace.entries, start);
    } else {
        h.push_str("<p>no records found</p>\n");
    }
    h.push_str("</body></html>\n");
    h
}

fn waterfall(h: &mut String, trace: &RequestTrace, start: Timestamp) {
    let total = trace.duration_ms.max(0.001);
    let bar = |h: &mut String, class: &str, label: String, s: Timestamp, ms: f64| {
        let left = (s.millis_since(start) / total * 100.0).clamp(0.0, 100.0);
        let width = (ms / total * 100.0).clamp(0.0, 100.0 - left);
        let _ = writeln!(
            h,
            "<tr><td class=\"label\">{label}</td><td class=\"num\">{ms:.3}</td><td><div class=\"track\">\
             <div class=\"bar {class}\" style=\"left:{left:.3}%;width:{width:.3}%\"></div></div></td></tr>"
        );
    };
    h.push_str("<h2>waterfall</h2>\n<table class=\"wf\"><tr><th>stage / span</th><th class=\"num\">ms</th><th>time</th></tr>\n");
    for s in &trace.stages {
        let class = if s.errors > 0 { "stage error" } else { "stage" };
        let label = format!(
            "<b>{}</b> ({} records, {} errors)",
            escape_html(&s.component),
            s.records,
            s.errors
        );
        bar(h, class, label, s.start, s.duration_ms);
    }
    for s in &trace.spans {
        let class = if s.status == "error" { "error" } else { "" };
        let label = format!(
            "{}{} <small>{}</small>",
            "&nbsp;&nbsp;".repeat(s.depth.min(40)),
            escape_html(&s.name),
            escape_html(&s.component)
        );
        bar(h, class, label, s.start, s.duration_ms);
    }
    h.push_str("</table>\n");
    if trace.stages.iter().any(|s| !s.data_flow.is_empty()) {
        h.push_str("<h2>data flow</h2>\n<table><tr><th>stage</th><th>fields</th></tr>\n");
        for s in trace.stages.iter().filter(|s| !s.data_flow.is_empty()) {
            let fields: Vec<String> = s
                .data_flow
                .iter()
                .map(|(k, v)| format!("{}={v}", escape_html(k)))
                .collect();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape_html(&s.component),
                fields.join(" ")
            );
        }
        h.push_str("</table>\n");
    }
}

fn records(h: &mut String, entries: &[LogEntry], start: Timestamp) {
    h.push_str(
        "<h2>records</h2>\n<table><tr><th class=\"num\">+ms</th><th>component</th><th>level</th>\
         <th>message</th><th>data</th></tr>\n",
    );
    for e in entries {
        let data = e.data.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let level = escape_html(&e.level);
        let _ = write!(
            h,
            "<tr><td class=\"num\">{:.3}</td><td>{}</td><td class=\"{level}\">{level}</td><td>{}",
            e.timestamp.millis_since(start),
            escape_html(&e.component),
            escape_html(&e.message)
        );
        if let Some(x) = &e.exception {
            let _ = write!(
                h,
                "<br><b>{}</b>: {}",
                escape_html(x.kind.as_deref().unwrap_or("-")),
                escape_html(x.message.as_deref().unwrap_or(""))
            );
            if let Some(tb) = &x.traceback {
                // Keep the traceback's lines: escape each one, join with real newlines.
                let lines: Vec<String> = tb.lines().map(escape_html).collect();
                let _ = write!(h, "<pre>{}</pre>", lines.join("\n"));
            }
        }
        let _ = writeln!(h, "</td><td><code>{}</code></td></tr>", escape_html(&data));
    }
    h.push_str("</table>\n");
}
