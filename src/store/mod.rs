//! The engine: [`RawStore`], its state and the read path. Everything that
//! changes the file lives in a submodule named for its concern:
//!
//! - `options`: [`Options`], how a store is created or opened;
//! - `open`: creating a file, opening one, choosing its header, and
//!   recovery (replaying the log);
//! - `stage`: appends, in-place updates and rollback, before a commit;
//! - `overlay`: the in-memory record images in front of the map;
//! - `io`: the positional writes and syncs every change goes through;
//! - `commit`: logging a commit, then applying it to the data pages;
//! - `crcs`: the checksums of changed groups pending for the table;
//! - `wal`: the log file: opening, preallocating, scanning;
//! - `checkpoint`: publishing headers, the checksum table, upgrading v1;
//! - `grow`: growing and compacting the file, moving the checksum table;
//! - `verify`: checking committed pages and repairing their checksums.
//!
//! Invariants of the state kept here (see `docs/format.md` and
//! `docs/durability.md`):
//! - the map covers exactly `layout.file_len()` bytes, all inside the file,
//!   and `layout` equals the last published header's layout;
//! - `header` is the last commit's state (generation, count, tail checksum)
//!   with the layout, `header_seq` and `store_id` of the last header
//!   written to the file; commits after that header are in the log, and
//!   their checksums of full groups in `pending_crcs`;
//! - records `[0, flushed)` are in the file (page cache), `[flushed, len)` in
//!   the staging buffer; `committed <= flushed <= len <= capacity`;
//! - the overlay holds a newer image than the map for each of its records;
//! - record reads make no system call: they read the overlay, the map
//!   below `flushed`, or the staging buffer.

mod checkpoint;
mod commit;
mod crcs;
pub(crate) mod grow;
mod io;
mod open;
mod options;
pub(crate) mod overlay;
mod stage;
mod verify;
pub(crate) mod wal;

pub use commit::CommitStats;
pub use io::{IoEvent, IoObserver};
pub(crate) use open::{open_data_file, read_header, read_schema};
pub(crate) use options::Access;
pub use options::Options;
pub use verify::{Problem, Repair, RepairReport, VerifyReport};

use crate::coord::Coord;
use crate::format::{Header, Layout, Packing};
use crate::schema::Schema;
use crate::sys;
use overlay::{Overlay, Page};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A snapshot of a store's vital numbers ([`RawStore::info`]), as of the
/// call: the values do not follow later changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The data file's path, as the store was opened.
    pub path: PathBuf,
    /// The format version of the header in use: `2`, or `1` for a file a
    /// writer has not upgraded yet (`docs/format.md`, Versioning).
    pub format_version: u32,
    /// Bytes per record, `1 ..= 16 MiB`.
    pub record_size: u32,
    /// Alignment of a record in bytes: a power of two, at most 4096, that
    /// divides `record_size`.
    pub record_align: u32,
    /// Records per group (the header's `records_per_page`):
    /// `4096 / record_size` for records up to 4096 bytes, else 1.
    pub records_per_page: u64,
    /// 4096-byte pages per group: 1 for records up to 4096 bytes, else
    /// `ceil(record_size / 4096)`.
    pub pages_per_group: u64,
    /// Records this handle holds, its uncommitted appends included.
    pub records: u64,
    /// Records as of the last commit (`records` minus uncommitted
    /// appends).
    pub committed_records: u64,
    /// The generation of the last commit, from 1 (a new store) up to
    /// 2^62.
    pub generation: u64,
    /// Records the data region holds before the file must grow; a multiple
    /// of `records_per_page`.
    pub capacity: u64,
    /// The growth unit asked for when the file was created, in bytes: a
    /// multiple of 64 KiB, at most 1 TiB. Lengths are rounded to
    /// `min(chunk_size, 64 MiB)`.
    pub chunk_size: u64,
    /// The data file's length in bytes (what the layout needs if the file
    /// could not be examined).
    pub file_size: u64,
    /// Byte offset of the data region (record 0) in the data file; a
    /// multiple of 4096.
    pub data_offset: u64,
    /// Byte offset of the page-checksum table in the data file; a multiple
    /// of 4096, past the data region.
    pub table_offset: u64,
    /// The record layout the schema block describes.
    pub schema: Schema,
    /// Committed records can never change (the header's append-only flag;
    /// see [`Options::append_only`](crate::Options::append_only)).
    pub append_only: bool,
}

