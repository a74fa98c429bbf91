//! Commit: making every change since the last commit durable, atomically,
//! then visible. A commit is written to the log as one contiguous run of
//! frames and synced once; only then are its record images applied to the
//! data pages, its checksums remembered for the next checkpoint, and the
//! new state published to readers.
//!
//! Invariants:
//! - no byte of a committed record changes in the data file before the
//!   commit that changes it is durable in the log (its images are applied
//!   after the log sync, and replayed from the log after a crash);
//! - appends are either logged with the commit (small ones, still staged)
//!   or written to the data file past the committed count and synced
//!   before the commit's first frame (`FRAME_APPENDS_IN_PLACE`; bulk loads
//!   are not written twice);
//! - every group the commit changes gets its new checksum in the commit's
//!   frames (full groups) or as its `tail_crc` (the partly filled last one):
//!   a group only updates change gets it from its old checksum and the
//!   changed bytes, so a mismatch it had stays; any other is hashed from the
//!   bytes the commit makes committed, after its committed bytes were
//!   checked against the checksum they have;
//! - readers learn of a commit (generation, count) only after it is durable
//!   and applied (`announce`).

use super::wal::{GrowError, Log};
use super::{Access, RawStore};
use crate::error::{Error, Result};
use crate::format::wal::{CommitWriter, FrameHeader, FRAME_APPENDS_IN_PLACE};
use crate::format::PAGE_SIZE;
use std::time::{Duration, Instant};

/// CRC32 of `bytes` with a zero register and no final inversion: the linear
/// part of CRC32, `lin(a ^ b) = crc(a) ^ crc(b)` for `a`, `b` of one length.
/// A `crc32fast` hasher resumed from the CRC value `!0` has a zero register
/// (it resumes from the inverse of the value) and inverts at the end.
fn lin_crc(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!0);
    h.update(bytes);
    !h.finalize()
}

/// Appends of a commit up to this many bytes, all still staged, are logged
/// with it (one sync); larger ones are written in place and synced first.
const LOG_APPENDS_UP_TO: u64 = 256 << 10;

/// What a commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Generation of this commit (unchanged if there was nothing to commit).
    pub generation: u64,
    /// Committed record count after the commit.
    pub records: u64,
    /// Data pages (groups) whose contents this commit changed.
    pub pages: u64,
    /// Bytes written since the previous commit (log frames, appends, the
    /// applied images, and a checkpoint's if this commit made one).
    pub bytes: u64,
    /// Wall time of the commit.
    pub duration: Duration,
}

impl RawStore {
    /// CRC32 of the bytes of group `g`'s records below `count`, as this
    /// handle sees them (overlay, map, staging buffer).
    pub(super) fn group_crc(&self, g: u64, count: u64) -> u32 {
        let p = self.layout.packing;
        let (first, end) = p.group_records(g, count);
        if end - first == p.records_per_group {
            if let Some(&crc) = self.append_crcs.get(&g) {
                return crc;
            }
        }
        if end <= self.flushed {
            // All in the map: hash it around the overlay's images, one
            // ordered pass over the overlay (no lookup per run).
            let base = (self.layout.data_offset + g * p.group_bytes()) as usize;
            let at = |i: u64| base + ((i - first) * p.record_size) as usize;
            let mut h = crc32fast::Hasher::new();
            let mut next = first;
            for (i, image) in self.overlay.range(first..end) {
                h.update(&self.map[at(next)..at(i)]);
                h.update(image);
                next = i + 1;
            }
            h.update(&self.map[at(next)..at(end)]);
            return h.finalize();
        }
        let mut h = crc32fast::Hasher::new();
        for (_, b) in self.runs(first..end) {
            h.update(b);
        }
        h.finalize()
    }

