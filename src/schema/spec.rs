//! The textual schema spec (`id:u64,name:str[16],d:f32?`): parsing it into
//! a [`Schema`], writing a schema back as one, and the one-line `Display`.
//!
//! Invariants: [`Schema::parse`] lays fields out as `#[repr(C)]` would and
//! returns only a schema that passed [`Schema::validate`]; an error names
//! the byte position and the part of the spec at fault. [`Schema::spec`]
//! lists every field, the validity field included, so that `parse(spec())`
//! gives the schema back whenever its validity bits run 0, 1, 2, … in
//! field order.

use super::{is_valid_name, Field, FieldType, Schema, SchemaError, TimeUnit};
use crate::format::MAX_RECORD_SIZE;
use std::fmt;

/// Name of the validity field [`Schema::parse`] appends for nullable fields.
pub const VALIDITY_NAME: &str = "_valid";

impl Field {
    /// The type as written in a spec: `u32`, `str[16]`, `f32[3]`,
    /// `timestamp[ms]`, `f32?` (nullable).
    pub fn type_spec(&self) -> String {
        let q = if self.is_nullable() { "?" } else { "" };
        if self.ty.needs_len() || self.count != 1 {
            format!("{}[{}]{q}", self.ty.name(), self.count)
        } else {
            format!("{}{q}", self.ty.name())
        }
    }
}

