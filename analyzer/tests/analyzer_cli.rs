//! `trace_request` and `log_analyzer`: every command and option, exit statuses, output
//! files, escaping and closed pipes, against the test's model of what was written.

mod analyzer_common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use analyzer_common::{build, close, percentile, Dataset, Spec};
use serde_json::Value;
use tracekit::exporters::{Level, Record};
use tracekit_analyzer::Timestamp;

fn data() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut d = build();
        // Content that must never reach a terminal or a page raw.
        let t = std::time::SystemTime::now() - Duration::from_secs(4 * 3600);
        let mut extra = vec![Record::new(
            Level::ERROR,
            "serving",
            "<script>alert('x')</script> \x1b[2J cleared",
        )
        .timestamp(t)
        .request_id("req-evil")];
        // A request with enough records to fill a pipe.
        for i in 0..BULK {
            extra.push(
                Record::new(Level::INFO, "bulk", "one of many records of one request")
                    .timestamp(t + Duration::from_micros(i as u64))
                    .request_id("req-big"),
            );
        }
        analyzer_common::write_more(d.root(), &extra);
        d.specs.push(Spec {
            micros: Timestamp::from(t).micros(),
            level: "ERROR",
            component: "serving".into(),
            request_id: Some("req-evil".into()),
            user_id: None,
            message: "<script>alert('x')</script> \x1b[2J cleared".into(),
            duration_ms: None,
            function: None,
            error_type: None,
            trace_id: None,
            span: None,
            data: Vec::new(),
        });
        d
    })
}

const BULK: usize = 3000;

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("TRACEKIT_DIR")
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn tr(args: &[&str]) -> Output {
    let root = data().root().to_str().unwrap().to_owned();
    let mut all = vec!["--dir", root.as_str()];
    all.extend_from_slice(args);
    run(env!("CARGO_BIN_EXE_trace_request"), &all)
}

fn la(args: &[&str]) -> Output {
    let root = data().root().to_str().unwrap().to_owned();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--dir", root.as_str()]);
    run(env!("CARGO_BIN_EXE_log_analyzer"), &all)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn specs() -> impl Iterator<Item = &'static Spec> {
    data().specs.iter()
}

