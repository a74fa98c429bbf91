//! Files made and opened beside a data file (the coordination file, and
//! the temporary names files are made under before they are renamed into
//! place): their fresh names, the open options that never follow a planted
//! link or wait on a FIFO, and the errors that name what was found there.
//!
//! Invariant: nothing here follows a symbolic link or blocks on an open;
//! anything but a regular file is refused by name (`check_regular`).

use super::{bad, DELETE_IT};
use crate::error::{Error, Result};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh name beside `path` for a file or directory being made:
/// `.<name>.recmap-tmp-<pid>-<nonce>`, unique in this process (a counter)
/// and, with the time, across processes; short enough for any name to fit
/// NAME_MAX (at most 100 characters of `path`'s name are kept).
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(
        ".{name}.recmap-tmp-{:x}-{nanos:x}-{n:x}",
        std::process::id()
    ))
}

/// Open options for a file recmap makes or opens beside a data file: never
/// through a symbolic link (or, on Windows, a reparse point), never blocking
/// on a FIFO or device (the type is checked after opening).
pub(crate) fn beside_options(write: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // `FILE_FLAG_OPEN_REPARSE_POINT`: open a link itself, not its target.
        const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        o.custom_flags(OPEN_REPARSE_POINT);
    }
    o
}

/// The error for an `open` of a file beside a data file that failed.
pub(crate) fn open_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    // Only Unix's errors name a planted symbolic link (`ELOOP`); on Windows
    // the reparse point itself is opened and `check_regular` refuses it.
    #[cfg(not(unix))]
    let _ = what;
    #[cfg(unix)]
    match e.raw_os_error() {
        Some(libc::ELOOP) => {
            return bad(
                path,
                format!("it is a symbolic link, and recmap never follows one for its {what} (someone else may have planted it); {DELETE_IT}"),
            )
        }
        Some(libc::EISDIR) => {
            return bad(
                path,
                format!("it is a directory, not a regular file; {DELETE_IT}"),
            )
        }
        Some(libc::ENXIO) | Some(libc::ENODEV) => {
            return bad(path, format!("it is not a regular file; {DELETE_IT}"))
        }
        _ => {}
    }
    // Windows refuses to open a directory with "access denied".
    if e.kind() == std::io::ErrorKind::IsADirectory
        || path.symlink_metadata().is_ok_and(|m| m.is_dir())
    {
        return bad(
            path,
            format!("it is a directory, not a regular file; {DELETE_IT}"),
        );
    }
    Error::io("open coordination file", path, e)
}

/// What a file is, in words, for messages ("a FIFO").
pub(crate) fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        } else if t.is_socket() {
            return "a socket";
        } else if t.is_char_device() {
            return "a character device";
        } else if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Refuses anything but a regular file (named as what it is).
pub(crate) fn check_regular(path: &Path, m: &std::fs::Metadata) -> Result<()> {
    if m.file_type().is_file() {
        return Ok(());
    }
    Err(bad(
        path,
        format!(
            "it is {}, not a regular file; {DELETE_IT}",
            file_kind(m.file_type())
        ),
    ))
}
