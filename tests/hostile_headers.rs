#![cfg(target_os = "linux")]
//! Hostile input (issue 11): header slots with valid CRCs but hostile
//! fields, store paths that are not regular files, a full filesystem, a
//! file-size limit, damage in the partly filled last page, and a store
//! truncated by another program. Each case asserts a bound or a typed
//! error, never a duration: bytes read come from `/proc/thread-self/io`
//! (`rchar`, this thread's reads), memory from a counting global
//! allocator (its peak, under `serial()` so no other test of this binary
//! allocates meanwhile).

use recmap::format::{
    slot, slot_crc_v2, Header, Layout, MAX_GROWTH_CHUNK, PAGE_SIZE, SLOT_LEN, SLOT_OFFSETS,
};
use recmap::{Error, Options, RawStore, Reader, Repair, Schema, Store};
use std::alloc::{GlobalAlloc, Layout as GlobalLayout, System};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
mod common;
use common::spawn::Launch;

const BIN: &str = env!("CARGO_BIN_EXE_recmap");

recmap::record! {
    /// 16 bytes: 256 per page.
    pub struct R { pub id: u64, pub v: u64 }
}

fn rec(i: u64) -> R {
    R {
        id: i,
        v: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    }
}

// Tests of this binary one at a time: memory and child processes are
// measured per process.
use common::serial;

/// Bytes this thread has read through system calls so far.
fn thread_rchar() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The test binary's allocator: the system's, counting the bytes live and
/// their peak, so a test can bound the memory an operation allocates (the
/// library allocates through it too).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters are plain atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: GlobalLayout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: GlobalLayout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most memory live during `f` beyond what was live before it.
fn peak_allocated<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn rw(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// Re-signs a version-2 slot after an edit (both CRCs).
fn resign(b: &mut [u8; SLOT_LEN]) {
    let crc = crc32fast::hash(&b[..slot::CRC]);
    b[slot::CRC..slot::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    let crc = slot_crc_v2(&b[..]);
    b[slot::V2_CRC..slot::V2_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The index of the newest valid slot and its header.
fn newest(path: &Path) -> (usize, Header) {
    let f = rw(path);
    let mut page = vec![0u8; 4096];
    f.read_exact_at(&mut page, 0).unwrap();
    let mut best: Option<(usize, Header)> = None;
    for (i, &at) in SLOT_OFFSETS.iter().enumerate() {
        let at = at as usize;
        if let Ok(h) = Header::decode(&page[at..at + 2048], i) {
            if best.is_none_or(|(_, b)| h.header_seq > b.header_seq) {
                best = Some((i, h));
            }
        }
    }
    best.expect("a valid slot")
}

/// Rewrites the newest slot in place as `f` edits its decoded header,
/// re-signed (so only the field checks stand between it and the engine).
fn edit_header(path: &Path, f: impl FnOnce(&mut Header)) -> Header {
    let (_, mut h) = newest(path);
    f(&mut h);
    let b = h.encode();
    rw(path)
        .write_all_at(&b, SLOT_OFFSETS[h.slot_index()])
        .unwrap();
    h
}

/// Rewrites one u64 field of the newest valid slot, re-signed.
fn poke_u64(path: &Path, at: usize, v: u64) {
    let (i, _) = newest(path);
    let f = rw(path);
    let mut b = [0u8; SLOT_LEN];
    f.read_exact_at(&mut b, SLOT_OFFSETS[i]).unwrap();
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    resign(&mut b);
    f.write_all_at(&b, SLOT_OFFSETS[i]).unwrap();
}

fn make(path: &Path, n: u64) {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .log_size(64 << 10)
        .open::<R>(path)
        .unwrap();
    s.extend((0..n).map(rec)).unwrap();
    s.close().unwrap();
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

// ---------------------------------------------------------------- chunk size

#[test]
fn a_tebibyte_chunk_size_grows_the_file_by_a_bounded_step() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunk.rmap");
    make(&path, 100);
    poke_u64(&path, slot::CHUNK_SIZE, 1 << 40);
    let mut s = Options::new().log_size(64 << 10).open::<R>(&path).unwrap();
    assert_eq!(
        s.info().chunk_size,
        1 << 40,
        "a valid (if silly) chunk size"
    );
    let old = file_len(&path);
    // Past the capacity: one growth, which rounds to at most 64 MiB.
    let cap = s.capacity();
    s.extend((100..cap + 10).map(rec)).unwrap();
    s.commit().unwrap();
    let grown = file_len(&path);
    assert!(grown > old);
    assert!(
        grown <= MAX_GROWTH_CHUNK,
        "the file grew to {grown} bytes (at most {MAX_GROWTH_CHUNK})"
    );
    assert_eq!(grown % MAX_GROWTH_CHUNK, 0, "rounded to the capped unit");
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    let s = Store::<R>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), cap + 10);
    assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));

    // A new store asked for 1 TiB chunks is made at most 64 MiB long too.
    let path = dir.path().join("chunk2.rmap");
    let s = Options::new()
        .create_new(true)
        .chunk_size(1 << 40)
        .log_size(64 << 10)
        .open::<R>(&path)
        .unwrap();
    drop(s);
    assert!(file_len(&path) <= MAX_GROWTH_CHUNK, "{}", file_len(&path));
}

