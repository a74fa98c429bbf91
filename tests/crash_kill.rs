//! SIGKILL crash tests (`docs/durability.md`, "process kill").
//!
//! Two loops, each killing `RECMAP_CRASH_ITERATIONS` children:
//! `sigkill_during_appends_and_commits` (below) and
//! `sigkill_inside_update_batches` (update batches of 1 to 1,000 records
//! mixed with appends, rollbacks and checkpoints; see its section).
//!
//! The test binary re-runs itself as a child (the ignored test
//! `crash_child`, driven by environment variables). The child opens (or
//! creates) the store and loops: append a batch of random size (single
//! pushes, iterator extends, slice extends; sometimes also an idempotent
//! in-place `set` of a committed record), `commit`, and print `acked <len>`
//! once the commit returned `Ok`. Record `i` is derived from `i` alone, so
//! any record can be checked.
//!
//! The parent kills the child with SIGKILL after a random delay — sometimes
//! before it has even opened the store, mostly while it works, from
//! microseconds to tens of milliseconds, so kills land during appends,
//! growth and commits — then reopens the store as a writer and asserts:
//! the committed length is at least the last acknowledged one (and never
//! below any length acknowledged or verified before), every record below it
//! is intact, `verify()` passes with no notes, and the next child opens at
//! exactly that length. Each child continues the same file (64 KiB chunks),
//! so the file grows through many chunks over the run.
//!
//! `RECMAP_CRASH_ITERATIONS` (default 50; 1000 for the long run) sets the
//! number of kills of each loop; `RECMAP_CRASH_SEED` replays a run's random
//! choices (the seed is printed; kill timing is not replayed).
//!
//! On Windows the kill is `TerminateProcess` (`common::killed`).

mod common;

use common::spawn::Launch;
use common::{mix, seed_from_env, Make, Rng, R24};
use recmap::{Error, Options, Store};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CHUNK: u64 = 64 << 10;
const CHILD_PATH: &str = "RECMAP_CRASH_CHILD_PATH";
const CHILD_SEED: &str = "RECMAP_CRASH_CHILD_SEED";

/// The child: appends and commits until killed. Run only by the parent test.
#[test]
#[ignore = "child process of sigkill_during_appends_and_commits"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_PATH) else {
        return;
    };
    let mut rng = Rng::new(std::env::var(CHILD_SEED).unwrap().parse().unwrap());
    let mut out = std::io::stdout();
    // libtest has printed "test crash_child ... " without a newline.
    writeln!(out).unwrap();
    let mut s = match Options::new()
        .create(true)
        .chunk_size(CHUNK)
        .open::<R24>(&path)
    {
        Ok(s) => s,
        Err(e) => {
            writeln!(out, "error open: {e}").unwrap();
            return;
        }
    };
    writeln!(out, "ready {}", s.len()).unwrap();
    out.flush().unwrap();
    let mut batch = Vec::new();
    loop {
        let len = s.len();
        let n = match rng.below(100) {
            0..=44 => rng.range(1, 8),
            45..=79 => rng.range(9, 500),
            80..=94 => rng.range(500, 5000),
            _ => rng.range(5000, 40_000),
        };
        let r = (|| -> Result<(), Error> {
            match rng.below(3) {
                0 => {
                    for i in len..len + n {
                        s.push(&R24::make(i))?;
                    }
                }
                1 => {
                    s.extend((len..len + n).map(R24::make))?;
                }
                _ => {
                    batch.clear();
                    batch.extend((len..len + n).map(R24::make));
                    s.extend_from_slice(&batch)?;
                }
            }
            if len > 0 && rng.below(10) == 0 {
                // Rewrite a committed record with its own value: its page
                // becomes dirty and is re-checksummed, its bytes stay.
                let i = rng.below(len);
                s.set(i, &R24::make(i))?;
            }
            s.commit()?;
            Ok(())
        })();
        match r {
            Ok(()) => writeln!(out, "acked {}", s.len()).unwrap(),
            Err(e) => {
                writeln!(out, "error {e}").unwrap();
                out.flush().unwrap();
                return;
            }
        }
        out.flush().unwrap();
    }
}