    /// The checksum of full committed group `g` once `images` (the
    /// overlay's images of its records, in index order) replace theirs,
    /// from the checksum it has (`stored`, its `stored_crc`) and the
    /// changed bytes alone (`delta` is scratch space).
    ///
    /// For messages of one length, `crc(a) ^ crc(b) = lin(a ^ b)`, where
    /// `lin` is CRC32 with a zero register and no final inversion (see
    /// `lin_crc`); zero bytes leave a zero register zero, so `lin` of the
    /// difference starts at the first changed record. Starting from the
    /// stored checksum rather than `crc(old)` keeps `crc(page) ^ checksum`
    /// what it was: a page that matched matches, a damaged one stays
    /// reported (even where the update overwrote the damaged bytes), and
    /// nothing of the page is read but the updated records.
    pub(super) fn updated_group_crc<'a>(
        &self,
        g: u64,
        stored: u32,
        images: impl Iterator<Item = (u64, &'a [u8])>,
        delta: &mut Vec<u8>,
    ) -> u32 {
        let p = self.layout.packing;
        let committed = self.header.record_count;
        let (first, end) = p.group_records(g, committed);
        debug_assert_eq!(end - first, p.records_per_group, "a full group");
        debug_assert_eq!(stored, self.stored_crc(g, committed));
        let mut images = images.peekable();
        let Some(&(from, _)) = images.peek() else {
            return stored;
        };
        let rs = p.record_size as usize;
        delta.clear();
        delta.resize((end - from) as usize * rs, 0);
        for (i, image) in images {
            debug_assert!((first..end).contains(&i), "an image of the group");
            let at = (i - from) as usize * rs;
            let old = &self.map[self.layout.record_file_offset(i) as usize..][..rs];
            for ((d, o), n) in delta[at..at + rs].iter_mut().zip(old).zip(image) {
                *d = o ^ n;
            }
        }
        stored ^ lin_crc(delta)
    }

    /// The generation the next commit (or repair) gets; `InvalidOption`
    /// once the store has used the last one a header can carry, checked
    /// before anything is written.
    pub(super) fn next_generation(&self) -> Result<u64> {
        let generation = self.header.generation + 1;
        if generation > crate::format::MAX_GENERATION {
            return Err(crate::Error::InvalidOption {
                option: "generation",
                reason: format!(
                    "the store has used all {} generations",
                    crate::format::MAX_GENERATION
                ),
            });
        }
        Ok(generation)
    }

