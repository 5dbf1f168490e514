//! Loss policies, flush, shutdown, hostile component names and symlinks at log paths.

mod writer_common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracekit_exporters::{DailyFiles, Level, LossPolicy, Record, Value, WriteError};
use writer_common::{builder, is_writer_record, json_lines, poll, walk};

const LONG: Duration = Duration::from_secs(60);

/// Counts the lines of a file and checks each (t, seq) of `threads` x `per_thread` is there
/// exactly once, reading the two numbers without a full JSON parse (1M lines).
fn count_tagged(path: &Path, threads: usize, per_thread: usize) -> usize {
    let bytes = fs::read(path).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'));
    let mut seen = vec![false; threads * per_thread];
    let mut n = 0;
    let num_after = |line: &[u8], key: &[u8]| -> usize {
        let at = line
            .windows(key.len())
            .position(|w| w == key)
            .unwrap_or_else(|| panic!("no {:?} in {:?}", key, String::from_utf8_lossy(line)))
            + key.len();
        line[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0, |acc, b| acc * 10 + usize::from(b - b'0'))
    };
    for line in bytes[..bytes.len() - 1].split(|&b| b == b'\n') {
        assert!(line.starts_with(b"{\"timestamp\":\"") && line.ends_with(b"}}"));
        let t = num_after(line, b"\"t\":");
        let seq = num_after(line, b"\"seq\":");
        let i = t * per_thread + seq;
        assert!(!seen[i], "record {t}/{seq} twice");
        seen[i] = true;
        n += 1;
    }
    n
}

#[test]
fn lossless_keeps_every_record_with_a_small_queue_and_a_slow_writer() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 250_000;
    let dir = tempfile::tempdir().unwrap();
    // A small queue, and a writer slowed by an fdatasync every millisecond: the producers
    // outrun it and must wait.
    let (writer, guard) = builder(dir.path())
        .queue_bytes(64 * 1024)
        .fsync(tracekit_exporters::FsyncPolicy::Interval(
            Duration::from_millis(1),
        ))
        .loss_policy(LossPolicy::Lossless)
        .max_file_size(1 << 30)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let writer = writer.clone();
            s.spawn(move || {
                for seq in 0..PER_THREAD {
                    let data = [("t", Value::U64(t as u64)), ("seq", Value::U64(seq as u64))];
                    writer
                        .write(&Record::new(Level::INFO, "lossless", "m").data(&data))
                        .unwrap();
                }
            });
        }
    });
    drop(guard);
    let n = count_tagged(
        &dir.path().join("logs/lossless/lossless.log"),
        THREADS,
        PER_THREAD,
    );
    assert_eq!(n, THREADS * PER_THREAD);
    let status = writer.status();
    assert_eq!(status.records_written, (THREADS * PER_THREAD) as u64);
    assert_eq!(status.records_dropped + status.records_lost, 0);
    assert!(status.syncs > 0, "the writer was not slowed: {status:?}");
}

