//! Simulated power loss, format version 2. A process kill keeps the page
//! cache; a power loss does not. The engine's test observer reports every
//! write, sync and length change of both files of a store: the data file
//! (`IoEvent::Write`/`Sync`/`SetLen`) and the log `<path>-wal`
//! (`IoEvent::LogWrite`/`LogSync`/`LogSetLen`). For each file the harness
//! keeps its *durable image* (as of that file's last sync) and the writes and
//! length changes made since (their bytes read back from the live file), and
//! at every event builds crash images: per file, the durable image plus an
//! arbitrary subset of the later writes at 512-byte sector granularity (per
//! sector a prefix of the versions it went through: any, page by page, in
//! write order, front to back, all but one sector, all), sometimes torn
//! inside a sector (header slots, log frames), with a new length that reached
//! the disk before its contents or not at all. A log write of several frames
//! also gets images cut between the end of its first frame and its end.
//!
//! A model knows the state of the last durable commit and, while `commit()`
//! runs, of the commit in flight (durable from its `LogSync` on). Every
//! image, whatever was in flight (in-place updates, multi-record batches
//! across many pages, small and bulk appends, growth, checkpoints, commits
//! larger than the log, commits of several frames), must:
//! - open read-only *without* replaying the log (the reader overlays it) at
//!   exactly the last durable commit or, once its frames were written, the
//!   in-flight one, with every record equal to the model's state of that
//!   commit, and `verify()` clean;
//! - open as a writer (recovery replays the log and checkpoints) at the same
//!   commit, whole, and `verify()` clean;
//! - now and then, continue as a writer from there (a later commit, read
//!   back after a clean close).
//!
//! Besides, every header the engine writes (checkpoint, growth) must name
//! exactly the last durable commit, the log is written only inside a commit
//! (once) and synced once per commit, and `commit()` returns only after its
//! log sync.
//!
//! Three workloads: append-only (an append-only store), in-place updates,
//! and commits of 50,000 updates (1.6 MB of frames: two frames in one write).
//! `RECMAP_POWER_SEED` replays a run; `RECMAP_POWER_STEPS` makes it longer
//! (default 150 steps; the third workload takes a fifteenth of them, at
//! least 3); `RECMAP_POWER_FROM_EVENT` checks no image before that event
//! (to reach a late failure of a replayed seed quickly).
//!
//! Figures (release build, 2 cores, files on /dev/shm, tests in parallel):
//! - CI default (150 steps): about 2,100 images (append-only), 5,200 (in
//!   place updates) and 520 (two commits of several frames, each with ~50
//!   images in flight, a dozen with only the first frame whole); 22 s;
//! - long run (`RECMAP_POWER_STEPS=1500`): 16,441 + 57,971 + 4,948 images
//!   (20 commits of several frames, 146 images with only the first frame),
//!   1,723 + 2,225 + 186 at the in-flight commit, 4,919 continued as a
//!   writer; 0 violations; 14.5 min.

use recmap::format::wal::{FrameHeader, FRAME_TARGET};
use recmap::format::{choose_slot, Header, SLOT_LEN, SLOT_OFFSETS};
use recmap::{IoEvent, Options, Store};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
mod common;
use common::file_at::FileAt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

recmap::record! {
    /// 24 bytes: 170 per page with padding, so the partial last page matters.
    pub struct Rec { pub id: u64, pub version: u64, pub check: u64 }
}

fn rec(id: u64, version: u64) -> Rec {
    Rec {
        id,
        version,
        check: mix(id ^ mix(version)),
    }
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

const SECTOR: u64 = 512;
/// The smallest log the engine accepts: checkpoints come often, and a
/// commit of 3000 logged appends (96 KB of frames) is larger than the log.
const LOG_SIZE: u64 = 64 << 10;
/// Small chunks: the file grows often.
const CHUNK: u64 = 64 << 10;
/// Appends of more than 256 KiB are written in place (synced before the
/// log frame): 24-byte records.
const BULK: u64 = (256 << 10) / 24 + 500;

fn log_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

fn lock_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-lock");
    PathBuf::from(s)
}

