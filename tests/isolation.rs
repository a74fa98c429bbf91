//! Multi-process isolation stress: snapshot readers beside a writer that is
//! killed and replaced.
//!
//! The store holds `PAIRS` pairs of accounts, record `p` paired with record
//! `p + PAIRS` (about 30 pages apart), then `METAS` meta records on pages of
//! their own. A writer process (the test binary re-run as the ignored test
//! `iso_writer`) moves amounts between the two records of a pair, 1 to
//! 3,000 pairs per commit: both `set`s of every pair and one meta record are
//! committed together, all carrying the commit's sequence number, so in
//! every commit each pair sums to `PAIR_TOTAL`, both of its records carry
//! the same sequence number, and no record's number exceeds the newest meta
//! record's. Before it writes anything of batch `s` the writer raises the
//! shared "in flight" word to `s`; after `commit` returns it raises the
//! "acknowledged" word. Some batches are rolled back: their writes carry
//! the `ROLLED` mark and break the pair sum, and must never be seen. Some
//! writers are SIGKILLed (at any point: while recovering, inside a batch,
//! inside a commit) and, after a gap with no writer at all, a new writer
//! recovers the store and goes on; a few stop cleanly instead.
//!
//! Reader processes (`iso_reader`) read through `Reader::read_txn` and
//! `Reader::snapshot` with `Snapshot::iter` (whole store), `read_range`
//! (runs of pairs), `get` (random pairs) and the raw snapshot, and check
//! each transaction: every record whole and at its index, no rolled-back
//! value, no sequence number above the "in flight" word read after the
//! read (a commit that had not begun), every pair summing to `PAIR_TOTAL`
//! with equal sequence numbers, the total, untouched fillers, no record
//! newer than the newest meta record, that one at least the "acknowledged"
//! word read before the transaction (the snapshot is of a commit at least
//! as new as every one acknowledged before it was taken), generations and
//! sequence numbers never going back, and one sequence number per
//! generation. `SnapshotExpired` retries (inside `read_txn`, and of plain
//! snapshots) are counted and reported. Plain `Reader::get` of the two
//! records of a pair at different times may see a broken sum (read
//! committed): those are counted, not failures; each record must still be
//! whole, committed and begun. Each new writer checks at open that recovery
//! left a consistent store holding every acknowledged commit, and `verify()`
//! finds nothing; so does the parent at the end.
//!
//! `checker_detects_injected_violations` shows the checker catches every
//! kind of violation; `plain_gets_at_different_times_can_break_a_pair`
//! shows a real broken pair from read-committed gets (and the snapshot
//! that refuses it).
//!
//! `RECMAP_ISOLATION_SECONDS` sets the run time (default 12 s for
//! `isolation_stress`, 300 s for the ignored `isolation_stress_long`);
//! `RECMAP_ISOLATION_SEED` replays the parent's choices.
//!
//! On Windows the kill is `TerminateProcess` (`common::killed`).

mod common;

use common::spawn::Launch;
use common::{mix, seed_from_env, Rng};
use recmap::{Error, Options, Reader, Store};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

recmap::record! {
    /// 40 bytes: 102 per page, 16 bytes of padding at the end of each page.
    pub struct Acct { pub index: u64, pub amount: i64, pub seq: u64, pub mark: u64, pub check: u64 }
}

const PAIRS: u64 = 3000;
/// Records per page (40-byte records).
const RPP: u64 = 4096 / 40;
/// Meta records, one per page after the pairs: commit `s` writes meta
/// record `s % METAS` with its sequence number, so the newest commit's
/// number is the highest of them. They rotate so that no page is written by
/// every commit (while recovery replayed the log record by record, such a
/// page was never served to snapshots again after a recovery; see
/// `recovery_replay_leaves_pages_it_rewrote_unservable`).
const METAS: u64 = 8;
/// The records after the pairs: meta records every `RPP`-th, fillers
/// (never written) between them.
const META_BASE: u64 = 2 * PAIRS;
const N: u64 = META_BASE + (METAS - 1) * RPP + 1;
const PAIR_TOTAL: i64 = 1_000_000;
/// The mark of a write that is rolled back ("ROLLED").
const ROLLED: u64 = 0x0000_4445_4c4c_4f52;

const READERS: usize = 3;

const ENV_PATH: &str = "RECMAP_ISO_PATH";
const ENV_PROGRESS: &str = "RECMAP_ISO_PROGRESS";
const ENV_ID: &str = "RECMAP_ISO_ID";
const ENV_SEED: &str = "RECMAP_ISO_SEED";
const ENV_LOG: &str = "RECMAP_ISO_LOG_SIZE";
const ENV_DEADLINE: &str = "RECMAP_ISO_DEADLINE_SECS";

fn acct_check(r: &Acct) -> u64 {
    mix(mix(r.index ^ mix(r.amount as u64)) ^ mix(r.seq ^ 0x5eed) ^ r.mark)
}

fn acct(index: u64, amount: i64, seq: u64, mark: u64) -> Acct {
    let mut r = Acct {
        index,
        amount,
        seq,
        mark,
        check: 0,
    };
    r.check = acct_check(&r);
    r
}

fn meta(k: u64) -> u64 {
    META_BASE + k * RPP
}

/// The value of a record past the pairs that is not a meta record.
fn filler(i: u64) -> Acct {
    acct(i, 0, 0, 0)
}

fn peer(i: u64) -> u64 {
    if i < PAIRS {
        i + PAIRS
    } else {
        i - PAIRS
    }
}

// ----- the checker ----------------------------------------------------------

