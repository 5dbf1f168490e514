//! The record encoder: one record, one JSON line, in contract key order, with redaction.
//!
//! No intermediate `serde_json::Value` is built: fields stream straight into the output
//! buffer, and every key at every depth passes through the [`Redactor`].

mod escape;
mod redaction;
mod serializer;
pub(crate) mod timestamp;

use std::fmt;
use std::ops::Range;

use opentelemetry::trace::{SpanId, TraceId};
use serde::Serialize;

pub use redaction::{Redactor, DEFAULT_REDACT_KEYS, REDACTED};

use crate::component::{is_normal, normalize_component};
use crate::record::{CodeContext, Fields, Record, SpanInfo, SpanStatus, Value};
use escape::{escape_bytes_into, push_quoted_between, push_slice, quoted_str_into, EscapingWriter};
use serializer::JsonSerializer;
use timestamp::{format_rfc3339_micros, unix_micros};

/// Encodes [`Record`]s as lines of the record contract.
///
/// The encoder is immutable and cheap to share; the writer holds one and each calling thread
/// encodes into its own reused buffer.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Level, Record, RecordEncoder, Redactor, Value};
///
/// let encoder = RecordEncoder::new(Redactor::default(), "app");
/// let fields = [("api_key", Value::Str("sk-live-123")), ("count", Value::U64(3))];
/// let mut out = Vec::new();
/// let component = encoder.encode(&Record::new(Level::INFO, "Ranking", "scored").data(&fields), &mut out);
///
/// let line = std::str::from_utf8(&out).unwrap();
/// assert!(line.ends_with("}\n") && !line.contains("sk-live-123"));
/// assert_eq!(&line[component], "ranking");
/// ```
#[derive(Clone, Debug)]
pub struct RecordEncoder {
    redactor: Redactor,
    default_component: String,
}

impl Default for RecordEncoder {
    /// The default redaction list and `app` as the default component.
    fn default() -> Self {
        RecordEncoder::new(Redactor::default(), "app")
    }
}

impl RecordEncoder {
    /// An encoder with this redaction and this component for records that name none.
    pub fn new(redactor: Redactor, default_component: &str) -> RecordEncoder {
        RecordEncoder {
            redactor,
            default_component: normalize_component(default_component).into_owned(),
        }
    }

    /// The redactor in use.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The component used for records with an empty component.
    pub fn default_component(&self) -> &str {
        &self.default_component
    }