enum Event {
    Ready(u64),
    Acked(u64),
    /// A batch the child rolled back (update-batch child only).
    Rolled(u64),
    Error(String),
}

/// Parses the child's stdout into events until end of file. A line cut off
/// by the kill (no newline) is ignored.
fn read_events(out: impl std::io::Read, tx: mpsc::Sender<Event>) {
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {}
        }
        let l = line.trim_end();
        let ev = if let Some(n) = l.strip_prefix("acked ") {
            Event::Acked(n.parse().unwrap())
        } else if let Some(n) = l.strip_prefix("rolled ") {
            Event::Rolled(n.parse().unwrap())
        } else if let Some(n) = l.strip_prefix("ready ") {
            Event::Ready(n.split(' ').next().unwrap().parse().unwrap())
        } else if l.contains("error") || l.contains("FAILED") || l.contains("panicked") {
            Event::Error(l.to_string())
        } else {
            continue;
        };
        if tx.send(ev).is_err() {
            return;
        }
    }
}

/// Kills the child if the parent panics, so no orphan keeps appending.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn iterations() -> u64 {
    std::env::var("RECMAP_CRASH_ITERATIONS")
        .map_or(50, |v| v.parse().expect("RECMAP_CRASH_ITERATIONS"))
}

/// Reopens after a kill and checks everything; returns the committed length.
fn check_after_kill(path: &Path, at_least: u64, ever_opened: bool, ctx: &str) -> Option<u64> {
    let s = match Store::<R24>::open(path) {
        Ok(s) => s,
        // Killed before the store was ever created.
        Err(Error::NotFound { .. }) if !ever_opened && at_least == 0 => return None,
        Err(e) => panic!("{ctx}: reopen failed: {e}"),
    };
    let len = s.len();
    assert_eq!(s.committed_len(), len);
    assert!(
        len >= at_least,
        "{ctx}: reopened with {len} records, but {at_least} were acknowledged"
    );
    let mut n = 0;
    for (i, r) in s.iter().enumerate() {
        if *r != R24::make(i as u64) {
            panic!("{ctx}: record {i} of {len} is damaged: {r:?}");
        }
        n += 1;
    }
    assert_eq!(n, len, "{ctx}: iter length");
    let rep = s.verify().unwrap();
    assert!(rep.is_ok(), "{ctx}: verify found damage: {rep:?}");
    assert!(
        rep.notes.is_empty(),
        "{ctx}: a process kill cannot tear a header slot: {rep:?}"
    );
    assert_eq!(rep.records_checked, len, "{ctx}");
    assert!(s.capacity() >= len);
    Some(len)
}

// Tests in this binary run one at a time: a child forked by one test holds
// copies of every open descriptor until it execs, and with them the `flock`
// locks of the other test's store (a reopen would find it `Locked`).
use common::serial;

