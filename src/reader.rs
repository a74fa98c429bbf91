//! Readers beside a live writer, in this or other processes: [`RawReader`]
//! and typed [`Reader<T>`].
//!
//! A reader takes no lock the writer waits on (only a shared lock on the
//! coordination file, which nothing but shrinking conflicts with). It
//! adopts a commit (its record count; `refresh` adopts the newest) and
//! reads only committed data: a writer changes a committed record in the
//! data file only after the commit that changes it is durable. It never
//! holds a `&T` into memory the writer may change: records are copied out
//! with atomic loads and validated by the page's stripe word, so a record
//! being updated is read wholly old or wholly new. Only append-only stores
//! lend `&T` (their committed records never change).
//!
//! `get` reads the newest committed value of a record (read committed). A
//! snapshot ([`Snapshot`], [`RawSnapshot`]) reads every record as of the
//! adopted commit: a copy counts only if the stripe word says no later
//! commit changed the page (`word <= 2 * generation`, even); otherwise the
//! read fails with [`Error::SnapshotExpired`] instead of mixing commits,
//! and [`Reader::read_txn`] retries the whole read on a new snapshot.
//!
//! Without a live writer, a reader adopts the data header plus the commits
//! of a log no writer has replayed yet, whose records it holds in memory
//! (the overlay) in front of the map.

use crate::coord::Coord;
use crate::error::{Error, Result};
use crate::format::wal::record_entries;
use crate::format::{Header, Packing, FLAG_APPEND_ONLY};
use crate::record::Record;
use crate::schema::Schema;
use crate::snapshot::{serves, RawSnapshot, Snapshot};
use crate::store::overlay::Overlay;
use crate::store::wal::{scan, Log};
use crate::store::{open_data_file, read_header, read_schema};
use crate::sys::{SharedMap, Slot};
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Page checksums through a reader (`PageSums`), `info`, `writer_pid`.
mod bulk;
mod typed;
mod verify;

pub use typed::Reader;
pub use verify::PageSums;

/// Spins on an odd stripe before checking whether the writer is alive.
const SPINS_BEFORE_CHECK: u32 = 1 << 16;
/// Attempts `read_txn` makes before returning `SnapshotExpired`.
pub const READ_TXN_TRIES: u32 = 100;

/// True if a writer holds the store: every writer holds the exclusive lock
/// on the data file, so a shared lock attempt on our own descriptor fails
/// exactly while one lives (pid checks would be fooled by pid reuse and pid
/// namespaces).
fn writer_alive(file: &File) -> bool {
    match crate::sys::try_lock(file, crate::sys::LockKind::Shared) {
        Ok(()) => {
            let _ = crate::sys::unlock(file);
            false
        }
        Err(_) => true,
    }
}

/// An untyped reader: records as bytes, copied out.
pub struct RawReader {
    path: PathBuf,
    file: File,
    coord: Coord,
    map: SharedMap,
    /// The adopted state: the layout of a data header, with the adopted
    /// commit's generation and record count.
    header: Header,
    schema: Schema,
    /// Records of commits in a log no writer has replayed (empty otherwise).
    overlay: Overlay,
    /// The coordination file's generation when the state was adopted.
    seen: u64,
    /// The apply sequence read before the state was adopted, if even
    /// (`u64::MAX`, which it never reads, otherwise): while it reads the
    /// same, the data pages hold the adopted state (`Coord::apply_seq`).
    quiet: u64,
    /// The access pattern applied to every mapping (`set_access`).
    pattern: crate::access::AccessPattern,
    /// Bulk reads of data not cached (`cold_copy`).
    pub(crate) stream: crate::stream::Stream,
    /// A named shared store's lifetime anchor (Windows; see
    /// [`crate::shared`]). Last, so it drops after the files close.
    anchor: Option<crate::shared::Anchor>,
}

impl std::fmt::Debug for RawReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReader")
            .field("path", &self.path)
            .field("len", &self.header.record_count)
            .field("generation", &self.header.generation)
            .finish_non_exhaustive()
    }
}

