//! Item 3: rotation under load. Eight threads log through the bridge into files capped at
//! 2 KiB (errors/ too) until more than 10,000 rotations happened; reading every archive
//! (gzipped) and the live files back finds each thread's records exactly once, in order,
//! each line whole, each file under its cap. And 100 rotations within one millisecond (a
//! frozen clock: within one microsecond) give 100 distinct archives.

mod reliability_support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reliability_support::{file_lines, stem_files};
use tracekit::exporters::{Clock, Compression, DailyFiles, LogWriter};

const CAP: u64 = 2048;
const LONG: Duration = Duration::from_secs(300);

/// Per thread, the seqs found in the files of `dir/stem`, in order; checks every line
/// parses, every file is within `cap`, and no two archives share a name stamp.
fn read_back(root: &Path, dir: &str, stem: &str, cap: u64) -> (Vec<Vec<u64>>, usize) {
    let files = stem_files(root, dir, stem);
    let mut stamps = HashSet::new();
    let mut seqs = vec![Vec::new(); 8];
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        if path.starts_with(root.join("archived")) {
            assert!(name.ends_with(".log.gz"), "{name} was not compressed");
            assert!(stamps.insert(name[stem.len()..].to_owned()), "{name} twice");
        }
        let f = file_lines(path);
        assert!(f.partial.is_none(), "{name}: a split record");
        let bytes: usize = f.lines.iter().map(|l| l.len() + 1).sum();
        assert!(bytes as u64 <= cap, "{name}: {bytes} bytes, over the cap");
        for (i, line) in f.lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("{name} line {}: {e}", i + 1));
            let t = v["data"]["t"].as_u64().unwrap() as usize;
            seqs[t].push(v["data"]["seq"].as_u64().unwrap());
        }
    }
    (seqs, files.len().saturating_sub(1))
}

#[test]
fn eight_threads_through_ten_thousand_rotations_lose_split_and_duplicate_nothing() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 8_000;
    let dir = tempfile::tempdir().unwrap();
    let writer = LogWriter::builder()
        .max_file_size(CAP)
        .error_file_size(CAP)
        .max_backups(1_000_000)
        .retention_days(1000)
        .daily_files(DailyFiles::None)
        .compression(Compression::Gzip { level: 1 });
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .filter("info")
        .log_writer(writer)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let pad = "r".repeat(t as usize * 9);
                    for seq in 0..PER_THREAD {
                        if seq % 16 == 0 {
                            tracing::error!(component = "rot", t, seq, pad, "r");
                        } else {
                            tracing::info!(component = "rot", t, seq, pad, "r");
                        }
                    }
                });
            });
        }
    });
    let writer = guard.writer().clone();
    let start = std::time::Instant::now();
    writer.flush_with_timeout(LONG).unwrap();
    let flushed = start.elapsed();
    assert!(
        writer.wait_for_archives(LONG),
        "the archiver did not finish"
    );
    eprintln!(
        "writer caught up {flushed:?} after the producers, archiver {:?}",
        start.elapsed()
    );
    drop(guard);
    let status = writer.status();
    eprintln!("{status:?}");
    assert_eq!(
        status.io_errors + status.records_lost + status.archive_errors + status.records_dropped,
        0,
        "{status:?}"
    );

    let (main, main_archives) = read_back(dir.path(), "rot", "rot", CAP);
    let (errors, error_archives) = read_back(dir.path(), "errors", "errors", CAP);
    assert!(status.rotations >= 10_000, "{status:?}");
    assert_eq!(
        (main_archives + error_archives) as u64,
        status.rotations,
        "an archive was lost or overwritten"
    );
    for t in 0..THREADS as usize {
        assert_eq!(main[t], (0..PER_THREAD).collect::<Vec<_>>(), "thread {t}");
        assert_eq!(
            errors[t],
            (0..PER_THREAD).step_by(16).collect::<Vec<_>>(),
            "thread {t}, errors/"
        );
    }
}

/// Always the same instant.
#[derive(Debug)]
struct Frozen(SystemTime);

impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[test]
fn a_hundred_rotations_within_a_millisecond_give_a_hundred_archives() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = SystemTime::now();
    let writer = LogWriter::builder()
        .max_file_size(1024)
        .max_backups(1000)
        .retention_days(1000)
        .daily_files(DailyFiles::None)
        .compression(Compression::Gzip { level: 1 })
        .clock(Arc::new(Frozen(frozen)));
    let (dispatch, guard) = tracekit::builder()
        .root(dir.path())
        .log_writer(writer)
        .build()
        .unwrap();
    // One record (~900 bytes) per 1 KiB file: a rotation for every record.
    let pad = "p".repeat(600);
    tracing::dispatcher::with_default(&dispatch, || {
        for seq in 0..101u64 {
            tracing::info!(component = "ms", t = 0u64, seq, pad, "r");
        }
    });
    let writer = guard.writer().clone();
    writer.flush_with_timeout(LONG).unwrap();
    assert!(writer.wait_for_archives(LONG));
    drop(guard);
    assert_eq!(writer.status().rotations, 100);
    let (seqs, archives) = read_back(dir.path(), "ms", "ms", 1024);
    assert_eq!(archives, 100);
    assert_eq!(seqs[0], (0..101).collect::<Vec<_>>());
    // All the stamps within one millisecond of the frozen instant.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("archived/ms"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let millis: HashSet<&str> = names.iter().map(|n| &n[3..3 + 15 + 4]).collect();
    assert!(millis.len() <= 2, "{millis:?}");
}
