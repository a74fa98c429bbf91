//! Staging: appends and in-place updates before their commit. Appended
//! records collect in a page-aligned staging buffer and are written past the
//! committed count in runs of about `STAGE_LIMIT` bytes (large dense appends
//! directly); nothing reads those bytes until a commit counts them. Updates
//! of committed records go to the overlay and nowhere else: no byte of a
//! committed record changes in the file, and no other handle sees an
//! update, before the commit that contains it is durable (`commit`).
//!
//! Invariants:
//! - records `[0, flushed)` are in the file, `[flushed, len)` only in the
//!   staging buffer, which starts at data-relative byte `stage_base`
//!   (page-aligned); `len <= capacity` (`reserve` grows the file first);
//! - uncommitted updates of records below the committed count are in the
//!   overlay, their groups in `dirty_groups`; `get` returns the overlay's
//!   image first (read-your-own-writes);
//! - the map's record window is `[0, flushed)` while the overlay is empty
//!   and empty otherwise (`sync_window` after every change of the map,
//!   `flushed` or the overlay), so the typed zero-copy `get` never sees a
//!   record that is only staged or has a newer image;
//! - every change checks that the handle is writable (not read-only, not
//!   poisoned); in an append-only store committed records never change.

use super::overlay::Page;
use super::{Access, RawStore};
use crate::error::{Error, Result};
use crate::format::{FLAG_APPEND_ONLY, PAGE_SIZE};

/// Appends are staged in memory and written in runs of about this size.
pub(super) const STAGE_LIMIT: usize = 1 << 20;

