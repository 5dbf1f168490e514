//! Environment overrides: each variable takes effect (set it, build, write, and the files or
//! the writer's status show it), a value set in code wins over it, and a bad value is a typed
//! error naming the variable. One test in its own binary, since the environment is
//! process-wide.

mod writer_common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracekit_exporters::{
    BuildError, Compression, FsyncPolicy, Level, LogWriter, LogWriterBuilder, LossPolicy, Record,
    Value, WriteError,
};
use writer_common::{archive_stamp, archives_of, json_lines, parse_archive_name, DAY_MICROS};

const VARS: [&str; 5] = [
    "TRACEKIT_DIR",
    "TRACEKIT_LOSS_POLICY",
    "TRACEKIT_FSYNC",
    "TRACEKIT_COMPRESSION",
    "TRACEKIT_RETENTION_DAYS",
];
/// A hang guard for the archiver.
const LONG: Duration = Duration::from_secs(60);

#[test]
fn each_variable_takes_effect_and_code_overrides_it() {
    // The caller's environment must not decide the defaults checked below.
    for var in VARS {
        std::env::remove_var(var);
    }
    let tmp = tempfile::tempdir().unwrap();
    root_from_tracekit_dir(tmp.path());
    loss_policy_from_tracekit_loss_policy(tmp.path());
    fsync_from_tracekit_fsync(tmp.path());
    compression_from_tracekit_compression(tmp.path());
    retention_from_tracekit_retention_days(tmp.path());
    bad_values_are_errors_naming_the_variable(&tmp.path().join("bad"));
}

fn root_from_tracekit_dir(tmp: &Path) {
    let from_env = tmp.join("from_env");
    let from_code = tmp.join("from_code");
    std::env::set_var("TRACEKIT_DIR", &from_env);

    let (writer, guard) = LogWriter::builder().build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "ranking", "via env"))
        .unwrap();
    drop(guard);
    let lines = json_lines(&from_env.join("logs/ranking/ranking.log"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "via env");

    let (writer, guard) = LogWriter::builder().root(&from_code).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "ranking", "via code"))
        .unwrap();
    drop(guard);
    let lines = json_lines(&from_code.join("logs/ranking/ranking.log"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "via code");
    assert_eq!(
        json_lines(&from_env.join("logs/ranking/ranking.log")).len(),
        1
    );
    std::env::remove_var("TRACEKIT_DIR");
}

/// Eight producers against a 64 KiB queue, `rounds` bursts of 8 x 5,000 records (or fewer:
/// `stop` ends the bursts once it holds); returns how many writes were refused with
/// `QueueFull`, after the guard dropped, and the records in the file.
fn bursts(
    root: &Path,
    builder: LogWriterBuilder,
    rounds: u64,
    stop: impl Fn(u64) -> bool,
) -> (u64, u64, usize) {
    let (writer, guard) = builder
        .root(root)
        .queue_bytes(64 * 1024)
        .max_file_size(1 << 30)
        .build()
        .unwrap();
    let pad = "x".repeat(200);
    let mut refused = 0;
    let mut produced = 0;
    for _ in 0..rounds {
        refused += std::thread::scope(|s| {
            let producers: Vec<_> = (0..8)
                .map(|_| {
                    let (writer, pad) = (&writer, &pad);
                    s.spawn(move || {
                        let mut refused = 0;
                        for _ in 0..5_000 {
                            let data = [("pad", Value::Str(pad))];
                            match writer.write(&Record::new(Level::INFO, "burst", "m").data(&data))
                            {
                                Ok(()) => {}
                                Err(WriteError::QueueFull) => refused += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                        refused
                    })
                })
                .collect();
            producers
                .into_iter()
                .map(|p| p.join().unwrap())
                .sum::<u64>()
        });
        produced += 8 * 5_000;
        if stop(refused) {
            break;
        }
    }
    drop(guard);
    assert_eq!(writer.status().records_dropped, refused);
    let found = json_lines(&root.join("logs/burst/burst.log")).len();
    assert_eq!(found as u64, produced - refused);
    (produced, refused, found)
}

fn loss_policy_from_tracekit_loss_policy(tmp: &Path) {
    std::env::set_var("TRACEKIT_LOSS_POLICY", "lossy");
    // How soon the queue overflows depends on the machine; that it drops, not waits, does
    // not. The bound only ends a run that proves nothing.
    let (produced, refused, _) = bursts(&tmp.join("lossy"), LogWriter::builder(), 20, |r| r > 0);
    assert!(refused > 0, "lossy from the environment dropped nothing");
    // The same load with Lossless set in code: nothing refused, every record in the file.
    let rounds = produced / 40_000;
    let (produced, refused, found) = bursts(
        &tmp.join("lossless"),
        LogWriter::builder().loss_policy(LossPolicy::Lossless),
        rounds,
        |_| false,
    );
    assert_eq!(refused, 0);
    assert_eq!(found as u64, produced);
    std::env::remove_var("TRACEKIT_LOSS_POLICY");
}

/// The syncs of a writer that wrote an INFO and an ERROR record, then flushed.
fn syncs_after_an_error(root: &Path, builder: LogWriterBuilder) -> u64 {
    let (writer, guard) = builder.root(root).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "c", "fine"))
        .unwrap();
    writer
        .write(&Record::new(Level::ERROR, "c", "bad"))
        .unwrap();
    writer.flush().unwrap();
    let syncs = writer.status().syncs;
    drop(guard);
    assert_eq!(json_lines(&root.join("logs/c/c.log")).len(), 2);
    syncs
}

