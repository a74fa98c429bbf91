//! Checkpoints and header publication: folding the commits in the log into
//! the data file, so the log can start over.
//!
//! A checkpoint writes the pending checksums of full groups to the table,
//! syncs the data file (the applied images, logged appends and table), and
//! then publishes a header with the last commit's state and the next
//! `header_seq`, synced. The frames in the log name the previous
//! `header_seq`, so from then on every scan ends at the first of them, and
//! the log is reused from its start.
//!
//! Invariants:
//! - a header is published by one write of its slot and one sync;
//!   consecutive `header_seq` values use alternate slots, so a crash leaves
//!   the previous header intact;
//! - a header never counts a commit whose data is not durable in the data
//!   file: everything the log holds is synced before the header that
//!   includes it is written;
//! - until that header is durable the old header and the log still describe
//!   the same state, and replaying the log over data that already holds it
//!   changes nothing (images are absolute);
//! - readers learn of a header only after it is durable (`announce`);
//! - a version-1 file is upgraded by its first checkpoint: the checksums its
//!   group list carried are written to the table first.

use super::RawStore;
use crate::error::Result;
use crate::format::{Header, FLAG_CHECKED, FORMAT_V1, FORMAT_VERSION, SLOT_OFFSETS};
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

/// A random non-zero store id (std's hasher keys come from the OS).
pub(super) fn new_store_id() -> u64 {
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        let id = h.finish();
        if id != 0 {
            return id;
        }
    }
}

impl RawStore {
    /// Writes table entries `(group, crc)` (sorted by group), one write per
    /// run of adjacent groups.
    pub(super) fn write_table_entries(
        &mut self,
        entries: impl IntoIterator<Item = (u64, u32)>,
    ) -> Result<()> {
        let mut buf = Vec::new();
        let mut start = 0;
        for (g, crc) in entries {
            if !buf.is_empty() && g != start + (buf.len() / 4) as u64 {
                self.write(&buf, self.layout.checksum_offset(start))?;
                buf.clear();
            }
            if buf.is_empty() {
                start = g;
            }
            buf.extend_from_slice(&crc.to_le_bytes());
        }
        if !buf.is_empty() {
            self.write(&buf, self.layout.checksum_offset(start))?;
        }
        Ok(())
    }

    /// Writes `header` (version 2, `header_seq` one past the current) into
    /// its slot and makes it durable: this header's one sync. The caller
    /// made everything it counts durable first.
    pub(super) fn publish(&mut self, mut header: Header) -> Result<()> {
        header.header_seq = self.header.header_seq + 1;
        header.version = FORMAT_VERSION;
        header.flags &= !FLAG_CHECKED;
        header.list_len = 0;
        header.list_crc = 0;
        if header.store_id == 0 {
            header.store_id = new_store_id();
        }
        if header.header_seq > crate::format::MAX_GENERATION {
            return Err(crate::Error::InvalidOption {
                option: "header_seq",
                reason: "the store has used all header sequence numbers".into(),
            });
        }
        self.write(&header.encode(), SLOT_OFFSETS[header.slot_index()])?;
        self.sync(false)?;
        self.header = header;
        self.announce();
        Ok(())
    }

    /// Folds every commit in the log into the data file and restarts the
    /// log (see the module doc). Nothing to do when the log is empty and
    /// the file is version 2. Readers are never waited for.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.check_writable()?;
        if self.log_commits() == 0 && self.header.version != FORMAT_V1 {
            return Ok(());
        }
        let span = tracing::info_span!("recmap.checkpoint", path = %self.path.display(),
            generation = self.header.generation);
        let _g = span.enter();
        let t0 = Instant::now();
        let commits = self.log_commits();
        let before = self.bytes_since_commit;
        let entries = self.pending_crcs.sorted();
        self.write_table_entries(entries)?;
        self.sync(false)?;
        let was = self.header.version;
        self.publish(self.header)?;
        self.pending_crcs.clear();
        let limit = self.log_limit;
        let log = self.log_mut();
        log.end = 0;
        log.commits = 0;
        // After a commit larger than the log: give the room back. The bytes
        // past the limit are frames of the cycle just folded in; failing to
        // shrink only costs space.
        if log.file_len > limit && log.file.set_len(limit).is_ok() {
            log.file_len = limit;
            self.observe(super::IoEvent::LogSetLen { len: limit });
        }
        if was == FORMAT_V1 {
            tracing::info!(
                generation = self.header.generation,
                "upgraded the file to format version 2"
            );
        }
        tracing::info!(
            commits,
            bytes = self.bytes_since_commit - before,
            header_seq = self.header.header_seq,
            elapsed_us = t0.elapsed().as_micros() as u64,
            "checkpointed"
        );
        Ok(())
    }

    /// A version-1 file becomes version 2 (one checkpoint) before anything
    /// changes committed bytes or the log is used: its checked-commit rules
    /// do not hold for version-2 writes.
    pub(super) fn ensure_v2(&mut self) -> Result<()> {
        if self.header.version == FORMAT_V1 {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Upgrades a version-1 file to version 2 now (it happens anyway at the
    /// first commit). Returns true if there was anything to upgrade.
    pub fn upgrade(&mut self) -> Result<bool> {
        self.check_writable()?;
        let old = self.header.version == FORMAT_V1;
        self.ensure_v2()?;
        Ok(old)
    }

    /// Tells readers about the newest durable state (commit and header).
    /// Operations that borrow the coordination file out of `self` while
    /// they publish (`compact`, truncating `repair`) call it again after.
    pub(super) fn announce(&mut self) {
        if let Some(c) = &self.coord {
            c.raise_high_water(self.header.record_count);
            c.publish(
                self.header.generation,
                self.header.record_count,
                self.header.header_seq,
            );
            self.high_water = c.high_water();
        }
    }
}
