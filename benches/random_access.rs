//! Random access and sequential scan: recmap against the obvious alternatives.
//!
//! Builds a store of 64-byte records (eight `u64` fields derived from the
//! index; 16,777,216 records = 1 GiB of data by default), commits it, reads
//! the file once to warm the page cache, then measures:
//!
//! * `random_get/*`: the cost of one lookup of a random record by index,
//!   for the same pre-generated sequence of 1,048,576 seeded xorshift
//!   indices (cycled), each lookup reading the first and last word of the
//!   record:
//!   - `recmap_get`: [`recmap::Store::get`] on a read-only handle;
//!   - `recmap_slice`: the same handle's records as one `&[Rec]` from
//!     [`recmap::Store::slices`] (64-byte records pack pages densely), indexed;
//!   - `memmap2_from_bytes`: the same file mapped with `memmap2::Mmap`,
//!     record `i` at `data_offset + i * 64`, `bytemuck::from_bytes` on a
//!     bounds-checked slice (what safe code would write);
//!   - `memmap2_ptr`: the same offset, unchecked pointer cast (the floor);
//!   - `pread`: `FileExt::read_exact_at` of 64 bytes into a stack record;
//!   - `bufreader_seek`: `BufReader<File>` (8 KiB buffer), `seek(SeekFrom::Start)`
//!     + `read_exact` of 64 bytes (the seek discards the buffer every time);
//!   - `vec`: indexing a `Vec<Rec>` holding the same records (anonymous
//!     memory; with THP in `madvise` mode it is backed by 4 KiB pages).
//! * `seq_scan/*`: summing one field over all records, reported as bytes per
//!   second: `recmap_iter` ([`recmap::Store::iter`]), `memmap2_slice` (the
//!   mapped data cast to `&[Rec]`) and `vec`.
//!
//! Lookups in the random group are independent of each other, so the CPU
//! overlaps their cache and TLB misses: the figures are throughput per lookup
//! on a warm page cache, not the latency of an isolated miss (which is several
//! times higher). Because the overlap is limited by how many lookups fit in
//! the out-of-order window, the instruction count of a lookup shows up
//! directly in these figures. Both maps are touched end to end before
//! measuring, so no page fault is timed.
//!
//! Before the criterion groups, an interleaved cross-check runs the same
//! lookups in rounds (one block of 32,768 lookups per system per round, order
//! rotated) and prints the median ns/op and the median per-round ratio to
//! `recmap_get` on stderr. On a shared, noisy machine these paired ratios are
//! steadier than ratios of criterion figures measured minutes apart. A second
//! cross-check runs the same lookups folded into a checksum (one `black_box`
//! per block, not per lookup), the shape of a user's loop: a `black_box` may
//! write memory as far as the compiler knows, so with one per lookup every
//! `Store::get` reads its handle's fields again, which the folded loop lets
//! the compiler keep in registers.
//!
//! Run (release):
//!
//! ```text
//! cargo bench --bench random_access
//! cargo bench --bench random_access -- random_get     # one group
//! RECMAP_BENCH_RECORDS=1000000 cargo bench --bench random_access   # small file
//! RECMAP_BENCH_DIR=/mnt/nvme cargo bench --bench random_access     # other filesystem
//! ```
//!
//! `RECMAP_BENCH_DIR` is the directory the temporary store is created in
//! (default: the system temp dir); `RECMAP_BENCH_RECORDS` the record count;
//! `RECMAP_BENCH_INTERLEAVED_ROUNDS` the cross-check's rounds (default 40, 0
//! skips it).
//! The file, its page cache and the `Vec` copy need about 2 GiB of RAM at the
//! default size. Building the file, committing it (a checksum of every page
//! and an fsync) and warming it take a few seconds before the first
//! measurement; the whole run takes a couple of minutes. Setup figures and
//! the mappings' huge-page use (`/proc/self/smaps`) are printed to stderr.
//! Results and the machine they were taken on: `docs/benchmarks.md`.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use memmap2::Mmap;
use recmap::Store;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{interleaved, timed};
// Positional reads on every platform (`std::os::unix::fs::FileExt` on Unix).
#[path = "../tests/common/file_at.rs"]
#[allow(dead_code)] // the bench only reads
mod file_at;
use file_at::FileAt;

recmap::record! {
    /// 64 bytes: eight words derived from the record's index.
    pub struct Rec {
        pub a: u64,
        pub b: u64,
        pub c: u64,
        pub d: u64,
        pub e: u64,
        pub f: u64,
        pub g: u64,
        pub h: u64,
    }
}

