//! One column's evidence during schema inference: which types every value
//! seen so far still fits, and the ranges that pick the narrowest one.
//!
//! Invariants: a kind bit is cleared as soon as one value does not fit it
//! and never set again, so the type chosen at the end fits every value
//! seen; the tests mirror what the load accepts (numbers, bools, dates and
//! timestamps trimmed of ASCII spaces, strings taken as they are), so a
//! value that made the choice also loads. Per value the work is a few
//! byte compares for numbers and strings; timestamps and dates go through
//! `jiff` (via `value::temporal`) only when a cell differs from the
//! previous one of its column.

use crate::value::temporal::{fits, parse_civil_date, parse_instant, unit_needed};
use jiff::civil::{Date, Time};
use jiff::tz::Offset;
use jiff::Timestamp;
use recmap::{FieldType, TimeUnit};

/// The value fits an integer type (range decides which).
pub const INT: u8 = 1;
/// The value is a number (`f64`, or `f32` by the digits rule).
pub const FLOAT: u8 = 2;
/// `true` / `false` (any case; not 0/1, which are integers).
pub const BOOL: u8 = 4;
/// `YYYY-MM-DD`.
pub const DATE: u8 = 8;
/// An RFC 3339 / ISO 8601 date-time (a bare date too).
pub const TS: u8 = 16;
const TEMPORAL: u8 = DATE | TS;

/// What a number's text is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An integral value of at most 18 digits (`517`, `517.0`).
    Int(i64),
    /// Any other integral value (`1e3`, twenty digits), and whether f32
    /// holds its text exactly (see [`f32_exact`]).
    Wide(i128, bool),
    /// Any other number the load's float parser takes (`2.5`, `inf`).
    Float(bool),
    /// Not a number.
    No,
}

/// The f32 rule: a decimal with at most 6 significant digits whose leading
/// digit is at 10^-37 ..= 10^37 (or zero) is the only such decimal in its
/// f32's rounding interval (f32 keeps 6 decimal digits, FLT_DIG, over its
/// normal range), so f32's shortest text, which export writes, is that
/// same number: storing it in f32 loses nothing of what was written.
fn f32_exact(sig: usize, lead_exp: i64) -> bool {
    sig <= 6 && (-37..=37).contains(&lead_exp)
}

const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// True if the f32 rule holds for the integer `m` of a short decimal
/// (whose leading digit is within 10^±18): at most 6 significant digits.
#[inline]
fn short_f32_ok(mut m: u64) -> bool {
    if m >= 1_000_000 {
        while m.is_multiple_of(10) {
            m /= 10;
        }
    }
    m < 1_000_000
}

