//! Sending the files to an OTLP/HTTP endpoint, at least once, with a checkpoint
//! (`log_analyzer forward`; feature `otlp`).
//!
//! [`Forwarder::run`] reads every main file (live and archived, each record once, as the
//! [export](super::OtlpBatch) does), sends the records it has not sent yet as OTLP JSON
//! (`Content-Type: application/json`) to `ENDPOINT/v1/traces` and `ENDPOINT/v1/logs`, and
//! after each acknowledged batch saves the checkpoint.
//!
//! # The checkpoint
//!
//! One entry per file: the hash of its first line (the file's identity: a live file renamed
//! into `archived/` and later gzipped keeps it, so rotation neither skips nor repeats a
//! file), its device and inode (informative), and the offset, in uncompressed bytes, up to
//! which every record was acknowledged. Only whole lines are sent: a record still being
//! written is picked up next time. The checkpoint file is replaced atomically (written
//! aside, synced, renamed), so a kill leaves the old one or the new one. Entries of files
//! that no longer exist (deleted by retention) are dropped.
//!
//! Delivery is at least once: a batch acknowledged by the endpoint but killed before its
//! checkpoint was saved is sent again; nothing acknowledged and checkpointed ever is.
//!
//! # Errors and retries
//!
//! As the OTLP specification says, HTTP 429, 502, 503 and 504 (and connection failures) are
//! retried, with exponential backoff from 100 ms to 30 s (or the `Retry-After` the endpoint
//! asks for), up to 10 times; any other error status is final: [`ForwardError::Rejected`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::export::open_log;
use super::files::{discover, primary};
use super::{OtlpBatch, Signal};

