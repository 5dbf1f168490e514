//! The demo: a recommendation service that serves concurrent requests through the seed's
//! pipeline and writes its trace logs with tracekit.
//!
//! ```text
//! cargo run --release --example recommendation_pipeline
//! cargo run --release --example recommendation_pipeline -- --requests 500 --concurrency 32 --error-rate 0.1 --seed 7
//! TRACEKIT_DIR=/tmp/trace cargo run --release --example recommendation_pipeline
//! ```
//!
//! Every request runs inside a [`LogContext`] (request, user and session ids, the client) and
//! goes through A/B bucket assignment (`ab_test`), candidate generation from an in-network and
//! an out-of-network source (`candidate`), a small logistic scoring model (`ranking`),
//! epsilon-greedy exploration (`exploration`), author and topic caps (`diversity`), serving
//! (`serving`) and simulated engagement (`feedback`). The stage fns carry the decorators, so
//! each call leaves an entry record, a timing record (copied to `performance/`) and, when it
//! fails, an error record with its exception (copied to `errors/`).
//!
//! Failures happen at `--error-rate`: the out-of-network source times out (the request is
//! served from in-network candidates only, with an `ERROR` record in `candidate`), or the
//! client sends a count that is not a number (the request fails, with an `ERROR` record in
//! `serving`).
//!
//! The same `--seed` gives the same users, buckets, failures, scores and recommendations.
//! Request ids carry a tag of the run (`req-<run>-<n>`), so runs that share a directory stay
//! apart. The library prints nothing; this program prints a summary at the end, read back
//! from the files it wrote, and the commands to follow a request through them.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;
use tracekit::{LogContext, Logger};

const USAGE: &str = "\
recommendation_pipeline: a recommendation service that writes tracekit trace logs

USAGE:
    cargo run --release --example recommendation_pipeline -- [OPTIONS]

OPTIONS:
    --requests N      requests to serve (default 200)
    --concurrency C   requests in flight at once (default 16)
    --error-rate R    share of requests that meet a failure, 0 to 1 (default 0.05)
    --seed S          seed of the simulation: same seed, same run (default 42)
    --dir DIR         the log root (default: $TRACEKIT_DIR, else trace)
    -h, --help        this help
";

/// Out-of-network fetches slower than this time out.
const SOURCE_TIMEOUT: Duration = Duration::from_millis(25);
/// Exploration rate of the epsilon-greedy stage.
const EPSILON: f64 = 0.1;
/// At most this many items per author, and per topic, in one response.
const AUTHOR_CAP: usize = 2;
const TOPIC_CAP: usize = 4;
const TOPICS: [&str; 8] = [
    "sports", "music", "tech", "news", "food", "travel", "gaming", "science",
];
const CLIENTS: [&str; 3] = ["ios", "android", "web"];

// One logger per component, created once, as the seed recommends.
static APP: LazyLock<Logger> = LazyLock::new(|| tracekit::get_logger(module_path!(), "app"));
static CANDIDATE: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "candidate"));
static RANKING: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "ranking"));
static EXPLORATION: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "exploration"));
static DIVERSITY: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "diversity"));
static SERVING: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "serving"));
static AB_TEST: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "ab_test"));
static FEEDBACK: LazyLock<Logger> =
    LazyLock::new(|| tracekit::get_logger(module_path!(), "feedback"));

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("recommendation_pipeline: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("recommendation_pipeline: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub requests: usize,
    pub concurrency: usize,
    pub error_rate: f64,
    pub seed: u64,
    pub dir: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            requests: 200,
            concurrency: 16,
            error_rate: 0.05,
            seed: 42,
            dir: std::env::var_os("TRACEKIT_DIR")
                .filter(|d| !d.is_empty())
                .map_or_else(|| PathBuf::from("trace"), PathBuf::from),
        }
    }
}

