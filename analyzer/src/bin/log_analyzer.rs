//! `log_analyzer errors|performance|slow|summary|export|forward`: questions over the tracekit
//! log files, and the files as OpenTelemetry data.

mod common;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context};
use common::{Arg, Args};
use tracekit_analyzer::output::{
    render_errors, render_footer, render_performance, render_slow, render_summary, Style,
};
use tracekit_analyzer::{ErrorFilter, ExportFilter, LogAnalyzer, ScanReport, Timestamp};

const HELP: &str = "\
log_analyzer: errors, performance and slow operations from the tracekit log files, and the
files as OpenTelemetry data (export, forward)

USAGE:
    log_analyzer errors [--since T] [--until T] [--component C] [--type T]
                        [--request-id R] [--limit N] [--json]
    log_analyzer performance COMPONENT [--since T] [--json]
    log_analyzer slow COMPONENT [--threshold MS] [--limit N] [--json]
    log_analyzer summary [--json]
    log_analyzer export --otlp-json FILE [--since T] [--until T] [--request-id R]
                        [--service-name NAME]
    log_analyzer forward --endpoint URL [--checkpoint FILE] [--batch-size N]
                         [--max-rate N] [--follow] [--service-name NAME]

COMMANDS:
    errors        ERROR and CRITICAL records, oldest first (the most recent --limit, default
                  100), then counts by exception type. Reads errors/, which holds each once.
    performance   count, mean, min, max, p50/p90/p95/p99 of the component's timing records
                  (data.duration_ms), overall and per function, and its error rate.
                  Percentiles are exact (linear interpolation, like numpy and DuckDB's
                  quantile_cont).
    slow          timing records over --threshold ms (default 1000), slowest first
                  (--limit, default 20).
    summary       per component: records, errors by type, p50/p95/p99 of timings, time range.
    export        the records (each once: main files, live and archived) as OTLP JSON lines:
                  one ExportTraceServiceRequest (span records) or ExportLogsServiceRequest
                  (the others) per line, grouped by resource and scope. FILE - is stdout.
    forward       sends the records to an OTLP/HTTP endpoint (JSON bodies to URL/v1/traces
                  and URL/v1/logs), at least once. A checkpoint (default
                  DIR/analysis/forward.checkpoint.json) keeps what was acknowledged, per file
                  (its first line's hash and the offset, so a file renamed or gzipped by
                  rotation is recognised): a restart resends nothing acknowledged. Retries
                  HTTP 429, 502, 503 and 504 with exponential backoff (honouring
                  Retry-After); any other error status stops with exit status 2. --follow
                  keeps polling for new records. Needs the `otlp` feature.

OPTIONS:
    --dir DIR     the log root (default: $TRACEKIT_DIR, else trace)
    --json        print JSON instead of tables
    --threads N   scan with N threads (default: all cores)
    --service-name NAME   the resource's service.name (default: $OTEL_SERVICE_NAME, else
                  unknown_service)
    -h, --help    this help

TIMES (--since, --until):
    RFC 3339, with or without a zone; no zone means UTC: 2025-11-16T10:00:00,
    2025-11-16T10:00:00+01:00, 2025-11-16. Or a duration before now: 30m, 1h, 2d, 1w.

EXIT STATUS:
    0 found, 1 nothing found, 2 error

EXAMPLES:
    log_analyzer errors --since \"2025-11-16T10:00:00\"
    log_analyzer errors --since 1h --component candidate
    log_analyzer errors --type ValueError --json | jq '.by_type'
    log_analyzer performance candidate
    log_analyzer slow candidate --threshold 1000
    log_analyzer summary
    log_analyzer export --otlp-json requests.jsonl --request-id req-123
    log_analyzer forward --endpoint http://localhost:4318
";

fn main() -> ExitCode {
    common::main_with(run)
}

#[derive(Default)]
struct Options {
    dir: Option<String>,
    json: bool,
    threads: Option<usize>,
    command: Option<String>,
    component: Option<String>,
    since: Option<String>,
    until: Option<String>,
    error_type: Option<String>,
    request_id: Option<String>,
    limit: Option<usize>,
    threshold: Option<f64>,
    otlp_json: Option<String>,
    service_name: Option<String>,
    endpoint: Option<String>,
    checkpoint: Option<String>,
    batch_size: Option<usize>,
    max_rate: Option<f64>,
    follow: bool,
}

