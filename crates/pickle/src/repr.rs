//! Python's `repr` of floats, str and bytes, character for character as
//! CPython 3 prints them; the one implementation every netport crate uses.
//! (Ints print as their decimal digits: `i64`'s `Display`,
//! [`BigInt::to_decimal`](crate::BigInt::to_decimal).)
//!
//! - [`float`]: `float.__repr__`: the shortest digits that round-trip,
//!   positional for a decimal exponent from -4 up to 15 (`0.0001`,
//!   `1234567890123456.0`), otherwise scientific with a sign and at least two
//!   exponent digits (`1e-05`, `1e+16`, `1.5e+300`); `inf`, `-inf`, `nan`,
//!   `-0.0`.
//! - [`string`]: `str.__repr__`: single quotes unless the text has `'` and
//!   no `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped; other ASCII control
//!   characters and DEL as `\xhh`; characters from U+0080 up that
//!   `str.isprintable()` rejects (Unicode categories C* and Z* except space,
//!   table of Unicode 14 as in CPython 3.11) as `\xhh`, `\uhhhh` or
//!   `\Uhhhhhhhh`; everything else as it is.
//! - [`bytes`]: `bytes.__repr__`: `b` and the same quote rule; `\\`, the
//!   quote, `\t`, `\n`, `\r`; other bytes outside 0x20..0x7e as `\xhh`.
//!
//! The `write_string`/`write_bytes` forms append to a `String` and stop
//! (without the closing quote) once it holds `max` bytes, for bounded
//! messages; they return whether the whole repr was written.
//!
//! ```
//! use netport_pickle::repr;
//! assert_eq!(repr::float(1e-5), "1e-05");
//! assert_eq!(repr::float(1e16), "1e+16");
//! assert_eq!(repr::float(0.1 + 0.2), "0.30000000000000004");
//! assert_eq!(repr::string("it's"), "\"it's\"");
//! assert_eq!(repr::bytes(b"\x00a'"), "b\"\\x00a'\"");
//! ```

mod printable;

use std::fmt::Write as _;

/// `repr(f)` for a Python float.
pub fn float(f: f64) -> String {
    let mut out = String::new();
    write_float(&mut out, f);
    out
}

/// Append `repr(f)` to `out`.
pub fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // CPython's `repr` (David Gay's mode 0) takes the fewest digits that
    // round-trip and, of those, the decimal nearest to `f`, ties to even.
    // `{:e}` gives the fewest digits but may pick another candidate
    // (970067940481837.3 for ...837.25); `{:.N$e}` rounds the exact value
    // to that many digits, half to even: the nearest one. `-1.2345e-7`, `0e0`.
    let shortest = format!("{f:e}");
    let n = shortest
        .split_once('e')
        .map_or(shortest.as_str(), |(m, _)| m)
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let sci = format!("{f:.*e}", n.saturating_sub(1));
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    // CPython: position of the decimal point relative to the digits.
    let decpt = exp + 1;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..-decpt {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let d = decpt as usize;
            if digits.len() <= d {
                out.push_str(&digits);
                for _ in digits.len()..d {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..d]);
                out.push('.');
                out.push_str(&digits[d..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Whether CPython's `str.isprintable()` accepts the character.
pub fn is_printable(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 0x80 {
        return (0x20..0x7f).contains(&cp);
    }
    printable::NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

/// The quote CPython picks: `"` when the text has `'` and no `"`.
fn quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double { '"' } else { '\'' }
}

/// `repr(s)` for a Python str.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s, usize::MAX);
    out
}

/// Append `repr(s)` to `out`, stopping once `out` holds `max` bytes;
/// whether it was written whole.
pub fn write_string(out: &mut String, s: &str, max: usize) -> bool {
    let q = quote(s.contains('\''), s.contains('"'));
    out.push(q);
    for c in s.chars() {
        if out.len() >= max {
            return false;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let cp = u32::from(c);
                let _ = match cp {
                    0..=0xff => write!(out, "\\x{cp:02x}"),
                    0x100..=0xffff => write!(out, "\\u{cp:04x}"),
                    _ => write!(out, "\\U{cp:08x}"),
                };
            }
        }
    }
    out.push(q);
    true
}

/// `repr(b)` for Python bytes.
pub fn bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 3);
    write_bytes(&mut out, b, usize::MAX);
    out
}

/// Append `repr(b)` to `out`, stopping once `out` holds `max` bytes;
/// whether it was written whole.
pub fn write_bytes(out: &mut String, b: &[u8], max: usize) -> bool {
    let q = quote(b.contains(&b'\''), b.contains(&b'"'));
    out.push('b');
    out.push(q);
    for &c in b {
        if out.len() >= max {
            return false;
        }
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if char::from(c) == q => {
                out.push('\\');
                out.push(q);
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(q);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_disjoint() {
        let t = printable::NON_PRINTABLE;
        assert!(t.iter().all(|&(lo, hi)| lo <= hi && lo >= 0x80));
        assert!(t.windows(2).all(|w| w[0].1 + 1 < w[1].0));
    }

    #[test]
    fn thresholds() {
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(9999999999999998.0), "9999999999999998.0");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(5e-324), "5e-324");
        assert_eq!(float(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn bounded_writers_stop() {
        let mut out = String::new();
        assert!(!write_string(&mut out, &"x".repeat(1000), 10));
        assert_eq!(out, "'xxxxxxxxx");
        let mut out = String::new();
        assert!(!write_bytes(&mut out, &[0u8; 1000], 10));
        assert_eq!(out, "b'\\x00\\x00");
        let mut out = String::new();
        assert!(write_bytes(&mut out, b"ab", 10));
        assert_eq!(out, "b'ab'");
    }
}
