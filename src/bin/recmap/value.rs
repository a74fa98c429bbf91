//! Field values in and out of record bytes: parsing CSV cells (bytes) and
//! JSON values into a record's little-endian layout, and formatting a
//! record's fields back as CSV cells or JSON.
//!
//! Text forms (the same in CSV and, where JSON has no native form, in JSON):
//! integers in decimal; floats as Rust prints them (shortest text that
//! round-trips; exponent form below 1e-5 and from 1e16 up; `NaN`, `inf`,
//! `-inf`); bools `true`/`false` (input also `1`/`0`); `str[N]` as UTF-8 text
//! of at most N bytes without NUL; `bytes[N]` as hex of at most N bytes
//! (zero-padded); arrays like `f32[3]` as `1;2;3` in CSV and `[1,2,3]` in JSON.

use recmap::{FieldType, Schema};
use serde_json::Value;
use std::io::Write;

/// How to read and write one field.
#[derive(Clone, Debug)]
pub struct FieldCodec {
    pub name: String,
    ty: FieldType,
    count: usize,
    offset: usize,
}

/// Codecs for every field of a schema, in offset order.
#[derive(Clone, Debug)]
pub struct Codec {
    pub fields: Vec<FieldCodec>,
    pub record_size: usize,
}

/// Why this command cannot read or write records of `schema` yet: the
/// format-version-2 additions (nullable fields, `timestamp[...]`, `date`,
/// `validity[N]`) have no CLI value forms so far.
pub fn unsupported(schema: &Schema) -> Option<String> {
    schema.fields.iter().find_map(|f| {
        if f.is_nullable() {
            Some(format!(
                "field {:?}: nullable fields ({}) are not supported by this command yet",
                f.name,
                f.type_spec()
            ))
        } else if f.ty.min_format_version() > 1 {
            Some(format!("field {:?}: {}", f.name, unsupported_type(f.ty)))
        } else {
            None
        }
    })
}

fn unsupported_type(ty: FieldType) -> String {
    format!("type {} is not supported by this command yet", ty.name())
}

impl Codec {
    pub fn new(schema: &Schema) -> Codec {
        let fields = schema
            .fields
            .iter()
            .map(|f| FieldCodec {
                name: f.name.clone(),
                ty: f.ty,
                count: f.count as usize,
                offset: f.offset as usize,
            })
            .collect();
        Codec {
            fields,
            record_size: schema.record_size as usize,
        }
    }

    /// The index of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The field names, comma-separated (for messages).
    pub fn names(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Writes the record as one JSON object (no newline) to `out`.
    pub fn write_json_record(&self, rec: &[u8], out: &mut Vec<u8>) {
        out.push(b'{');
        for (k, f) in self.fields.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_json_str(&f.name, out);
            out.push(b':');
            f.write_json(rec, out);
        }
        out.push(b'}');
    }
}

