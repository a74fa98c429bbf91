//! A reader's bulk reads of records the page cache does not hold: whether a
//! range is cached, and the `pread` copy a snapshot's `read_range` streams
//! through (`crate::stream`), kept only while the apply sequence vouches
//! for it (docs/concurrency.md, "Bulk reads of data not cached").

use super::RawReader;
use crate::error::Result;

impl RawReader {
    /// True unless a page of records `[first, end)` is known to be absent
    /// from the page cache (one `mincore`; always true where that cannot
    /// be told).
    pub(crate) fn is_cached(&self, first: u64, end: u64) -> bool {
        let (from, to) = (self.offset(first) as u64, self.offset(end) as u64);
        self.map
            .resident_bytes(from, to - from)
            .is_none_or(|cached| cached >= to - from)
    }

    /// Copies records `[first, end)` of the adopted state into `out` with
    /// positioned reads of the data file instead of through the map: the
    /// path of bulk reads of data the page cache does not hold, where the
    /// kernel's read-ahead for `pread` keeps more of the device busy than
    /// faults do. `Ok(false)` if this path cannot vouch for the copy (the
    /// reader holds log images, or a writer wrote data pages since the
    /// state was adopted): the caller copies those records through the map,
    /// which checks their pages' stripes.
    ///
    /// Sound for the same reason as a mapped copy: the file's bytes are the
    /// map's (one page cache), and the apply sequence read unchanged and
    /// even after the reads says no data page was written since the state
    /// was adopted. Append-only stores never change committed records.
    pub(crate) fn cold_copy(&self, first: u64, end: u64, out: &mut [u8]) -> Result<bool> {
        if !self.overlay.is_empty() {
            return Ok(false);
        }
        let quiet = self.is_append_only() || self.applied_nothing_since(self.quiet);
        if !quiet {
            return Ok(false);
        }
        let layout = self.header.layout;
        if !self
            .stream
            .read(&self.file, &self.path, &layout, first, end, out)?
        {
            return Ok(false);
        }
        Ok(self.is_append_only() || self.applied_nothing_since(self.quiet))
    }
}
