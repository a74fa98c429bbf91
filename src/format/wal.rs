//! The log (`<data file>-wal`) as pure bytes: the frame codec and the rules
//! that decide which frames a recovery replays. No I/O happens here.
//!
//! `docs/format.md` ("Log file") is the contract. A commit is one or more
//! frames written back to back; the last has no `FRAME_MORE` flag and is the
//! commit point. A frame counts only if its checksum holds, it names the
//! data file's `store_id` and the `header_seq` of the header the log
//! follows, and it continues the chain (the next generation, the previous
//! record count). The first frame that does not is the end of the log: a
//! torn write, a frame of an older cycle, or another file's log. A frame that
//! passes all that but breaks a content rule (an entry out of range or out
//! of order) was not written by recmap: [`FrameError::Corrupt`].

use super::{rd_u32, rd_u64, round_up, wr_u32, wr_u64, Packing, MAX_RECORD_SIZE};

/// The first 8 bytes of every frame.
pub const FRAME_MAGIC: [u8; 8] = *b"\x89RECWAL\n";
/// Bytes of a frame's fixed header.
pub const FRAME_HEADER_LEN: usize = 64;
/// Bytes of one checksum entry: group (u64), crc (u32), zero (u32).
pub const CRC_ENTRY_LEN: usize = 16;
/// Bytes after the entries: zero (u32), frame crc (u32).
pub const FRAME_TRAILER_LEN: usize = 8;
/// Frame flag: the records `[prev_count, record_count)` that no record entry
/// of this commit carries were written to the data file, and synced, before
/// the commit's first frame (bulk appends are not written twice).
pub const FRAME_APPENDS_IN_PLACE: u32 = 1;
/// Frame flag: another frame of the same commit follows.
pub const FRAME_MORE: u32 = 2;
/// Every frame flag this version defines.
pub const KNOWN_FRAME_FLAGS: u32 = FRAME_APPENDS_IN_PLACE | FRAME_MORE;
/// A writer starts a new frame once one holds this many bytes of entries.
pub const FRAME_TARGET: usize = 1 << 20;
/// The longest frame a reader accepts: the target plus one entry of the
/// largest record (so a frame always has room for at least one entry).
pub const MAX_FRAME_LEN: u64 = FRAME_TARGET as u64
    + 8
    + MAX_RECORD_SIZE as u64
    + (FRAME_HEADER_LEN + CRC_ENTRY_LEN + FRAME_TRAILER_LEN) as u64;

/// Field offsets in a frame header, in bytes from the frame's start
/// (`docs/format.md`, Frame). Integers are little-endian.
pub mod frame {
    /// `magic`, 8 bytes: [`FRAME_MAGIC`](super::FRAME_MAGIC).
    pub const MAGIC: usize = 0;
    /// `store_id`, u64: the data header's `store_id`.
    pub const STORE_ID: usize = 8;
    /// `header_seq`, u64: the `header_seq` of the data header this log
    /// follows.
    pub const HEADER_SEQ: usize = 16;
    /// `generation`, u64: this commit's generation (all frames of a commit
    /// share it).
    pub const GENERATION: usize = 24;
    /// `record_count`, u64: committed records after this commit.
    pub const RECORD_COUNT: usize = 32;
    /// `prev_count`, u64: committed records before this commit.
    pub const PREV_COUNT: usize = 40;
    /// `tail_crc`, u32: as the data header's `tail_crc`, after this commit.
    pub const TAIL_CRC: usize = 48;
    /// `flags`, u32: [`FRAME_APPENDS_IN_PLACE`](super::FRAME_APPENDS_IN_PLACE),
    /// [`FRAME_MORE`](super::FRAME_MORE); any other bit is corrupt.
    pub const FLAGS: usize = 52;
    /// `crc_entries`, u32: checksum entries in this frame.
    pub const CRC_ENTRIES: usize = 56;
    /// `record_entries`, u32: record entries in this frame.
    pub const RECORD_ENTRIES: usize = 60;
}