#[test]
fn a_chunk_size_past_the_valid_range_is_refused_at_decode() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badchunk.rmap");
    for bad in [(1u64 << 40) + (64 << 10), !0xffff_u64, 1000] {
        make_fresh(&path);
        // Both slots: with one valid slot left the engine would (rightly)
        // fall back to it.
        poke_u64(&path, slot::CHUNK_SIZE, bad);
        poke_u64(&path, slot::CHUNK_SIZE, bad);
        match RawStore::open_read_only(&path) {
            Err(Error::NoValidHeader { slot0, slot1, .. }) => {
                let text = format!("{slot0} {slot1}");
                assert!(text.contains("chunk_size"), "{text}");
            }
            other => panic!("chunk size {bad}: {other:?}"),
        }
    }
}

fn make_fresh(path: &Path) {
    for suffix in ["", "-wal", "-lock"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    make(path, 10);
}

// ---------------------------------------------------------- sparse capacity

/// Gives the store at `path` (closed, no log) a capacity of `groups`
/// groups: the checksum table moves to the new end (its committed entries
/// copied), the file is extended sparsely, the header re-signed. With
/// `claim_full`, the header also claims every slot committed (the new
/// table's entries are then mostly zero: such a store is damaged, but an
/// append must still cost a bounded amount of memory).
fn give_capacity(path: &Path, groups: u64, claim_full: bool) -> Header {
    let (_, h) = newest(path);
    let layout = Layout::with_groups(h.layout.packing, h.schema_len, groups).unwrap();
    let full = h.record_count / h.layout.packing.records_per_group;
    let f = rw(path);
    let mut table = vec![0u8; (full * 4) as usize];
    f.read_exact_at(&mut table, h.layout.table_offset).unwrap();
    f.set_len(layout.file_len()).unwrap();
    f.write_all_at(&table, layout.table_offset).unwrap();
    edit_header(path, |h| {
        h.layout = layout;
        h.capacity = layout.capacity();
        if claim_full {
            h.record_count = layout.capacity();
            h.tail_crc = 0;
        }
    })
}

#[test]
fn a_sparse_tebibyte_capacity_costs_only_the_committed_pages() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.rmap");
    make(&path, 1000);
    let h = give_capacity(&path, 1 << 28, false); // 1 TiB of data pages
    assert!(h.layout.file_len() > 1 << 40);

    let s = Store::<R>::open_read_only(&path).unwrap();
    let r0 = thread_rchar();
    let (rep, mem) = peak_allocated(|| s.verify().unwrap());
    let read = thread_rchar() - r0;
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.records_checked, 1000);
    assert!(read < 1 << 20, "verify read {read} bytes");
    assert!(mem < 1 << 20, "verify allocated {mem} bytes");
    drop(s);

    let r0 = thread_rchar();
    let ((), mem) = peak_allocated(|| {
        let mut s = Options::new().log_size(64 << 10).open::<R>(&path).unwrap();
        s.extend((1000..1100).map(rec)).unwrap();
        s.commit().unwrap();
        s.set(5, &rec(5)).unwrap();
        s.commit().unwrap();
        assert!(s.verify().unwrap().is_ok());
    });
    let read = thread_rchar() - r0;
    assert!(
        read < 8 << 20,
        "open, append, commit, verify read {read} bytes"
    );
    assert!(
        mem < 16 << 20,
        "open, append, commit, verify allocated {mem} bytes"
    );
    assert_eq!(file_len(&path), h.layout.file_len(), "nothing preallocated");
}

