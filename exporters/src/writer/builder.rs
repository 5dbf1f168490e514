//! [`LogWriterBuilder`]: documented defaults, environment overrides, validation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Clock, Compression, Config, DailyFiles, FsyncPolicy, LossPolicy, SystemClock};
use super::{LogWriter, WriterGuard};
use crate::component::normalize_component;
use crate::encoder::redaction::Redactor;
use crate::error::BuildError;

/// The root directory. Default `trace`.
pub const ENV_DIR: &str = "TRACEKIT_DIR";
/// Days an archive is kept. Default 30.
pub const ENV_RETENTION_DAYS: &str = "TRACEKIT_RETENTION_DAYS";
/// `gzip` (default) or `none`.
pub const ENV_COMPRESSION: &str = "TRACEKIT_COMPRESSION";
/// `lossless` (default) or `lossy`.
pub const ENV_LOSS_POLICY: &str = "TRACEKIT_LOSS_POLICY";
/// `never` (default), `error`, or an interval such as `500ms` or `2s`.
pub const ENV_FSYNC: &str = "TRACEKIT_FSYNC";

const MIB: u64 = 1024 * 1024;

/// Builds a [`LogWriter`].
///
/// Each setting is resolved in one order: a value set here, else its environment variable,
/// else the default.
///
/// | setting | default | environment |
/// | --- | --- | --- |
/// | [`root`](Self::root) | `trace` | `TRACEKIT_DIR` |
/// | [`max_file_size`](Self::max_file_size) | 100 MiB | |
/// | [`error_file_size`](Self::error_file_size) | 50 MiB | |
/// | [`performance_file_size`](Self::performance_file_size) | 100 MiB | |
/// | [`max_backups`](Self::max_backups) | 10 per file | |
/// | [`retention_days`](Self::retention_days) | 30 | `TRACEKIT_RETENTION_DAYS` |
/// | [`daily_files`](Self::daily_files) | `app` only | |
/// | [`compression`](Self::compression) | gzip level 1 | `TRACEKIT_COMPRESSION` (`gzip`, `none`) |
/// | [`redact_key`](Self::redact_key) | password, token, secret, api_key | |
/// | [`default_component`](Self::default_component) | `app` | |
/// | [`queue_bytes`](Self::queue_bytes) | 16 MiB | |
/// | [`loss_policy`](Self::loss_policy) | lossless | `TRACEKIT_LOSS_POLICY` (`lossless`, `lossy`) |
/// | [`file_mode`](Self::file_mode) / [`dir_mode`](Self::dir_mode) | `0o640` / `0o750` | |
/// | [`fsync`](Self::fsync) | never | `TRACEKIT_FSYNC` (`never`, `error`, `500ms`, `2s`) |
/// | [`reopen_check_interval`](Self::reopen_check_interval) | 500 ms | |
/// | [`close_idle_files_after`](Self::close_idle_files_after) | 60 s | |
///
/// Memory is bounded: queued records take at most `queue_bytes` (records being written count
/// until written), records longer than a quarter of it at most as much again (or one record
/// alone, whatever its length), plus 1 MiB of write buffer per open file.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{DailyFiles, LogWriter, LossPolicy};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, _guard) = LogWriter::builder()
///     .root(dir.path())
///     .max_file_size(10 * 1024 * 1024)
///     .daily_files(DailyFiles::All)
///     .redact_key("ssn")
///     .loss_policy(LossPolicy::Lossless)
///     .build()?;
/// # let _ = writer;
/// # Ok::<(), tracekit_exporters::BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct LogWriterBuilder {
    root: Option<PathBuf>,
    max_file_size: Option<u64>,
    error_file_size: Option<u64>,
    performance_file_size: Option<u64>,
    max_backups: Option<usize>,
    retention_days: Option<u32>,
    daily: Option<DailyFiles>,
    compression: Option<Compression>,
    redactor: Option<Redactor>,
    extra_redact: Vec<String>,
    default_component: Option<String>,
    queue_bytes: Option<usize>,
    loss_policy: Option<LossPolicy>,
    file_mode: Option<u32>,
    dir_mode: Option<u32>,
    fsync: Option<FsyncPolicy>,
    clock: Option<Arc<dyn Clock>>,
    reopen_check: Option<Duration>,
    close_idle: Option<Duration>,
}

