//! Opening and recovery: creating a new file, opening an existing one, and
//! choosing which of the two header slots to trust.
//!
//! Invariants:
//! - a new file appears at its path complete or not at all: it is built and
//!   synced under a temporary name, then linked into place;
//! - the lock is taken before the header is read, so no writer commits in
//!   between, and is held as long as the handle's `File`;
//! - the header used is the valid slot with the highest `header_seq`,
//!   except that a version-1 checked commit newer than the generation known
//!   durable is first checked against its listed groups, and discarded for
//!   the other slot if any did not reach the disk (its one sync was
//!   interrupted);
//! - the commits in the log that follow that header are the rest of the
//!   committed state: a writer replays them into the data file and
//!   checkpoints before anything else; a read-only handle holds their
//!   records in its overlay (it cannot write);
//! - the file is mapped only after it is known to be at least as long as the
//!   header's layout, so the map lies inside the file;
//! - a handle starts with `flushed = len =` the committed count and an empty
//!   staging buffer; a writer then attaches to the coordination file, taking
//!   over what a dead writer left there.

use super::grow::map_grow_error;
use super::options::{check_chunk_size, check_log_size};
use super::overlay::Overlay;
use super::wal::{self, Log};
use super::{Access, Options, RawStore};
use crate::coord::Coord;
use crate::error::{Error, Result};
use crate::fileio::{read_exact_at, sync_dir, write_all_at};
use crate::format::wal::{crc_entries, record_entries};
use crate::format::{
    choose_slot, decode_list, file_len_for_records, growth_unit, Header, Layout, Packing,
    SlotError, FLAG_APPEND_ONLY, FLAG_CHECKED, FORMAT_VERSION, LIST_CARRIED, PAGE_SIZE,
    SCHEMA_OFFSET, SLOT_OFFSETS,
};
use crate::schema::Schema;
use crate::sys;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;
use std::time::Instant;

