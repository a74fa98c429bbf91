//! [`Store<T>`]: typed, zero-copy access to a [`RawStore`] whose schema is
//! `T`'s. Reads hand out `&T` straight from the map; writes go through the
//! engine.

use crate::error::{Error, Result};
use crate::format::Packing;
use crate::record::Record;
use crate::schema::Schema;
use crate::store::{CommitStats, Info, Options, RawStore, Repair, RepairReport, VerifyReport};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Range};
use std::path::Path;

/// A typed store of `T` records.
///
/// `get` returns `&T` pointing into the memory map (no copy), or into the
/// handle's own uncommitted images after `set` (read-your-own-writes).
/// Writes take `&mut self`, so no `&T` is alive while the bytes it points to
/// change in this process; other processes are kept out by the file lock (a
/// read-only handle holds a shared lock that no writer can take alongside).
/// Changes are a transaction: `commit` makes them durable all at once,
/// `rollback` (or dropping the store) discards them.
///
/// ```
/// recmap::record! { pub struct Tick { pub ts: u64, pub price: f64 } }
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("ticks.rmap");
/// let mut store = recmap::Store::<Tick>::create(&path)?;
/// let i = store.push(&Tick { ts: 1, price: 9.5 })?;
/// store.commit()?;
/// assert_eq!(store.get(i).unwrap().price, 9.5);
/// # Ok::<(), recmap::Error>(())
/// ```
pub struct Store<T: Record> {
    raw: RawStore,
    _t: PhantomData<T>,
}

impl<T: Record> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: Record> Store<T> {
    const SIZE: usize = std::mem::size_of::<T>();
    const PACKING: Packing = Packing::new(Self::SIZE as u64);