impl LogWriterBuilder {
    /// The root directory; logs go to `<root>/logs`, archives to `<root>/archived`.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Size at which a component's main (and daily) log rotates, in bytes.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = Some(bytes);
        self
    }

    /// Size at which `errors/errors.log` rotates, in bytes.
    pub fn error_file_size(mut self, bytes: u64) -> Self {
        self.error_file_size = Some(bytes);
        self
    }

    /// Size at which `performance/performance.log` rotates, in bytes.
    pub fn performance_file_size(mut self, bytes: u64) -> Self {
        self.performance_file_size = Some(bytes);
        self
    }

    /// Rotated files kept per log file; older ones are deleted.
    pub fn max_backups(mut self, n: usize) -> Self {
        self.max_backups = Some(n);
        self
    }

    /// Archives older than this many days are deleted, at start-up and after rotations.
    pub fn retention_days(mut self, days: u32) -> Self {
        self.retention_days = Some(days);
        self
    }

    /// Which components also get a daily file.
    pub fn daily_files(mut self, daily: DailyFiles) -> Self {
        self.daily = Some(daily);
        self
    }

    /// Whether archives are compressed.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Also redact keys containing `needle` (any case), on top of the defaults.
    pub fn redact_key(mut self, needle: impl Into<String>) -> Self {
        self.extra_redact.push(needle.into());
        self
    }

    /// Replaces the whole redaction list, the defaults included. Keys added with
    /// [`redact_key`](Self::redact_key) still apply on top.
    pub fn replace_redaction(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// The component of records that name none (normalised).
    pub fn default_component(mut self, component: impl Into<String>) -> Self {
        self.default_component = Some(component.into());
        self
    }

    /// Bytes of encoded records that may wait for the writer thread (at least 64 KiB, at
    /// most 1 GiB; default 16 MiB), counted until they are written. Records longer than a
    /// quarter of it have a budget of this size of their own (a longer one waits alone), so
    /// shorter records never wait for them.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = Some(bytes);
        self
    }

    /// What a full queue does.
    pub fn loss_policy(mut self, policy: LossPolicy) -> Self {
        self.loss_policy = Some(policy);
        self
    }

    /// Permission bits of new files (before the umask).
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = Some(mode);
        self
    }

    /// Permission bits of new directories (before the umask).
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }

    /// When to `fdatasync`.
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = Some(policy);
        self
    }

    /// The clock for rotation and retention (tests inject one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How often the writer checks that its open files are still the ones at their paths
    /// (a file deleted or renamed underneath is reopened). Default 500 ms.
    pub fn reopen_check_interval(mut self, every: Duration) -> Self {
        self.reopen_check = Some(every);
        self
    }

    /// Files not written for this long are closed, and reopened by their next record, so
    /// components that went quiet hold no file descriptor. Default 60 s.
    pub fn close_idle_files_after(mut self, idle: Duration) -> Self {
        self.close_idle = Some(idle);
        self
    }

    /// Resolves every setting (code, then environment, then default) and validates it.
    pub(crate) fn resolve(self) -> Result<Config, BuildError> {
        let root = match self.root {
            Some(r) => r,
            None => env_var(ENV_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("trace")),
        };
        let retention_days = match self.retention_days {
            Some(d) => d,
            None => parse_env(ENV_RETENTION_DAYS, "a whole number of days", |s| {
                s.parse().ok()
            })?
            .unwrap_or(30),
        };
        let compression = match self.compression {
            Some(c) => c,
            None => parse_env(ENV_COMPRESSION, "gzip or none", |s| match s {
                "gzip" => Some(Compression::default()),
                "none" => Some(Compression::None),
                _ => None,
            })?
            .unwrap_or_default(),
        };
        let loss_policy = match self.loss_policy {
            Some(p) => p,
            None => parse_env(ENV_LOSS_POLICY, "lossless or lossy", |s| match s {
                "lossless" => Some(LossPolicy::Lossless),
                "lossy" => Some(LossPolicy::Lossy),
                _ => None,
            })?
            .unwrap_or_default(),
        };
        let fsync = match self.fsync {
            Some(p) => p,
            None => parse_env(
                ENV_FSYNC,
                "never, error, or a duration such as 500ms or 2s",
                parse_fsync,
            )?
            .unwrap_or_default(),
        };
        let mut redactor = self.redactor.unwrap_or_default();
        for k in &self.extra_redact {
            redactor.add(k);
        }
        let default_component =
            normalize_component(self.default_component.as_deref().unwrap_or("app")).into_owned();
        let daily = match self.daily.unwrap_or_default() {
            DailyFiles::Components(c) => DailyFiles::Components(
                c.iter()
                    .map(|c| normalize_component(c).into_owned())
                    .collect(),
            ),
            other => other,
        };
        let config = Config {
            root,
            max_file_size: self.max_file_size.unwrap_or(100 * MIB),
            error_file_size: self.error_file_size.unwrap_or(50 * MIB),
            performance_file_size: self.performance_file_size.unwrap_or(100 * MIB),
            max_backups: self.max_backups.unwrap_or(10),
            retention: Duration::from_secs(u64::from(retention_days) * 86_400),
            daily,
            compression,
            redactor,
            default_component,
            queue_bytes: self.queue_bytes.unwrap_or(16 * MIB as usize),
            loss_policy,
            file_mode: self.file_mode.unwrap_or(0o640),
            dir_mode: self.dir_mode.unwrap_or(0o750),
            fsync,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            reopen_check: self.reopen_check.unwrap_or(Duration::from_millis(500)),
            close_idle: self.close_idle.unwrap_or(Duration::from_secs(60)),
        };
        validate(&config)?;
        Ok(config)
    }

    /// Validates the settings, creates `<root>/logs` and `<root>/archived`, starts the
    /// writer and archiver threads and applies retention to existing archives.
    ///
    /// The [`WriterGuard`] flushes and stops the writer when dropped; keep it alive for as
    /// long as records are written.
    pub fn build(self) -> Result<(LogWriter, WriterGuard), BuildError> {
        LogWriter::start(self.resolve()?)
    }
}