impl RawReader {
    /// Opens a reader on a store that may have a live writer.
    pub fn open(path: impl AsRef<Path>) -> Result<RawReader> {
        let path = path.as_ref();
        let span = tracing::info_span!("recmap.reader.open", path = %path.display());
        let _g = span.enter();
        let file = open_data_file(path, false)?;
        let coord = Coord::open(path, &file, false)?;
        coord.lock_shared()?;
        let seen = coord.generation();
        let (header, overlay, quiet) = Self::adopt(&file, path, &coord)?;
        let mut map = Self::map_for(&file, path, &header)?;
        let pattern = crate::access::AccessPattern::default();
        map.set_pattern(&file, pattern);
        Self::set_window(&mut map, path, &header, &overlay)?;
        let schema = read_schema(&file, path, &header)?;
        tracing::info!(
            generation = header.generation,
            records = header.record_count,
            "reader opened"
        );
        Ok(RawReader {
            path: path.to_path_buf(),
            file,
            coord,
            map,
            header,
            schema,
            overlay,
            seen,
            quiet,
            pattern,
            stream: crate::stream::Stream::new(),
            anchor: None,
        })
    }

    /// The state to adopt. With a live writer that has published one: the
    /// published commit, with the layout of the newest valid header (the
    /// one it follows, or a newer one: layouts only grow while readers
    /// exist). Otherwise (no writer, or one still recovering): the newest
    /// valid header and the complete commits of its log, whose records are
    /// returned as an overlay.
    ///
    /// Also returns the apply sequence taken before the state was read (or
    /// `u64::MAX` if it was odd): the data pages then held a state no newer
    /// than the adopted one, and none written since (the writer would have
    /// made it odd), which makes it the adopted state for every record the
    /// overlay does not hold.
    fn adopt(file: &File, path: &Path, coord: &Coord) -> Result<(Header, Overlay, u64)> {
        let quiet = || match coord.apply_seq() {
            a if a.is_multiple_of(2) => a,
            _ => u64::MAX,
        };
        for _ in 0..100 {
            if !writer_alive(file) {
                break;
            }
            let token = quiet();
            let Some((generation, count, header_seq)) = coord.published() else {
                break;
            };
            let (best, _, _, _) = read_header(file, path, generation)?;
            if best.header_seq < header_seq || count > best.capacity {
                // A header being published right now: look again.
                std::thread::yield_now();
                continue;
            }
            let h = Header {
                generation,
                record_count: count,
                ..best
            };
            return Ok((h, Overlay::new(h.layout.packing), token));
        }
        // The header and its log, read again if a writer checkpointed in
        // between (the log then follows a newer header, and the scan would
        // end early at an older state).
        let mut tries = 0;
        loop {
            let token = quiet();
            let (mut h, _, _, _) = read_header(file, path, 0)?;
            let mut overlay = Overlay::new(h.layout.packing);
            let mut lost = Ok(());
            if let Some((log, log_path)) = Log::open_for_read(path, file)? {
                let size = h.layout.packing.record_size;
                let replay = scan(&log, &log_path, &h, |f, b| {
                    for (i, rec) in record_entries(f, b, size) {
                        overlay.set(i, rec);
                    }
                    Ok(())
                })?;
                lost = replay.lost_header(&log_path, &h);
                h.generation = replay.generation;
                h.record_count = replay.record_count;
                h.tail_crc = replay.tail_crc;
            }
            let (now, _, _, _) = read_header(file, path, 0)?;
            tries += 1;
            if now.header_seq == h.header_seq {
                // Frames of a later cycle under an unchanged header: not a
                // checkpoint in between, a lost header.
                lost?;
                return Ok((h, overlay, token));
            }
            if tries >= 100 {
                return Ok((h, overlay, token));
            }
        }
    }

    /// Lets typed reads see exactly the header's records (the map covers
    /// the header's layout, checked by `map_for`).
    /// (With an overlay, the window is empty: every read takes the checked
    /// path, which looks there first.)
    fn set_window(
        map: &mut SharedMap,
        path: &Path,
        header: &Header,
        overlay: &Overlay,
    ) -> Result<()> {
        let fits = map.set_records(
            header.layout.data_offset,
            header.record_size as u64,
            header.record_align as u64,
            header.record_count,
            overlay.is_empty(),
        );
        if fits {
            Ok(())
        } else {
            Err(Error::NotRecmap {
                path: path.into(),
                reason: format!(
                    "header generation {} counts {} records past its own layout",
                    header.generation, header.record_count
                ),
            })
        }
    }

