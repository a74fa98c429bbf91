//! Writes the seed corpora: for `open_bytes`, small valid stores made by the
//! library (64 KiB chunks, so most seeds are one 64 KiB chunk), some with
//! the log a simulated crash left beside them (`recmap_fuzz::join_input`);
//! for `ops_model`, a few pseudo-random inputs of 32 to 384 bytes, which
//! decode to about 5 to 48 operations (libFuzzer would otherwise start from
//! tiny inputs), and a few operation sequences written out with
//! `recmap_fuzz::ops::Input::encode` (crashes, rollbacks, a small log, and
//! the sequence of `regress-compact-announce`).
//!
//! Files not named `seed-*` are left alone: `open_bytes`'s `v1-*` are
//! version-1 stores (written by the version-1 code, which this crate can no
//! longer write) and `regress-*` once crashed a target.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus            # -> fuzz/corpus/
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus -- DIR     # -> DIR/open_bytes, DIR/ops_model
//! ```
//!
//! The output is deterministic (no timestamps in the format), so re-running
//! it leaves the committed seeds unchanged unless the format changed. Seed
//! files have no `.rmap` extension because the repository ignores `*.rmap`.

use recmap::{Options, RawStore, Record, Schema, Store};
use recmap_fuzz::ops::{Input, Kind, Op};
use recmap_fuzz::*;
use std::path::{Path, PathBuf};

const CHUNK: u64 = 64 << 10;
/// The smallest log: crash seeds keep theirs small.
const SMALL_LOG: u64 = 64 << 10;

