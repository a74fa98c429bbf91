//! The engine: [`RawStore`] owns the file, its lock, the read-only map, the
//! append staging buffer, dirty tracking, growth, commit and verify.
//!
//! Invariants kept here (see `docs/format.md` and `docs/durability.md`):
//! - the map covers exactly `layout.file_len()` bytes, all inside the file;
//! - records `[0, flushed)` are in the file (page cache), `[flushed, len)` in
//!   the staging buffer; `committed <= flushed <= len <= capacity`;
//! - nothing is written through the map: every write is a positional write on
//!   the descriptor, so only the blocks recmap wrote become dirty;
//! - the checksum table on disk holds the CRCs of the last commit; it is only
//!   written by `commit` and copied by `grow`;
//! - a failed write or sync poisons the handle for writes, forever.

use crate::coord::Coord;
use crate::error::{Error, Result};
use crate::fileio::{read_exact_at, sync_dir, write_all_at};
use crate::format::{
    choose_slot, decode_list, encode_list, file_len_for_records, Header, Layout, Packing,
    SlotError, CHECKSUM_ENTRY_LEN, CHUNK_GRANULARITY, DEFAULT_CHUNK_SIZE, FLAG_APPEND_ONLY,
    FLAG_CHECKED, FORMAT_VERSION, LIST_CARRIED, MAX_CHUNK_SIZE, MAX_FILE_LEN, MAX_GROWTH_STEP,
    MAX_LISTED_GROUPS, PAGE_SIZE, SCHEMA_OFFSET, SLOT_OFFSETS,
};
use crate::schema::Schema;
use crate::sys;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Appends are staged in memory and written in runs of about this size.
const STAGE_LIMIT: usize = 1 << 20;

/// One page of the staging buffer; the alignment makes staged records aligned.
#[repr(C, align(4096))]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Page([u8; PAGE_SIZE as usize]);

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
    chunk_size: u64,
    initial_capacity: u64,
    wait_for_lock: bool,
    append_only: bool,
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

    /// Opens (or creates, per the options) a typed store for writing.
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

/// What a commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Generation of the header this commit published (unchanged if nothing to commit).
    pub generation: u64,
    /// Committed record count after the commit.
    pub records: u64,
    /// Data pages whose contents this commit made durable.
    pub pages: u64,
    /// Bytes written to the file since the previous commit (data, checksums, header).
    pub bytes: u64,
    /// Wall time of the commit.
    pub duration: Duration,
}

/// A snapshot of a store's vital numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub path: PathBuf,
    pub format_version: u32,
    pub record_size: u32,
    pub record_align: u32,
    pub records_per_page: u64,
    pub pages_per_group: u64,
    pub records: u64,
    pub committed_records: u64,
    pub generation: u64,
    pub capacity: u64,
    pub chunk_size: u64,
    pub file_size: u64,
    pub data_offset: u64,
    pub table_offset: u64,
    pub schema: Schema,
}

/// One thing `verify` found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A header slot is invalid (other than never written). Alone it is a
    /// note: a torn slot from a crash is expected and overwritten by the next commit.
    HeaderSlot { slot: usize, error: SlotError },
    /// The schema block does not hash to the header's CRC.
    SchemaChecksum { expected: u32, got: u32 },
    /// The file is shorter than the header requires.
    FileLength { expected: u64, actual: u64 },
    /// A data page (group) whose committed bytes do not match its checksum.
    PageChecksum {
        /// Group index (the data page for records up to 4 KiB).
        group: u64,
        /// File pages `[first_page, first_page + pages)` (page 0 is the header).
        first_page: u64,
        pages: u64,
        /// Records `[first_record, end_record)` stored there.
        first_record: u64,
        end_record: u64,
        expected: u32,
        got: u32,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::HeaderSlot { slot, error } => write!(f, "header slot {slot}: {error}"),
            Problem::SchemaChecksum { expected, got } => {
                write!(
                    f,
                    "schema block: checksum {got:#010x}, header says {expected:#010x}"
                )
            }
            Problem::FileLength { expected, actual } => {
                write!(f, "file length {actual}, header needs {expected}")
            }
            Problem::PageChecksum {
                group,
                first_page,
                pages,
                first_record,
                end_record,
                expected,
                got,
            } => {
                write!(
                    f,
                    "data page {group} (file pages {first_page}..{}, records {first_record}..{end_record}): checksum {got:#010x}, stored {expected:#010x}",
                    first_page + pages
                )
            }
        }
    }
}

/// The result of [`RawStore::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Damage: the store is not sound when this is non-empty.
    pub problems: Vec<Problem>,
    /// Findings that are not damage (an older header slot torn by a crash).
    pub notes: Vec<Problem>,
    /// Generation verified.
    pub generation: u64,
    /// Data pages (groups) whose checksums were checked.
    pub pages_checked: u64,
    /// Committed records covered by the checked pages.
    pub records_checked: u64,
    /// Pages with uncommitted in-place updates in this handle, not checked.
    pub pages_skipped: u64,
    /// Damaged pages found beyond the first `MAX_PROBLEMS` listed.
    pub problems_omitted: u64,
}

/// `verify` lists at most this many damaged pages (the first ones, in page
/// order) and counts the rest, so a hostile or wrecked file cannot make it
/// allocate without bound.
pub const MAX_PROBLEMS: usize = 10_000;

impl VerifyReport {
    /// True when no damage was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }
}

/// What [`RawStore::repair`] does. Both publish a new commit; neither can
/// undo damage to the header or schema block (those stores do not open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Recompute the checksum of every committed page from the data as it is
    /// now and commit them. Use after a crash interrupted in-place updates and
    /// `verify` names their pages, when the records as they stand are
    /// acceptable (each is old, new, or — after a power loss — torn: check
    /// them first if that matters). Keeps every record.
    RebuildChecksums,
    /// Keep only the records before the first page that fails verification
    /// and commit that count. Use when damaged data must never be served
    /// (bit rot, a bad disk). Loses every record from that page on.
    TruncateToVerified,
}

/// What [`RawStore::repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// Verification before the repair.
    pub before: VerifyReport,
    /// Record count before and after.
    pub records_before: u64,
    pub records_after: u64,
    /// Page checksums rewritten.
    pub pages_rewritten: u64,
    /// Generation of the commit the repair published (unchanged if none).
    pub generation: u64,
}

