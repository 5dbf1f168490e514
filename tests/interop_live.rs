//! Live OTLP export (feature `otlp`) to the real rotel receiver: spans and log records arrive
//! with the files' ids and request context; a collector that is down or black-holing neither
//! holds up the service nor touches its files.
#![cfg(feature = "otlp")]

mod interop_support;

use std::error::Error;
use std::fmt;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use interop_support::{free_port, main_records, peers, severity, wait_for, Front, Rotel};
use serde_json::Value;
use tracekit::{LogContext, OtlpSampler};

#[derive(Debug)]
struct Timeout;
impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("model timed out")
    }
}
impl Error for Timeout {}

fn serve_two_requests() {
    for (req, user, session) in [
        ("req-live-1", "user-1", "sess-1"),
        ("req-live-2", "user-2", "sess-2"),
    ] {
        LogContext::new()
            .request_id(req)
            .user_id(user)
            .session_id(session)
            .in_scope(|| {
                let span = tracing::info_span!("rank", component = "ranking");
                let _e = span.enter();
                tracing::info!(num_candidates = 1500_u64, password = "hunter2", "ranked");
                tracing::warn!(latency_ms = 12.5, "slow");
                tracing::error!(error = &Timeout as &dyn Error, "failed");
                tracekit::critical!("down");
                // Records that bypass tracing events: a component logger and a decorator.
                tracekit::get_logger("live", "serving")
                    .info("logger line", serde_json::json!({"n": 3, "api_key": "k"}));
                score(7);
            });
    }
}

#[tracekit::log_performance]
fn score(x: u64) -> u64 {
    x * 2
}

#[test]
fn spans_and_logs_reach_rotel_with_the_files_ids() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let mut rotel = Rotel::start(&peers, dir.path());
    let (dispatch, guard) = tracekit::builder()
        .root(&root)
        .service_name("live-test")
        .otlp_endpoint(rotel.endpoint())
        .panic_hook(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, serve_two_requests);
    drop(guard); // exports what is queued

    let records = main_records(&root);
    let (events, spans): (Vec<&Value>, Vec<&Value>) =
        records.iter().partition(|r| r.get("span").is_none());
    assert_eq!((events.len(), spans.len()), (12, 4), "{records:#?}");
    let (logs, otlp_spans) = rotel.wait_for(events.len(), spans.len(), Duration::from_secs(30));
    assert_eq!(logs.len(), events.len(), "{}", rotel.output());
    assert_eq!(otlp_spans.len(), spans.len(), "{}", rotel.output());

    for record in &events {
        let message = record["message"].as_str().unwrap();
        let trace_id = record["trace_id"].as_str().unwrap();
        let log = logs
            .iter()
            .find(|l| l.body() == message && l.field("Trace ID") == trace_id)
            .unwrap_or_else(|| panic!("{record} not received:\n{}", rotel.output()));
        assert_eq!(log.field("Span ID"), record["span_id"].as_str().unwrap());
        let level = record["level"].as_str().unwrap();
        assert_eq!(log.severity_number(), Some(severity(level)), "{message}");
        assert_eq!(log.field("SeverityText"), level);
        for (key, attr) in [
            ("request_id", "request.id"),
            ("user_id", "user.id"),
            ("session_id", "session.id"),
            ("component", "component"),
        ] {
            assert_eq!(
                log.str_attr(attr),
                record[key].as_str(),
                "{message}: {attr}"
            );
        }
        assert_eq!(
            log.resource.get("service.name").map(String::as_str),
            Some("Str(live-test)")
        );
        if message == "ranked" {
            assert_eq!(log.num_attr("num_candidates"), Some(1500.0));
            assert_eq!(log.str_attr("password"), Some("[REDACTED]"));
        }
        if message == "logger line" {
            assert_eq!(log.num_attr("n"), Some(3.0));
            assert_eq!(log.str_attr("api_key"), Some("[REDACTED]"));
        }
        if message == "failed" {
            assert_eq!(log.str_attr("exception.type"), Some("Timeout"));
            assert_eq!(log.str_attr("exception.message"), Some("model timed out"));
        }
    }
    for record in &spans {
        let span_id = record["span_id"].as_str().unwrap();
        let span = otlp_spans
            .iter()
            .find(|s| s.field("ID") == span_id)
            .unwrap_or_else(|| panic!("span {record} not received:\n{}", rotel.output()));
        assert_eq!(span.field("Trace ID"), record["trace_id"].as_str().unwrap());
        assert_eq!(span.field("Name"), record["span"]["name"].as_str().unwrap());
        for (key, attr) in [
            ("request_id", "request.id"),
            ("user_id", "user.id"),
            ("session_id", "session.id"),
        ] {
            assert_eq!(
                span.str_attr(attr),
                record[key].as_str(),
                "{record}: {attr}"
            );
        }
    }
}