/// The hot path of CSV loading for one column: scalar numbers in their
/// plain forms are parsed here without building error values; anything else
/// (and every error) goes through [`FieldCodec::parse_text`].
#[derive(Clone, Copy, Debug)]
pub struct FastCell {
    kind: FastKind,
    offset: usize,
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
            _ => FastKind::Slow,
        };
        FastCell {
            kind,
            offset: f.offset,
        }
    }

    /// Parses `text` into `rec`; false means "use the general path".
    #[inline(always)]
    pub fn parse(&self, text: &[u8], rec: &mut [u8]) -> bool {
        let out = &mut rec[self.offset..];
        match self.kind {
            FastKind::U64 => fast_uint(text)
                .map(|v| out[..8].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::U32 => fast_uint(text)
                .and_then(|v| u32::try_from(v).ok())
                .map(|v| out[..4].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::U16 => fast_uint(text)
                .and_then(|v| u16::try_from(v).ok())
                .map(|v| out[..2].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::U8 => fast_uint(text)
                .and_then(|v| u8::try_from(v).ok())
                .map(|v| out[0] = v)
                .is_some(),
            FastKind::I64 => fast_int(text)
                .map(|v| out[..8].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::I32 => fast_int(text)
                .and_then(|v| i32::try_from(v).ok())
                .map(|v| out[..4].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::I16 => fast_int(text)
                .and_then(|v| i16::try_from(v).ok())
                .map(|v| out[..2].copy_from_slice(&v.to_le_bytes()))
                .is_some(),
            FastKind::I8 => fast_int(text)
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
            FastKind::Slow => false,
        }
    }
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
        let out = &mut rec[self.offset..];
        let end = match self.kind {
            FastKind::U64 => {
                let (v, e) = uint_at(buf, p)?;
                out[..8].copy_from_slice(&v.to_le_bytes());
                e
            }
            FastKind::U32 => {
                let (v, e) = uint_at(buf, p)?;
                out[..4].copy_from_slice(&u32::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::U16 => {
                let (v, e) = uint_at(buf, p)?;
                out[..2].copy_from_slice(&u16::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::U8 => {
                let (v, e) = uint_at(buf, p)?;
                out[0] = u8::try_from(v).ok()?;
                e
            }
            FastKind::I64 => {
                let (v, e) = int_at(buf, p)?;
                out[..8].copy_from_slice(&v.to_le_bytes());
                e
            }
            FastKind::I32 => {
                let (v, e) = int_at(buf, p)?;
                out[..4].copy_from_slice(&i32::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::I16 => {
                let (v, e) = int_at(buf, p)?;
                out[..2].copy_from_slice(&i16::try_from(v).ok()?.to_le_bytes());
                e
            }
            FastKind::I8 => {
                let (v, e) = int_at(buf, p)?;
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
            FastKind::Slow => return None,
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

/// Shows at most 40 characters of an offending value.
fn show(t: &[u8]) -> String {
    let s = String::from_utf8_lossy(t);
    if s.chars().count() > 40 {
        format!("{:?}…", s.chars().take(40).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

#[inline]
fn int_range(ty: FieldType) -> (i128, i128) {
    match ty {
        FieldType::U8 => (0, u8::MAX as i128),
        FieldType::U16 => (0, u16::MAX as i128),
        FieldType::U32 => (0, u32::MAX as i128),
        FieldType::U64 => (0, u64::MAX as i128),
        FieldType::I8 => (i8::MIN as i128, i8::MAX as i128),
        FieldType::I16 => (i16::MIN as i128, i16::MAX as i128),
        FieldType::I32 => (i32::MIN as i128, i32::MAX as i128),
        FieldType::I64 => (i64::MIN as i128, i64::MAX as i128),
        _ => unreachable!("not an integer type"),
    }
}

/// Parses a decimal integer (optional sign, surrounding ASCII spaces) for `ty`.
#[inline]
fn parse_int(text: &[u8], ty: FieldType) -> Result<i128, String> {
    let s = text.trim_ascii();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // Fast path: up to 19 digits cannot overflow a u64.
    let mut v: u64 = 0;
    let mut ok = !digits.is_empty() && digits.len() <= 19;
    if ok {
        for &d in digits {
            let x = d.wrapping_sub(b'0');
            ok &= x < 10;
            v = v.wrapping_mul(10).wrapping_add(x as u64);
        }
    }
    if !ok {
        return parse_int_slow(text, ty);
    }
    let (min, max) = int_range(ty);
    let v = if neg { -(v as i128) } else { v as i128 };
    if v < min || v > max {
        return Err(out_of_range(s, ty));
    }
    Ok(v)
}

fn out_of_range(s: &[u8], ty: FieldType) -> String {
    let (min, max) = int_range(ty);
    format!(
        "{} is out of range for {} ({min}..={max})",
        show(s),
        ty.name()
    )
}

#[cold]
fn parse_int_slow(text: &[u8], ty: FieldType) -> Result<i128, String> {
    let s = text.trim_ascii();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        if s.is_empty() {
            return Err(format!("empty value, expected an integer ({})", ty.name()));
        }
        return Err(format!("not an integer: {}", show(text)));
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(|| out_of_range(s, ty))?;
    }
    let v = if neg { -(v as i128) } else { v as i128 };
    let (min, max) = int_range(ty);
    if v < min || v > max {
        return Err(out_of_range(s, ty));
    }
    Ok(v)
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
fn fast_f64(s: &[u8]) -> Option<f64> {
    let (neg, m, e) = simple_decimal(s)?;
    if m > 1 << 53 || e < -22 {
        return None;
    }
    let v = m as f64 / POW10_F64[(-e) as usize];
    Some(if neg { -v } else { v })
}

/// The same for f32: mantissa below 2^24, powers of ten up to 1e10.
#[inline]
fn fast_f32(s: &[u8]) -> Option<f32> {
    let (neg, m, e) = simple_decimal(s)?;
    if m > 1 << 24 || e < -10 {
        return None;
    }
    let v = m as f32 / POW10_F32[(-e) as usize];
    Some(if neg { -v } else { v })
}

fn is_inf_text(s: &str) -> bool {
    s.to_ascii_lowercase().contains("inf")
}

#[inline]
fn parse_f64(text: &[u8]) -> Result<f64, String> {
    let t = text.trim_ascii();
    if let Some(v) = fast_f64(t) {
        return Ok(v);
    }
    let s = std::str::from_utf8(t).map_err(|_| format!("not a number: {}", show(text)))?;
    if s.is_empty() {
        return Err("empty value, expected a number (f64)".into());
    }
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number: {}", show(text)))?;
    if v.is_infinite() && !is_inf_text(s) {
        return Err(format!("{} is out of range for f64", show(t)));
    }
    Ok(v)
}

#[inline]
fn parse_f32(text: &[u8]) -> Result<f32, String> {
    let t = text.trim_ascii();
    if let Some(v) = fast_f32(t) {
        return Ok(v);
    }
    let s = std::str::from_utf8(t).map_err(|_| format!("not a number: {}", show(text)))?;
    if s.is_empty() {
        return Err("empty value, expected a number (f32)".into());
    }
    let v: f32 = s
        .parse()
        .map_err(|_| format!("not a number: {}", show(text)))?;
    if v.is_infinite() && !is_inf_text(s) {
        return Err(format!("{} is out of range for f32", show(t)));
    }
    Ok(v)
}

fn parse_bool(text: &[u8]) -> Result<u8, String> {
    let t = text.trim_ascii();
    if t == b"1" || t.eq_ignore_ascii_case(b"true") {
        Ok(1)
    } else if t == b"0" || t.eq_ignore_ascii_case(b"false") {
        Ok(0)
    } else {
        Err(format!(
            "not a bool (expected true, false, 1 or 0): {}",
            show(text)
        ))
    }
}

/// Parses one element of type `ty` from text into `out` (its `elem_size` bytes).
#[inline]
fn parse_scalar(ty: FieldType, text: &[u8], out: &mut [u8]) -> Result<(), String> {
    match ty {
        FieldType::U8 => out[0] = parse_int(text, ty)? as u8,
        FieldType::I8 => out[0] = parse_int(text, ty)? as i8 as u8,
        FieldType::U16 => out.copy_from_slice(&(parse_int(text, ty)? as u16).to_le_bytes()),
        FieldType::I16 => out.copy_from_slice(&(parse_int(text, ty)? as i16).to_le_bytes()),
        FieldType::U32 => out.copy_from_slice(&(parse_int(text, ty)? as u32).to_le_bytes()),
        FieldType::I32 => out.copy_from_slice(&(parse_int(text, ty)? as i32).to_le_bytes()),
        FieldType::U64 => out.copy_from_slice(&(parse_int(text, ty)? as u64).to_le_bytes()),
        FieldType::I64 => out.copy_from_slice(&(parse_int(text, ty)? as i64).to_le_bytes()),
        FieldType::F32 => out.copy_from_slice(&parse_f32(text)?.to_le_bytes()),
        FieldType::F64 => out.copy_from_slice(&parse_f64(text)?.to_le_bytes()),
        FieldType::Bool => out[0] = parse_bool(text)?,
        FieldType::Timestamp(_) | FieldType::Date | FieldType::Validity => {
            return Err(unsupported_type(ty))
        }
        FieldType::Str | FieldType::Bytes => unreachable!("handled as a whole field"),
    }
    Ok(())
}

fn put_str(text: &[u8], out: &mut [u8]) -> Result<(), String> {
    if text.len() > out.len() {
        return Err(format!(
            "string of {} bytes is longer than str[{}]: {}",
            text.len(),
            out.len(),
            show(text)
        ));
    }
    if std::str::from_utf8(text).is_err() {
        return Err(format!("not valid UTF-8: {}", show(text)));
    }
    if text.contains(&0) {
        return Err("string contains a NUL byte".into());
    }
    out[..text.len()].copy_from_slice(text);
    out[text.len()..].fill(0);
    Ok(())
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn put_hex(text: &[u8], out: &mut [u8]) -> Result<(), String> {
    let t = text.trim_ascii();
    if !t.len().is_multiple_of(2) {
        return Err(format!("hex has an odd number of digits: {}", show(text)));
    }
    if t.len() / 2 > out.len() {
        return Err(format!(
            "{} bytes of hex is longer than bytes[{}]",
            t.len() / 2,
            out.len()
        ));
    }
    for (k, pair) in t.chunks_exact(2).enumerate() {
        match (hex_val(pair[0]), hex_val(pair[1])) {
            (Some(h), Some(l)) => out[k] = h << 4 | l,
            _ => return Err(format!("not hex: {}", show(text))),
        }
    }
    out[t.len() / 2..].fill(0);
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn write_json_str(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn fmt_f64(v: f64, out: &mut Vec<u8>) {
    let a = v.abs();
    let r = if v.is_finite() && (a == 0.0 || (1e-5..1e16).contains(&a)) {
        write!(out, "{v}")
    } else {
        write!(out, "{v:e}")
    };
    r.expect("writing to a Vec cannot fail");
}

fn fmt_f32(v: f32, out: &mut Vec<u8>) {
    let a = v.abs();
    let r = if v.is_finite() && (a == 0.0 || (1e-5..1e16).contains(&a)) {
        write!(out, "{v}")
    } else {
        write!(out, "{v:e}")
    };
    r.expect("writing to a Vec cannot fail");
}

/// Writes a float; in JSON, non-finite values become strings and integral
/// values get a `.0` so that readers keep them floats (`-0.0` keeps its sign).
fn json_float(out: &mut Vec<u8>, json: bool, finite: bool, write: impl FnOnce(&mut Vec<u8>)) {
    if !json {
        return write(out);
    }
    if !finite {
        out.push(b'"');
        write(out);
        out.push(b'"');
        return;
    }
    let start = out.len();
    write(out);
    if !out[start..].iter().any(|&c| c == b'.' || c == b'e') {
        out.extend_from_slice(b".0");
    }
}

fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    b[..N].try_into().expect("slice of N bytes")
}

/// Appends one element's text; floats that are not finite get `quote` around them (JSON).
fn fmt_scalar(ty: FieldType, b: &[u8], out: &mut Vec<u8>, json: bool) {
    let r = match ty {
        FieldType::U8 => write!(out, "{}", b[0]),
        FieldType::I8 => write!(out, "{}", b[0] as i8),
        FieldType::U16 => write!(out, "{}", u16::from_le_bytes(le(b))),
        FieldType::I16 => write!(out, "{}", i16::from_le_bytes(le(b))),
        FieldType::U32 => write!(out, "{}", u32::from_le_bytes(le(b))),
        FieldType::I32 => write!(out, "{}", i32::from_le_bytes(le(b))),
        FieldType::U64 => write!(out, "{}", u64::from_le_bytes(le(b))),
        FieldType::I64 => write!(out, "{}", i64::from_le_bytes(le(b))),
        FieldType::F32 => {
            let v = f32::from_le_bytes(le(b));
            json_float(out, json, v.is_finite(), |out| fmt_f32(v, out));
            Ok(())
        }
        FieldType::F64 => {
            let v = f64::from_le_bytes(le(b));
            json_float(out, json, v.is_finite(), |out| fmt_f64(v, out));
            Ok(())
        }
        // Any non-zero byte reads as true (as the typed API's `Bool`).
        FieldType::Bool => write!(out, "{}", b[0] != 0),
        // Format version 2 types: the stored integers until the CLI has
        // their text forms (commands refuse such schemas, see `unsupported`).
        FieldType::Timestamp(_) => write!(out, "{}", i64::from_le_bytes(le(b))),
        FieldType::Date => write!(out, "{}", i32::from_le_bytes(le(b))),
        FieldType::Validity => write!(out, "{}", b[0]),
        FieldType::Str | FieldType::Bytes => unreachable!("handled as a whole field"),
    };
    r.expect("writing to a Vec cannot fail");
}

fn hex_into(b: &[u8], out: &mut Vec<u8>) {
    const D: &[u8; 16] = b"0123456789abcdef";
    for &x in b {
        out.push(D[(x >> 4) as usize]);
        out.push(D[(x & 15) as usize]);
    }
}

/// The text of a `str[N]` field: up to the first NUL.
fn str_bytes(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

impl FieldCodec {
    fn size(&self) -> usize {
        self.ty.elem_size() as usize * self.count
    }

    fn is_array(&self) -> bool {
        self.count != 1 && !self.ty.needs_len()
    }

    /// Parses a CSV cell into this field's bytes of `rec`.
    #[inline]
    pub fn parse_text(&self, text: &[u8], rec: &mut [u8]) -> Result<(), String> {
        let out = &mut rec[self.offset..self.offset + self.size()];
        match self.ty {
            FieldType::Str => put_str(text, out),
            FieldType::Bytes => put_hex(text, out),
            ty if self.count == 1 => parse_scalar(ty, text, out),
            ty => {
                let es = ty.elem_size() as usize;
                let n = text.split(|&c| c == b';').count();
                if n != self.count {
                    return Err(format!(
                        "expected {} elements separated by ';', got {n}: {}",
                        self.count,
                        show(text)
                    ));
                }
                for (k, part) in text.split(|&c| c == b';').enumerate() {
                    parse_scalar(ty, part, &mut out[k * es..(k + 1) * es])
                        .map_err(|e| format!("element {k}: {e}"))?;
                }
                Ok(())
            }
        }
    }

    fn parse_json_scalar(&self, v: &Value, out: &mut [u8]) -> Result<(), String> {
        let ty = self.ty;
        if ty.min_format_version() > 1 {
            return Err(unsupported_type(ty));
        }
        match (ty, v) {
            (FieldType::Bool, Value::Bool(b)) => {
                out[0] = *b as u8;
                Ok(())
            }
            (FieldType::Bool, Value::Number(n)) => {
                parse_bool(n.as_str().as_bytes()).map(|b| out[0] = b)
            }
            (FieldType::F32 | FieldType::F64, Value::String(s)) => {
                let l = s.to_ascii_lowercase();
                if matches!(
                    l.as_str(),
                    "nan" | "inf" | "+inf" | "-inf" | "infinity" | "+infinity" | "-infinity"
                ) {
                    parse_scalar(ty, s.as_bytes(), out)
                } else {
                    Err(format!(
                        "expected a number ({}), got the string {s:?}",
                        ty.name()
                    ))
                }
            }
            (_, Value::Number(n)) if ty != FieldType::Bool => {
                parse_scalar(ty, n.as_str().as_bytes(), out)
            }
            (FieldType::Bool, _) => Err(format!(
                "not a bool (expected true, false, 1 or 0): got {}",
                json_kind(v)
            )),
            _ => Err(format!(
                "expected a number ({}), got {}",
                ty.name(),
                json_kind(v)
            )),
        }
    }

    /// Parses a JSON value into this field's bytes of `rec`.
    pub fn parse_json(&self, v: &Value, rec: &mut [u8]) -> Result<(), String> {
        let out = &mut rec[self.offset..self.offset + self.size()];
        match (self.ty, v) {
            (FieldType::Str, Value::String(s)) => put_str(s.as_bytes(), out),
            (FieldType::Bytes, Value::String(s)) => put_hex(s.as_bytes(), out),
            (FieldType::Str, _) => Err(format!("expected a string, got {}", json_kind(v))),
            (FieldType::Bytes, _) => Err(format!("expected a hex string, got {}", json_kind(v))),
            _ if !self.is_array() => self.parse_json_scalar(v, out),
            (ty, Value::Array(items)) => {
                if items.len() != self.count {
                    return Err(format!(
                        "expected an array of {} elements, got {}",
                        self.count,
                        items.len()
                    ));
                }
                let es = ty.elem_size() as usize;
                for (k, item) in items.iter().enumerate() {
                    self.parse_json_scalar(item, &mut out[k * es..(k + 1) * es])
                        .map_err(|e| format!("element {k}: {e}"))?;
                }
                Ok(())
            }
            _ => Err(format!(
                "expected an array of {} elements, got {}",
                self.count,
                json_kind(v)
            )),
        }
    }

    /// Appends this field of `rec` as a CSV cell's text (unquoted).
    pub fn write_text(&self, rec: &[u8], out: &mut Vec<u8>) {
        let b = &rec[self.offset..self.offset + self.size()];
        match self.ty {
            FieldType::Str => out.extend_from_slice(str_bytes(b)),
            FieldType::Bytes => hex_into(b, out),
            ty => {
                let es = ty.elem_size() as usize;
                for (k, e) in b.chunks_exact(es).enumerate() {
                    if k > 0 {
                        out.push(b';');
                    }
                    fmt_scalar(ty, e, out, false);
                }
            }
        }
    }

    /// Appends this field of `rec` as a JSON value.
    pub fn write_json(&self, rec: &[u8], out: &mut Vec<u8>) {
        let b = &rec[self.offset..self.offset + self.size()];
        match self.ty {
            FieldType::Str => write_json_str(&String::from_utf8_lossy(str_bytes(b)), out),
            FieldType::Bytes => {
                out.push(b'"');
                hex_into(b, out);
                out.push(b'"');
            }
            ty if self.is_array() => {
                let es = ty.elem_size() as usize;
                out.push(b'[');
                for (k, e) in b.chunks_exact(es).enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    fmt_scalar(ty, e, out, true);
                }
                out.push(b']');
            }
            ty => fmt_scalar(ty, b, out, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(spec: &str) -> Codec {
        Codec::new(&Schema::parse(spec).unwrap())
    }

    #[test]
    fn floats_round_trip_through_text() {
        let c = codec("a:f64,b:f32");
        for v in [
            0.1,
            1e-300,
            -0.0,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            123456.789,
            f64::INFINITY,
        ] {
            let mut rec = vec![0u8; c.record_size];
            c.fields[0]
                .parse_text(format!("{v}").as_bytes(), &mut rec)
                .unwrap();
            let mut t = Vec::new();
            c.fields[0].write_text(&rec, &mut t);
            let mut rec2 = vec![0u8; c.record_size];
            c.fields[0].parse_text(&t, &mut rec2).unwrap();
            assert_eq!(rec, rec2, "{v} -> {}", String::from_utf8_lossy(&t));
            assert_eq!(f64::from_le_bytes(le(&rec2)).to_bits(), v.to_bits());
        }
        for v in [0.1f32, 1e-40, -0.0, f32::MAX, 3.4e38, 16777217.0] {
            let mut rec = vec![0u8; c.record_size];
            c.fields[1]
                .parse_text(format!("{v}").as_bytes(), &mut rec)
                .unwrap();
            let mut t = Vec::new();
            c.fields[1].write_text(&rec, &mut t);
            assert_eq!(parse_f32(&t).unwrap().to_bits(), v.to_bits());
        }
    }

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
            "x", " ", "\"", "inf", "NaN", "1234567", "12345678", "123456789", "9007199254740993",
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

    #[test]
    fn integer_errors() {
        let c = codec("a:u8,b:i64,c:u64");
        let mut rec = vec![0u8; c.record_size];
        assert!(c.fields[0]
            .parse_text(b"256", &mut rec)
            .unwrap_err()
            .contains("out of range for u8"));
        assert!(c.fields[0]
            .parse_text(b"-1", &mut rec)
            .unwrap_err()
            .contains("out of range"));
        assert!(c.fields[0]
            .parse_text(b"1.5", &mut rec)
            .unwrap_err()
            .contains("not an integer"));
        c.fields[1]
            .parse_text(b"-9223372036854775808", &mut rec)
            .unwrap();
        assert!(c.fields[1]
            .parse_text(b"9223372036854775808", &mut rec)
            .is_err());
        c.fields[2]
            .parse_text(b"18446744073709551615", &mut rec)
            .unwrap();
        assert!(c.fields[2]
            .parse_text(b"18446744073709551616", &mut rec)
            .unwrap_err()
            .contains("out of range"));
        assert!(c.fields[2]
            .parse_text(b"", &mut rec)
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn strings_bytes_bools_arrays() {
        let c = codec("s:str[4],h:bytes[3],b:bool,v:f32[2]");
        let mut rec = vec![0xffu8; c.record_size];
        c.fields[0].parse_text(b"ab", &mut rec).unwrap();
        assert!(c.fields[0]
            .parse_text(b"abcde", &mut rec)
            .unwrap_err()
            .contains("longer than str[4]"));
        c.fields[1].parse_text(b"0aff", &mut rec).unwrap();
        assert!(c.fields[1].parse_text(b"0g", &mut rec).is_err());
        assert!(c.fields[2]
            .parse_text(b"yes", &mut rec)
            .unwrap_err()
            .contains("not a bool"));
        c.fields[2].parse_text(b"1", &mut rec).unwrap();
        c.fields[3].parse_text(b"0.5;-2", &mut rec).unwrap();
        let mut out = Vec::new();
        c.write_json_record(&rec, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"s":"ab","h":"0aff00","b":true,"v":[0.5,-2.0]}"#
        );
    }
}
