//! The header slot codec: [`Header`] to and from the bytes of one of the
//! two slots on the header page (`docs/format.md`, "Header slot"), the
//! slot CRCs, a version-1 checked commit's group list, and [`choose_slot`]
//! ("Choosing a slot"). Pure bytes, no I/O.
//!
//! Invariants: [`Header::encode`] writes version 2 only, with both the
//! `prefix_crc` over bytes `0..124` and the `slot_crc`; [`Header::decode`]
//! reads versions 1 and 2, never panics on any input, and returns only a
//! header whose every field is in range and consistent with the values
//! derived from the others (packing and layout from the record size and
//! capacity, slot index from `header_seq`). A slot that fails any check is
//! an error, so [`choose_slot`] falls back to the other slot.

use super::{
    rd_u32, rd_u64, slot, wr_u32, wr_u64, Layout, Packing, BYTE_ORDER_MARK, CHUNK_GRANULARITY,
    FLAG_CHECKED, FORMAT_V1, FORMAT_VERSION, KNOWN_FLAGS, KNOWN_FLAGS_V1, LIST_CARRIED,
    LIST_ENTRY_LEN, MAGIC, MAX_CHUNK_SIZE, MAX_GENERATION, MAX_LISTED_GROUPS, MAX_RECORD_SIZE,
    MAX_SCHEMA_LEN, PAGE_SIZE, SCHEMA_OFFSET, SLOT_LEN, SLOT_LEN_V1,
};
use std::fmt;

/// The version-2 `slot_crc` of a slot's bytes `b` (at least `SLOT_LEN`):
/// CRC32 of bytes `0..124` followed by bytes `128..252`. The `prefix_crc`
/// at 124 is left out so that bytes `0..124` are covered by two independent
/// checks (a CRC over a message followed by its own CRC is a constant, so
/// including it would make `slot_crc` blind to them).
pub fn slot_crc_v2(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..slot::CRC]);
    h.update(&b[slot::HEADER_SEQ..slot::V2_CRC]);
    h.finalize()
}

/// The decoded contents of one header slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The slot's format version (`FORMAT_V1` or `FORMAT_VERSION`).
    pub version: u32,
    /// Counts header publications (checkpoints, growth, repair); picks the
    /// slot (`header_seq % 2`) and the newest valid slot. Version 1: the
    /// generation.
    pub header_seq: u64,
    /// Random, non-zero, fixed for the file's life; every log frame carries
    /// it, so a log that belongs to another file is never replayed.
    /// Version 1: 0.
    pub store_id: u64,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Bytes per record, `1 ..= MAX_RECORD_SIZE` (16 MiB).
    pub record_size: u32,
    /// Alignment of a record: a power of two, at most `PAGE_SIZE`, that
    /// divides `record_size`.
    pub record_align: u32,
    /// The growth unit asked for at creation: a multiple of
    /// `CHUNK_GRANULARITY` (64 KiB), at most `MAX_CHUNK_SIZE` (1 TiB).
    /// Lengths are rounded to [`growth_unit`](super::growth_unit) of it.
    pub chunk_size: u64,
    /// The last commit this header includes. Commits after it live in the
    /// log until a checkpoint publishes a header that includes them.
    pub generation: u64,
    /// Records committed as of `generation`, `<= capacity`.
    pub record_count: u64,
    /// Records the data region holds: `layout.capacity()`, a multiple of
    /// the records per group.
    pub capacity: u64,
    /// Bytes of the schema block, `16 ..= MAX_SCHEMA_LEN`.
    pub schema_len: u32,
    /// CRC32 of the schema block's `schema_len` bytes.
    pub schema_crc: u32,
    /// CRC32 of the committed records of the last, partly filled group
    /// (`record_count % records_per_page` records); 0 when there is none.
    /// It lives in the header so it changes atomically with the count.
    pub tail_crc: u32,
    /// Entries in the group list that follows the slot (`FLAG_CHECKED` only).
    pub list_len: u16,
    /// CRC32 of the group list's `list_len * 12` bytes (0 without a list).
    pub list_crc: u32,
    /// Where everything lives, derived from `record_size`, `schema_len`
    /// and `capacity`; the slot's `data_offset`, `table_offset` and
    /// `table_len` must equal it.
    pub layout: Layout,
}

