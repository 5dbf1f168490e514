//! A log directory with known contents, written through the real writer (rotating into gzip
//! archives, with daily files and the errors/ and performance/ copies), and the model of
//! what was written, from which the tests compute every answer independently.

#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};
use tracekit::exporters::{
    CodeContext, DailyFiles, Exception, Level, LogWriter, Record, SpanInfo, SpanStatus, Value,
};

pub const STAGES: [&str; 5] = [
    "candidate",
    "ranking",
    "exploration",
    "diversity",
    "serving",
];
pub const REQUESTS: usize = 240;
pub const ERROR_TYPES: [&str; 3] = ["ValueError", "TimeoutError", "KeyError"];

/// One record as the test wrote it.
#[derive(Clone, Debug)]
pub struct Spec {
    pub micros: i64,
    pub level: &'static str,
    pub component: String,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub message: String,
    pub duration_ms: Option<f64>,
    pub function: Option<String>,
    pub error_type: Option<String>,
    pub trace_id: Option<String>,
    pub span: Option<(String, String, Option<String>)>, // (span id, name, parent)
    pub data: Vec<(String, f64)>,
}

impl Spec {
    pub fn is_error(&self) -> bool {
        self.level == "ERROR" || self.level == "CRITICAL"
    }
    pub fn timestamp(&self) -> String {
        tracekit_analyzer::Timestamp::from_micros(self.micros).to_string()
    }
}

pub struct Dataset {
    pub dir: tempfile::TempDir,
    pub specs: Vec<Spec>,
    /// Records written before `now - 1h` (first half) and after (second half).
    pub now_micros: i64,
}

