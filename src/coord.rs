//! The coordination file (`<data file>-lock`): a small file every process
//! maps shared and touches only through atomics. It carries the last
//! published commit (generation, record count and the data header it
//! follows, under a seqlock, so readers notice commits with one load), the
//! writer's pid, the highest record count ever published, and one word per
//! stripe of data pages. Its layout is in `docs/concurrency.md`.
//!
//! A stripe word is both a seqlock and a version: even `2g` means "last
//! changed by commit `g`", odd means a committed change is being applied
//! to a page of the stripe right now. Words only grow, so a snapshot of
//! commit `s` may use a copy exactly when the word was even and at most
//! `2s` before and unchanged after it.
//!
//! Readers hold a shared lock on it for their whole life; shrinking the data
//! file needs the exclusive lock, so it is refused while any reader exists.

use crate::error::{Error, Result};
use crate::fileio::write_all_at;
use crate::sys::AtomicMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};

pub const COORD_MAGIC: [u8; 8] = *b"RMAPCORD";
pub const COORD_VERSION: u32 = 3;
/// Seqlock stripes; data page (group) `g` uses stripe `g % STRIPES`.
pub const STRIPES: u64 = 4096;
/// Offsets in the coordination file.
pub mod at {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const STRIPE_COUNT: usize = 12;
    pub const GENERATION: usize = 16;
    pub const WRITER_PID: usize = 24;
    pub const HIGH_WATER: usize = 32;
    pub const WRITER_EPOCH: usize = 40;
    pub const COMMIT_FUTEX: usize = 48;
    pub const WAITERS: usize = 56;
    pub const DATA_DEV: usize = 64;
    pub const DATA_INO: usize = 72;
    pub const PUB_SEQ: usize = 80;
    pub const PUB_COUNT: usize = 88;
    pub const PUB_HEADER_SEQ: usize = 96;
    pub const APPLY_SEQ: usize = 104;
    pub const STRIPES: usize = 4096;
}
/// Length of the coordination file.
pub const COORD_LEN: usize = at::STRIPES + STRIPES as usize * 8;

/// (device, inode, hard links) of an open file; (0, 0, 1) where unknown.
fn file_identity(f: &File) -> std::io::Result<(u64, u64, u64)> {
    let m = f.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((m.dev(), m.ino(), m.nlink()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        Ok((0, 0, 1))
    }
}

/// The coordination file's path for a data file.
pub fn coord_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-lock");
    PathBuf::from(s)
}

/// An open, mapped coordination file.
pub(crate) struct Coord {
    file: File,
    path: PathBuf,
    map: AtomicMap<COORD_LEN>,
}

