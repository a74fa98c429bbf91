//! Read transactions: [`Snapshot`] (typed) and [`RawSnapshot`] read every
//! record as of one commit, the one their reader adopted.
//!
//! Invariant: a value is returned only if it belongs to that commit. A
//! writer changes a committed record in the data file only after the commit
//! that changes it is durable, inside the page's stripe, whose word then
//! reads at least `2 * that generation` (words only grow; odd while the
//! change is being written). So a copy taken between two loads of an even
//! word `w <= 2 * generation`, with the word unchanged after, was last
//! changed by a commit at or before the snapshot's and not since: it is the
//! record as of the snapshot. Any other word means a later commit changed
//! the page: the read fails with [`Error::SnapshotExpired`] rather than
//! mixing commits. Records the reader holds in its overlay (a log no
//! writer replayed) are the snapshot's by construction. Append-only stores
//! need no check: committed records never change.
//!
//! Faster still while no writer touches the data pages: the reader took
//! the coordination file's apply sequence (odd from a writer's first
//! data-page write until its next publish) before adopting its state, and
//! while that still reads the same even value no page was written since,
//! so a copy followed by one load of that word needs no stripe at all.
//!
//! Snapshots are optimistic: they take no lock and the writer never waits
//! for them; a long snapshot over pages a writer keeps changing expires.
//! Stripes are per group modulo `coord::STRIPES`, so a commit may also
//! expire snapshots of unrelated pages that share its stripe.

use crate::error::{Error, Result};
use crate::format::Packing;
use crate::reader::{RawReader, Unwindowed};
use crate::record::Record;
use crate::sys::{Slot, TypedWindow};
use std::sync::atomic::AtomicU64;

/// `true` if a stripe word lets a snapshot of `generation` use a copy:
/// even and at most `2 * generation`. One compare: rotating moves the odd
/// bit to the top, which makes any odd word larger than every generation.
#[inline(always)]
pub(crate) fn serves(word: u64, generation: u64) -> bool {
    word.rotate_right(1) <= generation
}

/// An untyped read transaction on a [`RawReader`]'s adopted commit.
#[derive(Debug, Clone, Copy)]
pub struct RawSnapshot<'r> {
    pub(crate) reader: &'r RawReader,
}

impl<'r> RawSnapshot<'r> {
    /// The commit this snapshot reads.
    pub fn generation(&self) -> u64 {
        self.reader.generation()
    }
    /// Records in that commit.
    pub fn len(&self) -> u64 {
        self.reader.len()
    }
    /// True when that commit has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies record `i` as of the snapshot into `dst` (`record_size`
    /// bytes). `Ok(false)` past the end.
    pub fn read_into(&self, i: u64, dst: &mut [u8]) -> Result<bool> {
        self.read_range_bytes(i, dst).map(|n| n == 1)
    }

    /// Copies records `first..` as of the snapshot into `dst` (a whole
    /// number of records), returning how many were copied (fewer at the end
    /// of the snapshot). Bulk reads of data not cached go through `pread`,
    /// as [`Snapshot::read_range`] says.
    pub fn read_range_bytes(&self, first: u64, dst: &mut [u8]) -> Result<u64> {
        let r = self.reader;
        let size = r.schema().record_size as usize;
        if !dst.len().is_multiple_of(size) {
            return Err(Error::InvalidOption {
                option: "buffer",
                reason: format!(
                    "{} bytes is not a whole number of {size}-byte records",
                    dst.len()
                ),
            });
        }
        let n = ((dst.len() / size) as u64).min(self.len().saturating_sub(first));
        if n == 0 {
            // Also keeps the chunk arithmetic below away from any `first`
            // past the end (it could overflow near `u64::MAX`).
            return Ok(0);
        }
        let p = r.packing();
        // A bulk read goes a chunk at a time; a chunk the page cache does
        // not hold whole is read through `pread` (the kernel's read-ahead
        // keeps the device busy, which faults through the map do not), the
        // rest is copied from the map.
        let chunk = crate::stream::Stream::chunk(p);
        let first_end = ((first / chunk + 1) * chunk).min(first + n);
        let mut stream = r
            .stream
            .should(first, n, size as u64, || r.is_cached(first, first_end));
        let mut i = first;
        while i < first + n {
            let end = ((i / chunk + 1) * chunk).min(first + n);
            let out = &mut dst[((i - first) as usize) * size..((end - first) as usize) * size];
            if stream {
                if r.cold_copy(i, end, out)? {
                    i = end;
                    r.stream.reached(end);
                    continue;
                }
                // It cannot vouch for this reader's copies: the map's path
                // from here on.
                stream = false;
                r.stream.reached(u64::MAX);
            }
            r.prefetch_for(i, end);
            // While no writer wrote a data page since the snapshot's state
            // was taken, the whole chunk is one copy and one check.
            if p.is_dense() && r.copy_quiet(i, end, out) {
                i = end;
                continue;
            }
            while i < end {
                // One group at a time: one stripe check per group.
                let g = p.group_of(i);
                let g_end = ((g + 1) * p.records_per_group).min(end);
                let k = ((i - first) as usize) * size;
                let out = &mut dst[k..((g_end - first) as usize) * size];
                r.snapshot_copy(i, g_end, g, self.generation(), out)?;
                i = g_end;
            }
        }
        Ok(n)
    }
}