/// An untyped store: records as `&[u8]` described by a [`Schema`].
///
/// [`Store<T>`](crate::Store) wraps this with typed, zero-copy access.
pub struct RawStore {
    pub(crate) path: PathBuf,
    file: File,
    pub(crate) map: sys::RecordMap,
    access: Access,
    schema: Schema,
    /// The last commit's state, with the last written header's layout,
    /// `header_seq` and `store_id`.
    header: Header,
    /// Current layout (equal to `header.layout`: growth publishes a header).
    pub(crate) layout: Layout,
    pub(crate) len: u64,
    pub(crate) flushed: u64,
    /// Staging buffer for records `[flushed, len)`; starts at data-relative
    /// byte `stage_base` (page-aligned).
    stage: Vec<Page>,
    stage_base: u64,
    /// Writers: uncommitted images of committed records. Read-only
    /// handles: committed records of a log no writer has replayed.
    overlay: Overlay,
    /// Committed groups changed in place since the last commit.
    dirty_groups: BTreeSet<u64>,
    bytes_since_commit: u64,
    poisoned: Option<(&'static str, String)>,
    /// Test hook: fail the sync this many syncs from now.
    fail_sync_in: Option<u64>,
    /// Test hook: sees every write and sync.
    observer: Option<IoObserver>,
    /// Writers only: the coordination file shared with readers.
    coord: Option<Coord>,
    /// Records below this may be visible to a reader: writes to them go
    /// through the stripe seqlocks.
    high_water: u64,
    /// Checksums of full groups that commits since the last checkpoint
    /// changed (or, for a version-1 file, that its header lists): they
    /// override the table, whose entries a checkpoint writes.
    pending_crcs: crcs::GroupCrcs,
    /// Checksums of full groups of uncommitted appends, hashed from the
    /// caller's bytes as `extend_from_bytes` wrote them (while they were in
    /// the cache), so the commit need not read them back. Valid while those
    /// bytes are unchanged: an in-place `set` of such a record drops its
    /// group's entry; commit and rollback clear them all.
    append_crcs: BTreeMap<u64, u32>,
    /// Writers: the log.
    log: Option<wal::Log>,
    /// Writers: the log size to keep (`Options::log_size`).
    log_limit: u64,
    /// The access pattern applied to every mapping of the file
    /// (`Options::access`, `set_access`).
    pattern: crate::access::AccessPattern,
    /// Bulk reads of data not cached (`read_range_bytes`).
    stream: crate::stream::Stream,
    /// A named shared store's lifetime anchor (Windows; see
    /// [`crate::shared`]). Last, so it drops after the files close.
    pub(crate) anchor: Option<crate::shared::Anchor>,
}

/// A scan's prefetch window (`RawStore::prefetch_ahead`): 1 MiB.
const SCAN_WINDOW: u64 = 1 << 20;
/// How many windows ahead a scan looks for cached pages; when they are not,
/// it asks for twice that many, so reads stay in flight ahead of it.
const PREFETCH_AHEAD: u64 = 8;

impl RawStore {
    /// Tells the kernel how this handle will read its records from now on
    /// (see [`AccessPattern`](crate::AccessPattern)); kept for later
    /// mappings of a grown file.
    pub fn set_access(&mut self, pattern: crate::access::AccessPattern) {
        self.pattern = pattern;
        self.map.set_pattern(&self.file, pattern);
    }

