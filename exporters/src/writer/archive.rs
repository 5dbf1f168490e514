//! The archiver thread: compresses rotated files, keeps the backup limit and applies
//! retention, off the writer's path. It deletes only files whose names it made, and never
//! follows a symlink.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;

use super::config::Compression;
use super::Shared;
use crate::encoder::timestamp::{format_archive_stamp, parse_archive_stamp, unix_micros};

/// The name of an archive: `<stem>.<YYYYMMDDTHHMMSS.ffffffZ>.log[.gz]`, sortable by time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArchiveName {
    pub stem: String,
    pub micros: i64,
    pub compressed: bool,
}

impl ArchiveName {
    pub(crate) fn file_name(stem: &str, micros: i64, compressed: bool) -> String {
        let ext = if compressed { "log.gz" } else { "log" };
        format!("{stem}.{}.{ext}", format_archive_stamp(micros))
    }

    /// Parses a name made by [`file_name`](Self::file_name); anything else is `None`.
    pub(crate) fn parse(name: &str) -> Option<ArchiveName> {
        let (rest, compressed) = match name.strip_suffix(".log.gz") {
            Some(r) => (r, true),
            None => (name.strip_suffix(".log")?, false),
        };
        let split = rest.len().checked_sub(24)?;
        let (stem, dot_stamp) = rest.split_at(split);
        let stamp = dot_stamp.strip_prefix('.')?;
        let stem_ok = !stem.is_empty()
            && stem
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        let micros = parse_archive_stamp(stamp)?;
        stem_ok.then(|| ArchiveName {
            stem: stem.to_owned(),
            micros,
            compressed,
        })
    }
}

#[derive(Debug)]
enum Job {
    /// Clean up after an earlier run (stale temporaries, uncompressed archives) and apply
    /// retention; also run periodically, so quiet components lose expired archives too.
    Startup,
    /// A file was rotated to `path`: compress it, keep `keep` backups of `stem`, retention.
    Rotated {
        path: PathBuf,
        stem: String,
        keep: Option<usize>,
    },
}

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    busy: bool,
    stop: bool,
    stopped: bool,
}

/// The writer's side of the archiver: a job queue and its condition variable.
#[derive(Debug, Default)]
pub(crate) struct ArchiverHandle {
    state: Mutex<State>,
    cv: Condvar,
}

impl ArchiverHandle {
    pub(crate) fn new() -> ArchiverHandle {
        let handle = ArchiverHandle::default();
        handle.push(Job::Startup);
        handle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, job: Job) {
        self.lock().jobs.push_back(job);
        self.cv.notify_all();
    }

    /// Queues a sweep: retention over every archive directory, leftovers compressed.
    pub(crate) fn sweep(&self) {
        self.push(Job::Startup);
    }

    pub(crate) fn rotated(&self, path: PathBuf, stem: String, keep: Option<usize>) {
        self.push(Job::Rotated { path, stem, keep });
    }

    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while !done(&s) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.stopped || (s.jobs.is_empty() && !s.busy))
    }

    pub(crate) fn wait_stopped(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.stopped)
    }
}

pub(crate) fn spawn(shared: Arc<Shared>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("tracekit-archiver".into())
        .spawn(move || run(&shared))
}

fn run(shared: &Shared) {
    struct Stopped<'a>(&'a ArchiverHandle);
    impl Drop for Stopped<'_> {
        fn drop(&mut self) {
            let mut s = self.0.lock();
            s.stopped = true;
            s.busy = false;
            drop(s);
            self.0.cv.notify_all();
        }
    }
    let handle = &shared.archiver;
    let _stopped = Stopped(handle);
    loop {
        let job = {
            let mut s = handle.lock();
            loop {
                if let Some(job) = s.jobs.pop_front() {
                    s.busy = true;
                    // Pruning reads the whole directory: under a burst of rotations only
                    // the last queued job of a file prunes, or the work grows with the
                    // square of the archives (10,000 rotations took minutes).
                    let prune = match &job {
                        Job::Rotated { path, stem, .. } => !s.jobs.iter().any(|j| {
                            matches!(j, Job::Rotated { path: p, stem: st, .. }
                                if st == stem && p.parent() == path.parent())
                        }),
                        Job::Startup => true,
                    };
                    break (job, prune);
                }
                s.busy = false;
                handle.cv.notify_all();
                if s.stop {
                    return;
                }
                s = handle.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let archiver = Archiver { shared };
        match job {
            (Job::Startup, _) => archiver.startup(),
            (Job::Rotated { path, stem, keep }, prune) => {
                archiver.rotated(&path, &stem, keep, prune)
            }
        }
    }
}

struct Archiver<'a> {
    shared: &'a Shared,
}

