//! [`EncodedFields`]: fields encoded ahead of their record.

use super::field_writer::FieldWriter;
use super::redaction::REDACTED;
use super::RecordEncoder;
use crate::record::Fields;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, Redactor};

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
}
