//! A hostile environment around a store, set up for real (issue 11): a
//! planted `-lock` symlink in a shared sticky directory, a FIFO as the lock
//! file, a lock file of another owner, a user who may only read the store,
//! a deleted or renamed lock file (or a renamed store) under a live reader,
//! lock files that are not recmap's, and named shared stores' permissions
//! and planted links.
//!
//! Cases that need root (changing a file's owner, running a child as
//! another user) are skipped with a printed reason where they cannot be set
//! up. Hangs are caught with a timeout (a thread and `recv_timeout`); no
//! assertion depends on timing.
#![cfg(unix)]

use recmap::{Error, Options, Reader, Store};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
mod common;

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;
use common::spawn::Launch;

recmap::record! {
    /// `check` is always `!value ^ index`: a torn record fails it.
    pub struct Rec { pub index: u64, pub value: u64, pub check: u64 }
}

fn rec(index: u64, value: u64) -> Rec {
    Rec {
        index,
        value,
        check: !value ^ index,
    }
}

/// A record as a reader returned it: whole, at its place, and of a value
/// committed by then (`value <= committed`).
fn assert_whole(r: &Rec, i: u64, committed: u64, who: &str) {
    assert_eq!(r.index, i, "{who}: record {i} misplaced: {r:?}");
    assert_eq!(r.check, !r.value ^ r.index, "{who}: record {i} torn: {r:?}");
    assert!(
        r.value <= committed,
        "{who}: record {i} has value {} never committed (last commit wrote {committed})",
        r.value
    );
}

const RECORDS: u64 = 1000;

fn lock_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-lock");
    PathBuf::from(s)
}

fn wal_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// A directory like `/tmp`: world-writable and sticky.
fn sticky_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// A store of `RECORDS` records of value 0, closed; its lock file removed.
fn store_at(path: &Path) {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .log_size(64 << 10)
        .open::<Rec>(path)
        .unwrap();
    s.extend((0..RECORDS).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    drop(s);
    let _ = std::fs::remove_file(lock_path(path));
}

/// A writer. It waits for the lock: other tests of this binary spawn
/// children, which hold copies of every descriptor (and so the lock of a
/// writer just closed) between `fork` and `exec`.
fn writer(path: &Path) -> Result<Store<Rec>, Error> {
    Options::new()
        .log_size(64 << 10)
        .wait_for_lock(true)
        .open::<Rec>(path)
}

/// Runs `f` in a thread; panics if it takes more than 10 s (a hang).
fn within_10s<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    within(Duration::from_secs(10), what, f)
}

/// Runs `f` in a thread; panics if it takes more than `limit` (a hang).
fn within<R: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: hung (or panicked) after {limit:?}"))
}

/// Every kind of handle that uses the coordination file, reporting only
/// success or the error.
type Opener = fn(&Path) -> Result<(), Error>;
const OPENERS: [(&str, Opener); 3] = [
    ("writer", |p| writer(p).map(drop)),
    ("reader", |p| Reader::<Rec>::open(p).map(drop)),
    ("raw reader", |p| recmap::RawReader::open(p).map(drop)),
];

/// Asserts `r` is `BadCoordination` naming `lock`, with a reason containing
/// `needle`, and not containing `secret` (a file's contents).
fn assert_bad(r: Result<(), Error>, lock: &Path, needle: &str, secret: &str, what: &str) {
    match r {
        Err(Error::BadCoordination { path, reason }) => {
            assert_eq!(path, lock, "{what}: {reason}");
            assert!(
                reason.contains(needle),
                "{what}: reason {reason:?} does not say {needle:?}"
            );
            let msg = Error::BadCoordination {
                path: path.clone(),
                reason: reason.clone(),
            }
            .to_string();
            assert!(
                secret.is_empty() || !msg.contains(secret),
                "{what}: message echoes the file: {msg}"
            );
        }
        r => panic!(
            "{what}: expected BadCoordination for {}, got {r:?}",
            lock.display()
        ),
    }
}

/// Asserts that every opener of `path` fails with `BadCoordination` naming
/// `file`, with a reason containing `needle`, and does not hang.
fn every_opener_refuses(path: &Path, file: &Path, needle: &str) {
    for (who, open) in OPENERS {
        let p = path.to_path_buf();
        assert_bad(within_10s(who, move || open(&p)), file, needle, "", who);
    }
}

// ----- planted links and files that are not ours ------------------------------

