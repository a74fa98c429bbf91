//! The crate's only unsafe code: mapping the file, the system calls around
//! it (preallocation, locks, hints, waits), and the `Pod` impls bytemuck's
//! derive cannot write.
//!
//! This file is the one safe interface the rest of the crate uses, and the
//! platform-neutral part of it: the mappings (`RecordMap`, `SharedMap`,
//! `AtomicMap`) and their record windows; the racy copies and seqlock
//! loads readers use are in `copy.rs`. What differs by platform lives in one file per
//! platform behind the same functions: `unix.rs` (Linux, with fallbacks for
//! other Unixes) and `windows.rs`. Each platform file provides exactly the
//! items re-exported below, plus `advise_map` and `resident_pages` for the
//! mappings here.
//!
//! Everything here exposes a safe interface; the rest of the crate is
//! `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

#[cfg(unix)]
#[path = "unix.rs"]
mod platform;
#[cfg(windows)]
#[path = "windows.rs"]
mod platform;
#[cfg(not(any(unix, windows)))]
compile_error!("recmap supports Unix and Windows only");

mod copy;
use copy::{racy_copy, racy_copy_bulk};
pub(crate) use copy::{seq_begin, seq_recheck, NEVER_WRITTEN};

#[cfg(target_os = "linux")]
pub(crate) use platform::ofd;
use platform::{advise_map, fadvise, resident_pages};
pub(crate) use platform::{
    data_extent, drop_cache, lock, preallocate, rename_noreplace, reopen_sequential,
    start_writeback, try_lock, unlock, wait_on, wake_all, UNMAP_BEFORE_SHRINK,
};
#[cfg(unix)]
pub(crate) use platform::{effective_uid, link_count};
#[cfg(windows)]
pub(crate) use platform::{file_identity, mark_temporary, NamedSection};

/// The kind of a whole-file lock (`lock`, `try_lock`, `unlock`).
///
/// These are the store's locks on its data file and coordination file: a
/// lock belongs to the handle that took it (and its duplicates), excludes
/// other handles' conflicting locks, in this process or another, is
/// released by `unlock` or when the handle closes (or its process dies),
/// and never affects reading or writing the file. On Unix they are `flock`
/// (std's `File::lock`). Windows byte-range locks are mandatory (a lock on
/// a file's bytes makes other handles' `ReadFile` and `WriteFile` of them
/// fail), so there they lock one byte far past any file's end, which no
/// read or write reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    Shared,
    Exclusive,
}

/// An access hint for a mapping (`madvise` on Unix) or a file
/// (`posix_fadvise` on Linux); platforms without the call ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hint {
    Normal,
    Random,
    Sequential,
    WillNeed,
    DontNeed,
}

