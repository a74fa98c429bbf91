//! File locking (`docs/concurrency.md`): one writer xor any number of
//! read-only handles, per file, across handles, threads and processes.
//!
//! In one process: a second writer gets `Error::Locked`; a read-only open
//! while a writer holds the file gets `Locked`; read-only opens coexist; a
//! writer while a reader holds the shared lock gets `Locked` until every
//! reader is gone; with `wait_for_lock(true)` a writer (or reader) in another
//! thread blocks until the holder drops, then sees everything it committed.
//! Across processes: the test binary re-runs itself as a child (the ignored
//! test `lock_holder_child`, driven by environment variables) that holds a
//! write or read lock until its stdin closes; the parent's conflicting opens
//! get `Locked`, compatible ones succeed, a waiting open succeeds once the
//! child exits, and a SIGKILLed holder releases its lock.

mod common;

use common::spawn::Launch;
use common::{Make, R16};
use recmap::{Error, Options, RawStore, Store};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const CHILD_PATH: &str = "RECMAP_LOCK_CHILD_PATH";
const CHILD_MODE: &str = "RECMAP_LOCK_CHILD_MODE";

fn new_store(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<R16>(&path)
        .unwrap();
    s.extend((0..n).map(R16::make)).unwrap();
    s.close().unwrap();
    (dir, path)
}

fn is_locked<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    match r {
        Err(Error::Locked { .. }) => true,
        Ok(_) => false,
        Err(e) => panic!("expected Locked or Ok, got {e:?}"),
    }
}

fn writer_locked(path: &Path) -> bool {
    is_locked(Store::<R16>::open(path))
}

fn reader_locked(path: &Path) -> bool {
    is_locked(Store::<R16>::open_read_only(path))
}

#[test]
fn second_writer_in_the_same_process_is_locked() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let mut w = Store::<R16>::open(&path).unwrap();
    match Store::<R16>::open(&path) {
        Err(e @ Error::Locked { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("locked") && msg.contains("locked.rmap"),
                "{msg}"
            );
        }
        r => panic!("{r:?}"),
    }
    assert!(is_locked(RawStore::open(&path)));
    assert!(is_locked(Options::new().create(true).open::<R16>(&path)));
    // From another thread too.
    let p = path.clone();
    assert!(thread::spawn(move || writer_locked(&p)).join().unwrap());
    // The holder is unaffected and keeps working.
    w.push(&R16::make(10)).unwrap();
    w.commit().unwrap();
    drop(w);
    let s = Store::<R16>::open(&path).unwrap();
    assert_eq!(s.len(), 11);
}

#[test]
fn a_freshly_created_store_is_locked_by_its_creator() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.rmap");
    let c = Store::<R16>::create(&path).unwrap();
    assert!(writer_locked(&path));
    assert!(reader_locked(&path));
    drop(c);
    assert!(!writer_locked(&path));
}

#[test]
fn read_only_open_while_a_writer_holds_it_is_locked() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let w = Store::<R16>::open(&path).unwrap();
    match Store::<R16>::open_read_only(&path) {
        Err(Error::Locked { holder, .. }) => assert!(holder.contains("writer"), "{holder}"),
        r => panic!("{r:?}"),
    }
    assert!(is_locked(RawStore::open_read_only(&path)));
    drop(w);
    let r = Store::<R16>::open_read_only(&path).unwrap();
    assert_eq!(r.len(), 10);
}

#[test]
fn read_only_opens_coexist_and_keep_writers_out() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let r1 = Store::<R16>::open_read_only(&path).unwrap();
    let r2 = Store::<R16>::open_read_only(&path).unwrap();
    let r3 = RawStore::open_read_only(&path).unwrap();
    assert_eq!((r1.len(), r2.len(), r3.len()), (10, 10, 10));
    assert_eq!(r1.get(9), r2.get(9));
    assert!(writer_locked(&path));
    drop(r1);
    assert!(
        writer_locked(&path),
        "one reader left is enough to keep writers out"
    );
    drop(r2);
    assert!(writer_locked(&path));
    drop(r3);
    let w = Store::<R16>::open(&path).unwrap();
    assert_eq!(w.len(), 10);
}

/// Spawns `f` in a thread and returns a flag set when it has finished opening.
fn spawn_waiter<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> (Arc<AtomicBool>, thread::JoinHandle<R>) {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let h = thread::spawn(move || {
        let r = f();
        d.store(true, Ordering::SeqCst);
        r
    });
    (done, h)
}

#[test]
fn waiting_writer_gets_the_lock_after_the_holder_drops() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let mut a = Store::<R16>::open(&path).unwrap();
    let p = path.clone();
    let (done, h) = spawn_waiter(move || {
        let s = Options::new().wait_for_lock(true).open::<R16>(&p).unwrap();
        let seen = (s.len(), s.get(s.len() - 1).copied());
        drop(s);
        seen
    });
    // Give the waiter time to block on the lock. (Not a timing assertion:
    // however slow the thread is, it cannot finish while `a` is alive.)
    thread::sleep(Duration::from_millis(100));
    assert!(
        !done.load(Ordering::SeqCst),
        "second writer opened while the first held the lock"
    );
    // Everything the holder commits before letting go is visible to the waiter.
    a.extend((10..20).map(R16::make)).unwrap();
    a.commit().unwrap();
    assert!(!done.load(Ordering::SeqCst));
    drop(a);
    let (len, last) = h.join().unwrap();
    assert_eq!((len, last), (20, Some(R16::make(19))));
}