#[test]
fn a_planted_lock_symlink_is_never_followed() {
    let _serial = serial();
    let d = sticky_dir();
    let path = d.path().join("store.rmap");
    store_at(&path);
    let lock = lock_path(&path);
    // A private file of the victim's, and a link to it where the lock goes.
    let private = d.path().join("private");
    std::fs::write(&private, b"SECRET!").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&private, &lock).unwrap();
    let data = std::fs::read(&path).unwrap();
    for (who, open) in OPENERS {
        let p = path.clone();
        let r = within_10s(who, move || open(&p));
        assert_bad(r, &lock, "symbolic link", "SECRET", who);
    }
    // The target is unchanged: contents, length, permissions.
    assert_eq!(std::fs::read(&private).unwrap(), b"SECRET!");
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read(&path).unwrap(), data, "data file changed");
    // A dangling link: nothing is created through it.
    std::fs::remove_file(&lock).unwrap();
    let nowhere = d.path().join("nowhere");
    std::os::unix::fs::symlink(&nowhere, &lock).unwrap();
    every_opener_refuses(&path, &lock, "symbolic link");
    assert!(!nowhere.exists(), "created through a dangling link");
    // Creating a store beside a planted link fails the same way.
    let new = d.path().join("new.rmap");
    let new_lock = lock_path(&new);
    std::os::unix::fs::symlink(&private, &new_lock).unwrap();
    let p = new.clone();
    let r = within_10s("create", move || {
        Options::new().create_new(true).open::<Rec>(&p).map(drop)
    });
    assert_bad(r, &new_lock, "symbolic link", "SECRET", "create");
    assert_eq!(std::fs::read(&private).unwrap(), b"SECRET!");
    // Removed, the store opens as it was.
    std::fs::remove_file(&lock).unwrap();
    let s = writer(&path).unwrap();
    assert_eq!(s.len(), RECORDS);
    assert_eq!(s.get(7), Some(&rec(7, 0)));
}

#[test]
fn a_fifo_or_directory_as_lock_file_is_refused_without_hanging() {
    let _serial = serial();
    for kind in ["fifo", "directory"] {
        let d = sticky_dir();
        let path = d.path().join("store.rmap");
        store_at(&path);
        let lock = lock_path(&path);
        match kind {
            "fifo" => {
                let c = std::ffi::CString::new(lock.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: mkfifo on a NUL-terminated path we own.
                #[allow(unsafe_code)]
                let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o666) };
                assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
            }
            _ => std::fs::create_dir(&lock).unwrap(),
        }
        for (who, open) in OPENERS {
            let p = path.clone();
            let what = format!("{kind}, {who}");
            let r = within_10s(&what, move || open(&p));
            let needle = if kind == "fifo" { "FIFO" } else { "director" };
            assert_bad(r, &lock, needle, "", &what);
        }
    }
}

#[test]
fn lock_files_that_are_not_ours_are_refused_without_echoing_them() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    let lock = lock_path(&path);
    // (contents, what the reason must say)
    let mut valid_but_short = b"RMAPCORD".to_vec();
    valid_but_short.extend_from_slice(&3u32.to_le_bytes());
    let mut foreign = b"SECRET-CONTENT-XYZ".repeat(3000);
    foreign.truncate(36864);
    let mut newer = vec![0u8; 36864];
    newer[..8].copy_from_slice(b"RMAPCORD");
    newer[8..12].copy_from_slice(&99u32.to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("short", b"SECRET-CONTENT-XYZ".to_vec(), "shorter"),
        ("valid header, short", valid_but_short, "shorter"),
        (
            "foreign",
            foreign,
            "does not hold a recmap coordination header",
        ),
        ("newer", newer, "newer recmap"),
    ];
    for (what, bytes, needle) in cases {
        std::fs::write(&lock, &bytes).unwrap();
        for (who, open) in OPENERS {
            let p = path.clone();
            let what = format!("{what}, {who}");
            assert_bad(
                within_10s(&what, move || open(&p)),
                &lock,
                needle,
                "SECRET",
                &what,
            );
            // Messages print neither the bytes nor their hex.
            assert_eq!(
                std::fs::read(&lock).unwrap(),
                bytes,
                "{what}: lock file changed"
            );
        }
    }
    // A second name for the lock file: writing it could change another file.
    std::fs::remove_file(&lock).unwrap();
    drop(writer(&path).unwrap());
    let other = d.path().join("other-name");
    std::fs::hard_link(&lock, &other).unwrap();
    every_opener_refuses(&path, &lock, "hard links");
    std::fs::remove_file(&other).unwrap();
    assert_eq!(writer(&path).unwrap().len(), RECORDS);
}

#[test]
fn a_lock_file_of_another_owner_is_refused() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    drop(writer(&path).unwrap());
    let lock = lock_path(&path);
    // An attacker's file: another uid, writable by everyone.
    if let Err(e) = std::os::unix::fs::chown(&lock, Some(65534), Some(65534)) {
        println!("SKIPPED a_lock_file_of_another_owner_is_refused: cannot chown to 65534 ({e}); needs root");
        return;
    }
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = std::fs::read(&lock).unwrap();
    every_opener_refuses(&path, &lock, "uid 65534");
    assert_eq!(std::fs::read(&lock).unwrap(), before, "lock file changed");
    // What the message says to do works.
    std::fs::remove_file(&lock).unwrap();
    let s = writer(&path).unwrap();
    assert_eq!(s.len(), RECORDS);
    let m = std::fs::metadata(&lock).unwrap();
    assert_eq!(m.uid(), std::fs::metadata(&path).unwrap().uid());
}