#[test]
fn trace_request_text_json_export_and_html() {
    let o = tr(&["req-0013"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    for part in [
        "request req-0013",
        "user      user-6",
        "timeline",
        "stages",
        "data flow",
        "errors",
        "most recent call last",
    ] {
        assert!(text.contains(part), "missing {part:?} in\n{text}");
    }
    // Stages in pipeline order, then the rest.
    let stage_table = &text[text.find("\nstages").unwrap()..];
    let pos = |s: &str| stage_table.find(&format!("\n{s} ")).unwrap();
    assert!(pos("candidate") < pos("ranking") && pos("ranking") < pos("exploration"));
    assert!(pos("exploration") < pos("diversity") && pos("diversity") < pos("serving"));
    assert!(pos("serving") < pos("app"));
    assert!(!text.contains('\x1b'), "no colour on a pipe");

    let o = tr(&["req-0020", "--json"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    let own = specs()
        .filter(|s| s.request_id.as_deref() == Some("req-0020"))
        .count();
    let spans = specs()
        .filter(|s| {
            s.request_id.is_none()
                && s.trace_id
                    == specs()
                        .find(|x| x.request_id.as_deref() == Some("req-0020"))
                        .unwrap()
                        .trace_id
        })
        .count();
    assert_eq!(v["entries"].as_array().unwrap().len(), own + spans);
    assert_eq!(v["spans"].as_array().unwrap().len(), 6);
    assert_eq!(v["stages"][0]["component"], "candidate");

    // --export: a bare name goes to <dir>/analysis/.
    let o = tr(&["req-0020", "--export", "t.json"]);
    assert_eq!(code(&o), 0);
    let exported: Value =
        serde_json::from_slice(&std::fs::read(data().root().join("analysis/t.json")).unwrap())
            .unwrap();
    assert_eq!(exported, v);
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("sub/x.json");
    let o = tr(&["req-0020", "--export", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(path.exists());

    // --html: one self-contained file.
    let o = tr(&["req-0020", "--html", "req.html"]);
    assert_eq!(code(&o), 0);
    let page = std::fs::read_to_string(data().root().join("analysis/req.html")).unwrap();
    assert!(page.contains("waterfall") && page.contains("handle_request"));
    for external in ["src=", "href=", "<script", "<link", "@import", "url("] {
        assert!(!page.contains(external), "{external}");
    }
}

#[test]
fn html_and_text_escape_log_content() {
    let o = tr(&["req-evil", "--html", "evil.html"]);
    assert_eq!(code(&o), 0);
    let page = std::fs::read_to_string(data().root().join("analysis/evil.html")).unwrap();
    assert!(!page.contains("<script"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(!page.contains('\x1b'));
    let text = stdout(&tr(&["req-evil"]));
    assert!(!text.contains('\x1b'));
    assert!(text.contains("\\u{1b}[2J cleared"));
    let text = stdout(&la(&["errors", "--request-id", "req-evil"]));
    assert!(!text.contains('\x1b') && text.contains("\\u{1b}[2J"));
}

#[test]
fn trace_request_exit_statuses() {
    let o = tr(&["req-9999"]);
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no records of request") && err.contains(data().root().to_str().unwrap()),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    // With --json, stdout says so too, and where it looked; the status stays 1.
    let o = tr(&["req-9999", "--json"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    let root = data().root().to_str().unwrap();
    assert_eq!(v["request_id"], "req-9999");
    assert_eq!(v["found"], false);
    assert_eq!(v["looked_in"]["root"], root);
    let dirs: Vec<&str> = v["looked_in"]["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(dirs.iter().any(|d| d.ends_with("logs")), "{dirs:?}");
    assert!(dirs.iter().any(|d| d.ends_with("archived")), "{dirs:?}");
    assert!(v["looked_in"]["files"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(code(&tr(&[])), 2);
    assert_eq!(code(&tr(&["req-0001", "--bogus"])), 2);
    assert_eq!(code(&tr(&["req-0001", "extra"])), 2);
    assert_eq!(code(&tr(&["req-0001", "--export"])), 2);
    let o = run(env!("CARGO_BIN_EXE_trace_request"), &["--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("EXAMPLES"));
}

fn errors_of(filter: impl Fn(&Spec) -> bool) -> Vec<&'static Spec> {
    let mut v: Vec<&Spec> = specs()
        .filter(|s| s.is_error())
        .filter(|s| filter(s))
        .collect();
    v.sort_by_key(|s| s.micros);
    v
}

fn check_errors_json(args: &[&str], want: Vec<&Spec>, limit: usize) {
    let mut full = vec!["errors"];
    full.extend_from_slice(args);
    full.push("--json");
    let o = la(&full);
    assert_eq!(code(&o), if want.is_empty() { 1 } else { 0 }, "{args:?}");
    let v = json(&o);
    assert_eq!(
        v["total"].as_u64().unwrap() as usize,
        want.len(),
        "{args:?}"
    );
    let shown = &want[want.len().saturating_sub(limit)..];
    let got: Vec<(String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["timestamp"].as_str().unwrap().to_owned(),
                e["component"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = shown
        .iter()
        .map(|s| (s.timestamp(), s.component.clone()))
        .collect();
    assert_eq!(got, expected, "{args:?}");
}

#[test]
fn log_analyzer_errors_every_option() {
    let model: Vec<&Spec> = errors_of(|_| true);
    let with_evil = model.len();
    check_errors_json(&[], errors_of(|_| true), 100);
    check_errors_json(
        &["--component", "candidate"],
        errors_of(|s| s.component == "candidate"),
        100,
    );
    check_errors_json(
        &["--type", "ValueError"],
        errors_of(|s| s.error_type.as_deref() == Some("ValueError")),
        100,
    );
    check_errors_json(
        &["--request-id", "req-0026"],
        errors_of(|s| s.request_id.as_deref() == Some("req-0026")),
        100,
    );
    check_errors_json(&["--limit", "4"], errors_of(|_| true), 4);
    // Relative: the last hour (the model's second half is within 40 minutes).
    let hour_ago = data().now_micros - 3_600_000_000;
    check_errors_json(&["--since", "1h"], errors_of(|s| s.micros >= hour_ago), 100);
    check_errors_json(&["--until", "1h"], errors_of(|s| s.micros <= hour_ago), 100);
    check_errors_json(
        &["--since=1h", "--limit=2"],
        errors_of(|s| s.micros >= hour_ago),
        2,
    );
    // RFC 3339 without a zone is UTC; with one, it is applied.
    let mid = model[with_evil / 2];
    let ts = mid.timestamp();
    let no_zone = ts.trim_end_matches('Z');
    check_errors_json(
        &["--since", no_zone],
        errors_of(|s| s.micros >= mid.micros),
        100,
    );
    let plus_one = Timestamp::from_micros(mid.micros + 3_600_000_000).to_string();
    let offset = format!("{}+01:00", plus_one.trim_end_matches('Z'));
    check_errors_json(
        &["--until", &offset],
        errors_of(|s| s.micros <= mid.micros),
        100,
    );
    check_errors_json(
        &[
            "--since",
            no_zone,
            "--until",
            no_zone,
            "--component",
            &mid.component,
        ],
        errors_of(|s| s.micros == mid.micros && s.component == mid.component),
        100,
    );
    check_errors_json(&["--component", "nothing"], Vec::new(), 100);

    // The seed's commands, as written.
    for args in [
        vec!["errors", "--since", "2025-11-16T10:00:00"],
        vec!["errors", "--component", "candidate"],
        vec!["errors", "--type", "ValueError"],
    ] {
        let o = la(&args);
        assert_eq!(
            code(&o),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = stdout(&o);
        assert!(
            text.starts_with("time ") && text.contains("errors shown"),
            "{text}"
        );
    }
    assert_eq!(code(&la(&["errors", "--since", "yesterday"])), 2);
    assert_eq!(code(&la(&["errors", "--limit", "many"])), 2);
    assert_eq!(
        code(&la(&["errors", "--threshold", "5"])),
        2,
        "an option the command does not take"
    );
}

#[test]
fn log_analyzer_performance_and_slow() {
    for since in [None, Some("1h")] {
        let mut args = vec!["performance", "ranking", "--json"];
        if let Some(s) = since {
            args.extend(["--since", s]);
        }
        let o = la(&args);
        assert_eq!(code(&o), 0);
        let v = json(&o);
        let floor = since.map_or(i64::MIN, |_| data().now_micros - 3_600_000_000);
        let of: Vec<&Spec> = specs()
            .filter(|s| s.component == "ranking" && s.micros >= floor)
            .collect();
        let values: Vec<f64> = of.iter().filter_map(|s| s.duration_ms).collect();
        let d = &v["duration_ms"];
        assert_eq!(d["count"].as_u64().unwrap() as usize, values.len());
        for (k, p) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
            assert!(close(d[k].as_f64().unwrap(), percentile(&values, p)), "{k}");
        }
        let errors = of.iter().filter(|s| s.is_error()).count() as f64;
        assert!(close(
            v["error_rate"].as_f64().unwrap(),
            errors / of.len() as f64
        ));
        assert_eq!(v["functions"].as_array().unwrap().len(), 2);
    }
    let text = stdout(&la(&["performance", "candidate"]));
    for part in [
        "candidate",
        "error rate",
        "p50",
        "p99",
        "candidate_fn0",
        "candidate_fn1",
        "(all)",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let o = la(&["performance", "zeta"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("no timing records"));
    assert_eq!(code(&la(&["performance", "nothing"])), 1);
    assert_eq!(code(&la(&["performance"])), 2);
    assert_eq!(code(&la(&["performance", "Bad/Name"])), 2);

    // slow: default threshold 1000 ms and limit 20; the model's durations stay under 1000.
    let mut durations: Vec<f64> = specs()
        .filter(|s| s.component == "candidate")
        .filter_map(|s| s.duration_ms)
        .collect();
    durations.sort_by(|a, b| b.partial_cmp(a).unwrap());
    assert_eq!(code(&la(&["slow", "candidate"])), 1);
    let o = la(&[
        "slow",
        "candidate",
        "--threshold",
        "700",
        "--limit",
        "3",
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    let over: Vec<f64> = durations.iter().copied().filter(|&d| d > 700.0).collect();
    assert_eq!(v["total"].as_u64().unwrap() as usize, over.len());
    let got: Vec<f64> = v["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["duration_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(got, over[..3].to_vec());
    let text = stdout(&la(&["slow", "candidate", "--threshold", "700"]));
    assert!(
        text.contains(&format!("of {} operations over 700 ms", over.len())),
        "{text}"
    );
    // The seed's command, as written.
    assert_eq!(code(&la(&["slow", "candidate", "--threshold", "1000"])), 1);
}

#[test]
fn log_analyzer_summary() {
    let o = la(&["summary", "--json"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in specs() {
        *counts.entry(s.component.clone()).or_insert(0) += 1;
    }
    counts.insert("bulk".into(), BULK as u64);
    let got: BTreeMap<String, u64> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["component"].as_str().unwrap().to_owned(),
                c["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, counts);
    let text = stdout(&la(&["summary"]));
    assert!(
        text.contains("component")
            && text.contains("errors by type")
            && text.contains("ValueError=")
    );
    let empty = tempfile::tempdir().unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_log_analyzer"),
        &["summary", "--dir", empty.path().to_str().unwrap()],
    );
    assert_eq!(code(&o), 1);
    assert_eq!(code(&run(env!("CARGO_BIN_EXE_log_analyzer"), &[])), 2);
    assert_eq!(
        code(&run(env!("CARGO_BIN_EXE_log_analyzer"), &["frobnicate"])),
        2
    );
    let o = run(env!("CARGO_BIN_EXE_log_analyzer"), &["--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("EXAMPLES") && stdout(&o).contains("no zone means UTC"));
}

#[test]
fn the_default_directory_comes_from_the_environment() {
    let o = Command::new(env!("CARGO_BIN_EXE_log_analyzer"))
        .args(["summary", "--json"])
        .env("TRACEKIT_DIR", data().root())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    // Or run from a directory holding trace/.
    let o = Command::new(env!("CARGO_BIN_EXE_log_analyzer"))
        .args(["summary"])
        .env_remove("TRACEKIT_DIR")
        .current_dir(Path::new("/"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "no trace/ under /");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // Far more output than a pipe holds.
    for (bin, args) in [
        (
            env!("CARGO_BIN_EXE_trace_request"),
            vec!["req-big", "--json"],
        ),
        (env!("CARGO_BIN_EXE_trace_request"), vec!["req-big"]),
    ] {
        let root = data().root().to_str().unwrap();
        let mut child = Command::new(bin)
            .args(&args)
            .args(["--dir", root])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        out.read_exact(&mut first).unwrap();
        drop(out);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{bin}");
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