fn lock(file: &File, path: &Path, access: Access, wait: bool) -> Result<()> {
    let kind = match access {
        Access::Write => sys::LockKind::Exclusive,
        Access::ReadOnly => sys::LockKind::Shared,
    };
    let r = if wait {
        sys::lock(file, kind).map_err(TryLockError::Error)
    } else {
        sys::try_lock(file, kind)
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

/// What a file type is, for [`Error::NotRegularFile`].
fn kind_name(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_char_device() {
            return "a character device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

/// Opens a store's data file (`write`: read-write) for every kind of
/// handle (writer, read-only, reader), refusing at once anything that is
/// not a regular file with [`Error::NotRegularFile`].
///
/// The open uses `O_NONBLOCK`: opening a FIFO without one blocks until a
/// writer appears, possibly forever. On a regular file the flag changes
/// nothing (reads and writes of regular files never return `EAGAIN`, and
/// `flock` ignores it), so it stays set once the type is checked.
pub(crate) fn open_data_file(path: &Path, write: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = match o.open(path) {
        Ok(f) => f,
        Err(e) => {
            // A socket refuses the open (ENXIO), a directory a read-write
            // one (EISDIR): name what is there rather than the errno.
            if e.kind() != io::ErrorKind::NotFound {
                if let Ok(m) = std::fs::metadata(path) {
                    if !m.is_file() {
                        return Err(Error::NotRegularFile {
                            path: path.into(),
                            kind: kind_name(&m.file_type()),
                        });
                    }
                }
            }
            return Err(map_open_error(path, e));
        }
    };
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(Error::NotRegularFile {
            path: path.into(),
            kind: kind_name(&meta.file_type()),
        });
    }
    Ok(file)
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

    pub(super) fn create_file(
        path: &Path,
        opts: &Options,
        schema: Option<&Schema>,
    ) -> Result<RawStore> {
        let span = tracing::info_span!("recmap.create", path = %path.display());
        let _g = span.enter();
        let t0 = Instant::now();
        let schema = schema.ok_or(Error::InvalidOption {
            option: "schema",
            reason: "a schema is required to create a store".into(),
        })?;
        schema.validate()?;
        check_chunk_size(opts.chunk_size)?;
        check_log_size(opts.log_size)?;
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
        let file_len = file_len_for_records(
            packing,
            schema_len,
            growth_unit(opts.chunk_size),
            opts.initial_capacity,
        )
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
                version: FORMAT_VERSION,
                header_seq: 1,
                store_id: super::checkpoint::new_store_id(),
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
            // One step, never two names (on Windows a name removed while a
            // handle is open may stay until it closes: a second link would
            // make readers refuse the file).
            match sys::rename_noreplace(&tmp, path) {
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
        store.log_limit = opts.log_size;
        store.set_access(opts.access);
        if let Err(e) = store.attach_coord(true).and_then(|()| store.recover()) {
            // A store this call made but cannot write (no room for its log,
            // a bad file in the log's place): take it back.
            drop(store);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(store)
    }

    /// Writers: opens the log and replays the commits it holds past the
    /// header (a crash left them), then checkpoints so the data file holds
    /// them itself. Publishes the recovered state to readers.
    fn recover(&mut self) -> Result<()> {
        let log = Log::open_for_write(&self.path, &self.file, self.log_limit)?;
        self.observe(super::IoEvent::LogSetLen { len: log.file_len });
        let header = self.header;
        let record_size = self.layout.packing.record_size;
        let t0 = Instant::now();
        // The last image of every record the log's commits hold, gathered
        // before anything is written: a corrupt frame after good commits
        // fails the open with nothing replayed.
        let mut images = Overlay::new(self.layout.packing);
        let mut crcs = BTreeMap::new();
        let replay = wal::scan(&log.file, &log.path, &header, |h, b| {
            for (i, rec) in record_entries(h, b, record_size) {
                images.set(i, rec);
            }
            crcs.extend(crc_entries(h, b));
            Ok(())
        })?;
        replay.lost_header(&log.path, &header)?;
        crate::sys::drop_cache(&log.file);
        self.log = Some(log);
        // Write the images that differ from the file (after a kill the page
        // cache usually holds them all already), all in one stripe section
        // of the last commit, so every stripe ends at exactly 2g and
        // snapshots of it are served.
        let size = record_size as usize;
        let differ: Vec<u64> = images
            .iter()
            .filter(|&(i, rec)| {
                // Frames index records below the header's capacity, which
                // the map covers (checked by the scan).
                let at = self.layout.record_file_offset(i) as usize;
                self.map.get(at..at + size) != Some(rec)
            })
            .map(|(i, _)| i)
            .collect();
        let stripes = self.begin_stripes(differ.iter().copied(), replay.generation);
        let mut written = Ok(());
        for &i in &differ {
            let rec = images.get(i).expect("listed");
            written = self.write(rec, self.layout.record_file_offset(i));
            if written.is_err() {
                break;
            }
        }
        self.end_stripes(stripes);
        written?;
        if let Some(c) = &self.coord {
            let closed = c.close_busy_stripes();
            if closed > 0 {
                tracing::warn!(
                    stripes = closed,
                    "recovered: closed stripes a dead writer left busy"
                );
            }
        }
        self.pending_crcs.extend(crcs);
        if replay.commits == 0 {
            self.announce();
            return Ok(());
        }
        let span = tracing::info_span!("recmap.recover", path = %self.path.display());
        let _g = span.enter();
        self.header.generation = replay.generation;
        self.header.record_count = replay.record_count;
        self.header.tail_crc = replay.tail_crc;
        self.len = replay.record_count;
        self.flushed = self.len;
        self.sync_window();
        let log = self.log_mut();
        log.end = replay.end;
        log.commits = replay.commits;
        self.checkpoint()?;
        self.bytes_since_commit = 0;
        tracing::warn!(
            commits = replay.commits,
            generation = replay.generation,
            records = replay.record_count,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "recovered: replayed commits the log held past the data file's header"
        );
        Ok(())
    }

    /// Read-only handles: holds the records of the commits in the log (no
    /// writer has replayed them; this handle cannot) in the overlay.
    fn overlay_log(&mut self) -> Result<()> {
        let Some((file, path)) = Log::open_for_read(&self.path, &self.file)? else {
            return Ok(());
        };
        let header = self.header;
        let record_size = self.layout.packing.record_size;
        let mut overlay = Overlay::new(self.layout.packing);
        let mut crcs = BTreeMap::new();
        let replay = wal::scan(&file, &path, &header, |h, b| {
            for (i, rec) in record_entries(h, b, record_size) {
                overlay.set(i, rec);
            }
            crcs.extend(crc_entries(h, b));
            Ok(())
        })?;
        replay.lost_header(&path, &header)?;
        if replay.commits > 0 {
            tracing::info!(
                commits = replay.commits,
                generation = replay.generation,
                "reading commits from a log no writer has replayed"
            );
            self.header.generation = replay.generation;
            self.header.record_count = replay.record_count;
            self.header.tail_crc = replay.tail_crc;
            self.len = replay.record_count;
            self.flushed = self.len;
            self.overlay = overlay;
            self.pending_crcs.extend(crcs);
            self.sync_window();
        }
        Ok(())
    }

    /// Writers open the coordination file, clear what a dead writer left in
    /// it, and publish their generation and high-water mark there.
    fn attach_coord(&mut self, created: bool) -> Result<()> {
        let coord = Coord::open(&self.path, &self.file, true)?;
        if created {
            // A coordination file left by an older store at this path.
            coord.reset_high_water(0);
        }
        if let Some(pid) = coord.adopt(self.header.record_count) {
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
            overlay: Overlay::new(header.layout.packing),
            dirty_groups: BTreeSet::new(),
            bytes_since_commit: 0,
            poisoned: None,
            fail_sync_in: None,
            observer: None,
            coord: None,
            high_water: 0,
            pending_crcs: Default::default(),
            append_crcs: BTreeMap::new(),
            log: None,
            log_limit: wal::DEFAULT_LOG_SIZE,
            pattern: crate::access::AccessPattern::Random,
            stream: crate::stream::Stream::new(),
            anchor: None,
        };
        s.sync_window();
        s
    }

    pub(super) fn open_existing(
        path: &Path,
        access: Access,
        opts: &Options,
        want: Option<&Schema>,
    ) -> Result<RawStore> {
        let span = tracing::info_span!("recmap.open", path = %path.display(), read_only = access == Access::ReadOnly);
        let _g = span.enter();
        let t0 = Instant::now();
        let file = open_data_file(path, access == Access::Write)?;
        // Lock before reading the header, so no writer commits in between.
        lock(&file, path, access, opts.wait_for_lock)?;
        let (header, list, slots, chosen) = read_header(&file, path, 0)?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        let truncated = file_len < header.layout.file_len();
        // Salvage needs a writer and the header page and schema block intact.
        let salvage =
            opts.salvage && access == Access::Write && file_len >= header.layout.data_offset;
        if truncated && !salvage {
            return Err(Error::Truncated {
                path: path.into(),
                expected: header.layout.file_len(),
                actual: file_len,
            });
        }
        let schema = read_schema(&file, path, &header)?;
        if truncated {
            // Salvage: give the file back the length its header needs, so
            // the map lies inside it. The lost bytes read as zeros and fail
            // their checksums; repair keeps the verified prefix.
            file.set_len(header.layout.file_len())
                .and_then(|()| file.sync_all())
                .map_err(|e| map_grow_error(path, header.layout.file_len(), e))?;
            tracing::warn!(
                expected = header.layout.file_len(),
                actual = file_len,
                "salvage: the file was truncated by another program; extended back \
                 (the lost pages read as zeros and fail verification)"
            );
        }
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
        // A version-1 checked commit's list overrides the table until the
        // upgrade writes it there.
        let full = header.record_count / header.layout.packing.records_per_group;
        store.pending_crcs = list
            .iter()
            .map(|&(g, crc)| (g & !LIST_CARRIED, crc))
            .filter(|&(g, _)| g < full)
            .collect();
        store.set_access(opts.access);
        if access == Access::Write {
            check_log_size(opts.log_size)?;
            store.log_limit = opts.log_size;
            store.attach_coord(false)?;
            store.recover()?;
        } else {
            store.overlay_log()?;
        }
        Ok(store)
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

/// Bytes of data pages open reads to confirm a version-1 checked commit, at
/// most (`docs/durability.md`, "What open reads"): 160 groups of one page,
/// the largest list a version-1 writer made for records up to 4 KiB.
pub(crate) const MAX_CONFIRM_BYTES: u64 = 160 * PAGE_SIZE;

/// Checks that a checked commit reached the disk whole: every group it
/// lists as its own (not carried) holds committed bytes that hash to the
/// listed checksum. Returns the first group that does not (or cannot be
/// read).
///
/// Reads at most `MAX_CONFIRM_BYTES`: the groups are checked in list order
/// while their committed bytes fit in that budget, and the rest (a list of
/// large records: 160 groups of 16 MiB records would be 2.5 GiB) are
/// accepted unread, with a warning; `verify` checks them against the
/// same checksums, so damage there is still found, not blessed.
fn check_commit(file: &File, h: &Header, list: &[(u64, u32)]) -> std::result::Result<(), u64> {
    let p = h.layout.packing;
    let mut budget = MAX_CONFIRM_BYTES;
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    let mut unchecked = 0u64;
    for &(g, crc) in list.iter().filter(|e| e.0 & LIST_CARRIED == 0) {
        let (first, end) = p.group_records(g, h.record_count);
        let len = (end - first) * p.record_size;
        if len > budget {
            unchecked += 1;
            continue;
        }
        budget -= len;
        let start = h.layout.data_offset + g * p.group_bytes();
        let mut hasher = crc32fast::Hasher::new();
        let mut at = 0;
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            read_exact_at(file, &mut buf[..n], start + at).map_err(|_| g)?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        if hasher.finalize() != crc {
            return Err(g);
        }
    }
    if unchecked > 0 {
        tracing::warn!(
            generation = h.generation,
            unchecked,
            budget = MAX_CONFIRM_BYTES,
            "a version-1 checked commit lists more data than open reads to confirm it; \
             accepted unread (verify checks those groups)"
        );
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
