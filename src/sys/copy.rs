//! Racy copies and seqlock loads: how readers copy bytes another process
//! may be writing without a data race, and the counter loads that order
//! around those copies.
//!
//! Invariant: every read of shared bytes here has the semantics of relaxed
//! atomic loads (per byte for copies), and a counter load is ordered after
//! every copy made before it and before every copy made after it; callers
//! validate copies with the counters (the seqlock read side).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Copies `n` bytes from `src` to `dst` with the semantics of per-byte
/// relaxed atomic loads (Rust RFC 3301, `AtomicPerByte`): not a data race
/// even if another process writes the source meanwhile; the copy may mix old
/// and new bytes.
///
/// On x86_64 the bulk is read 16 bytes per instruction in inline assembly;
/// elsewhere with word-sized relaxed atomic loads. The width matters for
/// random lookups: each load of a missing cache line holds a load-buffer slot
/// until the line arrives, so 8 word loads per 64-byte record let fewer
/// lookups overlap than 4 wide ones (docs/benchmarks.md, "Readers beside a
/// writer").
///
/// # Safety
///
/// `src..src + n` must be inside one live mapping (or allocation) for the
/// whole call, and `dst..dst + n` must be valid for writes and not overlap
/// the source.
#[inline(always)]
pub(super) unsafe fn racy_copy(src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    let done = {
        use std::arch::x86_64::{__m128i, _mm_storeu_si128};
        // Unaligned 16-byte loads in assembly, four per block of 64 bytes
        // (one address register for the block keeps the loop short). Inline
        // assembly is outside Rust's data-race rules as long as its effect is
        // one Rust code could have: reading each byte once with a relaxed
        // atomic load, which is what `movdqu` does (no promise across bytes
        // is needed; callers validate).
        let blocks = n / 64;
        for k in 0..blocks {
            let (a, b, c, d): (__m128i, __m128i, __m128i, __m128i);
            // SAFETY: `src + 64k .. + 64` is inside the source range
            // (k < n / 64), live per the contract; the asm only reads those
            // bytes and writes its output registers.
            unsafe {
                std::arch::asm!(
                    "movdqu {a}, [{p}]",
                    "movdqu {b}, [{p} + 16]",
                    "movdqu {c}, [{p} + 32]",
                    "movdqu {d}, [{p} + 48]",
                    p = in(reg) src.add(k * 64),
                    a = out(xmm_reg) a,
                    b = out(xmm_reg) b,
                    c = out(xmm_reg) c,
                    d = out(xmm_reg) d,
                    options(nostack, readonly, preserves_flags),
                );
            }
            // SAFETY: `dst + 64k .. + 64` is inside the destination
            // (contract); unaligned stores accept any address.
            unsafe {
                let q = dst.add(k * 64).cast::<__m128i>();
                _mm_storeu_si128(q, a);
                _mm_storeu_si128(q.add(1), b);
                _mm_storeu_si128(q.add(2), c);
                _mm_storeu_si128(q.add(3), d);
            }
        }
        let chunks = (n - blocks * 64) / 16;
        for k in 0..chunks {
            let at = blocks * 64 + k * 16;
            let v: __m128i;
            // SAFETY: as above, for the 16 bytes at `at` (< n).
            unsafe {
                std::arch::asm!(
                    "movdqu {v}, [{p}]",
                    p = in(reg) src.add(at),
                    v = out(xmm_reg) v,
                    options(nostack, readonly, preserves_flags),
                );
            }
            // SAFETY: as above.
            unsafe { _mm_storeu_si128(dst.add(at).cast(), v) };
        }
        blocks * 64 + chunks * 16
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = {
        use std::sync::atomic::AtomicUsize;
        const W: usize = std::mem::size_of::<usize>();
        if (src as usize).is_multiple_of(W) {
            let words = n / W;
            for k in 0..words {
                // A relaxed load of at most pointer width is a plain load on
                // every target (fine on read-only memory) and is not a data
                // race even if another process writes these bytes.
                let word = src.wrapping_add(k * W) as *const AtomicUsize;
                // SAFETY: inside the source range (contract) and aligned.
                let v = unsafe { (*word).load(Ordering::Relaxed) };
                // SAFETY: inside the destination (contract), unaligned write.
                unsafe { dst.add(k * W).cast::<usize>().write_unaligned(v) };
            }
            words * W
        } else {
            0
        }
    };
    for k in done..n {
        // SAFETY: inside both ranges (contract); one byte needs no alignment.
        unsafe { *dst.add(k) = (*(src.add(k) as *const AtomicU8)).load(Ordering::Relaxed) };
    }
}

/// Seqlock read side, first and last step: loads `word` with acquire
/// ordering (no later load is performed before it).
///
/// On x86_64 this is one `mov` in inline assembly: every x86 load has acquire
/// semantics and loads are not reordered with older loads (TSO), so the
/// sequence "load the counter, copy with `racy_copy`, load the counter again"
/// needs no fence. Written as assembly rather than an `Acquire` atomic load
/// because the compiler must then keep every later load, even of the
/// reader's own fields, below it, which lengthens a lookup loop; the
/// assembly orders itself against the copy's assembly (both have side
/// effects) and lets the compiler hoist the rest. Elsewhere: an `Acquire`
/// load, and `seq_recheck` adds the fence.
#[inline(always)]
pub(crate) fn seq_begin(word: &AtomicU64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let v: u64;
        // SAFETY: `word` is a valid, aligned 8-byte atomic for the call; an
        // aligned 8-byte `mov` is an atomic load with acquire semantics on
        // x86_64, the same operation as `load(Ordering::Acquire)`.
        unsafe {
            std::arch::asm!(
                "mov {v}, qword ptr [{p}]",
                p = in(reg) word.as_ptr(),
                v = out(reg) v,
                options(nostack, readonly, preserves_flags),
            );
        }
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        word.load(Ordering::Acquire)
    }
}