#[test]
fn sigkill_during_appends_and_commits() {
    let _serial = serial();
    let seed = seed_from_env("RECMAP_CRASH_SEED");
    let iterations = iterations();
    println!(
        "crash_kill: seed {seed} (replay with RECMAP_CRASH_SEED={seed}), {iterations} iterations"
    );
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.rmap");
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();

    // The least the store must hold: the highest length ever acknowledged
    // by a child or verified after a kill.
    let mut floor = 0u64;
    let mut verified: Option<u64> = None;
    let (mut early, mut unacked_commit, mut acks) = (0, 0, 0u64);
    for it in 0..iterations {
        let child_seed = rng.next_u64();
        let mut child = KillOnDrop(
            Command::new(&exe)
                .args([
                    "--exact",
                    "crash_child",
                    "--nocapture",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_PATH, &path)
                .env(CHILD_SEED, child_seed.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .launch()
                .unwrap(),
        );
        let (tx, rx) = mpsc::channel();
        let stdout = child.0.stdout.take().unwrap();
        let reader = thread::spawn(move || read_events(stdout, tx));

        let mut saw_ready = false;
        let mode = rng.below(10);
        let delay_us = if mode == 0 {
            // From spawn: the kill may land before or during open/creation.
            early += 1;
            rng.below(30_000)
        } else {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Event::Ready(n)) => {
                    saw_ready = true;
                    if let Some(v) = verified {
                        assert_eq!(
                            n, v,
                            "iteration {it}: child opened at {n}, the parent verified {v}"
                        );
                    }
                }
                Ok(Event::Error(e)) => panic!("iteration {it}: child: {e}"),
                Ok(Event::Acked(_) | Event::Rolled(_)) => {
                    panic!("iteration {it}: ack before ready")
                }
                Err(e) => panic!("iteration {it}: child never became ready: {e}"),
            }
            match mode {
                1..=3 => rng.below(1_000),
                4..=6 => rng.range(1_000, 10_000),
                _ => rng.range(10_000, 60_000),
            }
        };
        thread::sleep(Duration::from_micros(delay_us));
        child.0.kill().unwrap(); // SIGKILL
        let status = child.0.wait().unwrap();
        reader.join().unwrap();
        // The child only ever stops by being killed: anything else (a panic,
        // an error) is a failure even if the store looks fine.
        assert!(common::killed(&status), "iteration {it}: child {status}");

        let mut acked = None;
        for ev in rx.try_iter() {
            match ev {
                Event::Acked(n) => {
                    assert!(
                        acked.is_none_or(|a| n > a),
                        "iteration {it}: acks must grow"
                    );
                    acked = Some(n);
                    acks += 1;
                }
                Event::Ready(n) => {
                    saw_ready = true;
                    if let Some(v) = verified {
                        assert_eq!(
                            n, v,
                            "iteration {it}: child opened at {n}, the parent verified {v}"
                        );
                    }
                }
                Event::Rolled(b) => panic!("iteration {it}: this child never rolls back ({b})"),
                Event::Error(e) => panic!("iteration {it}: child: {e}"),
            }
        }
        if let Some(a) = acked {
            floor = floor.max(a);
        }
        let ctx = format!(
            "iteration {it} (seed {seed}, delay {delay_us} us, last ack {acked:?}, {status})"
        );
        if let Some(len) = check_after_kill(&path, floor, saw_ready || verified.is_some(), &ctx) {
            if acked.is_some_and(|a| len > a) {
                unacked_commit += 1;
            }
            floor = len;
            verified = Some(len);
        }
    }
    let file_len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "crash_kill: {iterations} kills in {:.1?}: {floor} records, file {file_len} bytes ({} chunks), \
         {acks} acks, {early} kills timed from spawn, {unacked_commit} commits durable but not yet acked",
        t0.elapsed(),
        file_len / CHUNK,
    );
}

// ---------------------------------------------------------------------------
// SIGKILL inside update batches.
//
// Every batch is a plan derived from (run seed, batch number, length before
// the batch) alone (`plan`), so the parent recomputes exactly what a child
// did. A batch appends 0 to 10,000 records (sometimes enough to take the
// in-place bulk path) and then overwrites 1 to 1,000 records, scattered over
// the whole store or as one run over many consecutive pages, sometimes
// records it appended itself, sometimes the same record twice. Some batches
// are rolled back (their writes carry the `ROLLED` mark, so a leaked one is
// recognisable), some roll back a first set of writes and then commit
// others; some are followed by an explicit checkpoint, and every child
// picks a log size (64 KiB to 4 MiB), so kills also land in checkpoints and
// in commits larger than the log.
//
// Each record a batch writes carries the batch number, its position among
// the batch's writes, the number of writes and a checksum of the whole
// plan, plus a checksum of its own fields. The child prints `acked B` after
// `commit` returned `Ok` (and `rolled B` after a rollback) before it goes
// on, so an acknowledged batch is known to the parent before the kill can
// land after it. After each kill the parent:
// - opens the store read-only first (no replay: the log's commits are held
//   in memory) and then as a writer (recovery), and requires both to hold
//   exactly the state after the last acknowledged batch, or after the next
//   committing batch (durable, not yet acknowledged) — record by record, so
//   a partial batch, a lost acknowledged batch or a rolled-back write fails;
// - requires `verify()` to find no damage and no notes on both handles;
// - one time in five leaves the recovery to the next child, which it then
//   sometimes kills while that child opens (replays the log, checkpoints).
// The `classify_detects_*` tests show the comparison catches a partial
// batch, a lost acknowledged batch and a rolled-back write.

