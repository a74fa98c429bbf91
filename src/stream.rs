//! Bulk reads of records the page cache does not hold: `pread` through a
//! second open file description of the data file, with the sequential
//! read-ahead hint, instead of copying through the map.
//!
//! Why: a mapped copy of cold pages can only fault, and the fault paths keep
//! fewer reads in flight than the read-ahead `pread` gets (docs/benchmarks.md,
//! "Cold bulk reads"). A second description because read-ahead state and the
//! `Random` hint (which turns `pread` read-ahead off) belong to a file
//! description, and the handle's own one carries its access pattern.
//!
//! Invariants:
//! - this module only reads the data file; whether a copy it made may be
//!   handed out is the caller's decision (a reader checks its apply
//!   sequence, a writer owns the only changes);
//! - a read that streamed streams to its end, and so does the next read
//!   that starts where it ended: read-ahead makes the pages ahead of a
//!   `pread` look cached (`mincore`) while they are still being read, and
//!   copying those through the map would wait on them a fault at a time.

use crate::error::{Error, Result};
use crate::format::{Layout, Packing};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Bulk reads of at least this many bytes stream when their first chunk is
/// not wholly cached.
pub(crate) const STREAM_MIN: u64 = 64 << 10;
/// Bytes per `pread` (whole groups); a reader checks each chunk on its own.
pub(crate) const STREAM_CHUNK: u64 = 1 << 20;

/// A handle's streaming state.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The second description, opened on first use; `None` inside where
    /// that cannot be done (not Linux, or the open failed).
    file: OnceLock<Option<File>>,
    /// The record the last streamed read ended at (`u64::MAX`: none).
    to: AtomicU64,
}

impl Stream {
    pub(crate) fn new() -> Stream {
        Stream {
            file: OnceLock::new(),
            to: AtomicU64::new(u64::MAX),
        }
    }

    /// Records per chunk of `p`'s layout.
    pub(crate) fn chunk(p: Packing) -> u64 {
        (STREAM_CHUNK / p.group_bytes()).max(1) * p.records_per_group
    }

    /// Whether a bulk read of `n` records of `size` bytes from `first`
    /// should stream: large enough, and continuing a streamed read or
    /// starting where the cache lacks a page (`first_cached` says).
    pub(crate) fn should(
        &self,
        first: u64,
        n: u64,
        size: u64,
        first_cached: impl FnOnce() -> bool,
    ) -> bool {
        n.saturating_mul(size) >= STREAM_MIN
            && (self.to.load(Ordering::Relaxed) == first || !first_cached())
    }

    /// Notes that a streamed read reached `end` (`u64::MAX`: it stopped).
    pub(crate) fn reached(&self, end: u64) {
        self.to.store(end, Ordering::Relaxed);
    }

    /// Reads records `[first, end)` of `data`'s file (laid out as `layout`
    /// says) into `out`. `Ok(false)` if there is no
    /// second description to read through (the caller copies from the map).
    pub(crate) fn read(
        &self,
        data: &File,
        path: &Path,
        layout: &Layout,
        first: u64,
        end: u64,
        out: &mut [u8],
    ) -> Result<bool> {
        let Some(file) = self
            .file
            .get_or_init(|| crate::sys::reopen_sequential(data))
            .as_ref()
        else {
            return Ok(false);
        };
        let p = layout.packing;
        let read = |i: u64, buf: &mut [u8]| {
            let at = layout.data_offset + p.record_offset(i);
            crate::fileio::read_exact_at(file, buf, at).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::Truncated {
                        path: path.to_path_buf(),
                        expected: at + buf.len() as u64,
                        actual: file.metadata().map_or(0, |m| m.len()),
                    }
                } else {
                    Error::io("read", path, e)
                }
            })
        };
        if p.is_dense() {
            read(first, out)?;
            return Ok(true);
        }
        // Records are contiguous within a group, its padding after them.
        let size = p.record_size as usize;
        let mut i = first;
        while i < end {
            let g_end = ((p.group_of(i) + 1) * p.records_per_group).min(end);
            let k = (i - first) as usize * size;
            read(i, &mut out[k..k + (g_end - i) as usize * size])?;
            i = g_end;
        }
        Ok(true)
    }
}