impl Options {
    /// `Ok(None)` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut o = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            if name == "-h" || name == "--help" {
                return Ok(None);
            }
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name.as_str() {
                "--requests" => o.requests = number(&name, &value()?)?,
                "--concurrency" => o.concurrency = number(&name, &value()?)?,
                "--error-rate" => o.error_rate = number(&name, &value()?)?,
                "--seed" => o.seed = number(&name, &value()?)?,
                "--dir" => o.dir = PathBuf::from(value()?),
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        if o.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&o.error_rate) {
            return Err("--error-rate must be between 0 and 1".into());
        }
        Ok(Some(o))
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: not a valid number: {value:?}"))
}

/// What one run did, with what it wrote read back from the files.
#[derive(Debug)]
pub struct Report {
    pub options: Options,
    pub run_tag: String,
    pub elapsed: Duration,
    pub served: usize,
    pub degraded: usize,
    pub failed: usize,
    /// Records this run added to `DIR/logs/<component>/<component>.log`, per component.
    pub records: BTreeMap<String, u64>,
    /// Two requests served without an error.
    pub ok_requests: Vec<String>,
    /// A request of this run with an error record in `errors/errors.log`, and its message.
    pub error_request: Option<(String, String)>,
}

impl Report {
    /// The commands to try next, exactly as printed.
    pub fn next_commands(&self) -> Vec<String> {
        let dir = shell_word(&self.options.dir.display().to_string());
        let mut out = Vec::new();
        let mut ids: Vec<&str> = self
            .ok_requests
            .iter()
            .take(1)
            .map(|s| s.as_str())
            .collect();
        if let Some((id, _)) = &self.error_request {
            ids.push(id);
        }
        for id in ids {
            out.push(format!(
                "cargo run --release --bin trace_request -- {id} --dir {dir}"
            ));
        }
        out.push(format!(
            "cargo run --release --bin log_analyzer -- errors --component candidate --dir {dir}"
        ));
        out.push(format!(
            "cargo run --release --bin log_analyzer -- performance ranking --dir {dir}"
        ));
        out.push(format!(
            "cargo run --release --bin log_analyzer -- slow candidate --threshold 20 --dir {dir}"
        ));
        out.push(format!(
            "cargo run --release --bin log_analyzer -- summary --dir {dir}"
        ));
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let logs = o.dir.join("logs");
        writeln!(
            f,
            "served {} requests in {:.2} s (concurrency {}, error rate {}, seed {}, run {})",
            o.requests,
            self.elapsed.as_secs_f64(),
            o.concurrency,
            o.error_rate,
            o.seed,
            self.run_tag
        )?;
        writeln!(
            f,
            "  {} ok, {} degraded (out-of-network source timed out), {} failed (invalid count)",
            self.served, self.degraded, self.failed
        )?;
        writeln!(f, "\nrecords written, read back from the files:")?;
        for (component, n) in &self.records {
            let file = logs.join(component).join(format!("{component}.log"));
            writeln!(f, "  {component:<12} {n:>6}  {}", file.display())?;
        }
        writeln!(f, "\nrequests to follow:")?;
        for id in &self.ok_requests {
            writeln!(f, "  {id}  served")?;
        }
        if let Some((id, message)) = &self.error_request {
            writeln!(f, "  {id}  error: {message}")?;
        }
        writeln!(f, "\nnext:")?;
        for command in self.next_commands() {
            writeln!(f, "  {command}")?;
        }
        Ok(())
    }
}

