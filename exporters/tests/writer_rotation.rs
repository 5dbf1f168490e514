//! Size rotation under load: nothing lost, duplicated, split or reordered across live and
//! archived (gzipped) files; caps respected; archive names unique even for many rotations
//! within one microsecond; backups honoured.

mod writer_common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracekit_exporters::{Compression, DailyFiles, Level, Record, Value};
use writer_common::{
    archives_of, builder, json_lines, parse_archive_name, read_maybe_gz, TestClock,
};

const CAP: u64 = 64 * 1024;
const LONG: Duration = Duration::from_secs(120);

/// Every line of the archives of `stem` (sorted by name) then of the live file, with the
/// file each came from. Checks every file's size and every archive's name on the way.
fn all_records(root: &Path, component: &str, stem: &str, cap: u64) -> Vec<serde_json::Value> {
    let archive_dir = root.join("archived").join(component);
    let archives = archives_of(&archive_dir, stem);
    let mut stamps = HashSet::new();
    let mut out = Vec::new();
    for a in &archives {
        let name = a.file_name().unwrap().to_str().unwrap();
        let (s, stamp, gz) = parse_archive_name(name).expect("archive name pattern");
        assert_eq!(s, stem);
        assert!(gz, "{name} was not compressed");
        assert!(
            stamps.insert(stamp),
            "two archives share the stamp of {name}"
        );
        let len = read_maybe_gz(a).len() as u64;
        assert!(len <= cap, "{name} holds {len} bytes, more than {cap}");
        out.extend(json_lines(a));
    }
    // Nothing else in the archive directory: no leftover temporaries or plain archives.
    for e in std::fs::read_dir(&archive_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().into_string().unwrap();
        assert!(
            parse_archive_name(&name).is_some_and(|(_, _, gz)| gz),
            "unexpected file {name} in {}",
            archive_dir.display()
        );
    }
    let live = root
        .join("logs")
        .join(component)
        .join(format!("{stem}.log"));
    if live.exists() {
        let len = std::fs::metadata(&live).unwrap().len();
        assert!(len <= cap, "{} holds {len} bytes", live.display());
        out.extend(json_lines(&live));
    }
    out
}

#[test]
fn concurrent_writers_rotate_without_losing_splitting_or_reordering() {
    // 8 x 100k records, about 1,850 rotations of 64 KiB files, all archives gzipped.
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .max_file_size(CAP)
        .max_backups(100_000)
        .compression(Compression::Gzip { level: 1 })
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let writer = writer.clone();
            s.spawn(move || {
                let pad = "x".repeat(t as usize * 7);
                for seq in 0..PER_THREAD {
                    let data = [
                        ("t", Value::U64(t)),
                        ("seq", Value::U64(seq)),
                        ("pad", Value::Str(&pad)),
                    ];
                    writer
                        .write(&Record::new(Level::INFO, "rot", "r").data(&data))
                        .unwrap();
                }
            });
        }
    });
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(LONG), "archiver did not finish");
    writer.shutdown_with_timeout(LONG).unwrap();
    drop(guard);

    let status = writer.status();
    let records = all_records(dir.path(), "rot", "rot", CAP);
    let archives = archives_of(&dir.path().join("archived/rot"), "rot").len() as u64;
    eprintln!(
        "{} records, {} rotations, {} archives, {} bytes",
        records.len(),
        status.rotations,
        archives,
        status.bytes_written
    );
    assert!(status.rotations > 100, "{status:?}");
    assert_eq!(
        archives, status.rotations,
        "an archive was overwritten or lost"
    );
    assert_eq!(status.archives_compressed, status.rotations);
    assert_eq!(status.records_written, THREADS * PER_THREAD);
    assert_eq!(
        status.io_errors + status.records_lost + status.archive_errors,
        0
    );

    let mut next = vec![0u64; THREADS as usize];
    for r in &records {
        let t = r["data"]["t"].as_u64().unwrap() as usize;
        let seq = r["data"]["seq"].as_u64().unwrap();
        assert_eq!(
            seq, next[t],
            "thread {t}: expected seq {} next, found {seq}",
            next[t]
        );
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_THREAD), "{next:?}");
    assert_eq!(records.len() as u64, THREADS * PER_THREAD);
}