    /// Appends `record` to `out` as one `\n`-terminated JSON line and returns where the
    /// (normalised) component name stands in `out`.
    pub fn encode(&self, record: &Record<'_>, out: &mut Vec<u8>) -> Range<usize> {
        out.reserve(256);
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(&format_rfc3339_micros(unix_micros(record.timestamp)));
        out.extend_from_slice(b"\",\"level\":\"");
        push_slice(out, record.level.as_str().as_bytes());
        let component = match record.head {
            Some(head) => {
                let base = out.len();
                out.extend_from_slice(&head.buf[..head.ids_end]);
                base + head.component.start..base + head.component.end
            }
            None => self.encode_ids(record, out),
        };
        out.extend_from_slice(b",\"message\":");
        quoted_str_into(out, record.message);
        if let Some(data) = record.data {
            self.object(out, b",\"data\":", |w| data.write_fields(w));
        }
        match record.head {
            Some(head) => out.extend_from_slice(&head.buf[head.ids_end..]),
            None => {
                if let Some(ctx) = record.context {
                    encode_context(&ctx, out);
                }
            }
        }
        if let Some(exc) = record.exception {
            out.extend_from_slice(b",\"exception\":{\"type\":");
            quoted_str_into(out, exc.kind);
            out.extend_from_slice(b",\"message\":");
            quoted_str_into(out, exc.message);
            if let Some(tb) = exc.traceback {
                out.extend_from_slice(b",\"traceback\":");
                quoted_str_into(out, tb);
            }
            out.push(b'}');
        }
        if let Some(span) = record.span {
            out.extend_from_slice(b",\"span\":{\"name\":");
            quoted_str_into(out, span.name);
            out.extend_from_slice(b",\"kind\":");
            quoted_str_into(out, span.kind);
            if let Some(parent) = span.parent_span_id.filter(|id| *id != SpanId::INVALID) {
                out.extend_from_slice(b",\"parent_span_id\":");
                hex_quoted(out, &parent.to_bytes());
            }
            out.extend_from_slice(b",\"start\":\"");
            out.extend_from_slice(&format_rfc3339_micros(unix_micros(span.start)));
            out.extend_from_slice(b"\",\"end\":\"");
            out.extend_from_slice(&format_rfc3339_micros(unix_micros(span.end)));
            out.extend_from_slice(b"\",\"duration_ms\":");
            write_duration_ms(out, &span);
            out.extend_from_slice(b",\"status\":");
            match span.status {
                SpanStatus::Unset => out.extend_from_slice(b"\"unset\""),
                SpanStatus::Ok => out.extend_from_slice(b"\"ok\""),
                SpanStatus::Error(msg) => {
                    out.extend_from_slice(b"\"error\"");
                    if !msg.is_empty() {
                        out.extend_from_slice(b",\"status_message\":");
                        quoted_str_into(out, msg);
                    }
                }
            }
            if let Some(attrs) = span.attributes {
                self.object(out, b",\"attributes\":", |w| attrs.write_fields(w));
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
        component
    }

    /// Writes `,"component":..` through `"span_id"` and returns where the component stands.
    fn encode_ids(&self, record: &Record<'_>, out: &mut Vec<u8>) -> Range<usize> {
        out.extend_from_slice(b"\",\"component\":\"");
        let component_start = out.len();
        if record.component.is_empty() {
            push_slice(out, self.default_component.as_bytes());
        } else if is_normal(record.component) {
            push_slice(out, record.component.as_bytes());
        } else {
            push_slice(out, normalize_component(record.component).as_bytes());
        }
        let component = component_start..out.len();
        out.push(b'"');
        opt_str(out, b",\"logger\":", record.logger);
        opt_str(out, b",\"request_id\":", record.request_id);
        opt_str(out, b",\"user_id\":", record.user_id);
        opt_str(out, b",\"session_id\":", record.session_id);
        if let Some(id) = record.trace_id.filter(|id| *id != TraceId::INVALID) {
            out.extend_from_slice(b",\"trace_id\":");
            hex_quoted(out, &id.to_bytes());
        }
        if let Some(id) = record.span_id.filter(|id| *id != SpanId::INVALID) {
            out.extend_from_slice(b",\"span_id\":");
            hex_quoted(out, &id.to_bytes());
        }
        component
    }

    /// Encodes the parts of `record` that a run of records sharing a call site and a span
    /// repeat (component, logger, request, user and session ids, trace and span ids, and the
    /// code context) into `head`, for [`Record::head`] to reuse them.
    ///
    /// A head is only valid with the encoder that made it (its default component) and for
    /// records whose repeated parts are the same as `record`'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracekit_exporters::{CodeContext, Level, Record, RecordEncoder, RecordHead};
    ///
    /// let encoder = RecordEncoder::default();
    /// let base = Record::new(Level::INFO, "ranking", "")
    ///     .request_id("req-1")
    ///     .context(CodeContext { function: Some("rank"), line: Some(7), ..Default::default() });
    /// let mut head = RecordHead::default();
    /// encoder.encode_head(&base, &mut head);
    ///
    /// let (mut direct, mut reused) = (Vec::new(), Vec::new());
    /// let record = Record { message: "scored", ..base };
    /// encoder.encode(&record, &mut direct);
    /// encoder.encode(&record.head(&head), &mut reused);
    /// assert_eq!(direct, reused);
    /// ```
    pub fn encode_head(&self, record: &Record<'_>, head: &mut RecordHead) {
        head.buf.clear();
        head.component = self.encode_ids(record, &mut head.buf);
        head.ids_end = head.buf.len();
        if let Some(ctx) = record.context {
            encode_context(&ctx, &mut head.buf);
        }
    }

    /// Writes `prefix{fields}`, or nothing when no field was written.
    fn object(&self, out: &mut Vec<u8>, prefix: &[u8], f: impl FnOnce(&mut FieldWriter<'_>)) {
        let mark = out.len();
        out.extend_from_slice(prefix);
        out.push(b'{');
        let mut w = FieldWriter::new(out, &self.redactor);
        f(&mut w);
        if w.count == 0 {
            out.truncate(mark);
        } else {
            out.push(b'}');
        }
    }
}

/// Writes `,"context":{..}`, or nothing for an empty context.
fn encode_context(ctx: &CodeContext<'_>, out: &mut Vec<u8>) {
    // Fixed keys: no redaction needed.
    let mark = out.len();
    out.extend_from_slice(b",\"context\":{");
    let open = out.len();
    let sep = |out: &mut Vec<u8>, key: &[u8]| {
        if out.len() > open {
            out.push(b',');
        }
        out.extend_from_slice(key);
    };
    if let Some(f) = ctx.function {
        sep(out, b"\"function\":");
        quoted_str_into(out, f);
    }
    if let Some(f) = ctx.file {
        sep(out, b"\"file\":");
        quoted_str_into(out, f);
    }
    if let Some(l) = ctx.line {
        sep(out, b"\"line\":");
        write_u64(out, l.into());
    }
    if let Some(t) = ctx.thread {
        sep(out, b"\"thread\":");
        write_u64(out, t);
    }
    if let Some(p) = ctx.process {
        sep(out, b"\"process\":");
        write_u64(out, p.into());
    }
    if out.len() == open {
        out.truncate(mark);
    } else {
        out.push(b'}');
    }
}

/// The repeated parts of a record, encoded once by [`RecordEncoder::encode_head`] and reused
/// by the records that set [`Record::head`]: component, logger, request, user and session
/// ids, trace and span ids, and the code context.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Level, Record, RecordEncoder, RecordHead};
///
/// let encoder = RecordEncoder::default();
/// let mut head = RecordHead::default();
/// encoder.encode_head(&Record::new(Level::INFO, "serving", "").request_id("req-9"), &mut head);
/// let mut line = Vec::new();
/// encoder.encode(&Record::new(Level::INFO, "ignored", "served").head(&head), &mut line);
/// let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
/// assert_eq!((json["component"].as_str(), json["request_id"].as_str()), (Some("serving"), Some("req-9")));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RecordHead {
    buf: Vec<u8>,
    /// Where the component name stands in `buf`.
    component: Range<usize>,
    /// Where the ids end and the context begins.
    ids_end: usize,
}

#[inline]
fn opt_str(out: &mut Vec<u8>, key: &[u8], v: Option<&str>) {
    if let Some(v) = v {
        push_quoted_between(out, key, v, b"");
    }
}

fn hex_quoted<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N]) {
    let mut buf = [b'"'; 34];
    for (i, &b) in bytes.iter().enumerate() {
        buf[1 + 2 * i..3 + 2 * i].copy_from_slice(&HEX_PAIRS[b as usize]);
    }
    push_slice(out, &buf[..2 * N + 2]);
}