fn fsync_from_tracekit_fsync(tmp: &Path) {
    assert_eq!(
        syncs_after_an_error(&tmp.join("fsync_default"), LogWriter::builder()),
        0,
        "the default is never"
    );
    std::env::set_var("TRACEKIT_FSYNC", "error");
    // The component's file and errors/errors.log.
    let syncs = syncs_after_an_error(&tmp.join("fsync_env"), LogWriter::builder());
    assert!(syncs >= 2, "TRACEKIT_FSYNC=error: {syncs} syncs");
    let syncs = syncs_after_an_error(
        &tmp.join("fsync_code"),
        LogWriter::builder().fsync(FsyncPolicy::Never),
    );
    assert_eq!(syncs, 0, "set in code: never");
    std::env::remove_var("TRACEKIT_FSYNC");
}

/// Whether each archive of a writer that rotated `rot.log` a few times is gzipped.
fn archives_gzipped(root: &Path, builder: LogWriterBuilder) -> Vec<bool> {
    let (writer, guard) = builder.root(root).max_file_size(1024).build().unwrap();
    let pad = "p".repeat(300);
    for i in 0..20u64 {
        let data = [("i", Value::U64(i)), ("pad", Value::Str(&pad))];
        writer
            .write(&Record::new(Level::INFO, "rot", "m").data(&data))
            .unwrap();
    }
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(LONG));
    drop(guard);
    let archives = archives_of(&root.join("archived/rot"), "rot");
    assert!(!archives.is_empty(), "no rotation");
    let mut records = 0;
    let gzipped = archives
        .iter()
        .map(|path| {
            records += json_lines(path).len();
            let name = path.file_name().unwrap().to_str().unwrap();
            parse_archive_name(name).unwrap().2
        })
        .collect();
    records += json_lines(&root.join("logs/rot/rot.log")).len();
    assert_eq!(records, 20, "every record in an archive or the live file");
    gzipped
}

fn compression_from_tracekit_compression(tmp: &Path) {
    let default = archives_gzipped(&tmp.join("gz_default"), LogWriter::builder());
    assert!(default.iter().all(|&gz| gz), "the default is gzip");
    std::env::set_var("TRACEKIT_COMPRESSION", "none");
    let env = archives_gzipped(&tmp.join("gz_env"), LogWriter::builder());
    assert!(env.iter().all(|&gz| !gz), "TRACEKIT_COMPRESSION=none");
    let code = archives_gzipped(
        &tmp.join("gz_code"),
        LogWriter::builder().compression(Compression::Gzip { level: 1 }),
    );
    assert!(code.iter().all(|&gz| gz), "set in code: gzip");
    std::env::remove_var("TRACEKIT_COMPRESSION");
}

/// Which of two archives, 10 and 3 days old, are left after a writer built over them wrote
/// a record.
fn archives_kept(root: &Path, builder: LogWriterBuilder) -> Vec<String> {
    let dir = root.join("archived/old");
    fs::create_dir_all(&dir).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let names: Vec<String> = [10, 3]
        .iter()
        .map(|days| format!("old.{}.log.gz", archive_stamp(now - days * DAY_MICROS)))
        .collect();
    for name in &names {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"message\":\"archived\"}\n").unwrap();
        fs::write(dir.join(name), gz.finish().unwrap()).unwrap();
    }
    let (writer, guard) = builder.root(root).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "old", "new"))
        .unwrap();
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(LONG));
    drop(guard);
    assert_eq!(json_lines(&root.join("logs/old/old.log")).len(), 1);
    let kept: Vec<String> = names
        .iter()
        .map(|n| {
            if dir.join(n).exists() {
                "kept"
            } else {
                "deleted"
            }
            .to_owned()
        })
        .collect();
    let deleted = kept.iter().filter(|k| *k == "deleted").count() as u64;
    assert_eq!(writer.status().archives_deleted, deleted);
    kept
}

fn retention_from_tracekit_retention_days(tmp: &Path) {
    assert_eq!(
        archives_kept(&tmp.join("ret_default"), LogWriter::builder()),
        ["kept", "kept"],
        "the default is 30 days"
    );
    std::env::set_var("TRACEKIT_RETENTION_DAYS", "7");
    assert_eq!(
        archives_kept(&tmp.join("ret_env"), LogWriter::builder()),
        ["deleted", "kept"],
        "TRACEKIT_RETENTION_DAYS=7"
    );
    assert_eq!(
        archives_kept(
            &tmp.join("ret_code"),
            LogWriter::builder().retention_days(30)
        ),
        ["kept", "kept"],
        "set in code: 30 days"
    );
    std::env::remove_var("TRACEKIT_RETENTION_DAYS");
}

fn bad_values_are_errors_naming_the_variable(root: &Path) {
    for (var, value, expected) in [
        ("TRACEKIT_LOSS_POLICY", "sometimes", "lossless or lossy"),
        ("TRACEKIT_FSYNC", "soon", "TRACEKIT_FSYNC"),
        ("TRACEKIT_COMPRESSION", "zstd", "gzip or none"),
        (
            "TRACEKIT_RETENTION_DAYS",
            "a week",
            "TRACEKIT_RETENTION_DAYS",
        ),
    ] {
        std::env::set_var(var, value);
        let err = LogWriter::builder().root(root).build().unwrap_err();
        assert!(
            matches!(&err, BuildError::Env { var: v, value: got, .. } if *v == var && got == value),
            "{var}={value}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{var}={value}: {err}");
        std::env::remove_var(var);
    }
    assert!(!root.exists(), "a refused build created its root");
}
