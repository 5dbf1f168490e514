//! One line of the record contract, read back: a borrowed view for filtering, an owned
//! [`LogEntry`] for results, and the cheap byte-level probes used before any parsing.
//!
//! A line is parsed only after it passed the query's prefilter. Parsing checks, in order:
//! UTF-8 ([`SkipReason::InvalidUtf8`]), nesting depth (at most [`MAX_DEPTH`] levels of
//! objects and arrays, [`SkipReason::TooDeep`]; serde_json's own limit is 128, but the limit
//! is checked here, before parsing, so that no parser ever sees a deep line), then the JSON
//! object itself ([`SkipReason::Malformed`]: not JSON, not an object, or without a string
//! `timestamp` that parses as RFC 3339).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracekit_exporters::layout::{self, Key};
use tracekit_exporters::Level;

use super::scan::SkipReason;
use super::time::{parse_rfc3339, Timestamp};

/// Lines nested deeper than this many objects/arrays are skipped (and counted).
///
/// ```
/// assert!(tracekit_analyzer::MAX_DEPTH < 128); // serde_json's own recursion limit
/// ```
pub const MAX_DEPTH: usize = 64;

/// A string field, borrowed from the line unless it holds escapes.
#[derive(Debug, Default)]
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl Str<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `exception` object, borrowed.
#[derive(Debug, Deserialize)]
pub(crate) struct ExceptionView<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub message: Option<Str<'a>>,
    #[serde(borrow)]
    pub traceback: Option<Str<'a>>,
}

/// A parsed line, borrowing from the scan buffer.
#[derive(Debug, Deserialize)]
pub(crate) struct RecordView<'a> {
    #[serde(borrow)]
    pub timestamp: Str<'a>,
    #[serde(borrow, default)]
    pub level: Str<'a>,
    #[serde(borrow, default)]
    pub component: Str<'a>,
    #[serde(borrow)]
    pub logger: Option<Str<'a>>,
    #[serde(borrow)]
    pub request_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub user_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub session_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub trace_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub span_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub message: Str<'a>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(borrow)]
    pub context: Option<&'a RawValue>,
    #[serde(borrow)]
    pub exception: Option<ExceptionView<'a>>,
    #[serde(borrow)]
    pub span: Option<&'a RawValue>,
    /// Parsed from `timestamp`.
    #[serde(skip)]
    pub micros: i64,
}

/// The raw value of key `name` in a JSON object; the last one when the key repeats, as
/// `serde_json::Value` and the fast [`TimingReader`] read it (a derived struct would refuse
/// the whole object).
fn last_field<'a>(object: &'a RawValue, name: &str) -> Option<&'a RawValue> {
    struct LastField<'n>(&'n str);
    impl<'de> Visitor<'de> for LastField<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Str<'de>>()? {
                let value: &'de RawValue = map.next_value()?;
                if key.as_str() == self.0 {
                    found = Some(value);
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(object.get());
    de.deserialize_map(LastField(name)).ok().flatten()
}