#[test]
fn growth_of_a_store_claiming_a_full_sparse_capacity_streams_its_table() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fullsparse.rmap");
    make(&path, 1000);
    // 64 MiB of checksum table (16 Ki data pages per MiB: 64 GiB of data).
    let h = give_capacity(&path, 16 << 20, true);
    assert_eq!(h.layout.table_len, 64 << 20);
    let mut s = Options::new()
        .log_size(64 << 10)
        .open_raw(&path, None)
        .unwrap();
    // Needs growth (every slot is "committed"), which preallocates 1 GiB.
    let (pushed, mem) = peak_allocated(|| s.push(&[7u8; 16]).map(drop));
    match pushed {
        Ok(_) => {}
        Err(Error::NoSpace { .. }) => {
            eprintln!(
                "SKIPPED growth_of_a_store_claiming_a_full_sparse_capacity_streams_its_table: \
                 no room for a 1 GiB growth in the temporary directory"
            );
            return;
        }
        Err(e) => panic!("{e}"),
    }
    assert!(
        mem < 4 << 20,
        "moving a 64 MiB table allocated {mem} bytes at once"
    );
    s.commit().unwrap();
    let len = file_len(&path);
    assert!(
        len <= h.layout.file_len() + (1 << 30) + MAX_GROWTH_CHUNK + (64 << 20),
        "grew by one bounded step: {len}"
    );
    assert_eq!(s.committed_len(), h.record_count + 1);
}

// ------------------------------------------------ checked commit, big records

/// A version-1 header naming a checked commit of 160 records of 16 MiB
/// (its own entries: every group), over a sparse file.
fn v1_checked_big_records(path: &Path) {
    let schema = Schema::parse("b:bytes[16777216]").unwrap();
    drop(
        Options::new()
            .create_new(true)
            .log_size(64 << 10)
            .open_raw(path, Some(&schema))
            .unwrap(),
    );
    let _ = std::fs::remove_file(format!("{}-wal", path.display()));
    let (_, h) = newest(path);
    let layout = Layout::with_groups(h.layout.packing, h.schema_len, 160).unwrap();
    let f = rw(path);
    f.set_len(layout.file_len()).unwrap();
    let zero_crc = crc32fast::hash(&vec![0u8; 16 << 20]);
    let list: Vec<(u64, u32)> = (0..160).map(|g| (g, zero_crc)).collect();
    let l = recmap::format::encode_list(&list);
    let v1 = Header {
        version: recmap::format::FORMAT_V1,
        header_seq: 1001,
        store_id: 0,
        flags: recmap::format::FLAG_CHECKED,
        generation: 1001,
        record_count: 160,
        capacity: 160,
        tail_crc: 0,
        list_len: 160,
        list_crc: crc32fast::hash(&l),
        layout,
        ..h
    };
    let mut half = v1.encode_v1().to_vec();
    half.extend_from_slice(&l);
    assert_eq!(half.len(), 2048);
    f.write_all_at(&[0u8; 4096], 0).unwrap();
    f.write_all_at(&half, SLOT_OFFSETS[1]).unwrap();
}

#[test]
fn open_of_a_checked_commit_of_16_mib_records_reads_a_bounded_amount() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rmap");
    v1_checked_big_records(&path);
    // docs/durability.md, "What open reads": the header page, the schema
    // block, and at most 640 KiB of pages to confirm a checked commit.
    let bound = 4096 + 65536 + 640 * 1024;
    let r0 = thread_rchar();
    let s = RawStore::open_read_only(&path).unwrap();
    let read = thread_rchar() - r0;
    assert_eq!((s.len(), s.generation()), (160, 1001));
    assert!(read <= bound, "open read {read} bytes (bound {bound})");
    drop(s);
    let r0 = thread_rchar();
    let r = recmap::RawReader::open(&path).unwrap();
    let read = thread_rchar() - r0;
    assert_eq!(r.len(), 160);
    drop(r);
    // A reader also opens the coordination file (a few pages).
    assert!(read <= bound + (1 << 20), "reader open read {read} bytes");
    // The CLI's `info` is the same open: it must finish (and print 160).
    let out = run_timeout(&["info", path.to_str().unwrap(), "--json"], 60);
    assert_eq!(out.0, Some(0), "{}", out.2);
    assert!(out.1.contains("\"records\": 160"), "{}", out.1);
}

