//! The bytes of a line as [`RecordEncoder`](crate::RecordEncoder) writes it, for readers
//! that find things in a line without parsing it.
//!
//! Any JSON parser reads the files (see the record contract in `trace/README.md`). A fast
//! reader, such as the analyzer in crate `tracekit-analyzer`, goes further: it reads the
//! timestamp and the level at fixed places and searches for keys as bytes. It takes those
//! bytes from here, and the encoder writes from the same constants, so the two cannot drift
//! apart. A line of the encoder:
//!
//! ```text
//! {"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"ranking",
//!  "logger":..,"request_id":..,"user_id":..,"session_id":..,"trace_id":..,"span_id":..,
//!  "message":..,"data":{..},"context":{"function":..,..},"exception":{"type":..,..},
//!  "span":{..,"duration_ms":..,..}}
//! ```
//!
//! (one line; keys after `level` are absent when empty, never reordered). What holds for
//! every line of the encoder, and nothing more: the line starts with [`LINE_START`], a
//! timestamp of [`TIMESTAMP_LEN`] bytes and [`BEFORE_LEVEL`]; the top-level keys come in the
//! order above, each written as its [`Key::fragment`]; `context` opens with `function` when
//! the record has one, `exception` with `type`. Inside a JSON string every `"` is escaped, so
//! a [`Key::quoted`] found in a line is always a key, at some depth, never string content.
//!
//! # Examples
//!
//! ```
//! use tracekit_exporters::{layout, Level, Record, RecordEncoder};
//!
//! let mut line = Vec::new();
//! RecordEncoder::default().encode(&Record::new(Level::ERROR, "ranking", "failed").request_id("req-1"), &mut line);
//!
//! assert!(line.starts_with(layout::LINE_START));
//! let timestamp = &line[layout::TIMESTAMP_AT..layout::TIMESTAMP_AT + layout::TIMESTAMP_LEN];
//! assert!(timestamp.ends_with(b"Z"));
//! assert!(line[layout::LEVEL_AT..].starts_with(b"ERROR\""));
//! let needle = [layout::REQUEST_ID.quoted(), b"\"req-1\""].concat();
//! assert!(line.windows(needle.len()).any(|w| w == needle));
//! ```

/// What every line starts with, up to the timestamp's first digit.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::LINE_START, br#"{"timestamp":""#);
/// ```
pub const LINE_START: &[u8] = b"{\"timestamp\":\"";

/// The timestamp's fixed width: `2025-11-16T12:34:56.789123Z` (RFC 3339, UTC, microseconds;
/// years outside 0..=9999 are clamped, so the width never changes).
///
/// ```
/// assert_eq!(tracekit_exporters::layout::TIMESTAMP_LEN, "2025-11-16T12:34:56.789123Z".len());
/// ```
pub const TIMESTAMP_LEN: usize = crate::encoder::timestamp::TIMESTAMP_LEN;

/// What stands between the timestamp and the level's first letter.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::BEFORE_LEVEL, br#"","level":""#);
/// ```
pub const BEFORE_LEVEL: &[u8] = b"\",\"level\":\"";

/// Where the timestamp starts in a line.
///
/// ```
/// use tracekit_exporters::layout;
/// assert_eq!(layout::TIMESTAMP_AT, layout::LINE_START.len());
/// ```
pub const TIMESTAMP_AT: usize = LINE_START.len();

/// Where the level starts in a line; the level ([`Level::as_str`](crate::Level::as_str))
/// ends at the next `"`.
///
/// ```
/// use tracekit_exporters::layout;
/// assert_eq!(layout::LEVEL_AT, layout::TIMESTAMP_AT + layout::TIMESTAMP_LEN + layout::BEFORE_LEVEL.len());
/// ```
pub const LEVEL_AT: usize = TIMESTAMP_AT + TIMESTAMP_LEN + BEFORE_LEVEL.len();

/// A key of the contract, as the encoder writes it.
///
/// ```
/// use tracekit_exporters::layout;
/// assert_eq!(layout::MESSAGE.fragment(), br#","message":"#);
/// assert_eq!(layout::MESSAGE.quoted(), br#""message":"#);
/// assert_eq!(layout::MESSAGE.name(), "message");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// `,"name":`
    fragment: &'static [u8],
}

