//! I/O failures: a full disk and a read-only filesystem (on a real, small tmpfs: needs root
//! and mount(8)), and the log directory deleted or renamed underneath the writer.
//!
//! Without the rights to mount, the tmpfs tests fail with a message saying so, unless
//! `TRACEKIT_SKIP_MOUNT_TESTS=1` is set, when they print a note and pass.

mod writer_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tracekit_exporters::{Compression, DailyFiles, Level, LogWriter, Record, Value, WriterGuard};
use writer_common::{builder, is_writer_record, json_lines, poll};

const LONG: Duration = Duration::from_secs(30);
/// How long a test waits for recovery before it gives up: a hang guard only (recovery
/// takes about a second; a busy machine must not fail the test).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// A tmpfs mounted for the test, unmounted on drop (lazily if still busy).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`; `None` when mounting is impossible and the
    /// environment says to skip.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    dir: dir.to_owned(),
                })
            }
            Ok(o) => format!(
                "mount exited with {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot run mount: {e}"),
        };
        if std::env::var("TRACEKIT_SKIP_MOUNT_TESTS").as_deref() == Ok("1") {
            eprintln!("note: skipping a tmpfs test (TRACEKIT_SKIP_MOUNT_TESTS=1): {why}");
            return None;
        }
        panic!(
            "cannot mount a tmpfs at {}: {why}. These tests need root and mount(8); \
             set TRACEKIT_SKIP_MOUNT_TESTS=1 to skip them where that is impossible",
            dir.display()
        );
    }

    fn remount(&self, opts: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount {opts}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn write_seq(writer: &LogWriter, component: &str, seq: u64, pad: &str) {
    let data = [("seq", Value::U64(seq)), ("pad", Value::Str(pad))];
    writer
        .write(&Record::new(Level::INFO, component, "rec").data(&data))
        .unwrap();
}

/// The writer's own records and the others' seq numbers, in file order.
fn split(records: &[serde_json::Value]) -> (Vec<serde_json::Value>, Vec<u64>) {
    let warnings = records
        .iter()
        .filter(|r| is_writer_record(r))
        .cloned()
        .collect();
    let seqs = records
        .iter()
        .filter(|r| !is_writer_record(r))
        .map(|r| r["data"]["seq"].as_u64().unwrap())
        .collect();
    (warnings, seqs)
}

fn shutdown(writer: &LogWriter, guard: WriterGuard) {
    writer.shutdown_with_timeout(LONG).unwrap();
    drop(guard);
}

#[test]
fn disk_full_loses_whole_records_only_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(&tmp.path().join("mnt"), "256k") else {
        return;
    };
    let root = mnt.dir.join("trace");
    let (writer, guard) = builder(&root)
        .daily_files(DailyFiles::None)
        .compression(Compression::None)
        .build()
        .unwrap();
    // Leave about 40 KiB free.
    let filler = mnt.dir.join("filler");
    fs::write(&filler, vec![0u8; 216 * 1024]).unwrap();

    let pad = "d".repeat(150);
    let mut seq = 0u64;
    while writer.status().records_lost == 0 {
        assert!(seq < 100_000, "the disk never filled up");
        for _ in 0..37 {
            write_seq(&writer, "full", seq, &pad);
            seq += 1;
        }
        writer.flush().unwrap();
    }
    // Keep writing a little while full: every batch fails.
    for _ in 0..5 {
        for _ in 0..20 {
            write_seq(&writer, "full", seq, &pad);
            seq += 1;
        }
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let full = writer.status();
    assert!(full.io_errors > 0, "{full:?}");
    assert!(full.records_lost > 0, "{full:?}");
    let path = root.join("logs/full/full.log");
    // Whole lines only, in order.
    let (_, seqs) = split(&json_lines(&path));
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // Free space: writing resumes.
    fs::remove_file(&filler).unwrap();
    let before = seq;
    let resumed = poll(RECOVERY_DEADLINE, || {
        write_seq(&writer, "full", seq, &pad);
        seq += 1;
        writer.flush().unwrap();
        split(&json_lines(&path))
            .1
            .last()
            .is_some_and(|&s| s >= before)
    });
    assert!(resumed, "writing did not resume: {:?}", writer.status());
    for _ in 0..100 {
        write_seq(&writer, "full", seq, &pad);
        seq += 1;
    }
    writer.flush().unwrap();
    let status = writer.status();
    shutdown(&writer, guard);

    let records = json_lines(&path);
    let (warnings, seqs) = split(&records);
    eprintln!("disk full: {seq} records, {status:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(seqs.ends_with(&(seq - 100..seq).collect::<Vec<_>>()));
    // Exact accounting: every record is either in the file or counted as lost.
    assert_eq!(status.records_written, seqs.len() as u64, "{status:?}");
    assert_eq!(
        status.records_written + status.records_lost,
        seq,
        "{status:?}"
    );
    // A WARNING says what was lost, and why.
    let w = warnings
        .iter()
        .find(|w| w["data"]["lost_records"].as_u64() > Some(0))
        .unwrap_or_else(|| panic!("no WARNING about lost records in {warnings:?}"));
    assert_eq!(w["level"], "WARNING");
    let lost = w["data"]["lost_records"].as_u64().unwrap();
    assert!(lost <= status.records_lost, "{w}");
    assert!(
        w["data"]["lost_bytes"].as_u64().unwrap() >= lost * 150,
        "{w}"
    );
    let msg = w["message"].as_str().unwrap();
    assert!(
        msg.contains(&lost.to_string()) && msg.contains("full.log"),
        "{msg}"
    );
    let error = w["data"]["error"].as_str().unwrap();
    assert!(error.contains("No space left"), "{error}");
    drop(mnt);
}

#[test]
fn read_only_filesystem_is_survived_and_recovered_from() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(&tmp.path().join("mnt"), "1m") else {
        return;
    };
    let root = mnt.dir.join("trace");
    let (writer, guard) = builder(&root)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    // The writer holds no file open yet, so the remount can succeed (a file open for
    // writing makes `remount,ro` fail with EBUSY).
    mnt.remount("ro");
    let pad = "r".repeat(100);
    let mut seq = 0;
    for _ in 0..5 {
        for _ in 0..20 {
            write_seq(&writer, "ro", seq, &pad);
            seq += 1;
        }
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let status = writer.status();
    assert!(status.io_errors > 0, "{status:?}");
    assert_eq!(status.records_lost, seq, "{status:?}");
    assert!(!root.join("logs/ro").exists());

    mnt.remount("rw");
    let path = root.join("logs/ro/ro.log");
    let resumed = poll(RECOVERY_DEADLINE, || {
        write_seq(&writer, "ro", seq, &pad);
        seq += 1;
        writer.flush().unwrap();
        path.exists() && !split(&json_lines(&path)).1.is_empty()
    });
    assert!(resumed, "writing did not resume: {:?}", writer.status());
    let status = writer.status();
    shutdown(&writer, guard);

    let (warnings, seqs) = split(&json_lines(&path));
    assert_eq!(status.records_written, seqs.len() as u64);
    assert_eq!(status.records_written + status.records_lost, seq);
    let w = warnings.first().expect("a WARNING about the lost records");
    assert!(w["data"]["lost_records"].as_u64().unwrap() >= 100, "{w}");
    assert!(
        w["data"]["error"].as_str().unwrap().contains("Read-only"),
        "{w}"
    );
    drop(mnt);
}

#[test]
fn deleted_log_directory_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .daily_files(DailyFiles::None)
        .reopen_check_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let pad = "x".repeat(50);
    let mut seq = 0;
    for _ in 0..100 {
        write_seq(&writer, "del", seq, &pad);
        seq += 1;
    }
    writer.flush().unwrap();
    let comp = dir.path().join("logs/del");
    let path = comp.join("del.log");
    // The writer may recreate the directory between remove_dir_all's unlink and rmdir
    // (ENOTEMPTY): delete again then.
    for attempt in 0.. {
        match fs::remove_dir_all(&comp) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => assert!(attempt < 10, "{e}"),
        }
    }
    let deleted_at = seq;

    let recreated = poll(RECOVERY_DEADLINE, || {
        write_seq(&writer, "del", seq, &pad);
        seq += 1;
        writer.flush().unwrap();
        path.exists() && !split(&json_lines(&path)).0.is_empty()
    });
    assert!(recreated, "not recreated: {:?}", writer.status());
    let recovered_at = seq;
    for _ in 0..100 {
        write_seq(&writer, "del", seq, &pad);
        seq += 1;
    }
    writer.flush().unwrap();
    let status = writer.status();
    shutdown(&writer, guard);

    assert!(status.io_errors >= 1, "{status:?}");
    let (warnings, seqs) = split(&json_lines(&path));
    let w = &warnings[0];
    assert_eq!(w["level"], "WARNING");
    assert!(w["message"].as_str().unwrap().contains("deleted"), "{w}");
    // Everything after the reopen is in the new file, in order; nothing from before the
    // deletion is.
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(seqs.iter().all(|&s| s >= deleted_at));
    assert!(seqs.ends_with(&(recovered_at..seq).collect::<Vec<_>>()));
}

