//! Verification and repair: [`RawStore::verify`] checks the header slots,
//! the schema block, the file length and every committed data page against
//! its checksum; [`RawStore::repair`] makes a damaged store consistent again
//! by publishing a new commit.
//!
//! Invariants:
//! - `verify` never writes; it skips the groups this handle changed in place
//!   and has not committed (their checksums are not computed yet);
//! - at most `MAX_PROBLEMS` damaged pages are listed and the rest counted, so
//!   a hostile or wrecked file cannot make it allocate without bound;
//! - a repair is a commit, crash-safe like any other: it confirms a checked
//!   header first, writes the checksums that header carries into the table
//!   (the ordinary header it publishes needs the table whole), syncs, and
//!   then publishes; damage to the header or schema block is not repaired;
//! - truncating an append-only store requires that no reader is attached:
//!   readers borrow committed records, which later appends would overwrite.

use super::RawStore;
use crate::error::{Error, Result};
use crate::fileio::read_exact_at;
use crate::format::{Header, SlotError, FLAG_APPEND_ONLY, PAGE_SIZE, SCHEMA_OFFSET, SLOT_OFFSETS};
use std::fs::File;
use std::time::Instant;

/// One thing `verify` found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A header slot is invalid (other than never written). Alone it is a
    /// note: a torn slot from a crash is expected and overwritten by the next commit.
    HeaderSlot {
        /// The slot index: 0 (at byte 0) or 1 (at byte 2048).
        slot: usize,
        /// Why the slot is invalid.
        error: SlotError,
    },
    /// The schema block does not hash to the header's CRC.
    SchemaChecksum {
        /// The CRC32 the header records (`schema_crc`).
        expected: u32,
        /// The CRC32 of the block's `schema_len` bytes as read.
        got: u32,
    },
    /// The file is shorter than the header requires.
    FileLength {
        /// Bytes the header needs (`table_offset + table_len`).
        expected: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// A data page (group) whose committed bytes do not match its checksum.
    PageChecksum {
        /// Group index (the data page for records up to 4 KiB).
        group: u64,
        /// File pages `[first_page, first_page + pages)` (page 0 is the header).
        first_page: u64,
        /// Number of 4096-byte file pages the group spans
        /// (`pages_per_group`).
        pages: u64,
        /// Records `[first_record, end_record)` stored there.
        first_record: u64,
        /// One past the last committed record of the group.
        end_record: u64,
        /// The checksum the store keeps for the group: the last log
        /// commit's entry for it, else the table's, or `tail_crc` for the
        /// partly filled last group.
        expected: u32,
        /// The CRC32 of the group's committed bytes as read.
        got: u32,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::HeaderSlot { slot, error } => write!(f, "header slot {slot}: {error}"),
            Problem::SchemaChecksum { expected, got } => {
                write!(
                    f,
                    "schema block: checksum {got:#010x}, header says {expected:#010x}"
                )
            }
            Problem::FileLength { expected, actual } => {
                write!(f, "file length {actual}, header needs {expected}")
            }
            Problem::PageChecksum {
                group,
                first_page,
                pages,
                first_record,
                end_record,
                expected,
                got,
            } => {
                write!(
                    f,
                    "data page {group} (file pages {first_page}..{}, records {first_record}..{end_record}): checksum {got:#010x}, stored {expected:#010x}",
                    first_page + pages
                )
            }
        }
    }
}

/// The result of [`RawStore::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Damage: the store is not sound when this is non-empty.
    pub problems: Vec<Problem>,
    /// Findings that are not damage (an older header slot torn by a crash).
    pub notes: Vec<Problem>,
    /// Generation verified.
    pub generation: u64,
    /// Data pages (groups) whose checksums were checked.
    pub pages_checked: u64,
    /// Committed records covered by the checked pages.
    pub records_checked: u64,
    /// Pages with uncommitted in-place updates in this handle, not checked.
    pub pages_skipped: u64,
    /// Damaged pages found beyond the first `MAX_PROBLEMS` listed.
    pub problems_omitted: u64,
}

/// `verify` lists at most this many damaged pages (the first ones, in page
/// order) and counts the rest, so a hostile or wrecked file cannot make it
/// allocate without bound.
pub const MAX_PROBLEMS: usize = 10_000;