#[test]
fn the_lock_file_gets_the_data_files_owner_and_permission_bits_and_is_not_sparse() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    for mode in [0o640, 0o600, 0o664] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let _ = std::fs::remove_file(lock_path(&path));
        drop(writer(&path).unwrap());
        let m = std::fs::metadata(lock_path(&path)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, mode, "lock file mode");
        assert!(m.is_file());
        assert_eq!(m.len(), 36864);
        // Every block allocated: no store through the map can meet a full disk.
        assert!(
            m.blocks() * 512 >= m.len(),
            "lock file is sparse: {} blocks for {} bytes",
            m.blocks(),
            m.len()
        );
    }
    // No temporary files left beside it.
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // A store owned by another user (made by root): the lock file root
    // makes belongs to that user too.
    if std::os::unix::fs::chown(&path, Some(65534), Some(65534)).is_ok() {
        let _ = std::fs::remove_file(lock_path(&path));
        drop(writer(&path).unwrap());
        let m = std::fs::metadata(lock_path(&path)).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
    } else {
        println!("SKIPPED owner half: cannot chown (needs root)");
    }
}

// ----- a user who may only read --------------------------------------------------

/// Child (run as uid 65534): opens a reader on `RECMAP_HE_PATH`, which it
/// may only read, prints what it sees, waits for the parent's commit.
#[test]
#[ignore = "child process of read_only_user_opens_a_reader"]
fn child_read_only_reader() {
    let _serial = serial();
    let Some(path) = std::env::var_os("RECMAP_HE_PATH").map(PathBuf::from) else {
        return;
    };
    // It really may not write.
    match writer(&path) {
        Err(e) => println!("writer refused: {e}"),
        Ok(_) => panic!("a writer opened for a read-only user"),
    }
    // A store whose lock file is missing, in a directory it may not write:
    // a typed refusal saying so.
    if let Some(p2) = std::env::var_os("RECMAP_HE_PATH2").map(PathBuf::from) {
        match Reader::<Rec>::open(&p2) {
            Err(Error::BadCoordination { path, reason }) => {
                assert_eq!(path, lock_path(&p2));
                assert!(reason.contains("cannot create"), "{reason}");
                println!("missing lock refused");
            }
            r => panic!("reader without a lock file it may create: {r:?}"),
        }
    }
    let mut r = Reader::<Rec>::open(&path).expect("reader for a read-only user");
    for i in 0..RECORDS {
        assert_whole(&r.get(i).unwrap().unwrap(), i, 0, "read-only reader");
    }
    println!("ready {}", r.generation());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let g = r
        .wait_for_commit(r.generation(), Duration::from_secs(10))
        .unwrap()
        .expect("the parent's commit within 10 s");
    let v = r.get(5).unwrap().unwrap();
    assert_whole(&v, 5, 1, "read-only reader after commit");
    let snap_v = r.read_txn(|s| s.get(5)).unwrap().unwrap();
    println!("saw {} {} at {g}", v.value, snap_v.value);
}

#[test]
fn read_only_user_opens_a_reader() {
    let _serial = serial();
    if Command::new("setpriv")
        .arg("--help")
        .launch_output()
        .is_err()
    {
        println!("SKIPPED read_only_user_opens_a_reader: setpriv is missing");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut w = writer(&path).unwrap();
    let lock = lock_path(&path);
    assert_eq!(
        std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let path2 = d.path().join("nolock.rmap");
    store_at(&path2);
    std::fs::set_permissions(&path2, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = std::fs::set_permissions(wal_path(&path), std::fs::Permissions::from_mode(0o644));
    // The test binary, where uid 65534 may run it.
    let exe = d.path().join("hostile_env_child");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let probe = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .launch_output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        println!(
            "SKIPPED read_only_user_opens_a_reader: setpriv cannot change uid here (needs root)"
        );
        return;
    }
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "child_read_only_reader",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RECMAP_HE_PATH", &path)
        .env("RECMAP_HE_PATH2", &path2)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let ready = within_10s("child ready", move || {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                return (false, seen, out);
            }
            seen.push_str(&line);
            if line.starts_with("ready") {
                return (true, seen, out);
            }
        }
    });
    let (ok, mut seen, mut out) = ready;
    if !ok {
        let o = child.wait_with_output().unwrap();
        panic!(
            "child failed before ready ({:?}):\n{seen}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    w.set(5, &rec(5, 1)).unwrap();
    w.commit().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    use std::io::Read;
    let rest = within_10s("child end", move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    seen.push_str(&rest);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "child failed ({:?}):\n{seen}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(seen.contains("writer refused"), "{seen}");
    assert!(seen.contains("missing lock refused"), "{seen}");
    assert!(!lock_path(&path2).exists());
    assert!(seen.contains("saw 1 1"), "{seen}");
    drop(w);
}

// ----- coordination identity ---------------------------------------------------

/// Rounds read, and the value the reader saw last; or what went wrong.
type HammerResult = Result<(u64, Option<u64>), String>;

/// A reader thread hammering `get` and snapshots while the main thread
/// commits: every value whole and committed by the time it was read.
struct Hammer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    committed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<HammerResult>>,
}

impl Hammer {
    fn start(mut r: Reader<Rec>) -> Hammer {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Raised before a commit starts: values up to it may be read.
        let committed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, c) = (stop.clone(), committed.clone());
        let thread = std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut i = 0u64;
            // At least one round, however soon it is stopped.
            loop {
                match r.refresh() {
                    Ok(_) => {}
                    Err(e) => return Err(format!("refresh: {e}")),
                }
                i = (i + 7) % RECORDS;
                let got = r.get(i);
                // Loaded after the read: the value read was committed (or
                // being committed) by then.
                let top = c.load(Ordering::Acquire);
                match got {
                    Ok(Some(v)) => assert_whole(&v, i, top, "hammer get"),
                    Ok(None) => return Err(format!("record {i} missing")),
                    Err(e) => return Err(format!("get: {e}")),
                }
                // A snapshot: every record of one commit.
                let pair = r.read_txn(|s| Ok((s.get(i)?, s.get((i + 500) % RECORDS)?)));
                let top = c.load(Ordering::Acquire);
                match pair {
                    Ok((Some(a), Some(b))) => {
                        assert_whole(&a, i, top, "hammer snapshot");
                        assert_whole(&b, (i + 500) % RECORDS, top, "hammer snapshot");
                        assert_eq!(a.value, b.value, "snapshot mixes commits");
                    }
                    Ok(_) => return Err("snapshot record missing".into()),
                    Err(Error::SnapshotExpired { .. }) => {}
                    Err(e) => return Err(format!("snapshot: {e}")),
                }
                reads += 1;
                if s.load(Ordering::Acquire) {
                    // Stopped after the last commit returned: adopting
                    // the newest commit now must find it.
                    r.refresh().map_err(|e| format!("last refresh: {e}"))?;
                    let last = r.get(0).map_err(|e| format!("last get: {e}"))?;
                    return Ok((reads, last.map(|v| v.value)));
                }
            }
        });
        Hammer {
            stop,
            committed,
            thread: Some(thread),
        }
    }

    /// Commits value `v` to every record through `w`.
    fn commit(&self, w: &mut Store<Rec>, v: u64) {
        self.committed
            .store(v, std::sync::atomic::Ordering::Release);
        for i in 0..RECORDS {
            w.set(i, &rec(i, v)).unwrap();
        }
        w.commit().unwrap();
    }

    /// Stops the reader; returns how many rounds it read, after checking
    /// that it then adopts the last commit (value `last`) made through the
    /// coordination file it uses.
    fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let (reads, seen) = self.thread.take().unwrap().join().unwrap().unwrap();
        let last = self.committed.load(std::sync::atomic::Ordering::Acquire);
        assert_eq!(seen, Some(last), "the reader does not see the last commit");
        reads
    }
}