impl Schema {
    /// Parses a spec like `id:u64,x:f64,name:str[16],t:timestamp[ms],d:f32?`.
    ///
    /// Whitespace (newlines included) around names, types and commas is
    /// ignored, and the spec may end with one comma.
    ///
    /// Fields are laid out in order, each at the next offset aligned to its
    /// element size; the record is padded to its alignment (the largest
    /// element size), exactly as `#[repr(C)]` would.
    ///
    /// A type ending in `?` makes the field nullable (format version 2).
    /// Nullable fields get validity bits 0, 1, 2, … in field order. Unless
    /// the spec declares the validity field itself (`name:validity[N]`,
    /// laid out where it is written), one named `_valid` of `ceil(n / 8)`
    /// bytes, n the number of nullable fields, is appended after the last
    /// field.
    pub fn parse(spec: &str) -> Result<Schema, SchemaError> {
        let mut fields: Vec<Field> = Vec::new();
        let mut offset: u64 = 0;
        let mut align: u32 = 1;
        let mut pos = 0usize;
        let mut null_bits: u32 = 0;
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(SchemaError::Spec {
                at: 0,
                part: String::new(),
                reason: "empty schema".into(),
            });
        }
        let mut place = |fields: &mut Vec<Field>, mut f: Field| -> Result<(), String> {
            let es = f.ty.elem_size();
            offset = offset.div_ceil(es as u64) * es as u64;
            f.offset = offset as u32;
            offset += es as u64 * f.count as u64;
            if offset > MAX_RECORD_SIZE as u64 {
                return Err(format!("record grows past {MAX_RECORD_SIZE} bytes"));
            }
            align = align.max(es);
            fields.push(f);
            Ok(())
        };
        // One trailing comma is allowed (`a:u8,\nb:u8,\n`, as a file lists
        // one field a line): the empty part after it is not a field.
        let body = match spec.trim_end().strip_suffix(',') {
            Some(b) if !b.trim().is_empty() => b,
            _ => spec,
        };
        for part in body.split(',') {
            let at = pos;
            pos += part.len() + 1;
            let serr = |reason: String| SchemaError::Spec {
                at,
                part: part.to_string(),
                reason,
            };
            let p = part.trim();
            let (name, ty) = p
                .split_once(':')
                .ok_or_else(|| serr("expected name:type".into()))?;
            let (name, ty) = (name.trim(), ty.trim());
            let (ty, nullable) = match ty.strip_suffix('?') {
                Some(t) => (t.trim_end(), true),
                None => (ty, false),
            };
            if !is_valid_name(name) {
                return Err(serr(format!(
                    "bad field name {name:?} (use letters, digits, _)"
                )));
            }
            if fields.iter().any(|f| f.name == name) {
                return Err(serr(format!("duplicate field name {name:?}")));
            }
            let (t, count) = match ty.split_once('[') {
                Some((t, rest)) => {
                    let (t, n) = (
                        t.trim(),
                        rest.strip_suffix(']')
                            .ok_or_else(|| serr(format!("missing ']' in {ty:?}")))?
                            .trim(),
                    );
                    if t == "timestamp" {
                        let unit = TimeUnit::from_suffix(n).ok_or_else(|| {
                            serr(format!(
                                "unknown time unit {n:?} in {ty:?} (expected s, ms, us or ns)"
                            ))
                        })?;
                        (FieldType::Timestamp(unit), 1)
                    } else {
                        let n: u32 = n
                            .parse()
                            .map_err(|_| serr(format!("bad length {n:?} in {ty:?}")))?;
                        if n == 0 {
                            return Err(serr("length must be at least 1".into()));
                        }
                        (Self::parse_type_name(t).map_err(serr)?, n)
                    }
                }
                None => (Self::parse_type_name(ty).map_err(serr)?, 1),
            };
            let tname = t.name();
            if t.needs_len() && !ty.contains('[') {
                return Err(serr(format!("{tname} needs a length, e.g. {tname}[16]")));
            }
            if t == FieldType::Bool && count != 1 {
                return Err(serr("bool arrays are not supported; use bytes[N]".into()));
            }
            if t.single_value() && count != 1 {
                return Err(serr(format!("{tname} arrays are not supported")));
            }
            if t == FieldType::Validity && nullable {
                return Err(serr("the validity field cannot be nullable".into()));
            }
            let mut f = Field::new(name, t, count, 0);
            if nullable {
                let bit = u16::try_from(null_bits)
                    .ok()
                    .filter(|&b| b < u16::MAX)
                    .ok_or_else(|| serr("more than 65535 nullable fields".into()))?;
                f = f.with_null_bit(bit);
                null_bits += 1;
            }
            place(&mut fields, f).map_err(serr)?;
        }
        let has_validity = fields.iter().any(|f| f.ty == FieldType::Validity);
        if null_bits > 0 && !has_validity {
            let serr = |reason: String| SchemaError::Spec {
                at: spec.len(),
                part: String::new(),
                reason,
            };
            if fields.iter().any(|f| f.name == VALIDITY_NAME) {
                return Err(serr(format!(
                    "nullable fields need a validity field, and {VALIDITY_NAME:?} is taken: \
                     declare one (name:validity[N]) or rename that field"
                )));
            }
            let v = Field::new(VALIDITY_NAME, FieldType::Validity, null_bits.div_ceil(8), 0);
            place(&mut fields, v).map_err(serr)?;
        }
        let record_size = (offset.div_ceil(align as u64) * align as u64) as u32;
        let s = Schema {
            record_size,
            record_align: align,
            fields,
        };
        s.validate()?;
        Ok(s)
    }

    /// A type name without a length (`u32`, `date`, `str`).
    fn parse_type_name(tname: &str) -> Result<FieldType, String> {
        match FieldType::from_name(tname) {
            Some(FieldType::Timestamp(_)) | None => Err(if tname == "timestamp" {
                "timestamp needs a unit: timestamp[s], timestamp[ms], timestamp[us] or timestamp[ns]"
                    .to_string()
            } else {
                format!(
                    "unknown type {tname:?} (expected u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 bool \
                     str[N] bytes[N] timestamp[s|ms|us|ns] date validity[N], \
                     with ? after the type for a nullable field)"
                )
            }),
            Some(t) => Ok(t),
        }
    }

    /// The spec form (`id:u64,x:f64,d:f32?,_valid:validity[1]`); padding is
    /// implied by alignment. Every field is listed, the validity field
    /// included, so [`Schema::parse`] gives this schema back whenever its
    /// validity bits run 0, 1, 2, … in field order (as `parse` assigns them).
    pub fn spec(&self) -> String {
        self.fields
            .iter()
            .map(|f| format!("{}:{}", f.name, f.type_spec()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes, align {}: {{",
            self.record_size, self.record_align
        )?;
        for (i, fl) in self.fields.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{}: {} @{}", fl.name, fl.type_spec(), fl.offset)?;
            if let Some(b) = fl.nullable {
                write!(f, " bit {b}")?;
            }
        }
        write!(f, " }}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lays_out_like_repr_c() {
        let s = Schema::parse("a:u8, b:u32,c:str[5],d:f64,e:bool").unwrap();
        let offs: Vec<u32> = s.fields.iter().map(|f| f.offset).collect();
        assert_eq!(offs, vec![0, 4, 8, 16, 24]);
        assert_eq!((s.record_size, s.record_align), (32, 8));
        assert_eq!(s.spec(), "a:u8,b:u32,c:str[5],d:f64,e:bool");
        assert_eq!(Schema::parse(&s.spec()).unwrap(), s);
    }

    #[test]
    fn parse_errors_point_at_the_part() {
        let e = Schema::parse("a:u8,b:u33").unwrap_err();
        assert!(
            matches!(e, SchemaError::Spec { at: 5, ref part, .. } if part == "b:u33"),
            "{e}"
        );
        for bad in [
            "",
            "a",
            "a:u8,a:u8",
            "1a:u8",
            "a:str",
            "a:str[0]",
            "a:str[x]",
            "a:str[3",
            "a:bool[2]",
        ] {
            assert!(Schema::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn v2_spec_errors() {
        for (bad, why) in [
            ("t:timestamp", "needs a unit"),
            ("t:timestamp[m]", "unknown time unit"),
            ("t:timestamp[ms][2]", "unknown time unit"),
            ("t:timestamp[3]", "unknown time unit"),
            ("d:date[2]", "date arrays are not supported"),
            ("v:validity", "validity needs a length"),
            ("x:u8?,v:validity[1]?", "cannot be nullable"),
            ("x:u8?,_valid:u8", "\"_valid\" is taken"),
            ("x:u8,v:validity[1]", "no nullable field"),
            ("x:u8??", "unknown type"),
            ("x:?", "unknown type"),
        ] {
            let e = Schema::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        // `?` may follow a length or be spaced off.
        let s = Schema::parse("s: str[4] ?, b: bytes[2]?").unwrap();
        assert_eq!(s.spec(), "s:str[4]?,b:bytes[2]?,_valid:validity[1]");
    }

    #[test]
    fn one_trailing_comma_and_newlines_are_accepted() {
        let s = Schema::parse("a:u8,\n  b:u32 ,\n\n").unwrap();
        assert_eq!(s.spec(), "a:u8,b:u32");
        assert_eq!(Schema::parse("a:u8,").unwrap().spec(), "a:u8");
        // The fuzz target's round trip holds for them (schema_spec).
        for ok in [
            "a:u8,",
            "a:u8?,\n",
            " x:f32 , y:str[3]? ,  ",
            "t:timestamp[ms],\r\n",
        ] {
            let s = Schema::parse(ok).unwrap();
            assert_eq!(Schema::parse(&s.spec()), Ok(s), "{ok:?}");
        }
        for bad in [",", " , ", "a:u8,,", "a:u8,,b:u8", ",a:u8"] {
            assert!(Schema::parse(bad).is_err(), "{bad:?} accepted");
        }
        // Positions still count from the start of the spec.
        let e = Schema::parse("a:u8,\nb:u33,\n").unwrap_err();
        assert!(matches!(e, SchemaError::Spec { at: 5, .. }), "{e}");
    }
}