/// Runs the service: sets tracekit up under `options.dir`, serves `options.requests`
/// requests, flushes, and reads back what was written.
pub fn run(options: &Options) -> Result<Report, Box<dyn Error>> {
    let before = count_records(&options.dir.join("logs"));
    let started = Instant::now();
    let guard = tracekit::builder()
        .root(&options.dir)
        .service_name("recommendation-service")
        .init();
    let run_tag = run_tag();

    APP.info(
        "Service started",
        json!({
            "run": run_tag,
            "requests": options.requests,
            "concurrency": options.concurrency,
            "error_rate": options.error_rate,
            "seed": options.seed,
        }),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()?;
    let outcomes = runtime.block_on(serve_all(options, &run_tag));
    drop(runtime);

    let failed = outcomes.iter().filter(|o| o.failed.is_some()).count();
    let degraded = outcomes.iter().filter(|o| o.degraded).count();
    APP.info(
        "Service stopped",
        json!({
            "run": run_tag,
            "served": outcomes.len() - failed,
            "degraded": degraded,
            "failed": failed,
            "duration_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    );
    // Dropping the guard flushes every record and span to the files.
    drop(guard);
    let elapsed = started.elapsed();

    let after = count_records(&options.dir.join("logs"));
    let records = after
        .into_iter()
        .map(|(c, n)| {
            let added = n.saturating_sub(before.get(&c).copied().unwrap_or(0));
            (c, added)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let prefix = format!("req-{run_tag}-");
    let error_request = first_error(&options.dir, &prefix);
    let ok_requests = outcomes
        .iter()
        .filter(|o| o.failed.is_none() && !o.degraded)
        .filter(|o| {
            error_request
                .as_ref()
                .is_none_or(|(id, _)| *id != o.request_id)
        })
        .take(2)
        .map(|o| o.request_id.clone())
        .collect();
    Ok(Report {
        options: options.clone(),
        run_tag,
        elapsed,
        served: outcomes.len() - failed - degraded,
        degraded,
        failed,
        records,
        ok_requests,
        error_request,
    })
}

/// Lines per `<component>/<component>.log` under `logs` (errors and performance included).
fn count_records(logs: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(logs) else {
        return out;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if let Ok(text) = std::fs::read(dir.path().join(format!("{name}.log"))) {
            let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
            out.insert(name, lines);
        }
    }
    out
}

/// The first (by request id) of this run's requests with an exception in `errors/errors.log`,
/// and the exception's message.
fn first_error(root: &Path, prefix: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(root.join("logs/errors/errors.log")).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|r| {
            let id = r["request_id"].as_str()?.to_owned();
            let message = r["exception"]["message"].as_str()?.to_owned();
            id.starts_with(prefix).then_some((id, message))
        })
        .min()
}

fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{:06x}", Rng::new(nanos).next_u64() & 0xff_ffff)
}

/// Quotes a path for the printed commands when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---- The service.

struct Outcome {
    index: usize,
    request_id: String,
    degraded: bool,
    failed: Option<String>,
}

/// Serves every request, at most `concurrency` at once.
async fn serve_all(options: &Options, run_tag: &str) -> Vec<Outcome> {
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..options.requests {
        let permits = Arc::clone(&permits);
        let request = Request::simulate(options, run_tag, index);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            handle(index, request).await
        });
    }
    let mut outcomes = Vec::with_capacity(options.requests);
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.expect("request tasks do not panic"));
    }
    outcomes.sort_by_key(|o| o.index);
    outcomes
}

/// A client's request, with what the simulation decided for it up front.
#[derive(Debug)]
struct Request {
    request_id: String,
    user_id: String,
    session_id: String,
    client: &'static str,
    /// The count as the client sent it: not always a number.
    count: String,
    /// Latency of the out-of-network source: over [`SOURCE_TIMEOUT`] when it is to time out.
    out_of_network_ms: u64,
    seed: u64,
}