// -------------------------------------------------------- not regular files

/// Runs the CLI with `args`, killing it after `secs`: (exit code or None if
/// killed or signalled, stdout, stderr).
fn run_timeout(args: &[&str], secs: u64) -> (Option<i32>, String, String) {
    run_cmd_timeout(Command::new(BIN).args(args), secs)
}

fn run_cmd_timeout(c: &mut Command, secs: u64) -> (Option<i32>, String, String) {
    let mut child = c
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .expect("spawn recmap");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "recmap {:?} did not finish in {secs} s (hang); stderr: {}",
                c.get_args().collect::<Vec<_>>(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo");
}

#[test]
fn a_fifo_socket_directory_or_device_as_the_store_fails_at_once() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.rmap");
    mkfifo(&fifo);
    let sock = dir.path().join("sock.rmap");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let subdir = dir.path().join("dir.rmap");
    std::fs::create_dir(&subdir).unwrap();
    let cases: [(&Path, &str); 4] = [
        (&fifo, "FIFO"),
        (&sock, "socket"),
        (&subdir, "directory"),
        (Path::new("/dev/null"), "character device"),
    ];
    for (path, kind) in cases {
        let check = |r: Result<(), Error>, what: &str| match r {
            Err(Error::NotRegularFile { path: p, kind: k }) => {
                assert_eq!(p, path, "{what}");
                assert!(k.contains(kind), "{what}: {k}");
            }
            other => panic!("{what} on {}: {other:?}", path.display()),
        };
        check(RawStore::open(path).map(drop), "writer open");
        check(RawStore::open_read_only(path).map(drop), "read-only open");
        check(Store::<R>::open_read_only(path).map(drop), "typed open");
        check(Reader::<R>::open(path).map(drop), "reader open");
        check(
            Options::new().create(true).open::<R>(path).map(drop),
            "open or create",
        );
    }
    // Every CLI subcommand that takes a store: an error naming the path and
    // what it is, at once (no hang on the FIFO).
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "id,v\n1,2\n").unwrap();
    let f = fifo.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["info", f],
        vec!["info", f, "--json"],
        vec!["verify", f],
        vec!["get", f, "0"],
        vec!["export", f],
        vec!["schema", f],
        vec!["schema", f, "--numpy"],
        vec!["upgrade", f],
        vec!["repair", f],
        vec!["load", f, input.to_str().unwrap()],
    ];
    for args in commands {
        let (code, _, err) = run_timeout(&args, 30);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(f) && err.contains("FIFO"),
            "{args:?}: stderr names the path and what it is: {err}"
        );
    }
    let (code, _, err) = run_timeout(&["create", f, "--schema", "id:u64"], 30);
    assert_eq!(code, Some(2), "create on a FIFO: {err}");
    for path in [&sock, &subdir] {
        let (code, _, err) = run_timeout(&["info", path.to_str().unwrap()], 30);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
    }
}

// ------------------------------------------------------------ full disk

/// A small filesystem mounted for one test (ext4 on a loop device, else a
/// tmpfs), unmounted on drop; `None` (with the reason printed) if this
/// process may not mount.
struct SmallFs {
    dir: PathBuf,
    image: Option<PathBuf>,
    kind: &'static str,
}