/// A change to one file since its last sync.
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// What one file holds durably, and what was done to it since.
struct FileSim {
    live: File,
    durable: Vec<u8>,
    pending: Vec<Op>,
}

/// Copies `bytes` to `at`; past the end, only if `grow` (the new length
/// reached the disk).
fn put(img: &mut Vec<u8>, at: u64, bytes: &[u8], grow: bool) {
    let end = at as usize + bytes.len();
    if end > img.len() {
        if !grow {
            return;
        }
        img.resize(end, 0);
    }
    img[at as usize..end].copy_from_slice(bytes);
}

impl FileSim {
    fn open(path: &Path) -> FileSim {
        FileSim {
            live: File::open(path).unwrap(),
            durable: std::fs::read(path).unwrap(),
            pending: Vec::new(),
        }
    }

    /// The bytes just written are what the live file holds there now.
    fn write(&mut self, offset: u64, len: u64) {
        let mut data = vec![0u8; len as usize];
        self.live.read_exact_at(&mut data, offset).unwrap();
        self.pending.push(Op::Write { offset, data });
    }

    fn set_len(&mut self, len: u64) {
        self.pending.push(Op::SetLen(len));
    }

    fn sync(&mut self) {
        for op in self.pending.drain(..) {
            match op {
                Op::SetLen(len) => self.durable.resize(len as usize, 0),
                Op::Write { offset, data } => put(&mut self.durable, offset, &data, true),
            }
        }
    }

    /// The durable image plus a random choice of what else reached the disk:
    /// per sector, a prefix of the versions it went through since the sync
    /// (writeback writes a sector as the page cache held it at some point).
    /// `tearable(offset, len)` names writes that may also be torn inside a
    /// sector (the last such write is). Returns the image and whether a
    /// write was torn.
    fn image(&self, rng: &mut Rng, tearable: impl Fn(u64, usize) -> bool) -> (Vec<u8>, bool) {
        let mut img = self.durable.clone();
        if self.pending.is_empty() {
            return (img, false);
        }
        let sectors_of =
            |offset: u64, len: usize| offset / SECTOR..=(offset + len.max(1) as u64 - 1) / SECTOR;
        // Per sector, the writes that changed it, in order.
        let mut versions: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (k, op) in self.pending.iter().enumerate() {
            if let Op::Write { offset, data } = op {
                for s in sectors_of(*offset, data.len()) {
                    versions.entry(s).or_default().push(k);
                }
            }
        }
        let mode = rng.below(6);
        let prefix = rng.below(self.pending.len() as u64 + 1) as usize;
        let skip_one = rng.below(versions.len() as u64);
        let mut page_choice: HashMap<u64, usize> = HashMap::new();
        let mut chosen: HashSet<(usize, u64)> = HashSet::new();
        if mode == 5 {
            // Written front to back, write after write, up to some sector
            // (a long write cut short).
            let all: Vec<(usize, u64)> = self
                .pending
                .iter()
                .enumerate()
                .filter_map(|(k, op)| match op {
                    Op::Write { offset, data } => Some((k, *offset, data.len())),
                    Op::SetLen(_) => None,
                })
                .flat_map(|(k, o, n)| sectors_of(o, n).map(move |s| (k, s)))
                .collect();
            let cut = rng.below(all.len() as u64 + 1) as usize;
            chosen.extend(all[..cut].iter().copied());
        }
        for (k, (&s, vs)) in versions.iter().enumerate().filter(|_| mode != 5) {
            let n = vs.len();
            let upto = match mode {
                // Any prefix, sector by sector.
                0 => rng.below(n as u64 + 1) as usize,
                // Whole pages together.
                1 => {
                    let r = rng.below(n as u64 + 1) as usize;
                    (*page_choice.entry(s * SECTOR / 4096).or_insert(r)).min(n)
                }
                // The writes in order, up to some point.
                2 => vs.iter().take_while(|&&w| w < prefix).count(),
                // Everything but one sector.
                3 if k as u64 == skip_one => 0,
                // Everything (what a kill would leave).
                _ => n,
            };
            for &w in &vs[..upto] {
                chosen.insert((w, s));
            }
        }
        let grow = rng.chance(2);
        for (k, op) in self.pending.iter().enumerate() {
            match op {
                Op::SetLen(len) => {
                    if rng.chance(2) {
                        img.resize(*len as usize, 0);
                    }
                }
                Op::Write { offset, data } => {
                    for s in sectors_of(*offset, data.len()) {
                        if !chosen.contains(&(k, s)) {
                            continue;
                        }
                        let lo = (s * SECTOR).max(*offset);
                        let hi = ((s + 1) * SECTOR).min(offset + data.len() as u64);
                        let bytes = &data[(lo - offset) as usize..(hi - offset) as usize];
                        put(&mut img, lo, bytes, grow);
                    }
                }
            }
        }
        // Sometimes tear a write anywhere, even inside a sector.
        let mut torn = false;
        if rng.chance(3) {
            let last = self.pending.iter().rev().find_map(|op| match op {
                Op::Write { offset, data } if data.len() > 1 && tearable(*offset, data.len()) => {
                    Some((*offset, data))
                }
                _ => None,
            });
            if let Some((offset, data)) = last {
                let cut = 1 + rng.below(data.len() as u64 - 1) as usize;
                if rng.chance(2) {
                    put(&mut img, offset, &data[..cut], grow);
                } else {
                    put(&mut img, offset + cut as u64, &data[cut..], grow);
                }
                torn = true;
            }
        }
        (img, torn)
    }
}