/// `verify_with` calls its progress callback about every this many data
/// pages (16 MiB of 4 KiB pages).
const PROGRESS_EVERY: u64 = 4096;

impl VerifyReport {
    /// True when no damage was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }
}

/// What [`RawStore::repair`] does. Both publish a new commit; neither can
/// undo damage to the header or schema block (those stores do not open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Recompute the checksum of every committed page from the data as it is
    /// now and commit them. Use after a crash interrupted in-place updates and
    /// `verify` names their pages, when the records as they stand are
    /// acceptable (each is old, new, or — after a power loss — torn: check
    /// them first if that matters). Keeps every record.
    RebuildChecksums,
    /// Keep only the records before the first page that fails verification
    /// and commit that count. Use when damaged data must never be served
    /// (bit rot, a bad disk). Loses every record from that page on.
    TruncateToVerified,
}

/// What [`RawStore::repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// Verification before the repair.
    pub before: VerifyReport,
    /// Committed records before the repair.
    pub records_before: u64,
    /// Committed records after the repair (fewer only for
    /// [`Repair::TruncateToVerified`]).
    pub records_after: u64,
    /// Page checksums rewritten.
    pub pages_rewritten: u64,
    /// Generation of the commit the repair published (unchanged if none).
    pub generation: u64,
}

/// Finds the holes of a file in increasing order of offset: each query
/// costs a system call only when it passes the data extent last found.
struct Holes<'a> {
    file: &'a File,
    /// The first data extent at or after `from` (`None`: only holes).
    data: Option<(u64, u64)>,
    from: u64,
    /// Set when the system could not tell: everything counts as data.
    off: bool,
}

impl<'a> Holes<'a> {
    fn new(file: &'a File) -> Holes<'a> {
        Holes {
            file,
            data: None,
            from: u64::MAX,
            off: false,
        }
    }

    /// True if `[start, start + len)` lies wholly in a hole (reads as
    /// zeros). Queries must not go backwards by more than one extent
    /// (`verify` asks in increasing order).
    fn hole(&mut self, start: u64, len: u64) -> bool {
        if self.off {
            return false;
        }
        let known = start >= self.from
            && match self.data {
                None => true,
                Some((_, end)) => end > start,
            };
        if !known {
            match crate::sys::data_extent(self.file, start) {
                Ok(d) => {
                    self.data = d;
                    self.from = start;
                }
                Err(_) => {
                    self.off = true;
                    return false;
                }
            }
        }
        match self.data {
            None => true,
            Some((s, _)) => s >= start.saturating_add(len),
        }
    }
}

/// `verify`'s view of the file's holes: of the data region and of the
/// table (separate cursors: both advance with the group), and the checksum
/// of a full group of zeros.
struct Sparse<'a> {
    data: Holes<'a>,
    table: Holes<'a>,
    zero_full: u32,
}

impl<'a> Sparse<'a> {
    fn new(file: &'a File, p: crate::format::Packing) -> Sparse<'a> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let mut h = crc32fast::Hasher::new();
        let mut left = p.records_per_group * p.record_size;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            h.update(&ZEROS[..n]);
            left -= n as u64;
        }
        Sparse {
            data: Holes::new(file),
            table: Holes::new(file),
            zero_full: h.finalize(),
        }
    }
}

impl RawStore {
    /// Repairs page checksums after `verify` found damage; see [`Repair`].
    ///
    /// Needs a writer handle with nothing uncommitted. The repair is itself
    /// a commit: crash-safe like any other.
    pub fn repair(&mut self, how: Repair) -> Result<RepairReport> {
        self.check_writable()?;
        // Readers of an append-only store borrow committed records; dropping
        // records (which later appends overwrite) needs them gone.
        if how == Repair::TruncateToVerified && self.header.flags & FLAG_APPEND_ONLY != 0 {
            let coord = self.coord.take().expect("writers have a coordination file");
            let r = coord
                .try_lock_exclusive()
                .and_then(|()| self.repair_inner(how));
            coord.unlock();
            self.coord = Some(coord);
            self.announce();
            return r;
        }
        self.repair_inner(how)
    }

