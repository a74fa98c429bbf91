//! Measuring helpers shared by the criterion benches: a paired, interleaved
//! cross-check whose per-round ratios hold up on a noisy, shared machine.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Wraps a lookup into a timed loop over a block of indices (monomorphized,
/// so the lookup is inlined into the loop as in the criterion benchmarks).
pub fn timed(mut f: impl FnMut(u64) -> u64) -> impl FnMut(&[u64]) -> Duration {
    move |block| {
        let t = Instant::now();
        for &i in block {
            black_box(f(i));
        }
        t.elapsed()
    }
}

pub type Timed<'a> = (&'static str, &'a mut dyn FnMut(&[u64]) -> Duration);

/// A cross-check that is robust to a noisy, shared machine: run the systems
/// in rounds, each timing one block of lookups per system (a different block
/// of the index sequence for each, so no system finds another's records in
/// the CPU cache), rotating the order every round. Load that comes and goes
/// hits all systems of a round alike, so the per-round ratios to the first
/// system are steadier than ratios of separately measured criterion figures.
/// Printed to stderr: the median ns/op and the median per-round ratio.
pub fn interleaved(systems: &mut [Timed<'_>], indices: &[u64], rounds: usize) {
    const BLOCK: usize = 1 << 15;
    let k = systems.len();
    let blocks = indices.len() / BLOCK;
    assert!(blocks >= k, "fewer index blocks than systems");
    let mut ns = vec![Vec::with_capacity(rounds); k];
    let t0 = Instant::now();
    for round in 0..rounds {
        for slot in 0..k {
            let s = (round + slot) % k;
            let b = (round * k + slot) % blocks;
            let block = &indices[b * BLOCK..(b + 1) * BLOCK];
            let t = (systems[s].1)(block);
            ns[s].push(t.as_nanos() as f64 / BLOCK as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    };
    eprintln!(
        "interleaved cross-check: {rounds} rounds x {BLOCK} lookups per system, order rotated \
         each round ({:.1?}):",
        t0.elapsed()
    );
    eprintln!(
        "  {:<20} {:>12} {:>16}",
        "system", "median ns/op", "ratio to first"
    );
    for s in 0..k {
        let mut ratios: Vec<f64> = (0..rounds).map(|r| ns[s][r] / ns[0][r]).collect();
        let r = median(&mut ratios);
        let m = median(&mut ns[s].clone());
        eprintln!("  {:<20} {:>12.1} {:>16.2}", systems[s].0, m, r);
    }
}
