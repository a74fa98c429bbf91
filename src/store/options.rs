//! [`Options`]: how a store is created or opened (create mode, chunk size,
//! initial capacity, waiting for the lock, append-only), and the dispatch
//! from them to the open path in `open`.
//!
//! Invariants:
//! - exactly one create mode is in effect: setting `create` or `create_new`
//!   replaces the other, clearing one only clears itself;
//! - options are plain values, checked when a file is created
//!   (`check_chunk_size`), not when set;
//! - what the file records (chunk size, append-only) applies only to new
//!   files: an existing file keeps its own.

use super::RawStore;
use crate::error::{Error, Result};
use crate::format::{CHUNK_GRANULARITY, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};
use crate::schema::Schema;
use std::path::Path;

/// How [`Options`] treats a missing or existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CreateMode {
    OpenExisting,
    OpenOrCreate,
    CreateNew,
}

/// Open options: how to create or open a store.
///
/// ```no_run
/// # recmap::record! { struct Tick { ts: u64, price: f64 } }
/// let store = recmap::Options::new()
///     .create(true)
///     .chunk_size(64 << 20)
///     .initial_capacity(1_000_000)
///     .open::<Tick>("ticks.rmap")?;
/// # Ok::<(), recmap::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    mode: CreateMode,
    pub(super) chunk_size: u64,
    pub(super) initial_capacity: u64,
    pub(super) wait_for_lock: bool,
    pub(super) append_only: bool,
    pub(super) log_size: u64,
    pub(super) salvage: bool,
    pub(super) access: crate::access::AccessPattern,
    /// Permission bits of a named shared store's files (`shared_mode`).
    pub(crate) shared_mode: u32,
    /// Windows: a named shared store's section in `Global\` (`shared_global`).
    pub(crate) shared_global: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Open an existing file, 1 MiB chunks, no initial capacity, fail at once on a lock.
    pub fn new() -> Options {
        Options {
            mode: CreateMode::OpenExisting,
            chunk_size: DEFAULT_CHUNK_SIZE,
            initial_capacity: 0,
            wait_for_lock: false,
            append_only: false,
            log_size: super::wal::DEFAULT_LOG_SIZE,
            salvage: false,
            access: crate::access::AccessPattern::Random,
            shared_mode: 0o600,
            shared_global: false,
        }
    }
    /// Create the file if it does not exist (else open it).
    pub fn create(mut self, yes: bool) -> Self {
        if yes {
            self.mode = CreateMode::OpenOrCreate;
        } else if self.mode == CreateMode::OpenOrCreate {
            self.mode = CreateMode::OpenExisting;
        }
        self
    }
    /// Create a new file; fail with [`Error::AlreadyExists`] if it exists.
    pub fn create_new(mut self, yes: bool) -> Self {
        if yes {
            self.mode = CreateMode::CreateNew;
        } else if self.mode == CreateMode::CreateNew {
            self.mode = CreateMode::OpenExisting;
        }
        self
    }
    /// Growth unit for new files: a multiple of 64 KiB (default 1 MiB). The
    /// file's length is always a multiple of it. Existing files keep theirs.
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }
    /// Records to make room for when creating the file.
    pub fn initial_capacity(mut self, records: u64) -> Self {
        self.initial_capacity = records;
        self
    }
    /// Wait for a conflicting lock to be released instead of failing with
    /// [`Error::Locked`].
    pub fn wait_for_lock(mut self, yes: bool) -> Self {
        self.wait_for_lock = yes;
        self
    }

    /// Create the store append-only: committed records can never change, so
    /// [`Reader`](crate::Reader)s in other processes may borrow them
    /// zero-copy. In-place updates of committed records fail with
    /// [`Error::AppendOnly`]. Existing files keep their mode.
    pub fn append_only(mut self, yes: bool) -> Self {
        self.append_only = yes;
        self
    }

    /// Size of the log (`<store>-wal`, default 4 MiB, at least 64 KiB): a
    /// commit that would take it past this first checkpoints (folds the log
    /// into the data file, one data sync and one header sync), so this
    /// bounds the log and the work a recovery replays. A single commit
    /// larger than it extends the log for that commit and is checkpointed
    /// at once. Larger logs checkpoint less often.
    pub fn log_size(mut self, bytes: u64) -> Self {
        self.log_size = bytes;
        self
    }

    /// Open a store for repair even if another program truncated it (a
    /// writer only; default off, when such a file fails with
    /// [`Error::Truncated`]). The file is first extended back to the length
    /// its header needs: the lost bytes read as zeros, so every page that
    /// lay in them fails its checksum, and
    /// [`RawStore::repair`]`(`[`Repair::TruncateToVerified`](crate::Repair)`)`
    /// then keeps the verified prefix (`recmap repair` does both). Nothing
    /// else is changed by the open; a file that is not truncated opens as
    /// usual.
    pub fn salvage(mut self, yes: bool) -> Self {
        self.salvage = yes;
        self
    }

    /// Permission bits of the files of a named shared store this creates
    /// ([`Options::create_shared`]; default `0o600`: only its owner may
    /// open it). For example `0o640` lets the owner's group open
    /// [`Reader`](crate::Reader)s, `0o660` writers too. Only the permission
    /// bits `0o666` are used; the umask does not apply. Files of other
    /// stores get the permission bits of their data file.
    pub fn shared_mode(mut self, mode: u32) -> Self {
        self.shared_mode = mode & 0o666;
        self
    }

    /// Windows: name the section that keeps a named shared store alive
    /// ([`Options::create_shared`]) in the `Global\` namespace, visible to
    /// every session, instead of the session's `Local\` (the default).
    /// Creating a global name needs the `SeCreateGlobalPrivilege` privilege
    /// (services and administrators have it); without it `create_shared`
    /// fails with the system's access-denied error. Opening finds a name in
    /// either namespace. The store's files stay in the creating user's
    /// temporary directory, so other sessions of that user find it, other
    /// users do not. Ignored on other platforms (see [`crate::shared`]).
    pub fn shared_global(mut self, global: bool) -> Self {
        self.shared_global = global;
        self
    }

    /// How the handle will read its records, passed to the kernel for its
    /// mapping and file (`madvise`, `posix_fadvise`):
    /// [`AccessPattern::Random`](crate::AccessPattern::Random) (the default)
    /// makes a fault on an uncached page read only that page; `Sequential`
    /// reads far ahead, for scans. See
    /// [`AccessPattern`](crate::AccessPattern). Hints never change what a
    /// read returns.
    pub fn access(mut self, pattern: crate::access::AccessPattern) -> Self {
        self.access = pattern;
        self
    }

    /// Opens (or creates, per the options) a typed store for writing. The
    /// stored schema must equal `T`'s up to padding (a `_pad*` bytes field
    /// on one side may stand for a gap on the other; see
    /// [`Field::is_padding`](crate::Field::is_padding)), else
    /// [`Error::SchemaMismatch`]; a new file gets `T`'s.
    pub fn open<T: crate::Record>(&self, path: impl AsRef<Path>) -> Result<crate::Store<T>> {
        crate::Store::from_raw(self.open_raw(path, Some(&T::schema()))?)
    }
    /// Opens an existing typed store read-only.
    pub fn open_read_only<T: crate::Record>(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<crate::Store<T>> {
        crate::Store::from_raw(self.open_raw_read_only(path)?)
    }

    /// Opens (or creates) an untyped store for writing. `schema` is required
    /// to create; when given for an existing file it must equal the stored one.
    pub fn open_raw(&self, path: impl AsRef<Path>, schema: Option<&Schema>) -> Result<RawStore> {
        let path = path.as_ref();
        match self.mode {
            CreateMode::OpenExisting => RawStore::open_existing(path, Access::Write, self, schema),
            CreateMode::CreateNew => RawStore::create_file(path, self, schema),
            CreateMode::OpenOrCreate => {
                match RawStore::open_existing(path, Access::Write, self, schema) {
                    Err(Error::NotFound { .. }) => {
                        match RawStore::create_file(path, self, schema) {
                            Err(Error::AlreadyExists { .. }) => {
                                RawStore::open_existing(path, Access::Write, self, schema)
                            }
                            r => r,
                        }
                    }
                    r => r,
                }
            }
        }
    }

    /// Opens an existing untyped store read-only.
    pub fn open_raw_read_only(&self, path: impl AsRef<Path>) -> Result<RawStore> {
        RawStore::open_existing(path.as_ref(), Access::ReadOnly, self, None)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Write,
    ReadOnly,
}

pub(super) fn check_log_size(bytes: u64) -> Result<()> {
    if !(super::wal::MIN_LOG_SIZE..=1 << 40).contains(&bytes) {
        return Err(Error::InvalidOption {
            option: "log_size",
            reason: format!("{bytes} is not between 64 KiB and 1 TiB"),
        });
    }
    Ok(())
}

pub(super) fn check_chunk_size(chunk: u64) -> Result<()> {
    if chunk == 0 || !chunk.is_multiple_of(CHUNK_GRANULARITY) || chunk > MAX_CHUNK_SIZE {
        return Err(Error::InvalidOption {
            option: "chunk_size",
            reason: format!("{chunk} is not a non-zero multiple of 64 KiB up to 1 TiB"),
        });
    }
    Ok(())
}