#[test]
fn lossy_counts_every_drop_and_reports_it_exactly() {
    const THREADS: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .queue_bytes(64 * 1024)
        .loss_policy(LossPolicy::Lossy)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    let produced = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let pad = "x".repeat(200);
    // Produce in rounds until drops happened (they will within the first round on any
    // machine: eight producers against one writer and a 64 KiB queue).
    for round in 0..20u64 {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (writer, produced, refused, pad) = (&writer, &produced, &refused, &pad);
                s.spawn(move || {
                    for seq in 0..5_000u64 {
                        let data = [
                            ("t", Value::U64(t)),
                            ("seq", Value::U64(round * 1_000_000 + seq)),
                            ("pad", Value::Str(pad)),
                        ];
                        produced.fetch_add(1, Ordering::Relaxed);
                        match writer.write(&Record::new(Level::INFO, "lossy", "m").data(&data)) {
                            Ok(()) => {}
                            Err(WriteError::QueueFull) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
        });
        if refused.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    writer.shutdown_with_timeout(LONG).unwrap();
    drop(guard);

    let status = writer.status();
    let produced = produced.into_inner();
    let refused = refused.into_inner();
    eprintln!("lossy: {produced} produced, {refused} dropped");
    assert!(
        refused > 0,
        "no record was dropped: the test proves nothing"
    );
    assert_eq!(status.records_dropped, refused);

    let component = json_lines(&dir.path().join("logs/lossy/lossy.log"));
    assert!(component.iter().all(|r| !is_writer_record(r)));
    let found = component.len() as u64;
    assert_eq!(status.records_dropped, produced - found, "{status:?}");
    assert_eq!(status.records_written, found);

    // The writer's own WARNING records, in the default component, state the exact count.
    let app = json_lines(&dir.path().join("logs/app/app.log"));
    let warnings: Vec<_> = app.iter().filter(|r| is_writer_record(r)).collect();
    assert!(!warnings.is_empty());
    let mut total = 0;
    for w in &warnings {
        assert_eq!(w["level"], "WARNING");
        let n = w["data"]["dropped"].as_u64().unwrap();
        total += n;
        assert_eq!(w["data"]["total_dropped"].as_u64().unwrap(), total);
        assert!(w["message"].as_str().unwrap().contains(&n.to_string()));
    }
    assert_eq!(total, status.records_dropped);
}

#[test]
fn flush_returns_after_earlier_records_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _guard) = builder(dir.path())
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    let path = dir.path().join("logs/fl/fl.log");
    let mut total = 0u64;
    for round in 1..=60u64 {
        for i in 0..round * 7 {
            let data = [("i", Value::U64(i))];
            writer
                .write(&Record::new(Level::INFO, "fl", "m").data(&data))
                .unwrap();
            total += 1;
        }
        writer.flush().unwrap();
        let text = fs::read(&path).unwrap();
        let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(
            lines, total,
            "round {round}: flush returned before the data was written"
        );
        assert_eq!(text.last(), Some(&b'\n'));
    }
    // A flush from another thread covers records queued by this one.
    for i in 0..1000u64 {
        let data = [("i", Value::U64(i))];
        writer
            .write(&Record::new(Level::INFO, "fl", "m").data(&data))
            .unwrap();
    }
    total += 1000;
    let w = writer.clone();
    std::thread::spawn(move || w.flush().unwrap())
        .join()
        .unwrap();
    assert_eq!(json_lines(&path).len() as u64, total);
}

#[test]
fn shutdown_is_idempotent_and_later_writes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path()).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "sd", "before"))
        .unwrap();
    writer.shutdown_with_timeout(LONG).unwrap();
    assert!(writer.is_shutdown());
    writer.shutdown_with_timeout(LONG).unwrap();
    writer.shutdown().unwrap();
    assert_eq!(
        writer.write(&Record::new(Level::INFO, "sd", "after")),
        Err(WriteError::Shutdown)
    );
    let clone = writer.clone();
    assert_eq!(
        std::thread::spawn(move || clone.write(&Record::new(Level::ERROR, "sd", "after")))
            .join()
            .unwrap(),
        Err(WriteError::Shutdown)
    );
    drop(guard);
    writer.shutdown().unwrap();
    let lines = json_lines(&dir.path().join("logs/sd/sd.log"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "before");
    assert!(!dir.path().join("logs/errors/errors.log").exists());
}

#[test]
fn hostile_component_names_stay_inside_the_logs_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    assert!(!Path::new("/etc/etc.log").exists());
    let (writer, guard) = builder(&root)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    let names = [
        "../x",
        "/etc",
        "a\0b",
        "..",
        "../../../../tmp/evil",
        "errors",
        ".",
    ];
    for name in names {
        writer
            .write(&Record::new(Level::ERROR, name, "hostile"))
            .unwrap();
    }
    writer.flush().unwrap();
    drop(guard);
    // Nothing beside the root, nothing outside logs/ and archived/.
    let beside: Vec<_> = fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
    assert!(!Path::new("/etc/etc.log").exists());
    assert!(!Path::new("/tmp/evil").exists());
    let mut top: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["archived", "logs"]);
    let mut dirs: Vec<_> = fs::read_dir(root.join("logs"))
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
            "errors",
            "errors_component",
            "etc",
            "tmp_evil",
            "x"
        ]
    );
    for p in walk(&root) {
        let rel = p.strip_prefix(&root).unwrap();
        assert!(
            rel.components().count() <= 3
                && rel
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{}",
            p.display()
        );
    }
    // Every record landed: once in its component, once in errors/.
    assert_eq!(
        json_lines(&root.join("logs/errors/errors.log")).len(),
        names.len()
    );
    assert_eq!(json_lines(&root.join("logs/app/app.log")).len(), 2);
}

