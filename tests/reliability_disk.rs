//! Items 5 and 6, through the bridge with several threads logging:
//!
//! - a full disk (a real 512 KiB tmpfs: needs root and mount(8); `TRACEKIT_SKIP_MOUNT_TESTS=1`
//!   skips it elsewhere), the log directory deleted, and renamed, underneath the writer: no
//!   panic, failures counted, writing resumes once the disk recovers (the deadlines are only
//!   hang guards), every line of every file whole, a WARNING record says what was lost;
//! - lossy mode with a writer throttled by an fdatasync every millisecond, fed in bursts
//!   until records were dropped: the drop count is exactly what was produced minus what was
//!   written.

mod reliability_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reliability_support::{file_lines, is_writer_record, poll, stem_files, Tmpfs};
use tracekit::exporters::{Compression, DailyFiles, FsyncPolicy, LogWriter, LossPolicy};

const THREADS: u64 = 4;
/// A hang guard: far longer than anything here takes when it works.
const HANG: Duration = Duration::from_secs(60);

/// Every record of `dir/stem` (archives, then live); panics on any line that does not
/// parse or a torn tail.
fn records(root: &Path, dir: &str, stem: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for path in stem_files(root, dir, stem) {
        let f = file_lines(&path);
        assert!(f.partial.is_none(), "{}: torn tail", path.display());
        for (i, l) in f.lines.iter().enumerate() {
            out.push(serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: {e}: {:?}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(l)
                )
            }));
        }
    }
    out
}

/// True when a whole line of `path` (which may not exist yet) parses to a record `pred`
/// accepts.
fn has_record(path: &Path, pred: impl Fn(&serde_json::Value) -> bool) -> bool {
    let bytes = fs::read(path).unwrap_or_default();
    bytes
        .split(|&b| b == b'\n')
        .any(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok_and(|r| pred(&r)))
}

/// Per thread, the seqs in file order; each strictly increasing (records may be lost,
/// never duplicated or reordered).
fn seqs_by_thread(records: &[serde_json::Value]) -> BTreeMap<u64, Vec<u64>> {
    let mut out: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in records.iter().filter(|r| !is_writer_record(r)) {
        let t = r["data"]["t"].as_u64().unwrap();
        out.entry(t)
            .or_default()
            .push(r["data"]["seq"].as_u64().unwrap());
    }
    for (t, s) in &out {
        assert!(
            s.windows(2).all(|w| w[0] < w[1]),
            "thread {t}: duplicated or reordered"
        );
    }
    out
}

/// Logs from `THREADS` threads (plus the caller's `probe` thread id `THREADS`) until `stop`;
/// returns per thread how many records were produced.
struct Load {
    stop: AtomicBool,
    produced: Vec<AtomicU64>,
}

