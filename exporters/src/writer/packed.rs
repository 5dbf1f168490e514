//! Records queued as their parts, for the writer thread to encode
//! ([`LogWriter::write_deferred`](super::LogWriter::write_deferred)).
//!
//! A record without `data` and without a pre-encoded head is copied into the queue as it
//! is: its strings, ids, times and numbers, each behind a presence bit, and a span's
//! attributes (trait objects, visited on the caller's thread) as the encoder writes them,
//! redaction done. The writer thread reads it back into a [`Record`] borrowing from the
//! queue and encodes it with the same encoder, so the line is the one
//! [`LogWriter::write`](super::LogWriter::write) would have written. Nothing crosses threads but these bytes: no reference count, no allocation
//! freed on the other thread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};

use crate::encoder::{RawFields, RecordEncoder};
use crate::record::{CodeContext, Exception, Fields, Record, SpanInfo, SpanStatus};
use crate::Level;

const LOGGER: u32 = 1;
const REQUEST_ID: u32 = 1 << 1;
const USER_ID: u32 = 1 << 2;
const SESSION_ID: u32 = 1 << 3;
const TRACE_ID: u32 = 1 << 4;
const SPAN_ID: u32 = 1 << 5;
const CONTEXT: u32 = 1 << 6;
const FUNCTION: u32 = 1 << 7;
const FILE: u32 = 1 << 8;
const LINE: u32 = 1 << 9;
const THREAD: u32 = 1 << 10;
const PROCESS: u32 = 1 << 11;
const EXCEPTION: u32 = 1 << 12;
const TRACEBACK: u32 = 1 << 13;
const SPAN: u32 = 1 << 14;
const PARENT: u32 = 1 << 15;
const STATUS_OK: u32 = 1 << 16;
const STATUS_ERROR: u32 = 1 << 17;
const TIMING: u32 = 1 << 18;
const STAMPED_AT_END: u32 = 1 << 19;
const ATTRIBUTES: u32 = 1 << 20;

/// Appends `record`'s parts to `out` (a span's attributes encoded by `encoder`); false (and
/// `out` as it was) when the record has `data` or a head, or a time before the Unix epoch.
pub(crate) fn pack(record: &Record<'_>, encoder: &RecordEncoder, out: &mut Vec<u8>) -> bool {
    if record.data.is_some() || record.head.is_some() {
        return false;
    }
    let start = out.len();
    let mut bits = 0;
    out.extend_from_slice(&[0; 4]);
    out.push(record.level.severity_number());
    // A span record is stamped with its end: written once.
    if record.span.is_some_and(|s| s.end == record.timestamp) {
        bits |= STAMPED_AT_END;
    } else if !time(out, record.timestamp) {
        out.truncate(start);
        return false;
    }
    str(out, record.component);
    str(out, record.message);
    put_str(out, &mut bits, LOGGER, record.logger);
    put_str(out, &mut bits, REQUEST_ID, record.request_id);
    put_str(out, &mut bits, USER_ID, record.user_id);
    put_str(out, &mut bits, SESSION_ID, record.session_id);
    put(
        out,
        &mut bits,
        TRACE_ID,
        record.trace_id.map(|id| id.to_bytes()),
    );
    put(
        out,
        &mut bits,
        SPAN_ID,
        record.span_id.map(|id| id.to_bytes()),
    );
    if let Some(ctx) = &record.context {
        bits |= CONTEXT;
        put_str(out, &mut bits, FUNCTION, ctx.function);
        put_str(out, &mut bits, FILE, ctx.file);
        put(out, &mut bits, LINE, ctx.line.map(u32::to_le_bytes));
        put(out, &mut bits, THREAD, ctx.thread.map(u64::to_le_bytes));
        put(out, &mut bits, PROCESS, ctx.process.map(u32::to_le_bytes));
    }
    if let Some(exc) = &record.exception {
        bits |= EXCEPTION;
        str(out, exc.kind);
        str(out, exc.message);
        put_str(out, &mut bits, TRACEBACK, exc.traceback);
    }
    if let Some(span) = &record.span {
        bits |= SPAN;
        str(out, span.name);
        str(out, span.kind);
        put(
            out,
            &mut bits,
            PARENT,
            span.parent_span_id.map(|id| id.to_bytes()),
        );
        if !(time(out, span.start) && time(out, span.end)) {
            out.truncate(start);
            return false;
        }
        match span.status {
            SpanStatus::Unset => {}
            SpanStatus::Ok => bits |= STATUS_OK,
            SpanStatus::Error(message) => {
                bits |= STATUS_ERROR;
                str(out, message);
            }
        }
        if let Some(attributes) = span.attributes {
            // Their count, then their length and bytes, filled in once written.
            bits |= ATTRIBUTES;
            let at = out.len();
            out.extend_from_slice(&[0; 8]);
            let count = encoder.fields_into(out, attributes);
            let len = out.len() - at - 8;
            out[at..at + 4].copy_from_slice(&(count as u32).to_le_bytes());
            out[at + 4..at + 8].copy_from_slice(&(len as u32).to_le_bytes());
        }
    }
    if record.timing {
        bits |= TIMING;
    }
    // Lengths are 32 bits: a record of 4 GiB is encoded by the caller instead.
    if out.len() - start > u32::MAX as usize {
        out.truncate(start);
        return false;
    }
    out[start..start + 4].copy_from_slice(&bits.to_le_bytes());
    true
}