/// What a reader must never see.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Violation {
    /// Not a whole record written at this index (torn, misplaced, garbage).
    Torn { index: u64 },
    /// A write that was rolled back.
    RolledBack { index: u64, seq: u64 },
    /// A sequence number whose commit had not begun when the read ended.
    NotBegun { index: u64, seq: u64, bound: u64 },
    /// A pair whose records do not sum to `PAIR_TOTAL`.
    PairSum { pair: u64, sum: i64 },
    /// A pair whose records come from different commits.
    PairSeq { pair: u64, seqs: (u64, u64) },
    /// A record of a commit newer than the newest meta record's.
    AheadOfMeta { index: u64, seq: u64, meta: u64 },
    /// The store total is off.
    Total { total: i128 },
    /// A filler record that changed.
    Filler { index: u64 },
    /// A snapshot of the wrong length.
    Length { len: u64 },
    /// A snapshot older than a commit acknowledged before it was taken.
    Stale { meta: u64, acked: u64 },
}

/// One record on its own: whole, at `i`, committed, begun by `bound`.
fn check_record(i: u64, r: &Acct, bound: u64) -> Result<(), Violation> {
    if r.index != i || r.check != acct_check(r) {
        return Err(Violation::Torn { index: i });
    }
    if r.mark != 0 {
        return Err(Violation::RolledBack {
            index: i,
            seq: r.seq,
        });
    }
    if r.seq > bound {
        return Err(Violation::NotBegun {
            index: i,
            seq: r.seq,
            bound,
        });
    }
    Ok(())
}

/// Pair `p` (records `p` and `p + PAIRS`), each record checked too.
fn check_pair(p: u64, a: &Acct, b: &Acct, bound: u64) -> Result<(), Violation> {
    check_record(p, a, bound)?;
    check_record(p + PAIRS, b, bound)?;
    let sum = a.amount.wrapping_add(b.amount);
    if sum != PAIR_TOTAL {
        return Err(Violation::PairSum { pair: p, sum });
    }
    if a.seq != b.seq {
        return Err(Violation::PairSeq {
            pair: p,
            seqs: (a.seq, b.seq),
        });
    }
    Ok(())
}

/// A read of pairs and the meta records in one snapshot: every pair, no
/// record ahead of the newest meta record, that one at least `acked`.
/// Returns its sequence number (the snapshot's commit).
fn check_pairs(
    pairs: &[(u64, Acct, Acct)],
    metas: &[Acct],
    bound: u64,
    acked: u64,
) -> Result<u64, Violation> {
    let mut newest = 0;
    for (k, m) in metas.iter().enumerate() {
        check_record(meta(k as u64), m, bound)?;
        newest = newest.max(m.seq);
    }
    if newest < acked {
        return Err(Violation::Stale {
            meta: newest,
            acked,
        });
    }
    for (p, a, b) in pairs {
        check_pair(*p, a, b, bound)?;
        if a.seq > newest {
            return Err(Violation::AheadOfMeta {
                index: *p,
                seq: a.seq,
                meta: newest,
            });
        }
    }
    Ok(newest)
}

fn metas_of(recs: &[Acct]) -> Vec<Acct> {
    (0..METAS).map(|k| recs[meta(k) as usize]).collect()
}

/// A whole snapshot (`recs[i]` is record `i`): everything above for every
/// pair, and the total. Returns the meta record's sequence number.
fn check_full(recs: &[Acct], bound: u64, acked: u64) -> Result<u64, Violation> {
    if recs.len() as u64 != N {
        return Err(Violation::Length {
            len: recs.len() as u64,
        });
    }
    let pairs: Vec<(u64, Acct, Acct)> = (0..PAIRS)
        .map(|p| (p, recs[p as usize], recs[(p + PAIRS) as usize]))
        .collect();
    let newest = check_pairs(&pairs, &metas_of(recs), bound, acked)?;
    for i in META_BASE..N {
        if !(i - META_BASE).is_multiple_of(RPP) && recs[i as usize] != filler(i) {
            return Err(Violation::Filler { index: i });
        }
    }
    let total: i128 = recs[..META_BASE as usize]
        .iter()
        .map(|r| r.amount as i128)
        .sum();
    if total != PAIRS as i128 * PAIR_TOTAL as i128 {
        return Err(Violation::Total { total });
    }
    Ok(newest)
}

// ----- shared progress words ------------------------------------------------

/// Words of the progress file, mapped shared by every process of a run.
mod word {
    /// Highest sequence number a writer has begun writing (only grows).
    pub const IN_FLIGHT: usize = 0;
    /// Highest sequence number whose commit returned `Ok` (only grows).
    pub const ACKED: usize = 1;
    /// Writers with an id up to this one stop cleanly.
    pub const STOP_WRITER: usize = 2;
    /// Readers stop when nonzero.
    pub const STOP_READERS: usize = 3;
}

struct Progress {
    map: memmap2::MmapMut,
}

impl Progress {
    const LEN: u64 = 4096;

    fn create(path: &Path) -> Progress {
        let f = std::fs::File::create_new(path).unwrap();
        f.set_len(Self::LEN).unwrap();
        drop(f);
        Self::open(path)
    }

    fn open(path: &Path) -> Progress {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        assert_eq!(f.metadata().unwrap().len(), Self::LEN);
        // SAFETY: the file has a fixed length that nothing changes while
        // mapped, and every process touches it only through `word`'s atomics.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapMut::map_mut(&f) }.unwrap();
        Progress { map }
    }

    fn word(&self, w: usize) -> &AtomicU64 {
        assert!((w + 1) * 8 <= self.map.len());
        // SAFETY: in bounds (checked), 8-aligned (the map is page-aligned),
        // and the memory is only ever accessed atomically, by every process.
        #[allow(unsafe_code)]
        unsafe {
            &*(self.map.as_ptr().add(w * 8) as *const AtomicU64)
        }
    }

    fn get(&self, w: usize) -> u64 {
        self.word(w).load(Ordering::SeqCst)
    }