impl Key {
    /// `fragment` must be `,"name":` with a name of plain ASCII letters, digits and `_`,
    /// which needs no escaping: checked when the constant is built.
    const fn new(fragment: &'static str) -> Key {
        let b = fragment.as_bytes();
        let n = b.len();
        assert!(n > 4 && b[0] == b',' && b[1] == b'"' && b[n - 2] == b'"' && b[n - 1] == b':');
        let mut i = 2;
        while i < n - 2 {
            assert!(b[i].is_ascii_alphanumeric() || b[i] == b'_');
            i += 1;
        }
        Key { fragment: b }
    }

    /// `,"name":`, as the encoder writes the key after the value before it.
    ///
    /// ```
    /// assert_eq!(tracekit_exporters::layout::DATA.fragment(), br#","data":"#);
    /// ```
    pub const fn fragment(self) -> &'static [u8] {
        self.fragment
    }

    /// `"name":`, the key wherever it stands (first in an object too): a byte search for it
    /// finds the key, never string content.
    ///
    /// ```
    /// assert_eq!(tracekit_exporters::layout::FUNCTION.quoted(), br#""function":"#);
    /// ```
    pub const fn quoted(self) -> &'static [u8] {
        self.fragment.split_at(1).1
    }

    /// The key's name, `name`.
    ///
    /// ```
    /// assert_eq!(tracekit_exporters::layout::REQUEST_ID.name(), "request_id");
    /// ```
    pub const fn name(self) -> &'static str {
        let (_, rest) = self.fragment.split_at(2);
        let (name, _) = rest.split_at(rest.len() - 2);
        match std::str::from_utf8(name) {
            Ok(name) => name,
            Err(_) => panic!("key names are ASCII"),
        }
    }
}

/// `component`, after `level`.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::COMPONENT.name(), "component");
/// ```
pub const COMPONENT: Key = Key::new(",\"component\":");

/// `request_id`, before `trace_id` when both are there.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::REQUEST_ID.name(), "request_id");
/// ```
pub const REQUEST_ID: Key = Key::new(",\"request_id\":");

/// `trace_id` (32 lowercase hex digits in a string), before `message`.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::TRACE_ID.name(), "trace_id");
/// ```
pub const TRACE_ID: Key = Key::new(",\"trace_id\":");

/// `message`, after every string key and before every object.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::MESSAGE.name(), "message");
/// ```
pub const MESSAGE: Key = Key::new(",\"message\":");

/// `data`, right after the message when the record has fields: `,"data":{`.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::DATA.name(), "data");
/// ```
pub const DATA: Key = Key::new(",\"data\":");

/// `context`, right after `data` (or the message): `,"context":{`, opening with
/// [`FUNCTION`] when the record names one.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::CONTEXT.name(), "context");
/// ```
pub const CONTEXT: Key = Key::new(",\"context\":");

/// `function`, the first key of `context` when present.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::FUNCTION.name(), "function");
/// ```
pub const FUNCTION: Key = Key::new(",\"function\":");

/// `type`, the first key of `exception`: the error's type.
///
/// ```
/// assert_eq!(tracekit_exporters::layout::EXCEPTION_TYPE.name(), "type");
/// ```
pub const EXCEPTION_TYPE: Key = Key::new(",\"type\":");

