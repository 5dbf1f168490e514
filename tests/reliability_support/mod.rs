//! Helpers shared by the `reliability_*` tests: a seeded RNG, reading a file's lines back
//! (torn tail included), every record of a stem across archives and the live file, a tmpfs
//! mount, a check for raw terminal control characters, and a writer that keeps every archive.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A small seeded generator (splitmix64): reproducible runs without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from `RELIABILITY_SEED`, else from the clock; printed so a failure can be replayed.
    pub fn seed_from_env(what: &str) -> u64 {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: seed {seed} (replay with RELIABILITY_SEED={seed})");
        seed
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One file read back: its complete lines, and the bytes after the last `\n` (a torn tail).
#[derive(Debug)]
pub struct FileLines {
    pub path: PathBuf,
    pub lines: Vec<Vec<u8>>,
    pub partial: Option<Vec<u8>>,
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

pub fn file_lines(path: &Path) -> FileLines {
    let bytes = read_maybe_gz(path);
    let (whole, partial) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&bytes[..=i], &bytes[i + 1..]),
        None => (&bytes[..0], &bytes[..]),
    };
    let lines = if whole.is_empty() {
        Vec::new()
    } else {
        whole[..whole.len() - 1]
            .split(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    FileLines {
        path: path.to_owned(),
        lines,
        partial: (!partial.is_empty()).then(|| partial.to_vec()),
    }
}

/// The files holding the records of `stem` (a main, daily, errors or performance file of
/// directory `dir`), oldest first: the archives by name, then the live file. When an archive
/// exists both plain and gzipped (a crash or a kill between the two steps of compression),
/// the plain one is taken; `.tmp` leftovers are not archives.
pub fn stem_files(root: &Path, dir: &str, stem: &str) -> Vec<PathBuf> {
    let adir = root.join("archived").join(dir);
    let mut names: Vec<String> = fs::read_dir(&adir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in &names {
        let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        // `<stamp>.log` or `<stamp>.log.gz`, the stamp 23 bytes.
        let plain = rest.len() == 27 && rest.ends_with(".log");
        let gz = rest.len() == 30 && rest.ends_with(".log.gz");
        if plain || (gz && !names.contains(&name[..name.len() - 3].to_owned())) {
            out.push(adir.join(name));
        }
    }
    let live = root.join("logs").join(dir).join(format!("{stem}.log"));
    if live.exists() {
        out.push(live);
    }
    out
}

/// Every line under `dir` (recursively), gunzipped: for searching all output for a value.
pub fn all_output(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for p in walk(dir) {
        if fs::symlink_metadata(&p).unwrap().is_file() {
            let bytes = fs::read(&p).unwrap();
            let bytes = if p.extension().is_some_and(|e| e == "gz") {
                let mut d = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut d)
                    .unwrap();
                d
            } else {
                bytes
            };
            out.push((p, bytes));
        }
    }
    out
}

/// Every entry under `dir`, recursively (symlinks listed, not followed).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// Occurrences of `needle` in `hay`.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The first character in `s` that could break a line or act on a terminal: C0 controls
/// other than `\n` (which separates lines), DEL, C1 controls, U+2028/U+2029, and with
/// `bidi` the bidirectional overrides and isolates too (which the analysis tools escape;
/// the record contract leaves them in files).
pub fn raw_control(s: &str, bidi: bool) -> Option<(usize, char)> {
    s.char_indices().find(|&(_, c)| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{2028}' | '\u{2029}')
            || (bidi && matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    })
}

/// A tmpfs mounted for a test, unmounted on drop (lazily if still busy).
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`; `None` when mounting is impossible and
    /// `TRACEKIT_SKIP_MOUNT_TESTS=1` says to skip (otherwise that is a failure).
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
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
            "cannot mount a tmpfs at {}: {why}. This test needs root and mount(8); \
             set TRACEKIT_SKIP_MOUNT_TESTS=1 to skip it where that is impossible",
            dir.display()
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

/// Polls `f` every millisecond until it returns true or `timeout` passes; the time it took.
pub fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The writer's own records (logger `tracekit_exporters::writer`).
pub fn is_writer_record(v: &serde_json::Value) -> bool {
    v["logger"] == "tracekit_exporters::writer"
}

/// A writer into `root` that keeps every rotated file (gzip level 1, no daily files): what
/// the file-state tests read back whole.
pub fn writer_builder(root: &Path) -> tracekit::exporters::LogWriterBuilder {
    tracekit::exporters::LogWriter::builder()
        .root(root)
        .daily_files(tracekit::exporters::DailyFiles::None)
        .compression(tracekit::exporters::Compression::Gzip { level: 1 })
        .max_backups(100_000)
}
