//! Growth and compaction: changing the file's length and moving the
//! checksum table to the new end.
//!
//! Invariants:
//! - the file's length is a multiple of its growth unit (the chunk size, at
//!   most `MAX_GROWTH_CHUNK`, so a hostile header cannot size a huge
//!   preallocation); each growth adds the current length (at most
//!   `MAX_GROWTH_STEP`), or more if needed;
//! - a growth that fails before its header is published sets the file's
//!   length back to what it was (a failed `fallocate` may have taken part
//!   of the space);
//! - the checksum table is copied in bounded pieces, never whole;
//! - until the header with the new layout is durable, the old header still
//!   describes an intact file: the new table is written in space the current
//!   header does not use and synced before that header is published;
//! - the map covers exactly `layout.file_len()`: it is remapped after the new
//!   header is published; if remapping fails the handle is poisoned and keeps
//!   the old map and layout for reads;
//! - the file is truncated only after the header for the shorter layout is
//!   durable, and only while no [`Reader`](crate::Reader) has it open (a
//!   process whose mapped pages are truncated away gets `SIGBUS`);
//! - running out of space or over the file-size limit while preallocating
//!   returns `NoSpace` or `FileTooLarge` without poisoning: the file is intact.

use super::{IoEvent, RawStore};
use crate::error::{Error, Result};
use crate::format::{
    file_len_for_records, growth_unit, Header, Layout, CHECKSUM_ENTRY_LEN, MAX_FILE_LEN,
    MAX_GROWTH_STEP,
};
use crate::sys;
use std::io;
use std::path::Path;
use std::time::Instant;

/// Bytes of the checksum table copied at a time when it moves.
const TABLE_PIECE: u64 = 256 << 10;

pub(super) fn map_grow_error(path: &Path, wanted: u64, e: io::Error) -> Error {
    #[cfg(unix)]
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            return Error::NoSpace {
                path: path.into(),
                wanted,
            }
        }
        Some(libc::EFBIG) => {
            return Error::FileTooLarge {
                path: path.into(),
                wanted,
            }
        }
        _ => {}
    }
    match e.kind() {
        io::ErrorKind::StorageFull => Error::NoSpace {
            path: path.into(),
            wanted,
        },
        io::ErrorKind::FileTooLarge => Error::FileTooLarge {
            path: path.into(),
            wanted,
        },
        _ => Error::io("grow", path, e),
    }
}

impl RawStore {
    /// Grows the file so it holds at least `need` records.
    ///
    /// Order (each step durable before the next): extend and preallocate;
    /// copy the checksum table to its new place past the old end; fsync;
    /// publish a header with the new layout (same record count); remap.
    /// Until that header is durable the old one still describes an intact
    /// file, and nothing is written into the old table's place before it is.
    pub(super) fn grow(&mut self, need: u64) -> Result<()> {
        let span = tracing::info_span!("recmap.grow", path = %self.path.display(), need);
        let _g = span.enter();
        let t0 = Instant::now();
        let p = self.layout.packing;
        // The header's chunk size rounds the length, but never by more than
        // `MAX_GROWTH_CHUNK`: the header is not trusted to size an allocation.
        let chunk = growth_unit(self.header.chunk_size);
        let old_len = self.layout.file_len();
        let too_large = |wanted| Error::FileTooLarge {
            path: self.path.clone(),
            wanted,
        };
        let min_len = file_len_for_records(p, self.header.schema_len, chunk, need)
            .ok_or(too_large(u64::MAX))?;
        let doubled = old_len.saturating_add(old_len.min(MAX_GROWTH_STEP));
        let mut want =
            crate::format::round_up(min_len.max(doubled), chunk).ok_or(too_large(u64::MAX))?;
        let layout = loop {
            if want > MAX_FILE_LEN {
                return Err(too_large(want));
            }
            match Layout::fitting(p, self.header.schema_len, want) {
                Some(l) if l.capacity() >= need && l.table_offset >= old_len => break l,
                _ => want += chunk,
            }
        };
        // The length to give back if growing fails: the file's own (it may
        // be longer than the layout after a crash inside an earlier growth).
        let before = self.actual_len()?;
        if let Err(e) = sys::preallocate(&self.file, old_len, want) {
            let err = map_grow_error(&self.path, want, e);
            self.roll_back_length(before);
            return Err(err);
        }
        self.observe(IoEvent::SetLen { len: want });
        // Nothing published yet: a failure here leaves the old header
        // describing the file, so the space can be given back too.
        if let Err(e) = self.copy_table(layout, true) {
            self.roll_back_length(before);
            return Err(e);
        }
        self.publish_layout(layout)?;
        tracing::info!(
            old_len,
            new_len = want,
            capacity = layout.capacity(),
            generation = self.header.generation,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "grew"
        );
        Ok(())
    }

