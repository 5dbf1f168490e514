//! The scanner: whole lines out of many files, in parallel, with bounded memory.
//!
//! Plain files are cut into chunks of [`CHUNK`] bytes; a chunk owns the lines that *start*
//! in it, so chunks of one file are scanned independently and every line is seen once. Gzip
//! files are one unit each (a gzip stream cannot be entered mid-way). Workers
//! (`std::thread::scope`) take units from a shared counter, largest first, and hand blocks of
//! whole `\n`-terminated lines to the query, which searches them with memchr/memmem before it
//! parses anything.
//!
//! The scanner itself skips and counts two kinds of bad input: a line longer than the line
//! limit (never buffered whole: it is read past) and a last line without its `\n` (a torn
//! write, or a write in progress). A file that cannot be read is reported, and the run goes on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use super::files::LogFile;

/// Plain files are scanned in chunks of this size.
pub(crate) const CHUNK: u64 = 8 * 1024 * 1024;
/// Bytes read at a time: small enough that the kernel's copy lands in, and the query then
/// searches, a buffer that stays in L2 (1 MiB reads cost ~15% more CPU time on the
/// performance query; 64 KiB reads, more syscalls), and fewer pages to fault in for a small
/// file.
const READ_BLOCK: usize = 256 * 1024;

/// Why a line was skipped.
///
/// ```
/// use tracekit_analyzer::SkipReason;
/// assert_eq!(SkipReason::Malformed.to_string(), "malformed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not a JSON object of the record contract.
    Malformed,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Longer than the line limit.
    TooLong,
    /// Nested deeper than the depth limit.
    TooDeep,
    /// The last line of a file, without its newline.
    Partial,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::Malformed => "malformed",
            SkipReason::InvalidUtf8 => "invalid UTF-8",
            SkipReason::TooLong => "too long",
            SkipReason::TooDeep => "too deeply nested",
            SkipReason::Partial => "partial last",
        })
    }
}

/// Skipped lines of one file, for one reason.
///
/// ```
/// use tracekit_analyzer::{SkipReason, Skipped};
/// let s = Skipped { file: "candidate/candidate.log".into(), reason: SkipReason::Malformed, lines: 3 };
/// assert_eq!(s.to_string(), "skipped 3 malformed lines in candidate/candidate.log");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The file, as `<component>/<name>` (or `archived/<component>/<name>`).
    pub file: String,
    /// Why.
    pub reason: SkipReason,
    /// How many lines.
    pub lines: u64,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.lines == 1 { "line" } else { "lines" };
        write!(
            f,
            "skipped {} {} {plural} in {}",
            self.lines, self.reason, self.file
        )
    }
}

/// A file that could not be read (or only partly: a corrupt gzip stream).
///
/// ```
/// use tracekit_analyzer::FileError;
/// let e = FileError { file: "x/x.log".into(), error: "permission denied".into() };
/// assert_eq!(e.to_string(), "x/x.log: permission denied");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileError {
    /// The file.
    pub file: String,
    /// What went wrong.
    pub error: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.error)
    }
}

/// What a query read: files, bytes, skipped lines and unreadable files.
///
/// ```
/// use tracekit_analyzer::ScanReport;
/// let r = ScanReport::default();
/// assert_eq!(r.skipped_lines(), 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// Files read.
    pub files: usize,
    /// Bytes read (on disk: compressed bytes for gzip files).
    pub bytes: u64,
    /// Lines skipped, per file and reason, in file order.
    pub skipped: Vec<Skipped>,
    /// Files that could not be read.
    pub errors: Vec<FileError>,
}

impl ScanReport {
    /// All skipped lines.
    ///
    /// ```
    /// use tracekit_analyzer::{ScanReport, SkipReason, Skipped};
    /// let s = |lines| Skipped { file: "a/a.log".into(), reason: SkipReason::Partial, lines };
    /// let r = ScanReport { skipped: vec![s(1), s(2)], ..ScanReport::default() };
    /// assert_eq!(r.skipped_lines(), 3);
    /// ```
    pub fn skipped_lines(&self) -> u64 {
        self.skipped.iter().map(|s| s.lines).sum()
    }
}

/// Live progress of the running scan, for a progress bar.
///
/// ```
/// use tracekit_analyzer::LogAnalyzer;
/// let analyzer = LogAnalyzer::new("no/such/dir");
/// let p = analyzer.progress();
/// assert_eq!(p.done_bytes(), 0);
/// assert!(!p.is_running());
/// ```
#[derive(Debug, Default)]
pub struct ScanProgress {
    total: AtomicU64,
    done: AtomicU64,
    running: AtomicBool,
}

