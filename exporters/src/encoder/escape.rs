//! JSON string escaping that can never break a line.
//!
//! Beyond what JSON requires (`"`, `\` and C0 controls), this escapes DEL, the C1 controls
//! (U+0080 to U+009F, U+0085 NEL among them) and U+2028/U+2029, so no log content can split a
//! line for any reader or drive a terminal. Invalid UTF-8 becomes U+FFFD.

/// What the byte needs: 0 copy, 1 escape (ASCII), 2 look at the multi-byte sequence.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t[0x7f] = 1;
    t[0xc2] = 2; // U+0080..U+00BF: the C1 controls live here
    t[0xe2] = 2; // U+2000..U+2FFF: the line and paragraph separators live here
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn push_u_escape(out: &mut Vec<u8>, cp: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(cp >> 12 & 0xf) as usize],
        HEX[(cp >> 8 & 0xf) as usize],
        HEX[(cp >> 4 & 0xf) as usize],
        HEX[(cp & 0xf) as usize],
    ]);
}

/// Appends the contents of `s` escaped for a JSON string (without the quotes).
#[inline]
pub(crate) fn escape_str_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match CLASS[b as usize] {
            0 => i += 1,
            1 => {
                out.extend_from_slice(&bytes[start..i]);
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    _ => push_u_escape(out, u32::from(b)),
                }
                i += 1;
                start = i;
            }
            _ => {
                // `s` is valid UTF-8, so the continuation bytes are there.
                let cp = if b == 0xc2 {
                    let c1 = bytes[i + 1];
                    (c1 < 0xa0).then_some((2, u32::from(c1)))
                } else {
                    let (b1, b2) = (bytes[i + 1], bytes[i + 2]);
                    (b1 == 0x80 && (b2 == 0xa8 || b2 == 0xa9))
                        .then_some((3, 0x2000 | u32::from(b2 & 0x3f)))
                };
                match cp {
                    Some((len, cp)) => {
                        out.extend_from_slice(&bytes[start..i]);
                        push_u_escape(out, cp);
                        i += len;
                        start = i;
                    }
                    None => i += 1,
                }
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `bytes` escaped for a JSON string; invalid UTF-8 sequences become U+FFFD.
pub(crate) fn escape_bytes_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        escape_str_into(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

/// Appends `"s"`, escaped.
#[inline]
pub(crate) fn quoted_str_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_str_into(out, s);
    out.push(b'"');
}

/// A `fmt::Write` that escapes what is written into a JSON string.
pub(crate) struct EscapingWriter<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_str_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = Vec::new();
        quoted_str_into(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_everything_that_could_break_a_line() {
        assert_eq!(esc("a\nb\r\"\\\t"), r#""a\nb\r\"\\\t""#);
        assert_eq!(esc("\u{0}\u{1b}[31m\u{7f}"), r#""\u0000\u001b[31m\u007f""#);
        assert_eq!(
            esc("x\u{85}y\u{2028}z\u{2029}"),
            r#""x\u0085y\u2028z\u2029""#
        );
        assert_eq!(esc("\u{9b}"), r#""\u009b""#);
    }

    #[test]
    fn keeps_other_unicode() {
        assert_eq!(
            esc("héllo – 你好 😀 \u{a0}\u{2027}\u{202a}"),
            "\"héllo – 你好 😀 \u{a0}\u{2027}\u{202a}\""
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let mut out = Vec::new();
        escape_bytes_into(&mut out, b"ok\xff\xfe\n\xe2\x80");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok\u{fffd}\u{fffd}\\n\u{fffd}"
        );
    }

    #[test]
    fn every_escaped_string_parses_back() {
        let all: String = (0..=0x3000u32).filter_map(char::from_u32).collect();
        let line = esc(&all);
        assert!(!line.bytes().any(|b| b < 0x20));
        let back: String = serde_json::from_str(&line).unwrap();
        assert_eq!(back, all);
    }
}
