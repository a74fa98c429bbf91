//! Commit: making changes durable and visible to new opens. Publishes
//! headers into the two slots, computes group checksums, and keeps the
//! checksum table and the newest header's group list in step.
//!
//! Invariants:
//! - a header is published by one write of its slot (with its group list)
//!   and one sync; consecutive generations use alternate slots, so a crash
//!   leaves the previous header intact;
//! - an ordinary commit's data and table entries are synced before its
//!   header is written; a small (checked) commit shares one sync with its
//!   header, which lists the groups open must find on disk;
//! - the checksums of the last commit are the table's entries, overridden by
//!   the newest header's group list (`listed`) and, for a partly filled last
//!   group, the header's `tail_crc`; the table is written only by a large
//!   commit, by relocation (`grow`) and by repair (`verify`);
//! - a checked header is confirmed (`confirm`) before the committed bytes of
//!   a group it is validated by change, and when the handle is dropped;
//! - readers learn of a header (generation, high-water mark) only after it
//!   is durable (`announce`).

use super::{table_entries, Access, RawStore};
use crate::error::{Error, Result};
use crate::format::{
    encode_list, Header, FLAG_CHECKED, LIST_CARRIED, MAX_LISTED_GROUPS, SLOT_OFFSETS,
};
use std::time::{Duration, Instant};

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

impl RawStore {
    /// The entry for group `g` in the newest header's list, if any.
    pub(super) fn listed_entry(&self, g: u64) -> Option<(u64, u32)> {
        self.listed
            .binary_search_by_key(&g, |e| e.0 & !LIST_CARRIED)
            .ok()
            .map(|k| self.listed[k])
    }

    /// True if open validates the newest header by group `g`'s bytes.
    pub(super) fn validates_by(&self, g: u64) -> bool {
        self.listed_entry(g)
            .is_some_and(|(raw, _)| raw & LIST_CARRIED == 0)
    }

    /// True if open validates the newest header by any group's bytes.
    pub(super) fn unconfirmed(&self) -> bool {
        self.listed.iter().any(|&(g, _)| g & LIST_CARRIED == 0)
    }

    /// Writes table entries `(group, crc)` (sorted by group), one write per
    /// run of adjacent groups.
    pub(super) fn write_table_entries(&mut self, entries: &[(u64, u32)]) -> Result<()> {
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

    /// Writes `header` into its slot and makes it durable. With `list` it
    /// is a checked commit: the flag and the group list are set from `list`
    /// and written with the slot in one write; otherwise both are cleared.
    /// Either way this is the header's one sync.
    pub(super) fn publish(
        &mut self,
        mut header: Header,
        list: Option<&[(u64, u32)]>,
    ) -> Result<()> {
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
    pub(super) fn confirm(&mut self) -> Result<()> {
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
    pub(super) fn announce(&mut self) {
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
    pub(super) fn group_crc(&self, g: u64, count: u64) -> u32 {
        let p = self.layout.packing;
        let (first, end) = p.group_records(g, count);
        let off = (self.layout.data_offset + g * p.group_bytes()) as usize;
        crc32fast::hash(&self.map[off..off + ((end - first) * p.record_size) as usize])
    }
}
