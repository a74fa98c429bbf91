//! The 100-record commit against the single-record commit, in one process
//! and one loop: 1 M records of 64 bytes, commits alternating between one
//! `set` and 100 `set`s on 100 random records (random pages), each followed
//! (with `RECMAP_PROBE=1`) by the probe benches/compare pairs with every
//! commit, a 64-byte `pwrite` + `fdatasync` of a separate file. Prints the
//! medians and their ratio (issue 10's target: at most 3x).
//!
//! ```text
//! RECMAP_BENCH_DIR=/var/tmp cargo bench --no-default-features --bench scattered_commits
//! RECMAP_BENCH_DIR=/dev/shm cargo bench --no-default-features --bench scattered_commits   # CPU only
//! RECMAP_PROBE=1 RECMAP_BENCH_DIR=/var/tmp cargo bench --no-default-features --bench scattered_commits
//! ```
//!
//! On a tmpfs the syncs cost nothing, so the figures are the CPU cost of a
//! commit. Results: docs/benchmarks.md.

use recmap::Options;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
#[cfg(windows)]
use std::os::windows::fs::FileExt;
use std::time::Instant;

/// `pwrite` on both platforms (Windows' `seek_write` moves the cursor,
/// which nothing here uses).
fn write_at(f: &std::fs::File, buf: &[u8], at: u64) {
    #[cfg(unix)]
    f.write_all_at(buf, at).unwrap();
    #[cfg(windows)]
    assert_eq!(f.seek_write(buf, at).unwrap(), buf.len());
}

recmap::record! {
    /// 64 bytes, 64 to a page.
    pub struct Rec { pub a: [u64; 8] }
}

const RECORDS: u64 = 1_000_000;
const ROUNDS: u64 = 4000;

fn median(v: &mut [u64]) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1e3
}

fn main() {
    let base = std::env::var_os("RECMAP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let probe_on = std::env::var_os("RECMAP_PROBE").is_some_and(|v| v == "1");
    let dir = tempfile::tempdir_in(&base).unwrap();
    let path = dir.path().join("scattered.rmap");
    let mut s = Options::new().create_new(true).open::<Rec>(&path).unwrap();
    s.extend((0..RECORDS).map(|i| Rec { a: [i; 8] })).unwrap();
    s.commit().unwrap();
    // A long-running writer has its pages mapped: touch each once.
    let mut sum = 0u64;
    for i in (0..RECORDS).step_by(64) {
        sum = sum.wrapping_add(s.get(i).unwrap().a[0]);
    }
    std::hint::black_box(sum);
    let probe = std::fs::File::create_new(dir.path().join("probe")).unwrap();
    write_at(&probe, &vec![0u8; 1 << 20], 0);
    probe.sync_all().unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % RECORDS
    };
    let (mut one, mut hundred) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let t = Instant::now();
        let k = if round % 2 == 0 { 1 } else { 100 };
        for _ in 0..k {
            s.set(next(), &Rec { a: [round; 8] }).unwrap();
        }
        s.commit().unwrap();
        let ns = t.elapsed().as_nanos() as u64;
        if k == 1 {
            one.push(ns)
        } else {
            hundred.push(ns)
        }
        if probe_on {
            let at = (round % 256) * 4096;
            write_at(&probe, &[round as u8; 64], at);
            probe.sync_data().unwrap();
        }
    }
    let (m1, m100) = (median(&mut one), median(&mut hundred));
    println!(
        "{}: {RECORDS} records, {} commits each{}: single-record commit p50 {m1:.1} us, \
         100-record commit p50 {m100:.1} us, ratio {:.2}",
        base.display(),
        ROUNDS / 2,
        if probe_on { ", a probe after each" } else { "" },
        m100 / m1
    );
}