/// Each byte's two lowercase hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Writes a span's `duration_ms` as [`write_f64`] writes [`SpanInfo::duration_ms`] (whole
/// microseconds over 1000), from the integer: at most three decimals, no float division.
fn write_duration_ms(out: &mut Vec<u8>, span: &SpanInfo<'_>) {
    let micros = span.duration_micros();
    // Below 2^43 us (101 days) no shorter decimal reads back as the same double, so the
    // exact decimal is the one `write_f64` finds.
    if micros >= 1 << 43 {
        write_f64(out, span.duration_ms());
        return;
    }
    write_fixed(out, false, micros as u64, 3);
}

#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

pub(crate) fn write_i128(out: &mut Vec<u8>, v: i128) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

pub(crate) fn write_u128(out: &mut Vec<u8>, v: u128) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

/// Finite floats so that they parse back to the same value; NaN and infinities as `null`.
///
/// Values with at most six decimals (durations in milliseconds, scores) take a fast path;
/// the rest go through ryu's shortest representation.
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let a = v.abs();
    if a < 1e9 {
        let mut scale = 1.0;
        for decimals in 0..=6usize {
            let scaled = a * scale;
            // Below 1e15, so the integer conversion is exact when `scaled` is whole (and
            // needs no call to `trunc`; signed, because x86-64 converts i64 in one
            // instruction and u64 in a dozen). `n / scale == a` proves the decimal
            // `n`e-`decimals` reads back as `a`.
            let n = scaled as i64;
            if n as f64 == scaled && scaled / scale == a {
                // A rounding in `a * scale` can make the first whole scale one digit too
                // fine (128.383 * 1e3 = 128382.99..., so 1283830e-4): `write_fixed` drops
                // the trailing zero.
                write_fixed(out, v.is_sign_negative(), n as u64, decimals);
                return;
            }
            scale *= 10.0;
        }
    }
    push_slice(out, ryu::Buffer::new().format_finite(v).as_bytes());
}

