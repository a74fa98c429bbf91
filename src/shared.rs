//! Named, non-persisted stores for inter-process communication: the
//! equivalent of .NET's `MemoryMappedFile.CreateNew(name)` /
//! `OpenExisting(name)`.
//!
//! A shared store is an ordinary recmap store (with its coordination file)
//! kept in memory: under `/dev/shm` on Linux, in the temporary directory
//! elsewhere. Unrelated processes find it by name. It lives until
//! [`remove_shared`] is called (or, under `/dev/shm`, until reboot): unlike a
//! .NET named map it is not freed when the last handle closes, so a crashed
//! creator cannot take the data with it. Commits still sync, which costs
//! nothing on tmpfs.

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
    pub fn create_shared<T: Record>(&self, name: &str) -> Result<Store<T>> {
        let path = shared_path(name)?;
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
        for _ in 0..100 {
            match opts.open(&path) {
                Err(Error::Locked { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                r => return r,
            }
        }
        opts.open(path)
    }
    /// Opens the shared store `name` as its writer; `NotFound` if missing.
    /// Refuses a symbolic link or anything but a regular file at its path
    /// (`NotRecmap`): names live in a directory every user may write.
    pub fn open_shared<T: Record>(&self, name: &str) -> Result<Store<T>> {
        let path = shared_path(name)?;
        check_shared_file(&path)?;
        self.clone().create(false).create_new(false).open(path)
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
    std::fs::remove_file(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: path.clone() },
        _ => Error::io("remove", &path, e),
    })?;
    let _ = std::fs::remove_file(crate::coord::coord_path(&path));
    let _ = std::fs::remove_file(crate::store::wal::log_path(&path));
    Ok(())
}

/// True if a shared store named `name` exists.
pub fn shared_exists(name: &str) -> Result<bool> {
    Ok(shared_path(name)?.exists())
}