impl SmallFs {
    fn mount(mb: u64) -> Option<SmallFs> {
        let base = std::env::temp_dir().join(format!("recmap-hostile-{}", std::process::id()));
        let dir = base.join("mnt");
        std::fs::create_dir_all(&dir).ok()?;
        let image = base.join("fs.img");
        let quiet = |c: &mut Command| {
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ext4 = std::fs::File::create(&image)
            .and_then(|f| f.set_len(mb << 20))
            .is_ok()
            && quiet(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))
            && quiet(
                Command::new("mount")
                    .args(["-o", "loop"])
                    .arg(&image)
                    .arg(&dir),
            );
        if ext4 {
            return Some(SmallFs {
                dir,
                image: Some(image),
                kind: "ext4",
            });
        }
        let _ = std::fs::remove_file(&image);
        if quiet(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
                .arg(&dir),
        ) {
            return Some(SmallFs {
                dir,
                image: None,
                kind: "tmpfs",
            });
        }
        let _ = std::fs::remove_dir_all(&base);
        None
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        if let Some(i) = &self.image {
            let _ = std::fs::remove_file(i);
        }
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

#[test]
fn failed_growth_on_a_full_filesystem_gives_the_space_back() {
    let _s = serial();
    let Some(fs) = SmallFs::mount(8) else {
        eprintln!(
            "SKIPPED failed_growth_on_a_full_filesystem_gives_the_space_back: \
             cannot mount a loop ext4 or a tmpfs here (needs root)"
        );
        return;
    };
    eprintln!("full filesystem: {}", fs.kind);
    let path = fs.dir.join("full.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .log_size(64 << 10)
        .open::<R>(&path)
        .unwrap();
    let mut n = 0u64;
    let (err, before) = loop {
        let before = file_len(&path);
        // Commit every batch that fits; the batch that needs more room than
        // the filesystem has fails at growth.
        match s.extend((n..n + 20_000).map(rec)) {
            Ok(_) => {
                n += 20_000;
                s.commit().unwrap();
            }
            Err(e) => break (e, before),
        }
        assert!(n < 10_000_000, "the filesystem never filled");
    };
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert_eq!(
        file_len(&path),
        before,
        "the failed growth gave its space back"
    );
    assert!(s.raw().poisoned().is_none(), "{:?}", s.raw().poisoned());
    // The handle goes on working: reads, an in-place update, a commit.
    let committed = s.raw().committed_len();
    assert_eq!(*s.get(committed - 1).unwrap(), rec(committed - 1));
    s.set(3, &rec(3)).unwrap();
    s.commit().unwrap();
    assert_eq!(*s.get(3).unwrap(), rec(3));
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    let s = Store::<R>::open_read_only(&path).unwrap();
    assert!(s.verify().unwrap().is_ok());
    assert!(s.len() >= committed);
    assert!(s
        .iter()
        .take(committed as usize)
        .enumerate()
        .all(|(i, r)| *r == rec(i as u64)));
}

// ------------------------------------------------------------ RLIMIT_FSIZE

#[test]
fn the_cli_under_a_file_size_limit_exits_1_with_a_message() {
    let _s = serial();
    if !Command::new("prlimit")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIPPED the_cli_under_a_file_size_limit_exits_1_with_a_message: no prlimit");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("id,v\n");
    for i in 0..400_000u64 {
        csv.push_str(&format!("{i},{}\n", i * 3));
    }
    std::fs::write(&input, csv).unwrap();
    // 2 MB, all or nothing: the limit is met while the new store (or its
    // log) grows, and nothing is committed; 6 MB with --batch: the batches
    // before the limit stay committed.
    for (limit, batch) in [(2_000_000u64, None), (6_000_000, Some("1000"))] {
        let path = dir.path().join(format!("fsize-{limit}.rmap"));
        let mut c = Command::new("prlimit");
        c.arg(format!("--fsize={limit}")).arg(BIN).args([
            "load",
            path.to_str().unwrap(),
            "--schema",
            "id:u64,v:u64",
            "-q",
        ]);
        if let Some(b) = batch {
            c.args(["--batch", b]);
        }
        c.arg(&input);
        let (code, _, err) = run_cmd_timeout(&mut c, 120);
        assert_eq!(code, Some(1), "limit {limit}: exit 1, not SIGXFSZ: {err}");
        assert!(err.contains("file too large"), "{err}");
        assert!(err.contains("ulimit -f"), "{err}");
        if path.exists() {
            let s = Store::<R>::open_read_only(&path).unwrap();
            assert!(s.verify().unwrap().is_ok());
            assert!(s.iter().enumerate().all(|(i, r)| r.id == i as u64));
        }
    }
    // A store made (without a limit) longer than the limit: the load's
    // plain writes past the limit fail with EFBIG, no growth involved.
    let path = dir.path().join("prealloc.rmap");
    drop(
        Options::new()
            .create_new(true)
            .chunk_size(8 << 20)
            .open::<R>(&path)
            .unwrap(),
    );
    let mut c = Command::new("prlimit");
    c.arg("--fsize=3000000")
        .arg(BIN)
        .args(["load", path.to_str().unwrap(), "-q"])
        .arg(&input);
    let (code, _, err) = run_cmd_timeout(&mut c, 120);
    assert_eq!(code, Some(1), "exit 1, not SIGXFSZ: {err}");
    assert!(err.to_lowercase().contains("file too large"), "{err}");
    assert!(err.contains("ulimit -f"), "{err}");
    let s = Store::<R>::open_read_only(&path).unwrap();
    assert!(s.verify().unwrap().is_ok());
}

// ----------------------------------------------- damage in the last page

/// A store of 100 records (one partly filled page) with a bit flipped in
/// committed record 5.
fn damaged_tail(path: &Path) {
    make(path, 100);
    let s = Store::<R>::open_read_only(path).unwrap();
    let at = s.info().data_offset + 5 * 16 + 3;
    drop(s);
    let f = rw(path);
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, at).unwrap();
}

#[test]
fn damage_in_the_partly_filled_last_page_is_found_where_records_are_served() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tail.rmap");
    damaged_tail(&path);
    let s = RawStore::open_read_only(&path).unwrap();
    match s.check_records(0..100) {
        Err(Error::CorruptPage {
            group,
            first_record,
            end_record,
            ..
        }) => assert_eq!((group, first_record, end_record), (0, 0, 100)),
        other => panic!("{other:?}"),
    }
    assert!(s.check_records(100..200).is_ok(), "nothing committed there");
    drop(s);
    let p = path.to_str().unwrap();
    for args in [
        vec!["get", p, "7"],
        vec!["export", p],
        vec!["export", p, "--format", "bin"],
    ] {
        let (code, out, err) = run_timeout(&args, 30);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("data page 0") && err.contains("damaged"),
            "{err}"
        );
        assert!(
            !out.contains("7,"),
            "{args:?} served a damaged record: {out}"
        );
        let mut opt = args.clone();
        opt.push("--no-verify");
        let (code, out, err) = run_timeout(&opt, 30);
        assert_eq!(code, Some(0), "{opt:?}: {err}");
        assert!(!out.is_empty());
    }
    let (code, _, _) = run_timeout(&["verify", p], 30);
    assert_eq!(code, Some(1));
}