/// Bytes of one record entry: index (u64), the record, zero padding to 8.
pub fn record_entry_len(record_size: u64) -> u64 {
    8 + round_up(record_size, 8).expect("record sizes are small")
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The data header's `store_id` (random, non-zero, fixed for the
    /// file's life): a frame of another store's log never continues this
    /// one's.
    pub store_id: u64,
    /// The `header_seq` of the data header this log follows: frames left
    /// from before the last checkpoint name an older one and end the log.
    pub header_seq: u64,
    /// This commit's generation, shared by all its frames: one more than
    /// the previous commit's.
    pub generation: u64,
    /// Committed records after this commit.
    pub record_count: u64,
    /// Committed records before this commit.
    pub prev_count: u64,
    /// As the data header's `tail_crc`, after this commit.
    pub tail_crc: u32,
    /// Frame flags: [`FRAME_APPENDS_IN_PLACE`], [`FRAME_MORE`]; a bit
    /// outside [`KNOWN_FRAME_FLAGS`] makes the frame corrupt.
    pub flags: u32,
    /// Checksum entries ([`CRC_ENTRY_LEN`] bytes each) after the header.
    pub crc_entries: u32,
    /// Record entries ([`record_entry_len`] bytes each) after the checksum
    /// entries.
    pub record_entries: u32,
}

impl FrameHeader {
    /// Encodes the fixed header.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[..8].copy_from_slice(&FRAME_MAGIC);
        wr_u64(&mut b, frame::STORE_ID, self.store_id);
        wr_u64(&mut b, frame::HEADER_SEQ, self.header_seq);
        wr_u64(&mut b, frame::GENERATION, self.generation);
        wr_u64(&mut b, frame::RECORD_COUNT, self.record_count);
        wr_u64(&mut b, frame::PREV_COUNT, self.prev_count);
        wr_u32(&mut b, frame::TAIL_CRC, self.tail_crc);
        wr_u32(&mut b, frame::FLAGS, self.flags);
        wr_u32(&mut b, frame::CRC_ENTRIES, self.crc_entries);
        wr_u32(&mut b, frame::RECORD_ENTRIES, self.record_entries);
        b
    }

    /// Decodes a fixed header; `None` without the magic.
    pub fn decode(b: &[u8]) -> Option<FrameHeader> {
        let b = b.get(..FRAME_HEADER_LEN)?;
        if b[..8] != FRAME_MAGIC {
            return None;
        }
        Some(FrameHeader {
            store_id: rd_u64(b, frame::STORE_ID),
            header_seq: rd_u64(b, frame::HEADER_SEQ),
            generation: rd_u64(b, frame::GENERATION),
            record_count: rd_u64(b, frame::RECORD_COUNT),
            prev_count: rd_u64(b, frame::PREV_COUNT),
            tail_crc: rd_u32(b, frame::TAIL_CRC),
            flags: rd_u32(b, frame::FLAGS),
            crc_entries: rd_u32(b, frame::CRC_ENTRIES),
            record_entries: rd_u32(b, frame::RECORD_ENTRIES),
        })
    }

    /// The whole frame's length for records of `record_size` bytes, or
    /// `None` if it exceeds `MAX_FRAME_LEN`.
    pub fn frame_len(&self, record_size: u64) -> Option<u64> {
        let n = (FRAME_HEADER_LEN + FRAME_TRAILER_LEN) as u64
            + self.crc_entries as u64 * CRC_ENTRY_LEN as u64
            + (self.record_entries as u64).checked_mul(record_entry_len(record_size))?;
        (n <= MAX_FRAME_LEN).then_some(n)
    }
}

/// Why a frame is not replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The end of the log: no frame here that continues the chain (torn,
    /// older cycle, another file's log, zeros).
    End(&'static str),
    /// A frame with a valid checksum that continues the chain but breaks a
    /// content rule: not written by recmap.
    Corrupt(String),
}

/// What the next frame must continue: the state after the frames accepted
/// so far (initially the data header's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The data header's `store_id`, which every frame must carry.
    pub store_id: u64,
    /// The data header's `header_seq`, which every frame must carry.
    pub header_seq: u64,
    /// Generation of the last complete commit.
    pub generation: u64,
    /// Records after the last complete commit.
    pub record_count: u64,
    /// The data header's capacity (a frame never needs more: growth
    /// checkpoints first).
    pub capacity: u64,
    /// The store's record packing (record size, records and pages per
    /// group), which sizes record entries and names full groups.
    pub packing: Packing,
    /// Inside a commit (the previous frame had `FRAME_MORE`): its header,
    /// and the last group and record index its frames listed.
    pub open: Option<OpenCommit>,
}

