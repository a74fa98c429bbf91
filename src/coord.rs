//! The coordination file (`<data file>-lock`): a small file every process
//! maps shared and touches only through atomics. It carries the last
//! published commit (generation, record count and the data header it
//! follows, under a seqlock, so readers notice commits with one load), the
//! writer's pid, the highest record count ever published, and one word per
//! stripe of data pages. Its layout is in `docs/concurrency.md`.
//!
//! A stripe word is both a seqlock and a version: even `2g` means "last
//! changed by commit `g`", odd means a committed change is being applied
//! to a page of the stripe right now. Words only grow, so a snapshot of
//! commit `s` may use a copy exactly when the word was even and at most
//! `2s` before and unchanged after it.
//!
//! Readers hold a shared lock on it for their whole life; shrinking the data
//! file needs the exclusive lock, so it is refused while any reader exists.

mod beside;
pub(crate) use beside::{beside_options, check_regular, file_kind, open_error, temp_beside};

use crate::error::{Error, Result};
use crate::fileio::write_all_at;
use crate::sys::{AtomicMap, LockKind};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};

pub const COORD_MAGIC: [u8; 8] = *b"RMAPCORD";
pub const COORD_VERSION: u32 = 3;
/// Seqlock stripes; data page (group) `g` uses stripe `g % STRIPES`.
pub const STRIPES: u64 = 4096;
/// Offsets in the coordination file.
pub mod at {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const STRIPE_COUNT: usize = 12;
    pub const GENERATION: usize = 16;
    pub const WRITER_PID: usize = 24;
    pub const HIGH_WATER: usize = 32;
    pub const WRITER_EPOCH: usize = 40;
    pub const COMMIT_FUTEX: usize = 48;
    pub const WAITERS: usize = 56;
    pub const DATA_DEV: usize = 64;
    pub const DATA_INO: usize = 72;
    pub const PUB_SEQ: usize = 80;
    pub const PUB_COUNT: usize = 88;
    pub const PUB_HEADER_SEQ: usize = 96;
    pub const APPLY_SEQ: usize = 104;
    pub const STRIPES: usize = 4096;
}
/// Length of the coordination file.
pub const COORD_LEN: usize = at::STRIPES + STRIPES as usize * 8;

/// What the coordination file must agree with: the data file's identity,
/// owner and permission bits.
#[cfg_attr(not(unix), allow(dead_code))]
struct DataFile {
    dev: u64,
    ino: u64,
    links: u64,
    uid: u32,
    gid: u32,
    /// Permission bits for the files made beside it (no execute or special bits).
    mode: u32,
}

impl DataFile {
    fn of(f: &File) -> std::io::Result<DataFile> {
        let m = f.metadata()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(DataFile {
                dev: m.dev(),
                ino: m.ino(),
                links: m.nlink(),
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode() & 0o666,
            })
        }
        #[cfg(not(unix))]
        {
            let _ = m;
            let (dev, ino, links) = crate::sys::file_identity(f)?;
            Ok(DataFile {
                dev,
                ino,
                links,
                uid: 0,
                gid: 0,
                mode: 0o600,
            })
        }
    }
}

/// The coordination file's path for a data file.
pub fn coord_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-lock");
    PathBuf::from(s)
}

/// `NoSpace` for a full disk (or quota) while allocating the coordination
/// file, else an I/O error.
fn space_error(path: &Path, wanted: u64, e: std::io::Error) -> Error {
    #[cfg(unix)]
    if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) {
        return Error::NoSpace {
            path: path.into(),
            wanted,
        };
    }
    if e.kind() == std::io::ErrorKind::StorageFull {
        return Error::NoSpace {
            path: path.into(),
            wanted,
        };
    }
    Error::io("allocate coordination file", path, e)
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadCoordination {
        path: path.into(),
        reason: reason.into(),
    }
}

/// What to tell the user about a file in the coordination file's place that
/// is not one recmap made.
const DELETE_IT: &str = "delete it while no process has the store open (it holds no data; the next open makes a new one)";