const REC_SIZE: usize = std::mem::size_of::<Rec>();
const _: () = assert!(REC_SIZE == 64 && 4096 % REC_SIZE == 0);

/// Default record count: 2^24 records of 64 bytes = 1 GiB.
const DEFAULT_RECORDS: u64 = 1 << 24;
/// Length of the random index sequence (a power of two, cycled).
const INDICES: usize = 1 << 20;
const XORSHIFT_SEED: u64 = 0x2545_F491_4F6C_DD1D;

fn rec(i: u64) -> Rec {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Rec {
        a: i,
        b: x,
        c: x.rotate_left(17),
        d: !i,
        e: i ^ x,
        f: i.wrapping_add(1),
        g: x >> 7,
        h: i.wrapping_mul(3),
    }
}

/// What every lookup reads: the first and the last word of the record.
#[inline(always)]
fn touch(r: &Rec) -> u64 {
    r.a ^ r.h
}

/// `n` indices in `0..len` from xorshift64 (Marsaglia 13/7/17).
fn random_indices(n: usize, len: u64, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % len
        })
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: {e}")),
    )
}

/// The `/proc/self/smaps` entry of the mapping containing `addr`:
/// (start, Size, Rss, FilePmdMapped, AnonHugePages), sizes in KiB.
fn smaps_entry(addr: usize) -> Option<(usize, u64, u64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut current: Option<(usize, [u64; 4])> = None;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                if let Some((start, f)) = current.take() {
                    return Some((start, f[0], f[1], f[2], f[3]));
                }
                if (lo..hi).contains(&addr) {
                    current = Some((lo, [0; 4]));
                }
                continue;
            }
        }
        if let Some((_, f)) = current.as_mut() {
            let kib = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            match first {
                "Size:" => f[0] = kib(),
                "Rss:" => f[1] = kib(),
                "FilePmdMapped:" => f[2] = kib(),
                "AnonHugePages:" => f[3] = kib(),
                _ => {}
            }
        }
    }
    current.map(|(start, f)| (start, f[0], f[1], f[2], f[3]))
}

fn report_mapping(name: &str, addr: usize) {
    match smaps_entry(addr) {
        Some((start, size, rss, pmd, anon_huge)) => eprintln!(
            "  {name:<8} mapping at {start:#x} (2 MiB aligned: {}): Size {size} KiB, Rss {rss} KiB, \
             FilePmdMapped {pmd} KiB, AnonHugePages {anon_huge} KiB",
            start % (2 << 20) == 0
        ),
        None => eprintln!("  {name:<8} mapping: not found in /proc/self/smaps"),
    }
}

/// Builds and commits the store; returns the in-memory copy of its records.
fn build(path: &Path, n: u64) -> Vec<Rec> {
    let t0 = Instant::now();
    let records: Vec<Rec> = (0..n).map(rec).collect();
    let mut store = Store::<Rec>::create(path).expect("create store");
    store.reserve(n).expect("reserve");
    for chunk in records.chunks((4 << 20) / REC_SIZE) {
        store.extend_from_slice(chunk).expect("append");
    }
    let t1 = Instant::now();
    let stats = store.commit().expect("commit");
    store.close().expect("close");
    eprintln!(
        "built {n} records ({:.1} MiB) in {:.2?} + commit {:.2?} ({} pages)",
        (n as usize * REC_SIZE) as f64 / (1 << 20) as f64,
        t1 - t0,
        stats.duration,
        stats.pages
    );
    records
}

/// Reads the whole file once so its pages are in the page cache.
fn warm_page_cache(path: &Path) {
    let t0 = Instant::now();
    let mut f = File::open(path).expect("open for warming");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let k = f.read(&mut buf).expect("read for warming");
        if k == 0 {
            break;
        }
        total += k as u64;
    }
    eprintln!(
        "warmed page cache: read {total} bytes in {:.2?}",
        t0.elapsed()
    );
}

