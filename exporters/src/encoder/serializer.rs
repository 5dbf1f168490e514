//! A serde `Serializer` that writes JSON straight into the record buffer, applying redaction
//! to every map and struct key at every depth.

use std::fmt::{self, Display};

use serde::ser::{self, Serialize};

use super::escape::{quoted_str_into, EscapingWriter};
use super::numbers::{write_f64, write_i128, write_i64, write_u128, write_u64};
use super::redaction::{Redactor, REDACTED};

/// Why a value could not be serialized (the value's own `Serialize` said so).
#[derive(Debug)]
pub(crate) struct SerializeError(pub(crate) String);

impl Display for SerializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerializeError {}

impl ser::Error for SerializeError {
    fn custom<T: Display>(msg: T) -> Self {
        SerializeError(msg.to_string())
    }
}

type Result<T = ()> = std::result::Result<T, SerializeError>;

/// Serializes into `out`, redacting by `redactor`.
pub(crate) struct JsonSerializer<'b> {
    pub(crate) out: &'b mut Vec<u8>,
    pub(crate) redactor: &'b Redactor,
}

impl<'b> JsonSerializer<'b> {
    fn reborrow(&mut self) -> JsonSerializer<'_> {
        JsonSerializer {
            out: self.out,
            redactor: self.redactor,
        }
    }
}

/// A map, struct or sequence in progress.
pub(crate) struct Compound<'b> {
    ser: JsonSerializer<'b>,
    first: bool,
    /// The key just written is redacted: write `[REDACTED]` instead of the next value.
    redact_value: bool,
    /// Close with `]}` or `}}` (an enum variant wrapped in an object) or one bracket.
    close: &'static [u8],
    /// The variant's name is redacted: at the end, cut the output back to here and write
    /// the marker instead. Nothing leaves the buffer before that.
    redact_from: Option<usize>,
}

impl<'b> Compound<'b> {
    fn open(ser: JsonSerializer<'b>, open: u8, close: &'static [u8]) -> Compound<'b> {
        ser.out.push(open);
        Compound {
            ser,
            first: true,
            redact_value: false,
            close,
            redact_from: None,
        }
    }

    fn comma(&mut self) {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
    }

    fn field_key(&mut self, key: &str) {
        self.comma();
        quoted_str_into(self.ser.out, key);
        self.ser.out.push(b':');
        self.redact_value = self.ser.redactor.is_redacted(key);
    }

    fn field_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        if std::mem::take(&mut self.redact_value) {
            quoted_str_into(self.ser.out, REDACTED);
            Ok(())
        } else {
            value.serialize(self.ser.reborrow())
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.comma();
        value.serialize(self.ser.reborrow())
    }

    fn finish(self) -> Result {
        match self.redact_from {
            Some(at) => {
                self.ser.out.truncate(at);
                quoted_str_into(self.ser.out, REDACTED);
                self.ser.out.push(b'}');
            }
            None => self.ser.out.extend_from_slice(self.close),
        }
        Ok(())
    }
}

fn variant_open<'b>(
    ser: JsonSerializer<'b>,
    variant: &str,
    open: u8,
    close: &'static [u8],
) -> Compound<'b> {
    ser.out.push(b'{');
    quoted_str_into(ser.out, variant);
    ser.out.push(b':');
    let redact_from = ser.redactor.is_redacted(variant).then_some(ser.out.len());
    let mut c = Compound::open(ser, open, close);
    c.redact_from = redact_from;
    c
}

impl<'b> ser::Serializer for JsonSerializer<'b> {
    type Ok = ();
    type Error = SerializeError;
    type SerializeSeq = Compound<'b>;
    type SerializeTuple = Compound<'b>;
    type SerializeTupleStruct = Compound<'b>;
    type SerializeTupleVariant = Compound<'b>;
    type SerializeMap = Compound<'b>;
    type SerializeStruct = Compound<'b>;
    type SerializeStructVariant = Compound<'b>;