recmap::record! {
    /// 40 bytes: 102 per page, 16 bytes of padding at the end of each page.
    pub struct Upd {
        pub index: u64,
        pub batch: u64,
        pub ord: u32,
        pub writes: u32,
        pub batch_crc: u64,
        pub check: u64,
    }
}

/// Marks the batch number of a write that is rolled back.
const ROLLED: u64 = 1 << 63;
/// Records of batch 0, which the parent commits before the first child.
const BASE: u64 = 20_000;
const UPD_RUN: &str = "RECMAP_CRASH_UPD_RUN";
const UPD_FIRST: &str = "RECMAP_CRASH_UPD_FIRST_BATCH";
const UPD_LOG: &str = "RECMAP_CRASH_UPD_LOG_SIZE";

fn upd_check(r: &Upd) -> u64 {
    mix(mix(r.index ^ mix(r.batch)) ^ (((r.ord as u64) << 32) | r.writes as u64) ^ r.batch_crc)
}

fn upd(index: u64, batch: u64, ord: u32, writes: u32, batch_crc: u64) -> Upd {
    let mut r = Upd {
        index,
        batch,
        ord,
        writes,
        batch_crc,
        check: 0,
    };
    r.check = upd_check(&r);
    r
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Commit,
    Rollback,
    RollbackThenCommit,
}

#[derive(Debug)]
struct Plan {
    batch: u64,
    kind: Kind,
    len_before: u64,
    /// Records appended first (ordinals `0..appends`).
    appends: u64,
    /// 0: push, 1: extend, 2: extend_from_slice.
    append_via: u64,
    /// Then overwritten, in order (ordinals `appends..`).
    sets: Vec<u64>,
    /// Overwrite through `update` instead of `set`.
    via_update: bool,
    /// Rollback kinds: what is written (and rolled back) first.
    garbage_appends: u64,
    garbage_sets: Vec<u64>,
    checkpoint: bool,
    crc: u64,
}

impl Plan {
    fn commits(&self) -> bool {
        self.kind != Kind::Rollback
    }
    fn writes(&self) -> u32 {
        (self.appends + self.sets.len() as u64) as u32
    }
    /// The value of the `ord`-th write, to record `i`.
    fn value(&self, i: u64, ord: u64) -> Upd {
        upd(i, self.batch, ord as u32, self.writes(), self.crc)
    }
    fn garbage(&self, i: u64, ord: u64) -> Upd {
        upd(i, self.batch | ROLLED, ord as u32, 0, !self.crc)
    }
    /// The final value of every record the batch writes, and the length after.
    fn effect(&self) -> (HashMap<u64, Upd>, u64) {
        let mut m = HashMap::new();
        for k in 0..self.appends {
            let i = self.len_before + k;
            m.insert(i, self.value(i, k));
        }
        for (k, &i) in self.sets.iter().enumerate() {
            m.insert(i, self.value(i, self.appends + k as u64));
        }
        (m, self.len_before + self.appends)
    }
}

/// Indices for `n` overwrites below `total`: scattered, or one run.
fn pick_indices(rng: &mut Rng, n: u64, total: u64) -> Vec<u64> {
    if rng.below(10) < 3 {
        let start = rng.below(total.saturating_sub(n).max(1));
        (start..(start + n).min(total)).collect()
    } else {
        (0..n).map(|_| rng.below(total)).collect()
    }
}

fn plan(run: u64, batch: u64, len_before: u64) -> Plan {
    let mut rng = Rng::new(mix(run) ^ mix(batch.wrapping_mul(0x9e37_79b9)));
    let kind = match rng.below(100) {
        0..=9 => Kind::Rollback,
        10..=19 => Kind::RollbackThenCommit,
        _ => Kind::Commit,
    };
    let appends = match rng.below(100) {
        0..=49 => 0,
        50..=84 => rng.range(1, 100),
        85..=97 => rng.range(100, 2000),
        // More than 256 KiB: written in place, synced before the frame.
        _ => rng.range(7000, 10_000),
    };
    let append_via = rng.below(3);
    let n = match rng.below(100) {
        0..=29 => rng.range(1, 8),
        30..=59 => rng.range(9, 100),
        _ => rng.range(101, 1000),
    };
    let sets = pick_indices(&mut rng, n, len_before + appends);
    let via_update = rng.below(4) == 0;
    let (garbage_appends, garbage_sets) = if kind == Kind::Commit {
        (0, Vec::new())
    } else {
        let a = if rng.below(2) == 0 {
            0
        } else {
            rng.range(1, 500)
        };
        let n = rng.range(1, 1000);
        (a, pick_indices(&mut rng, n, len_before + a))
    };
    let checkpoint = rng.below(20) == 0;
    let crc = sets.iter().fold(
        mix(run ^ batch) ^ mix(len_before) ^ mix(appends << 1),
        |h, &i| mix(h ^ i),
    );
    Plan {
        batch,
        kind,
        len_before,
        appends,
        append_via,
        sets,
        via_update,
        garbage_appends,
        garbage_sets,
        checkpoint,
        crc,
    }
}