use crate::record::FixedStr;
use memmap2::{Mmap, MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A store handle's read-only, shared mapping of its data file, and the
/// window of records it may lend out as `&T`.
///
/// The mapping is `PROT_READ`: a stray write through it faults instead of
/// corrupting the file. All writes go through the file descriptor.
pub(crate) struct RecordMap {
    map: Mmap,
    /// Invariant (established by `set_records`, reset by `map`): every
    /// record `i < count` of `shape`, packed as the format packs records
    /// from `data_offset`, lies inside the mapping and is aligned for it.
    window: RecordWindow,
}

/// Which records of a mapping may be read as a `T` without further checks:
/// `count` records of one size and alignment (`shape`), packed as the format
/// packs them from `data_offset`. Built only by `RecordWindow::new`, which
/// checks that they all lie inside the mapping and are aligned, so a lookup
/// needs one comparison with `count` (and one with `shape`, a constant for
/// `T`).
#[derive(Clone, Copy)]
struct RecordWindow {
    data_offset: usize,
    count: u64,
    shape: u64,
}

/// A record type's size and alignment as one comparable word.
const fn shape(size: u64, align: u64) -> u64 {
    size | align << 32
}

impl RecordWindow {
    const EMPTY: RecordWindow = RecordWindow {
        data_offset: 0,
        count: 0,
        shape: 0,
    };

    /// The window of `count` records of `record_size` bytes aligned to
    /// `record_align` from `data_offset` of a mapping of `len` bytes at
    /// address `base`, or `None` if they do not all lie inside it or would be
    /// misaligned.
    fn new(
        base: usize,
        len: usize,
        data_offset: u64,
        record_size: u64,
        record_align: u64,
        count: u64,
    ) -> Option<RecordWindow> {
        if record_size == 0
            || record_size > u32::MAX as u64
            || !record_align.is_power_of_two()
            || record_align > crate::format::PAGE_SIZE
            || !record_size.is_multiple_of(record_align)
            || !(base as u64)
                .wrapping_add(data_offset)
                .is_multiple_of(record_align)
        {
            return None;
        }
        if count > 0 {
            let p = crate::format::Packing::new(record_size);
            // The overflow guard covers `record_offset`'s arithmetic too.
            let end = (count - 1)
                .checked_mul(p.group_bytes())
                .and(data_offset.checked_add(p.record_offset(count - 1)))
                .and_then(|o| o.checked_add(record_size));
            if end.is_none_or(|e| e > len as u64) {
                return None;
            }
        }
        Some(RecordWindow {
            data_offset: data_offset as usize,
            count,
            shape: shape(record_size, record_align),
        })
    }

    /// True if record `i` may be read as a `T`: it is below the count and
    /// `T`'s size and alignment are the window's. By the window's invariant
    /// the `size_of::<T>()` bytes at `place::<T>(i)` then lie inside the
    /// mapping and are aligned for `T`: the base plus `data_offset` is a
    /// multiple of the record alignment, and `record_offset` adds multiples
    /// of the record size and of the group size (whole pages), both
    /// multiples of an alignment of at most a page.
    #[inline(always)]
    fn holds<T>(&self, i: u64) -> bool {
        // `&`, not `&&`: both fields are read, with no branch between.
        (i < self.count) & self.fits::<T>()
    }

    /// True if `T`'s size and alignment are the window's.
    #[inline(always)]
    fn fits<T>(&self) -> bool {
        let size = std::mem::size_of::<T>() as u64;
        self.shape == shape(size, std::mem::align_of::<T>() as u64)
    }

    /// Byte offset of record `i` as a `T`, meaningful only if `holds::<T>(i)`
    /// (else any value: the arithmetic wraps).
    #[inline(always)]
    fn place<T>(&self, i: u64) -> usize {
        self.data_offset.wrapping_add(rel_offset::<T>(i))
    }
}

/// Byte offset of record `i` as a `T` from the first record (wrapping).
#[inline(always)]
fn rel_offset<T>(i: u64) -> usize {
    // A constant packing for `T`: no division at run time.
    let p = crate::format::Packing::new(std::mem::size_of::<T>() as u64);
    let rel = if p.is_dense() {
        i.wrapping_mul(p.record_size)
    } else {
        (i / p.records_per_group)
            .wrapping_mul(p.group_bytes())
            .wrapping_add(i % p.records_per_group * p.record_size)
    };
    rel as usize
}

impl RecordMap {
    /// Maps the first `len` bytes of `file` read-only and shared, with an
    /// empty record window.
    pub(crate) fn map(file: &File, len: u64) -> io::Result<RecordMap> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::other("file larger than the address space"))?;
        // Why the mapping is sound: callers hold a lock excluding every other
        // writer (exclusive) or every writer (shared, read-only handles) and
        // checked `len` against the file under it; in-process writes take
        // `&mut` of the owner, so no borrowed `&[u8]` sees bytes change; truncation
        // by a program ignoring the locks is outside the contract
        // (docs/concurrency.md).
        // SAFETY: the file is neither truncated nor changed under live borrows.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(RecordMap {
            map,
            window: RecordWindow::EMPTY,
        })
    }

    /// Sets the records `record` lends: `count` records of `record_size`
    /// bytes aligned to `record_align`, packed from `data_offset`. Returns
    /// false, and empties the window, if they do not all lie inside the
    /// mapping or would be misaligned.
    pub(crate) fn set_records(
        &mut self,
        data_offset: u64,
        record_size: u64,
        record_align: u64,
        count: u64,
    ) -> bool {
        let w = RecordWindow::new(
            self.map.as_ptr() as usize,
            self.map.len(),
            data_offset,
            record_size,
            record_align,
            count,
        );
        self.window = w.unwrap_or(RecordWindow::EMPTY);
        w.is_some()
    }

    /// Record `i` of the window as a `&T`, or `None` past its count or if
    /// `T`'s size and alignment are not the window's.
    ///
    /// Every field is read, and the address computed (wrapping: it is used
    /// only once checked), before the one branch: in a caller's loop these
    /// reads then run in every iteration, before anything that might not
    /// return, which lets the compiler hoist them out of the loop (if
    /// nothing in the loop may write memory). Reads after the branch would
    /// stay in the loop: the compiler cannot tell that `&self` points to
    /// readable memory where the branch is not taken.
    #[inline(always)]
    pub(crate) fn record<T: bytemuck::Pod>(&self, i: u64) -> Option<&T> {
        let w = self.window;
        let at = self.map.as_ptr().wrapping_add(w.place::<T>(i));
        let holds = w.holds::<T>(i);
        // Tells the compiler that a record it returns is not null, so that a
        // caller's `unwrap` needs no test: stated before the branch (`|`:
        // without one), which keeps `at`'s reads there, and after it.
        // SAFETY: a record the window holds lies inside the mapping (see
        // below), and no mapping contains address 0.
        unsafe { std::hint::assert_unchecked(!holds | !at.is_null()) };
        if !holds {
            return None;
        }
        // Validity: `T` is `Pod`, so any bytes are a valid `T`; they do not
        // change while borrowed, as argued in `map`.
        // SAFETY: the window's `holds` vouches that the bytes at `place` are
        // inside the mapping, which `&self` keeps alive, and aligned for `T`;
        // so `at` is not null, as above.
        unsafe {
            std::hint::assert_unchecked(!at.is_null());
            Some(&*(at as *const T))
        }
    }
}

