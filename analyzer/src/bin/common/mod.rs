//! What `trace_request` and `log_analyzer` share: exit statuses, quiet broken pipes, the
//! progress bar, a small argument reader and output paths.

#![allow(dead_code)] // each binary uses its own subset

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tracekit_analyzer::{LogAnalyzer, ScanProgress};

/// Exit status: something was found.
pub const FOUND: u8 = 0;
/// Exit status: nothing was found.
pub const NOT_FOUND: u8 = 1;
/// Exit status: an error.
pub const ERROR: u8 = 2;

/// Runs `run`: its status, 0 on a closed stdout, 2 (with the error on stderr) on failure.
pub fn main_with(run: fn() -> anyhow::Result<ExitCode>) -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let name = std::env::args()
                .next()
                .map(|a| {
                    Path::new(&a)
                        .file_name()
                        .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_default();
            let _ = writeln!(io::stderr(), "{name}: error: {e:#}");
            ExitCode::from(ERROR)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Writes all of `s` to stdout.
pub fn print(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// Writes `value` as pretty JSON to stdout, with a final newline. Strings are escaped for
/// a terminal too (see [`TerminalSafe`]).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, TerminalSafe::default());
    value.serialize(&mut ser).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// serde_json's pretty formatter, also writing as `\uXXXX` what serde_json leaves raw but a
/// terminal acts on: DEL, the C1 controls (U+0085 among them), U+2028/U+2029 and the bidi
/// overrides. Still JSON, and the same strings once parsed.
#[derive(Default)]
struct TerminalSafe(serde_json::ser::PrettyFormatter<'static>);

fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in s.char_indices().filter(|&(_, c)| acts_on_terminal(c)) {
            w.write_all(&s.as_bytes()[start..i])?;
            write!(w, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
        w.write_all(&s.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal and the scan has run for
/// a second; cleared when dropped.
pub struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressBar {
    pub fn start(progress: Arc<ScanProgress>) -> ProgressBar {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = io::stderr().is_terminal().then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || draw(&progress, &stop))
        });
        ProgressBar { stop, thread }
    }
}

fn draw(progress: &ScanProgress, stop: &AtomicBool) {
    let began = Instant::now();
    let mut drawn = false;
    while !stop.load(Ordering::Relaxed) {
        // Woken early by the drop, so a short scan never waits for the bar.
        std::thread::park_timeout(Duration::from_millis(100));
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if began.elapsed() < Duration::from_secs(1) || !progress.is_running() {
            continue;
        }
        let (done, total) = (progress.done_bytes(), progress.total_bytes().max(1));
        let frac = (done as f64 / total as f64).min(1.0);
        let filled = (frac * 30.0) as usize;
        let _ = write!(
            io::stderr(),
            "\r[{}{}] {:3.0}% {} / {} MB",
            "=".repeat(filled),
            " ".repeat(30 - filled),
            frac * 100.0,
            done / 1_000_000,
            total / 1_000_000
        );
        drawn = true;
    }
    if drawn {
        let _ = write!(io::stderr(), "\r{}\r", " ".repeat(60));
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Command-line arguments, read one at a time: `--name value`, `--name=value`, flags and
/// positionals.
pub struct Args {
    args: std::vec::IntoIter<String>,
    pending_value: Option<String>,
}

/// One argument.
pub enum Arg {
    /// `--name` (a value, if any, follows with [`Args::value`]).
    Long(String),
    /// `-h`.
    Short(char),
    /// Anything else.
    Positional(String),
}

impl Args {
    pub fn from_env() -> anyhow::Result<Args> {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a: OsString| {
                a.into_string()
                    .map_err(|a| anyhow::anyhow!("argument is not valid UTF-8: {a:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Args {
            args: args.into_iter(),
            pending_value: None,
        })
    }

    pub fn next(&mut self) -> anyhow::Result<Option<Arg>> {
        if let Some(v) = self.pending_value.take() {
            bail!("unexpected value {v:?}");
        }
        let Some(a) = self.args.next() else {
            return Ok(None);
        };
        if a == "--" {
            return Ok(self.args.next().map(Arg::Positional));
        }
        if let Some(long) = a.strip_prefix("--") {
            if let Some((name, value)) = long.split_once('=') {
                self.pending_value = Some(value.to_owned());
                return Ok(Some(Arg::Long(name.to_owned())));
            }
            return Ok(Some(Arg::Long(long.to_owned())));
        }
        if a.len() == 2 && a.starts_with('-') {
            return Ok(Some(Arg::Short(a.chars().nth(1).unwrap_or('-'))));
        }
        Ok(Some(Arg::Positional(a)))
    }

    /// The value of the option just read.
    pub fn value(&mut self, name: &str) -> anyhow::Result<String> {
        if let Some(v) = self.pending_value.take() {
            return Ok(v);
        }
        self.args
            .next()
            .with_context(|| format!("--{name} needs a value"))
    }
}

/// Where an output file goes: a bare file name into `<root>/analysis/`, a path as given.
pub fn output_path(analyzer: &LogAnalyzer, file: &str) -> PathBuf {
    let p = Path::new(file);
    let mut parts = p.components();
    let bare = matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    if bare {
        analyzer.root().join("analysis").join(p)
    } else {
        p.to_path_buf()
    }
}

/// Writes `contents` to `path`, creating its directory.
pub fn write_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// Reads a number option.
pub fn number<T: std::str::FromStr>(name: &str, v: &str) -> anyhow::Result<T> {
    v.parse()
        .map_err(|_| anyhow::anyhow!("--{name}: not a valid number: {v:?}"))
}