#[test]
fn an_append_into_a_damaged_last_page_fails_and_does_not_bless_it() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bless.rmap");
    damaged_tail(&path);
    let mut s = Options::new().log_size(64 << 10).open::<R>(&path).unwrap();
    s.push(&rec(100)).unwrap();
    match s.commit() {
        Err(Error::CorruptPage { group, .. }) => assert_eq!(group, 0),
        other => panic!("the append commit must fail: {other:?}"),
    }
    drop(s);
    let s = Store::<R>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), 100, "nothing committed");
    assert_eq!(
        s.verify().unwrap().problems.len(),
        1,
        "the damage is still reported"
    );
    drop(s);
    // Nor does an in-place update of another record of the damaged page.
    let mut s = Options::new().log_size(64 << 10).open::<R>(&path).unwrap();
    s.set(50, &rec(50)).unwrap();
    assert!(matches!(
        s.commit(),
        Err(Error::CorruptPage { group: 0, .. })
    ));
}

// ------------------------------------------------------- verify progress

#[test]
fn verify_reports_progress_and_can_be_interrupted() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("progress.rmap");
    make(&path, 256 * 10_000); // 10,000 pages
    let s = RawStore::open_read_only(&path).unwrap();
    let mut calls = Vec::new();
    let rep = s
        .verify_with(&mut |done, total| {
            calls.push((done, total));
            true
        })
        .unwrap();
    assert!(rep.is_ok());
    assert!(calls.len() >= 3, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(*calls.last().unwrap(), (10_000, 10_000));
    let mut n = 0;
    match s.verify_with(&mut |_, _| {
        n += 1;
        n < 2
    }) {
        Err(Error::Interrupted { done, total, .. }) => {
            assert!(done < total);
            assert_eq!(total, 10_000);
        }
        other => panic!("{other:?}"),
    }
}