/// Classifies a (trimmed) number as the load's parsers would read it:
/// the integer parser takes exact integral decimals, the float parser any
/// decimal (short of overflowing f64) and `inf`/`infinity`/`nan`.
#[inline(always)]
pub fn scan_num(t: &[u8]) -> Num {
    let neg = t.first() == Some(&b'-');
    let b = match t.first() {
        Some(b'-' | b'+') => &t[1..],
        _ => t,
    };
    // The common cases, `123` and `12.5` with at most 18 characters, here;
    // the rest (exponents, long digit strings, `inf`) in the slow path.
    let n = b.len();
    if n == 0 || n > 18 {
        return scan_num_slow(t);
    }
    let mut i = 0;
    let mut v: u64 = 0;
    while i < n {
        let d = b[i].wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        v = v * 10 + d as u64;
        i += 1;
    }
    let sign = |v: u64| if neg { -(v as i64) } else { v as i64 };
    if i == n {
        return Num::Int(sign(v));
    }
    if b[i] != b'.' {
        return scan_num_slow(t);
    }
    let int_len = i;
    i += 1;
    let mut f: u64 = 0;
    let frac_start = i;
    while i < n {
        let d = b[i].wrapping_sub(b'0');
        if d >= 10 {
            return scan_num_slow(t);
        }
        f = f * 10 + d as u64;
        i += 1;
    }
    let frac_len = n - frac_start;
    if int_len + frac_len == 0 {
        return Num::No;
    }
    if f == 0 {
        return Num::Int(sign(v));
    }
    // At most 17 digits in all: the digits as one integer fit a u64.
    Num::Float(short_f32_ok(v * POW10[frac_len] + f))
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The value of 8 decimal digit values, one a byte, the first (most
/// significant) in the lowest byte.
#[inline(always)]
fn swar8(d: u64) -> u64 {
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    (d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF
}

/// [`scan_num`] for a cell of `n` (1 ..= 8) bytes given as the word `w`
/// (byte `i` of the cell in bits `8i..8i+8`, zero above `n`): the same
/// answer for `123`, `-12.5`, `517.0` and the like, all bytes at once;
/// `None` for any other text (the caller asks `scan_num`).
#[inline(always)]
pub fn swar_num(w: u64, n: usize) -> Option<Num> {
    let (neg, w, n) = match w as u8 {
        b'-' => (true, w >> 8, n - 1),
        b'+' => (false, w >> 8, n - 1),
        _ => (false, w, n),
    };
    if n == 0 {
        return None;
    }
    let lanes = if n == 8 { !0 } else { (1u64 << (8 * n)) - 1 };
    let x = w ^ (0x30 * ONES);
    // A byte's high bit: not a digit (a carry can flag a digit too, which
    // only sends the cell to the slow path).
    let bad = (x.wrapping_add(0x76 * ONES) | x) & (0x80 * ONES) & lanes;
    let d = x & lanes;
    let sign = |v: u64| if neg { -(v as i64) } else { v as i64 };
    if bad == 0 {
        return Some(Num::Int(sign(swar8(d << (8 * (8 - n))))));
    }
    // Digits around one '.'.
    let p = (bad.trailing_zeros() / 8) as usize;
    if bad != 0x80 << (8 * p) || (w >> (8 * p)) as u8 != b'.' || n == 1 {
        return None;
    }
    let int = if p == 0 {
        0
    } else {
        swar8((d & ((1u64 << (8 * p)) - 1)) << (8 * (8 - p)))
    };
    let frac = d.checked_shr(8 * (p as u32 + 1)).unwrap_or(0);
    if frac == 0 {
        return Some(Num::Int(sign(int)));
    }
    // 7 digits (n == 8) are more than 6 significant ones unless the first
    // or the last is a zero.
    let first = if p == 0 { 1 } else { 0 };
    let seven = n == 8 && (d >> (8 * first)) as u8 != 0 && (d >> 56) as u8 != 0;
    Some(Num::Float(!seven))
}

#[cold]
fn scan_num_slow(t: &[u8]) -> Num {
    let (neg, b) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mant, exp) = match b.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let (int_part, frac) = match mant.iter().position(|&c| c == b'.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, &mant[mant.len()..]),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if (int_part.is_empty() && frac.is_empty()) || !digits(int_part) || !digits(frac) {
        let l = b.to_ascii_lowercase();
        if exp.is_none() && matches!(&l[..], b"inf" | b"infinity" | b"nan") {
            return Num::Float(true);
        }
        return Num::No;
    }
    let e: i64 = match exp {
        None => 0,
        Some(e) => {
            let (eneg, ed) = match e.first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if ed.is_empty() || !digits(ed) {
                return Num::No;
            }
            // Saturate: past 10^6 the value is 0 or overflows either way.
            let v = ed
                .iter()
                .fold(0i64, |v, &c| (v * 10 + (c - b'0') as i64).min(1_000_000));
            if eneg {
                -v
            } else {
                v
            }
        }
    };
    // Digit k of int_part ++ frac weighs 10^(a - 1 - k + e).
    let a = int_part.len() as i64;
    let all = || int_part.iter().chain(frac);
    let Some(first) = all().position(|&c| c != b'0') else {
        return Num::Int(0);
    };
    let last = all().count() - 1 - all().rev().position(|&c| c != b'0').unwrap();
    let lead_exp = a - 1 - first as i64 + e;
    let last_exp = a - 1 - last as i64 + e;
    let f32_ok = f32_exact(last - first + 1, lead_exp);
    if lead_exp >= 308 {
        // Near or past f64's largest: the load refuses what overflows.
        let s = std::str::from_utf8(t).expect("ASCII");
        if !s.parse::<f64>().is_ok_and(f64::is_finite) {
            return Num::No;
        }
    }
    if last_exp >= 0 && lead_exp < 38 {
        let mut v: i128 = 0;
        for &c in all().skip(first).take(last - first + 1) {
            v = v * 10 + (c - b'0') as i128;
        }
        for _ in 0..last_exp {
            v *= 10;
        }
        return Num::Wide(if neg { -v } else { v }, f32_ok);
    }
    Num::Float(f32_ok)
}

/// The evidence for one column.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// Kinds every value seen so far fits ([`INT`] | [`FLOAT`] | …).
    pub kinds: u8,
    /// Whether every value can also be a string (CSV: valid UTF-8 without
    /// NUL; JSON: a string), and if not, the first value that cannot.
    pub str_bad: Option<(usize, u64, String)>,
    /// The input being read (an index into the input names).
    pub input: usize,
    pub values: u64,
    pub nulls: u64,
    /// Rows (JSON objects) in which the column appeared, null or not, and
    /// (set at the end) the rows in which it did not: missing too.
    pub seen: u64,
    pub absent: u64,
    /// Longest value in bytes, as stored by `str[N]`.
    pub max_len: usize,
    /// The range of the [`Num::Int`] values, and of the [`Num::Wide`] ones.
    pub min: i64,
    pub max: i64,
    pub wide_min: i128,
    pub wide_max: i128,
    /// Every number so far passes the f32 rule.
    pub f32_ok: bool,
    /// The finest unit a timestamp so far needs, and the range.
    pub unit: TimeUnit,
    pub ts_range: Option<(Timestamp, Timestamp)>,
    pub date_range: Option<(Date, Date)>,
    /// The previous cell, while the column may be temporal (a repeat costs
    /// a compare instead of a parse).
    last: Vec<u8>,
    /// The previous short cell as a word, and its length (`usize::MAX`
    /// before the first).
    last_key: u64,
    last_key_len: usize,
    /// First line where a value of each JSON kind appeared (number, string,
    /// bool), for the message when they cannot share a type.
    pub json_kinds: [Option<(usize, u64)>; 3],
}

impl Column {
    pub fn new(name: String) -> Column {
        Column {
            name,
            kinds: INT | FLOAT | BOOL | DATE | TS,
            str_bad: None,
            input: 0,
            values: 0,
            nulls: 0,
            seen: 0,
            absent: 0,
            max_len: 0,
            min: i64::MAX,
            max: i64::MIN,
            wide_min: i128::MAX,
            wide_max: i128::MIN,
            f32_ok: true,
            unit: TimeUnit::Seconds,
            ts_range: None,
            date_range: None,
            last: Vec::new(),
            last_key: 0,
            last_key_len: usize::MAX,
            json_kinds: [None; 3],
        }
    }

    #[inline(always)]
    fn number(&mut self, n: Num) -> bool {
        match n {
            Num::Int(v) => {
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                self.kinds &= INT | FLOAT;
                true
            }
            Num::Wide(v, f) => {
                self.wide_min = self.wide_min.min(v);
                self.wide_max = self.wide_max.max(v);
                self.f32_ok &= f;
                self.kinds &= INT | FLOAT;
                true
            }
            Num::Float(f) => {
                self.f32_ok &= f;
                self.kinds &= FLOAT;
                true
            }
            Num::No => {
                self.kinds &= !(INT | FLOAT);
                false
            }
        }
    }

    /// A CSV cell that is not a null token; `key`, for a cell of at most
    /// 8 bytes, its bytes as a little-endian word.
    #[inline(always)]
    pub fn text(&mut self, cell: &[u8], line: u64, key: Option<u64>) {
        self.values += 1;
        self.max_len = self.max_len.max(cell.len());
        if self.kinds == 0 {
            // A string column: only the string rules are left to check.
            if self.str_bad.is_none() && !cell.iter().all(|&c| c.wrapping_sub(1) < 0x7f) {
                self.check_str(cell, line);
            }
            return;
        }
        if let Some(k) = key {
            // The same value as the previous one changes nothing.
            if k == self.last_key && cell.len() == self.last_key_len {
                return;
            }
            self.last_key = k;
            self.last_key_len = cell.len();
            if self.kinds & (INT | FLOAT) != 0 {
                if let Some(n) = swar_num(k, cell.len()) {
                    self.number(n);
                    return;
                }
            }
        }
        if self.kinds & (INT | FLOAT) != 0 && self.number(scan_num(cell.trim_ascii())) {
            return;
        }
        self.text_other(cell, line);
    }

    /// `text` for a cell that is not a number: bool, temporal or string.
    #[inline(never)]
    fn text_other(&mut self, cell: &[u8], line: u64) {
        let k = self.kinds;
        if k & TEMPORAL != 0 && cell.len() >= 10 {
            if cell == &self.last[..] {
                return;
            }
            self.last.clear();
            self.last.extend_from_slice(cell);
        }
        let t = cell.trim_ascii();
        if k & BOOL != 0 {
            if t.eq_ignore_ascii_case(b"true") || t.eq_ignore_ascii_case(b"false") {
                self.kinds &= BOOL;
                return;
            }
            self.kinds &= !BOOL;
        }
        if k & TEMPORAL != 0 {
            if let Ok(s) = std::str::from_utf8(t) {
                if self.temporal(s) {
                    return;
                }
            }
        }
        self.kinds = 0;
        if self.str_bad.is_none() {
            self.check_str(cell, line);
        }
    }

    /// Notes the first value that cannot be a `str[N]` value.
    #[cold]
    fn check_str(&mut self, cell: &[u8], line: u64) {
        if std::str::from_utf8(cell).is_err() {
            self.str_bad = Some((self.input, line, "a value is not valid UTF-8".into()));
        } else if cell.contains(&0) {
            self.str_bad = Some((self.input, line, "a value contains a NUL byte".into()));
        }
    }

    /// Clears the kinds `s` does not fit; true if it fits one.
    fn temporal(&mut self, s: &str) -> bool {
        if self.kinds & DATE != 0 {
            if let Some(d) = parse_civil_date(s) {
                let (lo, hi) = self.date_range.unwrap_or((d, d));
                self.date_range = Some((lo.min(d), hi.max(d)));
                self.kinds &= TEMPORAL;
                return true;
            }
            self.kinds &= !DATE;
        }
        if self.kinds & TS != 0 {
            if let Some(ts) = parse_instant(s) {
                self.unit = finer(self.unit, unit_needed(ts));
                let (lo, hi) = self.ts_range.unwrap_or((ts, ts));
                self.ts_range = Some((lo.min(ts), hi.max(ts)));
                self.kinds &= TS;
                return true;
            }
            self.kinds &= !TS;
        }
        false
    }

    /// A JSON value (not `null`); `Err` for arrays and objects.
    pub fn json(&mut self, v: &serde_json::Value, line: u64) -> Result<(), String> {
        use serde_json::Value;
        self.values += 1;
        match v {
            Value::Number(n) => {
                self.json_kinds[0].get_or_insert((self.input, line));
                self.number(scan_num(n.as_str().as_bytes()));
                self.kinds &= INT | FLOAT;
                self.not_str(line, "a number");
            }
            Value::String(s) => {
                self.json_kinds[1].get_or_insert((self.input, line));
                self.max_len = self.max_len.max(s.len());
                self.kinds &= TEMPORAL;
                if self.kinds != 0 && !self.temporal(s.trim_ascii()) {
                    self.kinds = 0;
                }
                if s.contains('\0') && self.str_bad.is_none() {
                    self.str_bad = Some((self.input, line, "a value contains a NUL byte".into()));
                }
            }
            Value::Bool(_) => {
                self.json_kinds[2].get_or_insert((self.input, line));
                self.kinds &= BOOL;
                self.not_str(line, "a bool");
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(
                    "arrays and objects are not inferred (give --schema; f32[3] takes [1,2,3])"
                        .into(),
                );
            }
            Value::Null => unreachable!("nulls are counted by the caller"),
        }
        Ok(())
    }

    fn not_str(&mut self, line: u64, what: &str) {
        if self.str_bad.is_none() {
            self.str_bad = Some((
                self.input,
                line,
                format!("{what} cannot go into a string field"),
            ));
        }
    }

    /// The midnight of the dates and the timestamps together (a column of
    /// dates and date-times is a timestamp column).
    fn instants(&self) -> Option<(Timestamp, Timestamp)> {
        let midnight = |d: Date| {
            Offset::UTC
                .to_timestamp(d.to_datetime(Time::midnight()))
                .expect("every civil date is an instant in UTC")
        };
        let dates = self.date_range.map(|(a, b)| (midnight(a), midnight(b)));
        match (self.ts_range, dates) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, y) => x.or(y),
        }
    }

    /// The type the evidence picks: (type, count); `Err` with the reason
    /// when no type holds every value.
    /// `names` are the input names, for the message.
    pub fn choose(&self, names: &[String]) -> Result<(FieldType, u32), String> {
        let k = self.kinds;
        if self.values == 0 {
            return Ok((FieldType::Str, 1));
        }
        let (lo, hi) = self.int_range();
        if k & INT != 0 {
            if let Some(t) = int_type(lo, hi) {
                return Ok((t, 1));
            }
        }
        // Integers of up to 6 digits pass the f32 rule (longer ones may
        // too, but f64 is the safe side).
        let ints_f32 = self.min > -1_000_000 && self.max < 1_000_000 || self.min > self.max;
        if k & (INT | FLOAT) != 0 {
            let t = if self.f32_ok && ints_f32 {
                FieldType::F32
            } else {
                FieldType::F64
            };
            return Ok((t, 1));
        }
        if k & BOOL != 0 {
            return Ok((FieldType::Bool, 1));
        }
        if k & DATE != 0 {
            return Ok((FieldType::Date, 1));
        }
        if k & TS != 0 {
            if let Some((lo, hi)) = self.instants() {
                if fits(lo, self.unit) && fits(hi, self.unit) {
                    return Ok((FieldType::Timestamp(self.unit), 1));
                }
            }
        }
        if let Some((input, line, why)) = &self.str_bad {
            return Err(self.mixed(names, *input, *line, why));
        }
        Ok((FieldType::Str, self.max_len.max(1) as u32))
    }

    fn mixed(&self, names: &[String], input: usize, line: u64, why: &str) -> String {
        let at = |i: usize, l: u64| format!("{}:{l}", names.get(i).map_or("?", |n| n.as_str()));
        let seen: Vec<String> = self
            .json_kinds
            .iter()
            .zip(["a number", "a string", "a bool"])
            .filter_map(|(l, n)| l.map(|(i, l)| format!("{n} at {}", at(i, l))))
            .collect();
        if seen.len() > 1 {
            format!("no type holds every value ({})", seen.join(", "))
        } else {
            format!("no type holds every value: at {}, {why}", at(input, line))
        }
    }

    /// What the evidence was, for a comment beside the chosen type.
    pub fn describe(&self, ty: FieldType) -> String {
        let mut s = match ty {
            _ if self.values == 0 => "no values".to_string(),
            FieldType::F32 => "every number has at most 6 significant digits".into(),
            FieldType::F64 => "numbers".into(),
            FieldType::Bool => "true/false".into(),
            FieldType::Date => match self.date_range {
                Some((a, b)) => format!("{a} ..= {b}"),
                None => String::new(),
            },
            FieldType::Timestamp(_) => match self.instants() {
                Some((a, b)) => format!("{a} ..= {b}"),
                None => String::new(),
            },
            FieldType::Str => format!("longest {} bytes", self.max_len),
            _ => {
                let (lo, hi) = self.int_range();
                format!("{lo} ..= {hi}")
            }
        };
        if self.missing() > 0 {
            s.push_str(&format!("; {} missing", self.missing()));
        }
        s
    }

    /// The range of the integral values (empty when `min > max`).
    fn int_range(&self) -> (i128, i128) {
        (
            self.wide_min.min(self.min as i128),
            self.wide_max.max(self.max as i128),
        )
    }

    /// Adds the evidence `o` gathered for the same column from other rows.
    pub fn merge(&mut self, o: Column) {
        self.kinds &= o.kinds;
        self.str_bad = match (self.str_bad.take(), o.str_bad) {
            (Some(a), Some(b)) => Some(if (b.0, b.1) < (a.0, a.1) { b } else { a }),
            (a, b) => a.or(b),
        };
        self.values += o.values;
        self.nulls += o.nulls;
        self.seen += o.seen;
        self.absent += o.absent;
        self.max_len = self.max_len.max(o.max_len);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.wide_min = self.wide_min.min(o.wide_min);
        self.wide_max = self.wide_max.max(o.wide_max);
        self.f32_ok &= o.f32_ok;
        self.unit = finer(self.unit, o.unit);
        self.ts_range = match (self.ts_range, o.ts_range) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        self.date_range = match (self.date_range, o.date_range) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        for (a, b) in self.json_kinds.iter_mut().zip(o.json_kinds) {
            *a = match (*a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
        }
    }

    /// Values missing: null tokens, JSON nulls and absent keys.
    pub fn missing(&self) -> u64 {
        self.nulls + self.absent
    }
}

/// The narrowest integer type holding `min ..= max`: unsigned when nothing
/// is negative.
fn int_type(min: i128, max: i128) -> Option<FieldType> {
    use FieldType::*;
    let types: &[(FieldType, i128, i128)] = if min >= 0 {
        &[
            (U8, 0, u8::MAX as i128),
            (U16, 0, u16::MAX as i128),
            (U32, 0, u32::MAX as i128),
            (U64, 0, u64::MAX as i128),
        ]
    } else {
        &[
            (I8, i8::MIN as i128, i8::MAX as i128),
            (I16, i16::MIN as i128, i16::MAX as i128),
            (I32, i32::MIN as i128, i32::MAX as i128),
            (I64, i64::MIN as i128, i64::MAX as i128),
        ]
    };
    types
        .iter()
        .find(|(_, lo, hi)| *lo <= min && max <= *hi)
        .map(|t| t.0)
}

/// The finer of two time units (seconds the coarsest).
fn finer(a: TimeUnit, b: TimeUnit) -> TimeUnit {
    let rank = |u: TimeUnit| TimeUnit::ALL.iter().position(|&x| x == u);
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}