    /// For scans under the `Random` pattern (whose faults read no more than
    /// their page): if the records a little ahead of `i` are not cached,
    /// asks the kernel to start reading the next few MiB now. One `mincore`
    /// of a page when they are (a warm scan pays that, every MiB).
    pub(crate) fn prefetch_ahead(&self, i: u64) {
        if self.pattern != crate::access::AccessPattern::Random || i >= self.flushed {
            return;
        }
        let p = self.layout.packing;
        let per_mib = (SCAN_WINDOW / p.group_bytes()).max(1) * p.records_per_group;
        let ahead = PREFETCH_AHEAD * per_mib;
        let probe = self.layout.data_offset + p.record_offset((i + ahead).min(self.flushed - 1));
        if !self.map.resident(probe) {
            self.advise(
                i..i.saturating_add(2 * ahead),
                crate::access::Advice::WillNeed,
            );
        }
    }

    /// Records per prefetch window of a scan (`prefetch_ahead`).
    pub(crate) fn scan_window(&self) -> u64 {
        let p = self.layout.packing;
        (SCAN_WINDOW / p.group_bytes()).max(1) * p.records_per_group
    }

    /// The access pattern in effect.
    pub fn access_pattern(&self) -> crate::access::AccessPattern {
        self.pattern
    }

    /// A hint about records `range` (clamped to the records): prefetch them
    /// now or let the kernel drop them from the cache
    /// ([`Advice`](crate::Advice)). Never changes what a read returns.
    pub fn advise(&self, range: Range<u64>, advice: crate::access::Advice) {
        if let Some((from, len)) = self.byte_span(range) {
            self.map.advise_range(&self.file, from, len, advice);
        }
    }

    /// The file bytes `(offset, length)` from the first to the last byte of
    /// records `range` (clamped to the records); `None` if it holds none.
    fn byte_span(&self, range: Range<u64>) -> Option<(u64, u64)> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return None;
        }
        let p = self.layout.packing;
        let from = self.layout.data_offset + p.record_offset(range.start);
        let to = self.layout.data_offset + p.record_offset(end - 1) + p.record_size;
        Some((from, to - from))
    }

    /// How many bytes of the pages holding records `range` are in the page
    /// cache now (Linux `mincore` of this handle's mapping), to confirm an
    /// [`Advice::DontNeed`](crate::access::Advice) or measure what a scan
    /// left; `None` where that cannot be told (other platforms).
    pub fn cached_bytes(&self, range: Range<u64>) -> Option<u64> {
        match self.byte_span(range) {
            Some((from, len)) => self.map.resident_bytes(from, len),
            None => Some(0),
        }
    }

    /// Copies records `first..` as this handle sees them (its own
    /// uncommitted writes included, as [`get`](Self::get)) into `dst`, a
    /// whole number of records; returns how many were copied (fewer at the
    /// end of the store).
    ///
    /// The bulk copy of the crate: a read of at least 64 KiB of records
    /// the page cache does not hold goes through `pread` (Linux), at the
    /// device's sequential rate, where a mapped scan ([`runs`](Self::runs),
    /// `Store::iter`) faults its way through at a fraction of it
    /// (docs/benchmarks.md, "Cold bulk reads"). Only this handle changes the
    /// file's records while it is open (one writer, and a read-only handle
    /// excludes writers), so the file's bytes are the map's.
    pub fn read_range_bytes(&self, first: u64, dst: &mut [u8]) -> crate::Result<u64> {
        let size = self.schema.record_size as usize;
        if !dst.len().is_multiple_of(size) {
            return Err(crate::Error::InvalidOption {
                option: "buffer",
                reason: format!(
                    "{} bytes is not a whole number of {size}-byte records",
                    dst.len()
                ),
            });
        }
        let n = ((dst.len() / size) as u64).min(self.len.saturating_sub(first));
        if n == 0 {
            // Also keeps the chunk arithmetic below away from any `first`
            // past the end (it could overflow near `u64::MAX`).
            return Ok(0);
        }
        let p = self.layout.packing;
        let chunk = crate::stream::Stream::chunk(p);
        let first_end = ((first / chunk + 1) * chunk).min(first + n);
        let mut stream = self.stream.should(first, n, size as u64, || {
            self.cached_bytes(first..first_end).is_none_or(|c| {
                self.byte_span(first..first_end)
                    .is_none_or(|(_, len)| c >= len)
            })
        });
        let mut i = first;
        while i < first + n {
            let end = ((i / chunk + 1) * chunk).min(first + n);
            let out = &mut dst[((i - first) as usize) * size..((end - first) as usize) * size];
            // Only records already in the file stream: staged appends are
            // in memory.
            if stream && end <= self.flushed {
                let layout = self.layout;
                if self
                    .stream
                    .read(&self.file, &self.path, &layout, i, end, out)?
                {
                    for (k, image) in self.overlay.range(i..end) {
                        let at = ((k - i) as usize) * size;
                        out[at..at + size].copy_from_slice(image);
                    }
                    self.stream.reached(end);
                    i = end;
                    continue;
                }
            }
            if stream {
                stream = false;
                self.stream.reached(u64::MAX);
            }
            for (k, bytes) in self.runs(i..end) {
                let at = ((k - i) as usize) * size;
                out[at..at + bytes.len()].copy_from_slice(bytes);
            }
            i = end;
        }
        Ok(n)
    }
}

