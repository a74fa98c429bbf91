//! A whole-store scan through a snapshot against `Store::iter`, by the size
//! of the caller's buffer: 1 M records of 64 bytes, cached, each record's
//! first field folded into a checked sum; `Snapshot::iter` (a page at a
//! time) and `Snapshot::read_range` into buffers of 64, 512, 4096 and
//! 32768 records, and a plain `copy_from_slice` of the writer's map into a
//! buffer of 4096 records. Three rounds; prints GB/s of record bytes.
//!
//! ```text
//! RECMAP_BENCH_DIR=/var/tmp cargo bench --no-default-features --bench snapshot_scan
//! ```
//!
//! A copy into a buffer larger than the L1 cache comes back from L2 for
//! the fold, which a scan of the map itself never does. Results:
//! docs/benchmarks.md.

use recmap::{Options, Reader};
use std::time::Instant;

recmap::record! {
    /// 64 bytes.
    pub struct Rec { pub a: u64, pub b: [u64; 7] }
}

const RECORDS: u64 = 1_000_000;

fn main() {
    let base = std::env::var_os("RECMAP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let path = dir.path().join("scan.rmap");
    let mut s = Options::new().create_new(true).open::<Rec>(&path).unwrap();
    s.extend((0..RECORDS).map(|i| Rec { a: i, b: [i; 7] }))
        .unwrap();
    s.commit().unwrap();
    let mut reader = Reader::<Rec>::open(&path).unwrap();
    let want = (0..RECORDS).fold(0u64, |a, i| a.wrapping_add(i));
    let gbs = |t: std::time::Duration| (RECORDS * 64) as f64 / t.as_secs_f64() / 1e9;
    for round in 1..=3 {
        let t = Instant::now();
        let sum = s.iter().fold(0u64, |a, r| a.wrapping_add(r.a));
        let store_iter = gbs(t.elapsed());
        assert_eq!(sum, want);
        let snap = reader.snapshot().unwrap();
        let t = Instant::now();
        let mut sum = 0u64;
        for r in snap.iter(0..RECORDS) {
            sum = sum.wrapping_add(r.unwrap().a);
        }
        let snap_iter = gbs(t.elapsed());
        assert_eq!(sum, want);
        let mut line = format!(
            "round {round}: Store::iter {store_iter:.2} GB/s, Snapshot::iter {snap_iter:.2}"
        );
        for chunk in [64usize, 512, 4096, 32768] {
            let mut buf = vec![Rec { a: 0, b: [0; 7] }; chunk];
            let t = Instant::now();
            let (mut sum, mut first) = (0u64, 0u64);
            loop {
                let got = snap.read_range(first, &mut buf).unwrap();
                if got == 0 {
                    break;
                }
                sum = buf[..got].iter().fold(sum, |a, r| a.wrapping_add(r.a));
                first += got as u64;
            }
            assert_eq!(sum, want);
            line += &format!(", read_range({chunk}) {:.2}", gbs(t.elapsed()));
        }
        // The same scan as a plain `copy_from_slice` (glibc's memcpy) of the
        // writer's own map into a buffer of 4096 records: what any copy into
        // a buffer that size costs, without a snapshot's checks.
        let recs: &[Rec] = s.slices(0..RECORDS).next().map_or(&[], |(_, r)| r);
        let mut buf = vec![Rec { a: 0, b: [0; 7] }; 4096];
        let t = Instant::now();
        let mut sum = 0u64;
        for c in recs.chunks(buf.len()) {
            buf[..c.len()].copy_from_slice(c);
            sum = buf[..c.len()].iter().fold(sum, |a, r| a.wrapping_add(r.a));
        }
        assert_eq!(sum, want);
        line += &format!(", memcpy(4096) {:.2}", gbs(t.elapsed()));
        println!("{line}");
    }
}
