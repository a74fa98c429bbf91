//! Access hints (`Options::access`, `set_access`, `advise`): the pattern
//! reaches the kernel for every mapping a handle makes (checked in
//! `/proc/self/smaps`), and under the default (`Random`) a get of a page
//! that is not cached reads about that page, not the megabytes around it
//! that `Normal` read-around fetches (bytes from `/proc/self/io`).
//!
//! Those two look into Linux's `/proc` (the hints are `madvise` and
//! `posix_fadvise`, no-ops elsewhere); on every platform, hints are
//! accepted and never change what a read returns.

use recmap::{AccessPattern, Advice, Options, Reader};
#[cfg(target_os = "linux")]
use std::path::Path;
use std::sync::Mutex;

recmap::record! {
    /// 64 bytes: a page holds 64.
    pub struct Rec { pub i: u64, pub pad: [u64; 7] }
}

fn rec(i: u64) -> Rec {
    Rec { i, pad: [i; 7] }
}

/// The tests of this file measure the process's I/O: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[cfg(target_os = "linux")]
/// The `VmFlags` of this process's mappings of `path`'s file (matched by
/// inode: a store's mapping may name the temporary file it was made as).
fn vm_flags(path: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).unwrap().ino().to_string();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    for l in smaps.lines() {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let first = fields.first().copied().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            inside = fields.get(4) == Some(&ino.as_str());
        } else if inside && l.starts_with("VmFlags:") {
            out.push(l["VmFlags:".len()..].trim().to_string());
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn has(flags: &[String], flag: &str) -> bool {
    !flags.is_empty() && flags.iter().all(|f| f.split(' ').any(|x| x == flag))
}

#[cfg(target_os = "linux")]
#[test]
fn the_pattern_reaches_every_mapping() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..1000).map(rec)).unwrap();
    s.commit().unwrap();
    // The default: random (`rr`), for the writer's map.
    assert_eq!(s.raw().access_pattern(), AccessPattern::Random);
    assert!(has(&vm_flags(&path), "rr"), "{:?}", vm_flags(&path));
    // Kept across growth (a new mapping).
    s.extend((1000..100_000).map(rec)).unwrap();
    s.commit().unwrap();
    assert!(
        has(&vm_flags(&path), "rr"),
        "after growth: {:?}",
        vm_flags(&path)
    );
    s.set_access(AccessPattern::Sequential);
    assert!(has(&vm_flags(&path), "sr"), "{:?}", vm_flags(&path));
    s.set_access(AccessPattern::Normal);
    let f = vm_flags(&path);
    assert!(!f.is_empty() && !has(&f, "sr") && !has(&f, "rr"), "{f:?}");
    drop(s);

    let mut r = Reader::<Rec>::open(&path).unwrap();
    assert!(has(&vm_flags(&path), "rr"), "reader: {:?}", vm_flags(&path));
    r.set_access(AccessPattern::Sequential);
    assert!(has(&vm_flags(&path), "sr"), "reader: {:?}", vm_flags(&path));
    r.advise(0..u64::MAX, Advice::WillNeed);
    r.advise(100_000..200_000, Advice::DontNeed); // past the end: nothing
    assert_eq!(r.get(99_999).unwrap().unwrap(), rec(99_999));
    drop(r);

    let s = Options::new()
        .access(AccessPattern::Sequential)
        .open_read_only::<Rec>(&path)
        .unwrap();
    assert!(
        has(&vm_flags(&path), "sr"),
        "read-only: {:?}",
        vm_flags(&path)
    );
    // Advice never changes what a read returns.
    s.advise(0..100_000, Advice::DontNeed);
    assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
}

#[cfg(target_os = "linux")]
/// Bytes this process has made the kernel fetch from storage.
fn read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(target_os = "linux")]
/// Drops `path`'s clean pages from the page cache (no process maps it).
fn drop_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: posix_fadvise only reads its integer arguments; `f` is open.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
}

#[cfg(target_os = "linux")]
/// Mean bytes read from storage per get of `gets` random cold records.
fn cold_get_bytes(path: &Path, pattern: AccessPattern, gets: u64, n: u64) -> Option<u64> {
    drop_cache(path);
    let s = Options::new()
        .access(pattern)
        .open_read_only::<Rec>(path)
        .unwrap();
    let before = read_bytes()?;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut sum = 0u64;
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = x % n;
        let r = s.get(i).unwrap();
        assert_eq!(r.i, i);
        sum = sum.wrapping_add(r.pad[3]);
    }
    std::hint::black_box(sum);
    Some((read_bytes()? - before) / gets)
}

