//! Writes realistic seed-format logs through the real writer, for benchmarks and demos.
//!
//! The demo service's requests pass candidate → ranking → exploration → diversity → serving,
//! with app, ab_test, feedback, features and storage around them: ten components. Each stage
//! logs what it starts with, a timing record (`data.duration_ms`, `context.function`), debug
//! detail, now and then a warning, and rarely an error with a traceback (about 0.5% of
//! requests). Times are simulated, starting at 2025-11-16T00:00:00Z, a request every few
//! milliseconds; the content is deterministic for a given `--seed`.
//!
//! ```text
//! cargo run --release --example gen_logs -- --dir /tmp/bench/trace --size 1G
//! ```
//!
//! Options: `--dir DIR` (default `trace`), `--size N[K|M|G]` of log files on disk, copies in
//! errors/ and performance/ included (default 100M), `--seed N`, `--max-file-size N[K|M|G]`
//! (rotation size, default the writer's 100 MiB: with a bigger value nothing is archived).
//! It prints one request id per line at the end: requests from the start, the middle and the
//! end of the set, for `trace_request`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};
use tracekit::exporters::{CodeContext, DailyFiles, Exception, Level, LogWriter, Record, Value};

const STAGES: [(&str, &str, &str); 5] = [
    (
        "candidate",
        "generate_candidate_pool",
        "candidate_generation.rs",
    ),
    ("ranking", "rank_candidates", "ranking.rs"),
    ("exploration", "inject_exploration", "exploration.rs"),
    ("diversity", "apply_diversity", "diversity.rs"),
    ("serving", "serve_recommendations", "serving.rs"),
];

const ERRORS: [(&str, &str); 4] = [
    ("ValueError", "Invalid candidate count"),
    ("TimeoutError", "model server timed out after 2000 ms"),
    ("KeyError", "feature 'user_embedding' missing"),
    ("ConnectionError", "feature store unreachable"),
];

