//! The schema block codec: [`Schema`] to and from the bytes stored after
//! the header (`docs/format.md`, "Schema block"). Pure bytes, no I/O.
//!
//! Invariants: `encode` is given a valid schema and writes exactly
//! `encoded_len` bytes, each entry padded with zeros to a multiple of 4;
//! `decode` accepts only a block of exactly that shape and returns only a
//! schema that passed [`Schema::validate`]. It never panics on any input
//! and bounds its allocation by the block's length. A version-1 entry's
//! reserved bytes (0) decode as "not nullable", so v1 blocks decode as is.

use super::{Field, FieldType, Schema, SchemaError};
use crate::format::{rd_u32, wr_u32};

/// Magic at the start of the schema block.
pub const SCHEMA_MAGIC: [u8; 4] = *b"RSCH";
/// Bytes before the first field entry.
pub const SCHEMA_HEADER_LEN: usize = 16;
/// Fixed bytes of a field entry before its name.
pub const FIELD_ENTRY_LEN: usize = 12;

/// Field offsets inside the schema block header (from the block's start)
/// and inside a field entry (`F_*`, from the entry's start), in bytes
/// (`docs/format.md`, Schema block). Integers are little-endian.
pub mod block {
    /// Block magic, 4 bytes: [`SCHEMA_MAGIC`](super::SCHEMA_MAGIC) (`"RSCH"`).
    pub const MAGIC: usize = 0;
    /// `record_size`, u32: equals the header's.
    pub const RECORD_SIZE: usize = 4;
    /// `record_align`, u32: equals the header's.
    pub const RECORD_ALIGN: usize = 8;
    /// `field_count`, u32: field entries that follow (0 allowed: opaque
    /// records).
    pub const FIELD_COUNT: usize = 12;
    /// Entry `offset`, u32: the field's byte offset in the record, a
    /// multiple of its element size.
    pub const F_OFFSET: usize = 0;
    /// Entry `count`, u32: elements, `>= 1`.
    pub const F_COUNT: usize = 4;
    /// Entry `type`, u8: a type code (1 ..= 19; version 1: 1 ..= 13).
    pub const F_TYPE: usize = 8;
    /// Entry `name_len`, u8: bytes of the name that follows the entry's
    /// 12 fixed bytes, `1 ..= 64`.
    pub const F_NAME_LEN: usize = 9;
    /// `null_bit: u16` (format version 2; `reserved`, always 0, in version 1).
    pub const F_NULL_BIT: usize = 10;
    /// The version-1 name of [`F_NULL_BIT`].
    pub const F_RESERVED: usize = F_NULL_BIT;
}

impl Schema {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TimeUnit;

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
        let file: &[u8] = include_bytes!("../../tests/fixtures/v1/small.rmap");
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
}
