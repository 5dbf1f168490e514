//! Files left in a bad state (item 4): a restart after a torn tail (the file ends
//! mid-record) starts the next record on its own line, and the analysis tools, library and
//! `log_analyzer`, read such files without failing.

#[path = "../../tests/reliability_support/mod.rs"]
mod reliability_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use reliability_support::{file_lines, writer_builder};
use tracekit_analyzer::{LogAnalyzer, SkipReason};

/// Logs through the bridge into `root` with a writer built from `writer`.
fn with_bridge(root: &Path, writer: tracekit::exporters::LogWriterBuilder, f: impl FnOnce()) {
    let (dispatch, guard) = tracekit::builder()
        .root(root)
        .filter("trace")
        .log_writer(writer)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    drop(guard);
}

/// Where a crash can cut a record: mid-key, mid-number, right after a backslash, inside a
/// `\u` escape, inside a multi-byte character, just before the closing brace.
fn cut_points(line: &[u8]) -> Vec<(&'static str, usize)> {
    let find = |needle: &[u8]| {
        line.windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{:?} not in the line", String::from_utf8_lossy(needle)))
    };
    vec![
        ("in a key", find(b"\"level\"") + 3),
        ("in a number", find(b"\"duration_ms\":") + 16),
        ("after a backslash", find(b"\\\"q") + 1),
        ("inside a \\u escape", find(b"\\u2028") + 4),
        ("inside a UTF-8 character", find("é".as_bytes()) + 1),
        ("before the last brace", line.len() - 1),
    ]
}

#[test]
fn a_restart_after_a_torn_tail_starts_the_next_record_on_its_own_line() {
    // One timing record, written by the real encoder, is the record that gets torn.
    let template = {
        let dir = tempfile::tempdir().unwrap();
        with_bridge(dir.path(), writer_builder(dir.path()), || {
            tracing::info!(
                component = "torn",
                duration_ms = 12.5,
                note = "say \"q\" \u{2028} café",
                { tracekit::TIMING_FIELD } = true,
                "timed"
            );
        });
        fs::read(dir.path().join("logs/torn/torn.log")).unwrap()
    };
    let template = &template[..template.len() - 1]; // without its '\n'
    for (what, cut) in cut_points(template) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = root.join("logs/torn/torn.log");
        // A first run leaves two whole records and a torn third in the component file and
        // in errors/ (the crash).
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::create_dir_all(root.join("logs/errors")).unwrap();
        let mut torn = [template, b"\n", template, b"\n"].concat();
        torn.extend_from_slice(&template[..cut]);
        fs::write(&path, &torn).unwrap();
        fs::write(root.join("logs/errors/errors.log"), &template[..cut]).unwrap();

        // The restart logs through the bridge.
        with_bridge(root, writer_builder(root), || {
            tracing::info!(component = "torn", duration_ms = 3.0, "after restart");
            tracing::error!(component = "torn", "error after restart");
        });

        let f = file_lines(&path);
        assert!(f.partial.is_none(), "{what}");
        assert_eq!(f.lines.len(), 5, "{what}: {:?}", f.lines);
        assert_eq!(
            f.lines[2],
            &template[..cut],
            "{what}: the torn bytes are kept as they were"
        );
        for i in [0, 1, 3, 4] {
            serde_json::from_slice::<serde_json::Value>(&f.lines[i])
                .unwrap_or_else(|e| panic!("{what}: line {}: {e}", i + 1));
        }
        let last: serde_json::Value = serde_json::from_slice(&f.lines[3]).unwrap();
        assert_eq!(last["message"], "after restart", "{what}");
        let errors = file_lines(&root.join("logs/errors/errors.log"));
        assert_eq!(errors.lines.len(), 2, "{what}");
        assert!(errors.partial.is_none());
        let e: serde_json::Value = serde_json::from_slice(&errors.lines[1]).unwrap();
        assert_eq!(e["message"], "error after restart", "{what}");

        // The analysis tools read the file: the torn line is one skipped line, the rest
        // count (the fast timing reader once panicked on the cut after a backslash).
        let analyzer = LogAnalyzer::new(root).threads(1);
        // The summary and performance queries read a line in the encoder's layout at its
        // keys (their documented fast path): a record torn only before its final brace
        // still looks closed, and counts (its values are all there).
        let closed = what == "before the last brace";
        let perf = analyzer.analyze_performance("torn", None).unwrap();
        assert_eq!(
            perf.duration_ms.map(|d| d.count),
            Some(3 + u64::from(closed)),
            "{what}"
        );
        let summary = analyzer.summary();
        assert_eq!(
            summary.records,
            4 + u64::from(closed),
            "{what}: {summary:?}"
        );
        assert_eq!(
            summary.scan.skipped_lines(),
            u64::from(!closed),
            "{what}: {:?}",
            summary.scan
        );
        if !closed {
            let reason = if what == "inside a UTF-8 character" {
                SkipReason::InvalidUtf8
            } else {
                SkipReason::Malformed
            };
            assert_eq!(summary.scan.skipped[0].reason, reason, "{what}");
        }
        for args in [
            &["performance", "torn"][..],
            &["summary"],
            &["slow", "torn", "--threshold", "1"],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_log_analyzer"))
                .args(args)
                .arg("--dir")
                .arg(root)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{what}: {args:?}: {out:?}");
        }
    }
}

#[test]
fn a_torn_last_line_is_skipped_and_counted_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    with_bridge(root, writer_builder(root), || {
        for i in 0..10u64 {
            tracing::info!(component = "tail", i, duration_ms = 1.0, "r");
        }
    });
    let path = root.join("logs/tail/tail.log");
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 20);
    fs::write(&path, &bytes).unwrap();
    let analyzer = LogAnalyzer::new(root).threads(1);
    let summary = analyzer.summary();
    assert_eq!(summary.records, 9);
    assert_eq!(summary.scan.skipped.len(), 1, "{:?}", summary.scan);
    assert_eq!(summary.scan.skipped[0].reason, SkipReason::Partial);
    assert_eq!(summary.scan.skipped[0].lines, 1);
    let perf = analyzer.analyze_performance("tail", None).unwrap();
    assert_eq!(perf.duration_ms.map(|d| d.count), Some(9));
}