/// Encodes a checked commit's group list (groups in increasing order, each
/// with its checksum, carried ones with `LIST_CARRIED` set in the group) as
/// it follows the slot on disk.
pub fn encode_list(list: &[(u64, u32)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(list.len() * LIST_ENTRY_LEN);
    for &(g, crc) in list {
        b.extend_from_slice(&g.to_le_bytes());
        b.extend_from_slice(&crc.to_le_bytes());
    }
    b
}

/// Decodes the group list of a header decoded from `b` (the bytes from the
/// slot's start, as passed to `Header::decode`, which already checked it).
pub fn decode_list(b: &[u8], h: &Header) -> Vec<(u64, u32)> {
    let n = h.list_len as usize;
    b.get(SLOT_LEN_V1..SLOT_LEN_V1 + n * LIST_ENTRY_LEN)
        .map(|l| {
            l.chunks_exact(LIST_ENTRY_LEN)
                .map(|e| (rd_u64(e, 0), rd_u32(e, 8)))
                .collect()
        })
        .unwrap_or_default()
}

/// Why a header slot was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// The slot is all zeros (never written).
    Empty,
    /// The magic bytes are not recmap's.
    BadMagic {
        /// The slot's first 8 bytes.
        found: [u8; 8],
    },
    /// The slot's CRC does not match its contents (torn or corrupt): the
    /// `prefix_crc` at 124, or for version 2 the `slot_crc` at 252.
    ChecksumMismatch {
        /// The CRC32 stored in the slot.
        expected: u32,
        /// The CRC32 of the bytes it covers, as read.
        got: u32,
    },
    /// The byte-order mark says the file was written with another byte order.
    WrongByteOrder {
        /// The mark as read (little-endian); `0x04030201` for a big-endian
        /// writer.
        found: u32,
    },
    /// A newer (or unknown) format version.
    UnsupportedVersion {
        /// The slot's `format_version`.
        found: u32,
    },
    /// A checked commit (one sync) whose data did not all reach the disk:
    /// the listed or tail group `group` does not match its checksum.
    IncompleteCommit {
        /// The first group found not to match.
        group: u64,
    },
    /// A field holds a value outside its valid range.
    BadField {
        /// The field's name in `docs/format.md` (`"chunk_size"`, …), or
        /// `"slot"` for a slot too short to decode.
        field: &'static str,
        /// The value it holds (the length, for a short slot).
        value: u64,
        /// The rule the value breaks, for the message.
        reason: &'static str,
    },
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::Empty => write!(f, "empty (never written)"),
            SlotError::BadMagic { found } => write!(f, "bad magic {found:02x?}"),
            SlotError::ChecksumMismatch { expected, got } => {
                write!(
                    f,
                    "checksum mismatch: stored {expected:#010x}, computed {got:#010x}"
                )
            }
            SlotError::WrongByteOrder { found } => {
                write!(
                    f,
                    "byte-order mark {found:#010x}, expected {BYTE_ORDER_MARK:#010x}"
                )
            }
            SlotError::UnsupportedVersion { found } => {
                write!(
                    f,
                    "format version {found}, this build reads {FORMAT_V1} and {FORMAT_VERSION}"
                )
            }
            SlotError::IncompleteCommit { group } => write!(
                f,
                "checked commit interrupted: group {group} did not reach the disk"
            ),
            SlotError::BadField {
                field,
                value,
                reason,
            } => {
                write!(f, "field {field} = {value}: {reason}")
            }
        }
    }
}

fn bad(field: &'static str, value: u64, reason: &'static str) -> SlotError {
    SlotError::BadField {
        field,
        value,
        reason,
    }
}

