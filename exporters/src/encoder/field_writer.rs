//! [`FieldWriter`] and [`ListWriter`]: the fields of `data`, span attributes and nested values,
//! written straight into the line, every key at every depth through the redactor.

use std::fmt;

use serde::Serialize;

use super::escape::{escape_bytes_into, push_quoted_between, quoted_str_into, EscapingWriter};
use super::numbers::{write_f64, write_i128, write_i64, write_u128, write_u64};
use super::redaction::{Redactor, REDACTED};
use super::serializer::JsonSerializer;
use crate::value::Value;

/// Writes the fields of one JSON object; every key passes the redactor.
///
/// Handed to [`Fields::write_fields`](crate::Fields::write_fields). A key that the redactor
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
    pub(super) out: &'b mut Vec<u8>,
    pub(super) redactor: &'b Redactor,
    /// Fields written so far.
    pub(super) count: usize,
}

impl fmt::Debug for FieldWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldWriter")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl<'b> FieldWriter<'b> {
    pub(super) fn new(out: &'b mut Vec<u8>, redactor: &'b Redactor) -> FieldWriter<'b> {
        FieldWriter {
            out,
            redactor,
            count: 0,
        }
    }

    /// Writes `,"key":` and returns true when the value should follow; for a redacted key it
    /// writes the marker and returns false.
    #[inline]
    pub(super) fn key(&mut self, key: &str) -> bool {
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

/// A field name for the [`FieldWriter`] methods: a `str` or a `String`, escaped and checked
/// against the redaction list on every write.
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
