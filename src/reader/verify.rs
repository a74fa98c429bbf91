//! Page checksums through a reader, beside a live writer: [`PageSums`], the
//! checksum each committed page of one snapshot must match, and
//! [`RawSnapshot::read_group_checked`], which copies a page's records as
//! of the snapshot and checks them against it. Also [`RawReader::info`] and
//! [`RawReader::writer_pid`], for tools that describe a store a writer
//! holds (a read-only handle cannot open it then).
//!
//! Invariant: a page is reported damaged only if bytes that belong to the
//! snapshot's commit `G` differ from the checksum commit `G` gave them.
//! Where that checksum lives (`docs/format.md`, `docs/durability.md`):
//! - the partly filled last group of `G`: `G`'s `tail_crc`, in the header
//!   if the newest header is `G`'s, else in `G`'s log frame;
//! - a full group that a commit after the newest header `H` (up to `G`)
//!   changed or filled: that commit's checksum entry in the log;
//! - any other full group: `H`'s checksum table.
//!
//! So the log is scanned from `H` to `G`, and the scan counts only if the
//! newest header is still `H` after it (a checkpoint in between recycles
//! the log). If `H` is newer than `G` (a checkpoint since the snapshot),
//! the table holds the checksum of every full group no commit after `G`
//! changed, and `G`'s tail checksum is gone: the sums fail with
//! `SnapshotExpired` and the caller takes a newer snapshot. Table entries
//! are read before the records they check; the records are then copied
//! under the snapshot's stripe check, so a group that a later commit
//! changed (and whose entry a later checkpoint rewrote) fails with
//! `SnapshotExpired` instead of being compared with a newer checksum. The
//! table moves when the file grows, and its old place is reused only after
//! the header naming the new one is written: entries count only if the
//! newest header, read after them, still names the table they were read
//! from.

use super::RawReader;
use crate::error::{Error, Result};
use crate::fileio::read_exact_at;
use crate::format::wal::crc_entries;
use crate::format::{Header, FORMAT_VERSION, PAGE_SIZE};
use crate::schema::Schema;
use crate::snapshot::RawSnapshot;
use crate::store::wal::{scan, Log};
use crate::store::{read_header, Info, Problem};
use std::collections::BTreeMap;
use std::path::Path;

/// Attempts at a stable view of the header around a log scan or a read of
/// the checksum table.
const TRIES: u32 = 100;
/// Checksum entries read at a time (64 KiB).
const TABLE_CHUNK: u64 = 16 << 10;

/// The checksums of one snapshot's committed pages, from
/// [`RawSnapshot::page_sums`]; used by [`RawSnapshot::read_group_checked`].
#[derive(Clone, Debug)]
pub struct PageSums {
    generation: u64,
    records: u64,
    /// The newest header when last read: its table holds the checksums of
    /// full groups not in `overrides`.
    header: Header,
    /// Checksums of full groups that commits after `header`, up to the
    /// snapshot's, changed or filled.
    overrides: BTreeMap<u64, u32>,
    /// The snapshot commit's checksum of its partly filled last group.
    tail_crc: u32,
    /// Table entries of groups `[table_first, table_first + table.len())`.
    table_first: u64,
    table: Vec<u32>,
}

impl PageSums {
    /// The commit these checksums belong to.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Log commits after the newest header, up to the snapshot's, whose
    /// checksums were gathered (0 when the header is the snapshot's).
    pub fn log_groups(&self) -> usize {
        self.overrides.len()
    }

    /// The checksum commit `generation` gave group `g` (committed).
    fn expected(&mut self, r: &RawReader, g: u64) -> Result<u32> {
        let p = self.header.layout.packing;
        let (first, end) = p.group_records(g, self.records);
        if end - first < p.records_per_group {
            return Ok(self.tail_crc);
        }
        if let Some(&c) = self.overrides.get(&g) {
            return Ok(c);
        }
        let have = self.table_first..self.table_first + self.table.len() as u64;
        if !have.contains(&g) {
            self.load_table(r, g)?;
        }
        Ok(self.table[(g - self.table_first) as usize])
    }

