//! Hostile paths (item 9): hostile component names through every API create nothing
//! outside `<root>/logs` and `<root>/archived`, and rotation follows no symlink.
//!
//! Item 4 (a restart after a torn tail, and the analysis tools reading such files) is the
//! analyzer crate's `reliability_torn_tail` test: it runs `log_analyzer`.

mod reliability_support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path};
use std::time::Duration;

use reliability_support::{file_lines, stem_files, walk, writer_builder};
use tracekit::exporters::{Level, Record, Value};

const HOSTILE: [&str; 8] = [
    "../x",
    "/etc",
    "a\0b",
    "..",
    "../../../../tmp/reliability_evil",
    ".",
    "errors/../../y",
    "C:\\win",
];

/// Nothing beside `root` in `parent`, only `logs/` and `archived/` in it, and every path
/// below made of plain, lower-case names.
fn assert_contained(parent: &Path, root: &Path) {
    let beside: Vec<_> = fs::read_dir(parent).unwrap().flatten().collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
    for top in fs::read_dir(root).unwrap().flatten() {
        let name = top.file_name();
        assert!(name == "logs" || name == "archived", "{name:?}");
    }
    for p in walk(root) {
        let rel = p.strip_prefix(root).unwrap();
        let ok = rel.components().count() <= 3
            && rel.components().all(|c| match c {
                Component::Normal(n) => n.to_str().is_some_and(|n| {
                    n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                        && !n.starts_with('.')
                }),
                _ => false,
            });
        assert!(ok, "{}", p.display());
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }
    assert!(!Path::new("/etc/etc.log").exists());
    assert!(!Path::new("/tmp/reliability_evil").exists());
    assert!(!Path::new("/tmp/reliability_evil.log").exists());
}

#[test]
fn hostile_component_names_through_every_api_stay_inside_the_logs_directory() {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("root");
    let (dispatch, guard) = tracekit::builder()
        .root(&root)
        .filter("trace")
        .default_component("../default")
        .component_for_target("hostile_target", "/etc/passwd")
        .log_writer(writer_builder(&root).max_file_size(1024))
        .build()
        .unwrap();
    let pad = "p".repeat(600);
    tracing::dispatcher::with_default(&dispatch, || {
        for name in HOSTILE {
            // An event's component field, a span's, a Logger's, LogContext's.
            tracing::error!(component = name, pad, "event");
            tracing::info_span!("span", component = name).in_scope(|| {
                tracing::info!(pad, "in span");
            });
            tracekit::get_logger("hostile", name).error("logger", ());
            tracekit::LogContext::new()
                .component(name)
                .in_scope(|| tracing::info!(pad, "in context"));
        }
        tracing::info!(target: "hostile_target", pad, "by target");
        tracing::info!(pad, "default");
        // The OpenTelemetry API: span and log record attributes.
        let tracer = guard.tracer_provider().tracer("hostile");
        let logger = guard.logger_provider().logger("hostile");
        for name in HOSTILE {
            let mut span = tracer.start("otel span");
            span.set_attribute(opentelemetry::KeyValue::new("component", name));
            span.end();
            let mut record = logger.create_log_record();
            record.set_body(pad.clone().into());
            record.add_attribute("component", name);
            logger.emit(record);
        }
    });
    guard.writer().flush().unwrap();
    assert!(guard.writer().wait_for_archives(Duration::from_secs(60)));
    let status = guard.writer().status();
    drop(guard);
    assert!(status.rotations > 10, "{status:?}");
    assert_eq!(status.io_errors + status.records_lost, 0, "{status:?}");
    assert_contained(parent.path(), &root);
    let mut dirs: Vec<String> = fs::read_dir(root.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "a_b",
            "app",
            "c_win",
            "default",
            "errors",
            "errors_y",
            "etc",
            "etc_passwd",
            "tmp_reliability_evil",
            "x"
        ]
    );
}

/// Rotations must not move a file into, or compress one inside, a directory reached through
/// a symlink: `archived/<component>` planted as a link to a directory outside the root.
#[test]
fn rotation_follows_no_symlinked_archive_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(root.join("archived")).unwrap();
    symlink(&outside, root.join("archived/victim")).unwrap();
    let (writer, guard) = writer_builder(&root).max_file_size(1024).build().unwrap();
    let pad = "p".repeat(600);
    for i in 0..20u64 {
        let data = [("i", Value::U64(i)), ("pad", Value::Str(&pad))];
        writer
            .write(&Record::new(Level::INFO, "victim", "v").data(&data))
            .unwrap();
        writer.flush().unwrap();
    }
    assert!(writer.wait_for_archives(Duration::from_secs(60)));
    let status = writer.status();
    drop(guard);
    let leaked: Vec<_> = fs::read_dir(&outside).unwrap().flatten().collect();
    assert!(leaked.is_empty(), "rotated through the link: {leaked:?}");
    assert!(fs::symlink_metadata(root.join("archived/victim"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Nothing lost: rotation failed, so the writer went on past its cap in the live file.
    assert_eq!(status.records_lost, 0, "{status:?}");
    let mut seen = Vec::new();
    for p in stem_files(&root, "victim", "victim") {
        for l in file_lines(&p).lines {
            let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
            if let Some(i) = v["data"]["i"].as_u64() {
                seen.push(i);
            }
        }
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
}
