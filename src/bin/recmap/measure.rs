//! Measuring pieces shared by `recmap bench` and the comparison suite in
//! `benches/compare/` (which includes this file with `#[path]`), so both
//! draw the same random indices and summarise timings the same way.
//!
//! It owns, with no dependencies beyond std:
//!
//! * [`Xorshift64Star`] and [`random_indices`]: the seeded index sequence
//!   (xorshift64*, the generator `benches/random_access.rs` uses too);
//! * [`ns_per_op`], [`median`] and [`percentile`]: summaries of timings;
//! * [`DeviceWrites`]: bytes written to the block device holding a path,
//!   from its `/sys/dev/block/MAJ:MIN/stat` (Linux; `None` elsewhere or for
//!   filesystems without a block device, such as tmpfs).

use std::path::Path;
use std::time::Instant;

/// The default seed of the random index sequence.
pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// xorshift64* (Vigna): small, fast, good enough to pick indices. The seed
/// must not be 0.
#[derive(Clone, Debug)]
pub struct Xorshift64Star(u64);

impl Xorshift64Star {
    pub fn new(seed: u64) -> Self {
        Xorshift64Star(if seed == 0 { SEED } else { seed })
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`; modulo bias is negligible for the sizes used).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `count` indices in `0..n` from the sequence seeded with `seed`.
pub fn random_indices(count: u64, n: u64, seed: u64) -> Vec<u64> {
    let mut g = Xorshift64Star::new(seed);
    (0..count).map(|_| g.below(n)).collect()
}

/// Nanoseconds per operation since `start` for `ops` operations.
pub fn ns_per_op(start: Instant, ops: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

/// The median of `v` (sorts it); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    percentile(v, 50.0)
}

/// The `p`-th percentile (0–100, nearest rank) of `v` (sorts it); NaN when empty.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Bytes written to the block device that holds a path, from the kernel's
/// per-device counters (field 7 of `/sys/dev/block/MAJ:MIN/stat`: sectors
/// written, in 512-byte units). For a partition the partition's own counters
/// are read. The counters cover every writer of the device, not only this
/// process. (`recmap bench` does not use it; `benches/compare` does.)
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub struct DeviceWrites {
    /// The stat file read.
    pub stat: std::path::PathBuf,
}

#[allow(dead_code)]
impl DeviceWrites {
    /// The counter for the device holding `path`, if it has one.
    pub fn for_path(path: &Path) -> Option<DeviceWrites> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            let dev = std::fs::metadata(path).ok()?.dev();
            // glibc's gnu_dev_major / gnu_dev_minor.
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
            let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
            let stat = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
            let d = DeviceWrites { stat };
            d.bytes()?;
            Some(d)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            None
        }
    }

    /// Bytes read from the device since boot (sectors read, field 3).
    #[allow(dead_code)] // the comparison suite's cold mode; not `recmap bench`
    pub fn read_bytes(&self) -> Option<u64> {
        let s = std::fs::read_to_string(&self.stat).ok()?;
        let sectors: u64 = s.split_whitespace().nth(2)?.parse().ok()?;
        Some(sectors * 512)
    }

    /// Bytes written to the device since boot.
    pub fn bytes(&self) -> Option<u64> {
        let s = std::fs::read_to_string(&self.stat).ok()?;
        let sectors: u64 = s.split_whitespace().nth(6)?.parse().ok()?;
        Some(sectors * 512)
    }

    /// The device's name, e.g. `vda` (the stat file's directory).
    pub fn device_name(&self) -> String {
        std::fs::canonicalize(&self.stat)
            .ok()
            .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| self.stat.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(median(&mut v), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn indices_are_seeded_and_in_range() {
        let a = random_indices(1000, 77, 5);
        assert_eq!(a, random_indices(1000, 77, 5));
        assert!(a.iter().all(|&i| i < 77));
        assert_ne!(a, random_indices(1000, 77, 6));
    }
}
