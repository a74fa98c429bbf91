//! The CSV loader's hot path for one column: plain integers and decimals
//! (also integers written `517.0`) parsed straight from the input bytes,
//! eight digits at a time, without building error values; ASCII strings
//! copied; timestamps and dates through a last-value cache.
//!
//! Invariant: whenever [`FastCell::parse`] or [`FastCell::parse_at`] takes
//! a value it writes exactly the bytes [`FieldCodec::parse_text`] writes for
//! the same text, and it takes no text that `parse_text` rejects; anything
//! else (another form, a value out of range, every error) is declined and
//! left to the general path. Floats use Clinger's fast path only where one
//! division is correctly rounded, else std's parser.

use super::temporal::{parse_date, parse_timestamp};
use super::FieldCodec;
use recmap::{FieldType, TimeUnit};
use std::cell::Cell;
use std::sync::Arc;

/// The longest timestamp or date text the last-value cache keeps.
const LAST_TEXT: usize = 40;

/// The hot path of CSV loading for one column: scalar numbers in their
/// plain forms are parsed here without building error values; anything else
/// (and every error) goes through [`FieldCodec::parse_text`].
#[derive(Clone, Debug)]
pub struct FastCell {
    kind: FastKind,
    offset: usize,
    /// For a nullable `str[N]`: the null tokens, which this path declines.
    str_nulls: Option<Arc<[Box<[u8]>]>>,
    /// `timestamp` and `date`: the last text parsed and its value. Columns
    /// repeat these (hourly readings, one day's rows), and the same text
    /// always means the same value, so a repeat skips the parser.
    last: Cell<([u8; LAST_TEXT], u8, i64)>,
    /// A nullable field's validity bit (byte, mask), set with every value
    /// taken here (nulls always take the general path).
    null: Option<(usize, u8)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FastKind {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// `str[N]` (N bytes): ASCII text without NUL.
    Str(usize),
    /// `timestamp[unit]` and `date`, through `temporal` and the last-value cache.
    Timestamp(TimeUnit),
    Date,
    Slow,
}

impl FastCell {
    pub fn new(f: &FieldCodec) -> FastCell {
        let kind = match (f.ty, f.count) {
            (FieldType::U8, 1) => FastKind::U8,
            (FieldType::U16, 1) => FastKind::U16,
            (FieldType::U32, 1) => FastKind::U32,
            (FieldType::U64, 1) => FastKind::U64,
            (FieldType::I8, 1) => FastKind::I8,
            (FieldType::I16, 1) => FastKind::I16,
            (FieldType::I32, 1) => FastKind::I32,
            (FieldType::I64, 1) => FastKind::I64,
            (FieldType::F32, 1) => FastKind::F32,
            (FieldType::F64, 1) => FastKind::F64,
            (FieldType::Str, n) => FastKind::Str(n),
            (FieldType::Timestamp(unit), 1) => FastKind::Timestamp(unit),
            (FieldType::Date, 1) => FastKind::Date,
            _ => FastKind::Slow,
        };
        let str_nulls = match (kind, f.null) {
            (FastKind::Str(_), Some(_)) => Some(f.null_tokens.clone()),
            _ => None,
        };
        let mut cell = FastCell {
            kind,
            offset: f.offset,
            null: f.null,
            str_nulls,
            last: Cell::new(([0; LAST_TEXT], u8::MAX, 0)),
        };
        // A null token this path would take as a number (`--null -999`)
        // must reach the general path, which sees it as a null.
        if f.null.is_some() && !matches!(kind, FastKind::Str(_)) {
            let mut scratch = vec![0u8; f.offset + 8];
            if f.null_tokens
                .iter()
                .any(|t| cell.parse_value(t, &mut scratch))
            {
                cell.kind = FastKind::Slow;
            }
        }
        cell
    }

    /// Parses `text` into `rec`; false means "use the general path".
    #[inline(always)]
    pub fn parse(&self, text: &[u8], rec: &mut [u8]) -> bool {
        let ok = self.parse_value(text, rec);
        if ok {
            self.set_valid(rec);
        }
        ok
    }