fn validate(c: &Config) -> Result<(), BuildError> {
    let invalid = |setting, reason: &str| {
        Err(BuildError::Invalid {
            setting,
            reason: reason.to_owned(),
        })
    };
    if c.root.as_os_str().is_empty() {
        return invalid("root", "the root directory is empty");
    }
    for (setting, size) in [
        ("max_file_size", c.max_file_size),
        ("error_file_size", c.error_file_size),
        ("performance_file_size", c.performance_file_size),
    ] {
        if size < 1024 {
            return invalid(setting, "must be at least 1024 bytes");
        }
    }
    if c.queue_bytes < 64 * 1024 {
        return invalid("queue_bytes", "must be at least 64 KiB");
    }
    if c.queue_bytes > 1 << 30 {
        return invalid("queue_bytes", "must be at most 1 GiB");
    }
    if c.file_mode > 0o777 || c.dir_mode > 0o777 {
        return invalid(
            "file_mode/dir_mode",
            "permission bits must be at most 0o777",
        );
    }
    if c.dir_mode & 0o700 != 0o700 {
        return invalid("dir_mode", "the owner needs rwx on directories (0o700)");
    }
    if c.file_mode & 0o600 != 0o600 {
        return invalid("file_mode", "the owner needs rw on files (0o600)");
    }
    if let Compression::Gzip { level } = c.compression {
        if level > 9 {
            return invalid("compression", "gzip level must be 0-9");
        }
    }
    if let FsyncPolicy::Interval(d) = c.fsync {
        if d.is_zero() {
            return invalid("fsync", "the interval must be positive");
        }
    }
    if c.reopen_check.is_zero() {
        return invalid("reopen_check_interval", "must be positive");
    }
    Ok(())
}

fn env_var(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn parse_env<T>(
    var: &'static str,
    reason: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, BuildError> {
    match env_var(var) {
        None => Ok(None),
        Some(value) => match parse(value.trim().to_ascii_lowercase().as_str()) {
            Some(v) => Ok(Some(v)),
            None => Err(BuildError::Env { var, value, reason }),
        },
    }
}

fn parse_fsync(s: &str) -> Option<FsyncPolicy> {
    match s {
        "never" => Some(FsyncPolicy::Never),
        "error" => Some(FsyncPolicy::OnError),
        _ => {
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
            let n: u64 = num.parse().ok()?;
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                _ => return None,
            };
            (!d.is_zero()).then_some(FsyncPolicy::Interval(d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = LogWriterBuilder::default().root("x").resolve().unwrap();
        assert_eq!(c.max_file_size, 100 * MIB);
        assert_eq!(c.error_file_size, 50 * MIB);
        assert_eq!(c.max_backups, 10);
        assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.file_mode, 0o640);
        assert_eq!(c.dir_mode, 0o750);
        assert_eq!(c.queue_bytes, 16 * MIB as usize);
        assert!(c.daily.includes("app") && !c.daily.includes("ranking"));
        assert!(c.redactor.is_redacted("API_KEY"));
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        let err = LogWriterBuilder::default()
            .root("x")
            .max_file_size(10)
            .resolve()
            .unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::Invalid {
                    setting: "max_file_size",
                    ..
                }
            ),
            "{err}"
        );
        let err = LogWriterBuilder::default()
            .root("x")
            .dir_mode(0o400)
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("dir_mode"));
        for bytes in [1024, (1 << 30) + 1] {
            let err = LogWriterBuilder::default()
                .root("x")
                .queue_bytes(bytes)
                .resolve()
                .unwrap_err();
            assert!(err.to_string().contains("queue_bytes"), "{err}");
        }
    }

    #[test]
    fn fsync_values_parse() {
        assert_eq!(parse_fsync("error"), Some(FsyncPolicy::OnError));
        assert_eq!(
            parse_fsync("250ms"),
            Some(FsyncPolicy::Interval(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_fsync("2s"),
            Some(FsyncPolicy::Interval(Duration::from_secs(2)))
        );
        assert_eq!(parse_fsync("0s"), None);
        assert_eq!(parse_fsync("soon"), None);
    }

    #[test]
    fn redaction_extends_or_replaces() {
        let c = LogWriterBuilder::default()
            .root("x")
            .redact_key("ssn")
            .resolve()
            .unwrap();
        assert!(c.redactor.is_redacted("user_ssn") && c.redactor.is_redacted("token"));
        let c = LogWriterBuilder::default()
            .root("x")
            .replace_redaction(Redactor::new(["pin"]))
            .resolve()
            .unwrap();
        assert!(c.redactor.is_redacted("PIN") && !c.redactor.is_redacted("token"));
    }
}
