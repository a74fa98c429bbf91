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
/// Name of the validity field [`Schema::parse`] appends for nullable fields.
pub const VALIDITY_NAME: &str = "_valid";

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
    /// `null_bit: u16` (format version 2; `reserved`, always 0, in version 1).
    pub const F_NULL_BIT: usize = 10;
    /// The version-1 name of [`F_NULL_BIT`].
    pub const F_RESERVED: usize = F_NULL_BIT;
}

/// The unit of a [`FieldType::Timestamp`]: an `i64` count of these since
/// 1970-01-01T00:00:00Z (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl TimeUnit {
    /// All units, in type-code order.
    pub const ALL: [TimeUnit; 4] = [
        TimeUnit::Seconds,
        TimeUnit::Millis,
        TimeUnit::Micros,
        TimeUnit::Nanos,
    ];

    /// The spec suffix: `s`, `ms`, `us`, `ns` (as in `timestamp[ms]`).
    pub const fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "s",
            TimeUnit::Millis => "ms",
            TimeUnit::Micros => "us",
            TimeUnit::Nanos => "ns",
        }
    }

    pub fn from_suffix(s: &str) -> Option<TimeUnit> {
        TimeUnit::ALL.into_iter().find(|u| u.suffix() == s)
    }
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
    /// Format version 2: an `i64` count of `TimeUnit`s since the Unix epoch,
    /// UTC (`timestamp[ms]`). One value per field.
    Timestamp(TimeUnit),
    /// Format version 2: an `i32` count of days since 1970-01-01 (`date`).
    /// One value per field.
    Date,
    /// Format version 2: the validity bitmap of the nullable fields
    /// (`validity[N]`, N bytes). At most one per schema, present exactly
    /// when some field is nullable; see [`Field::nullable`].
    Validity,
}