    fn map_for(file: &File, path: &Path, header: &Header) -> Result<SharedMap> {
        let need = header.layout.file_len();
        let actual = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if actual < need {
            return Err(Error::Truncated {
                path: path.into(),
                expected: need,
                actual,
            });
        }
        SharedMap::map(file, need).map_err(|e| Error::io("mmap", path, e))
    }

    /// Adopts the newest commit. Cheap (one atomic load) when nothing was
    /// committed since; otherwise reads the header and maps any new chunks.
    /// Returns true if a newer commit was adopted. Never goes backwards.
    pub fn refresh(&mut self) -> Result<bool> {
        let seen = self.coord.generation();
        if seen == self.seen {
            return Ok(false);
        }
        let (h, overlay, quiet) = Self::adopt(&self.file, &self.path, &self.coord)?;
        // Dropping an overlay for the same commit served from the data file
        // (a writer replayed the log) is not going backwards.
        let same_without_overlay = h.generation == self.header.generation
            && overlay.is_empty()
            && !self.overlay.is_empty();
        if h.generation < self.header.generation
            || (h.generation == self.header.generation && !same_without_overlay)
        {
            if h.generation == self.header.generation {
                // The data pages held this same commit when `quiet` was
                // taken: a fresher token for the state already adopted.
                self.quiet = quiet;
            }
            self.seen = seen;
            return Ok(false);
        }
        if h.record_size != self.header.record_size || h.schema_crc != self.header.schema_crc {
            return Err(Error::BadSchema {
                path: self.path.clone(),
                reason: "the record layout changed under a reader".into(),
            });
        }
        if h.layout.file_len() > self.map.len() as u64 {
            self.map = Self::map_for(&self.file, &self.path, &h)?;
            self.map.set_pattern(&self.file, self.pattern);
        }
        Self::set_window(&mut self.map, &self.path, &h, &overlay)?;
        tracing::debug!(
            generation = h.generation,
            records = h.record_count,
            "reader refreshed"
        );
        self.header = h;
        self.overlay = overlay;
        self.seen = seen;
        self.quiet = quiet;
        Ok(true)
    }

    /// Tells the kernel how this reader will read records from now on (see
    /// [`AccessPattern`](crate::AccessPattern); the default is `Random`);
    /// kept for later mappings.
    pub fn set_access(&mut self, pattern: crate::access::AccessPattern) {
        self.pattern = pattern;
        self.map.set_pattern(&self.file, pattern);
    }

    /// A hint about records `range` of the adopted commit (clamped to it):
    /// prefetch them or let the kernel drop them from the cache
    /// ([`Advice`](crate::Advice)). Never changes what a read returns.
    pub fn advise(&self, range: std::ops::Range<u64>, advice: crate::access::Advice) {
        let end = range.end.min(self.header.record_count);
        if range.start >= end {
            return;
        }
        let (from, to) = (self.offset(range.start), self.offset(end - 1));
        let to = to + self.schema.record_size as usize;
        self.map
            .advise_range(&self.file, from as u64, (to - from) as u64, advice);
    }

