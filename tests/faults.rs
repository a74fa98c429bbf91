//! Fault injection and corruption detection: bit flips in data pages and the
//! schema block, the two repair modes, growth into a file-size limit
//! (`RLIMIT_FSIZE` in a child process) and into a full filesystem (a small
//! tmpfs, when this process may mount one), and a writer whose log
//! (`<store>-wal`, preallocated to `Options::log_size`) does not fit under
//! either.

use recmap::{Error, Options, Problem, Repair, Store};
mod common;
use common::file_at::FileAt;
// Only the Unix-only tests here start processes.
#[cfg(unix)]
use common::spawn::Launch;
use std::path::Path;

recmap::record! {
    /// 24 bytes: 170 records per page, 16 bytes of page padding.
    pub struct Rec { pub id: u64, pub a: u64, pub b: u64 }
}

const PER_PAGE: u64 = 4096 / 24;

fn rec(i: u64) -> Rec {
    Rec {
        id: i,
        a: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        b: !i,
    }
}

fn make(path: &Path, n: u64) -> u64 {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(path)
        .unwrap();
    s.extend((0..n).map(rec)).unwrap();
    s.commit().unwrap();
    s.info().data_offset
}

fn flip(path: &Path, offset: u64, bit: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 1 << bit;
    f.write_all_at(&b, offset).unwrap();
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn bit_flips_in_records_are_reported_with_page_and_records() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flip.rmap");
    let n = 5_000; // 29 full pages and a partial one (checked through the header's tail CRC)
    let data = make(&path, n);
    let mut rng = Rng(0x5eed);
    for round in 0..200 {
        let i = if round % 10 == 0 {
            n - 1 - rng.below(n % PER_PAGE)
        } else {
            rng.below(n)
        };
        let byte = rng.below(24);
        let bit = rng.below(8) as u8;
        let off = data + (i / PER_PAGE) * 4096 + (i % PER_PAGE) * 24 + byte;
        flip(&path, off, bit);
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        let r = s.verify().unwrap();
        assert_eq!(
            r.problems.len(),
            1,
            "flip of record {i} byte {byte} bit {bit}: {:?}",
            r.problems
        );
        match r.problems[0] {
            Problem::PageChecksum {
                group,
                first_page,
                first_record,
                end_record,
                ..
            } => {
                assert_eq!(group, i / PER_PAGE);
                assert_eq!(first_page, (data + group * 4096) / 4096);
                assert!((first_record..end_record).contains(&i));
                assert_eq!(end_record, ((group + 1) * PER_PAGE).min(n));
            }
            ref p => panic!("unexpected {p}"),
        }
        drop(s);
        flip(&path, off, bit);
    }
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn every_bit_flip_in_the_schema_block_is_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.rmap");
    make(&path, 10);
    let len = Store::<Rec>::open_read_only(&path)
        .unwrap()
        .schema()
        .encode()
        .len() as u64;
    for byte in 0..len {
        for bit in 0..8 {
            flip(&path, 4096 + byte, bit);
            match Store::<Rec>::open_read_only(&path) {
                Err(Error::ChecksumMismatch { .. }) => {}
                other => panic!("schema byte {byte} bit {bit}: {other:?}"),
            }
            flip(&path, 4096 + byte, bit);
        }
    }
    assert!(Store::<Rec>::open_read_only(&path).is_ok());
}

#[test]
fn repair_rebuilds_checksums_and_keeps_records() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuild.rmap");
    let data = make(&path, 1000);
    // An in-place update that reached the disk without its checksum (a crash).
    flip(&path, data + 4096 + 8, 0); // record 170 + 0, field `a`
    let mut s = Store::<Rec>::open(&path).unwrap();
    assert_eq!(s.verify().unwrap().problems.len(), 1);
    let g = s.generation();
    let rep = s.repair(Repair::RebuildChecksums).unwrap();
    assert_eq!(rep.before.problems.len(), 1);
    assert_eq!((rep.records_before, rep.records_after), (1000, 1000));
    assert_eq!(rep.generation, g + 1);
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert!(s.verify().unwrap().is_ok());
    assert_eq!(s.len(), 1000);
    assert_eq!(
        s.get(170).unwrap().a,
        rec(170).a ^ 1,
        "repair keeps the data as it stands"
    );
}