    fn raise(&self, w: usize, v: u64) {
        self.word(w).fetch_max(v, Ordering::SeqCst);
    }
}

fn env_u64(k: &str) -> u64 {
    std::env::var(k)
        .unwrap_or_else(|_| panic!("{k}"))
        .parse()
        .unwrap()
}

fn child_env() -> Option<(PathBuf, Progress, u64, u64, Instant)> {
    let path = PathBuf::from(std::env::var_os(ENV_PATH)?);
    let prog = Progress::open(Path::new(&std::env::var_os(ENV_PROGRESS).unwrap()));
    let deadline = Instant::now() + Duration::from_secs(env_u64(ENV_DEADLINE));
    Some((path, prog, env_u64(ENV_ID), env_u64(ENV_SEED), deadline))
}

// ----- the writer -----------------------------------------------------------

/// The writer: checks what the previous writer left, then moves amounts
/// until told to stop (or killed).
#[test]
#[ignore = "child process of isolation_stress"]
fn iso_writer() {
    let Some((path, prog, id, seed, deadline)) = child_env() else {
        return;
    };
    let mut out = std::io::stdout();
    writeln!(out).unwrap(); // after libtest's "test iso_writer ... "
    let mut rng = Rng::new(seed);
    let mut s = Options::new()
        .wait_for_lock(true)
        .log_size(env_u64(ENV_LOG))
        .open::<Acct>(&path)
        .unwrap();
    // Recovery left whole commits only, and every acknowledged one.
    let recs: Vec<Acct> = s.iter().copied().collect();
    let (in_flight, acked) = (prog.get(word::IN_FLIGHT), prog.get(word::ACKED));
    let newest = check_full(&recs, in_flight, acked)
        .unwrap_or_else(|v| panic!("writer {id} at open: {v:?}"));
    let rep = s.verify().unwrap();
    assert!(rep.is_ok() && rep.notes.is_empty(), "writer {id}: {rep:?}");
    writeln!(out, "ready {} {newest}", s.generation()).unwrap();
    out.flush().unwrap();
    let mut seq = in_flight.max(newest) + 1;
    let (mut commits, mut rolled) = (0u64, 0u64);
    while prog.get(word::STOP_WRITER) < id && Instant::now() < deadline {
        prog.raise(word::IN_FLIGHT, seq);
        let kind = rng.below(100);
        if kind < 20 {
            // Writes that are rolled back: marked, and breaking pair sums.
            for _ in 0..rng.range(1, 200) {
                let i = rng.below(2 * PAIRS);
                let a = s.get(i).unwrap().amount;
                s.set(i, &acct(i, a + 777_777, seq, ROLLED)).unwrap();
            }
            let m = meta(seq % METAS);
            s.set(m, &acct(m, 0, seq, ROLLED)).unwrap();
            s.rollback().unwrap();
            let m = s.get(m).unwrap();
            assert_eq!(m.mark, 0, "writer {id}: rollback left {m:?}");
            rolled += 1;
            writeln!(out, "rolled {seq}").unwrap();
            if kind < 12 {
                seq += 1;
                continue;
            }
        }
        let n = match rng.below(100) {
            0..=39 => rng.range(1, 4),
            40..=79 => rng.range(5, 50),
            80..=97 => rng.range(51, 500),
            _ => rng.range(501, 3000),
        };
        for _ in 0..n {
            let p = rng.below(PAIRS);
            let d = rng.range(1, 10_000) as i64 - 5_000;
            // Read-your-own-writes: a pair moved twice in one batch.
            let a = s.get(p).unwrap().amount;
            let b = s.get(p + PAIRS).unwrap().amount;
            s.set(p, &acct(p, a - d, seq, 0)).unwrap();
            s.set(p + PAIRS, &acct(p + PAIRS, b + d, seq, 0)).unwrap();
        }
        let m = meta(seq % METAS);
        s.set(m, &acct(m, 0, seq, 0)).unwrap();
        s.commit().unwrap();
        prog.raise(word::ACKED, seq);
        commits += 1;
        writeln!(out, "acked {seq}").unwrap();
        out.flush().unwrap();
        if rng.below(50) == 0 {
            s.checkpoint().unwrap();
        }
        seq += 1;
    }
    s.close().unwrap();
    writeln!(out, "writer done: commits {commits} rolled {rolled}").unwrap();
}

// ----- the reader -----------------------------------------------------------

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    txns: u64,
    full: u64,
    ranges: u64,
    gets: u64,
    manual: u64,
    records: u64,
    expired_retries: u64,
    give_ups: u64,
    manual_expired: u64,
    writer_died: u64,
    plain_pairs: u64,
    plain_broken: u64,
    max_seq: u64,
    max_gen: u64,
}

const STAT_KEYS: [&str; 14] = [
    "txns",
    "full",
    "ranges",
    "gets",
    "manual",
    "records",
    "expired_retries",
    "give_ups",
    "manual_expired",
    "writer_died",
    "plain_pairs",
    "plain_broken",
    "max_seq",
    "max_gen",
];

impl Stats {
    fn fields(&mut self) -> [&mut u64; 14] {
        [
            &mut self.txns,
            &mut self.full,
            &mut self.ranges,
            &mut self.gets,
            &mut self.manual,
            &mut self.records,
            &mut self.expired_retries,
            &mut self.give_ups,
            &mut self.manual_expired,
            &mut self.writer_died,
            &mut self.plain_pairs,
            &mut self.plain_broken,
            &mut self.max_seq,
            &mut self.max_gen,
        ]
    }

    fn line(mut self) -> String {
        let vals: Vec<u64> = self.fields().iter().map(|v| **v).collect();
        let body: Vec<String> = STAT_KEYS
            .iter()
            .zip(vals)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("iso reader ok: {}", body.join(" "))
    }