impl std::ops::Deref for RecordMap {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

// SAFETY: `FixedStr<N>` is `#[repr(transparent)]` over `[u8; N]`, which is
// Zeroable and Pod for every N: no padding, every bit pattern valid, `Copy`
// and `'static`.
unsafe impl<const N: usize> bytemuck::Zeroable for FixedStr<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> bytemuck::Pod for FixedStr<N> {}

/// A shared read-write mapping of the coordination file, accessed only as
/// `AtomicU64`s by every process (see `coord`).
///
/// `LEN` is the mapped length, a constant so that bounds checks of constant
/// or masked offsets compile away (the seqlock stripes sit on readers' hot
/// path).
pub(crate) struct AtomicMap<const LEN: usize> {
    raw: MmapRaw,
}

impl<const LEN: usize> AtomicMap<LEN> {
    /// Maps the first `LEN` bytes of `file` (opened read-write, at least
    /// `LEN` long) shared.
    pub(crate) fn map(file: &File) -> io::Result<Self> {
        let raw = MmapOptions::new().len(LEN).map_raw(file)?;
        Ok(AtomicMap { raw })
    }

    /// The 32-bit atomic at byte `offset`. Panics if out of bounds or not
    /// 4-aligned.
    #[inline]
    pub(crate) fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= LEN,
            "coord offset {offset}"
        );
        // SAFETY: as for `u64_at`, with 4-byte size and alignment.
        unsafe { &*(self.raw.as_ptr().add(offset) as *const AtomicU32) }
    }

    /// The atomic at byte `offset`. Panics if it is out of bounds or not
    /// 8-aligned.
    #[inline]
    pub(crate) fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= LEN,
            "coord offset {offset}"
        );
        // Every process touches these bytes only through atomics (the
        // coordination protocol), so there is no non-atomic access to race.
        // SAFETY: in bounds, 8-aligned (page-aligned map, offset % 8 == 0),
        // and the mapping outlives `&self`.
        unsafe { &*(self.raw.as_ptr().add(offset) as *const AtomicU64) }
    }
}