impl<'a> RecordView<'a> {
    /// Parses a line (without its `\n`), or says why it is skipped.
    pub(crate) fn parse(line: &'a [u8]) -> Result<RecordView<'a>, SkipReason> {
        let text = std::str::from_utf8(line).map_err(|_| SkipReason::InvalidUtf8)?;
        if too_deep(line) {
            return Err(SkipReason::TooDeep);
        }
        let mut view: RecordView<'a> =
            serde_json::from_str(text).map_err(|_| SkipReason::Malformed)?;
        view.micros =
            parse_rfc3339(view.timestamp.as_str().as_bytes()).ok_or(SkipReason::Malformed)?;
        Ok(view)
    }

    pub(crate) fn timestamp(&self) -> Timestamp {
        Timestamp::from_micros(self.micros)
    }

    pub(crate) fn is_error(&self) -> bool {
        is_error_level(self.level.as_str().as_bytes())
    }

    /// `data.duration_ms` when it is a finite number: the mark of a timing record.
    pub(crate) fn duration_ms(&self) -> Option<f64> {
        let v: f64 =
            serde_json::from_str(last_field(self.data?, layout::DURATION_MS.name())?.get()).ok()?;
        v.is_finite().then_some(v)
    }

    /// `context.function`, or the message when there is none: what per-function statistics
    /// group by.
    pub(crate) fn function(&self) -> Cow<'_, str> {
        self.context
            .and_then(|c| last_field(c, layout::FUNCTION.name()))
            .and_then(|f| serde_json::from_str::<Str<'_>>(f.get()).ok())
            .map(|f| f.0)
            .unwrap_or_else(|| Cow::Borrowed(self.message.as_str()))
    }

    pub(crate) fn exception_type(&self) -> Option<&str> {
        self.exception.as_ref()?.kind.as_ref().map(Str::as_str)
    }

    /// An owned copy, for results.
    pub(crate) fn to_entry(&self) -> LogEntry {
        let s = |v: &Option<Str<'_>>| v.as_ref().map(|v| v.as_str().to_owned());
        let json = |v: Option<&RawValue>| v.and_then(|r| serde_json::from_str(r.get()).ok());
        LogEntry {
            timestamp: self.timestamp(),
            level: self.level.as_str().to_owned(),
            component: self.component.as_str().to_owned(),
            logger: s(&self.logger),
            request_id: s(&self.request_id),
            user_id: s(&self.user_id),
            session_id: s(&self.session_id),
            trace_id: s(&self.trace_id),
            span_id: s(&self.span_id),
            message: self.message.as_str().to_owned(),
            data: json(self.data),
            context: json(self.context),
            exception: self.exception.as_ref().map(|e| ExceptionInfo {
                kind: e.kind.as_ref().map(|k| k.as_str().to_owned()),
                message: e.message.as_ref().map(|k| k.as_str().to_owned()),
                traceback: e.traceback.as_ref().map(|k| k.as_str().to_owned()),
            }),
            span: json(self.span),
        }
    }
}

/// One record, owned: what queries return. Serialises back to the record contract.
///
/// # Examples
///
/// ```
/// use tracekit_analyzer::{ErrorFilter, LogAnalyzer};
/// use tracekit_exporters::{Exception, Level, LogWriter, Record};
///
/// # let dir = tempfile::tempdir()?;
/// let (writer, guard) = LogWriter::builder().root(dir.path()).build()?;
/// let exc = Exception { kind: "ValueError", message: "bad count", traceback: None };
/// writer.write(&Record::new(Level::ERROR, "candidate", "failed").exception(exc))?;
/// drop(guard);
///
/// let report = LogAnalyzer::new(dir.path()).find_errors(&ErrorFilter::default())?;
/// let entry = &report.errors[0];
/// assert_eq!(entry.error_type(), Some("ValueError"));
/// let json = serde_json::to_value(entry)?;
/// assert_eq!(json["exception"]["type"], "ValueError");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogEntry {
    /// When.
    pub timestamp: Timestamp,
    /// The level name.
    pub level: String,
    /// The component.
    pub component: String,
    /// The logger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The trace id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The span id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The message.
    pub message: String,
    /// The `data` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// The `context` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The `exception` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionInfo>,
    /// The `span` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<serde_json::Value>,
}

impl LogEntry {
    /// `exception.type`, when the record has one (see the example on [`LogEntry`]).
    pub fn error_type(&self) -> Option<&str> {
        self.exception.as_ref()?.kind.as_deref()
    }

    /// `data.duration_ms` when it is a number.
    ///
    /// ```
    /// # let entry: tracekit_analyzer::LogEntry = tracekit_analyzer::LogEntry {
    /// #     timestamp: tracekit_analyzer::Timestamp::from_micros(0), level: "INFO".into(),
    /// #     component: "c".into(), logger: None, request_id: None, user_id: None,
    /// #     session_id: None, trace_id: None, span_id: None, message: "m".into(),
    /// #     data: Some(serde_json::json!({"duration_ms": 12.5})), context: None,
    /// #     exception: None, span: None };
    /// assert_eq!(entry.duration_ms(), Some(12.5));
    /// ```
    pub fn duration_ms(&self) -> Option<f64> {
        self.data
            .as_ref()?
            .get(layout::DURATION_MS.name())?
            .as_f64()
    }

    /// `context.function`, else the message.
    ///
    /// ```
    /// # let mut entry: tracekit_analyzer::LogEntry = tracekit_analyzer::LogEntry {
    /// #     timestamp: tracekit_analyzer::Timestamp::from_micros(0), level: "ERROR".into(),
    /// #     component: "c".into(), logger: None, request_id: None, user_id: None,
    /// #     session_id: None, trace_id: None, span_id: None, message: "ranked".into(),
    /// #     data: None, context: None, exception: None, span: None };
    /// assert_eq!(entry.function(), "ranked");
    /// entry.context = Some(serde_json::json!({"function": "rank"}));
    /// assert_eq!(entry.function(), "rank");
    /// assert!(entry.is_error());
    /// ```
    pub fn function(&self) -> &str {
        self.context
            .as_ref()
            .and_then(|c| c.get(layout::FUNCTION.name()))
            .and_then(|f| f.as_str())
            .unwrap_or(&self.message)
    }

