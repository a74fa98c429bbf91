//! Record images held in memory in front of the map: a writer's in-place
//! updates that are not yet committed (read-your-own-writes), or, in a
//! read-only handle or reader, committed records that the log holds and the
//! data file may not (a log no writer has replayed yet).
//!
//! Invariants: at most one image per record index; images are stored in
//! 4 KiB-aligned pages at the packing's record offsets, so every image is
//! aligned for a zero-copy `&T` like a record in the map; iteration is in
//! index order (commit frames and checksums need that).

use crate::format::{Packing, PAGE_SIZE};
use std::collections::BTreeMap;

/// One page of an aligned buffer; the alignment makes records in it aligned.
#[repr(C, align(4096))]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Page(pub(crate) [u8; PAGE_SIZE as usize]);

/// Record images by index, in aligned memory.
#[derive(Clone)]
pub(crate) struct Overlay {
    packing: Packing,
    /// Record index -> byte offset of its image in `arena`: the packing's
    /// offset of the image's slot (slots are taken in order of arrival).
    index: BTreeMap<u64, usize>,
    arena: Vec<Page>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("records", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl Overlay {
    pub(crate) fn new(packing: Packing) -> Overlay {
        Overlay {
            packing,
            index: BTreeMap::new(),
            arena: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    fn image_range(&self, at: usize) -> std::ops::Range<usize> {
        at..at + self.packing.record_size as usize
    }

    /// The image of record `i`, if held. No step can panic (the typed
    /// `get`'s rare path relies on that; see `Store::get`).
    #[inline]
    pub(crate) fn get(&self, i: u64) -> Option<&[u8]> {
        let at = *self.index.get(&i)?;
        let bytes: &[u8] = bytemuck::cast_slice(&self.arena);
        bytes.get(at..)?.get(..self.packing.record_size as usize)
    }

    pub(crate) fn contains(&self, i: u64) -> bool {
        self.index.contains_key(&i)
    }

    /// The smallest held index `>= i`.
    pub(crate) fn next_from(&self, i: u64) -> Option<u64> {
        self.index.range(i..).next().map(|(&k, _)| k)
    }

    /// Holds `bytes` (one record) as the image of record `i`.
    pub(crate) fn set(&mut self, i: u64, bytes: &[u8]) {
        let next = self.packing.record_offset(self.index.len() as u64) as usize;
        let at = *self.index.entry(i).or_insert(next);
        let range = self.image_range(at);
        let pages = range.end.div_ceil(PAGE_SIZE as usize);
        if self.arena.len() < pages {
            self.arena.resize(pages, Page([0; PAGE_SIZE as usize]));
        }
        bytemuck::cast_slice_mut(&mut self.arena)[range].copy_from_slice(bytes);
    }

    /// `(index, image)` in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let bytes: &[u8] = bytemuck::cast_slice(&self.arena);
        self.index
            .iter()
            .map(move |(&i, &at)| (i, &bytes[self.image_range(at)]))
    }

    /// `(index, image)` of the held indices in `range`, in index order.
    pub(crate) fn range(
        &self,
        range: std::ops::Range<u64>,
    ) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let bytes: &[u8] = bytemuck::cast_slice(&self.arena);
        self.index
            .range(range)
            .map(move |(&i, &at)| (i, &bytes[self.image_range(at)]))
    }

    /// Drops every image (keeping a modest allocation for the next batch).
    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.arena.clear();
        if self.arena.capacity() > 256 {
            self.arena.shrink_to(256);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_aligned_and_ordered() {
        for size in [8u64, 24, 64, 4096, 5000] {
            let mut o = Overlay::new(Packing::new(size));
            for i in [9u64, 3, 700, 3] {
                o.set(i, &vec![i as u8; size as usize]);
            }
            assert_eq!(o.len(), 3);
            let keys: Vec<u64> = o.iter().map(|(i, _)| i).collect();
            assert_eq!(keys, vec![3, 9, 700]);
            for (i, b) in o.iter() {
                assert!(b.iter().all(|&x| x == i as u8));
                assert_eq!(b.as_ptr() as usize % size.min(8) as usize, 0);
            }
            assert_eq!(o.next_from(4), Some(9));
            assert!(o.range(700..701).count() == 1 && o.range(10..700).next().is_none());
            o.clear();
            assert!(o.is_empty() && o.get(3).is_none());
        }
    }
}