impl Header {
    /// The fields both versions share (bytes `0..124`).
    fn encode_prefix(&self, b: &mut [u8], version: u32) {
        let p = self.layout.packing;
        b[slot::MAGIC..slot::MAGIC + 8].copy_from_slice(&MAGIC);
        wr_u32(b, slot::FORMAT_VERSION, version);
        wr_u32(b, slot::BYTE_ORDER_MARK, BYTE_ORDER_MARK);
        wr_u32(b, slot::PAGE_SIZE, PAGE_SIZE as u32);
        wr_u32(b, slot::FLAGS, self.flags);
        wr_u32(b, slot::RECORD_SIZE, self.record_size);
        wr_u32(b, slot::RECORD_ALIGN, self.record_align);
        wr_u32(b, slot::RECORDS_PER_PAGE, p.records_per_group as u32);
        wr_u32(b, slot::PAGES_PER_GROUP, p.pages_per_group as u32);
        wr_u64(b, slot::CHUNK_SIZE, self.chunk_size);
        wr_u64(b, slot::GENERATION, self.generation);
        wr_u64(b, slot::RECORD_COUNT, self.record_count);
        wr_u64(b, slot::CAPACITY, self.capacity);
        wr_u64(b, slot::SCHEMA_OFFSET, SCHEMA_OFFSET);
        wr_u32(b, slot::SCHEMA_LEN, self.schema_len);
        wr_u32(b, slot::SCHEMA_CRC, self.schema_crc);
        wr_u64(b, slot::DATA_OFFSET, self.layout.data_offset);
        wr_u64(b, slot::TABLE_OFFSET, self.layout.table_offset);
        wr_u64(b, slot::TABLE_LEN, self.layout.table_len);
        wr_u32(b, slot::TAIL_CRC, self.tail_crc);
    }

