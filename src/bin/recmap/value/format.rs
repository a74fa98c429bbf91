//! Field bytes back out as CSV cell text and JSON values.
//!
//! Invariants: every value is written in a form `parse` reads back to the
//! same bytes (floats as the shortest text that round-trips, exponent form
//! below 1e-5 and from 1e16 up); JSON output is valid JSON, so non-finite
//! floats become strings and integral floats get a `.0`; a `str[N]` ends
//! at its first NUL.

use super::temporal::{write_date, write_timestamp};
use super::{Codec, FieldCodec};
use recmap::FieldType;
use std::io::Write;

impl Codec {
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

/// Writes text, in JSON as a string (temporal values have no JSON type).
fn quoted(out: &mut Vec<u8>, json: bool, write: impl FnOnce(&mut Vec<u8>)) {
    if json {
        out.push(b'"');
    }
    write(out);
    if json {
        out.push(b'"');
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
        FieldType::Timestamp(unit) => {
            quoted(out, json, |out| {
                write_timestamp(i64::from_le_bytes(le(b)), unit, out)
            });
            Ok(())
        }
        FieldType::Date => {
            quoted(out, json, |out| write_date(i32::from_le_bytes(le(b)), out));
            Ok(())
        }
        // Not a data field (the codec has none); its bits, if ever asked.
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
    /// Appends this field of `rec` as a CSV cell's text (unquoted); a null
    /// is the empty cell.
    pub fn write_text(&self, rec: &[u8], out: &mut Vec<u8>) {
        if !self.is_present(rec) {
            return;
        }
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

    /// Appends this field of `rec` as a JSON value (`null` for a null).
    pub fn write_json(&self, rec: &[u8], out: &mut Vec<u8>) {
        if !self.is_present(rec) {
            out.extend_from_slice(b"null");
            return;
        }
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
    use crate::value::codec;
    use crate::value::parse::parse_f32;

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
}
