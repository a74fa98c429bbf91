//! The on-disk format as pure bytes: constants, the header slot field
//! offsets, the integer packing helpers and the layout arithmetic (this
//! module), the header slot codec (`header`, re-exported here) and the log
//! frame codec ([`wal`]). No I/O happens here.
//!
//! This crate writes format version 2 and reads versions 1 and 2: a
//! version-1 slot decodes into the same [`Header`] (its `header_seq` is its
//! generation, its `store_id` 0), so one file may hold a version-1 slot and
//! a version-2 slot while it is being upgraded.
//!
//! `docs/format.md` is the contract; every constant and check in this module
//! and its children mirrors a row of its tables. All integers are
//! little-endian.

mod header;

pub use header::{choose_slot, decode_list, encode_list, slot_crc_v2, Header, SlotError};

/// Size of a page. Records are packed into pages of this size and never
/// straddle one (records larger than a page take whole consecutive pages).
pub const PAGE_SIZE: u64 = 4096;
/// File magic: the first 8 bytes of a valid header slot.
pub const MAGIC: [u8; 8] = *b"\x89RECMAP\n";
/// The format version this crate writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this crate reads (upgraded on the first write).
pub const FORMAT_V1: u32 = 1;
/// Written as a little-endian `u32`; a file written big-endian shows `01 02 03 04`.
pub const BYTE_ORDER_MARK: u32 = 0x0102_0304;
/// Byte offsets of the two header slots inside the header page (page 0).
/// They sit in different 512-byte sectors so one torn sector cannot hit both.
pub const SLOT_OFFSETS: [u64; 2] = [0, 2048];
/// Encoded size of one version-2 header slot.
pub const SLOT_LEN: usize = 256;
/// Encoded size of one version-1 header slot (its group list follows it).
pub const SLOT_LEN_V1: usize = 128;
/// Where the schema block starts (page 1).
pub const SCHEMA_OFFSET: u64 = PAGE_SIZE;
/// Largest schema block accepted (bounds allocations when reading hostile files).
pub const MAX_SCHEMA_LEN: u32 = 64 * 1024;
/// Largest record accepted.
pub const MAX_RECORD_SIZE: u32 = 16 * 1024 * 1024;
/// Chunk sizes are multiples of this (Windows' allocation granularity).
pub const CHUNK_GRANULARITY: u64 = 64 * 1024;
/// Largest chunk size accepted.
pub const MAX_CHUNK_SIZE: u64 = 1 << 40;
/// Default chunk size: the file's length is always a multiple of the chunk size.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;
/// Growth and creation round lengths to the chunk size, but to at most this
/// much ([`growth_unit`]): a header's chunk size is not trusted to size a
/// preallocation (a hostile 1 TiB chunk must not make an append allocate a
/// terabyte).
pub const MAX_GROWTH_CHUNK: u64 = 64 << 20;
/// Growth doubles the file, but adds at most this much at once (rounded to chunks).
pub const MAX_GROWTH_STEP: u64 = 1 << 30;
/// Largest file length the layout arithmetic accepts (2^60 bytes).
pub const MAX_FILE_LEN: u64 = 1 << 60;
/// Header flag: committed records are never changed (readers may borrow them).
pub const FLAG_APPEND_ONLY: u32 = 1;
/// Header flag: a *checked commit*, published with a single sync together
/// with its data. The groups it wrote are listed after the slot with their
/// checksums; open validates them before using the header, and falls back to
/// the other slot if any did not reach the disk. The list also carries the
/// checksums of earlier commits whose table entries are not yet written.
pub const FLAG_CHECKED: u32 = 2;
/// Bit of a list entry's group field: a *carried* entry, the checksum of a
/// group an earlier commit wrote (durable since), kept here because its
/// table entry has not been written yet. Open does not read carried groups.
pub const LIST_CARRIED: u64 = 1 << 63;
/// Every flag version 1 defines.
pub const KNOWN_FLAGS_V1: u32 = FLAG_APPEND_ONLY | FLAG_CHECKED;
/// Every flag version 2 defines (checked commits are gone: the log took
/// their place).
pub const KNOWN_FLAGS: u32 = FLAG_APPEND_ONLY;
/// Bytes per entry of a checked commit's group list: group (u64), crc (u32).
pub const LIST_ENTRY_LEN: usize = 12;
/// Most entries a checked commit lists; larger commits use two syncs (and
/// write the table). The list must fit in the slot's half of the header
/// page: (2048 - 128) / 12 = 160.
pub const MAX_LISTED_GROUPS: usize = 160;
/// Largest generation a header may carry; a commit past it is refused, so
/// `generation + 1` never overflows.
pub const MAX_GENERATION: u64 = 1 << 62;
/// Bytes per entry in the page-checksum table.
pub const CHECKSUM_ENTRY_LEN: u64 = 4;