    #[inline(always)]
    fn set_valid(&self, rec: &mut [u8]) {
        if let Some((at, mask)) = self.null {
            rec[at] |= mask;
        }
    }

    #[inline(always)]
    fn parse_value(&self, text: &[u8], rec: &mut [u8]) -> bool {
        let out = &mut rec[self.offset..];
        match self.kind {
            FastKind::U64 => fast_uint(strip_zero_fraction(text))
                .map(|v| out[..8].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::U32 => fast_uint(strip_zero_fraction(text))
                .and_then(|v| u32::try_from(v).ok())
                .map(|v| out[..4].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::U16 => fast_uint(strip_zero_fraction(text))
                .and_then(|v| u16::try_from(v).ok())
                .map(|v| out[..2].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::U8 => fast_uint(strip_zero_fraction(text))
                .and_then(|v| u8::try_from(v).ok())
                .map(|v| out[0] = v)
                .is_some(),
            FastKind::I64 => fast_int(strip_zero_fraction(text))
                .map(|v| out[..8].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::I32 => fast_int(strip_zero_fraction(text))
                .and_then(|v| i32::try_from(v).ok())
                .map(|v| out[..4].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::I16 => fast_int(strip_zero_fraction(text))
                .and_then(|v| i16::try_from(v).ok())
                .map(|v| out[..2].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::I8 => fast_int(strip_zero_fraction(text))
                .and_then(|v| i8::try_from(v).ok())
                .map(|v| out[0] = v as u8)
                .is_some(),
            FastKind::F64 => match fast_f64(text) {
                Some(v) => {
                    out[..8].copy_from_slice(&v.to_le_bytes());
                    true
                }
                // Plain decimals that need more than the fast path: std's parser.
                None => match std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                {
                    Some(v) if v.is_finite() => {
                        out[..8].copy_from_slice(&v.to_le_bytes());
                        true
                    }
                    _ => false,
                },
            },
            FastKind::F32 => match fast_f32(text) {
                Some(v) => {
                    out[..4].copy_from_slice(&v.to_le_bytes());
                    true
                }
                None => match std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.parse::<f32>().ok())
                {
                    Some(v) if v.is_finite() => {
                        out[..4].copy_from_slice(&v.to_le_bytes());
                        true
                    }
                    _ => false,
                },
            },
            FastKind::Str(n) => {
                // ASCII without NUL is valid UTF-8 for `put_str`; a null
                // token is left to the general path.
                let ok = text.len() <= n
                    && text.iter().all(|&c| c.wrapping_sub(1) < 0x7f)
                    && !self
                        .str_nulls
                        .as_ref()
                        .is_some_and(|t| t.iter().any(|t| bytes_eq(t, text)));
                if ok {
                    out[..text.len()].copy_from_slice(text);
                    out[text.len()..n].fill(0);
                }
                ok
            }
            FastKind::Timestamp(unit) => match self.cached(text, |t| parse_timestamp(t, unit)) {
                Some(v) => {
                    out[..8].copy_from_slice(&v.to_le_bytes());
                    true
                }
                None => false,
            },
            FastKind::Date => match self.cached(text, |t| parse_date(t).map(i64::from)) {
                Some(v) => {
                    out[..4].copy_from_slice(&(v as i32).to_le_bytes());
                    true
                }
                None => false,
            },
            FastKind::Slow => false,
        }
    }

    /// `parse(text)` through the last-value cache; `None` for an error
    /// (left to the general path, which gives the message).
    #[inline(always)]
    fn cached(&self, text: &[u8], parse: impl FnOnce(&[u8]) -> Result<i64, String>) -> Option<i64> {
        let (bytes, len, v) = self.last.get();
        if len as usize == text.len()
            && text.len() <= LAST_TEXT
            && bytes_eq(&bytes[..text.len()], text)
        {
            return Some(v);
        }
        let v = parse(text).ok()?;
        if text.len() <= LAST_TEXT {
            let mut bytes = [0; LAST_TEXT];
            bytes[..text.len()].copy_from_slice(text);
            self.last.set((bytes, text.len() as u8, v));
        }
        Some(v)
    }
}

/// `a == b` for the short texts of cells (null tokens, timestamps), inline:
/// a call to `memcmp` per cell cost more than the comparison itself.
#[inline(always)]
pub fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut a8).zip(&mut b8) {
        if u64::from_ne_bytes(x.try_into().unwrap()) != u64::from_ne_bytes(y.try_into().unwrap()) {
            return false;
        }
    }
    a8.remainder()
        .iter()
        .zip(b8.remainder())
        .all(|(x, y)| x == y)
}

impl FastCell {
    /// Parses the plain number that starts at `buf[p]` (digits, an optional
    /// `-`, for floats also `+` and one `.`) straight from the input,
    /// without first finding where the field ends: writes the value into
    /// `rec` and returns the index just past the number. The caller checks
    /// that a delimiter follows there; then the result is the same as
    /// [`FastCell::parse`] of the field's text. `None` means "find the
    /// field and use `parse` or the general path": another kind of field, a
    /// longer or unusual form, or a value out of range.
    #[inline(always)]
    pub fn parse_at(&self, buf: &[u8], p: usize, rec: &mut [u8]) -> Option<usize> {
        let end = self.parse_at_value(buf, p, rec)?;
        self.set_valid(rec);
        Some(end)
    }

    #[inline(always)]
    fn parse_at_value(&self, buf: &[u8], p: usize, rec: &mut [u8]) -> Option<usize> {
        let out = &mut rec[self.offset..];
        let end = match self.kind {
            FastKind::U64 => {
                let (v, e) = uint_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[..8].copy_from_slice(&v.to_le_bytes());
                e
            }
            FastKind::U32 => {
                let (v, e) = uint_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[..4].copy_from_slice(&u32::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::U16 => {
                let (v, e) = uint_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[..2].copy_from_slice(&u16::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::U8 => {
                let (v, e) = uint_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[0] = u8::try_from(v).ok()?;
                e
            }
            FastKind::I64 => {
                let (v, e) = int_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[..8].copy_from_slice(&v.to_le_bytes());
                e
            }
            FastKind::I32 => {
                let (v, e) = int_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[..4].copy_from_slice(&i32::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::I16 => {
                let (v, e) = int_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[..2].copy_from_slice(&i16::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::I8 => {
                let (v, e) = int_at(buf, p)?;
                let e = skip_zero_fraction(buf, e);
                out[0] = i8::try_from(v).ok()? as u8;
                e
            }
            FastKind::F64 => {
                let (d, e) = decimal_at(buf, p)?;
                let v = if d.digits <= 19 && d.mant <= 1 << 53 && d.frac <= 22 {
                    // Clinger's fast path, as in fast_f64.
                    let v = d.mant as f64 / POW10_F64[d.frac];
                    if d.neg {
                        -v
                    } else {
                        v
                    }
                } else {
                    std_float::<f64>(&buf[p..e])?
                };
                out[..8].copy_from_slice(&v.to_le_bytes());
                e
            }
            FastKind::F32 => {
                let (d, e) = decimal_at(buf, p)?;
                let v = if d.digits <= 19 && d.mant <= 1 << 24 && d.frac <= 10 {
                    // Clinger's fast path, as in fast_f32.
                    let v = d.mant as f32 / POW10_F32[d.frac];
                    if d.neg {
                        -v
                    } else {
                        v
                    }
                } else {
                    std_float::<f32>(&buf[p..e])?
                };
                out[..4].copy_from_slice(&v.to_le_bytes());
                e
            }
            FastKind::Str(_) | FastKind::Timestamp(_) | FastKind::Date | FastKind::Slow => {
                return None
            }
        };
        Some(end)
    }
}

/// 8 bytes of `buf` from `i` as a little-endian word, zero-padded past the end.
#[inline(always)]
pub fn load8(buf: &[u8], i: usize) -> u64 {
    match buf.get(i..i + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        None => load8_tail(buf, i),
    }
}

#[cold]
fn load8_tail(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    if i < buf.len() {
        let n = buf.len() - i;
        w[..n].copy_from_slice(&buf[i..]);
    }
    u64::from_le_bytes(w)
}

/// Marks (0x80) the bytes of `w` that are not ASCII digits. The lowest mark
/// is exact; marks above it may be spurious (carries), which is all a
/// "first non-digit" search needs.
#[inline(always)]
fn non_digits(w: u64) -> u64 {
    (w.wrapping_add(0x4646_4646_4646_4646) | w.wrapping_sub(0x3030_3030_3030_3030))
        & 0x8080_8080_8080_8080
}

const POW10_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// Reads the decimal digits at `buf[i..]` onto `v`, eight at a time:
/// returns (value, digit count, index after the digits). The value is
/// exact while the digits of `v` and these number at most 19 together.
#[inline(always)]
fn scan_digits(buf: &[u8], mut i: usize, mut v: u64) -> (u64, usize, usize) {
    let start = i;
    loop {
        let w = load8(buf, i);
        let nd = non_digits(w);
        if nd == 0 {
            v = v.wrapping_mul(100_000_000).wrapping_add(eight_digits(w));
            i += 8;
            continue;
        }
        let k = (nd.trailing_zeros() / 8) as usize;
        if k > 0 {
            // The k digits moved to the top of the word, '0's below them.
            let w = (w << (64 - 8 * k)) | (0x3030_3030_3030_3030u64 >> (8 * k));
            v = v.wrapping_mul(POW10_U64[k]).wrapping_add(eight_digits(w));
            i += k;
        }
        return (v, i - start, i);
    }
}

/// 1 to 19 plain digits at `buf[p..]`: (value, index after).
#[inline(always)]
fn uint_at(buf: &[u8], p: usize) -> Option<(u64, usize)> {
    let (v, n, e) = scan_digits(buf, p, 0);
    (1..=19).contains(&n).then_some((v, e))
}

/// Past a fraction of zeros (`.`, `.0`, `.000`) at `e`, as pandas writes
/// integer columns that hold a missing value (`517.0`): the same integer.
#[inline(always)]
fn skip_zero_fraction(buf: &[u8], mut e: usize) -> usize {
    if buf.get(e) == Some(&b'.') {
        e += 1;
        while buf.get(e) == Some(&b'0') {
            e += 1;
        }
    }
    e
}

/// `text` without a trailing fraction of zeros (`517.0` is `517`).
#[inline(always)]
fn strip_zero_fraction(text: &[u8]) -> &[u8] {
    match text.iter().position(|&c| c == b'.') {
        Some(i) if text[i + 1..].iter().all(|&c| c == b'0') => &text[..i],
        _ => text,
    }
}

/// An optional `-` and 1 to 19 plain digits in range: (value, index after).
#[inline(always)]
fn int_at(buf: &[u8], p: usize) -> Option<(i64, usize)> {
    if buf.get(p) == Some(&b'-') {
        let (v, e) = uint_at(buf, p + 1)?;
        (v <= 1 << 63).then_some(((v as i64).wrapping_neg(), e))
    } else {
        let (v, e) = uint_at(buf, p)?;
        Some((i64::try_from(v).ok()?, e))
    }
}

/// `[-+]digits[.digits]` split up: the digits as one integer (exact when
/// `digits <= 19`), how many there are, and how many follow the point.
struct Decimal {
    neg: bool,
    mant: u64,
    digits: usize,
    frac: usize,
}

#[inline(always)]
fn decimal_at(buf: &[u8], p: usize) -> Option<(Decimal, usize)> {
    let (neg, q) = match buf.get(p) {
        Some(b'-') => (true, p + 1),
        Some(b'+') => (false, p + 1),
        _ => (false, p),
    };
    let (mut mant, mut digits, mut e) = scan_digits(buf, q, 0);
    let mut frac = 0;
    if buf.get(e) == Some(&b'.') {
        let (m, k, after) = scan_digits(buf, e + 1, mant);
        if digits + k <= 19 {
            mant = m;
        }
        digits += k;
        frac = k;
        e = after;
    }
    (digits > 0).then_some((
        Decimal {
            neg,
            mant,
            digits,
            frac,
        },
        e,
    ))
}

/// std's correctly rounded parser for a plain decimal (ASCII, so `from_utf8`
/// always succeeds); `None` for a value out of range (the general path
/// reports it).
#[inline]
fn std_float<F: std::str::FromStr + Finite>(text: &[u8]) -> Option<F> {
    let v: F = std::str::from_utf8(text).ok()?.parse().ok()?;
    v.finite().then_some(v)
}

trait Finite {
    fn finite(&self) -> bool;
}
impl Finite for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}
impl Finite for f32 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

/// True when the 8 bytes (little-endian) are all ASCII digits.
#[inline(always)]
fn is_8digits(v: u64) -> bool {
    let a = v.wrapping_add(0x4646_4646_4646_4646);
    let b = v.wrapping_sub(0x3030_3030_3030_3030);
    (a | b) & 0x8080_8080_8080_8080 == 0
}

/// The value of 8 ASCII digits (little-endian load), in a few multiplications.
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1_000_000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10_000 << 32)
    let v = v.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    (v1.wrapping_add(v2) >> 32) as u32 as u64
}

/// Accumulates the decimal digits of `s` onto `v`; `None` if a byte is not a
/// digit. The caller bounds the digit count so nothing overflows.
#[inline(always)]
fn accumulate(mut s: &[u8], mut v: u64) -> Option<u64> {
    while s.len() >= 8 {
        let w = u64::from_le_bytes(s[..8].try_into().expect("8 bytes"));
        if !is_8digits(w) {
            return None;
        }
        v = v.wrapping_mul(100_000_000).wrapping_add(eight_digits(w));
        s = &s[8..];
    }
    let mut ok = true;
    for &d in s {
        let x = d.wrapping_sub(b'0');
        ok &= x < 10;
        v = v.wrapping_mul(10).wrapping_add(x as u64);
    }
    ok.then_some(v)
}

/// Up to 19 plain digits.
#[inline(always)]
fn fast_uint(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    accumulate(s, 0)
}

/// An optional `-` and up to 18 plain digits.
#[inline(always)]
fn fast_int(s: &[u8]) -> Option<i64> {
    match s.first() {
        Some(b'-') if s.len() <= 19 => fast_uint(&s[1..]).map(|v| -(v as i64)),
        _ if s.len() <= 18 => fast_uint(s).map(|v| v as i64),
        _ => None,
    }
}

/// Splits `[-+]digits[.digits]` into (negative, mantissa, decimal exponent)
/// when the mantissa has at most 19 digits; `None` for anything else.
#[inline]
fn simple_decimal(s: &[u8]) -> Option<(bool, u64, i32)> {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &s[..0]),
    };
    let n = int.len() + frac.len();
    if n == 0 || n > 19 {
        return None;
    }
    let m = accumulate(frac, accumulate(int, 0)?)?;
    Some((neg, m, -(frac.len() as i32)))
}

const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const POW10_F32: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// Clinger's fast path: a mantissa below 2^53 and a power of ten up to 1e22
/// are exact doubles, so one division is correctly rounded. `None` otherwise.
#[inline]
pub(super) fn fast_f64(s: &[u8]) -> Option<f64> {
    let (neg, m, e) = simple_decimal(s)?;
    if m > 1 << 53 || e < -22 {
        return None;
    }
    let v = m as f64 / POW10_F64[(-e) as usize];
    Some(if neg { -v } else { v })
}

/// The same for f32: mantissa below 2^24, powers of ten up to 1e10.
#[inline]
pub(super) fn fast_f32(s: &[u8]) -> Option<f32> {
    let (neg, m, e) = simple_decimal(s)?;
    if m > 1 << 24 || e < -10 {
        return None;
    }
    let v = m as f32 / POW10_F32[(-e) as usize];
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::codec;

    #[test]
    fn fast_float_paths_match_std() {
        let mut x = 88172645463325252u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let digits = (next() % 20) as usize;
            let mant = next() % 10u64.pow(digits.min(19) as u32).max(1);
            let text = format!("{mant:0w$}", w = digits.max(1));
            let dot = (next() % (text.len() as u64 + 1)) as usize;
            let sign = ["", "-", "+"][(next() % 3) as usize];
            assert_eq!(
                fast_uint(text.as_bytes()),
                text.parse::<u64>().ok(),
                "{text}"
            );
            let s = format!("{sign}{}.{}", &text[..dot], &text[dot..]);
            if let Some(v) = fast_f64(s.as_bytes()) {
                assert_eq!(v.to_bits(), s.parse::<f64>().unwrap().to_bits(), "{s}");
            }
            if let Some(v) = fast_f32(s.as_bytes()) {
                assert_eq!(v.to_bits(), s.parse::<f32>().unwrap().to_bits(), "{s}");
            }
        }
        assert_eq!(fast_f64(b"-0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(fast_uint(b"12345678x"), None);
        assert_eq!(fast_uint(b"1234567/"), None);
        assert_eq!(fast_uint(b"9999999999999999999"), Some(9999999999999999999));
        assert!(fast_f64(b"1e5").is_none() && fast_f64(b".").is_none() && fast_f64(b"").is_none());
    }

    /// `FastCell::parse_at` straight from the input agrees with the general
    /// path on the field's text: same bytes when it takes a value, and it
    /// takes none that the general path rejects.
    #[test]
    fn bytes_eq_is_slice_equality() {
        let texts: [&[u8]; 9] = [
            b"",
            b"N",
            b"NA",
            b"NULL",
            b"NULLS",
            b"12345678",
            b"123456789",
            b"2013-01-01 05:00:00+00:00",
            b"2013-01-01 05:00:00+00:01",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(bytes_eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn parse_at_agrees_with_parse_text() {
        let c = codec("a:u8,b:i8,c:u16,d:i16,e:u32,f:i32,g:u64,h:i64,i:f32,j:f64");
        let mut x = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces = [
            "0", "1", "9", "12", "255", "256", "-", "+", ".", "e", "E5", "-0", "00", "127", "-128",
            "65535", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
            "18446744073709551615", "18446744073709551616", "340282350000000000000000000000000000000",
            "1797693134862315700000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "x", " ", "\"", "inf", "NaN", "0.0", ".00", "5.", "1234567", "12345678", "123456789", "9007199254740993",
        ];
        let mut checked = 0;
        for _ in 0..300_000 {
            let mut text = String::new();
            for _ in 0..(next() % 4) {
                if next() % 3 == 0 {
                    text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                } else {
                    for _ in 0..(next() % 21) {
                        text.push((b'0' + (next() % 10) as u8) as char);
                    }
                }
            }
            let delim = [",", "\n", "\r", ";", "x"][(next() % 5) as usize];
            let pad = "0123456789".repeat((next() % 2) as usize);
            let buf = format!("{text}{delim}{pad}");
            for (k, f) in c.fields.iter().enumerate() {
                let fast = FastCell::new(f);
                let mut a = vec![0u8; c.record_size];
                let mut b = vec![0u8; c.record_size];
                let Some(e) = fast.parse_at(buf.as_bytes(), 0, &mut a) else {
                    continue;
                };
                if !matches!(buf.as_bytes().get(e), Some(b',' | b'\n' | b'\r')) {
                    continue;
                }
                assert_eq!(&buf[..e], text, "field {k}: {buf:?}");
                f.parse_text(text.as_bytes(), &mut b)
                    .unwrap_or_else(|err| panic!("field {k}: {text:?}: fast path took it, {err}"));
                assert_eq!(a, b, "field {k}: {text:?}");
                if fast.parse(text.as_bytes(), &mut b) {
                    assert_eq!(a, b, "field {k}: {text:?}");
                }
                checked += 1;
            }
        }
        assert!(checked > 100_000, "{checked}");
    }
}
