//! The Unix side of `sys` (Linux, with fallbacks for other Unixes): the
//! file-level system calls (preallocating space, dropping a file's cached
//! pages, `posix_fadvise`, renaming without replacing, open-file-description
//! byte-range locks, finding the data extents of a sparse file, starting
//! writeback early), `madvise` and `mincore` on the mappings, and sleeping
//! on a word of a shared mapping (futexes).
//!
//! Every function is safe to call; each `unsafe` block passes only integer
//! arguments, descriptors of files that outlive the call, or addresses
//! inside live mappings.

use super::{Hint, LockKind};
use std::fs::File;
use std::fs::TryLockError;
use std::io;
use std::sync::atomic::AtomicU32;
#[cfg(not(target_os = "linux"))]
use std::sync::atomic::Ordering;

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

/// Drops `file`'s clean cached pages (a hint; errors are ignored). The log
/// uses it so that its pages are cached again, on the next small write, as
/// small folios: a 4 KiB write plus `fdatasync` into a page cached as part
/// of a 2 MiB folio (after large writes or readahead) costs measurably more
/// (docs/benchmarks.md).
pub(crate) fn drop_cache(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: posix_fadvise only reads its integer arguments; the fd is
        // valid for the lifetime of `file`, which outlives the call.
        let _ = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// A second open file description of `file`'s file, read-only, with the
/// sequential read-ahead hint (Linux: through `/proc/self/fd`). A file
/// description carries its own read-ahead state, so bulk `pread`s through
/// it get the kernel's largest read-ahead windows whatever hint the
/// original (a reader's, `Random` by default) carries. `None` where this
/// cannot be done.
pub(crate) fn reopen_sequential(file: &File) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let f = File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        fadvise(&f, 0, 0, Hint::Sequential);
        Some(f)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// The number of names (hard links) of the open file `file`: 0 once it was
/// removed, or renamed over, at every path it had.
///
/// Linux asks `statx` for the link count alone: a `stat` that returns the
/// file's times marks them queried (multigrain timestamps, Linux 6.13+),
/// which makes the next write store a fine-grained time and so dirty the
/// inode — measured as 4 KiB more written per commit, twice the log's own
/// page. Elsewhere `fstat`.
pub(crate) fn link_count(file: &File) -> io::Result<u64> {
    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `statx` writes only into `buf`, a zeroed `statx` that
        // outlives the call; the path is the empty C string (with
        // `AT_EMPTY_PATH`, the call is about `file`'s descriptor itself).
        let (r, buf) = unsafe {
            let mut buf: libc::statx = std::mem::zeroed();
            let r = libc::statx(
                file.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                libc::STATX_NLINK,
                &mut buf,
            );
            (r, buf)
        };
        // A failing `statx` (a sandbox that refuses it) falls back to
        // `fstat` below, as does a reply without the link count.
        if r == 0 && buf.stx_mask & libc::STATX_NLINK != 0 {
            return Ok(buf.stx_nlink as u64);
        }
    }
    use std::os::unix::fs::MetadataExt;
    Ok(file.metadata()?.nlink())
}

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: `geteuid` takes no arguments, touches no memory of ours and
    // cannot fail (POSIX).
    unsafe { libc::geteuid() }
}

/// Renames `from` to `to` unless `to` exists (`ErrorKind::AlreadyExists`
/// then). Linux: `renameat2(RENAME_NOREPLACE)`; where the file system or
/// system lacks it, a hard link followed by removing `from` (the file
/// briefly has two names). Elsewhere: the hard link.
pub(crate) fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &std::path::Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both pointers are NUL-terminated strings that outlive the
        // call; renameat2 only reads them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {}
            _ => return Err(e),
        }
    }
    std::fs::hard_link(from, to)?;
    let _ = std::fs::remove_file(from);
    Ok(())
}

