//! Readers in other processes beside one writer, with real processes (the
//! test binary re-runs itself as `#[ignore]`d child tests):
//! - stress: a writer appending and updating in place, four readers checking
//!   that every record they copy is whole and valid and that the committed
//!   length and generation never go backwards (`RECMAP_STRESS_SECONDS`,
//!   default 20);
//! - growth through many chunks while a reader is open;
//! - the writer SIGKILLed while readers run, then a new writer continuing;
//! - shrinking refused while a reader is open;
//! - append-only stores and zero-copy reader borrows.
//!
//! Every test runs on Windows too (the kill is `TerminateProcess` there),
//! except the symlink and hard-link one (`docs/platforms.md`).

use recmap::{Error, Options, Reader, Store};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
mod common;
use common::spawn::Launch;

recmap::record! {
    /// 56 bytes: 73 per page, with padding. `check` covers the other fields.
    pub struct Rec { pub index: u64, pub version: u64, pub payload: [u64; 4], pub check: u64 }
}

/// Records the writer rewrites constantly (two pages' worth).
const HOT: u64 = 146;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn rec(index: u64, version: u64) -> Rec {
    let payload = [
        mix(index),
        mix(version),
        mix(index ^ version),
        index.wrapping_mul(version),
    ];
    let mut r = Rec {
        index,
        version,
        payload,
        check: 0,
    };
    r.check = checksum(&r);
    r
}

fn checksum(r: &Rec) -> u64 {
    r.payload
        .iter()
        .fold(mix(r.index) ^ mix(r.version << 1), |a, &p| mix(a ^ p))
}