#[test]
fn repair_truncates_to_the_verified_prefix() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunc.rmap");
    let data = make(&path, 1000);
    flip(&path, data + 3 * 4096 + 100, 5);
    flip(&path, data + 5 * 4096 + 7, 1);
    let mut s = Store::<Rec>::open(&path).unwrap();
    let rep = s.repair(Repair::TruncateToVerified).unwrap();
    assert_eq!(rep.before.problems.len(), 2);
    assert_eq!(
        (rep.records_before, rep.records_after),
        (1000, 3 * PER_PAGE)
    );
    assert_eq!(s.len(), 3 * PER_PAGE);
    // The store stays writable after a repair.
    s.extend((3 * PER_PAGE..600).map(rec)).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), 600);
    assert!(s.verify().unwrap().is_ok());
    assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
}

#[test]
fn repair_of_a_sound_store_does_nothing_and_needs_a_clean_handle() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clean.rmap");
    make(&path, 100);
    let mut s = Store::<Rec>::open(&path).unwrap();
    let g = s.generation();
    let rep = s.repair(Repair::TruncateToVerified).unwrap();
    assert_eq!((rep.records_after, rep.generation), (100, g));
    s.push(&rec(100)).unwrap();
    assert!(matches!(
        s.raw_mut().repair(Repair::RebuildChecksums),
        Err(Error::InvalidOption { .. })
    ));
}

#[cfg(unix)]
/// The log size of the growth tests: the smallest allowed, so the 1 MiB
/// limits leave the data file room to grow.
const SMALL_LOG: u64 = 64 << 10;

#[cfg(unix)]
/// Creates a store at `path` and appends (committing every 500 records)
/// until growing the file fails; returns the store, its length and the error.
fn fill_until_growth_fails(path: &Path) -> (Store<Rec>, u64, Error) {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .log_size(SMALL_LOG)
        .open::<Rec>(path)
        .unwrap();
    assert_eq!(
        std::fs::metadata(wal_path(path)).unwrap().len(),
        SMALL_LOG,
        "log preallocated to its size"
    );
    s.extend((0..1000).map(rec)).unwrap();
    s.commit().unwrap();
    let mut i = 1000;
    loop {
        match s.extend((i..i + 500).map(rec)) {
            Ok(_) => i += 500,
            Err(e) => return (s, i, e),
        }
        s.commit().unwrap();
    }
}

#[cfg(unix)]
fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

#[cfg(unix)]
/// A writer with the default 4 MiB log size where the limit at hand cannot
/// hold that much: the log starts small and grows only as commits need room;
/// where it cannot grow, the commit checkpoints and uses the room the log
/// has. The writer works, unpoisoned, until the data file cannot grow
/// (`want`); then what it committed is whole.
fn default_log_in_a_small_space(path: &Path, want: fn(&Error) -> bool) {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(path)
        .unwrap();
    let mut i = 0u64;
    let err = loop {
        match s.extend((i..i + 500).map(rec)) {
            Ok(_) => i += 500,
            Err(e) => break e,
        }
        // Updates too, so that the frames fill the log.
        for k in 0..300u64 {
            let j = k * 7 % i;
            s.set(j, &rec(j)).unwrap();
        }
        s.commit().unwrap();
    };
    assert!(want(&err), "{err}");
    println!("default log: the data file stopped at {i} records: {err}");
    assert!(s.raw().poisoned().is_none());
    assert_eq!(*s.get(i - 1).unwrap(), rec(i - 1));
    s.commit().unwrap();
    drop(s);
    let log = std::fs::metadata(wal_path(path)).unwrap().len();
    assert!(log <= 1 << 20, "the log grew to {log} bytes");
    let s = Store::<Rec>::open_read_only(path).unwrap();
    assert_eq!(s.len(), i);
    assert!(s.verify().unwrap().is_ok());
    assert!(s.iter().enumerate().all(|(k, r)| *r == rec(k as u64)));
}

#[cfg(unix)]
/// Runs the `#[ignore]`d test `name` of this binary in a child process.
fn child(name: &str, path: &Path) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RECMAP_FAULT_PATH", path)
        .launch_output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn growth_into_the_file_size_limit_is_a_clean_error() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fsize.rmap");
    let out = child("child_fsize_limit", &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("default log: "), "{stdout}");
    assert!(stdout.contains("child: FileTooLarge"), "{stdout}");
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert!(s.verify().unwrap().is_ok());
    let n = s.len();
    assert!(n >= 1000, "{n}");
    assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
}

#[cfg(unix)]
#[test]
#[ignore = "run by growth_into_the_file_size_limit_is_a_clean_error in a child process"]
fn child_fsize_limit() {
    let Ok(path) = std::env::var("RECMAP_FAULT_PATH") else {
        return;
    };
    // SAFETY: plain libc calls on this (single-threaded) child process: ignore
    // SIGXFSZ so the write fails with EFBIG instead of killing us, and cap
    // the size of files this process may create at 1 MiB.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let path = Path::new(&path);
    default_log_in_a_small_space(&path.with_extension("default-log.rmap"), |e| {
        matches!(e, Error::FileTooLarge { .. })
    });
    let (mut s, i, err) = fill_until_growth_fails(path);
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
    println!("child: FileTooLarge after {i} records: {err}");
    // The handle is not poisoned: reads and commits of what fits still work.
    assert_eq!(*s.get(i - 1).unwrap(), rec(i - 1));
    assert!(s.raw().poisoned().is_none());
    s.commit().unwrap();
    assert!(s.verify().unwrap().is_ok());
}

