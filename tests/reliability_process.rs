//! Whole processes that end badly: killed with SIGKILL mid-logging, a graceful exit after a
//! million events, a panic in `main` and in a worker thread, and the file modes under umask
//! 000. Each case runs this binary again as a child (`RELIABILITY_CHILD` set; `harness =
//! false`, so the child's `main` is a real `main`).
//!
//! The child logs from 4 threads into component `crash`, every record carrying `thread` and
//! `seq` (0, 1, 2, .. per thread): threads 0 and 1 through `tracing::info!`, thread 2
//! through a component [`tracekit::Logger`] with serde data, thread 3 through `tracing` with
//! every 10th record an `ERROR` (so `errors/` gets copies). Small files make the writer
//! rotate and gzip while the child is killed.
//!
//! Run counts: `RELIABILITY_KILL_RUNS` (default 50), `RELIABILITY_GRACEFUL_RUNS` (default 20);
//! `RELIABILITY_SEED` replays the kill delays.

mod reliability_support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reliability_support::{file_lines, stem_files, Rng};
use serde::Deserialize;
use tracekit::exporters::{Compression, DailyFiles, LogWriter};
use tracekit_analyzer::{LogAnalyzer, SkipReason};

const CHILD: &str = "RELIABILITY_CHILD";
const THREADS: u64 = 4;
const COMPONENT: &str = "crash";

fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let cases: [(&str, fn()); 5] = [
        ("kill9_while_four_threads_log", kill9),
        ("graceful_exit_after_a_million_events", graceful),
        (
            "panic_in_main_keeps_earlier_lines_and_a_critical_record",
            panic_main,
        ),
        (
            "panic_in_a_worker_keeps_earlier_lines_and_a_critical_record",
            panic_worker,
        ),
        ("umask_000_still_gives_0640_files_and_0750_dirs", umask),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut passed = 0;
    for (name, case) in cases {
        if filter.iter().all(|f| name.contains(f.as_str())) {
            let start = Instant::now();
            case();
            println!(
                "test {name} ... ok ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            passed += 1;
        }
    }
    println!(
        "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; {} filtered out",
        cases.len() - passed
    );
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// The child

fn child(mode: &str) {
    let root = PathBuf::from(std::env::var("TRACEKIT_DIR").unwrap());
    match mode {
        // Log until killed.
        "log" => {
            let _guard = init(&root, env_u64("RELIABILITY_CAP", 256 * 1024));
            log_threads(None, None);
        }
        // Log `per_thread` records per thread, join, drop the guard, exit 0.
        "graceful" => {
            let per_thread = env_u64("RELIABILITY_EVENTS", 250_000);
            let guard = init(&root, u64::MAX / 2);
            log_threads(Some(per_thread), None);
            drop(guard);
        }
        // One record, after a restart on the files a killed child left.
        "restart" => {
            let guard = init(&root, env_u64("RELIABILITY_CAP", 256 * 1024));
            tracing::info!(component = COMPONENT, "restarted");
            drop(guard);
        }
        "panic-main" => {
            let _guard = init(&root, 256 * 1024);
            std::thread::spawn(|| log_threads(None, None));
            log_seqs(99, Some(2_000), None);
            panic!("main gave up");
        }
        "panic-worker" => {
            let _guard = init(&root, 256 * 1024);
            let workers: Vec<_> = (0..THREADS)
                .map(|t| std::thread::spawn(move || log_seqs(t, None, Some((2, 5_000)))))
                .collect();
            let failed = workers.into_iter().nth(2).unwrap().join().unwrap_err();
            assert_eq!(
                failed.downcast_ref::<String>().map(String::as_str),
                Some("worker 2 failed at 5000")
            );
            // A service that exits when a worker dies, without dropping the guard: only
            // the panic hook's flush stands between the records and the kill.
            std::process::exit(3);
        }
        "umask" => child_umask(&root),
        other => unreachable!("unknown mode {other}"),
    }
}

fn init(root: &Path, cap: u64) -> tracekit::Guard {
    let writer = LogWriter::builder()
        .max_file_size(cap)
        .error_file_size(cap)
        .max_backups(1_000_000)
        .retention_days(1000)
        .daily_files(DailyFiles::None)
        .compression(Compression::Gzip { level: 1 })
        .loss_policy(tracekit::exporters::LossPolicy::Lossless);
    tracekit::builder()
        .root(root)
        .filter("info")
        .log_writer(writer)
        .init()
}

#[derive(serde::Serialize)]
struct Tick {
    thread: u64,
    seq: u64,
}

/// Logs from the 4 threads; `None` logs forever. `panic_at` = (thread, seq) panics there.
fn log_threads(per_thread: Option<u64>, panic_at: Option<(u64, u64)>) {
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || log_seqs(t, per_thread, panic_at));
        }
    });
}