#[cfg(target_os = "linux")]
#[test]
fn cold_random_gets_read_about_a_page_each() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // In the target directory: on disk (a tmpfs has no storage reads).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("cold.rmap");
    let n = 1_000_000u64; // 64 MB
    let mut s = Options::new()
        .create_new(true)
        .initial_capacity(n)
        .open::<Rec>(&path)
        .unwrap();
    let all: Vec<Rec> = (0..n).map(rec).collect();
    s.extend_from_slice(&all).unwrap();
    s.close().unwrap();
    let Some(random) = cold_get_bytes(&path, AccessPattern::Random, 300, n) else {
        eprintln!("SKIPPED cold_random_gets_read_about_a_page_each: no /proc/self/io here");
        return;
    };
    let normal = cold_get_bytes(&path, AccessPattern::Normal, 300, n).unwrap();
    println!("cold random gets: {random} bytes read per get (Random), {normal} (Normal)");
    if normal == 0 {
        eprintln!(
            "SKIPPED cold_random_gets_read_about_a_page_each: the file's pages could not be dropped from the cache (or reads are not counted)"
        );
        return;
    }
    // A page (4 KiB) per get, a little more for the occasional header or
    // table page; `Normal` reads around each fault (megabytes on disks with
    // a large read_ahead_kb).
    assert!(
        random <= 16 << 10,
        "{random} bytes per cold get under Random"
    );
}

#[test]
fn hints_are_accepted_and_never_change_what_reads_return() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .access(AccessPattern::Sequential)
        .open::<Rec>(&path)
        .unwrap();
    assert_eq!(s.raw().access_pattern(), AccessPattern::Sequential);
    s.extend((0..5000).map(rec)).unwrap();
    s.commit().unwrap();
    for p in [
        AccessPattern::Random,
        AccessPattern::Normal,
        AccessPattern::Sequential,
    ] {
        s.set_access(p);
        assert_eq!(s.raw().access_pattern(), p);
        s.advise(0..u64::MAX, Advice::WillNeed);
        s.advise(100..3000, Advice::DontNeed);
        assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
    }
    drop(s);
    let mut r = Reader::<Rec>::open(&path).unwrap();
    r.set_access(AccessPattern::Random);
    r.advise(0..u64::MAX, Advice::DontNeed);
    r.advise(10_000..20_000, Advice::WillNeed); // past the end: nothing
    for i in [0, 63, 64, 4999] {
        assert_eq!(r.get(i).unwrap().unwrap(), rec(i));
    }
    assert!(r.get(5000).unwrap().is_none());
}

/// `cached_bytes` counts what `mincore` sees on Linux: nothing of a file
/// whose pages were just dropped, all of it once every record was read.
/// Elsewhere it cannot be told (`None`), which `recmap bench --cold` turns
/// into a refusal.
#[test]
fn cached_bytes_sees_a_drop_and_a_read() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // On disk: a tmpfs keeps its pages whatever the advice.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("c.rmap");
    let n = 64 * 1024; // 4 MiB of records
    let mut s = Options::new().create_new(true).open::<Rec>(&path).unwrap();
    s.extend((0..n).map(rec)).unwrap();
    s.close().unwrap();
    let s = recmap::Store::<Rec>::open_read_only(&path).unwrap();
    let data = n * std::mem::size_of::<Rec>() as u64;
    s.advise(0..n, Advice::DontNeed);
    let left = s.cached_bytes(0..n);
    if !cfg!(target_os = "linux") {
        assert_eq!(left, None, "no mincore to count with");
        return;
    }
    let left = left.expect("mincore is there on Linux");
    assert!(left * 100 <= data, "{left} of {data} bytes stayed cached");
    assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
    let read = s.cached_bytes(0..n).unwrap();
    assert!(
        read >= data,
        "{read} of {data} bytes cached after reading them all"
    );
    assert_eq!(s.cached_bytes(n..n + 10), Some(0), "past the end: nothing");
}

recmap::record! {
    /// 24 bytes: 170 a page, 16 bytes of padding at the end of each.
    pub struct Padded { pub i: u64, pub a: u64, pub b: u64 }
}

fn padded(i: u64) -> Padded {
    Padded { i, a: !i, b: i * 3 }
}

/// A bulk `read_range` of records the page cache does not hold reads the
/// file with `pread` (on Linux; elsewhere, and for cached pages, it copies
/// from the map), densely packed or padded, whole or from the middle: the
/// records returned are the snapshot's. Once a writer has changed a page
/// after the snapshot's commit, the read expires instead of returning the
/// new value, and a new snapshot reads the new value, cold again.
#[test]
fn cold_bulk_reads_through_a_snapshot_return_the_snapshots_records() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    cold_bulk_read(rec, |i| Rec { i, pad: [!i; 7] });
    cold_bulk_read(padded, |i| Padded { i, a: 7, b: 7 });
}