#[cfg(unix)]
/// A small tmpfs mounted for one test; unmounted on drop.
struct Tmpfs(std::path::PathBuf);
#[cfg(unix)]
impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("recmap-tmpfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Tmpfs(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}
#[cfg(unix)]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[cfg(unix)]
#[test]
fn growth_into_a_full_disk_is_a_clean_error() {
    let _serial = serial();
    let Some(fs) = Tmpfs::mount("1m") else {
        eprintln!("SKIPPED growth_into_a_full_disk_is_a_clean_error: cannot mount a tmpfs here (needs root)");
        return;
    };
    // A 4 MiB log does not fit in 1 MiB: it stays smaller.
    let first = fs.0.join("default-log.rmap");
    default_log_in_a_small_space(&first, |e| matches!(e, Error::NoSpace { .. }));
    for f in std::fs::read_dir(&fs.0).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let path = fs.0.join("full.rmap");
    let (mut s, i, err) = fill_until_growth_fails(&path);
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(s.raw().poisoned().is_none());
    assert_eq!(s.len(), i);
    s.commit().unwrap();
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), i);
    assert!(s.verify().unwrap().is_ok());
    assert!(s.iter().enumerate().all(|(k, r)| *r == rec(k as u64)));
}

#[cfg(unix)]
#[test]
fn a_log_that_cannot_grow_is_checkpointed_instead() {
    let _serial = serial();
    let Some(fs) = Tmpfs::mount("1m") else {
        eprintln!("SKIPPED a_log_that_cannot_grow_is_checkpointed_instead: cannot mount a tmpfs here (needs root)");
        return;
    };
    let path = fs.0.join("updates.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..1000).map(rec)).unwrap();
    s.commit().unwrap();
    // 200 commits of 500 updates (36 KB frames each) want 7 MB of log; the
    // default 4 MiB log would not fit in 1 MiB anyway: every commit must
    // still succeed, folding the log in when it cannot grow.
    let val = |i: u64, k: u64| Rec { id: i, a: i, b: k };
    for k in 0..200u64 {
        for j in 0..500u64 {
            let i = (j * 2 + k) % 1000;
            s.set(i, &val(i, k)).unwrap();
        }
        s.commit().unwrap();
    }
    assert!(s.raw().poisoned().is_none());
    let log = std::fs::metadata(wal_path(&path)).unwrap().len();
    assert!(log < 1 << 20, "the log grew to {log} bytes");
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert!(s.verify().unwrap().is_ok());
    // Record i was last set by the last k with (j * 2 + k) % 1000 == i for
    // some j < 500, i.e. the last k of the parity of i.
    for i in 0..1000u64 {
        let last = (0..200u64).rev().find(|k| (i + 1000 - k) % 2 == 0).unwrap();
        assert_eq!(*s.get(i).unwrap(), val(i, last), "record {i}");
    }
}

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;

#[test]
fn refresh_detects_a_file_truncated_behind_the_engine() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.rmap");
    make(&path, 100);
    let mut r = recmap::Reader::<Rec>::open(&path).unwrap();
    let mut w = Store::<Rec>::open(&path).unwrap();
    let cap = w.capacity();
    w.extend((100..cap * 4).map(rec)).unwrap(); // grows the file
    w.commit().unwrap();
    let need = std::fs::metadata(&path).unwrap().len();
    // Another program cuts the file (ignoring the locks).
    let cut = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(need / 2);
    // Windows refuses to shrink a file while any process maps it
    // (ERROR_USER_MAPPED_FILE): the cut cannot happen, and the views stay.
    if cfg!(windows) {
        let e = cut.expect_err("shrank a mapped file");
        assert_eq!(e.raw_os_error(), Some(1224), "{e}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), need);
        r.refresh().unwrap();
        assert_eq!(r.len(), cap * 4);
        assert_eq!(r.get(cap * 4 - 1).unwrap().unwrap(), rec(cap * 4 - 1));
        return;
    }
    cut.unwrap();
    match r.refresh() {
        Err(Error::Truncated {
            expected, actual, ..
        }) => {
            assert_eq!(actual, need / 2);
            assert!(expected > actual);
        }
        other => panic!("{other:?}"),
    }
    // The old view stays usable: its pages are still inside the file.
    assert_eq!(r.len(), 100);
    assert_eq!(r.get(99).unwrap().unwrap(), rec(99));
}

/// Flips one bit of committed record `i` in the data file, behind the
/// engine's back (as bit rot would).
fn flip_bit_of_record(path: &Path, s: &Store<Rec>, i: u64) {
    let info = s.info();
    let per_page = 4096 / std::mem::size_of::<Rec>() as u64;
    let at = info.data_offset + (i / per_page) * 4096 + (i % per_page) * 24 + 9;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
}

/// The groups a verify report names with a page checksum mismatch.
fn damaged(rep: &recmap::VerifyReport) -> Vec<u64> {
    rep.problems
        .iter()
        .filter_map(|p| match p {
            Problem::PageChecksum { group, .. } => Some(*group),
            _ => None,
        })
        .collect()
}

#[test]
fn a_commit_never_blesses_damaged_committed_bytes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rot.rmap");
    // 1000 records: pages of 170, the last (group 5) partly filled.
    make(&path, 1000);
    let mut s = Store::<Rec>::open(&path).unwrap();
    let g = s.generation();

    // Damage in the partly filled last page: an append into it would hash
    // the damaged bytes with the new ones, so the commit refuses.
    flip_bit_of_record(&path, &s, 990);
    s.push(&rec(1000)).unwrap();
    match s.commit() {
        Err(Error::CorruptPage { group, .. }) => assert_eq!(group, 5),
        r => panic!("append into a damaged last page: {r:?}"),
    }
    assert!(s.raw().poisoned().is_none());
    s.rollback().unwrap();
    assert_eq!(s.generation(), g);

    // Damage in a full page: an update of another record of it commits
    // (its checksum moves by the changed bytes alone, the page is not
    // read) and the damage stays reported, as does the last page's (a
    // commit that does not touch that page keeps its checksum, never
    // hashing its bytes again).
    flip_bit_of_record(&path, &s, 5);
    s.set(6, &rec(6006)).unwrap();
    s.commit().unwrap();
    assert_eq!(damaged(&s.verify().unwrap()), [0, 5], "after the commit");
    // Also after a checkpoint wrote the checksum to the table, and after
    // overwriting the damaged record itself (the report is conservative:
    // the commit cannot know which bytes were damaged).
    s.checkpoint().unwrap();
    assert_eq!(
        damaged(&s.verify().unwrap()),
        [0, 5],
        "after the checkpoint"
    );
    s.set(5, &rec(5005)).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(
        damaged(&s.verify().unwrap()),
        [0, 5],
        "after overwriting it"
    );
    assert_eq!(s.get(6).unwrap(), &rec(6006));
    assert_eq!(s.get(5).unwrap(), &rec(5005));
}

