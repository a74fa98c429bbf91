//! The log file (`<data file>-wal`): opening and preallocating it, and
//! scanning it for the commits a recovery replays (or a reader overlays).
//! The frame bytes and chain rules are in `format::wal`.
//!
//! Invariants:
//! - the log sits beside the data file's canonical path (symlinks
//!   resolved), as the coordination file does, so every name of a store
//!   meets one log;
//! - the log is never followed through a symlink and must be a regular
//!   file with one name (writing a file with two names would change the
//!   other) that only those who may write the data file may write (`trust`:
//!   anyone else could forge commits into it); it is created with the data
//!   file's permission bits, and an existing one is never chowned or
//!   chmodded;
//! - a writer's log is preallocated by writing zeros (not `fallocate`: on
//!   ext4 the first write into an unwritten extent is a metadata change,
//!   which would make every commit's `fdatasync` commit the journal too), a
//!   page per write, and its clean pages are dropped from the cache after
//!   opening and recovery, so commits write into small page-cache folios;
//! - a new log starts at [`INITIAL_LOG_LEN`] (or the log size, if smaller)
//!   and grows as commits need room, by zero-filled steps that double it up
//!   to the log size (`Log::grow_for`): a store that never fills its log
//!   never writes 4 MiB of zeros, and a bulk load does not pay for them;
//! - frames since the last checkpoint occupy `[0, end)`; the next commit's
//!   frames go at `end`; a checkpoint sets `end` back to 0 (the frames left
//!   behind name an older `header_seq` and end every later scan);
//! - a scan applies a commit only once its last frame is read and checked,
//!   so a torn commit is never applied in part.

use crate::error::{Error, Result};
use crate::fileio::{read_exact_at, write_all_at};
use crate::format::wal::{checksum_holds, Chain, FrameError, FrameHeader, FRAME_HEADER_LEN};
use crate::format::Header;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Default log size: a commit that would pass it checkpoints first.
pub const DEFAULT_LOG_SIZE: u64 = 4 << 20;
/// Smallest log size accepted.
pub const MIN_LOG_SIZE: u64 = 64 << 10;
/// Length a new log is preallocated to; it grows from there as needed.
pub const INITIAL_LOG_LEN: u64 = 64 << 10;

/// The log file's path for a data file at `data` (its name plus `-wal`).
pub(crate) fn log_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// The log of the store at `data`, whatever name it was opened by: beside
/// its canonical path, where its coordination file is too. (A log beside a
/// symbolic link's own name would be another process's "no log" when it
/// opens the store by its real name: a crash would lose the commits only
/// the link's log held.)
pub(crate) fn store_log_path(data: &Path) -> Result<PathBuf> {
    Ok(log_path(&canonical_data_path(data)?))
}

/// The data file's canonical path (without Windows' verbatim prefix where
/// the plain form names the same file).
fn canonical_data_path(data: &Path) -> Result<PathBuf> {
    let canonical = std::fs::canonicalize(data).map_err(|e| Error::io("resolve path", data, e))?;
    Ok(plain(canonical))
}

/// `p` without Windows' verbatim prefix (`\\?\C:\...` as `C:\...`, which
/// `canonicalize` returns and every message would otherwise show) where
/// the plain form names the same file: a drive path short enough for the
/// classic length limit. Other paths, and every path elsewhere, as they are.
fn plain(p: PathBuf) -> PathBuf {
    #[cfg(windows)]
    {
        let s = p.to_string_lossy();
        if let Some(rest) = s.strip_prefix(r"\\?\") {
            let b = rest.as_bytes();
            if b.len() >= 3
                && b[0].is_ascii_alphabetic()
                && b[1] == b':'
                && b[2] == b'\\'
                && rest.len() < 248
            {
                return PathBuf::from(rest.to_string());
            }
        }
    }
    p
}

/// A writer's open log.
pub(crate) struct Log {
    pub(super) file: File,
    pub(super) path: PathBuf,
    /// The data file's canonical path, which `path` was made from.
    pub(super) data: PathBuf,
    /// Bytes of the frames written since the last checkpoint.
    pub(super) end: u64,
    /// Commits in `[0, end)`.
    pub(super) commits: u64,
    /// The file's length (at least `limit`; more after a commit larger than it).
    pub(super) file_len: u64,
    /// Reused frame buffer.
    pub(super) buf: Vec<u8>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("path", &self.path)
            .field("end", &self.end)
            .field("commits", &self.commits)
            .finish_non_exhaustive()
    }
}