    fn parse(out: &str) -> Stats {
        let line = out
            .lines()
            .find_map(|l| l.find("iso reader ok: ").map(|at| &l[at + 15..]))
            .unwrap_or_else(|| panic!("no reader summary in:\n{out}"));
        let kv: HashMap<&str, u64> = line
            .split_whitespace()
            .map(|f| {
                let (k, v) = f.split_once('=').unwrap();
                (k, v.parse().unwrap())
            })
            .collect();
        let mut s = Stats::default();
        for (k, f) in STAT_KEYS.iter().zip(s.fields()) {
            *f = kv[k];
        }
        s
    }

    fn add(&mut self, mut o: Stats) {
        let max_seq = self.max_seq.max(o.max_seq);
        let max_gen = self.max_gen.max(o.max_gen);
        for (a, b) in self.fields().into_iter().zip(o.fields()) {
            *a += *b;
        }
        self.max_seq = max_seq;
        self.max_gen = max_gen;
    }
}

/// What one reader has seen so far: nothing may go back.
struct Seen {
    generation: u64,
    seq: u64,
    /// One sequence number per generation, ever.
    seq_of: HashMap<u64, u64>,
}

impl Seen {
    fn snapshot(&mut self, generation: u64, meta_seq: u64, who: &str) {
        assert!(
            generation >= self.generation,
            "{who}: generation went back: {} -> {generation}",
            self.generation
        );
        assert!(
            meta_seq >= self.seq,
            "{who}: commit sequence went back: {} -> {meta_seq} (generation {generation})",
            self.seq
        );
        let s = *self.seq_of.entry(generation).or_insert(meta_seq);
        assert_eq!(
            s, meta_seq,
            "{who}: generation {generation} read as commit {s} and as commit {meta_seq}"
        );
        self.generation = generation;
        self.seq = meta_seq;
    }
}

fn expired(e: &Error) -> bool {
    matches!(e, Error::SnapshotExpired { .. })
}