fn benches(c: &mut Criterion) {
    let n = env_u64("RECMAP_BENCH_RECORDS").unwrap_or(DEFAULT_RECORDS);
    assert!(n > 0, "RECMAP_BENCH_RECORDS must be positive");
    let dir = match std::env::var_os("RECMAP_BENCH_DIR") {
        Some(d) => tempfile::Builder::new()
            .prefix("recmap-bench")
            .tempdir_in(d),
        None => tempfile::Builder::new().prefix("recmap-bench").tempdir(),
    }
    .expect("temp dir");
    let path = dir.path().join("random_access.rmap");

    let vec = build(&path, n);
    warm_page_cache(&path);

    let store = Store::<Rec>::open_read_only(&path).expect("open read-only");
    assert_eq!(store.len(), n);
    let data_off = store.info().data_offset as usize;
    let file = File::open(&path).expect("open file");
    // SAFETY: the file is private to this benchmark (a fresh temp dir) and
    // nothing writes to or truncates it while the map is alive: the store
    // above is read-only and holds a shared lock that excludes recmap writers.
    let map = unsafe { Mmap::map(&file) }.expect("mmap");
    assert!(map.len() >= data_off + n as usize * REC_SIZE);
    let mapped: &[Rec] = bytemuck::cast_slice(&map[data_off..data_off + n as usize * REC_SIZE]);

    // Touch every page of both maps (no page fault is timed) and check that
    // every system sees the same records.
    let t0 = Instant::now();
    let expect: u64 = (0..n).map(|i| rec(i).g).fold(0, u64::wrapping_add);
    let sum_recmap = store.iter().map(|r| r.g).fold(0, u64::wrapping_add);
    let sum_map = mapped.iter().map(|r| r.g).fold(0, u64::wrapping_add);
    let sum_vec = vec.iter().map(|r| r.g).fold(0, u64::wrapping_add);
    assert_eq!((sum_recmap, sum_map, sum_vec), (expect, expect, expect));
    eprintln!("pre-faulted and checked both maps in {:.2?}", t0.elapsed());
    eprintln!("mappings after pre-faulting:");
    report_mapping("recmap", store.get(0).unwrap() as *const Rec as usize);
    report_mapping("memmap2", map.as_ptr() as usize);
    report_mapping("vec", vec.as_ptr() as usize);

    let indices = random_indices(INDICES, n, XORSHIFT_SEED);
    let mut reader = BufReader::new(File::open(&path).expect("open for BufReader"));

    // One lookup per system: record `i`, reduced to the two words read.
    let recmap_get = |i: u64| touch(store.get(i).unwrap());
    // The same records through recmap's run API: with 64-byte records the
    // pages are packed densely, so all records are one contiguous `&[Rec]`.
    let (first, recmap_records) = store.slices(0..n).next().expect("one run");
    assert_eq!((first, recmap_records.len() as u64), (0, n));
    let recmap_slice = |i: u64| touch(&recmap_records[i as usize]);
    let bytes: &[u8] = &map;
    let memmap2_from_bytes = |i: u64| {
        let off = data_off + i as usize * REC_SIZE;
        touch(bytemuck::from_bytes::<Rec>(&bytes[off..off + REC_SIZE]))
    };
    let base = map.as_ptr();
    let memmap2_ptr = |i: u64| {
        debug_assert!(i < n);
        let off = data_off + i as usize * REC_SIZE;
        // SAFETY: every index is `< n`, so `[off, off + 64)` lies inside the
        // map (asserted above); `data_off` is a multiple of 4096 and the map is
        // page-aligned, so the record is 8-byte aligned; `Rec` is Pod.
        touch(unsafe { &*base.add(off).cast::<Rec>() })
    };
    let pread = |i: u64| {
        let mut r: Rec = bytemuck::Zeroable::zeroed();
        let off = (data_off + i as usize * REC_SIZE) as u64;
        file.read_exact_at(bytemuck::bytes_of_mut(&mut r), off)
            .unwrap();
        touch(&r)
    };
    let mut bufreader_seek = |i: u64| {
        let mut r: Rec = bytemuck::Zeroable::zeroed();
        let off = (data_off + i as usize * REC_SIZE) as u64;
        reader.seek(SeekFrom::Start(off)).unwrap();
        reader.read_exact(bytemuck::bytes_of_mut(&mut r)).unwrap();
        touch(&r)
    };
    let vec_get = |i: u64| touch(&vec[i as usize]);

    for &i in indices.iter().take(1000) {
        let want = touch(&rec(i));
        assert_eq!(recmap_get(i), want);
        assert_eq!(recmap_slice(i), want);
        assert_eq!(memmap2_from_bytes(i), want);
        assert_eq!(memmap2_ptr(i), want);
        assert_eq!(pread(i), want);
        assert_eq!(bufreader_seek(i), want);
        assert_eq!(vec_get(i), want);
    }

    let rounds = env_u64("RECMAP_BENCH_INTERLEAVED_ROUNDS").unwrap_or(40) as usize;
    // Criterion measures only under `--bench` (cargo bench); `cargo test`
    // runs each benchmark once as a smoke test, and so skips this too.
    let args: Vec<String> = std::env::args().collect();
    let quick =
        !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test" || a == "--list");
    if rounds > 0 && !quick {
        interleaved(
            &mut [
                ("recmap_get", &mut timed(recmap_get)),
                ("recmap_slice", &mut timed(recmap_slice)),
                ("memmap2_from_bytes", &mut timed(memmap2_from_bytes)),
                ("memmap2_ptr", &mut timed(memmap2_ptr)),
                ("pread", &mut timed(pread)),
                ("bufreader_seek", &mut timed(&mut bufreader_seek)),
                ("vec", &mut timed(vec_get)),
            ],
            &indices,
            rounds,
        );
        interleaved(
            &mut [
                ("recmap_get folded", &mut folded(recmap_get)),
                ("recmap_slice folded", &mut folded(recmap_slice)),
                ("memmap2 bytes folded", &mut folded(memmap2_from_bytes)),
                ("memmap2_ptr folded", &mut folded(memmap2_ptr)),
                ("vec folded", &mut folded(vec_get)),
            ],
            &indices,
            rounds,
        );
    }

    // ----- random lookups ----------------------------------------------------
    let mut g = c.benchmark_group("random_get");
    g.throughput(Throughput::Elements(1));
    lookup(&mut g, "recmap_get", &indices, recmap_get);
    lookup(&mut g, "recmap_slice", &indices, recmap_slice);
    lookup(&mut g, "memmap2_from_bytes", &indices, memmap2_from_bytes);
    lookup(&mut g, "memmap2_ptr", &indices, memmap2_ptr);
    lookup(&mut g, "pread", &indices, pread);
    lookup(&mut g, "bufreader_seek", &indices, &mut bufreader_seek);
    lookup(&mut g, "vec", &indices, vec_get);
    g.finish();

    // ----- sequential scan ---------------------------------------------------
    let mut g = c.benchmark_group("seq_scan");
    g.throughput(Throughput::Bytes(n * REC_SIZE as u64));
    g.sample_size(10);
    // Criterion's 10 samples take 55 scans; give them time (at ~8 GB/s).
    let scan = Duration::from_secs_f64((n * REC_SIZE as u64) as f64 / 8e9);
    g.measurement_time(Duration::from_secs(2).max(scan * 60));
    g.bench_function("recmap_iter", |b| {
        b.iter(|| {
            black_box(&store)
                .iter()
                .map(|r| r.g)
                .fold(0, u64::wrapping_add)
        })
    });
    g.bench_function("memmap2_slice", |b| {
        b.iter(|| {
            black_box(mapped)
                .iter()
                .map(|r| r.g)
                .fold(0, u64::wrapping_add)
        })
    });
    g.bench_function("vec", |b| {
        b.iter(|| {
            black_box(&vec)
                .iter()
                .map(|r| r.g)
                .fold(0, u64::wrapping_add)
        })
    });
    g.finish();

    eprintln!("mappings after the run:");
    report_mapping("recmap", store.get(0).unwrap() as *const Rec as usize);
    report_mapping("memmap2", map.as_ptr() as usize);
}

/// Like `common::timed`, but the lookups are summed and only the sum goes
/// through `black_box`, as a loop folding a field into a checksum would.
fn folded(mut f: impl FnMut(u64) -> u64) -> impl FnMut(&[u64]) -> Duration {
    move |block| {
        let t = Instant::now();
        let mut sum = 0u64;
        for &i in block {
            sum = sum.wrapping_add(f(i));
        }
        black_box(sum);
        t.elapsed()
    }
}

/// Criterion benchmark of one lookup per iteration, cycling through `indices`.
fn lookup(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    indices: &[u64],
    mut f: impl FnMut(u64) -> u64,
) {
    let mask = indices.len() - 1;
    assert!(indices.len().is_power_of_two());
    g.bench_function(name, |b| {
        let mut pos = 0;
        b.iter(|| {
            let i = indices[pos];
            pos = (pos + 1) & mask;
            black_box(f(i))
        })
    });
}

criterion_group! {
    name = random_access;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(random_access);