    /// Encodes a version-2 slot (with both CRCs) into `SLOT_LEN` bytes.
    /// `version`, `list_len` and `list_crc` are not written (version 2
    /// has no group list).
    pub fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        self.encode_prefix(&mut b, FORMAT_VERSION);
        let crc = crc32fast::hash(&b[..slot::CRC]);
        wr_u32(&mut b, slot::CRC, crc);
        wr_u64(&mut b, slot::HEADER_SEQ, self.header_seq);
        wr_u64(&mut b, slot::STORE_ID, self.store_id);
        let crc = slot_crc_v2(&b);
        wr_u32(&mut b, slot::V2_CRC, crc);
        b
    }

    /// Encodes a version-1 slot (tests and fixtures: this crate never
    /// writes version 1). Its slot index is `generation % 2`.
    #[doc(hidden)]
    pub fn encode_v1(&self) -> [u8; SLOT_LEN_V1] {
        let mut b = [0u8; SLOT_LEN_V1];
        self.encode_prefix(&mut b, FORMAT_V1);
        b[slot::LIST_LEN..slot::LIST_LEN + 2].copy_from_slice(&self.list_len.to_le_bytes());
        wr_u32(&mut b, slot::LIST_CRC, self.list_crc);
        let crc = crc32fast::hash(&b[..slot::CRC]);
        wr_u32(&mut b, slot::CRC, crc);
        b
    }

    /// The slot index this header is written to (and was read from).
    pub fn slot_index(&self) -> usize {
        (self.header_seq % 2) as usize
    }

    /// Decodes and validates the slot found at index `slot_index`.
    ///
    /// Every field is checked against its valid range and against the values
    /// derived from the others, so a decoded header is internally consistent.
    ///
    /// `b` may extend past the slot (up to the end of the header page): a
    /// version-1 checked commit's group list follows the slot and is checked too.
    pub fn decode(b: &[u8], slot_index: usize) -> Result<Header, SlotError> {
        let whole = b;
        let Some(b) = b.get(..SLOT_LEN_V1) else {
            return Err(bad("slot", b.len() as u64, "shorter than 128 bytes"));
        };
        if b.iter().all(|&x| x == 0) && whole.iter().take(SLOT_LEN).all(|&x| x == 0) {
            return Err(SlotError::Empty);
        }
        let magic: [u8; 8] = b[..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(SlotError::BadMagic { found: magic });
        }
        let expected = rd_u32(b, slot::CRC);
        let got = crc32fast::hash(&b[..slot::CRC]);
        if expected != got {
            return Err(SlotError::ChecksumMismatch { expected, got });
        }
        let bom = rd_u32(b, slot::BYTE_ORDER_MARK);
        if bom != BYTE_ORDER_MARK {
            return Err(SlotError::WrongByteOrder { found: bom });
        }
        let version = rd_u32(b, slot::FORMAT_VERSION);
        let (header_seq, store_id, known) = match version {
            FORMAT_V1 => (rd_u64(b, slot::GENERATION), 0, KNOWN_FLAGS_V1),
            FORMAT_VERSION => {
                let Some(v2) = whole.get(..SLOT_LEN) else {
                    return Err(bad("slot", whole.len() as u64, "shorter than 256 bytes"));
                };
                let expected = rd_u32(v2, slot::V2_CRC);
                let got = slot_crc_v2(v2);
                if expected != got {
                    return Err(SlotError::ChecksumMismatch { expected, got });
                }
                if v2[slot::LIST_LEN..slot::CRC].iter().any(|&x| x != 0)
                    || v2[slot::V2_RESERVED..slot::V2_CRC].iter().any(|&x| x != 0)
                {
                    return Err(bad("reserved", 0, "reserved bytes must be zero"));
                }
                let seq = rd_u64(v2, slot::HEADER_SEQ);
                if seq == 0 || seq > MAX_GENERATION || (seq % 2) as usize != slot_index {
                    return Err(bad(
                        "header_seq",
                        seq,
                        "must be 1..=2^62 and match its slot (header_seq % 2)",
                    ));
                }
                let id = rd_u64(v2, slot::STORE_ID);
                if id == 0 {
                    return Err(bad("store_id", 0, "must not be zero"));
                }
                (seq, id, KNOWN_FLAGS)
            }
            found => return Err(SlotError::UnsupportedVersion { found }),
        };
        let page_size = rd_u32(b, slot::PAGE_SIZE) as u64;
        if page_size != PAGE_SIZE {
            return Err(bad("page_size", page_size, "must be 4096"));
        }
        let flags = rd_u32(b, slot::FLAGS);
        if flags & !known != 0 {
            return Err(bad(
                "flags",
                flags as u64,
                "unknown flags (bit 0, append-only; version 1 also bit 1, checked commit)",
            ));
        }
        if version == FORMAT_V1
            && b[slot::RESERVED..slot::RESERVED + slot::RESERVED_LEN]
                .iter()
                .any(|&x| x != 0)
        {
            return Err(bad("reserved", 0, "reserved bytes must be zero"));
        }
        let record_size = rd_u32(b, slot::RECORD_SIZE);
        if record_size == 0 || record_size > MAX_RECORD_SIZE {
            return Err(bad("record_size", record_size as u64, "must be 1..=16 MiB"));
        }
        let record_align = rd_u32(b, slot::RECORD_ALIGN);
        if !record_align.is_power_of_two()
            || record_align as u64 > PAGE_SIZE
            || !record_size.is_multiple_of(record_align)
        {
            return Err(bad(
                "record_align",
                record_align as u64,
                "must be a power of two <= 4096 dividing record_size",
            ));
        }
        let packing = Packing::new(record_size as u64);
        let rpp = rd_u32(b, slot::RECORDS_PER_PAGE) as u64;
        if rpp != packing.records_per_group {
            return Err(bad("records_per_page", rpp, "does not match record_size"));
        }
        let ppg = rd_u32(b, slot::PAGES_PER_GROUP) as u64;
        if ppg != packing.pages_per_group {
            return Err(bad("pages_per_group", ppg, "does not match record_size"));
        }
        let chunk_size = rd_u64(b, slot::CHUNK_SIZE);
        if chunk_size == 0
            || !chunk_size.is_multiple_of(CHUNK_GRANULARITY)
            || chunk_size > MAX_CHUNK_SIZE
        {
            return Err(bad(
                "chunk_size",
                chunk_size,
                "must be a multiple of 64 KiB, <= 1 TiB",
            ));
        }
        let generation = rd_u64(b, slot::GENERATION);
        if generation == 0
            || generation > MAX_GENERATION
            || (version == FORMAT_V1 && (generation % 2) as usize != slot_index)
        {
            return Err(bad(
                "generation",
                generation,
                "must be 1..=2^62 (version 1: and match its slot, generation % 2)",
            ));
        }
        let schema_offset = rd_u64(b, slot::SCHEMA_OFFSET);
        if schema_offset != SCHEMA_OFFSET {
            return Err(bad("schema_offset", schema_offset, "must be 4096"));
        }
        let schema_len = rd_u32(b, slot::SCHEMA_LEN);
        if !(crate::schema::SCHEMA_HEADER_LEN as u32..=MAX_SCHEMA_LEN).contains(&schema_len) {
            return Err(bad("schema_len", schema_len as u64, "must be 16..=65536"));
        }
        let capacity = rd_u64(b, slot::CAPACITY);
        if !capacity.is_multiple_of(packing.records_per_group) {
            return Err(bad(
                "capacity",
                capacity,
                "must be a multiple of records_per_page",
            ));
        }
        let layout = Layout::with_groups(packing, schema_len, capacity / packing.records_per_group)
            .ok_or_else(|| bad("capacity", capacity, "file would exceed 2^60 bytes"))?;
        let record_count = rd_u64(b, slot::RECORD_COUNT);
        if record_count > capacity {
            return Err(bad("record_count", record_count, "exceeds capacity"));
        }
        let tail_crc = rd_u32(b, slot::TAIL_CRC);
        if record_count.is_multiple_of(packing.records_per_group) && tail_crc != 0 {
            return Err(bad(
                "tail_crc",
                tail_crc as u64,
                "must be 0 when the last group is full",
            ));
        }
        let list_len = u16::from_le_bytes([b[slot::LIST_LEN], b[slot::LIST_LEN + 1]]);
        let list_crc = rd_u32(b, slot::LIST_CRC);
        if version != FORMAT_V1 {
            // Version 2 has no group list (bytes checked zero above).
        } else if flags & FLAG_CHECKED == 0 {
            if list_len != 0 || list_crc != 0 {
                return Err(bad(
                    "list_len",
                    list_len as u64,
                    "a group list without the checked-commit flag",
                ));
            }
        } else {
            if list_len as usize > MAX_LISTED_GROUPS {
                return Err(bad("list_len", list_len as u64, "more than 160 groups"));
            }
            let n = list_len as usize * LIST_ENTRY_LEN;
            let Some(list) = whole.get(SLOT_LEN_V1..SLOT_LEN_V1 + n) else {
                return Err(bad(
                    "list_len",
                    list_len as u64,
                    "the group list does not fit after the slot",
                ));
            };
            let got = crc32fast::hash(list);
            if got != list_crc {
                return Err(bad(
                    "list_crc",
                    list_crc as u64,
                    "group list checksum mismatch (torn or corrupt)",
                ));
            }
            // Own entries: groups holding committed records (the partly
            // filled last one included); carried entries: full groups only.
            let full = record_count / packing.records_per_group;
            let groups = record_count.div_ceil(packing.records_per_group);
            let mut prev = None;
            for e in list.chunks_exact(LIST_ENTRY_LEN) {
                let raw = rd_u64(e, 0);
                let g = raw & !LIST_CARRIED;
                let bound = if raw & LIST_CARRIED != 0 {
                    full
                } else {
                    groups
                };
                if g >= bound || prev.is_some_and(|p| g <= p) {
                    return Err(bad(
                        "list",
                        raw,
                        "groups must hold committed records (carried: full groups), in increasing order",
                    ));
                }
                prev = Some(g);
            }
        }
        let data_offset = rd_u64(b, slot::DATA_OFFSET);
        if data_offset != layout.data_offset {
            return Err(bad(
                "data_offset",
                data_offset,
                "does not follow the schema block",
            ));
        }
        let table_offset = rd_u64(b, slot::TABLE_OFFSET);
        if table_offset != layout.table_offset {
            return Err(bad(
                "table_offset",
                table_offset,
                "does not follow the data region",
            ));
        }
        let table_len = rd_u64(b, slot::TABLE_LEN);
        if table_len != layout.table_len {
            return Err(bad("table_len", table_len, "does not match capacity"));
        }
        Ok(Header {
            version,
            header_seq,
            store_id,
            flags,
            record_size,
            record_align,
            chunk_size,
            generation,
            record_count,
            capacity,
            schema_len,
            schema_crc: rd_u32(b, slot::SCHEMA_CRC),
            tail_crc,
            list_len,
            list_crc,
            layout,
        })
    }
}

