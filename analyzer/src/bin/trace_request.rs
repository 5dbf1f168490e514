//! `trace_request <request_id>`: what happened to one request, and where its time went.

mod common;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;
use common::{Arg, Args};
use tracekit_analyzer::html::render_html;
use tracekit_analyzer::output::{render_footer, render_trace, Style};
use tracekit_analyzer::LogAnalyzer;

const HELP: &str = "\
trace_request: what happened to one request, from the tracekit log files

USAGE:
    trace_request <REQUEST_ID> [--dir DIR] [--export FILE] [--json] [--html FILE]

Reads every component's live, rotated and archived (.gz) files under DIR/logs and
DIR/archived, and shows the request's header (user, session, trace ids, start, end,
duration), its timeline, the pipeline stages (candidate, ranking, exploration, diversity,
serving, then others) with durations, records, errors and timings, the stage-by-stage data
flow, the span tree and every error with its traceback.

OPTIONS:
    --dir DIR        the log root (default: $TRACEKIT_DIR, else trace)
    --export FILE    also write the whole trace as JSON; a bare file name goes to DIR/analysis/
    --html FILE      also write a self-contained HTML timeline; a bare name goes to DIR/analysis/
    --json           print the trace as JSON instead of text
    --threads N      scan with N threads (default: all cores)
    -h, --help       this help

EXIT STATUS:
    0 found, 1 no record of the request (with --json, stdout still gets an object:
    request_id, found: false, looked_in: root, dirs, files, bytes; and scan), 2 error

EXAMPLES:
    trace_request req-abc-123
    trace_request req-abc-123 --export trace.json      # writes trace/analysis/trace.json
    trace_request req-abc-123 --html req.html --dir /var/log/myservice/trace
    trace_request req-abc-123 --json | jq '.stages[] | {component, duration_ms}'
";

fn main() -> ExitCode {
    common::main_with(run)
}

fn run() -> anyhow::Result<ExitCode> {
    let mut args = Args::from_env()?;
    let mut request_id = None;
    let mut dir = None;
    let mut export = None;
    let mut html = None;
    let mut json = false;
    let mut threads = None;
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Long(n) if n == "help" => return help(),
            Arg::Short('h') => return help(),
            Arg::Long(n) if n == "dir" => dir = Some(args.value(&n)?),
            Arg::Long(n) if n == "export" => export = Some(args.value(&n)?),
            Arg::Long(n) if n == "html" => html = Some(args.value(&n)?),
            Arg::Long(n) if n == "threads" => {
                threads = Some(common::number::<usize>(&n, &args.value(&n)?)?)
            }
            Arg::Long(n) if n == "json" => json = true,
            Arg::Positional(p) if request_id.is_none() => request_id = Some(p),
            Arg::Positional(p) => bail!("unexpected argument {p:?} (see --help)"),
            Arg::Long(n) => bail!("unknown option --{n} (see --help)"),
            Arg::Short(c) => bail!("unknown option -{c} (see --help)"),
        }
    }
    let Some(request_id) = request_id else {
        bail!("missing <REQUEST_ID> (see --help)");
    };
    let mut analyzer = match dir {
        Some(d) => LogAnalyzer::new(d),
        None => LogAnalyzer::default(),
    };
    if let Some(n) = threads {
        analyzer = analyzer.threads(n);
    }

    let trace = {
        let _bar = common::ProgressBar::start(analyzer.progress());
        analyzer.trace_request(&request_id)
    };
    if !trace.found() {
        // stderr closed is no reason to fail: `let _` on every diagnostic.
        let _ = writeln!(
            std::io::stderr(),
            "trace_request: no records of request {:?} in {} files under {} (logs/ and archived/)",
            tracekit_analyzer::output::escape_control(&request_id),
            trace.scan.files,
            analyzer.root().display()
        );
        if !trace.scan.skipped.is_empty() || !trace.scan.errors.is_empty() {
            let _ = write!(
                std::io::stderr(),
                "{}",
                render_footer(&trace.scan, &Style::plain())
            );
        }
        if json {
            // Scripts get an answer on stdout too: not found, and where we looked.
            let root = analyzer.root();
            common::print_json(&serde_json::json!({
                "request_id": request_id,
                "found": false,
                "looked_in": {
                    "root": root.display().to_string(),
                    "dirs": [
                        root.join("logs").display().to_string(),
                        root.join("archived").display().to_string(),
                    ],
                    "files": trace.scan.files,
                    "bytes": trace.scan.bytes,
                },
                "scan": &trace.scan,
            }))?;
        }
        return Ok(ExitCode::from(common::NOT_FOUND));
    }
    if let Some(file) = export {
        let path = common::output_path(&analyzer, &file);
        common::write_file(&path, &serde_json::to_vec_pretty(&trace)?)?;
        let _ = writeln!(std::io::stderr(), "trace_request: wrote {}", path.display());
    }
    if let Some(file) = html {
        let path = common::output_path(&analyzer, &file);
        common::write_file(&path, render_html(&trace).as_bytes())?;
        let _ = writeln!(std::io::stderr(), "trace_request: wrote {}", path.display());
    }
    if json {
        common::print_json(&trace)?;
    } else {
        let style = Style::detect(std::io::stdout().is_terminal());
        let mut text = render_trace(&trace, &style);
        let footer = render_footer(&trace.scan, &style);
        if !footer.is_empty() {
            text.push('\n');
            text.push_str(&footer);
        }
        common::print(&text)?;
    }
    Ok(ExitCode::from(common::FOUND))
}

fn help() -> anyhow::Result<ExitCode> {
    common::print(HELP)?;
    Ok(ExitCode::SUCCESS)
}