impl ScanProgress {
    /// Bytes to read in the running (or last) scan (see the example on [`ScanProgress`]).
    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Bytes read so far.
    pub fn done_bytes(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// True while a scan runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// Per-file counts of lines the query skipped; merged into the [`ScanReport`].
#[derive(Debug, Default)]
pub(crate) struct Skips(BTreeMap<(usize, SkipReason), u64>);

impl Skips {
    pub(crate) fn add(&mut self, file: usize, reason: SkipReason) {
        *self.0.entry((file, reason)).or_insert(0) += 1;
    }
}

/// A block of whole lines handed to a query.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block<'a> {
    /// Index of the file in the scan's file list.
    pub file: usize,
    /// Whole lines, each ending in `\n`.
    pub bytes: &'a [u8],
    /// Offset of `bytes[0]` in the (decompressed) file.
    pub offset: u64,
}

impl<'a> Block<'a> {
    /// Each line without its `\n`, with its offset in the file.
    pub(crate) fn lines(self) -> impl Iterator<Item = (u64, &'a [u8])> {
        let mut pos = 0;
        let bytes = self.bytes;
        std::iter::from_fn(move || {
            let rest = &bytes[pos..];
            let end = memchr::memchr(b'\n', rest)?;
            let at = pos;
            pos += end + 1;
            Some((self.offset + at as u64, &rest[..end]))
        })
    }

    /// The lines containing `needle`, each once, with their offsets.
    pub(crate) fn lines_with(
        self,
        finder: &'a memchr::memmem::Finder<'a>,
    ) -> impl Iterator<Item = (u64, &'a [u8])> {
        let bytes = self.bytes;
        let mut pos = 0;
        std::iter::from_fn(move || {
            let hit = pos + finder.find(&bytes[pos..])?;
            let start = memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |i| i + 1);
            let end = hit + memchr::memchr(b'\n', &bytes[hit..])?;
            pos = end + 1;
            Some((self.offset + start as u64, &bytes[start..end]))
        })
    }
}

/// One unit of work: a chunk of a plain file, or a whole gzip file.
#[derive(Clone, Copy, Debug)]
struct Unit {
    file: usize,
    start: u64,
    end: u64,
    weight: u64,
}

/// Scan settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanConfig {
    pub threads: usize,
    pub max_line: usize,
}