/// A commit's state: its generation and every record.
#[derive(Clone)]
struct State {
    generation: u64,
    records: Vec<Rec>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    events: u64,
    images: u64,
    /// Images that opened at the in-flight commit (not yet acknowledged).
    at_in_flight: u64,
    /// Images where a commit was durable in the log only (the read-only
    /// open found commits past the data header).
    log_only: u64,
    torn: u64,
    continued: u64,
    commits: u64,
    log_syncs: u64,
    data_syncs: u64,
    headers: u64,
    bulk_commits: u64,
    big_commits: u64,
    multi_frame_commits: u64,
    /// Images taken while a commit of several frames was in flight, and
    /// those of them with its first frame whole and a later one not.
    multi_frame_images: u64,
    first_frame_only: u64,
}

struct Sim {
    seed: u64,
    rng: Rng,
    data: FileSim,
    log: FileSim,
    image_path: PathBuf,
    /// The last commit whose frames are durable in the log (or whose header
    /// is durable in the data file).
    durable: State,
    /// The commit `commit()` is making, until its log sync.
    in_flight: Option<State>,
    /// Its frames have been written (not yet synced).
    in_flight_logged: bool,
    /// A data sync happened in this commit before its log write (bulk appends).
    in_flight_data_sync: bool,
    stats: Stats,
    failed: Cell<bool>,
    /// For failure reports: the last events and the image being checked.
    recent: Vec<IoEvent>,
    last_image: Option<(Vec<u8>, Vec<u8>)>,
    /// `RECMAP_POWER_FROM_EVENT`: check no image before this event (to
    /// reach a late failure of a replayed seed fast; the engine's I/O does
    /// not depend on the images).
    skip_until: u64,
    /// Data writes since the last other event.
    write_run: u64,
    /// Images per event while anything is unsynced (fewer for large stores).
    per_event: u64,
}