impl Dataset {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// The exact duration the test gives a stage of a request: a spread of values with ties.
pub fn stage_ms(i: usize, k: usize) -> f64 {
    ((i * 37 + k * 101) % 997) as f64 + 0.25 * ((i % 4) as f64)
}

fn trace_id(i: usize) -> TraceId {
    TraceId::from_bytes(((i as u128 + 1) * 0x0101_0101_0101_0101_0101).to_be_bytes())
}

fn span_id(i: usize, k: usize) -> SpanId {
    SpanId::from_bytes(((i as u64 + 1) * 1000 + k as u64 + 1).to_be_bytes())
}

fn hex_trace(t: TraceId) -> String {
    format!("{t}")
}

/// Writes the dataset. `max_file_size` small enough makes every component rotate into
/// gzip archives.
pub fn build() -> Dataset {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = LogWriter::builder()
        .root(dir.path())
        .max_file_size(16 * 1024)
        .error_file_size(4 * 1024)
        .performance_file_size(16 * 1024)
        .max_backups(100_000)
        .daily_files(DailyFiles::All)
        .build()
        .unwrap();
    let now = SystemTime::now();
    let mut specs = Vec::new();
    for i in 0..REQUESTS {
        // First half three hours ago, second half in the last 40 minutes.
        let t0 = if i < REQUESTS / 2 {
            now - Duration::from_secs(3 * 3600) + Duration::from_secs(10 * i as u64)
        } else {
            now - Duration::from_secs(40 * 60) + Duration::from_secs(5 * (i - REQUESTS / 2) as u64)
        };
        write_request(&writer, &mut specs, i, t0);
    }
    assert_eq!(writer.flush(), Ok(()));
    assert!(writer.wait_for_archives(Duration::from_secs(30)));
    drop(guard);
    let status = writer.status();
    assert_eq!(status.records_written as usize, specs.len());
    assert!(status.rotations > 0 && status.archives_compressed > 0);
    Dataset {
        dir,
        specs,
        now_micros: micros(now),
    }
}

fn write_request(writer: &LogWriter, specs: &mut Vec<Spec>, i: usize, t0: SystemTime) {
    let req = format!("req-{i:04}");
    let user = format!("user-{}", i % 7);
    let traced = i % 20 == 0;
    let tid = trace_id(i);
    let mut emit = |spec: Spec, record: Record<'_>| {
        writer.write(&record).unwrap();
        specs.push(spec);
    };
    let base = |level: &'static str, component: &str, message: &str, t: SystemTime| Spec {
        micros: micros(t),
        level,
        component: component.to_owned(),
        request_id: Some(req.clone()),
        user_id: Some(user.clone()),
        message: message.to_owned(),
        duration_ms: None,
        function: None,
        error_type: None,
        trace_id: traced.then(|| hex_trace(tid)),
        span: None,
        data: Vec::new(),
    };

    // app: request received.
    {
        let spec = base("INFO", "app", "Request received", t0);
        let mut r = Record::new(Level::INFO, "app", "Request received")
            .timestamp(t0)
            .request_id(&req)
            .user_id(&user);
        if traced {
            r = r.trace(tid, span_id(i, 0));
        }
        emit(spec, r);
    }
    let error_stage = (i % 13 == 0).then_some((i / 13) % 5);
    for (k, stage) in STAGES.iter().enumerate() {
        let t_start = t0 + Duration::from_millis(10 * k as u64 + 1);
        let input = 1000 - 100 * k as u64;
        let data_in = [("input_count", Value::U64(input))];
        let mut spec = base("INFO", stage, "Stage started", t_start);
        spec.data = vec![("input_count".into(), input as f64)];
        let mut r = Record::new(Level::INFO, stage, "Stage started")
            .timestamp(t_start)
            .request_id(&req)
            .user_id(&user)
            .data(&data_in);
        if traced {
            r = r.trace(tid, span_id(i, k + 1));
        }
        emit(spec, r);

        let t_end = t0 + Duration::from_millis(10 * (k as u64 + 1));
        let ms = stage_ms(i, k);
        let function = format!("{stage}_fn{}", i % 2);
        let ctx = CodeContext {
            function: Some(&function),
            ..CodeContext::default()
        };
        if error_stage == Some(k) {
            let kind = ERROR_TYPES[i % 3];
            let exc = Exception {
                kind,
                message: "stage failed hard",
                traceback: Some("Traceback (most recent call last):\n  at step\nboom"),
            };
            let mut spec = base("ERROR", stage, "Stage failed", t_end);
            spec.error_type = Some(kind.into());
            let mut r = Record::new(Level::ERROR, stage, "Stage failed")
                .timestamp(t_end)
                .request_id(&req)
                .user_id(&user)
                .context(ctx)
                .exception(exc);
            if traced {
                r = r.trace(tid, span_id(i, k + 1));
            }
            emit(spec, r);
            continue;
        }
        let output = input - 50;
        let data_out = [
            ("input_count", Value::U64(input)),
            ("output_count", Value::U64(output)),
            ("duration_ms", Value::F64(ms)),
        ];
        let mut spec = base("INFO", stage, "Stage completed", t_end);
        spec.duration_ms = Some(ms);
        spec.function = Some(function.clone());
        spec.data = vec![
            ("input_count".into(), input as f64),
            ("output_count".into(), output as f64),
        ];
        let mut r = Record::new(Level::INFO, stage, "Stage completed")
            .timestamp(t_end)
            .request_id(&req)
            .user_id(&user)
            .data(&data_out)
            .context(ctx)
            .timing(true);
        if traced {
            r = r.trace(tid, span_id(i, k + 1));
        }
        emit(spec, r);

        if traced {
            // A span per stage, child of the request's root span, naming no request.
            let info = SpanInfo {
                name: stage,
                kind: "internal",
                parent_span_id: Some(span_id(i, 0)),
                start: t_start,
                end: t_end,
                status: SpanStatus::Ok,
                attributes: None,
                links: &[],
            };
            let mut spec = base("INFO", stage, stage, t_end);
            spec.request_id = None;
            spec.user_id = None;
            spec.span = Some((
                format!("{}", span_id(i, k + 1)),
                stage.to_string(),
                Some(format!("{}", span_id(i, 0))),
            ));
            let r = Record::new(Level::INFO, stage, stage)
                .timestamp(t_end)
                .trace(tid, span_id(i, k + 1))
                .span(info);
            emit(spec, r);
        }
    }
    let t_last = t0 + Duration::from_millis(60);
    if i % 50 == 7 {
        let spec = base("CRITICAL", "serving", "Out of capacity", t_last);
        let r = Record::new(Level::CRITICAL, "serving", "Out of capacity")
            .timestamp(t_last)
            .request_id(&req)
            .user_id(&user);
        emit(spec, r);
    }
    if i % 10 == 3 {
        let spec = base("WARNING", "zeta", "Side work", t_last);
        let r = Record::new(Level::WARNING, "zeta", "Side work")
            .timestamp(t_last)
            .request_id(&req)
            .user_id(&user);
        emit(spec, r);
    }
    if traced {
        let info = SpanInfo {
            name: "handle_request",
            kind: "server",
            parent_span_id: None,
            start: t0,
            end: t_last,
            status: SpanStatus::Ok,
            attributes: None,
            links: &[],
        };
        let mut spec = base("INFO", "app", "handle_request", t_last);
        spec.span = Some((format!("{}", span_id(i, 0)), "handle_request".into(), None));
        let r = Record::new(Level::INFO, "app", "handle_request")
            .timestamp(t_last)
            .request_id(&req)
            .user_id(&user)
            .trace(tid, span_id(i, 0))
            .span(info);
        emit(spec, r);
    }
}

/// Writes extra records (special content) into an existing root.
pub fn write_more(root: &Path, records: &[Record<'_>]) {
    let (writer, guard) = LogWriter::builder()
        .root(root)
        .max_file_size(16 * 1024)
        .max_backups(100_000)
        .build()
        .unwrap();
    for r in records {
        writer.write(r).unwrap();
    }
    assert_eq!(writer.flush(), Ok(()));
    assert!(writer.wait_for_archives(Duration::from_secs(30)));
    drop(guard);
}

/// Exact percentile by linear interpolation, written independently of the library.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = p * (v.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    v[below] + (v[above] - v[below]) * (rank - below as f64)
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Every file under `root` whose path contains `part`.
pub fn files_with(root: &Path, part: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(part) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