fn run() -> anyhow::Result<ExitCode> {
    let mut args = Args::from_env()?;
    let mut o = Options::default();
    let mut positionals = Vec::new();
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Long(n) if n == "help" => return help(),
            Arg::Short('h') => return help(),
            Arg::Long(n) => {
                if n == "json" {
                    o.json = true;
                    continue;
                }
                if n == "follow" {
                    o.follow = true;
                    continue;
                }
                let v = args.value(&n)?;
                match n.as_str() {
                    "dir" => o.dir = Some(v),
                    "threads" => o.threads = Some(common::number(&n, &v)?),
                    "component" => o.component = Some(v),
                    "since" => o.since = Some(v),
                    "until" => o.until = Some(v),
                    "type" => o.error_type = Some(v),
                    "request-id" => o.request_id = Some(v),
                    "limit" => o.limit = Some(common::number(&n, &v)?),
                    "threshold" => o.threshold = Some(common::number(&n, &v)?),
                    "otlp-json" => o.otlp_json = Some(v),
                    "service-name" => o.service_name = Some(v),
                    "endpoint" => o.endpoint = Some(v),
                    "checkpoint" => o.checkpoint = Some(v),
                    "batch-size" => o.batch_size = Some(common::number(&n, &v)?),
                    "max-rate" => o.max_rate = Some(common::number(&n, &v)?),
                    _ => bail!("unknown option --{n} (see --help)"),
                }
            }
            Arg::Short(c) => bail!("unknown option -{c} (see --help)"),
            Arg::Positional(p) => positionals.push(p),
        }
    }
    let mut positionals = positionals.into_iter();
    o.command = positionals.next();
    let Some(command) = o.command.clone() else {
        bail!(
            "missing command: errors, performance, slow, summary, export or forward (see --help)"
        );
    };
    if matches!(command.as_str(), "performance" | "slow") {
        o.component = Some(positionals.next().with_context(|| {
            format!("{command} needs a COMPONENT, e.g. log_analyzer {command} candidate")
        })?);
    }
    if let Some(extra) = positionals.next() {
        bail!("unexpected argument {extra:?} (see --help)");
    }
    let allowed: &[&str] = match command.as_str() {
        "errors" => &[
            "since",
            "until",
            "component",
            "error_type",
            "request_id",
            "limit",
        ],
        "performance" => &["since", "component"],
        "slow" => &["component", "threshold", "limit"],
        "summary" => &[],
        "export" => &["since", "until", "request_id", "otlp_json", "service_name"],
        "forward" => &[
            "endpoint",
            "checkpoint",
            "batch_size",
            "max_rate",
            "follow",
            "service_name",
        ],
        other => bail!(
            "unknown command {other:?}: errors, performance, slow, summary, export or forward"
        ),
    };
    check_options(&o, &command, allowed)?;

    let mut analyzer = match &o.dir {
        Some(d) => LogAnalyzer::new(d),
        None => LogAnalyzer::default(),
    };
    if let Some(n) = o.threads {
        analyzer = analyzer.threads(n);
    }
    let now = Timestamp::now();
    let time = |v: &Option<String>| -> anyhow::Result<Option<Timestamp>> {
        v.as_deref()
            .map(|s| Timestamp::parse_arg(s, now))
            .transpose()
            .map_err(Into::into)
    };
    if command == "export" {
        let filter = ExportFilter {
            since: time(&o.since)?,
            until: time(&o.until)?,
            request_id: o.request_id.clone(),
        };
        return export(&analyzer, &o, &filter);
    }
    if command == "forward" {
        return forward(&analyzer, &o);
    }
    let style = Style::detect(std::io::stdout().is_terminal());
    let bar = common::ProgressBar::start(analyzer.progress());
    let (found, text, scan): (bool, String, ScanReport) = match command.as_str() {
        "errors" => {
            let filter = ErrorFilter {
                component: o.component.clone(),
                since: time(&o.since)?,
                until: time(&o.until)?,
                error_type: o.error_type.clone(),
                request_id: o.request_id.clone(),
                limit: Some(o.limit.unwrap_or(100)),
            };
            let r = analyzer.find_errors(&filter)?;
            if o.json {
                drop(bar);
                common::print_json(&r)?;
                return Ok(status(r.total > 0));
            }
            (r.total > 0, render_errors(&r, &style), r.scan)
        }
        "performance" => {
            let component = o.component.as_deref().unwrap_or_default();
            let r = analyzer.analyze_performance(component, time(&o.since)?)?;
            if o.json {
                drop(bar);
                common::print_json(&r)?;
                return Ok(status(r.records > 0));
            }
            (r.records > 0, render_performance(&r, &style), r.scan)
        }
        "slow" => {
            let component = o.component.as_deref().unwrap_or_default();
            let threshold = o.threshold.unwrap_or(1000.0);
            if !threshold.is_finite() {
                bail!("--threshold must be a finite number of milliseconds");
            }
            let r = analyzer.slow_operations(component, threshold, Some(o.limit.unwrap_or(20)))?;
            if o.json {
                drop(bar);
                common::print_json(&r)?;
                return Ok(status(r.total > 0));
            }
            (r.total > 0, render_slow(&r, &style), r.scan)
        }
        _ => {
            let r = analyzer.summary();
            if o.json {
                drop(bar);
                common::print_json(&r)?;
                return Ok(status(r.records > 0));
            }
            (r.records > 0, render_summary(&r, &style), r.scan)
        }
    };
    drop(bar);
    let mut text = text;
    let footer = render_footer(&scan, &style);
    if !footer.is_empty() {
        text.push('\n');
        text.push_str(&footer);
    }
    common::print(&text)?;
    Ok(status(found))
}

