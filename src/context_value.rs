//! [`ContextValue`]: a value of a [`LogContext`](crate::LogContext) key-value, and of a span
//! field kept for the lines written inside the span.

use std::fmt;
use std::sync::Arc;

use crate::exporters::{FieldWriter, Value};

/// A value of a [`LogContext`](crate::LogContext) key-value.
///
/// ```
/// use tracekit::ContextValue;
/// assert_eq!(ContextValue::from(3_u64), ContextValue::U64(3));
/// assert_eq!(ContextValue::from("a"), ContextValue::Str("a".into()));
/// assert_eq!(ContextValue::from(7_u32).to_string(), "7");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ContextValue {
    /// A string.
    Str(Arc<str>),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A signed 128-bit integer.
    I128(i128),
    /// An unsigned 128-bit integer.
    U128(u128),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl ContextValue {
    /// Writes the value under `key` (redaction applies).
    pub(crate) fn write(&self, w: &mut FieldWriter<'_>, key: &str) {
        match self {
            ContextValue::Str(s) => w.str(key, s),
            ContextValue::I64(n) => w.i64(key, *n),
            ContextValue::U64(n) => w.u64(key, *n),
            ContextValue::I128(n) => w.value(key, &Value::I128(*n)),
            ContextValue::U128(n) => w.value(key, &Value::U128(*n)),
            ContextValue::F64(n) => w.f64(key, *n),
            ContextValue::Bool(b) => w.bool(key, *b),
        }
    }

    /// The value as an OpenTelemetry attribute value. OpenTelemetry has no unsigned or
    /// 128-bit integers: those that fit an `i64` stay numbers, larger ones become their
    /// decimal text rather than wrap.
    pub(crate) fn to_otel(&self) -> opentelemetry::Value {
        match self {
            ContextValue::Str(s) => opentelemetry::Value::from(Arc::clone(s)),
            ContextValue::I64(n) => (*n).into(),
            ContextValue::U64(n) => {
                i64::try_from(*n).map_or_else(|_| n.to_string().into(), Into::into)
            }
            ContextValue::I128(n) => {
                i64::try_from(*n).map_or_else(|_| n.to_string().into(), Into::into)
            }
            ContextValue::U128(n) => {
                i64::try_from(*n).map_or_else(|_| n.to_string().into(), Into::into)
            }
            ContextValue::F64(n) => (*n).into(),
            ContextValue::Bool(b) => (*b).into(),
        }
    }
}

impl fmt::Display for ContextValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextValue::Str(s) => f.write_str(s),
            ContextValue::I64(n) => write!(f, "{n}"),
            ContextValue::U64(n) => write!(f, "{n}"),
            ContextValue::I128(n) => write!(f, "{n}"),
            ContextValue::U128(n) => write!(f, "{n}"),
            ContextValue::F64(n) => write!(f, "{n}"),
            ContextValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

macro_rules! context_value_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {$(
        impl From<$t> for ContextValue {
            fn from(v: $t) -> Self {
                ContextValue::$variant(<$conv>::from(v))
            }
        }
    )*};
}

context_value_from! {
    &str => Str as Arc<str>,
    String => Str as Arc<str>,
    Arc<str> => Str as Arc<str>,
    i64 => I64 as i64,
    i32 => I64 as i64,
    u64 => U64 as u64,
    u32 => U64 as u64,
    i128 => I128 as i128,
    u128 => U128 as u128,
    f64 => F64 as f64,
    bool => Bool as bool,
}

impl From<usize> for ContextValue {
    fn from(v: usize) -> Self {
        ContextValue::U64(v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_too_large_for_otel_become_text() {
        assert_eq!(
            ContextValue::U64(42).to_otel(),
            opentelemetry::Value::I64(42)
        );
        assert_eq!(
            ContextValue::U64(u64::MAX).to_otel(),
            opentelemetry::Value::from(u64::MAX.to_string())
        );
        assert_eq!(
            ContextValue::I128(-3).to_otel(),
            opentelemetry::Value::I64(-3)
        );
    }
}