/// An untyped store: records as `&[u8]` described by a [`Schema`].
///
/// [`Store<T>`](crate::Store) wraps this with typed, zero-copy access.
pub struct RawStore {
    pub(crate) path: PathBuf,
    file: File,
    pub(crate) map: sys::RecordMap,
    access: Access,
    schema: Schema,
    /// The last header published (commit or growth).
    header: Header,
    /// Current layout (equal to `header.layout`: growth publishes a header).
    pub(crate) layout: Layout,
    pub(crate) len: u64,
    pub(crate) flushed: u64,
    /// Staging buffer for records `[flushed, len)`; starts at data-relative
    /// byte `stage_base` (page-aligned).
    stage: Vec<Page>,
    stage_base: u64,
    /// Committed groups changed in place since the last commit.
    dirty_groups: BTreeSet<u64>,
    bytes_since_commit: u64,
    poisoned: Option<(&'static str, String)>,
    /// Test hook: fail the sync this many syncs from now.
    fail_sync_in: Option<u64>,
    /// Test hook: sees every write and sync.
    observer: Option<IoObserver>,
    /// Writers only: the coordination file shared with readers.
    coord: Option<Coord>,
    /// Records below this may be visible to a reader: writes to them go
    /// through the stripe seqlocks.
    high_water: u64,
    /// The newest header's group list as on disk (empty for an ordinary
    /// header), sorted by group. Every entry's checksum overrides the table,
    /// whose entry for it may not be written yet. Entries without
    /// `LIST_CARRIED` are the groups open validates the header by: changing
    /// their committed bytes first needs a confirming header (`confirm`), or
    /// a crash could make open reject an acknowledged commit.
    listed: Vec<(u64, u32)>,
}

/// The entries of a group list that are table entries of full groups below
/// `full` (the carried bit cleared), in group order.
fn table_entries(list: &[(u64, u32)], full: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
    list.iter()
        .map(|&(g, crc)| (g & !LIST_CARRIED, crc))
        .filter(move |&(g, _)| g < full)
}

/// A test observer of write-path I/O (see [`RawStore::set_io_observer`]).
#[doc(hidden)]
pub type IoObserver = Box<dyn FnMut(&IoEvent) + Send + Sync>;

/// A write-path I/O operation, reported to a test observer after it happened.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoEvent {
    /// `len` bytes written at `offset` (in the page cache, not yet durable).
    Write { offset: u64, len: u64 },
    /// Everything written before is durable.
    Sync,
    /// The file was extended (preallocated) to `len` bytes; not yet durable.
    SetLen { len: u64 },
}

impl std::fmt::Debug for RawStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStore")
            .field("path", &self.path)
            .field("access", &self.access)
            .field("len", &self.len)
            .field("committed", &self.header.record_count)
            .field("generation", &self.header.generation)
            .field("capacity", &self.layout.capacity())
            .finish_non_exhaustive()
    }
}

fn lock(file: &File, path: &Path, access: Access, wait: bool) -> Result<()> {
    let r = match (access, wait) {
        (Access::Write, false) => file.try_lock(),
        (Access::ReadOnly, false) => file.try_lock_shared(),
        (Access::Write, true) => file.lock().map_err(TryLockError::Error),
        (Access::ReadOnly, true) => file.lock_shared().map_err(TryLockError::Error),
    };
    match r {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_path_buf(),
            holder: match access {
                Access::Write => "handle (a writer or a read-only reader)",
                Access::ReadOnly => "handle (a writer)",
            },
        }),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

pub(crate) fn map_open_error(path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
        },
        _ => Error::io("open", path, e),
    }
}

fn map_grow_error(path: &Path, wanted: u64, e: io::Error) -> Error {
    #[cfg(unix)]
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            return Error::NoSpace {
                path: path.into(),
                wanted,
            }
        }
        Some(libc::EFBIG) => {
            return Error::FileTooLarge {
                path: path.into(),
                wanted,
            }
        }
        _ => {}
    }
    match e.kind() {
        io::ErrorKind::StorageFull => Error::NoSpace {
            path: path.into(),
            wanted,
        },
        io::ErrorKind::FileTooLarge => Error::FileTooLarge {
            path: path.into(),
            wanted,
        },
        _ => Error::io("grow", path, e),
    }
}

fn check_chunk_size(chunk: u64) -> Result<()> {
    if chunk == 0 || !chunk.is_multiple_of(CHUNK_GRANULARITY) || chunk > MAX_CHUNK_SIZE {
        return Err(Error::InvalidOption {
            option: "chunk_size",
            reason: format!("{chunk} is not a non-zero multiple of 64 KiB up to 1 TiB"),
        });
    }
    Ok(())
}

