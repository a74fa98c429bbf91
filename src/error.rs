//! The crate's error type: one enum, named fields, every variant saying what
//! and where.

use crate::format::SlotError;
use crate::schema::{Schema, SchemaError};
use std::io;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Each variant names the file it concerns (`path`) where there is one,
/// and its `Display` text is a complete sentence for a log or a terminal.
/// Errors are returned, never retried: a failed write or sync poisons the
/// handle ([`Error::Poisoned`]) instead. The enum is `#[non_exhaustive]`;
/// match the variants a caller can act on and report the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed for a reason no other variant
    /// describes (permissions, an I/O error of the device, a failed map).
    /// Look at `source`; a failure on the write path also poisons the
    /// handle, so reopen the store once the cause is fixed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The operation that failed, as a short name (`"open"`,
        /// `"write"`, `"fdatasync"`, `"mmap"`, `"lock"`, …).
        op: &'static str,
        /// The file the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than one header page, or neither slot has
    /// recmap's magic: it is not a store (or its header page was
    /// overwritten). Check the path; nothing in the file was changed.
    #[error("{path}: not a recmap file ({reason})")]
    NotRecmap {
        /// The file that was opened.
        path: PathBuf,
        /// What was found instead, for the message.
        reason: String,
    },
    /// The file is a recmap file of a format version this build does not
    /// read: a header slot with a correct `prefix_crc` carries an unknown
    /// `format_version`, so a newer writer was here. Open it with a newer
    /// recmap.
    #[error(
        "{path}: format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The file that was opened.
        path: PathBuf,
        /// The `format_version` the slot carries.
        found: u32,
        /// The newest format version this build reads (it also reads
        /// version 1).
        supported: u32,
    },
    /// Both header slots carry the magic but neither is valid (torn,
    /// corrupt, or a field out of range): the file cannot be opened, and
    /// `repair` cannot mend a header. Restore it from a copy.
    #[error("{path}: no valid header slot (slot 0: {slot0}; slot 1: {slot1})")]
    NoValidHeader {
        /// The file that was opened.
        path: PathBuf,
        /// Why slot 0 (at byte 0) was rejected.
        slot0: SlotError,
        /// Why slot 1 (at byte 2048) was rejected.
        slot1: SlotError,
    },
    /// The newest header was damaged: the log's first frame (whole, with a
    /// valid checksum, of this store) follows a header with a higher
    /// `header_seq` than either valid slot holds. A log cycle starts only
    /// after its header is durable, so that header existed; opening at the
    /// older slot would silently drop every commit since (and the next
    /// commit would overwrite the damaged slot). The store does not open;
    /// restore it from a copy.
    #[error(
        "{path}: the log follows header {log_seq} of the data file, but its newest valid header slot is {header_seq}: the newer header was damaged, and opening at the older one would lose the commits since; restore the store from a copy (or, if the data file itself was just restored from an older copy without its log, move this log away)"
    )]
    HeaderDamaged {
        /// The log whose frames show the newer header.
        path: PathBuf,
        /// The `header_seq` of the slot open would have used.
        header_seq: u64,
        /// The `header_seq` the log's first frame names.
        log_seq: u64,
    },
    /// The schema block does not hash to the `schema_crc` of the chosen
    /// header: the block was damaged. The store does not open and `repair`
    /// cannot mend it; restore it from a copy.
    #[error("{path}: schema block checksum mismatch: header says {expected:#010x}, block hashes to {got:#010x}")]
    ChecksumMismatch {
        /// The file that was opened.
        path: PathBuf,
        /// The CRC32 the header records (`schema_crc`).
        expected: u32,
        /// The CRC32 of the block's `schema_len` bytes as read.
        got: u32,
    },
    /// The schema block has a valid checksum but is malformed, or its
    /// record size or alignment disagrees with the header's: the file was
    /// not written by recmap. It does not open.
    #[error("{path}: bad schema block: {reason}")]
    BadSchema {
        /// The file that was opened.
        path: PathBuf,
        /// The rule the block breaks, for the message.
        reason: String,
    },
    /// The file is shorter than its committed header requires (another
    /// program truncated it). A writer opened with
    /// [`Options::salvage`](crate::Options::salvage) extends it back, and
    /// [`Repair::TruncateToVerified`](crate::Repair) then keeps the records
    /// before the lost pages (`recmap repair` does both).
    #[error("{path}: truncated: the header needs {expected} bytes but the file has {actual}")]
    Truncated {
        /// The file that was opened.
        path: PathBuf,
        /// Bytes the file needs: `table_offset + table_len` of the header
        /// (two pages while the header page itself is incomplete).
        expected: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// The Rust record type of a typed open does not match the stored
    /// layout (field names, types, offsets, size or alignment). Open it
    /// with the type the file was made with, or untyped ([`RawStore`](crate::RawStore)).
    #[error("record type mismatch for {path}:\n  stored:    {stored}\n  requested: {requested}")]
    SchemaMismatch {
        /// The file that was opened.
        path: PathBuf,
        /// The layout the file's schema block describes.
        stored: Box<Schema>,
        /// The layout of the requested type (or given schema).
        requested: Box<Schema>,
    },
    /// A schema given by the caller (a type's fields, or a `name:type`
    /// spec) is not valid; the inner error names the rule it breaks.
    #[error("invalid schema: {0}")]
    InvalidSchema(#[from] SchemaError),
    /// Another handle holds the writer lock (or, for a read-only open, a
    /// writer holds it). Close the other handle, or open with
    /// [`Options::wait_for_lock`](crate::Options::wait_for_lock) to wait
    /// for it.
    #[error("{path}: locked by another {holder}")]
    Locked {
        /// The file whose lock was taken.
        path: PathBuf,
        /// What kind of handle holds the lock, for the message.
        holder: &'static str,
    },
    /// The file already exists and the open asked for a new one
    /// ([`Options::create_new`](crate::Options::create_new)).
    #[error("{path}: already exists")]
    AlreadyExists {
        /// The path that exists.
        path: PathBuf,
    },
    /// The file does not exist, and the open was not asked to create it
    /// ([`Options::create`](crate::Options::create)).
    #[error("{path}: not found")]
    NotFound {
        /// The path that does not exist.
        path: PathBuf,
    },
    /// An earlier write or sync of this handle failed, so the handle
    /// refuses further writes: after a failed sync the kernel may have
    /// dropped the data, and a retry could report success falsely. Reads
    /// still work. Drop the handle and reopen the store, which shows the
    /// last good commit (`docs/durability.md`, Failed syncs).
    #[error("{path}: handle is unusable for writes: an earlier {op} failed: {reason}")]
    Poisoned {
        /// The store's data file.
        path: PathBuf,
        /// The operation that failed first (`"write"`, `"fdatasync"`, …).
        op: &'static str,
        /// The error that operation met, as text.
        reason: String,
    },
    /// A write was attempted on a read-only handle. Open the store for
    /// writing to change it.
    #[error("{path}: opened read-only")]
    ReadOnly {
        /// The store's data file.
        path: PathBuf,
    },
    /// A record index at or past the end of the store.
    #[error("index {index} out of bounds (len {len})")]
    IndexOutOfBounds {
        /// The index asked for.
        index: u64,
        /// The number of records the handle holds (valid indices are
        /// `0..len`).
        len: u64,
    },
    /// The disk (or the user's quota) is full: growing the data file or
    /// allocating the coordination file failed with `ENOSPC` or `EDQUOT`.
    /// A growth that fails so sets the file back to its old length and
    /// leaves the handle usable, with everything committed kept; free space
    /// and retry.
    #[error("{path}: no space left growing to {wanted} bytes")]
    NoSpace {
        /// The file that was being grown or allocated.
        path: PathBuf,
        /// The length, in bytes, the file was being grown to.
        wanted: u64,
    },
    /// The store would exceed the format's or the process's file size
    /// limit: growth past 2^60 bytes, or a write or preallocation the
    /// operating system refused with `EFBIG` (`RLIMIT_FSIZE`, `ulimit -f`;
    /// the command-line tool ignores `SIGXFSZ` so that this error, not the
    /// signal, reports it). Growth that fails so leaves the file as it was.
    #[error("{path}: file too large: {wanted} bytes")]
    FileTooLarge {
        /// The file that was being grown.
        path: PathBuf,
        /// The length, in bytes, the file would have needed (`u64::MAX`
        /// when computing it overflowed).
        wanted: u64,
    },
    /// Shrinking the file was refused: reader processes have it mapped, and
    /// a read of a page past the new end would kill them with `SIGBUS`
    /// (on Windows, also: another program maps the file, which Windows
    /// refuses to shrink). Retry once the readers have closed.
    #[error("{path}: readers have the store mapped; shrinking it now could crash them (SIGBUS)")]
    ReadersPresent {
        /// The store's data file.
        path: PathBuf,
    },
    /// An in-place update of a committed record in an append-only store
    /// ([`Options::append_only`](crate::Options::append_only)): readers may
    /// hold borrowed references to it, so it never changes. Append a new
    /// record instead.
    #[error("{path}: append-only store: committed record {index} cannot be changed")]
    AppendOnly {
        /// The store's data file.
        path: PathBuf,
        /// The index of the committed record the update named.
        index: u64,
    },
    /// The coordination file (`<store>-lock`) or the log (`<store>-wal`)
    /// exists but is not one of ours: a symbolic link, not a regular file,
    /// content another program wrote, or a coordination file of another
    /// recmap version. `reason` says which and what to do; a coordination
    /// file holds no data and may be deleted while no process has the
    /// store open (the next open makes a new one).
    #[error("{path}: bad coordination file: {reason}")]
    BadCoordination {
        /// The coordination file or log.
        path: PathBuf,
        /// What is wrong with it, for the message.
        reason: String,
    },
    /// A record stays mid-update because its writer died while writing it;
    /// it may be torn. The next writer to open the store clears this.
    #[error("{path}: record {index} was being written by process {pid}, which died; it may be torn until a writer reopens the store")]
    WriterDied {
        /// The store's data file.
        path: PathBuf,
        /// The record the read asked for.
        index: u64,
        /// The process id of the writer that died.
        pid: u64,
    },
    /// A live writer kept record `index`'s page mid-update for longer than
    /// a reader waits (`waited_ms`): the writer is stopped (a debugger,
    /// `SIGSTOP`) or misbehaving. The read was abandoned rather than wait
    /// forever on a value another process controls; try again later.
    #[error("{path}: record {index} has been mid-update by live process {pid} for {waited_ms} ms; the reader stopped waiting (is the writer stopped?)")]
    WriterStalled {
        /// The store's data file.
        path: PathBuf,
        /// The record the read asked for.
        index: u64,
        /// The process id of the writer holding the page.
        pid: u64,
        /// How long the reader waited, in milliseconds (about 10 seconds).
        waited_ms: u64,
    },
    /// A log frame with a valid checksum, written for this store and
    /// continuing its commit chain, breaks a rule of the format: the log
    /// was not written by recmap. Nothing was replayed from it.
    #[error("{path}: corrupt log at byte {offset}: {reason}")]
    CorruptLog {
        /// The log file (`<store>-wal`).
        path: PathBuf,
        /// Byte offset of the offending frame in the log.
        offset: u64,
        /// The rule the frame breaks, for the message.
        reason: String,
    },

    /// A snapshot of commit `generation` cannot serve record `index`
    /// consistently: a later commit changed the record's page. Take a new
    /// snapshot (`Reader::read_txn` does, and retries).
    #[error("snapshot of generation {generation} expired: record {index}'s page changed in a later commit")]
    SnapshotExpired {
        /// The commit the snapshot shows.
        generation: u64,
        /// The record the read asked for.
        index: u64,
    },
    /// A shared store name that is empty, too long or has characters other
    /// than ASCII letters, digits, `.`, `_`, `-`.
    #[error("invalid shared store name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule it breaks, for the message.
        reason: &'static str,
    },
    /// An option or argument is out of range or not allowed in the
    /// handle's state: a chunk or log size out of range, a buffer of the
    /// wrong length, no schema to create a store with, `compact` or
    /// `repair` with uncommitted changes, `get_ref` on a store that is not
    /// append-only, a store that has used every generation. `reason` says
    /// which rule, and the valid range where there is one.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name (`"chunk_size"`, `"log_size"`, …).
        option: &'static str,
        /// What is wrong with the value, for the message.
        reason: String,
    },
    /// The store path names something other than a regular file (a FIFO,
    /// a socket, a directory, a device): refused at once, before anything
    /// could block on it or read from it. `kind` says what it is.
    #[error("{path}: not a regular file but {kind}; a store is a regular file")]
    NotRegularFile {
        /// The path that was opened.
        path: PathBuf,
        /// What the path is (`"a directory"`, `"a FIFO"`, …), for the
        /// message.
        kind: &'static str,
    },
    /// Committed records of data page (group) `group` do not hash to the
    /// checksum the store keeps for them (bit rot, a torn write, a change
    /// made behind the engine's back). Raised where damaged bytes would
    /// otherwise be served or blessed with a new checksum; `verify` lists
    /// the same damage as [`Problem::PageChecksum`](crate::Problem).
    #[error("{path}: data page {group} (records {first_record}..{end_record}) is damaged: its committed bytes hash to {got:#010x}, the stored checksum is {expected:#010x}")]
    CorruptPage {
        /// The store's data file.
        path: PathBuf,
        /// The group (data page) index.
        group: u64,
        /// The first record stored in the group.
        first_record: u64,
        /// One past the last committed record stored in the group.
        end_record: u64,
        /// The checksum the store keeps for the group (table, log or
        /// `tail_crc`).
        expected: u32,
        /// The CRC32 of the group's committed bytes as read.
        got: u32,
    },
    /// A long operation (`verify`) was stopped by its progress callback
    /// (the command-line tool: Ctrl-C) after `done` of `total` units.
    #[error("{path}: {what} interrupted after {done} of {total} data pages")]
    Interrupted {
        /// The store's data file.
        path: PathBuf,
        /// The operation that was stopped (`"verify"`).
        what: &'static str,
        /// Data pages (groups) processed before it stopped.
        done: u64,
        /// Data pages (groups) the operation had to process.
        total: u64,
    },
}