    fn serialize_bool(self, v: bool) -> Result {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result {
        write_i64(self.out, v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result {
        write_i64(self.out, v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result {
        write_i64(self.out, v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result {
        write_i64(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result {
        write_i128(self.out, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result {
        write_u64(self.out, v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result {
        write_u64(self.out, v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result {
        write_u64(self.out, v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result {
        write_u64(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result {
        write_u128(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result {
        write_f64(self.out, f64::from(v));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result {
        write_f64(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result {
        quoted_str_into(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result {
        quoted_str_into(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        let mut seq = Compound::open(self, b'[', b"]");
        for b in v {
            seq.element(b)?;
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        let mut map = Compound::open(self, b'{', b"}");
        map.field_key(variant);
        map.field_value(value)?;
        map.finish()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'b>> {
        Ok(Compound::open(self, b'[', b"]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'b>> {
        Ok(Compound::open(self, b'[', b"]"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'b>> {
        Ok(Compound::open(self, b'[', b"]"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'b>> {
        Ok(variant_open(self, variant, b'[', b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'b>> {
        Ok(Compound::open(self, b'{', b"}"))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'b>> {
        Ok(Compound::open(self, b'{', b"}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'b>> {
        Ok(variant_open(self, variant, b'{', b"}}"))
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result {
        self.out.push(b'"');
        fmt::write(&mut EscapingWriter(self.out), format_args!("{value}"))
            .map_err(|_| SerializeError("a Display implementation failed".into()))?;
        self.out.push(b'"');
        Ok(())
    }
}

macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = SerializeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
                self.element(value)
            }
            fn end(self) -> Result {
                self.finish()
            }
        }
    };
}

seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = SerializeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.comma();
        let mark = self.ser.out.len();
        let redact = match key.serialize(MapKeySerializer {
            out: self.ser.out,
            redactor: self.ser.redactor,
        }) {
            Ok(redact) => redact,
            Err(_) => {
                // A compound key (a tuple, a struct): keyed by its compact JSON text.
                self.ser.out.truncate(mark);
                let mut text = Vec::new();
                key.serialize(JsonSerializer {
                    out: &mut text,
                    redactor: self.ser.redactor,
                })?;
                let text = String::from_utf8_lossy(&text);
                quoted_str_into(self.ser.out, &text);
                self.ser.redactor.is_redacted(&text)
            }
        };
        self.ser.out.push(b':');
        self.redact_value = redact;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.field_value(value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = SerializeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field_key(key);
        self.field_value(value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = SerializeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field_key(key);
        self.field_value(value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

/// Writes a map key as a JSON string and tells whether it is redacted. Keys that are not
/// strings (numbers, booleans, chars) are written as strings, as serde_json does.
struct MapKeySerializer<'b> {
    out: &'b mut Vec<u8>,
    redactor: &'b Redactor,
}

impl MapKeySerializer<'_> {
    fn plain(self, digits: impl FnOnce(&mut Vec<u8>)) -> Result<bool> {
        self.out.push(b'"');
        digits(self.out);
        self.out.push(b'"');
        Ok(false)
    }
}

/// Tells `serialize_key` to fall back to the key's JSON text.
fn key_must_be_a_string() -> SerializeError {
    SerializeError("a map key must be a string, a number, a bool or a char".into())
}

impl ser::Serializer for MapKeySerializer<'_> {
    type Ok = bool;
    type Error = SerializeError;
    type SerializeSeq = ser::Impossible<bool, SerializeError>;
    type SerializeTuple = ser::Impossible<bool, SerializeError>;
    type SerializeTupleStruct = ser::Impossible<bool, SerializeError>;
    type SerializeTupleVariant = ser::Impossible<bool, SerializeError>;
    type SerializeMap = ser::Impossible<bool, SerializeError>;
    type SerializeStruct = ser::Impossible<bool, SerializeError>;
    type SerializeStructVariant = ser::Impossible<bool, SerializeError>;

    fn serialize_str(self, v: &str) -> Result<bool> {
        quoted_str_into(self.out, v);
        Ok(self.redactor.is_redacted(v))
    }
    fn serialize_char(self, v: char) -> Result<bool> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bool(self, v: bool) -> Result<bool> {
        self.plain(|o| o.extend_from_slice(if v { b"true" } else { b"false" }))
    }
    fn serialize_i8(self, v: i8) -> Result<bool> {
        self.plain(|o| write_i64(o, v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<bool> {
        self.plain(|o| write_i64(o, v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<bool> {
        self.plain(|o| write_i64(o, v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<bool> {
        self.plain(|o| write_i64(o, v))
    }
    fn serialize_i128(self, v: i128) -> Result<bool> {
        self.plain(|o| write_i128(o, v))
    }
    fn serialize_u8(self, v: u8) -> Result<bool> {
        self.plain(|o| write_u64(o, v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<bool> {
        self.plain(|o| write_u64(o, v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<bool> {
        self.plain(|o| write_u64(o, v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<bool> {
        self.plain(|o| write_u64(o, v))
    }
    fn serialize_u128(self, v: u128) -> Result<bool> {
        self.plain(|o| write_u128(o, v))
    }
    fn serialize_f32(self, _v: f32) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _v: f64) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<bool> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<bool> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<bool> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<bool> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_must_be_a_string())
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<bool> {
        let s = value.to_string();
        self.serialize_str(&s)
    }
}