impl RawStore {
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.access == Access::ReadOnly {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        if let Some((op, reason)) = &self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                op,
                reason: reason.clone(),
            });
        }
        Ok(())
    }

    /// `AppendOnly` if record `i` is committed in an append-only store.
    pub(crate) fn check_mutable(&self, i: u64) -> Result<()> {
        if i < self.header.record_count && self.header.flags & FLAG_APPEND_ONLY != 0 {
            return Err(Error::AppendOnly {
                path: self.path.clone(),
                index: i,
            });
        }
        Ok(())
    }

    fn check_record(&self, bytes: &[u8], n: u64) -> Result<()> {
        let want = self.schema.record_size as u64 * n;
        if bytes.len() as u64 != want {
            return Err(Error::InvalidOption {
                option: "record bytes",
                reason: format!(
                    "got {} bytes, expected {want} ({n} records of {})",
                    bytes.len(),
                    self.schema.record_size
                ),
            });
        }
        Ok(())
    }

    /// Appends one record (exactly `record_size` bytes); returns its index.
    pub fn push(&mut self, record: &[u8]) -> Result<u64> {
        self.check_writable()?;
        self.check_record(record, 1)?;
        let i = self.len;
        self.reserve(1)?;
        self.stage_slot(i).copy_from_slice(record);
        self.len += 1;
        if self.stage.len() * PAGE_SIZE as usize >= STAGE_LIMIT {
            self.flush_stage()?;
        }
        Ok(i)
    }

    /// Appends records given as consecutive bytes; returns the first index.
    pub fn extend_from_bytes(&mut self, records: &[u8]) -> Result<u64> {
        self.check_writable()?;
        let size = self.schema.record_size as usize;
        if !records.len().is_multiple_of(size) {
            self.check_record(records, (records.len() / size) as u64 + 1)?;
        }
        let n = (records.len() / size) as u64;
        let first = self.len;
        if n == 0 {
            return Ok(first);
        }
        self.reserve(n)?;
        let p = self.layout.packing;
        if p.is_dense() && records.len() >= STAGE_LIMIT / 4 {
            // Dense layout: the input is already in file order; write it directly.
            self.flush_stage()?;
            let off = self.layout.record_file_offset(first);
            self.write_records(records, off, first, first + n, self.header.generation + 1)?;
            // The commit syncs these bytes before its frame: have the device
            // start on them now, while the caller prepares the next batch.
            crate::sys::start_writeback(&self.file, off, records.len() as u64);
            // Hash the full groups now, from the bytes just written (still
            // in the cache): the commit would read them back through the map.
            let rpg = p.records_per_group;
            let group_bytes = (rpg * size as u64) as usize;
            let mut g = first.div_ceil(rpg);
            while (g + 1) * rpg <= first + n {
                let at = ((g * rpg - first) as usize) * size;
                let crc = crc32fast::hash(&records[at..at + group_bytes]);
                self.append_crcs.insert(g, crc);
                g += 1;
            }
            self.len += n;
            self.flushed = self.len;
            self.sync_window();
            return Ok(first);
        }
        let mut src = records;
        while !src.is_empty() {
            let i = self.len;
            let k = (p.records_per_group - i % p.records_per_group).min((src.len() / size) as u64);
            let bytes = k as usize * size;
            self.stage_run(i, k).copy_from_slice(&src[..bytes]);
            src = &src[bytes..];
            self.len += k;
            if self.stage.len() * PAGE_SIZE as usize >= STAGE_LIMIT {
                self.flush_stage()?;
            }
        }
        Ok(first)
    }

    /// Overwrites record `i` (< len). A committed record's new image is held
    /// in memory until `commit` logs it, and discarded by `rollback`; `get`
    /// returns it meanwhile.
    pub fn set(&mut self, i: u64, record: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.check_record(record, 1)?;
        if i >= self.len {
            return Err(Error::IndexOutOfBounds {
                index: i,
                len: self.len,
            });
        }
        self.check_mutable(i)?;
        if i >= self.flushed {
            self.stage_slot(i).copy_from_slice(record);
            return Ok(());
        }
        if i >= self.header.record_count {
            // An uncommitted append already written past the committed
            // count: nothing reads it before the commit that counts it.
            let next = self.header.generation + 1;
            self.append_crcs.remove(&self.layout.packing.group_of(i));
            return self.write_records(record, self.layout.record_file_offset(i), i, i + 1, next);
        }
        let was_empty = self.overlay.is_empty();
        self.overlay.set(i, record);
        self.dirty_groups.insert(self.layout.packing.group_of(i));
        if was_empty {
            self.sync_window();
        }
        Ok(())
    }

    /// Discards every change since the last commit: staged and written
    /// appends (their bytes past the committed count are never read) and
    /// in-place updates (only ever held in memory). Nothing is written.
    pub fn rollback(&mut self) -> Result<()> {
        self.check_writable()?;
        let committed = self.header.record_count;
        if !self.has_uncommitted() {
            return Ok(());
        }
        tracing::debug!(
            path = %self.path.display(),
            appends = self.len - committed,
            updates = self.overlay.len(),
            "rolled back"
        );
        self.discard_uncommitted();
        Ok(())
    }

    pub(super) fn discard_uncommitted(&mut self) {
        self.overlay.clear();
        self.append_crcs.clear();
        self.dirty_groups.clear();
        self.stage.clear();
        self.len = self.header.record_count;
        self.flushed = self.len;
        self.bytes_since_commit = 0;
        self.sync_window();
    }

    /// Makes room for `n` more records, growing the file if needed.
    pub fn reserve(&mut self, n: u64) -> Result<()> {
        self.check_writable()?;
        let need = self.len.checked_add(n).ok_or(Error::FileTooLarge {
            path: self.path.clone(),
            wanted: u64::MAX,
        })?;
        if need > self.layout.capacity() {
            self.grow(need)?;
        }
        Ok(())
    }

    /// The staging bytes of record `i` (`flushed <= i`, `i < capacity`).
    fn stage_slot(&mut self, i: u64) -> &mut [u8] {
        self.stage_run(i, 1)
    }

    /// The staging bytes of records `[i, i + k)`, all in one group.
    fn stage_run(&mut self, i: u64, k: u64) -> &mut [u8] {
        let p = self.layout.packing;
        let rel = p.record_offset(i);
        if self.flushed == self.len && self.stage.is_empty() {
            self.stage_base = rel / PAGE_SIZE * PAGE_SIZE;
        }
        let start = (rel - self.stage_base) as usize;
        let end = start + (k * p.record_size) as usize;
        let pages = end.div_ceil(PAGE_SIZE as usize);
        if self.stage.len() < pages {
            self.stage.resize(pages, Page([0; PAGE_SIZE as usize]));
        }
        &mut bytemuck::cast_slice_mut(&mut self.stage)[start..end]
    }

    /// Writes staged records to the file.
    pub(super) fn flush_stage(&mut self) -> Result<()> {
        if self.flushed < self.len {
            let p = self.layout.packing;
            let from = p.record_offset(self.flushed);
            let to = p.record_offset(self.len - 1) + p.record_size;
            let range = (from - self.stage_base) as usize..(to - self.stage_base) as usize;
            let stage = std::mem::take(&mut self.stage);
            let (first, end) = (self.flushed, self.len);
            let r = self.write_records(
                &bytemuck::cast_slice(&stage)[range],
                self.layout.data_offset + from,
                first,
                end,
                self.header.generation + 1,
            );
            self.stage = stage;
            r?;
            self.flushed = self.len;
            self.sync_window();
        }
        self.stage.clear();
        if self.stage.capacity() > STAGE_LIMIT / PAGE_SIZE as usize * 2 {
            self.stage.shrink_to(STAGE_LIMIT / PAGE_SIZE as usize);
        }
        Ok(())
    }

    /// Lets `record` (the typed zero-copy `get`) see exactly the records
    /// written to the file, `[0, flushed)`, while no record has a newer image
    /// in the overlay (then none: every read takes the checked path, which
    /// looks there first). Called whenever the map, `flushed` or the
    /// overlay's emptiness changes; the map refuses (and empties the window)
    /// if the records did not fit, which would send every read to the
    /// checked path.
    pub(super) fn sync_window(&mut self) {
        let visible = if self.overlay.is_empty() {
            self.flushed
        } else {
            0
        };
        let ok = self.map.set_records(
            self.layout.data_offset,
            self.schema.record_size as u64,
            self.schema.record_align as u64,
            visible,
        );
        debug_assert!(ok, "flushed records outside the map");
    }
}