/// Both header slots and the frames at the start of the log, for a failure report.
fn describe(data: &[u8], log: &[u8]) -> String {
    let mut out = String::new();
    for (i, &off) in SLOT_OFFSETS.iter().enumerate() {
        let at = off as usize;
        match data.get(at..at + 2048).map(|b| Header::decode(b, i)) {
            Some(Ok(h)) => {
                out += &format!(
                    "slot {i}: header_seq {} generation {} records {} capacity {}\n",
                    h.header_seq, h.generation, h.record_count, h.capacity
                )
            }
            Some(Err(e)) => out += &format!("slot {i}: {e}\n"),
            None => out += &format!("slot {i}: file too short\n"),
        }
    }
    out += &format!("log: {} bytes\n", log.len());
    let mut at = 0usize;
    for _ in 0..12 {
        let Some(h) = log.get(at..).and_then(FrameHeader::decode) else {
            out += &format!("  {at}: no frame\n");
            break;
        };
        let len = h.frame_len(24).unwrap_or(0) as usize;
        out += &format!(
            "  {at}: header_seq {} generation {} records {}..{} flags {} entries {}+{} ({len} bytes)\n",
            h.header_seq, h.generation, h.prev_count, h.record_count, h.flags,
            h.crc_entries, h.record_entries
        );
        if len == 0 {
            break;
        }
        at += len;
    }
    out
}

impl Sim {
    fn on_event(&mut self, ev: &IoEvent) {
        if self.failed.get() {
            return;
        }
        self.stats.events += 1;
        if self.recent.len() == 24 {
            self.recent.remove(0);
        }
        self.recent.push(*ev);
        match *ev {
            IoEvent::Write { offset, len } => {
                self.data.write(offset, len);
                if len >= SLOT_LEN as u64 && SLOT_OFFSETS.contains(&offset) {
                    self.stats.headers += 1;
                    self.check_header(ev, offset);
                }
            }
            IoEvent::SetLen { len } => self.data.set_len(len),
            IoEvent::Sync => {
                self.stats.data_syncs += 1;
                self.data.sync();
                if self.in_flight.is_some() && !self.in_flight_logged {
                    self.in_flight_data_sync = true;
                }
            }
            IoEvent::LogWrite { offset, len } => {
                if self.in_flight.is_none() {
                    self.fail(ev, "a log write outside a commit".into());
                }
                if self.in_flight_logged {
                    self.fail(ev, "a second log write in one commit".into());
                }
                if len > LOG_SIZE {
                    self.stats.big_commits += 1;
                }
                if len > FRAME_TARGET as u64 {
                    self.stats.multi_frame_commits += 1;
                }
                self.in_flight_logged = true;
                self.log.write(offset, len);
            }
            IoEvent::LogSetLen { len } => self.log.set_len(len),
            IoEvent::LogSync => {
                self.stats.log_syncs += 1;
                self.log.sync();
                match self.in_flight.take() {
                    Some(s) if self.in_flight_logged => {
                        // The commit point: from here on only this state.
                        self.durable = s;
                        self.in_flight_logged = false;
                        if std::mem::take(&mut self.in_flight_data_sync) {
                            self.stats.bulk_commits += 1;
                        }
                    }
                    _ => self.fail(ev, "a log sync without a commit's log write".into()),
                }
            }
        }
        self.write_run = match ev {
            IoEvent::Write { .. } => self.write_run + 1,
            _ => 0,
        };
        if self.stats.events < self.skip_until {
            return;
        }
        // Eight images per event while anything is unsynced (three for the
        // large store of `Work::MultiFrame`, 48 for a log write of several
        // frames); past 32 data writes in a row (applying a huge commit) the
        // k-th write gets one with probability 4/k.
        let pending = !self.data.pending.is_empty() || !self.log.pending.is_empty();
        let n = match self.write_run {
            _ if !pending => 1,
            _ if matches!(*ev, IoEvent::LogWrite { len, .. } if len > FRAME_TARGET as u64) => 48,
            0..=32 => self.per_event,
            k => u64::from(self.rng.chance(k / 4)),
        };
        for _ in 0..n {
            self.check(ev, false);
        }
        if matches!(*ev, IoEvent::LogWrite { len, .. } if len > FRAME_TARGET as u64) {
            // And some images of exactly that case.
            for _ in 0..4 {
                self.check(ev, true);
            }
        }
    }