/// Field offsets inside a header slot, in bytes from the slot's start (see
/// the table in `docs/format.md`, Header slot). Integers are little-endian.
pub mod slot {
    /// `magic`, 8 bytes: [`MAGIC`](super::MAGIC).
    pub const MAGIC: usize = 0;
    /// `format_version`, u32: `2`, or `1` for a version-1 slot.
    pub const FORMAT_VERSION: usize = 8;
    /// `byte_order_mark`, u32: must read as
    /// [`BYTE_ORDER_MARK`](super::BYTE_ORDER_MARK).
    pub const BYTE_ORDER_MARK: usize = 12;
    /// `page_size`, u32: must be 4096 ([`PAGE_SIZE`](super::PAGE_SIZE)).
    pub const PAGE_SIZE: usize = 16;
    /// `flags`, u32: [`FLAG_APPEND_ONLY`](super::FLAG_APPEND_ONLY) (and in
    /// version 1 [`FLAG_CHECKED`](super::FLAG_CHECKED)); any other set bit
    /// is rejected.
    pub const FLAGS: usize = 20;
    /// `record_size`, u32: bytes per record, `1 ..= 16 MiB`.
    pub const RECORD_SIZE: usize = 24;
    /// `record_align`, u32: a power of two, `<= 4096`, dividing
    /// `record_size`.
    pub const RECORD_ALIGN: usize = 28;
    /// `records_per_page`, u32: records per group, derived from
    /// `record_size` ([`Packing`](super::Packing)).
    pub const RECORDS_PER_PAGE: usize = 32;
    /// `pages_per_group`, u32: pages per group, derived from `record_size`.
    pub const PAGES_PER_GROUP: usize = 36;
    /// `chunk_size`, u64: the growth unit asked for at creation, a multiple
    /// of 65536 in `65536 ..= 2^40`.
    pub const CHUNK_SIZE: usize = 40;
    /// `generation`, u64: the last commit this header includes,
    /// `1 ..= 2^62`.
    pub const GENERATION: usize = 48;
    /// `record_count`, u64: records committed as of `generation`,
    /// `<= capacity`.
    pub const RECORD_COUNT: usize = 56;
    /// `capacity`, u64: records the data region holds, a multiple of
    /// `records_per_page`.
    pub const CAPACITY: usize = 64;
    /// `schema_offset`, u64: start of the schema block, always 4096.
    pub const SCHEMA_OFFSET: usize = 72;
    /// `schema_len`, u32: bytes of the schema block, `16 ..= 65536`.
    pub const SCHEMA_LEN: usize = 80;
    /// `schema_crc`, u32: CRC32 of the schema block's `schema_len` bytes.
    pub const SCHEMA_CRC: usize = 84;
    /// `data_offset`, u64: start of the data region, derived from
    /// `schema_len` ([`Layout::data_offset_for`](super::Layout::data_offset_for)).
    pub const DATA_OFFSET: usize = 88;
    /// `table_offset`, u64: start of the page-checksum table,
    /// `data_offset + capacity_groups * group_bytes`.
    pub const TABLE_OFFSET: usize = 96;
    /// `table_len`, u64: bytes of the table,
    /// `round_up(capacity_groups * 4, 4096)`.
    pub const TABLE_LEN: usize = 104;
    /// `tail_crc`, u32: CRC32 of the committed records of the partly filled
    /// last group; 0 when `record_count % records_per_page == 0`.
    pub const TAIL_CRC: usize = 112;
    /// Version 1: `list_len`, u16, entries of a checked commit's group list
    /// (`<= 160`). Version 2: the start of 8 reserved zero bytes
    /// (`116..124`).
    pub const LIST_LEN: usize = 116;
    /// Version 1: a reserved u16, zero. Version 2: reserved, zero.
    pub const RESERVED: usize = 118;
    /// Length in bytes of the version-1 reserved field at [`RESERVED`].
    pub const RESERVED_LEN: usize = 2;
    /// Version 1: `list_crc`, u32, the CRC32 of the group list (zero
    /// without `FLAG_CHECKED`). Version 2: reserved, zero.
    pub const LIST_CRC: usize = 120;
    /// Version 1: the slot CRC over `0..124`. Version 2 keeps a CRC of the
    /// same bytes here (`prefix_crc`), so a version-1 reader sees a valid
    /// slot of an unknown version and refuses the file instead of falling
    /// back to an older slot.
    pub const CRC: usize = 124;
    /// Version 2 only, from here on. `header_seq`, u64: counts header
    /// writes (checkpoints, growth, repair), `1 ..= 2^62`;
    /// `header_seq % 2` is the slot index.
    pub const HEADER_SEQ: usize = 128;
    /// `store_id`, u64: random, non-zero, fixed for the file's life; every
    /// log frame carries it.
    pub const STORE_ID: usize = 136;
    /// 108 reserved bytes (`144..252`), all zero.
    pub const V2_RESERVED: usize = 144;
    /// `slot_crc`, u32: CRC32 of bytes `0..124` followed by bytes
    /// `128..252` (`prefix_crc` left out). The slot ends after it, at
    /// [`SLOT_LEN`](super::SLOT_LEN) (256).
    pub const V2_CRC: usize = 252;
}

