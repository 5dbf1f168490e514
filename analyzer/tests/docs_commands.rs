//! Every command the docs show works: the demo runs, then each command of the `sh` blocks of
//! README.md, trace/README.md, trace/QUICKSTART.md and LOGGING_SYSTEM.md, and each command
//! the demo prints at the end, runs against what the demo wrote.
//!
//! The demo is compiled into this test (`#[path]`) and run in-process, as
//! `cargo run --example recommendation_pipeline` would run it. The commands run with `sh -c`
//! in a directory whose `trace/` is the demo's output (the default root, so `trace/logs/..`
//! paths in the docs work as written), with `trace_request` and `log_analyzer` on the PATH
//! (this build's binaries); `cargo run --release --bin NAME --` becomes `NAME`, and the
//! placeholders `<request_id>` and `req-123` become a request of the demo that has an
//! error. Commands that cannot run here (installers, a Collector, a service of yours, an
//! interactive viewer) are listed with the reason in `not_run_here`; anything else fails
//! the test, so a new command in the docs is either run or explained.

#[allow(dead_code)]
#[path = "../../examples/recommendation_pipeline.rs"]
mod demo;

use std::path::{Path, PathBuf};
use std::process::Command;

const DOCS: [&str; 4] = [
    "README.md",
    "trace/README.md",
    "trace/QUICKSTART.md",
    "LOGGING_SYSTEM.md",
];

const COMPONENTS: [&str; 10] = [
    "app",
    "ab_test",
    "candidate",
    "ranking",
    "exploration",
    "diversity",
    "serving",
    "feedback",
    "errors",
    "performance",
];

/// Why a docs command is not run by this test, or `None` when it is.
fn not_run_here(command: &str) -> Option<&'static str> {
    let words: Vec<&str> = command
        .split_whitespace()
        .skip_while(|w| is_assignment(w))
        .collect();
    let first = words.first().copied().unwrap_or("");
    if command.contains("cargo fuzz") {
        return Some("a fuzzing run (.ci/run runs each target for 30 s)");
    }
    let reason = match first {
        "python3" | "pip" | "/opt/tracekit-peers/bin/pip" => "installs the interop peers",
        "otelcol-contrib" => "needs an OpenTelemetry Collector (run by tests/interop_collector.rs)",
        "lnav" => "an interactive viewer",
        "./my-service" => "your own service",
        "git" | "cd" => "a clone of the repository",
        "cargo" => match words.get(1).copied() {
            Some("test") => "the test command itself",
            Some("install") => "installs the binaries",
            Some("run") if command.contains("--example logging_example") => {
                "run by tests/example_logging.rs, which checks what it writes"
            }
            _ => return None,
        },
        "log_analyzer" if words.get(1) == Some(&"forward") => {
            "needs an OTLP endpoint (run by analyzer/tests/interop_forward.rs)"
        }
        _ => return None,
    };
    Some(reason)
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    })
}

/// The commands of the ```sh blocks of a markdown file, continuation lines joined.
fn sh_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && (info == "sh" || info == "bash");
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let command = std::mem::take(&mut pending);
        if !command.is_empty() && !command.starts_with('#') {
            out.push(command);
        }
    }
    out
}

/// `cargo run --release --bin NAME -- ARGS` becomes `NAME ARGS`; placeholders become ids.
fn rewrite(command: &str, request_id: &str) -> String {
    let mut c = command.to_owned();
    for bin in ["trace_request", "log_analyzer"] {
        for form in [
            format!("cargo run --release --bin {bin} --"),
            format!("cargo run --bin {bin} --"),
        ] {
            c = c.replace(&form, bin);
        }
    }
    c.replace("<request_id>", request_id)
        .replace("<component>", "candidate")
        .replace("req-123", request_id)
}

struct Run {
    command: String,
    stdout: String,
}