    /// Reads table entries from group `g` on, where the newest header says
    /// the table is, checking after the read that it still says so.
    fn load_table(&mut self, r: &RawReader, g: u64) -> Result<()> {
        let full = self.records / self.header.layout.packing.records_per_group;
        let n = TABLE_CHUNK.min(full - g);
        let mut buf = vec![0u8; (n * 4) as usize];
        for _ in 0..TRIES {
            let layout = self.header.layout;
            if g + n > layout.capacity_groups {
                return Err(Error::NotRecmap {
                    path: r.path.clone(),
                    reason: format!(
                        "{} committed records do not fit the header's capacity",
                        self.records
                    ),
                });
            }
            read_exact_at(&r.file, &mut buf, layout.checksum_offset(g))
                .map_err(|e| Error::io("read checksum table", &r.path, e))?;
            let (now, ..) = read_header(&r.file, &r.path, u64::MAX)?;
            if now.layout.table_offset == layout.table_offset {
                self.table_first = g;
                self.table = buf
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                return Ok(());
            }
            // The file grew and the table moved: read it where it is now
            // (complete there before that header was written).
            self.header = now;
        }
        Err(Error::SnapshotExpired {
            generation: self.generation,
            index: g * self.header.layout.packing.records_per_group,
        })
    }
}

