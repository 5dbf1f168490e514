//! OpenTelemetry attribute values (`Value` for spans, `AnyValue` for logs) written through a
//! [`FieldWriter`] with their JSON types: numbers stay numbers, lists stay lists, maps stay
//! objects, and every key at every depth passes the redactor.

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry::logs::AnyValue;
use opentelemetry::{Array, Key, Value};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::encoder::field_writer::{FieldWriter, ListWriter};
use crate::encoder::redaction::{Redactor, REDACTED};
use crate::value::Value as RecordValue;

/// What the exporters need from an attribute value, whichever OTel type holds it.
pub(crate) trait AttributeValue {
    /// Writes the value under `key`, with its type.
    fn write_field(&self, w: &mut FieldWriter<'_>, key: &str);
    /// The value when it is a string.
    fn as_text(&self) -> Option<&str>;
    /// The value when it is an integer.
    fn as_int(&self) -> Option<i64>;
    /// The value when it is a boolean.
    fn as_flag(&self) -> Option<bool>;
}

impl AttributeValue for Value {
    fn write_field(&self, w: &mut FieldWriter<'_>, key: &str) {
        write_value(w, key, self);
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Value::I64(n) => Some(*n),
            _ => None,
        }
    }

    fn as_flag(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl AttributeValue for AnyValue {
    fn write_field(&self, w: &mut FieldWriter<'_>, key: &str) {
        write_any_value(w, key, self);
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            AnyValue::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            AnyValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    fn as_flag(&self) -> Option<bool> {
        match self {
            AnyValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

/// Writes a span attribute value: scalars with their types, arrays as JSON arrays.
pub(crate) fn write_value(w: &mut FieldWriter<'_>, key: &str, value: &Value) {
    match value {
        Value::Bool(b) => w.bool(key, *b),
        Value::I64(n) => w.i64(key, *n),
        Value::F64(n) => w.f64(key, *n),
        Value::String(s) => w.str(key, s.as_str()),
        Value::Array(array) => w.list(key, |l| write_array(l, array)),
        // `Value` is non-exhaustive: a future variant is kept as its display text.
        other => w.display(key, other),
    }
}

fn write_array(l: &mut ListWriter<'_>, array: &Array) {
    match array {
        Array::Bool(items) => items.iter().for_each(|b| l.value(&RecordValue::Bool(*b))),
        Array::I64(items) => items.iter().for_each(|n| l.value(&RecordValue::I64(*n))),
        Array::F64(items) => items.iter().for_each(|n| l.value(&RecordValue::F64(*n))),
        Array::String(items) => items
            .iter()
            .for_each(|s| l.value(&RecordValue::Str(s.as_str()))),
        other => l.value(&RecordValue::Display(other)),
    }
}

/// Writes a log attribute value: scalars with their types, bytes as text (invalid UTF-8
/// replaced), lists and maps nested. Map keys are written in sorted order so that a record
/// encodes the same way every time.
pub(crate) fn write_any_value(w: &mut FieldWriter<'_>, key: &str, value: &AnyValue) {
    match value {
        AnyValue::Int(n) => w.i64(key, *n),
        AnyValue::Double(n) => w.f64(key, *n),
        AnyValue::String(s) => w.str(key, s.as_str()),
        AnyValue::Boolean(b) => w.bool(key, *b),
        AnyValue::Bytes(bytes) => w.bytes(key, bytes),
        AnyValue::ListAny(items) => w.list(key, |l| {
            for item in items.iter() {
                write_any_item(l, item);
            }
        }),
        AnyValue::Map(map) => w.object(key, |o| {
            for (k, v) in sorted(map) {
                write_any_value(o, k.as_str(), v);
            }
        }),
        other => w.debug(key, other),
    }
}

fn write_any_item(l: &mut ListWriter<'_>, value: &AnyValue) {
    match value {
        AnyValue::Int(n) => l.value(&RecordValue::I64(*n)),
        AnyValue::Double(n) => l.value(&RecordValue::F64(*n)),
        AnyValue::String(s) => l.value(&RecordValue::Str(s.as_str())),
        AnyValue::Boolean(b) => l.value(&RecordValue::Bool(*b)),
        AnyValue::Bytes(bytes) => l.value(&RecordValue::Bytes(bytes)),
        AnyValue::ListAny(items) => l.list(|l| {
            for item in items.iter() {
                write_any_item(l, item);
            }
        }),
        AnyValue::Map(map) => l.object(|o| {
            for (k, v) in sorted(map) {
                write_any_value(o, k.as_str(), v);
            }
        }),
        other => l.value(&RecordValue::Debug(other)),
    }
}

fn sorted(map: &HashMap<Key, AnyValue>) -> Vec<(&Key, &AnyValue)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

/// A log body as message text: a string as it is, anything else as compact JSON (map keys
/// sorted and redacted, bytes as text with invalid UTF-8 replaced).
pub(crate) fn any_value_text<'v>(value: &'v AnyValue, redactor: &Redactor) -> Cow<'v, str> {
    match value {
        AnyValue::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(
            serde_json::to_string(&RedactedAny {
                value: other,
                redactor,
            })
            // Serializing to a String fails only for non-string map keys, which AnyValue has not.
            .unwrap_or_else(|e| format!("<unserializable: {e}>")),
        ),
    }
}

/// An `AnyValue` serialized with redaction.
struct RedactedAny<'a> {
    value: &'a AnyValue,
    redactor: &'a Redactor,
}

impl Serialize for RedactedAny<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            AnyValue::Int(n) => s.serialize_i64(*n),
            AnyValue::Double(n) => s.serialize_f64(*n),
            AnyValue::String(v) => s.serialize_str(v.as_str()),
            AnyValue::Boolean(b) => s.serialize_bool(*b),
            AnyValue::Bytes(bytes) => s.serialize_str(&String::from_utf8_lossy(bytes)),
            AnyValue::ListAny(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(&RedactedAny {
                        value: item,
                        redactor: self.redactor,
                    })?;
                }
                seq.end()
            }
            AnyValue::Map(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in sorted(map) {
                    if self.redactor.is_redacted(k.as_str()) {
                        m.serialize_entry(k.as_str(), REDACTED)?;
                    } else {
                        m.serialize_entry(
                            k.as_str(),
                            &RedactedAny {
                                value: v,
                                redactor: self.redactor,
                            },
                        )?;
                    }
                }
                m.end()
            }
            other => s.collect_str(&format_args!("{other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fields, Level, Record, RecordEncoder};

    struct One<'a, V: AttributeValue>(&'a str, &'a V);

    impl<V: AttributeValue> Fields for One<'_, V> {
        fn write_fields(&self, w: &mut FieldWriter<'_>) {
            self.1.write_field(w, self.0);
        }
    }

    fn encode_field<V: AttributeValue>(key: &str, value: &V) -> serde_json::Value {
        let mut out = Vec::new();
        let fields = One(key, value);
        RecordEncoder::default()
            .encode(&Record::new(Level::INFO, "t", "m").data(&fields), &mut out);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        line["data"][key].clone()
    }

    #[test]
    fn span_values_keep_their_types() {
        assert_eq!(
            encode_field("b", &Value::Bool(true)),
            serde_json::json!(true)
        );
        assert_eq!(encode_field("i", &Value::I64(-7)), serde_json::json!(-7));
        assert_eq!(encode_field("f", &Value::F64(0.5)), serde_json::json!(0.5));
        assert_eq!(
            encode_field("s", &Value::from("x\ny")),
            serde_json::json!("x\ny")
        );
        let ints = Value::Array(Array::I64(vec![1, 2, 3]));
        assert_eq!(encode_field("a", &ints), serde_json::json!([1, 2, 3]));
        let strs = Value::Array(Array::String(vec!["a".into(), "b".into()]));
        assert_eq!(encode_field("a", &strs), serde_json::json!(["a", "b"]));
        let nan = Value::F64(f64::NAN);
        assert_eq!(encode_field("f", &nan), serde_json::Value::Null);
    }

    #[test]
    fn any_values_nest_and_redact() {
        let inner: HashMap<Key, AnyValue> = [
            (Key::from("db_password"), AnyValue::from("hunter2")),
            (Key::from("port"), AnyValue::Int(5432)),
        ]
        .into_iter()
        .collect();
        let value = AnyValue::ListAny(Box::new(vec![
            AnyValue::Int(1),
            AnyValue::Double(2.5),
            AnyValue::Bytes(Box::new(vec![b'o', b'k', 0xff])),
            AnyValue::Map(Box::new(inner)),
            AnyValue::ListAny(Box::new(vec![AnyValue::Boolean(false)])),
        ]));
        assert_eq!(
            encode_field("v", &value),
            serde_json::json!([1, 2.5, "ok\u{fffd}", {"db_password": "[REDACTED]", "port": 5432}, [false]])
        );
        let bytes = AnyValue::Bytes(Box::new(b"\xf0\x28".to_vec()));
        assert_eq!(encode_field("b", &bytes), serde_json::json!("\u{fffd}("));
    }

    #[test]
    fn body_text_is_compact_sorted_redacted_json() {
        let redactor = Redactor::default();
        assert_eq!(any_value_text(&AnyValue::from("plain"), &redactor), "plain");
        let map: HashMap<Key, AnyValue> = [
            (Key::from("z"), AnyValue::Int(1)),
            (Key::from("api_key"), AnyValue::from("sk-1")),
            (
                Key::from("a"),
                AnyValue::ListAny(Box::new(vec![AnyValue::Double(0.5)])),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            any_value_text(&AnyValue::Map(Box::new(map)), &redactor),
            r#"{"a":[0.5],"api_key":"[REDACTED]","z":1}"#
        );
        assert_eq!(any_value_text(&AnyValue::Int(3), &redactor), "3");
    }
}