impl RawStore {
    /// Creates a new store with `schema`; fails if `path` exists.
    pub fn create(path: impl AsRef<Path>, schema: &Schema) -> Result<RawStore> {
        Options::new().create_new(true).open_raw(path, Some(schema))
    }
    /// Opens an existing store for writing.
    pub fn open(path: impl AsRef<Path>) -> Result<RawStore> {
        Options::new().open_raw(path, None)
    }
    /// Opens an existing store read-only.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<RawStore> {
        Options::new().open_raw_read_only(path)
    }

    fn create_file(path: &Path, opts: &Options, schema: Option<&Schema>) -> Result<RawStore> {
        let span = tracing::info_span!("recmap.create", path = %path.display());
        let _g = span.enter();
        let t0 = Instant::now();
        let schema = schema.ok_or(Error::InvalidOption {
            option: "schema",
            reason: "a schema is required to create a store".into(),
        })?;
        schema.validate()?;
        check_chunk_size(opts.chunk_size)?;
        if path.exists() {
            return Err(Error::AlreadyExists { path: path.into() });
        }
        let packing = Packing::new(schema.record_size as u64);
        let block = schema.encode();
        let schema_len = block.len() as u32;
        let too_large = || Error::FileTooLarge {
            path: path.into(),
            wanted: u64::MAX,
        };
        let file_len =
            file_len_for_records(packing, schema_len, opts.chunk_size, opts.initial_capacity)
                .ok_or_else(too_large)?;
        let layout = Layout::fitting(packing, schema_len, file_len).ok_or_else(too_large)?;

        // Build the file under a temporary name and link it into place, so a
        // crash during creation never leaves a half-written store at `path`.
        let name = path.file_name().ok_or_else(|| Error::InvalidOption {
            option: "path",
            reason: format!("{} has no file name", path.display()),
        })?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = path.with_file_name(format!(
            ".{}.recmap-tmp-{}-{nonce}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let result = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| map_open_error(&tmp, e))?;
            lock(&file, path, Access::Write, false)?;
            sys::preallocate(&file, 0, file_len).map_err(|e| map_grow_error(path, file_len, e))?;
            write_all_at(&file, &block, SCHEMA_OFFSET)
                .map_err(|e| Error::io("write schema", &tmp, e))?;
            let header = Header {
                flags: if opts.append_only {
                    FLAG_APPEND_ONLY
                } else {
                    0
                },
                record_size: schema.record_size,
                record_align: schema.record_align,
                chunk_size: opts.chunk_size,
                generation: 1,
                record_count: 0,
                capacity: layout.capacity(),
                schema_len,
                schema_crc: crc32fast::hash(&block),
                tail_crc: 0,
                list_len: 0,
                list_crc: 0,
                layout,
            };
            write_all_at(&file, &header.encode(), SLOT_OFFSETS[header.slot_index()])
                .map_err(|e| Error::io("write header", &tmp, e))?;
            file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::AlreadyExists { path: path.into() })
                }
                // Filesystems without hard links: rename (not atomic against a racing creator).
                Err(_) if !path.exists() => {
                    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?
                }
                Err(e) => return Err(Error::io("link", path, e)),
            }
            Ok((file, header))
        })();
        let _ = std::fs::remove_file(&tmp);
        let (file, header) = result?;
        sync_dir(path).map_err(|e| Error::io("fsync directory", path, e))?;
        let map = sys::RecordMap::map(&file, layout.file_len())
            .map_err(|e| Error::io("mmap", path, e))?;
        tracing::info!(
            records_capacity = layout.capacity(),
            file_len,
            chunk_size = opts.chunk_size,
            record_size = schema.record_size,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "created"
        );
        let mut store = RawStore::assemble(path, file, map, Access::Write, schema.clone(), header);
        store.attach_coord(true)?;
        Ok(store)
    }

    /// Writers open the coordination file, clear what a dead writer left in
    /// it, and publish their generation and high-water mark there.
    fn attach_coord(&mut self, created: bool) -> Result<()> {
        let coord = Coord::open(&self.path, &self.file, true)?;
        if created {
            // A coordination file left by an older store at this path.
            coord.reset_high_water(0);
        }
        if let Some(pid) = coord.adopt(self.header.generation, self.header.record_count) {
            tracing::warn!(path = %self.path.display(), dead_writer_pid = pid, "recovered: the previous writer did not close cleanly");
        }
        self.high_water = coord.high_water();
        self.coord = Some(coord);
        Ok(())
    }

    fn assemble(
        path: &Path,
        file: File,
        map: sys::RecordMap,
        access: Access,
        schema: Schema,
        header: Header,
    ) -> RawStore {
        let mut s = RawStore {
            path: path.to_path_buf(),
            file,
            map,
            access,
            schema,
            layout: header.layout,
            len: header.record_count,
            flushed: header.record_count,
            header,
            stage: Vec::new(),
            stage_base: 0,
            dirty_groups: BTreeSet::new(),
            bytes_since_commit: 0,
            poisoned: None,
            fail_sync_in: None,
            observer: None,
            coord: None,
            high_water: 0,
            listed: Vec::new(),
        };
        s.sync_window();
        s
    }

    fn open_existing(
        path: &Path,
        access: Access,
        opts: &Options,
        want: Option<&Schema>,
    ) -> Result<RawStore> {
        let span = tracing::info_span!("recmap.open", path = %path.display(), read_only = access == Access::ReadOnly);
        let _g = span.enter();
        let t0 = Instant::now();
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::Write)
            .open(path)
            .map_err(|e| map_open_error(path, e))?;
        // Lock before reading the header, so no writer commits in between.
        lock(&file, path, access, opts.wait_for_lock)?;
        let (header, list, slots, chosen) = read_header(&file, path, 0)?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if file_len < header.layout.file_len() {
            return Err(Error::Truncated {
                path: path.into(),
                expected: header.layout.file_len(),
                actual: file_len,
            });
        }
        let schema = read_schema(&file, path, &header)?;
        if let Some(want) = want {
            Error::check_schema(path, &schema, want)?;
        }
        let other = 1 - chosen;
        match &slots[other] {
            Ok(_) | Err(SlotError::Empty) => {}
            Err(e) => tracing::warn!(slot = other, error = %e, generation = header.generation,
                "recovered: ignoring an invalid header slot, using the other"),
        }
        let map = sys::RecordMap::map(&file, header.layout.file_len())
            .map_err(|e| Error::io("mmap", path, e))?;
        tracing::info!(
            generation = header.generation,
            records = header.record_count,
            capacity = header.capacity,
            file_len,
            slot = chosen,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "opened"
        );
        let mut store = RawStore::assemble(path, file, map, access, schema, header);
        store.listed = list;
        if access == Access::Write {
            store.attach_coord(false)?;
        }
        Ok(store)
    }

    // ----- accessors -------------------------------------------------------

    /// Records in the store, including uncommitted appends.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Records as of the last commit.
    pub fn committed_len(&self) -> u64 {
        self.header.record_count
    }
    /// Generation of the last published header.
    pub fn generation(&self) -> u64 {
        self.header.generation
    }
    /// Records the file has room for before it grows.
    pub fn capacity(&self) -> u64 {
        self.layout.capacity()
    }
    /// The stored record layout.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Size of one record in bytes.
    pub fn record_size(&self) -> usize {
        self.schema.record_size as usize
    }
    /// True if the handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.access == Access::ReadOnly
    }
    /// True if uncommitted appends or in-place updates exist.
    pub fn has_uncommitted(&self) -> bool {
        self.len != self.header.record_count || !self.dirty_groups.is_empty()
    }
    /// Why the handle refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_ref().map(|(_, r)| r.as_str())
    }

    /// A snapshot of the store's numbers.
    pub fn info(&self) -> Info {
        let p = self.layout.packing;
        Info {
            path: self.path.clone(),
            format_version: FORMAT_VERSION,
            record_size: self.schema.record_size,
            record_align: self.schema.record_align,
            records_per_page: p.records_per_group,
            pages_per_group: p.pages_per_group,
            records: self.len,
            committed_records: self.header.record_count,
            generation: self.header.generation,
            capacity: self.layout.capacity(),
            chunk_size: self.header.chunk_size,
            file_size: self
                .file
                .metadata()
                .map(|m| m.len())
                .unwrap_or(self.layout.file_len()),
            data_offset: self.layout.data_offset,
            table_offset: self.layout.table_offset,
            schema: self.schema.clone(),
        }
    }

    // ----- reads -----------------------------------------------------------

    /// Record `i` as bytes, or `None` past the end.
    #[inline]
    pub fn get(&self, i: u64) -> Option<&[u8]> {
        let size = self.schema.record_size as usize;
        if i < self.flushed {
            let off = (self.layout.data_offset + self.layout.packing.record_offset(i)) as usize;
            Some(&self.map[off..off + size])
        } else if i < self.len {
            let off = (self.layout.packing.record_offset(i) - self.stage_base) as usize;
            Some(&self.stage_bytes()[off..off + size])
        } else {
            None
        }
    }

    fn stage_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.stage)
    }

    /// The contiguous runs of records covering `range` (clamped to `len`):
    /// each item is `(first index, bytes of consecutive records)`.
    pub fn runs(&self, range: Range<u64>) -> Runs<'_> {
        Runs {
            store: self,
            next: range.start,
            end: range.end.min(self.len),
        }
    }

    /// The end of the contiguous run starting at record `i` (< len).
    pub(crate) fn run_end(&self, i: u64, end: u64) -> u64 {
        let p = self.layout.packing;
        let boundary = if i < self.flushed {
            self.flushed
        } else {
            self.len
        };
        let group_end = if p.is_dense() {
            boundary
        } else {
            (p.group_of(i) + 1) * p.records_per_group
        };
        end.min(boundary).min(group_end)
    }

    /// Bytes of records `[i, j)`, which must lie in one run.
    pub(crate) fn run_bytes(&self, i: u64, j: u64) -> &[u8] {
        let size = self.schema.record_size as u64;
        let n = ((j - i) * size) as usize;
        if i < self.flushed {
            let off = (self.layout.data_offset + self.layout.packing.record_offset(i)) as usize;
            &self.map[off..off + n]
        } else {
            let off = (self.layout.packing.record_offset(i) - self.stage_base) as usize;
            &self.stage_bytes()[off..off + n]
        }
    }

    // ----- writes ----------------------------------------------------------

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.access == Access::ReadOnly {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        if let Some((op, reason)) = &self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                op,
                reason: reason.clone(),
            });
        }
        Ok(())
    }

    /// `AppendOnly` if record `i` is committed in an append-only store.
    pub(crate) fn check_mutable(&self, i: u64) -> Result<()> {
        if i < self.header.record_count && self.header.flags & FLAG_APPEND_ONLY != 0 {
            return Err(Error::AppendOnly {
                path: self.path.clone(),
                index: i,
            });
        }
        Ok(())
    }

    /// Every write of the write path goes through here: a positional write
    /// that poisons the handle on failure.
    fn write(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if let Err(e) = write_all_at(&self.file, buf, offset) {
            return Err(self.poison("write", e));
        }
        self.bytes_since_commit += buf.len() as u64;
        self.observe(IoEvent::Write {
            offset,
            len: buf.len() as u64,
        });
        Ok(())
    }

    /// Writes the bytes of records `[first, end)`. Records a reader may see
    /// (below the high-water mark) are written inside their stripes'
    /// seqlocks, so a reader never accepts a torn copy.
    fn write_records(&mut self, buf: &[u8], offset: u64, first: u64, end: u64) -> Result<()> {
        let hw = self.high_water;
        let stripes = match &self.coord {
            Some(c) if first < hw => {
                let p = self.layout.packing;
                Some(c.begin_write(p.group_of(first), p.group_of(end.min(hw) - 1) + 1))
            }
            _ => None,
        };
        let r = self.write(buf, offset);
        if let (Some(c), Some(stripes)) = (&self.coord, stripes) {
            c.end_write(&stripes);
        }
        r
    }

    /// Every sync of the write path goes through here (`all`: also metadata,
    /// for a changed length). A failure poisons the handle.
    fn sync(&mut self, all: bool) -> Result<()> {
        let r = match self.fail_sync_in {
            Some(0) => {
                self.fail_sync_in = None;
                Err(io::Error::other("injected sync failure (test hook)"))
            }
            Some(n) => {
                self.fail_sync_in = Some(n - 1);
                self.sync_file(all)
            }
            None => self.sync_file(all),
        };
        if let Err(e) = r {
            return Err(self.poison("fsync", e));
        }
        self.observe(IoEvent::Sync);
        Ok(())
    }

    fn sync_file(&self, all: bool) -> io::Result<()> {
        if all {
            self.file.sync_all()
        } else {
            self.file.sync_data()
        }
    }

    fn observe(&mut self, event: IoEvent) {
        if let Some(o) = self.observer.as_mut() {
            o(&event);
        }
    }

    /// Test hook: `f` sees every write, sync and length change of the write
    /// path, after it happened. Crash simulation uses it to know what was
    /// durable when. Not part of the API.
    #[doc(hidden)]
    pub fn set_io_observer(&mut self, f: Option<IoObserver>) {
        self.observer = f;
    }

    /// Fault injection for tests: the `n`-th sync from now (0 = the next one)
    /// fails as if `fsync` had returned an I/O error. Not part of the API.
    #[doc(hidden)]
    pub fn inject_sync_failure(&mut self, n: u64) {
        self.fail_sync_in = Some(n);
    }

    /// Marks the handle unusable for writes and returns the error to report.
    fn poison(&mut self, op: &'static str, e: io::Error) -> Error {
        tracing::error!(op, error = %e, path = %self.path.display(), "write path failed; handle poisoned");
        self.poisoned = Some((op, e.to_string()));
        Error::io(op, &self.path, e)
    }

    fn check_record(&self, bytes: &[u8], n: u64) -> Result<()> {
        let want = self.schema.record_size as u64 * n;
        if bytes.len() as u64 != want {
            return Err(Error::InvalidOption {
                option: "record bytes",
                reason: format!(
                    "got {} bytes, expected {want} ({n} records of {})",
                    bytes.len(),
                    self.schema.record_size
                ),
            });
        }
        Ok(())
    }

    /// Appends one record (exactly `record_size` bytes); returns its index.
    pub fn push(&mut self, record: &[u8]) -> Result<u64> {
        self.check_writable()?;
        self.check_record(record, 1)?;
        let i = self.len;
        self.reserve(1)?;
        self.stage_slot(i).copy_from_slice(record);
        self.len += 1;
        if self.stage.len() * PAGE_SIZE as usize >= STAGE_LIMIT {
            self.flush_stage()?;
        }
        Ok(i)
    }

    /// Appends records given as consecutive bytes; returns the first index.
    pub fn extend_from_bytes(&mut self, records: &[u8]) -> Result<u64> {
        self.check_writable()?;
        let size = self.schema.record_size as usize;
        if !records.len().is_multiple_of(size) {
            self.check_record(records, (records.len() / size) as u64 + 1)?;
        }
        let n = (records.len() / size) as u64;
        let first = self.len;
        if n == 0 {
            return Ok(first);
        }
        self.reserve(n)?;
        let p = self.layout.packing;
        if p.is_dense() && records.len() >= STAGE_LIMIT / 4 {
            // Dense layout: the input is already in file order; write it directly.
            self.flush_stage()?;
            let off = self.layout.record_file_offset(first);
            self.write_records(records, off, first, first + n)?;
            self.len += n;
            self.flushed = self.len;
            self.sync_window();
            return Ok(first);
        }
        let mut src = records;
        while !src.is_empty() {
            let i = self.len;
            let k = (p.records_per_group - i % p.records_per_group).min((src.len() / size) as u64);
            let bytes = k as usize * size;
            self.stage_run(i, k).copy_from_slice(&src[..bytes]);
            src = &src[bytes..];
            self.len += k;
            if self.stage.len() * PAGE_SIZE as usize >= STAGE_LIMIT {
                self.flush_stage()?;
            }
        }
        Ok(first)
    }

    /// Overwrites record `i` (< len). A committed record's page is marked
    /// dirty and re-checksummed at the next commit.
    pub fn set(&mut self, i: u64, record: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.check_record(record, 1)?;
        if i >= self.len {
            return Err(Error::IndexOutOfBounds {
                index: i,
                len: self.len,
            });
        }
        self.check_mutable(i)?;
        if i >= self.flushed {
            self.stage_slot(i).copy_from_slice(record);
            return Ok(());
        }
        let g = self.layout.packing.group_of(i);
        if i < self.header.record_count && self.validates_by(g) {
            self.confirm()?;
        }
        self.write_records(record, self.layout.record_file_offset(i), i, i + 1)?;
        if i < self.header.record_count {
            self.dirty_groups.insert(g);
        }
        Ok(())
    }

    /// Makes room for `n` more records, growing the file if needed.
    pub fn reserve(&mut self, n: u64) -> Result<()> {
        self.check_writable()?;
        let need = self.len.checked_add(n).ok_or(Error::FileTooLarge {
            path: self.path.clone(),
            wanted: u64::MAX,
        })?;
        if need > self.layout.capacity() {
            self.grow(need)?;
        }
        Ok(())
    }

    /// The staging bytes of record `i` (`flushed <= i`, `i < capacity`).
    fn stage_slot(&mut self, i: u64) -> &mut [u8] {
        self.stage_run(i, 1)
    }

    /// The staging bytes of records `[i, i + k)`, all in one group.
    fn stage_run(&mut self, i: u64, k: u64) -> &mut [u8] {
        let p = self.layout.packing;
        let rel = p.record_offset(i);
        if self.flushed == self.len && self.stage.is_empty() {
            self.stage_base = rel / PAGE_SIZE * PAGE_SIZE;
        }
        let start = (rel - self.stage_base) as usize;
        let end = start + (k * p.record_size) as usize;
        let pages = end.div_ceil(PAGE_SIZE as usize);
        if self.stage.len() < pages {
            self.stage.resize(pages, Page([0; PAGE_SIZE as usize]));
        }
        &mut bytemuck::cast_slice_mut(&mut self.stage)[start..end]
    }

    /// Writes staged records to the file.
    fn flush_stage(&mut self) -> Result<()> {
        if self.flushed < self.len {
            let p = self.layout.packing;
            let from = p.record_offset(self.flushed);
            let to = p.record_offset(self.len - 1) + p.record_size;
            let range = (from - self.stage_base) as usize..(to - self.stage_base) as usize;
            let stage = std::mem::take(&mut self.stage);
            let (first, end) = (self.flushed, self.len);
            let r = self.write_records(
                &bytemuck::cast_slice(&stage)[range],
                self.layout.data_offset + from,
                first,
                end,
            );
            self.stage = stage;
            r?;
            self.flushed = self.len;
            self.sync_window();
        }
        self.stage.clear();
        if self.stage.capacity() > STAGE_LIMIT / PAGE_SIZE as usize * 2 {
            self.stage.shrink_to(STAGE_LIMIT / PAGE_SIZE as usize);
        }
        Ok(())
    }

    /// Grows the file so it holds at least `need` records.
    ///
    /// Order (each step durable before the next): extend and preallocate;
    /// copy the checksum table to its new place past the old end; fsync;
    /// publish a header with the new layout (same record count); remap.
    /// Until that header is durable the old one still describes an intact
    /// file, and nothing is written into the old table's place before it is.
    fn grow(&mut self, need: u64) -> Result<()> {
        let span = tracing::info_span!("recmap.grow", path = %self.path.display(), need);
        let _g = span.enter();
        let t0 = Instant::now();
        let p = self.layout.packing;
        let chunk = self.header.chunk_size;
        let old_len = self.layout.file_len();
        let too_large = |wanted| Error::FileTooLarge {
            path: self.path.clone(),
            wanted,
        };
        let min_len = file_len_for_records(p, self.header.schema_len, chunk, need)
            .ok_or(too_large(u64::MAX))?;
        let doubled = old_len.saturating_add(old_len.min(MAX_GROWTH_STEP));
        let mut want =
            crate::format::round_up(min_len.max(doubled), chunk).ok_or(too_large(u64::MAX))?;
        let layout = loop {
            if want > MAX_FILE_LEN {
                return Err(too_large(want));
            }
            match Layout::fitting(p, self.header.schema_len, want) {
                Some(l) if l.capacity() >= need && l.table_offset >= old_len => break l,
                _ => want += chunk,
            }
        };
        sys::preallocate(&self.file, old_len, want)
            .map_err(|e| map_grow_error(&self.path, want, e))?;
        self.observe(IoEvent::SetLen { len: want });
        // The new length must be durable with the table: sync metadata too.
        self.relocate(layout, true)?;
        tracing::info!(
            old_len,
            new_len = want,
            capacity = layout.capacity(),
            generation = self.header.generation,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "grew"
        );
        Ok(())
    }

    /// Moves to `layout` (growth or shrink): copies the committed checksums
    /// of full groups to the new table position (which the caller chose in
    /// space the current header does not use), syncs (`all`: with metadata),
    /// publishes a header with the new capacity and table, and remaps.
    fn relocate(&mut self, layout: Layout, all: bool) -> Result<()> {
        let groups = self.header.record_count / self.layout.packing.records_per_group;
        let n = (groups * CHECKSUM_ENTRY_LEN) as usize;
        let old_table = self.layout.table_offset as usize;
        let mut table = self.map[old_table..old_table + n].to_vec();
        // Checksums the newest (checked) header lists instead of the table.
        for (g, crc) in table_entries(&self.listed, groups) {
            let at = (g * CHECKSUM_ENTRY_LEN) as usize;
            table[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        }
        self.write(&table, layout.table_offset)?;
        self.sync(all)?;
        let header = Header {
            generation: self.header.generation + 1,
            capacity: layout.capacity(),
            layout,
            ..self.header
        };
        self.publish(header, None)?;
        // Map first: on failure the old map and layout stay consistent for reads.
        self.map = match sys::RecordMap::map(&self.file, layout.file_len()) {
            Ok(m) => m,
            Err(e) => return Err(self.poison("mmap", e)),
        };
        self.layout = layout;
        self.sync_window();
        Ok(())
    }

    /// The entry for group `g` in the newest header's list, if any.
    fn listed_entry(&self, g: u64) -> Option<(u64, u32)> {
        self.listed
            .binary_search_by_key(&g, |e| e.0 & !LIST_CARRIED)
            .ok()
            .map(|k| self.listed[k])
    }

    /// True if open validates the newest header by group `g`'s bytes.
    fn validates_by(&self, g: u64) -> bool {
        self.listed_entry(g)
            .is_some_and(|(raw, _)| raw & LIST_CARRIED == 0)
    }

    /// True if open validates the newest header by any group's bytes.
    fn unconfirmed(&self) -> bool {
        self.listed.iter().any(|&(g, _)| g & LIST_CARRIED == 0)
    }

    /// Writes table entries `(group, crc)` (sorted by group), one write per
    /// run of adjacent groups.
    fn write_table_entries(&mut self, entries: &[(u64, u32)]) -> Result<()> {
        let mut i = 0;
        let mut buf = Vec::new();
        while i < entries.len() {
            let start = entries[i].0;
            buf.clear();
            while i < entries.len() && entries[i].0 == start + (buf.len() / 4) as u64 {
                buf.extend_from_slice(&entries[i].1.to_le_bytes());
                i += 1;
            }
            self.write(&buf, self.layout.checksum_offset(start))?;
        }
        Ok(())
    }

    /// Lets `record` (the typed zero-copy `get`) see exactly the records
    /// written to the file, `[0, flushed)`. Called whenever the map or
    /// `flushed` changes; the map refuses (and empties the window) if they
    /// did not fit, which would send every read to the checked path.
    fn sync_window(&mut self) {
        let ok = self.map.set_records(
            self.layout.data_offset,
            self.schema.record_size as u64,
            self.schema.record_align as u64,
            self.flushed,
        );
        debug_assert!(ok, "flushed records outside the map");
    }

    /// Writes `header` into its slot and makes it durable. With `list` it
    /// is a checked commit: the flag and the group list are set from `list`
    /// and written with the slot in one write; otherwise both are cleared.
    /// Either way this is the header's one sync.
    fn publish(&mut self, mut header: Header, list: Option<&[(u64, u32)]>) -> Result<()> {
        if header.generation > crate::format::MAX_GENERATION {
            return Err(Error::InvalidOption {
                option: "generation",
                reason: format!(
                    "the store has used all {} generations",
                    crate::format::MAX_GENERATION
                ),
            });
        }
        let list_bytes = list.map(encode_list).unwrap_or_default();
        match list {
            Some(l) => {
                header.flags |= FLAG_CHECKED;
                header.list_len = l.len() as u16;
                header.list_crc = crc32fast::hash(&list_bytes);
            }
            None => {
                header.flags &= !FLAG_CHECKED;
                header.list_len = 0;
                header.list_crc = 0;
            }
        }
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&list_bytes);
        self.write(&bytes, SLOT_OFFSETS[header.slot_index()])?;
        self.sync(false)?;
        self.header = header;
        self.listed = list.map_or_else(Vec::new, <[_]>::to_vec);
        self.announce();
        Ok(())
    }

    /// Makes the newest header final before a write would change bytes a
    /// checked commit is validated by: publishes the same state again with
    /// every list entry carried (one small write and one sync; an ordinary
    /// header if nothing is left to carry). Until it is durable the checked
    /// commit still validates; after, nothing is validated by page bytes.
    fn confirm(&mut self) -> Result<()> {
        if !self.unconfirmed() {
            return Ok(());
        }
        let t0 = Instant::now();
        let header = Header {
            generation: self.header.generation + 1,
            ..self.header
        };
        // The same checksums, all carried: nothing left for open to check.
        let full = self.header.record_count / self.layout.packing.records_per_group;
        let carried: Vec<(u64, u32)> = table_entries(&self.listed, full)
            .map(|(g, crc)| (g | LIST_CARRIED, crc))
            .collect();
        if carried.is_empty() {
            self.publish(header, None)?;
        } else {
            self.publish(header, Some(&carried))?;
        }
        tracing::debug!(
            generation = self.header.generation,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "confirmed a checked commit before overwriting its pages"
        );
        Ok(())
    }

    /// Tells readers about the published header (after it is durable).
    /// Operations that borrow the coordination file out of `self` while
    /// they publish (`compact`, truncating `repair`) call it again after.
    fn announce(&mut self) {
        if let Some(c) = &self.coord {
            c.raise_high_water(self.header.record_count);
            c.set_generation(self.header.generation);
            self.high_water = c.high_water();
        }
    }

    /// Makes every change since the last commit durable and visible to new
    /// opens: writes staged records, re-checksums the dirty pages, syncs the
    /// data, then writes and syncs the next header slot.
    ///
    /// After `Ok`, everything before it survives a crash. After `Err`, the
    /// handle is poisoned for writes; reopen to continue from the last commit.
    pub fn commit(&mut self) -> Result<CommitStats> {
        self.check_writable()?;
        let span = tracing::info_span!("recmap.commit", path = %self.path.display(), generation = self.header.generation + 1);
        let _g = span.enter();
        let t0 = Instant::now();
        if !self.has_uncommitted() {
            return Ok(CommitStats {
                generation: self.header.generation,
                records: self.len,
                duration: t0.elapsed(),
                ..Default::default()
            });
        }
        self.flush_stage()?;
        let p = self.layout.packing;
        let rpg = p.records_per_group;
        let committed = self.header.record_count;
        // Groups whose bytes changed: in-place updates plus every group appends touched.
        let mut touched: Vec<u64> = self.dirty_groups.iter().copied().collect();
        if self.len > committed {
            touched.extend(p.group_of(committed)..=p.group_of(self.len - 1));
            touched.sort_unstable();
            touched.dedup();
        }
        // The checksum of every group this commit changed. Full groups keep
        // theirs in the table; the partly filled last group's goes into the
        // header (`tail_crc`), so an interrupted append commit never leaves
        // a table entry that disagrees with the previous header.
        let full = self.len / rpg;
        let own: Vec<(u64, u32)> = touched
            .iter()
            .map(|&g| (g, self.group_crc(g, self.len)))
            .collect();
        let tail_crc = if self.len.is_multiple_of(rpg) {
            0
        } else {
            match own.last() {
                Some(&(g, crc)) if g == full => crc,
                _ => self.group_crc(full, self.len),
            }
        };
        let header = Header {
            generation: self.header.generation + 1,
            record_count: self.len,
            tail_crc,
            ..self.header
        };
        // A small commit is a checked commit: its data and header share one
        // sync, the header listing the groups open must find on disk (own
        // entries) and, instead of writing them to the table, the checksums
        // of earlier commits' groups whose table entries are still pending
        // (carried entries). A large one, or one whose list would not fit,
        // writes every pending table entry and syncs before its header.
        let mut listed = own.clone();
        for (g, crc) in table_entries(&self.listed, full) {
            if own.binary_search_by_key(&g, |e| e.0).is_err() {
                listed.push((g | LIST_CARRIED, crc));
            }
        }
        listed.sort_unstable_by_key(|e| e.0 & !LIST_CARRIED);
        if listed.len() <= MAX_LISTED_GROUPS {
            self.publish(header, Some(&listed))?;
        } else {
            let entries: Vec<(u64, u32)> = table_entries(&listed, full).collect();
            self.write_table_entries(&entries)?;
            self.sync(false)?;
            self.publish(header, None)?;
        }
        let stats = CommitStats {
            generation: self.header.generation,
            records: self.len,
            pages: touched.len() as u64 * p.pages_per_group,
            bytes: self.bytes_since_commit,
            duration: t0.elapsed(),
        };
        self.dirty_groups.clear();
        self.bytes_since_commit = 0;
        tracing::info!(
            records = stats.records,
            pages = stats.pages,
            bytes = stats.bytes,
            elapsed_us = stats.duration.as_micros() as u64,
            "committed"
        );
        Ok(stats)
    }

    /// Commits and closes the handle, reporting any error (`Drop` cannot).
    pub fn close(mut self) -> Result<CommitStats> {
        if self.access == Access::ReadOnly {
            return Ok(CommitStats {
                generation: self.header.generation,
                records: self.len,
                ..Default::default()
            });
        }
        self.commit()
    }

    /// CRC32 of the bytes of group `g`'s records below `count`.
    fn group_crc(&self, g: u64, count: u64) -> u32 {
        let p = self.layout.packing;
        let (first, end) = p.group_records(g, count);
        let off = (self.layout.data_offset + g * p.group_bytes()) as usize;
        crc32fast::hash(&self.map[off..off + ((end - first) * p.record_size) as usize])
    }

    /// Shrinks the file to the smallest chunk multiple that holds the
    /// committed records, returning the bytes released (0 if nothing would
    /// shrink). Refused with [`Error::ReadersPresent`] while any
    /// [`Reader`](crate::Reader) has the store open: a process whose mapped
    /// pages are truncated away gets `SIGBUS`.
    ///
    /// Crash-safe: the new checksum table is written in space no committed
    /// record or current table uses, the header pointing at it is made
    /// durable, and only then is the file truncated.
    pub fn compact(&mut self) -> Result<u64> {
        self.check_writable()?;
        if self.has_uncommitted() {
            return Err(Error::InvalidOption {
                option: "compact",
                reason: "the handle has uncommitted changes: commit first".into(),
            });
        }
        let coord = self.coord.take().expect("writers have a coordination file");
        let r = coord.try_lock_exclusive().and_then(|()| self.shrink());
        coord.unlock();
        self.coord = Some(coord);
        self.announce();
        r
    }

    fn shrink(&mut self) -> Result<u64> {
        let span = tracing::info_span!("recmap.compact", path = %self.path.display());
        let _g = span.enter();
        let p = self.layout.packing;
        let old_len = self.layout.file_len();
        let Some(new_len) =
            file_len_for_records(p, self.header.schema_len, self.header.chunk_size, self.len)
        else {
            return Ok(0);
        };
        let Some(layout) = Layout::fitting(p, self.header.schema_len, new_len) else {
            return Ok(0);
        };
        // The new table must lie in unused data space: past the committed
        // records, before the current table.
        let used_end =
            self.layout.data_offset + self.len.div_ceil(p.records_per_group) * p.group_bytes();
        if new_len >= old_len
            || layout.table_offset < used_end
            || layout.table_offset + layout.table_len > self.layout.table_offset
        {
            return Ok(0);
        }
        self.relocate(layout, false)?;
        let actual = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .len();
        if let Err(e) = self.file.set_len(new_len) {
            return Err(self.poison("truncate", e));
        }
        self.observe(IoEvent::SetLen { len: new_len });
        self.sync(true)?;
        self.bytes_since_commit = 0;
        tracing::info!(old_len = actual, new_len, "compacted");
        Ok(actual.saturating_sub(new_len))
    }

    /// Repairs page checksums after `verify` found damage; see [`Repair`].
    ///
    /// Needs a writer handle with nothing uncommitted. The repair is itself
    /// a commit: crash-safe like any other.
    pub fn repair(&mut self, how: Repair) -> Result<RepairReport> {
        self.check_writable()?;
        // Readers of an append-only store borrow committed records; dropping
        // records (which later appends overwrite) needs them gone.
        if how == Repair::TruncateToVerified && self.header.flags & FLAG_APPEND_ONLY != 0 {
            let coord = self.coord.take().expect("writers have a coordination file");
            let r = coord
                .try_lock_exclusive()
                .and_then(|()| self.repair_inner(how));
            coord.unlock();
            self.coord = Some(coord);
            self.announce();
            return r;
        }
        self.repair_inner(how)
    }

    fn repair_inner(&mut self, how: Repair) -> Result<RepairReport> {
        if self.has_uncommitted() {
            return Err(Error::InvalidOption {
                option: "repair",
                reason: "the handle has uncommitted changes: commit or reopen first".into(),
            });
        }
        let span = tracing::info_span!("recmap.repair", path = %self.path.display(), ?how);
        let _g = span.enter();
        // Repair rewrites checksums a checked commit may be validated by.
        self.confirm()?;
        let before = self.verify()?;
        let records_before = self.len;
        let mut rep = RepairReport {
            records_before,
            records_after: records_before,
            pages_rewritten: 0,
            generation: self.header.generation,
            before: before.clone(),
        };
        if let Some(p) = before
            .problems
            .iter()
            .find(|p| !matches!(p, Problem::PageChecksum { .. }))
        {
            return Err(Error::InvalidOption {
                option: "repair",
                reason: format!("cannot repair: {p}"),
            });
        }
        if before.is_ok() {
            return Ok(rep);
        }
        let p = self.layout.packing;
        let rpg = p.records_per_group;
        // The ordinary header published below needs the table whole: first
        // the checksums the current header carries (a rebuild then
        // overwrites whatever it recomputes).
        let carried: Vec<(u64, u32)> = table_entries(&self.listed, self.len / rpg).collect();
        self.write_table_entries(&carried)?;
        let count = match how {
            Repair::RebuildChecksums => {
                let full = self.len / rpg;
                let mut g = 0;
                while g < full {
                    let end = full.min(g + 65536);
                    let entries: Vec<u8> = (g..end)
                        .flat_map(|g| self.group_crc(g, self.len).to_le_bytes())
                        .collect();
                    self.write(&entries, self.layout.checksum_offset(g))?;
                    g = end;
                }
                rep.pages_rewritten = self.len.div_ceil(rpg) * p.pages_per_group;
                self.len
            }
            Repair::TruncateToVerified => before
                .problems
                .iter()
                .filter_map(|p| match p {
                    Problem::PageChecksum { first_record, .. } => Some(*first_record),
                    _ => None,
                })
                .min()
                .unwrap_or(self.len),
        };
        let tail_crc = if count.is_multiple_of(rpg) {
            0
        } else {
            self.group_crc(count / rpg, count)
        };
        self.sync(false)?;
        let header = Header {
            generation: self.header.generation + 1,
            record_count: count,
            tail_crc,
            ..self.header
        };
        self.publish(header, None)?;
        self.len = count;
        self.flushed = count;
        self.sync_window();
        self.bytes_since_commit = 0;
        rep.records_after = count;
        rep.generation = self.header.generation;
        tracing::warn!(
            records_before,
            records_after = count,
            pages_rewritten = rep.pages_rewritten,
            "repaired"
        );
        Ok(rep)
    }

    /// Checks the header slots, the schema block, the file length and the
    /// checksum of every committed data page, reading the file from scratch.
    /// Pages this handle changed in place and has not committed are skipped.
    pub fn verify(&self) -> Result<VerifyReport> {
        let span = tracing::info_span!("recmap.verify", path = %self.path.display());
        let _g = span.enter();
        let t0 = Instant::now();
        let mut rep = VerifyReport {
            generation: self.header.generation,
            ..Default::default()
        };
        let mut page = vec![0u8; PAGE_SIZE as usize];
        read_exact_at(&self.file, &mut page, 0)
            .map_err(|e| Error::io("read header", &self.path, e))?;
        for (slot, &off) in SLOT_OFFSETS.iter().enumerate() {
            match Header::decode(&page[off as usize..], slot) {
                Ok(_) | Err(SlotError::Empty) => {}
                Err(error) => rep.notes.push(Problem::HeaderSlot { slot, error }),
            }
        }
        let schema_at = SCHEMA_OFFSET as usize;
        let got =
            crc32fast::hash(&self.map[schema_at..schema_at + self.header.schema_len as usize]);
        if got != self.header.schema_crc {
            rep.problems.push(Problem::SchemaChecksum {
                expected: self.header.schema_crc,
                got,
            });
        }
        let actual = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .len();
        if actual < self.layout.file_len() {
            rep.problems.push(Problem::FileLength {
                expected: self.layout.file_len(),
                actual,
            });
            return Ok(rep);
        }
        let p = self.layout.packing;
        let committed = self.header.record_count;
        for g in 0..committed.div_ceil(p.records_per_group) {
            if self.dirty_groups.contains(&g) {
                rep.pages_skipped += p.pages_per_group;
                continue;
            }
            let (first_record, end_record) = p.group_records(g, committed);
            let expected = if end_record - first_record < p.records_per_group {
                self.header.tail_crc
            } else if let Some((_, crc)) = self.listed_entry(g) {
                crc
            } else {
                let at = self.layout.checksum_offset(g) as usize;
                u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"))
            };
            let got = self.group_crc(g, committed);
            if got != expected && rep.problems.len() >= MAX_PROBLEMS {
                rep.problems_omitted += 1;
            } else if got != expected {
                rep.problems.push(Problem::PageChecksum {
                    group: g,
                    first_page: (self.layout.data_offset + g * p.group_bytes()) / PAGE_SIZE,
                    pages: p.pages_per_group,
                    first_record,
                    end_record,
                    expected,
                    got,
                });
            }
            rep.pages_checked += p.pages_per_group;
            rep.records_checked += end_record - first_record;
        }
        tracing::info!(
            pages = rep.pages_checked,
            problems = rep.problems.len(),
            elapsed_us = t0.elapsed().as_micros() as u64,
            "verified"
        );
        Ok(rep)
    }
}

