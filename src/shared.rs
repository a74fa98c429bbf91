//! Named, non-persisted stores for inter-process communication: the
//! equivalent of .NET's `MemoryMappedFile.CreateNew(name)` /
//! `OpenExisting(name)`.
//!
//! A shared store is an ordinary recmap store (with its coordination and
//! log files) kept where the system keeps it in memory, found by name by
//! unrelated processes. Its lifetime differs by platform:
//!
//! - **Linux** (and other Unixes): the files live under `/dev/shm` (the
//!   temporary directory elsewhere) until [`remove_shared`] is called or the
//!   machine restarts. Unlike a .NET named map the store outlives its last
//!   handle, so a crashed creator cannot take the data with it.
//! - **Windows**: as .NET's named maps, the store lives while any handle of
//!   it is open, in any process, and is freed when the last one closes
//!   (crashes included). Every handle holds a named, pagefile-backed
//!   section `Local\recmap-<name>` (`Global\recmap-<name>` with
//!   [`Options::shared_global`]) of one page, which the system frees with
//!   its last handle; its first word says whether the store is *live*
//!   (made, and not being freed). The files (in `%TEMP%`, marked
//!   `FILE_ATTRIBUTE_TEMPORARY` so the cache manager keeps them in memory)
//!   are removed by the last handle to close: after closing its section it
//!   creates the section afresh, and if that made a new one (no other handle
//!   exists anywhere) it removes them and closes it. Files left when every
//!   process died are removed by the next `create_shared` of the name. While
//!   a section is not live, `open_shared` says `NotFound` and
//!   `create_shared` waits (up to 2 s) for it to go.
//!
//! Commits still sync, which costs nothing on tmpfs.
//!
//! Why the data itself is not in the section: the engine reads and writes
//! its files through file handles (positioned writes, syncs, byte-range
//! locks, a log beside the data), which a pagefile-backed section has not.

use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::Options;
use crate::typed::Store;
use std::path::{Path, PathBuf};

/// Longest name accepted.
pub const MAX_NAME_LEN: usize = 200;

/// The file a shared store named `name` lives in. Validates the name:
/// 1 to 200 ASCII letters, digits, `.`, `_` or `-`, not starting with `.`.
pub fn shared_path(name: &str) -> Result<PathBuf> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("longer than 200 bytes");
    }
    if name.starts_with('.') {
        return invalid("starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid(
            "only ASCII letters, digits, '.', '_' and '-' are allowed (no path separators)",
        );
    }
    Ok(shared_dir().join(format!("recmap-{name}")))
}

fn shared_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if cfg!(target_os = "linux") && shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

impl Options {
    /// Creates the shared store `name`; `AlreadyExists` if it exists.
    ///
    /// Its files get the permission bits of [`Options::shared_mode`]
    /// (default `0o600`) before any other user could open them: the store
    /// is made in a new private directory (mode `0o700`) beside it, given
    /// those bits, closed, and linked into place (failing if the name was
    /// taken meanwhile), then opened as its writer. (Another process of the
    /// same user may open it in the moment between: then `Locked`.)
    ///
    /// On Windows the store lives while any handle of it is open and is
    /// freed with the last (see the [module docs](crate::shared)); files a
    /// dead store left at its path are removed first.
    pub fn create_shared<T: Record>(&self, name: &str) -> Result<Store<T>> {
        let path = shared_path(name)?;
        #[cfg(windows)]
        let anchor = Anchor::create(name, &path, self.shared_global)?;
        if path.symlink_metadata().is_ok() {
            return Err(Error::AlreadyExists { path });
        }
        let dir = private_dir(&path)?;
        let staged = dir.join("store");
        let made = (|| {
            let store: Store<T> = self.clone().create_new(true).open(&staged)?;
            set_mode(&staged, self.shared_mode)?;
            store.close()?;
            match std::fs::hard_link(&staged, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(Error::AlreadyExists { path: path.clone() })
                }
                Err(e) => Err(Error::io("link", &path, e)),
            }
        })();
        let _ = std::fs::remove_dir_all(&dir);
        made?;
        // The staged handle's lock may linger for a moment in a child
        // another thread forked (it holds every descriptor until it execs):
        // retry `Locked` briefly, unless the caller waits anyway.
        let opts = self.clone().create(false).create_new(false);
        let mut opened = opts.open::<T>(&path);
        for _ in 0..100 {
            if !matches!(opened, Err(Error::Locked { .. })) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            opened = opts.open(&path);
        }
        #[cfg_attr(not(windows), allow(unused_mut))]
        let mut store = opened?;
        #[cfg(windows)]
        {
            // Live only now: its coordination and log files exist, and
            // until here `open_shared` elsewhere said `NotFound`.
            anchor.made();
            store.raw_mut().anchor = Some(anchor);
        }
        Ok(store)
    }
    /// Opens the shared store `name` as its writer; `NotFound` if missing.
    /// Refuses a symbolic link or anything but a regular file at its path
    /// (`NotRecmap`): names live in a directory every user may write.
    pub fn open_shared<T: Record>(&self, name: &str) -> Result<Store<T>> {
        let path = shared_path(name)?;
        check_shared_file(&path)?;
        let anchor = hold(name, &path)?;
        let mut store: Store<T> = self.clone().create(false).create_new(false).open(path)?;
        store.raw_mut().anchor = anchor;
        Ok(store)
    }
}