/// Panics unless `r` is a whole, valid record `i`.
fn validate(i: u64, r: &Rec, who: &str) {
    assert_eq!(
        r.index, i,
        "{who}: record {i} has index {} (torn or misplaced): {r:?}",
        r.index
    );
    assert_eq!(
        r.check,
        checksum(r),
        "{who}: record {i} fails its check (torn): {r:?}"
    );
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn spawn(role: &str, path: &Path, seconds: f64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            role,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RECMAP_MP_PATH", path)
        .env("RECMAP_MP_SECONDS", seconds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .unwrap()
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn env_path() -> Option<PathBuf> {
    std::env::var_os("RECMAP_MP_PATH").map(PathBuf::from)
}

fn env_seconds() -> f64 {
    std::env::var("RECMAP_MP_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0)
}

fn stress_seconds() -> f64 {
    std::env::var("RECMAP_STRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0)
}

fn new_store(path: &Path) -> Store<Rec> {
    Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(path)
        .unwrap()
}

/// Child: appends and updates in place until the deadline, committing often.
/// Prints `acked LEN` after every commit.
#[test]
#[ignore = "child process of the multi-process tests"]
fn child_writer() {
    let Some(path) = env_path() else { return };
    let deadline = Instant::now() + Duration::from_secs_f64(env_seconds());
    let mut s = Options::new()
        .wait_for_lock(true)
        .open::<Rec>(&path)
        .unwrap();
    let mut rng = Rng(mix(std::process::id() as u64) | 1);
    let mut out = std::io::stdout().lock();
    // A new writer checks what the previous one left.
    for i in 0..s.len() {
        validate(i, s.get(i).unwrap(), "writer at open");
    }
    let mut version = 1 + s.iter().map(|r| r.version).max().unwrap_or(0);
    while Instant::now() < deadline {
        let len = s.len();
        let max = if rng.below(10) == 0 { 3000 } else { 200 };
        let n = 1 + rng.below(max);
        s.extend((len..len + n).map(|i| rec(i, 0))).unwrap();
        for _ in 0..rng.below(20) {
            let i = rng.below(s.committed_len().max(1));
            if i < s.len() {
                s.set(i, &rec(i, version)).unwrap();
                version += 1;
            }
        }
        // A hot spot: the first records are rewritten over and over, so
        // readers copying them race the writer as often as possible.
        for _ in 0..500 {
            let i = rng.below(HOT.min(s.committed_len()));
            s.set(i, &rec(i, version)).unwrap();
            version += 1;
        }
        s.commit().unwrap();
        writeln!(out, "acked {}", s.len()).unwrap();
        out.flush().unwrap();
    }
    s.close().unwrap();
}

/// Child: reads until the deadline, validating every record it copies.
#[test]
#[ignore = "child process of the multi-process tests"]
fn child_reader() {
    let Some(path) = env_path() else { return };
    let deadline = Instant::now() + Duration::from_secs_f64(env_seconds());
    let mut r = Reader::<Rec>::open(&path).unwrap();
    let mut rng = Rng(mix(std::process::id() as u64) | 1);
    let (mut last_len, mut last_gen) = (r.len(), r.generation());
    let (mut reads, mut commits, mut died) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        if r.wait_for_commit(last_gen, Duration::from_millis(20))
            .unwrap()
            .is_some()
        {
            commits += 1;
        }
        let (len, generation) = (r.len(), r.generation());
        assert!(
            generation >= last_gen,
            "generation went back: {last_gen} -> {generation}"
        );
        assert!(len >= last_len, "len went back: {last_len} -> {len}");
        // The new records, and a random sample of the old ones (updated in place).
        let fresh = last_len.max(len.saturating_sub(500))..len;
        let sample = (0..200).map(|_| rng.below(len));
        let hot = (0..2000).map(|k| k % HOT);
        for i in fresh.chain(sample).chain(hot).filter(|&i| i < len) {
            match r.get(i) {
                Ok(Some(rec)) => validate(i, &rec, "reader"),
                Ok(None) => panic!("record {i} missing below len {len}"),
                // The writer was killed mid-update: wait for the next one.
                Err(Error::WriterDied { .. }) => {
                    died += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("read {i}: {e}"),
            }
            reads += 1;
        }
        (last_len, last_gen) = (len, generation);
    }
    println!("reader ok: reads {reads}, commits seen {commits}, len {last_len}, generation {last_gen}, writer-died waits {died}");
}

/// Child: holds a reader open until its stdin closes.
#[test]
#[ignore = "child process of the multi-process tests"]
fn child_hold_reader() {
    let Some(path) = env_path() else { return };
    let r = Reader::<Rec>::open(&path).unwrap();
    println!("holding {}", r.len());
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// The count of an `acked N` line (libtest may print its own text before it).
fn acked(line: &str) -> Option<u64> {
    line.rfind("acked ")
        .and_then(|at| line[at + 6..].trim().parse().ok())
}

fn reader_line(out: &str) -> (u64, u64) {
    // libtest prints "test child_reader ... " before the child's own output.
    let line = out
        .lines()
        .find_map(|l| l.find("reader ok").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no reader summary in:\n{out}"));
    let num = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num("reads"), num("len"))
}

#[test]
fn stress_one_writer_four_readers() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stress.rmap");
    let mut s = new_store(&path);
    s.extend((0..1000).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    drop(s);
    let secs = stress_seconds();
    let readers: Vec<Child> = (0..4).map(|_| spawn("child_reader", &path, secs)).collect();
    let writer = spawn("child_writer", &path, secs);
    let wout = finish(writer, "writer");
    let acked: u64 = wout.lines().rev().find_map(acked).unwrap();
    for (k, r) in readers.into_iter().enumerate() {
        let out = finish(r, &format!("reader {k}"));
        let (reads, len) = reader_line(&out);
        eprintln!("reader {k}: {}", out.trim());
        assert!(reads > 1000, "reader {k} read only {reads} records");
        assert!(len > 1000, "reader {k} never saw a commit");
    }
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), acked);
    assert!(s.verify().unwrap().is_ok());
    for (i, r) in s.iter().enumerate() {
        validate(i as u64, r, "final");
    }
    eprintln!(
        "stress: {acked} records, generation {}, file {} bytes",
        s.generation(),
        s.info().file_size
    );
}

#[test]
fn a_reader_follows_growth_through_many_chunks() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.rmap");
    let mut s = new_store(&path);
    s.push(&rec(0, 0)).unwrap();
    s.commit().unwrap();
    let cap0 = s.capacity();
    let reader = spawn("child_reader", &path, 4.0);
    std::thread::sleep(Duration::from_millis(300));
    let target = cap0 * 40;
    let mut i = 1;
    while i < target {
        let n = 2000.min(target - i);
        s.extend((i..i + n).map(|k| rec(k, 0))).unwrap();
        s.commit().unwrap();
        i += n;
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = finish(reader, "reader");
    let (_, len) = reader_line(&out);
    assert!(
        s.capacity() >= cap0 * 16,
        "the file grew through many chunks"
    );
    assert!(
        len >= cap0 * 4,
        "reader saw {len} records, first chunk held {cap0}"
    );
}

#[test]
fn writer_killed_while_readers_run_then_a_new_writer_continues() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.rmap");
    let mut s = new_store(&path);
    s.extend((0..500).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    drop(s);
    let readers: Vec<Child> = (0..2).map(|_| spawn("child_reader", &path, 6.0)).collect();
    let mut writer = spawn("child_writer", &path, 60.0);
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut last = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        if let Some(n) = acked(&lines.next().unwrap().unwrap()) {
            last = n;
        }
    }
    writer.kill().unwrap(); // SIGKILL
    let status = writer.wait().unwrap();
    assert!(!status.success());
    // A new writer process checks every record at open and continues.
    let second = spawn("child_writer", &path, 2.0);
    let out = finish(second, "second writer");
    let final_len: u64 = out.lines().rev().find_map(acked).unwrap();
    assert!(final_len > last);
    for (k, r) in readers.into_iter().enumerate() {
        let out = finish(r, &format!("reader {k}"));
        eprintln!("reader {k}: {}", out.trim());
    }
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), final_len);
    for (i, r) in s.iter().enumerate() {
        validate(i as u64, r, "after restart");
    }
    // Pages whose in-place update was cut off by the kill may be reported,
    // and only those: nothing else may be damaged.
    for p in s.verify().unwrap().problems {
        assert!(matches!(p, recmap::Problem::PageChecksum { .. }), "{p}");
    }
}

#[test]
fn shrinking_is_refused_while_a_reader_is_open() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrink.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .initial_capacity(200_000)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..1000).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    let big = std::fs::metadata(&path).unwrap().len();

    // A reader in this process...
    let r = Reader::<Rec>::open(&path).unwrap();
    assert!(matches!(
        s.raw_mut().compact(),
        Err(Error::ReadersPresent { .. })
    ));
    drop(r);

    // ...and one in another process.
    let mut holder = spawn("child_hold_reader", &path, 0.0);
    let mut out = BufReader::new(holder.stdout.take().unwrap()).lines();
    let line = out
        .find(|l| l.as_ref().unwrap().contains("holding"))
        .unwrap()
        .unwrap();
    assert!(line.ends_with("holding 1000"), "{line}");
    let e = s.raw_mut().compact().unwrap_err();
    assert!(matches!(e, Error::ReadersPresent { .. }), "{e}");
    assert!(e.to_string().contains("SIGBUS"), "{e}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        big,
        "nothing shrank"
    );
    drop(holder.stdin.take()); // the child exits
    finish(holder, "holder");

    let freed = s.raw_mut().compact().unwrap();
    assert!(freed > 0);
    let small = std::fs::metadata(&path).unwrap().len();
    assert_eq!(big - small, freed);
    // Readers opened after the shrink see the new, smaller layout (it was
    // announced): fuzzing found them adopting the old one once.
    let r = Reader::<Rec>::open(&path).unwrap();
    assert_eq!(r.len(), 1000);
    drop(r);
    s.extend((1000..5000).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), 5000);
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn append_only_readers_borrow_and_writers_cannot_rewrite() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.rmap");
    let mut s = Options::new()
        .create_new(true)
        .append_only(true)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..300).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    let mut r = Reader::<Rec>::open(&path).unwrap();
    assert!(r.is_append_only());
    let borrowed: &Rec = r.get_ref(299).unwrap().unwrap();
    validate(299, borrowed, "borrow");
    assert!(r.get_ref(300).unwrap().is_none());
    // Committed records are immutable; uncommitted ones are not yet committed.
    assert!(matches!(
        s.set(5, &rec(5, 1)),
        Err(Error::AppendOnly { index: 5, .. })
    ));
    s.push(&rec(300, 0)).unwrap();
    s.set(300, &rec(300, 0)).unwrap();
    s.commit().unwrap();
    assert_eq!(
        r.wait_for_commit(r.generation(), Duration::from_secs(5))
            .unwrap(),
        Some(s.generation())
    );
    assert_eq!(r.len(), 301);
    validate(
        300,
        r.get_ref(300).unwrap().unwrap(),
        "borrow after refresh",
    );
    // A store that is not append-only refuses to lend.
    let other = dir.path().join("plain.rmap");
    let mut p = new_store(&other);
    p.push(&rec(0, 0)).unwrap();
    p.commit().unwrap();
    let pr = Reader::<Rec>::open(&other).unwrap();
    assert!(pr.get_ref(0).is_err());
    validate(0, &pr.get(0).unwrap().unwrap(), "copy");
}