pub(crate) fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
pub(crate) fn wr_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn wr_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Rounds `v` up to a multiple of `m` (`m > 0`), or `None` on overflow.
pub fn round_up(v: u64, m: u64) -> Option<u64> {
    v.checked_add(m - 1).map(|x| x / m * m)
}

/// How records are packed: derived from the record size alone.
///
/// A *group* is the unit of packing and of checksumming: for records up to
/// 4 KiB it is one page holding `records_per_group` records; a larger record
/// takes a group of `pages_per_group` whole pages to itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Bytes per record, `1 ..= MAX_RECORD_SIZE`.
    pub record_size: u64,
    /// Records per group: `PAGE_SIZE / record_size` for records up to a
    /// page, else 1. Never 0.
    pub records_per_group: u64,
    /// Pages per group: 1 for records up to a page, else
    /// `ceil(record_size / PAGE_SIZE)`.
    pub pages_per_group: u64,
}

impl Packing {
    /// The packing for `record_size` bytes (`1..=MAX_RECORD_SIZE`).
    pub const fn new(record_size: u64) -> Packing {
        if record_size <= PAGE_SIZE {
            Packing {
                record_size,
                records_per_group: PAGE_SIZE / record_size,
                pages_per_group: 1,
            }
        } else {
            Packing {
                record_size,
                records_per_group: 1,
                pages_per_group: record_size.div_ceil(PAGE_SIZE),
            }
        }
    }

    /// Bytes of one group (a multiple of the page size).
    pub const fn group_bytes(&self) -> u64 {
        self.pages_per_group * PAGE_SIZE
    }

    /// Byte offset of record `i` relative to the start of the data region.
    #[inline(always)]
    pub const fn record_offset(&self, i: u64) -> u64 {
        if self.is_dense() {
            // Same value, fewer instructions (and a constant branch for a
            // packing known at compile time).
            i * self.record_size
        } else {
            (i / self.records_per_group) * self.group_bytes()
                + (i % self.records_per_group) * self.record_size
        }
    }

    /// The group holding record `i`.
    #[inline(always)]
    pub const fn group_of(&self, i: u64) -> u64 {
        i / self.records_per_group
    }

    /// Records `[first, end)` of group `g` that lie below `count`.
    pub fn group_records(&self, g: u64, count: u64) -> (u64, u64) {
        let first = g * self.records_per_group;
        let end = (first + self.records_per_group).min(count).max(first);
        (first, end)
    }

    /// True when records follow each other without padding across groups,
    /// so any run of records is contiguous in the file.
    #[inline(always)]
    pub const fn is_dense(&self) -> bool {
        self.records_per_group * self.record_size == self.group_bytes()
    }
}

/// Where everything lives for a given schema length, packing and capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// How records are packed into groups.
    pub packing: Packing,
    /// Bytes of the schema block (`16 ..= MAX_SCHEMA_LEN`).
    pub schema_len: u32,
    /// Byte offset of the data region: the page after the schema block's
    /// last page ([`Layout::data_offset_for`]).
    pub data_offset: u64,
    /// Capacity in groups.
    pub capacity_groups: u64,
    /// Byte offset of the page-checksum table:
    /// `data_offset + capacity_groups * group_bytes`, right after the data
    /// region.
    pub table_offset: u64,
    /// Bytes of the table: `capacity_groups * 4` rounded up to whole pages.
    /// The file needs `table_offset + table_len` bytes, at most
    /// `MAX_FILE_LEN`.
    pub table_len: u64,
}

impl Layout {
    /// Data offset for a schema block of `schema_len` bytes.
    pub fn data_offset_for(schema_len: u32) -> u64 {
        SCHEMA_OFFSET + (schema_len as u64).div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE
    }

    /// The layout with exactly `capacity_groups` groups, or `None` if it would
    /// exceed `MAX_FILE_LEN`.
    pub fn with_groups(packing: Packing, schema_len: u32, capacity_groups: u64) -> Option<Layout> {
        let data_offset = Self::data_offset_for(schema_len);
        let data_len = capacity_groups.checked_mul(packing.group_bytes())?;
        let table_offset = data_offset.checked_add(data_len)?;
        let table_len = round_up(capacity_groups.checked_mul(CHECKSUM_ENTRY_LEN)?, PAGE_SIZE)?;
        let end = table_offset.checked_add(table_len)?;
        if end > MAX_FILE_LEN {
            return None;
        }
        Some(Layout {
            packing,
            schema_len,
            data_offset,
            capacity_groups,
            table_offset,
            table_len,
        })
    }