impl<'r> RawSnapshot<'r> {
    /// The stored record layout.
    pub fn schema(&self) -> &'r Schema {
        self.reader.schema()
    }
    /// The data file's path.
    pub fn path(&self) -> &'r Path {
        self.reader.path()
    }

    /// Gathers the checksum of every committed page of this snapshot (see
    /// the module doc): reads the newest header and the log commits after
    /// it. Fails with [`Error::SnapshotExpired`] when a checkpoint since
    /// the snapshot made its checksums unavailable: take a newer snapshot.
    pub fn page_sums(&self) -> Result<PageSums> {
        let r = self.reader;
        let (generation, records) = (self.generation(), self.len());
        let rpg = r.packing().records_per_group;
        let expired = Error::SnapshotExpired {
            generation,
            index: records / rpg * rpg,
        };
        for _ in 0..TRIES {
            let (h, ..) = read_header(&r.file, &r.path, u64::MAX)?;
            if h.version != FORMAT_VERSION {
                return Err(Error::InvalidOption {
                    option: "page checks",
                    reason: format!(
                        "{}: a version-{} file's checksums cannot be checked beside its writer; \
                         check it once the writer has committed or closed",
                        r.path.display(),
                        h.version
                    ),
                });
            }
            let mut overrides = BTreeMap::new();
            let mut tail = None;
            // Past the header the checksums come from the log: its path
            // (None: no log there), the last generation it holds, and
            // whether its first frame shows a lost header.
            let mut from_log = None;
            if h.generation == generation {
                tail = Some(h.tail_crc);
            } else if h.generation > generation {
                if !records.is_multiple_of(rpg) {
                    return Err(expired);
                }
                tail = Some(0);
            } else if let Some((log, log_path)) = Log::open_for_read(&r.path, &r.file)? {
                let replay = scan(&log, &log_path, &h, |f, b| {
                    if f.generation <= generation {
                        overrides.extend(crc_entries(f, b));
                        if f.generation == generation {
                            tail = Some(f.tail_crc);
                        }
                    }
                    Ok(())
                })?;
                let lost = replay.lost_header(&log_path, &h);
                from_log = Some((Some(log_path), Some(replay.generation), lost));
            } else {
                from_log = Some((None, None, Ok(())));
            }
            let (now, ..) = read_header(&r.file, &r.path, u64::MAX)?;
            if now.header_seq != h.header_seq {
                continue;
            }
            if let Some((log, last, lost)) = from_log {
                // Frames of a later cycle under an unchanged header: a lost
                // header, not a checkpoint in between.
                lost?;
                if tail.is_none() {
                    // No checkpoint came between, and the writer published
                    // this generation only once its frames were durable in
                    // its log: the log at the path is not the writer's
                    // (removed, or replaced, under it; its next commit
                    // starts a new one).
                    let log = log.unwrap_or_else(|| {
                        crate::store::wal::store_log_path(&r.path)
                            .unwrap_or_else(|_| crate::store::wal::log_path(&r.path))
                    });
                    let holds = match last {
                        Some(g) => format!("this log holds commits up to {g} only"),
                        None => "there is no log".into(),
                    };
                    return Err(Error::BadCoordination {
                        path: log,
                        reason: format!(
                            "the writer published commit {generation}, but {holds}: it was removed \
                             or replaced under the writer (whose next commit checkpoints and starts \
                             a new log); read again after that"
                        ),
                    });
                }
            }
            if let Some(tail_crc) = tail {
                return Ok(PageSums {
                    generation,
                    records,
                    header: h,
                    overrides,
                    tail_crc,
                    table_first: 0,
                    table: Vec::new(),
                });
            }
        }
        Err(expired)
    }

    /// Copies the committed records of group `g` (a data page for records
    /// up to 4 KiB) as of the snapshot into `buf` (resized to them) and
    /// checks them against the checksum the snapshot's commit gave them:
    /// `Ok(None)` if they match, `Ok(Some(problem))` if not (damage: the
    /// bytes are the commit's), [`Error::SnapshotExpired`] if a later
    /// commit changed the page. `sums` must be this snapshot's.
    pub fn read_group_checked(
        &self,
        sums: &mut PageSums,
        g: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Problem>> {
        let r = self.reader;
        if sums.generation != self.generation() || sums.records != self.len() {
            return Err(Error::InvalidOption {
                option: "sums",
                reason: format!(
                    "checksums of generation {}, snapshot of generation {}",
                    sums.generation,
                    self.generation()
                ),
            });
        }
        let p = r.packing();
        let (first, end) = p.group_records(g, self.len());
        buf.clear();
        if first >= end {
            return Ok(None);
        }
        buf.resize(((end - first) * p.record_size) as usize, 0);
        // The stored checksum first, then the records under the stripe
        // check (see the module doc).
        let expected = sums.expected(r, g)?;
        self.read_range_bytes(first, buf)?;
        let got = crc32fast::hash(buf);
        if got == expected {
            return Ok(None);
        }
        let data_offset = r.header.layout.data_offset;
        Ok(Some(Problem::PageChecksum {
            group: g,
            first_page: (data_offset + g * p.group_bytes()) / PAGE_SIZE,
            pages: p.pages_per_group,
            first_record: first,
            end_record: end,
            expected,
            got,
        }))
    }
}

impl RawReader {
    /// The store's numbers as of the adopted commit (`records` and
    /// `committed_records` are both its record count).
    pub fn info(&self) -> Info {
        let h = &self.header;
        let l = h.layout;
        Info {
            path: self.path.clone(),
            format_version: h.version,
            record_size: self.schema.record_size,
            record_align: self.schema.record_align,
            records_per_page: l.packing.records_per_group,
            pages_per_group: l.packing.pages_per_group,
            records: h.record_count,
            committed_records: h.record_count,
            generation: h.generation,
            capacity: l.capacity(),
            chunk_size: h.chunk_size,
            file_size: self
                .file
                .metadata()
                .map(|m| m.len())
                .unwrap_or(l.file_len()),
            data_offset: l.data_offset,
            table_offset: l.table_offset,
            schema: self.schema.clone(),
            append_only: h.flags & crate::format::FLAG_APPEND_ONLY != 0,
        }
    }

    /// The process id of the writer holding the store now, if one does
    /// (the pid it recorded; `Some(0)` if it recorded none yet).
    pub fn writer_pid(&self) -> Option<u64> {
        self.writer_alive().then(|| self.coord.writer_pid())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Problem, RawReader, RawStore, Schema};

