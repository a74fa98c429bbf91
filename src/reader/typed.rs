//! The typed reader, [`Reader<T>`]: a [`RawReader`] whose stored schema
//! was checked against `T` at open, with zero-cost typed gets, snapshots
//! and read transactions over it.
//!
//! Invariant: every `Reader<T>` holds a `RawReader` whose record size is
//! `size_of::<T>()`, so its typed reads see exactly the stored records.

use super::*;

/// A typed reader; see [`RawReader`].
///
/// ```no_run
/// recmap::record! { pub struct Tick { pub ts: u64, pub price: f64 } }
/// let mut r = recmap::Reader::<Tick>::open("ticks.rmap")?;
/// let mut seen = r.generation();
/// loop {
///     if let Some(g) = r.wait_for_commit(seen, std::time::Duration::from_secs(1))? {
///         seen = g;
///         if let Some(t) = r.get(r.len() - 1)? { println!("{}", t.price); }
///     }
/// }
/// # Ok::<(), recmap::Error>(())
/// ```
pub struct Reader<T: Record> {
    pub(super) raw: RawReader,
    _t: PhantomData<T>,
}

impl<T: Record> std::fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: Record> Reader<T> {
    const PACKING: Packing = Packing::new(std::mem::size_of::<T>() as u64);

    /// Opens a typed reader; the stored schema must be `T`'s.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let raw = RawReader::open(path)?;
        Error::check_schema(raw.path(), raw.schema(), &T::schema())?;
        Ok(Reader {
            raw,
            _t: PhantomData,
        })
    }

    /// Opens a reader on a named shared store (see [`crate::shared`]).
    pub fn open_shared(name: &str) -> Result<Self> {
        let path = crate::shared::shared_path(name)?;
        // Names live in a directory every user may write: never follow a
        // link planted there, never block on a FIFO.
        crate::shared::check_shared_file(&path)?;
        let anchor = crate::shared::hold(name, &path)?;
        let mut r = Self::open(path)?;
        r.raw.anchor = anchor;
        Ok(r)
    }

    /// The untyped reader.
    pub fn raw(&self) -> &RawReader {
        &self.raw
    }

    /// See [`RawReader::set_access`].
    pub fn set_access(&mut self, pattern: crate::access::AccessPattern) {
        self.raw.set_access(pattern)
    }

    /// See [`RawReader::advise`].
    pub fn advise(&self, range: std::ops::Range<u64>, advice: crate::access::Advice) {
        self.raw.advise(range, advice)
    }

    /// Record `i`, copied out and validated (never torn); `None` past the
    /// adopted length.
    #[inline(always)]
    pub fn get(&self, i: u64) -> Result<Option<T>> {
        let raw = &self.raw;
        let token = raw.quiet;
        // The one bounds check: the slot is inside the adopted records.
        let Some(slot) = raw.map.slot::<T>(i) else {
            return self.get_unwindowed(i);
        };
        let v = slot.read();
        // Nothing written since the adopted (committed) state was taken, or
        // committed records never change: the copy is whole and committed.
        if raw.applied_nothing_since(token) || raw.is_append_only() {
            return Ok(Some(v));
        }
        let group = Self::PACKING.group_of(i);
        if let Some(v) = raw.try_read(group, || slot.read()) {
            return Ok(Some(v));
        }
        let mut v = T::zeroed();
        raw.read_contended(i, group, raw.offset(i), bytemuck::bytes_of_mut(&mut v))?;
        Ok(Some(v))
    }

    /// `get` outside the window: past the end, or with an overlay.
    #[cold]
    #[inline(never)]
    fn get_unwindowed(&self, i: u64) -> Result<Option<T>> {
        let mut v = T::zeroed();
        Ok(self
            .raw
            .read_into(i, bytemuck::bytes_of_mut(&mut v))?
            .then_some(v))
    }

    /// A snapshot of the adopted commit (after adopting the newest).
    pub fn snapshot(&mut self) -> Result<Snapshot<'_, T>> {
        self.raw.refresh()?;
        Ok(Snapshot::new(&self.raw))
    }

    /// Runs `f` on a snapshot of the newest commit; if a read in it fails
    /// with [`Error::SnapshotExpired`] (a later commit changed a page it
    /// needed), runs it again on a new snapshot, up to `READ_TXN_TRIES`
    /// times in all, then returns that error. `f` must not keep results of
    /// an attempt that failed. Between attempts it sleeps, 50 µs doubling
    /// to 20 ms (about 1.7 s over all attempts): a snapshot expires while a
    /// checkpoint rewrites its pages, and a checkpoint on a busy machine
    /// outlasts any number of immediate retries.
    pub fn read_txn<R>(&mut self, mut f: impl FnMut(&Snapshot<'_, T>) -> Result<R>) -> Result<R> {
        let mut tries = 0;
        loop {
            let snap = self.snapshot()?;
            match f(&snap) {
                Err(Error::SnapshotExpired { .. }) if tries + 1 < READ_TXN_TRIES => {
                    tries += 1;
                    let us = (50u64 << tries.min(9)).min(20_000);
                    std::thread::sleep(std::time::Duration::from_micros(us));
                }
                r => return r,
            }
        }
    }

    /// Record `i` of an append-only store, zero-copy. `None` past the
    /// adopted length; `InvalidOption` on a store that is not append-only
    /// (use [`get`](Self::get)). Inside the adopted records it costs the
    /// flag test and the one bounds check of [`Store::get`](crate::Store::get).
    #[inline(always)]
    pub fn get_ref(&self, i: u64) -> Result<Option<&T>> {
        let raw = &self.raw;
        if raw.is_append_only() {
            if let Some(slot) = raw.map.slot::<T>(i) {
                // Committed records of an append-only store are never
                // written again while readers exist (`Slot::lend`).
                return Ok(Some(slot.lend()));
            }
        }
        self.get_ref_unwindowed(i)
    }

    /// `get_ref` outside the window (past the end, with an overlay, or a
    /// store that is not append-only): the checked path.
    #[cold]
    #[inline(never)]
    fn get_ref_unwindowed(&self, i: u64) -> Result<Option<&T>> {
        Ok(self.raw.get_ref(i)?.map(bytemuck::from_bytes))
    }

    /// See [`RawReader::refresh`].
    pub fn refresh(&mut self) -> Result<bool> {
        self.raw.refresh()
    }
    /// See [`RawReader::wait_for_commit`].
    pub fn wait_for_commit(
        &mut self,
        after_generation: u64,
        timeout: Duration,
    ) -> Result<Option<u64>> {
        self.raw.wait_for_commit(after_generation, timeout)
    }
    /// Committed records as of the adopted commit.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }
    /// True when the adopted commit has no records.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    /// Generation of the adopted commit.
    pub fn generation(&self) -> u64 {
        self.raw.generation()
    }
    /// True for append-only stores.
    pub fn is_append_only(&self) -> bool {
        self.raw.is_append_only()
    }
}