impl std::fmt::Debug for RawStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStore")
            .field("path", &self.path)
            .field("access", &self.access)
            .field("len", &self.len)
            .field("committed", &self.header.record_count)
            .field("generation", &self.header.generation)
            .field("capacity", &self.layout.capacity())
            .finish_non_exhaustive()
    }
}

impl RawStore {
    // ----- accessors -------------------------------------------------------
    /// Records in the store, including uncommitted appends.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records as of the last commit.
    pub fn committed_len(&self) -> u64 {
        self.header.record_count
    }

    /// Generation of the last published header.
    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    /// Records the file has room for before it grows.
    pub fn capacity(&self) -> u64 {
        self.layout.capacity()
    }

    /// The stored record layout.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of one record in bytes.
    pub fn record_size(&self) -> usize {
        self.schema.record_size as usize
    }

    /// True if the handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.access == Access::ReadOnly
    }

    /// True if uncommitted appends or in-place updates exist.
    pub fn has_uncommitted(&self) -> bool {
        self.len != self.header.record_count || !self.dirty_groups.is_empty()
    }

    /// Commits in the log that no checkpoint has written to the data file's
    /// header yet.
    pub fn log_commits(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.commits)
    }

    /// Why the handle refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_ref().map(|(_, r)| r.as_str())
    }

    /// A snapshot of the store's numbers.
    pub fn info(&self) -> Info {
        let p = self.layout.packing;
        Info {
            path: self.path.clone(),
            format_version: self.header.version,
            record_size: self.schema.record_size,
            record_align: self.schema.record_align,
            records_per_page: p.records_per_group,
            pages_per_group: p.pages_per_group,
            records: self.len,
            committed_records: self.header.record_count,
            generation: self.header.generation,
            capacity: self.layout.capacity(),
            chunk_size: self.header.chunk_size,
            file_size: self
                .file
                .metadata()
                .map(|m| m.len())
                .unwrap_or(self.layout.file_len()),
            data_offset: self.layout.data_offset,
            table_offset: self.layout.table_offset,
            schema: self.schema.clone(),
            append_only: self.header.flags & crate::format::FLAG_APPEND_ONLY != 0,
        }
    }

    // ----- reads -----------------------------------------------------------
    /// Record `i` as bytes, or `None` past the end. A writer sees its own
    /// uncommitted updates and appends.
    #[inline]
    pub fn get(&self, i: u64) -> Option<&[u8]> {
        let size = self.schema.record_size as usize;
        if !self.overlay.is_empty() {
            if let Some(b) = self.overlay.get(i) {
                return Some(b);
            }
        }
        if i < self.flushed {
            let off = (self.layout.data_offset + self.layout.packing.record_offset(i)) as usize;
            Some(&self.map[off..off + size])
        } else if i < self.len {
            let off = (self.layout.packing.record_offset(i) - self.stage_base) as usize;
            Some(&self.stage_bytes()[off..off + size])
        } else {
            None
        }
    }

    /// Record `i` as bytes, like `get`, for the typed `get`'s rare path
    /// (`Store::get_staged`): `p` is the store's packing (a constant for a
    /// typed store), and no step can panic or write memory, so that the
    /// compiler infers as much for that path.
    #[inline(always)]
    pub(crate) fn get_readonly(&self, i: u64, p: Packing) -> Option<&[u8]> {
        debug_assert_eq!(p, self.layout.packing);
        let size = p.record_size as usize;
        if !self.overlay.is_empty() {
            if let Some(b) = self.overlay.get(i) {
                return Some(b);
            }
        }
        if i < self.flushed {
            let off = self.layout.data_offset.checked_add(p.record_offset(i))? as usize;
            self.map.get(off..)?.get(..size)
        } else if i < self.len {
            let off = p.record_offset(i).checked_sub(self.stage_base)? as usize;
            self.stage_bytes().get(off..)?.get(..size)
        } else {
            None
        }
    }

    #[inline]
    fn stage_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.stage)
    }

    /// The contiguous runs of records covering `range` (clamped to `len`):
    /// each item is `(first index, bytes of consecutive records)`.
    pub fn runs(&self, range: Range<u64>) -> Runs<'_> {
        Runs {
            store: self,
            next: range.start,
            end: range.end.min(self.len),
        }
    }

    /// The end of the contiguous run starting at record `i` (< len). A
    /// record with an overlay image is a run of its own.
    pub(crate) fn run_end(&self, i: u64, end: u64) -> u64 {
        let p = self.layout.packing;
        let end = if self.overlay.is_empty() {
            end
        } else if self.overlay.contains(i) {
            return i + 1;
        } else {
            self.overlay.next_from(i).map_or(end, |k| k.min(end))
        };
        let boundary = if i < self.flushed {
            self.flushed
        } else {
            self.len
        };
        let group_end = if p.is_dense() {
            boundary
        } else {
            (p.group_of(i) + 1) * p.records_per_group
        };
        end.min(boundary).min(group_end)
    }

    /// Bytes of records `[i, j)`, which must lie in one run.
    pub(crate) fn run_bytes(&self, i: u64, j: u64) -> &[u8] {
        if j == i + 1 {
            if let Some(b) = self.overlay.get(i) {
                return b;
            }
        }
        let size = self.schema.record_size as u64;
        let n = ((j - i) * size) as usize;
        if i < self.flushed {
            let off = (self.layout.data_offset + self.layout.packing.record_offset(i)) as usize;
            &self.map[off..off + n]
        } else {
            let off = (self.layout.packing.record_offset(i) - self.stage_base) as usize;
            &self.stage_bytes()[off..off + n]
        }
    }
}