fn open_options(write: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true);
    if write {
        o.write(true).create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // `FILE_FLAG_OPEN_REPARSE_POINT`: a link at the path is opened
        // itself, not its target (and then refused as not a regular file),
        // as for the coordination file.
        const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        o.custom_flags(OPEN_REPARSE_POINT);
    }
    o
}

/// Opens the log at `path` (`write`: creating it with the permission bits
/// of `data`, the data file); `Ok(None)` if reading and there is none.
/// Refuses anything but a regular file of one name that `trust` accepts.
fn open_file(path: &Path, write: bool, data: &File) -> Result<Option<File>> {
    let mode = mode_of(data);
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut o = open_options(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let file = match o.open(path) {
        Ok(f) => f,
        Err(e) if !write && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            #[cfg(unix)]
            if e.raw_os_error() == Some(libc::ELOOP) {
                return Err(Error::BadCoordination {
                    path: path.into(),
                    reason: "the log file is a symbolic link; remove it".into(),
                });
            }
            // A writer opens read-write, which a directory refuses before
            // the regular-file check below could say so (Windows: with
            // "access denied", hence the look at what is there).
            if e.kind() == std::io::ErrorKind::IsADirectory
                || path.symlink_metadata().is_ok_and(|m| m.is_dir())
            {
                return Err(Error::BadCoordination {
                    path: path.into(),
                    reason: "the log is not a regular file; remove it".into(),
                });
            }
            return Err(Error::io("open log", path, e));
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("stat log", path, e))?;
    if !meta.is_file() {
        return Err(Error::BadCoordination {
            path: path.into(),
            reason: "the log is not a regular file; remove it".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let owner = data.metadata().map_err(|e| Error::io("stat", path, e))?;
        if meta.nlink() > 1 {
            return Err(Error::BadCoordination {
                path: path.into(),
                reason: format!(
                    "the log has {} names (hard links), so writing it could change another file; \
                     remove this name of it",
                    meta.nlink()
                ),
            });
        }
        trust(path, &meta, &owner)?;
    }
    Ok(Some(file))
}

/// Whether a log of `meta` beside a data file of `owner` may be trusted,
/// the reason it may not otherwise. Whoever can write the log can forge
/// commits into it, so it may be written by no one the data file does not
/// already trust:
/// - it belongs to the data file's owner, to root, or to this process (a
///   file of anyone else is never adopted, empty or not: a planted empty
///   log would hand its maker every commit written into it);
/// - it grants no group or other write permission the data file does not
///   (extra read bits are a matter for the data file's owner, not a forgery
///   risk, and refusing them would make a `chmod` of the data file alone
///   lock its readers out).
///
/// Nothing here changes the file (no `chown`, no `chmod`): the log is
/// opened by path, and a process that changed the owner or mode of what it
/// opened could be steered, by a directory swapped for a symbolic link
/// between the path's resolution and the open, into giving away a file of
/// its own elsewhere.
#[cfg(unix)]
fn trust(path: &Path, meta: &std::fs::Metadata, owner: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let data_mode = owner.mode() & 0o777;
    let owner_ok =
        meta.uid() == owner.uid() || meta.uid() == 0 || meta.uid() == crate::sys::effective_uid();
    let bad = |reason: String| Error::BadCoordination {
        path: path.into(),
        reason,
    };
    if !owner_ok {
        return Err(bad(format!(
            "the log belongs to uid {}, the data file to uid {}: a log must belong to the data \
             file's owner (anyone else could forge commits into it, or read them); if you trust \
             it, chown it to uid {}, or keep the store in a directory other users cannot write",
            meta.uid(),
            owner.uid(),
            owner.uid()
        )));
    }
    let wider = meta.mode() & 0o022 & !data_mode;
    if wider != 0 {
        return Err(bad(format!(
            "the log's permission bits {:o} let group or others write it where the data file's {:o} \
             do not (they could forge commits into it); chmod it to {:o}",
            meta.mode() & 0o777,
            data_mode,
            data_mode
        )));
    }
    Ok(())
}

/// Permission bits of the data file, for the files made beside it.
pub(crate) fn mode_of(data: &File) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        data.metadata()
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o600)
    }
    #[cfg(not(unix))]
    {
        let _ = data;
        0o600
    }
}