/// Appends records `first..first + n` made by `make`, through the plan's API.
fn append_via(
    s: &mut Store<Upd>,
    via: u64,
    first: u64,
    n: u64,
    make: impl Fn(u64) -> Upd,
) -> Result<(), Error> {
    match via {
        0 => {
            for i in first..first + n {
                s.push(&make(i))?;
            }
        }
        1 => {
            s.extend((first..first + n).map(&make))?;
        }
        _ => {
            let v: Vec<Upd> = (first..first + n).map(&make).collect();
            s.extend_from_slice(&v)?;
        }
    }
    Ok(())
}

/// Runs one batch in the child; returns true if it committed.
fn run_plan(s: &mut Store<Upd>, p: &Plan) -> Result<bool, Error> {
    assert_eq!(s.len(), p.len_before);
    assert_eq!(s.committed_len(), p.len_before);
    if p.kind != Kind::Commit {
        let base = p.len_before;
        append_via(s, p.append_via, base, p.garbage_appends, |i| {
            p.garbage(i, i - base)
        })?;
        for (k, &i) in p.garbage_sets.iter().enumerate() {
            s.set(i, &p.garbage(i, p.garbage_appends + k as u64))?;
        }
        s.rollback()?;
        assert_eq!(s.len(), p.len_before, "rollback restores the length");
        if p.kind == Kind::Rollback {
            return Ok(false);
        }
    }
    let base = p.len_before;
    append_via(s, p.append_via, base, p.appends, |i| p.value(i, i - base))?;
    for (k, &i) in p.sets.iter().enumerate() {
        let v = p.value(i, p.appends + k as u64);
        if p.via_update {
            s.update(i, |r| *r = v)?;
        } else {
            s.set(i, &v)?;
        }
    }
    // Read-your-own-writes, spot-checked: the last write of a record wins.
    if let Some((k, &i)) = p.sets.iter().enumerate().next_back() {
        let want = p.value(i, p.appends + k as u64);
        assert_eq!(s.get(i), Some(&want), "batch {}: own write", p.batch);
    }
    s.commit()?;
    if p.checkpoint {
        s.checkpoint()?;
    }
    Ok(true)
}

/// The child: runs batches from `UPD_FIRST` on until killed.
#[test]
#[ignore = "child process of sigkill_inside_update_batches"]
fn crash_update_child() {
    let Ok(path) = std::env::var(CHILD_PATH) else {
        return;
    };
    let env = |k: &str| -> u64 { std::env::var(k).unwrap().parse().unwrap() };
    let (run, mut batch, log_size) = (env(UPD_RUN), env(UPD_FIRST), env(UPD_LOG));
    let mut out = std::io::stdout();
    writeln!(out).unwrap();
    let mut s = match Options::new()
        .chunk_size(CHUNK)
        .log_size(log_size)
        .open::<Upd>(&path)
    {
        Ok(s) => s,
        Err(e) => {
            writeln!(out, "error open: {e}").unwrap();
            return;
        }
    };
    writeln!(out, "ready {} {}", s.len(), s.generation()).unwrap();
    out.flush().unwrap();
    loop {
        let p = plan(run, batch, s.len());
        match run_plan(&mut s, &p) {
            Ok(true) => writeln!(out, "acked {batch}").unwrap(),
            Ok(false) => writeln!(out, "rolled {batch}").unwrap(),
            Err(e) => {
                writeln!(out, "error batch {batch}: {e}").unwrap();
                out.flush().unwrap();
                return;
            }
        }
        out.flush().unwrap();
        batch += 1;
    }
}