impl Load {
    fn new() -> Load {
        Load {
            stop: AtomicBool::new(false),
            produced: (0..=THREADS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn run(&self, t: u64, dispatch: &tracing::Dispatch, component: &str, pad: &str) {
        tracing::dispatcher::with_default(dispatch, || {
            let mut seq = 0;
            while !self.stop.load(Ordering::Relaxed) {
                tracing::info!(component, t, seq, pad, "r");
                seq += 1;
                self.produced[t as usize].store(seq, Ordering::Relaxed);
                if seq % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
    }

    fn total(&self) -> u64 {
        self.produced
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .sum()
    }

    /// Stops the load when dropped: a failing assertion must not leave the threads of a
    /// scope logging forever.
    fn stop_on_drop(&self) -> impl Drop + '_ {
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        Stop(&self.stop)
    }
}

#[test]
fn a_full_disk_is_survived_and_writing_resumes_when_space_is_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(&tmp.path().join("mnt"), "512k") else {
        return;
    };
    let root = mnt.dir.join("trace");
    let writer = LogWriter::builder()
        .max_file_size(32 * 1024)
        .max_backups(1000)
        .daily_files(DailyFiles::None)
        .compression(Compression::Gzip { level: 1 })
        .loss_policy(LossPolicy::Lossless);
    let (dispatch, guard) = tracekit::builder()
        .root(&root)
        .filter("info")
        .log_writer(writer)
        .build()
        .unwrap();
    let writer = guard.writer().clone();
    // Leave about 100 KiB free.
    let filler = mnt.dir.join("filler");
    fs::write(&filler, vec![0u8; 412 * 1024]).unwrap();
    let load = Load::new();
    let pad = "d".repeat(120);
    std::thread::scope(|s| {
        let _stop = load.stop_on_drop();
        for t in 0..THREADS {
            let (load, dispatch, pad) = (&load, &dispatch, &pad);
            s.spawn(move || load.run(t, dispatch, "full", pad));
        }
        // Full: records are lost, the failures counted.
        let full = poll(HANG, || {
            writer.flush_with_timeout(Duration::from_secs(10)).unwrap();
            writer.status().records_lost > 1000
        });
        assert!(
            full.is_some(),
            "the disk never filled: {:?}",
            writer.status()
        );
        std::thread::sleep(Duration::from_millis(200));
        let status = writer.status();
        assert!(status.io_errors > 0, "{status:?}");

        // The load stops first: at full speed it would fill the freed space again within a
        // millisecond, and the disk would never have recovered.
        load.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        // Free the space: a record logged after that reaches the disk.
        fs::remove_file(&filler).unwrap();
        let path = root.join("logs/full/full.log");
        let mut seq = 0u64;
        let resumed = poll(HANG, || {
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(component = "full", t = THREADS, seq, "probe");
            });
            seq += 1;
            load.produced[THREADS as usize].store(seq, Ordering::Relaxed);
            has_record(&path, |r| r["data"]["t"] == THREADS)
        });
        std::thread::sleep(Duration::from_millis(300));
        load.stop.store(true, Ordering::Relaxed);
        let resumed = resumed.unwrap_or_else(|| panic!("did not resume: {:?}", writer.status()));
        eprintln!("disk full: resumed {resumed:?} after the space was freed");
    });
    writer.flush_with_timeout(Duration::from_secs(30)).unwrap();
    assert!(writer.wait_for_archives(Duration::from_secs(30)));
    drop(guard);
    let status = writer.status();
    eprintln!("disk full: {status:?}");

    let records = records(&root, "full", "full");
    let seqs = seqs_by_thread(&records);
    let found: u64 = seqs.values().map(|s| s.len() as u64).sum();
    // Exact accounting: every record produced is in a file or counted lost.
    assert_eq!(found, status.records_written, "{status:?}");
    assert_eq!(found + status.records_lost, load.total(), "{status:?}");
    // The writer's WARNING, in the component's own file, says what was lost and why.
    let warnings: Vec<_> = records.iter().filter(|r| is_writer_record(r)).collect();
    let w = warnings
        .iter()
        .find(|w| w["data"]["lost_records"].as_u64() > Some(0))
        .unwrap_or_else(|| panic!("no WARNING about lost records: {warnings:?}"));
    assert_eq!(w["level"], "WARNING");
    assert!(
        w["data"]["error"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{w}"
    );
    let lost: u64 = warnings
        .iter()
        .filter_map(|w| w["data"]["lost_records"].as_u64())
        .sum();
    assert!(lost > 0 && lost <= status.records_lost, "{lost} {status:?}");
    drop(mnt);
}

/// Deleted, then renamed: the directory of a component that 4 threads log to.
#[test]
fn a_log_directory_deleted_or_renamed_under_load_is_recreated() {
    for renamed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let writer = LogWriter::builder()
            .daily_files(DailyFiles::None)
            .loss_policy(LossPolicy::Lossless);
        let (dispatch, guard) = tracekit::builder()
            .root(root)
            .filter("info")
            .log_writer(writer)
            .build()
            .unwrap();
        let writer = guard.writer().clone();
        let comp = root.join("logs/moved");
        let path = comp.join("moved.log");
        let aside = root.join("logs/moved_aside");
        let load = Load::new();
        let pad = "m".repeat(80);
        std::thread::scope(|s| {
            let _stop = load.stop_on_drop();
            for t in 0..THREADS {
                let (load, dispatch, pad) = (&load, &dispatch, &pad);
                s.spawn(move || load.run(t, dispatch, "moved", pad));
            }
            assert!(poll(HANG, || path.exists()).is_some());
            std::thread::sleep(Duration::from_millis(100));
            if renamed {
                fs::rename(&comp, &aside).unwrap();
            } else {
                // The writer may recreate it between the unlink and the rmdir.
                for attempt in 0.. {
                    match fs::remove_dir_all(&comp) {
                        Ok(()) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                        Err(e) => assert!(attempt < 10, "{e}"),
                    }
                }
            }
            let back = poll(HANG, || has_record(&path, |r| !is_writer_record(r)));
            std::thread::sleep(Duration::from_millis(200));
            load.stop.store(true, Ordering::Relaxed);
            let back = back.unwrap_or_else(|| panic!("no new file: {:?}", writer.status()));
            eprintln!("a new file {back:?} later");
        });
        writer.flush_with_timeout(Duration::from_secs(30)).unwrap();
        drop(guard);
        let status = writer.status();
        let what = if renamed { "renamed" } else { "deleted" };
        eprintln!("{what}: {status:?}");
        assert!(status.io_errors >= 1, "{status:?}");

        let new = records(root, "moved", "moved");
        let w = new
            .iter()
            .find(|r| is_writer_record(r))
            .unwrap_or_else(|| panic!("{what}: no WARNING"));
        assert_eq!(w["level"], "WARNING");
        let message = w["message"].as_str().unwrap();
        if renamed {
            assert!(message.contains("moved"), "{message}");
            // Nothing lost: the old file holds the start, the new one the rest, and the
            // two together are every record, in order.
            assert_eq!(status.records_lost, 0, "{status:?}");
            let old = records(root, "moved_aside", "moved");
            let mut all = seqs_by_thread(&old);
            for (t, s) in seqs_by_thread(&new) {
                all.entry(t).or_default().extend(s);
            }
            for t in 0..THREADS {
                let got = &all[&t];
                let produced = load.produced[t as usize].load(Ordering::Relaxed);
                assert_eq!(*got, (0..produced).collect::<Vec<_>>(), "thread {t}");
            }
        } else {
            assert!(message.contains("deleted"), "{message}");
            // What was written into the deleted file is gone; that many are counted lost,
            // and the WARNING says how many.
            let found: u64 = seqs_by_thread(&new).values().map(|s| s.len() as u64).sum();
            assert_eq!(found + status.records_lost, load.total(), "{status:?}");
            assert_eq!(
                w["data"]["lost_records"].as_u64(),
                Some(status.records_lost),
                "{w}"
            );
        }
    }
}

#[test]
fn lossy_mode_under_a_throttled_disk_counts_drops_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A small queue and an fdatasync every millisecond: the writer falls behind.
    let writer = LogWriter::builder()
        .queue_bytes(64 * 1024)
        .loss_policy(LossPolicy::Lossy)
        .fsync(FsyncPolicy::Interval(Duration::from_millis(1)))
        .daily_files(DailyFiles::None);
    let (dispatch, guard) = tracekit::builder()
        .root(root)
        .filter("info")
        .log_writer(writer)
        .build()
        .unwrap();
    let writer = guard.writer().clone();
    let load = Load::new();
    let pad = "l".repeat(200);
    // Bursts until the queue overflowed: how soon depends on the disk and the machine, the
    // accounting below does not. The bound only guards against a writer that never falls
    // behind (then the test proves nothing and says so).
    for round in 0..ROUNDS {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (load, dispatch, pad) = (&load, &dispatch, &pad);
                s.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        for i in 0..10_000u64 {
                            let seq = round * 10_000 + i;
                            tracing::info!(component = "lossy", t, seq, pad, "r");
                            load.produced[t as usize].fetch_add(1, Ordering::Relaxed);
                        }
                    });
                });
            }
        });
        if writer.status().records_dropped > 0 {
            break;
        }
    }
    drop(guard);
    let status = writer.status();
    let produced = load.total();
    let records = records(root, "lossy", "lossy");
    let seqs = seqs_by_thread(&records);
    let written: u64 = seqs.values().map(|s| s.len() as u64).sum();
    eprintln!("lossy: {produced} produced, {written} written, {status:?}");
    assert!(
        status.records_dropped > 0,
        "nothing dropped in {ROUNDS} bursts: the test proves nothing: {status:?}"
    );
    assert!(status.syncs > 0, "the writer was not throttled: {status:?}");
    assert_eq!(status.records_dropped, produced - written, "{status:?}");
    assert_eq!(status.records_lost, 0);
    // The WARNING records (in the default component) add up to the same number.
    let warnings: Vec<_> = records_of_app(root);
    let reported: u64 = warnings
        .iter()
        .map(|w| w["data"]["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, status.records_dropped, "{warnings:?}");
    assert_eq!(
        warnings.last().unwrap()["data"]["total_dropped"].as_u64(),
        Some(status.records_dropped)
    );
}

/// At most this many bursts of 4 x 10,000 records in the lossy test.
const ROUNDS: u64 = 30;

fn records_of_app(root: &Path) -> Vec<serde_json::Value> {
    records(root, "app", "app")
        .into_iter()
        .filter(is_writer_record)
        .collect()
}