fn status(found: bool) -> ExitCode {
    ExitCode::from(if found {
        common::FOUND
    } else {
        common::NOT_FOUND
    })
}

/// Refuses options that the command does not take, rather than ignoring them.
fn check_options(o: &Options, command: &str, allowed: &[&str]) -> anyhow::Result<()> {
    let given = [
        ("since", o.since.is_some()),
        ("until", o.until.is_some()),
        ("component", o.component.is_some()),
        ("error_type", o.error_type.is_some()),
        ("request_id", o.request_id.is_some()),
        ("limit", o.limit.is_some()),
        ("threshold", o.threshold.is_some()),
        ("otlp_json", o.otlp_json.is_some()),
        ("service_name", o.service_name.is_some()),
        ("endpoint", o.endpoint.is_some()),
        ("checkpoint", o.checkpoint.is_some()),
        ("batch_size", o.batch_size.is_some()),
        ("max_rate", o.max_rate.is_some()),
        ("follow", o.follow),
    ];
    for (name, set) in given {
        if set && !allowed.contains(&name) {
            let flag = match name {
                "error_type" => "type".to_owned(),
                other => other.replace('_', "-"),
            };
            bail!("{command} does not take --{flag} (see --help)");
        }
    }
    Ok(())
}

fn service_name(o: &Options) -> String {
    o.service_name
        .clone()
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown_service".to_owned())
}

fn export(analyzer: &LogAnalyzer, o: &Options, filter: &ExportFilter) -> anyhow::Result<ExitCode> {
    let Some(file) = o.otlp_json.as_deref() else {
        bail!("export needs --otlp-json FILE (- for stdout)");
    };
    let service = service_name(o);
    let report = if file == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        analyzer.export_otlp_json(filter, &service, &mut out)
    } else {
        let f = std::fs::File::create(file).with_context(|| format!("cannot create {file}"))?;
        let mut out = std::io::BufWriter::new(f);
        analyzer.export_otlp_json(filter, &service, &mut out)
    };
    let report = match report {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r.context("export failed")?,
    };
    let summary = format!(
        "exported {} spans and {} log records in {} requests from {} files to {file}{}",
        report.spans,
        report.logs,
        report.requests,
        report.files,
        if report.skipped > 0 {
            format!(" ({} lines skipped: not records)", report.skipped)
        } else {
            String::new()
        }
    );
    if file == "-" {
        eprintln!("{summary}");
    } else {
        common::print(&format!("{summary}\n"))?;
    }
    Ok(status(report.spans + report.logs > 0))
}

#[cfg(feature = "otlp")]
fn forward(analyzer: &LogAnalyzer, o: &Options) -> anyhow::Result<ExitCode> {
    use tracekit_analyzer::forward::Forwarder;
    let Some(endpoint) = o.endpoint.as_deref() else {
        bail!("forward needs --endpoint URL, e.g. http://localhost:4318");
    };
    let mut forwarder = Forwarder::new(analyzer.root(), endpoint)?.service_name(service_name(o));
    if let Some(c) = &o.checkpoint {
        forwarder = forwarder.checkpoint(c);
    }
    if let Some(n) = o.batch_size {
        forwarder = forwarder.batch_size(n);
    }
    if let Some(r) = o.max_rate {
        forwarder = forwarder.max_rate(r);
    }
    loop {
        let report = forwarder.run()?;
        if report.spans + report.logs > 0 || !o.follow {
            common::print(&format!(
                "forwarded {} spans and {} log records in {} requests ({} retries) to {endpoint}\n",
                report.spans, report.logs, report.requests, report.retries
            ))?;
        }
        if !o.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(not(feature = "otlp"))]
fn forward(_: &LogAnalyzer, _: &Options) -> anyhow::Result<ExitCode> {
    bail!("forward needs tracekit built with the `otlp` feature: cargo install tracekit --features otlp")
}

fn help() -> anyhow::Result<ExitCode> {
    common::print(HELP)?;
    Ok(ExitCode::SUCCESS)
}