#[test]
fn a_deleted_or_renamed_lock_file_under_a_live_writer_and_reader() {
    let _serial = serial();
    for how in ["deleted", "renamed"] {
        lock_file_gone_under_live_handles(how);
    }
}

fn lock_file_gone_under_live_handles(how: &str) {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    let mut w = writer(&path).unwrap();
    let h = Hammer::start(Reader::<Rec>::open(&path).unwrap());
    h.commit(&mut w, 1);
    if how == "deleted" {
        std::fs::remove_file(lock_path(&path)).unwrap();
    } else {
        std::fs::rename(lock_path(&path), d.path().join("elsewhere")).unwrap();
    }
    // The live writer and reader keep their (deleted) coordination file.
    for v in 2..6 {
        h.commit(&mut w, v);
    }
    // A new reader would make another one: refused while they live.
    let lock = lock_path(&path);
    let p = path.clone();
    assert_bad(
        within_10s("new reader", move || Reader::<Rec>::open(&p).map(drop)),
        &lock,
        "another coordination file",
        "",
        "new reader",
    );
    h.commit(&mut w, 6);
    assert!(h.finish() > 0, "{how}");
    drop(w);
    // Nobody has it open: a new coordination file serves everyone.
    let mut r = Reader::<Rec>::open(&path).unwrap();
    assert_eq!(r.get(3).unwrap(), Some(rec(3, 6)));
    let mut w = writer(&path).unwrap();
    w.set(3, &rec(3, 7)).unwrap();
    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.get(3).unwrap(), Some(rec(3, 7)));
}

#[test]
fn a_writer_refuses_a_new_lock_file_while_readers_use_the_old_one() {
    let _serial = serial();
    for how in ["deleted", "renamed", "store renamed"] {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("store.rmap");
        store_at(&path);
        drop(writer(&path).unwrap());
        let r = Reader::<Rec>::open(&path).unwrap();
        let h = Hammer::start(r);
        let data_path = match how {
            "deleted" => {
                std::fs::remove_file(lock_path(&path)).unwrap();
                path.clone()
            }
            "renamed" => {
                std::fs::rename(lock_path(&path), d.path().join("elsewhere")).unwrap();
                path.clone()
            }
            _ => {
                let moved = d.path().join("moved.rmap");
                std::fs::rename(&path, &moved).unwrap();
                std::fs::rename(wal_path(&path), wal_path(&moved)).unwrap();
                moved
            }
        };
        let lock = lock_path(&data_path);
        for (who, open) in OPENERS {
            let p = data_path.clone();
            let what = format!("{how}, {who}");
            assert_bad(
                within_10s(&what, move || open(&p)),
                &lock,
                "another coordination file",
                "",
                &what,
            );
        }
        // The reader still reads the last commit, whole.
        assert!(h.finish() > 0, "{how}");
        // Once it is gone, a writer opens and readers follow it.
        let mut w = writer(&data_path).unwrap();
        let h = Hammer::start(Reader::<Rec>::open(&data_path).unwrap());
        for v in 1..4 {
            h.commit(&mut w, v);
        }
        assert!(h.finish() > 0, "{how}");
        // Shrinking is refused while a reader lives, with the new file.
        let r = Reader::<Rec>::open(&data_path).unwrap();
        assert!(matches!(
            w.raw_mut().compact(),
            Err(Error::ReadersPresent { .. })
        ));
        drop(r);
    }
}