fn sh(work: &Path, bin: &Path, command: &str) -> Run {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(work)
        .env("PATH", path)
        .env_remove("TRACEKIT_DIR")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{command}` failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        command: command.to_owned(),
        stdout,
    }
}

#[test]
fn the_demo_then_every_command_the_docs_show() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("trace");
    let options = demo::Options {
        requests: 60,
        concurrency: 8,
        error_rate: 0.3,
        seed: 7,
        dir: root.clone(),
    };
    let report = demo::run(&options).unwrap();
    let summary = report.to_string();

    // The summary: records in every component, real requests, the next commands.
    for component in COMPONENTS {
        let n = report.records.get(component).copied().unwrap_or(0);
        assert!(n > 0, "no records in {component}:\n{summary}");
        let file = root.join(format!("logs/{component}/{component}.log"));
        assert!(summary.contains(&file.display().to_string()), "{summary}");
    }
    assert_eq!(report.ok_requests.len(), 2, "{summary}");
    let (error_id, _) = report
        .error_request
        .clone()
        .expect("a request with an error");
    assert!(report.failed > 0 && report.degraded > 0, "{summary}");
    assert_eq!(
        report.served + report.failed + report.degraded,
        options.requests
    );
    for id in report.ok_requests.iter().chain([&error_id]) {
        assert!(summary.contains(id.as_str()), "{summary}");
    }

    // This build's binaries on the PATH, as `cargo install --path analyzer` would put them.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, exe) in [
        ("trace_request", env!("CARGO_BIN_EXE_trace_request")),
        ("log_analyzer", env!("CARGO_BIN_EXE_log_analyzer")),
    ] {
        std::os::unix::fs::symlink(exe, bin.join(name)).unwrap();
    }

    // The commands the demo printed, with this run's ids and directory.
    let printed = report.next_commands();
    for command in &printed {
        assert!(summary.contains(command.as_str()));
        let run = sh(work.path(), &bin, &rewrite(command, &error_id));
        assert!(!run.stdout.trim().is_empty(), "`{command}`: no output");
    }
    let traced = sh(
        work.path(),
        &bin,
        &format!("trace_request {error_id} --dir trace"),
    );
    assert!(traced.stdout.contains(&error_id), "{}", traced.stdout);

    // The docs' commands.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap(); // the workspace root
    let mut to_run = Vec::new();
    let mut demo_commands = 0;
    for doc in DOCS {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap();
        for command in sh_commands(&text) {
            if let Some(args) = command.split_once("--example recommendation_pipeline") {
                // The demo itself (run above); its options must parse.
                let args = args.1.trim().trim_start_matches("--").split_whitespace();
                let parsed = demo::Options::parse(args.map(str::to_owned));
                assert!(
                    matches!(parsed, Ok(Some(_))),
                    "{doc}: `{command}`: {parsed:?}"
                );
                demo_commands += 1;
            } else if not_run_here(&command).is_none() {
                to_run.push((doc, rewrite(&command, &error_id)));
            }
        }
    }
    assert!(demo_commands > 0, "the docs never show the demo command");
    // Commands that delete files last.
    to_run.sort_by_key(|(_, c)| c.contains("-delete"));
    let mut ran: Vec<Run> = Vec::new();
    for (doc, command) in &to_run {
        let run = sh(work.path(), &bin, command);
        let deletes = command.contains("-delete");
        assert!(
            deletes || !run.stdout.trim().is_empty(),
            "{doc}: `{command}` printed nothing"
        );
        ran.push(run);
    }
    assert!(ran.len() >= 10, "only {} docs commands ran", ran.len());
    eprintln!(
        "ran {} printed and {} docs commands:\n{}",
        printed.len(),
        ran.len(),
        ran.iter()
            .map(|r| r.command.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // `find trace/logs -name "*.log" -delete`, when the docs show it, clears the logs.
    if to_run
        .iter()
        .any(|(_, c)| c.contains("trace/logs") && c.contains("-delete"))
    {
        assert!(log_files(&root.join("logs")).is_empty());
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(log_files(&path));
        } else if path.extension().is_some_and(|e| e == "log") {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_demo_options() {
    let parse = |args: &[&str]| demo::Options::parse(args.iter().map(|s| s.to_string()));
    let o = parse(&[
        "--requests",
        "5",
        "--concurrency=2",
        "--error-rate",
        "0.5",
        "--seed",
        "9",
        "--dir",
        "/tmp/x",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        (o.requests, o.concurrency, o.error_rate, o.seed),
        (5, 2, 0.5, 9)
    );
    assert_eq!(o.dir, Path::new("/tmp/x"));
    assert!(parse(&["--help"]).unwrap().is_none());
    let error = |args: &[&str]| parse(args).map(|o| o.is_some()).unwrap_err();
    assert_eq!(
        error(&["--error-rate", "2"]),
        "--error-rate must be between 0 and 1"
    );
    assert_eq!(
        error(&["--concurrency", "0"]),
        "--concurrency must be at least 1"
    );
    assert_eq!(error(&["--requests"]), "--requests needs a value");
    assert_eq!(
        error(&["--requests", "many"]),
        "--requests: not a valid number: \"many\""
    );
    assert_eq!(error(&["--bogus"]), "unknown argument \"--bogus\"");
}

#[test]
fn the_docs_commands_are_found() {
    let commands =
        sh_commands("```sh\n# c\nlog_analyzer summary\nA=1 b \\\n  --x\n```\n```rust\nx\n```\n");
    assert_eq!(commands, ["log_analyzer summary", "A=1 b --x"]);
    assert_eq!(
        rewrite(
            "cargo run --release --bin trace_request -- req-123 --dir trace",
            "r-1"
        ),
        "trace_request r-1 --dir trace"
    );
    assert!(not_run_here("OTEL_SERVICE_NAME=x ./my-service").is_some());
    assert!(not_run_here("log_analyzer summary").is_none());
}