fn log_seqs(t: u64, n: Option<u64>, panic_at: Option<(u64, u64)>) {
    let logger = tracekit::get_logger("reliability::crash", COMPONENT);
    // Big records make big writes, which a SIGKILL can cut (a torn tail).
    let pad = "k".repeat(env_u64("RELIABILITY_PAD", 0) as usize);
    let mut seq = 0u64;
    while n.is_none_or(|n| seq < n) {
        if panic_at == Some((t, seq)) {
            panic!("worker {t} failed at {seq}");
        }
        match t {
            2 => logger.info("tick", Tick { thread: t, seq }),
            3 if seq % 10 == 0 => {
                tracing::error!(component = COMPONENT, thread = t, seq, "tick")
            }
            1 if !pad.is_empty() => {
                tracing::info!(component = COMPONENT, thread = t, seq, pad, "tick")
            }
            _ => tracing::info!(component = COMPONENT, thread = t, seq, "tick"),
        }
        seq += 1;
    }
}

fn child_umask(root: &Path) {
    // SAFETY: umask has no preconditions; this child process runs nothing else.
    unsafe { libc::umask(0) };
    let writer = LogWriter::builder()
        .max_file_size(2048)
        .error_file_size(2048)
        .performance_file_size(2048)
        .max_backups(1000)
        .daily_files(DailyFiles::All)
        .compression(Compression::Gzip { level: 1 });
    let guard = tracekit::builder()
        .root(root)
        .filter("info")
        .log_writer(writer)
        .init();
    let pad = "p".repeat(700);
    for i in 0..8u64 {
        tracing::info!(component = "modes", i, pad, "info");
        tracing::error!(component = "modes", i, pad, "error");
        tracing::info!(
            component = "modes",
            duration_ms = 5.0,
            pad,
            { tracekit::TIMING_FIELD } = true,
            "timed"
        );
        tracing::info_span!("span", component = "spans", pad).in_scope(|| {});
    }
    guard.writer().flush().unwrap();
    assert!(guard.writer().wait_for_archives(Duration::from_secs(60)));
    drop(guard);
}

// ---------------------------------------------------------------------------------------
// Reading back

fn child_command(mode: &str, root: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.env(CHILD, mode)
        .env("TRACEKIT_DIR", root)
        .env_remove("RUST_LOG")
        .env_remove("TRACEKIT_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[derive(Deserialize)]
struct Line {
    message: String,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    thread: Option<u64>,
    seq: Option<u64>,
}

/// What the files of one stem hold.
#[derive(Default, Debug)]
struct Contents {
    /// Per thread, the seq numbers in file order.
    seqs: BTreeMap<u64, Vec<u64>>,
    /// Lines that are not ticks (panic records, restarts), with their file and line number.
    others: Vec<(PathBuf, usize, serde_json::Value)>,
    /// Files that end in a partial line.
    torn: Vec<PathBuf>,
    lines: u64,
    files: usize,
}

/// Reads every file of `dir/stem` (archives, then live), checking that every complete line
/// parses and only a file's last line may be partial.
fn contents(root: &Path, dir: &str, stem: &str, context: &str) -> Contents {
    let mut c = Contents::default();
    for path in stem_files(root, dir, stem) {
        let f = file_lines(&path);
        c.files += 1;
        for (i, line) in f.lines.iter().enumerate() {
            let parsed: Line = serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "{context}: {} line {}: {e}: {:?}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(line)
                )
            });
            c.lines += 1;
            match (&parsed.data, parsed.message.as_str()) {
                (
                    Some(Data {
                        thread: Some(t),
                        seq: Some(s),
                    }),
                    "tick",
                ) => c.seqs.entry(*t).or_default().push(*s),
                _ => c
                    .others
                    .push((path.clone(), i + 1, serde_json::from_slice(line).unwrap())),
            }
        }
        if f.partial.is_some() {
            c.torn.push(path);
        }
    }
    c
}