impl Error {
    /// `SchemaMismatch` unless the stored layout matches the requested one:
    /// the same record size and alignment, and the same fields once
    /// padding is set aside. Padding fields ([`Field::is_padding`], not
    /// nullable) carry no data, so on either side they match the gaps they
    /// fill on the other: a store made from `year:u16,dep_time:f32` opens
    /// with a type declaring `_pad0: [u8; 2]` between the two, and a store
    /// with that field opens with the spec without it. Every other field
    /// must agree in name, type, count, offset and validity bit. (A
    /// padding field of one side covers bytes no data field of its side
    /// covers, and those are the other side's data fields: it lies in a
    /// gap or on padding there.)
    ///
    /// [`Field::is_padding`]: crate::Field::is_padding
    pub(crate) fn check_schema(
        path: &std::path::Path,
        stored: &Schema,
        requested: &Schema,
    ) -> Result<()> {
        fn data(s: &Schema) -> impl Iterator<Item = &crate::Field> {
            s.fields
                .iter()
                .filter(|f| !f.is_padding() || f.is_nullable())
        }
        if stored == requested
            || (stored.record_size == requested.record_size
                && stored.record_align == requested.record_align
                && data(stored).eq(data(requested)))
        {
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

#[cfg(test)]
mod tests {
    use super::Error;
    use crate::schema::Schema;
    use std::path::Path;

    fn check(stored: &str, requested: &str) -> bool {
        let (s, r) = (
            Schema::parse(stored).unwrap(),
            Schema::parse(requested).unwrap(),
        );
        match Error::check_schema(Path::new("s.rmap"), &s, &r) {
            Ok(()) => true,
            Err(Error::SchemaMismatch { .. }) => false,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn padding_fields_match_gaps_both_ways() {
        let gap = "year:u16,dep_time:f32";
        let padded = "year:u16,_pad0:bytes[2],dep_time:f32";
        assert!(
            check(gap, padded),
            "a padded type opens a store with the gap"
        );
        assert!(
            check(padded, gap),
            "a type with the gap opens a padded store"
        );
        // Tail padding, part of a gap, a padding field of another name, and
        // padding on both sides that differs.
        assert!(check("a:u64,b:u8", "a:u64,b:u8,_pad:bytes[7]"));
        assert!(check("a:u8,b:u64", "a:u8,_pad1:bytes[3],b:u64"));
        assert!(check(
            "a:u8,_padx:bytes[7],b:u64",
            "a:u8,_pad0:bytes[1],b:u64"
        ));
        // Nullable fields and their bitmap stay exact around the padding.
        assert!(check(
            "d:f32?,y:u16",
            "d:f32?,y:u16,_valid:validity[1],_pad0:bytes[1]"
        ));
    }

    #[test]
    fn data_fields_still_match_exactly() {
        // A real field where the store has a gap or padding.
        assert!(!check(
            "year:u16,dep_time:f32",
            "year:u16,x:bytes[2],dep_time:f32"
        ));
        assert!(!check(
            "year:u16,_pad0:bytes[2],dep_time:f32",
            "year:u16,x:u16,dep_time:f32"
        ));
        // A different name, type, offset, nullability or size.
        assert!(!check("year:u16,dep_time:f32", "year:u16,dep:f32"));
        assert!(!check("year:u16,dep_time:f32", "year:i16,dep_time:f32"));
        assert!(!check(
            "year:u16,dep_time:f32",
            "year:u16,_pad0:bytes[6],dep_time:f32"
        ));
        assert!(!check("year:u16,dep_time:f32", "year:u16,dep_time:f32?"));
        assert!(!check("a:u64,b:u8", "a:u64,b:u8,_pad:bytes[15]"));
        // A nullable padding field is data: its bit matters.
        assert!(!check("x:u8?,_pad0:bytes[1]?", "x:u8?,_pad0:bytes[1]"));
        // The message shows both layouts.
        let e = Error::check_schema(
            Path::new("s.rmap"),
            &Schema::parse("year:u16,dep_time:f32").unwrap(),
            &Schema::parse("year:u16,dep:f32").unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("stored:") && e.contains("dep_time: f32 @4"),
            "{e}"
        );
        assert!(e.contains("requested:") && e.contains("dep: f32 @4"), "{e}");
    }
}