// ----- named shared stores -------------------------------------------------------

fn shared_name(tag: &str) -> String {
    format!("recmap-hostile-{tag}-{}", std::process::id())
}

#[test]
fn named_shared_stores_are_private_unless_asked() {
    let _serial = serial();
    for (mode, want) in [(None, 0o600), (Some(0o640), 0o640)] {
        let n = shared_name(&format!("mode{want:o}"));
        let _ = recmap::shared::remove_shared(&n);
        let opts = match mode {
            Some(m) => Options::new().shared_mode(m),
            None => Options::new(),
        };
        let mut s = opts.create_shared::<Rec>(&n).unwrap();
        s.push(&rec(0, 9)).unwrap();
        s.commit().unwrap();
        let path = recmap::shared::shared_path(&n).unwrap();
        for p in [path.clone(), lock_path(&path), wal_path(&path)] {
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert!(m.is_file(), "{}", p.display());
            assert_eq!(
                m.permissions().mode() & 0o777,
                want,
                "{}: mode {:o}",
                p.display(),
                m.permissions().mode() & 0o777
            );
        }
        let r = Reader::<Rec>::open_shared(&n).unwrap();
        assert_eq!(r.get(0).unwrap(), Some(rec(0, 9)));
        drop(r);
        drop(s);
        // No staging directory left behind.
        let dir = path.parent().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.contains(&n) && f.contains("tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        recmap::shared::remove_shared(&n).unwrap();
    }
}

#[test]
fn planted_links_at_named_shared_store_paths_are_not_followed() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let private = d.path().join("private");
    std::fs::write(&private, b"SECRET!").unwrap();
    // The store's own name.
    let n = shared_name("link");
    let path = recmap::shared::shared_path(&n).unwrap();
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(&private, &path).unwrap();
    let r = within_10s("open_shared", {
        let n = n.clone();
        move || Store::<Rec>::open_shared(&n).map(drop)
    });
    assert!(
        matches!(r, Err(Error::NotRegularFile { .. })),
        "open_shared through a link: {r:?}"
    );
    let r = Store::<Rec>::create_shared(&n).map(drop);
    assert!(matches!(r, Err(Error::AlreadyExists { .. })), "{r:?}");
    assert_eq!(std::fs::read(&private).unwrap(), b"SECRET!");
    std::fs::remove_file(&path).unwrap();
    // Its lock file's name.
    let n = shared_name("locklink");
    let path = recmap::shared::shared_path(&n).unwrap();
    let lock = lock_path(&path);
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(&private, &lock).unwrap();
    let r = within_10s("create_shared", {
        let n = n.clone();
        move || Store::<Rec>::create_shared(&n).map(drop)
    });
    assert_bad(
        r,
        &lock,
        "symbolic link",
        "SECRET",
        "create_shared beside a planted lock link",
    );
    assert_eq!(std::fs::read(&private).unwrap(), b"SECRET!");
    std::fs::remove_file(&lock).unwrap();
    let _ = recmap::shared::remove_shared(&n);
}

// ----- a full file system ----------------------------------------------------------

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(kib: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .launch_output()
            .ok()?;
        out.status.success().then_some(SmallFs { dir })
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system at `dir` (a file `filler`), leaving less than a
/// page free.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let page = vec![1u8; 4096];
    while f.write_all(&page).is_ok() {}
    let _ = f.write_all(&page[..1]);
    filler
}

#[test]
fn a_full_disk_is_no_space_when_opening_never_a_signal_later() {
    let _serial = serial();
    let Some(fs) = SmallFs::mount(512) else {
        println!("SKIPPED a_full_disk_is_no_space_when_opening_never_a_signal_later: cannot mount a tmpfs (needs root)");
        return;
    };
    let path = fs.path().join("store.rmap");
    store_at(&path);
    let lock = lock_path(&path);
    let filler = fill(fs.path());
    for (who, open) in OPENERS {
        let p = path.clone();
        match within_10s(who, move || open(&p)) {
            Err(Error::NoSpace { path: p, .. }) => assert_eq!(p, lock, "{who}"),
            r => panic!("{who} on a full disk: {r:?}"),
        }
        // Nothing half made: no lock file, no temporary file.
        let names: Vec<_> = std::fs::read_dir(fs.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!lock.exists(), "{who}: {names:?}");
        assert!(!names.iter().any(|n| n.contains("tmp")), "{who}: {names:?}");
    }
    // A sparse lock file (as earlier versions made them) is allocated when
    // opened: NoSpace now, rather than SIGBUS at the first store into a hole.
    std::fs::remove_file(&filler).unwrap();
    drop(writer(&path).unwrap());
    let bytes = std::fs::read(&lock).unwrap();
    std::fs::remove_file(&lock).unwrap();
    {
        let f = std::fs::File::create(&lock).unwrap();
        f.set_len(bytes.len() as u64).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&bytes[..16], 0).unwrap();
    }
    let filler = fill(fs.path());
    let p = path.clone();
    match within_10s("writer, sparse lock file", move || writer(&p).map(drop)) {
        Err(Error::NoSpace { path: p, .. }) => assert_eq!(p, lock),
        r => panic!("writer with a sparse lock file on a full disk: {r:?}"),
    }
    // With room again, everything opens and commits.
    std::fs::remove_file(&filler).unwrap();
    let mut w = writer(&path).unwrap();
    let r = Reader::<Rec>::open(&path).unwrap();
    w.set(1, &rec(1, 1)).unwrap();
    w.commit().unwrap();
    let mut r = r;
    assert!(r.refresh().unwrap());
    assert_eq!(r.get(1).unwrap(), Some(rec(1, 1)));
}