/// A commit whose frames have begun but whose last frame is not yet read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenCommit {
    /// The header of the commit's first frame: later frames must repeat
    /// its fields from `store_id` to `tail_crc` (bytes 8..52) and its flags
    /// other than [`FRAME_MORE`].
    pub header: FrameHeader,
    /// The last group a checksum entry of the commit named so far
    /// (`None` before the first): entries are strictly increasing across
    /// the commit.
    pub last_group: Option<u64>,
    /// The last record index a record entry of the commit named so far
    /// (`None` before the first): entries are strictly increasing across
    /// the commit.
    pub last_index: Option<u64>,
    /// Record entries at or past `prev_count` so far.
    pub appended: u64,
}

/// True if `b`, a whole frame (at least a header and trailer long), ends
/// with the CRC32 of every byte before its `frame_crc`.
pub fn checksum_holds(b: &[u8]) -> bool {
    let n = b.len();
    n >= FRAME_HEADER_LEN + FRAME_TRAILER_LEN && rd_u32(b, n - 4) == crc32fast::hash(&b[..n - 4])
}

impl Chain {
    /// Checks the fixed header read at a frame position: `Ok(len)` of the
    /// whole frame if it may continue the chain (its checksum and entries
    /// are checked by `check_frame` once read).
    pub fn check_header(&self, h: &FrameHeader, room: u64) -> Result<u64, FrameError> {
        let p = self.packing;
        if h.store_id != self.store_id {
            return Err(FrameError::End("another store's frame"));
        }
        if h.header_seq != self.header_seq {
            return Err(FrameError::End("a frame of an earlier log cycle"));
        }
        let (generation, prev) = match &self.open {
            Some(o) => (o.header.generation, o.header.prev_count),
            None => (self.generation + 1, self.record_count),
        };
        if h.generation != generation || h.prev_count != prev {
            return Err(FrameError::End("a frame that does not continue the chain"));
        }
        if generation > super::MAX_GENERATION {
            // A header cannot carry it: the chain ends at the last one.
            return Err(FrameError::End(
                "a generation past the last a header can carry",
            ));
        }
        let Some(len) = h.frame_len(p.record_size) else {
            return Err(FrameError::End("frame longer than a frame may be"));
        };
        if len > room {
            return Err(FrameError::End("frame runs past the end of the log"));
        }
        Ok(len)
    }

