//! Text (CSV cells) and JSON values into a field's little-endian bytes,
//! with the error message for every rejected value.
//!
//! Invariants: a parse writes only the field's own bytes of the record and
//! either fills them completely (`str[N]` and `bytes[N]` zero-padded) or
//! returns an error; integers out of their type's range, floats that
//! overflow to infinity (unless written as infinity), invalid UTF-8 and NUL
//! bytes in strings are errors, never truncated or wrapped; an offending
//! value is shown to at most 40 characters.

use super::fast::{fast_f32, fast_f64};
use super::temporal::{parse_date, parse_timestamp};
use super::FieldCodec;
use recmap::FieldType;
use serde_json::Value;

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
        return integral_float(s, neg, digits, ty);
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

/// An integer written as a float (`517.0`, `1e3`, `-2.50e1`: pandas writes
/// integer columns that hold a missing value so): its exact value when it
/// has no fractional part, else the error. Decided on the decimal digits,
/// never through a binary float, so `9007199254740993.0` stays exact.
#[cold]
fn integral_float(s: &[u8], neg: bool, digits: &[u8], ty: FieldType) -> Result<i128, String> {
    let not_int = || format!("not an integer: {}", show(s));
    let (mant, exp) = match digits.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (int_part, frac) = match mant.iter().position(|&c| c == b'.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, &mant[mant.len()..]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if (int_part.is_empty() && frac.is_empty()) || !all_digits(int_part) || !all_digits(frac) {
        return Err(not_int());
    }
    let mut e10: i64 = match exp {
        None => 0,
        Some(e) => {
            let (eneg, ed) = match e.first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if ed.is_empty() || !all_digits(ed) {
                return Err(not_int());
            }
            // Beyond 4 exponent digits the value is 0 or out of every range.
            let v: i64 = std::str::from_utf8(&ed[..ed.len().min(5)])
                .expect("ASCII digits")
                .parse()
                .expect("at most 5 digits");
            if eneg {
                -v
            } else {
                v
            }
        }
    };
    // The value is `digits × 10^e10`; trailing zeros move into e10.
    let mut all: Vec<u8> = int_part.iter().chain(frac).copied().collect();
    e10 -= frac.len() as i64;
    while e10 < 0 && all.last() == Some(&b'0') {
        all.pop();
        e10 += 1;
    }
    let first = all.iter().position(|&c| c != b'0').unwrap_or(all.len());
    let sig = &all[first..];
    if sig.is_empty() {
        return Ok(0);
    }
    if e10 < 0 {
        return Err(format!(
            "{} has a fractional part, expected an integer ({})",
            show(s),
            ty.name()
        ));
    }
    let out_of_range = || out_of_range(s, ty);
    if sig.len() as i64 + e10 > 39 {
        return Err(out_of_range());
    }
    let mut v: i128 = 0;
    for &d in sig {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as i128))
            .ok_or_else(out_of_range)?;
    }
    for _ in 0..e10 {
        v = v.checked_mul(10).ok_or_else(out_of_range)?;
    }
    let v = if neg { -v } else { v };
    let (min, max) = int_range(ty);
    if v < min || v > max {
        return Err(out_of_range());
    }
    Ok(v)
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
pub(super) fn parse_f32(text: &[u8]) -> Result<f32, String> {
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
        FieldType::Timestamp(unit) => {
            out.copy_from_slice(&parse_timestamp(text, unit)?.to_le_bytes())
        }
        FieldType::Date => out.copy_from_slice(&parse_date(text)?.to_le_bytes()),
        // Not a data field: the codec never parses into it.
        FieldType::Validity => return Err("the validity bitmap takes no value".into()),
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

impl FieldCodec {
    /// Parses a CSV cell into this field's bytes of `rec` (for a nullable
    /// field, a null token stores a null; any value sets its validity bit).
    #[inline]
    pub fn parse_text(&self, text: &[u8], rec: &mut [u8]) -> Result<(), String> {
        if self.null.is_some() {
            if self.is_null_token(text) {
                self.set_null(rec);
                return Ok(());
            }
            self.parse_value_text(text, rec)?;
            self.set_valid(rec);
            return Ok(());
        }
        self.parse_value_text(text, rec)
            .map_err(|e| self.not_nullable(text, e))
    }

    /// The error for a missing value in a field that is not nullable.
    #[cold]
    fn not_nullable(&self, text: &[u8], e: String) -> String {
        if self.is_null_token(text) || text.trim_ascii().is_empty() {
            let what = if text.trim_ascii().is_empty() {
                "empty value".to_string()
            } else {
                format!("missing value {}", show(text))
            };
            format!(
                "{what}, but the field is not nullable (declare it {}:{}? to store nulls)",
                self.name,
                self.type_spec()
            )
        } else {
            e
        }
    }

    /// The field's type as a spec writes it (`u32`, `str[8]`, `f32[3]`).
    fn type_spec(&self) -> String {
        if self.ty.needs_len() || self.count != 1 {
            format!("{}[{}]", self.ty.name(), self.count)
        } else {
            self.ty.name().to_string()
        }
    }

    fn parse_value_text(&self, text: &[u8], rec: &mut [u8]) -> Result<(), String> {
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
        match (ty, v) {
            (FieldType::Timestamp(_) | FieldType::Date, Value::String(s)) => {
                parse_scalar(ty, s.as_bytes(), out)
            }
            (FieldType::Timestamp(_) | FieldType::Date, Value::Number(n)) => {
                parse_scalar(ty, n.as_str().as_bytes(), out)
            }
            (FieldType::Timestamp(_) | FieldType::Date, _) => Err(format!(
                "expected a {} string, got {}",
                ty.name(),
                json_kind(v)
            )),
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

    /// Parses a JSON value into this field's bytes of `rec` (`null` stores
    /// a null in a nullable field).
    pub fn parse_json(&self, v: &Value, rec: &mut [u8]) -> Result<(), String> {
        match (v, self.null) {
            (Value::Null, Some(_)) => {
                self.set_null(rec);
                Ok(())
            }
            (Value::Null, None) => Err(format!(
                "null, but the field is not nullable (declare it {}:{}? to store nulls)",
                self.name,
                self.type_spec()
            )),
            (_, Some(_)) => {
                self.parse_json_value(v, rec)?;
                self.set_valid(rec);
                Ok(())
            }
            (_, None) => self.parse_json_value(v, rec),
        }
    }

    fn parse_json_value(&self, v: &Value, rec: &mut [u8]) -> Result<(), String> {
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
}

#[cfg(test)]
mod tests {
    use crate::value::codec;

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
            .contains("has a fractional part"));
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

    #[test]
    fn integral_floats_into_integers() {
        let c = codec("a:u16,b:i64,c:u64");
        let mut rec = vec![0u8; c.record_size];
        let get_a = |rec: &[u8]| u16::from_le_bytes([rec[0], rec[1]]);
        for (text, want) in [
            ("517.0", 517),
            ("517.", 517),
            ("1e3", 1000),
            ("1E+3", 1000),
            ("5170e-1", 517),
            ("0.0", 0),
            ("-0.0", 0),
            ("65535.000", 65535),
            ("0.00e5", 0),
        ] {
            c.fields[0].parse_text(text.as_bytes(), &mut rec).unwrap();
            assert_eq!(get_a(&rec), want, "{text}");
        }
        for (text, why) in [
            ("517.5", "fractional part"),
            ("1e-3", "fractional part"),
            (".5", "fractional part"),
            ("65536.0", "out of range"),
            ("-1.0", "out of range"),
            ("1e40", "out of range"),
            ("1e99999999", "out of range"),
            ("1.0.0", "not an integer"),
            ("1e", "not an integer"),
            ("e3", "not an integer"),
            ("nan", "not an integer"),
            ("inf", "not an integer"),
        ] {
            let e = c.fields[0]
                .parse_text(text.as_bytes(), &mut rec)
                .unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        // Exact beyond f64's 53 bits, and i64's extremes.
        c.fields[1]
            .parse_text(b"9007199254740993.0", &mut rec)
            .unwrap();
        assert_eq!(
            i64::from_le_bytes(rec[8..16].try_into().unwrap()),
            9007199254740993
        );
        c.fields[1]
            .parse_text(b"-9.223372036854775808e18", &mut rec)
            .unwrap();
        assert_eq!(i64::from_le_bytes(rec[8..16].try_into().unwrap()), i64::MIN);
        assert!(c.fields[1]
            .parse_text(b"9.223372036854775808e18", &mut rec)
            .unwrap_err()
            .contains("out of range"));
        c.fields[2]
            .parse_text(b"1.8446744073709551615e19", &mut rec)
            .unwrap();
        assert_eq!(
            u64::from_le_bytes(rec[16..24].try_into().unwrap()),
            u64::MAX
        );
        // JSON numbers take the same path.
        c.fields[0]
            .parse_json(&serde_json::from_str("517.0").unwrap(), &mut rec)
            .unwrap();
        assert_eq!(get_a(&rec), 517);
    }

    #[test]
    fn nulls_clear_and_values_set_the_validity_bit() {
        use super::super::{Codec, FastCell};
        let schema = recmap::Schema::parse("a:u32?,b:f64,s:str[4]?,t:timestamp[ms]?").unwrap();
        let c = Codec::new(&schema);
        // The validity field is not a data field.
        assert_eq!(c.names(), "a, b, s, t");
        let (at, _) = schema.validity_bit(&schema.fields[0]).unwrap();
        let at = at as usize;
        let mut rec = vec![0xffu8; c.record_size];
        rec[at] = 0;
        for cell in [&b""[..], b"NA", b"NULL"] {
            rec[at] = 0xff;
            c.fields[0].parse_text(cell, &mut rec).unwrap();
            assert_eq!(rec[at] & 1, 0);
            assert_eq!(&rec[0..4], &[0; 4], "a null's value bytes are zero");
            assert!(!c.fields[0].is_present(&rec));
        }
        c.fields[0].parse_text(b"7", &mut rec).unwrap();
        assert_eq!(rec[at] & 1, 1);
        c.fields[2].parse_text(b"", &mut rec).unwrap();
        assert_eq!(rec[at] & 2, 0);
        c.fields[2].parse_text(b"ab", &mut rec).unwrap();
        assert_eq!(rec[at] & 2, 2);
        c.fields[3].parse_text(b"NA", &mut rec).unwrap();
        assert_eq!(rec[at] & 4, 0);
        c.fields[3]
            .parse_json(&serde_json::json!("1970-01-01T00:00:01Z"), &mut rec)
            .unwrap();
        assert_eq!(rec[at] & 4, 4);
        c.fields[3]
            .parse_json(&serde_json::Value::Null, &mut rec)
            .unwrap();
        assert_eq!(rec[at] & 4, 0);
        // Not nullable: a missing value says how to declare it nullable.
        let e = c.fields[1].parse_text(b"NA", &mut rec).unwrap_err();
        assert!(e.contains("not nullable") && e.contains("b:f64?"), "{e}");
        let e = c.fields[1].parse_text(b"", &mut rec).unwrap_err();
        assert!(e.contains("not nullable"), "{e}");
        let e = c.fields[1]
            .parse_json(&serde_json::Value::Null, &mut rec)
            .unwrap_err();
        assert!(e.contains("not nullable"), "{e}");
        // The fast path sets the bit too, and leaves a numeric null token
        // to the general path.
        rec[at] = 0;
        assert!(FastCell::new(&c.fields[0]).parse(b"9", &mut rec));
        assert_eq!(rec[at] & 1, 1);
        let c2 = Codec::with_null_tokens(&schema, [&b"-999"[..]]);
        let fast = FastCell::new(&c2.fields[0]);
        assert!(!fast.parse(b"-999", &mut rec));
        c2.fields[0].parse_text(b"-999", &mut rec).unwrap();
        assert_eq!(rec[at] & 1, 0);
        let e = c2.fields[0].parse_text(b"NA", &mut rec).unwrap_err();
        assert!(e.contains("not an integer"), "{e}");
    }
}
