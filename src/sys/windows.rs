//! The Windows side of `sys`: the same functions as `unix.rs`, built on
//! std's file calls. Where Windows has no counterpart of a Unix call (cache
//! hints, sparse-extent queries, early writeback, futexes), the function is
//! a no-op or a conservative answer, as documented on each.

use super::Hint;
use std::fs::File;
use std::io;
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