impl Request {
    fn simulate(options: &Options, run_tag: &str, index: usize) -> Request {
        let mut rng = Rng::new(options.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let user = rng.below(400);
        let session = rng.next_u64() as u32;
        let client = CLIENTS[rng.below(CLIENTS.len() as u64) as usize];
        let mut count = (10 + rng.below(21)).to_string();
        let mut out_of_network_ms = 4 + rng.below(12);
        if rng.chance(options.error_rate) {
            if rng.chance(0.5) {
                out_of_network_ms = SOURCE_TIMEOUT.as_millis() as u64 + 10 + rng.below(20);
            } else {
                count = ["twenty", "-5", "", "1e3"][rng.below(4) as usize].to_owned();
            }
        }
        Request {
            request_id: format!("req-{run_tag}-{index:04}"),
            user_id: format!("user-{user:04}"),
            session_id: format!("session-{session:08x}"),
            client,
            count,
            out_of_network_ms,
            seed: rng.next_u64(),
        }
    }
}

/// One request: its context, then the pipeline.
async fn handle(index: usize, request: Request) -> Outcome {
    let context = LogContext::new()
        .request_id(request.request_id.as_str())
        .user_id(request.user_id.as_str())
        .session_id(request.session_id.as_str())
        .field("client", request.client);
    let result = context.instrument(serve_recommendations(&request)).await;
    let (degraded, failed) = match result {
        Ok(response) if response.served == 0 => (true, None),
        Ok(response) => (response.degraded, None),
        Err(err) => (false, Some(err.to_string())),
    };
    Outcome {
        index,
        request_id: request.request_id,
        degraded,
        failed,
    }
}

#[derive(Clone, Debug, Serialize)]
struct Candidate {
    id: u64,
    author: u32,
    topic: &'static str,
    in_network: bool,
    /// author affinity, recency, engagement rate
    features: [f64; 3],
    score: f64,
    explored: bool,
}

struct Response {
    served: usize,
    degraded: bool,
}

#[derive(Debug)]
enum ServeError {
    InvalidCount {
        raw: String,
        source: std::num::ParseIntError,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::InvalidCount { raw, .. } => write!(f, "invalid count {raw:?}"),
        }
    }
}

impl Error for ServeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ServeError::InvalidCount { source, .. } => Some(source),
        }
    }
}

#[derive(Debug)]
struct SourceTimeout {
    source_name: &'static str,
    elapsed: tokio::time::error::Elapsed,
}

impl fmt::Display for SourceTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} source timed out after {} ms",
            self.source_name,
            SOURCE_TIMEOUT.as_millis()
        )
    }
}

impl Error for SourceTimeout {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.elapsed)
    }
}