    /// Waits until a commit newer than `after_generation` is published, then
    /// adopts it. Returns the adopted generation, or `None` on timeout.
    /// On Linux the wait is a futex woken by the writer's commit.
    pub fn wait_for_commit(
        &mut self,
        after_generation: u64,
        timeout: Duration,
    ) -> Result<Option<u64>> {
        // `None`: a timeout too large to represent waits forever.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let announced = self.coord.generation();
            self.refresh()?;
            if self.header.generation > after_generation {
                return Ok(Some(self.header.generation));
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if now >= d => return Ok(None),
                Some(d) => d - now,
                None => Duration::from_secs(3600),
            };
            // Wait for the announcement to move past what we have seen, so
            // an announcement we cannot adopt yet does not make us spin.
            let seen = after_generation.max(self.header.generation).max(announced);
            self.coord.wait_generation(seen, left);
        }
    }

    /// Committed records as of the adopted commit.
    pub fn len(&self) -> u64 {
        self.header.record_count
    }
    /// True when the adopted commit has no records.
    pub fn is_empty(&self) -> bool {
        self.header.record_count == 0
    }

    /// True if a writer holds the store (see `writer_alive`). Used only when
    /// a stripe stays odd for long.
    fn writer_alive(&self) -> bool {
        writer_alive(&self.file)
    }
    /// Generation of the adopted commit.
    pub fn generation(&self) -> u64 {
        self.header.generation
    }
    /// The stored record layout.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// True if committed records can never change (see [`Options::append_only`](crate::Options::append_only)).
    pub fn is_append_only(&self) -> bool {
        self.header.flags & FLAG_APPEND_ONLY != 0
    }

    /// For scans under the `Random` pattern (whose faults read no more than
    /// their page), as `RawStore::prefetch_ahead` does for `Store::iter`:
    /// when records `[first, end)` start or cross a 1 MiB window and the
    /// records 8 windows ahead are not cached, asks the kernel to read the
    /// next 16 MiB now. Costs one `mincore` a window, nothing between.
    pub(crate) fn prefetch_for(&self, first: u64, end: u64) {
        if self.pattern != crate::access::AccessPattern::Random || first >= end {
            return;
        }
        let p = self.header.layout.packing;
        let window = ((1u64 << 20) / p.group_bytes()).max(1) * p.records_per_group;
        if !first.is_multiple_of(window) && first / window == (end - 1) / window {
            return;
        }
        let count = self.header.record_count;
        let probe = (first + 8 * window).min(count.saturating_sub(1));
        if !self.map.resident(self.offset(probe) as u64) {
            self.advise(
                first..first.saturating_add(16 * window),
                crate::access::Advice::WillNeed,
            );
        }
    }

    fn offset(&self, i: u64) -> usize {
        (self.header.layout.data_offset + self.header.layout.packing.record_offset(i)) as usize
    }

    /// Copies record `i` into `dst` (exactly `record_size` bytes). Returns
    /// false past the adopted length. The copy is never torn: it is retried
    /// while the writer is updating the record's page.
    #[inline]
    pub fn read_into(&self, i: u64, dst: &mut [u8]) -> Result<bool> {
        if i >= self.header.record_count {
            return Ok(false);
        }
        if dst.len() != self.schema.record_size as usize {
            return Err(Error::InvalidOption {
                option: "buffer",
                reason: format!(
                    "{} bytes, record size is {}",
                    dst.len(),
                    self.schema.record_size
                ),
            });
        }
        if let Some(b) = self.overlay_get(i) {
            dst.copy_from_slice(b);
            return Ok(true);
        }
        let p = self.header.layout.packing;
        self.read_located(i, p.group_of(i), self.offset(i), dst)
    }

    #[inline]
    fn overlay_get(&self, i: u64) -> Option<&[u8]> {
        if self.overlay.is_empty() {
            None
        } else {
            self.overlay.get(i)
        }
    }

    /// The seqlock-validated copy of record `i`, which lives in `group` at
    /// byte `off` of the file (`i` < len, `dst` of the record size).
    ///
    /// The uncontended path is kept small so that it inlines into callers'
    /// loops (random lookups overlap their cache misses only when the loop
    /// body is short); retries live in `read_contended`.
    #[inline(always)]
    fn read_located(&self, i: u64, group: u64, off: usize, dst: &mut [u8]) -> Result<bool> {
        if self.is_append_only() {
            self.map.copy_atomic(off, dst);
        } else if self
            .try_read(group, || self.map.copy_atomic(off, dst))
            .is_none()
        {
            return self.read_contended(i, group, off, dst);
        }
        Ok(true)
    }

    /// The seqlock read protocol, once: `copy` runs between two loads of
    /// `group`'s stripe and its result is kept only if the stripe was even
    /// (no write in progress) and unchanged (none overlapped the copy).
    #[inline(always)]
    fn try_read<R>(&self, group: u64, copy: impl FnOnce() -> R) -> Option<R> {
        let begin = self.coord.read_begin(group);
        if !begin.is_multiple_of(2) {
            return None;
        }
        let v = copy();
        self.coord.read_validate(group, begin).then_some(v)
    }

    /// `read_located` after a first attempt met the writer in the page's
    /// stripe: spin, then yield, checking now and then that the writer is
    /// still alive (a writer killed mid-update leaves the stripe odd).
    #[cold]
    #[inline(never)]
    fn read_contended(&self, i: u64, group: u64, off: usize, dst: &mut [u8]) -> Result<bool> {
        let mut spins = 0u32;
        let start = Instant::now();
        loop {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if spins.is_multiple_of(SPINS_BEFORE_CHECK) {
                if !self.writer_alive() {
                    let pid = self.coord.writer_pid();
                    return Err(Error::WriterDied {
                        path: self.path.clone(),
                        index: i,
                        pid,
                    });
                }
                // A live writer never holds a stripe for long: one that does
                // is stopped or hostile, and the wait is on a value another
                // process controls, so it is bounded.
                let waited = start.elapsed();
                if waited >= crate::coord::STRIPE_WAIT {
                    return Err(Error::WriterStalled {
                        path: self.path.clone(),
                        index: i,
                        pid: self.coord.writer_pid(),
                        waited_ms: waited.as_millis() as u64,
                    });
                }
            } else {
                std::thread::yield_now();
            }
            if self
                .try_read(group, || self.map.copy_atomic(off, dst))
                .is_some()
            {
                return Ok(true);
            }
        }
    }

    /// A snapshot of the adopted commit (after adopting the newest): a
    /// read transaction; see [`RawSnapshot`].
    pub fn snapshot(&mut self) -> Result<RawSnapshot<'_>> {
        self.refresh()?;
        Ok(RawSnapshot { reader: self })
    }

    pub(crate) fn packing(&self) -> Packing {
        self.header.layout.packing
    }

    /// Where a typed read finds record `i` when the window has none: past
    /// the end, in the overlay, or in the map after all (any record while
    /// the window lends none).
    ///
    /// No step can panic, allocate or write memory other than the result,
    /// so the compiler infers that a call of it writes nothing of the
    /// reader's: a caller's lookup loop then keeps the reader's fields in
    /// registers across it, where any call that might write memory makes
    /// every lookup read them again. `#[inline]` (it is cold, so it is not
    /// inlined) gives each codegen unit its own copy, whose attributes the
    /// compiler sees; a copy in another unit would be opaque.
    #[cold]
    #[inline]
    pub(crate) fn unwindowed<T: bytemuck::Pod>(&self, i: u64) -> Unwindowed<'_, T> {
        let Some(slot) = self.map.any_slot::<T>(i) else {
            return Unwindowed::End;
        };
        // The overlay holds images of exactly `record_size` bytes, which is
        // `T`'s size (`Reader<T>` checked the schema), aligned like records
        // in the map; `try_` keeps the impossible mismatch from being a panic.
        match self
            .overlay_get(i)
            .and_then(|b| bytemuck::try_from_bytes(b).ok())
        {
            Some(v) => Unwindowed::Image(v),
            None => Unwindowed::Map(slot),
        }
    }

    /// A word and the value it holds while no data page has been written
    /// since the state was adopted: the apply sequence and `quiet`, or for
    /// append-only stores (whose committed records never change) a word
    /// nobody writes and its value.
    #[inline(always)]
    pub(crate) fn quiet_check(&self) -> (&std::sync::atomic::AtomicU64, u64) {
        if self.is_append_only() {
            (&crate::sys::NEVER_WRITTEN, 0)
        } else {
            (self.coord.apply_seq_word(), self.quiet)
        }
    }

    /// The reader's window as `T`s (empty while it holds an overlay).
    #[inline(always)]
    pub(crate) fn typed_window<T: bytemuck::Pod>(&self) -> crate::sys::TypedWindow<'_, T> {
        self.map.typed::<T>()
    }

    /// True if no data page was written since the state was adopted: copies
    /// made before this call are of the adopted state.
    #[inline(always)]
    pub(crate) fn applied_nothing_since(&self, token: u64) -> bool {
        self.coord.applied_nothing_since(token)
    }

    /// The stripe word of `group` (see `stripe_begin`).
    #[inline(always)]
    pub(crate) fn stripe_word(&self, group: u64) -> &std::sync::atomic::AtomicU64 {
        self.coord.stripe(group)
    }

    #[inline(always)]
    pub(crate) fn stripe_begin(&self, group: u64) -> u64 {
        self.coord.read_begin(group)
    }

    /// Copies records `[first, end)` (densely packed: their bytes are
    /// contiguous in the file) as of the adopted commit into `out` in one
    /// bulk copy, if that copy can be validated as a whole: no overlay, and
    /// no data page written since the state was adopted (or an append-only
    /// store). `false` if it was not (then `out` holds bytes to overwrite).
    pub(crate) fn copy_quiet(&self, first: u64, end: u64, out: &mut [u8]) -> bool {
        debug_assert!(self.packing().is_dense(), "copy_quiet of padded records");
        let append_only = self.is_append_only();
        // Checked before the copy too: once a writer has written since the
        // state was taken, no copy can pass, and the caller's per-page path
        // would copy the chunk a second time.
        if !self.overlay.is_empty()
            || first >= end
            || !(append_only || self.applied_nothing_since(self.quiet))
        {
            return false;
        }
        self.map.copy_atomic_bulk(self.offset(first), out);
        append_only || self.applied_nothing_since(self.quiet)
    }

    /// Copies records `[first, end)` of group `g` as of commit
    /// `generation` (the adopted one) into `out`; see `crate::snapshot`.
    pub(crate) fn snapshot_copy(
        &self,
        first: u64,
        end: u64,
        g: u64,
        generation: u64,
        out: &mut [u8],
    ) -> Result<()> {
        let expired = |index| Error::SnapshotExpired { generation, index };
        let size = self.schema.record_size as usize;
        if !self.overlay.is_empty() {
            for (k, i) in (first..end).enumerate() {
                let dst = &mut out[k * size..(k + 1) * size];
                if let Some(b) = self.overlay.get(i) {
                    dst.copy_from_slice(b);
                    continue;
                }
                let w = self.coord.read_begin(g);
                if !self.is_append_only() && !serves(w, generation) {
                    return Err(expired(i));
                }
                self.map.copy_atomic(self.offset(i), dst);
                if !self.is_append_only() && !self.coord.read_validate(g, w) {
                    return Err(expired(i));
                }
            }
            return Ok(());
        }
        let off = self.offset(first);
        if self.is_append_only() {
            self.map.copy_atomic(off, out);
            return Ok(());
        }
        let w = self.coord.read_begin(g);
        if serves(w, generation) {
            self.map.copy_atomic(off, out);
            if self.coord.read_validate(g, w) {
                return Ok(());
            }
        }
        Err(expired(first))
    }

    /// Record `i` copied out, or `None` past the adopted length.
    pub fn get(&self, i: u64) -> Result<Option<Vec<u8>>> {
        let mut v = vec![0u8; self.schema.record_size as usize];
        Ok(self.read_into(i, &mut v)?.then_some(v))
    }

    /// Record `i` of an append-only store, zero-copy. `None` past the
    /// adopted length. Fails with `InvalidOption` on stores that are not
    /// append-only, whose records may change under the reference.
    pub fn get_ref(&self, i: u64) -> Result<Option<&[u8]>> {
        if !self.is_append_only() {
            return Err(Error::InvalidOption {
                option: "get_ref",
                reason: "zero-copy reads beside a writer need an append-only store; use get".into(),
            });
        }
        if i >= self.header.record_count {
            return Ok(None);
        }
        if let Some(b) = self.overlay_get(i) {
            return Ok(Some(b));
        }
        // Committed records of an append-only store are never written again
        // while readers exist (see `SharedMap::stable_bytes`).
        Ok(Some(self.map.stable_bytes(
            self.offset(i),
            self.schema.record_size as usize,
        )))
    }
}

