//! Component loggers: [`get_logger`] and [`Logger`], the seed's `get_logger(__name__,
//! component=..., level=...)`.

use std::panic::Location;

use serde::Serialize;

use crate::exception::write_source_chain;
use crate::exporters::{
    current_thread_id, CodeContext, Exception, FieldWriter, Fields, Level, Record,
};
use crate::sink::with_current;
use tracing_subscriber::filter::Targets;

/// A logger with a name, a component and its own level.
///
/// # Examples
///
/// ```
/// use serde_json::json;
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).filter("info").build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// let logger = tracekit::get_logger(module_path!(), "candidate");
/// logger.info("Processing started", json!({ "user_id": "user-456", "num_candidates": 1500 }));
/// logger.debug("not written: below the level the directives give (info)", ());
/// # });
/// # drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/candidate/candidate.log"))?;
/// let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(line["data"]["num_candidates"], 1500);
/// assert_eq!(text.lines().count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Records go through the tracekit subscriber of the calling thread (the global one after
/// [`init`](crate::init)) and carry the current span's request context, exactly like
/// `tracing` events; without a tracekit subscriber they are discarded.
///
/// The level: the one given with [`with_level`](Logger::with_level), else what the level
/// directives (`TRACEKIT_LOG`, `RUST_LOG`, [`Builder::filter`](crate::Builder::filter)) give
/// the logger's component or its name, taken as targets: with `info,ranking=debug`, a
/// logger of component `ranking` writes `DEBUG` records.
#[derive(Clone, Debug)]
pub struct Logger {
    name: String,
    component: String,
    level: Option<Level>,
}

/// A [`Logger`] named `name` (usually `module_path!()`) writing to `component`, at the level
/// the directives give it; see [`Logger`] and [`Logger::with_level`].
///
/// # Examples
///
/// ```
/// let logger = tracekit::get_logger(module_path!(), "ranking");
/// assert_eq!(logger.component(), "ranking");
/// assert_eq!(logger.level(), None); // the directives decide
/// ```
pub fn get_logger(name: impl Into<String>, component: impl Into<String>) -> Logger {
    Logger {
        name: name.into(),
        component: component.into(),
        level: None,
    }
}

impl Logger {
    /// The same logger with another level: records below it are not written.
    ///
    /// ```
    /// use tracekit::exporters::Level;
    /// let logger = tracekit::get_logger("app", "ranking").with_level(Level::DEBUG);
    /// assert!(logger.enabled(Level::DEBUG) && !logger.enabled(Level::TRACE));
    /// ```
    #[must_use]
    pub fn with_level(mut self, level: Level) -> Logger {
        self.level = Some(level);
        self
    }

    /// The logger's name (the record's `logger`).
    ///
    /// ```
    /// assert_eq!(tracekit::get_logger("recsys::ranking", "ranking").name(), "recsys::ranking");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The logger's component.
    ///
    /// ```
    /// assert_eq!(tracekit::get_logger("recsys", "serving").component(), "serving");
    /// ```
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The level set with [`with_level`](Self::with_level), if any.
    ///
    /// ```
    /// use tracekit::exporters::Level;
    /// let logger = tracekit::get_logger("recsys", "ranking");
    /// assert_eq!(logger.level(), None);
    /// assert_eq!(logger.with_level(Level::WARNING).level(), Some(Level::WARNING));
    /// ```
    pub fn level(&self) -> Option<Level> {
        self.level
    }

    /// True when records at `level` pass the level set with [`with_level`](Self::with_level)
    /// (the directives are consulted at write time for loggers without one).
    ///
    /// ```
    /// use tracekit::exporters::Level;
    /// let logger = tracekit::get_logger("recsys", "ranking").with_level(Level::INFO);
    /// assert!(logger.enabled(Level::ERROR) && !logger.enabled(Level::DEBUG));
    /// ```
    pub fn enabled(&self, level: Level) -> bool {
        self.level.is_none_or(|own| level >= own)
    }

    fn enabled_by_directives(&self, levels: &Targets, level: Level) -> bool {
        if self.level.is_some() {
            return true;
        }
        let level = match level {
            Level::TRACE => tracing::Level::TRACE,
            Level::DEBUG => tracing::Level::DEBUG,
            Level::INFO => tracing::Level::INFO,
            Level::WARNING => tracing::Level::WARN,
            _ => tracing::Level::ERROR,
        };
        levels.would_enable(&self.component, &level) || levels.would_enable(&self.name, &level)
    }