/// Byte-range locks that belong to an open file description (Linux
/// `F_OFD_SETLK`): unlike `flock`, several can be held on one file at
/// different offsets, and unlike classic POSIX locks they are not dropped
/// when the process closes some other descriptor of the file. Offsets may
/// lie far past the end of the file; nothing is read or written there.
/// `coord` uses them on the data file to make every handle of a store agree
/// on one coordination file.
#[cfg(target_os = "linux")]
pub(crate) mod ofd {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    fn flock(kind: libc::c_int, start: i64, len: i64) -> io::Result<libc::flock> {
        let start = libc::off_t::try_from(start)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: `flock` is a plain C struct of integers; all zeros is a
        // valid value (l_pid must be 0 for OFD requests).
        let mut l: libc::flock = unsafe { std::mem::zeroed() };
        l.l_type = kind as libc::c_short;
        l.l_whence = libc::SEEK_SET as libc::c_short;
        l.l_start = start;
        l.l_len = len;
        Ok(l)
    }

    fn fcntl(file: &File, cmd: libc::c_int, l: &mut libc::flock) -> io::Result<()> {
        // SAFETY: the fd is valid for the lifetime of `file`; `l` is a valid,
        // exclusively borrowed `struct flock` the kernel reads (and, for
        // GETLK, writes) and that outlives the call.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, l as *mut libc::flock) };
        if rc == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Takes a shared lock on byte `at` without waiting; `Ok(false)` if an
    /// exclusive lock of another description holds it.
    pub(crate) fn try_lock_shared(file: &File, at: i64) -> io::Result<bool> {
        let mut l = flock(libc::F_RDLCK, at, 1)?;
        match fcntl(file, libc::F_OFD_SETLK, &mut l) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Releases this description's lock on byte `at`.
    pub(crate) fn unlock(file: &File, at: i64) -> io::Result<()> {
        let mut l = flock(libc::F_UNLCK, at, 1)?;
        fcntl(file, libc::F_OFD_SETLK, &mut l)
    }

    /// The offset of some lock another open file description holds on
    /// `[start, start + len)`, if any (this description's own are not
    /// reported).
    pub(crate) fn other_lock(file: &File, start: i64, len: i64) -> io::Result<Option<i64>> {
        if len <= 0 {
            return Ok(None);
        }
        let mut l = flock(libc::F_WRLCK, start, len)?;
        fcntl(file, libc::F_OFD_GETLK, &mut l)?;
        Ok((l.l_type != libc::F_UNLCK as libc::c_short).then_some(l.l_start as i64))
    }
}

/// The first data extent of `file` at or after `offset`: `Some((start,
/// end))` with `start >= offset` the first byte that is not in a hole and
/// `end` the end of that run of data, or `None` if only holes (or the end of
/// the file) follow. Every byte of a hole reads as zero. Where holes cannot
/// be found (no `SEEK_DATA`), everything from `offset` is data. `verify`
/// uses it to hash the pages of a sparse file without reading its holes.
/// Moves the file's offset, which recmap never uses (all its I/O is
/// positional).
pub(crate) fn data_extent(file: &File, offset: u64) -> io::Result<Option<(u64, u64)>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(off) = libc::off_t::try_from(offset) else {
            return Ok(None);
        };
        // SAFETY: lseek only reads its integer arguments; the fd is valid
        // for the lifetime of `file`, which outlives the call.
        let start = unsafe { libc::lseek(file.as_raw_fd(), off, libc::SEEK_DATA) };
        if start < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENXIO) => Ok(None),
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(Some((offset, u64::MAX))),
                _ => Err(e),
            };
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(file.as_raw_fd(), start, libc::SEEK_HOLE) };
        if end < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some((start as u64, end as u64)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Ok(Some((offset, u64::MAX)))
    }
}

/// Starts writing `[offset, offset + len)` of `file` back to the device
/// without waiting for it (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`),
/// so a later `fdatasync` of a bulk write waits only for what is still in
/// flight: the device works while the writer copies the next batch. Not a
/// durability step (it promises nothing, and errors are left to the sync
/// that follows, which reports them); a no-op elsewhere.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return;
        };
        let (fd, how) = (file.as_raw_fd(), libc::SYNC_FILE_RANGE_WRITE);
        // SAFETY: sync_file_range only reads its integer arguments; the fd
        // is valid for the lifetime of `file`, which outlives the call.
        let _ = unsafe { libc::sync_file_range(fd, off, n, how) };
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
    }
}