/// Record `i` outside the window, from [`RawReader::unwindowed`].
pub(crate) enum Unwindowed<'a, T> {
    /// Past the adopted length.
    End,
    /// The overlay's image, part of the adopted commit by construction.
    Image(&'a T),
    /// In the map: read it as a windowed record.
    Map(Slot<'a, T>),
}

#[cfg(test)]
mod tests {
    use crate::{Reader, Record, Store};

    crate::record! {
        /// 64 bytes: pages hold whole records (dense packing).
        struct Wide { a: [u64; 8] }
    }
    crate::record! {
        /// 24 bytes: 170 to a page, 16 bytes of each page unused.
        struct Narrow { a: u64, b: u64, c: u64 }
    }

    /// `Reader::get` and `Snapshot::get` in and outside the window: a
    /// reader with no writer adopts the commits of a log nobody replayed,
    /// holding their records in its overlay (the window is then empty).
    fn every_path<R: Record + PartialEq + std::fmt::Debug>(mk: fn(u64) -> R) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.rmap");
        let mut s = Store::<R>::create(&path).unwrap();
        for i in 0..500 {
            s.push(&mk(i)).unwrap();
        }
        s.commit().unwrap();
        {
            let mut r = Reader::<R>::open(&path).unwrap();
            assert!(r.raw.overlay.is_empty());
            for i in 0..500 {
                assert_eq!(r.get(i).unwrap(), Some(mk(i)), "windowed {i}");
            }
            assert_eq!(r.get(500).unwrap(), None);
            let snap = r.snapshot().unwrap();
            for i in 0..500 {
                assert_eq!(snap.get(i).unwrap(), Some(mk(i)), "windowed {i}");
            }
            assert_eq!(snap.get(500).unwrap(), None);
            assert_eq!(snap.get(u64::MAX).unwrap(), None);
        }
        s.set(7, &mk(1007)).unwrap();
        s.set(400, &mk(1400)).unwrap();
        s.push(&mk(500)).unwrap();
        s.commit().unwrap();
        // The commit is in the log only: no checkpoint, no replay.
        s.simulate_crash();
        let want = |i| match i {
            7 => mk(1007),
            400 => mk(1400),
            _ => mk(i),
        };
        let mut r = Reader::<R>::open(&path).unwrap();
        assert!(!r.raw.overlay.is_empty(), "the log's records are held");
        assert_eq!(r.len(), 501);
        for i in 0..501 {
            assert_eq!(r.get(i).unwrap(), Some(want(i)), "with overlay {i}");
        }
        assert_eq!(r.get(501).unwrap(), None);
        assert_eq!(r.get(u64::MAX).unwrap(), None);
        let snap = r.snapshot().unwrap();
        for i in 0..501 {
            assert_eq!(snap.get(i).unwrap(), Some(want(i)), "with overlay {i}");
        }
        assert_eq!(snap.get(501).unwrap(), None);
        assert_eq!(snap.get(u64::MAX).unwrap(), None);
    }

    /// `Reader::get_ref` of an append-only store in and outside the window:
    /// the zero-copy fast path, past the end, and the overlay of a log no
    /// writer replayed (appends only: committed records never change).
    fn every_ref<R: Record + PartialEq + std::fmt::Debug>(mk: fn(u64) -> R) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ao.rmap");
        let mut s = crate::Options::new()
            .create_new(true)
            .append_only(true)
            .open::<R>(&path)
            .unwrap();
        for i in 0..500 {
            s.push(&mk(i)).unwrap();
        }
        s.commit().unwrap();
        {
            let r = Reader::<R>::open(&path).unwrap();
            assert!(r.raw.overlay.is_empty());
            for i in 0..500 {
                assert_eq!(r.get_ref(i).unwrap(), Some(&mk(i)), "windowed {i}");
            }
            assert_eq!(r.get_ref(500).unwrap(), None);
            assert_eq!(r.get_ref(u64::MAX).unwrap(), None);
        }
        for i in 500..700 {
            s.push(&mk(i)).unwrap();
        }
        s.commit().unwrap();
        s.simulate_crash();
        let r = Reader::<R>::open(&path).unwrap();
        assert!(!r.raw.overlay.is_empty(), "the log's records are held");
        for i in 0..700 {
            assert_eq!(r.get_ref(i).unwrap(), Some(&mk(i)), "with overlay {i}");
        }
        assert_eq!(r.get_ref(700).unwrap(), None);
    }

    #[test]
    fn get_ref_finds_every_record() {
        every_ref(|i| Wide { a: [i; 8] });
        every_ref(|i| Narrow {
            a: i,
            b: !i,
            c: i * 3,
        });
    }

    #[test]
    fn get_finds_every_record() {
        every_path(|i| Wide { a: [i; 8] });
        every_path(|i| Narrow {
            a: i,
            b: !i,
            c: i * 3,
        });
    }
}