/// Seqlock read side, last step: true if `word` still holds `begin`, i.e.
/// no write to the protected bytes overlapped the copy made since
/// `seq_begin`. The copy's loads are ordered before this load (x86_64: TSO;
/// elsewhere: an acquire fence).
#[inline(always)]
pub(crate) fn seq_recheck(word: &AtomicU64, begin: u64) -> bool {
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(Ordering::Acquire);
    seq_begin(word) == begin
}

/// A word no process ever writes, holding 0: what validates copies of bytes
/// that cannot change (an append-only store's committed records, a
/// reader's own overlay image) through the same `seq_recheck` as the rest.
pub(crate) static NEVER_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Copies of at least this many bytes go through `racy_copy_bulk`'s string
/// move (below it, its start-up costs more than the loads it saves).
#[cfg(target_arch = "x86_64")]
const BULK_MIN: usize = 4096;

/// `racy_copy` for large copies: on x86_64 one `rep movsb` (which, for
/// large moves, fills whole destination lines without first reading them
/// from the cache, where `racy_copy`'s stores must) followed by an
/// `lfence`, so that a counter load after it is performed only after every
/// load of the move (the string move's own accesses are not promised to be
/// ordered among themselves, which a copy validated as a whole does not
/// need).
///
/// # Safety
///
/// As for `racy_copy`.
#[inline]
pub(super) unsafe fn racy_copy_bulk(src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if n >= BULK_MIN {
        // The string move reads each source byte once (as relaxed per-byte
        // loads would). The direction flag is clear on entry to inline
        // assembly (Rust's asm contract), so it moves upwards; neither
        // instruction changes the flags.
        // SAFETY: per the contract both ranges are valid and disjoint; the
        // move writes only `dst..dst + n`.
        unsafe {
            std::arch::asm!(
                "rep movsb",
                "lfence",
                inout("rcx") n => _,
                inout("rsi") src => _,
                inout("rdi") dst => _,
                options(nostack, preserves_flags),
            );
        }
        return;
    }
    // SAFETY: the contract is `racy_copy`'s.
    unsafe { racy_copy(src, dst, n) }
}

#[cfg(test)]
mod tests {
    /// Both copies reproduce their source exactly at every length around
    /// their block sizes and the bulk threshold, at odd alignments.
    #[test]
    fn racy_copies_copy_exactly() {
        let src: Vec<u8> = (0..(1usize << 20) + 200)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        for n in [
            0,
            1,
            15,
            16,
            17,
            63,
            64,
            65,
            127,
            4095,
            4096,
            4097,
            65_537,
            1 << 20,
        ] {
            for skew in [0usize, 1, 13] {
                let s = &src[skew..skew + n];
                let mut a = vec![0u8; n + 1];
                let mut b = vec![0u8; n + 1];
                // SAFETY: `s` is a live slice of `n` bytes; `a` and `b` are
                // distinct allocations of at least `n + 1` bytes.
                unsafe {
                    super::racy_copy(s.as_ptr(), a[1..].as_mut_ptr(), n);
                    super::racy_copy_bulk(s.as_ptr(), b[1..].as_mut_ptr(), n);
                }
                assert_eq!(&a[1..], s, "racy_copy, {n} bytes at +{skew}");
                assert_eq!(&b[1..], s, "racy_copy_bulk, {n} bytes at +{skew}");
                assert_eq!(
                    (a[0], b[0]),
                    (0, 0),
                    "nothing written before the destination"
                );
            }
        }
    }
}
