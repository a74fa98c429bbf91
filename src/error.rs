//! The crate's error type: one enum, named fields, every variant saying what
//! and where.

use crate::format::SlotError;
use crate::schema::{Schema, SchemaError};
use std::io;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{path}: {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is shorter than one header page, or neither slot has recmap's magic.
    #[error("{path}: not a recmap file ({reason})")]
    NotRecmap { path: PathBuf, reason: String },
    /// The file is a recmap file of a format version this build does not read.
    #[error(
        "{path}: format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// Both header slots are invalid.
    #[error("{path}: no valid header slot (slot 0: {slot0}; slot 1: {slot1})")]
    NoValidHeader {
        path: PathBuf,
        slot0: SlotError,
        slot1: SlotError,
    },
    /// The schema block does not match its checksum.
    #[error("{path}: schema block checksum mismatch: header says {expected:#010x}, block hashes to {got:#010x}")]
    ChecksumMismatch {
        path: PathBuf,
        expected: u32,
        got: u32,
    },
    /// The schema block is malformed or disagrees with the header.
    #[error("{path}: bad schema block: {reason}")]
    BadSchema { path: PathBuf, reason: String },
    /// The file is shorter than the committed header requires.
    #[error("{path}: truncated: the header needs {expected} bytes but the file has {actual}")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// The Rust record type does not match the stored layout.
    #[error("record type mismatch for {path}:\n  stored:    {stored}\n  requested: {requested}")]
    SchemaMismatch {
        path: PathBuf,
        stored: Box<Schema>,
        requested: Box<Schema>,
    },
    /// A schema given by the caller is not valid.
    #[error("invalid schema: {0}")]
    InvalidSchema(#[from] SchemaError),
    /// Another handle holds the writer lock (or, for a read-only open, a writer holds it).
    #[error("{path}: locked by another {holder}")]
    Locked { path: PathBuf, holder: &'static str },
    /// The file already exists (`create_new`).
    #[error("{path}: already exists")]
    AlreadyExists { path: PathBuf },
    /// The file does not exist.
    #[error("{path}: not found")]
    NotFound { path: PathBuf },
    /// An earlier write or sync failed; the handle refuses further writes.
    #[error("{path}: handle is unusable for writes: an earlier {op} failed: {reason}")]
    Poisoned {
        path: PathBuf,
        op: &'static str,
        reason: String,
    },
    /// A write was attempted on a read-only handle.
    #[error("{path}: opened read-only")]
    ReadOnly { path: PathBuf },
    /// An index at or past the end.
    #[error("index {index} out of bounds (len {len})")]
    IndexOutOfBounds { index: u64, len: u64 },
    /// The disk is full.
    #[error("{path}: no space left growing to {wanted} bytes")]
    NoSpace { path: PathBuf, wanted: u64 },
    /// The store would exceed the format's or the process's file size
    /// limit: growth past 2^60 bytes, or a write or preallocation the
    /// operating system refused with `EFBIG` (`RLIMIT_FSIZE`, `ulimit -f`;
    /// the command-line tool ignores `SIGXFSZ` so that this error, not the
    /// signal, reports it). Growth that fails so leaves the file as it was.
    #[error("{path}: file too large: {wanted} bytes")]
    FileTooLarge { path: PathBuf, wanted: u64 },
    /// Shrinking the file was refused: reader processes have it mapped.
    #[error("{path}: readers have the store mapped; shrinking it now could crash them (SIGBUS)")]
    ReadersPresent { path: PathBuf },
    /// An in-place update of a committed record in an append-only store.
    #[error("{path}: append-only store: committed record {index} cannot be changed")]
    AppendOnly { path: PathBuf, index: u64 },
    /// The coordination file exists but is not one of ours.
    #[error("{path}: bad coordination file: {reason}")]
    BadCoordination { path: PathBuf, reason: String },
    /// A record stays mid-update because its writer died while writing it;
    /// it may be torn. The next writer to open the store clears this.
    #[error("{path}: record {index} was being written by process {pid}, which died; it may be torn until a writer reopens the store")]
    WriterDied { path: PathBuf, index: u64, pid: u64 },
    /// A live writer kept record `index`'s page mid-update for longer than
    /// a reader waits (`waited_ms`): the writer is stopped (a debugger,
    /// `SIGSTOP`) or misbehaving. The read was abandoned rather than wait
    /// forever on a value another process controls; try again later.
    #[error("{path}: record {index} has been mid-update by live process {pid} for {waited_ms} ms; the reader stopped waiting (is the writer stopped?)")]
    WriterStalled {
        path: PathBuf,
        index: u64,
        pid: u64,
        waited_ms: u64,
    },
    /// A log frame with a valid checksum, written for this store and
    /// continuing its commit chain, breaks a rule of the format: the log
    /// was not written by recmap. Nothing was replayed from it.
    #[error("{path}: corrupt log at byte {offset}: {reason}")]
    CorruptLog {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A snapshot of commit `generation` cannot serve record `index`
    /// consistently: a later commit changed the record's page. Take a new
    /// snapshot (`Reader::read_txn` does, and retries).
    #[error("snapshot of generation {generation} expired: record {index}'s page changed in a later commit")]
    SnapshotExpired { generation: u64, index: u64 },
    /// A shared store name that is empty, too long or has characters other
    /// than ASCII letters, digits, `.`, `_`, `-`.
    #[error("invalid shared store name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// An option value is out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    /// The store path names something other than a regular file (a FIFO,
    /// a socket, a directory, a device): refused at once, before anything
    /// could block on it or read from it. `kind` says what it is.
    #[error("{path}: not a regular file but {kind}; a store is a regular file")]
    NotRegularFile { path: PathBuf, kind: &'static str },
    /// Committed records of data page (group) `group` do not hash to the
    /// checksum the store keeps for them (bit rot, a torn write, a change
    /// made behind the engine's back). Raised where damaged bytes would
    /// otherwise be served or blessed with a new checksum; `verify` lists
    /// the same damage as [`Problem::PageChecksum`](crate::Problem).
    #[error("{path}: data page {group} (records {first_record}..{end_record}) is damaged: its committed bytes hash to {got:#010x}, the stored checksum is {expected:#010x}")]
    CorruptPage {
        path: PathBuf,
        group: u64,
        first_record: u64,
        end_record: u64,
        expected: u32,
        got: u32,
    },
    /// A long operation (`verify`) was stopped by its progress callback
    /// (the command-line tool: Ctrl-C) after `done` of `total` units.
    #[error("{path}: {what} interrupted after {done} of {total} data pages")]
    Interrupted {
        path: PathBuf,
        what: &'static str,
        done: u64,
        total: u64,
    },
}

impl Error {
    /// `SchemaMismatch` unless the stored layout equals the requested one.
    pub(crate) fn check_schema(
        path: &std::path::Path,
        stored: &Schema,
        requested: &Schema,
    ) -> Result<()> {
        if stored == requested {
            return Ok(());
        }
        Err(Error::SchemaMismatch {
            path: path.to_path_buf(),
            stored: Box::new(stored.clone()),
            requested: Box::new(requested.clone()),
        })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