/// Why forwarding stopped.
///
/// ```
/// use tracekit_analyzer::forward::ForwardError;
/// let e = ForwardError::Rejected { url: "http://c/v1/logs".into(), status: 400, body: "bad".into() };
/// assert!(e.to_string().contains("400"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The endpoint URL is not an `http://` or `https://` URL.
    #[error("invalid endpoint {0:?}: expected http://host:port[/path]")]
    InvalidEndpoint(String),
    /// The endpoint answered with a status that is not retryable.
    #[error("{url} rejected the batch: HTTP {status}: {body}")]
    Rejected {
        /// The URL posted to.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// Retryable failures went on past the retry limit.
    #[error("{url} still failing after {attempts} attempts: {last}")]
    GaveUp {
        /// The URL posted to.
        url: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A file or the checkpoint could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What one [`Forwarder::run`] sent.
///
/// ```
/// let r = tracekit_analyzer::forward::ForwardReport::default();
/// assert_eq!(r.requests, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ForwardReport {
    /// Span records sent.
    pub spans: u64,
    /// Log records sent.
    pub logs: u64,
    /// Lines that are not records, skipped.
    pub skipped: u64,
    /// Requests acknowledged.
    pub requests: u64,
    /// Requests retried.
    pub retries: u64,
}

/// Sends the files of a log root to an OTLP/HTTP endpoint; see the [module docs](self).
///
/// # Examples
///
/// ```no_run
/// use tracekit_analyzer::forward::Forwarder;
///
/// let forwarder = Forwarder::new("trace", "http://localhost:4318")?
///     .service_name("recsys")
///     .batch_size(512);
/// let report = forwarder.run()?; // everything new since the last run
/// println!("{} log records, {} spans", report.logs, report.spans);
/// # Ok::<(), tracekit_analyzer::forward::ForwardError>(())
/// ```
#[derive(Debug)]
pub struct Forwarder {
    root: PathBuf,
    endpoint: String,
    checkpoint: PathBuf,
    service_name: String,
    batch_size: usize,
    max_rate: Option<f64>,
    max_attempts: u32,
    client: reqwest::blocking::Client,
}

/// The default number of records per request.
///
/// ```
/// assert_eq!(tracekit_analyzer::forward::DEFAULT_BATCH_SIZE, 512);
/// ```
pub const DEFAULT_BATCH_SIZE: usize = 512;
/// Largest request body gathered before it is sent, in bytes of records.
const MAX_BATCH_BYTES: usize = 4 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Forwarder {
    /// A forwarder of the files under `root` to `endpoint` (the OTLP/HTTP base URL, e.g.
    /// `http://localhost:4318`; `/v1/traces` and `/v1/logs` are appended), with the
    /// checkpoint in `root/analysis/forward.checkpoint.json`.
    ///
    /// ```
    /// use tracekit_analyzer::forward::{ForwardError, Forwarder};
    /// assert!(Forwarder::new("trace", "http://localhost:4318").is_ok());
    /// assert!(matches!(Forwarder::new("trace", "localhost:4318"), Err(ForwardError::InvalidEndpoint(_))));
    /// ```
    pub fn new(root: impl Into<PathBuf>, endpoint: &str) -> Result<Forwarder, ForwardError> {
        let root = root.into();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || reqwest::Url::parse(endpoint).is_err()
        {
            return Err(ForwardError::InvalidEndpoint(endpoint.to_owned()));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ForwardError::Client(e.to_string()))?;
        Ok(Forwarder {
            checkpoint: root.join("analysis/forward.checkpoint.json"),
            root,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            service_name: "unknown_service".to_owned(),
            batch_size: DEFAULT_BATCH_SIZE,
            max_rate: None,
            max_attempts: 10,
            client,
        })
    }

    /// The checkpoint file.
    ///
    /// ```
    /// # use tracekit_analyzer::forward::Forwarder;
    /// let f = Forwarder::new("trace", "http://localhost:4318")?.checkpoint("/var/lib/fwd.json");
    /// # drop(f); Ok::<(), tracekit_analyzer::forward::ForwardError>(())
    /// ```
    #[must_use]
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = path.into();
        self
    }

    /// The resources' `service.name` (default `unknown_service`).
    ///
    /// ```
    /// # use tracekit_analyzer::forward::Forwarder;
    /// let f = Forwarder::new("trace", "http://localhost:4318")?.service_name("recsys");
    /// # drop(f); Ok::<(), tracekit_analyzer::forward::ForwardError>(())
    /// ```
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Records per request (default [`DEFAULT_BATCH_SIZE`], at least 1).
    ///
    /// ```
    /// # use tracekit_analyzer::forward::Forwarder;
    /// let f = Forwarder::new("trace", "http://localhost:4318")?.batch_size(100);
    /// # drop(f); Ok::<(), tracekit_analyzer::forward::ForwardError>(())
    /// ```
    #[must_use]
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// At most `records_per_second` records a second, to spare the endpoint.
    ///
    /// ```
    /// # use tracekit_analyzer::forward::Forwarder;
    /// let f = Forwarder::new("trace", "http://localhost:4318")?.max_rate(5000.0);
    /// # drop(f); Ok::<(), tracekit_analyzer::forward::ForwardError>(())
    /// ```
    #[must_use]
    pub fn max_rate(mut self, records_per_second: f64) -> Self {
        self.max_rate = (records_per_second > 0.0).then_some(records_per_second);
        self
    }

    /// Sends every record not yet acknowledged, saving the checkpoint after each batch.
    ///
    /// ```
    /// # use tracekit_analyzer::forward::Forwarder;
    /// # let dir = tempfile::tempdir().unwrap();
    /// // Nothing to send: no request is made.
    /// let report = Forwarder::new(dir.path(), "http://127.0.0.1:9")?.run()?;
    /// assert_eq!(report.requests, 0);
    /// # Ok::<(), tracekit_analyzer::forward::ForwardError>(())
    /// ```
    pub fn run(&self) -> Result<ForwardReport, ForwardError> {
        let mut checkpoint = Checkpoint::load(&self.checkpoint)?;
        let files = discover(&self.root);
        let mut report = ForwardReport::default();
        let mut seen = Vec::new();
        // Entries of files that are gone are dropped, but only after a run that saw every
        // file: one renamed under our feet is seen again next time under its new name.
        let mut saw_all = true;
        let started = Instant::now();
        for i in primary(&files) {
            let file = &files[i];
            let Some(head) = first_line_hash(&file.path, file.compressed)? else {
                // Empty, its first record still being written, or renamed since listed.
                saw_all &= file.path.exists();
                continue;
            };
            seen.push(head.clone());
            let offset = checkpoint.files.get(&head).map_or(0, |e| e.offset);
            let sent = self.send_file(
                &file.path,
                file.compressed,
                &head,
                offset,
                &mut checkpoint,
                &mut report,
                started,
            );
            match sent {
                Err(ForwardError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    saw_all = false;
                }
                other => other?,
            }
        }
        let before = checkpoint.files.len();
        if saw_all {
            checkpoint.files.retain(|head, _| seen.contains(head));
        }
        if checkpoint.files.len() != before {
            checkpoint.save(&self.checkpoint)?;
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_file(
        &self,
        path: &Path,
        compressed: bool,
        head: &str,
        offset: u64,
        checkpoint: &mut Checkpoint,
        report: &mut ForwardReport,
        started: Instant,
    ) -> Result<(), ForwardError> {
        let io_err = |source| ForwardError::Io {
            path: path.to_owned(),
            source,
        };
        let (dev, ino) = fs::metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(io_err)?;
        let mut reader = open_log(path, compressed).map_err(io_err)?;
        skip(&mut reader, offset).map_err(io_err)?;
        let mut pos = offset;
        let mut batch = OtlpBatch::new(self.service_name.clone());
        let mut batch_bytes = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
            let complete = n > 0 && line.last() == Some(&b'\n');
            if complete {
                pos += n as u64;
                let record = serde_json::from_slice::<Value>(&line);
                if !record.is_ok_and(|r| batch.push(&r)) {
                    report.skipped += 1;
                }
                batch_bytes += n;
            }
            let full =
                batch.spans() + batch.logs() >= self.batch_size || batch_bytes >= MAX_BATCH_BYTES;
            if full || !complete {
                if !batch.is_empty() {
                    self.pace(report, started, batch.spans() + batch.logs());
                    self.send(&batch, report)?;
                    report.spans += batch.spans() as u64;
                    report.logs += batch.logs() as u64;
                    batch.clear();
                }
                batch_bytes = 0;
                if pos != offset || checkpoint.files.contains_key(head) {
                    let entry = checkpoint.files.entry(head.to_owned()).or_default();
                    if entry.offset != pos {
                        entry.offset = pos;
                        entry.dev = dev;
                        entry.ino = ino;
                        checkpoint.save(&self.checkpoint)?;
                    }
                }
            }
            if !complete {
                return Ok(());
            }
        }
    }

    /// Sleeps as needed to stay under the maximum rate.
    fn pace(&self, report: &ForwardReport, started: Instant, next: usize) {
        if let Some(rate) = self.max_rate {
            let due = (report.spans + report.logs + next as u64) as f64 / rate;
            let elapsed = started.elapsed().as_secs_f64();
            if due > elapsed {
                std::thread::sleep(Duration::from_secs_f64(due - elapsed));
            }
        }
    }

    /// Posts the batch's traces, then its logs.
    fn send(&self, batch: &OtlpBatch, report: &mut ForwardReport) -> Result<(), ForwardError> {
        for signal in [Signal::Traces, Signal::Logs] {
            if let Some(body) = batch.request(signal) {
                let url = format!("{}{}", self.endpoint, signal.path());
                let body = serde_json::to_vec(&body).expect("JSON values serialize");
                self.post(&url, body, report)?;
                report.requests += 1;
            }
        }
        Ok(())
    }

    fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        report: &mut ForwardReport,
    ) -> Result<(), ForwardError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.clone())
                .send();
            let (last, wait) = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        return Ok(());
                    }
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().unwrap_or_default();
                    let text: String = text.chars().take(500).collect();
                    if !matches!(status, 429 | 502 | 503 | 504) {
                        return Err(ForwardError::Rejected {
                            url: url.to_owned(),
                            status,
                            body: text,
                        });
                    }
                    (format!("HTTP {status}: {text}"), retry_after)
                }
                Err(e) => (error_chain(&e), None),
            };
            if attempt >= self.max_attempts {
                return Err(ForwardError::GaveUp {
                    url: url.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            report.retries += 1;
            std::thread::sleep(wait.unwrap_or(backoff).min(MAX_BACKOFF));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        next = cause.source();
    }
    s
}

/// Reads and discards `n` bytes.
fn skip(reader: &mut dyn BufRead, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut reader.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the file is shorter ({copied} bytes) than its checkpoint ({n} bytes)"),
        ));
    }
    Ok(())
}

