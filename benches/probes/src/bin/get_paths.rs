//! Warm random lookups of one 64-byte record field through four paths, in
//! rounds within one process (only the ratios of a round mean anything):
//! the writer's `Store::get`, `Reader::get_ref` (append-only store),
//! memmap2 indexing of a third read-only map (bytes, and a `cast_slice`),
//! each folded into a sum in an `#[inline(never)]` function.
//!
//! `cargo run --release --bin get_paths -- DIR` (1 Mi records, 64 MiB).

use recmap::{Options, Reader, Store};
use std::hint::black_box;
use std::time::Instant;

recmap::record! { pub struct Rec { pub id: u64, pub a: [u64; 7] } }

#[inline(never)]
fn sum_store(s: &Store<Rec>, idx: &[u64]) -> u64 {
    idx.iter().map(|&i| s.get(i).unwrap().id).sum()
}
#[inline(never)]
fn sum_reader(r: &Reader<Rec>, idx: &[u64]) -> u64 {
    idx.iter().map(|&i| r.get_ref(i).unwrap().unwrap().id).sum()
}
#[inline(never)]
fn sum_bytes(m: &[u8], off: usize, idx: &[u64]) -> u64 {
    idx.iter()
        .map(|&i| {
            let o = off + i as usize * 64;
            u64::from_le_bytes(m[o..o + 8].try_into().unwrap())
        })
        .sum()
}
#[inline(never)]
fn sum_cast(recs: &[Rec], idx: &[u64]) -> u64 {
    idx.iter().map(|&i| recs[i as usize].id).sum()
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let path = dir.join("get-paths.rmap");
    for p in [
        path.clone(),
        dir.join("get-paths.rmap-lock"),
        dir.join("get-paths.rmap-wal"),
    ] {
        let _ = std::fs::remove_file(p);
    }
    let n: u64 = 1 << 20;
    let mut s = Options::new()
        .create_new(true)
        .append_only(true)
        .initial_capacity(n)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..n).map(|i| Rec { id: i, a: [i; 7] })).unwrap();
    s.commit().unwrap();
    let r = Reader::<Rec>::open(&path).unwrap();
    let f = std::fs::File::open(&path).unwrap();
    // SAFETY: nothing writes the committed records of this append-only store.
    let m = unsafe { memmap2::Mmap::map(&f).unwrap() };
    let off = s.raw().info().data_offset as usize;
    let recs: &[Rec] = bytemuck::cast_slice(&m[off..off + n as usize * 64]);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let idx: Vec<u64> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect();
    // Fault every page of every map in.
    let want: u64 = idx.iter().sum();
    assert_eq!(sum_store(&s, &(0..n).collect::<Vec<_>>()), n * (n - 1) / 2);
    assert_eq!(sum_reader(&r, &(0..n).collect::<Vec<_>>()), n * (n - 1) / 2);
    assert_eq!(sum_cast(recs, &(0..n).collect::<Vec<_>>()), n * (n - 1) / 2);
    let time = |f: &dyn Fn() -> u64| {
        let t = Instant::now();
        assert_eq!(black_box(f()), want);
        t.elapsed().as_nanos() as f64 / idx.len() as f64
    };
    println!(
        "round  Store::get  get_ref  memmap2-bytes  memmap2-cast  get_ref/get  get/bytes  get/cast"
    );
    for round in 0..7 {
        let a = time(&|| sum_store(&s, &idx));
        let b = time(&|| sum_reader(&r, &idx));
        let c = time(&|| sum_bytes(&m, off, &idx));
        let d = time(&|| sum_cast(recs, &idx));
        println!(
            "{round:>5}  {a:>8.1} ns {b:>6.1} ns {c:>10.1} ns {d:>10.1} ns  {:>10.2}x {:>9.2}x {:>8.2}x",
            b / a,
            a / c,
            a / d
        );
    }
}