#[test]
fn the_sampler_thins_the_otlp_stream_only() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let rotel = Rotel::start(&peers, dir.path());
    let (dispatch, guard) = tracekit::builder()
        .root(&root)
        .otlp_endpoint(rotel.endpoint())
        .otlp_sampler(OtlpSampler::AlwaysOff)
        .panic_hook(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, serve_two_requests);
    drop(guard);
    let records = main_records(&root);
    let spans = records.iter().filter(|r| r.get("span").is_some()).count();
    assert_eq!(spans, 4, "the files keep every span");
    // The logs of the same requests do arrive: once they are in, the spans had their chance.
    let mut rotel = rotel;
    rotel.wait_for(8, 0, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rotel.spans().len(), 0, "{}", rotel.output());
}

/// Accepts connections and never answers: a collector that black-holes requests.
struct BlackHole {
    port: u16,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<Held>>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (stop2, held2) = (Arc::clone(&stop), Arc::clone(&held));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((socket, _)) => {
                        socket.set_nonblocking(true).unwrap();
                        held2.lock().unwrap().push(Held {
                            socket,
                            sent: false,
                            closed: false,
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        BlackHole { port, stop, held }
    }

    /// Whether the first request it received is still waiting (the client has not given up
    /// on it and closed the connection); `None` before any request. Reads what arrived, so
    /// that a close behind it shows.
    fn first_request_waiting(&self) -> Option<bool> {
        let mut buf = [0u8; 64 * 1024];
        let mut held = self.held.lock().unwrap();
        for conn in held.iter_mut() {
            loop {
                match conn.socket.read(&mut buf) {
                    Ok(0) => conn.closed = true,
                    Ok(_) => {
                        conn.sent = true;
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => conn.closed = true,
                }
                break;
            }
        }
        // Connections are held in the order they were accepted.
        held.iter().find(|c| c.sent).map(|c| !c.closed)
    }
}

/// A connection the black hole holds.
struct Held {
    socket: TcpStream,
    /// The client sent (part of) a request.
    sent: bool,
    /// The client closed it.
    closed: bool,
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const EVENTS: usize = 30_000;
/// More than one export request holds (512): logging them starts an export.
const FIRST: usize = 1_000;
/// A hang guard: far longer than anything here takes when it works.
const HANG: Duration = Duration::from_secs(60);

/// Logs `EVENTS` events inside a request, then drops the guard (panics when that hangs).
/// With `hole`, the first `FIRST` events start an export that the black hole holds; the
/// others are logged and flushed to the files while it still holds it. Returns the time the
/// events took to log and the guard to drop, to print.
fn run_service(
    root: &Path,
    endpoint: Option<&str>,
    hole: Option<&BlackHole>,
) -> (Duration, Duration) {
    let mut builder = tracekit::builder()
        .root(root)
        .panic_hook(false)
        .shutdown_timeout(Duration::from_secs(4));
    builder = match endpoint {
        Some(e) => builder.otlp_endpoint(e),
        None => builder.otlp(false),
    };
    let (dispatch, guard) = builder.build().unwrap();
    let started = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        LogContext::new().request_id("req-load").in_scope(|| {
            for i in 0..EVENTS {
                if let (Some(hole), FIRST) = (hole, i) {
                    wait_for(HANG, "the service's first export request", || {
                        hole.first_request_waiting()
                    });
                }
                tracing::info!(i = i as u64, "event");
            }
        });
    });
    let logging = started.elapsed();
    if let Some(hole) = hole {
        guard.writer().flush_with_timeout(HANG).unwrap();
        let events = main_records(root)
            .iter()
            .filter(|r| r["message"] == "event")
            .count();
        assert_eq!(events, EVENTS, "every event on disk before the export ends");
        assert_eq!(
            hole.first_request_waiting(),
            Some(true),
            "the export was given up before the service had logged its events: the service \
             waited on it"
        );
    }
    let started = Instant::now();
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = done.send(());
    });
    dropped.recv_timeout(HANG).unwrap_or_else(|_| {
        panic!("dropping the guard did not return in {HANG:?} (its shutdown timeout is 4 s)")
    });
    (logging, started.elapsed())
}

fn check_files(root: &Path, expect_warning: bool) {
    let records = main_records(root);
    let events = records.iter().filter(|r| r["message"] == "event").count();
    assert_eq!(events, EVENTS, "every event in the files");
    let warnings: Vec<&Value> = records
        .iter()
        .filter(|r| r["logger"] == "tracekit::otlp")
        .collect();
    if expect_warning {
        assert!(
            !warnings.is_empty(),
            "a WARNING record reports the OTLP losses"
        );
        assert!(warnings.iter().all(|w| w["level"] == "WARNING"));
        let lost: u64 = warnings
            .iter()
            .map(|w| {
                w["data"]["otlp.dropped"].as_u64().unwrap()
                    + w["data"]["otlp.failed"].as_u64().unwrap()
            })
            .sum();
        assert!(lost > 0, "{warnings:#?}");
        assert!(warnings.len() <= 3, "rate-limited: {warnings:#?}");
    } else {
        assert!(warnings.is_empty(), "{warnings:#?}");
    }
}

