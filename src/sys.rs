//! The crate's only unsafe code: mapping the file, preallocating space, and
//! the `Pod` impls bytemuck's derive cannot write.
//!
//! Everything here is small and exposes a safe interface; the rest of the
//! crate is `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use crate::record::FixedStr;
use memmap2::{Mmap, MmapOptions};
use std::fs::File;
use std::io;

/// Maps the first `len` bytes of `file` read-only and shared.
///
/// The mapping is `PROT_READ`: a stray write through it faults instead of
/// corrupting the file. All writes go through the file descriptor.
pub(crate) fn map_read_only(file: &File, len: u64) -> io::Result<Mmap> {
    let len =
        usize::try_from(len).map_err(|_| io::Error::other("file larger than the address space"))?;
    // SAFETY: memmap2 requires that the mapped file is not truncated or
    // modified in ways that violate Rust's aliasing rules while the map is
    // alive. The caller holds a lock on `file` that excludes every other
    // cooperating writer (exclusive lock) or every writer (shared lock for
    // read-only handles), and only checks that `len` <= the file length it
    // just read under that lock. In-process writes go through the same handle
    // that owns this map and take `&mut self`, so no `&[u8]` borrowed from the
    // map is alive while its bytes change. Truncation by a non-cooperating
    // process is outside the contract (documented in docs/concurrency.md).
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