    fn repair_inner(&mut self, how: Repair) -> Result<RepairReport> {
        if self.has_uncommitted() {
            return Err(Error::InvalidOption {
                option: "repair",
                reason: "the handle has uncommitted changes: commit or reopen first".into(),
            });
        }
        let span = tracing::info_span!("recmap.repair", path = %self.path.display(), ?how);
        let _g = span.enter();
        // Repair rewrites the table and publishes a header of its own: fold
        // the log in first, so the table holds every checksum.
        self.checkpoint()?;
        let before = self.verify()?;
        let records_before = self.len;
        let mut rep = RepairReport {
            records_before,
            records_after: records_before,
            pages_rewritten: 0,
            generation: self.header.generation,
            before: before.clone(),
        };
        if let Some(p) = before
            .problems
            .iter()
            .find(|p| !matches!(p, Problem::PageChecksum { .. }))
        {
            return Err(Error::InvalidOption {
                option: "repair",
                reason: format!("cannot repair: {p}"),
            });
        }
        if before.is_ok() {
            return Ok(rep);
        }
        // A repair is a commit: it needs a generation.
        let generation = self.next_generation()?;
        let p = self.layout.packing;
        let rpg = p.records_per_group;
        let count = match how {
            Repair::RebuildChecksums => {
                let full = self.len / rpg;
                let mut g = 0;
                while g < full {
                    let end = full.min(g + 65536);
                    let entries: Vec<u8> = (g..end)
                        .flat_map(|g| self.group_crc(g, self.len).to_le_bytes())
                        .collect();
                    self.write(&entries, self.layout.checksum_offset(g))?;
                    g = end;
                }
                rep.pages_rewritten = self.len.div_ceil(rpg) * p.pages_per_group;
                self.len
            }
            Repair::TruncateToVerified => before
                .problems
                .iter()
                .filter_map(|p| match p {
                    Problem::PageChecksum { first_record, .. } => Some(*first_record),
                    _ => None,
                })
                .min()
                .unwrap_or(self.len),
        };
        let tail_crc = if count.is_multiple_of(rpg) {
            0
        } else {
            self.group_crc(count / rpg, count)
        };
        self.sync(false)?;
        let header = Header {
            generation,
            record_count: count,
            tail_crc,
            ..self.header
        };
        self.publish(header)?;
        self.len = count;
        self.flushed = count;
        self.sync_window();
        self.bytes_since_commit = 0;
        rep.records_after = count;
        rep.generation = self.header.generation;
        tracing::warn!(
            records_before,
            records_after = count,
            pages_rewritten = rep.pages_rewritten,
            "repaired"
        );
        Ok(rep)
    }