    /// Checks a whole frame (`b`, its length from `check_header`) and, if
    /// it is valid, advances the chain. Returns true when the frame ended a
    /// commit (its records are then committed).
    pub fn accept(&mut self, h: &FrameHeader, b: &[u8]) -> Result<bool, FrameError> {
        let n = b.len();
        if n < FRAME_HEADER_LEN + FRAME_TRAILER_LEN {
            return Err(FrameError::End("short frame"));
        }
        if !checksum_holds(b) {
            return Err(FrameError::End("frame checksum mismatch (torn write)"));
        }
        let corrupt = |what: String| Err(FrameError::Corrupt(what));
        if let Some(o) = &self.open {
            let same = FrameHeader {
                flags: (o.header.flags & !FRAME_MORE) | (h.flags & FRAME_MORE),
                crc_entries: h.crc_entries,
                record_entries: h.record_entries,
                ..o.header
            };
            // A frame with a valid checksum that names this commit but
            // disagrees with its first frame is not a later part of it: a
            // stale frame of an earlier attempt at the same generation (a
            // commit whose log write failed, the next writer's commit then
            // written over its start) that lines up with this one's frame
            // boundary. The log ends here, as at any frame that does not
            // continue it; the open commit never counted.
            if *h != same {
                return Err(FrameError::End(
                    "a frame of another attempt at this commit (its header disagrees with the commit's first frame)",
                ));
            }
        }
        if h.flags & !KNOWN_FRAME_FLAGS != 0 {
            return corrupt(format!("unknown frame flags {:#x}", h.flags));
        }
        if rd_u32(b, n - 8) != 0 {
            return corrupt("non-zero trailer padding".into());
        }
        let p = self.packing;
        let rpg = p.records_per_group;
        if h.record_count > self.capacity || h.record_count < h.prev_count {
            return corrupt(format!(
                "record count {} (before {}, capacity {})",
                h.record_count, h.prev_count, self.capacity
            ));
        }
        if h.record_count.is_multiple_of(rpg) && h.tail_crc != 0 {
            return corrupt("tail_crc set although the last group is full".into());
        }
        let mut open = self.open.unwrap_or(OpenCommit {
            header: *h,
            last_group: None,
            last_index: None,
            appended: 0,
        });
        let full = h.record_count / rpg;
        for (g, _) in crc_entries(h, b) {
            if g >= full || open.last_group.is_some_and(|l| g <= l) {
                return corrupt(format!(
                    "checksum entry for group {g} (full groups: {full}; must increase)"
                ));
            }
            open.last_group = Some(g);
        }
        for (i, _) in record_entries(h, b, p.record_size) {
            if i >= h.record_count || open.last_index.is_some_and(|l| i <= l) {
                return corrupt(format!(
                    "record entry {i} (records: {}; must increase)",
                    h.record_count
                ));
            }
            open.last_index = Some(i);
            if i >= h.prev_count {
                open.appended += 1;
            }
        }
        let entries_end = FRAME_HEADER_LEN
            + h.crc_entries as usize * CRC_ENTRY_LEN
            + h.record_entries as usize * record_entry_len(p.record_size) as usize;
        if padding_nonzero(h, b, p.record_size) || entries_end + FRAME_TRAILER_LEN != n {
            return corrupt("non-zero padding in an entry".into());
        }
        if h.flags & FRAME_MORE != 0 {
            self.open = Some(open);
            return Ok(false);
        }
        let added = h.record_count - h.prev_count;
        if h.flags & FRAME_APPENDS_IN_PLACE == 0 && open.appended != added {
            return corrupt(format!(
                "{added} records appended but {} logged, without the in-place flag",
                open.appended
            ));
        }
        self.open = None;
        self.generation = h.generation;
        self.record_count = h.record_count;
        Ok(true)
    }
}

fn padding_nonzero(h: &FrameHeader, b: &[u8], record_size: u64) -> bool {
    let crc_at = FRAME_HEADER_LEN;
    let crc_bad =
        (0..h.crc_entries as usize).any(|k| rd_u32(b, crc_at + k * CRC_ENTRY_LEN + 12) != 0);
    let rec_at = crc_at + h.crc_entries as usize * CRC_ENTRY_LEN;
    let len = record_entry_len(record_size) as usize;
    let pad = len - 8 - record_size as usize;
    crc_bad
        || (pad > 0
            && (0..h.record_entries as usize).any(|k| {
                let end = rec_at + (k + 1) * len;
                b[end - pad..end].iter().any(|&x| x != 0)
            }))
}

/// The checksum entries `(group, crc)` of a frame whose length was checked.
pub fn crc_entries<'a>(h: &FrameHeader, b: &'a [u8]) -> impl Iterator<Item = (u64, u32)> + 'a {
    b[FRAME_HEADER_LEN..FRAME_HEADER_LEN + h.crc_entries as usize * CRC_ENTRY_LEN]
        .chunks_exact(CRC_ENTRY_LEN)
        .map(|e| (rd_u64(e, 0), rd_u32(e, 8)))
}

/// The record entries `(index, bytes)` of a frame whose length was checked.
pub fn record_entries<'a>(
    h: &FrameHeader,
    b: &'a [u8],
    record_size: u64,
) -> impl Iterator<Item = (u64, &'a [u8])> + 'a {
    let at = FRAME_HEADER_LEN + h.crc_entries as usize * CRC_ENTRY_LEN;
    let len = record_entry_len(record_size) as usize;
    let size = record_size as usize;
    b[at..at + h.record_entries as usize * len]
        .chunks_exact(len)
        .map(move |e| (rd_u64(e, 0), &e[8..8 + size]))
}

/// Builds the frames of one commit into a byte buffer: push entries in
/// increasing order (all checksum entries of a frame come before its record
/// entries, so the builder closes a frame when either kind would overflow it).
#[derive(Debug)]
pub struct CommitWriter<'a> {
    out: &'a mut Vec<u8>,
    header: FrameHeader,
    record_size: u64,
    /// Where the open frame starts in `out`.
    start: usize,
    crcs: Vec<(u64, u32)>,
    records_bytes: usize,
    records: u32,
}