impl Drop for RawStore {
    fn drop(&mut self) {
        // A checked commit left as the newest header is validated by its
        // pages at every open; a damaged page would then make open fall back
        // to the commit before it. Confirming it on the way out leaves damage
        // to be reported by `verify` instead (one header write and sync).
        if self.access == Access::Write && self.poisoned.is_none() && self.unconfirmed() {
            if let Err(e) = self.confirm() {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "could not confirm the last commit while closing");
            }
        }
        if let Some(c) = &self.coord {
            c.release();
        }
        if self.access == Access::Write && self.poisoned.is_none() && self.has_uncommitted() {
            tracing::warn!(
                path = %self.path.display(),
                uncommitted_records = self.len - self.header.record_count,
                dirty_pages = self.dirty_groups.len(),
                "dropped without commit: appends since the last commit are discarded"
            );
        }
    }
}

/// Both header slots, decoded.
type SlotResults = [Result<Header, SlotError>; 2];

/// What `read_header` found: the header to use, its group list, both slots
/// and the index of the one used.
type HeaderChoice = (Header, Vec<(u64, u32)>, SlotResults, usize);

/// Reads and decodes both header slots; returns the chosen header, its
/// group list (empty unless it is a checked commit), both slots and the
/// chosen slot's index.
///
/// The chosen header is the valid one with the highest generation. If it is
/// a checked commit newer than `trust_through` (a generation known durable,
/// e.g. announced by a writer after its sync), its listed groups and tail
/// group are read and checked first; if any did not reach the disk, the
/// commit was interrupted during its one sync and the other slot is used.
pub(crate) fn read_header(file: &File, path: &Path, trust_through: u64) -> Result<HeaderChoice> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    if len < PAGE_SIZE {
        // A recmap file cut short keeps its magic: say so, not "not ours".
        let mut magic = [0u8; 8];
        if len >= 8 && read_exact_at(file, &mut magic, 0).is_ok() && magic == crate::format::MAGIC {
            return Err(Error::Truncated {
                path: path.into(),
                expected: 2 * PAGE_SIZE,
                actual: len,
            });
        }
        return Err(Error::NotRecmap {
            path: path.into(),
            reason: format!("{len} bytes, shorter than the 4096-byte header page"),
        });
    }
    let mut page = vec![0u8; PAGE_SIZE as usize];
    read_exact_at(file, &mut page, 0).map_err(|e| Error::io("read header", path, e))?;
    let half = |i: usize| &page[SLOT_OFFSETS[i] as usize..SLOT_OFFSETS[i] as usize + 2048];
    let mut slots = [Header::decode(half(0), 0), Header::decode(half(1), 1)];
    for s in &slots {
        if let Err(SlotError::UnsupportedVersion { found }) = s {
            return Err(Error::UnsupportedVersion {
                path: path.into(),
                found: *found,
                supported: FORMAT_VERSION,
            });
        }
    }
    if let Some(i) = choose_slot(&slots) {
        let h = *slots[i].as_ref().expect("chosen slot is valid");
        if h.flags & FLAG_CHECKED != 0 && h.generation > trust_through {
            let list = decode_list(half(i), &h);
            if let Err(group) = check_commit(file, &h, &list) {
                tracing::warn!(
                    generation = h.generation,
                    group,
                    "recovered: discarding a checked commit whose pages did not all reach the disk"
                );
                slots[i] = Err(SlotError::IncompleteCommit { group });
            }
        }
    }
    match choose_slot(&slots) {
        Some(i) => {
            let h = *slots[i].as_ref().expect("chosen slot is valid");
            let list = if h.flags & FLAG_CHECKED != 0 {
                decode_list(half(i), &h)
            } else {
                Vec::new()
            };
            Ok((h, list, slots, i))
        }
        None => {
            let foreign = |s: &Result<Header, SlotError>| {
                matches!(s, Err(SlotError::BadMagic { .. } | SlotError::Empty))
            };
            if foreign(&slots[0]) && foreign(&slots[1]) {
                return Err(Error::NotRecmap {
                    path: path.into(),
                    reason: "no recmap magic in either header slot".into(),
                });
            }
            let [a, b] = slots;
            Err(Error::NoValidHeader {
                path: path.into(),
                slot0: a.unwrap_err(),
                slot1: b.unwrap_err(),
            })
        }
    }
}

