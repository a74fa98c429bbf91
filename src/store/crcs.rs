//! Checksums of full groups that commits since the last checkpoint changed
//! (or that a version-1 header lists), waiting to be written into the
//! checksum table: they override the table's entries until a checkpoint
//! writes them there.
//!
//! A commit of scattered updates looks up and replaces one entry per group
//! it changes, among as many as every commit since the last checkpoint
//! changed; a tree would walk several cold nodes for each. This is a hash
//! map (one probe) that hands out its entries sorted only when the table is
//! written.
//!
//! Invariants: at most one checksum per group; `sorted` yields ascending
//! groups.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a group number: the full 128-bit product with an odd constant,
/// its two halves folded together, so every bit of the key reaches the low
/// bits the table takes its bucket from (keys that share their low bits,
/// such as multiples of a large power of two, still spread). Group numbers
/// come from this handle's own commits, or from a version-1 header's short
/// list.
#[derive(Default)]
struct GroupHasher(u64);

impl Hasher for GroupHasher {
    fn finish(&self) -> u64 {
        let h = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15;
        (h as u64) ^ ((h >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Group -> checksum, pending for the table.
#[derive(Clone, Debug, Default)]
pub(super) struct GroupCrcs(HashMap<u64, u32, BuildHasherDefault<GroupHasher>>);

impl GroupCrcs {
    #[inline]
    pub(super) fn get(&self, g: u64) -> Option<u32> {
        self.0.get(&g).copied()
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Every entry, by ascending group.
    pub(super) fn sorted(&self) -> Vec<(u64, u32)> {
        let mut v: Vec<(u64, u32)> = self.0.iter().map(|(&g, &c)| (g, c)).collect();
        v.sort_unstable();
        v
    }
}

impl Extend<(u64, u32)> for GroupCrcs {
    fn extend<I: IntoIterator<Item = (u64, u32)>>(&mut self, entries: I) {
        self.0.extend(entries);
    }
}

impl FromIterator<(u64, u32)> for GroupCrcs {
    fn from_iter<I: IntoIterator<Item = (u64, u32)>>(entries: I) -> Self {
        let mut m = GroupCrcs::default();
        m.extend(entries);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_entry_wins_and_sorted_is_ascending() {
        let mut m: GroupCrcs = [(5u64, 1u32), (1, 2), (1 << 40, 3)].into_iter().collect();
        m.extend([(5, 9), (0, 4)]);
        assert_eq!(m.get(5), Some(9));
        assert_eq!(m.get(2), None);
        assert_eq!(m.sorted(), vec![(0, 4), (1, 2), (5, 9), (1 << 40, 3)]);
        // Keys that share their low bits still spread over the buckets
        // (the fold): this stays fast, and every entry is kept.
        for shift in [32, 40, 47] {
            let many: GroupCrcs = (0..20_000u64).map(|k| (k << shift, k as u32)).collect();
            assert_eq!(many.sorted().len(), 20_000);
            assert_eq!(many.get(7 << shift), Some(7));
            // The low 12 bits of 4096 such keys' hashes take well over a
            // thousand values (a random hash: about 2,600; the product's
            // low half alone: 2 at shift 40).
            let lows: std::collections::HashSet<u64> = (0..4096u64)
                .map(|k| {
                    let mut h = GroupHasher::default();
                    h.write_u64(k << shift);
                    h.finish() & 0xfff
                })
                .collect();
            assert!(lows.len() > 1000, "shift {shift}: {} distinct", lows.len());
        }
        m.clear();
        assert!(m.sorted().is_empty());
    }
}
