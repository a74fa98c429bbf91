//! The Windows side of `sys`: the same functions as `unix.rs`, built on
//! std's file calls and, for the store's locks, `LockFileEx`. Where Windows
//! has no counterpart of a Unix call (cache hints, sparse-extent queries,
//! early writeback, futexes), the function is a no-op or a conservative
//! answer, as documented on each.
//!
//! Every `unsafe` block passes handles that outlive the call (of a file,
//! or of the named section `NamedSection` owns) and buffers or structures
//! owned by the caller; each says which.

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

/// A second handle for bulk sequential reads: not needed here (bulk reads
/// copy from the map off Linux, where residency cannot be told).
pub(crate) fn reopen_sequential(_file: &File) -> Option<File> {
    None
}

/// Dropping a file's cached pages has no Windows counterpart: a no-op.
pub(crate) fn drop_cache(file: &File) {
    let _ = file;
}

/// Renames `from` to `to` unless `to` exists (`ErrorKind::AlreadyExists`
/// then): `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`, which is one
/// step (the file never has two names, so its link count stays 1 for the
/// handles already open on it), with `MOVEFILE_WRITE_THROUGH` so it is on
/// disk when the call returns.
pub(crate) fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{MoveFileExW, MOVEFILE_WRITE_THROUGH};
    let wide =
        |p: &std::path::Path| -> Vec<u16> { p.as_os_str().encode_wide().chain([0]).collect() };
    let (f, t) = (wide(from), wide(to));
    // SAFETY: `f` and `t` are NUL-terminated UTF-16 strings that outlive
    // the call.
    let ok = unsafe { MoveFileExW(f.as_ptr(), t.as_ptr(), MOVEFILE_WRITE_THROUGH) };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
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

/// Residency cannot be counted: `None`.
pub(super) fn resident_pages(at: *const u8, len: usize) -> Option<u64> {
    let _ = (at, len);
    None
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

/// The identity of `file` and its number of names (hard links), from
/// `GetFileInformationByHandle`: `(0, file index, links)`. The file index
/// is unique on its volume while the file exists, as a Unix inode number.
/// The volume's serial number is left out (as 0): the identity is only ever
/// compared for files found at one path, so on one volume, and Wine reports
/// it as 0 through some handles and the real serial through others.
pub(crate) fn file_identity(file: &File) -> io::Result<(u64, u64, u64)> {
    use windows_sys::Win32::Storage::FileSystem::{
        GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION,
    };
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: the handle is valid for the lifetime of `file`, which outlives
    // the call; `info` is a properly sized, writable structure the call
    // fills.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((
        0,
        (info.nFileIndexHigh as u64) << 32 | info.nFileIndexLow as u64,
        info.nNumberOfLinks as u64,
    ))
}

/// Marks the file at `path` temporary (`FILE_ATTRIBUTE_TEMPORARY`): the
/// cache manager then keeps its pages in memory and writes them out only
/// under memory pressure or when asked (a sync still writes them).
pub(crate) fn mark_temporary(path: &std::path::Path) -> io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{SetFileAttributesW, FILE_ATTRIBUTE_TEMPORARY};
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call.
    let ok = unsafe { SetFileAttributesW(wide.as_ptr(), FILE_ATTRIBUTE_TEMPORARY) };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A named, pagefile-backed section (`CreateFileMappingW(INVALID_HANDLE_VALUE,
/// …)`) of one page, mapped: the lifetime anchor of a named shared store.
/// The system frees the section when its last handle closes, in whatever
/// process, crashed ones included; its first word (`state`) starts at zero.
pub(crate) struct NamedSection {
    handle: windows_sys::Win32::Foundation::HANDLE,
    view: windows_sys::Win32::System::Memory::MEMORY_MAPPED_VIEW_ADDRESS,
}

// SAFETY: a section handle and a view of it may be used and closed from any
// thread; the view is only read and written through an atomic.
unsafe impl Send for NamedSection {}
// SAFETY: as for `Send`: shared access goes through `&AtomicU32`.
unsafe impl Sync for NamedSection {}

impl NamedSection {
    fn wide(name: &str) -> Vec<u16> {
        name.encode_utf16().chain([0]).collect()
    }

    /// Creates the section `name`, or opens it if it exists: `(section,
    /// true)` if it already existed (another handle holds it).
    pub(crate) fn create(name: &str) -> io::Result<(NamedSection, bool)> {
        use windows_sys::Win32::Foundation::{
            GetLastError, ERROR_ALREADY_EXISTS, INVALID_HANDLE_VALUE,
        };
        use windows_sys::Win32::System::Memory::{CreateFileMappingW, PAGE_READWRITE};
        let wide = Self::wide(name);
        // SAFETY: `INVALID_HANDLE_VALUE` asks for a pagefile-backed section;
        // the attributes pointer may be null; `wide` is a NUL-terminated
        // UTF-16 string that outlives the call.
        let handle = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                0,
                4096,
                wide.as_ptr(),
            )
        };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: reads the calling thread's last-error value, which
        // `CreateFileMappingW` set (to `ERROR_ALREADY_EXISTS` or zero).
        let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        Ok((Self::map(handle)?, existed))
    }

    /// Opens the existing section `name`; `None` if there is none (no
    /// handle of it is open anywhere).
    pub(crate) fn open(name: &str) -> io::Result<Option<NamedSection>> {
        use windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND;
        use windows_sys::Win32::System::Memory::{OpenFileMappingW, FILE_MAP_ALL_ACCESS};
        let wide = Self::wide(name);
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the
        // call.
        let handle = unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, wide.as_ptr()) };
        if handle.is_null() {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(ERROR_FILE_NOT_FOUND as i32) {
                return Ok(None);
            }
            return Err(e);
        }
        Self::map(handle).map(Some)
    }

    /// Maps the section's page; closes `handle` if that fails.
    fn map(handle: windows_sys::Win32::Foundation::HANDLE) -> io::Result<NamedSection> {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Memory::{MapViewOfFile, FILE_MAP_ALL_ACCESS};
        // SAFETY: `handle` is a section handle this function owns; mapping
        // 4096 bytes from offset 0 stays inside the one-page section.
        let view = unsafe { MapViewOfFile(handle, FILE_MAP_ALL_ACCESS, 0, 0, 4096) };
        if view.Value.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: `handle` is open and owned here; nothing else uses it.
            unsafe { CloseHandle(handle) };
            return Err(e);
        }
        Ok(NamedSection { handle, view })
    }

    /// The section's first word, shared by every process that maps it.
    pub(crate) fn state(&self) -> &AtomicU32 {
        // SAFETY: the view is page-aligned (so aligned for a u32), at least
        // 4096 bytes long, mapped read-write until `self` drops, and only
        // ever accessed through atomics by any process.
        unsafe { &*(self.view.Value as *const AtomicU32) }
    }
}

impl Drop for NamedSection {
    fn drop(&mut self) {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Memory::UnmapViewOfFile;
        // `view` and `handle` came from `MapViewOfFile` and
        // `CreateFileMappingW`/`OpenFileMappingW` and are owned by `self`.
        // SAFETY: released exactly once, here; no `state` reference
        // outlives `self`.
        unsafe {
            UnmapViewOfFile(self.view);
            CloseHandle(self.handle);
        }
    }
}