    /// A header (checkpoint, growth) names exactly the last durable commit.
    fn check_header(&self, ev: &IoEvent, offset: u64) {
        let Some(Op::Write { data, .. }) = self.data.pending.last() else {
            unreachable!()
        };
        let slot = SLOT_OFFSETS.iter().position(|&o| o == offset).unwrap();
        match Header::decode(data, slot) {
            Ok(h) if h.generation == self.durable.generation
                && h.record_count == self.durable.records.len() as u64 => {}
            Ok(h) => self.fail(
                ev,
                format!(
                    "header {} names generation {} with {} records; the last durable commit is {} with {}",
                    h.header_seq,
                    h.generation,
                    h.record_count,
                    self.durable.generation,
                    self.durable.records.len()
                ),
            ),
            Err(e) => self.fail(ev, format!("the engine wrote an invalid header: {e}")),
        }
    }

    fn fail(&self, ev: &IoEvent, msg: String) -> ! {
        self.failed.set(true);
        let mut about = String::new();
        if let Some((data, log)) = &self.last_image {
            // Keep the image (the temporary directory goes away).
            let keep = std::env::temp_dir().join(format!(
                "recmap-power-loss-{}-{}.rmap",
                self.seed, self.stats.images
            ));
            let _ = std::fs::write(&keep, data);
            let _ = std::fs::write(log_path(&keep), log);
            about = format!(
                "\nimage kept at {}\n{}",
                keep.display(),
                describe(data, log)
            );
        }
        about += &format!(
            "durable data and log:\n{}",
            describe(&self.data.durable, &self.log.durable)
        );
        for op in &self.data.pending {
            if let Op::Write { offset, data } = op {
                if let Some(i) = SLOT_OFFSETS.iter().position(|o| o == offset) {
                    match Header::decode(data, i) {
                        Ok(h) => about += &format!(
                            "pending header write, slot {i}: header_seq {} generation {} records {}\n",
                            h.header_seq, h.generation, h.record_count
                        ),
                        Err(e) => about += &format!("pending header write, slot {i}: {e}\n"),
                    }
                }
            }
        }
        panic!(
            "power-loss image {} after event {} ({ev:?}): {msg}\nrecent events: {:?}{about}\nreplay with RECMAP_POWER_SEED={}",
            self.stats.images, self.stats.events, self.recent, self.seed
        );
    }

    /// The model's state `store` must show: the last durable commit, or the
    /// in-flight one once its frames were written. Every record is compared.
    fn expect_state(&self, ev: &IoEvent, store: &Store<Rec>, what: &str) -> u64 {
        let (g, n) = (store.generation(), store.len());
        let state = if g == self.durable.generation {
            &self.durable
        } else {
            match &self.in_flight {
                Some(f) if f.generation == g && self.in_flight_logged => f,
                Some(f) if f.generation == g => self.fail(
                    ev,
                    format!("{what}: at the in-flight commit {g}, but none of its frames was written"),
                ),
                f => self.fail(
                    ev,
                    format!(
                        "{what}: opened at generation {g} with {n} records; durable {} ({} records), in flight {:?}",
                        self.durable.generation,
                        self.durable.records.len(),
                        f.as_ref().map(|f| (f.generation, f.records.len()))
                    ),
                ),
            }
        };
        if n != state.records.len() as u64 {
            self.fail(
                ev,
                format!(
                    "{what}: generation {g} with {n} records, the model's has {}",
                    state.records.len()
                ),
            );
        }
        let bad: Vec<u64> = (0..n)
            .filter(|&i| store.get(i) != Some(&state.records[i as usize]))
            .collect();
        if let Some(&i) = bad.first() {
            self.fail(
                ev,
                format!(
                    "{what}: generation {g}: {} of {n} records differ from the model, first {i}: {:?}, want {:?}",
                    bad.len(),
                    store.get(i),
                    state.records[i as usize]
                ),
            );
        }
        g
    }

    fn expect_verified(&self, ev: &IoEvent, store: &Store<Rec>, what: &str) {
        match store.verify() {
            Ok(r) if r.is_ok() => {}
            Ok(r) => self.fail(ev, format!("{what}: verify found {:?}", r.problems)),
            Err(e) => self.fail(ev, format!("{what}: verify failed: {e}")),
        }
    }