impl<'a> CommitWriter<'a> {
    /// Starts a commit whose frames share `header` (its flags' `FRAME_MORE`
    /// and the entry counts are set by the writer).
    pub fn new(out: &'a mut Vec<u8>, header: FrameHeader, record_size: u64) -> Self {
        let start = out.len();
        let mut w = CommitWriter {
            out,
            header,
            record_size,
            start,
            crcs: Vec::new(),
            records_bytes: 0,
            records: 0,
        };
        w.begin();
        w
    }

    fn begin(&mut self) {
        self.start = self.out.len();
        self.out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
        self.records_bytes = 0;
        self.records = 0;
    }

    fn used(&self) -> usize {
        self.crcs.len() * CRC_ENTRY_LEN + self.records_bytes
    }

    /// Closes the open frame (with `more`: another follows).
    fn close(&mut self, more: bool) {
        // Checksum entries go between the header and the record entries.
        let mut crc_bytes = Vec::with_capacity(self.crcs.len() * CRC_ENTRY_LEN);
        for &(g, crc) in &self.crcs {
            crc_bytes.extend_from_slice(&g.to_le_bytes());
            crc_bytes.extend_from_slice(&crc.to_le_bytes());
            crc_bytes.extend_from_slice(&[0u8; 4]);
        }
        let at = self.start + FRAME_HEADER_LEN;
        self.out.splice(at..at, crc_bytes);
        let h = FrameHeader {
            flags: (self.header.flags & !FRAME_MORE) | if more { FRAME_MORE } else { 0 },
            crc_entries: self.crcs.len() as u32,
            record_entries: self.records,
            ..self.header
        };
        self.out[self.start..self.start + FRAME_HEADER_LEN].copy_from_slice(&h.encode());
        self.out.extend_from_slice(&[0u8; 4]);
        let crc = crc32fast::hash(&self.out[self.start..]);
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.crcs.clear();
    }

    fn make_room(&mut self, bytes: usize) {
        if self.used() > 0 && self.used() + bytes > FRAME_TARGET {
            self.close(true);
            self.begin();
        }
    }

    /// Adds a checksum entry (groups in increasing order across the commit).
    pub fn push_crc(&mut self, group: u64, crc: u32) {
        self.make_room(CRC_ENTRY_LEN);
        self.crcs.push((group, crc));
    }

    /// Adds a record entry (indices in increasing order across the commit).
    pub fn push_record(&mut self, index: u64, bytes: &[u8]) {
        debug_assert_eq!(bytes.len() as u64, self.record_size);
        let len = record_entry_len(self.record_size) as usize;
        self.make_room(len);
        self.out.extend_from_slice(&index.to_le_bytes());
        self.out.extend_from_slice(bytes);
        self.out
            .extend(std::iter::repeat_n(0u8, len - 8 - bytes.len()));
        self.records_bytes += len;
        self.records += 1;
    }

