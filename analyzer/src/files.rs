//! Which files the writer produced, and what each one holds.
//!
//! Under the root (default `trace/`):
//!
//! | file | [`FileRole`] |
//! | --- | --- |
//! | `logs/<c>/<c>.log`, `archived/<c>/<c>.<stamp>.log[.gz]` | [`Main`](FileRole::Main) |
//! | `logs/<c>/<c>_daily.log`, `archived/<c>/<c>_daily.<stamp>.log[.gz]` | [`Daily`](FileRole::Daily) |
//! | `logs/errors/…`, `archived/errors/…` | [`Errors`](FileRole::Errors) |
//! | `logs/performance/…`, `archived/performance/…` | [`Performance`](FileRole::Performance) |
//!
//! Every record is in exactly one `Main` file of its component. `Daily`, `Errors` and
//! `Performance` files hold copies, so queries that count records read `Main` files only, and
//! use `Errors` as an index of the error records. A component with no `Main` file at all (its
//! main files deleted by hand) is read from its `Daily` files instead, so nothing is lost and
//! nothing counted twice. While the archiver compresses, `x.log` and `x.log.gz` can both exist
//! for a moment: the `.gz` is then ignored. Symlinks and other files are ignored.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What a log file holds.
///
/// ```
/// use tracekit_analyzer::FileRole;
/// assert!(FileRole::Main.is_primary() && !FileRole::Errors.is_primary());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// A component's main file: every record of the component, once.
    Main,
    /// A component's daily file: copies of the main file's records.
    Daily,
    /// `errors/`: copies of every `ERROR` and `CRITICAL` record.
    Errors,
    /// `performance/`: copies of every timing record.
    Performance,
}

impl FileRole {
    /// True for the role that holds each record once ([`Main`](Self::Main)).
    ///
    /// ```
    /// # use tracekit_analyzer::FileRole;
    /// assert!(!FileRole::Daily.is_primary());
    /// ```
    pub fn is_primary(self) -> bool {
        self == FileRole::Main
    }
}

/// One log file found under the root.
///
/// ```
/// use tracekit_analyzer::LogAnalyzer;
/// # let dir = tempfile::tempdir().unwrap();
/// # std::fs::create_dir_all(dir.path().join("logs/ranking")).unwrap();
/// # std::fs::write(dir.path().join("logs/ranking/ranking.log"), "").unwrap();
/// let files = LogAnalyzer::new(dir.path()).files();
/// assert_eq!(files[0].component, "ranking");
/// assert_eq!(files[0].display_name(), "ranking/ranking.log");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogFile {
    /// The full path.
    pub path: PathBuf,
    /// The directory it stands in (`errors` and `performance` included).
    pub component: String,
    /// What it holds.
    pub role: FileRole,
    /// A rotated file under `archived/`.
    pub archived: bool,
    /// Gzip-compressed (`.log.gz`).
    pub compressed: bool,
    /// Its size on disk, in bytes.
    pub size: u64,
}

impl LogFile {
    /// `<component>/<file name>` (prefixed with `archived/` for archives), the short name
    /// used in reports; see the example on [`LogFile`].
    pub fn display_name(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if self.archived {
            format!("archived/{}/{name}", self.component)
        } else {
            format!("{}/{name}", self.component)
        }
    }
}

/// Every log file under `root/logs` and `root/archived`, in a stable order (live before
/// archived, then by path).
pub(crate) fn discover(root: &Path) -> Vec<LogFile> {
    let mut files = Vec::new();
    for (sub, archived) in [("logs", false), ("archived", true)] {
        let Ok(dirs) = fs::read_dir(root.join(sub)) else {
            continue;
        };
        let mut dirs: Vec<_> = dirs
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(name, _)| !name.starts_with('.'))
            .collect();
        dirs.sort();
        for (component, dir) in dirs {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut found: Vec<(String, u64)> = entries
                .flatten()
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    let is_file = e.file_type().ok()?.is_file();
                    is_file.then(|| Some((e.file_name().into_string().ok()?, meta.len())))?
                })
                .collect();
            found.sort();
            let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
            for (name, size) in &found {
                let Some((role, compressed)) = classify(&component, name, archived) else {
                    continue;
                };
                if compressed && names.contains(&name[..name.len() - 3]) {
                    continue; // compression under way: the plain file is complete
                }
                files.push(LogFile {
                    path: dir.join(name),
                    component: component.clone(),
                    role,
                    archived,
                    compressed,
                    size: *size,
                });
            }
        }
    }
    files
}

/// The role of `name` in directory `component`, and whether it is gzip-compressed.
fn classify(component: &str, name: &str, archived: bool) -> Option<(FileRole, bool)> {
    let (base, compressed) = match name.strip_suffix(".gz") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let stem = base.strip_suffix(".log")?;
    let stem = if archived {
        // `<stem>.<YYYYMMDDTHHMMSS.ffffffZ>`: a dot and 23 bytes of stamp.
        let cut = stem.len().checked_sub(24)?;
        let (s, stamp) = (stem.get(..cut)?, stem.get(cut..)?);
        let ok = stamp.starts_with('.') && stamp.ends_with('Z') && stamp.as_bytes()[9] == b'T';
        if !ok {
            return None;
        }
        s
    } else {
        stem
    };
    let role = match component {
        "errors" => FileRole::Errors,
        "performance" => FileRole::Performance,
        _ if stem == component => FileRole::Main,
        _ if stem.strip_suffix("_daily") == Some(component) => FileRole::Daily,
        // Some other `.log` a user put here: records, read once like a main file.
        _ => FileRole::Main,
    };
    Some((role, compressed))
}

/// The files that hold each record of the components once: main files, and the daily files
/// of components that have no main file.
pub(crate) fn primary(files: &[LogFile]) -> Vec<usize> {
    let with_main: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.role == FileRole::Main)
        .map(|f| f.component.as_str())
        .collect();
    (0..files.len())
        .filter(|&i| match files[i].role {
            FileRole::Main => true,
            FileRole::Daily => !with_main.contains(files[i].component.as_str()),
            _ => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_writer_names() {
        assert_eq!(
            classify("app", "app.log", false),
            Some((FileRole::Main, false))
        );
        assert_eq!(
            classify("app", "app_daily.log", false),
            Some((FileRole::Daily, false))
        );
        assert_eq!(
            classify("app", "app_daily.20251116T123456.789123Z.log.gz", true),
            Some((FileRole::Daily, true))
        );
        assert_eq!(
            classify("ranking", "ranking.20251116T123456.789123Z.log", true),
            Some((FileRole::Main, false))
        );
        assert_eq!(
            classify("errors", "errors.20251116T123456.789123Z.log.gz", true),
            Some((FileRole::Errors, true))
        );
        assert_eq!(classify("app", "app.log.gz.tmp", true), None);
        assert_eq!(classify("app", "notes.txt", false), None);
    }
}