/// Each thread's seqs are 0, 1, 2, .. with no gap, duplicate or reordering. With `step`,
/// the expected sequence is 0, step, 2*step, .. (thread 3's error copies).
fn assert_prefix(context: &str, what: &str, seqs: &[u64], step: u64) {
    for (i, &s) in seqs.iter().enumerate() {
        assert_eq!(
            s,
            i as u64 * step,
            "{context}: {what}: record {i} has seq {s}, expected {} (gap, duplicate or reorder)",
            i as u64 * step
        );
    }
}

// ---------------------------------------------------------------------------------------
// Item 1 (and 4): kill -9

fn kill9() {
    let runs = env_u64("RELIABILITY_KILL_RUNS", 50);
    let seed = Rng::seed_from_env("kill9");
    let mut rng = Rng::new(seed);
    let (mut torn_total, mut lines_total, mut archives_total) = (0, 0, 0);
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Mostly while logging at full speed; sometimes during start-up.
        let delay = Duration::from_micros(if rng.below(8) == 0 {
            rng.below(20_000)
        } else {
            20_000 + rng.below(400_000)
        });
        // Every third run logs big records (thread 1: 256 KiB each) into 8 MiB files.
        let big = run % 3 == 2;
        let context = format!("seed {seed}, run {run}, big {big}, killed after {delay:?}");
        let cap: u64 = if big { 8 << 20 } else { 256 * 1024 };
        let mut command = child_command("log", root);
        command.env("RELIABILITY_CAP", cap.to_string());
        if big {
            command.env("RELIABILITY_PAD", (256 * 1024).to_string());
        }
        let mut child = command.spawn().unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{context}: {status:?}"
        );

        let main = contents(root, COMPONENT, COMPONENT, &context);
        let errors = contents(root, "errors", "errors", &context);
        for (t, seqs) in &main.seqs {
            assert_prefix(&context, &format!("thread {t}"), seqs, 1);
        }
        let err_seqs = errors.seqs.get(&3).cloned().unwrap_or_default();
        assert_prefix(&context, "errors/ copies", &err_seqs, 10);
        assert!(
            err_seqs.len() as u64 <= main.seqs.get(&3).map_or(0, |s| s.len() as u64 / 10 + 1),
            "{context}: more error copies than errors"
        );
        assert!(
            main.others.is_empty() && errors.others.is_empty(),
            "{context}: {:?} {:?}",
            main.others,
            errors.others
        );
        // A partial line can only be the live file's last: archives were complete when
        // they were rotated.
        for torn in main.torn.iter().chain(&errors.torn) {
            assert!(
                torn.starts_with(root.join("logs")),
                "{context}: torn archive {}",
                torn.display()
            );
        }

        // The analyzer reads the same files: it counts the complete lines and skips each
        // torn tail as one partial line.
        let summary = LogAnalyzer::new(root).threads(2).summary();
        let counted = summary
            .components
            .iter()
            .find(|c| c.component == COMPONENT)
            .map_or(0, |c| c.records);
        assert_eq!(counted, main.lines, "{context}: {summary:?}");
        let partial: u64 = summary
            .scan
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Partial)
            .map(|s| s.lines)
            .sum();
        assert_eq!(
            partial,
            main.torn.len() as u64,
            "{context}: {:?}",
            summary.scan
        );
        assert_eq!(
            summary.scan.skipped_lines(),
            partial,
            "{context}: {:?}",
            summary.scan
        );
        assert!(
            summary.scan.errors.is_empty(),
            "{context}: {:?}",
            summary.scan
        );

        // Item 4: a restart on these files. A torn tail is closed with a newline, so the
        // next record stands on a line of its own and parses.
        let live = root.join("logs").join(COMPONENT).join("crash.log");
        let before = std::fs::read(&live).unwrap_or_default();
        let out = child_command("restart", root)
            .env("RELIABILITY_CAP", cap.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{context}: restart: {out:?}");
        let after = file_lines(&live);
        assert!(
            after.partial.is_none(),
            "{context}: restart left a partial line"
        );
        let last = after.lines.last().expect("the restart's record");
        let v: serde_json::Value = serde_json::from_slice(last)
            .unwrap_or_else(|e| panic!("{context}: the record after a restart: {e}"));
        assert_eq!(v["message"], "restarted", "{context}");
        if !before.is_empty() {
            // The old bytes, closed with a newline if torn, are kept as they were: still at
            // the start of the live file, or (when the restart's record did not fit under
            // the cap) in the newest archive.
            let mut expected = before.clone();
            if expected.last() != Some(&b'\n') {
                expected.push(b'\n');
            }
            let old = if after.lines.len() >= 2 {
                std::fs::read(&live).unwrap()[..expected.len()].to_vec()
            } else {
                let newest = stem_files(root, COMPONENT, COMPONENT);
                let archive = &newest[newest.len() - 2];
                reliability_support::read_maybe_gz(archive)
            };
            assert!(
                old == expected,
                "{context}: the old content was not kept as is ({} bytes before, {} after)",
                before.len(),
                old.len()
            );
        }

        torn_total += main.torn.len() + errors.torn.len();
        lines_total += main.lines + errors.lines;
        archives_total += main.files.saturating_sub(1);
    }
    eprintln!(
        "kill9: {runs} runs, {lines_total} complete lines, {torn_total} torn tails, {archives_total} archives"
    );
}