/// A read-only mapping of a data file that another process may be writing.
///
/// It never creates a `&[u8]` over the whole mapping: bytes that may change
/// are copied out with atomic loads; only bytes the format guarantees never
/// change while mapped are lent as references.
pub(crate) struct SharedMap {
    raw: MmapRaw,
    len: usize,
    /// Every record of the adopted commit (set by `set_records`): the
    /// records `any_slot` hands out.
    all: RecordWindow,
    /// The records `slot` hands out: `all`, or none while the reader holds
    /// newer images of some in an overlay.
    window: RecordWindow,
}

/// Record `i` of a `SharedMap`'s window, bounds-checked once when made (or
/// a `T` of this process borrowed for `'a`, `of_ref`), so that reading it
/// (again, on a seqlock retry) needs no check.
pub(crate) struct Slot<'a, T> {
    /// The record's address: `size_of::<T>()` bytes inside the mapping
    /// (which `'a` keeps alive), as the window vouched when the slot was
    /// made, or those of a `T` borrowed for `'a` (`of_ref`).
    at: *const u8,
    _t: std::marker::PhantomData<(&'a SharedMap, T)>,
}

impl<T: bytemuck::Pod> Slot<'_, T> {
    /// The record, read as by [`SharedMap::copy_atomic`]: possibly mixed old
    /// and new bytes, which is fine for `Pod` types (every bit pattern is
    /// valid); callers validate.
    ///
    /// Unlike a copy into a zeroed `T`, nothing is written twice, so a
    /// caller's lookup loop keeps few stores in flight.
    #[inline(always)]
    pub(crate) fn read(&self) -> T {
        let mut v = std::mem::MaybeUninit::<T>::uninit();
        // `slot_in` or `TypedWindow::slot` made this slot only for a record
        // its window holds (`of_ref` only for a borrowed `T`).
        // SAFETY: so the bytes at `at` are inside the mapping (or the `T`),
        // alive for `'a`; `v` is a local of exactly `size_of::<T>()` bytes.
        unsafe {
            racy_copy(
                self.at,
                v.as_mut_ptr().cast::<u8>(),
                std::mem::size_of::<T>(),
            )
        };
        // SAFETY: every byte was written by `racy_copy`, and every bit
        // pattern is a valid `T` (`Pod`).
        unsafe { v.assume_init() }
    }
}

/// A `SharedMap`'s window as records of one type `T`, checked against
/// `T`'s size and alignment once, when made: `slot` is then one compare.
///
/// Invariant: `count` is the window's record count if `T` has the
/// window's shape, else 0, and `base` is the mapping's address plus the
/// window's data offset; the window cannot change while this borrows the
/// map (`set_records` takes `&mut`). So every record below `count` is one
/// `holds::<T>` vouches for, at `base + rel_offset::<T>(i)`.
pub(crate) struct TypedWindow<'a, T> {
    base: *const u8,
    count: u64,
    _t: std::marker::PhantomData<(&'a SharedMap, T)>,
}

impl<T> Clone for TypedWindow<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TypedWindow<'_, T> {}

// SAFETY: a `TypedWindow` is a shared borrow of a `SharedMap` plus an
// address inside it and a count; it permits exactly the reads a
// `&SharedMap` permits (`Slot::read`), and `SharedMap` is `Send + Sync`
// (an `MmapRaw` and plain integers). The bounds on `T` are
// `PhantomData<T>`'s, so a `Snapshot<T>` is `Send` and `Sync` exactly when
// it was before it held a window.
unsafe impl<T: Send> Send for TypedWindow<'_, T> {}
// SAFETY: as for `Send`: nothing in it is mutated through a shared borrow.
unsafe impl<T: Sync> Sync for TypedWindow<'_, T> {}

impl<'a, T: bytemuck::Pod> TypedWindow<'a, T> {
    /// Record `i` as a `T`, or `None` past the window (or if `T` was not
    /// the window's shape).
    #[inline(always)]
    pub(crate) fn slot(&self, i: u64) -> Option<Slot<'a, T>> {
        // The address is computed (wrapping; used only once checked) before
        // the branch, as in `slot_in`.
        let at = self.base.wrapping_add(rel_offset::<T>(i));
        if i >= self.count {
            return None;
        }
        Some(Slot {
            at,
            _t: std::marker::PhantomData,
        })
    }
}