/// Neither a collector that refuses connections nor one that never answers holds up the
/// service: with the black hole holding the service's first export request, the rest of
/// the events are logged and on disk while that request still waits (a service that waited
/// on its export would find it given up, after the exporter's 10 s timeout). Either way the
/// files have every event, a WARNING counts what OTLP lost, and dropping the guard returns.
#[test]
fn a_collector_down_or_black_holing_never_holds_up_the_service_or_touches_its_files() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let rotel = Rotel::start(&peers, dir.path());
    let hole = BlackHole::start();
    let down = free_port(); // nothing listens there

    let (files_only, _) = run_service(&dir.path().join("files"), None, None);
    check_files(&dir.path().join("files"), false);
    let (healthy, healthy_stop) =
        run_service(&dir.path().join("healthy"), Some(&rotel.endpoint()), None);
    let (refused, refused_stop) = run_service(
        &dir.path().join("down"),
        Some(&format!("http://127.0.0.1:{down}")),
        None,
    );
    check_files(&dir.path().join("down"), true);
    let hole_root = dir.path().join("hole");
    let (black_holed, hole_stop) = run_service(
        &hole_root,
        Some(&format!("http://127.0.0.1:{}", hole.port)),
        Some(&hole),
    );
    check_files(&hole_root, true);
    eprintln!(
        "{EVENTS} events: files only {files_only:?}; OTLP to rotel {healthy:?} (guard drop \
         {healthy_stop:?}); collector down {refused:?} (drop {refused_stop:?}); black hole \
         {black_holed:?} (drop {hole_stop:?})"
    );
    drop(rotel);
}

/// Set by [`the_standard_variables_configure_the_export`] for its child process.
const CHILD: &str = "TRACEKIT_INTEROP_ENV_CHILD";

/// The child process of [`the_standard_variables_configure_the_export`]: `tracekit::init()`
/// configured by the `OTEL_*` variables alone. Ignored: it runs only as that child.
#[test]
#[ignore = "run by the_standard_variables_configure_the_export in a child process"]
fn env_child() {
    assert!(
        std::env::var_os(CHILD).is_some(),
        "run by the_standard_variables_configure_the_export only"
    );
    let guard = tracekit::init();
    for i in 0..40 {
        LogContext::new()
            .request_id(format!("req-env-{i}"))
            .in_scope(|| tracing::info!(i = i as u64, "env event"));
    }
    // The OpenTelemetry logs API goes to the same places.
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    let logger = guard.logger_provider().logger("billing");
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Warn);
    record.set_body("invoice late".into());
    logger.emit(record);
    drop(guard);
}

#[test]
fn the_standard_variables_configure_the_export() {
    let peers = peers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trace");
    let mut rotel = Rotel::start(&peers, dir.path());
    // In front of rotel, to see the requests' headers.
    let front = Front::start(rotel.http_port, 0);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_child", "--ignored", "--nocapture"])
        .env(CHILD, "1")
        .env("TRACEKIT_DIR", &root)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", front.port),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=tracekit")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        .env("OTEL_SERVICE_NAME", "env-service")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=interop")
        .env("OTEL_TRACES_SAMPLER", "traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "0.5")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records = main_records(&root);
    let spans: Vec<&Value> = records.iter().filter(|r| r.get("span").is_some()).collect();
    assert_eq!(spans.len(), 40, "the files keep every span");
    let sampler = OtlpSampler::TraceIdRatio(0.5);
    let kept: Vec<&str> = spans
        .iter()
        .map(|s| s["trace_id"].as_str().unwrap())
        .filter(|t| sampler.samples_trace(opentelemetry::trace::TraceId::from_hex(t).unwrap()))
        .collect();
    assert!(!kept.is_empty() && kept.len() < 40, "{}", kept.len());
    let (logs, _) = rotel.wait_for(41, kept.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let got_spans = rotel.spans();
    let mut got: Vec<&str> = got_spans.iter().map(|s| s.field("Trace ID")).collect();
    let mut want = kept.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "exactly the traces the ratio keeps");
    assert_eq!(logs.len(), 41, "logs are not sampled");
    for log in &logs {
        assert_eq!(
            log.resource.get("service.name").map(String::as_str),
            Some("Str(env-service)")
        );
        assert_eq!(
            log.resource
                .get("deployment.environment")
                .map(String::as_str),
            Some("Str(interop)")
        );
    }
    let late = logs.iter().find(|l| l.body() == "invoice late").unwrap();
    assert_eq!(late.severity_number(), Some(13));
    let heads = front.heads();
    assert!(!heads.is_empty());
    for head in &heads {
        assert!(head.contains("\r\nx-tenant: tracekit"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/x-protobuf"),
            "{head}"
        );
    }
    assert!(heads.iter().any(|h| h.starts_with("post /v1/traces ")));
    assert!(heads.iter().any(|h| h.starts_with("post /v1/logs ")));
}