    /// True for `ERROR` and `CRITICAL` (see the example on [`function`](Self::function)).
    pub fn is_error(&self) -> bool {
        is_error_level(self.level.as_bytes())
    }
}

/// The `exception` object of a [`LogEntry`].
///
/// ```
/// let e = tracekit_analyzer::ExceptionInfo { kind: Some("ValueError".into()), message: None, traceback: None };
/// assert_eq!(serde_json::to_value(&e).unwrap(), serde_json::json!({"type": "ValueError"}));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExceptionInfo {
    /// The error's type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The backtrace or error chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceback: Option<String>,
}

/// True for the names of the levels [`Level::is_error`] calls errors.
pub(crate) fn is_error_level(level: &[u8]) -> bool {
    const ERROR: &[u8] = Level::ERROR.as_str().as_bytes();
    const CRITICAL: &[u8] = Level::CRITICAL.as_str().as_bytes();
    level == ERROR || level == CRITICAL
}

/// True when `line` nests objects and arrays deeper than [`MAX_DEPTH`]. Lines with fewer
/// brackets than the limit (all real records) are cleared by one SIMD count.
pub(crate) fn too_deep(line: &[u8]) -> bool {
    if memchr::memchr2_iter(b'{', b'[', line).count() <= MAX_DEPTH {
        return false;
    }
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in line {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The encoder's fixed head: `{"timestamp":"<timestamp>","level":"`, from
/// [`tracekit_exporters::layout`].
const TS_START: usize = layout::TIMESTAMP_AT;
const TS_END: usize = TS_START + layout::TIMESTAMP_LEN;
const LEVEL_START: usize = layout::LEVEL_AT;

/// True when `line` starts with the encoder's fixed head.
fn has_encoder_head(line: &[u8]) -> bool {
    line.len() > LEVEL_START
        && line.starts_with(layout::LINE_START)
        && &line[TS_END..LEVEL_START] == layout::BEFORE_LEVEL
}

/// The timestamp of a line written by the tracekit encoder, read at its fixed place without
/// parsing the line; `None` for any other layout (the caller then parses).
pub(crate) fn quick_timestamp(line: &[u8]) -> Option<i64> {
    if has_encoder_head(line) {
        parse_rfc3339(&line[TS_START..TS_END])
    } else {
        None
    }
}

/// The level of a line written by the tracekit encoder, at its fixed place.
pub(crate) fn quick_level(line: &[u8]) -> Option<&[u8]> {
    if has_encoder_head(line) {
        let rest = &line[LEVEL_START..];
        let end = memchr::memchr(b'"', rest)?;
        Some(&rest[..end])
    } else {
        None
    }
}

/// `"key":"value"` as the encoder writes it, for a memmem prefilter: `value` is
/// JSON-escaped the way serde_json escapes (the encoder agrees for every character that is
/// not a control, DEL, C1 or U+2028/9; for those the prefilter may miss, so callers only use
/// it for values without them).
pub(crate) fn key_value_needle(key: Key, value: &str) -> Option<Vec<u8>> {
    let plain = value
        .chars()
        .all(|c| !c.is_control() && c != '\u{7f}' && c != '\u{2028}' && c != '\u{2029}');
    if !plain {
        return None;
    }
    let mut needle = key.quoted().to_vec();
    needle.extend(serde_json::to_string(value).ok()?.into_bytes());
    Some(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_unescapes_others() {
        let line = br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"a \"q\"","data":{"duration_ms":4.5,"n":{"deep":[1]}}}"#;
        let v = RecordView::parse(line).unwrap();
        assert!(matches!(v.component.0, Cow::Borrowed("c")));
        assert_eq!(v.message.as_str(), "a \"q\"");
        assert_eq!(v.duration_ms(), Some(4.5));
        assert_eq!(quick_timestamp(line), Some(v.micros));
        assert_eq!(quick_level(line), Some(&b"INFO"[..]));
    }

    #[test]
    fn deep_lines_are_refused_before_parsing() {
        let mut line = br#"{"timestamp":"2025-11-16T12:34:56.789123Z","data":"#.to_vec();
        line.extend(std::iter::repeat_n(b'[', 100_000));
        line.extend(std::iter::repeat_n(b']', 100_000));
        line.push(b'}');
        assert_eq!(RecordView::parse(&line).unwrap_err(), SkipReason::TooDeep);
        // Brackets inside strings do not count.
        let mut ok = br#"{"timestamp":"2025-11-16T12:34:56.789123Z","message":""#.to_vec();
        ok.extend(std::iter::repeat_n(b'[', 1000));
        ok.extend(b"\"}");
        assert!(RecordView::parse(&ok).is_ok());
    }

    #[test]
    fn serde_json_alone_stops_at_128_levels() {
        // Why the depth check is not only a guard for our own code: the recursion limit of
        // serde_json turns deeper input into an error, which we count as too deep anyway.
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(
            RecordView::parse(b"{\"timestamp\":\"\xff\"}").unwrap_err(),
            SkipReason::InvalidUtf8
        );
        assert_eq!(
            RecordView::parse(b"not json").unwrap_err(),
            SkipReason::Malformed
        );
        assert_eq!(
            RecordView::parse(br#"{"timestamp":"yesterday"}"#).unwrap_err(),
            SkipReason::Malformed
        );
        assert_eq!(
            RecordView::parse(b"[1]").unwrap_err(),
            SkipReason::Malformed
        );
    }

    #[test]
    fn error_levels_are_the_exporters_error_levels() {
        for level in Level::ALL {
            assert_eq!(
                is_error_level(level.as_str().as_bytes()),
                level.is_error(),
                "{level}"
            );
        }
        assert!(!is_error_level(b"error") && !is_error_level(b""));
    }

    #[test]
    fn needles_match_the_encoding() {
        assert_eq!(
            key_value_needle(layout::REQUEST_ID, "req-\"1\"").unwrap(),
            br#""request_id":"req-\"1\"""#.to_vec()
        );
        assert_eq!(key_value_needle(layout::REQUEST_ID, "a\nb"), None);
    }
}

/// What [`TimingReader`] read from a line.
#[derive(Debug, PartialEq)]
pub(crate) enum FastTiming<'a> {
    /// No `data.duration_ms` number: not a timing record.
    NotTiming,
    /// A timing record: its duration and its function (`context.function`, else the
    /// message).
    Timing(f64, Cow<'a, str>),
}

#[cfg(test)]
fn fast_timing(line: &[u8]) -> Option<FastTiming<'_>> {
    (line.first() == Some(&b'{')).then_some(())?;
    fast_timing_at(line, 1)
}

/// Reads timing records like [`fast_timing_at`], jumping straight to the `message` key when
/// no `{` or `[` byte stands before it: then every value before it is a string, and inside
/// a string every `"` is escaped, so the first `","message":"` is the top-level key.
///
/// From there the encoder's own timing record (`data` right after the message, ending with
/// `duration_ms`, then `context` opening with `function`) is read at those landmarks
/// ([`encoder_timing`]); any other layout is walked key by key ([`fast_timing_at`]).
#[derive(Debug)]
pub(crate) struct TimingReader {
    message: memchr::memmem::Finder<'static>,
    duration: memchr::memmem::Finder<'static>,
    function: memchr::memmem::Finder<'static>,
    /// What stands between the message and the data's first key, and between the duration
    /// and the function's value, in the encoder's layout: `,"data":{` and
    /// `},"context":{"function":"`.
    after_message: Vec<u8>,
    before_function: Vec<u8>,
}

/// The key of a timing record's duration, in `data`: `"duration_ms":`.
pub(crate) const DURATION: &[u8] = layout::DURATION_MS.quoted();

impl TimingReader {
    pub(crate) fn new() -> TimingReader {
        // `","message":"`: the top-level message follows a string value.
        let message = [b"\"", layout::MESSAGE.fragment(), b"\""].concat();
        TimingReader {
            message: memchr::memmem::Finder::new(&message).into_owned(),
            duration: memchr::memmem::Finder::new(DURATION),
            function: memchr::memmem::Finder::new(layout::FUNCTION.quoted()),
            after_message: [layout::DATA.fragment(), b"{"].concat(),
            before_function: [
                b"}",
                layout::CONTEXT.fragment(),
                b"{",
                layout::FUNCTION.quoted(),
                b"\"",
            ]
            .concat(),
        }
    }

    /// Reads a line. `None`: unsure, parse it fully.
    pub(crate) fn read<'a>(&self, line: &'a [u8]) -> Option<FastTiming<'a>> {
        let key = self.duration.find(line);
        let once = key.is_none_or(|k| self.duration.find(&line[k + DURATION.len()..]).is_none());
        self.read_found(line, key.filter(|_| once))
    }

    /// [`read`](Self::read) for a caller that has searched the line for `"duration_ms":`
    /// already: `key` is where it stands when it stands there exactly once, else `None`.
    pub(crate) fn read_found<'a>(
        &self,
        line: &'a [u8],
        key: Option<usize>,
    ) -> Option<FastTiming<'a>> {
        (line.first() == Some(&b'{')).then_some(())?;
        match self.message.find(line) {
            Some(m) if memchr::memchr2(b'{', b'[', &line[1..m]).is_none() => key
                .and_then(|k| self.encoder_timing(line, m, k))
                .or_else(|| fast_timing_at(line, m + 2)),
            _ => fast_timing_at(line, 1),
        }
    }

    /// The encoder's timing record, `..."message":"M","data":{...,"duration_ms":N},
    /// "context":{"function":"F"...`, read without walking its keys; `None` (walk them)
    /// unless every step below holds. `m` is where `","message":"` stands, at the top level.
    ///
    /// Why the landmarks are what they seem: inside a JSON string every `"` is escaped, so
    /// `"duration_ms":` and `"function":` (whose last quote follows a letter) are always
    /// keys, never string content. With no `{`, `[` or `}` between the data's `{` and the
    /// duration key, that key is the data's own; with no second `"duration_ms":` and no
    /// `"function":` after the function's value, neither is repeated (a repeated key counts
    /// last, as in the full parse). `key` is where the line's only `"duration_ms":` stands.
    fn encoder_timing<'a>(&self, line: &'a [u8], m: usize, key: usize) -> Option<FastTiming<'a>> {
        // At the message's opening quote.
        let mut c = Cursor {
            b: line,
            i: m + 1 + layout::MESSAGE.fragment().len(),
        };
        c.string()?; // the message
        let data = c.i + self.after_message.len();
        if line.get(c.i..data)? != self.after_message
            || key < data
            || memchr::memchr3(b'{', b'[', b'}', &line[data..key]).is_some()
        {
            return None;
        }
        c.i = key + DURATION.len();
        let ms = c.number()?;
        let after = c.i + self.before_function.len();
        if line.get(c.i..after)? != self.before_function {
            return None;
        }
        c.i = after - 1;
        let (raw, escaped) = c.string()?;
        if escaped || self.function.find(&line[c.i..]).is_some() {
            return None;
        }
        Some(FastTiming::Timing(
            ms,
            Cow::Borrowed(std::str::from_utf8(raw).ok()?),
        ))
    }
}