#[test]
fn a_symlink_at_a_log_path_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let target = tmp.path().join("target.txt");
    fs::write(&target, "untouched").unwrap();
    fs::create_dir_all(root.join("logs/victim")).unwrap();
    symlink(&target, root.join("logs/victim/victim.log")).unwrap();
    // A symlinked errors.log too.
    fs::create_dir_all(root.join("logs/errors")).unwrap();
    symlink(&target, root.join("logs/errors/errors.log")).unwrap();

    let (writer, guard) = builder(&root)
        .daily_files(DailyFiles::None)
        .max_file_size(1024)
        .max_backups(1000)
        .build()
        .unwrap();
    let pad = "p".repeat(600);
    for i in 0..20u64 {
        let data = [("i", Value::U64(i)), ("pad", Value::Str(&pad))];
        writer
            .write(&Record::new(Level::ERROR, "victim", "v").data(&data))
            .unwrap();
        writer
            .write(&Record::new(Level::INFO, "other", "o").data(&data))
            .unwrap();
        writer.flush().unwrap();
    }
    let status = writer.status();
    // The writer survives: it still writes.
    writer
        .write(&Record::new(Level::INFO, "other", "still here"))
        .unwrap();
    writer.flush().unwrap();
    drop(guard);

    assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    for link in ["logs/victim/victim.log", "logs/errors/errors.log"] {
        assert!(fs::symlink_metadata(root.join(link))
            .unwrap()
            .file_type()
            .is_symlink());
    }
    assert!(status.io_errors > 0, "{status:?}");
    assert!(status.records_lost > 0, "{status:?}");
    let other: Vec<_> = writer_common::archives_of(&root.join("archived/other"), "other")
        .iter()
        .chain([&root.join("logs/other/other.log")])
        .flat_map(|p| json_lines(p))
        .filter(|r| !is_writer_record(r))
        .collect();
    assert_eq!(other.len(), 21);
    assert_eq!(other[20]["message"], "still here");
    // No archive was made of the symlink or its target.
    assert!(writer_common::archives_of(&root.join("archived/victim"), "victim").is_empty());
    assert!(writer_common::archives_of(&root.join("archived/errors"), "errors").is_empty());
}