impl<'a, T: bytemuck::Pod> Slot<'a, T> {
    /// A slot over a value of this process that nobody changes while it
    /// is borrowed (a reader's overlay image), so that one read path serves
    /// both. (Off x86_64 `read` copies it with relaxed atomic loads through
    /// the shared borrow: accepted by the Tree Borrows model, while Stacked
    /// Borrows, stricter than the language promises, would flag it.)
    #[inline(always)]
    pub(crate) fn of_ref(v: &'a T) -> Slot<'a, T> {
        Slot {
            at: (v as *const T).cast::<u8>(),
            _t: std::marker::PhantomData,
        }
    }

    /// The record, lent for as long as the mapping lives.
    ///
    /// Callers may only lend records no process writes while this mapping
    /// exists, as for [`SharedMap::stable_bytes`]: committed records of an
    /// append-only store. `Reader::get_ref` checks the flag first.
    #[inline(always)]
    pub(crate) fn lend(self) -> &'a T {
        // `slot_in` or `TypedWindow::slot` made this only for a record its
        // window holds: the `size_of::<T>()` bytes at `at` lie inside the
        // mapping (alive for `'a`) and are aligned for `T` (or `of_ref`
        // made it from a `&'a T`).
        // SAFETY: those bytes are in bounds and aligned, any bytes are a valid
        // `T` (`Pod`), and per the caller contract no process modifies them
        // while the reference lives.
        unsafe { &*self.at.cast::<T>() }
    }
}