    /// Creates a new store; fails with [`Error::AlreadyExists`] if `path` exists.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Options::new().create_new(true).open(path)
    }
    /// Opens an existing store for writing (exclusive lock).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Options::new().open(path)
    }
    /// Opens an existing store read-only (shared lock; the map is read-only).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Options::new().open_read_only(path)
    }

    /// Wraps a raw store whose schema must be `T::schema()`, up to padding
    /// fields that fill gaps (the Padding section of [`record!`](crate::record)).
    pub fn from_raw(raw: RawStore) -> Result<Self> {
        Error::check_schema(raw.path(), raw.schema(), &T::schema())?;
        Ok(Store {
            raw,
            _t: PhantomData,
        })
    }

    /// The untyped store underneath.
    pub fn raw(&self) -> &RawStore {
        &self.raw
    }
    /// The untyped store underneath, for untyped writes (same schema).
    pub fn raw_mut(&mut self) -> &mut RawStore {
        &mut self.raw
    }
    /// Gives up the type.
    pub fn into_raw(self) -> RawStore {
        self.raw
    }

    /// Records in the store, including uncommitted appends.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }
    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    /// Records as of the last commit.
    pub fn committed_len(&self) -> u64 {
        self.raw.committed_len()
    }
    /// Generation of the last published header.
    pub fn generation(&self) -> u64 {
        self.raw.generation()
    }
    /// Records the file holds before it grows.
    pub fn capacity(&self) -> u64 {
        self.raw.capacity()
    }
    /// The stored schema: `T::schema()`, except that padding fields of
    /// either may be gaps in the other.
    pub fn schema(&self) -> &Schema {
        self.raw.schema()
    }
    /// The store's numbers.
    pub fn info(&self) -> Info {
        self.raw.info()
    }

    /// Record `i`, zero-copy, or `None` past the end.
    #[inline]
    pub fn get(&self, i: u64) -> Option<&T> {
        // Records written to the file: one bounds check against the map's
        // record window, then a pointer into the map.
        match self.raw.map.record::<T>(i) {
            Some(r) => Some(r),
            None => self.get_staged(i),
        }
    }

    /// The rare path of `get`: records with a newer image in the overlay
    /// (while there is one the window is empty, so every read comes here),
    /// records not yet written to the file, and indices past the end.
    ///
    /// A call, so that `get` stays small enough to inline into hot loops,
    /// but one the compiler can see through: no step can panic or write
    /// memory, so it infers that the call only reads memory and does not
    /// unwind, and a caller's loop keeps the window's fields in registers
    /// across it. (A call that may write memory makes every `get` in a loop
    /// load them again, unless the loop's function has `&Store` as an
    /// argument: a closure capturing the store does not.) `#[inline]`, not
    /// `#[inline(never)]`: cold, it is not inlined, but every codegen unit
    /// gets its own copy, whose inferred attributes its callers see; a copy
    /// in another unit would be opaque to them.
    #[cold]
    #[inline]
    fn get_staged(&self, i: u64) -> Option<&T> {
        // The bytes are `size_of::<T>()` long and aligned for `T` (overlay
        // and staging buffer are page-aligned, like the map); `try_` keeps
        // that from being checked with a panic.
        bytemuck::try_from_bytes(self.raw.get_readonly(i, Self::PACKING)?).ok()
    }

    /// A guard that derefs to a copy of record `i` and writes it back (with
    /// `set`: held until `commit`) when dropped. Use [`Store::update`] to get
    /// an error directly.
    ///
    /// Fails at once on a read-only or poisoned handle or an index past the end.
    pub fn get_mut(&mut self, i: u64) -> Result<RecordMut<'_, T>> {
        self.raw.check_writable()?;
        self.raw.check_mutable(i)?;
        let value = *self.get(i).ok_or(Error::IndexOutOfBounds {
            index: i,
            len: self.len(),
        })?;
        Ok(RecordMut {
            store: self,
            index: i,
            value,
        })
    }

    /// Applies `f` to record `i` and writes it back.
    pub fn update<R>(&mut self, i: u64, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let mut v = *self.get(i).ok_or(Error::IndexOutOfBounds {
            index: i,
            len: self.len(),
        })?;
        let r = f(&mut v);
        self.set(i, &v)?;
        Ok(r)
    }

    /// Overwrites record `i` (< len).
    pub fn set(&mut self, i: u64, value: &T) -> Result<()> {
        self.raw.set(i, bytemuck::bytes_of(value))
    }

    /// Appends a record and returns its index.
    pub fn push(&mut self, value: &T) -> Result<u64> {
        self.raw.push(bytemuck::bytes_of(value))
    }

    /// Appends a slice of records (memcpy-class bulk path); returns the first index.
    pub fn extend_from_slice(&mut self, values: &[T]) -> Result<u64> {
        self.raw.extend_from_bytes(bytemuck::cast_slice(values))
    }

    /// Appends records from an iterator, in batches; returns the first index.
    pub fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) -> Result<u64> {
        let first = self.len();
        let mut it = iter.into_iter();
        let batch = (256 * 1024 / Self::SIZE).max(1);
        let mut buf: Vec<T> = Vec::with_capacity(batch.min(it.size_hint().0.max(1)));
        loop {
            buf.clear();
            buf.extend(it.by_ref().take(batch));
            if buf.is_empty() {
                return Ok(first);
            }
            self.extend_from_slice(&buf)?;
        }
    }

    /// Makes room for `n` more records.
    pub fn reserve(&mut self, n: u64) -> Result<()> {
        self.raw.reserve(n)
    }

    /// Iterates over all records. Under the default `Random` access pattern
    /// the iterator asks the kernel to read ahead of it where the records
    /// are not cached (see [`AccessPattern`](crate::AccessPattern)), so a
    /// cold scan is not read a page per fault.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let w = self.raw.scan_window() as usize;
        self.slices(0..self.len()).flat_map(move |(first, s)| {
            s.chunks(w).enumerate().flat_map(move |(k, c)| {
                self.raw.prefetch_ahead(first + (k * w) as u64);
                c.iter()
            })
        })
    }

    /// The records of `range` as contiguous `&[T]` runs with their first
    /// index. A run ends at a page boundary when records do not fill pages
    /// exactly (records never straddle a page), else it spans the whole file.
    pub fn slices(&self, range: Range<u64>) -> impl Iterator<Item = (u64, &[T])> + '_ {
        self.raw
            .runs(range)
            .map(|(i, b)| (i, bytemuck::cast_slice(b)))
    }

    /// Copies records `first..` into `out`, returning how many were copied
    /// (fewer at the end of the store): the bulk copy, which reads records
    /// the page cache does not hold at the device's sequential rate (see
    /// [`RawStore::read_range_bytes`]). Sees this handle's uncommitted
    /// writes, as [`get`](Self::get) does.
    pub fn read_range(&self, first: u64, out: &mut [T]) -> Result<usize> {
        let n = self
            .raw
            .read_range_bytes(first, bytemuck::cast_slice_mut(out))?;
        Ok(n as usize)
    }

    /// See [`RawStore::set_access`].
    pub fn set_access(&mut self, pattern: crate::access::AccessPattern) {
        self.raw.set_access(pattern)
    }

    /// See [`RawStore::advise`].
    pub fn advise(&self, range: Range<u64>, advice: crate::access::Advice) {
        self.raw.advise(range, advice)
    }

    /// See [`RawStore::cached_bytes`].
    pub fn cached_bytes(&self, range: Range<u64>) -> Option<u64> {
        self.raw.cached_bytes(range)
    }

    /// Commits all changes, atomically; see [`RawStore::commit`].
    pub fn commit(&mut self) -> Result<CommitStats> {
        self.raw.commit()
    }
    /// Discards every change since the last commit; see [`RawStore::rollback`].
    pub fn rollback(&mut self) -> Result<()> {
        self.raw.rollback()
    }
    /// Folds the log into the data file; see [`RawStore::checkpoint`].
    pub fn checkpoint(&mut self) -> Result<()> {
        self.raw.checkpoint()
    }
    /// Upgrades a version-1 file now; see [`RawStore::upgrade`].
    pub fn upgrade(&mut self) -> Result<bool> {
        self.raw.upgrade()
    }
    /// Test hook; see [`RawStore::simulate_crash`].
    #[doc(hidden)]
    pub fn simulate_crash(self) {
        self.raw.simulate_crash()
    }
    /// Commits and closes, reporting errors.
    pub fn close(self) -> Result<CommitStats> {
        self.raw.close()
    }
    /// Repairs page checksums after `verify` found damage; see [`Repair`].
    pub fn repair(&mut self, how: Repair) -> Result<RepairReport> {
        self.raw.repair(how)
    }
    /// Checks every checksum; see [`RawStore::verify`].
    pub fn verify(&self) -> Result<VerifyReport> {
        self.raw.verify()
    }
}