/// Checks that a checked commit reached the disk whole: every group it
/// lists as its own (not carried) holds committed bytes that hash to the
/// listed checksum. Returns the first group that does not (or cannot be
/// read).
fn check_commit(file: &File, h: &Header, list: &[(u64, u32)]) -> std::result::Result<(), u64> {
    let p = h.layout.packing;
    for &(g, crc) in list.iter().filter(|e| e.0 & LIST_CARRIED == 0) {
        let (first, end) = p.group_records(g, h.record_count);
        let mut buf = vec![0u8; ((end - first) * p.record_size) as usize];
        read_exact_at(file, &mut buf, h.layout.data_offset + g * p.group_bytes()).map_err(|_| g)?;
        if crc32fast::hash(&buf) != crc {
            return Err(g);
        }
    }
    Ok(())
}

pub(crate) fn read_schema(file: &File, path: &Path, header: &Header) -> Result<Schema> {
    let mut block = vec![0u8; header.schema_len as usize];
    read_exact_at(file, &mut block, SCHEMA_OFFSET)
        .map_err(|e| Error::io("read schema", path, e))?;
    let got = crc32fast::hash(&block);
    if got != header.schema_crc {
        return Err(Error::ChecksumMismatch {
            path: path.into(),
            expected: header.schema_crc,
            got,
        });
    }
    let schema = Schema::decode(&block).map_err(|e| Error::BadSchema {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if schema.record_size != header.record_size || schema.record_align != header.record_align {
        return Err(Error::BadSchema {
            path: path.into(),
            reason: format!(
                "schema says {} bytes align {}, header says {} align {}",
                schema.record_size, schema.record_align, header.record_size, header.record_align
            ),
        });
    }
    Ok(schema)
}

/// Iterator over contiguous runs of records, from [`RawStore::runs`].
#[derive(Debug)]
pub struct Runs<'a> {
    store: &'a RawStore,
    next: u64,
    end: u64,
}

impl<'a> Iterator for Runs<'a> {
    type Item = (u64, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        let j = self.store.run_end(i, self.end);
        self.next = j;
        Some((i, self.store.run_bytes(i, j)))
    }
}
