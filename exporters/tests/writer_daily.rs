//! Daily rotation and retention, driven by an injected clock: the daily file rotates at each
//! UTC midnight (one day per archive), archives older than the retention go, younger ones
//! stay, and start-up retention touches nothing but archives the writer made.

mod writer_common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracekit_exporters::{Compression, DailyFiles, Level, Record, Value};
use writer_common::{
    archive_stamp, archives_of, builder, days_from_civil, json_lines, parse_archive_name, rfc3339,
    TestClock, DAY_MICROS,
};

const LONG: Duration = Duration::from_secs(60);
const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3600 * SECOND;

/// Microseconds of a `YYYYMMDDTHHMMSS.ffffffZ` stamp.
fn stamp_micros(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let days = days_from_civil(n(0..4), n(4..6) as u32, n(6..8) as u32);
    (days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)) * SECOND + n(16..22)
}

fn stamp_of(path: &Path) -> i64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    stamp_micros(&parse_archive_name(name).unwrap().1)
}

/// The (day, i) of each record of `path`, checking each record's timestamp is on `day`.
fn days_in(path: &Path, base_day: i64) -> Vec<(i64, u64)> {
    json_lines(path)
        .iter()
        .map(|r| {
            let day = r["data"]["day"].as_i64().unwrap();
            let date = &rfc3339((base_day + day) * DAY_MICROS)[..10];
            assert!(
                r["timestamp"].as_str().unwrap().starts_with(date),
                "{r} is not on {date}"
            );
            (day, r["data"]["i"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn daily_file_rotates_at_each_utc_midnight_and_old_archives_expire() {
    const DAYS: i64 = 40;
    const PER_DAY: u64 = 15;
    let base_day = days_from_civil(2025, 2, 10);
    let clock = Arc::new(TestClock::new(base_day * DAY_MICROS + SECOND));
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = builder(dir.path())
        .daily_files(DailyFiles::Components(vec!["app".into()]))
        .retention_days(30)
        .max_backups(3) // size backups do not limit daily archives: retention does
        .compression(Compression::Gzip { level: 1 })
        .clock(clock.clone())
        .build()
        .unwrap();
    let archive_dir = dir.path().join("archived/app");
    let write_at = |day: i64, at: i64, from: u64, n: u64| {
        clock.set((base_day + day) * DAY_MICROS + at);
        for i in from..from + n {
            let data = [("day", Value::I64(day)), ("i", Value::U64(i))];
            writer
                .write(
                    &Record::new(Level::INFO, "app", "tick")
                        .timestamp(clock.system_time())
                        .data(&data),
                )
                .unwrap();
        }
        writer.flush().unwrap();
    };
    // (archive stamp, day it holds) of every rotation.
    let mut rotated: Vec<(i64, i64)> = Vec::new();
    for day in 0..=DAYS {
        // Just after midnight: this write rotates yesterday's file.
        let at = if day == DAYS { 2 * HOUR } else { SECOND };
        write_at(day, at, 0, 5);
        if day > 0 {
            assert!(writer.wait_for_archives(LONG));
            let archives = archives_of(&archive_dir, "app_daily");
            let newest = archives.last().expect("an archive of yesterday");
            let stamp = stamp_of(newest);
            assert!(
                rotated.last().is_none_or(|(s, _)| *s < stamp),
                "no new archive on day {day}: {archives:?}"
            );
            // Named at the rotation: after midnight, not later than now.
            assert!(stamp >= (base_day + day) * DAY_MICROS && stamp <= clock.micros());
            let got = days_in(newest, base_day);
            let want: Vec<(i64, u64)> = (0..PER_DAY).map(|i| (day - 1, i)).collect();
            assert_eq!(
                got,
                want,
                "{} holds other than day {}",
                newest.display(),
                day - 1
            );
            rotated.push((stamp, day - 1));
        }
        if day < DAYS {
            write_at(day, 12 * HOUR, 5, 5);
            // The last microsecond of the day still belongs to it.
            write_at(day, DAY_MICROS - 1, 10, 5);
        }
    }
    assert!(writer.wait_for_archives(LONG));
    let now = clock.micros();
    let status = writer.status();
    writer.shutdown_with_timeout(LONG).unwrap();
    drop(guard);

    let max_age = 30 * DAY_MICROS;
    let remaining: Vec<i64> = archives_of(&archive_dir, "app_daily")
        .iter()
        .map(|p| stamp_of(p))
        .collect();
    let mut expired = 0;
    for (stamp, day) in &rotated {
        let old = now - stamp > max_age;
        assert_eq!(
            remaining.contains(stamp),
            !old,
            "archive of day {day} (age {} h): {}",
            (now - stamp) / HOUR,
            if old {
                "older than 30 days, kept"
            } else {
                "younger, deleted"
            }
        );
        expired += u64::from(old);
    }
    eprintln!(
        "daily: {} rotations, {expired} archives expired, {} kept",
        rotated.len(),
        remaining.len()
    );
    assert_eq!(remaining.len() as u64 + expired, rotated.len() as u64);
    assert_eq!(rotated.len() as i64, DAYS);
    assert!(
        expired >= 5 && remaining.len() >= 25,
        "{expired} {remaining:?}"
    );
    assert_eq!(status.archives_deleted, expired, "{status:?}");
    // Each remaining archive (re-read after retention) still holds exactly its day.
    for p in archives_of(&archive_dir, "app_daily") {
        let day = rotated.iter().find(|(s, _)| *s == stamp_of(&p)).unwrap().1;
        let got = days_in(&p, base_day);
        assert!(got.len() as u64 == PER_DAY && got.iter().all(|(d, _)| *d == day));
    }
    // The live daily file holds today's record only; the main file holds everything.
    let live = days_in(&dir.path().join("logs/app/app_daily.log"), base_day);
    assert_eq!(live, (0..5).map(|i| (DAYS, i)).collect::<Vec<_>>());
    let main = days_in(&dir.path().join("logs/app/app.log"), base_day);
    assert_eq!(main.len() as u64, DAYS as u64 * PER_DAY + 5);
    assert!(archives_of(&archive_dir, "app").is_empty());
}

fn gz_bytes(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[test]
fn retention_at_startup_deletes_only_old_archives_it_made() {
    let now = days_from_civil(2025, 6, 15) * DAY_MICROS + 10 * HOUR;
    let clock = Arc::new(TestClock::new(now));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let app = root.join("archived/app");
    let other = root.join("archived/other");
    fs::create_dir_all(&app).unwrap();
    fs::create_dir_all(&other).unwrap();
    let name = |stem: &str, age: i64, gz: bool| {
        format!(
            "{stem}.{}.{}",
            archive_stamp(now - age),
            if gz { "log.gz" } else { "log" }
        )
    };
    let line = "{\"timestamp\":\"2025-05-01T00:00:00.000000Z\",\"level\":\"INFO\",\"component\":\"app\",\"message\":\"old\"}\n";

    let old_gz = app.join(name("app", 31 * DAY_MICROS, true));
    let old_plain = app.join(name("app_daily", 45 * DAY_MICROS, false));
    let old_other = other.join(name("other", 300 * DAY_MICROS, true));
    let young_gz = app.join(name("app", 29 * DAY_MICROS, true));
    let young_plain = app.join(name("app_daily", 2 * DAY_MICROS, false));
    fs::write(&old_gz, gz_bytes(line)).unwrap();
    fs::write(&old_plain, line).unwrap();
    fs::write(&old_other, gz_bytes(line)).unwrap();
    fs::write(&young_gz, gz_bytes(line)).unwrap();
    fs::write(&young_plain, line).unwrap();
    // Foreign things: a file with another name, and symlinks named like old archives that
    // point outside (to a file, and a directory of old-looking archives).
    let notes = app.join("notes.txt");
    fs::write(&notes, "keep me").unwrap();
    let target_gz = outside.join("target.log.gz");
    let target_plain = outside.join("target.log");
    fs::write(&target_gz, "precious").unwrap();
    fs::write(&target_plain, "precious too").unwrap();
    let link_gz = app.join(name("app", 40 * DAY_MICROS, true));
    let link_plain = app.join(name("app", 41 * DAY_MICROS, false));
    symlink(&target_gz, &link_gz).unwrap();
    symlink(&target_plain, &link_plain).unwrap();
    let outside_dir = outside.join("dir");
    fs::create_dir(&outside_dir).unwrap();
    let outside_archive = outside_dir.join(name("x", 90 * DAY_MICROS, true));
    fs::write(&outside_archive, "not ours").unwrap();
    symlink(&outside_dir, root.join("archived/linked")).unwrap();

    let (writer, guard) = builder(&root)
        .retention_days(30)
        .clock(clock)
        .build()
        .unwrap();
    assert!(writer.wait_for_archives(LONG));
    let status = writer.status();
    drop(guard);

    assert!(!old_gz.exists() && !old_plain.exists() && !old_other.exists());
    let mut compressed = young_plain.as_os_str().to_owned();
    compressed.push(".gz");
    assert!(young_gz.exists());
    assert!(
        !young_plain.exists(),
        "a plain archive is compressed at start-up"
    );
    let back = json_lines(Path::new(&compressed));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["message"], "old");
    assert_eq!(fs::read_to_string(&notes).unwrap(), "keep me");
    for (link, target, text) in [
        (&link_gz, &target_gz, "precious"),
        (&link_plain, &target_plain, "precious too"),
    ] {
        assert!(
            fs::symlink_metadata(link).unwrap().file_type().is_symlink(),
            "{} was removed",
            link.display()
        );
        assert_eq!(fs::read_to_string(target).unwrap(), text);
    }
    // The plain-named symlink was not compressed either.
    let mut link_plain_gz = link_plain.as_os_str().to_owned();
    link_plain_gz.push(".gz");
    assert!(!Path::new(&link_plain_gz).exists());
    assert_eq!(fs::read_to_string(&outside_archive).unwrap(), "not ours");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 3);
    assert_eq!(status.archives_deleted, 3, "{status:?}");
    assert_eq!(status.archive_errors, 0, "{status:?}");
    // Only the young plain archive was compressed; the expired one was just deleted.
    assert_eq!(status.archives_compressed, 1, "{status:?}");
}

/// After a restart the daily file's day is the clock's day it was started on, not the day
/// of the system clock that stamped its mtime: a restart within the (simulated) day appends,
/// a restart on a later day rotates first.
#[test]
fn restart_keeps_the_daily_file_within_its_day_by_the_injected_clock() {
    let base_day = days_from_civil(2025, 4, 1);
    let clock = Arc::new(TestClock::new(base_day * DAY_MICROS + HOUR));
    let dir = tempfile::tempdir().unwrap();
    let run = |at: i64, day: i64, n: u64| {
        clock.set((base_day + day) * DAY_MICROS + at);
        let (writer, guard) = builder(dir.path())
            .daily_files(DailyFiles::Components(vec!["app".into()]))
            .clock(clock.clone())
            .build()
            .unwrap();
        for i in 0..n {
            let data = [("day", Value::I64(day)), ("i", Value::U64(i))];
            writer
                .write(
                    &Record::new(Level::INFO, "app", "tick")
                        .timestamp(clock.system_time())
                        .data(&data),
                )
                .unwrap();
        }
        writer.flush().unwrap();
        assert!(writer.wait_for_archives(LONG));
        drop(guard);
    };
    let archive_dir = dir.path().join("archived/app");
    let live = dir.path().join("logs/app/app_daily.log");
    run(HOUR, 0, 3);
    run(20 * HOUR, 0, 2);
    assert!(archives_of(&archive_dir, "app_daily").is_empty());
    assert_eq!(days_in(&live, base_day).len(), 5);
    run(2 * HOUR, 1, 4);
    let archives = archives_of(&archive_dir, "app_daily");
    assert_eq!(archives.len(), 1);
    let day0: Vec<_> = days_in(&archives[0], base_day)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(day0, vec![0; 5]);
    assert_eq!(
        days_in(&live, base_day),
        (0..4).map(|i| (1, i)).collect::<Vec<_>>()
    );
}
