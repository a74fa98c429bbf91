//! Readers beside a writer: the cost of a validated copy-out read
//! (`Reader::get`, seqlock-checked) against the writer's zero-copy
//! `Store::get` and raw memmap2 indexing of the same file, and the latency
//! from a writer's commit to a reader in another process seeing it through
//! `wait_for_commit`.
//!
//! ```text
//! cargo bench --bench readers
//! RECMAP_BENCH_RECORDS=4000000 RECMAP_LATENCY_COMMITS=2000 cargo bench --bench readers
//! ```
//!
//! The latency part re-runs this binary as the reader process; it prints the
//! median and p99 on stderr. Results: `docs/benchmarks.md`.
//!
//! The paired cross-check (stderr) runs twice: with a `black_box` per lookup
//! (as criterion does), and with the lookups folded into a checksum, one
//! `black_box` per block, as a user's loop would (a `black_box` may write
//! memory as far as the compiler knows, so with one per lookup every lookup
//! reads its handle's fields again); the second adds `Snapshot::get`.

use criterion::Criterion;
use recmap::{Options, Reader, Store};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;
use common::{interleaved, timed};

recmap::record! {
    /// 64 bytes, 64 to a page.
    pub struct Rec { pub a: [u64; 8] }
}

fn records() -> u64 {
    std::env::var("RECMAP_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 20)
}

fn indices(n: u64) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn build(dir: &std::path::Path) -> std::path::PathBuf {
    build_as(dir, "readers.rmap", false)
}

fn build_as(dir: &std::path::Path, name: &str, append_only: bool) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut s = Options::new()
        .create_new(true)
        .append_only(append_only)
        .open::<Rec>(&path)
        .unwrap();
    let n = records();
    let batch: Vec<Rec> = (0..65536u64).map(|i| Rec { a: [i; 8] }).collect();
    let mut i = 0;
    while i < n {
        let k = (n - i).min(batch.len() as u64) as usize;
        s.extend_from_slice(&batch[..k]).unwrap();
        i += k as u64;
    }
    s.commit().unwrap();
    path
}

fn bench_gets(c: &mut Criterion, path: &std::path::Path) {
    let idx = indices(records());
    // The writer's handle (zero-copy) and a reader beside it.
    let writer = Store::<Rec>::open(path).unwrap();
    let reader = Reader::<Rec>::open(path).unwrap();
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: benchmark only; nobody writes the file while it is measured.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
    let data = writer.info().data_offset as usize;
    for r in writer.iter() {
        black_box(r.a[0]);
    }
    let mut g = c.benchmark_group("reader_get");
    let mut k = 0usize;
    g.bench_function("store_get_zero_copy", |b| {
        b.iter(|| {
            k = (k + 1) & (idx.len() - 1);
            black_box(writer.get(idx[k]).unwrap().a[7])
        })
    });
    g.bench_function("reader_get_validated_copy", |b| {
        b.iter(|| {
            k = (k + 1) & (idx.len() - 1);
            black_box(reader.get(idx[k]).unwrap().unwrap().a[7])
        })
    });
    g.bench_function("memmap2_from_bytes", |b| {
        b.iter(|| {
            k = (k + 1) & (idx.len() - 1);
            let off = data + idx[k] as usize * 64;
            black_box(bytemuck::from_bytes::<Rec>(&map[off..off + 64]).a[7])
        })
    });
    g.finish();

    // The same three, paired round by round (robust to a loaded machine).
    let rounds = std::env::var("RECMAP_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    interleaved(
        &mut [
            (
                "store_get_zero_copy",
                &mut timed(|i| writer.get(i).unwrap().a[7]),
            ),
            (
                "reader_get_validated",
                &mut timed(|i| reader.get(i).unwrap().unwrap().a[7]),
            ),
            (
                "memmap2_from_bytes",
                &mut timed(|i| {
                    let off = data + i as usize * 64;
                    bytemuck::from_bytes::<Rec>(&map[off..off + 64]).a[7]
                }),
            ),
        ],
        &idx,
        rounds,
    );
    let mut snap_reader = Reader::<Rec>::open(path).unwrap();
    let snap = snap_reader.snapshot().unwrap();
    interleaved(
        &mut [
            (
                "store_get folded",
                &mut folded(|i| writer.get(i).unwrap().a[7]),
            ),
            (
                "reader_get folded",
                &mut folded(|i| reader.get(i).unwrap().unwrap().a[7]),
            ),
            (
                "snapshot_get folded",
                &mut folded(|i| snap.get(i).unwrap().unwrap().a[7]),
            ),
            (
                "memmap2 bytes folded",
                &mut folded(|i| {
                    let off = data + i as usize * 64;
                    bytemuck::from_bytes::<Rec>(&map[off..off + 64]).a[7]
                }),
            ),
        ],
        &idx,
        rounds,
    );

    // Zero-copy beside the writer: `Reader::get_ref` on an append-only
    // store against the writer's `Store::get` of the same store.
    let ao = build_as(path.parent().unwrap(), "readers-ao.rmap", true);
    let ao_writer = Store::<Rec>::open(&ao).unwrap();
    let ao_reader = Reader::<Rec>::open(&ao).unwrap();
    // Both mappings faulted in before the timed rounds.
    for i in 0..ao_writer.len() {
        black_box(ao_writer.get(i).unwrap().a[0]);
        black_box(ao_reader.get_ref(i).unwrap().unwrap().a[0]);
    }
    interleaved(
        &mut [
            (
                "append-only store_get",
                &mut timed(|i| ao_writer.get(i).unwrap().a[7]),
            ),
            (
                "append-only reader_get_ref",
                &mut timed(|i| ao_reader.get_ref(i).unwrap().unwrap().a[7]),
            ),
        ],
        &idx,
        rounds,
    );
    interleaved(
        &mut [
            (
                "append-only store_get folded",
                &mut folded(|i| ao_writer.get(i).unwrap().a[7]),
            ),
            (
                "append-only reader_get_ref folded",
                &mut folded(|i| ao_reader.get_ref(i).unwrap().unwrap().a[7]),
            ),
        ],
        &idx,
        rounds,
    );
}