/// The request's entry point: every stage runs inside its span, the request's context in
/// every record. A returned `Err` is logged (with its exception) by the decorator.
#[tracekit::trace_execution(component = "serving", skip(request))]
async fn serve_recommendations(request: &Request) -> Result<Response, ServeError> {
    let started = Instant::now();
    SERVING.info(
        "Request received",
        json!({ "client": request.client, "count": request.count }),
    );
    let count: u16 = request
        .count
        .parse()
        .map_err(|source| ServeError::InvalidCount {
            raw: request.count.clone(),
            source,
        })?;
    let count = usize::from(count);
    let bucket = assign_bucket(&request.user_id, "ranker_v2");

    let candidates = generate_candidates(
        &request.user_id,
        count * 10,
        request.out_of_network_ms,
        request.seed,
    )
    .await;
    let degraded = !candidates.iter().any(|c| !c.in_network);
    let ranked = rank(candidates, bucket).await;
    let explored = explore(ranked, count, request.seed).await;
    let items = diversify(explored, count).await;

    SERVING.info(
        "Recommendations served",
        json!({
            "count": items.len(),
            "requested": count,
            "bucket": bucket,
            "degraded": degraded,
            "explored": items.iter().filter(|c| c.explored).count(),
            "top": items.iter().take(3).map(|c| c.id).collect::<Vec<_>>(),
            "duration_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    );
    record_feedback(&items, request.seed).await;
    Ok(Response {
        served: items.len(),
        degraded,
    })
}

/// A/B bucket of a user: a stable hash of the user and the experiment.
#[tracekit::trace_execution(component = "ab_test")]
fn assign_bucket(user_id: &str, experiment: &str) -> &'static str {
    let hash = fnv1a(format!("{experiment}:{user_id}").as_bytes());
    let bucket = if hash % 100 < 50 {
        "control"
    } else {
        "treatment"
    };
    AB_TEST.info(
        "Bucket assigned",
        json!({ "experiment": experiment, "bucket": bucket, "hash_mod": hash % 100 }),
    );
    bucket
}

/// Candidate generation: both sources at once; without the out-of-network one when it times
/// out.
#[tracekit::trace_execution(component = "candidate")]
async fn generate_candidates(
    user_id: &str,
    count: usize,
    out_of_network_ms: u64,
    seed: u64,
) -> Vec<Candidate> {
    let half = count / 2;
    let (in_network, out_of_network) = tokio::join!(
        fetch_in_network(user_id, half, seed),
        fetch_out_of_network(user_id, count - half, out_of_network_ms, seed ^ 1),
    );
    let mut pool = in_network;
    let out_count = match out_of_network {
        Ok(more) => {
            let n = more.len();
            pool.extend(more);
            n
        }
        Err(err) => {
            CANDIDATE.warning(
                "Serving from in-network candidates only",
                json!({ "reason": err.to_string() }),
            );
            0
        }
    };
    CANDIDATE.info(
        "Generated candidates",
        json!({
            "num_candidates": pool.len(),
            "in_network": pool.len() - out_count,
            "out_network": out_count,
            "sources": ["in_network", "out_of_network"],
        }),
    );
    pool
}

/// Candidates from the accounts the user follows.
#[tracekit::log_performance(log_args = true)]
async fn fetch_in_network(user_id: &str, limit: usize, seed: u64) -> Vec<Candidate> {
    let mut rng = Rng::new(seed);
    tokio::time::sleep(Duration::from_millis(3 + rng.below(6))).await;
    let _ = user_id;
    (0..limit)
        .map(|_| Candidate::simulate(&mut rng, true))
        .collect()
}

/// Candidates from outside the user's network (embedding neighbours); a slow store times out.
#[tracekit::log_errors]
#[tracekit::log_performance(log_args = true)]
async fn fetch_out_of_network(
    user_id: &str,
    limit: usize,
    latency_ms: u64,
    seed: u64,
) -> Result<Vec<Candidate>, SourceTimeout> {
    let _ = user_id;
    let fetch = async {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        let mut rng = Rng::new(seed);
        (0..limit)
            .map(|_| Candidate::simulate(&mut rng, false))
            .collect()
    };
    tokio::time::timeout(SOURCE_TIMEOUT, fetch)
        .await
        .map_err(|elapsed| SourceTimeout {
            source_name: "out_of_network",
            elapsed,
        })
}

impl Candidate {
    fn simulate(rng: &mut Rng, in_network: bool) -> Candidate {
        Candidate {
            id: rng.below(1_000_000),
            author: rng.below(60) as u32,
            topic: TOPICS[rng.below(TOPICS.len() as u64) as usize],
            in_network,
            features: [rng.unit(), rng.unit(), rng.unit()],
            score: 0.0,
            explored: false,
        }
    }
}

/// Ranking: a logistic model over three features plus an in-network bonus; the treatment
/// bucket gets the second model's weights.
#[tracekit::trace_execution(component = "ranking", skip(candidates))]
async fn rank(mut candidates: Vec<Candidate>, bucket: &str) -> Vec<Candidate> {
    let (model, weights, bias, network_bonus) = match bucket {
        "treatment" => ("ranker_v2", [1.4, 0.6, 2.2], -2.0, 0.3),
        _ => ("ranker_v1", [1.0, 1.0, 1.5], -1.8, 0.6),
    };
    // Scoring a pool takes a few ms of "model time".
    tokio::time::sleep(Duration::from_millis(2 + candidates.len() as u64 / 100)).await;
    for c in &mut candidates {
        let z: f64 = c
            .features
            .iter()
            .zip(weights)
            .map(|(x, w)| x * w)
            .sum::<f64>()
            + bias
            + if c.in_network { network_bonus } else { 0.0 };
        c.score = 1.0 / (1.0 + (-z).exp());
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    RANKING.info(
        "Candidates ranked",
        json!({
            "model": model,
            "scored": candidates.len(),
            "top_score": candidates.first().map(|c| c.score),
            "median_score": candidates.get(candidates.len() / 2).map(|c| c.score),
        }),
    );
    candidates
}

/// Exploration: each of the top `count` slots is, with probability epsilon, given to a
/// random candidate from below the cut.
#[tracekit::trace_execution(component = "exploration", skip(ranked))]
async fn explore(mut ranked: Vec<Candidate>, count: usize, seed: u64) -> Vec<Candidate> {
    let mut rng = Rng::new(seed ^ 2);
    let keep = (count * 2).min(ranked.len());
    let mut explored = 0;
    for slot in 0..keep {
        if ranked.len() > keep && rng.chance(EPSILON) {
            let pick = keep + rng.below((ranked.len() - keep) as u64) as usize;
            ranked.swap(slot, pick);
            ranked[slot].explored = true;
            explored += 1;
        }
    }
    ranked.truncate(keep);
    EXPLORATION.info(
        "Exploration slots filled",
        json!({ "strategy": "epsilon_greedy", "epsilon": EPSILON, "slots": keep, "explored": explored }),
    );
    tokio::task::yield_now().await;
    ranked
}

/// Diversity injection: at most [`AUTHOR_CAP`] items per author and [`TOPIC_CAP`] per topic.
#[tracekit::trace_execution(component = "diversity", skip(items))]
async fn diversify(items: Vec<Candidate>, count: usize) -> Vec<Candidate> {
    let mut authors = BTreeMap::<u32, usize>::new();
    let mut topics = BTreeMap::<&str, usize>::new();
    let (mut by_author, mut by_topic) = (0, 0);
    let mut out = Vec::with_capacity(count);
    for c in items {
        if out.len() == count {
            break;
        }
        let a = authors.entry(c.author).or_default();
        if *a >= AUTHOR_CAP {
            by_author += 1;
            continue;
        }
        let t = topics.entry(c.topic).or_default();
        if *t >= TOPIC_CAP {
            by_topic += 1;
            continue;
        }
        *a += 1;
        *t += 1;
        out.push(c);
    }
    let level_data = json!({
        "author_cap": AUTHOR_CAP,
        "topic_cap": TOPIC_CAP,
        "dropped_by_author": by_author,
        "dropped_by_topic": by_topic,
        "kept": out.len(),
        "topics": topics.len(),
    });
    if out.len() < count {
        DIVERSITY.warning("Fewer items than requested after the caps", level_data);
    } else {
        DIVERSITY.info("Diversity caps applied", level_data);
    }
    out
}

/// Simulated engagement on what was served: a click is likelier the higher the score.
#[tracekit::trace_execution(component = "feedback", skip(items))]
async fn record_feedback(items: &[Candidate], seed: u64) {
    let mut rng = Rng::new(seed ^ 3);
    tokio::time::sleep(Duration::from_millis(1 + rng.below(3))).await;
    let clicks = items.iter().filter(|c| rng.chance(c.score * 0.4)).count();
    let likes = items.iter().filter(|c| rng.chance(c.score * 0.1)).count();
    let explored_clicks = items
        .iter()
        .filter(|c| c.explored && rng.chance(c.score * 0.4))
        .count();
    FEEDBACK.info(
        "Engagement recorded",
        json!({
            "impressions": items.len(),
            "clicks": clicks,
            "likes": likes,
            "explored_clicks": explored_clicks,
            "ctr": if items.is_empty() { 0.0 } else { clicks as f64 / items.len() as f64 },
        }),
    );
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64: small, fast, and the same numbers for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}
