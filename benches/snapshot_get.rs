//! Random gets through a snapshot against `Store::get`, and what a copy of
//! a 64-byte record costs by how it is loaded: 1 M records of 64 bytes,
//! cached; 1 M random indices per pass; every variant's pass timed
//! alternately with the others (ABBA), 30 rounds; prints each one's median
//! ns per get and the median of its per-round ratios to `Store::get`.
//!
//! ```text
//! RECMAP_BENCH_DIR=/var/tmp cargo bench --no-default-features --bench snapshot_get
//! ```
//!
//! The variants after the two API rows read the same mapping through raw
//! pointers, each folding two fields of every record into a checked sum:
//! a plain reference (what `Store::get` does), the four 16-byte loads
//! `Snapshot::get`'s copy makes (with and without its one check of a
//! word), eight 8-byte loads, and (where the processor has AVX) two 32-byte
//! loads. A random-get loop is bounded by the loads it keeps in flight, so
//! the copy's load count shows directly. Results: docs/benchmarks.md.

use recmap::{Options, Reader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

recmap::record! {
    /// 64 bytes, 64 to a page.
    pub struct Rec { pub a: u64, pub b: [u64; 6], pub h: u64 }
}

const RECORDS: u64 = 1_000_000;
const LOOKUPS: usize = 1_000_000;

#[cfg(target_arch = "x86_64")]
mod loads {
    use super::Rec;
    use std::arch::x86_64::{__m128i, _mm_storeu_si128};

    /// The record of four 16-byte registers, in order.
    #[inline(always)]
    fn join(a: __m128i, b: __m128i, c: __m128i, d: __m128i) -> Rec {
        let mut v = std::mem::MaybeUninit::<Rec>::uninit();
        let q = v.as_mut_ptr().cast::<__m128i>();
        // SAFETY: `v` is 64 bytes (four unaligned 16-byte stores fill it),
        // and every bit pattern is a `Rec`.
        unsafe {
            _mm_storeu_si128(q, a);
            _mm_storeu_si128(q.add(1), b);
            _mm_storeu_si128(q.add(2), c);
            _mm_storeu_si128(q.add(3), d);
            v.assume_init()
        }
    }

    /// Four 16-byte loads, as `Snapshot::get`'s copy.
    #[inline(always)]
    pub unsafe fn sse4(p: *const u8) -> Rec {
        let (a, b, c, d): (__m128i, __m128i, __m128i, __m128i);
        unsafe {
            std::arch::asm!(
                "movdqu {a}, [{p}]", "movdqu {b}, [{p} + 16]",
                "movdqu {c}, [{p} + 32]", "movdqu {d}, [{p} + 48]",
                p = in(reg) p, a = out(xmm_reg) a, b = out(xmm_reg) b,
                c = out(xmm_reg) c, d = out(xmm_reg) d,
                options(nostack, readonly, preserves_flags),
            );
            join(a, b, c, d)
        }
    }

    /// Eight 8-byte loads.
    #[inline(always)]
    pub unsafe fn gpr8(p: *const u8) -> Rec {
        let (a, b, c, d, e, f, g, h): (u64, u64, u64, u64, u64, u64, u64, u64);
        unsafe {
            std::arch::asm!(
                "mov {a}, [{p}]", "mov {b}, [{p} + 8]", "mov {c}, [{p} + 16]",
                "mov {d}, [{p} + 24]", "mov {e}, [{p} + 32]", "mov {f}, [{p} + 40]",
                "mov {g}, [{p} + 48]", "mov {h}, [{p} + 56]",
                p = in(reg) p, a = out(reg) a, b = out(reg) b, c = out(reg) c,
                d = out(reg) d, e = out(reg) e, f = out(reg) f, g = out(reg) g,
                h = out(reg) h, options(nostack, readonly, preserves_flags),
            );
        }
        bytemuck::cast([a, b, c, d, e, f, g, h])
    }

    /// Two 32-byte loads, the halves moved to 16-byte registers with their
    /// upper bits cleared (only run where AVX was detected).
    #[inline(always)]
    pub unsafe fn avx2(p: *const u8) -> Rec {
        let (a, b, c, d): (__m128i, __m128i, __m128i, __m128i);
        unsafe {
            std::arch::asm!(
                "vmovdqu {a:y}, [{p}]", "vmovdqu {c:y}, [{p} + 32]",
                "vextractf128 {b}, {a:y}, 1", "vextractf128 {d}, {c:y}, 1",
                "vmovdqa {a}, {a}", "vmovdqa {c}, {c}",
                p = in(reg) p, a = out(xmm_reg) a, b = out(xmm_reg) b,
                c = out(xmm_reg) c, d = out(xmm_reg) d,
                options(nostack, readonly, preserves_flags),
            );
            join(a, b, c, d)
        }
    }
}

#[cold]
#[inline(never)]
fn cold(i: u64) -> u64 {
    std::hint::black_box(i)
}

/// A pass of `load` over `idx`, the record's check word compared after
/// each copy when `check` is given.
#[inline(never)]
fn raw_pass(
    base: *const u8,
    n: u64,
    idx: &[u64],
    check: Option<&AtomicU64>,
    load: impl Fn(*const u8) -> Rec,
) -> u64 {
    let mut sum = 0u64;
    for &i in idx {
        if i >= n {
            sum = sum.wrapping_add(cold(i));
            continue;
        }
        let r = load(base.wrapping_add(i as usize * 64));
        if let Some(w) = check {
            if w.load(Ordering::Relaxed) != 4 {
                sum = sum.wrapping_add(cold(i));
            }
        }
        sum = sum.wrapping_add(r.a.wrapping_add(r.h));
    }
    sum
}

#[inline(never)]
fn store_pass(s: &recmap::Store<Rec>, idx: &[u64]) -> u64 {
    let mut sum = 0u64;
    for &i in idx {
        let r = s.get(i).unwrap();
        sum = sum.wrapping_add(r.a.wrapping_add(r.h));
    }
    sum
}

#[inline(never)]
fn snapshot_pass(s: &recmap::Snapshot<'_, Rec>, idx: &[u64]) -> recmap::Result<u64> {
    let mut sum = 0u64;
    for &i in idx {
        let r = s.get(i)?.expect("below len");
        sum = sum.wrapping_add(r.a.wrapping_add(r.h));
    }
    Ok(sum)
}

fn main() {
    let base_dir = std::env::var_os("RECMAP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base_dir).unwrap();
    let path = dir.path().join("get.rmap");
    let mut s = Options::new()
        .create_new(true)
        .initial_capacity(RECORDS)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..RECORDS).map(|i| Rec {
        a: i,
        b: [i; 6],
        h: 3 * i,
    }))
    .unwrap();
    s.commit().unwrap();
    let mut reader = Reader::<Rec>::open(&path).unwrap();
    let base = s.get(0).unwrap() as *const Rec as *const u8;
    let word = Box::new(AtomicU64::new(4));
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let idx: Vec<u64> = (0..LOOKUPS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % RECORDS
        })
        .collect();
    let want = idx.iter().fold(0u64, |a, &i| a.wrapping_add(4 * i));
    #[cfg(target_arch = "x86_64")]
    let avx = std::arch::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    let avx = false;
    let mut names = vec!["Store::get", "Snapshot::get", "reference"];
    if cfg!(target_arch = "x86_64") {
        names.extend(["4 x 16 B", "4 x 16 B + check", "8 x 8 B + check"]);
        if avx {
            names.push("2 x 32 B + check");
        }
    }
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 0..31 {
        let snap = reader.snapshot().unwrap();
        for k in 0..names.len() {
            let v = if round % 2 == 0 {
                k
            } else {
                names.len() - 1 - k
            };
            let t = Instant::now();
            let sum = match v {
                0 => store_pass(&s, &idx),
                1 => snapshot_pass(&snap, &idx).unwrap(),
                // SAFETY (all raw variants): `base` is the store's mapping of
                // RECORDS 64-byte records (64 to a page, no header between),
                // alive and unchanged (nothing writes) for the whole loop.
                2 => raw_pass(base, RECORDS, &idx, None, |p| unsafe { *(p as *const Rec) }),
                #[cfg(target_arch = "x86_64")]
                3 => raw_pass(base, RECORDS, &idx, None, |p| unsafe { loads::sse4(p) }),
                #[cfg(target_arch = "x86_64")]
                4 => raw_pass(base, RECORDS, &idx, Some(&word), |p| unsafe {
                    loads::sse4(p)
                }),
                #[cfg(target_arch = "x86_64")]
                5 => raw_pass(base, RECORDS, &idx, Some(&word), |p| unsafe {
                    loads::gpr8(p)
                }),
                // Only listed where AVX was detected.
                #[cfg(target_arch = "x86_64")]
                6 => raw_pass(base, RECORDS, &idx, Some(&word), |p| unsafe {
                    loads::avx2(p)
                }),
                _ => unreachable!(),
            };
            let t = t.elapsed().as_nanos() as f64 / LOOKUPS as f64;
            assert_eq!(sum, want, "{}", names[v]);
            if round > 0 {
                ns[v].push(t);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (k, name) in names.iter().enumerate() {
        let mut ratios: Vec<f64> = ns[k].iter().zip(&ns[0]).map(|(a, b)| a / b).collect();
        let r = median(&mut ratios);
        println!(
            "{name:>18}: {:5.1} ns/get, {r:.2}x Store::get",
            median(&mut ns[k].clone())
        );
    }
}
