//! Access hints: how a handle expects to read its records
//! ([`AccessPattern`], `Options::access`, `set_access`) and per-range
//! prefetch and eviction ([`Advice`], `advise`), passed to the kernel as
//! `madvise` on the handle's mapping and `posix_fadvise` on its file.
//!
//! Invariants: hints never change what a read returns, only what the kernel
//! reads ahead or keeps; a hint the system refuses is logged and ignored
//! (they are best effort), and every handle re-applies its pattern to each
//! new mapping (after growth or a reader's remap).
//!
//! Why `Random` is the default: a fault on a page not in the cache makes the
//! kernel read around it, `read_ahead_kb` worth (8 MiB on the test
//! machine's disk) under `Normal`, so cold random gets read megabytes each;
//! under `Random` a fault reads its page. Pages already cached are mapped the
//! same either way, so warm gets cost the same (`docs/benchmarks.md`,
//! "Access hints"). Scans read ahead of themselves instead: `Store::iter`
//! and a snapshot's `read_range`/`iter` ask for the next MiBs where they are
//! not cached (one `mincore` a MiB); other ways of scanning cold can say
//! so with `Sequential` for the handle or [`Advice::WillNeed`] for the range
//! about to be read.

/// How a handle expects to read its records (`Options::access`,
/// `Store::set_access`, `Reader::set_access`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccessPattern {
    /// Records are read in no particular order (the default): a page fault
    /// reads only its page (`MADV_RANDOM`, `POSIX_FADV_RANDOM`).
    #[default]
    Random,
    /// Records are read in index order: the kernel reads far ahead
    /// (`MADV_SEQUENTIAL`, `POSIX_FADV_SEQUENTIAL`). For scans, exports and
    /// `verify`.
    Sequential,
    /// The kernel's own heuristics (`MADV_NORMAL`): a fault reads the pages
    /// around it too.
    Normal,
}

/// A one-off hint about a range of records (`Store::advise`,
/// `Reader::advise`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Advice {
    /// The range will be read soon: start reading it into the cache now,
    /// without waiting (`MADV_WILLNEED`, `POSIX_FADV_WILLNEED`;
    /// `PrefetchVirtualMemory` is not used on Windows yet: a no-op there).
    WillNeed,
    /// The range will not be read again soon: drop this handle's mappings of
    /// it and let the kernel evict its clean cached pages
    /// (`MADV_DONTNEED`, then `POSIX_FADV_DONTNEED`), after writing the
    /// range's dirty pages back and waiting for them (Linux
    /// `sync_file_range`; not a sync: nothing becomes durable that a commit
    /// had not made so). Pages other processes map stay cached. The file
    /// advice is widened to 2 MiB boundaries: the kernel drops only large
    /// folios wholly inside the range, so without it the pages at either end
    /// could stay; clean neighbours sharing those folios may be dropped too.
    DontNeed,
}