/// This process's resident pages of mapped files, in bytes.
fn rss_file() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("RssFile:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn verify_of_a_sparse_file_claiming_gigabytes_reads_only_its_data() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.rmap");
    make(&path, 1000);
    // 4 GiB of claimed committed records, nearly all in holes (and their
    // checksum entries too, so they are damage, counted, not listed).
    let groups = 1u64 << 20;
    give_capacity(&path, groups, true);
    let s = RawStore::open_read_only(&path).unwrap();
    let before = rss_file();
    let r0 = thread_rchar();
    let rep = s.verify().unwrap();
    let mapped = rss_file().saturating_sub(before);
    let read = thread_rchar() - r0;
    assert_eq!(rep.pages_checked, groups);
    // Groups 0..3 hold the real records and their checksums.
    assert_eq!(rep.problems.len(), 10_000);
    assert_eq!(
        rep.problems.len() as u64 + rep.problems_omitted,
        groups - 3,
        "every page in a hole fails its (zero) checksum"
    );
    assert!(
        mapped < 64 << 20,
        "verify brought {mapped} bytes of the 4 GiB of holes into memory"
    );
    assert!(read < 1 << 20, "{read}");
    drop(s);
}

/// True once process `pid` catches SIGINT (bit 2 of `SigCgt`).
fn catches_sigint(pid: u32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (SIGINT - 1)) != 0)
}

/// Linux's signal number of SIGINT.
const SIGINT: u32 = 2;

#[test]
fn ctrl_c_stops_the_cli_verify_with_a_message() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.rmap");
    make(&path, 1000);
    // Claims 1 TiB of committed records (sparse): a verify of seconds even
    // though it skips the holes (one step per page).
    give_capacity(&path, 1 << 28, true);
    let mut cmd = Command::new(BIN);
    cmd.args(["verify", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SIGINT at its default in the child whatever this process inherited
    // (a background job of a non-interactive shell starts with it ignored,
    // and the tool keeps an inherited ignore).
    // SAFETY: between fork and exec the closure only calls `signal`, which
    // is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.launch().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The handler is installed once the store is open and verify begins.
    while !catches_sigint(pid) {
        assert!(child.try_wait().unwrap().is_none(), "verify ended first");
        assert!(Instant::now() < deadline, "verify never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("verify did not stop after Ctrl-C (hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("verify interrupted after"), "{err}");
}

// ------------------------------------------------------------- salvage

#[test]
fn a_truncated_store_opens_for_salvage_and_repair_keeps_the_verified_prefix() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.rmap");
    make(&path, 5000); // 20 pages: 19 full and one of 136 records
    let (_, h) = newest(&path);
    // Another program cuts the file inside the checksum table: the entries
    // of groups 0..10 survive.
    rw(&path).set_len(h.layout.table_offset + 40).unwrap();
    assert!(matches!(
        RawStore::open(&path),
        Err(Error::Truncated { .. })
    ));
    assert!(
        matches!(
            Options::new().salvage(true).open_raw_read_only(&path),
            Err(Error::Truncated { .. })
        ),
        "salvage is for writers"
    );
    let mut s = Options::new().salvage(true).open::<R>(&path).unwrap();
    assert_eq!(file_len(&path), h.layout.file_len(), "extended back");
    let rep = s.raw_mut().repair(Repair::TruncateToVerified).unwrap();
    assert_eq!((rep.records_before, rep.records_after), (5000, 10 * 256));
    assert!(s.verify().unwrap().is_ok());
    s.extend((2560..3000).map(rec)).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Store::<R>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), 3000);
    assert!(s.verify().unwrap().is_ok());
    assert!(s.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
    drop(s);

    // The CLI: `recmap repair` on a store cut inside its data pages (the
    // table is lost with them: nothing can be verified, nothing is kept,
    // and the store is consistent again).
    let path = dir.path().join("cut2.rmap");
    make(&path, 5000);
    let (_, h) = newest(&path);
    rw(&path)
        .set_len(h.layout.data_offset + 5 * PAGE_SIZE + 100)
        .unwrap();
    let p = path.to_str().unwrap();
    let (code, _, _) = run_timeout(&["verify", p], 30);
    assert_eq!(code, Some(1), "truncated is damage");
    let (code, _, err) = run_timeout(&["repair", p], 30);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("kept records 0..0 (0 of 5000)"), "{err}");
    let (code, out, err) = run_timeout(&["verify", p], 30);
    assert_eq!(code, Some(0), "{out}{err}");

    // And on a sound store it changes nothing.
    let (code, _, err) = run_timeout(&["repair", p], 30);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("nothing to repair"), "{err}");
}

// ------------------------------------------------- many hostile headers

