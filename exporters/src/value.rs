//! [`Value`]: a field's value, borrowed from its producer.

use std::fmt;

/// A field's value, borrowed.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::Value;
///
/// let sources = [Value::Str("in_network"), Value::Str("out_network")];
/// let fields = [("count", Value::U64(3)), ("sources", Value::List(&sources))];
/// # let _ = fields;
/// ```
#[derive(Clone, Copy)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A wide signed integer (written as a number).
    I128(i128),
    /// A wide unsigned integer (written as a number).
    U128(u128),
    /// A float; NaN and infinities are written as `null`.
    F64(f64),
    /// A string.
    Str(&'a str),
    /// Bytes that should be text; invalid UTF-8 becomes U+FFFD.
    Bytes(&'a [u8]),
    /// Anything `Display`, written as a string.
    Display(&'a dyn fmt::Display),
    /// Anything `Debug`, written as a string.
    Debug(&'a dyn fmt::Debug),
    /// A list.
    List(&'a [Value<'a>]),
    /// A nested object.
    Map(&'a [(&'a str, Value<'a>)]),
    /// A `serde_json` value, written as it is (after redaction).
    Json(&'a serde_json::Value),
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(v) => write!(f, "Bool({v})"),
            Value::I64(v) => write!(f, "I64({v})"),
            Value::U64(v) => write!(f, "U64({v})"),
            Value::I128(v) => write!(f, "I128({v})"),
            Value::U128(v) => write!(f, "U128({v})"),
            Value::F64(v) => write!(f, "F64({v})"),
            Value::Str(v) => write!(f, "Str({v:?})"),
            Value::Bytes(v) => write!(f, "Bytes({v:?})"),
            Value::Display(v) => write!(f, "Display({v})"),
            Value::Debug(v) => write!(f, "Debug({v:?})"),
            Value::List(v) => f.debug_tuple("List").field(v).finish(),
            Value::Map(v) => f.debug_tuple("Map").field(v).finish(),
            Value::Json(v) => write!(f, "Json({v})"),
        }
    }
}
