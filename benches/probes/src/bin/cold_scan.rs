//! Cold sequential scans of one store file, paired in rotating order within
//! one process: the page cache is dropped (`advise(DontNeed)`, confirmed
//! with `cached_bytes`) before every pass, and each pass reports GB/s and
//! the device bytes read (`/sys/block/<dev>/stat`). Methods: `Store::iter`
//! under the default `Random` pattern (it asks for the next MiBs where they
//! are not cached), the same under `Sequential`, a `Reader` snapshot's
//! `read_range` into a 1 MiB buffer (`pread` for pages not cached), the
//! same through `Store::read_range`, and
//! `read()` of the whole
//! file with 8 KiB, 256 KiB and 1 MiB buffers (the kernel's read-ahead).
//!
//! `cargo run --release --bin cold_scan -- DIR [RECORDS] [DEVICE]`
//! (defaults: 16 Mi records of 64 bytes = 1 GiB, `vda`). Linux only.

use recmap::{AccessPattern, Advice, Options, Reader, Store};
use std::hint::black_box;
use std::io::Read;
use std::time::Instant;

recmap::record! { pub struct Rec { pub id: u64, pub a: [u64; 7] } }

fn device_read(dev: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/sys/block/{dev}/stat")).unwrap_or_default();
    s.split_whitespace()
        .nth(2)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 512
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().map_or(".", String::as_str));
    let n: u64 = args.get(1).map_or(16 << 20, |s| s.parse().unwrap());
    let dev = args.get(2).map_or("vda", String::as_str).to_string();
    let path = dir.join(format!("cold-scan-{n}.rmap"));
    if !path.exists() {
        let mut s = Options::new()
            .create_new(true)
            .initial_capacity(n)
            .open::<Rec>(&path)
            .unwrap();
        let batch: Vec<Rec> = (0..65536).map(|i| Rec { id: i, a: [i; 7] }).collect();
        let mut i = 0;
        while i < n {
            let k = (n - i).min(65536) as usize;
            s.extend_from_slice(&batch[..k]).unwrap();
            i += k as u64;
        }
        s.close().unwrap();
    }
    let mut store = Store::<Rec>::open_read_only(&path).unwrap();
    let n = store.len();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let methods = [
        "iter Random",
        "iter Sequential",
        "snapshot 1M",
        "store 1M",
        "read 8K",
        "read 256K",
        "read 1M",
    ];
    // PROBE_METHODS=a,b: only those (names as printed).
    let only: Option<Vec<String>> = std::env::var("PROBE_METHODS")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let methods: Vec<&str> = methods
        .into_iter()
        .filter(|m| only.as_ref().is_none_or(|o| o.iter().any(|x| x == m)))
        .collect();
    println!("{n} records, {bytes} bytes, cold before every pass");
    let rounds: usize = std::env::var("PROBE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for round in 0..rounds {
        for k in 0..methods.len() {
            let m = methods[(k + round) % methods.len()];
            store.advise(0..n, Advice::DontNeed);
            let left = store.cached_bytes(0..n).expect("mincore (Linux)");
            assert!(left * 100 <= bytes, "{left} bytes stayed cached");
            let before = device_read(&dev);
            let t = Instant::now();
            let mut sum = 0u64;
            match m {
                "iter Random" | "iter Sequential" => {
                    let p = if m == "iter Random" {
                        AccessPattern::Random
                    } else {
                        AccessPattern::Sequential
                    };
                    store.set_access(p);
                    for r in store.iter() {
                        sum = sum.wrapping_add(black_box(r).id);
                    }
                    store.set_access(AccessPattern::Random);
                }
                "store 1M" => {
                    let mut buf = vec![Rec { id: 0, a: [0; 7] }; 16384];
                    let mut i = 0;
                    while i < n {
                        let got = store.read_range(i, &mut buf).unwrap();
                        for r in &buf[..got] {
                            sum = sum.wrapping_add(r.id);
                        }
                        i += got as u64;
                    }
                }
                "snapshot 1M" => {
                    let mut r = Reader::<Rec>::open(&path).unwrap();
                    let snap = r.snapshot().unwrap();
                    let mut buf = vec![Rec { id: 0, a: [0; 7] }; 16384];
                    let mut i = 0;
                    while i < n {
                        let got = snap.read_range(i, &mut buf).unwrap();
                        for r in &buf[..got] {
                            sum = sum.wrapping_add(r.id);
                        }
                        i += got as u64;
                    }
                }
                _ => {
                    let size = match m {
                        "read 8K" => 8 << 10,
                        "read 256K" => 256 << 10,
                        _ => 1 << 20,
                    };
                    let mut f = std::fs::File::open(&path).unwrap();
                    let mut buf = vec![0u8; size];
                    loop {
                        let got = f.read(&mut buf).unwrap();
                        if got == 0 {
                            break;
                        }
                        for c in buf[..got].chunks_exact(64) {
                            sum = sum.wrapping_add(c[0] as u64);
                        }
                    }
                }
            }
            black_box(sum);
            let s = t.elapsed().as_secs_f64();
            println!(
                "round {round} {m:>16}: {:>5.2} GB/s, device read {:>5.0} MB",
                bytes as f64 / s / 1e9,
                (device_read(&dev) - before) as f64 / 1e6
            );
        }
    }
}