/// Reads `data.duration_ms` and `context.function` of a line by walking its top-level keys
/// without building anything: strings are skipped with memchr, nested values by counting
/// brackets (iteratively, so any depth is safe). `None` when the line does not look like the
/// encoder's output (whitespace, a non-string before `data`, broken structure, invalid UTF-8
/// in the function): the caller then parses it fully, and the full parse says what is wrong.
///
/// Only the top level up to `context` is checked; what follows is not looked at. Starts at
/// byte `start`, where a top-level key begins.
fn fast_timing_at(line: &[u8], start: usize) -> Option<FastTiming<'_>> {
    const DATA: &[u8] = layout::DATA.name().as_bytes();
    const DURATION_MS: &[u8] = layout::DURATION_MS.name().as_bytes();
    const CONTEXT: &[u8] = layout::CONTEXT.name().as_bytes();
    const FUNCTION: &[u8] = layout::FUNCTION.name().as_bytes();
    const MESSAGE: &[u8] = layout::MESSAGE.name().as_bytes();
    let mut c = Cursor { b: line, i: start };
    let mut message: Option<(&[u8], bool)> = None;
    let mut duration: Option<f64> = None;
    let mut function: Option<(&[u8], bool)> = None;
    let mut seen_data = false;
    loop {
        let (key, _) = c.string()?;
        c.byte(b':')?;
        match key {
            DATA => {
                seen_data = true;
                c.byte(b'{')?;
                if c.peek()? != b'}' {
                    loop {
                        // An escaped key might spell `duration_ms`: unsure.
                        let (k, false) = c.string()? else {
                            return None;
                        };
                        c.byte(b':')?;
                        if k == DURATION_MS {
                            duration = c.number();
                            if duration.is_none() {
                                c.skip_value()?;
                            }
                        } else {
                            c.skip_value()?;
                        }
                        if !c.comma_or(b'}')? {
                            break;
                        }
                    }
                } else {
                    c.i += 1;
                }
            }
            CONTEXT => {
                c.byte(b'{')?;
                while c.peek()? != b'}' {
                    let (k, false) = c.string()? else {
                        return None;
                    };
                    c.byte(b':')?;
                    if k != FUNCTION {
                        c.skip_value()?;
                    } else if c.peek()? == b'"' {
                        function = Some(c.string()?);
                    } else {
                        // The last `function` counts, as in the full parse: one that is not a
                        // string leaves the message.
                        function = None;
                        c.skip_value()?;
                    }
                    if !c.comma_or(b'}')? {
                        break;
                    }
                }
                break; // everything the analyzer needs comes before this point
            }
            MESSAGE => message = Some(c.string()?),
            _ if seen_data => c.skip_value()?,
            // Before `data`, the encoder writes only strings.
            _ => {
                c.string()?;
            }
        }
        if !c.comma_or(b'}')? {
            break;
        }
    }
    let Some(ms) = duration else {
        return Some(FastTiming::NotTiming);
    };
    let (raw, escaped) = function.or(message)?;
    let text = if escaped {
        // Unescape through serde_json: the raw bytes sit between quotes in the line.
        let start = raw.as_ptr() as usize - line.as_ptr() as usize - 1;
        let quoted = &line[start..start + raw.len() + 2];
        Cow::Owned(serde_json::from_slice::<String>(quoted).ok()?)
    } else {
        Cow::Borrowed(std::str::from_utf8(raw).ok()?)
    };
    Some(FastTiming::Timing(ms, text))
}