/// Checks that a named store's path is a regular file, not a symbolic link
/// (which would make the store live wherever someone else chose) or a FIFO
/// (which would block): opened without following links or blocking, then
/// its type checked (`NotRegularFile`). `NotFound` if there is nothing.
pub(crate) fn check_shared_file(path: &Path) -> Result<()> {
    let not_regular = |kind| Error::NotRegularFile {
        path: path.into(),
        kind,
    };
    let f = match crate::coord::beside_options(false).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound { path: path.into() })
        }
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(not_regular(
                "a symbolic link (never followed for a named store)",
            ))
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let m = f.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !m.is_file() {
        return Err(not_regular(crate::coord::file_kind(m.file_type())));
    }
    Ok(())
}

/// A new directory only this user may enter, beside `path`, for making a
/// store before anyone else can see it.
fn private_dir(path: &Path) -> Result<PathBuf> {
    let dir = crate::coord::temp_beside(path);
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(&dir)
        .map_err(|e| Error::io("create directory", &dir, e))?;
    Ok(dir)
}

/// Gives the file at `path` (in our private directory) permission bits
/// `mode`, through a descriptor (no link followed), umask-independent.
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = crate::coord::beside_options(false)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o666))
            .map_err(|e| Error::io("chmod", path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

impl<T: Record> Store<T> {
    /// Creates the shared (in-memory) store `name`.
    pub fn create_shared(name: &str) -> Result<Self> {
        Options::new().create_shared(name)
    }
    /// Opens the shared store `name` as its writer.
    pub fn open_shared(name: &str) -> Result<Self> {
        Options::new().open_shared(name)
    }
}

/// Removes the shared store `name` (its data, log and coordination files).
/// Processes that have it open keep their mappings until they close it.
pub fn remove_shared(name: &str) -> Result<()> {
    let path = shared_path(name)?;
    remove_files(&path)
}

/// Removes a shared store's data file (`NotFound` if it has none), then its
/// coordination and log files if there.
fn remove_files(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: path.into() },
        _ => Error::io("remove", path, e),
    })?;
    let _ = std::fs::remove_file(crate::coord::coord_path(path));
    let _ = std::fs::remove_file(crate::store::wal::log_path(path));
    Ok(())
}

/// True if a shared store named `name` exists (on Windows: is live, with
/// its data file in place).
pub fn shared_exists(name: &str) -> Result<bool> {
    let path = shared_path(name)?;
    #[cfg(windows)]
    if !Anchor::live(name, &path)? {
        return Ok(false);
    }
    Ok(path.exists())
}

/// What keeps a named shared store alive on Windows while a handle of it is
/// open anywhere (see the module docs): a handle of its section, which a
/// store handle drops after its files. Nothing on other platforms.
#[cfg(not(windows))]
pub(crate) type Anchor = std::convert::Infallible;

/// On Windows, takes a new handle's anchor of the live store `name`
/// (`NotFound` if it is not live). `None` elsewhere.
pub(crate) fn hold(name: &str, path: &Path) -> Result<Option<Anchor>> {
    #[cfg(windows)]
    {
        Anchor::open(name, path).map(Some)
    }
    #[cfg(not(windows))]
    {
        let _ = (name, path);
        Ok(None)
    }
}

