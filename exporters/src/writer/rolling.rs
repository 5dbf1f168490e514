//! One log file on disk: batched appends, size and daily rotation, recovery from I/O
//! failures, and detection of a file deleted or renamed underneath.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::archive::ArchiveName;
use super::config::FsyncPolicy;
use super::context::{Ctx, Warning};
use crate::encoder::timestamp::{days_from_civil, utc_day};

/// A file's pending bytes are written once they reach this size, even mid-batch.
const FLUSH_AT: usize = 1024 * 1024;
/// After a failure, the file is reopened at most this often.
const RETRY_EVERY: Duration = Duration::from_millis(100);
/// After a failed rotation, the next attempt waits this long.
const ROTATE_RETRY_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// The UTC day (days since the epoch) of the record at the start of `file`, which begins
/// `{"timestamp":"YYYY-MM-DD` when the writer wrote it.
fn first_record_day(file: &File) -> Option<i64> {
    let mut head = [0u8; 24];
    file.read_exact_at(&mut head, 0).ok()?;
    record_day(&head)
}

/// The UTC day of a line starting `{"timestamp":"YYYY-MM-DD`.
fn record_day(head: &[u8]) -> Option<i64> {
    let date = head.strip_prefix(b"{\"timestamp\":\"")?.get(..10)?;
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        date[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(i64::from(year), month, day))
}

#[derive(Debug)]
struct Failure {
    since_micros: i64,
    error: String,
    lost_records: u64,
    lost_bytes: u64,
}

/// What kind of file this is, which decides its name, cap and backups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Main,
    Daily,
    Errors,
    Performance,
}

#[derive(Debug)]
pub(crate) struct RollingFile {
    kind: FileKind,
    /// The component whose main file gets this file's warnings.
    pub component: String,
    stem: String,
    path: PathBuf,
    dir: PathBuf,
    archive_dir: PathBuf,
    cap: u64,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    size: u64,
    day: i64,
    pending: Vec<u8>,
    /// End of each pending record, and whether it counts as a written record.
    ends: Vec<(usize, bool)>,
    last_stamp: i64,
    failure: Option<Failure>,
    retry_at: Option<Instant>,
    rotate_retry_at: Option<Instant>,
    /// Holds an ERROR record not yet synced.
    pub needs_sync: bool,
    /// Written but not yet synced.
    pub dirty: bool,
    written_since_check: u64,
    check_since_micros: i64,
    /// When the file was last written, to close files that have gone quiet.
    last_write: Instant,
}