impl Archiver<'_> {
    fn error(&self) {
        self.shared
            .counters
            .archive_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Archive directories: the real directories directly under `archived/`.
    fn archive_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.shared.config.archive_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    }

    /// The archives in `dir`: regular files with names we make.
    fn archives(&self, dir: &Path) -> Vec<(PathBuf, ArchiveName)> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = ArchiveName::parse(e.file_name().to_str()?)?;
                Some((e.path(), name))
            })
            .collect()
    }

    fn startup(&self) {
        for dir in self.archive_dirs() {
            if let Ok(entries) = fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let stale = e.file_type().is_ok_and(|t| t.is_file())
                        && e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".tmp"))
                            .and_then(ArchiveName::parse)
                            .is_some_and(|a| a.compressed);
                    if stale && fs::remove_file(e.path()).is_err() {
                        self.error();
                    }
                }
            }
            // Retention first: an expired plain archive is deleted, not compressed first.
            self.retention(&dir);
            for (path, name) in self.archives(&dir) {
                if !name.compressed {
                    self.compress(&path);
                }
            }
        }
    }

    /// Compresses a rotated file; with `prune`, applies the backup limit and retention to
    /// its directory (a later job of the same file in the queue does it otherwise).
    fn rotated(&self, path: &Path, stem: &str, keep: Option<usize>, prune: bool) {
        self.compress(path);
        let Some(dir) = path.parent().filter(|_| prune) else {
            return;
        };
        if let Some(keep) = keep {
            self.keep_newest(dir, stem, keep);
        }
        self.retention(dir);
    }

    fn compress(&self, path: &Path) {
        let Compression::Gzip { level } = self.shared.config.compression else {
            return;
        };
        match gzip(path, level, self.shared.config.file_mode) {
            Ok(true) => {
                self.shared
                    .counters
                    .archives_compressed
                    .fetch_add(1, Ordering::Relaxed);
            }
            // Already gone: the backup limit or retention of a later rotation deleted it
            // while its own job waited in the queue. Nothing to compress, nothing failed.
            Ok(false) => {}
            Err(_) => self.error(),
        }
    }

    fn delete(&self, path: &Path) {
        match fs::remove_file(path) {
            Ok(()) => {
                self.shared
                    .counters
                    .archives_deleted
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => self.error(),
        }
    }

    /// Deletes all but the `keep` newest archives of `stem` in `dir`. A `.log` and a
    /// `.log.gz` of the same instant (compression under way) count once.
    fn keep_newest(&self, dir: &Path, stem: &str, keep: usize) {
        let mut archives: Vec<_> = self
            .archives(dir)
            .into_iter()
            .filter(|(_, a)| a.stem == stem)
            .collect();
        archives.sort_by_key(|(_, a)| std::cmp::Reverse(a.micros));
        let mut kept = 0;
        let mut last = None;
        for (path, a) in archives {
            if last != Some(a.micros) {
                kept += 1;
                last = Some(a.micros);
            }
            if kept > keep {
                self.delete(&path);
            }
        }
    }

    /// Deletes the archives in `dir` older than the retention period.
    fn retention(&self, dir: &Path) {
        let now = unix_micros(self.shared.config.clock.now());
        let max_age = self.shared.config.retention.as_micros() as i64;
        for (path, a) in self.archives(dir) {
            if now.saturating_sub(a.micros) > max_age {
                self.delete(&path);
            }
        }
    }
}

/// Compresses `path` to `path.gz` through a temporary file, then removes `path`. Returns
/// false when `path` no longer exists.
fn gzip(path: &Path, level: u32, mode: u32) -> io::Result<bool> {
    let mut gz_name = path.as_os_str().to_owned();
    gz_name.push(".gz");
    let gz = PathBuf::from(gz_name);
    let mut tmp_name = gz.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut src = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let _ = fs::remove_file(&tmp);
    let dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let result = (|| {
        let mut enc = GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, dst),
            flate2::Compression::new(level),
        );
        io::copy(&mut src, &mut enc)?;
        enc.finish()?.into_inner().map_err(|e| e.into_error())?;
        fs::rename(&tmp, &gz)?;
        fs::remove_file(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        let n = ArchiveName::file_name("ab_test", 1_763_296_496_789_123, true);
        assert_eq!(n, "ab_test.20251116T123456.789123Z.log.gz");
        assert_eq!(
            ArchiveName::parse(&n),
            Some(ArchiveName {
                stem: "ab_test".into(),
                micros: 1_763_296_496_789_123,
                compressed: true
            })
        );
        for foreign in [
            "notes.txt",
            "ab_test.log",
            "ab_test.20251116T123456.789123Z.log.gz.tmp",
            "../x.20251116T123456.789123Z.log",
            "AB.20251116T123456.789123Z.log",
            ".20251116T123456.789123Z.log",
        ] {
            assert_eq!(ArchiveName::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn names_sort_by_time() {
        let a = ArchiveName::file_name("x", 1_000_000, false);
        let b = ArchiveName::file_name("x", 1_000_001, false);
        let c = ArchiveName::file_name("x", 86_400_000_000, false);
        assert!(a < b && b < c);
    }
}