#[test]
fn renamed_log_directory_gets_a_new_file_at_the_original_path() {
    let dir = tempfile::tempdir().unwrap();
    // The default reopen check (500 ms).
    let (writer, guard) = builder(dir.path())
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    let pad = "y".repeat(50);
    let mut seq = 0;
    for _ in 0..100 {
        write_seq(&writer, "ren", seq, &pad);
        seq += 1;
    }
    writer.flush().unwrap();
    let comp = dir.path().join("logs/ren");
    let moved = dir.path().join("logs/ren_moved");
    fs::rename(&comp, &moved).unwrap();
    let path = comp.join("ren.log");

    let reopened = poll(RECOVERY_DEADLINE, || {
        write_seq(&writer, "ren", seq, &pad);
        seq += 1;
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        path.exists()
    });
    assert!(reopened, "no new file: {:?}", writer.status());
    for _ in 0..100 {
        write_seq(&writer, "ren", seq, &pad);
        seq += 1;
    }
    writer.flush().unwrap();
    let status = writer.status();
    shutdown(&writer, guard);

    // Nothing lost: the old file holds what came before the reopen, the new one the rest.
    let (old_warnings, old) = split(&json_lines(&moved.join("ren.log")));
    let (warnings, new) = split(&json_lines(&path));
    assert!(old_warnings.is_empty());
    assert_eq!(
        old.iter().chain(&new).copied().collect::<Vec<_>>(),
        (0..seq).collect::<Vec<_>>()
    );
    assert!(new.len() >= 100);
    assert_eq!(status.records_lost, 0, "{status:?}");
    assert_eq!(status.records_written, seq, "{status:?}");
    let w = warnings.first().expect("a WARNING about the move");
    assert!(w["message"].as_str().unwrap().contains("moved"), "{w}");
}
