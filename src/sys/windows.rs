//! The Windows side of `sys`: the same functions as `unix.rs`, built on
//! std's file calls and, for the store's locks, `LockFileEx`. Where Windows
//! has no counterpart of a Unix call (cache hints, sparse-extent queries,
//! early writeback, futexes), the function is a no-op or a conservative
//! answer, as documented on each.
//!
//! Every `unsafe` block passes a handle of a file that outlives the call
//! and a zeroed `OVERLAPPED` owned by the caller.

use super::{Hint, LockKind};
use std::fs::{File, TryLockError};
use std::io;
use std::os::windows::io::AsRawHandle;
use std::sync::atomic::{AtomicU32, Ordering};

/// Makes `[from, to)` of `file` allocated, extending its length to `to`
/// with `set_len` (`SetFileInformationByHandle`), which NTFS backs with
/// allocated, zeroed clusters unless the file is marked sparse.
pub(crate) fn preallocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    debug_assert!(to >= from);
    if file.metadata()?.len() < to {
        file.set_len(to)?;
    }
    Ok(())
}

/// Dropping a file's cached pages has no Windows counterpart: a no-op.
pub(crate) fn drop_cache(file: &File) {
    let _ = file;
}

/// Renames `from` to `to` unless `to` exists (`ErrorKind::AlreadyExists`
/// then): a hard link followed by removing `from` (the file briefly has two
/// names).
pub(crate) fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    let _ = std::fs::remove_file(from);
    Ok(())
}

/// The first data extent of `file` at or after `offset` (see `unix.rs`):
/// holes are not looked for, so everything from `offset` is data.
pub(crate) fn data_extent(file: &File, offset: u64) -> io::Result<Option<(u64, u64)>> {
    let _ = file;
    Ok(Some((offset, u64::MAX)))
}

/// Early writeback has no Windows counterpart: a no-op (the sync that
/// follows writes everything).
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    let _ = (file, offset, len);
}

/// File access hints: a no-op.
pub(super) fn fadvise(file: &File, offset: u64, len: u64, hint: Hint) {
    let _ = (file, offset, len, hint);
}

/// Mapping access hints: a no-op.
pub(super) fn advise_map(base: *const u8, len: usize, hint: Hint) {
    let _ = (base, len, hint);
}

/// Residency cannot be told cheaply: every page counts as resident (so
/// nothing is prefetched on its account).
pub(super) fn page_resident(at: *const u8, page: usize) -> bool {
    let _ = (at, page);
    true
}

/// Sleeps until `word` may differ from `expected` or `timeout` passes: a
/// short sleep while it holds `expected` (callers loop).
pub(crate) fn wait_on(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    if word.load(Ordering::Acquire) == expected {
        std::thread::sleep(timeout.min(std::time::Duration::from_micros(200)));
    }
}

/// Wakes every process waiting in `wait_on(word, …)`: nothing to do, they
/// poll.
pub(crate) fn wake_all(word: &AtomicU32) {
    let _ = word;
}

/// Windows refuses to shrink a file while any view of it is mapped
/// (`ERROR_USER_MAPPED_FILE`), the writer's own included: it unmaps first.
pub(crate) const UNMAP_BEFORE_SHRINK: bool = true;

/// The one byte every lock covers (see `LockKind`): far past the end of any
/// file (NTFS files end below 2^44 bytes, so no read or write reaches it),
/// and a lock past the end of a file is allowed and conflicts as any other.
const LOCK_AT: u64 = 1 << 62;

/// An `OVERLAPPED` naming `LOCK_AT` (the handles are synchronous: it only
/// carries the offset).
fn at_lock_byte() -> windows_sys::Win32::System::IO::OVERLAPPED {
    let mut o = windows_sys::Win32::System::IO::OVERLAPPED::default();
    o.Anonymous.Anonymous.Offset = LOCK_AT as u32;
    o.Anonymous.Anonymous.OffsetHigh = (LOCK_AT >> 32) as u32;
    o
}

fn lock_byte(file: &File, kind: LockKind, wait: bool) -> io::Result<()> {
    use windows_sys::Win32::Storage::FileSystem::{
        LockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
    };
    let mut flags = 0;
    if kind == LockKind::Exclusive {
        flags |= LOCKFILE_EXCLUSIVE_LOCK;
    }
    if !wait {
        flags |= LOCKFILE_FAIL_IMMEDIATELY;
    }
    let mut o = at_lock_byte();
    // SAFETY: the handle is valid for the lifetime of `file`, which outlives
    // the call; `o` is a valid OVERLAPPED the call only reads (the handle is
    // synchronous, so the call completes before returning).
    let ok = unsafe { LockFileEx(file.as_raw_handle(), flags, 0, 1, 0, &mut o) };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Takes a `kind` lock on `file`, waiting while another handle holds a
/// conflicting one (see `LockKind`): `LockFileEx` of `LOCK_AT`.
pub(crate) fn lock(file: &File, kind: LockKind) -> io::Result<()> {
    lock_byte(file, kind, true)
}

/// `lock` without waiting: `WouldBlock` if another handle holds a
/// conflicting lock (`ERROR_LOCK_VIOLATION`).
pub(crate) fn try_lock(file: &File, kind: LockKind) -> Result<(), TryLockError> {
    use windows_sys::Win32::Foundation::ERROR_LOCK_VIOLATION;
    match lock_byte(file, kind, false) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) => {
            Err(TryLockError::WouldBlock)
        }
        Err(e) => Err(TryLockError::Error(e)),
    }
}

/// Releases this handle's lock on `file` (`UnlockFileEx` of `LOCK_AT`).
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    use windows_sys::Win32::Storage::FileSystem::UnlockFileEx;
    let mut o = at_lock_byte();
    // SAFETY: as in `lock_byte`.
    let ok = unsafe { UnlockFileEx(file.as_raw_handle(), 0, 1, 0, &mut o) };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