#[test]
fn records_are_routed_to_component_errors_performance_and_daily_files() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .daily_files(DailyFiles::Components(vec!["App".into()]))
        .build()
        .unwrap();
    for (i, level) in Level::ALL.into_iter().enumerate() {
        for component in ["app", "ranking"] {
            let data = [("i", Value::U64(i as u64))];
            let rec = Record::new(level, component, "m").data(&data);
            writer.write(&rec.timing(i % 2 == 0)).unwrap();
        }
    }
    // An empty component goes to the default one.
    writer
        .write(&Record::new(Level::INFO, "", "default"))
        .unwrap();
    drop(guard);
    let logs = dir.path().join("logs");
    let levels = |p: &str| -> Vec<(String, String)> {
        json_lines(&logs.join(p))
            .iter()
            .map(|r| {
                (
                    r["component"].as_str().unwrap().to_owned(),
                    r["level"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let all = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
    let of = |c: &str, ls: &[&str]| -> Vec<(String, String)> {
        ls.iter().map(|l| (c.to_owned(), (*l).to_owned())).collect()
    };
    let mut app = of("app", &all);
    app.push(("app".into(), "INFO".into()));
    assert_eq!(levels("app/app.log"), app);
    assert_eq!(levels("app/app_daily.log"), app);
    assert_eq!(levels("ranking/ranking.log"), of("ranking", &all));
    assert!(!logs.join("ranking/ranking_daily.log").exists());
    let errors: Vec<_> = ["ERROR", "CRITICAL"]
        .iter()
        .flat_map(|l| of("app", &[l]).into_iter().chain(of("ranking", &[l])))
        .collect();
    assert_eq!(levels("errors/errors.log"), errors);
    let timed: Vec<_> = ["TRACE", "INFO", "ERROR"]
        .iter()
        .flat_map(|l| of("app", &[l]).into_iter().chain(of("ranking", &[l])))
        .collect();
    assert_eq!(levels("performance/performance.log"), timed);
}

/// Shutdown while producers are writing (some blocked on a full queue): every write that
/// returned `Ok` is in the file, every later one returned `Shutdown`, nobody hangs.
#[test]
fn shutdown_under_load_writes_every_accepted_record() {
    const THREADS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .queue_bytes(64 * 1024)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    let accepted: Vec<u64> = std::thread::scope(|s| {
        let producers: Vec<_> = (0..THREADS)
            .map(|t| {
                let writer = writer.clone();
                s.spawn(move || {
                    let mut seq = 0u64;
                    loop {
                        let data = [("t", Value::U64(t as u64)), ("seq", Value::U64(seq))];
                        match writer.write(&Record::new(Level::INFO, "busy", "m").data(&data)) {
                            Ok(()) => seq += 1,
                            Err(WriteError::Shutdown) => return seq,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        // Let the producers fill the queue, then stop the writer under them.
        while writer.status().records_written < 20_000 {
            std::thread::sleep(Duration::from_millis(5));
        }
        writer.shutdown_with_timeout(LONG).unwrap();
        producers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    drop(guard);
    let records = json_lines(&dir.path().join("logs/busy/busy.log"));
    let mut next = vec![0u64; THREADS];
    for r in &records {
        let t = r["data"]["t"].as_u64().unwrap() as usize;
        assert_eq!(r["data"]["seq"].as_u64().unwrap(), next[t]);
        next[t] += 1;
    }
    assert_eq!(next, accepted);
    assert_eq!(writer.status().records_written, records.len() as u64);
}

#[test]
fn a_symlinked_component_directory_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(root.join("logs")).unwrap();
    symlink(&outside, root.join("logs/evil")).unwrap();

    let (writer, guard) = builder(&root)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    for i in 0..5u64 {
        let data = [("i", Value::U64(i))];
        writer
            .write(&Record::new(Level::INFO, "evil", "e").data(&data))
            .unwrap();
        writer
            .write(&Record::new(Level::INFO, "good", "g").data(&data))
            .unwrap();
    }
    writer.flush().unwrap();
    let status = writer.status();
    drop(guard);

    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the link"
    );
    assert!(
        status.io_errors > 0 && status.records_lost == 5,
        "{status:?}"
    );
    assert_eq!(json_lines(&root.join("logs/good/good.log")).len(), 5);
}

/// The writer's open descriptors for files under `dir`.
fn open_files_under(dir: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[test]
fn quiet_files_are_closed_and_reopened_by_the_next_record() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap().join("root");
    let (writer, guard) = builder(&root)
        .daily_files(DailyFiles::None)
        .reopen_check_interval(std::time::Duration::from_millis(50))
        .close_idle_files_after(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    writer
        .write(&Record::new(Level::INFO, "quiet", "one"))
        .unwrap();
    writer.flush().unwrap();
    assert_eq!(open_files_under(&root.join("logs/quiet")), 1);
    assert!(
        poll(LONG, || open_files_under(&root.join("logs/quiet")) == 0),
        "the quiet file was never closed"
    );
    writer
        .write(&Record::new(Level::INFO, "quiet", "two"))
        .unwrap();
    writer.flush().unwrap();
    drop(guard);
    let lines = json_lines(&root.join("logs/quiet/quiet.log"));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["message"], "two");
}

/// Writes `records` (level, count) to component `c`, flushing after each, and returns the
/// writer's sync count.
fn syncs_after(policy: tracekit_exporters::FsyncPolicy, records: &[(Level, usize)]) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(tmp.path())
        .daily_files(DailyFiles::None)
        .fsync(policy)
        .build()
        .unwrap();
    for &(level, n) in records {
        for _ in 0..n {
            writer.write(&Record::new(level, "c", "r")).unwrap();
        }
        writer.flush().unwrap();
    }
    let syncs = writer.status().syncs;
    drop(guard);
    syncs
}

#[test]
fn fsync_policies_sync_when_they_say() {
    use tracekit_exporters::FsyncPolicy;
    let info = [(Level::INFO, 100), (Level::INFO, 100)];
    let with_error = [(Level::INFO, 100), (Level::ERROR, 1), (Level::INFO, 100)];
    assert_eq!(syncs_after(FsyncPolicy::Never, &with_error), 0);
    assert_eq!(syncs_after(FsyncPolicy::OnError, &info), 0);
    // The error record's component file and errors/errors.log.
    assert!(syncs_after(FsyncPolicy::OnError, &with_error) >= 2);
}

/// `Interval`: written data is synced without another write coming to trigger it.
#[test]
fn the_interval_policy_syncs_written_data_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(tmp.path())
        .daily_files(DailyFiles::None)
        .fsync(tracekit_exporters::FsyncPolicy::Interval(
            Duration::from_millis(20),
        ))
        .build()
        .unwrap();
    for _ in 0..100 {
        writer.write(&Record::new(Level::INFO, "c", "r")).unwrap();
    }
    writer.flush().unwrap();
    // LONG only guards against a writer that never syncs.
    assert!(
        poll(LONG, || writer.status().syncs > 0),
        "no sync: {:?}",
        writer.status()
    );
    drop(guard);
}

#[test]
fn lines_longer_than_the_queue_keep_their_place_and_their_bytes() {
    // A 64 KiB queue: lines over a quarter of it travel boxed, the rest through the ring,
    // which laps many times. Each thread's records must come out whole and in its order.
    const THREADS: u64 = 3;
    const PER_THREAD: u64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .queue_bytes(64 * 1024)
        .loss_policy(LossPolicy::Lossless)
        .max_file_size(1 << 30)
        .daily_files(DailyFiles::None)
        .build()
        .unwrap();
    let big = |t: u64, seq: u64| -> String {
        let fill = char::from(b'a' + (t * 7 + seq) as u8 % 26);
        std::iter::repeat_n(fill, 40_000 + (seq as usize % 7) * 10_000).collect()
    };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let writer = writer.clone();
            s.spawn(move || {
                for seq in 0..PER_THREAD {
                    let body = if seq % 40 == 0 {
                        big(t, seq)
                    } else {
                        "x".repeat(seq as usize % 300)
                    };
                    let data = [
                        ("t", Value::U64(t)),
                        ("seq", Value::U64(seq)),
                        ("body", Value::Str(&body)),
                    ];
                    writer
                        .write(&Record::new(Level::INFO, "boxed", "m").data(&data))
                        .unwrap();
                }
            });
        }
    });
    writer.flush().unwrap();
    assert_eq!(writer.status().queued_bytes, 0);
    drop(guard);
    let mut next = [0u64; THREADS as usize];
    let lines = json_lines(&dir.path().join("logs/boxed/boxed.log"));
    assert_eq!(lines.len() as u64, THREADS * PER_THREAD);
    for line in &lines {
        let t = line["data"]["t"].as_u64().unwrap();
        let seq = line["data"]["seq"].as_u64().unwrap();
        assert_eq!(seq, next[t as usize], "thread {t} out of order");
        next[t as usize] += 1;
        let body = line["data"]["body"].as_str().unwrap();
        if seq % 40 == 0 {
            assert_eq!(body, big(t, seq), "boxed line {t}/{seq} changed");
        } else {
            assert_eq!(body.len(), seq as usize % 300);
        }
    }
    let status = writer.status();
    assert_eq!(status.records_written, THREADS * PER_THREAD);
    assert_eq!(status.records_dropped + status.records_lost, 0);
}