    /// Makes every change since the last commit durable and visible, all or
    /// nothing: after `Ok` it survives a crash; a crash before `Ok` leaves
    /// either this commit whole or none of it.
    ///
    /// After `Err`, the handle is poisoned for writes; reopen to continue
    /// from the last commit (or from this one, if its log write reached the
    /// disk before the failure).
    pub fn commit(&mut self) -> Result<CommitStats> {
        self.check_writable()?;
        let generation = self.header.generation + 1;
        let span = tracing::info_span!("recmap.commit", path = %self.path.display(), generation);
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
        self.next_generation()?;
        self.ensure_v2()?;
        let p = self.layout.packing;
        let rpg = p.records_per_group;
        let committed = self.header.record_count;
        let appended_bytes = (self.len - committed) * p.record_size;
        // Bulk appends go to the data file, synced before the log frame
        // that counts them; small ones ride in the frame.
        let in_place = self.flushed > committed || appended_bytes > LOG_APPENDS_UP_TO;
        if in_place {
            self.flush_stage()?;
            self.sync(false)?;
        }
        // Groups whose committed bytes change: updates plus every group the
        // appends touch.
        let mut touched: Vec<u64> = self.dirty_groups.iter().copied().collect();
        if self.len > committed {
            touched.extend(p.group_of(committed)..=p.group_of(self.len - 1));
            touched.sort_unstable();
            touched.dedup();
        }
        // Never bless damage. A group full before and after the commit (only
        // updates change it) gets its new checksum from its old one and the
        // changed bytes (`updated_group_crc`): the rest of its page is never
        // read, and any mismatch it had is carried over unchanged. Every
        // other group's checksum is recomputed from its bytes, so its
        // committed bytes (the partly filled last page appends go into)
        // must first match the checksum they have. Pages past the committed
        // records have none to check.
        let linear_below = committed / rpg;
        for &g in touched.iter().filter(|&&g| g >= linear_below) {
            self.check_committed_page(g)?;
        }
        // Load a byte of every record the updates replace, and the checksum
        // every group they change has, first, each in one tight pass: each
        // is a likely cache miss, and these loads overlap, where the work
        // per group below would wait for them one at a time.
        let mut first_bytes = 0u8;
        for (i, _) in self.overlay.iter() {
            first_bytes ^= self.map[self.layout.record_file_offset(i) as usize];
        }
        std::hint::black_box(first_bytes);
        let stored: Vec<u32> = touched
            .iter()
            .take_while(|&&g| g < linear_below)
            .map(|&g| self.stored_crc(g, committed))
            .collect();
        let full = self.len / rpg;
        let mut delta = Vec::new();
        // One ordered walk over the overlay hands each group its images
        // (`touched` is sorted), not a tree search per group.
        let crcs: Vec<(u64, u32)> = {
            let mut images = self.overlay.iter().peekable();
            touched
                .iter()
                .enumerate()
                .map(|(k, &g)| {
                    let crc = if let Some(&stored) = stored.get(k) {
                        let (first, end) = p.group_records(g, committed);
                        while images.next_if(|&(i, _)| i < first).is_some() {}
                        let mine = std::iter::from_fn(|| images.next_if(|&(i, _)| i < end));
                        self.updated_group_crc(g, stored, mine, &mut delta)
                    } else {
                        self.group_crc(g, self.len)
                    };
                    (g, crc)
                })
                .collect()
        };
        // A partly filled last group the commit does not touch keeps its
        // bytes and so its checksum: hashing it again would bless damage
        // in it that no check looked for.
        let tail_crc = match crcs.last() {
            _ if self.len.is_multiple_of(rpg) => 0,
            Some(&(g, crc)) if g == full => crc,
            _ => self.header.tail_crc,
        };
        let mut frame = FrameHeader {
            store_id: self.header.store_id,
            header_seq: self.header.header_seq,
            generation,
            record_count: self.len,
            prev_count: committed,
            tail_crc,
            flags: if in_place { FRAME_APPENDS_IN_PLACE } else { 0 },
            crc_entries: 0,
            record_entries: 0,
        };
        let own_full: Vec<(u64, u32)> = crcs.iter().copied().filter(|e| e.0 < full).collect();
        if self.log_unlinked() {
            self.replace_log()?;
            frame.header_seq = self.header.header_seq;
        }
        let mut buf = std::mem::take(&mut self.log_mut().buf);
        self.encode_commit(&mut buf, frame, &own_full, in_place);
        let (end, limit) = (self.log_mut().end, self.log_limit);
        let mut r = Ok(());
        if end > 0 && end + buf.len() as u64 > limit {
            // Fold the log in first; the frames then follow the new header.
            r = self.checkpoint();
            let frame = FrameHeader {
                header_seq: self.header.header_seq,
                ..frame
            };
            self.encode_commit(&mut buf, frame, &own_full, in_place);
        }
        let mut r = r.and_then(|()| self.log_commit(&mut buf));
        if matches!(r, Err(Error::NoSpace { .. } | Error::FileTooLarge { .. }))
            && self.log_mut().end > 0
        {
            tracing::info!(path = %self.path.display(), "the log cannot grow: checkpointing to reuse its room");
            // The log could not grow (nothing was written): fold it in and
            // use the room it already has.
            r = self.checkpoint().and_then(|()| {
                let frame = FrameHeader {
                    header_seq: self.header.header_seq,
                    ..frame
                };
                self.encode_commit(&mut buf, frame, &own_full, in_place);
                self.log_commit(&mut buf)
            });
        }
        self.log_mut().buf = buf;
        r?;
        // Durable. Apply: updates to their pages, logged appends past the
        // committed count; remember the checksums for the next checkpoint.
        // One seqlock section per stripe for all of them (see
        // `Coord::begin_write_groups`), so each changed stripe ends at 2g.
        let updates = std::mem::replace(&mut self.overlay, super::Overlay::new(p));
        let stripes = self.begin_stripes(updates.iter().map(|(i, _)| i), generation);
        let mut applied = Ok(());
        for (i, rec) in updates.iter() {
            applied = self.write(rec, self.layout.record_file_offset(i));
            if applied.is_err() {
                break;
            }
        }
        self.end_stripes(stripes);
        self.overlay = updates;
        self.overlay.clear();
        applied?;
        self.flush_stage()?;
        self.pending_crcs.extend(own_full);
        self.header.generation = generation;
        self.header.record_count = self.len;
        self.header.tail_crc = tail_crc;
        self.dirty_groups.clear();
        self.append_crcs.clear();
        self.sync_window();
        self.announce();
        let stats = CommitStats {
            generation,
            records: self.len,
            pages: touched.len() as u64 * p.pages_per_group,
            bytes: self.bytes_since_commit,
            duration: t0.elapsed(),
        };
        self.bytes_since_commit = 0;
        tracing::info!(
            records = stats.records,
            pages = stats.pages,
            bytes = stats.bytes,
            elapsed_us = stats.duration.as_micros() as u64,
            "committed"
        );
        // A commit larger than the log made it longer: fold it into the data
        // file now and give the room back.
        if self.log_mut().end > self.log_limit {
            self.checkpoint()?;
        }
        Ok(stats)
    }