#[test]
fn waiting_reader_gets_the_lock_after_the_writer_drops() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let mut a = Store::<R16>::open(&path).unwrap();
    let p = path.clone();
    let (done, h) = spawn_waiter(move || {
        Options::new()
            .wait_for_lock(true)
            .open_read_only::<R16>(&p)
            .unwrap()
            .len()
    });
    thread::sleep(Duration::from_millis(50));
    assert!(
        !done.load(Ordering::SeqCst),
        "reader opened while a writer held the lock"
    );
    a.push(&R16::make(10)).unwrap();
    a.close().unwrap();
    assert_eq!(h.join().unwrap(), 11);
}

#[test]
fn waiting_writer_waits_for_every_reader() {
    let _serial = serial();
    let (_d, path) = new_store(3);
    let r1 = Store::<R16>::open_read_only(&path).unwrap();
    let r2 = Store::<R16>::open_read_only(&path).unwrap();
    let p = path.clone();
    let (done, h) = spawn_waiter(move || {
        Options::new()
            .wait_for_lock(true)
            .open::<R16>(&p)
            .unwrap()
            .len()
    });
    thread::sleep(Duration::from_millis(50));
    drop(r1);
    thread::sleep(Duration::from_millis(50));
    assert!(
        !done.load(Ordering::SeqCst),
        "writer opened while a reader held the shared lock"
    );
    drop(r2);
    assert_eq!(h.join().unwrap(), 3);
}

// ----- across processes ----------------------------------------------------

/// The child side: opens the store named by `RECMAP_LOCK_CHILD_PATH` (as a
/// writer, or read-only if `RECMAP_LOCK_CHILD_MODE=read`), prints `locked`,
/// and holds it until stdin reaches end of file. Run only by the parent tests.
#[test]
#[ignore = "child process of the cross-process lock tests"]
fn lock_holder_child() {
    let Ok(path) = std::env::var(CHILD_PATH) else {
        return;
    };
    let read_only = std::env::var(CHILD_MODE).as_deref() == Ok("read");
    let store = if read_only {
        Store::<R16>::open_read_only(&path)
    } else {
        Store::<R16>::open(&path)
    };
    let mut out = std::io::stdout();
    // libtest has printed "test lock_holder_child ... " without a newline.
    writeln!(out).unwrap();
    match store {
        Ok(s) => {
            writeln!(out, "locked {}", s.len()).unwrap();
            out.flush().unwrap();
            let mut sink = Vec::new();
            std::io::stdin().read_to_end(&mut sink).unwrap();
            drop(s);
            writeln!(out, "released").unwrap();
        }
        Err(e) => writeln!(out, "error {e:?}").unwrap(),
    }
    out.flush().unwrap();
}

struct Holder {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Holder {
    /// Starts a child holding `path` (`mode` is `write` or `read`) and waits
    /// until it reports that it holds the lock.
    fn start(path: &Path, mode: &str) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "lock_holder_child",
                "--nocapture",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_PATH, path)
            .env(CHILD_MODE, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .launch()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut h = Holder { child, out };
        h.expect("locked");
        h
    }

    /// Reads the child's stdout up to a line starting with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "child exited before printing {prefix:?}: {:?}",
                    self.child.wait()
                );
            }
            assert!(!line.contains("error "), "child failed: {line}");
            if line.starts_with(prefix) {
                return line.trim_end().to_string();
            }
        }
    }

    /// Closes the child's stdin, so it releases the lock and exits.
    fn release(mut self) {
        drop(self.child.stdin.take());
        self.expect("released");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child: {status}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Only matters when a test fails with the child still running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn writer_in_another_process_locks_out_this_one() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let holder = Holder::start(&path, "write");
    assert!(writer_locked(&path));
    assert!(reader_locked(&path));
    assert!(is_locked(RawStore::open(&path)));
    assert!(is_locked(Options::new().create(true).open::<R16>(&path)));
    holder.release();
    let mut w = Store::<R16>::open(&path).unwrap();
    assert_eq!(w.len(), 10);
    w.push(&R16::make(10)).unwrap();
    w.close().unwrap();
}

#[test]
fn reader_in_another_process_shares_with_readers_only() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let holder = Holder::start(&path, "read");
    let r = Store::<R16>::open_read_only(&path).unwrap();
    assert_eq!(r.get(9), Some(&R16::make(9)));
    assert!(writer_locked(&path));
    drop(r);
    assert!(
        writer_locked(&path),
        "the child's shared lock still keeps writers out"
    );
    holder.release();
    assert!(!writer_locked(&path));
}

#[test]
fn this_process_holding_the_lock_locks_out_a_child() {
    let _serial = serial();
    let (_d, path) = new_store(4);
    let w = Store::<R16>::open(&path).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_PATH, &path)
        .env(CHILD_MODE, "read")
        .stdin(Stdio::null())
        .launch_output()
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(out.contains("error Locked"), "child output: {out}");
    drop(w);
}

#[test]
fn waiting_writer_gets_the_lock_when_the_other_process_exits() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let holder = Holder::start(&path, "write");
    let p = path.clone();
    let (done, h) = spawn_waiter(move || {
        Options::new()
            .wait_for_lock(true)
            .open::<R16>(&p)
            .unwrap()
            .len()
    });
    thread::sleep(Duration::from_millis(100));
    assert!(
        !done.load(Ordering::SeqCst),
        "opened while another process held the lock"
    );
    holder.release();
    assert_eq!(h.join().unwrap(), 10);
}

#[test]
fn a_killed_holder_releases_its_lock() {
    let _serial = serial();
    let (_d, path) = new_store(10);
    let mut holder = Holder::start(&path, "write");
    assert!(writer_locked(&path));
    holder.child.kill().unwrap(); // SIGKILL: no destructor runs
    holder.child.wait().unwrap();
    let s = Store::<R16>::open(&path).unwrap();
    assert_eq!(s.len(), 10);
    assert!(s.verify().unwrap().is_ok());
}

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;