/// Reads a record [`pack`] wrote and hands it to `f`; `None` if `bytes` is not one.
pub(crate) fn unpack<R>(bytes: &[u8], f: impl FnOnce(&Record<'_>) -> R) -> Option<R> {
    let mut r = Reader(bytes);
    let bits = u32::from_le_bytes(r.array()?);
    let has = |bit: u32| bits & bit != 0;
    if has(STAMPED_AT_END) && !has(SPAN) {
        return None;
    }
    let level = Level::from_severity_number(r.array::<1>()?[0])?;
    let stamped = match has(STAMPED_AT_END) {
        true => None,
        false => Some(r.time()?),
    };
    let component = r.str()?;
    let message = r.str()?;
    // A record stamped at its span's end gets it below.
    let mut record = Record::at(stamped.unwrap_or(UNIX_EPOCH), level, component, message);
    record.logger = r.str_if(has(LOGGER))?;
    record.request_id = r.str_if(has(REQUEST_ID))?;
    record.user_id = r.str_if(has(USER_ID))?;
    record.session_id = r.str_if(has(SESSION_ID))?;
    record.trace_id = r.array_if(has(TRACE_ID))?.map(TraceId::from_bytes);
    record.span_id = r.array_if(has(SPAN_ID))?.map(SpanId::from_bytes);
    if has(CONTEXT) {
        let function = r.str_if(has(FUNCTION))?;
        let file = r.str_if(has(FILE))?;
        let line = r.array_if(has(LINE))?.map(u32::from_le_bytes);
        let thread = r.array_if(has(THREAD))?.map(u64::from_le_bytes);
        let process = r.array_if(has(PROCESS))?.map(u32::from_le_bytes);
        record.context = Some(CodeContext {
            function,
            file,
            line,
            thread,
            process,
        });
    }
    if has(EXCEPTION) {
        record.exception = Some(Exception {
            kind: r.str()?,
            message: r.str()?,
            traceback: r.str_if(has(TRACEBACK))?,
        });
    }
    let attributes;
    if has(SPAN) {
        let name = r.str()?;
        let kind = r.str()?;
        let parent_span_id = r.array_if(has(PARENT))?.map(SpanId::from_bytes);
        let start = r.time()?;
        let end = r.time()?;
        if has(STAMPED_AT_END) {
            record.timestamp = end;
        }
        let status = if has(STATUS_ERROR) {
            SpanStatus::Error(r.str()?)
        } else if has(STATUS_OK) {
            SpanStatus::Ok
        } else {
            SpanStatus::Unset
        };
        attributes = match has(ATTRIBUTES) {
            true => Some(RawFields {
                count: u32::from_le_bytes(r.array()?) as usize,
                bytes: r.bytes()?,
            }),
            false => None,
        };
        record.span = Some(SpanInfo {
            name,
            kind,
            parent_span_id,
            start,
            end,
            status,
            attributes: attributes.as_ref().map(|a| a as &dyn Fields),
        });
    }
    record.timing = has(TIMING);
    r.0.is_empty().then(|| f(&record))
}

/// Appends `value`'s bytes and sets `bit`, when there is a value.
fn put<const N: usize>(out: &mut Vec<u8>, bits: &mut u32, bit: u32, value: Option<[u8; N]>) {
    if let Some(v) = value {
        *bits |= bit;
        out.extend_from_slice(&v);
    }
}

/// Appends `value` and sets `bit`, when there is a value.
fn put_str(out: &mut Vec<u8>, bits: &mut u32, bit: u32, value: Option<&str>) {
    if let Some(v) = value {
        *bits |= bit;
        str(out, v);
    }
}

fn str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Seconds and nanoseconds since the Unix epoch; false for an earlier time.
fn time(out: &mut Vec<u8>, t: SystemTime) -> bool {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => {
            out.extend_from_slice(&d.as_secs().to_le_bytes());
            out.extend_from_slice(&d.subsec_nanos().to_le_bytes());
            true
        }
        Err(_) => false,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// `Some(None)` when absent, `None` when malformed.
    fn array_if<const N: usize>(&mut self, present: bool) -> Option<Option<[u8; N]>> {
        match present {
            true => self.array().map(Some),
            false => Some(None),
        }
    }

    /// `Some(None)` when absent, `None` when malformed.
    fn str_if(&mut self, present: bool) -> Option<Option<&'a str>> {
        match present {
            true => self.str().map(Some),
            false => Some(None),
        }
    }

    fn time(&mut self) -> Option<SystemTime> {
        let secs = u64::from_le_bytes(self.array()?);
        let nanos = u32::from_le_bytes(self.array()?);
        if nanos >= 1_000_000_000 {
            return None;
        }
        UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::RecordEncoder;
    use proptest::prelude::*;

    type Time = (u64, u32);
    type Ctx = (
        Option<String>,
        Option<String>,
        Option<u32>,
        Option<u64>,
        Option<u32>,
    );
    type Exc = (String, String, Option<String>);
    /// name, kind, parent, start, end, status (0 unset, 1 ok, 2 error), message, stamped
    /// at its end, attributes.
    type Span = (
        String,
        String,
        Option<[u8; 8]>,
        Time,
        Time,
        u8,
        String,
        bool,
        Option<Attributes>,
    );

    /// Span attributes: string or integer values under keys some of which are redacted.
    #[derive(Clone, Debug)]
    struct Attributes(Vec<(String, Result<u64, String>)>);

    impl crate::Fields for Attributes {
        fn write_fields(&self, w: &mut crate::FieldWriter<'_>) {
            for (key, value) in &self.0 {
                match value {
                    Ok(n) => w.u64(key.as_str(), *n),
                    Err(s) => w.str(key.as_str(), s),
                }
            }
        }
    }

    /// A record's parts, owned.
    #[derive(Clone, Debug)]
    struct Parts {
        head: (usize, Time, String, String, Option<String>, bool),
        ids: (Option<String>, Option<String>, Option<String>),
        otel: (Option<[u8; 16]>, Option<[u8; 8]>),
        context: Option<Ctx>,
        exception: Option<Exc>,
        span: Option<Span>,
    }

    fn at((secs, nanos): Time) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn record(p: &Parts) -> Record<'_> {
        let (level, ts, component, message, logger, timing) = &p.head;
        let mut r = Record::new(Level::ALL[*level], component, message).timestamp(at(*ts));
        r.logger = logger.as_deref();
        r.request_id = p.ids.0.as_deref();
        r.user_id = p.ids.1.as_deref();
        r.session_id = p.ids.2.as_deref();
        r.trace_id = p.otel.0.map(TraceId::from_bytes);
        r.span_id = p.otel.1.map(SpanId::from_bytes);
        r.context = p.context.as_ref().map(|c| CodeContext {
            function: c.0.as_deref(),
            file: c.1.as_deref(),
            line: c.2,
            thread: c.3,
            process: c.4,
        });
        r.exception = p.exception.as_ref().map(|e| Exception {
            kind: &e.0,
            message: &e.1,
            traceback: e.2.as_deref(),
        });
        if let Some(s) = &p.span {
            let end = at(s.4);
            r.span = Some(SpanInfo {
                name: &s.0,
                kind: &s.1,
                parent_span_id: s.2.map(SpanId::from_bytes),
                start: at(s.3),
                end,
                status: match s.5 {
                    0 => SpanStatus::Unset,
                    1 => SpanStatus::Ok,
                    _ => SpanStatus::Error(&s.6),
                },
                attributes: s.8.as_ref().map(|a| a as &dyn crate::Fields),
            });
            if s.7 {
                r.timestamp = end;
            }
        }
        r.timing = *timing;
        r
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_.-]{0,12}",
            // Escapes, quotes, multi-byte characters.
            "[a-zé\"\\\\\n\t\u{1}🦀]{0,24}",
        ]
    }

    fn time() -> impl Strategy<Value = Time> {
        (0u64..4_000_000_000, 0u32..1_000_000_000)
    }

    fn parts() -> impl Strategy<Value = Parts> {
        let head = (
            0usize..6,
            time(),
            text(),
            text(),
            proptest::option::of(text()),
            any::<bool>(),
        );
        let ids = (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        );
        let otel = (
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of(any::<[u8; 8]>()),
        );
        let context = proptest::option::of((
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
        ));
        let exception = proptest::option::of((text(), text(), proptest::option::of(text())));
        let span = proptest::option::of((
            text(),
            text(),
            proptest::option::of(any::<[u8; 8]>()),
            time(),
            time(),
            0u8..3,
            text(),
            any::<bool>(),
            proptest::option::of(
                proptest::collection::vec(
                    (
                        prop_oneof!["[a-z_]{1,8}", Just("password".to_owned())],
                        prop_oneof![any::<u64>().prop_map(Ok), text().prop_map(Err)],
                    ),
                    0..4,
                )
                .prop_map(Attributes),
            ),
        ));
        (head, ids, otel, context, exception, span).prop_map(
            |(head, ids, otel, context, exception, span)| Parts {
                head,
                ids,
                otel,
                context,
                exception,
                span,
            },
        )
    }

    proptest! {
        /// The writer thread writes the line the caller would have written, component
        /// included; every cut-short entry is refused, none panics.
        #[test]
        fn a_packed_record_encodes_as_the_record_does(p in parts()) {
            let encoder = RecordEncoder::new(Default::default(), "app");
            let r = record(&p);
            let mut direct = Vec::new();
            let comp = encoder.encode(&r, &mut direct);

            let mut packed = b"earlier entry".to_vec();
            prop_assert!(pack(&r, &encoder, &mut packed));
            let packed = &packed[b"earlier entry".len()..];
            let mut line = Vec::new();
            let got = unpack(packed, |r| encoder.encode(r, &mut line));
            prop_assert_eq!(String::from_utf8_lossy(&line), String::from_utf8_lossy(&direct));
            prop_assert_eq!(&line[got.unwrap()], &direct[comp]);

            for cut in 0..packed.len() {
                prop_assert!(unpack(&packed[..cut], |_| ()).is_none(), "cut at {}", cut);
            }
        }
    }

    /// A record with `data` or a head, or a time `pack` does not take, leaves the buffer as
    /// it was: `write_deferred` encodes those records itself.
    #[test]
    fn records_with_data_or_early_times_are_not_packed() {
        struct One;
        impl crate::Fields for One {
            fn write_fields(&self, w: &mut crate::FieldWriter<'_>) {
                w.u64("n", 1);
            }
        }
        let encoder = RecordEncoder::default();
        let span = SpanInfo {
            name: "work",
            kind: "internal",
            parent_span_id: None,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            status: SpanStatus::Unset,
            attributes: Some(&One),
        };
        let early = UNIX_EPOCH - Duration::from_secs(1);
        let head = crate::RecordHead::default();
        let base = Record::new(Level::INFO, "ranking", "m");
        for r in [
            Record {
                data: Some(&One),
                ..base
            },
            Record {
                head: Some(&head),
                ..base
            },
            base.timestamp(early),
            Record {
                span: Some(SpanInfo {
                    start: early,
                    ..span
                }),
                ..base
            },
        ] {
            let mut out = b"kept".to_vec();
            assert!(!pack(&r, &encoder, &mut out));
            assert_eq!(out, b"kept");
        }
        // Span attributes are encoded into the entry.
        for r in [
            base,
            Record {
                span: Some(span),
                ..base
            },
        ] {
            assert!(pack(&r, &encoder, &mut Vec::new()));
        }
    }

    /// Entries that are not `pack`'s are refused rather than misread.
    #[test]
    fn foreign_bytes_are_refused() {
        let mut packed = Vec::new();
        let encoder = RecordEncoder::default();
        assert!(pack(
            &Record::new(Level::INFO, "ranking", "m"),
            &encoder,
            &mut packed
        ));
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack(&longer, |_| ()).is_none(), "trailing bytes");
        let mut bad_level = packed.clone();
        bad_level[4] = 200;
        assert!(unpack(&bad_level, |_| ()).is_none(), "no such level");
        let mut stamped_without_span = packed.clone();
        stamped_without_span[..4].copy_from_slice(&STAMPED_AT_END.to_le_bytes());
        assert!(unpack(&stamped_without_span, |_| ()).is_none());
        let mut bad_utf8 = packed;
        let at = bad_utf8.len() - 1;
        bad_utf8[at] = 0xff;
        assert!(unpack(&bad_utf8, |_| ()).is_none(), "not UTF-8");
    }
}