#[test]
fn racing_first_opens_make_one_complete_lock_file() {
    let _serial = serial();
    for round in 0..5 {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("store.rmap");
        store_at(&path);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|k| {
                let (p, b) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    if k == 0 {
                        writer(&p).map(|w| w.len())
                    } else {
                        Reader::<Rec>::open(&p).map(|r| r.len())
                    }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), RECORDS, "round {round}");
        }
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("tmp")),
            "round {round}: {names:?}"
        );
        let m = std::fs::metadata(lock_path(&path)).unwrap();
        assert_eq!((m.len(), m.nlink()), (36864, 1), "round {round}");
    }
}

/// Child (run under `umask 077`): makes the lock file of the store at
/// `RECMAP_HE_PATH` (data file mode 0644) and prints its mode.
#[test]
#[ignore = "child process of the_lock_files_mode_does_not_depend_on_the_umask"]
fn child_umask_writer() {
    let _serial = serial();
    let Some(path) = std::env::var_os("RECMAP_HE_PATH").map(PathBuf::from) else {
        return;
    };
    drop(writer(&path).unwrap());
    let m = std::fs::metadata(lock_path(&path)).unwrap();
    println!("lock mode {:o}", m.permissions().mode() & 0o777);
}

#[test]
fn the_lock_files_mode_does_not_depend_on_the_umask() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" child_umask_writer --exact --ignored --nocapture --test-threads=1")
        .arg(std::env::current_exe().unwrap())
        .env("RECMAP_HE_PATH", &path)
        .launch_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lock mode 644"), "{stdout}");
}

/// A stripe word held odd while the writer lives (the data file's owner
/// wrote it: a stopped writer, or a hostile one) makes a reader wait a
/// bounded time and then fail with `WriterStalled`; a snapshot refuses at
/// once. Before: `Reader::get` spun forever.
#[test]
fn a_stripe_held_odd_by_a_live_writer_bounds_the_readers_wait() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stall.rmap");
    store_at(&path);
    let w = writer(&path).unwrap();
    let mut r = Reader::<Rec>::open(&path).unwrap();
    // Record 0 is on page (group) 0: stripe 0 at offset 4096. The apply
    // sequence (offset 104) made odd too, as a writer mid-apply leaves it,
    // so the reader cannot take its fast path.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock_path(&path))
        .unwrap();
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 8];
    lock.read_exact_at(&mut b, 104).unwrap();
    lock.write_all_at(&(u64::from_le_bytes(b) | 1).to_le_bytes(), 104)
        .unwrap();
    lock.read_exact_at(&mut b, 4096).unwrap();
    lock.write_all_at(&(u64::from_le_bytes(b) | 1).to_le_bytes(), 4096)
        .unwrap();
    r.refresh().unwrap();
    // The reader's own bound is 10 s: give it room.
    match within(Duration::from_secs(60), "a stalled stripe", move || {
        r.get(0).map(|_| ())
    }) {
        Err(Error::WriterStalled { index: 0, .. }) => {}
        other => panic!("expected WriterStalled, got {other:?}"),
    }
    drop(w);
}

// ----- the log's name, owner and links ------------------------------------------

/// The data file and log of `data` copied to `dir`, as a process kill
/// leaves them (a kill keeps the page cache, which a read sees); returns
/// the copy's data path.
fn kill_image(data: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join("s.rmap");
    std::fs::copy(data, &copy).unwrap();
    if wal_path(data).exists() {
        std::fs::copy(wal_path(data), wal_path(&copy)).unwrap();
    }
    copy
}

/// The generation a read-only open of the image finds, after checking it
/// verifies clean and holds `want` at the indices given.
fn image_state(copy: &Path, want: &[(u64, u64)]) -> u64 {
    let s = Store::<Rec>::open_read_only(copy).unwrap();
    assert!(s.verify().unwrap().is_ok(), "the image verifies clean");
    for &(i, v) in want {
        assert_eq!(s.get(i).unwrap().value, v, "record {i}");
    }
    s.generation()
}