/// A typed read transaction: every record it returns belongs to one
/// commit, so invariants that span records hold. From
/// [`Reader::snapshot`](crate::Reader::snapshot) or
/// [`Reader::read_txn`](crate::Reader::read_txn).
pub struct Snapshot<'r, T: Record> {
    raw: &'r RawReader,
    /// The reader's window as `T`s (empty while it holds an overlay).
    slots: TypedWindow<'r, T>,
    /// `quiet` holds `token` while no data page was written since the
    /// adopted state was taken (`RawReader::quiet_check`).
    quiet: &'r AtomicU64,
    token: u64,
}

impl<T: Record> std::fmt::Debug for Snapshot<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.raw.generation())
            .field("len", &self.raw.len())
            .finish()
    }
}

impl<'r, T: Record> Snapshot<'r, T> {
    const PACKING: Packing = Packing::new(std::mem::size_of::<T>() as u64);

    /// A snapshot of `raw`'s adopted commit (`Reader<T>` checked that `T`
    /// is the stored layout).
    pub(crate) fn new(raw: &'r RawReader) -> Self {
        let (quiet, token) = raw.quiet_check();
        Snapshot {
            raw,
            slots: raw.typed_window::<T>(),
            quiet,
            token,
        }
    }

    /// The commit this snapshot reads.
    pub fn generation(&self) -> u64 {
        self.raw.generation()
    }
    /// Records in that commit.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }
    /// True when that commit has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The untyped view of the same snapshot.
    pub fn raw(&self) -> RawSnapshot<'r> {
        RawSnapshot { reader: self.raw }
    }

    /// Record `i` as of the snapshot, or `None` past its end;
    /// `SnapshotExpired` if a later commit changed its page.
    #[inline(always)]
    pub fn get(&self, i: u64) -> Result<Option<T>> {
        // Every path copies the record with the inline slot reads below
        // (never a slow path's own copy), so no slow path's value merges
        // through memory with the fast path's in a caller's loop; the fast
        // path validates its copy with one word load.
        // The fast path reads only this snapshot's own fields (kept in
        // registers: the slow paths are passed values, never `self`), the
        // record and the word: a random-get loop is bounded by the loads
        // in flight.
        let slot = match self.slots.slot(i) {
            Some(slot) => slot,
            None => match Self::locate(self.raw, i) {
                Some(slot) => slot,
                None => return Ok(None),
            },
        };
        let v = slot.read();
        // No data page written since the adopted state was taken (a word no
        // writer touches while idle; never written for append-only
        // stores): the copy is of that state.
        if crate::sys::seq_recheck(self.quiet, self.token) {
            return Ok(Some(v));
        }
        // A writer applied something since: the page's stripe decides.
        let (word, expect) = Self::stripe(self.raw, i)?;
        let v = slot.read();
        if crate::sys::seq_recheck(word, expect) {
            return Ok(Some(v));
        }
        Err(Self::expired(self.raw, i))
    }

    /// Where `get` finds record `i` outside the window: `None` past the
    /// end; an overlay image; or the map after all (any record while the
    /// window lends none).
    #[cold]
    #[inline(never)]
    fn locate(raw: &'r RawReader, i: u64) -> Option<Slot<'r, T>> {
        match raw.unwindowed::<T>(i) {
            Unwindowed::Map(slot) => Some(slot),
            Unwindowed::Image(v) => Some(Slot::of_ref(v)),
            Unwindowed::End => None,
        }
    }

    /// The word that validates a copy of record `i` made from now on, and
    /// the value it must keep: the stripe word of the record's page, or for
    /// an overlay image (which never changes) a word nobody writes;
    /// `SnapshotExpired` if the stripe already says a later commit changed
    /// the page (or is changing it).
    #[cold]
    #[inline(never)]
    fn stripe(raw: &'r RawReader, i: u64) -> Result<(&'r AtomicU64, u64)> {
        if matches!(raw.unwindowed::<T>(i), Unwindowed::Image(_)) {
            return Ok((&crate::sys::NEVER_WRITTEN, 0));
        }
        let g = Self::PACKING.group_of(i);
        let w = raw.stripe_begin(g);
        if serves(w, raw.generation()) {
            Ok((raw.stripe_word(g), w))
        } else {
            Err(Self::expired(raw, i))
        }
    }

    #[cold]
    #[inline(never)]
    fn expired(raw: &RawReader, i: u64) -> Error {
        Error::SnapshotExpired {
            generation: raw.generation(),
            index: i,
        }
    }

    /// Copies records `first..` as of the snapshot into `out`, returning
    /// how many were copied (fewer at the end of the snapshot).
    ///
    /// The bulk read of the crate: a read of at least 64 KiB of records the
    /// page cache does not hold goes through `pread` (Linux), which reads
    /// a cold store at the device's sequential rate; mapped scans
    /// (`iter`, `Store::iter`) fault their way through at a fraction of it
    /// (docs/concurrency.md, docs/benchmarks.md). `SnapshotExpired` if a
    /// later commit changed a page the read reached.
    ///
    /// For a scan of cached records, [`Snapshot::iter`] or a buffer of
    /// about a page is fastest: a copy into a buffer larger than the L1
    /// cache costs about a third more than reading the map in place, any
    /// copy (glibc's `memcpy` into the same buffer measured the same), and
    /// the caller's pass then reads it back from L2 (a 256 KiB buffer
    /// 0.57-0.9× a `Store::iter` scan, a 4 KiB one 1.1-1.9×, depending on
    /// the machine's memory speed at the time; `benches/snapshot_scan.rs`,
    /// docs/benchmarks.md).
    pub fn read_range(&self, first: u64, out: &mut [T]) -> Result<usize> {
        let n = self
            .raw()
            .read_range_bytes(first, bytemuck::cast_slice_mut(out))?;
        Ok(n as usize)
    }

    /// Iterates over records `range` as of the snapshot, a page at a time.
    /// An item is `Err(SnapshotExpired)` (and the iteration ends) if a later
    /// commit changed a page the iterator reached.
    pub fn iter(&self, range: std::ops::Range<u64>) -> SnapshotIter<'_, 'r, T> {
        SnapshotIter {
            snap: self,
            next: range.start,
            end: range.end.min(self.len()),
            buf: Vec::new(),
            at: 0,
            failed: false,
        }
    }
}