    /// True if the log this writer holds has no name left: someone removed
    /// it, or renamed another file over it, at its path. Commits written
    /// to it would be found by no later open (a crash would lose them).
    fn log_unlinked(&self) -> bool {
        #[cfg(unix)]
        {
            // The link count alone (`sys::link_count`: a stat of the times
            // would make every later write dirty the log's inode).
            let log = self.log.as_ref().expect("writers have a log");
            crate::sys::link_count(&log.file).is_ok_and(|n| n == 0)
        }
        #[cfg(windows)]
        {
            // std opens files with delete sharing, so the log can be
            // deleted or renamed over while open; a file system that
            // reports the deletion as a link count of 0 is seen here.
            let log = self.log.as_ref().expect("writers have a log");
            crate::sys::file_identity(&log.file).is_ok_and(|(_, _, links)| links == 0)
        }
        #[cfg(not(any(unix, windows)))]
        {
            false
        }
    }

    /// After the log was removed or replaced under this writer: folds the
    /// commits it held into the data file (a checkpoint needs the data file
    /// alone) and opens a log at the path again, so later commits go where
    /// the next open looks. Nothing acknowledged is lost unless the process
    /// died between the removal and this commit.
    fn replace_log(&mut self) -> Result<()> {
        let path = self.log_mut().path.clone();
        // The log is found by the data file's name: if another file is at
        // that name now (the store renamed, or another store moved there),
        // a log opened by it is not this store's, and writing this store's
        // frames there would overwrite that store's commits.
        // The data file's canonical path, as the log's was made from it at
        // open (not `self.path` again, which may be relative to a working
        // directory changed since).
        let data = self.log_mut().data.clone();
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let here = std::fs::metadata(&data);
            let mine = self.file.metadata();
            let same = matches!((&here, &mine), (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino());
            if !same {
                return Err(self.poison(
                    "find log",
                    std::io::Error::other(
                        "the log was removed, and the data file's path no longer names this \
                         store's data file (renamed or replaced under the writer): no log at \
                         the path can be this store's",
                    ),
                ));
            }
        }
        tracing::warn!(log = %path.display(), "the log was removed or replaced at its path under this writer; checkpointing and starting a new log there");
        self.checkpoint()?;
        let buf = std::mem::take(&mut self.log_mut().buf);
        let mut log = Log::open_for_write(&data, &self.file, self.log_limit)?;
        log.buf = buf;
        self.observe(super::IoEvent::LogSetLen { len: log.file_len });
        self.log = Some(log);
        Ok(())
    }