/// A tiny deterministic RNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Headers that pass every field check (valid CRCs, consistent derived
/// fields) but carry extreme values — capacities up to 64 GiB over a sparse
/// file, counts up to the capacity, any tail checksum, generations and
/// header sequence numbers at the limit, any chunk size, the append-only
/// flag — must each give a working handle or a typed error for every
/// operation: no panic, no hang, memory and file growth bounded.
#[test]
fn valid_headers_with_extreme_fields_are_handled_within_bounds() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_1b0b_cafe_f00d);
    let (mut opened, mut committed, mut refused) = (0, 0, Vec::new());
    for case in 0..48 {
        let path = dir.path().join(format!("h{case}.rmap"));
        make(&path, 1000);
        let (_, h0) = newest(&path);
        let p = h0.layout.packing;
        let groups = rng.pick(&[13u64, 14, 1 << 10, 1 << 16, 1 << 24]);
        let layout = Layout::with_groups(p, h0.schema_len, groups).unwrap();
        let count = rng.pick(&[
            0,
            1,
            999,
            1000,
            1001,
            1024,
            layout.capacity() - 1,
            layout.capacity(),
        ]);
        let tail = if count.is_multiple_of(p.records_per_group) {
            0
        } else {
            rng.pick(&[0u32, 1, u32::MAX, h0.tail_crc])
        };
        let chunk = rng.pick(&[64u64 << 10, 1 << 20, 1 << 30, 1 << 40]);
        let generation = rng.pick(&[
            1u64,
            2,
            recmap::format::MAX_GENERATION - 1,
            recmap::format::MAX_GENERATION,
        ]);
        let flags = rng.pick(&[0u32, recmap::format::FLAG_APPEND_ONLY]);
        // The table keeps the real entries of the first groups.
        let full = h0.record_count / p.records_per_group;
        let f = rw(&path);
        let mut table = vec![0u8; (full * 4) as usize];
        f.read_exact_at(&mut table, h0.layout.table_offset).unwrap();
        if layout.file_len() > file_len(&path) {
            f.set_len(layout.file_len()).unwrap();
        }
        f.write_all_at(&table, layout.table_offset).unwrap();
        drop(f);
        let _ = std::fs::remove_file(format!("{}-wal", path.display()));
        edit_header(&path, |h| {
            h.layout = layout;
            h.capacity = layout.capacity();
            h.record_count = count;
            h.tail_crc = tail;
            h.chunk_size = chunk;
            h.generation = generation;
            h.flags = flags;
        });
        let what = format!(
            "case {case}: {groups} groups, {count} records, tail {tail:#x}, chunk {chunk}, \
             generation {generation}, flags {flags}"
        );
        let len0 = file_len(&path);
        let r0 = thread_rchar();
        let ((), mem) = peak_allocated(|| {
            if let Ok(s) = RawStore::open_read_only(&path) {
                let mut calls = 0;
                // A bounded look: the first pages and the report's shape.
                let _ = s.verify_with(&mut |_, _| {
                    calls += 1;
                    calls < 3
                });
                let _ = s.check_records(0..s.len().min(5000));
                let _ = s.get(s.len().saturating_sub(1));
            }
            if let Ok(r) = recmap::RawReader::open(&path) {
                let mut buf = vec![0u8; 16];
                let _ = r.read_into(r.len().saturating_sub(1), &mut buf);
            }
            match Options::new().log_size(64 << 10).open_raw(&path, None) {
                Ok(mut s) => {
                    opened += 1;
                    if s.push(&[9u8; 16]).and_then(|_| s.commit()).is_ok() {
                        committed += 1;
                    }
                    let _ = s.set(0, &[1u8; 16]).and_then(|()| s.commit().map(drop));
                    drop(s);
                }
                Err(e) => refused.push(e.to_string()),
            }
        });
        let read = thread_rchar() - r0;
        assert!(mem < 64 << 20, "{what}: allocated {mem} bytes at once");
        let grown = file_len(&path).saturating_sub(len0);
        assert!(
            grown <= (1 << 30) + MAX_GROWTH_CHUNK + (64 << 20),
            "{what}: the file grew by {grown} bytes"
        );
        // Writes of a 64 MiB table (a claimed full 64 GiB) at most; reads
        // are of the pages checked and the table moved.
        assert!(read < 512 << 20, "{what}: read {read} bytes");
        for suffix in ["", "-wal", "-lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    println!("{opened} of 48 opened as writers, {committed} committed; refused: {refused:?}");
    assert!(
        opened >= 24 && committed >= 12,
        "the cases reach the write path"
    );
}