/// Iterator of [`Snapshot::iter`]: copies one page of records at a time
/// (one check per copy: of the apply sequence while no writer wrote since
/// the snapshot, else of the page's stripe), then yields them.
pub struct SnapshotIter<'s, 'r, T: Record> {
    snap: &'s Snapshot<'r, T>,
    next: u64,
    end: u64,
    buf: Vec<T>,
    at: usize,
    failed: bool,
}

impl<T: Record> std::fmt::Debug for SnapshotIter<'_, '_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotIter")
            .field("next", &self.next)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<T: Record> Iterator for SnapshotIter<'_, '_, T> {
    type Item = Result<T>;
    #[inline]
    fn next(&mut self) -> Option<Result<T>> {
        if let Some(v) = self.buf.get(self.at) {
            self.at += 1;
            return Some(Ok(*v));
        }
        if self.failed || self.next >= self.end {
            return None;
        }
        let p = Snapshot::<T>::PACKING;
        let group_end = (p.group_of(self.next) + 1) * p.records_per_group;
        let n = (group_end.min(self.end) - self.next) as usize;
        self.buf.resize(n, T::zeroed());
        if let Err(e) = self.snap.read_range(self.next, &mut self.buf) {
            self.failed = true;
            self.buf.clear();
            return Some(Err(e));
        }
        self.next += n as u64;
        self.at = 1;
        Some(Ok(self.buf[0]))
    }
}