impl Log {
    /// Opens (creating if needed) the log of `data` for a writer and makes
    /// sure it is at least `min(limit, INITIAL_LOG_LEN)` bytes, writing zeros
    /// (synced, with the directory) to get there.
    pub(crate) fn open_for_write(data: &Path, data_file: &File, limit: u64) -> Result<Log> {
        let canonical = canonical_data_path(data)?;
        let path = log_path(&canonical);
        let file = open_file(&path, true, data_file)?.expect("created");
        let mut file_len = file
            .metadata()
            .map_err(|e| Error::io("stat log", &path, e))?
            .len();
        let want = limit.min(INITIAL_LOG_LEN);
        if file_len < want {
            if let Err(e) = zero_fill(&file, file_len, want) {
                // Give back what the partial fill took.
                let _ = file.set_len(file_len);
                return Err(crate::store::grow::map_grow_error(&path, want, e));
            }
            file.sync_all()
                .map_err(|e| Error::io("fsync log", &path, e))?;
            crate::fileio::sync_dir(&path).map_err(|e| Error::io("fsync directory", &path, e))?;
            file_len = want;
        }
        crate::sys::drop_cache(&file);
        Ok(Log {
            file,
            path,
            data: canonical,
            end: 0,
            commits: 0,
            file_len,
            buf: Vec::new(),
        })
    }

    /// Makes room for a write that ends at `end` (a page boundary): if the
    /// file is shorter, it grows to `end` or, if larger, twice its length up
    /// to `limit`, all of the new part zero-filled, the part the caller's
    /// write is about to fill too: a full disk then shows here, where the
    /// commit has written nothing and can checkpoint and use the room the
    /// log has, not in the frames' write, which must poison the handle.
    /// Returns the new length, durable with the next sync of the log (the
    /// caller's commit syncs it with its frames); `None` if there was room.
    pub(super) fn grow_for(&mut self, end: u64, limit: u64) -> Result<Option<u64>, GrowError> {
        if end <= self.file_len {
            return Ok(None);
        }
        let doubled = self.file_len.saturating_mul(2).min(limit);
        let new_len = end.max(doubled).next_multiple_of(crate::format::PAGE_SIZE);
        if let Err(e) = zero_fill(&self.file, self.file_len, new_len) {
            if !is_out_of_space(&e) {
                return Err(GrowError::Io(e));
            }
            // Give back what the partial fill took; if even that fails the
            // handle must not go on.
            return match self.file.set_len(self.file_len) {
                Ok(()) => Err(GrowError::Full(e)),
                Err(e) => Err(GrowError::Io(e)),
            };
        }
        self.file_len = new_len;
        Ok(Some(new_len))
    }

    /// Opens the log of `data` (open as `data_file`) for reading; `None`
    /// if there is none.
    pub(crate) fn open_for_read(data: &Path, data_file: &File) -> Result<Option<(File, PathBuf)>> {
        let path = store_log_path(data)?;
        Ok(open_file(&path, false, data_file)?.map(|f| (f, path)))
    }
}

/// True for the errors `grow::map_grow_error` turns into `NoSpace` or
/// `FileTooLarge`: no room, as opposed to a failing device.
fn is_out_of_space(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    ) {
        return true;
    }
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
    )
}

/// Why `Log::grow_for` failed.
#[derive(Debug)]
pub(super) enum GrowError {
    /// No room (full disk, quota or file-size limit); the log is back at its
    /// old length and nothing else was written.
    Full(std::io::Error),
    /// Any other failure: the handle must stop writing.
    Io(std::io::Error),
}