/// Removes the `seed-*` files of a corpus directory (generated; the others
/// stay).
fn remove_seeds(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// The store id of every generated version-2 seed (a store's is random),
/// so the generator's output is deterministic.
const SEED_STORE_ID: u64 = 0x5eed_c0de_0000_0001;

/// Replaces the random store id of a version-2 data file (both slots) and
/// of its log's frames (every frame in the file, also those of older
/// cycles; checksums recomputed where they held) by `SEED_STORE_ID`.
fn fix_store_id(data: &mut [u8], log: Option<&mut Vec<u8>>) {
    use recmap::format::wal::{frame, FrameHeader, FRAME_MAGIC};
    use recmap::format::{slot, MAGIC, SLOT_OFFSETS};
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut old = None;
    for &off in &SLOT_OFFSETS {
        let off = off as usize;
        if data[off..off + 8] != MAGIC || u32_at(data, off + slot::FORMAT_VERSION) != 2 {
            continue;
        }
        let at = off + slot::STORE_ID;
        old = Some(u64::from_le_bytes(data[at..at + 8].try_into().unwrap()));
        data[at..at + 8].copy_from_slice(&SEED_STORE_ID.to_le_bytes());
        let crc = recmap::format::slot_crc_v2(&data[off..off + recmap::format::SLOT_LEN]);
        data[off + slot::V2_CRC..off + slot::V2_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let (Some(old), Some(log), Some(h)) = (old, log, data_header(data)) else {
        return;
    };
    let mut at = 0;
    while at + 64 <= log.len() {
        if log[at..at + 8] == FRAME_MAGIC {
            let f = FrameHeader::decode(&log[at..]).unwrap();
            if f.store_id == old {
                let len = f.frame_len(h.layout.packing.record_size).unwrap() as usize;
                let end = (at + len).min(log.len());
                let whole =
                    end == at + len && u32_at(log, end - 4) == crc32fast::hash(&log[at..end - 4]);
                let id = at + frame::STORE_ID;
                log[id..id + 8].copy_from_slice(&SEED_STORE_ID.to_le_bytes());
                if whole {
                    let crc = crc32fast::hash(&log[at..end - 4]);
                    log[end - 4..end].copy_from_slice(&crc.to_le_bytes());
                }
            }
        }
        at += 8;
    }
}

/// The log a crash left beside `path`, without its trailing zeros (the
/// preallocated rest of the file: a scan ends there anyway).
fn crash_log(path: &Path) -> Vec<u8> {
    let mut log = std::fs::read(sidecar(path, "-wal")).unwrap();
    let end = log.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    log.truncate(end.next_multiple_of(8));
    log
}

fn typed<T: Record>(path: &Path) -> Store<T> {
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open::<T>(path)
        .unwrap()
}

fn raw(path: &Path, spec: &str) -> RawStore {
    let schema = Schema::parse(spec).unwrap();
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open_raw(path, Some(&schema))
        .unwrap()
}

/// Deterministic record bytes for untyped stores.
fn raw_record(size: usize, i: u64) -> Vec<u8> {
    (0..size)
        .map(|k| (k as u64).wrapping_mul(7).wrapping_add(i) as u8)
        .collect()
}

fn typed_seed<T: Record>(dir: &Path, name: &str, commits: &[u64], make: fn(u64) -> T) -> PathBuf {
    let path = dir.join(name);
    let mut s = typed::<T>(&path);
    let mut n = 0;
    for &upto in commits {
        s.extend((n..upto).map(make)).unwrap();
        s.commit().unwrap();
        n = upto;
    }
    assert!(s.verify().unwrap().is_ok());
    s.close().unwrap();
    path
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    ops_model_seeds(&root.join("ops_model"));
    let dir = root.join("open_bytes");
    std::fs::create_dir_all(&dir).unwrap();
    remove_seeds(&dir);
    // Build in a scratch directory (the library makes temporary names and
    // hard links next to the target), then copy the finished files.
    let work = scratch_dir().join(format!("recmap-gen-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let w = work.as_path();

    let mut seeds: Vec<PathBuf> = vec![
        // Empty stores: slot 1 only (generation 1), no data.
        typed_seed::<P16>(w, "seed-p16-empty", &[], P16::make),
        typed_seed::<Big5000>(w, "seed-big5000-empty", &[], Big5000::make),
        // A few records: tail group checksum in the header.
        typed_seed::<P16>(w, "seed-p16-1", &[1], P16::make),
        // Exactly one full dense page; then a page plus one over two commits
        // (both slots valid, table entry plus tail CRC).
        typed_seed::<P16>(w, "seed-p16-page", &[256], P16::make),
        typed_seed::<P16>(w, "seed-p16-page-plus1", &[128, 257], P16::make),
        // Non-dense packings.
        typed_seed::<R24>(w, "seed-r24-170", &[170], R24::make),
        typed_seed::<S12>(w, "seed-s12-342", &[100, 341, 342], S12::make),
        typed_seed::<B1>(w, "seed-b1-4097", &[4097], B1::make),
        // Records larger than a page (2-page groups) and exactly a page.
        typed_seed::<Big5000>(w, "seed-big5000-3", &[1, 3], Big5000::make),
        typed_seed::<Page4096>(w, "seed-page4096-5", &[5], Page4096::make),
    ];

    // Grown past the first 64 KiB chunk (a 128 KiB file) by appends that
    // were then dropped without a commit: the growth published a header
    // with the new capacity and the old record count. Before that, an
    // in-place update was committed (generation > 2, both slots valid).
    {
        let path = w.join("seed-r24-grown-dropped");
        let mut s = typed::<R24>(&path);
        s.extend((0..2000).map(R24::make)).unwrap();
        s.commit().unwrap();
        s.set(7, &R24::make(9999)).unwrap();
        s.commit().unwrap();
        let cap = s.capacity();
        s.extend((2000..2400).map(R24::make)).unwrap();
        assert!(s.capacity() > cap);
        drop(s);
        seeds.push(path);
    }

    // A damaged page (bit rot after the commit): opens, but verify reports
    // it, and the writer phase repairs it.
    {
        let path = w.join("seed-p16-damaged-page");
        let mut s = typed::<P16>(&path);
        s.extend((0..300).map(P16::make)).unwrap();
        s.commit().unwrap();
        s.close().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = RawStore::open_read_only(&path).unwrap().info().data_offset as usize + 3 * 16;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let s = RawStore::open_read_only(&path).unwrap();
        assert!(!s.verify().unwrap().is_ok());
        seeds.push(path);
    }

    // Untyped schemas: arrays, str, bool; and a schema block over one page.
    {
        let path = w.join("seed-mixed-10");
        let mut s = raw(&path, MIXED_SPEC);
        let size = s.record_size();
        for i in 0..10 {
            s.push(&raw_record(size, i)).unwrap();
        }
        s.close().unwrap();
        seeds.push(path);
    }
    {
        let path = w.join("seed-wide-schema-20");
        let mut s = raw(&path, &wide_schema_spec());
        let size = s.record_size();
        let bytes: Vec<u8> = (0..20).flat_map(|i| raw_record(size, i)).collect();
        s.extend_from_bytes(&bytes).unwrap();
        s.close().unwrap();
        let s = RawStore::open_read_only(&path).unwrap();
        assert!(s.info().data_offset > 8192);
        seeds.push(path);
    }

    // Crashes (`simulate_crash`) after commits the log holds: a data file
    // and its log in one input.
    let mut crashed: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    {
        // Three commits past the creation header: appends and updates.
        let path = w.join("seed-p16-crash-log");
        let mut s = small_log().open::<P16>(&path).unwrap();
        s.extend((0..300).map(P16::make)).unwrap();
        s.commit().unwrap();
        s.set(3, &P16::make(1003)).unwrap();
        s.extend((300..305).map(P16::make)).unwrap();
        s.commit().unwrap();
        for i in 100..110 {
            s.set(i, &P16::make(i + 7000)).unwrap();
        }
        s.commit().unwrap();
        assert_eq!(s.raw().log_commits(), 3);
        s.simulate_crash();
        let log = crash_log(&path);
        crashed.push((path, log));
    }
    {
        // A checkpoint, then two commits: the log starts with the new
        // cycle's frames, and two whole frames of the old cycle follow
        // them (every commit logs 50 records, so the new frames end where
        // an old one begins; the output stays deterministic).
        let path = w.join("seed-r24-crash-after-checkpoint");
        let mut s = small_log().open::<R24>(&path).unwrap();
        for k in 0..4 {
            s.extend((k * 50..k * 50 + 50).map(R24::make)).unwrap();
            s.commit().unwrap();
        }
        s.checkpoint().unwrap();
        s.extend((200..250).map(R24::make)).unwrap();
        s.commit().unwrap();
        s.set(210, &R24::make(5010)).unwrap();
        s.extend((250..299).map(R24::make)).unwrap();
        s.commit().unwrap();
        assert_eq!(s.raw().log_commits(), 2);
        s.simulate_crash();
        let log = crash_log(&path);
        crashed.push((path, log));
    }
    {
        // Records of two pages each.
        let path = w.join("seed-big5000-crash-log");
        let mut s = small_log().open::<Big5000>(&path).unwrap();
        s.extend((0..2).map(Big5000::make)).unwrap();
        s.commit().unwrap();
        s.set(0, &Big5000::make(77)).unwrap();
        s.push(&Big5000::make(2)).unwrap();
        s.commit().unwrap();
        s.simulate_crash();
        let log = crash_log(&path);
        crashed.push((path, log));
    }
    {
        // The last commit torn: its frame cut short (the others count).
        let path = w.join("seed-s12-crash-torn");
        let mut s = small_log().open::<S12>(&path).unwrap();
        s.extend((0..100).map(S12::make)).unwrap();
        s.commit().unwrap();
        let before = std::fs::read(sidecar(&path, "-wal")).unwrap();
        s.extend((100..150).map(S12::make)).unwrap();
        s.set(5, &S12::make(555)).unwrap();
        s.commit().unwrap();
        s.simulate_crash();
        let mut log = crash_log(&path);
        let first = before.iter().rposition(|&b| b != 0).unwrap() + 1;
        log.truncate(first + (log.len() - first) / 2);
        crashed.push((path, log));
    }
    {
        // An untyped schema; an uncommitted update at the crash.
        let path = w.join("seed-mixed-crash-log");
        let schema = Schema::parse(MIXED_SPEC).unwrap();
        let mut s = small_log()
            .create_new(true)
            .open_raw(&path, Some(&schema))
            .unwrap();
        let size = s.record_size();
        for i in 0..10 {
            s.push(&raw_record(size, i)).unwrap();
        }
        s.commit().unwrap();
        s.set(4, &raw_record(size, 44)).unwrap();
        s.commit().unwrap();
        s.set(5, &raw_record(size, 55)).unwrap();
        s.simulate_crash();
        let log = crash_log(&path);
        crashed.push((path, log));
    }

    let mut total = 0;
    let all = seeds
        .into_iter()
        .map(|p| (p, None))
        .chain(crashed.into_iter().map(|(p, l)| (p, Some(l))));
    for (p, mut log) in all {
        // Open what the seed holds (a torn seed's log is cut short).
        let mut data = std::fs::read(&p).unwrap();
        fix_store_id(&mut data, log.as_mut());
        std::fs::write(&p, &data).unwrap();
        if let Some(l) = &log {
            std::fs::write(sidecar(&p, "-wal"), l).unwrap();
        }
        let s = RawStore::open_read_only(&p).unwrap();
        let input = join_input(&data, log.as_deref());
        total += input.len();
        println!(
            "{:<32} {:>7} bytes  {:>5} records  gen {}  log {} bytes",
            p.file_name().unwrap().to_string_lossy(),
            input.len(),
            s.len(),
            s.generation(),
            log.as_ref().map_or(0, |l| l.len()),
        );
        if log.is_some() {
            assert!(!s.is_empty(), "a crash seed's log holds its commits");
        }
        drop(s);
        std::fs::write(dir.join(p.file_name().unwrap()), &input).unwrap();
        remove_store(&p);
    }
    println!("open_bytes seeds, {total} bytes -> {}", dir.display());
    std::fs::remove_dir_all(&work).unwrap();
}

fn small_log() -> Options {
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .log_size(SMALL_LOG)
}

/// Pseudo-random byte strings (splitmix64, fixed seeds) of growing length.
fn ops_model_seeds(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 0x005e_ed0f_ca11_ab1e_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // Replace earlier generated seeds (regress-* inputs stay).
    remove_seeds(dir);
    let lens = [32usize, 48, 64, 96, 128, 160, 192, 256, 320, 384];
    let mut total = 0;
    for (k, len) in lens.into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        std::fs::write(dir.join(format!("seed-random-{k:02}")), &bytes).unwrap();
        total += len;
    }
    let structured = structured_ops();
    for (name, input) in &structured {
        let bytes = input.encode();
        assert_eq!(&Input::decode(&bytes).unwrap(), input, "{name} round trip");
        std::fs::write(dir.join(name), &bytes).unwrap();
        total += bytes.len();
    }
    println!(
        "{} ops_model seeds, {total} bytes -> {}",
        lens.len() + structured.len(),
        dir.display()
    );
}

/// Operation sequences written out as inputs.
fn structured_ops() -> Vec<(&'static str, Input)> {
    use Op::*;
    let input = |kind, append_only, initial_capacity, small_log, ops: Vec<Op>| Input {
        kind,
        append_only,
        initial_capacity,
        small_log,
        ops,
    };
    vec![
        (
            // Crashes with uncommitted updates and appends, a reader open
            // across them, reads of the unreplayed log.
            "seed-ops-crash",
            input(
                Kind::Typed8,
                false,
                0,
                false,
                vec![
                    Extend {
                        n: 200,
                        seed: 1,
                        slice: true,
                    },
                    Commit,
                    ReaderOpen,
                    Set { i: 7, v: 70 },
                    Push(9),
                    Commit,
                    Update {
                        i: 3,
                        v: 30,
                        guard: true,
                    },
                    Extend {
                        n: 20,
                        seed: 2,
                        slice: false,
                    },
                    Crash { read_first: true },
                    ReaderRefresh,
                    Set { i: 100, v: 1000 },
                    Commit,
                    Set { i: 101, v: 1001 },
                    Crash { read_first: false },
                    ReaderRefresh,
                    Verify,
                    Grow { k: 3, seed: 4 },
                    Commit,
                    Crash { read_first: true },
                ],
            ),
        ),
        (
            // Rollbacks of updates, appends and growth; a reader beside.
            "seed-ops-rollback",
            input(
                Kind::Raw12,
                false,
                0,
                false,
                vec![
                    Extend {
                        n: 250,
                        seed: 5,
                        slice: true,
                    },
                    Commit,
                    Set { i: 10, v: 1 },
                    Update {
                        i: 11,
                        v: 2,
                        guard: false,
                    },
                    Push(3),
                    Rollback,
                    ReaderOpen,
                    Set { i: 12, v: 4 },
                    ReaderRefresh,
                    Commit,
                    ReaderRefresh,
                    Grow { k: 2, seed: 6 },
                    Set { i: 0, v: 7 },
                    Checkpoint,
                    Rollback,
                    Verify,
                    Set { i: 1, v: 8 },
                    DropReopen,
                    ReaderRefresh,
                ],
            ),
        ),
        (
            // The smallest log with two-page records: commits checkpoint to
            // make room and after one larger than the log; crashes between.
            "seed-ops-small-log",
            input(
                Kind::Raw5000,
                false,
                40,
                true,
                vec![
                    Extend {
                        n: 5,
                        seed: 9,
                        slice: true,
                    },
                    Commit,
                    Extend {
                        n: 5,
                        seed: 10,
                        slice: true,
                    },
                    Commit,
                    Set { i: 1, v: 11 },
                    Set { i: 6, v: 12 },
                    Commit,
                    Crash { read_first: true },
                    Extend {
                        n: 20,
                        seed: 13,
                        slice: true,
                    },
                    Commit,
                    Set { i: 2, v: 14 },
                    Commit,
                    Crash { read_first: true },
                    Checkpoint,
                    Set { i: 3, v: 15 },
                    Commit,
                    Crash { read_first: false },
                ],
            ),
        ),
        (
            // The sequence that found finding 3 (readers adopted a
            // pre-compaction header), decoded with the input format of the
            // time and written out again in the current one.
            "regress-compact-announce",
            input(
                Kind::Typed8,
                true,
                22249,
                false,
                vec![
                    Reserve(10672),
                    ReaderClose,
                    ReaderRefresh,
                    Commit,
                    SecondOpen,
                    SecondOpen,
                    ReaderClose,
                    Compact,
                    ReaderOpen,
                    Get { i: 42192 },
                    Reserve(14795),
                    Extend {
                        n: 62,
                        seed: 400918581,
                        slice: true,
                    },
                    Grow {
                        k: 70,
                        seed: 2120416214,
                    },
                    Set {
                        i: 49416,
                        v: 723611627,
                    },
                    Extend {
                        n: 33,
                        seed: 1788955570,
                        slice: true,
                    },
                    CloseReopen,
                    Runs {
                        start: 53660,
                        len: 31694,
                    },
                    SecondOpen,
                    DropReopen,
                    CloseReopen,
                    Push(1278277478),
                    ReadOnlyRound,
                    ReaderOpen,
                    Runs {
                        start: 18638,
                        len: 41601,
                    },
                    SecondOpen,
                    Runs {
                        start: 45225,
                        len: 28709,
                    },
                    Push(2967621924),
                    ReaderClose,
                    Repair { truncate: false },
                    Set {
                        i: 8193,
                        v: 3967150065,
                    },
                    Push(3835282817),
                    Push(1615979770),
                    Verify,
                    Grow {
                        k: 64,
                        seed: 1507545674,
                    },
                    DropReopen,
                    SecondOpen,
                    Set {
                        i: 4056,
                        v: 3322755752,
                    },
                    Reserve(40689),
                    Reserve(39207),
                    Runs {
                        start: 60312,
                        len: 2495,
                    },
                    Verify,
                    Verify,
                    Set {
                        i: 31788,
                        v: 3234562592,
                    },
                    Grow {
                        k: 91,
                        seed: 4120149699,
                    },
                    SecondOpen,
                    Reserve(14174),
                    CloseReopen,
                    ReaderRefresh,
                ],
            ),
        ),
    ]
}
