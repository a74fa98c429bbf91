//! The engine: [`RawStore`], its state and the read path. Everything that
//! changes the file lives in a submodule named for its concern:
//!
//! - `options`: [`Options`], how a store is created or opened;
//! - `open`: creating a file, opening one, and choosing its header (recovery);
//! - `stage`: appends and in-place updates, and the staging buffer;
//! - `io`: the positional writes and syncs every change goes through;
//! - `commit`: publishing headers, checked commits, the checksum table;
//! - `grow`: growing and compacting the file, moving the checksum table;
//! - `verify`: checking committed pages and repairing their checksums.
//!
//! Invariants of the state kept here (see `docs/format.md` and
//! `docs/durability.md`):
//! - the map covers exactly `layout.file_len()` bytes, all inside the file,
//!   and `layout` equals the last published header's layout;
//! - records `[0, flushed)` are in the file (page cache), `[flushed, len)` in
//!   the staging buffer; `committed <= flushed <= len <= capacity`;
//! - record reads make no system call: below `flushed` they read the map,
//!   from `flushed` to `len` the staging buffer.

mod commit;
mod grow;
mod io;
mod open;
mod options;
mod stage;
mod verify;

pub use commit::CommitStats;
pub use io::{IoEvent, IoObserver};
pub(crate) use open::{map_open_error, read_header, read_schema};
pub(crate) use options::Access;
pub use options::Options;
pub use verify::{Problem, Repair, RepairReport, VerifyReport};

use crate::coord::Coord;
use crate::format::{Header, Layout, FORMAT_VERSION, LIST_CARRIED};
use crate::schema::Schema;
use crate::sys;
use stage::Page;
use std::collections::BTreeSet;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A snapshot of a store's vital numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub path: PathBuf,
    pub format_version: u32,
    pub record_size: u32,
    pub record_align: u32,
    pub records_per_page: u64,
    pub pages_per_group: u64,
    pub records: u64,
    pub committed_records: u64,
    pub generation: u64,
    pub capacity: u64,
    pub chunk_size: u64,
    pub file_size: u64,
    pub data_offset: u64,
    pub table_offset: u64,
    pub schema: Schema,
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
    /// The last header published (commit or growth).
    header: Header,
    /// Current layout (equal to `header.layout`: growth publishes a header).
    pub(crate) layout: Layout,
    pub(crate) len: u64,
    pub(crate) flushed: u64,
    /// Staging buffer for records `[flushed, len)`; starts at data-relative
    /// byte `stage_base` (page-aligned).
    stage: Vec<Page>,
    stage_base: u64,
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
    /// The newest header's group list as on disk (empty for an ordinary
    /// header), sorted by group. Every entry's checksum overrides the table,
    /// whose entry for it may not be written yet. Entries without
    /// `LIST_CARRIED` are the groups open validates the header by: changing
    /// their committed bytes first needs a confirming header (`confirm`), or
    /// a crash could make open reject an acknowledged commit.
    listed: Vec<(u64, u32)>,
}

/// The entries of a group list that are table entries of full groups below
/// `full` (the carried bit cleared), in group order.
fn table_entries(list: &[(u64, u32)], full: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
    list.iter()
        .map(|&(g, crc)| (g & !LIST_CARRIED, crc))
        .filter(move |&(g, _)| g < full)
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

    /// Why the handle refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_ref().map(|(_, r)| r.as_str())
    }

    /// A snapshot of the store's numbers.
    pub fn info(&self) -> Info {
        let p = self.layout.packing;
        Info {
            path: self.path.clone(),
            format_version: FORMAT_VERSION,
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
        }
    }

    // ----- reads -----------------------------------------------------------
    /// Record `i` as bytes, or `None` past the end.
    #[inline]
    pub fn get(&self, i: u64) -> Option<&[u8]> {
        let size = self.schema.record_size as usize;
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

    /// The end of the contiguous run starting at record `i` (< len).
    pub(crate) fn run_end(&self, i: u64, end: u64) -> u64 {
        let p = self.layout.packing;
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

impl Drop for RawStore {
    fn drop(&mut self) {
        // A checked commit left as the newest header is validated by its
        // pages at every open; a damaged page would then make open fall back
        // to the commit before it. Confirming it on the way out leaves damage
        // to be reported by `verify` instead (one header write and sync).
        if self.access == Access::Write && self.poisoned.is_none() && self.unconfirmed() {
            if let Err(e) = self.confirm() {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "could not confirm the last commit while closing");
            }
        }
        if let Some(c) = &self.coord {
            c.release();
        }
        if self.access == Access::Write && self.poisoned.is_none() && self.has_uncommitted() {
            tracing::warn!(
                path = %self.path.display(),
                uncommitted_records = self.len - self.header.record_count,
                dirty_pages = self.dirty_groups.len(),
                "dropped without commit: appends since the last commit are discarded"
            );
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