/// `duration_ms`: a span record's duration in `span`, and, by convention, the duration of a
/// timing record in `data` (what tracekit's `#[log_performance]` writes, and what the
/// `performance/` copy and the analyzer's timing queries look for).
///
/// ```
/// assert_eq!(tracekit_exporters::layout::DURATION_MS.name(), "duration_ms");
/// ```
pub const DURATION_MS: Key = Key::new(",\"duration_ms\":");

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::{SpanId, TraceId};

    use super::*;
    use crate::{
        CodeContext, Exception, Level, Record, RecordEncoder, SpanInfo, SpanStatus, Value,
    };

    fn find(line: &[u8], needle: &[u8]) -> Vec<usize> {
        line.windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect()
    }

    /// Where `fragment` stands, once, in `line`.
    fn once(line: &[u8], fragment: &[u8]) -> usize {
        let at = find(line, fragment);
        assert_eq!(
            at.len(),
            1,
            "{} in {}",
            String::from_utf8_lossy(fragment),
            String::from_utf8_lossy(line)
        );
        at[0]
    }

    fn encode(record: &Record<'_>) -> Vec<u8> {
        let mut line = Vec::new();
        RecordEncoder::default().encode(record, &mut line);
        assert_eq!(line.pop(), Some(b'\n'));
        line
    }

    /// Every key the constants describe, in one record: each stands where the module doc
    /// says, in contract order, and the head is at its fixed places.
    #[test]
    fn the_encoder_writes_the_layout() {
        let data = [("duration_ms", Value::F64(12.5)), ("n", Value::U64(3))];
        let attrs = [("k", Value::Str("v"))];
        let t = UNIX_EPOCH + Duration::from_micros(1_763_296_496_789_123);
        let span = SpanInfo {
            name: "rank",
            kind: "internal",
            parent_span_id: None,
            start: t,
            end: t + Duration::from_millis(3),
            status: SpanStatus::Ok,
            attributes: Some(&attrs),
            links: &[],
        };
        let record = Record::new(Level::CRITICAL, "Ranking", "say \"q\"")
            .timestamp(t)
            .logger("svc::rank")
            .request_id("req-1")
            .user_id("u")
            .session_id("s")
            .trace(TraceId::from(7), SpanId::from(9))
            .data(&data)
            .context(CodeContext {
                function: Some("rank"),
                line: Some(7),
                ..CodeContext::default()
            })
            .exception(Exception {
                kind: "Timeout",
                message: "m",
                traceback: None,
            })
            .span(span);
        let line = encode(&record);

        assert!(line.starts_with(LINE_START));
        assert_eq!(
            &line[TIMESTAMP_AT..TIMESTAMP_AT + TIMESTAMP_LEN],
            b"2025-11-16T12:34:56.789123Z"
        );
        assert_eq!(&line[TIMESTAMP_AT + TIMESTAMP_LEN..LEVEL_AT], BEFORE_LEVEL);
        assert!(line[LEVEL_AT..].starts_with(b"CRITICAL\","));

        // The top-level keys in contract order; `message` also stands in `exception`, later.
        let mut last = LEVEL_AT;
        for key in [COMPONENT, REQUEST_ID, TRACE_ID, MESSAGE, DATA, CONTEXT] {
            let at = find(&line, key.fragment())[0];
            assert!(at > last, "{} out of order", key.name());
            last = at;
        }
        for key in [COMPONENT, REQUEST_ID, TRACE_ID, DATA, CONTEXT] {
            once(&line, key.fragment());
        }
        let data_at = once(&line, DATA.fragment()) + DATA.fragment().len();
        assert_eq!(line[data_at], b'{');
        let context = [CONTEXT.fragment(), b"{", FUNCTION.quoted(), b"\"rank\""].concat();
        assert!(once(&line, &context) > data_at);
        let exception = [b",\"exception\":{".as_slice(), EXCEPTION_TYPE.quoted()].concat();
        assert!(once(&line, &exception) > last);
        // One in data (first, so without a comma), one in span.
        let durations = find(&line, DURATION_MS.quoted());
        assert_eq!(durations.len(), 2);
        assert_eq!(line[durations[0] - 1], b'{');
        assert_eq!(find(&line, DURATION_MS.fragment()), [durations[1] - 1]);

        // What the constants say agrees with a parser.
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v[COMPONENT.name()], "ranking");
        assert_eq!(v[REQUEST_ID.name()], "req-1");
        assert_eq!(v[TRACE_ID.name()], format!("{:032x}", 7));
        assert_eq!(v[MESSAGE.name()], "say \"q\"");
        assert_eq!(v[DATA.name()][DURATION_MS.name()], 12.5);
        assert_eq!(v[CONTEXT.name()][FUNCTION.name()], "rank");
        assert_eq!(v["exception"][EXCEPTION_TYPE.name()], "Timeout");
        assert_eq!(v["span"][DURATION_MS.name()], 3.0);
    }

    /// The head is fixed for every level and for times at the edges of the width.
    #[test]
    fn the_head_is_fixed() {
        for (micros, level) in [
            (0, Level::TRACE),
            (253_402_300_799_999_999, Level::WARNING),
            (1_763_296_496_000_000, Level::INFO),
        ] {
            let t = UNIX_EPOCH + Duration::from_micros(micros);
            let line = encode(&Record::new(level, "", "").timestamp(t));
            assert!(line.starts_with(LINE_START));
            assert_eq!(line[TIMESTAMP_AT + TIMESTAMP_LEN - 1], b'Z');
            assert_eq!(&line[TIMESTAMP_AT + TIMESTAMP_LEN..LEVEL_AT], BEFORE_LEVEL);
            let level_end = LEVEL_AT + level.as_str().len();
            assert_eq!(&line[LEVEL_AT..level_end], level.as_str().as_bytes());
            assert!(line[level_end..].starts_with(&[b"\"", COMPONENT.fragment()].concat()));
        }
    }
}