/// Writes zeros over `[from, to)` of `file`, a page per write (the pages
/// get cached as small folios; see `sys::drop_cache`). `grow_for` fills the
/// part its caller's write then overwrites too (the page cache takes those
/// bytes twice, on growth only), so a full disk shows before the frames are
/// written; on a copy-on-write file system an overwrite can still need new
/// room, and meets a full disk in the write (which poisons the handle).
fn zero_fill(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    let zeros = [0u8; crate::format::PAGE_SIZE as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64 - at % zeros.len() as u64) as usize;
        write_all_at(file, &zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// What a scan found: the state after the last complete commit in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Replay {
    /// Complete commits found.
    pub commits: u64,
    /// Bytes they take from the start of the log.
    pub end: u64,
    /// Generation, record count and tail checksum after the last of them
    /// (the header's when there are none).
    pub generation: u64,
    pub record_count: u64,
    pub tail_crc: u32,
    /// The `header_seq` the log's first frame names, if that frame is
    /// whole and valid, of this store, and of a later cycle than the
    /// header's: evidence that a newer header existed (see
    /// `Replay::lost_header`).
    pub newer_cycle: Option<u64>,
}

impl Replay {
    /// `HeaderDamaged` if the scan found frames of a later log cycle than
    /// `header`'s at the start of the log `path`. Frames of cycle `s` are
    /// written only after the header with `header_seq` `s` is durable, so
    /// that header existed and was lost (a torn header write never leaves
    /// frames of its cycle behind it). A handle that excludes writers
    /// calls it at once; a reader beside a writer only once the header
    /// read again after the scan still has `header`'s `header_seq` (else a
    /// checkpoint came in between: the frames are that new header's).
    pub(crate) fn lost_header(&self, path: &Path, header: &Header) -> Result<()> {
        match self.newer_cycle {
            Some(log_seq) => Err(Error::HeaderDamaged {
                path: path.into(),
                header_seq: header.header_seq,
                log_seq,
            }),
            None => Ok(()),
        }
    }
}

/// The `header_seq` of `h`, the log's first frame, if it is whole and
/// valid, of this store, and of a later log cycle than `header`'s.
fn newer_cycle(file: &File, header: &Header, h: &FrameHeader, file_len: u64) -> Option<u64> {
    if h.store_id != header.store_id || h.header_seq <= header.header_seq {
        return None;
    }
    let len = h.frame_len(header.layout.packing.record_size)?;
    if len > file_len {
        return None;
    }
    let mut frame = vec![0u8; len as usize];
    read_exact_at(file, &mut frame, 0).ok()?;
    checksum_holds(&frame).then_some(h.header_seq)
}

/// Scans the log `file` that follows data header `header` from its start
/// and calls `apply` for every frame of every complete commit, in order,
/// each commit only after its last frame was read and checked. A version-1
/// header has no log: nothing is scanned.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    header: &Header,
    mut apply: impl FnMut(&FrameHeader, &[u8]) -> Result<()>,
) -> Result<Replay> {
    let mut out = Replay {
        generation: header.generation,
        record_count: header.record_count,
        tail_crc: header.tail_crc,
        ..Replay::default()
    };
    if header.version != crate::format::FORMAT_VERSION {
        return Ok(out);
    }
    let file_len = file
        .metadata()
        .map_err(|e| Error::io("stat log", path, e))?
        .len();
    let mut chain = Chain {
        store_id: header.store_id,
        header_seq: header.header_seq,
        generation: header.generation,
        record_count: header.record_count,
        capacity: header.capacity,
        packing: header.layout.packing,
        open: None,
    };
    let mut at = 0u64;
    let mut open: Vec<(FrameHeader, Vec<u8>)> = Vec::new();
    let mut head = [0u8; FRAME_HEADER_LEN];
    while at + FRAME_HEADER_LEN as u64 <= file_len {
        if read_exact_at(file, &mut head, at).is_err() {
            break;
        }
        let Some(h) = FrameHeader::decode(&head) else {
            break;
        };
        let len = match chain.check_header(&h, file_len - at) {
            Ok(len) => len,
            Err(_) => {
                if at == 0 {
                    out.newer_cycle = newer_cycle(file, header, &h, file_len);
                }
                break;
            }
        };
        let mut frame = vec![0u8; len as usize];
        if read_exact_at(file, &mut frame, at).is_err() {
            break;
        }
        match chain.accept(&h, &frame) {
            Ok(done) => {
                at += len;
                open.push((h, frame));
                if done {
                    for (h, b) in open.drain(..) {
                        apply(&h, &b)?;
                    }
                    out.commits += 1;
                    out.end = at;
                    out.generation = h.generation;
                    out.record_count = h.record_count;
                    out.tail_crc = h.tail_crc;
                }
            }
            Err(FrameError::End(_)) => break,
            Err(FrameError::Corrupt(reason)) => {
                return Err(Error::CorruptLog {
                    path: path.into(),
                    offset: at,
                    reason,
                })
            }
        }
    }
    Ok(out)
}