/// Which state a store after a kill holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// The state after the last acknowledged batch.
    Acked,
    /// That plus the next committing batch (durable, not acknowledged).
    InFlight,
}

/// Compares `records` (the whole store, in order) with the acknowledged
/// state `model` and with `model` plus the in-flight batch's `effect`.
fn classify<'a>(
    records: impl Iterator<Item = &'a Upd>,
    len: u64,
    model: &[Upd],
    next: &Plan,
    effect: &(HashMap<u64, Upd>, u64),
    ctx: &str,
) -> Found {
    let (values, len_c) = effect;
    let (mut bad_a, mut bad_c, mut new_c, mut old_c, mut n) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut first_bad: Option<String> = None;
    for (i, r) in records.enumerate() {
        let i = i as u64;
        n += 1;
        if r.index != i || r.check != upd_check(r) || r.batch & ROLLED != 0 {
            let what = if r.batch & ROLLED != 0 && r.check == upd_check(r) {
                "a rolled-back write"
            } else {
                "damaged"
            };
            panic!("{ctx}: record {i} is {what}: {r:?}");
        }
        let a = model.get(i as usize);
        let c = values.get(&i).or(a);
        if a != Some(r) {
            bad_a += 1;
        }
        if c != Some(r) {
            bad_c += 1;
            if first_bad.is_none() {
                first_bad = Some(format!("record {i}: {r:?}, expected {c:?} or {a:?}"));
            }
        }
        if let Some(v) = values.get(&i) {
            if v == r {
                new_c += 1;
            } else {
                old_c += 1;
            }
        }
    }
    assert_eq!(n, len, "{ctx}: iter length");
    if len == model.len() as u64 && bad_a == 0 {
        return Found::Acked;
    }
    if len == *len_c && bad_c == 0 {
        return Found::InFlight;
    }
    panic!(
        "{ctx}: the store ({len} records) holds neither the acknowledged state ({} records; \
         {bad_a} records differ) nor that plus batch {} ({len_c} records; {bad_c} differ): \
         partial batch? {new_c} of its {} written records are new, {old_c} old; first: {}",
        model.len(),
        next.batch,
        values.len(),
        first_bad.unwrap_or_default()
    );
}

fn verify_clean(rep: &recmap::VerifyReport, len: u64, ctx: &str) {
    assert!(rep.is_ok(), "{ctx}: verify found damage: {rep:?}");
    assert!(
        rep.notes.is_empty(),
        "{ctx}: a process kill cannot tear a header slot: {rep:?}"
    );
    assert_eq!(rep.records_checked, len, "{ctx}");
}