/// splitmix64: small, fast, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, per_thousand: u64) -> bool {
        self.below(1000) < per_thousand
    }
    /// A latency in ms: log-normal-ish, mostly around `typical`, with a long tail.
    fn latency(&mut self, typical: f64) -> f64 {
        let u = (self.below(1_000_000) as f64 + 0.5) / 1_000_000.0;
        let tail = if self.chance(10) { 8.0 } else { 1.0 };
        ((typical * (0.4 + 1.6 * u) * tail) * 1000.0).round() / 1000.0
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("not a size: {s:?}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = "trace".to_owned();
    let mut size = 100u64 << 20;
    let mut seed = 42u64;
    let mut max_file_size = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = value()?,
            "--size" => size = parse_size(&value()?)?,
            "--seed" => seed = value()?.parse()?,
            "--max-file-size" => max_file_size = Some(parse_size(&value()?)?),
            "-h" | "--help" => {
                println!(
                    "gen_logs [--dir DIR] [--size N[K|M|G]] [--seed N] [--max-file-size N[K|M|G]]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let mut builder = LogWriter::builder()
        .root(&dir)
        .daily_files(DailyFiles::None)
        .queue_bytes(64 << 20);
    if let Some(m) = max_file_size {
        builder = builder
            .max_file_size(m)
            .error_file_size(m)
            .performance_file_size(m);
    }
    let (writer, guard) = builder.build()?;
    let mut rng = Rng(seed);
    let mut now = UNIX_EPOCH + Duration::from_secs(1_763_251_200); // 2025-11-16T00:00:00Z
    let mut ids = Vec::new();
    let mut n = 0u64;
    loop {
        // The queue holds unwritten bytes: flush before comparing.
        if n % 1000 == 0 && writer.flush().is_ok() && writer.status().bytes_written >= size {
            break;
        }
        let req = format!("req-{:016x}", rng.next());
        ids.push(req.clone());
        now += Duration::from_micros(500 + rng.below(4000));
        request(&writer, &mut rng, now, &req)?;
        n += 1;
    }
    drop(guard);
    eprintln!(
        "gen_logs: {n} requests, {} bytes under {dir}",
        writer.status().bytes_written
    );
    let middle = ids.len() / 2;
    for i in [0, middle, ids.len() - 1] {
        println!("{}", ids[i]);
    }
    Ok(())
}

fn trace_ids(rng: &mut Rng) -> (TraceId, SpanId) {
    let hi = rng.next().to_be_bytes();
    let lo = rng.next().to_be_bytes();
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&hi);
    t[8..].copy_from_slice(&lo);
    (
        TraceId::from_bytes(t),
        SpanId::from_bytes(rng.next().to_be_bytes()),
    )
}

fn request(
    writer: &LogWriter,
    rng: &mut Rng,
    start: SystemTime,
    req: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let user = format!("user-{}", rng.below(100_000));
    let session = format!("session-{:08x}", rng.below(1 << 32));
    let (trace_id, span_id) = trace_ids(rng);
    let mut t = start;
    let base = |level, component, message| {
        Record::new(level, component, message)
            .request_id(req)
            .user_id(&user)
            .session_id(&session)
            .trace(trace_id, span_id)
    };
    let ctx = |function, file, line| CodeContext {
        function: Some(function),
        file: Some(file),
        line: Some(line),
        thread: Some(140_000 + (line as u64 % 8)),
        process: Some(4242),
    };
    let variant = if rng.chance(500) {
        "control"
    } else {
        "treatment"
    };
    let app_data = [
        ("endpoint", Value::Str("/v1/recommendations")),
        ("count", Value::U64(50)),
    ];
    writer.write(
        &base(Level::INFO, "app", "Request received")
            .timestamp(t)
            .logger("app.server")
            .data(&app_data)
            .context(ctx("handle_request", "server.rs", 88)),
    )?;
    let ab = [
        ("experiment", Value::Str("ranker_v7")),
        ("variant", Value::Str(variant)),
    ];
    writer.write(
        &base(Level::DEBUG, "ab_test", "Assigned variant")
            .timestamp(t)
            .logger("ab_test.assign")
            .data(&ab)
            .context(ctx("assign_variant", "ab_test.rs", 41)),
    )?;
    let feature_ms = rng.latency(4.0);
    t += Duration::from_micros((feature_ms * 1000.0) as u64);
    let fdata = [
        ("num_features", Value::U64(256)),
        ("cache_hit", Value::Bool(rng.chance(800))),
        ("duration_ms", Value::F64(feature_ms)),
    ];
    writer.write(
        &base(Level::INFO, "features", "Fetched user features")
            .timestamp(t)
            .logger("features.store")
            .data(&fdata)
            .context(ctx("fetch_user_features", "features.rs", 120))
            .timing(true),
    )?;
    let sdata = [
        ("table", Value::Str("user_history")),
        ("rows", Value::U64(rng.below(500))),
    ];
    writer.write(
        &base(Level::DEBUG, "storage", "Loaded history")
            .timestamp(t)
            .logger("storage.pg")
            .data(&sdata)
            .context(ctx("load_history", "storage.rs", 77)),
    )?;
    let mut count = 1500 + rng.below(1000);
    let failing_stage = if rng.chance(5) {
        Some(rng.below(5) as usize)
    } else {
        None
    };
    for (i, (component, function, file)) in STAGES.iter().enumerate() {
        let typical = [45.0, 120.0, 8.0, 12.0, 5.0][i];
        let started = [("input_count", Value::U64(count))];
        writer.write(
            &base(Level::INFO, component, "Stage started")
                .timestamp(t)
                .logger(component)
                .data(&started)
                .context(ctx(function, file, 30 + i as u32)),
        )?;
        let detail = [
            ("batch", Value::U64(rng.below(16))),
            ("shard", Value::U64(rng.below(64))),
        ];
        writer.write(
            &base(Level::DEBUG, component, "Processing batch")
                .timestamp(t)
                .logger(component)
                .data(&detail)
                .context(ctx(function, file, 60 + i as u32)),
        )?;
        let ms = rng.latency(typical);
        t += Duration::from_micros((ms * 1000.0) as u64);
        if failing_stage == Some(i) {
            let (kind, message) = ERRORS[rng.below(ERRORS.len() as u64) as usize];
            let traceback = format!(
                "Traceback (most recent call last):\n  File \"{file}\", line {}, in {function}\n    result = step(candidates)\n{kind}: {message}",
                100 + i
            );
            let exc = Exception {
                kind,
                message,
                traceback: Some(&traceback),
            };
            let edata = [
                ("input_count", Value::U64(count)),
                ("duration_ms", Value::F64(ms)),
            ];
            writer.write(
                &base(Level::ERROR, component, "Stage failed")
                    .timestamp(t)
                    .logger(component)
                    .data(&edata)
                    .context(ctx(function, file, 100 + i as u32))
                    .exception(exc)
                    .timing(true),
            )?;
            return Ok(());
        }
        let out = match i {
            0 => count,
            1 => count.min(400),
            2 => count + 20,
            3 => count.saturating_sub(count / 10),
            _ => 50,
        };
        let done = [
            ("input_count", Value::U64(count)),
            ("output_count", Value::U64(out)),
            ("duration_ms", Value::F64(ms)),
        ];
        writer.write(
            &base(Level::INFO, component, "Stage completed")
                .timestamp(t)
                .logger(component)
                .data(&done)
                .context(ctx(function, file, 90 + i as u32))
                .timing(true),
        )?;
        if ms > typical * 4.0 {
            let w = [
                ("elapsed_ms", Value::F64(ms)),
                ("budget_ms", Value::F64(typical * 4.0)),
            ];
            writer.write(
                &base(Level::WARNING, component, "Stage over latency budget")
                    .timestamp(t)
                    .logger(component)
                    .data(&w)
                    .context(ctx(function, file, 95 + i as u32)),
            )?;
        }
        count = out;
    }
    let total = (t.duration_since(start).unwrap_or_default().as_micros() as f64) / 1000.0;
    let done = [("status", Value::U64(200)), ("total_ms", Value::F64(total))];
    writer.write(
        &base(Level::INFO, "app", "Request completed")
            .timestamp(t)
            .logger("app.server")
            .data(&done)
            .context(ctx("handle_request", "server.rs", 140)),
    )?;
    if rng.chance(300) {
        let fb = [
            ("event", Value::Str("click")),
            ("position", Value::U64(rng.below(50))),
        ];
        writer.write(
            &base(Level::INFO, "feedback", "Feedback recorded")
                .timestamp(t + Duration::from_secs(2))
                .logger("feedback")
                .data(&fb)
                .context(ctx("record_feedback", "feedback.rs", 52)),
        )?;
    }
    Ok(())
}
