//! The write path's hot spots: the checksum of one page, and a durable
//! commit of N dirty pages (one record updated in each), on the real disk.
//!
//! ```text
//! cargo bench --no-default-features --bench commit
//! RECMAP_BENCH_DIR=/path/on/disk cargo bench --no-default-features --bench commit
//! ```
//!
//! Every commit is one log write and one `fdatasync` of the log, then the
//! images are written to their pages (docs/format.md, "Commit"); the
//! dirty-page count changes the log frame's size and the number of those
//! writes. Iterations alternate between two disjoint sets of pages.
//! The directory defaults to the system temp directory: on a tmpfs `/tmp`
//! the syncs cost nothing, so point `RECMAP_BENCH_DIR` at a disk.
//! Results: `docs/benchmarks.md`.

use criterion::{BenchmarkId, Criterion, Throughput};
use recmap::Options;
use std::hint::black_box;
use std::time::Duration;

recmap::record! {
    /// 64 bytes, 64 to a page.
    pub struct Rec { pub a: [u64; 8] }
}

const PER_PAGE: u64 = 64;
const PAGES: u64 = 4096;

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let mut g = c.benchmark_group("page_checksum");
    let page = vec![0xa5u8; 4096];
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("crc32_4096", |b| {
        b.iter(|| crc32fast::hash(black_box(&page)))
    });
    g.finish();

    let base = std::env::var_os("RECMAP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let path = dir.path().join("commit.rmap");
    let mut s = Options::new().create_new(true).open::<Rec>(&path).unwrap();
    let recs: Vec<Rec> = (0..PAGES * PER_PAGE).map(|i| Rec { a: [i; 8] }).collect();
    s.extend_from_slice(&recs).unwrap();
    s.commit().unwrap();

    let mut g = c.benchmark_group("commit_dirty_pages");
    for n in [1u64, 16, 128, 1024] {
        g.throughput(Throughput::Elements(n));
        let mut round = 0u64;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                round += 1;
                // Pages 2k (even rounds) or 2k + 1 (odd rounds), k < n.
                let half = round % 2;
                for k in 0..n {
                    let page = (2 * k + half) % PAGES;
                    let i = page * PER_PAGE + round % PER_PAGE;
                    s.set(i, &Rec { a: [round; 8] }).unwrap();
                }
                black_box(s.commit().unwrap())
            })
        });
    }
    g.finish();
    c.final_summary();
}