#[test]
fn sigkill_inside_update_batches() {
    let _serial = serial();
    let seed = seed_from_env("RECMAP_CRASH_SEED");
    let iterations = iterations();
    println!(
        "crash_kill updates: seed {seed} (replay with RECMAP_CRASH_SEED={seed}), {iterations} iterations"
    );
    let mut rng = Rng::new(seed ^ 0x0bad_cafe);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("updates.rmap");
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();

    // Batch 0: the parent's.
    let first = Plan {
        batch: 0,
        kind: Kind::Commit,
        len_before: 0,
        appends: BASE,
        append_via: 2,
        sets: Vec::new(),
        via_update: false,
        garbage_appends: 0,
        garbage_sets: Vec::new(),
        checkpoint: false,
        crc: mix(seed),
    };
    let mut model: Vec<Upd> = (0..BASE).map(|i| first.value(i, i)).collect();
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open::<Upd>(&path)
        .unwrap();
    s.extend_from_slice(&model).unwrap();
    s.close().unwrap();

    let mut next_batch = 1u64;
    let (mut unrecovered, mut early_kills, mut left_to_child) = (false, 0u64, 0u64);
    let (mut acked_total, mut rolled_total, mut in_flight_durable, mut in_flight_lost) =
        (0u64, 0u64, 0u64, 0u64);
    let (mut updates_committed, mut largest_update) = (0u64, 0usize);
    for it in 0..iterations {
        let log_size = [64u64 << 10, 256 << 10, 4 << 20][rng.below(3) as usize];
        let mut child = KillOnDrop(
            Command::new(&exe)
                .args([
                    "--exact",
                    "crash_update_child",
                    "--nocapture",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_PATH, &path)
                .env(UPD_RUN, seed.to_string())
                .env(UPD_FIRST, next_batch.to_string())
                .env(UPD_LOG, log_size.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .launch()
                .unwrap(),
        );
        let (tx, rx) = mpsc::channel();
        let stdout = child.0.stdout.take().unwrap();
        let reader = thread::spawn(move || read_events(stdout, tx));
        let check_ready = |n: u64, model: &[Upd]| {
            assert_eq!(
                n,
                model.len() as u64,
                "iteration {it}: child opened at {n}, the parent verified {}",
                model.len()
            )
        };
        // After a kill the parent left unrecovered, the child replays the
        // log itself: sometimes kill it while it does (timed from spawn).
        let early = unrecovered && rng.below(2) == 0;
        let delay_us = if early {
            early_kills += 1;
            rng.below(20_000)
        } else {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Event::Ready(n)) => check_ready(n, &model),
                Ok(Event::Error(e)) => panic!("iteration {it}: child: {e}"),
                Ok(_) => panic!("iteration {it}: event before ready"),
                Err(e) => panic!("iteration {it}: child never became ready: {e}"),
            }
            match rng.below(10) {
                0..=2 => rng.below(1_000),
                3..=5 => rng.range(1_000, 10_000),
                _ => rng.range(10_000, 80_000),
            }
        };
        thread::sleep(Duration::from_micros(delay_us));
        child.0.kill().unwrap(); // SIGKILL, to our own child, by pid
        let status = child.0.wait().unwrap();
        reader.join().unwrap();
        assert!(common::killed(&status), "iteration {it}: child {status}");

        // Replay what the child reported: acknowledged batches are applied
        // to the model, in order; everything else in between rolled back.
        let mut last: Option<u64> = None;
        let mut b = next_batch;
        for ev in rx.try_iter() {
            let (n, committed) = match ev {
                Event::Acked(n) => (n, true),
                Event::Rolled(n) => (n, false),
                Event::Error(e) => panic!("iteration {it}: child: {e}"),
                Event::Ready(n) if early && last.is_none() => {
                    check_ready(n, &model);
                    continue;
                }
                Event::Ready(_) => panic!("iteration {it}: second ready"),
            };
            assert_eq!(n, b, "iteration {it}: batches are reported in order");
            let p = plan(seed, n, model.len() as u64);
            assert_eq!(p.commits(), committed, "iteration {it}: batch {n} {p:?}");
            if committed {
                let (values, len) = p.effect();
                model.resize(len as usize, recmap::bytemuck::Zeroable::zeroed());
                for (i, v) in values {
                    model[i as usize] = v;
                }
                acked_total += 1;
                updates_committed += p.sets.len() as u64;
                largest_update = largest_update.max(p.sets.len());
            } else {
                rolled_total += 1;
            }
            last = Some(n);
            b += 1;
        }
        // The batch in flight at the kill: the next one that commits.
        let mut c = last.map_or(next_batch, |l| l + 1);
        let next = loop {
            let p = plan(seed, c, model.len() as u64);
            if p.commits() {
                break p;
            }
            c += 1;
        };
        let effect = next.effect();
        let ctx = format!(
            "iteration {it} (seed {seed}, delay {delay_us} us, log {log_size}, last reported \
             batch {last:?}, in flight {c})"
        );

        // Before any writer replays the log: a read-only handle.
        let ro = Store::<Upd>::open_read_only(&path)
            .unwrap_or_else(|e| panic!("{ctx}: read-only open failed: {e}"));
        let len = ro.len();
        let found_ro = classify(
            ro.iter(),
            len,
            &model,
            &next,
            &effect,
            &format!("{ctx}, read-only"),
        );
        verify_clean(&ro.verify().unwrap(), len, &format!("{ctx}, read-only"));
        drop(ro);

        // Recovery, mostly by the parent; sometimes left to the next child.
        unrecovered = rng.below(5) == 0;
        if unrecovered {
            left_to_child += 1;
        } else {
            let s =
                Store::<Upd>::open(&path).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            let len = s.len();
            assert_eq!(s.committed_len(), len);
            let found = classify(
                s.iter(),
                len,
                &model,
                &next,
                &effect,
                &format!("{ctx}, writer"),
            );
            assert_eq!(
                found, found_ro,
                "{ctx}: recovery and the read-only view disagree"
            );
            verify_clean(&s.verify().unwrap(), len, &format!("{ctx}, writer"));
            assert_eq!(s.raw().log_commits(), 0, "{ctx}: recovery checkpoints");
            drop(s);
        }
        let found = found_ro;

        match found {
            Found::Acked => in_flight_lost += 1,
            Found::InFlight => {
                in_flight_durable += 1;
                let (values, len) = effect;
                model.resize(len as usize, recmap::bytemuck::Zeroable::zeroed());
                for (i, v) in values {
                    model[i as usize] = v;
                }
                updates_committed += next.sets.len() as u64;
            }
        }
        next_batch = c + 1;
    }
    let file_len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "crash_kill updates: {iterations} kills in {:.1?}, 0 partial batches, 0 damaged stores, \
         0 lost acks: {acked_total} batches acknowledged, {rolled_total} rolled back, \
         {in_flight_durable} kills left the batch in flight durable (unacknowledged), \
         {in_flight_lost} discarded it; {updates_committed} records overwritten (largest batch \
         {largest_update}); recovery left to the next child {left_to_child} times, \
         {early_kills} of those children killed timed from spawn (during recovery); {} records, \
         file {file_len} bytes",
        t0.elapsed(),
        model.len(),
    );
    // The last kill's log, replayed by a writer, with the same result.
    let s = Store::<Upd>::open(&path).unwrap();
    assert_eq!(s.len(), model.len() as u64);
    assert!(s.iter().eq(model.iter()), "final state");
    verify_clean(&s.verify().unwrap(), s.len(), "final");
}

