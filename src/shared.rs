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
use std::path::PathBuf;

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
    pub fn create_shared<T: Record>(&self, name: &str) -> Result<Store<T>> {
        let path = shared_path(name)?;
        self.clone().create_new(true).open(path)
    }
    /// Opens the shared store `name` as its writer; `NotFound` if missing.
    pub fn open_shared<T: Record>(&self, name: &str) -> Result<Store<T>> {
        let path = shared_path(name)?;
        self.clone().create(false).create_new(false).open(path)
    }
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