/// A record being modified; written back on drop. See [`Store::get_mut`].
pub struct RecordMut<'a, T: Record> {
    store: &'a mut Store<T>,
    index: u64,
    value: T,
}

impl<T: Record + std::fmt::Debug> std::fmt::Debug for RecordMut<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordMut")
            .field("index", &self.index)
            .field("value", &self.value)
            .finish()
    }
}

impl<T: Record> Deref for RecordMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
impl<T: Record> DerefMut for RecordMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}
impl<T: Record> Drop for RecordMut<'_, T> {
    fn drop(&mut self) {
        if let Err(e) = self.store.set(self.index, &self.value) {
            tracing::error!(index = self.index, error = %e, "write-back of a modified record failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Store;
    use crate::Record;

    crate::record! {
        /// 64 bytes: pages hold whole records (dense packing).
        struct Wide { a: [u64; 8] }
    }
    crate::record! {
        /// 24 bytes: 170 to a page, 16 bytes of each page unused.
        struct Narrow { a: u64, b: u64, c: u64 }
    }

    /// Every place `get` finds a record: the map's window, the staging
    /// buffer, the overlay (and the map below it), and nothing past the end.
    fn every_path<R: Record + PartialEq + std::fmt::Debug>(mk: fn(u64) -> R) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::<R>::create(dir.path().join("s.rmap")).unwrap();
        for i in 0..500 {
            s.push(&mk(i)).unwrap();
        }
        // Staged appends, not yet in the file.
        for i in 0..500 {
            assert_eq!(s.get(i), Some(&mk(i)), "staged {i}");
        }
        assert_eq!(s.get(500), None);
        assert_eq!(s.get(u64::MAX), None);
        s.commit().unwrap();
        for i in 0..500 {
            assert_eq!(s.get(i), Some(&mk(i)), "committed {i}");
        }
        // An uncommitted update: the window closes, every read looks in
        // the overlay first.
        s.set(7, &mk(1007)).unwrap();
        s.set(400, &mk(1400)).unwrap();
        s.push(&mk(500)).unwrap();
        for i in 0..501 {
            let want = match i {
                7 => mk(1007),
                400 => mk(1400),
                _ => mk(i),
            };
            assert_eq!(s.get(i), Some(&want), "with overlay {i}");
        }
        assert_eq!(s.get(501), None);
        assert_eq!(s.get(u64::MAX), None);
        s.rollback().unwrap();
        assert_eq!(s.get(7), Some(&mk(7)));
        assert_eq!(s.get(400), Some(&mk(400)));
        assert_eq!(s.get(500), None);
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