/// The checker itself: a store holding half of the in-flight batch is a
/// partial batch.
#[test]
#[should_panic(expected = "partial batch")]
fn classify_detects_a_partial_batch() {
    let model: Vec<Upd> = (0..1000).map(|i| upd(i, 0, i as u32, 1000, 7)).collect();
    let next = (1..)
        .map(|b| plan(42, b, 1000))
        .find(|p| p.commits() && p.appends == 0 && p.sets.len() > 10)
        .unwrap();
    let effect = next.effect();
    let mut store = model.clone();
    for (k, (&i, v)) in effect.0.iter().enumerate() {
        if k % 2 == 0 {
            store[i as usize] = *v;
        }
    }
    classify(store.iter(), 1000, &model, &next, &effect, "injected");
}

/// ...and a store missing an acknowledged batch matches neither state.
#[test]
#[should_panic(expected = "holds neither")]
fn classify_detects_a_lost_batch() {
    let older: Vec<Upd> = (0..1000).map(|i| upd(i, 0, i as u32, 1000, 7)).collect();
    let acked = (1..)
        .map(|b| plan(42, b, 1000))
        .find(|p| p.commits() && p.appends == 0)
        .unwrap();
    let mut model = older.clone();
    for (i, v) in acked.effect().0 {
        model[i as usize] = v;
    }
    let next = plan(42, acked.batch + 1, 1000);
    let effect = next.effect();
    classify(older.iter(), 1000, &model, &next, &effect, "injected");
}

/// ...and a rolled-back write is recognised as one.
#[test]
#[should_panic(expected = "rolled-back write")]
fn classify_detects_a_rolled_back_write() {
    let model: Vec<Upd> = (0..100).map(|i| upd(i, 0, i as u32, 100, 7)).collect();
    let p = (1..)
        .map(|b| plan(42, b, 100))
        .find(|p| p.garbage_sets.iter().any(|&i| i < 100))
        .unwrap();
    let mut store = model.clone();
    let (k, &i) = p
        .garbage_sets
        .iter()
        .enumerate()
        .find(|e| *e.1 < 100)
        .unwrap();
    store[i as usize] = p.garbage(i, p.garbage_appends + k as u64);
    classify(store.iter(), 100, &model, &p, &p.effect(), "injected");
}
