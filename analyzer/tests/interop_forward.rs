//! `log_analyzer forward` (feature `otlp`) to the real rotel receiver: a kill and a restart in
//! the middle lose nothing and resend nothing acknowledged; rotation neither skips nor
//! repeats a file; only the retryable statuses are retried.
#![cfg(feature = "otlp")]

#[path = "../../tests/interop_support/mod.rs"]
mod interop_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use interop_support::{main_records, peers, wait_for, Front, Item, Rotel};
use tracekit::exporters::{Compression, Level, LogWriter, Record};
use tracekit::LogContext;

fn forward(root: &Path, endpoint: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_log_analyzer"));
    cmd.arg("forward")
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--dir")
        .arg(root)
        .args(extra);
    cmd
}

/// What rotel received, by identity: a log record's body, a span's id.
fn received(rotel: &Rotel) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let logs = rotel.logs();
    let spans = rotel.spans();
    let keys = logs
        .iter()
        .map(|l: &Item| l.body().to_owned())
        .chain(spans.iter().map(|s| format!("span {}", s.field("ID"))));
    for key in keys {
        *seen.entry(key).or_default() += 1;
    }
    seen
}

fn key(record: &serde_json::Value) -> String {
    match record.get("span") {
        Some(_) => format!("span {}", record["span_id"].as_str().unwrap()),
        None => record["message"].as_str().unwrap().to_owned(),
    }
}

/// The records of the main files whose line ends at or before the checkpoint's offset of
/// the file (one file here).
fn acknowledged(root: &Path) -> usize {
    let text = std::fs::read_to_string(root.join("analysis/forward.checkpoint.json")).unwrap();
    let cp: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = cp["files"].as_object().unwrap();
    assert_eq!(files.len(), 1, "{cp}");
    let offset = files.values().next().unwrap()["offset"].as_u64().unwrap() as usize;
    let log = std::fs::read_to_string(root.join("logs/app/app.log")).unwrap();
    assert!(offset <= log.len());
    assert!(
        offset == 0 || log.as_bytes()[offset - 1] == b'\n',
        "offsets fall on line ends"
    );
    log[..offset].lines().count()
}

