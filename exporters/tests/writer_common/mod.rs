//! Helpers shared by the `writer_*` integration tests: a test clock, reading every line of
//! live and archived files (gzip included), and archive-name checks.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracekit_exporters::Clock;

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// A clock the test moves by hand: microseconds since the Unix epoch.
#[derive(Debug)]
pub struct TestClock(pub AtomicI64);

impl TestClock {
    pub fn new(micros: i64) -> TestClock {
        TestClock(AtomicI64::new(micros))
    }
    pub fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }
    pub fn micros(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn system_time(&self) -> SystemTime {
        from_micros(self.micros())
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        from_micros(self.micros())
    }
}

pub fn from_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// Days since 1970-01-01 for a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The compact archive stamp `YYYYMMDDTHHMMSS.ffffffZ` of `micros`, computed by walking
/// years and months (independently of the crate's own formatter).
pub fn archive_stamp(micros: i64) -> String {
    let (y, mo, d, h, mi, s, us) = civil(micros);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{us:06}Z")
}

/// RFC 3339 with microseconds, `Z`.
pub fn rfc3339(micros: i64) -> String {
    let (y, mo, d, h, mi, s, us) = civil(micros);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// A naive civil breakdown: walks years from 1970 (both directions), then months.
pub fn civil(micros: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000) as u32;
    let mut days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let mut year = 1970;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < 0 {
            year -= 1;
            days += if is_leap(year) { 366 } else { 365 };
        } else if days >= len {
            days -= len;
            year += 1;
        } else {
            break;
        }
    }
    let months = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    (
        year,
        month as u32 + 1,
        days as u32 + 1,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        us,
    )
}

/// True for `YYYYMMDDTHHMMSS.ffffffZ`.
pub fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 => c == b'T',
            15 => c == b'.',
            22 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Splits `<stem>.<stamp>.log[.gz]` into (stem, stamp, compressed).
pub fn parse_archive_name(name: &str) -> Option<(String, String, bool)> {
    let (rest, gz) = match name.strip_suffix(".log.gz") {
        Some(r) => (r, true),
        None => (name.strip_suffix(".log")?, false),
    };
    // `.<stamp>` is the last 24 characters; the stamp itself holds a dot.
    if rest.len() < 25 {
        return None;
    }
    if !rest.is_char_boundary(rest.len() - 24) {
        return None;
    }
    let (stem, dot_stamp) = rest.split_at(rest.len() - 24);
    let stamp = dot_stamp.strip_prefix('.')?;
    (is_stamp(stamp) && !stem.is_empty()).then(|| (stem.to_owned(), stamp.to_owned(), gz))
}

/// The bytes of a file, gunzipped when its name ends in `.gz`.
pub fn read_maybe_gz(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("gunzip {}: {e}", path.display()));
        out
    } else {
        raw
    }
}

/// The archives of `stem` in `dir`, sorted by name (which sorts by time).
pub fn archives_of(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(parse_archive_name)
                    .is_some_and(|(s, _, _)| s == stem)
            })
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Splits into lines; asserts the content ends with `\n` (no torn tail) unless empty.
pub fn lines_of(bytes: &[u8], what: &Path) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "{} does not end with a newline",
        what.display()
    );
    bytes[..bytes.len() - 1]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Every line of `path` parsed as JSON; panics naming the file and line on a bad one.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let bytes = read_maybe_gz(path);
    lines_of(&bytes, path)
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: {e}: {:?}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

/// Every regular file under `dir`, recursively (symlinks are listed, not followed).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.push(e.path());
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// The writer's own records (logger `tracekit_exporters::writer`).
pub fn is_writer_record(v: &serde_json::Value) -> bool {
    v["logger"] == "tracekit_exporters::writer"
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A builder for `root` with every setting that an environment variable could change
/// pinned to its default, so the tests do not depend on the caller's environment.
pub fn builder(root: impl Into<PathBuf>) -> tracekit_exporters::LogWriterBuilder {
    tracekit_exporters::LogWriter::builder()
        .root(root)
        .retention_days(30)
        .compression(tracekit_exporters::Compression::Gzip { level: 1 })
        .loss_policy(tracekit_exporters::LossPolicy::Lossless)
        .fsync(tracekit_exporters::FsyncPolicy::Never)
}