impl RollingFile {
    pub(crate) fn new(
        ctx: &Ctx<'_>,
        kind: FileKind,
        dir_name: &str,
        component: &str,
    ) -> RollingFile {
        let config = &ctx.shared.config;
        let (stem, cap) = match kind {
            FileKind::Main => (dir_name.to_owned(), config.max_file_size),
            FileKind::Daily => (format!("{dir_name}_daily"), config.max_file_size),
            FileKind::Errors => (dir_name.to_owned(), config.error_file_size),
            FileKind::Performance => (dir_name.to_owned(), config.performance_file_size),
        };
        let dir = config.logs_dir().join(dir_name);
        RollingFile {
            kind,
            component: component.to_owned(),
            path: dir.join(format!("{stem}.log")),
            archive_dir: config.archive_dir().join(dir_name),
            dir,
            stem,
            cap,
            file: None,
            identity: None,
            size: 0,
            day: ctx.today,
            pending: Vec::new(),
            ends: Vec::new(),
            last_stamp: i64::MIN,
            failure: None,
            retry_at: None,
            rotate_retry_at: None,
            needs_sync: false,
            dirty: false,
            written_since_check: 0,
            check_since_micros: ctx.now_micros,
            last_write: Instant::now(),
        }
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Adds a record; writes when the buffer is large, rotates first when the record would
    /// take the file past its cap (or past midnight, for a daily file).
    /// True when appending a line of `len` bytes may write to the disk (a flush or a
    /// rotation).
    pub(crate) fn writes_on_append(&self, len: usize) -> bool {
        let pending = self.pending.len() + len;
        pending >= FLUSH_AT || self.size + pending as u64 > self.cap
    }

    pub(crate) fn append(&mut self, ctx: &mut Ctx<'_>, line: &[u8], counted: bool, error: bool) {
        if self.file.is_none() && self.may_retry() {
            self.open(ctx);
        }
        if self.file.is_some() {
            let used = self.size + self.pending.len() as u64;
            let full = used > 0 && used + line.len() as u64 > self.cap;
            let new_day = self.kind == FileKind::Daily && self.day != ctx.today;
            if new_day && used == 0 {
                self.day = ctx.today;
            } else if (full || new_day) && self.rotate_retry_at.is_none_or(|t| Instant::now() >= t)
            {
                self.flush(ctx);
                self.rotate(ctx);
            }
        }
        self.pending.extend_from_slice(line);
        self.ends.push((self.pending.len(), counted));
        self.needs_sync |= error;
        if self.pending.len() >= FLUSH_AT {
            self.flush(ctx);
        }
    }

    fn may_retry(&self) -> bool {
        self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// Opens (creating directories) and repairs a torn tail; on failure, records it.
    fn open(&mut self, ctx: &mut Ctx<'_>) -> bool {
        match self.try_open(ctx) {
            Ok(()) => true,
            Err(e) => {
                self.fail(ctx, "open", e);
                false
            }
        }
    }

    fn try_open(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        let config = &ctx.shared.config;
        create_dir(&self.dir, config.dir_mode)?;
        // O_NOFOLLOW guards the file name; the component directory must not be a link either.
        if fs::symlink_metadata(&self.dir)?.file_type().is_symlink() {
            return Err(io::Error::other(
                "the component directory is a symlink; not following it",
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(config.file_mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let mut size = meta.len();
        if size > 0 {
            // A crash can leave the last record torn: start ours on a line of its own.
            let mut last = [0u8];
            file.read_at(&mut last, size - 1)?;
            if last[0] != b'\n' {
                (&file).write_all(b"\n")?;
                size += 1;
            }
            if self.kind == FileKind::Daily {
                // The day the file was started, by the writer's clock: its first record's
                // date. The mtime (the system clock's) only for a file that does not start
                // with a record; with an injected clock it can be any day.
                self.day = first_record_day(&file)
                    .unwrap_or_else(|| utc_day(meta.mtime().saturating_mul(1_000_000)));
            }
        } else {
            self.day = ctx.today;
        }
        self.identity = Some((meta.dev(), meta.ino()));
        self.size = size;
        self.file = Some(file);
        self.retry_at = None;
        Ok(())
    }

    /// Marks the file failed: counted, closed, reopened later.
    fn fail(&mut self, ctx: &mut Ctx<'_>, op: &str, e: io::Error) {
        ctx.shared
            .counters
            .io_errors
            .fetch_add(1, Ordering::Relaxed);
        self.file = None;
        self.identity = None;
        self.retry_at = Some(Instant::now() + RETRY_EVERY);
        if self.failure.is_none() {
            self.failure = Some(Failure {
                since_micros: ctx.now_micros,
                error: format!("{op} {}: {e}", self.path.display()),
                lost_records: 0,
                lost_bytes: 0,
            });
        }
    }

    /// Counts the pending records as lost and drops them.
    fn lose_pending(&mut self, ctx: &mut Ctx<'_>) {
        let counted = self.ends.iter().filter(|(_, c)| *c).count() as u64;
        ctx.shared
            .counters
            .lost
            .fetch_add(counted, Ordering::Relaxed);
        if let Some(f) = &mut self.failure {
            f.lost_records += self.ends.len() as u64;
            f.lost_bytes += self.pending.len() as u64;
        }
        self.pending.clear();
        self.ends.clear();
    }

    /// Writes the pending records in one `write` call (more only for short writes).
    pub(crate) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if self.pending.is_empty() {
            return;
        }
        if self.file.is_none() && !(self.may_retry() && self.open(ctx)) {
            self.lose_pending(ctx);
            return;
        }
        let file = self.file.as_ref().expect("opened above");
        let mut done = 0;
        let error = loop {
            if done == self.pending.len() {
                break None;
            }
            match (&*file).write(&self.pending[done..]) {
                Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        // Keep the records written whole; cut a torn one off so none is split mid-file.
        let complete = self.ends.partition_point(|&(end, _)| end <= done);
        let keep = complete.checked_sub(1).map_or(0, |i| self.ends[i].0);
        if done > keep {
            let _ = file.set_len(self.size + keep as u64);
        }
        let written = self.ends[..complete].iter().filter(|(_, c)| *c).count() as u64;
        let counters = &ctx.shared.counters;
        counters.written.fetch_add(written, Ordering::Relaxed);
        counters
            .bytes_written
            .fetch_add(keep as u64, Ordering::Relaxed);
        self.size += keep as u64;
        self.written_since_check += written;
        self.dirty |= keep > 0;
        self.last_write = Instant::now();
        self.pending.drain(..keep);
        self.ends.drain(..complete);
        for end in &mut self.ends {
            end.0 -= keep;
        }
        match error {
            None => {
                if let Some(f) = self.failure.take() {
                    self.report_recovery(ctx, f);
                }
            }
            Some(e) => {
                self.fail(ctx, "write", e);
                self.lose_pending(ctx);
            }
        }
    }

    fn report_recovery(&self, ctx: &mut Ctx<'_>, f: Failure) {
        ctx.warnings.push(Warning {
            component: self.component.clone(),
            message: format!(
                "log writing recovered: {} records ({} bytes) could not be written to {}",
                f.lost_records,
                f.lost_bytes,
                self.path.display()
            ),
            path: self.path.clone(),
            error: f.error,
            since_micros: f.since_micros,
            lost_records: f.lost_records,
            lost_bytes: f.lost_bytes,
        });
    }

    /// Moves the file to the archive directory under a unique, sortable name and hands it to
    /// the archiver. The next record opens a new file.
    fn rotate(&mut self, ctx: &mut Ctx<'_>) {
        self.file = None;
        self.identity = None;
        match self.archive(ctx) {
            Ok(archived) => {
                if let Some(path) = archived {
                    ctx.shared
                        .counters
                        .rotations
                        .fetch_add(1, Ordering::Relaxed);
                    let keep =
                        (self.kind != FileKind::Daily).then_some(ctx.shared.config.max_backups);
                    ctx.shared.archiver.rotated(path, self.stem.clone(), keep);
                }
                self.size = 0;
                self.day = ctx.today;
                self.rotate_retry_at = None;
                self.open(ctx);
            }
            Err(e) => {
                ctx.shared
                    .counters
                    .io_errors
                    .fetch_add(1, Ordering::Relaxed);
                self.rotate_retry_at = Some(Instant::now() + ROTATE_RETRY_EVERY);
                ctx.warnings.push(Warning {
                    component: self.component.clone(),
                    message: format!(
                        "could not rotate {}; writing on past its size limit",
                        self.path.display()
                    ),
                    path: self.path.clone(),
                    error: e.to_string(),
                    since_micros: ctx.now_micros,
                    lost_records: 0,
                    lost_bytes: 0,
                });
                self.open(ctx);
            }
        }
    }

    fn archive(&mut self, ctx: &mut Ctx<'_>) -> io::Result<Option<PathBuf>> {
        let meta = match fs::symlink_metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_file() {
            return Err(io::Error::other(
                "not a regular file (a symlink is never rotated)",
            ));
        }
        if meta.len() == 0 {
            return Ok(None);
        }
        create_dir(&self.archive_dir, ctx.shared.config.dir_mode)?;
        // As for the live file's directory: a planted link must not carry archives (and the
        // archiver's compression) out of the root.
        if fs::symlink_metadata(&self.archive_dir)?
            .file_type()
            .is_symlink()
        {
            return Err(io::Error::other(
                "the archive directory is a symlink; not following it",
            ));
        }
        // Unique even for many rotations within one microsecond, and across restarts.
        let mut stamp = ctx.now_micros.max(self.last_stamp.saturating_add(1));
        let target = loop {
            let plain = self
                .archive_dir
                .join(ArchiveName::file_name(&self.stem, stamp, false));
            let gz = self
                .archive_dir
                .join(ArchiveName::file_name(&self.stem, stamp, true));
            if fs::symlink_metadata(&plain).is_err() && fs::symlink_metadata(&gz).is_err() {
                break plain;
            }
            stamp += 1;
        };
        self.last_stamp = stamp;
        match fs::rename(&self.path, &target) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                // The archive lives on another filesystem: copy, then remove.
                fs::copy(&self.path, &target)?;
                fs::remove_file(&self.path)?;
            }
            Err(e) => return Err(e),
        }
        Ok(Some(target))
    }

    /// Closes the file when nothing was written for `idle` (it reopens on the next record),
    /// so components that went quiet do not hold file descriptors.
    pub(crate) fn close_if_idle(&mut self, ctx: &mut Ctx<'_>, idle: Duration) {
        if self.file.is_some() && self.pending.is_empty() && self.last_write.elapsed() >= idle {
            if self.dirty && ctx.shared.config.fsync != FsyncPolicy::Never {
                self.sync(ctx);
            }
            self.file = None;
            self.identity = None;
        }
    }

    /// Reopens the file if it was deleted or replaced underneath the writer.
    pub(crate) fn check_identity(&mut self, ctx: &mut Ctx<'_>) {
        let since = std::mem::replace(&mut self.check_since_micros, ctx.now_micros);
        let written = std::mem::take(&mut self.written_since_check);
        let (Some(identity), Some(file)) = (self.identity, &self.file) else {
            return;
        };
        let current = fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current == Some(identity) {
            return;
        }
        let deleted = file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
        ctx.shared
            .counters
            .io_errors
            .fetch_add(1, Ordering::Relaxed);
        let lost = if deleted { written } else { 0 };
        ctx.shared.counters.lost.fetch_add(lost, Ordering::Relaxed);
        ctx.warnings.push(Warning {
            component: self.component.clone(),
            message: if deleted {
                format!(
                    "{} was deleted underneath the writer; reopened it; {written} records written since then are lost",
                    self.path.display()
                )
            } else {
                format!("{} was moved or replaced underneath the writer; reopened it", self.path.display())
            },
            path: self.path.clone(),
            error: if deleted { "file deleted".into() } else { "file moved or replaced".into() },
            since_micros: since,
            lost_records: lost,
            lost_bytes: 0,
        });
        self.file = None;
        self.identity = None;
        self.retry_at = None;
        self.open(ctx);
    }

    /// `fdatasync` if written since the last sync.
    pub(crate) fn sync(&mut self, ctx: &mut Ctx<'_>) {
        if let (true, Some(file)) = (self.dirty, &self.file) {
            match file.sync_data() {
                Ok(()) => {
                    ctx.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.fail(ctx, "sync", e),
            }
        }
        self.dirty = false;
        self.needs_sync = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_day_reads_the_leading_timestamp_only() {
        let line = b"{\"timestamp\":\"2025-11-16T12:34:56.789123Z\",\"level\":\"INFO\"}\n";
        assert_eq!(record_day(line), Some(20_408));
        for bad in [
            &b"{\"timestamp\":\"2025-13-16T"[..],
            b"{\"timestamp\":\"2025-1x-16T",
            b"{\"timestamp\":\"20\xc3\xa95-11-16T",
            b"{\"timestamp\":\"2025-11",
            b"{\"level\":\"INFO\",\"timestamp\":\"2025-11-16T",
            b"",
        ] {
            assert_eq!(record_day(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