    /// Checks one crash image; `cut_after_first_frame`: the log's pending
    /// write of several frames reached the disk up to a point past its
    /// first frame (and before its end), nothing else of the log did.
    fn check(&mut self, ev: &IoEvent, cut_after_first_frame: bool) {
        self.stats.images += 1;
        let (data, torn_header) = self.data.image(&mut self.rng, |offset, len| {
            len >= SLOT_LEN && SLOT_OFFSETS.contains(&offset)
        });
        let (log, torn_frame) = match self.log.pending.last() {
            Some(Op::Write { offset, data }) if cut_after_first_frame => {
                let first = FrameHeader::decode(data).unwrap().frame_len(24).unwrap();
                let cut = first + self.rng.below(data.len() as u64 - first);
                let mut log = self.log.durable.clone();
                put(&mut log, *offset, &data[..cut as usize], true);
                (log, true)
            }
            _ => self.log.image(&mut self.rng, |_, _| true),
        };
        // A commit of several frames in flight: did its first frame reach the
        // disk whole without the rest?
        let multi = self.log.pending.iter().find_map(|op| match op {
            Op::Write { offset, data } if data.len() > FRAME_TARGET => {
                Some((*offset as usize, data))
            }
            _ => None,
        });
        if let Some((o, frames)) = multi {
            self.stats.multi_frame_images += 1;
            let first = FrameHeader::decode(frames).unwrap().frame_len(24).unwrap() as usize;
            let whole = log.get(o..o + frames.len()) == Some(&frames[..]);
            if log.get(o..o + first) == Some(&frames[..first]) && !whole {
                self.stats.first_frame_only += 1;
            }
        }
        if torn_header || torn_frame {
            self.stats.torn += 1;
        }
        let path = self.image_path.clone();
        std::fs::write(&path, &data).unwrap();
        std::fs::write(log_path(&path), &log).unwrap();
        let _ = std::fs::remove_file(lock_path(&path));
        self.last_image = Some((data, log));
        let (data, _) = self.last_image.as_ref().unwrap();

        // Read-only, the log not replayed: the reader overlays it.
        let ro = match Store::<Rec>::open_read_only(&path) {
            Ok(s) => s,
            Err(e) => self.fail(ev, format!("read-only open failed: {e}")),
        };
        let g = self.expect_state(ev, &ro, "read-only open (log not replayed)");
        self.expect_verified(ev, &ro, "read-only open (log not replayed)");
        drop(ro);
        let slots = [0, 1].map(|i| Header::decode(&data[SLOT_OFFSETS[i] as usize..][..2048], i));
        let header_generation = choose_slot(&slots).map(|i| slots[i].as_ref().unwrap().generation);
        if header_generation.is_some_and(|h| h < g) {
            self.stats.log_only += 1;
        }

        // A writer: recovery replays the log and checkpoints.
        let mut w = match Options::new().log_size(LOG_SIZE).open::<Rec>(&path) {
            Ok(s) => s,
            Err(e) => self.fail(ev, format!("writer open (recovery) failed: {e}")),
        };
        let g2 = self.expect_state(ev, &w, "writer open (log replayed)");
        if g2 != g {
            self.fail(
                ev,
                format!("the read-only open saw generation {g}, recovery {g2}"),
            );
        }
        self.expect_verified(ev, &w, "writer open (log replayed)");
        if self.in_flight.as_ref().is_some_and(|f| f.generation == g) {
            self.stats.at_in_flight += 1;
        }

        // Now and then, continue from the image as a writer.
        if self.rng.chance(16) {
            let base = w.len();
            w.extend((base..base + 300).map(|i| rec(i, 99))).unwrap();
            w.commit().unwrap();
            w.close().unwrap();
            let r = Store::<Rec>::open_read_only(&path).unwrap();
            assert_eq!((r.len(), r.generation()), (base + 300, g + 1));
            let state = if g == self.durable.generation {
                &self.durable
            } else {
                self.in_flight.as_ref().unwrap()
            };
            for i in 0..base {
                assert_eq!(r.get(i), Some(&state.records[i as usize]), "record {i}");
            }
            for i in base..base + 300 {
                assert_eq!(r.get(i), Some(&rec(i, 99)), "record {i}");
            }
            self.expect_verified(ev, &r, "continued writer, reopened");
            self.stats.continued += 1;
        }
    }
}