/// Where a handle's claim on a coordination file lives: a shared byte-range
/// lock on the data file (see `docs/concurrency.md`, "Coordination
/// identity"), at `SLOT_BASE + (inode of the coordination file & SLOT_MASK)`.
#[cfg(target_os = "linux")]
mod slot {
    /// Where `off_t` is 32 bits (some 32-bit targets) the range is smaller;
    /// the locks are advisory, so overlapping data bytes would not matter.
    const WIDE: bool = std::mem::size_of::<libc::off_t>() >= 8;
    /// First offset of the range (far past any data file's end).
    pub const BASE: i64 = if WIDE { 1 << 62 } else { 1 << 30 };
    /// Offsets used: `[BASE, BASE + SPAN)`.
    pub const SPAN: i64 = BASE / 2;
    pub const MASK: u64 = (SPAN - 1) as u64;
}

/// A handle's claim on the coordination file it uses: a shared lock on one
/// byte of the data file that names the coordination file (its inode).
/// Every handle takes its claim and then checks that no handle claims
/// another coordination file of the same data file (the lock is on the
/// data file's inode, so renaming either file does not escape it).
struct Claim {
    /// A duplicate descriptor of the data file (the same open file
    /// description: the lock is released when the claim is dropped).
    #[cfg(target_os = "linux")]
    file: Option<File>,
    #[cfg(target_os = "linux")]
    at: i64,
}