    /// Checks the header slots, the schema block, the file length and the
    /// checksum of every committed data page, reading the file from scratch.
    /// Pages this handle changed in place and has not committed are skipped.
    ///
    /// Costs time linear in the committed records (never in the capacity:
    /// pages past the committed count are not read) and memory bounded by
    /// `MAX_PROBLEMS`. [`RawStore::verify_with`] reports progress and can
    /// be stopped.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(&mut |_, _| true)
    }

    /// [`RawStore::verify`], calling `progress(pages_done, pages_total)`
    /// now and then (every `PROGRESS_EVERY` data pages, and at the end).
    /// When it returns false, verification stops with
    /// [`Error::Interrupted`] (the command-line tool stops so on Ctrl-C).
    pub fn verify_with(&self, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<VerifyReport> {
        let span = tracing::info_span!("recmap.verify", path = %self.path.display());
        let _g = span.enter();
        let t0 = Instant::now();
        let mut rep = VerifyReport {
            generation: self.header.generation,
            ..Default::default()
        };
        let mut page = vec![0u8; PAGE_SIZE as usize];
        read_exact_at(&self.file, &mut page, 0)
            .map_err(|e| Error::io("read header", &self.path, e))?;
        for (slot, &off) in SLOT_OFFSETS.iter().enumerate() {
            match Header::decode(&page[off as usize..], slot) {
                Ok(_) | Err(SlotError::Empty) => {}
                Err(error) => rep.notes.push(Problem::HeaderSlot { slot, error }),
            }
        }
        let schema_at = SCHEMA_OFFSET as usize;
        let got =
            crc32fast::hash(&self.map[schema_at..schema_at + self.header.schema_len as usize]);
        if got != self.header.schema_crc {
            rep.problems.push(Problem::SchemaChecksum {
                expected: self.header.schema_crc,
                got,
            });
        }
        let actual = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .len();
        if actual < self.layout.file_len() {
            rep.problems.push(Problem::FileLength {
                expected: self.layout.file_len(),
                actual,
            });
            return Ok(rep);
        }
        let p = self.layout.packing;
        let committed = self.header.record_count;
        let groups = committed.div_ceil(p.records_per_group);
        let total = groups * p.pages_per_group;
        let every = PROGRESS_EVERY.div_ceil(p.pages_per_group).max(1);
        if !progress(0, total) {
            return Err(self.interrupted(0, total));
        }
        let mut sparse = Sparse::new(&self.file, p);
        for g in 0..groups {
            if g > 0 && g % every == 0 && !progress(g * p.pages_per_group, total) {
                return Err(self.interrupted(g * p.pages_per_group, total));
            }
            if self.dirty_groups.contains(&g) {
                rep.pages_skipped += p.pages_per_group;
                continue;
            }
            let (first_record, end_record) = p.group_records(g, committed);
            if let Some(problem) = self.check_group_in(g, committed, Some(&mut sparse)) {
                if rep.problems.len() >= MAX_PROBLEMS {
                    rep.problems_omitted += 1;
                } else {
                    rep.problems.push(problem);
                }
            }
            rep.pages_checked += p.pages_per_group;
            rep.records_checked += end_record - first_record;
        }
        progress(total, total);
        tracing::info!(
            pages = rep.pages_checked,
            problems = rep.problems.len(),
            elapsed_us = t0.elapsed().as_micros() as u64,
            "verified"
        );
        Ok(rep)
    }

    fn interrupted(&self, done: u64, total: u64) -> Error {
        Error::Interrupted {
            path: self.path.clone(),
            what: "verify",
            done,
            total,
        }
    }

    /// The checksum the store keeps for committed group `g` (`committed`
    /// records): `tail_crc` for a partly filled last group, else the last
    /// log commit's entry, else the table's.
    pub(super) fn stored_crc(&self, g: u64, committed: u64) -> u32 {
        self.stored_crc_in(g, committed, None)
    }

    /// `stored_crc`; a table entry in a hole of the file (`sparse`) is 0
    /// without touching its page.
    fn stored_crc_in(&self, g: u64, committed: u64, sparse: Option<&mut Sparse<'_>>) -> u32 {
        let p = self.layout.packing;
        let (first, end) = p.group_records(g, committed);
        if end - first < p.records_per_group {
            self.header.tail_crc
        } else if let Some(crc) = self.pending_crcs.get(g) {
            crc
        } else {
            let at = self.layout.checksum_offset(g);
            if sparse.is_some_and(|s| s.table.hole(at, 4)) {
                return 0;
            }
            let at = at as usize;
            u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"))
        }
    }

    /// `Some(problem)` if committed group `g` does not match its checksum.
    fn check_group(&self, g: u64, committed: u64) -> Option<Problem> {
        self.check_group_in(g, committed, None)
    }

    /// `check_group`, skipping the reads of holes (`sparse`): a full group
    /// whose committed bytes lie in a hole of the file hashes to the CRC of
    /// zeros, known without reading them. So `verify` of a sparse file
    /// costs time in its data, not in the size it claims (still one step
    /// per group).
    fn check_group_in(
        &self,
        g: u64,
        committed: u64,
        mut sparse: Option<&mut Sparse<'_>>,
    ) -> Option<Problem> {
        let p = self.layout.packing;
        let (first_record, end_record) = p.group_records(g, committed);
        let expected = self.stored_crc_in(g, committed, sparse.as_deref_mut());
        let len = (end_record - first_record) * p.record_size;
        let start = self.layout.data_offset + g * p.group_bytes();
        // The overlay's images are not in the file: only without one.
        let zeros = match sparse {
            Some(s)
                if end_record - first_record == p.records_per_group && self.overlay.is_empty() =>
            {
                s.data.hole(start, len).then_some(s.zero_full)
            }
            _ => None,
        };
        let got = zeros.unwrap_or_else(|| self.group_crc(g, committed));
        (got != expected).then(|| Problem::PageChecksum {
            group: g,
            first_page: (self.layout.data_offset + g * p.group_bytes()) / PAGE_SIZE,
            pages: p.pages_per_group,
            first_record,
            end_record,
            expected,
            got,
        })
    }

    /// Checks the pages holding committed records `range` (clamped to the
    /// committed count) against their checksums, as `verify` does for all
    /// of them: [`Error::CorruptPage`] names the first damaged one. For
    /// callers that serve records and must not serve damaged ones (the
    /// command-line tool's `get` and `export`). Pages this handle changed
    /// in place and has not committed are not checked.
    pub fn check_records(&self, range: std::ops::Range<u64>) -> Result<()> {
        let committed = self.header.record_count;
        let end = range.end.min(committed);
        if range.start >= end {
            return Ok(());
        }
        let p = self.layout.packing;
        for g in p.group_of(range.start)..=p.group_of(end - 1) {
            if self.dirty_groups.contains(&g) {
                continue;
            }
            if let Some(problem) = self.check_group(g, committed) {
                return Err(self.corrupt_page(problem));
            }
        }
        Ok(())
    }

    fn corrupt_page(&self, problem: Problem) -> Error {
        match problem {
            Problem::PageChecksum {
                group,
                first_record,
                end_record,
                expected,
                got,
                ..
            } => Error::CorruptPage {
                path: self.path.clone(),
                group,
                first_record,
                end_record,
                expected,
                got,
            },
            other => unreachable!("check_group reports page checksums only: {other}"),
        }
    }

    /// Checks the committed records of the partly filled last group, as
    /// they are in the data file, against the stored tail checksum
    /// (`tail_crc`): [`Error::CorruptPage`] names the group if they differ.
    /// `Ok` when the last group is full (or there are no records).
    ///
    /// A commit that appends into that group computes a new checksum over
    /// those bytes plus the appended ones; without this check first, bit
    /// rot (or an uncommitted write left by a crash) in the committed bytes
    /// would be blessed with a valid checksum and vanish from `verify`.
    /// Reads at most one group.
    // `RawStore::commit` checks every page it rehashes with
    // `check_committed_page`, the tail page included; this is the tail-only
    // form, for callers that append without updating.
    #[allow(dead_code)]
    pub(super) fn check_tail_page(&self) -> Result<()> {
        let p = self.layout.packing;
        let committed = self.header.record_count;
        if committed.is_multiple_of(p.records_per_group) {
            return Ok(());
        }
        self.check_committed_page(p.group_of(committed))
    }

    /// Checks the committed records of group `g` as they are in the data
    /// file (not this handle's uncommitted view) against the checksum the
    /// store keeps for them: [`Error::CorruptPage`] if they differ. The
    /// same guard as `check_tail_page` for any group whose checksum a
    /// commit is about to recompute (an in-place update of one record of a
    /// full page rehashes the page's other records too). Reads one group.
    /// `RawStore::commit` calls it for every page it rehashes.
    pub(super) fn check_committed_page(&self, g: u64) -> Result<()> {
        let p = self.layout.packing;
        let committed = self.header.record_count;
        let (first_record, end_record) = p.group_records(g, committed);
        if first_record >= end_record {
            return Ok(());
        }
        let start = (self.layout.data_offset + g * p.group_bytes()) as usize;
        let len = ((end_record - first_record) * p.record_size) as usize;
        // The data file's bytes (the map): an uncommitted update lives in
        // the overlay, and the check is of what was committed.
        let got = crc32fast::hash(&self.map[start..start + len]);
        let expected = self.stored_crc(g, committed);
        if got == expected {
            return Ok(());
        }
        tracing::error!(path = %self.path.display(), group = g, expected, got,
            "damage in the committed records of a page about to be rehashed");
        Err(Error::CorruptPage {
            path: self.path.clone(),
            group: g,
            first_record,
            end_record,
            expected,
            got,
        })
    }
}