impl RawStore {
    /// Test hook: closes the handle as a process kill would, right now:
    /// no rollback bookkeeping, no checkpoint, no coordination cleanup;
    /// the file descriptors (and so the locks) are released. What the
    /// files hold is what a `SIGKILL` at this point would leave (the page
    /// cache is intact). Not part of the API.
    #[doc(hidden)]
    pub fn simulate_crash(mut self) {
        self.poisoned = Some(("crash", "simulated crash".into()));
        self.coord = None;
    }
}

impl Drop for RawStore {
    fn drop(&mut self) {
        if self.access == Access::Write && self.poisoned.is_none() {
            if self.has_uncommitted() {
                tracing::warn!(
                    path = %self.path.display(),
                    uncommitted_records = self.len - self.header.record_count,
                    updated_records = self.overlay.len(),
                    "dropped without commit: changes since the last commit are rolled back"
                );
                self.discard_uncommitted();
            }
            // Leave the data file complete, so the next open replays nothing
            // and readers without a writer need not read the log.
            if self.log_commits() > 0 {
                if let Err(e) = self.checkpoint() {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "could not checkpoint while closing; the next writer replays the log");
                }
            }
        }
        if let Some(c) = &self.coord {
            c.release();
        }
    }
}

/// Iterator over contiguous runs of records, from [`RawStore::runs`].
#[derive(Debug)]
pub struct Runs<'a> {
    store: &'a RawStore,
    next: u64,
    end: u64,
}

impl<'a> Iterator for Runs<'a> {
    type Item = (u64, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        let j = self.store.run_end(i, self.end);
        self.next = j;
        Some((i, self.store.run_bytes(i, j)))
    }
}