impl std::fmt::Debug for Coord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coord")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Coord {
    /// Opens (creating if needed) the coordination file of `data`.
    ///
    /// Creation is idempotent and needs no lock: the file is extended to its
    /// full length (zeros are a valid initial state) and its fixed header is
    /// written with the same bytes by whoever gets there.
    ///
    /// The coordination file is found through the data file's canonical
    /// path (symlinks resolved) and records the data file's identity
    /// (device and inode), so every process of one store meets in one
    /// coordination file. A writer (`claim`) takes over a file left by a
    /// store that was replaced at the path; a reader refuses a mismatch, and
    /// refuses a data file with several hard links (each name would get its
    /// own coordination file).
    pub(crate) fn open(data: &Path, data_file: &File, claim: bool) -> Result<Coord> {
        let canonical =
            std::fs::canonicalize(data).map_err(|e| Error::io("resolve path", data, e))?;
        let path = coord_path(&canonical);
        let (dev, ino, links) = file_identity(data_file).map_err(|e| Error::io("stat", data, e))?;
        if links > 1 && claim {
            tracing::warn!(path = %data.display(), links, "the data file has several hard links; readers will refuse to open it");
        }
        if links > 1 && !claim {
            return Err(Error::BadCoordination {
                path,
                reason: format!(
                    "the data file has {links} hard links; readers need it to have one name"
                ),
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open coordination file", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        if len < COORD_LEN as u64 {
            file.set_len(COORD_LEN as u64)
                .map_err(|e| Error::io("extend coordination file", &path, e))?;
        }
        let mut head = [0u8; 16];
        let expected = Self::fixed_header();
        for attempt in 0..2 {
            crate::fileio::read_exact_at(&file, &mut head, 0)
                .map_err(|e| Error::io("read coordination file", &path, e))?;
            // Another process may be writing the fixed header right now
            // (all zeros: nobody has started; writing it is idempotent).
            if head == expected || attempt == 1 || head.iter().all(|&b| b == 0) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let older = head[..8] == COORD_MAGIC
            && u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) < COORD_VERSION;
        if head != expected && older {
            // Left by an older recmap: no process of ours can be using it
            // (they would have rewritten it), and readers of that version
            // hold its shared lock while they live.
            match file.try_lock() {
                Ok(()) => {
                    let zeros = vec![0u8; COORD_LEN];
                    write_all_at(&file, &zeros, 0)
                        .map_err(|e| Error::io("reset coordination file", &path, e))?;
                    let _ = file.unlock();
                    head = [0u8; 16];
                }
                Err(_) => return Err(Error::BadCoordination {
                    path,
                    reason:
                        "readers of an older recmap version have the store open; close them first"
                            .into(),
                }),
            }
        }
        if head != expected {
            if head.iter().any(|&b| b != 0) {
                return Err(Error::BadCoordination {
                    path,
                    reason: format!("unexpected header {head:02x?}"),
                });
            }
            write_all_at(&file, &expected, 0)
                .map_err(|e| Error::io("write coordination file", &path, e))?;
        }
        let map =
            AtomicMap::map(&file).map_err(|e| Error::io("mmap coordination file", &path, e))?;
        let coord = Coord { file, path, map };
        let (d, i) = (coord.word(at::DATA_DEV), coord.word(at::DATA_INO));
        let known = (d.load(Ordering::Acquire), i.load(Ordering::Acquire));
        if known != (dev, ino) {
            if claim {
                if known != (0, 0) {
                    tracing::warn!(path = %coord.path.display(), "coordination file belonged to a replaced store; taking it over");
                    coord.reset_high_water(0);
                }
                d.store(dev, Ordering::Release);
                i.store(ino, Ordering::Release);
            } else if known != (0, 0) {
                return Err(Error::BadCoordination {
                    path: coord.path.clone(),
                    reason: "it belongs to another data file (the store was replaced?); open a writer once to take it over".into(),
                });
            }
        }
        Ok(coord)
    }

    fn fixed_header() -> [u8; 16] {
        let mut h = [0u8; 16];
        h[at::MAGIC..at::MAGIC + 8].copy_from_slice(&COORD_MAGIC);
        h[at::VERSION..at::VERSION + 4].copy_from_slice(&COORD_VERSION.to_le_bytes());
        h[at::STRIPE_COUNT..at::STRIPE_COUNT + 4].copy_from_slice(&(STRIPES as u32).to_le_bytes());
        h
    }

    /// Takes the shared lock a reader holds for its lifetime (waits only
    /// while a shrink is in progress).
    pub(crate) fn lock_shared(&self) -> Result<()> {
        self.file
            .lock_shared()
            .map_err(|e| Error::io("lock coordination file", &self.path, e))
    }

    /// Tries the exclusive lock that shrinking needs; `ReadersPresent` if a
    /// reader holds the shared one. Released by `unlock`.
    pub(crate) fn try_lock_exclusive(&self) -> Result<()> {
        match self.file.try_lock() {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => Err(Error::ReadersPresent {
                path: self.path.clone(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::io("lock coordination file", &self.path, e)),
        }
    }

    pub(crate) fn unlock(&self) {
        let _ = self.file.unlock();
    }

    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        self.map.u64_at(offset)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.word(at::GENERATION).load(Ordering::Acquire)
    }

    /// Publishes a durable state (commit `generation` with `count` records,
    /// following data header `header_seq`) and wakes readers waiting for a
    /// commit. Only the writer calls it.
    pub(crate) fn publish(&self, generation: u64, count: u64, header_seq: u64) {
        let seq = self.word(at::PUB_SEQ);
        let s = seq.load(Ordering::Relaxed);
        let s = s + (s & 1) + 1; // odd: update in progress
        seq.store(s, Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(at::PUB_COUNT).store(count, Ordering::Relaxed);
        self.word(at::PUB_HEADER_SEQ)
            .store(header_seq, Ordering::Relaxed);
        seq.store(s + 1, Ordering::Release);
        self.set_generation(generation);
        // Even again: the data pages hold exactly the published state.
        let apply = self.word(at::APPLY_SEQ);
        let a = apply.load(Ordering::Relaxed);
        if a % 2 == 1 {
            apply.store(a + 1, Ordering::Release);
        }
    }

    /// The apply sequence (`docs/concurrency.md`): odd from the first write
    /// to a data page a reader may see until the next `publish`, even
    /// otherwise. A reader takes it before adopting a state; while it still
    /// reads the same even value, no such write has happened since, so the
    /// data pages hold exactly that state and a copy of any record needs no
    /// stripe check.
    pub(crate) fn apply_seq(&self) -> u64 {
        self.word(at::APPLY_SEQ).load(Ordering::Acquire)
    }

    /// True if the apply sequence still reads `token` (from `apply_seq`,
    /// even): no data page was written since, up to this load, which is
    /// ordered after every copy made before it (`sys::seq_recheck`).
    #[inline(always)]
    pub(crate) fn applied_nothing_since(&self, token: u64) -> bool {
        crate::sys::seq_recheck(self.word(at::APPLY_SEQ), token)
    }

    /// Withdraws the published state (a writer that takes over, before it
    /// recovers: after a power loss the state here may be newer than what
    /// the data file holds until the log is replayed). Readers that open
    /// meanwhile read the data header and the log instead.
    pub(crate) fn unpublish(&self) {
        let seq = self.word(at::PUB_SEQ);
        let s = seq.load(Ordering::Relaxed);
        let s = s + (s & 1) + 1;
        seq.store(s, Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(at::PUB_HEADER_SEQ).store(0, Ordering::Relaxed);
        seq.store(s + 1, Ordering::Release);
    }

    /// The published state `(generation, record count, header_seq)`, read
    /// consistently; `None` if a writer keeps it busy (it never does for
    /// more than a few stores) or nothing was published yet.
    pub(crate) fn published(&self) -> Option<(u64, u64, u64)> {
        let seq = self.word(at::PUB_SEQ);
        for _ in 0..1000 {
            let s = seq.load(Ordering::Acquire);
            if s % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let g = self.generation();
            let c = self.word(at::PUB_COUNT).load(Ordering::Acquire);
            let h = self.word(at::PUB_HEADER_SEQ).load(Ordering::Acquire);
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == s {
                return (h != 0 && g != 0).then_some((g, c, h));
            }
        }
        None
    }

    /// Wakes readers waiting for a commit, after publishing generation `g`.
    fn set_generation(&self, g: u64) {
        self.word(at::GENERATION).store(g, Ordering::Release);
        let futex = self.map.u32_at(at::COMMIT_FUTEX);
        // SeqCst on both sides (here and in `wait_generation`): the bump of the
        // futex word and the read of the waiter count must not be reordered.
        futex.fetch_add(1, Ordering::SeqCst);
        if self.word(at::WAITERS).load(Ordering::SeqCst) > 0 {
            crate::sys::wake_all(futex);
        }
    }

    /// Waits until the published generation exceeds `after` or `timeout`
    /// passes; returns the published generation.
    pub(crate) fn wait_generation(&self, after: u64, timeout: std::time::Duration) -> u64 {
        let Some(deadline) = std::time::Instant::now().checked_add(timeout) else {
            return self.wait_generation(after, std::time::Duration::from_secs(3600));
        };
        let futex = self.map.u32_at(at::COMMIT_FUTEX);
        let waiters = self.word(at::WAITERS);
        loop {
            let seq = futex.load(Ordering::Acquire);
            let g = self.generation();
            let now = std::time::Instant::now();
            if g > after || now >= deadline {
                return g;
            }
            waiters.fetch_add(1, Ordering::SeqCst);
            // Re-check after announcing ourselves, so a commit published in
            // between is not slept through (the writer reads WAITERS after
            // bumping the futex word).
            if futex.load(Ordering::SeqCst) == seq {
                crate::sys::wait_on(
                    futex,
                    seq,
                    (deadline - now).min(std::time::Duration::from_millis(100)),
                );
            }
            waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
    pub(crate) fn writer_pid(&self) -> u64 {
        self.word(at::WRITER_PID).load(Ordering::Acquire)
    }
    pub(crate) fn high_water(&self) -> u64 {
        self.word(at::HIGH_WATER).load(Ordering::Acquire)
    }
    pub(crate) fn reset_high_water(&self, count: u64) {
        self.word(at::HIGH_WATER).store(count, Ordering::Release);
    }
    pub(crate) fn raise_high_water(&self, count: u64) {
        self.word(at::HIGH_WATER).fetch_max(count, Ordering::AcqRel);
    }

    #[inline]
    fn stripe(&self, group: u64) -> &AtomicU64 {
        self.word(at::STRIPES + (group % STRIPES) as usize * 8)
    }

    /// Called by a writer that just took the data file's exclusive lock:
    /// clears what a dead writer may have left (odd stripes mid-update) and
    /// records this process as the writer. Returns the dead writer's pid, if
    /// any state had to be reset.
    pub(crate) fn adopt(&self, count: u64) -> Option<u64> {
        // The recovered state is published by the caller once recovery is
        // done; stripes a dead writer left odd are closed by its replay
        // (which then ends them at exactly 2g) or by `close_busy_stripes`.
        self.unpublish();
        let stale = self.writer_pid();
        self.raise_high_water(count);
        self.word(at::WRITER_EPOCH).fetch_add(1, Ordering::AcqRel);
        self.word(at::WRITER_PID)
            .store(std::process::id() as u64, Ordering::Release);
        (stale != 0).then_some(stale)
    }

    /// Ends every stripe a dead writer left odd (after recovery replayed
    /// what the log held); returns how many.
    pub(crate) fn close_busy_stripes(&self) -> u64 {
        let mut closed = 0;
        for s in 0..STRIPES {
            let w = self.stripe(s);
            let v = w.load(Ordering::Acquire);
            if v % 2 == 1 {
                w.store(v.wrapping_add(1), Ordering::Release);
                closed += 1;
            }
        }
        closed
    }

    /// Called by a writer closing cleanly.
    pub(crate) fn release(&self) {
        self.word(at::WRITER_PID).store(0, Ordering::Release);
    }

    /// Marks the stripes of groups `[first, end)` as being written (odd) by
    /// commit `generation`: an even word `w` becomes `max(w + 1, 2g - 1)`,
    /// an odd one (left by a dead writer) `max(w, 2g - 1)`, so words only
    /// grow and, once `end_write` adds one, are at least `2g` — exactly `2g`
    /// unless the stripe was already at `2g` or past it. Returns the
    /// stripes to pass to `end_write`.
    pub(crate) fn begin_write(&self, first: u64, end: u64, generation: u64) -> Vec<u64> {
        if end - first >= STRIPES {
            self.begin_write_groups(0..STRIPES, generation)
        } else {
            self.begin_write_groups(first..end, generation)
        }
    }

    /// `begin_write` for any set of groups. A commit that writes several
    /// records (or groups) of one stripe must open it once for all of them:
    /// each begin/end pair adds 2, so a second pair in the same commit would
    /// leave the word at `2g + 2`, claiming a later commit, and every
    /// snapshot of commit `g` would find the page expired.
    pub(crate) fn begin_write_groups(
        &self,
        groups: impl IntoIterator<Item = u64>,
        generation: u64,
    ) -> Vec<u64> {
        let mut stripes: Vec<u64> = groups.into_iter().map(|g| g % STRIPES).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let floor = generation.saturating_mul(2).saturating_sub(1);
        let apply = self.word(at::APPLY_SEQ);
        let a = apply.load(Ordering::Relaxed);
        if a.is_multiple_of(2) {
            apply.store(a + 1, Ordering::Relaxed);
        }
        for &s in &stripes {
            let w = self.stripe(s);
            let v = w.load(Ordering::Relaxed);
            let odd = if v % 2 == 1 { v } else { v + 1 };
            w.store(odd.max(floor), Ordering::Relaxed);
        }
        // The odd values (stripes and apply sequence) must be visible before
        // any byte of the write.
        fence(Ordering::Release);
        stripes
    }

    /// Marks the stripes written (even again), publishing the new bytes.
    pub(crate) fn end_write(&self, stripes: &[u64]) {
        for &s in stripes {
            let w = self.stripe(s);
            w.store(w.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        }
    }

    /// Seqlock read side: the stripe's value before copying (odd: retry).
    #[inline(always)]
    pub(crate) fn read_begin(&self, group: u64) -> u64 {
        crate::sys::seq_begin(self.stripe(group))
    }

    /// Seqlock read side: true if the copy made since `read_begin` is whole.
    #[inline(always)]
    pub(crate) fn read_validate(&self, group: u64, begin: u64) -> bool {
        crate::sys::seq_recheck(self.stripe(group), begin)
    }
}