fn cold_bulk_read<T: recmap::Record + PartialEq + std::fmt::Debug>(
    make: fn(u64) -> T,
    changed: fn(u64) -> T,
) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("bulk.rmap");
    let n = 100_000u64;
    let mut w = Options::new().create_new(true).open::<T>(&path).unwrap();
    w.extend((0..n).map(make)).unwrap();
    w.commit().unwrap();
    let drop_all = |w: &recmap::Store<T>| {
        w.advise(0..n, Advice::DontNeed);
        match w.cached_bytes(0..n) {
            Some(left) => {
                let all = n * std::mem::size_of::<T>() as u64;
                if left * 100 > all {
                    eprintln!("{left} of {all} bytes stayed cached: the reads below are warm");
                }
            }
            None => eprintln!("no mincore here: the reads below copy from the map"),
        }
    };
    let mut r = Reader::<T>::open(&path).unwrap();
    let first = 1234u64;
    let mut buf: Vec<T> = (0..n - first - 5).map(|_| make(0)).collect();
    {
        let snap = r.snapshot().unwrap();
        drop_all(&w);
        assert_eq!(snap.read_range(first, &mut buf).unwrap(), buf.len());
        for (k, v) in buf.iter().enumerate() {
            assert_eq!(*v, make(first + k as u64), "record {}", first + k as u64);
        }
        // Past the end: only what the snapshot has.
        let mut tail: Vec<T> = (0..100).map(|_| make(0)).collect();
        assert_eq!(snap.read_range(n - 10, &mut tail).unwrap(), 10);
        assert_eq!(tail[9], make(n - 1));

        // A writer changes a record the read covers, after the snapshot.
        let k = 60_000;
        w.set(k, &changed(k)).unwrap();
        w.commit().unwrap();
        drop_all(&w);
        match snap.read_range(first, &mut buf) {
            Err(recmap::Error::SnapshotExpired { .. }) => {}
            other => panic!("a page changed after the snapshot: {other:?}"),
        }
    }
    let snap = r.snapshot().unwrap();
    drop_all(&w);
    assert_eq!(snap.read_range(first, &mut buf).unwrap(), buf.len());
    for (k, v) in buf.iter().enumerate() {
        let i = first + k as u64;
        let want = if i == 60_000 { changed(i) } else { make(i) };
        assert_eq!(*v, want, "record {i}");
    }
}

/// `Store::read_range` copies what `get` sees, cold or warm: committed
/// records read back cold (through `pread` on Linux), the writer's own
/// uncommitted update and its staged appends included, densely packed or
/// padded, and a read-only store's too.
#[test]
fn store_read_range_copies_what_get_sees_cold_or_warm() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    store_read_range(rec, |i| Rec { i, pad: [!i; 7] });
    store_read_range(padded, |i| Padded { i, a: 7, b: 7 });
}

fn store_read_range<T: recmap::Record + PartialEq + std::fmt::Debug>(
    make: fn(u64) -> T,
    changed: fn(u64) -> T,
) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("store-range.rmap");
    let n = 100_000u64;
    let mut w = Options::new().create_new(true).open::<T>(&path).unwrap();
    w.extend((0..n).map(make)).unwrap();
    w.commit().unwrap();
    let check = |s: &recmap::Store<T>, first: u64| {
        let mut buf: Vec<T> = (0..s.len() + 7).map(|_| make(0)).collect();
        let got = s.read_range(first, &mut buf).unwrap();
        assert_eq!(got as u64, s.len() - first);
        for (k, v) in buf[..got].iter().enumerate() {
            let i = first + k as u64;
            assert_eq!(Some(v), s.get(i), "record {i}");
        }
    };
    w.advise(0..n, Advice::DontNeed);
    check(&w, 0);
    w.advise(0..n, Advice::DontNeed);
    check(&w, 777);
    // Uncommitted: an update of a committed record and a few staged appends.
    w.set(50_000, &changed(50_000)).unwrap();
    w.extend((n..n + 10).map(make)).unwrap();
    w.advise(0..n, Advice::DontNeed);
    check(&w, 3);
    assert_eq!(w.get(50_000), Some(&changed(50_000)));
    let mut small: Vec<T> = (0..4).map(|_| make(0)).collect();
    assert_eq!(w.read_range(49_999, &mut small).unwrap(), 4);
    assert_eq!(small[1], changed(50_000));
    w.close().unwrap();
    let r = recmap::Store::<T>::open_read_only(&path).unwrap();
    r.advise(0..r.len(), Advice::DontNeed);
    check(&r, 0);
    assert_eq!(r.len(), n + 10);
}
