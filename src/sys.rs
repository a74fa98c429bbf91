//! The crate's only unsafe code: mapping the file, preallocating space, and
//! the `Pod` impls bytemuck's derive cannot write.
//!
//! Everything here is small and exposes a safe interface; the rest of the
//! crate is `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use crate::record::FixedStr;
use memmap2::{Mmap, MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Maps the first `len` bytes of `file` read-only and shared.
///
/// The mapping is `PROT_READ`: a stray write through it faults instead of
/// corrupting the file. All writes go through the file descriptor.
pub(crate) fn map_read_only(file: &File, len: u64) -> io::Result<Mmap> {
    let len =
        usize::try_from(len).map_err(|_| io::Error::other("file larger than the address space"))?;
    // Why the mapping is sound: callers hold a lock excluding every other
    // writer (exclusive) or every writer (shared, read-only handles) and
    // checked `len` against the file under it; in-process writes take `&mut`
    // of the owner, so no borrowed `&[u8]` sees bytes change; truncation by a
    // program ignoring the locks is outside the contract (docs/concurrency.md).
    // SAFETY: the file is neither truncated nor changed under live borrows.
    unsafe { MmapOptions::new().len(len).map(file) }
}

/// Makes `[from, to)` of `file` allocated, extending its length to `to`.
///
/// On Linux this is `fallocate(2)`, so a full disk fails here with `ENOSPC`
/// instead of later. Where fallocate is unsupported (or on other systems)
/// the file is extended with `set_len`, which may leave it sparse.
pub(crate) fn preallocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    debug_assert!(to >= from);
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let off =
            libc::off_t::try_from(from).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        let len = libc::off_t::try_from(to - from)
            .map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: fallocate only reads its integer arguments; the fd is valid
        // for the lifetime of `file`, which outlives the call.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, off, len) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {}
            _ => return Err(e),
        }
    }
    if file.metadata()?.len() < to {
        file.set_len(to)?;
    }
    Ok(())
}

// SAFETY: `FixedStr<N>` is `#[repr(transparent)]` over `[u8; N]`, which is
// Zeroable and Pod for every N: no padding, every bit pattern valid, `Copy`
// and `'static`.
unsafe impl<const N: usize> bytemuck::Zeroable for FixedStr<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> bytemuck::Pod for FixedStr<N> {}

/// A shared read-write mapping of the coordination file, accessed only as
/// `AtomicU64`s by every process (see `coord`).
pub(crate) struct AtomicMap {
    raw: MmapRaw,
    len: usize,
}

impl AtomicMap {
    /// Maps the first `len` bytes of `file` (opened read-write) shared.
    pub(crate) fn map(file: &File, len: usize) -> io::Result<AtomicMap> {
        let raw = MmapOptions::new().len(len).map_raw(file)?;
        Ok(AtomicMap { raw, len })
    }

    /// The 32-bit atomic at byte `offset`. Panics if out of bounds or not
    /// 4-aligned.
    pub(crate) fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "coord offset {offset}"
        );
        // SAFETY: as for `u64_at`, with 4-byte size and alignment.
        unsafe { &*(self.raw.as_ptr().add(offset) as *const AtomicU32) }
    }

    /// The atomic at byte `offset`. Panics if it is out of bounds or not
    /// 8-aligned.
    pub(crate) fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
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
}

impl SharedMap {
    /// Maps the first `len` bytes of `file` read-only and shared.
    pub(crate) fn map(file: &File, len: u64) -> io::Result<SharedMap> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::other("file larger than the address space"))?;
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        Ok(SharedMap { raw, len })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `dst.len()` bytes from `offset` with relaxed atomic loads (a
    /// word at a time when aligned), so a concurrent write by another process is
    /// not a data race. The copy may mix old and new bytes; callers validate
    /// it (seqlock). Panics if out of bounds.
    #[inline]
    pub(crate) fn copy_atomic(&self, offset: usize, dst: &mut [u8]) {
        assert!(
            offset <= self.len && dst.len() <= self.len - offset,
            "read past the mapping"
        );
        let src = self.raw.as_ptr().wrapping_add(offset);
        const W: usize = std::mem::size_of::<usize>();
        if (src as usize).is_multiple_of(W) && dst.len().is_multiple_of(W) {
            for (k, chunk) in dst.chunks_exact_mut(W).enumerate() {
                // A relaxed load of at most pointer width is a plain load on
                // every target (fine on read-only memory) and is not a data
                // race even if another process writes these bytes.
                // SAFETY: in bounds (checked above), aligned, map outlives us.
                let v =
                    unsafe { (*(src.add(k * W) as *const AtomicUsize)).load(Ordering::Relaxed) };
                chunk.copy_from_slice(&v.to_ne_bytes());
            }
        } else {
            for (k, b) in dst.iter_mut().enumerate() {
                // SAFETY: as above, one byte at a time (no alignment needed).
                *b = unsafe { (*(src.add(k) as *const AtomicU8)).load(Ordering::Relaxed) };
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

/// Sleeps until `word` may differ from `expected` or `timeout` passes.
/// Linux: a shared futex wait (the word lives in a shared mapping, so
/// writers in other processes wake it). Elsewhere: a short sleep.
pub(crate) fn wait_on(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    #[cfg(target_os = "linux")]
    {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // FUTEX_WAIT (not PRIVATE: other processes' wakes reach it) only
        // reads the word and sleeps; spurious returns are fine, callers loop.
        // SAFETY: `word` is a valid aligned atomic that outlives the call,
        // `ts` a valid relative timeout.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &ts as *const libc::timespec,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if word.load(Ordering::Acquire) == expected {
            std::thread::sleep(timeout.min(std::time::Duration::from_micros(200)));
        }
    }
}

/// Wakes every process waiting in `wait_on(word, …)`.
pub(crate) fn wake_all(word: &AtomicU32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as in `wait_on`; FUTEX_WAKE does not access memory beyond
        // using the address as a key.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = word;
    }
}
