//! The record layout stored in every file: field names, types and offsets.
//!
//! Owns the schema block codec (pure bytes), its validation, the textual
//! spec (`name:type,…`) and the comparison used to reject a Rust type whose
//! layout differs from the stored one.

use crate::format::{rd_u32, wr_u32, MAX_RECORD_SIZE, MAX_SCHEMA_LEN, PAGE_SIZE};
use std::fmt;

/// Magic at the start of the schema block.
pub const SCHEMA_MAGIC: [u8; 4] = *b"RSCH";
/// Bytes before the first field entry.
pub const SCHEMA_HEADER_LEN: usize = 16;
/// Fixed bytes of a field entry before its name.
pub const FIELD_ENTRY_LEN: usize = 12;
/// Longest field name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Field offsets inside the schema block header and a field entry.
pub mod block {
    pub const MAGIC: usize = 0;
    pub const RECORD_SIZE: usize = 4;
    pub const RECORD_ALIGN: usize = 8;
    pub const FIELD_COUNT: usize = 12;
    pub const F_OFFSET: usize = 0;
    pub const F_COUNT: usize = 4;
    pub const F_TYPE: usize = 8;
    pub const F_NAME_LEN: usize = 9;
    pub const F_RESERVED: usize = 10;
}

/// The element type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
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
    /// One byte, 0 or 1.
    Bool,
    /// Raw bytes (`bytes[N]`).
    Bytes,
    /// UTF-8 text, NUL-padded to N bytes (`str[N]`).
    Str,
}

impl FieldType {
    /// All types, in code order.
    pub const ALL: [FieldType; 13] = [
        FieldType::U8,
        FieldType::U16,
        FieldType::U32,
        FieldType::U64,
        FieldType::I8,
        FieldType::I16,
        FieldType::I32,
        FieldType::I64,
        FieldType::F32,
        FieldType::F64,
        FieldType::Bool,
        FieldType::Bytes,
        FieldType::Str,
    ];

    /// The on-disk type code (`docs/format.md`, "Type codes").
    pub const fn code(self) -> u8 {
        match self {
            FieldType::U8 => 1,
            FieldType::U16 => 2,
            FieldType::U32 => 3,
            FieldType::U64 => 4,
            FieldType::I8 => 5,
            FieldType::I16 => 6,
            FieldType::I32 => 7,
            FieldType::I64 => 8,
            FieldType::F32 => 9,
            FieldType::F64 => 10,
            FieldType::Bool => 11,
            FieldType::Bytes => 12,
            FieldType::Str => 13,
        }
    }

    pub fn from_code(code: u8) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Size (and alignment) of one element in bytes.
    pub const fn elem_size(self) -> u32 {
        match self {
            FieldType::U8 | FieldType::I8 | FieldType::Bool | FieldType::Bytes | FieldType::Str => {
                1
            }
            FieldType::U16 | FieldType::I16 => 2,
            FieldType::U32 | FieldType::I32 | FieldType::F32 => 4,
            FieldType::U64 | FieldType::I64 | FieldType::F64 => 8,
        }
    }

    /// The spec name (`u32`, `str`, …).
    pub const fn name(self) -> &'static str {
        match self {
            FieldType::U8 => "u8",
            FieldType::U16 => "u16",
            FieldType::U32 => "u32",
            FieldType::U64 => "u64",
            FieldType::I8 => "i8",
            FieldType::I16 => "i16",
            FieldType::I32 => "i32",
            FieldType::I64 => "i64",
            FieldType::F32 => "f32",
            FieldType::F64 => "f64",
            FieldType::Bool => "bool",
            FieldType::Bytes => "bytes",
            FieldType::Str => "str",
        }
    }

    pub fn from_name(s: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// `bytes` and `str` are always written with a length (`str[16]`).
    pub const fn needs_len(self) -> bool {
        matches!(self, FieldType::Bytes | FieldType::Str)
    }
}