#[test]
fn a_kill_and_restart_lose_nothing_and_resend_nothing_acknowledged() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let (dispatch, guard) = tracekit::builder()
        .root(&root)
        .panic_hook(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..200 {
            LogContext::new()
                .request_id(format!("req-fwd-{i}"))
                .in_scope(|| {
                    tracing::info!(n = i as u64, "event {i} a");
                    tracing::warn!("event {i} b");
                });
        }
    });
    drop(guard);
    let records = main_records(&root);
    let total = records.len();
    assert_eq!(total, 600, "400 events and 200 request spans");

    let mut rotel = Rotel::start(&peers, dir.path());
    let endpoint = rotel.endpoint();
    let batch = 20;
    let mut first = forward(
        &root,
        &endpoint,
        &["--batch-size", "20", "--max-rate", "300"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    wait_for(Duration::from_secs(30), "rotel to get 150 records", || {
        (rotel.logs().len() + rotel.spans().len() >= 150).then_some(())
    });
    first.kill().unwrap(); // SIGKILL: no chance to save anything
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // rotel prints what was in flight
    let acked = acknowledged(&root);
    let before = received(&rotel);
    let got: usize = before.values().sum();
    assert!(
        acked > 0 && acked < total,
        "killed in the middle: {acked} of {total} acknowledged"
    );
    assert!(
        got >= acked && got - acked <= batch,
        "received {got}, acknowledged {acked}: at most the batch in flight beyond it"
    );

    let out = forward(&root, &endpoint, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = wait_for(Duration::from_secs(30), "every record at rotel", || {
        let r = received(&rotel);
        (r.values().sum::<usize>() >= got + (total - acked)).then_some(r)
    });
    std::thread::sleep(Duration::from_millis(500));
    let all_now = received(&rotel);
    assert_eq!(all_now, all, "nothing more arrives");
    let sent_after_restart = all.values().sum::<usize>() - got;
    assert_eq!(
        sent_after_restart,
        total - acked,
        "the restart sends exactly what was not acknowledged"
    );
    for record in &records {
        let n = all.get(&key(record)).copied().unwrap_or(0);
        assert!(n >= 1, "{record} never arrived");
    }
    let twice = all.values().filter(|&&n| n > 1).count();
    assert!(
        twice <= batch,
        "only the batch in flight at the kill twice: {twice}"
    );

    // Everything acknowledged: a third run sends nothing.
    let out = forward(&root, &endpoint, &[]).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("forwarded 0 spans and 0 log records"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(received(&rotel), all);
    rotel.kill();
}

#[test]
fn rotated_files_are_neither_skipped_nor_sent_twice() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let rotel = Rotel::start(&peers, dir.path());
    let endpoint = rotel.endpoint();
    let (writer, guard) = LogWriter::builder()
        .root(&root)
        .max_file_size(8 * 1024)
        .compression(Compression::Gzip { level: 1 })
        .build()
        .unwrap();
    let write = |from: usize, to: usize| {
        for i in from..to {
            let message = format!("rotating record {i:05} {}", "x".repeat(100));
            writer
                .write(&Record::new(Level::INFO, "app", &message).request_id("req-rot"))
                .unwrap();
        }
        writer.flush().unwrap();
    };
    write(0, 40);
    let out = forward(&root, &endpoint, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(20), "40 records", || {
        (rotel.logs().len() >= 40).then_some(())
    });

    // Rotations move the live file (with its unsent tail) to archived/ and gzip it.
    write(40, 400);
    assert!(writer.wait_for_archives(Duration::from_secs(20)));
    let archived: Vec<_> = std::fs::read_dir(root.join("archived/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        archived.iter().any(|n| n.ends_with(".log.gz")),
        "{archived:?}"
    );
    let out = forward(&root, &endpoint, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = wait_for(Duration::from_secs(20), "400 records", || {
        let r = received(&rotel);
        (r.values().sum::<usize>() >= 400).then_some(r)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(received(&rotel), all, "nothing more arrives");
    assert_eq!(all.len(), 400, "every record");
    assert!(all.values().all(|&n| n == 1), "none twice");

    // More rotations between two runs, with a retention-free archive: still exactly once.
    write(400, 600);
    assert!(writer.wait_for_archives(Duration::from_secs(20)));
    let out = forward(&root, &endpoint, &[]).output().unwrap();
    assert!(out.status.success());
    let all = wait_for(Duration::from_secs(20), "600 records", || {
        let r = received(&rotel);
        (r.values().sum::<usize>() >= 600).then_some(r)
    });
    assert_eq!(all.len(), 600);
    assert!(all.values().all(|&n| n == 1), "none twice");
    drop(guard);
}

#[test]
fn a_refusing_endpoint_stops_with_a_clear_error() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let (writer, guard) = LogWriter::builder().root(&root).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "app", "one"))
        .unwrap();
    drop(guard);
    let rotel = Rotel::start(&peers, dir.path());
    // rotel answers 404 under an unknown path: not retryable.
    let out = forward(&root, &format!("{}/nowhere", rotel.endpoint()), &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rejected the batch: HTTP 404"), "{stderr}");
    assert!(
        !root.join("analysis/forward.checkpoint.json").exists(),
        "nothing acknowledged, nothing checkpointed"
    );
}

#[test]
fn overload_is_retried_with_backoff() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let (writer, guard) = LogWriter::builder().root(&root).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "app", "retried"))
        .unwrap();
    drop(guard);
    let rotel = Rotel::start(&peers, dir.path());
    let front = Front::start(rotel.http_port, 2);
    let out = forward(&root, &format!("http://127.0.0.1:{}", front.port), &[])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(front.heads().len(), 3);
    assert_eq!(
        front.early(),
        0,
        "a retry before the Retry-After: 1 it was given"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(2 retries)"));
    wait_for(Duration::from_secs(10), "the record", || {
        rotel
            .logs()
            .iter()
            .any(|l| l.body() == "retried")
            .then_some(())
    });
}