#[test]
fn refresh_is_monotonic_and_wait_times_out() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wait.rmap");
    let mut s = new_store(&path);
    let mut r = Reader::<Rec>::open(&path).unwrap();
    assert_eq!(r.len(), 0);
    assert!(!r.refresh().unwrap(), "nothing new yet");
    let t = Instant::now();
    assert_eq!(
        r.wait_for_commit(r.generation(), Duration::from_millis(50))
            .unwrap(),
        None
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    s.push(&rec(0, 0)).unwrap();
    assert!(!r.refresh().unwrap(), "uncommitted appends are invisible");
    assert!(r.get(0).unwrap().is_none());
    s.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.len(), 1);
    validate(0, &r.get(0).unwrap().unwrap(), "after commit");
    assert!(matches!(
        Reader::<Rec>::open(dir.path().join("missing.rmap")),
        Err(Error::NotFound { .. })
    ));
}

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;

/// A new append-only store at `path` holding 100 committed records.
fn append_only_of_100(path: &std::path::Path) -> Store<Rec> {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .initial_capacity(100_000)
        .append_only(true)
        .open::<Rec>(path)
        .unwrap();
    s.extend((0..100).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    s
}

// Unix only: symbolic links need a privilege on Windows (the hard-link
// refusal, which runs everywhere, is the next test).
#[cfg(unix)]
#[test]
fn a_reader_through_a_symlink_meets_the_writer() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("real.rmap");
    let mut s = append_only_of_100(&path);
    let link = dir.path().join("link.rmap");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let mut r = Reader::<Rec>::open(&link).unwrap();
    // The reader's shared lock is on the one coordination file of the store.
    assert!(matches!(
        s.raw_mut().compact(),
        Err(Error::ReadersPresent { .. })
    ));
    // ...and so are the writer's announcements.
    s.push(&rec(100, 0)).unwrap();
    s.commit().unwrap();
    assert!(r
        .wait_for_commit(r.generation(), Duration::from_secs(5))
        .unwrap()
        .is_some());
    assert_eq!(r.len(), 101);
    // A huge timeout is "wait forever", not an overflow.
    assert_eq!(
        r.wait_for_commit(0, Duration::MAX).unwrap(),
        Some(r.generation())
    );
}

// Everywhere: the link count is `st_nlink` on Unix and
// `GetFileInformationByHandle`'s `nNumberOfLinks` on Windows.
#[test]
fn a_data_file_with_hard_links_is_refused_by_readers() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("real.rmap");
    let mut s = append_only_of_100(&path);
    Reader::<Rec>::open(&path).unwrap();
    // A second name for the same file would get its own coordination file.
    let hard = dir.path().join("hard.rmap");
    std::fs::hard_link(&path, &hard).unwrap();
    assert!(matches!(
        Reader::<Rec>::open(&hard),
        Err(Error::BadCoordination { .. })
    ));
    assert!(matches!(
        Reader::<Rec>::open(&path),
        Err(Error::BadCoordination { .. })
    ));
    // get_mut on a committed record of an append-only store fails up front.
    assert!(matches!(
        s.get_mut(3),
        Err(Error::AppendOnly { index: 3, .. })
    ));
    // Wine removes a name only once no handle of the file is open (as
    // Windows before its POSIX delete semantics did): close the writer
    // there first.
    if cfg!(windows) {
        drop(s);
    }
    std::fs::remove_file(&hard).unwrap();
    Reader::<Rec>::open(&path).unwrap();
}