#[cfg(windows)]
pub(crate) use windows::Anchor;

#[cfg(windows)]
mod windows {
    use super::{remove_files, Error, Path, PathBuf, Result};
    use crate::sys::NamedSection;
    use std::sync::atomic::Ordering;

    /// The section's state word once the store's files are in place.
    const LIVE: u32 = 1;

    /// A handle of a named store's section (module docs).
    pub(crate) struct Anchor {
        section: Option<NamedSection>,
        section_name: String,
        path: PathBuf,
    }

    /// The section names of store `name`: the session's, then the global.
    fn section_names(name: &str) -> [String; 2] {
        [
            format!("Local\\recmap-{name}"),
            format!("Global\\recmap-{name}"),
        ]
    }

    /// Whether the section `section_name` exists and is live.
    fn is_live(section_name: &str, path: &Path) -> Result<bool> {
        Ok(NamedSection::open(section_name)
            .map_err(|e| section_error(path, e))?
            .is_some_and(|s| s.state().load(Ordering::Acquire) == LIVE))
    }

    fn section_error(path: &Path, e: std::io::Error) -> Error {
        Error::io("open the named section of", path, e)
    }

    impl Anchor {
        /// For `create_shared`: a new section of the name, so no handle of
        /// a store of that name exists anywhere; files left at `path` by
        /// processes that all died are removed. `AlreadyExists` if the
        /// store is live (or stays being freed for 2 s).
        pub(super) fn create(name: &str, path: &Path, global: bool) -> Result<Anchor> {
            let [local, global_name] = section_names(name);
            let (section_name, other) = if global {
                (global_name, local)
            } else {
                (local, global_name)
            };
            // Both namespaces name the same files: a store live under the
            // other one is this name's store.
            if is_live(&other, path)? {
                return Err(Error::AlreadyExists { path: path.into() });
            }
            let mut waits = 0;
            let section = loop {
                let (s, existed) =
                    NamedSection::create(&section_name).map_err(|e| section_error(path, e))?;
                if !existed {
                    break s;
                }
                let live = s.state().load(Ordering::Acquire) == LIVE;
                drop(s);
                if live || waits == 200 {
                    return Err(Error::AlreadyExists { path: path.into() });
                }
                waits += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            };
            let anchor = Anchor {
                section: Some(section),
                section_name,
                path: path.into(),
            };
            match remove_files(path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a named store no process had open")
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            Ok(anchor)
        }

        /// For `create_shared`, once the files are in place: marks the store
        /// live and its files temporary.
        pub(super) fn made(&self) {
            for p in [
                self.path.clone(),
                crate::coord::coord_path(&self.path),
                crate::store::wal::log_path(&self.path),
            ] {
                let _ = crate::sys::mark_temporary(&p);
            }
            if let Some(s) = &self.section {
                s.state().store(LIVE, Ordering::Release);
            }
        }

        /// A new handle of the live store `name` (its section in either
        /// namespace); `NotFound` if none is.
        pub(super) fn open(name: &str, path: &Path) -> Result<Anchor> {
            for section_name in section_names(name) {
                if let Some(s) =
                    NamedSection::open(&section_name).map_err(|e| section_error(path, e))?
                {
                    if s.state().load(Ordering::Acquire) == LIVE {
                        return Ok(Anchor {
                            section: Some(s),
                            section_name,
                            path: path.into(),
                        });
                    }
                }
            }
            Err(Error::NotFound { path: path.into() })
        }

        /// Whether the store `name` is live (in either namespace).
        pub(super) fn live(name: &str, path: &Path) -> Result<bool> {
            for section_name in section_names(name) {
                if is_live(&section_name, path)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }

    impl Drop for Anchor {
        fn drop(&mut self) {
            drop(self.section.take());
            // If creating the section makes a new one, no handle of the
            // store is open anywhere: its files are ours to free, and any
            // process that opens the name meanwhile finds it not live.
            if let Ok((fresh, false)) = NamedSection::create(&self.section_name) {
                let removed = remove_files(&self.path);
                tracing::info!(path = %self.path.display(), removed = removed.is_ok(), "last handle of a named store closed: freed");
                drop(fresh);
            }
        }
    }
}