/// `[-]digits[.digits]` with at most 15 digits, as an `f64`: the same value as `str::parse`
/// gives, for less. Such a number is `m / 10^k` with `m < 2^53` and `k <= 15`, both exact
/// in an `f64`, and one IEEE division rounds their quotient correctly (Clinger's fast
/// path, which the standard parser takes for the same inputs). `None` for anything else.
fn short_decimal(text: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    let mut m = 0u64;
    let mut n = 0;
    let mut point = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(b - b'0');
                n += 1;
                if n > 15 {
                    return None;
                }
            }
            b'.' if point.is_none() && i > 0 && i + 1 < digits.len() => point = Some(i),
            _ => return None,
        }
    }
    if n == 0 {
        return None;
    }
    let v = m as f64 / POW10[point.map_or(0, |p| digits.len() - p - 1)];
    Some(if negative { -v } else { v })
}

/// A position in a line, for [`fast_timing_at`].
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.i += 1)
    }

    /// After a value: true after a `,`, false after `close`.
    fn comma_or(&mut self, close: u8) -> Option<bool> {
        let b = self.peek()?;
        self.i += 1;
        match b {
            b',' => Some(true),
            _ if b == close => Some(false),
            _ => None,
        }
    }

    /// A string's raw bytes (between the quotes) and whether it holds escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.byte(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // `get`: after a backslash that ends the line, `i` is past the end.
            let j = self.i + memchr::memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
            if self.b[j] == b'"' {
                self.i = j + 1;
                return Some((&self.b[start..j], escaped));
            }
            escaped = true;
            self.i = j + 2;
        }
    }

    /// A finite JSON number, or `None` (the cursor does not move).
    fn number(&mut self) -> Option<f64> {
        let rest = &self.b[self.i..];
        let end = rest
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))?;
        let text = &rest[..end];
        let v = match short_decimal(text) {
            Some(v) => v,
            None => std::str::from_utf8(text).ok()?.parse().ok()?,
        };
        if end == 0 || !v.is_finite() {
            return None;
        }
        self.i += end;
        Some(v)
    }

    /// Skips one value of any depth.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                }
                b',' | b':' if depth > 0 => self.i += 1,
                _ => {
                    let rest = &self.b[self.i..];
                    let n = rest
                        .iter()
                        .position(|b| matches!(b, b',' | b'}' | b']' | b':' | b'"'))
                        .unwrap_or(rest.len());
                    // Whitespace is not the encoder's layout: unsure, so the full parse
                    // decides (skipping `: 45.2` as a scalar missed a timing record).
                    if n == 0 || rest[..n].iter().any(u8::is_ascii_whitespace) {
                        return None;
                    }
                    self.i += n;
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod fast_tests {
    use super::*;

    fn full(line: &[u8]) -> FastTiming<'_> {
        let v = RecordView::parse(line).unwrap();
        match v.duration_ms() {
            Some(ms) => FastTiming::Timing(ms, Cow::Owned(v.function().into_owned())),
            None => FastTiming::NotTiming,
        }
    }

    #[test]
    fn agrees_with_the_full_parse() {
        let lines: [&[u8]; 8] = [
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"n":{"duration_ms":1,"x":[1,{"y":"}"}]},"duration_ms":45.5},"context":{"function":"f\"q","line":3}}"#,
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m\u00e9","data":{"duration_ms":2e3}}"#,
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"duration_ms":"fast"},"context":{"function":"f"}}"#,
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{}}"#,
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"a":null,"b":true,"duration_ms":-1.5},"context":{}}"#,
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"duration_ms":7},"context":{"line":1,"function":"late"},"exception":{"type":"E"}}"#,
            // Repeated keys: the last one counts, in both readers (found by the fuzzer: the
            // full parse refused the object and saw no timing).
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"duration_ms":7,"duration_ms":11.5},"context":{"function":"a","function":"b"}}"#,
            // A repeated `function` whose last value is not a string: the message (found by
            // the fuzzer: the fast reader kept the first one).
            br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"duration_ms":7},"context":{"function":"a","function":67890}}"#,
        ];
        for line in lines {
            assert_eq!(
                fast_timing(line),
                Some(full(line)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Lines in the encoder's layout, read at its landmarks (`encoder_timing`), and lines
    /// that look like it but are not: every answer agrees with the full parse.
    #[test]
    fn the_encoder_layout_is_read_at_its_landmarks() {
        const HEAD: &str = r#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"ranking","logger":"ranking","request_id":"req-1","#;
        let reader = TimingReader::new();
        let cases = [
            // The encoder's timing record: read at the landmarks.
            (
                r#""message":"Stage completed","data":{"input_count":1898,"output_count":400,"duration_ms":128.04},"context":{"function":"rank_candidates","file":"ranking.rs","line":91}}"#,
                true,
            ),
            (
                r#""message":"m","data":{"duration_ms":-0.5},"context":{"function":"f"}}"#,
                true,
            ),
            (
                r#""message":"say \",\"data\":{\"duration_ms\":1}","data":{"note":"a,b:c","duration_ms":7},"context":{"function":"f"}}"#,
                true,
            ),
            // Not at the landmarks: walked key by key, with the same answer.
            (
                r#""message":"m","data":{"n":{"duration_ms":1},"duration_ms":45.5},"context":{"function":"f"}}"#,
                false,
            ),
            (
                r#""message":"m","data":{"duration_ms":45.5,"n":1},"context":{"function":"f"}}"#,
                false,
            ),
            (
                r#""message":"m","data":{"duration_ms":45.5},"context":{"function":"a","function":"b"}}"#,
                false,
            ),
            (
                r#""message":"m","data":{"duration_ms":45.5},"context":{"function":"f\"g"}}"#,
                false,
            ),
            (
                r#""message":"m","data":{"duration_ms":1e3},"context":{"function":"f"}}"#,
                true, // read at the landmarks; the number by the standard parser
            ),
            (
                r#""message":"m","data":{"duration_ms":1,"duration_ms":2},"context":{"function":"f"}}"#,
                false,
            ),
            (
                r#""message":"m","data":{"a":"}","duration_ms":3},"context":{"function":"f"}}"#,
                false,
            ),
            (
                r#""message":"m","data":{"duration_ms":3},"context":{"line":1,"function":"f"}}"#,
                false,
            ),
        ];
        for (tail, landmarks) in cases {
            let line = format!("{HEAD}{tail}");
            let line = line.as_bytes();
            let m = reader.message.find(line).unwrap();
            let key = reader.duration.find(line).unwrap();
            let at_landmarks = reader.encoder_timing(line, m, key);
            assert_eq!(at_landmarks.is_some(), landmarks, "{tail}");
            let read = reader.read(line);
            assert_eq!(read, Some(full(line)), "{tail}");
            if let Some(fast) = at_landmarks {
                assert_eq!(Some(fast), read, "{tail}");
            }
        }
    }

    /// Lines written by the real encoder take every fast path: the head at its fixed
    /// places, the timing record at its landmarks, the needles; so a change of the
    /// encoder's layout that the constants of `tracekit_exporters::layout` do not follow
    /// fails here rather than quietly sending every line to the full parse.
    #[test]
    fn the_encoders_own_lines_take_the_fast_paths() {
        use opentelemetry::trace::{SpanId, TraceId};
        use tracekit_exporters::{CodeContext, Exception, Record, RecordEncoder, Value};

        let data = [("n", Value::U64(3)), ("duration_ms", Value::F64(128.04))];
        let context = CodeContext {
            function: Some("rank_candidates"),
            file: Some("ranking.rs"),
            line: Some(91),
            ..CodeContext::default()
        };
        let exception = Exception {
            kind: "SourceTimeout",
            message: "m",
            traceback: None,
        };
        let trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        let timing = Record::new(Level::INFO, "ranking", "say \"q\"")
            .logger("ranking")
            .request_id("req-1")
            .trace(trace_id, SpanId::from_hex("b7ad6b7169203331").unwrap())
            .data(&data)
            .context(context);
        let error = Record::new(Level::CRITICAL, "ranking", "failed")
            .request_id("req-1")
            .exception(exception);
        let reader = TimingReader::new();
        for (record, is_timing) in [(timing, true), (error, false)] {
            let mut line = Vec::new();
            RecordEncoder::default().encode(&record, &mut line);
            line.pop(); // the '\n'
            let view = RecordView::parse(&line).unwrap();
            assert_eq!(quick_timestamp(&line), Some(view.micros));
            assert_eq!(quick_level(&line), Some(view.level.as_str().as_bytes()));
            assert_eq!(quick_level(&line).is_some_and(is_error_level), !is_timing);
            let needle = key_value_needle(layout::REQUEST_ID, "req-1").unwrap();
            assert!(memchr::memmem::find(&line, &needle).is_some());
            if is_timing {
                let m = reader.message.find(&line).unwrap();
                let key = reader.duration.find(&line).unwrap();
                let fast = reader.encoder_timing(&line, m, key);
                assert_eq!(
                    fast,
                    Some(FastTiming::Timing(128.04, "rank_candidates".into()))
                );
                assert_eq!(fast, Some(full(&line)));
            } else {
                let needle = key_value_needle(layout::EXCEPTION_TYPE, "SourceTimeout").unwrap();
                assert!(memchr::memmem::find(&line, &needle).is_some());
            }
        }
    }

    /// The short-decimal path gives the standard parser's value, bit for bit.
    #[test]
    fn short_decimals_parse_like_the_standard_parser() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "0.1",
            "0.3",
            "123456789012345",
            "9.99999999999999",
            "1.5",
            "-128.04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 15 + 1) as usize;
            let mantissa = (x >> 8) % 10u64.pow(digits as u32);
            let mut t = format!("{mantissa:0digits$}");
            let point = (x >> 60) as usize % (digits + 1);
            if point > 0 && point < t.len() {
                t.insert(point, '.');
            }
            if x & 1 == 1 {
                t.insert(0, '-');
            }
            texts.push(t);
        }
        for t in &texts {
            let want: f64 = t.parse().unwrap();
            let got = short_decimal(t.as_bytes()).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(got.to_bits(), want.to_bits(), "{t}");
        }
        for t in [
            "",
            "-",
            "1.",
            ".5",
            "1.2.3",
            "1e5",
            "+1",
            "1234567890123456",
            "0x1",
        ] {
            assert_eq!(short_decimal(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn unsure_lines_go_to_the_full_parse() {
        for line in [
            &br#"{"timestamp":"x", "data":{"duration_ms":1}}"#[..],
            br#"{"timestamp":"x","obj":{"a":1},"data":{"duration_ms":1}}"#,
            // An object before `data` (a span record without data or context).
            br#"{"timestamp":"x","message":"m","span":{"duration_ms":5}}"#,
            br#"{"timestamp":"x","data":{"duration_ms":1"#,
            b"{\"timestamp\":\"x\",\"message\":\"\xff\",\"data\":{\"duration_ms\":1}}",
            // A record torn right after a backslash (found by the fuzzer: it panicked).
            br#"{"timestamp":"x","data":{"duration_ms":1},"context":{"function":"f\"#,
            br#"{"timestamp":"x","message":"m\"#,
            // Whitespace before a value (found by the fuzzer: read as "not timing").
            b"{\"timestamp\":\"x\",\"data\":{\"duration_ms\":\r\r45.2}}",
            br#"{"timestamp":"x","data":{"n": 1,"duration_ms":45.2}}"#,
            br#"{"timestamp":"x","data":{"duration\u005fms":45.2}}"#,
        ] {
            assert_eq!(fast_timing(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
