//! The write path's I/O: every write and sync an open handle makes goes
//! through `write` and `sync` here, which report to the test observer
//! ([`IoEvent`]) and poison the handle on failure.
//!
//! Invariants:
//! - nothing is written through the map: every write is a positional write
//!   on the descriptor, so only the blocks recmap wrote become dirty;
//! - records a reader may see (below the high-water mark) are written inside
//!   their stripes' seqlocks, marked with the commit that changes them, so
//!   a reader never accepts a torn copy and a snapshot never accepts a
//!   newer one;
//! - a failed write or sync poisons the handle for writes, forever: after an
//!   I/O error the kernel may have dropped the dirty pages and cleared the
//!   error, so a retried sync could succeed without the data on disk.

use super::RawStore;
use crate::error::{Error, Result};
use crate::fileio::write_all_at;
use std::io;

/// The largest piece `RawStore::write` hands the kernel at once, aligned
/// in the file: small enough that the folios it creates keep later small
/// updates cheap, large enough that bulk loads keep the raw rate. Every
/// later update of a loaded record walks the blocks of its folio (four at
/// 16 KiB, sixteen at 64 KiB), and a bulk load pays per piece. Measured in
/// benches/compare, builds of 4 to 64 KiB run alternately
/// (docs/benchmarks.md, "Scattered commits"): at 16 KiB a 100-record commit
/// costs 2.6–3.2× a single-record one (probe-normalised) against 3.3–3.8×
/// at 64 KiB, and the bulk load is 0.98–1.17× a raw `write()` against
/// 1.25–1.63× (0.88–0.92× against 0.94–0.99× on an earlier day's slower
/// disk); at 8 KiB and below the load falls under 0.9×.
pub(crate) const WRITE_PIECE: u64 = 16 * 1024;

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
    /// `len` bytes written to the log file at `offset` (not yet durable).
    LogWrite { offset: u64, len: u64 },
    /// Everything written to the log file before is durable.
    LogSync,
    /// The log file was set to `len` bytes (preallocated with zeros written,
    /// or shortened); durable with the next `LogSync`.
    LogSetLen { len: u64 },
}

impl RawStore {
    /// Every write of the write path goes through here: a positional write
    /// that poisons the handle on failure.
    ///
    /// Large writes are cut at multiples of [`WRITE_PIECE`] of the file
    /// offset: the page cache sizes a folio by the write that creates it,
    /// and a later small `pwrite` into a folio costs time in proportion to
    /// its size (ext4 walks every block of the folio, twice: a 64-byte
    /// update costs 2.3 µs of CPU in a 4 KiB folio, 7.5–8.8 µs at 256 KiB
    /// and 12 µs at 1 MiB, measured on this machine; docs/benchmarks.md),
    /// which commits of scattered updates pay once per record.
    pub(super) fn write(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let (mut rest, mut at) = (buf, offset);
        while !rest.is_empty() {
            let room = (WRITE_PIECE - at % WRITE_PIECE) as usize;
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            if let Err(e) = write_all_at(&self.file, piece, at) {
                return Err(self.poison("write", e));
            }
            (rest, at) = (tail, at + piece.len() as u64);
        }
        self.bytes_since_commit += buf.len() as u64;
        self.observe(IoEvent::Write {
            offset,
            len: buf.len() as u64,
        });
        Ok(())
    }

    /// Writes the bytes of records `[first, end)`, a change that belongs to
    /// commit `generation`. Records a reader may see (below the high-water
    /// mark) are written inside their stripes' seqlocks, which then carry
    /// that generation, so a reader never accepts a torn copy and a snapshot
    /// of an older commit never accepts the new bytes.
    pub(super) fn write_records(
        &mut self,
        buf: &[u8],
        offset: u64,
        first: u64,
        end: u64,
        generation: u64,
    ) -> Result<()> {
        let hw = self.high_water;
        let stripes = match &self.coord {
            Some(c) if first < hw => {
                let p = self.layout.packing;
                Some(c.begin_write(
                    p.group_of(first),
                    p.group_of(end.min(hw) - 1) + 1,
                    generation,
                ))
            }
            _ => None,
        };
        let r = self.write(buf, offset);
        if let (Some(c), Some(stripes)) = (&self.coord, stripes) {
            c.end_write(&stripes);
        }
        r
    }

    /// Opens, once each, the stripes of the records `indices` a reader may
    /// see (below the high-water mark), for writes that all belong to commit
    /// `generation`; the caller writes them with `write` and then calls
    /// `end_stripes`.
    pub(super) fn begin_stripes(
        &self,
        indices: impl Iterator<Item = u64>,
        generation: u64,
    ) -> Option<Vec<u64>> {
        let c = self.coord.as_ref()?;
        let (hw, p) = (self.high_water, self.layout.packing);
        let groups: Vec<u64> = indices.filter(|&i| i < hw).map(|i| p.group_of(i)).collect();
        (!groups.is_empty()).then(|| c.begin_write_groups(groups, generation))
    }

    /// Closes the stripes `begin_stripes` opened.
    pub(super) fn end_stripes(&self, stripes: Option<Vec<u64>>) {
        if let (Some(c), Some(stripes)) = (&self.coord, stripes) {
            c.end_write(&stripes);
        }
    }

    /// Writes `buf` at `offset` of the log file; poisons the handle on failure.
    pub(super) fn log_write(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let log = self.log.as_ref().expect("writers have a log");
        if let Err(e) = write_all_at(&log.file, buf, offset) {
            return Err(self.poison("write log", e));
        }
        self.bytes_since_commit += buf.len() as u64;
        self.observe(IoEvent::LogWrite {
            offset,
            len: buf.len() as u64,
        });
        Ok(())
    }

    /// Makes the log file durable (`fdatasync`, which also covers a changed
    /// length); poisons the handle on failure. Shares the sync-failure test
    /// hook with `sync`.
    pub(super) fn log_sync(&mut self) -> Result<()> {
        let r = match self.fail_sync_in {
            Some(0) => {
                self.fail_sync_in = None;
                Err(io::Error::other("injected sync failure (test hook)"))
            }
            Some(n) => {
                self.fail_sync_in = Some(n - 1);
                self.log
                    .as_ref()
                    .expect("writers have a log")
                    .file
                    .sync_data()
            }
            None => self
                .log
                .as_ref()
                .expect("writers have a log")
                .file
                .sync_data(),
        };
        if let Err(e) = r {
            return Err(self.poison("fsync log", e));
        }
        self.observe(IoEvent::LogSync);
        Ok(())
    }

    /// Every sync of the write path goes through here (`all`: also metadata,
    /// for a changed length). A failure poisons the handle.
    pub(super) fn sync(&mut self, all: bool) -> Result<()> {
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

    pub(super) fn observe(&mut self, event: IoEvent) {
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
    pub(super) fn poison(&mut self, op: &'static str, e: io::Error) -> Error {
        // The error names the file the operation was on: the log for the
        // log's operations, else the data file.
        let path = match (op.ends_with(" log"), &self.log) {
            (true, Some(log)) => log.path.clone(),
            _ => self.path.clone(),
        };
        tracing::error!(op, error = %e, path = %path.display(), "write path failed; handle poisoned");
        self.poisoned = Some((op, e.to_string()));
        Error::io(op, &path, e)
    }
}