impl FieldType {
    /// All types, in code order.
    pub const ALL: [FieldType; 19] = [
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
        FieldType::Timestamp(TimeUnit::Seconds),
        FieldType::Timestamp(TimeUnit::Millis),
        FieldType::Timestamp(TimeUnit::Micros),
        FieldType::Timestamp(TimeUnit::Nanos),
        FieldType::Date,
        FieldType::Validity,
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
            FieldType::Timestamp(TimeUnit::Seconds) => 14,
            FieldType::Timestamp(TimeUnit::Millis) => 15,
            FieldType::Timestamp(TimeUnit::Micros) => 16,
            FieldType::Timestamp(TimeUnit::Nanos) => 17,
            FieldType::Date => 18,
            FieldType::Validity => 19,
        }
    }

    pub fn from_code(code: u8) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Size (and alignment) of one element in bytes.
    pub const fn elem_size(self) -> u32 {
        match self {
            FieldType::U8
            | FieldType::I8
            | FieldType::Bool
            | FieldType::Bytes
            | FieldType::Str
            | FieldType::Validity => 1,
            FieldType::U16 | FieldType::I16 => 2,
            FieldType::U32 | FieldType::I32 | FieldType::F32 | FieldType::Date => 4,
            FieldType::U64 | FieldType::I64 | FieldType::F64 | FieldType::Timestamp(_) => 8,
        }
    }

    /// The spec name (`u32`, `str`, `timestamp[ms]`, …).
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
            FieldType::Timestamp(TimeUnit::Seconds) => "timestamp[s]",
            FieldType::Timestamp(TimeUnit::Millis) => "timestamp[ms]",
            FieldType::Timestamp(TimeUnit::Micros) => "timestamp[us]",
            FieldType::Timestamp(TimeUnit::Nanos) => "timestamp[ns]",
            FieldType::Date => "date",
            FieldType::Validity => "validity",
        }
    }

    pub fn from_name(s: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// `bytes`, `str` and `validity` are always written with a length (`str[16]`).
    pub const fn needs_len(self) -> bool {
        matches!(
            self,
            FieldType::Bytes | FieldType::Str | FieldType::Validity
        )
    }

    /// Types whose fields hold exactly one value (`count` must be 1).
    pub const fn single_value(self) -> bool {
        matches!(
            self,
            FieldType::Bool | FieldType::Timestamp(_) | FieldType::Date
        )
    }

    /// The oldest format version with this type: 1 for codes 1–13, 2 after.
    pub const fn min_format_version(self) -> u32 {
        if self.code() <= 13 {
            1
        } else {
            2
        }
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
    /// Format version 2: `Some(b)` if the field is nullable, its validity
    /// bit being bit `b` (0-based, `<= 65534`) of the schema's
    /// [`FieldType::Validity`] field; `None` if it always holds a value.
    /// On disk this is the entry's `null_bit`: `b + 1`, or 0 for `None`.
    pub nullable: Option<u16>,
}

impl Field {
    /// A field that is not nullable.
    pub fn new(name: impl Into<String>, ty: FieldType, count: u32, offset: u32) -> Field {
        Field {
            name: name.into(),
            ty,
            count,
            offset,
            nullable: None,
        }
    }

    /// The same field, nullable with validity bit `bit` (see [`Field::nullable`]).
    pub fn with_null_bit(mut self, bit: u16) -> Field {
        self.nullable = Some(bit);
        self
    }

    /// True if the field may be null.
    pub fn is_nullable(&self) -> bool {
        self.nullable.is_some()
    }

    /// The entry's on-disk `null_bit` (0 = not nullable, `b + 1` for bit `b`).
    /// `None` for a bit that cannot be encoded (65535).
    pub fn null_bit_code(&self) -> Option<u16> {
        match self.nullable {
            None => Some(0),
            Some(b) => b.checked_add(1),
        }
    }

    /// Size of the field in bytes.
    pub fn size(&self) -> u32 {
        self.ty.elem_size() * self.count
    }

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
            if f.ty.single_value() && f.count != 1 {
                return Err(field_err(
                    &f.name,
                    format!("{} fields hold one value (count 1)", f.ty.name()),
                ));
            }
            if let Some(b) = f.nullable {
                if f.ty == FieldType::Validity {
                    return Err(field_err(
                        &f.name,
                        "the validity field cannot itself be nullable",
                    ));
                }
                if f.null_bit_code().is_none() {
                    return Err(field_err(
                        &f.name,
                        format!("validity bit {b} cannot be encoded (at most 65534)"),
                    ));
                }
                if let Some(g) = self.fields[..i].iter().find(|g| g.nullable == Some(b)) {
                    return Err(field_err(
                        &f.name,
                        format!("validity bit {b} is also the bit of field {:?}", g.name),
                    ));
                }
            }
            if f.ty == FieldType::Validity {
                if let Some(g) = self.fields[..i]
                    .iter()
                    .find(|g| g.ty == FieldType::Validity)
                {
                    return Err(field_err(
                        &f.name,
                        format!("a second validity field (the first is {:?})", g.name),
                    ));
                }
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
        self.validate_nulls()?;
        if self.encoded_len() > MAX_SCHEMA_LEN as usize {
            return Err(SchemaError::Block(format!(
                "{} bytes encoded, more than {MAX_SCHEMA_LEN}",
                self.encoded_len()
            )));
        }
        Ok(())
    }

    /// The validity field exists iff some field is nullable, and holds
    /// every field's bit (the per-field checks are in `validate`).
    fn validate_nulls(&self) -> Result<(), SchemaError> {
        let first_nullable = self.fields.iter().find(|f| f.is_nullable());
        match (self.validity_field(), first_nullable) {
            (None, None) => Ok(()),
            (Some(v), None) => Err(field_err(&v.name, "a validity field but no nullable field")),
            (None, Some(f)) => Err(field_err(
                &f.name,
                "is nullable but the schema has no validity field",
            )),
            (Some(v), Some(_)) => {
                let bits = v.count as u64 * 8;
                match self
                    .fields
                    .iter()
                    .find(|f| f.nullable.is_some_and(|b| b as u64 >= bits))
                {
                    Some(f) => Err(field_err(
                        &f.name,
                        format!(
                            "validity bit {} is past the {}-byte validity field {:?}",
                            f.nullable.unwrap_or_default(),
                            v.count,
                            v.name
                        ),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// The validity field (`validity[N]`), if the schema has nullable fields.
    pub fn validity_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.ty == FieldType::Validity)
    }

    /// Where field `f`'s validity bit lives: (byte offset in the record,
    /// mask). `None` if `f` is not nullable or the schema has no validity
    /// field. The value is present when `record[offset] & mask != 0`.
    pub fn validity_bit(&self, f: &Field) -> Option<(u32, u8)> {
        let b = f.nullable?;
        let v = self.validity_field()?;
        Some((v.offset + b as u32 / 8, 1u8 << (b % 8)))
    }

    /// The oldest format version that can hold this schema: 2 if any field
    /// is nullable or has a type code above 13, else 1.
    pub fn min_format_version(&self) -> u32 {
        self.fields
            .iter()
            .map(|f| f.ty.min_format_version().max(1 + f.is_nullable() as u32))
            .max()
            .unwrap_or(1)
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
            let null_bit = f.null_bit_code().unwrap_or(0);
            b[at + block::F_NULL_BIT..at + block::F_NULL_BIT + 2]
                .copy_from_slice(&null_bit.to_le_bytes());
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
            // 0 in every version-1 entry: not nullable.
            let null_bit =
                u16::from_le_bytes([b[at + block::F_NULL_BIT], b[at + block::F_NULL_BIT + 1]]);
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
                nullable: null_bit.checked_sub(1),
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

    /// Parses a spec like `id:u64,x:f64,name:str[16],t:timestamp[ms],d:f32?`.
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

    /// The fixture's schema block, as the version-1 writer encoded it.
    fn v1_fixture_block() -> &'static [u8] {
        let file: &[u8] = include_bytes!("../tests/fixtures/v1/small.rmap");
        let len = u32::from_le_bytes(file[80..84].try_into().unwrap()) as usize;
        &file[4096..4096 + len]
    }

    #[test]
    fn every_v1_type_roundtrips() {
        for t in &FieldType::ALL[..13] {
            assert_eq!(t.min_format_version(), 1);
            let spec = if t.needs_len() {
                format!("x:{}[3]", t.name())
            } else {
                format!("x:{}", t.name())
            };
            let s = Schema::parse(&spec).unwrap();
            assert_eq!(s.spec(), spec);
            assert_eq!(s.fields[0].ty, *t);
            assert_eq!(s.fields[0].nullable, None);
            assert_eq!(s.min_format_version(), 1);
            let b = s.encode();
            assert_eq!(b[SCHEMA_HEADER_LEN + block::F_TYPE], t.code());
            assert_eq!(b[SCHEMA_HEADER_LEN + 10..SCHEMA_HEADER_LEN + 12], [0, 0]);
            assert_eq!(Schema::decode(&b).unwrap(), s);
        }
        // The codes of docs/format.md, "Type codes".
        let codes: Vec<u8> = FieldType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, (1..=19).collect::<Vec<u8>>());
        for c in [0, 20, 255] {
            assert_eq!(FieldType::from_code(c), None);
        }
        for t in FieldType::ALL {
            assert_eq!(FieldType::from_code(t.code()), Some(t));
            assert_eq!(FieldType::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn v1_blocks_decode_as_not_nullable() {
        // Written by the version-1 code (tests/fixtures/v1): bytes 10..12
        // of every entry are the reserved zero.
        let b = v1_fixture_block();
        let s = Schema::decode(b).unwrap();
        assert_eq!(
            s.spec(),
            "id:u64,value:f64,count:u32,flag:bool,_pad:bytes[3]"
        );
        assert!(s.fields.iter().all(|f| f.nullable.is_none()));
        assert_eq!(s.validity_field(), None);
        assert_eq!(s.min_format_version(), 1);
        // Encoding it again gives the same bytes.
        assert_eq!(s.encode(), b);
        // A hand-made v1 block: one u32 field "n" at offset 0.
        let mut h = b"RSCH".to_vec();
        for v in [4u32, 4, 1, 0, 1] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h.extend_from_slice(&[3, 1, 0, 0, b'n', 0, 0, 0]);
        let s = Schema::decode(&h).unwrap();
        assert_eq!(s.fields, vec![Field::new("n", FieldType::U32, 1, 0)]);
    }

    #[test]
    fn v2_spec_and_block_roundtrip() {
        let s = Schema::parse(
            "flight:u32, dep: timestamp[s], arr:timestamp[ms]?, t_us:timestamp[us], \
             t_ns:timestamp[ns]?, day:date, dep_delay: f32?, tail:str[6]?",
        )
        .unwrap();
        let layout: Vec<(&str, FieldType, u32, u32, Option<u16>)> = s
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.ty, f.count, f.offset, f.nullable))
            .collect();
        use FieldType::*;
        use TimeUnit::*;
        assert_eq!(
            layout,
            vec![
                ("flight", U32, 1, 0, None),
                ("dep", Timestamp(Seconds), 1, 8, None),
                ("arr", Timestamp(Millis), 1, 16, Some(0)),
                ("t_us", Timestamp(Micros), 1, 24, None),
                ("t_ns", Timestamp(Nanos), 1, 32, Some(1)),
                ("day", Date, 1, 40, None),
                ("dep_delay", F32, 1, 44, Some(2)),
                ("tail", Str, 6, 48, Some(3)),
                ("_valid", Validity, 1, 54, None),
            ]
        );
        assert_eq!((s.record_size, s.record_align), (56, 8));
        assert_eq!(s.min_format_version(), 2);
        let spec = "flight:u32,dep:timestamp[s],arr:timestamp[ms]?,t_us:timestamp[us],\
                    t_ns:timestamp[ns]?,day:date,dep_delay:f32?,tail:str[6]?,_valid:validity[1]";
        assert_eq!(s.spec(), spec);
        assert_eq!(Schema::parse(spec).unwrap(), s);
        let shown = s.to_string();
        assert!(shown.contains("arr: timestamp[ms]? @16 bit 0"), "{shown}");
        assert!(shown.contains("_valid: validity[1] @54 }"), "{shown}");
        assert_eq!(s.validity_bit(&s.fields[7]), Some((54, 1 << 3)));
        assert_eq!(s.validity_bit(&s.fields[0]), None);
        // On disk: null_bit = bit + 1, type codes 14..=19.
        let b = s.encode();
        let mut at = SCHEMA_HEADER_LEN;
        let mut entries = Vec::new();
        for f in &s.fields {
            let nb = u16::from_le_bytes([b[at + 10], b[at + 11]]);
            entries.push((b[at + block::F_TYPE], nb));
            at += Schema::entry_len(f);
        }
        assert_eq!(
            entries,
            vec![
                (3, 0),
                (14, 0),
                (15, 1),
                (16, 0),
                (17, 2),
                (18, 0),
                (9, 3),
                (13, 4),
                (19, 0)
            ]
        );
        assert_eq!(Schema::decode(&b).unwrap(), s);

        // Nine nullable fields: a two-byte bitmap; bit 8 is byte 1, mask 1.
        let spec: Vec<String> = (0..9).map(|i| format!("f{i}:u8?")).collect();
        let s = Schema::parse(&spec.join(",")).unwrap();
        let v = s.validity_field().unwrap();
        assert_eq!((v.name.as_str(), v.count, v.offset), ("_valid", 2, 9));
        assert_eq!(s.validity_bit(&s.fields[8]), Some((10, 1)));
        assert_eq!(Schema::parse(&s.spec()).unwrap(), s);
        assert_eq!(Schema::decode(&s.encode()).unwrap(), s);

        // A declared validity field is used where it is written.
        let s = Schema::parse("ok:validity[2],x:f64?").unwrap();
        assert_eq!(s.fields[0], Field::new("ok", Validity, 2, 0));
        assert_eq!(s.fields[1], Field::new("x", F64, 1, 8).with_null_bit(0));
        assert_eq!(s.fields.len(), 2);
        assert_eq!(Schema::parse(&s.spec()).unwrap(), s);

        // Built by hand with any bit order, the block still round-trips.
        let s = Schema {
            record_size: 16,
            record_align: 8,
            fields: vec![
                Field::new("a", I64, 1, 0).with_null_bit(5),
                Field::new("b", Date, 1, 8).with_null_bit(0),
                Field::new("v", Validity, 1, 12),
            ],
        };
        s.validate().unwrap();
        assert_eq!(Schema::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn v2_validation_errors() {
        use FieldType::*;
        let base = |fields: Vec<Field>| Schema {
            record_size: 16,
            record_align: 8,
            fields,
        };
        let reason = |s: &Schema| match s.validate() {
            Err(SchemaError::Field { field, reason }) => format!("{field}: {reason}"),
            r => panic!("{s:?} gave {r:?}"),
        };
        let x = || Field::new("x", F32, 1, 0);
        let y = || Field::new("y", F32, 1, 4);
        let v = |count| Field::new("v", Validity, count, 8);
        let cases = [
            // A nullable field needs the validity field...
            (
                vec![x().with_null_bit(0)],
                "x: is nullable but the schema has no validity field",
            ),
            // ...and the validity field needs a nullable field.
            (vec![x(), v(1)], "v: a validity field but no nullable field"),
            // Bits are unique.
            (
                vec![x().with_null_bit(3), y().with_null_bit(3), v(1)],
                "y: validity bit 3 is also the bit of field \"x\"",
            ),
            // Bits lie within the bitmap.
            (
                vec![x().with_null_bit(8), v(1)],
                "x: validity bit 8 is past the 1-byte validity field \"v\"",
            ),
            // The validity field is not nullable.
            (
                vec![x().with_null_bit(0), v(1).with_null_bit(1)],
                "v: the validity field cannot itself be nullable",
            ),
            // At most one validity field.
            (
                vec![x().with_null_bit(0), Field::new("w", Validity, 1, 4), v(1)],
                "v: a second validity field (the first is \"w\")",
            ),
            // Bit 65535 has no null_bit code.
            (
                vec![x().with_null_bit(u16::MAX), v(4)],
                "x: validity bit 65535 cannot be encoded (at most 65534)",
            ),
            // Timestamps and dates hold one value.
            (
                vec![Field::new("t", Timestamp(TimeUnit::Nanos), 2, 0)],
                "t: timestamp[ns] fields hold one value (count 1)",
            ),
            (
                vec![Field::new("d", Date, 2, 0)],
                "d: date fields hold one value (count 1)",
            ),
        ];
        for (fields, want) in cases {
            assert_eq!(reason(&base(fields)), want);
        }
        // The largest encodable bit, with a bitmap that holds it.
        let big = Schema {
            record_size: 8200,
            record_align: 8,
            fields: vec![
                Field::new("x", U8, 1, 0).with_null_bit(u16::MAX - 1),
                Field::new("v", Validity, 8192, 8),
            ],
        };
        big.validate().unwrap();
        assert_eq!(Schema::decode(&big.encode()).unwrap(), big);

        // The same rules reject blocks: a null_bit past the bitmap, and a
        // null_bit on a v1-style block without a validity field.
        let s = Schema::parse("x:f32?").unwrap();
        let mut b = s.encode();
        b[SCHEMA_HEADER_LEN + 10] = 9; // bit 8 of a 1-byte bitmap
        assert!(Schema::decode(&b).is_err());
        let mut b = Schema::parse("x:f32").unwrap().encode();
        b[SCHEMA_HEADER_LEN + 10] = 1;
        assert!(matches!(
            Schema::decode(&b),
            Err(SchemaError::Field { ref reason, .. }) if reason.contains("no validity field")
        ));
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