/// Like `common::timed`, but the lookups are summed and only the sum goes
/// through `black_box`, as a loop folding a field into a checksum would.
fn folded(mut f: impl FnMut(u64) -> u64) -> impl FnMut(&[u64]) -> std::time::Duration {
    move |block| {
        let t = std::time::Instant::now();
        let mut sum = 0u64;
        for &i in block {
            sum = sum.wrapping_add(f(i));
        }
        black_box(sum);
        t.elapsed()
    }
}

/// Child: a reader process that reports when it sees each commit.
fn latency_child(path: &str) {
    let mut r = Reader::<Rec>::open(path).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut seen = r.generation();
    while let Some(g) = r.wait_for_commit(seen, Duration::from_secs(10)).unwrap() {
        let t = now_ns();
        writeln!(out, "{g} {t}").unwrap();
        out.flush().unwrap();
        seen = g;
    }
}

fn commit_latency(path: &std::path::Path) {
    let commits: usize = std::env::var("RECMAP_LATENCY_COMMITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RECMAP_LATENCY_CHILD", path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut s = Store::<Rec>::open(path).unwrap();
    let mut lat = Vec::with_capacity(commits);
    for i in 0..commits {
        s.push(&Rec { a: [i as u64; 8] }).unwrap();
        s.commit().unwrap();
        let t0 = now_ns();
        let line = lines.next().unwrap().unwrap();
        let mut it = line.split(' ');
        let g: u64 = it.next().unwrap().parse().unwrap();
        let t1: u64 = it.next().unwrap().parse().unwrap();
        assert_eq!(g, s.generation());
        lat.push(t1.saturating_sub(t0));
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(s);
    let _ = child.wait();
    lat.sort_unstable();
    eprintln!(
        "commit-to-reader latency over {commits} commits (commit() returned -> reader woke, other process): median {:.1} us, p99 {:.1} us",
        lat[lat.len() / 2] as f64 / 1e3,
        lat[lat.len() * 99 / 100] as f64 / 1e3
    );
}

fn main() {
    if let Ok(path) = std::env::var("RECMAP_LATENCY_CHILD") {
        latency_child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));
    bench_gets(&mut c, &path);
    commit_latency(&path);
    c.final_summary();
}