    fn schema() -> Schema {
        Schema::parse("a:u64,b:u64").unwrap()
    }

    fn rec(i: u64, v: u64) -> Vec<u8> {
        [i.to_le_bytes(), v.to_le_bytes()].concat()
    }

    /// Checks every group of a fresh snapshot; returns the problems.
    fn check_all(r: &mut RawReader) -> Vec<Problem> {
        let snap = r.snapshot().unwrap();
        let mut sums = snap.page_sums().unwrap();
        let p = r_packing(&snap);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for g in 0..snap.len().div_ceil(p) {
            if let Some(pr) = snap.read_group_checked(&mut sums, g, &mut buf).unwrap() {
                out.push(pr);
            }
        }
        out
    }

    fn r_packing(s: &crate::RawSnapshot<'_>) -> u64 {
        s.reader.packing().records_per_group
    }

    /// Beside a live writer: checksums from the table, from log commits
    /// since the last checkpoint (appends and in-place updates), the tail
    /// from the header or the log; uncommitted changes are not seen; real
    /// damage is found.
    #[cfg(unix)]
    #[test]
    fn sums_follow_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.rmap");
        let mut w = RawStore::create(&path, &schema()).unwrap();
        for i in 0..1000 {
            w.push(&rec(i, i)).unwrap();
        }
        w.commit().unwrap();
        w.checkpoint().unwrap();
        let mut r = RawReader::open(&path).unwrap();
        assert!(r.writer_pid().is_some());
        assert_eq!(r.info().committed_records, 1000);
        assert!(check_all(&mut r).is_empty(), "from the table");
        // Commits in the log only: an update of a full page, appends that
        // fill the tail page and start another.
        w.set(3, &rec(3, 33)).unwrap();
        for i in 1000..1300 {
            w.push(&rec(i, i)).unwrap();
        }
        w.commit().unwrap();
        w.set(1299, &rec(1299, 7)).unwrap();
        w.commit().unwrap();
        // Uncommitted: neither seen nor counted.
        w.set(5, &rec(5, 55)).unwrap();
        w.push(&rec(1300, 0)).unwrap();
        {
            let snap = r.snapshot().unwrap();
            assert_eq!(snap.len(), 1300);
            let sums = snap.page_sums().unwrap();
            assert!(sums.log_groups() > 0, "checksums from the log");
        }
        assert!(check_all(&mut r).is_empty(), "from the log");
        w.rollback().unwrap();
        w.checkpoint().unwrap();
        assert!(check_all(&mut r).is_empty(), "after a checkpoint");
        // Damage behind the writer's back in a committed page.
        drop(r);
        let g = 2u64;
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let info = w.info();
            f.write_all_at(&[0xff], info.data_offset + g * 4096 + 5)
                .unwrap();
        }
        let mut r = RawReader::open(&path).unwrap();
        let problems = check_all(&mut r);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(matches!(
            problems[0],
            Problem::PageChecksum { group: 2, .. }
        ));
    }

    /// A snapshot older than the newest header with a partly filled last
    /// page has lost its tail checksum: the sums expire; a new snapshot
    /// has them.
    #[test]
    fn a_checkpoint_after_the_snapshot_expires_its_sums() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.rmap");
        let mut w = RawStore::create(&path, &schema()).unwrap();
        for i in 0..10 {
            w.push(&rec(i, i)).unwrap();
        }
        w.commit().unwrap();
        let mut r = RawReader::open(&path).unwrap();
        let snap = r.snapshot().unwrap();
        w.push(&rec(10, 10)).unwrap();
        w.commit().unwrap();
        w.checkpoint().unwrap();
        assert!(matches!(
            snap.page_sums(),
            Err(crate::Error::SnapshotExpired { .. })
        ));
        assert!(check_all(&mut r).is_empty());
    }
}