// ---------------------------------------------------------------------------------------
// Item 2: graceful exit, panics

fn graceful() {
    let runs = env_u64("RELIABILITY_GRACEFUL_RUNS", 20);
    let per_thread = 1_000_000 / THREADS;
    let (mut child_time, mut check_time) = (Duration::ZERO, Duration::ZERO);
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let out = child_command("graceful", dir.path())
            .env("RELIABILITY_EVENTS", per_thread.to_string())
            .output()
            .unwrap();
        child_time += start.elapsed();
        let start = Instant::now();
        let context = format!("graceful run {run}");
        assert!(out.status.success(), "{context}: {out:?}");
        let files = stem_files(dir.path(), COMPONENT, COMPONENT);
        assert_eq!(files.len(), 1, "{context}: {files:?}");
        let seqs = tick_seqs(&files[0], &context);
        for t in 0..THREADS {
            let seqs = seqs.get(&t).map_or(&[][..], Vec::as_slice);
            assert_prefix(&context, &format!("thread {t}"), seqs, 1);
            assert_eq!(seqs.len() as u64, per_thread, "{context}: thread {t}");
        }
        let errors = tick_seqs(&dir.path().join("logs/errors/errors.log"), &context);
        assert_eq!(errors.len(), 1, "{context}: only thread 3 logs errors");
        assert_prefix(&context, "errors/ copies", &errors[&3], 10);
        assert_eq!(errors[&3].len() as u64, per_thread / 10);
        check_time += start.elapsed();
    }
    eprintln!(
        "graceful: {runs} runs of 1e6 events: children {child_time:?}, checks {check_time:?}"
    );
}

/// Per thread, the seqs of a file of a million lines, in file order, found with memchr
/// without a full parse; every 997th line is also parsed whole, and every line must be a
/// `tick` record of the contract's shape.
fn tick_seqs(path: &Path, context: &str) -> BTreeMap<u64, Vec<u64>> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'), "{context}: torn tail");
    let thread_key = memchr::memmem::Finder::new(b"\"thread\":");
    let seq_key = memchr::memmem::Finder::new(b"\"seq\":");
    let number = |line: &[u8], f: &memchr::memmem::Finder<'_>| -> u64 {
        let at = f
            .find(line)
            .unwrap_or_else(|| panic!("{context}: not a tick: {}", String::from_utf8_lossy(line)))
            + f.needle().len();
        let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&line[at..at + digits])
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut out: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut start = 0;
    for (i, end) in memchr::memchr_iter(b'\n', &bytes).enumerate() {
        let line = &bytes[start..end];
        start = end + 1;
        assert!(
            line.starts_with(b"{\"timestamp\":\"") && line.ends_with(b"}"),
            "{context}: line {}: {}",
            i + 1,
            String::from_utf8_lossy(line)
        );
        if i % 997 == 0 {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(v["message"], "tick", "{context}");
        }
        out.entry(number(line, &thread_key))
            .or_default()
            .push(number(line, &seq_key));
    }
    out
}