/// Scans `selected` files of `files`, calling `visit` with blocks of whole lines on one of
/// `config.threads` workers; returns each worker's state and the report.
pub(crate) fn scan<W, M, V>(
    files: &[LogFile],
    selected: &[usize],
    config: ScanConfig,
    progress: &ScanProgress,
    make: M,
    visit: V,
) -> (Vec<W>, ScanReport)
where
    W: Send,
    M: Fn() -> W + Sync,
    V: Fn(&mut W, &mut Skips, Block<'_>) + Sync,
{
    let mut units = Vec::new();
    for &f in selected {
        let size = files[f].size;
        if files[f].compressed {
            // Decompression costs about as much as reading five times the bytes.
            units.push(Unit {
                file: f,
                start: 0,
                end: u64::MAX,
                weight: size.saturating_mul(5),
            });
        } else {
            let mut start = 0;
            loop {
                let end = if size.saturating_sub(start) > CHUNK {
                    start + CHUNK
                } else {
                    u64::MAX // the last chunk takes whatever was appended since
                };
                units.push(Unit {
                    file: f,
                    start,
                    end,
                    weight: end.min(size) - start,
                });
                if end == u64::MAX {
                    break;
                }
                start = end;
            }
        }
    }
    units.sort_by_key(|u| std::cmp::Reverse(u.weight));
    let total: u64 = selected.iter().map(|&f| files[f].size).sum();
    progress.total.store(total, Ordering::Relaxed);
    progress.done.store(0, Ordering::Relaxed);
    progress.running.store(true, Ordering::Relaxed);

    let next = AtomicUsize::new(0);
    let errors = Mutex::new(BTreeMap::<usize, String>::new());
    let workers = config.threads.clamp(1, units.len().max(1));
    let results: Vec<(W, Skips)> = std::thread::scope(|s| {
        let work = || {
            let mut state = make();
            let mut skips = Skips::default();
            let mut buf = Window::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(unit) = units.get(i) else { break };
                let file = &files[unit.file];
                let mut on_block = |sk: &mut Skips, b: Block<'_>| visit(&mut state, sk, b);
                let result = scan_unit(
                    file,
                    unit,
                    config.max_line,
                    &mut buf,
                    &mut skips,
                    &mut on_block,
                );
                if let Err(e) = result {
                    let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                    errors.entry(unit.file).or_insert_with(|| e.to_string());
                }
                let physical = if file.compressed {
                    file.size
                } else {
                    unit.end.min(file.size).saturating_sub(unit.start)
                };
                progress.done.fetch_add(physical, Ordering::Relaxed);
            }
            (state, skips)
        };
        let handles: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
        let mut all = vec![work()];
        for h in handles {
            match h.join() {
                Ok(r) => all.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    progress.running.store(false, Ordering::Relaxed);

    let mut merged = BTreeMap::new();
    let mut states = Vec::with_capacity(results.len());
    for (state, skips) in results {
        for (k, n) in skips.0 {
            *merged.entry(k).or_insert(0) += n;
        }
        states.push(state);
    }
    let report = ScanReport {
        files: selected.len(),
        bytes: total,
        skipped: merged
            .into_iter()
            .map(|((f, reason), lines)| Skipped {
                file: files[f].display_name(),
                reason,
                lines,
            })
            .collect(),
        errors: errors
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|(f, error)| FileError {
                file: files[f].display_name(),
                error,
            })
            .collect(),
    };
    (states, report)
}

/// Where a unit's bytes come from.
enum Source {
    Plain(File),
    Gzip(Box<MultiGzDecoder<BufReader<File>>>),
}

impl Source {
    fn read(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let r = match self {
                Source::Plain(f) => f.read_at(buf, pos),
                Source::Gzip(g) => g.read(buf),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

/// Feeds the lines starting in `[unit.start, unit.end)` to `visit`, in blocks.
fn scan_unit(
    file: &LogFile,
    unit: &Unit,
    max_line: usize,
    win: &mut Window,
    skips: &mut Skips,
    visit: &mut dyn FnMut(&mut Skips, Block<'_>),
) -> io::Result<()> {
    let f = File::open(&file.path)?;
    let mut src = if file.compressed {
        Source::Gzip(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            f,
        ))))
    } else {
        Source::Plain(f)
    };
    // `pos` is the file offset of the first unprocessed byte, held at the window's start.
    let mut pos = unit.start;
    win.clear();
    if unit.start > 0 {
        // Our first line starts after the first `\n` at or after start - 1.
        pos = unit.start - 1;
        loop {
            let room = win.room();
            let probe = room.len().min(64 * 1024);
            let n = src.read(pos, &mut room[..probe])?;
            if n == 0 {
                return Ok(());
            }
            if let Some(i) = memchr::memchr(b'\n', &room[..n]) {
                pos += i as u64 + 1;
                break;
            }
            pos += n as u64;
            if pos >= unit.end {
                return Ok(());
            }
        }
    }
    let mut skipping = false; // inside a line longer than the limit
    let mut eof = false;
    loop {
        if pos >= unit.end && !skipping {
            return Ok(());
        }
        if !eof {
            let have = win.len();
            let n = src.read(pos + have as u64, win.room())?;
            win.filled(n);
            eof = n == 0;
        }
        if skipping {
            match memchr::memchr(b'\n', win.data()) {
                Some(i) => {
                    pos += i as u64 + 1;
                    win.consume(i + 1);
                    skipping = false;
                    continue;
                }
                None if eof => return Ok(()),
                None => {
                    pos += win.len() as u64;
                    win.clear();
                    continue;
                }
            }
        }
        // Hand over the whole lines that start before unit.end.
        let data = win.data();
        if let Some(last_nl) = memchr::memrchr(b'\n', data) {
            let mut upto = last_nl + 1;
            if unit.end != u64::MAX && pos + upto as u64 > unit.end {
                // Lines starting at or after unit.end belong to the next chunk.
                let cut = (unit.end - pos) as usize; // >= 1, <= upto - 1
                upto = cut + memchr::memchr(b'\n', &data[cut - 1..]).map_or(0, |i| i);
            }
            hand_over(&data[..upto], pos, unit.file, max_line, skips, visit);
            pos += upto as u64;
            win.consume(upto);
            if unit.end != u64::MAX && pos >= unit.end {
                return Ok(());
            }
        }
        if win.len() > max_line {
            skips.add(unit.file, SkipReason::TooLong);
            pos += win.len() as u64;
            win.clear();
            skipping = true;
            continue;
        }
        if eof {
            if win.len() > 0 {
                skips.add(unit.file, SkipReason::Partial);
            }
            return Ok(());
        }
    }
}

/// A worker's read buffer: unprocessed bytes at `buf[lo..hi]`. Allocated (and zeroed) once
/// per worker, not per read.
#[derive(Default)]
struct Window {
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
}

impl Window {
    fn data(&self) -> &[u8] {
        &self.buf[self.lo..self.hi]
    }

    fn len(&self) -> usize {
        self.hi - self.lo
    }

    fn clear(&mut self) {
        (self.lo, self.hi) = (0, 0);
    }

    fn consume(&mut self, n: usize) {
        self.lo += n;
        if self.lo == self.hi {
            self.clear();
        }
    }

    /// Free space after the data, at least [`READ_BLOCK`] bytes: the data (a partial line)
    /// moves to the front first.
    fn room(&mut self) -> &mut [u8] {
        if self.lo > 0 {
            self.buf.copy_within(self.lo..self.hi, 0);
            (self.lo, self.hi) = (0, self.hi - self.lo);
        }
        if self.buf.len() - self.hi < READ_BLOCK {
            self.buf.resize(self.hi + READ_BLOCK, 0);
        }
        &mut self.buf[self.hi..]
    }

    fn filled(&mut self, n: usize) {
        self.hi += n;
    }
}

/// Visits `bytes` (whole lines), leaving out and counting lines longer than `max_line`.
fn hand_over(
    bytes: &[u8],
    offset: u64,
    file: usize,
    max_line: usize,
    skips: &mut Skips,
    visit: &mut dyn FnMut(&mut Skips, Block<'_>),
) {
    if bytes.len() <= max_line {
        // No line can be too long: the common case costs nothing.
        visit(
            skips,
            Block {
                file,
                bytes,
                offset,
            },
        );
        return;
    }
    let mut run_start = 0;
    let mut line_start = 0;
    for nl in memchr::memchr_iter(b'\n', bytes) {
        if nl - line_start > max_line {
            if run_start < line_start {
                let run = &bytes[run_start..line_start];
                visit(
                    skips,
                    Block {
                        file,
                        bytes: run,
                        offset: offset + run_start as u64,
                    },
                );
            }
            skips.add(file, SkipReason::TooLong);
            run_start = nl + 1;
        }
        line_start = nl + 1;
    }
    if run_start < bytes.len() {
        let run = &bytes[run_start..];
        visit(
            skips,
            Block {
                file,
                bytes: run,
                offset: offset + run_start as u64,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::FileRole;

    fn file(dir: &std::path::Path, name: &str, content: &[u8]) -> LogFile {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        LogFile {
            path,
            component: "c".into(),
            role: FileRole::Main,
            archived: false,
            compressed: false,
            size: content.len() as u64,
        }
    }

    fn lines_of(files: &[LogFile], max_line: usize) -> (Vec<u64>, ScanReport) {
        let (states, report) = scan(
            files,
            &(0..files.len()).collect::<Vec<_>>(),
            ScanConfig {
                threads: 2,
                max_line,
            },
            &ScanProgress::default(),
            Vec::new,
            |acc: &mut Vec<u64>, _, b| acc.extend(b.lines().map(|(off, _)| off)),
        );
        let mut all: Vec<u64> = states.into_iter().flatten().collect();
        all.sort();
        (all, report)
    }

    #[test]
    fn every_line_once_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        // Lines of varied length across several chunks, one straddling each boundary.
        let mut content = Vec::new();
        let mut starts = Vec::new();
        let mut i = 0u64;
        while content.len() < (CHUNK as usize) * 3 + 12345 {
            starts.push(content.len() as u64);
            let len = (i * 7919) % 3000;
            content.extend(std::iter::repeat_n(b'x', len as usize));
            content.push(b'\n');
            i += 1;
        }
        let f = file(dir.path(), "a.log", &content);
        let (offsets, report) = lines_of(&[f], 1 << 20);
        assert_eq!(offsets, starts);
        assert!(report.skipped.is_empty());
    }

    #[test]
    fn long_and_partial_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = b"a\n".to_vec();
        content.extend(std::iter::repeat_n(b'y', 5000));
        content.extend(b"\nb\ntorn");
        let f = file(dir.path(), "a.log", &content);
        let (offsets, report) = lines_of(&[f], 1000);
        assert_eq!(offsets, vec![0, 5003]);
        let reasons: Vec<_> = report.skipped.iter().map(|s| (s.reason, s.lines)).collect();
        assert_eq!(
            reasons,
            vec![(SkipReason::TooLong, 1), (SkipReason::Partial, 1)]
        );
    }

    #[test]
    fn a_chunk_boundary_on_a_line_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = vec![b'z'; CHUNK as usize - 1];
        content.push(b'\n');
        content.extend(b"second\nthird\n");
        let f = file(dir.path(), "a.log", &content);
        let (offsets, _) = lines_of(&[f], CHUNK as usize * 2);
        assert_eq!(offsets, vec![0, CHUNK, CHUNK + 7]);
    }
}