/// Writes `n` / 10^`decimals` in its shortest form (trailing zeros of the fraction dropped,
/// at least one digit after the point: `45.0`), in one pass from the last digit. `n` is
/// below 10^15.
#[inline]
fn write_fixed(out: &mut Vec<u8>, negative: bool, mut n: u64, mut decimals: usize) {
    while decimals > 0 && n % 10 == 0 {
        n /= 10;
        decimals -= 1;
    }
    let mut buf = [b'0'; 24];
    let mut i = buf.len();
    if decimals == 0 {
        i -= 1;
    }
    for _ in 0..decimals {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    i -= 1;
    buf[i] = b'.';
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    push_slice(out, &buf[i..]);
}

/// Writes the fields of one JSON object; every key passes the redactor.
///
/// Handed to [`Fields::write_fields`]. A key that the redactor
/// matches is written with the value `"[REDACTED]"` and the value is never looked at.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Fields, FieldWriter, Level, Record, RecordEncoder};
///
/// struct Login<'a> { user: &'a str, password: &'a str }
/// impl Fields for Login<'_> {
///     fn write_fields(&self, w: &mut FieldWriter<'_>) {
///         w.str("user", self.user);
///         w.str("password", self.password);
///         w.object("limits", |w| { w.u64("per_minute", 10); });
///     }
/// }
///
/// let mut out = Vec::new();
/// let login = Login { user: "ada", password: "hunter2" };
/// RecordEncoder::default().encode(&Record::new(Level::INFO, "auth", "login").data(&login), &mut out);
/// let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(v["data"]["password"], "[REDACTED]");
/// assert_eq!(v["data"]["limits"]["per_minute"], 10);
/// ```
pub struct FieldWriter<'b> {
    out: &'b mut Vec<u8>,
    redactor: &'b Redactor,
    count: usize,
}