/// Picks the header to use from the two decoded slots: the valid one with the
/// highest `header_seq` (version 1: generation). Returns the index of the
/// chosen slot.
pub fn choose_slot(slots: &[Result<Header, SlotError>; 2]) -> Option<usize> {
    match (&slots[0], &slots[1]) {
        (Ok(a), Ok(b)) => Some(if a.header_seq > b.header_seq { 0 } else { 1 }),
        (Ok(_), Err(_)) => Some(0),
        (Err(_), Ok(_)) => Some(1),
        (Err(_), Err(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{DEFAULT_CHUNK_SIZE, FLAG_APPEND_ONLY};

    fn sample(generation: u64) -> Header {
        let packing = Packing::new(24);
        let layout = Layout::with_groups(packing, 40, 10).unwrap();
        Header {
            version: FORMAT_VERSION,
            header_seq: generation,
            store_id: 0x5eed_0000_0000_0001,
            flags: FLAG_APPEND_ONLY,
            record_size: 24,
            record_align: 8,
            chunk_size: DEFAULT_CHUNK_SIZE,
            generation,
            record_count: 101,
            capacity: layout.capacity(),
            schema_len: 40,
            schema_crc: 0xdead_beef,
            tail_crc: 0x1234_5678,
            list_len: 0,
            list_crc: 0,
            layout,
        }
    }

    #[test]
    fn header_roundtrip() {
        for g in [1u64, 2, 77, MAX_GENERATION - 1, MAX_GENERATION] {
            let h = sample(g);
            let bytes = h.encode();
            assert_eq!(Header::decode(&bytes, h.slot_index()), Ok(h));
        }
    }

    #[test]
    fn header_rejects_wrong_slot() {
        let h = sample(3);
        assert!(matches!(
            Header::decode(&h.encode(), 0),
            Err(SlotError::BadField {
                field: "header_seq",
                ..
            })
        ));
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let h = sample(5);
        let bytes = h.encode();
        for bit in 0..SLOT_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Header::decode(&b, 1).is_err(),
                "bit {bit} flip not detected"
            );
        }
    }

    /// Re-signs a slot after editing a field, to reach the field validation.
    fn resign(b: &mut [u8; SLOT_LEN]) {
        let crc = crc32fast::hash(&b[..slot::CRC]);
        wr_u32(b, slot::CRC, crc);
        let crc = slot_crc_v2(&b[..]);
        wr_u32(b, slot::V2_CRC, crc);
    }

    /// A version-1 slot as version 1 wrote it (slot index generation % 2).
    fn v1(generation: u64) -> Header {
        Header {
            version: FORMAT_V1,
            header_seq: generation,
            store_id: 0,
            flags: FLAG_APPEND_ONLY,
            ..sample(generation)
        }
    }

    #[test]
    fn v1_slots_still_decode() {
        for g in [1u64, 2, 77] {
            let h = v1(g);
            assert_eq!(Header::decode(&h.encode_v1(), (g % 2) as usize), Ok(h));
        }
        // A version-1 slot whose generation does not match its slot.
        assert!(Header::decode(&v1(3).encode_v1(), 0).is_err());
    }

    #[test]
    fn v2_keeps_a_valid_v1_prefix() {
        // A version-1 reader checks the CRC at 124 over 0..124 first: it
        // must see a valid slot of an unknown version, not a torn one.
        let b = sample(4).encode();
        assert_eq!(rd_u32(&b, slot::CRC), crc32fast::hash(&b[..slot::CRC]));
        assert_eq!(rd_u32(&b, slot::FORMAT_VERSION), 2);
    }

    #[test]
    fn every_field_is_validated() {
        let h = sample(1);
        let cases: &[(usize, u64, bool)] = &[
            (slot::FORMAT_VERSION, 3, false),
            (slot::FORMAT_VERSION, 0, false),
            (slot::HEADER_SEQ, 0, true),
            (slot::HEADER_SEQ, 2, true),
            (slot::STORE_ID, 0, true),
            (slot::V2_RESERVED, 1, true),
            (slot::BYTE_ORDER_MARK, 0x0403_0201, false),
            (slot::PAGE_SIZE, 8192, false),
            (slot::FLAGS, 4, false),
            (slot::FLAGS, FLAG_CHECKED as u64, false),
            (slot::LIST_LEN, 1, false),
            (slot::LIST_CRC, 7, false),
            (slot::RECORD_SIZE, 0, false),
            (slot::RECORD_SIZE, 25, false),
            (slot::RECORD_ALIGN, 3, false),
            (slot::RECORD_ALIGN, 16, false),
            (slot::RECORDS_PER_PAGE, 171, false),
            (slot::PAGES_PER_GROUP, 2, false),
            (slot::CHUNK_SIZE, 1000, false),
            (slot::CHUNK_SIZE, 0, false),
            (slot::CHUNK_SIZE, MAX_CHUNK_SIZE + CHUNK_GRANULARITY, true),
            (slot::CHUNK_SIZE, !0xffff, true),
            (slot::GENERATION, 0, true),
            (slot::GENERATION, MAX_GENERATION + 1, true),
            (slot::RECORD_COUNT, u64::MAX, true),
            (slot::CAPACITY, 171, true),
            (slot::CAPACITY, u64::MAX - 169, true),
            (slot::SCHEMA_OFFSET, 0, true),
            (slot::SCHEMA_LEN, 3, false),
            (slot::SCHEMA_LEN, 1 << 20, false),
            (slot::DATA_OFFSET, 4096, true),
            (slot::TABLE_OFFSET, 12, true),
            (slot::TABLE_LEN, 0, true),
        ];
        for &(at, value, wide) in cases {
            let mut b = h.encode();
            if wide {
                wr_u64(&mut b, at, value);
            } else {
                wr_u32(&mut b, at, value as u32);
            }
            resign(&mut b);
            let r = Header::decode(&b, 1);
            assert!(r.is_err(), "field at {at} = {value} accepted");
        }
        let mut b = h.encode();
        b[slot::RESERVED] = 1;
        resign(&mut b);
        assert!(Header::decode(&b, 1).is_err());
    }

    /// A version-1 checked commit's slot followed by its list, as written to disk.
    fn checked(list: &[(u64, u32)]) -> (Header, Vec<u8>) {
        let mut h = v1(1);
        let l = encode_list(list);
        h.flags |= FLAG_CHECKED;
        h.list_len = list.len() as u16;
        h.list_crc = crc32fast::hash(&l);
        let mut b = h.encode_v1().to_vec();
        b.extend_from_slice(&l);
        (h, b)
    }

    #[test]
    fn checked_commit_list_round_trip_and_damage() {
        // 101 records of 24 bytes: groups 0 (170 records) is not full, so
        // use a header whose count makes groups 0..=2 full.
        let list = [(0u64, 0xaaaa_aaaa), (2 | LIST_CARRIED, 0xbbbb_bbbb), (3, 7)];
        let mut h = v1(1);
        h.record_count = 170 * 3 + 5;
        let l = encode_list(&list);
        h.flags |= FLAG_CHECKED;
        h.list_len = 3;
        h.list_crc = crc32fast::hash(&l);
        let mut b = h.encode_v1().to_vec();
        b.extend_from_slice(&l);
        let d = Header::decode(&b, 1).unwrap();
        assert_eq!(d, h);
        assert_eq!(decode_list(&b, &d), list);
        // The list cut short (a slot read without it) or torn: invalid.
        assert!(Header::decode(&b[..SLOT_LEN_V1 + 24], 1).is_err());
        for bit in 0..l.len() * 8 {
            let mut t = b.clone();
            t[SLOT_LEN_V1 + bit / 8] ^= 1 << (bit % 8);
            assert!(
                Header::decode(&t, 1).is_err(),
                "list bit {bit} flip accepted"
            );
        }
        // Groups must hold committed records (carried ones: be full) and
        // increase, at most 160 of them.
        for bad_list in [
            vec![(2u64, 1u32), (0, 1)],
            vec![(4, 1)],
            vec![(3 | LIST_CARRIED, 1)],
            vec![(1, 1), (1 | LIST_CARRIED, 1)],
        ] {
            let (mut h2, _) = checked(&bad_list);
            h2.record_count = 170 * 3 + 5;
            let l2 = encode_list(&bad_list);
            let mut b2 = h2.encode_v1().to_vec();
            b2.extend_from_slice(&l2);
            assert!(Header::decode(&b2, 1).is_err(), "{bad_list:?} accepted");
        }
        let (mut h3, _) = checked(&[]);
        h3.list_len = MAX_LISTED_GROUPS as u16 + 1;
        let mut b3 = h3.encode_v1().to_vec();
        b3.resize(2048, 0);
        assert!(Header::decode(&b3, 1).is_err());
        // An empty list with the flag (an append into the tail group) is fine.
        let (h4, b4) = checked(&[]);
        assert_eq!(Header::decode(&b4, 1).unwrap(), h4);
    }

    #[test]
    fn choose_highest_valid() {
        let a = Ok(sample(4));
        let b = Ok(sample(5));
        assert_eq!(choose_slot(&[a.clone(), b.clone()]), Some(1));
        assert_eq!(choose_slot(&[a.clone(), Err(SlotError::Empty)]), Some(0));
        assert_eq!(
            choose_slot(&[Err(SlotError::Empty), Err(SlotError::Empty)]),
            None
        );
    }
}