#[test]
fn updates_keep_clean_pages_clean_whatever_the_record_size() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // 24-byte records (padded pages) and 5000-byte ones (groups of two
    // pages, one record each): checksums moved by the changed bytes must
    // equal the ones `verify` hashes from the pages.
    let path = dir.path().join("small.rmap");
    make(&path, 2000);
    let mut s = Store::<Rec>::open(&path).unwrap();
    for round in 0..20u64 {
        for k in 0..30 {
            let i = (round * 7919 + k * 104_729) % 2000;
            s.set(i, &rec(i ^ (round << 32))).unwrap();
        }
        s.commit().unwrap();
        if round % 7 == 0 {
            s.checkpoint().unwrap();
        }
    }
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    let rep = s.verify().unwrap();
    assert!(rep.problems.is_empty(), "{rep:?}");

    recmap::record! {
        pub struct Big { pub id: u64, pub body: [u64; 624] }
    }
    let big = |i: u64, v: u64| Big {
        id: i,
        body: std::array::from_fn(|k| v.wrapping_mul(k as u64 + 1)),
    };
    let path = dir.path().join("big.rmap");
    let mut s = Options::new().create_new(true).open::<Big>(&path).unwrap();
    s.extend((0..40).map(|i| big(i, i))).unwrap();
    s.commit().unwrap();
    for round in 1..10u64 {
        s.set(round * 3 % 40, &big(round, round * 1000)).unwrap();
        s.set(round * 5 % 40, &big(round, round * 7)).unwrap();
        s.commit().unwrap();
    }
    drop(s);
    let s = Store::<Big>::open_read_only(&path).unwrap();
    let rep = s.verify().unwrap();
    assert!(rep.problems.is_empty(), "{rep:?}");
    assert_eq!(s.get(27).unwrap().body[3], 9 * 1000 * 4);
}
