//! [`FieldKey`]: a field name escaped and checked against the redaction list once.

use super::escape::{push_quoted_between, push_slice, quoted_str_into};
use super::field_writer::{FieldWriter, Key};
use super::redaction::REDACTED;
use super::RecordEncoder;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::encoded_fields::EncodedFields;
    use crate::{Record, Redactor};

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
}