impl fmt::Debug for FieldWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldWriter")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl<'b> FieldWriter<'b> {
    fn new(out: &'b mut Vec<u8>, redactor: &'b Redactor) -> FieldWriter<'b> {
        FieldWriter {
            out,
            redactor,
            count: 0,
        }
    }

    /// Writes `,"key":` and returns true when the value should follow; for a redacted key it
    /// writes the marker and returns false.
    #[inline]
    fn key(&mut self, key: &str) -> bool {
        let comma: &[u8] = if self.count > 0 { b"," } else { b"" };
        self.count += 1;
        push_quoted_between(self.out, comma, key, b":");
        if self.redactor.is_redacted(key) {
            quoted_str_into(self.out, REDACTED);
            false
        } else {
            true
        }
    }

    /// True when no field was written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A string.
    #[inline(always)]
    pub fn str(&mut self, key: &(impl Key + ?Sized), v: &str) {
        if key.write_key(self) {
            quoted_str_into(self.out, v);
        }
    }

    /// Bytes as a string; invalid UTF-8 becomes U+FFFD.
    pub fn bytes(&mut self, key: &(impl Key + ?Sized), v: &[u8]) {
        if key.write_key(self) {
            self.out.push(b'"');
            escape_bytes_into(self.out, v);
            self.out.push(b'"');
        }
    }

    /// A signed integer.
    #[inline(always)]
    pub fn i64(&mut self, key: &(impl Key + ?Sized), v: i64) {
        if key.write_key(self) {
            write_i64(self.out, v);
        }
    }

    /// An unsigned integer.
    #[inline(always)]
    pub fn u64(&mut self, key: &(impl Key + ?Sized), v: u64) {
        if key.write_key(self) {
            write_u64(self.out, v);
        }
    }

    /// A float (NaN and infinities as `null`).
    #[inline(always)]
    pub fn f64(&mut self, key: &(impl Key + ?Sized), v: f64) {
        if key.write_key(self) {
            write_f64(self.out, v);
        }
    }

    /// A boolean.
    #[inline(always)]
    pub fn bool(&mut self, key: &(impl Key + ?Sized), v: bool) {
        if key.write_key(self) {
            self.out
                .extend_from_slice(if v { b"true" } else { b"false" });
        }
    }

    /// `null`.
    pub fn null(&mut self, key: &(impl Key + ?Sized)) {
        if key.write_key(self) {
            self.out.extend_from_slice(b"null");
        }
    }

    /// Anything `Display`, as a string.
    pub fn display(&mut self, key: &(impl Key + ?Sized), v: &dyn fmt::Display) {
        if key.write_key(self) {
            self.out.push(b'"');
            let _ = fmt::write(&mut EscapingWriter(self.out), format_args!("{v}"));
            self.out.push(b'"');
        }
    }

    /// Anything `Debug`, as a string. Fields of the `Debug` text whose names are redacted
    /// (`Config { password: "..", .. }`, `{"api_key": ..}`) have their values replaced by the
    /// marker.
    pub fn debug(&mut self, key: &(impl Key + ?Sized), v: &dyn fmt::Debug) {
        if key.write_key(self) {
            write_debug(self.out, self.redactor, v);
        }
    }

    /// Anything `Serialize`, structured (redaction applies inside it too). If the value's
    /// `Serialize` fails, the field holds `"<unserializable: reason>"` instead.
    pub fn serialize<T: Serialize + ?Sized>(&mut self, key: &(impl Key + ?Sized), v: &T) {
        if key.write_key(self) {
            serialize_value(self.out, self.redactor, v);
        }
    }

    /// The entries of anything `Serialize` that is a map or a struct, as fields of this
    /// object (redaction applies to every key, at every depth). `None` and `()` add nothing.
    /// Returns false, writing nothing, for any other value.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use tracekit_exporters::{FieldWriter, Fields, Level, Record, RecordEncoder};
    ///
    /// struct Flat(BTreeMap<&'static str, u64>);
    /// impl Fields for Flat {
    ///     fn write_fields(&self, w: &mut FieldWriter<'_>) {
    ///         assert!(w.flatten(&self.0));
    ///         assert!(!w.flatten(&42));
    ///     }
    /// }
    /// let data = Flat(BTreeMap::from([("count", 3), ("token", 7)]));
    /// let mut out = Vec::new();
    /// RecordEncoder::default().encode(&Record::new(Level::INFO, "c", "m").data(&data), &mut out);
    /// let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    /// assert_eq!(v["data"]["count"], 3);
    /// assert_eq!(v["data"]["token"], "[REDACTED]");
    /// ```
    pub fn flatten<T: Serialize + ?Sized>(&mut self, v: &T) -> bool {
        let mark = self.out.len();
        serialize_value(self.out, self.redactor, v);
        let written = &self.out[mark..];
        match written {
            b"null" | b"{}" => {
                self.out.truncate(mark);
                true
            }
            [b'{', .., b'}'] => {
                // Drop the braces: the entries become this object's fields.
                self.out.pop();
                if self.count > 0 {
                    self.out[mark] = b',';
                } else {
                    self.out.remove(mark);
                }
                self.count += 1;
                true
            }
            _ => {
                self.out.truncate(mark);
                false
            }
        }
    }

    /// A [`Value`].
    pub fn value(&mut self, key: &(impl Key + ?Sized), v: &Value<'_>) {
        if key.write_key(self) {
            write_value(self.out, self.redactor, v);
        }
    }

    /// A nested object, written by `f`.
    pub fn object(&mut self, key: &(impl Key + ?Sized), f: impl FnOnce(&mut FieldWriter<'_>)) {
        if key.write_key(self) {
            self.out.push(b'{');
            let mut inner = FieldWriter::new(self.out, self.redactor);
            f(&mut inner);
            self.out.push(b'}');
        }
    }

    /// A list, written by `f`.
    pub fn list(&mut self, key: &(impl Key + ?Sized), f: impl FnOnce(&mut ListWriter<'_>)) {
        if key.write_key(self) {
            self.out.push(b'[');
            let mut inner = ListWriter {
                out: self.out,
                redactor: self.redactor,
                count: 0,
            };
            f(&mut inner);
            self.out.push(b']');
        }
    }
}

/// A field name for the [`FieldWriter`] methods: a `str` (escaped and checked against the
/// redaction list on every write), or a [`FieldKey`] that did both once.
pub trait Key {
    /// Writes the key (after a comma when needed) and returns true when the value should
    /// follow; for a redacted key writes the marker instead and returns false.
    #[doc(hidden)]
    fn write_key(&self, w: &mut FieldWriter<'_>) -> bool;
}

impl Key for str {
    #[inline]
    fn write_key(&self, w: &mut FieldWriter<'_>) -> bool {
        w.key(self)
    }
}

impl<K: Key + ?Sized> Key for &K {
    #[inline]
    fn write_key(&self, w: &mut FieldWriter<'_>) -> bool {
        (**self).write_key(w)
    }
}

impl Key for String {
    #[inline]
    fn write_key(&self, w: &mut FieldWriter<'_>) -> bool {
        w.key(self)
    }
}

/// A field name escaped and checked against a redaction list once, for code that writes the
/// same field many times (the event layer keeps one per field of each call site).
///
/// Used with a writer of another redaction list, it falls back to the plain name, so it can
/// never escape redaction.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{FieldKey, FieldWriter, Fields, Level, Record, RecordEncoder};
///
/// let encoder = RecordEncoder::default();
/// let (count, token) = (FieldKey::new(&encoder, "count"), FieldKey::new(&encoder, "token"));
/// assert!(token.is_redacted() && !count.is_redacted());
///
/// struct Data<'k>(&'k FieldKey, &'k FieldKey);
/// impl Fields for Data<'_> {
///     fn write_fields(&self, w: &mut FieldWriter<'_>) {
///         w.u64(self.0, 3);
///         w.str(self.1, "t0k3n");
///     }
/// }
/// let mut line = Vec::new();
/// encoder.encode(&Record::new(Level::INFO, "c", "m").data(&Data(&count, &token)), &mut line);
/// let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
/// assert_eq!(v["data"], serde_json::json!({"count": 3, "token": "[REDACTED]"}));
/// ```
#[derive(Clone, Debug)]
pub struct FieldKey {
    name: Box<str>,
    /// `,"name":`, followed by the quoted marker when redacted (the first key of an object
    /// is written without the comma).
    json: Box<[u8]>,
    redacted: bool,
    redactor_id: u64,
}

impl FieldKey {
    /// The key `name` as `encoder` writes it.
    pub fn new(encoder: &RecordEncoder, name: &str) -> FieldKey {
        let redactor = encoder.redactor();
        let redacted = redactor.is_redacted(name);
        let mut json = Vec::with_capacity(name.len() + 16);
        push_quoted_between(&mut json, b",", name, b":");
        if redacted {
            quoted_str_into(&mut json, REDACTED);
        }
        FieldKey {
            name: name.into(),
            json: json.into(),
            redacted,
            redactor_id: redactor.id(),
        }
    }

    /// The field name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when its values are replaced by the redaction marker.
    pub fn is_redacted(&self) -> bool {
        self.redacted
    }
}

impl Key for FieldKey {
    #[inline(always)]
    fn write_key(&self, w: &mut FieldWriter<'_>) -> bool {
        if self.redactor_id != w.redactor.id() {
            return w.key(&self.name);
        }
        let json = if w.count > 0 {
            &self.json[..]
        } else {
            &self.json[1..]
        };
        w.count += 1;
        push_slice(w.out, json);
        !self.redacted
    }
}

/// Fields encoded ahead of their record, with an encoder's redaction, to be written as (part
/// of) the record's `data` later: a producer that learns the record's message only while it
/// walks its fields (a `tracing` event) walks them once.
///
/// Only a [`FieldWriter`] writes into it, so what it holds went through the redactor. Use it
/// with records encoded by the same encoder: written by an encoder with another redaction
/// list, the fields are replaced by one `"encoded_fields": "[REDACTED]"` rather than let
/// through unchecked.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{EncodedFields, Level, Record, RecordEncoder};
///
/// let encoder = RecordEncoder::default();
/// let mut data = EncodedFields::default();
/// data.write(&encoder, |w| {
///     w.u64("num_candidates", 1500);
///     w.str("api_key", "sk-live-123");
/// });
/// let mut out = Vec::new();
/// encoder.encode(&Record::new(Level::INFO, "candidate", "generated").data(&data), &mut out);
/// let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(v["data"]["num_candidates"], 1500);
/// assert_eq!(v["data"]["api_key"], "[REDACTED]");
/// ```
#[derive(Clone, Debug, Default)]
pub struct EncodedFields {
    /// The fields, comma-separated, without braces.
    buf: Vec<u8>,
    count: usize,
    /// The redaction list the fields went through.
    redactor_id: u64,
}

/// Buffers grown by one huge record are not kept.
const KEEP_ENCODED_FIELDS: usize = 16 * 1024;

impl EncodedFields {
    /// Forgets the fields (keeping the buffer unless it grew large).
    pub fn clear(&mut self) {
        if self.buf.capacity() > KEEP_ENCODED_FIELDS {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.count = 0;
    }

    /// True when it holds no field.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends fields with `f`, redacted by `encoder`'s redactor.
    pub fn write<R>(
        &mut self,
        encoder: &RecordEncoder,
        f: impl FnOnce(&mut FieldWriter<'_>) -> R,
    ) -> R {
        if self.count > 0 && self.redactor_id != encoder.redactor.id() {
            // Fields under two redaction lists: keep only the stricter promise.
            self.clear();
        }
        self.redactor_id = encoder.redactor.id();
        let mut w = FieldWriter {
            out: &mut self.buf,
            redactor: &encoder.redactor,
            count: self.count,
        };
        let r = f(&mut w);
        self.count = w.count;
        r
    }
}

impl Fields for EncodedFields {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        if self.count == 0 {
            return;
        }
        if self.redactor_id != w.redactor.id() {
            w.str("encoded_fields", REDACTED);
            return;
        }
        if w.count > 0 {
            w.out.push(b',');
        }
        w.out.extend_from_slice(&self.buf);
        w.count += self.count;
    }
}

/// Writes the elements of one JSON array (see [`FieldWriter::list`]).
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Fields, FieldWriter, Value};
///
/// struct Sources;
/// impl Fields for Sources {
///     fn write_fields(&self, w: &mut FieldWriter<'_>) {
///         w.list("sources", |l| {
///             l.value(&Value::Str("in_network"));
///             l.object(|o| o.u64("weight", 2));
///         });
///     }
/// }
/// ```
pub struct ListWriter<'b> {
    out: &'b mut Vec<u8>,
    redactor: &'b Redactor,
    count: usize,
}

impl fmt::Debug for ListWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListWriter")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl ListWriter<'_> {
    fn comma(&mut self) {
        if self.count > 0 {
            self.out.push(b',');
        }
        self.count += 1;
    }

    /// A [`Value`].
    pub fn value(&mut self, v: &Value<'_>) {
        self.comma();
        write_value(self.out, self.redactor, v);
    }

    /// Anything `Serialize`.
    pub fn serialize<T: Serialize + ?Sized>(&mut self, v: &T) {
        self.comma();
        serialize_value(self.out, self.redactor, v);
    }

    /// A nested object.
    pub fn object(&mut self, f: impl FnOnce(&mut FieldWriter<'_>)) {
        self.comma();
        self.out.push(b'{');
        let mut inner = FieldWriter::new(self.out, self.redactor);
        f(&mut inner);
        self.out.push(b'}');
    }

    /// A nested list.
    pub fn list(&mut self, f: impl FnOnce(&mut ListWriter<'_>)) {
        self.comma();
        self.out.push(b'[');
        let mut inner = ListWriter {
            out: self.out,
            redactor: self.redactor,
            count: 0,
        };
        f(&mut inner);
        self.out.push(b']');
    }
}

fn serialize_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, redactor: &Redactor, v: &T) {
    let mark = out.len();
    if let Err(e) = v.serialize(JsonSerializer { out, redactor }) {
        out.truncate(mark);
        out.push(b'"');
        let _ = fmt::write(
            &mut EscapingWriter(out),
            format_args!("<unserializable: {e}>"),
        );
        out.push(b'"');
    }
}

/// `v`'s `Debug` text as a JSON string, its redacted fields' values replaced by the marker.
fn write_debug(out: &mut Vec<u8>, redactor: &Redactor, v: &dyn fmt::Debug) {
    out.push(b'"');
    let start = out.len();
    let _ = fmt::write(&mut EscapingWriter(out), format_args!("{v:?}"));
    // Rare: a needle somewhere in the text. Format again, scrub the fields it names.
    if redactor.occurs_in(&out[start..]) {
        out.truncate(start);
        let text = format!("{v:?}");
        let text = redactor.scrub_debug(&text);
        let _ = fmt::Write::write_str(&mut EscapingWriter(out), &text);
    }
    out.push(b'"');
}

fn write_value(out: &mut Vec<u8>, redactor: &Redactor, v: &Value<'_>) {
    match *v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::I64(n) => write_i64(out, n),
        Value::U64(n) => write_u64(out, n),
        Value::I128(n) => write_i128(out, n),
        Value::U128(n) => write_u128(out, n),
        Value::F64(n) => write_f64(out, n),
        Value::Str(s) => quoted_str_into(out, s),
        Value::Bytes(b) => {
            out.push(b'"');
            escape_bytes_into(out, b);
            out.push(b'"');
        }
        Value::Display(d) => {
            out.push(b'"');
            let _ = fmt::write(&mut EscapingWriter(out), format_args!("{d}"));
            out.push(b'"');
        }
        Value::Debug(d) => write_debug(out, redactor, d),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, redactor, item);
            }
            out.push(b']');
        }
        Value::Map(fields) => {
            out.push(b'{');
            let mut w = FieldWriter::new(out, redactor);
            for (k, v) in fields {
                w.value(k, v);
            }
            out.push(b'}');
        }
        Value::Json(j) => serialize_value(out, redactor, j),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn span_durations_are_written_as_their_float_would_be() {
        let start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let samples = (0..200_000u64).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every magnitude from 1 us to about 100 days, and round numbers.
            let micros = x % (1 << (x % 44));
            if x % 5 == 0 {
                micros / 1000 * 1000
            } else {
                micros
            }
        });
        for micros in samples.chain([0, 1, 10, 999, 1000, 12_340, (1 << 43) - 1, 1 << 43, 1 << 50])
        {
            for end in [
                start + std::time::Duration::from_micros(micros),
                start - std::time::Duration::from_micros(micros.min(1)),
            ] {
                let span = SpanInfo {
                    name: "s",
                    kind: "internal",
                    parent_span_id: None,
                    start,
                    end,
                    status: SpanStatus::Unset,
                    attributes: None,
                };
                let (mut ours, mut float) = (Vec::new(), Vec::new());
                write_duration_ms(&mut ours, &span);
                write_f64(&mut float, span.duration_ms());
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(float).unwrap(),
                    "{micros} us"
                );
            }
        }
    }

    #[test]
    fn ids_are_lowercase_hex() {
        let mut out = Vec::new();
        hex_quoted(&mut out, &[0x00, 0x09, 0xab, 0xff, 0x10, 0x7e]);
        assert_eq!(out, br#""0009abff107e""#);
    }

    #[test]
    fn floats_read_back_exactly() {
        assert_eq!(f(45.2), "45.2");
        assert_eq!(f(45.0), "45.0");
        assert_eq!(f(-0.0), "-0.0");
        assert_eq!(f(0.001), "0.001");
        assert_eq!(f(-12.345678), "-12.345678");
        assert_eq!(f(0.005), "0.005");
        assert_eq!(f(1e-6), "0.000001");
        assert_eq!(f(-0.5), "-0.5");
        assert_eq!(f(7.0), "7.0");
        assert_eq!(f(999_999_999.125), "999999999.125");
        assert_eq!(f(123_456_789.123_456), "123456789.123456");
        assert_eq!(f(1e9), "1000000000.0");
        assert_eq!(f(128.383), "128.383");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::NEG_INFINITY), "null");
        let mut x = 0.000_123_456_789_f64;
        for _ in 0..4000 {
            for v in [x, -x, x / 3.0, (x * 1000.0).round() / 1000.0] {
                let s = f(v);
                assert_eq!(s.parse::<f64>().unwrap(), v, "{v:e} -> {s}");
            }
            x *= 1.013;
        }
    }

    #[test]
    fn field_keys_never_cross_redaction_lists() {
        let strict = RecordEncoder::new(Redactor::new(["user"]), "app");
        let lax = RecordEncoder::new(Redactor::new(["pin"]), "app");
        let (email, pin) = (
            FieldKey::new(&lax, "user_email"),
            FieldKey::new(&lax, "pin\n"),
        );
        let line = |encoder: &RecordEncoder| {
            let mut data = EncodedFields::default();
            data.write(encoder, |w| {
                w.str(&email, "ada@example.com");
                w.u64(&pin, 1234);
            });
            let mut out = Vec::new();
            encoder.encode(
                &Record::new(crate::Level::INFO, "c", "m").data(&data),
                &mut out,
            );
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            v["data"].clone()
        };
        // A key made for the lax list, used under the strict one, is checked anew.
        assert_eq!(
            line(&strict),
            serde_json::json!({"user_email": "[REDACTED]", "pin\n": 1234})
        );
        assert_eq!(
            line(&lax),
            serde_json::json!({"user_email": "ada@example.com", "pin\n": "[REDACTED]"})
        );
    }

    #[test]
    fn encoded_fields_never_cross_redaction_lists() {
        let strict = RecordEncoder::new(Redactor::new(["user"]), "app");
        let lax = RecordEncoder::new(Redactor::new(["pin"]), "app");
        let mut data = EncodedFields::default();
        data.write(&lax, |w| w.str("user_email", "ada@example.com"));
        let mut out = Vec::new();
        strict.encode(
            &Record::new(crate::Level::INFO, "c", "m").data(&data),
            &mut out,
        );
        let line = String::from_utf8(out).unwrap();
        assert!(!line.contains("ada@example.com"), "{line}");
        assert!(line.contains(r#""encoded_fields":"[REDACTED]""#), "{line}");
        // Written under the same list, they pass as they are.
        let mut out = Vec::new();
        lax.encode(
            &Record::new(crate::Level::INFO, "c", "m").data(&data),
            &mut out,
        );
        assert!(String::from_utf8(out).unwrap().contains("ada@example.com"));
    }

    #[test]
    fn compound_map_keys_are_keyed_by_their_json_text() {
        use std::collections::BTreeMap;
        let odd = BTreeMap::from([((1, 2), "tuple"), ((3, 4), "other")]);
        let secret = BTreeMap::from([(("api_key", 1), "sk-live")]);
        struct Both<'a>(
            &'a BTreeMap<(i32, i32), &'a str>,
            &'a BTreeMap<(&'a str, i32), &'a str>,
        );
        impl Fields for Both<'_> {
            fn write_fields(&self, w: &mut FieldWriter<'_>) {
                w.serialize("odd", self.0);
                w.serialize("keyed", self.1);
            }
        }
        let mut out = Vec::new();
        RecordEncoder::default().encode(
            &Record::new(crate::Level::INFO, "c", "m").data(&Both(&odd, &secret)),
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["data"]["odd"],
            serde_json::json!({"[1,2]": "tuple", "[3,4]": "other"})
        );
        assert_eq!(
            v["data"]["keyed"],
            serde_json::json!({"[\"api_key\",1]": "[REDACTED]"})
        );
    }
}