/// One ~900-byte record per file: a rotation for every record, many within a millisecond,
/// and with a frozen clock all within one microsecond, across a restart too.
#[test]
fn many_rotations_per_millisecond_get_distinct_archive_names() {
    let dir = tempfile::tempdir().unwrap();
    let pad = "p".repeat(800);
    // Frozen a day ahead of the real clock, so the frozen runs' names sort after the first's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let frozen = Arc::new(TestClock::new(now + writer_common::DAY_MICROS));
    let mut total = 0u64;
    for (run, frozen_clock) in [(0u64, false), (1, true), (2, true)] {
        let mut b = builder(dir.path())
            .max_file_size(1024)
            .max_backups(100_000)
            .retention_days(100_000)
            .daily_files(DailyFiles::None);
        if frozen_clock {
            b = b.clock(frozen.clone());
        }
        let (writer, guard) = b.build().unwrap();
        for seq in 0..300u64 {
            let data = [
                ("run", Value::U64(run)),
                ("seq", Value::U64(seq)),
                ("pad", Value::Str(&pad)),
            ];
            writer
                .write(&Record::new(Level::INFO, "tiny", "r").data(&data))
                .unwrap();
        }
        writer.flush().unwrap();
        assert!(writer.wait_for_archives(LONG));
        let status = writer.status();
        assert!(status.rotations >= 299, "{status:?}");
        writer.shutdown_with_timeout(LONG).unwrap();
        drop(guard);
        total += 300;
    }
    let records = all_records(dir.path(), "tiny", "tiny", 1024);
    assert_eq!(records.len() as u64, total);
    // In write order: run by run, seq by seq (so the names sort in rotation order too).
    let mut want = (0..3u64).flat_map(|run| (0..300u64).map(move |seq| (run, seq)));
    for r in &records {
        let got = (
            r["data"]["run"].as_u64().unwrap(),
            r["data"]["seq"].as_u64().unwrap(),
        );
        assert_eq!(Some(got), want.next());
    }
    let archives = archives_of(&dir.path().join("archived/tiny"), "tiny");
    assert!(archives.len() >= 897, "{}", archives.len());
}

#[test]
fn max_backups_keeps_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let pad = "p".repeat(800);
    let (writer, guard) = builder(dir.path())
        .max_file_size(1024)
        .error_file_size(1024)
        .max_backups(3)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    for seq in 0..50u64 {
        let data = [("seq", Value::U64(seq)), ("pad", Value::Str(&pad))];
        writer
            .write(&Record::new(Level::INFO, "bk", "r").data(&data))
            .unwrap();
        // Another component, whose copies also go to errors/errors.log: each file has
        // backups of its own.
        writer
            .write(&Record::new(Level::ERROR, "bke", "e").data(&data))
            .unwrap();
    }
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(LONG));
    let status = writer.status();
    writer.shutdown_with_timeout(LONG).unwrap();
    drop(guard);

    let archives = archives_of(&dir.path().join("archived/bk"), "bk");
    assert_eq!(archives.len(), 3, "{archives:?}");
    let errors = archives_of(&dir.path().join("archived/errors"), "errors");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(
        archives_of(&dir.path().join("archived/bke"), "bke").len(),
        3
    );
    // The newest three: the records just before the live file's.
    let seqs: Vec<u64> = archives
        .iter()
        .chain([&dir.path().join("logs/bk/bk.log")])
        .flat_map(|p| json_lines(p))
        .map(|r| r["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (46..50).collect::<Vec<_>>());
    assert_eq!(status.rotations, 3 * 49, "{status:?}");
    assert_eq!(status.archives_deleted, status.rotations - 9, "{status:?}");
    // Compressing an archive that the backup limit deleted first is no error.
    assert_eq!(status.archive_errors, 0, "{status:?}");
}

// ---------------------------------------------------------------------------------------
// Random operation sequences: writes of any size to a few components at every level, with
// flushes, clock jumps (crossing midnights) and restarts. Whatever happens, every file's
// records (archives by name, then the live file) are exactly the records routed to it, in
// order; size caps hold; each daily archive holds one day.

use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Write {
        component: usize,
        level: usize,
        size: usize,
        timing: bool,
    },
    Flush,
    /// Flush, then move the clock on.
    Advance(i64),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..3usize, 0..6usize, prop_oneof![0..200usize, 0..3000usize], any::<bool>())
            .prop_map(|(component, level, size, timing)| Op::Write { component, level, size, timing }),
        2 => Just(Op::Flush),
        2 => prop_oneof![
            0..2i64,
            0..3_600_000_000i64,
            0..2 * writer_common::DAY_MICROS,
        ]
        .prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