/// A store opened through a symbolic link keeps its log beside the file the
/// link names, where every other open looks: a crash then loses nothing
/// (the log once sat beside the link's name, and an open by the real name
/// found no log and went back to the last checkpoint).
#[test]
fn a_store_opened_through_a_symlink_keeps_its_log_beside_the_real_file() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("real")).unwrap();
    let real = d.path().join("real").join("s.rmap");
    store_at(&real);
    let link = d.path().join("link.rmap");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut w = writer(&link).unwrap();
    w.set(7, &rec(7, 1)).unwrap();
    let stats = w.commit().unwrap();
    assert!(wal_path(&real).exists(), "the log is beside the real file");
    assert!(!wal_path(&link).exists(), "no log beside the link");
    let copy = kill_image(&real, &d.path().join("image"));
    drop(w);
    assert_eq!(
        image_state(&copy, &[(7, 1)]),
        stats.generation,
        "the real name finds the commit"
    );
}

/// A log with a second name (writing it would change the other file) or of
/// another owner (who could forge commits into it) is refused by every
/// opener, naming the log, and left as it is.
#[test]
fn a_log_with_two_names_or_of_another_owner_is_refused() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    let mut w = writer(&path).unwrap();
    w.set(3, &rec(3, 1)).unwrap();
    w.commit().unwrap();
    drop(w);
    let log = std::fs::canonicalize(wal_path(&path)).unwrap();
    let other = d.path().join("other-file");
    std::fs::hard_link(&log, &other).unwrap();
    let before = std::fs::read(&other).unwrap();
    every_opener_refuses(&path, &log, "2 names (hard links)");
    assert_eq!(
        std::fs::read(&other).unwrap(),
        before,
        "the other file changed"
    );
    std::fs::remove_file(&other).unwrap();
    if let Err(e) = std::os::unix::fs::chown(&log, Some(65534), Some(65534)) {
        println!("SKIPPED the other-owner half of a_log_with_two_names_or_of_another_owner_is_refused: cannot chown to 65534 ({e}); needs root");
        return;
    }
    every_opener_refuses(&path, &log, "belongs to uid 65534");
    // What the message says to do works.
    let owner = std::fs::metadata(&path).unwrap();
    std::os::unix::fs::chown(&log, Some(owner.uid()), Some(owner.gid())).unwrap();
    let s = writer(&path).unwrap();
    assert_eq!(s.get(3).unwrap().value, 1);
}

/// A log removed, or replaced by a rename, under a live writer: the next
/// commit notices (the open log has no name left), folds the old log's
/// commits into the data file and starts a new log at the path, so a crash
/// after it loses no acknowledged commit (they once went on into the
/// unnamed file, and a crash lost them all).
#[test]
fn a_log_removed_or_replaced_under_a_live_writer_loses_no_commit() {
    let _serial = serial();
    for how in ["removed", "replaced"] {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("store.rmap");
        store_at(&path);
        let mut w = writer(&path).unwrap();
        w.set(1, &rec(1, 1)).unwrap();
        w.commit().unwrap();
        if how == "removed" {
            std::fs::remove_file(wal_path(&path)).unwrap();
        } else {
            let planted = d.path().join("planted");
            std::fs::write(&planted, b"").unwrap();
            std::fs::rename(&planted, wal_path(&path)).unwrap();
        }
        // A reader that checks pages beside the idle writer is told why it
        // cannot: the log there does not hold the commit the writer
        // published (not "the writer kept changing pages").
        let mut r = recmap::RawReader::open(&path).unwrap();
        let snap = r.snapshot().unwrap();
        match snap.page_sums() {
            Err(Error::BadCoordination { path: p, reason }) => {
                assert!(p.to_string_lossy().ends_with("-wal"), "{how}: {p:?}");
                assert!(reason.contains("removed or replaced"), "{how}: {reason}");
            }
            r => panic!("{how}: page sums beside a writer whose log is gone: {r:?}"),
        }
        drop(r);
        w.set(2, &rec(2, 2)).unwrap();
        let stats = w.commit().unwrap();
        assert!(wal_path(&path).exists(), "{how}: a log at the path again");
        let mut r = recmap::RawReader::open(&path).unwrap();
        assert!(
            r.snapshot().unwrap().page_sums().is_ok(),
            "{how}: the new log serves"
        );
        drop(r);
        let copy = kill_image(&path, &d.path().join("image"));
        drop(w);
        assert_eq!(
            image_state(&copy, &[(1, 1), (2, 2)]),
            stats.generation,
            "{how}: both commits survive a kill"
        );
    }
}