    /// Writes a record at `level`. `data` becomes the record's `data`: a map or struct is
    /// written key by key, `()` and `None` write nothing, any other value is written under
    /// `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit::exporters::Level;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let logger = tracekit::get_logger(module_path!(), "ranking");
    /// logger.log(Level::WARNING, "Model is stale", serde_json::json!({ "age_h": 30 }));
    /// logger.log(Level::INFO, "Scored", 1500); // not a map: written as data.value
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/ranking/ranking.log"))?;
    /// let lines: Vec<serde_json::Value> =
    ///     text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    /// assert_eq!(lines[0]["level"], "WARNING");
    /// assert_eq!(lines[0]["data"]["age_h"], 30);
    /// assert_eq!(lines[1]["data"]["value"], 1500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn log<D: Serialize>(&self, level: Level, message: &str, data: D) {
        self.write::<D, std::convert::Infallible>(level, message, data, None);
    }

    #[track_caller]
    fn write<D, E>(&self, level: Level, message: &str, data: D, error: Option<&E>)
    where
        D: Serialize,
        E: std::error::Error + 'static,
    {
        if !self.enabled(level) {
            return;
        }
        let location = Location::caller();
        with_current(|sink, scope| {
            if !self.enabled_by_directives(&sink.logger_levels, level) {
                return;
            }
            let data = SerializedData(&data);
            let mut record = Record::new(level, &self.component, message)
                .logger(&self.name)
                .data(&data)
                .context(CodeContext {
                    function: scope.and_then(|s| s.function).or(Some(&self.name)),
                    file: Some(location.file()),
                    line: Some(location.line()),
                    thread: Some(current_thread_id()),
                    process: Some(sink.pid),
                });
            let (text, chain);
            if let Some(error) = error {
                text = error.to_string();
                let mut c = String::new();
                write_source_chain(&mut c, error);
                chain = c;
                let kind = std::any::type_name::<E>();
                // The last path segment, generics included: `ParseIntError`, `Error<io::Error>`.
                let base = kind.split('<').next().unwrap_or(kind);
                let kind = &kind[base.rfind("::").map_or(0, |i| i + 2)..];
                record = record.exception(Exception {
                    kind,
                    message: &text,
                    traceback: Some(chain.as_str()).filter(|c| !c.is_empty()),
                });
            }
            sink.write_direct(scope, record);
        });
    }

    /// Writes an `ERROR` record for `error`: its `exception` holds the error's type name,
    /// message and `source()` chain (the seed's `logger.error(.., exc_info=True)`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// let logger = tracekit::get_logger(module_path!(), "candidate");
    /// let err = "x".parse::<u32>().unwrap_err();
    /// logger.exception("Invalid candidate count", &err, serde_json::json!({ "raw": "x" }));
    /// # });
    /// # drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/errors/errors.log"))?;
    /// let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    /// assert_eq!(line["exception"]["type"], "ParseIntError");
    /// assert_eq!(line["exception"]["message"], "invalid digit found in string");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn exception<E, D>(&self, message: &str, error: &E, data: D)
    where
        E: std::error::Error + 'static,
        D: Serialize,
    {
        self.write(Level::ERROR, message, data, Some(error));
    }

    /// Writes a `TRACE` record.
    ///
    /// ```
    /// // Without a tracekit subscriber (no `init`), records are discarded.
    /// tracekit::get_logger(module_path!(), "candidate").trace("Step", serde_json::json!({ "n": 1 }));
    /// ```
    #[track_caller]
    pub fn trace<D: Serialize>(&self, message: &str, data: D) {
        self.log(Level::TRACE, message, data);
    }

    /// Writes a `DEBUG` record.
    ///
    /// ```
    /// // Without a tracekit subscriber (no `init`), records are discarded.
    /// tracekit::get_logger(module_path!(), "candidate").debug("Step", serde_json::json!({ "n": 1 }));
    /// ```
    #[track_caller]
    pub fn debug<D: Serialize>(&self, message: &str, data: D) {
        self.log(Level::DEBUG, message, data);
    }

    /// Writes an `INFO` record.
    ///
    /// ```
    /// // Without a tracekit subscriber (no `init`), records are discarded.
    /// tracekit::get_logger(module_path!(), "candidate").info("Step", serde_json::json!({ "n": 1 }));
    /// ```
    #[track_caller]
    pub fn info<D: Serialize>(&self, message: &str, data: D) {
        self.log(Level::INFO, message, data);
    }

    /// Writes a `WARNING` record.
    ///
    /// ```
    /// tracekit::get_logger(module_path!(), "diversity").warning("Fewer items than requested", ());
    /// ```
    #[track_caller]
    pub fn warning<D: Serialize>(&self, message: &str, data: D) {
        self.log(Level::WARNING, message, data);
    }

    /// Writes an `ERROR` record (also to `errors/`; sets the current span's status to error).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::get_logger(module_path!(), "ranking").error("Model timed out", ());
    /// # });
    /// # drop(guard);
    /// let errors = std::fs::read_to_string(dir.path().join("logs/errors/errors.log"))?;
    /// assert!(errors.contains(r#""level":"ERROR","component":"ranking""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn error<D: Serialize>(&self, message: &str, data: D) {
        self.log(Level::ERROR, message, data);
    }

    /// Writes a `CRITICAL` record (also to `errors/`; sets the current span's status to error).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// # tracing::dispatcher::with_default(&dispatch, || {
    /// tracekit::get_logger(module_path!(), "feedback").critical("Feedback queue lost", ());
    /// # });
    /// # drop(guard);
    /// let errors = std::fs::read_to_string(dir.path().join("logs/errors/errors.log"))?;
    /// assert!(errors.contains(r#""level":"CRITICAL","component":"feedback""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn critical<D: Serialize>(&self, message: &str, data: D) {
        self.log(Level::CRITICAL, message, data);
    }
}