    pub(super) fn log_mut(&mut self) -> &mut Log {
        self.log.as_mut().expect("writers have a log")
    }

    /// Encodes the frames of the commit described by `frame` into `buf`:
    /// checksum entries `crcs` (full groups), then the image of every
    /// updated record and, unless `in_place`, of every appended one.
    fn encode_commit(
        &self,
        buf: &mut Vec<u8>,
        frame: FrameHeader,
        crcs: &[(u64, u32)],
        in_place: bool,
    ) {
        buf.clear();
        let mut w = CommitWriter::new(buf, frame, self.layout.packing.record_size);
        for &(g, crc) in crcs {
            w.push_crc(g, crc);
        }
        // Updates are of committed records, appends of later ones: one
        // increasing sequence.
        for (i, rec) in self.overlay.iter() {
            w.push_record(i, rec);
        }
        if !in_place {
            for i in frame.prev_count..frame.record_count {
                w.push_record(i, self.get(i).expect("staged record"));
            }
        }
        w.finish();
    }

    /// Appends one commit's frames at the log's end and makes them durable
    /// (the caller made room); a commit larger than the log's limit extends
    /// the file.
    ///
    /// The write runs on with zeros to the next page boundary (the next
    /// commit's frames overwrite them; a scan stops at them): a write that
    /// ends inside a page the cache does not hold makes the kernel read that
    /// page from the disk first, a synchronous read inside every commit that
    /// reaches a new page (measured: 187 against 106 µs for a 9 KiB frame).
    /// The device writes whole pages either way.
    fn log_commit(&mut self, frames: &mut Vec<u8>) -> Result<()> {
        let n = frames.len() as u64;
        let at = self.log_mut().end;
        let padded = (at + n).next_multiple_of(PAGE_SIZE);
        let limit = self.log_limit;
        match self.log_mut().grow_for(padded, limit) {
            Ok(Some(len)) => self.observe(super::IoEvent::LogSetLen { len }),
            Ok(None) => {}
            // Nothing of the commit is written yet and the log is back at
            // its old length: a typed error, the handle still usable (the
            // caller checkpoints and tries the room the log has).
            Err(GrowError::Full(e)) => {
                let path = self.log_mut().path.clone();
                return Err(super::grow::map_grow_error(&path, padded, e));
            }
            Err(GrowError::Io(e)) => return Err(self.poison("grow log", e)),
        }
        frames.resize((padded - at) as usize, 0);
        let written = self.log_write(frames, at);
        frames.truncate(n as usize);
        written?;
        let log = self.log_mut();
        log.file_len = log.file_len.max(padded);
        self.log_sync()?;
        let log = self.log_mut();
        log.end = at + n;
        log.commits += 1;
        Ok(())
    }

    /// Commits, checkpoints and closes the handle, reporting any error
    /// (`Drop` cannot).
    pub fn close(mut self) -> Result<CommitStats> {
        if self.access == Access::ReadOnly {
            return Ok(CommitStats {
                generation: self.header.generation,
                records: self.len,
                ..Default::default()
            });
        }
        let stats = self.commit()?;
        self.checkpoint()?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::lin_crc;

    #[test]
    fn lin_crc_is_the_difference_of_crcs_of_one_length() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut bytes = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        for n in [0, 1, 7, 64, 4096, 5000] {
            let (a, b) = (bytes(n), bytes(n));
            let d: Vec<u8> = a.iter().zip(&b).map(|(p, q)| p ^ q).collect();
            assert_eq!(
                lin_crc(&d),
                crc32fast::hash(&a) ^ crc32fast::hash(&b),
                "{n}"
            );
            // Leading zeros change nothing.
            let mut z = vec![0; 100];
            z.extend_from_slice(&d);
            assert_eq!(lin_crc(&z), lin_crc(&d), "{n}");
        }
        assert_ne!(lin_crc(&[1]), 0);
    }
}
