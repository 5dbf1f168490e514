//! Numbers as JSON: integers, and floats that read back as the same value.

use super::escape::push_slice;

#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

pub(crate) fn write_i128(out: &mut Vec<u8>, v: i128) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

pub(crate) fn write_u128(out: &mut Vec<u8>, v: u128) {
    push_slice(out, itoa::Buffer::new().format(v).as_bytes());
}

/// Finite floats so that they parse back to the same value; NaN and infinities as `null`.
///
/// Values with at most six decimals (durations in milliseconds, scores) take a fast path;
/// the rest go through ryu's shortest representation.
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let a = v.abs();
    if a < 1e9 {
        let mut scale = 1.0;
        for decimals in 0..=6usize {
            let scaled = a * scale;
            // Below 1e15, so the integer conversion is exact when `scaled` is whole (and
            // needs no call to `trunc`; signed, because x86-64 converts i64 in one
            // instruction and u64 in a dozen). `n / scale == a` proves the decimal
            // `n`e-`decimals` reads back as `a`.
            let n = scaled as i64;
            if n as f64 == scaled && scaled / scale == a {
                // A rounding in `a * scale` can make the first whole scale one digit too
                // fine (128.383 * 1e3 = 128382.99..., so 1283830e-4): `write_fixed` drops
                // the trailing zero.
                write_fixed(out, v.is_sign_negative(), n as u64, decimals);
                return;
            }
            scale *= 10.0;
        }
    }
    push_slice(out, ryu::Buffer::new().format_finite(v).as_bytes());
}

/// Writes `n` / 10^`decimals` in its shortest form (trailing zeros of the fraction dropped,
/// at least one digit after the point: `45.0`), in one pass from the last digit. `n` is
/// below 10^15.
#[inline]
pub(super) fn write_fixed(out: &mut Vec<u8>, negative: bool, mut n: u64, mut decimals: usize) {
    while decimals > 0 && n % 10 == 0 {
        n /= 10;
        decimals -= 1;
    }
    let mut buf = [b'0'; 24];
    let mut i = buf.len();
    if decimals == 0 {
        i -= 1;
    }
    for _ in 0..decimals {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    i -= 1;
    buf[i] = b'.';
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    push_slice(out, &buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_read_back_exactly() {
        assert_eq!(f(45.2), "45.2");
        assert_eq!(f(45.0), "45.0");
        assert_eq!(f(-0.0), "-0.0");
        assert_eq!(f(0.001), "0.001");
        assert_eq!(f(-12.345678), "-12.345678");
        assert_eq!(f(0.005), "0.005");
        assert_eq!(f(1e-6), "0.000001");
        assert_eq!(f(-0.5), "-0.5");
        assert_eq!(f(7.0), "7.0");
        assert_eq!(f(999_999_999.125), "999999999.125");
        assert_eq!(f(123_456_789.123_456), "123456789.123456");
        assert_eq!(f(1e9), "1000000000.0");
        assert_eq!(f(128.383), "128.383");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::NEG_INFINITY), "null");
        let mut x = 0.000_123_456_789_f64;
        for _ in 0..4000 {
            for v in [x, -x, x / 3.0, (x * 1000.0).round() / 1000.0] {
                let s = f(v);
                assert_eq!(s.parse::<f64>().unwrap(), v, "{v:e} -> {s}");
            }
            x *= 1.013;
        }
    }
}
