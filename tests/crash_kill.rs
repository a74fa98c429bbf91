//! SIGKILL crash test (`docs/durability.md`, "process kill").
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
//! `RECMAP_CRASH_ITERATIONS` (default 50) sets the number of kills;
//! `RECMAP_CRASH_SEED` replays a run's random choices (the seed is printed).
#![cfg(unix)]

mod common;

use common::{seed_from_env, Make, Rng, R24};
use recmap::{Error, Options, Store};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
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
        } else if let Some(n) = l.strip_prefix("ready ") {
            Event::Ready(n.parse().unwrap())
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

#[test]
fn sigkill_during_appends_and_commits() {
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
                .spawn()
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
                Ok(Event::Acked(_)) => panic!("iteration {it}: ack before ready"),
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
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "iteration {it}: child {status}"
        );

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