#[test]
#[ignore = "child process of isolation_stress"]
fn iso_reader() {
    let Some((path, prog, id, seed, deadline)) = child_env() else {
        return;
    };
    let who = format!("reader {id}");
    let mut rng = Rng::new(seed);
    let mut r = Reader::<Acct>::open(&path).unwrap();
    let mut st = Stats::default();
    let mut seen = Seen {
        generation: 0,
        seq: 0,
        seq_of: HashMap::new(),
    };
    while prog.get(word::STOP_READERS) == 0 && Instant::now() < deadline {
        if rng.below(8) == 0 {
            let g = r.generation();
            r.wait_for_commit(g, Duration::from_millis(5)).unwrap();
        }
        let acked = prog.get(word::ACKED);
        let mut attempts = 0u64;
        match rng.below(10) {
            // The whole store through the snapshot iterator.
            0..=2 => {
                let res = r.read_txn(|snap| {
                    attempts += 1;
                    let v = snap
                        .iter(0..snap.len())
                        .collect::<Result<Vec<Acct>, Error>>()?;
                    Ok((snap.generation(), v))
                });
                let bound = prog.get(word::IN_FLIGHT);
                match res {
                    Ok((g, v)) => {
                        let meta = check_full(&v, bound, acked)
                            .unwrap_or_else(|e| fail(&who, "full scan", e));
                        seen.snapshot(g, meta, &who);
                        st.full += 1;
                        st.records += v.len() as u64;
                    }
                    Err(e) if expired(&e) => st.give_ups += 1,
                    Err(e) => panic!("{who}: full scan: {e}"),
                }
            }
            // Runs of pairs through read_range, the meta record raw.
            3..=4 => {
                let k = rng.range(1, 300);
                let a = rng.below(PAIRS - k + 1);
                let res = r.read_txn(|snap| {
                    attempts += 1;
                    let mut x = vec![zeroed(); k as usize];
                    let mut y = x.clone();
                    let nx = snap.read_range(a, &mut x)?;
                    let ny = snap.read_range(a + PAIRS, &mut y)?;
                    let mut m = vec![zeroed(); METAS as usize];
                    let mut got = true;
                    for (k, m) in m.iter_mut().enumerate() {
                        got &= snap
                            .raw()
                            .read_into(meta(k as u64), recmap::bytemuck::bytes_of_mut(m))?;
                    }
                    Ok((snap.generation(), nx, ny, got, x, y, m))
                });
                let bound = prog.get(word::IN_FLIGHT);
                match res {
                    Ok((g, nx, ny, got, x, y, m)) => {
                        assert_eq!((nx, ny, got), (k as usize, k as usize, true), "{who}");
                        let pairs: Vec<_> = (0..k as usize)
                            .map(|j| (a + j as u64, x[j], y[j]))
                            .collect();
                        let meta = check_pairs(&pairs, &m, bound, acked)
                            .unwrap_or_else(|e| fail(&who, "read_range", e));
                        seen.snapshot(g, meta, &who);
                        st.ranges += 1;
                        st.records += 2 * k + METAS;
                    }
                    Err(e) if expired(&e) => st.give_ups += 1,
                    Err(e) => panic!("{who}: read_range: {e}"),
                }
            }
            // Random pairs through get.
            5..=6 => {
                let ps: Vec<u64> = (0..rng.range(1, 64)).map(|_| rng.below(PAIRS)).collect();
                let res = r.read_txn(|snap| {
                    attempts += 1;
                    let mut v = Vec::with_capacity(ps.len());
                    for &p in &ps {
                        let a = snap.get(p)?.expect("below len");
                        let b = snap.get(p + PAIRS)?.expect("below len");
                        v.push((p, a, b));
                    }
                    let mut m = Vec::with_capacity(METAS as usize);
                    for k in 0..METAS {
                        m.push(snap.get(meta(k))?.expect("below len"));
                    }
                    Ok((snap.generation(), v, m))
                });
                let bound = prog.get(word::IN_FLIGHT);
                match res {
                    Ok((g, v, m)) => {
                        let meta = check_pairs(&v, &m, bound, acked)
                            .unwrap_or_else(|e| fail(&who, "get", e));
                        seen.snapshot(g, meta, &who);
                        st.gets += 1;
                        st.records += 2 * v.len() as u64 + METAS;
                    }
                    Err(e) if expired(&e) => st.give_ups += 1,
                    Err(e) => panic!("{who}: get: {e}"),
                }
            }
            // A plain snapshot, retried by hand.
            7 => {
                let mut done = false;
                for _ in 0..1000 {
                    let snap = r.snapshot().unwrap();
                    let g = snap.generation();
                    assert_eq!(snap.len(), N, "{who}");
                    let v = snap.iter(0..N).collect::<Result<Vec<Acct>, Error>>();
                    match v {
                        Ok(v) => {
                            let bound = prog.get(word::IN_FLIGHT);
                            let meta = check_full(&v, bound, acked)
                                .unwrap_or_else(|e| fail(&who, "snapshot", e));
                            seen.snapshot(g, meta, &who);
                            st.records += N;
                            done = true;
                            break;
                        }
                        Err(e) if expired(&e) => {
                            st.manual_expired += 1;
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("{who}: snapshot: {e}"),
                    }
                }
                st.manual += 1;
                if !done {
                    st.give_ups += 1;
                }
                // Not a read_txn: its retries are counted as manual_expired.
                attempts = 1;
            }
            // Read committed: the two records of a pair at different times.
            _ => {
                let mut got = Vec::new();
                for _ in 0..rng.range(1, 32) {
                    let p = rng.below(PAIRS);
                    let a = r.get(p);
                    if rng.below(4) == 0 {
                        let _ = r.refresh().unwrap();
                    }
                    let b = r.get(p + PAIRS);
                    match (a, b) {
                        (Ok(Some(a)), Ok(Some(b))) => got.push((p, a, b)),
                        (Err(Error::WriterDied { .. }), _) | (_, Err(Error::WriterDied { .. })) => {
                            st.writer_died += 1;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        (a, b) => panic!("{who}: plain get of pair {p}: {a:?} {b:?}"),
                    }
                }
                let bound = prog.get(word::IN_FLIGHT);
                for (p, a, b) in got {
                    // Each record on its own must be sound...
                    check_record(p, &a, bound).unwrap_or_else(|e| fail(&who, "plain get", e));
                    check_record(p + PAIRS, &b, bound)
                        .unwrap_or_else(|e| fail(&who, "plain get", e));
                    // ...but the pair may mix commits: counted, allowed.
                    st.plain_pairs += 1;
                    if check_pair(p, &a, &b, bound).is_err() {
                        st.plain_broken += 1;
                    }
                    st.records += 2;
                }
                attempts = 1;
            }
        }
        st.txns += 1;
        st.expired_retries += attempts.saturating_sub(1);
        st.max_seq = st.max_seq.max(seen.seq);
        st.max_gen = st.max_gen.max(seen.generation);
    }
    println!("\n{}", st.line());
}

fn zeroed() -> Acct {
    recmap::bytemuck::Zeroable::zeroed()
}

fn fail(who: &str, what: &str, v: Violation) -> ! {
    panic!("{who}: {what}: {v:?}")
}

// ----- the parent -----------------------------------------------------------

/// A child process that is SIGKILLed and reaped if the parent panics.
struct Proc {
    child: Option<Child>,
    out: Option<thread::JoinHandle<String>>,
    err: Option<thread::JoinHandle<String>>,
}

impl Proc {
    /// Spawns the test binary as child test `role`; `lines` gets its stdout
    /// lines as they come (else stdout is collected).
    fn spawn(role: &str, env: &[(&str, String)], lines: Option<mpsc::Sender<String>>) -> Proc {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            role,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.launch().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = thread::spawn(move || {
            let mut all = String::new();
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
                match &lines {
                    // A line cut off by a kill has no newline: dropped.
                    Some(tx) if line.ends_with('\n') => {
                        let _ = tx.send(line.trim_end().to_string());
                    }
                    Some(_) => {}
                    None => all.push_str(&line),
                }
                line.clear();
            }
            all
        });
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Proc {
            child: Some(child),
            out: Some(out),
            err: Some(err),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL (this child, by its pid) and reap.
    fn kill(&mut self) -> (ExitStatus, String, String) {
        let _ = self.child.as_mut().unwrap().kill();
        self.wait()
    }

    /// Reaps; returns the status, the collected stdout and stderr.
    fn wait(&mut self) -> (ExitStatus, String, String) {
        let status = self.child.take().unwrap().wait().unwrap();
        let out = self.out.take().unwrap().join().unwrap();
        let err = self.err.take().unwrap().join().unwrap();
        (status, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Default, Debug)]
struct WriterTally {
    spawned: u64,
    killed: u64,
    killed_before_ready: u64,
    stopped: u64,
    acked: u64,
    rolled: u64,
    max_acked: u64,
}

/// Counts a writer's lines until it is reaped; returns whether it was ready.
fn drain(rx: &mpsc::Receiver<String>, t: &mut WriterTally) -> bool {
    let mut ready = false;
    for l in rx.try_iter() {
        if let Some(n) = l.strip_prefix("acked ") {
            t.acked += 1;
            t.max_acked = t.max_acked.max(n.parse().unwrap());
        } else if l.starts_with("rolled ") {
            t.rolled += 1;
        } else if l.starts_with("ready ") {
            ready = true;
        }
    }
    ready
}

fn run_stress(default_secs: f64) {
    let secs: f64 = std::env::var("RECMAP_ISOLATION_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_secs);
    let seed = seed_from_env("RECMAP_ISOLATION_SEED");
    println!("isolation: seed {seed} (replay with RECMAP_ISOLATION_SEED={seed}), {secs} s");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.rmap");
    let prog_path = dir.path().join("progress");
    let t0 = Instant::now();

    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Acct>(&path)
        .unwrap();
    let mut init = Vec::with_capacity(N as usize);
    let split: Vec<i64> = (0..PAIRS)
        .map(|_| rng.below(PAIR_TOTAL as u64) as i64)
        .collect();
    for i in 0..2 * PAIRS {
        let x = split[(i % PAIRS) as usize];
        init.push(acct(i, if i < PAIRS { x } else { PAIR_TOTAL - x }, 0, 0));
    }
    init.extend((META_BASE..N).map(filler));
    s.extend_from_slice(&init).unwrap();
    s.close().unwrap();
    let prog = Progress::create(&prog_path);

    let deadline_secs = (secs * 2.0) as u64 + 60;
    let env = |id: u64, seed: u64| -> Vec<(&'static str, String)> {
        vec![
            (ENV_PATH, path.display().to_string()),
            (ENV_PROGRESS, prog_path.display().to_string()),
            (ENV_ID, id.to_string()),
            (ENV_SEED, seed.to_string()),
            (ENV_DEADLINE, deadline_secs.to_string()),
        ]
    };
    let mut readers: Vec<Proc> = (0..READERS)
        .map(|k| Proc::spawn("iso_reader", &env(k as u64, rng.next_u64()), None))
        .collect();

    let end = t0 + Duration::from_secs_f64(secs);
    let mut t = WriterTally::default();
    let mut id = 0u64;
    loop {
        id += 1;
        let last = Instant::now() + Duration::from_millis(1600) >= end;
        let log_size = [64u64 << 10, 256 << 10, 4 << 20][rng.below(3) as usize];
        let mut e = env(id, rng.next_u64());
        e.push((ENV_LOG, log_size.to_string()));
        let (tx, rx) = mpsc::channel();
        let mut w = Proc::spawn("iso_writer", &e, Some(tx));
        t.spawned += 1;
        let life = if last {
            end.saturating_duration_since(Instant::now())
        } else if rng.below(10) == 0 {
            // Killed while it opens, recovers or checks the store.
            Duration::from_micros(rng.below(30_000))
        } else {
            Duration::from_millis(rng.range(50, 1500))
        };
        thread::sleep(life);
        let kill = !last && rng.below(100) < 85;
        let pid = w.pid();
        let (status, _, err) = if kill {
            w.kill()
        } else {
            prog.raise(word::STOP_WRITER, id);
            w.wait()
        };
        let ready = drain(&rx, &mut t);
        if kill {
            assert!(
                common::killed(&status),
                "writer {id} (pid {pid}) failed before the kill: {status}\n{err}"
            );
            t.killed += 1;
            if !ready {
                t.killed_before_ready += 1;
            }
        } else {
            assert!(status.success(), "writer {id} (pid {pid}): {status}\n{err}");
            t.stopped += 1;
        }
        if last {
            break;
        }
        // Sometimes no writer for a while: readers adopt the data header
        // and the log on their own.
        thread::sleep(Duration::from_millis(rng.below(50)));
    }
    prog.raise(word::STOP_READERS, 1);
    let mut total = Stats::default();
    for (k, r) in readers.iter_mut().enumerate() {
        let (status, out, err) = r.wait();
        assert!(status.success(), "reader {k}: {status}\n{out}\n{err}");
        let st = Stats::parse(&out);
        println!("isolation: reader {k}: {st:?}");
        assert!(
            st.txns > 100,
            "reader {k} ran only {} transactions",
            st.txns
        );
        total.add(st);
    }
    drop(readers);

    // The end state: whole, consistent, with every acknowledged commit.
    let s = Store::<Acct>::open(&path).unwrap();
    let recs: Vec<Acct> = s.iter().copied().collect();
    let (in_flight, acked) = (prog.get(word::IN_FLIGHT), prog.get(word::ACKED));
    // A writer killed between raising the word and printing its line
    // acknowledged one commit more than it printed.
    assert!(
        acked >= t.max_acked,
        "the acknowledged word and the writers' acks"
    );
    let meta = check_full(&recs, in_flight, acked).unwrap_or_else(|v| panic!("final: {v:?}"));
    let rep = s.verify().unwrap();
    assert!(rep.is_ok() && rep.notes.is_empty(), "final: {rep:?}");
    assert!(t.acked > 0 && total.full > 0 && total.ranges > 0 && total.gets > 0);
    println!(
        "isolation: {:.1?}: {} writers ({} SIGKILLed, {} of them before they were ready; {} \
         stopped cleanly), {} commits acknowledged, {} batches rolled back, last commit {meta} \
         (generation {}); {READERS} readers: {} read transactions ({} full scans, {} read_range, \
         {} get, {} plain snapshots), {} records read, {} SnapshotExpired retries inside \
         read_txn, {} plain-snapshot expirations, {} transactions given up after retrying, {} \
         WriterDied waits; plain get: {} of {} pairs read at different times had a broken sum \
         (allowed); 0 violations",
        t0.elapsed(),
        t.spawned,
        t.killed,
        t.killed_before_ready,
        t.stopped,
        t.acked,
        t.rolled,
        s.generation(),
        total.txns,
        total.full,
        total.ranges,
        total.gets,
        total.manual,
        total.records,
        total.expired_retries,
        total.manual_expired,
        total.give_ups,
        total.writer_died,
        total.plain_broken,
        total.plain_pairs,
    );
}

#[test]
fn isolation_stress() {
    let _serial = serial();
    run_stress(12.0);
}

#[test]
#[ignore = "long run: cargo test --release --test isolation -- --ignored isolation_stress_long"]
fn isolation_stress_long() {
    let _serial = serial();
    run_stress(300.0);
}

// Tests in this binary that spawn children run one at a time (a child
// holds copies of the parent's descriptors, and their locks, until exec).
use common::serial;

// ----- the checker can fail -------------------------------------------------

fn consistent_view(rng: &mut Rng) -> Vec<Acct> {
    let mut v = Vec::with_capacity(N as usize);
    let seqs: Vec<u64> = (0..PAIRS).map(|_| rng.range(1, 500)).collect();
    let xs: Vec<i64> = (0..PAIRS)
        .map(|_| rng.below(3 * PAIR_TOTAL as u64) as i64 - PAIR_TOTAL)
        .collect();
    for i in 0..2 * PAIRS {
        let p = i % PAIRS;
        let x = xs[p as usize];
        let amount = if i < PAIRS { x } else { PAIR_TOTAL - x };
        v.push(acct(i, amount, seqs[p as usize], 0));
    }
    v.extend((META_BASE..N).map(filler));
    // The newest commit, 500, wrote meta record 500 % METAS.
    for k in 0..METAS {
        let i = meta(k);
        let seq = if k == 500 % METAS { 500 } else { 490 + k };
        v[i as usize] = acct(i, 0, seq, 0);
    }
    v
}

/// Sets the sequence number of record `i`, keeping it whole.
fn reseq(v: &mut [Acct], i: u64, seq: u64) {
    let r = v[i as usize];
    v[i as usize] = acct(i, r.amount, seq, r.mark);
}

/// Every kind of violation, injected into a consistent view, is caught.
#[test]
fn checker_detects_injected_violations() {
    let mut rng = Rng::new(7);
    let good = consistent_view(&mut rng);
    assert_eq!(check_full(&good, 500, 500), Ok(500));
    let p = 1234u64;
    let q = p + PAIRS;
    let m = meta(500 % METAS);
    type Inject = Box<dyn Fn(&mut Vec<Acct>)>;
    let cases: Vec<(&str, Inject, Violation)> = vec![
        (
            "torn",
            Box::new(move |v| v[p as usize].amount ^= 1 << 40),
            Violation::Torn { index: p },
        ),
        (
            "misplaced",
            Box::new(move |v| v[q as usize] = v[p as usize]),
            Violation::Torn { index: q },
        ),
        (
            "rolled back",
            Box::new(move |v| {
                let r = v[q as usize];
                v[q as usize] = acct(q, r.amount + 777_777, r.seq, ROLLED)
            }),
            Violation::RolledBack {
                index: q,
                seq: good[q as usize].seq,
            },
        ),
        (
            "rolled-back meta record",
            Box::new(move |v| v[m as usize] = acct(m, 0, 500, ROLLED)),
            Violation::RolledBack { index: m, seq: 500 },
        ),
        (
            "not begun",
            Box::new(move |v| {
                for i in [p, q, meta(502 % METAS)] {
                    reseq(v, i, 502);
                }
            }),
            Violation::NotBegun {
                index: meta(502 % METAS),
                seq: 502,
                bound: 501,
            },
        ),
        (
            "broken sum",
            Box::new(move |v| {
                let r = v[p as usize];
                v[p as usize] = acct(p, r.amount + 1, r.seq, 0)
            }),
            Violation::PairSum {
                pair: p,
                sum: PAIR_TOTAL + 1,
            },
        ),
        (
            "pair from two commits",
            Box::new(move |v| {
                let s = v[q as usize].seq;
                reseq(v, q, s + 1)
            }),
            Violation::PairSeq {
                pair: p,
                seqs: (good[p as usize].seq, good[p as usize].seq + 1),
            },
        ),
        (
            "ahead of the meta records",
            Box::new(move |v| {
                reseq(v, p, 501);
                reseq(v, q, 501);
            }),
            Violation::AheadOfMeta {
                index: p,
                seq: 501,
                meta: 500,
            },
        ),
        (
            "filler",
            Box::new(|v| v[meta(3) as usize + 1] = acct(meta(3) + 1, 1, 0, 0)),
            Violation::Filler { index: meta(3) + 1 },
        ),
        (
            "short",
            Box::new(|v| {
                v.pop();
            }),
            Violation::Length { len: N - 1 },
        ),
    ];
    for (what, inject, want) in cases {
        let mut v = good.clone();
        inject(&mut v);
        assert_eq!(check_full(&v, 501, 0), Err(want), "{what}");
    }
    // A commit that had not begun: the bound is below the view's commit.
    assert_eq!(
        check_full(&good, 499, 0),
        Err(Violation::NotBegun {
            index: m,
            seq: 500,
            bound: 499
        })
    );
    // A snapshot older than an acknowledged commit.
    assert_eq!(
        check_full(&good, 600, 501),
        Err(Violation::Stale {
            meta: 500,
            acked: 501
        })
    );
    // Money created in a pair is caught by the pair, and by a partial view.
    let mut v = good.clone();
    for i in [p, q] {
        let r = v[i as usize];
        v[i as usize] = acct(i, r.amount + 1, r.seq, 0);
    }
    assert_eq!(
        check_full(&v, 500, 0),
        Err(Violation::PairSum {
            pair: p,
            sum: PAIR_TOTAL + 2
        })
    );
    let pairs = [(p, v[p as usize], v[q as usize])];
    assert!(check_pairs(&pairs, &metas_of(&v), 500, 0).is_err());
    assert_eq!(
        check_pairs(
            &[(p, good[p as usize], good[q as usize])],
            &metas_of(&good),
            500,
            500
        ),
        Ok(500)
    );
}

/// Read committed is not a snapshot: `Reader::get` of a pair's two records
/// with a commit in between sees a broken pair, which the checker reports.
/// A snapshot taken before that commit refuses the changed pages
/// (`SnapshotExpired`) instead; a new one is consistent.
#[test]
fn plain_gets_at_different_times_can_break_a_pair() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.rmap");
    let mut rng = Rng::new(11);
    let view = consistent_view(&mut rng);
    let mut s = Options::new().create_new(true).open::<Acct>(&path).unwrap();
    s.extend_from_slice(&view).unwrap();
    s.commit().unwrap();
    let mut r = Reader::<Acct>::open(&path).unwrap();
    let p = 42u64;
    let m = meta(501 % METAS);
    let a = r.get(p).unwrap().unwrap();
    let snap = r.snapshot().unwrap();
    let before = snap.generation();
    assert_eq!(snap.get(p).unwrap(), Some(a));
    // The writer moves 100 from p to its peer (commit 501).
    let (x, y) = (*s.get(p).unwrap(), *s.get(peer(p)).unwrap());
    s.set(p, &acct(p, x.amount - 100, 501, 0)).unwrap();
    s.set(peer(p), &acct(peer(p), y.amount + 100, 501, 0))
        .unwrap();
    s.set(m, &acct(m, 0, 501, 0)).unwrap();
    s.commit().unwrap();
    for i in [peer(p), p, m] {
        assert!(
            matches!(snap.get(i), Err(Error::SnapshotExpired { generation, index })
                if generation == before && index == i),
            "record {i}: a snapshot never returns a later commit's value"
        );
    }
    // Read committed: the first record from before, the second from after.
    let b = r.get(peer(p)).unwrap().unwrap();
    assert_eq!(r.generation(), before, "get does not adopt");
    assert_eq!(
        check_pair(p, &a, &b, 501),
        Err(Violation::PairSum {
            pair: p,
            sum: PAIR_TOTAL + 100
        })
    );
    // A new snapshot: the newest commit, consistent.
    let snap = r.snapshot().unwrap();
    assert!(snap.generation() > before);
    let (a, b) = (
        snap.get(p).unwrap().unwrap(),
        snap.get(peer(p)).unwrap().unwrap(),
    );
    let metas: Vec<Acct> = (0..METAS)
        .map(|k| snap.get(meta(k)).unwrap().unwrap())
        .collect();
    assert_eq!(check_pairs(&[(p, a, b)], &metas, 501, 501), Ok(501));
}

/// A commit that writes several records of one page leaves the page
/// servable to snapshots of that commit (the stripe word is exactly twice
/// the generation), commit after commit.
#[test]
fn a_snapshot_serves_a_page_its_commit_wrote_several_records_of() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.rmap");
    let mut s = Options::new().create_new(true).open::<Acct>(&path).unwrap();
    s.extend_from_slice(&consistent_view(&mut Rng::new(1)))
        .unwrap();
    s.commit().unwrap();
    let mut r = Reader::<Acct>::open(&path).unwrap();
    for k in 0..5u64 {
        // Four records of page 0 in one commit.
        for i in [0, 1, 2, 3] {
            let x = *s.get(i).unwrap();
            s.set(i, &acct(i, x.amount, 600 + k, 0)).unwrap();
        }
        s.commit().unwrap();
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.generation(), s.generation());
        for i in [0, 1, 2, 3, 50] {
            let got = snap.get(i).map(|o| o.map(|a| a.seq));
            let want = if i < 4 { 600 + k } else { view_seq(&s, i) };
            assert_eq!(got.ok().flatten(), Some(want), "commit {k}, record {i}");
        }
    }
}

fn view_seq(s: &Store<Acct>, i: u64) -> u64 {
    s.get(i).unwrap().seq
}

/// Recovery must leave the pages it replayed servable to snapshots of the
/// recovered commit and of later ones. It did not while it replayed every
/// commit of the log record by record, each record in its own stripe
/// section, over pages that mostly held those bytes already: every section
/// adds 2 to the stripe word, so the words claimed commits far past the
/// recovered generation and snapshots of those pages expired until later
/// commits that left the page alone caught the generation up; a page every
/// commit writes never caught up. Recovery now writes only the last image
/// of each record that differs from the file, in one section per stripe,
/// and closes the stripes a dead writer left odd.
#[test]
fn recovery_replay_leaves_pages_it_rewrote_unservable() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replayed.rmap");
    let mut s = Options::new().create_new(true).open::<Acct>(&path).unwrap();
    s.extend_from_slice(&consistent_view(&mut Rng::new(1)))
        .unwrap();
    s.commit().unwrap();
    let mut r = Reader::<Acct>::open(&path).unwrap();
    for k in 0..3 {
        let x = *s.get(0).unwrap();
        s.set(0, &acct(0, x.amount, 600 + k, 0)).unwrap();
        s.commit().unwrap();
    }
    assert!(r.snapshot().unwrap().get(0).is_ok(), "before the crash");
    // As a SIGKILL after the commits: the log holds them, the data file too.
    s.simulate_crash();
    let mut s = Store::<Acct>::open(&path).unwrap();
    assert_eq!(r.snapshot().unwrap().generation(), s.generation());
    let got = r.snapshot().unwrap().get(0).map(|o| o.map(|a| a.seq));
    // A page every commit writes stays unservable.
    for k in 3..6 {
        let x = *s.get(0).unwrap();
        s.set(0, &acct(0, x.amount, 600 + k, 0)).unwrap();
        s.commit().unwrap();
        let snap = r.snapshot().unwrap();
        assert!(
            snap.get(0).is_ok(),
            "commit {k} after recovery: {:?}",
            snap.get(0)
        );
    }
    assert_eq!(got.ok().flatten(), Some(602), "the recovered commit");
}