/// Commits, telling the model first: the observer checks crash images in
/// the middle of the engine's call.
fn commit(store: &mut Store<Rec>, sim: &Mutex<Sim>, current: &[Rec]) {
    let changed = store.raw().has_uncommitted();
    if changed {
        let mut s = sim.lock().unwrap();
        s.in_flight = Some(State {
            generation: s.durable.generation + 1,
            records: current.to_vec(),
        });
        s.in_flight_logged = false;
        s.in_flight_data_sync = false;
    }
    store.commit().unwrap();
    let mut s = sim.lock().unwrap();
    assert!(s.in_flight.is_none(), "commit returned before its log sync");
    assert_eq!(s.durable.generation, store.generation());
    assert_eq!(s.durable.records.len(), current.len());
    if changed {
        s.stats.commits += 1;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Appends only, in an append-only store.
    AppendOnly,
    /// Appends, in-place updates (a few records, or batches over many pages),
    /// checkpoints and rollbacks.
    Updates,
    /// As `Updates`, on 60,000 records, with commits of 50,000 updates:
    /// 1.6 MB of frames (two frames in one log write).
    MultiFrame,
}

fn run(work: Work, seed: u64, steps: u64) -> Stats {
    let append_only = work == Work::AppendOnly;
    let dir = scratch_dir();
    let path = dir.path().join("live.rmap");
    let mut store = Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .log_size(LOG_SIZE)
        .append_only(append_only)
        .open::<Rec>(&path)
        .unwrap();
    let sim = Arc::new(Mutex::new(Sim {
        seed,
        rng: Rng(seed | 1),
        data: FileSim::open(&path),
        log: FileSim::open(&log_path(&path)),
        image_path: dir.path().join("image.rmap"),
        durable: State {
            generation: store.generation(),
            records: Vec::new(),
        },
        in_flight: None,
        in_flight_logged: false,
        in_flight_data_sync: false,
        stats: Stats::default(),
        failed: Cell::new(false),
        recent: Vec::new(),
        last_image: None,
        skip_until: std::env::var("RECMAP_POWER_FROM_EVENT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        write_run: 0,
        per_event: if work == Work::MultiFrame { 3 } else { 8 },
    }));
    let s2 = sim.clone();
    store.raw_mut().set_io_observer(Some(Box::new(move |ev| {
        s2.lock().unwrap_or_else(|e| e.into_inner()).on_event(ev)
    })));
    let mut rng = Rng(mix(seed) | 1);
    let mut current: Vec<Rec> = Vec::new();
    if work == Work::MultiFrame {
        current.extend((0..60_000).map(|i| rec(i, 0)));
        store.extend(current.iter().copied()).unwrap();
        commit(&mut store, &sim, &current);
    }
    for step in 0..steps {
        let len = store.len();
        if work == Work::MultiFrame && step % 5 == 2 {
            const HUGE: u64 = 50_000;
            let start = rng.below(len - HUGE);
            for i in start..start + HUGE {
                let v = rec(i, step + 1);
                current[i as usize] = v;
                store.set(i, &v).unwrap();
            }
            commit(&mut store, &sim, &current);
            continue;
        }
        match rng.below(if append_only { 4 } else { 7 }) {
            0 => {
                for i in len..len + 1 + rng.below(4) {
                    current.push(rec(i, 0));
                    store.push(&rec(i, 0)).unwrap();
                }
            }
            1 | 2 => {
                let k = if rng.chance(24) {
                    BULK + rng.below(1000) // written in place, synced first
                } else if rng.chance(8) {
                    1 + rng.below(3000) // up to 96 KB of frames: larger than the log
                } else {
                    1 + rng.below(300)
                };
                let new: Vec<Rec> = (len..len + k).map(|i| rec(i, 0)).collect();
                current.extend_from_slice(&new);
                store.extend(new).unwrap();
            }
            3 => {
                if rng.chance(3) {
                    store.checkpoint().unwrap();
                } else if rng.chance(3) {
                    store.rollback().unwrap();
                    current = sim.lock().unwrap().durable.records.clone();
                }
            }
            _ if len > 0 => {
                // Mostly a few records; sometimes a batch across many pages.
                let k = if rng.chance(5) {
                    10 + rng.below(40)
                } else {
                    1 + rng.below(3)
                };
                for _ in 0..k {
                    let i = rng.below(len);
                    let v = rec(i, step + 1);
                    current[i as usize] = v;
                    if rng.chance(3) {
                        store.update(i, |r| *r = v).unwrap();
                    } else {
                        store.set(i, &v).unwrap();
                    }
                }
            }
            _ => {}
        }
        if rng.chance(2) {
            commit(&mut store, &sim, &current);
        }
    }
    commit(&mut store, &sim, &current);
    // Closing checkpoints: its images are checked too.
    store.close().unwrap();
    let s = sim.lock().unwrap();
    assert!(
        s.data.pending.is_empty(),
        "closed with unsynced data writes"
    );
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.len(), current.len() as u64);
    assert!(r.iter().eq(current.iter()), "the live store after close");
    assert!(r.verify().unwrap().is_ok());
    s.stats
}

/// Every image is opened as a writer, whose recovery syncs: on a RAM-backed
/// file system (where there is one) that costs no disk flush. The
/// simulation does not depend on the file system's durability.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn seed() -> u64 {
    std::env::var("RECMAP_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn steps() -> u64 {
    std::env::var("RECMAP_POWER_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}

fn report(name: &str, s: &Stats, t: std::time::Duration) {
    eprintln!(
        "{name}: {} images from {} events in {:.1?} ({} commits: {} bulk, {} larger than the log, \
         {} of several frames; {} log syncs, {} data syncs, {} headers); {} at the in-flight \
         commit, {} with commits only in the log, {} torn, {} continued as a writer; {} while a \
         commit of several frames was in flight, {} of them with only its first frame",
        s.images,
        s.events,
        t,
        s.commits,
        s.bulk_commits,
        s.big_commits,
        s.multi_frame_commits,
        s.log_syncs,
        s.data_syncs,
        s.headers,
        s.at_in_flight,
        s.log_only,
        s.torn,
        s.continued,
        s.multi_frame_images,
        s.first_frame_only
    );
}

#[test]
fn power_loss_append_only() {
    let seed = seed();
    eprintln!("power_loss_append_only: RECMAP_POWER_SEED={seed}");
    let t0 = std::time::Instant::now();
    let s = run(Work::AppendOnly, seed, steps());
    report("power_loss_append_only", &s, t0.elapsed());
    assert!(s.images >= 1000, "only {} images", s.images);
    assert!(s.at_in_flight > 0 && s.log_only > 0, "{s:?}");
}

#[test]
fn power_loss_with_in_place_updates() {
    let seed = seed();
    eprintln!("power_loss_with_in_place_updates: RECMAP_POWER_SEED={seed}");
    let t0 = std::time::Instant::now();
    let s = run(Work::Updates, seed, steps());
    report("power_loss_with_in_place_updates", &s, t0.elapsed());
    assert!(s.images >= 1000, "only {} images", s.images);
    assert!(s.at_in_flight > 0 && s.log_only > 0, "{s:?}");
}

#[test]
fn power_loss_with_multi_frame_commits() {
    let seed = seed();
    eprintln!("power_loss_with_multi_frame_commits: RECMAP_POWER_SEED={seed}");
    let t0 = std::time::Instant::now();
    let s = run(Work::MultiFrame, seed, (steps() / 15).max(3));
    report("power_loss_with_multi_frame_commits", &s, t0.elapsed());
    assert!(s.multi_frame_commits > 0, "{s:?}");
    assert!(s.first_frame_only > 0, "never only the first frame: {s:?}");
}