/// One field of a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    /// Number of elements (1 for a scalar; N for `str[N]`, `bytes[N]`, `f32[N]`).
    pub count: u32,
    /// Byte offset inside the record.
    pub offset: u32,
}

impl Field {
    /// Size of the field in bytes.
    pub fn size(&self) -> u32 {
        self.ty.elem_size() * self.count
    }

    /// The type as written in a spec: `u32`, `str[16]`, `f32[3]`.
    pub fn type_spec(&self) -> String {
        if self.ty.needs_len() || self.count != 1 {
            format!("{}[{}]", self.ty.name(), self.count)
        } else {
            self.ty.name().to_string()
        }
    }
}

/// The layout of a record: size, alignment and fields sorted by offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schema {
    pub record_size: u32,
    pub record_align: u32,
    pub fields: Vec<Field>,
}

/// Why a schema (block, spec or Rust description) is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema block: {0}")]
    Block(String),
    #[error("field {field:?}: {reason}")]
    Field { field: String, reason: String },
    #[error("record: {0}")]
    Record(String),
    /// A textual spec could not be parsed; `at` is the byte position in the spec.
    #[error("schema spec at byte {at} ({part:?}): {reason}")]
    Spec {
        at: usize,
        part: String,
        reason: String,
    },
}

fn field_err(field: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError::Field {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*` of at most `MAX_NAME_LEN` bytes.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_LEN
}

impl Schema {
    /// Checks every invariant of `docs/format.md` ("Schema block").
    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.record_size == 0 || self.record_size > MAX_RECORD_SIZE {
            return Err(SchemaError::Record(format!(
                "size {} is outside 1..={MAX_RECORD_SIZE}",
                self.record_size
            )));
        }
        let a = self.record_align;
        if !a.is_power_of_two() || a as u64 > PAGE_SIZE || !self.record_size.is_multiple_of(a) {
            return Err(SchemaError::Record(format!(
                "alignment {a} must be a power of two <= 4096 dividing the size {}",
                self.record_size
            )));
        }
        let mut end_prev = 0u64;
        for (i, f) in self.fields.iter().enumerate() {
            if !is_valid_name(&f.name) {
                return Err(field_err(
                    &f.name,
                    "name must match [A-Za-z_][A-Za-z0-9_]{0,63}",
                ));
            }
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(field_err(&f.name, "duplicate field name"));
            }
            if f.count == 0 {
                return Err(field_err(&f.name, "element count must be at least 1"));
            }
            if f.ty == FieldType::Bool && f.count != 1 {
                return Err(field_err(
                    &f.name,
                    "bool fields hold one value; use bytes[N] for flags",
                ));
            }
            if f.offset % f.ty.elem_size() != 0 {
                return Err(field_err(
                    &f.name,
                    format!("offset {} is not aligned to {}", f.offset, f.ty.elem_size()),
                ));
            }
            if f.ty.elem_size() > a {
                return Err(field_err(
                    &f.name,
                    format!(
                        "needs alignment {} but the record has {a}",
                        f.ty.elem_size()
                    ),
                ));
            }
            if (f.offset as u64) < end_prev {
                return Err(field_err(
                    &f.name,
                    "overlaps the previous field or is out of offset order",
                ));
            }
            let end = f.offset as u64 + f.ty.elem_size() as u64 * f.count as u64;
            if end > self.record_size as u64 {
                return Err(field_err(
                    &f.name,
                    format!(
                        "ends at byte {end}, past the record size {}",
                        self.record_size
                    ),
                ));
            }
            end_prev = end;
        }
        if self.encoded_len() > MAX_SCHEMA_LEN as usize {
            return Err(SchemaError::Block(format!(
                "{} bytes encoded, more than {MAX_SCHEMA_LEN}",
                self.encoded_len()
            )));
        }
        Ok(())
    }

    fn entry_len(f: &Field) -> usize {
        (FIELD_ENTRY_LEN + f.name.len()).div_ceil(4) * 4
    }

    /// Length of the encoded block in bytes.
    pub fn encoded_len(&self) -> usize {
        SCHEMA_HEADER_LEN + self.fields.iter().map(Self::entry_len).sum::<usize>()
    }

    /// Encodes the schema block. The schema must be valid.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.encoded_len()];
        b[..4].copy_from_slice(&SCHEMA_MAGIC);
        wr_u32(&mut b, block::RECORD_SIZE, self.record_size);
        wr_u32(&mut b, block::RECORD_ALIGN, self.record_align);
        wr_u32(&mut b, block::FIELD_COUNT, self.fields.len() as u32);
        let mut at = SCHEMA_HEADER_LEN;
        for f in &self.fields {
            wr_u32(&mut b, at + block::F_OFFSET, f.offset);
            wr_u32(&mut b, at + block::F_COUNT, f.count);
            b[at + block::F_TYPE] = f.ty.code();
            b[at + block::F_NAME_LEN] = f.name.len() as u8;
            let name_at = at + FIELD_ENTRY_LEN;
            b[name_at..name_at + f.name.len()].copy_from_slice(f.name.as_bytes());
            at += Self::entry_len(f);
        }
        b
    }

    /// Decodes and validates a schema block of exactly its encoded length.
    pub fn decode(b: &[u8]) -> Result<Schema, SchemaError> {
        let err = |m: String| SchemaError::Block(m);
        if b.len() < SCHEMA_HEADER_LEN {
            return Err(err(format!(
                "{} bytes, shorter than its 16-byte header",
                b.len()
            )));
        }
        if b[..4] != SCHEMA_MAGIC {
            return Err(err(format!("bad magic {:02x?}", &b[..4])));
        }
        let record_size = rd_u32(b, block::RECORD_SIZE);
        let record_align = rd_u32(b, block::RECORD_ALIGN);
        let count = rd_u32(b, block::FIELD_COUNT) as usize;
        // Each entry takes at least 16 bytes, which bounds the allocation below.
        if count > (b.len() - SCHEMA_HEADER_LEN) / 16 {
            return Err(err(format!(
                "field count {count} does not fit in {} bytes",
                b.len()
            )));
        }
        let mut fields = Vec::with_capacity(count);
        let mut at = SCHEMA_HEADER_LEN;
        for i in 0..count {
            if at + FIELD_ENTRY_LEN > b.len() {
                return Err(err(format!("field #{i} runs past the end of the block")));
            }
            let offset = rd_u32(b, at + block::F_OFFSET);
            let fcount = rd_u32(b, at + block::F_COUNT);
            let code = b[at + block::F_TYPE];
            let name_len = b[at + block::F_NAME_LEN] as usize;
            if b[at + block::F_RESERVED..at + block::F_RESERVED + 2] != [0, 0] {
                return Err(err(format!("field #{i}: reserved bytes are not zero")));
            }
            let ty = FieldType::from_code(code)
                .ok_or_else(|| err(format!("field #{i}: unknown type code {code}")))?;
            let name_at = at + FIELD_ENTRY_LEN;
            if name_len == 0 || name_at + name_len > b.len() {
                return Err(err(format!(
                    "field #{i}: name length {name_len} out of range"
                )));
            }
            let name = std::str::from_utf8(&b[name_at..name_at + name_len])
                .map_err(|_| err(format!("field #{i}: name is not UTF-8")))?;
            let f = Field {
                name: name.to_string(),
                ty,
                count: fcount,
                offset,
            };
            let next = at + Self::entry_len(&f);
            if next > b.len() || b[name_at + name_len..next].iter().any(|&x| x != 0) {
                return Err(err(format!("field #{i}: bad name padding")));
            }
            at = next;
            fields.push(f);
        }
        if at != b.len() {
            return Err(err(format!(
                "{} trailing bytes after the last field",
                b.len() - at
            )));
        }
        let s = Schema {
            record_size,
            record_align,
            fields,
        };
        s.validate()?;
        Ok(s)
    }

    /// Parses a spec like `id:u64,x:f64,name:str[16]`.
    ///
    /// Fields are laid out in order, each at the next offset aligned to its
    /// element size; the record is padded to its alignment (the largest
    /// element size), exactly as `#[repr(C)]` would.
    pub fn parse(spec: &str) -> Result<Schema, SchemaError> {
        let mut fields: Vec<Field> = Vec::new();
        let mut offset: u64 = 0;
        let mut align: u32 = 1;
        let mut pos = 0usize;
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(SchemaError::Spec {
                at: 0,
                part: String::new(),
                reason: "empty schema".into(),
            });
        }
        for part in spec.split(',') {
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
            if !is_valid_name(name) {
                return Err(serr(format!(
                    "bad field name {name:?} (use letters, digits, _)"
                )));
            }
            if fields.iter().any(|f| f.name == name) {
                return Err(serr(format!("duplicate field name {name:?}")));
            }
            let (tname, count) = match ty.split_once('[') {
                Some((t, rest)) => {
                    let n = rest
                        .strip_suffix(']')
                        .ok_or_else(|| serr(format!("missing ']' in {ty:?}")))?;
                    let n: u32 = n
                        .trim()
                        .parse()
                        .map_err(|_| serr(format!("bad length {n:?} in {ty:?}")))?;
                    if n == 0 {
                        return Err(serr("length must be at least 1".into()));
                    }
                    (t.trim(), n)
                }
                None => (ty, 1),
            };
            let t = FieldType::from_name(tname).ok_or_else(|| {
                serr(format!(
                    "unknown type {tname:?} (expected u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 bool str[N] bytes[N])"
                ))
            })?;
            if t.needs_len() && !ty.contains('[') {
                return Err(serr(format!("{tname} needs a length, e.g. {tname}[16]")));
            }
            if t == FieldType::Bool && count != 1 {
                return Err(serr("bool arrays are not supported; use bytes[N]".into()));
            }
            let es = t.elem_size();
            offset = offset.div_ceil(es as u64) * es as u64;
            fields.push(Field {
                name: name.to_string(),
                ty: t,
                count,
                offset: offset as u32,
            });
            offset += es as u64 * count as u64;
            if offset > MAX_RECORD_SIZE as u64 {
                return Err(serr(format!("record grows past {MAX_RECORD_SIZE} bytes")));
            }
            align = align.max(es);
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

    /// The spec form (`id:u64,x:f64`); padding is implied by alignment.
    pub fn spec(&self) -> String {
        self.fields
            .iter()
            .map(|f| format!("{}:{}", f.name, f.type_spec()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Looks a field up by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
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
    fn block_roundtrip_and_validation() {
        let s = Schema::parse("id:u64,x:f32[3],name:str[13],ok:bool").unwrap();
        let b = s.encode();
        assert_eq!(b.len(), s.encoded_len());
        assert_eq!(Schema::decode(&b).unwrap(), s);
        // Truncation, trailing bytes, bad codes and flipped bytes are rejected, never panic.
        for n in 0..b.len() {
            assert!(
                Schema::decode(&b[..n]).is_err(),
                "truncated to {n} accepted"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(Schema::decode(&longer).is_err());
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                let _ = Schema::decode(&c); // must not panic
            }
        }
    }

    #[test]
    fn validate_catches_overlap_and_misalignment() {
        let mut s = Schema::parse("a:u32,b:u32").unwrap();
        s.fields[1].offset = 2;
        assert!(s.validate().is_err());
        s.fields[1].offset = 0;
        assert!(s.validate().is_err());
        s.fields[1].offset = 8;
        assert!(s.validate().is_err());
    }
}
