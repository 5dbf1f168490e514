//! The record encoder: one record, one JSON line, in contract key order, with redaction.
//!
//! No intermediate `serde_json::Value` is built: fields stream straight into the output
//! buffer, and every key at every depth passes through the [`Redactor`].

pub(crate) mod encoded_fields;
mod escape;
pub(crate) mod field_key;
pub(crate) mod field_writer;
mod numbers;
pub(crate) mod record_head;
pub(crate) mod redaction;
mod serializer;
pub(crate) mod timestamp;

use std::ops::Range;

use opentelemetry::trace::{SpanId, TraceId};

use crate::component::{is_normal, normalize_component};
use crate::layout;
use crate::record::{CodeContext, Record, SpanInfo, SpanStatus};
use escape::{push_quoted_between, push_slice, quoted_str_into};
use field_writer::FieldWriter;
use numbers::{write_f64, write_fixed, write_u64};
use record_head::RecordHead;
use redaction::Redactor;
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
        out.extend_from_slice(layout::LINE_START);
        out.extend_from_slice(&format_rfc3339_micros(unix_micros(record.timestamp)));
        out.extend_from_slice(layout::BEFORE_LEVEL);
        push_slice(out, record.level.as_str().as_bytes());
        let component = match record.head {
            Some(head) => {
                let base = out.len();
                out.extend_from_slice(&head.buf[..head.ids_end]);
                base + head.component.start..base + head.component.end
            }
            None => self.encode_ids(record, out),
        };
        out.extend_from_slice(layout::MESSAGE.fragment());
        quoted_str_into(out, record.message);
        if let Some(data) = record.data {
            self.object(out, layout::DATA.fragment(), |w| data.write_fields(w));
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
            for (i, link) in span.links.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b",\"links\":[" } else { b"," });
                out.extend_from_slice(b"{\"trace_id\":");
                hex_quoted(out, &link.span_context.trace_id().to_bytes());
                out.extend_from_slice(b",\"span_id\":");
                hex_quoted(out, &link.span_context.span_id().to_bytes());
                out.push(b'}');
            }
            if !span.links.is_empty() {
                out.push(b']');
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
        opt_str(out, layout::REQUEST_ID.fragment(), record.request_id);
        opt_str(out, b",\"user_id\":", record.user_id);
        opt_str(out, b",\"session_id\":", record.session_id);
        if let Some(id) = record.trace_id.filter(|id| *id != TraceId::INVALID) {
            out.extend_from_slice(layout::TRACE_ID.fragment());
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
    #[doc(hidden)]
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
    out.extend_from_slice(layout::CONTEXT.fragment());
    out.push(b'{');
    let open = out.len();
    let sep = |out: &mut Vec<u8>, key: &[u8]| {
        if out.len() > open {
            out.push(b',');
        }
        out.extend_from_slice(key);
    };
    if let Some(f) = ctx.function {
        sep(out, layout::FUNCTION.quoted());
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

#[cfg(test)]
mod tests {
    use super::numbers::write_f64;
    use super::*;
    use crate::record::Fields;

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
                    links: &[],
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