    /// The largest layout that fits in a file of `file_len` bytes.
    pub fn fitting(packing: Packing, schema_len: u32, file_len: u64) -> Option<Layout> {
        let data_offset = Self::data_offset_for(schema_len);
        let avail = file_len.checked_sub(data_offset)?;
        // Each group costs its bytes plus 4 bytes of table (table rounded up to a page).
        let mut groups = avail / (packing.group_bytes() + CHECKSUM_ENTRY_LEN);
        loop {
            let l = Self::with_groups(packing, schema_len, groups)?;
            if l.file_len() <= file_len {
                return Some(l);
            }
            groups = groups.checked_sub(1)?;
        }
    }

    /// Capacity in records.
    pub fn capacity(&self) -> u64 {
        self.capacity_groups * self.packing.records_per_group
    }

    /// The file length this layout needs.
    pub fn file_len(&self) -> u64 {
        self.table_offset + self.table_len
    }

    /// File offset of record `i`.
    pub fn record_file_offset(&self, i: u64) -> u64 {
        self.data_offset + self.packing.record_offset(i)
    }

    /// File offset of group `g`'s checksum entry.
    pub fn checksum_offset(&self, g: u64) -> u64 {
        self.table_offset + g * CHECKSUM_ENTRY_LEN
    }
}

/// The unit file lengths are rounded to for a store of chunk size `chunk`:
/// the chunk size, at most [`MAX_GROWTH_CHUNK`] (both multiples of
/// [`CHUNK_GRANULARITY`]).
pub const fn growth_unit(chunk: u64) -> u64 {
    if chunk < MAX_GROWTH_CHUNK {
        chunk
    } else {
        MAX_GROWTH_CHUNK
    }
}

/// The smallest chunk-multiple file length whose layout holds `records`.
pub fn file_len_for_records(
    packing: Packing,
    schema_len: u32,
    chunk_size: u64,
    records: u64,
) -> Option<u64> {
    let groups = records.div_ceil(packing.records_per_group).max(1);
    let need = Layout::with_groups(packing, schema_len, groups)?.file_len();
    let len = round_up(need, chunk_size)?;
    (len <= MAX_FILE_LEN).then_some(len)
}

pub mod wal;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_math() {
        let p = Packing::new(24);
        assert_eq!(p.records_per_group, 170);
        assert_eq!(p.record_offset(169), 169 * 24);
        assert_eq!(p.record_offset(170), 4096);
        assert!(!p.is_dense());
        assert!(Packing::new(64).is_dense());
        let big = Packing::new(5000);
        assert_eq!((big.records_per_group, big.pages_per_group), (1, 2));
        assert_eq!(big.record_offset(3), 3 * 8192);
        assert_eq!(Packing::new(4096).records_per_group, 1);
        assert_eq!(Packing::new(1).records_per_group, 4096);
    }

    #[test]
    fn layout_fits_file() {
        for size in [1u64, 24, 64, 4096, 5000, 1 << 20] {
            let p = Packing::new(size);
            for len in [1u64 << 16, 1 << 20, 3 << 20, 1 << 30] {
                if let Some(l) = Layout::fitting(p, 100, len) {
                    assert!(l.file_len() <= len);
                    let bigger = Layout::with_groups(p, 100, l.capacity_groups + 1).unwrap();
                    assert!(bigger.file_len() > len, "size {size} len {len}");
                    assert_eq!(l.data_offset % PAGE_SIZE, 0);
                    assert_eq!(l.table_offset % PAGE_SIZE, 0);
                }
            }
        }
    }

    #[test]
    fn growth_unit_is_the_chunk_size_capped() {
        assert_eq!(growth_unit(CHUNK_GRANULARITY), CHUNK_GRANULARITY);
        assert_eq!(growth_unit(DEFAULT_CHUNK_SIZE), DEFAULT_CHUNK_SIZE);
        assert_eq!(growth_unit(MAX_GROWTH_CHUNK), MAX_GROWTH_CHUNK);
        assert_eq!(growth_unit(MAX_CHUNK_SIZE), MAX_GROWTH_CHUNK);
        // A file length for a hostile chunk size stays within one unit of the need.
        let p = Packing::new(24);
        let len = file_len_for_records(p, 40, growth_unit(MAX_CHUNK_SIZE), 1).unwrap();
        assert_eq!(len, MAX_GROWTH_CHUNK);
    }
}