const COMPONENTS: [&str; 3] = ["alpha", "app", "beta"];

/// The records of `stem` in `dir`'s archives (by name) and its live file, as seq numbers,
/// checking the cap and, for daily files, one day per archive.
fn stem_seqs(root: &Path, dir: &str, stem: &str, cap: u64, daily: bool) -> Vec<u64> {
    let mut out = Vec::new();
    let archives = archives_of(&root.join("archived").join(dir), stem);
    let live = root.join("logs").join(dir).join(format!("{stem}.log"));
    for (i, p) in archives
        .iter()
        .chain(live.exists().then_some(&live))
        .enumerate()
    {
        let bytes = read_maybe_gz(p);
        let records = json_lines(p);
        assert!(
            bytes.len() as u64 <= cap || records.len() == 1,
            "{} holds {} bytes in {} records",
            p.display(),
            bytes.len(),
            records.len()
        );
        if daily && i < archives.len() {
            let day: HashSet<&str> = records
                .iter()
                .map(|r| &r["timestamp"].as_str().unwrap()[..10])
                .collect();
            assert_eq!(day.len(), 1, "{} holds several days: {day:?}", p.display());
        }
        out.extend(records.iter().map(|r| r["data"]["seq"].as_u64().unwrap()));
    }
    out
}

fn run_ops(ops: &[Op], cap: u64) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::new(
        writer_common::days_from_civil(2025, 1, 1) * writer_common::DAY_MICROS - 3_600_000_000,
    ));
    let start = || {
        builder(dir.path())
            .max_file_size(cap)
            .error_file_size(cap)
            .performance_file_size(cap)
            .max_backups(1_000_000)
            .retention_days(100_000)
            .daily_files(DailyFiles::Components(vec!["app".into()]))
            .compression(Compression::None)
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let (mut writer, mut guard) = start();
    let levels = [
        Level::TRACE,
        Level::DEBUG,
        Level::INFO,
        Level::WARNING,
        Level::ERROR,
        Level::CRITICAL,
    ];
    let mut want: std::collections::HashMap<&str, Vec<u64>> = Default::default();
    let mut seq = 0u64;
    for op in ops {
        match *op {
            Op::Write {
                component,
                level,
                size,
                timing,
            } => {
                let pad = "z".repeat(size);
                let data = [("seq", Value::U64(seq)), ("pad", Value::Str(&pad))];
                let c = COMPONENTS[component];
                let rec = Record::new(levels[level], c, "op")
                    .timestamp(clock.system_time())
                    .data(&data)
                    .timing(timing);
                writer.write(&rec).unwrap();
                want.entry(c).or_default().push(seq);
                if c == "app" {
                    want.entry("app_daily").or_default().push(seq);
                }
                if level >= 4 {
                    want.entry("errors").or_default().push(seq);
                }
                if timing {
                    want.entry("performance").or_default().push(seq);
                }
                seq += 1;
            }
            Op::Flush => writer.flush().unwrap(),
            Op::Advance(d) => {
                writer.flush().unwrap();
                clock.set(clock.micros() + d);
            }
            Op::Restart => {
                writer.shutdown_with_timeout(LONG).unwrap();
                drop(guard);
                (writer, guard) = start();
            }
        }
    }
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(LONG));
    let status = writer.status();
    writer.shutdown_with_timeout(LONG).unwrap();
    drop(guard);
    assert_eq!(
        status.io_errors + status.records_lost + status.archive_errors,
        0,
        "{status:?}"
    );
    let root = dir.path();
    for (dir, stem, daily) in [
        ("alpha", "alpha", false),
        ("beta", "beta", false),
        ("app", "app", false),
        ("app", "app_daily", true),
        ("errors", "errors", false),
        ("performance", "performance", false),
    ] {
        let got = stem_seqs(root, dir, stem, cap, daily);
        let want = want.get(stem).cloned().unwrap_or_default();
        assert_eq!(got, want, "{stem}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_every_file_complete_and_in_order(
        ops in prop::collection::vec(op(), 1..150),
        cap in prop_oneof![Just(1024u64), 1024u64..16_384],
    ) {
        run_ops(&ops, cap);
    }
}