    /// Closes the last frame: the commit point.
    pub fn finish(mut self) {
        self.close(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        Chain {
            store_id: 42,
            header_seq: 7,
            generation: 10,
            record_count: 100,
            capacity: 64 * 10,
            packing: Packing::new(64),
            open: None,
        }
    }

    fn header(c: &Chain, count: u64, flags: u32) -> FrameHeader {
        FrameHeader {
            store_id: c.store_id,
            header_seq: c.header_seq,
            generation: c.generation + 1,
            record_count: count,
            prev_count: c.record_count,
            tail_crc: if count.is_multiple_of(64) { 0 } else { 9 },
            flags,
            crc_entries: 0,
            record_entries: 0,
        }
    }

    /// Feeds `bytes` through the chain as a recovery scan does; returns the
    /// commits accepted and the first error.
    fn scan(c: &mut Chain, bytes: &[u8]) -> (usize, Option<FrameError>) {
        let mut at = 0;
        let mut commits = 0;
        loop {
            let Some(h) = FrameHeader::decode(&bytes[at.min(bytes.len())..]) else {
                return (commits, Some(FrameError::End("no magic")));
            };
            let len = match c.check_header(&h, (bytes.len() - at) as u64) {
                Ok(l) => l as usize,
                Err(e) => return (commits, Some(e)),
            };
            match c.accept(&h, &bytes[at..at + len]) {
                Ok(true) => commits += 1,
                Ok(false) => {}
                Err(e) => return (commits, Some(e)),
            }
            at += len;
        }
    }

    /// A store at the last generation a header can carry: a frame that
    /// would continue its chain is not a commit (its replay would leave a
    /// state no header can record). Found by fuzzing `open_bytes`.
    #[test]
    fn no_commit_past_the_last_generation() {
        let mut c0 = chain();
        c0.generation = super::super::MAX_GENERATION;
        let mut out = Vec::new();
        let w = CommitWriter::new(&mut out, header(&c0, 100, 0), 64);
        w.finish();
        let mut c = c0;
        let (commits, err) = scan(&mut c, &out);
        assert_eq!(commits, 0);
        assert!(
            matches!(err, Some(FrameError::End(m)) if m.contains("last a header")),
            "{err:?}"
        );
        assert_eq!(c.generation, super::super::MAX_GENERATION);
        // One below it still commits.
        let mut c1 = chain();
        c1.generation = super::super::MAX_GENERATION - 1;
        let mut out = Vec::new();
        CommitWriter::new(&mut out, header(&c1, 100, 0), 64).finish();
        assert_eq!(scan(&mut c1, &out).0, 1);
        assert_eq!(c1.generation, super::super::MAX_GENERATION);
    }

    #[test]
    fn one_commit_round_trips() {
        let c0 = chain();
        let mut out = Vec::new();
        let mut w = CommitWriter::new(&mut out, header(&c0, 102, 0), 64);
        w.push_crc(0, 0xabc);
        w.push_record(5, &[1u8; 64]);
        w.push_record(100, &[2u8; 64]);
        w.push_record(101, &[3u8; 64]);
        w.finish();
        let h = FrameHeader::decode(&out).unwrap();
        assert_eq!(h.frame_len(64), Some(out.len() as u64));
        assert_eq!(crc_entries(&h, &out).collect::<Vec<_>>(), vec![(0, 0xabc)]);
        let recs: Vec<u64> = record_entries(&h, &out, 64).map(|(i, _)| i).collect();
        assert_eq!(recs, vec![5, 100, 101]);
        let mut c = c0;
        assert_eq!(scan(&mut c, &out).0, 1);
        assert_eq!((c.generation, c.record_count), (11, 102));
    }

    #[test]
    fn big_commits_span_frames_and_count_only_when_whole() {
        let c0 = Chain {
            capacity: 64 * 100_000,
            ..chain()
        };
        let mut out = Vec::new();
        let mut w = CommitWriter::new(&mut out, header(&c0, 40_100, 0), 64);
        for i in 0..40_100u64 {
            w.push_record(i, &[(i % 251) as u8; 64]);
        }
        w.finish();
        assert!(out.len() > 2 * FRAME_TARGET);
        let mut c = c0;
        assert_eq!(scan(&mut c, &out).0, 1);
        // Every cut before the end leaves the commit out, whole.
        for cut in [out.len() - 1, out.len() / 2, FRAME_TARGET + 100, 10] {
            let mut c = c0;
            assert_eq!(scan(&mut c, &out[..cut]).0, 0, "cut {cut}");
            assert_eq!(c.generation, 10);
        }
    }

    #[test]
    fn every_bit_flip_ends_the_log() {
        let c0 = chain();
        let mut out = Vec::new();
        let mut w = CommitWriter::new(&mut out, header(&c0, 101, 0), 64);
        w.push_record(100, &[7u8; 64]);
        w.finish();
        for bit in 0..out.len() * 8 {
            let mut b = out.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let mut c = c0;
            assert_eq!(scan(&mut c, &b).0, 0, "bit {bit} accepted");
        }
    }

    /// A later frame with a valid checksum that names the commit but
    /// disagrees with its first frame (count, `tail_crc`, flags) is a stale
    /// frame of another attempt at the same generation: the log ends there
    /// and the commit does not count; the doc's rule (fields 8..56 but the
    /// `MORE` bit).
    #[test]
    fn a_later_frame_of_another_attempt_ends_the_log() {
        let c0 = Chain {
            capacity: 64 * 100_000,
            ..chain()
        };
        let frames = |count: u64, flags: u32| {
            let mut out = Vec::new();
            let mut w = CommitWriter::new(&mut out, header(&c0, count, flags), 64);
            for i in 0..count {
                w.push_record(i, &[(i % 251) as u8; 64]);
            }
            w.finish();
            out
        };
        let mine = frames(40_100, 0);
        let first = FrameHeader::decode(&mine).unwrap().frame_len(64).unwrap() as usize;
        for other in [frames(40_000, 0), frames(40_100, FRAME_APPENDS_IN_PLACE)] {
            let head = FrameHeader::decode(&other).unwrap();
            assert_eq!(
                head.frame_len(64),
                Some(first as u64),
                "first frames line up"
            );
            let mut spliced = mine[..first].to_vec();
            spliced.extend_from_slice(&other[first..]);
            let mut c = c0;
            let (commits, err) = scan(&mut c, &spliced);
            assert_eq!(commits, 0);
            assert!(
                matches!(err, Some(FrameError::End(m)) if m.contains("another attempt")),
                "{err:?}"
            );
            assert_eq!((c.generation, c.record_count), (10, 100));
        }
    }

    #[test]
    fn foreign_and_stale_frames_end_the_log() {
        let c0 = chain();
        for (field, value) in [
            (frame::STORE_ID, 43u64),
            (frame::HEADER_SEQ, 6),
            (frame::GENERATION, 12),
            (frame::PREV_COUNT, 99),
        ] {
            let mut out = Vec::new();
            let mut w = CommitWriter::new(&mut out, header(&c0, 100, 0), 64);
            w.push_record(3, &[1u8; 64]);
            w.finish();
            wr_u64(&mut out, field, value);
            let n = out.len();
            let crc = crc32fast::hash(&out[..n - 4]);
            wr_u32(&mut out, n - 4, crc);
            let mut c = c0;
            assert!(matches!(scan(&mut c, &out), (0, Some(FrameError::End(_)))));
        }
    }

    #[test]
    fn content_rules_are_corruption() {
        let c0 = chain();
        type Case = Box<dyn Fn(&mut CommitWriter)>;
        let cases: Vec<Case> = vec![
            Box::new(|w| {
                w.push_record(5, &[0; 64]);
                w.push_record(5, &[0; 64]);
            }),
            Box::new(|w| w.push_record(100, &[0; 64])), // past the count
            Box::new(|w| w.push_crc(1, 0)),             // group 1 not full
        ];
        for (k, f) in cases.iter().enumerate() {
            let mut out = Vec::new();
            let mut w = CommitWriter::new(&mut out, header(&c0, 100, 0), 64);
            f(&mut w);
            w.finish();
            let mut c = c0;
            assert!(
                matches!(scan(&mut c, &out), (0, Some(FrameError::Corrupt(_)))),
                "case {k}"
            );
        }
        // Appends neither logged nor flagged in place.
        let mut out = Vec::new();
        CommitWriter::new(&mut out, header(&c0, 101, 0), 64).finish();
        let mut c = c0;
        assert!(matches!(
            scan(&mut c, &out),
            (0, Some(FrameError::Corrupt(_)))
        ));
        let mut out = Vec::new();
        CommitWriter::new(&mut out, header(&c0, 101, FRAME_APPENDS_IN_PLACE), 64).finish();
        let mut c = c0;
        assert_eq!(scan(&mut c, &out).0, 1);
    }

    #[test]
    fn chained_commits() {
        let mut c = chain();
        let mut out = Vec::new();
        for k in 0..5u64 {
            let mut sim = c;
            sim.generation += k;
            sim.record_count += k;
            let mut w = CommitWriter::new(&mut out, header(&sim, sim.record_count + 1, 0), 64);
            w.push_record(sim.record_count, &[k as u8; 64]);
            w.finish();
        }
        assert_eq!(scan(&mut c, &out).0, 5);
        assert_eq!((c.generation, c.record_count), (15, 105));
    }
}