/// The hex FNV-1a 64 hash of the file's first line, or `None` while it has no whole line.
fn first_line_hash(path: &Path, compressed: bool) -> Result<Option<String>, ForwardError> {
    let io_err = |source| ForwardError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = match open_log(path, compressed) {
        Ok(r) => r,
        // Rotated or deleted since it was listed: picked up under its new name next time.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(16 << 20)
        .read_until(b'\n', &mut line)
        .map_err(io_err)?;
    if line.last() != Some(&b'\n') {
        return Ok(None);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &line {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(Some(format!("{hash:016x}-{}", line.len())))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// First-line hash -> entry.
    files: BTreeMap<String, Entry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry {
    dev: u64,
    ino: u64,
    offset: u64,
}

impl Checkpoint {
    fn load(path: &Path) -> Result<Checkpoint, ForwardError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ForwardError::Io {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Checkpoint::default()),
            Err(source) => Err(ForwardError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Replaces the file atomically: a kill leaves the old checkpoint or the new one.
    fn save(&self, path: &Path) -> Result<(), ForwardError> {
        let io_err = |source| ForwardError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(io_err)?;
        f.write_all(&serde_json::to_vec(self).expect("serializes"))
            .map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_identifies_a_file_across_rename_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.log");
        fs::write(&plain, b"{\"x\":1}\n{\"x\":2}\n").unwrap();
        let h = first_line_hash(&plain, false).unwrap().unwrap();
        let gz = dir.path().join("a.log.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), Default::default());
        enc.write_all(&fs::read(&plain).unwrap()).unwrap();
        enc.finish().unwrap();
        assert_eq!(first_line_hash(&gz, true).unwrap().unwrap(), h);
        fs::write(&plain, b"{\"x\":1").unwrap();
        assert_eq!(
            first_line_hash(&plain, false).unwrap(),
            None,
            "partial line"
        );
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        assert!(Forwarder::new("trace", "localhost:4318").is_err());
        assert!(Forwarder::new("trace", "http://localhost:4318/").is_ok());
    }
}