impl SharedMap {
    /// Maps the first `len` bytes of `file` read-only and shared.
    pub(crate) fn map(file: &File, len: u64) -> io::Result<SharedMap> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::other("file larger than the address space"))?;
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        Ok(SharedMap {
            raw,
            len,
            all: RecordWindow::EMPTY,
            window: RecordWindow::EMPTY,
        })
    }

    /// Sets the records `any_slot` may hand out: `count` records of
    /// `record_size` bytes aligned to `record_align`, packed as the format
    /// packs them from `data_offset`; `slot` hands out the same if `lend`,
    /// else none. Returns false, and empties both windows, if the records do
    /// not all lie inside the mapping (callers map the header's layout
    /// first, and a decoded header's count never exceeds its capacity, so
    /// false means a bug or a hostile header that slipped past decoding).
    #[must_use]
    pub(crate) fn set_records(
        &mut self,
        data_offset: u64,
        record_size: u64,
        record_align: u64,
        count: u64,
        lend: bool,
    ) -> bool {
        let w = RecordWindow::new(
            self.raw.as_ptr() as usize,
            self.len,
            data_offset,
            record_size,
            record_align,
            count,
        );
        self.all = w.unwrap_or(RecordWindow::EMPTY);
        self.window = if lend { self.all } else { RecordWindow::EMPTY };
        w.is_some()
    }

    /// Record `i` of the window as a `T`, or `None` past its count or if
    /// `T`'s size and alignment are not the window's.
    #[inline(always)]
    pub(crate) fn slot<T: bytemuck::Pod>(&self, i: u64) -> Option<Slot<'_, T>> {
        self.slot_in(self.window, i)
    }

    /// The window as `T`s, for many `slot`s of one borrow.
    #[inline(always)]
    pub(crate) fn typed<T: bytemuck::Pod>(&self) -> TypedWindow<'_, T> {
        let w = self.window;
        TypedWindow {
            base: self.raw.as_ptr().wrapping_add(w.data_offset),
            count: if w.fits::<T>() { w.count } else { 0 },
            _t: std::marker::PhantomData,
        }
    }

    /// `slot` for every record of the adopted commit, even while `slot`
    /// lends none (the caller looks in its overlay first).
    #[inline(always)]
    pub(crate) fn any_slot<T: bytemuck::Pod>(&self, i: u64) -> Option<Slot<'_, T>> {
        self.slot_in(self.all, i)
    }

    #[inline(always)]
    fn slot_in<T: bytemuck::Pod>(&self, w: RecordWindow, i: u64) -> Option<Slot<'_, T>> {
        // As in `RecordMap::record`: the fields are read and the address
        // computed (wrapping; used only once checked) before the branch.
        let at = self.raw.as_ptr().wrapping_add(w.place::<T>(i));
        if !w.holds::<T>(i) {
            return None;
        }
        Some(Slot {
            at,
            _t: std::marker::PhantomData,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `dst.len()` bytes from `offset` so that a concurrent write by
    /// another process is not a data race: the copy has the semantics of
    /// per-byte relaxed atomic loads (Rust RFC 3301, `AtomicPerByte`). It may
    /// mix old and new bytes; callers validate it (seqlock). Panics if out of
    /// bounds.
    #[inline]
    pub(crate) fn copy_atomic(&self, offset: usize, dst: &mut [u8]) {
        self.copy_racy(offset, dst, false)
    }

    /// `copy_atomic` for copies of many pages (`racy_copy_bulk`).
    pub(crate) fn copy_atomic_bulk(&self, offset: usize, dst: &mut [u8]) {
        self.copy_racy(offset, dst, true)
    }

    #[inline(always)]
    fn copy_racy(&self, offset: usize, dst: &mut [u8], bulk: bool) {
        assert!(
            offset <= self.len && dst.len() <= self.len - offset,
            "read past the mapping"
        );
        let (src, to, n) = (
            self.raw.as_ptr().wrapping_add(offset),
            dst.as_mut_ptr(),
            dst.len(),
        );
        // SAFETY: the source range is inside the mapping (checked above),
        // which outlives the call; `dst` is a distinct, writable slice of the
        // same length.
        unsafe {
            if bulk {
                racy_copy_bulk(src, to, n)
            } else {
                racy_copy(src, to, n)
            }
        }
    }

    /// Lends `len` bytes at `offset`. Panics if out of bounds.
    ///
    /// Callers may only ask for bytes no process writes while this mapping
    /// exists: committed records of an append-only store (the writer never
    /// rewrites them, appends write other bytes, and shrinking the file is
    /// refused while any reader holds its shared lock). `Reader` checks the
    /// append-only flag before calling.
    pub(crate) fn stable_bytes(&self, offset: usize, len: usize) -> &[u8] {
        assert!(
            offset <= self.len && len <= self.len - offset,
            "read past the mapping"
        );
        // SAFETY: in bounds (checked), the mapping outlives `&self`, and per
        // the caller contract above the bytes are not modified while the
        // reference lives, so a shared reference to them is sound.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(offset), len) }
    }
}

impl<const LEN: usize> AtomicMap<LEN> {
    /// Maps the first `LEN` bytes of `file` (at least `LEN` long) shared and
    /// read-only (`PROT_READ`). Only plain 64- and 32-bit loads may go
    /// through the atomics it hands out (no stores, no read-modify-write):
    /// `coord` enforces that, and such loads are ordinary load instructions
    /// on every supported target, which read-only memory allows.
    pub(crate) fn map_read_only(file: &File) -> io::Result<Self> {
        let raw = MmapOptions::new().len(LEN).map_raw_read_only(file)?;
        Ok(AtomicMap { raw })
    }
}

/// Applies an access pattern to the mapping `[base, base + len)` of `file`
/// and to the file itself (see `crate::access`).
fn set_pattern(base: *const u8, len: usize, file: &File, pattern: crate::access::AccessPattern) {
    use crate::access::AccessPattern as P;
    let h = match pattern {
        P::Random => Hint::Random,
        P::Sequential => Hint::Sequential,
        P::Normal => Hint::Normal,
    };
    advise_map(base, len, h);
    fadvise(file, 0, 0, h);
}

/// `advice` for bytes `[offset, offset + len)` of the mapping `[base, base +
/// map_len)` of `file` (from the file's offset 0) and of the file:
/// `WillNeed` reads ahead, `DontNeed` drops this process's page-table
/// entries for it (the next access maps the same file contents again) and
/// lets the kernel evict the clean cached pages.
fn advise_range(
    base: *const u8,
    map_len: usize,
    file: &File,
    offset: u64,
    len: u64,
    advice: crate::access::Advice,
) {
    let page = crate::format::PAGE_SIZE;
    let start = offset / page * page;
    let end = offset.saturating_add(len).min(map_len as u64);
    if end <= start {
        return;
    }
    let (at, n) = (start as usize, (end - start) as usize);
    let h = match advice {
        crate::access::Advice::WillNeed => Hint::WillNeed,
        crate::access::Advice::DontNeed => Hint::DontNeed,
    };
    advise_map(base.wrapping_add(at), n, h);
    if h == Hint::DontNeed {
        // The page cache drops only folios wholly inside the range, and a
        // folio may span up to 2 MiB: widen to 2 MiB boundaries so that
        // the range's own pages go too (clean neighbours in those folios
        // may go with them, which costs a later read, nothing else).
        const FOLIO: u64 = 2 << 20;
        let from = start / FOLIO * FOLIO;
        let to = end.div_ceil(FOLIO).saturating_mul(FOLIO);
        fadvise(file, from, to - from, h);
    } else {
        fadvise(file, at as u64, n as u64, h);
    }
}

impl RecordMap {
    /// Applies `pattern` to this mapping and `file` (see `crate::access`).
    pub(crate) fn set_pattern(&self, file: &File, pattern: crate::access::AccessPattern) {
        set_pattern(self.map.as_ptr(), self.map.len(), file, pattern);
    }

    /// `advice` for bytes `[offset, offset + len)` of the mapping and `file`.
    pub(crate) fn advise_range(
        &self,
        file: &File,
        offset: u64,
        len: u64,
        advice: crate::access::Advice,
    ) {
        advise_range(self.map.as_ptr(), self.map.len(), file, offset, len, advice);
    }
}

impl SharedMap {
    /// Applies `pattern` to this mapping and `file` (see `crate::access`).
    pub(crate) fn set_pattern(&self, file: &File, pattern: crate::access::AccessPattern) {
        set_pattern(self.raw.as_ptr(), self.len, file, pattern);
    }

    /// `advice` for bytes `[offset, offset + len)` of the mapping and `file`.
    pub(crate) fn advise_range(
        &self,
        file: &File,
        offset: u64,
        len: u64,
        advice: crate::access::Advice,
    ) {
        advise_range(self.raw.as_ptr(), self.len, file, offset, len, advice);
    }
}

/// True if the page holding byte `offset` of the mapping `[base, base +
/// map_len)` is in the page cache, or if that cannot be told (then
/// prefetching is not worth it either). Offsets past the mapping count as
/// resident.
fn resident(base: *const u8, map_len: usize, offset: u64) -> bool {
    let page = crate::format::PAGE_SIZE as usize;
    let Ok(at) = usize::try_from(offset / page as u64 * page as u64) else {
        return true;
    };
    if at >= map_len {
        return true;
    }
    // Unknown (not Linux) counts as resident.
    resident_pages(base.wrapping_add(at), page).is_none_or(|n| n > 0)
}

/// How many bytes of the pages holding `[offset, offset + len)` of the
/// mapping `[base, base + map_len)` (clamped to it) are in the page cache;
/// `None` if that cannot be told (not Linux).
fn resident_bytes(base: *const u8, map_len: usize, offset: u64, len: u64) -> Option<u64> {
    let page = crate::format::PAGE_SIZE;
    let map_len = map_len as u64;
    let from = (offset / page * page).min(map_len);
    let to = offset.saturating_add(len).min(map_len);
    if from >= to {
        return Some(0);
    }
    let n = usize::try_from(to - from).ok()?;
    let at = usize::try_from(from).ok()?;
    resident_pages(base.wrapping_add(at), n).map(|p| p * page)
}

impl RecordMap {
    /// See [`resident`].
    pub(crate) fn resident(&self, offset: u64) -> bool {
        resident(self.map.as_ptr(), self.map.len(), offset)
    }

    /// See [`resident_bytes`].
    pub(crate) fn resident_bytes(&self, offset: u64, len: u64) -> Option<u64> {
        resident_bytes(self.map.as_ptr(), self.map.len(), offset, len)
    }
}

impl SharedMap {
    /// See [`resident`].
    pub(crate) fn resident(&self, offset: u64) -> bool {
        resident(self.raw.as_ptr(), self.len, offset)
    }

    /// See [`resident_bytes`].
    pub(crate) fn resident_bytes(&self, offset: u64, len: u64) -> Option<u64> {
        resident_bytes(self.raw.as_ptr(), self.len, offset, len)
    }
}
