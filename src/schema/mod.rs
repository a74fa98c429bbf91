//! The record layout stored in every file: field names, types and offsets.
//!
//! Owns the layout types ([`FieldType`], [`TimeUnit`], [`Field`],
//! [`Schema`]), their errors and [`Schema::validate`], the one place the
//! layout rules of `docs/format.md` ("Schema block") are checked. The
//! on-disk block codec lives in `codec`, the textual spec (`name:type,…`)
//! in `spec`; both produce schemas only through `validate`.
//!
//! Invariants of a valid [`Schema`]: fields sorted by offset without
//! overlap, each aligned to its element size and inside the record; names
//! unique and matching `[A-Za-z_][A-Za-z0-9_]{0,63}`; exactly one
//! validity field iff some field is nullable, holding every field's bit;
//! an encoded block no longer than `MAX_SCHEMA_LEN`.

mod codec;
mod spec;

pub use codec::{block, FIELD_ENTRY_LEN, SCHEMA_HEADER_LEN, SCHEMA_MAGIC};
pub use spec::VALIDITY_NAME;

use crate::format::{MAX_RECORD_SIZE, MAX_SCHEMA_LEN, PAGE_SIZE};

/// Longest field name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The name prefix of explicit padding fields (see [`Field::is_padding`]).
pub const PADDING_PREFIX: &str = "_pad";

/// The unit of a [`FieldType::Timestamp`]: an `i64` count of these since
/// 1970-01-01T00:00:00Z (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// Seconds (`timestamp[s]`, type code 14).
    Seconds,
    /// Milliseconds (`timestamp[ms]`, type code 15).
    Millis,
    /// Microseconds (`timestamp[us]`, type code 16).
    Micros,
    /// Nanoseconds (`timestamp[ns]`, type code 17).
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

    /// The unit whose [`suffix`](TimeUnit::suffix) is `s`; `None` for any
    /// other string.
    pub fn from_suffix(s: &str) -> Option<TimeUnit> {
        TimeUnit::ALL.into_iter().find(|u| u.suffix() == s)
    }
}

/// The element type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Unsigned 8-bit integer (`u8`, type code 1).
    U8,
    /// Unsigned 16-bit integer (`u16`, type code 2).
    U16,
    /// Unsigned 32-bit integer (`u32`, type code 3).
    U32,
    /// Unsigned 64-bit integer (`u64`, type code 4).
    U64,
    /// Two's complement 8-bit integer (`i8`, type code 5).
    I8,
    /// Two's complement 16-bit integer (`i16`, type code 6).
    I16,
    /// Two's complement 32-bit integer (`i32`, type code 7).
    I32,
    /// Two's complement 64-bit integer (`i64`, type code 8).
    I64,
    /// IEEE 754 binary32 (`f32`, type code 9).
    F32,
    /// IEEE 754 binary64 (`f64`, type code 10).
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

    /// The type with on-disk type code `code` (1 ..= 19, the table in
    /// `docs/format.md`); `None` for an unknown code.
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

    /// The type whose spec [`name`](FieldType::name) is `s` exactly (`u32`,
    /// `timestamp[ms]`, …; no length suffix); `None` otherwise.
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
    /// The field's name: 1 to 64 bytes matching `[A-Za-z_][A-Za-z0-9_]*`,
    /// unique in the schema.
    pub name: String,
    /// The type of each element.
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

    /// True for an explicit padding field: a `bytes[N]` field whose name
    /// starts with `_pad` (`_pad0: [u8; 2]` in a `record!`). Its bytes carry
    /// no data: the command-line tool expects no input column for it and
    /// writes zeros, and a typed open treats it as the gap it fills.
    pub fn is_padding(&self) -> bool {
        self.ty == FieldType::Bytes && self.name.starts_with(PADDING_PREFIX)
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
}

/// The layout of a record: size, alignment and fields sorted by offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schema {
    /// Bytes per record, `1 ..= MAX_RECORD_SIZE` (16 MiB).
    pub record_size: u32,
    /// Alignment of a record in bytes: a power of two, at most 4096, that
    /// divides `record_size` and is at least every field's element size.
    pub record_align: u32,
    /// The fields in increasing offset order, without overlap; bytes no
    /// field covers are padding. May be empty (opaque records).
    pub fields: Vec<Field>,
}

/// Why a schema (block, spec or Rust description) is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The stored schema block is malformed (bad magic, lengths or padding
    /// that do not add up), or a schema would encode to more than
    /// `MAX_SCHEMA_LEN` bytes. The text says which rule.
    #[error("schema block: {0}")]
    Block(String),
    /// A field breaks a rule: its name (syntax, uniqueness), count,
    /// offset (alignment, overlap, end past the record), or nullability
    /// (validity field and bits).
    #[error("field {field:?}: {reason}")]
    Field {
        /// The field's name (as stored, possibly invalid).
        field: String,
        /// The rule it breaks, for the message.
        reason: String,
    },
    /// The record's size or alignment is out of range (size
    /// `1 ..= MAX_RECORD_SIZE`; alignment a power of two `<= 4096` dividing
    /// the size). The text gives the value.
    #[error("record: {0}")]
    Record(String),
    /// A textual spec could not be parsed; `at` is the byte position in the spec.
    #[error("schema spec at byte {at} ({part:?}): {reason}")]
    Spec {
        /// Byte offset in the spec of the comma-separated part at fault
        /// (0 for the spec as a whole).
        at: usize,
        /// That part of the spec, as written.
        part: String,
        /// What is wrong with it, for the message.
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

    /// Looks a field up by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