/// The CRITICAL panic record(s) in `errors/` and in the component file.
fn panic_records(root: &Path, context: &str) -> (Contents, Vec<serde_json::Value>) {
    let main = contents(root, COMPONENT, COMPONENT, context);
    let errors = contents(root, "errors", "errors", context);
    let critical: Vec<_> = errors
        .others
        .iter()
        .map(|(_, _, v)| v.clone())
        .filter(|v| v["level"] == "CRITICAL")
        .collect();
    (main, critical)
}

fn panic_main() {
    let dir = tempfile::tempdir().unwrap();
    let out = child_command("panic-main", dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("main gave up"));
    let (main, critical) = panic_records(dir.path(), "panic in main");
    // Every line main logged before the panic, in order; the workers' lines a gap-free
    // prefix (they were still logging when the process ended).
    assert_eq!(main.seqs[&99], (0..2_000).collect::<Vec<_>>());
    for t in 0..THREADS {
        let seqs = main.seqs.get(&t).map_or(&[][..], Vec::as_slice);
        assert_prefix("panic in main", "worker", seqs, 1);
    }
    assert_eq!(critical.len(), 1, "{critical:?}");
    let c = &critical[0];
    assert_eq!(c["message"], "panic: main gave up");
    assert_eq!(c["exception"]["type"], "panic");
    assert_eq!(c["context"]["file"], file!());
    // Outside any span the panic record goes to the default component too.
    assert!(main.others.is_empty(), "{:?}", main.others);
    let app = contents(dir.path(), "app", "app", "panic in main");
    assert_eq!(app.others.len(), 1, "{:?}", app.others);
    assert_eq!(app.others[0].2["message"], "panic: main gave up");
    assert_eq!(
        c["context"]["thread"],
        main_thread_of(dir.path(), 99),
        "the record names the panicking thread"
    );
}

/// The OS thread id in the records of logical thread `t`.
fn main_thread_of(root: &Path, t: u64) -> serde_json::Value {
    for path in stem_files(root, COMPONENT, COMPONENT) {
        for line in file_lines(&path).lines {
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            if v["data"]["thread"] == t {
                return v["context"]["thread"].clone();
            }
        }
    }
    panic!("no record of thread {t}")
}

fn panic_worker() {
    let dir = tempfile::tempdir().unwrap();
    let out = child_command("panic-worker", dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let (main, critical) = panic_records(dir.path(), "panic in a worker");
    // The panicking thread's every line (its records went into the queue before the
    // panic hook's flush), and the other threads' gap-free prefixes.
    assert_eq!(main.seqs[&2], (0..5_000).collect::<Vec<_>>());
    for t in [0, 1, 3] {
        let seqs = main.seqs.get(&t).map_or(&[][..], Vec::as_slice);
        assert_prefix("panic in a worker", "thread", seqs, 1);
    }
    assert_eq!(critical.len(), 1, "{critical:?}");
    let c = &critical[0];
    assert_eq!(c["message"], "panic: worker 2 failed at 5000");
    assert_eq!(c["exception"]["type"], "panic");
    assert!(c["exception"]["traceback"]
        .as_str()
        .unwrap()
        .contains("log_seqs"));
    assert_eq!(c["context"]["thread"], main_thread_of(dir.path(), 2));
}

// ---------------------------------------------------------------------------------------
// Item 9: modes under umask 000, through the bridge

fn umask() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = child_command("umask", &root).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let (mut files, mut dirs, mut gz) = (0, 0, 0);
    for p in std::iter::once(root.clone()).chain(reliability_support::walk(&root)) {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            assert_eq!(mode, 0o750, "{} is {mode:o}", p.display());
            dirs += 1;
        } else {
            assert!(meta.is_file(), "{}", p.display());
            assert_eq!(mode, 0o640, "{} is {mode:o}", p.display());
            files += 1;
            gz += usize::from(p.extension().is_some_and(|e| e == "gz"));
        }
    }
    // root, logs, archived, and modes/spans/errors/performance under both.
    assert_eq!(dirs, 11, "{:?}", reliability_support::walk(&root));
    assert!(files > 20 && gz > 10, "{files} files, {gz} gz");
}