/// A commit that needs the log to grow on a full disk fails with
/// `NoSpace` before it writes anything (the whole new part of the log is
/// zero-filled first), so the handle stays usable and the commit goes
/// through once there is room; the frames' own write never meets the full
/// disk (it once did, for a commit longer than twice the log: the write
/// failed and poisoned the handle).
#[test]
fn a_log_that_cannot_grow_on_a_full_disk_fails_the_commit_typed_and_stays_usable() {
    let _serial = serial();
    let Some(fs) = SmallFs::mount(4096) else {
        println!("SKIPPED a_log_that_cannot_grow_on_a_full_disk_fails_the_commit_typed_and_stays_usable: cannot mount a tmpfs (needs root)");
        return;
    };
    let path = fs.path().join("store.rmap");
    let mut w = Options::new()
        .create_new(true)
        .log_size(1 << 20)
        .open::<Rec>(&path)
        .unwrap();
    w.extend((0..20_000).map(|i| rec(i, 0))).unwrap();
    w.commit().unwrap();
    // 4500 updates: about 146 KB of frames, more than twice the 64 KiB log.
    for i in 0..4500 {
        w.set(i * 4, &rec(i * 4, 1)).unwrap();
    }
    let filler = fill(fs.path());
    match w.commit() {
        Err(Error::NoSpace { path: p, .. }) => {
            assert_eq!(p, std::fs::canonicalize(wal_path(&path)).unwrap())
        }
        r => panic!("a commit whose log cannot grow: {r:?}"),
    }
    std::fs::remove_file(&filler).unwrap();
    let stats = w.commit().expect("the handle is still usable");
    drop(w);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.generation(), stats.generation);
    assert_eq!(s.get(4 * 4499).unwrap().value, 1);
    assert!(s.verify().unwrap().is_ok());
}

/// A log planted by another user, even empty, is never adopted (its maker
/// could read every commit written into it, and later forge some); one
/// that lets group or others write it where the data file does not is
/// refused too, by writers as by readers (nothing chmods it: see
/// `store::wal::trust`), while extra read or owner bits are not (a `chmod`
/// of the data file alone must not lock its readers out); a log of another
/// member of the data file's group is refused (membership of its owner
/// cannot be checked from the file).
#[test]
fn planted_or_writable_logs_are_refused() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    let log = wal_path(&path);
    let canonical_log = std::fs::canonicalize(d.path())
        .unwrap()
        .join("store.rmap-wal");
    // An empty, world-writable log of another uid, planted before any writer.
    let _ = std::fs::remove_file(&log);
    std::fs::write(&log, b"").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    if let Err(e) = std::os::unix::fs::chown(&log, Some(65534), Some(65534)) {
        println!("SKIPPED planted_or_writable_logs_are_refused: cannot chown ({e}); needs root");
        return;
    }
    every_opener_refuses(&path, &canonical_log, "belongs to uid 65534");
    let m = std::fs::metadata(&log).unwrap();
    assert_eq!(
        (m.uid(), m.len()),
        (65534, 0),
        "the planted log was taken over"
    );
    std::fs::remove_file(&log).unwrap();

    // Our own log, writable by others where the data file (0600) is not:
    // refused by every opener, unchanged; chmodded as the message says, fine.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(writer(&path).unwrap());
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    every_opener_refuses(&path, &canonical_log, "let group or others write it");
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "nothing chmodded the log");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(writer(&path).unwrap());
    // The data file made read-only (0444) beside its 0644 log: still read.
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(Reader::<Rec>::open(&path).unwrap().len(), RECORDS);
    assert_eq!(Store::<Rec>::open_read_only(&path).unwrap().len(), RECORDS);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A group-writable store of uid 2000, group 3000, whose log another
    // uid of that group made: refused.
    std::os::unix::fs::chown(&path, Some(2000), Some(3000)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
    let _ = std::fs::remove_file(lock_path(&path));
    std::os::unix::fs::chown(&log, Some(2002), Some(3000)).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o660)).unwrap();
    let p = path.clone();
    assert_bad(
        within_10s("read-only", move || {
            Store::<Rec>::open_read_only(&p).map(drop)
        }),
        &canonical_log,
        "belongs to uid 2002",
        "",
        "read-only",
    );
}

/// The store's data file and log replaced at their paths by another
/// store's under a live writer (a backup moved into place): the writer's
/// next commit finds its log without a name, and its data file's name
/// taken, and stops (poisoned) instead of writing its frames into the
/// other store's log; that store is left as it was.
#[test]
fn a_writer_whose_store_was_replaced_at_its_path_writes_no_other_stores_log() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store.rmap");
    store_at(&path);
    let other = d.path().join("other.rmap");
    store_at(&other);
    let mut o = writer(&other).unwrap();
    o.set(5, &rec(5, 9)).unwrap();
    let o_gen = o.commit().unwrap().generation;
    let other_image = kill_image(&other, &d.path().join("backup"));
    drop(o);
    let mut w = writer(&path).unwrap();
    w.set(1, &rec(1, 1)).unwrap();
    w.commit().unwrap();
    std::fs::rename(&other_image, &path).unwrap();
    std::fs::rename(wal_path(&other_image), wal_path(&path)).unwrap();
    let log_before = std::fs::read(wal_path(&path)).unwrap();
    w.set(2, &rec(2, 2)).unwrap();
    match w.commit() {
        Err(Error::Io { op, .. }) => assert_eq!(op, "find log"),
        r => panic!("a commit after the store was replaced: {r:?}"),
    }
    assert!(w.raw().poisoned().is_some());
    assert_eq!(
        std::fs::read(wal_path(&path)).unwrap(),
        log_before,
        "the other store's log"
    );
    drop(w);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.generation(), o_gen);
    assert_eq!(s.get(5).unwrap().value, 9);
}