impl Claim {
    #[cfg(target_os = "linux")]
    fn take(data_file: &File, coord_file: &File, path: &Path) -> Result<Claim> {
        use std::os::unix::fs::MetadataExt;
        let ino = coord_file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .ino();
        let at = slot::BASE + (ino & slot::MASK) as i64;
        let file = data_file
            .try_clone()
            .map_err(|e| Error::io("duplicate descriptor", path, e))?;
        let unsupported = |e: &std::io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::EINVAL)
                    | Some(libc::EOPNOTSUPP)
                    | Some(libc::ENOLCK)
                    | Some(libc::ENOSYS)
            )
        };
        match crate::sys::ofd::try_lock_shared(&file, at) {
            Ok(true) => {}
            // Nothing takes exclusive locks there.
            Ok(false) => {
                return Err(bad(
                    path,
                    "the data file's coordination lock is held exclusively by another program",
                ))
            }
            Err(e) if unsupported(&e) => {
                tracing::warn!(path = %path.display(), error = %e, "byte-range locks unsupported: handles cannot check that they share one coordination file");
                return Ok(Claim { file: None, at });
            }
            Err(e) => return Err(Error::io("lock data file", path, e)),
        }
        let claim = Claim {
            file: Some(file),
            at,
        };
        let f = claim.file.as_ref().expect("set");
        let below = crate::sys::ofd::other_lock(f, slot::BASE, at - slot::BASE);
        let above = crate::sys::ofd::other_lock(f, at + 1, slot::BASE + slot::SPAN - at - 1);
        match (below, above) {
            (Ok(None), Ok(None)) => Ok(claim),
            (Err(e), _) | (_, Err(e)) => Err(Error::io("test data file locks", path, e)),
            _ => Err(bad(
                path,
                "the store is open (in this or another process) through another coordination file: \
                 this one was made after that one was deleted, renamed or replaced, or the store was \
                 renamed, while handles had it open; close every handle of the store, then open it again",
            )),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn take(_data: &File, _coord: &File, _path: &Path) -> Result<Claim> {
        Ok(Claim {})
    }

    /// True if another open file description (a reader, in this or
    /// another process) has claimed any coordination file of the data file.
    #[cfg(target_os = "linux")]
    fn others(&self) -> std::io::Result<bool> {
        match &self.file {
            Some(f) => Ok(crate::sys::ofd::other_lock(f, slot::BASE, slot::SPAN)?.is_some()),
            None => Ok(false),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn others(&self) -> std::io::Result<bool> {
        Ok(false)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(f) = &self.file {
            // The description is shared with the handle's own descriptor of
            // the data file, which may stay open: release explicitly.
            let _ = crate::sys::ofd::unlock(f, self.at);
        }
    }
}

/// An open, mapped coordination file.
pub(crate) struct Coord {
    file: File,
    path: PathBuf,
    map: AtomicMap<COORD_LEN>,
    /// Opened and mapped read-only (a reader that may not write the file):
    /// nothing may be stored through `map`.
    read_only: bool,
    _claim: Claim,
}

impl std::fmt::Debug for Coord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coord")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// Longest a reader waits for a live writer to finish writing a page
/// (its stripe odd) before giving up with `Error::WriterStalled`: a writer
/// writes a page in microseconds, so only a stopped or misbehaving one gets
/// near it.
#[allow(dead_code)] // for `reader::read_contended` (see docs/concurrency.md, "Bounded waits")
pub(crate) const STRIPE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a reader with a read-only mapping looks for a new commit.
const READ_ONLY_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Attempts at finding a complete coordination file before giving up.
const OPEN_TRIES: u32 = 50;

impl Coord {
    /// Opens (creating if needed) the coordination file of `data`.
    ///
    /// The coordination file is found through the data file's canonical
    /// path (symlinks resolved) and records the data file's identity
    /// (device and inode), so every process of one store meets in one
    /// coordination file. A writer (`claim`) takes over a file left by a
    /// store that was replaced at the path; a reader refuses a mismatch, and
    /// refuses a data file with several hard links (each name would get its
    /// own coordination file).
    ///
    /// What is found at the path is trusted only if it is a regular file (it
    /// is opened without following links and without blocking), with one
    /// name, owned by the data file's owner, of the full length and with
    /// recmap's header (or all zeros). A missing file is made complete under
    /// a temporary name (owned like the data file, with its permission bits,
    /// zeros written, not sparse) and renamed into place, so a file at the
    /// path is never half made. A reader that may not write the file opens
    /// and maps it read-only.
    pub(crate) fn open(data: &Path, data_file: &File, claim: bool) -> Result<Coord> {
        let canonical =
            std::fs::canonicalize(data).map_err(|e| Error::io("resolve path", data, e))?;
        let path = coord_path(&canonical);
        let id = DataFile::of(data_file).map_err(|e| Error::io("stat", data, e))?;
        if id.links > 1 && claim {
            tracing::warn!(path = %data.display(), links = id.links, "the data file has several hard links; readers will refuse to open it");
        }
        if id.links > 1 && !claim {
            return Err(bad(
                &path,
                format!(
                    "the data file has {} hard links; readers need it to have one name",
                    id.links
                ),
            ));
        }
        let (file, read_only) = Self::open_file(&path, &id, claim)?;
        let expected = Self::fixed_header();
        let mut head = [0u8; 16];
        crate::fileio::read_exact_at(&file, &mut head, 0)
            .map_err(|e| Error::io("read coordination file", &path, e))?;
        if head != expected && head != [0u8; 16] {
            let magic = head[..8] == COORD_MAGIC;
            let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
            if magic && version < COORD_VERSION {
                if read_only {
                    return Err(bad(&path, format!("it was made by an older recmap (coordination version {version}); a writer must open the store once to renew it")));
                }
                // Left by an older recmap: no process of ours can be using it
                // (they would have rewritten it), and readers of that version
                // hold its shared lock while they live.
                match crate::sys::try_lock(&file, LockKind::Exclusive) {
                    Ok(()) => {
                        let zeros = vec![0u8; COORD_LEN];
                        let r = write_all_at(&file, &zeros, 0);
                        let _ = crate::sys::unlock(&file);
                        r.map_err(|e| space_error(&path, COORD_LEN as u64, e))?;
                        head = [0u8; 16];
                    }
                    Err(_) => return Err(bad(
                        &path,
                        "readers of an older recmap version have the store open; close them first",
                    )),
                }
            } else if magic && version > COORD_VERSION {
                return Err(bad(&path, format!("it was made by a newer recmap (coordination version {version}; this build uses {COORD_VERSION}); open the store with that version, or {DELETE_IT}")));
            } else {
                // Not ours: say so without echoing its bytes.
                return Err(bad(
                    &path,
                    format!("it does not hold a recmap coordination header (version {COORD_VERSION}, {STRIPES} stripes); {DELETE_IT}"),
                ));
            }
        }
        if head != expected && !read_only {
            write_all_at(&file, &expected, 0)
                .map_err(|e| Error::io("write coordination file", &path, e))?;
        }
        let map = if read_only {
            AtomicMap::map_read_only(&file)
        } else {
            AtomicMap::map(&file)
        }
        .map_err(|e| Error::io("mmap coordination file", &path, e))?;
        let claimed = Claim::take(data_file, &file, &path)?;
        let coord = Coord {
            file,
            path,
            map,
            read_only,
            _claim: claimed,
        };
        let (d, i) = (coord.word(at::DATA_DEV), coord.word(at::DATA_INO));
        let known = (d.load(Ordering::Acquire), i.load(Ordering::Acquire));
        if known != (id.dev, id.ino) {
            if claim {
                if known != (0, 0) {
                    tracing::warn!(path = %coord.path.display(), "coordination file belonged to a replaced store; taking it over");
                    coord.reset_high_water(0);
                }
                coord.store(at::DATA_DEV, id.dev);
                coord.store(at::DATA_INO, id.ino);
            } else if known != (0, 0) {
                return Err(bad(
                    &coord.path,
                    "it belongs to another data file (the store was replaced?); open a writer once to take it over",
                ));
            }
        }
        Ok(coord)
    }

    /// Opens the file at `path`, making it if there is none, and checks
    /// that it may be trusted (see `open`). Returns it and whether it is
    /// open read-only.
    fn open_file(path: &Path, id: &DataFile, claim: bool) -> Result<(File, bool)> {
        for attempt in 0..OPEN_TRIES {
            let (file, read_only) = match beside_options(true).open(path) {
                Ok(f) => (f, false),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match Self::create(path, id)? {
                        Some(f) => (f, false),
                        // Someone else made it first: open theirs.
                        None => continue,
                    }
                }
                Err(e)
                    if !claim
                        && (e.kind() == std::io::ErrorKind::PermissionDenied
                            || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem) =>
                {
                    match beside_options(false).open(path) {
                        Ok(f) => (f, true),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(open_error("coordination file", path, e)),
                    }
                }
                Err(e) => return Err(open_error("coordination file", path, e)),
            };
            let m = file.metadata().map_err(|e| Error::io("stat", path, e))?;
            check_regular(path, &m)?;
            #[cfg(not(unix))]
            let _ = (attempt, id);
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                if m.uid() != id.uid {
                    return Err(bad(
                        path,
                        format!(
                            "it belongs to uid {}, the data file to uid {}: a coordination file must belong to the data \
                             file's owner (anyone else could block or mislead every process of the store); {DELETE_IT}, \
                             or keep the store in a directory other users cannot write",
                            m.uid(),
                            id.uid
                        ),
                    ));
                }
                if m.nlink() > 1 {
                    // A file being renamed into place by a link (where
                    // rename without replacing is unsupported) has two
                    // names for a moment.
                    if attempt + 1 < OPEN_TRIES {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        continue;
                    }
                    return Err(bad(
                        path,
                        format!("it has {} names (hard links), so writing it could change another file; {DELETE_IT}", m.nlink()),
                    ));
                }
            }
            if m.len() < COORD_LEN as u64 {
                return Err(bad(
                    path,
                    format!(
                        "it is {} bytes, shorter than a recmap coordination file ({COORD_LEN} bytes); {DELETE_IT}",
                        m.len()
                    ),
                ));
            }
            if !read_only {
                // Files made sparse by earlier versions: allocate their
                // blocks now, so that a store through the mapping never
                // meets a full disk (SIGBUS). Contents are kept.
                crate::sys::preallocate(&file, 0, COORD_LEN as u64)
                    .map_err(|e| space_error(path, COORD_LEN as u64, e))?;
            }
            return Ok((file, read_only));
        }
        Err(bad(
            path,
            "it keeps appearing and disappearing while being opened; try again",
        ))
    }

    /// Makes a complete coordination file at `path` (owned by the data
    /// file's owner, with its permission bits, every byte written, synced)
    /// under a temporary name and renames it into place unless a file
    /// appeared there meanwhile (`None`: open that one). The temporary file
    /// is removed in every case.
    fn create(path: &Path, id: &DataFile) -> Result<Option<File>> {
        let tmp = temp_beside(path);
        let mut o = beside_options(true);
        o.create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = match o.open(&tmp) {
            Ok(f) => f,
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
            {
                return Err(bad(
                    path,
                    format!("it does not exist, and this process cannot create it ({e}): a process that may write the store's directory must open the store first"),
                ))
            }
            Err(e) => return Err(Error::io("create coordination file", &tmp, e)),
        };
        let made = (|| {
            #[cfg(not(unix))]
            let _ = id;
            #[cfg(unix)]
            {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                let m = file.metadata().map_err(|e| Error::io("stat", &tmp, e))?;
                if m.uid() != id.uid {
                    std::os::unix::fs::fchown(&file, Some(id.uid), Some(id.gid)).map_err(|e| {
                        bad(
                            path,
                            format!(
                                "it does not exist, and this process (uid {}) cannot make it owned by the data file's \
                                 owner (uid {}): {e}; let the owner (or root) open the store once",
                                m.uid(),
                                id.uid
                            ),
                        )
                    })?;
                } else if m.gid() != id.gid {
                    // Best effort: the group matters only for reading it.
                    let _ = std::os::unix::fs::fchown(&file, None, Some(id.gid));
                }
                // After the owner change (which may clear bits), and
                // independent of the umask.
                file.set_permissions(std::fs::Permissions::from_mode(id.mode))
                    .map_err(|e| Error::io("chmod", &tmp, e))?;
            }
            let mut bytes = vec![0u8; COORD_LEN];
            bytes[..16].copy_from_slice(&Self::fixed_header());
            let full = |e| space_error(path, COORD_LEN as u64, e);
            write_all_at(&file, &bytes, 0).map_err(full)?;
            crate::sys::preallocate(&file, 0, COORD_LEN as u64).map_err(full)?;
            file.sync_data()
                .map_err(|e| Error::io("fsync coordination file", &tmp, e))?;
            match crate::sys::rename_noreplace(&tmp, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(Error::io("rename coordination file", path, e)),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        match made {
            Ok(true) => Ok(Some(file)),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn fixed_header() -> [u8; 16] {
        let mut h = [0u8; 16];
        h[at::MAGIC..at::MAGIC + 8].copy_from_slice(&COORD_MAGIC);
        h[at::VERSION..at::VERSION + 4].copy_from_slice(&COORD_VERSION.to_le_bytes());
        h[at::STRIPE_COUNT..at::STRIPE_COUNT + 4].copy_from_slice(&(STRIPES as u32).to_le_bytes());
        h
    }

    /// Takes the shared lock a reader holds for its lifetime (waits only
    /// while a shrink is in progress).
    pub(crate) fn lock_shared(&self) -> Result<()> {
        crate::sys::lock(&self.file, LockKind::Shared)
            .map_err(|e| Error::io("lock coordination file", &self.path, e))
    }

    /// Tries the exclusive lock that shrinking needs; `ReadersPresent` if a
    /// reader holds the shared one. Released by `unlock`.
    pub(crate) fn try_lock_exclusive(&self) -> Result<()> {
        match crate::sys::try_lock(&self.file, LockKind::Exclusive) {
            // Belt and braces: a handle that claimed the data file (`Claim`)
            // but has not yet taken its shared lock here, or one that uses
            // another coordination file, is a reader too.
            Ok(()) => match self._claim.others() {
                Ok(false) => Ok(()),
                Ok(true) => {
                    self.unlock();
                    Err(Error::ReadersPresent {
                        path: self.path.clone(),
                    })
                }
                Err(e) => {
                    self.unlock();
                    Err(Error::io("test data file locks", &self.path, e))
                }
            },
            Err(TryLockError::WouldBlock) => Err(Error::ReadersPresent {
                path: self.path.clone(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::io("lock coordination file", &self.path, e)),
        }
    }

    pub(crate) fn unlock(&self) {
        let _ = crate::sys::unlock(&self.file);
    }

    /// The word at `offset`, for loads.
    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        self.map.u64_at(offset)
    }

    /// The word at `offset`, for stores: only a writer's (read-write)
    /// mapping may be written; a store through a read-only one would fault.
    #[inline]
    fn wword(&self, offset: usize) -> &AtomicU64 {
        assert!(
            !self.read_only,
            "store through a read-only coordination map"
        );
        self.map.u64_at(offset)
    }

    fn store(&self, offset: usize, v: u64) {
        self.wword(offset).store(v, Ordering::Release);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.word(at::GENERATION).load(Ordering::Acquire)
    }

    /// Publishes a durable state (commit `generation` with `count` records,
    /// following data header `header_seq`) and wakes readers waiting for a
    /// commit. Only the writer calls it.
    pub(crate) fn publish(&self, generation: u64, count: u64, header_seq: u64) {
        // Wrapping arithmetic: the words may hold anything a foreign file
        // put there (only a writer reaches here, and it panics on nothing).
        let seq = self.wword(at::PUB_SEQ);
        let s = seq.load(Ordering::Relaxed);
        let s = s.wrapping_add(s & 1).wrapping_add(1); // odd: update in progress
        seq.store(s, Ordering::Relaxed);
        fence(Ordering::Release);
        self.wword(at::PUB_COUNT).store(count, Ordering::Relaxed);
        self.wword(at::PUB_HEADER_SEQ)
            .store(header_seq, Ordering::Relaxed);
        seq.store(s.wrapping_add(1), Ordering::Release);
        self.set_generation(generation);
        // Even again: the data pages hold exactly the published state.
        let apply = self.wword(at::APPLY_SEQ);
        let a = apply.load(Ordering::Relaxed);
        if a % 2 == 1 {
            apply.store(a.wrapping_add(1), Ordering::Release);
        }
    }

    /// The apply sequence (`docs/concurrency.md`): odd from the first write
    /// to a data page a reader may see until the next `publish`, even
    /// otherwise. A reader takes it before adopting a state; while it still
    /// reads the same even value, no such write has happened since, so the
    /// data pages hold exactly that state and a copy of any record needs no
    /// stripe check.
    pub(crate) fn apply_seq(&self) -> u64 {
        self.word(at::APPLY_SEQ).load(Ordering::Acquire)
    }

    /// The apply sequence's word, for `sys::seq_recheck` against a token of
    /// `apply_seq` (what `applied_nothing_since` does).
    #[inline(always)]
    pub(crate) fn apply_seq_word(&self) -> &AtomicU64 {
        self.word(at::APPLY_SEQ)
    }

    /// True if the apply sequence still reads `token` (from `apply_seq`,
    /// even): no data page was written since, up to this load, which is
    /// ordered after every copy made before it (`sys::seq_recheck`).
    #[inline(always)]
    pub(crate) fn applied_nothing_since(&self, token: u64) -> bool {
        crate::sys::seq_recheck(self.word(at::APPLY_SEQ), token)
    }

    /// Withdraws the published state (a writer that takes over, before it
    /// recovers: after a power loss the state here may be newer than what
    /// the data file holds until the log is replayed). Readers that open
    /// meanwhile read the data header and the log instead.
    pub(crate) fn unpublish(&self) {
        let seq = self.wword(at::PUB_SEQ);
        let s = seq.load(Ordering::Relaxed);
        let s = s.wrapping_add(s & 1).wrapping_add(1);
        seq.store(s, Ordering::Relaxed);
        fence(Ordering::Release);
        self.wword(at::PUB_HEADER_SEQ).store(0, Ordering::Relaxed);
        seq.store(s.wrapping_add(1), Ordering::Release);
    }

    /// The published state `(generation, record count, header_seq)`, read
    /// consistently; `None` if a writer keeps it busy (it never does for
    /// more than a few stores) or nothing was published yet.
    pub(crate) fn published(&self) -> Option<(u64, u64, u64)> {
        let seq = self.word(at::PUB_SEQ);
        for _ in 0..1000 {
            let s = seq.load(Ordering::Acquire);
            if s % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let g = self.generation();
            let c = self.word(at::PUB_COUNT).load(Ordering::Acquire);
            let h = self.word(at::PUB_HEADER_SEQ).load(Ordering::Acquire);
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == s {
                return (h != 0 && g != 0).then_some((g, c, h));
            }
        }
        None
    }

    /// Wakes readers waiting for a commit, after publishing generation `g`.
    fn set_generation(&self, g: u64) {
        self.wword(at::GENERATION).store(g, Ordering::Release);
        assert!(!self.read_only);
        let futex = self.map.u32_at(at::COMMIT_FUTEX);
        // SeqCst on both sides (here and in `wait_generation`): the bump of the
        // futex word and the read of the waiter count must not be reordered.
        futex.fetch_add(1, Ordering::SeqCst);
        if self.word(at::WAITERS).load(Ordering::SeqCst) > 0 {
            crate::sys::wake_all(futex);
        }
    }

    /// Waits until the published generation exceeds `after` or `timeout`
    /// passes; returns the published generation. Sleeps on the futex word
    /// (woken by the writer's publish); a reader whose mapping is read-only
    /// cannot announce itself in `waiters`, so it polls instead.
    pub(crate) fn wait_generation(&self, after: u64, timeout: std::time::Duration) -> u64 {
        let Some(deadline) = std::time::Instant::now().checked_add(timeout) else {
            return self.wait_generation(after, std::time::Duration::from_secs(3600));
        };
        let futex = self.map.u32_at(at::COMMIT_FUTEX);
        loop {
            let seq = futex.load(Ordering::Acquire);
            let g = self.generation();
            let now = std::time::Instant::now();
            if g > after || now >= deadline {
                return g;
            }
            let left = deadline - now;
            if self.read_only {
                std::thread::sleep(left.min(READ_ONLY_POLL));
                continue;
            }
            let waiters = self.wword(at::WAITERS);
            waiters.fetch_add(1, Ordering::SeqCst);
            // Re-check after announcing ourselves, so a commit published in
            // between is not slept through (the writer reads WAITERS after
            // bumping the futex word).
            if futex.load(Ordering::SeqCst) == seq {
                crate::sys::wait_on(futex, seq, left.min(std::time::Duration::from_millis(100)));
            }
            waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
    pub(crate) fn writer_pid(&self) -> u64 {
        self.word(at::WRITER_PID).load(Ordering::Acquire)
    }
    pub(crate) fn high_water(&self) -> u64 {
        self.word(at::HIGH_WATER).load(Ordering::Acquire)
    }
    pub(crate) fn reset_high_water(&self, count: u64) {
        self.store(at::HIGH_WATER, count);
    }
    pub(crate) fn raise_high_water(&self, count: u64) {
        self.wword(at::HIGH_WATER)
            .fetch_max(count, Ordering::AcqRel);
    }

    /// The stripe word of `group`, for `sys::seq_recheck` against a value
    /// of `read_begin` (what `read_validate` does).
    #[inline]
    pub(crate) fn stripe(&self, group: u64) -> &AtomicU64 {
        self.word(at::STRIPES + (group % STRIPES) as usize * 8)
    }

    #[inline]
    fn wstripe(&self, group: u64) -> &AtomicU64 {
        self.wword(at::STRIPES + (group % STRIPES) as usize * 8)
    }

    /// Called by a writer that just took the data file's exclusive lock:
    /// clears what a dead writer may have left (odd stripes mid-update) and
    /// records this process as the writer. Returns the dead writer's pid, if
    /// any state had to be reset.
    pub(crate) fn adopt(&self, count: u64) -> Option<u64> {
        // The recovered state is published by the caller once recovery is
        // done; stripes a dead writer left odd are closed by its replay
        // (which then ends them at exactly 2g) or by `close_busy_stripes`.
        self.unpublish();
        let stale = self.writer_pid();
        self.raise_high_water(count);
        self.wword(at::WRITER_EPOCH).fetch_add(1, Ordering::AcqRel);
        self.store(at::WRITER_PID, std::process::id() as u64);
        (stale != 0).then_some(stale)
    }

    /// Ends every stripe a dead writer left odd (after recovery replayed
    /// what the log held); returns how many.
    pub(crate) fn close_busy_stripes(&self) -> u64 {
        let mut closed = 0;
        for s in 0..STRIPES {
            let w = self.wstripe(s);
            let v = w.load(Ordering::Acquire);
            if v % 2 == 1 {
                w.store(v.wrapping_add(1), Ordering::Release);
                closed += 1;
            }
        }
        closed
    }

    /// Called by a writer closing cleanly.
    pub(crate) fn release(&self) {
        self.store(at::WRITER_PID, 0);
    }

    /// Marks the stripes of groups `[first, end)` as being written (odd) by
    /// commit `generation`: an even word `w` becomes `max(w + 1, 2g - 1)`,
    /// an odd one (left by a dead writer) `max(w, 2g - 1)`, so words only
    /// grow and, once `end_write` adds one, are at least `2g` — exactly `2g`
    /// unless the stripe was already at `2g` or past it. Returns the
    /// stripes to pass to `end_write`.
    pub(crate) fn begin_write(&self, first: u64, end: u64, generation: u64) -> Vec<u64> {
        if end - first >= STRIPES {
            self.begin_write_groups(0..STRIPES, generation)
        } else {
            self.begin_write_groups(first..end, generation)
        }
    }

    /// `begin_write` for any set of groups. A commit that writes several
    /// records (or groups) of one stripe must open it once for all of them:
    /// each begin/end pair adds 2, so a second pair in the same commit would
    /// leave the word at `2g + 2`, claiming a later commit, and every
    /// snapshot of commit `g` would find the page expired.
    pub(crate) fn begin_write_groups(
        &self,
        groups: impl IntoIterator<Item = u64>,
        generation: u64,
    ) -> Vec<u64> {
        let mut stripes: Vec<u64> = groups.into_iter().map(|g| g % STRIPES).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let floor = generation.saturating_mul(2).saturating_sub(1);
        let apply = self.wword(at::APPLY_SEQ);
        let a = apply.load(Ordering::Relaxed);
        if a.is_multiple_of(2) {
            apply.store(a.wrapping_add(1), Ordering::Relaxed);
        }
        for &s in &stripes {
            let w = self.wstripe(s);
            let v = w.load(Ordering::Relaxed);
            let odd = if v % 2 == 1 { v } else { v.wrapping_add(1) };
            w.store(odd.max(floor), Ordering::Relaxed);
        }
        // The odd values (stripes and apply sequence) must be visible before
        // any byte of the write.
        fence(Ordering::Release);
        stripes
    }

    /// Marks the stripes written (even again), publishing the new bytes.
    pub(crate) fn end_write(&self, stripes: &[u64]) {
        for &s in stripes {
            let w = self.wstripe(s);
            w.store(w.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        }
    }

    /// Seqlock read side: the stripe's value before copying (odd: retry).
    #[inline(always)]
    pub(crate) fn read_begin(&self, group: u64) -> u64 {
        crate::sys::seq_begin(self.stripe(group))
    }

    /// Seqlock read side: true if the copy made since `read_begin` is whole.
    #[inline(always)]
    pub(crate) fn read_validate(&self, group: u64, begin: u64) -> bool {
        crate::sys::seq_recheck(self.stripe(group), begin)
    }
}