    fn actual_len(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .len())
    }

    /// After a failed growth: sets the file's length back to `before`
    /// (what a failed `fallocate` or a sparse extension took stays taken
    /// otherwise). The old header never counted the bytes past `before`
    /// and the map ends at or before it. If even that fails, the handle is
    /// poisoned (the file is intact, only longer).
    fn roll_back_length(&mut self, before: u64) {
        let now = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => u64::MAX,
        };
        if now == before {
            return;
        }
        match self.file.set_len(before) {
            Ok(()) => {
                self.observe(IoEvent::SetLen { len: before });
                tracing::warn!(path = %self.path.display(), len = before,
                    "growth failed: file length rolled back");
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e,
                    "growth failed and the file length could not be rolled back; handle poisoned");
                if self.poisoned.is_none() {
                    self.poisoned = Some((
                        "roll back a failed growth",
                        format!("could not set the length back to {before}: {e}"),
                    ));
                }
            }
        }
    }

    /// Moves to `layout` (growth or shrink): copies the committed checksums
    /// of full groups to the new table position (which the caller chose in
    /// space the current header does not use), with the pending ones of the
    /// commits in the log, syncs (`all`: with metadata), publishes a header
    /// with the new capacity and table, and remaps. That header includes
    /// every commit in the log (the sync made their data durable): it is a
    /// checkpoint too, and the log starts over.
    fn relocate(&mut self, layout: Layout, all: bool) -> Result<()> {
        self.copy_table(layout, all)?;
        self.publish_layout(layout)
    }

    /// The first half of `relocate`: the committed checksums written to
    /// `layout`'s table and synced. The table is copied in pieces of
    /// `TABLE_PIECE` bytes, never whole: a hostile header's capacity must
    /// not size an allocation.
    fn copy_table(&mut self, layout: Layout, all: bool) -> Result<()> {
        let groups = self.header.record_count / self.layout.packing.records_per_group;
        let old_table = self.layout.table_offset;
        let per_piece = TABLE_PIECE / CHECKSUM_ENTRY_LEN;
        let mut piece = Vec::with_capacity(TABLE_PIECE.min(groups * CHECKSUM_ENTRY_LEN) as usize);
        let pending = self.pending_crcs.sorted();
        let mut g = 0;
        while g < groups {
            let end = groups.min(g + per_piece);
            let from = (old_table + g * CHECKSUM_ENTRY_LEN) as usize;
            let to = (old_table + end * CHECKSUM_ENTRY_LEN) as usize;
            piece.clear();
            piece.extend_from_slice(&self.map[from..to]);
            let (lo, hi) = (
                pending.partition_point(|e| e.0 < g),
                pending.partition_point(|e| e.0 < end),
            );
            for &(k, crc) in &pending[lo..hi] {
                let at = ((k - g) * CHECKSUM_ENTRY_LEN) as usize;
                piece[at..at + 4].copy_from_slice(&crc.to_le_bytes());
            }
            self.write(&piece, layout.table_offset + g * CHECKSUM_ENTRY_LEN)?;
            g = end;
        }
        self.sync(all)
    }

    /// The second half of `relocate`: the header with the new layout
    /// published (a checkpoint), then the remap.
    fn publish_layout(&mut self, layout: Layout) -> Result<()> {
        let header = Header {
            capacity: layout.capacity(),
            layout,
            ..self.header
        };
        self.publish(header)?;
        self.pending_crcs.clear();
        if let Some(log) = self.log.as_mut() {
            log.end = 0;
            log.commits = 0;
        }
        // Map first: on failure the old map and layout stay consistent for reads.
        self.map = match sys::RecordMap::map(&self.file, layout.file_len()) {
            Ok(m) => m,
            Err(e) => return Err(self.poison("mmap", e)),
        };
        self.map.set_pattern(&self.file, self.pattern);
        self.layout = layout;
        self.sync_window();
        Ok(())
    }

    /// Shrinks the file to the smallest chunk multiple that holds the
    /// committed records, returning the bytes released (0 if nothing would
    /// shrink). Refused with [`Error::ReadersPresent`] while any
    /// [`Reader`](crate::Reader) has the store open: a process whose mapped
    /// pages are truncated away gets `SIGBUS`.
    ///
    /// Crash-safe: the new checksum table is written in space no committed
    /// record or current table uses, the header pointing at it is made
    /// durable, and only then is the file truncated.
    ///
    /// On Windows, which refuses to shrink a file any process maps, the
    /// handle unmaps the file for the truncation and maps it again; if
    /// another program still maps it, the shorter layout stays committed,
    /// the file keeps its length (which opens fine) and the result is
    /// `ReadersPresent`: compact again once that program has closed.
    ///
    /// It checkpoints first if the log holds commits, and gives the log's
    /// room back too: the log file goes back to its initial length (64 KiB,
    /// or the log size if smaller). The returned count is the data file's
    /// bytes.
    pub fn compact(&mut self) -> Result<u64> {
        self.check_writable()?;
        if self.has_uncommitted() {
            return Err(Error::InvalidOption {
                option: "compact",
                reason: "the handle has uncommitted changes: commit first".into(),
            });
        }
        let coord = self.coord.take().expect("writers have a coordination file");
        let r = coord
            .try_lock_exclusive()
            .and_then(|()| match self.log_commits() {
                0 => Ok(()),
                _ => self.checkpoint(),
            })
            .and_then(|()| self.shrink())
            .inspect(|_| self.trim_log());
        coord.unlock();
        self.coord = Some(coord);
        self.announce();
        r
    }

    fn shrink(&mut self) -> Result<u64> {
        let span = tracing::info_span!("recmap.compact", path = %self.path.display());
        let _g = span.enter();
        let p = self.layout.packing;
        let old_len = self.layout.file_len();
        let Some(new_len) = file_len_for_records(
            p,
            self.header.schema_len,
            growth_unit(self.header.chunk_size),
            self.len,
        ) else {
            return Ok(0);
        };
        let Some(layout) = Layout::fitting(p, self.header.schema_len, new_len) else {
            return Ok(0);
        };
        // The new table must lie in unused data space: past the committed
        // records, before the current table.
        let used_end =
            self.layout.data_offset + self.len.div_ceil(p.records_per_group) * p.group_bytes();
        if new_len >= old_len
            || layout.table_offset < used_end
            || layout.table_offset + layout.table_len > self.layout.table_offset
        {
            return Ok(0);
        }
        self.relocate(layout, false)?;
        let actual = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .len();
        if sys::UNMAP_BEFORE_SHRINK {
            // Windows: no view of the file may stay mapped (this handle's
            // included), or the truncation fails. The empty map lends
            // nothing until the file is mapped again below.
            self.map = sys::RecordMap::map(&self.file, 0)
                .map_err(|e| Error::io("unmap", &self.path, e))?;
        }
        let cut = self.file.set_len(new_len);
        if sys::UNMAP_BEFORE_SHRINK {
            self.map = match sys::RecordMap::map(&self.file, self.layout.file_len()) {
                Ok(m) => m,
                Err(e) => return Err(self.poison("mmap", e)),
            };
            self.map.set_pattern(&self.file, self.pattern);
            self.sync_window();
        }
        if let Err(e) = cut {
            if mapped_elsewhere(&e) {
                // Another program maps the file (readers of this store
                // were refused above): the shorter layout is committed and
                // the file keeps its length, which the layout allows;
                // compact again once it has closed.
                tracing::warn!(error = %e, "compact: the file is mapped by another program; not shrunk");
                return Err(Error::ReadersPresent {
                    path: self.path.clone(),
                });
            }
            return Err(self.poison("truncate", e));
        }
        self.observe(IoEvent::SetLen { len: new_len });
        self.sync(true)?;
        self.bytes_since_commit = 0;
        tracing::info!(old_len = actual, new_len, "compacted");
        Ok(actual.saturating_sub(new_len))
    }
}

impl RawStore {
    /// After `compact`, with no reader present: a log holding no commit
    /// (every frame in it belongs to a checkpointed cycle) goes back to its
    /// initial length, so compacting gives the log's room back too. Not
    /// synced: a crash may leave it longer, which only costs space.
    fn trim_log(&mut self) {
        let keep = self.log_limit.min(super::wal::INITIAL_LOG_LEN);
        let Some(log) = self.log.as_mut() else {
            return;
        };
        if log.commits == 0 && log.end == 0 && log.file_len > keep && log.file.set_len(keep).is_ok()
        {
            log.file_len = keep;
            self.observe(IoEvent::LogSetLen { len: keep });
            tracing::info!(len = keep, "compact: log trimmed");
        }
    }
}

/// True for Windows' refusal to shrink a file another process maps
/// (`ERROR_USER_MAPPED_FILE`, 1224); never on Unix.
fn mapped_elsewhere(e: &std::io::Error) -> bool {
    sys::UNMAP_BEFORE_SHRINK && e.raw_os_error() == Some(1224)
}