/// `posix_fadvise(file, offset, len, hint)` (Linux; a no-op on other
/// Unixes), best effort (`len` 0: to the end of the file).
pub(super) fn fadvise(file: &File, offset: u64, len: u64, hint: Hint) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let a = match hint {
            Hint::Normal => libc::POSIX_FADV_NORMAL,
            Hint::Random => libc::POSIX_FADV_RANDOM,
            Hint::Sequential => libc::POSIX_FADV_SEQUENTIAL,
            Hint::WillNeed => libc::POSIX_FADV_WILLNEED,
            Hint::DontNeed => libc::POSIX_FADV_DONTNEED,
        };
        let (Ok(off), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return;
        };
        if hint == Hint::DontNeed {
            // The kernel drops only clean folios: write the range's dirty
            // pages back first, and wait (not a sync: nothing is made
            // durable, and every page in the cache was already free to
            // reach the disk at any moment).
            let how = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            // SAFETY: sync_file_range only reads its integer arguments; the
            // fd is valid for the lifetime of `file`, which outlives the call.
            let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, how) };
        }
        // SAFETY: posix_fadvise only reads its integer arguments; the fd is
        // valid for the lifetime of `file`, which outlives the call.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), off, n, a) };
        if rc != 0 {
            tracing::debug!(errno = rc, ?hint, "posix_fadvise refused");
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len, hint);
    }
}

/// `madvise(base, len, hint)` for a page-aligned range of a live shared,
/// read-only file mapping. Best effort: a refusal is logged.
pub(super) fn advise_map(base: *const u8, len: usize, hint: Hint) {
    let advice = match hint {
        Hint::Normal => libc::MADV_NORMAL,
        Hint::Random => libc::MADV_RANDOM,
        Hint::Sequential => libc::MADV_SEQUENTIAL,
        Hint::WillNeed => libc::MADV_WILLNEED,
        Hint::DontNeed => libc::MADV_DONTNEED,
    };
    // SAFETY: callers pass a page-aligned range inside a live mapping of a
    // file, shared and read-only; no advice given here writes memory.
    let rc = unsafe { libc::madvise(base as *mut libc::c_void, len, advice) };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), advice, "madvise refused");
    }
}

/// How many of the pages of `[at, at + len)` (page-aligned, inside a live
/// mapping) are in the page cache (Linux `mincore`, 4096 pages a call);
/// `None` if that cannot be told.
pub(super) fn resident_pages(at: *const u8, len: usize) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = crate::format::PAGE_SIZE as usize;
        const STEP: usize = 4096 * PAGE;
        let mut v = [0u8; STEP / PAGE];
        let mut count = 0u64;
        let mut off = 0;
        while off < len {
            let n = STEP.min(len - off);
            // `at + off` is page-aligned and inside the caller's live mapping.
            // SAFETY: mincore reads nothing and writes `n / PAGE <= v.len()`
            // bytes into `v`; the range lies inside a live mapping.
            let rc = unsafe {
                libc::mincore(at.wrapping_add(off) as *mut libc::c_void, n, v.as_mut_ptr())
            };
            if rc != 0 {
                return None;
            }
            count += v[..n.div_ceil(PAGE)]
                .iter()
                .filter(|&&b| b & 1 == 1)
                .count() as u64;
            off += n;
        }
        Some(count)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (at, len);
        None
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

/// Whether a file must be unmapped before it may shrink: not on Unix (a
/// mapping past the new end faults only when touched).
pub(crate) const UNMAP_BEFORE_SHRINK: bool = false;

/// Takes a `kind` lock on `file`, waiting while another handle holds a
/// conflicting one (see `LockKind`): `flock`.
pub(crate) fn lock(file: &File, kind: LockKind) -> io::Result<()> {
    match kind {
        LockKind::Shared => file.lock_shared(),
        LockKind::Exclusive => file.lock(),
    }
}

/// `lock` without waiting: `WouldBlock` if another handle holds a
/// conflicting lock.
pub(crate) fn try_lock(file: &File, kind: LockKind) -> Result<(), TryLockError> {
    match kind {
        LockKind::Shared => file.try_lock_shared(),
        LockKind::Exclusive => file.try_lock(),
    }
}

/// Releases this handle's lock on `file`.
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    file.unlock()
}