/// A `data` argument: a map's or struct's entries become the record's `data` keys, streamed
/// into the record without an intermediate `serde_json::Value`; any other value is written
/// whole under the key `value`.
struct SerializedData<'a, D>(&'a D);

impl<D: Serialize> Fields for SerializedData<'_, D> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        if !w.flatten(self.0) {
            w.serialize("value", self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::{Record, RecordEncoder};
    use std::collections::BTreeMap;

    fn data_of<D: Serialize>(d: D) -> serde_json::Value {
        let data = SerializedData(&d);
        let mut out = Vec::new();
        RecordEncoder::default()
            .encode(&Record::new(Level::INFO, "app", "m").data(&data), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        v.get("data").cloned().unwrap_or(serde_json::Value::Null)
    }

    #[derive(serde::Serialize)]
    struct Stats<'a> {
        count: u64,
        sources: [&'a str; 2],
        token: &'a str,
    }

    #[test]
    fn data_is_flattened_with_types_and_redaction() {
        let stats = Stats {
            count: u64::MAX,
            sources: ["in", "out"],
            token: "t",
        };
        assert_eq!(
            data_of(&stats),
            serde_json::json!({ "count": u64::MAX, "sources": ["in", "out"], "token": "[REDACTED]" })
        );
        let map = BTreeMap::from([(1_u32, "a"), (2, "b")]);
        assert_eq!(data_of(map), serde_json::json!({ "1": "a", "2": "b" }));
        assert_eq!(
            data_of(serde_json::json!({ "k": { "v": 1.5 } })),
            serde_json::json!({ "k": { "v": 1.5 } })
        );
        assert_eq!(
            data_of(Some(serde_json::json!({ "k": 1 }))),
            serde_json::json!({ "k": 1 })
        );
        assert_eq!(data_of(()), serde_json::Value::Null);
        assert_eq!(data_of(None::<u8>), serde_json::Value::Null);
        assert_eq!(data_of(3), serde_json::json!({ "value": 3 }));
        assert_eq!(
            data_of(["a", "b"]),
            serde_json::json!({ "value": ["a", "b"] })
        );
        let odd = BTreeMap::from([((1, 2), "tuple key")]);
        assert_eq!(data_of(odd), serde_json::json!({ "[1,2]": "tuple key" }));
    }
}
