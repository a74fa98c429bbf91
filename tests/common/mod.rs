//! Helpers shared by the integration tests: record types of three packing
//! shapes, a bitwise CRC32 (so tests can re-sign edited header slots without
//! depending on the crate's CRC), raw header-slot access, a small
//! xorshift RNG, and the lock that runs a binary's tests one at a time.
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

pub mod file_at;
pub mod spawn;

use recmap::format::{slot, Header, SlotError, SLOT_LEN, SLOT_OFFSETS};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

recmap::record! {
    /// 16 bytes: 256 per page, no padding (dense packing).
    pub struct R16 { pub id: u64, pub val: u64 }
}

recmap::record! {
    /// 24 bytes: 170 per page, 16 bytes of padding at the end of every page.
    pub struct R24 { pub id: u64, pub val: u64, pub a: u32, pub b: u32 }
}

recmap::record! {
    /// 5000 bytes: larger than a page, so each record takes two whole pages.
    pub struct Big { pub id: u64, pub payload: [u8; 4992] }
}

/// A 64-bit mix (splitmix64 finaliser) used to derive record contents.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Record types the tests build from a seed.
pub trait Make: recmap::Record + PartialEq + std::fmt::Debug {
    fn make(seed: u64) -> Self;
}

impl Make for R16 {
    fn make(seed: u64) -> Self {
        R16 {
            id: seed,
            val: mix(seed),
        }
    }
}

impl Make for R24 {
    fn make(seed: u64) -> Self {
        let h = mix(seed);
        R24 {
            id: seed,
            val: h,
            a: (h >> 7) as u32,
            b: !(seed as u32),
        }
    }
}

impl Make for Big {
    fn make(seed: u64) -> Self {
        let mut payload = [0u8; 4992];
        let mut h = mix(seed);
        for (i, chunk) in payload.chunks_mut(8).enumerate() {
            if i % 64 == 0 {
                h = mix(h);
            }
            chunk.copy_from_slice(&h.wrapping_add(i as u64).to_le_bytes()[..chunk.len()]);
        }
        Big { id: seed, payload }
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Reads `len` bytes at `offset` of the file at `path`.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = OpenOptions::new().read(true).open(path).unwrap();
    let mut b = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b
}

/// Overwrites bytes at `offset` of the file at `path`.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// XORs `mask` into the byte at `offset`.
pub fn flip_byte(path: &Path, offset: u64, mask: u8) {
    let mut b = read_at(path, offset, 1);
    b[0] ^= mask;
    write_at(path, offset, &b);
}

/// The raw bytes of header slot `i`.
pub fn read_slot(path: &Path, i: usize) -> [u8; SLOT_LEN] {
    read_at(path, SLOT_OFFSETS[i], SLOT_LEN).try_into().unwrap()
}

/// Writes header slot `i`.
pub fn write_slot(path: &Path, i: usize, b: &[u8; SLOT_LEN]) {
    write_at(path, SLOT_OFFSETS[i], b);
}

/// Decodes header slot `i` with the crate's decoder (with the group list
/// that follows a checked commit's slot).
pub fn decode_slot(path: &Path, i: usize) -> Result<Header, SlotError> {
    Header::decode(&read_at(path, SLOT_OFFSETS[i], 2048), i)
}

/// Recomputes a slot's CRC (bytes `0..124`, stored little-endian at 124).
pub fn resign(b: &mut [u8; SLOT_LEN]) {
    let crc = crc32(&b[..slot::CRC]);
    b[slot::CRC..slot::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// xorshift64* — a tiny deterministic RNG (no dependencies).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A seed from the environment variable `var`, else from the clock.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{var}={v:?} is not a u64"))
        }
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed),
    }
}

/// Recomputes both CRCs of a version-2 slot: the version-1-compatible one
/// (bytes `0..124` at 124) and the slot CRC (`format::slot_crc_v2`, at 252). Edits
/// of bytes `128..252` (`header_seq`, `store_id`) need the second.
pub fn resign_v2(b: &mut [u8; SLOT_LEN]) {
    resign(b);
    let crc = recmap::format::slot_crc_v2(&b[..]);
    b[slot::V2_CRC..slot::V2_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The log file of the store at `path` (`<path>-wal`).
pub fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

/// The valid header slot with the highest `header_seq`: `(slot, header)`.
pub fn newest_slot(path: &Path) -> (usize, Header) {
    let slots = [decode_slot(path, 0), decode_slot(path, 1)];
    match (&slots[0], &slots[1]) {
        (Ok(a), Ok(b)) if a.header_seq > b.header_seq => (0, *a),
        (Ok(_), Ok(b)) => (1, *b),
        (Ok(a), Err(_)) => (0, *a),
        (Err(_), Ok(b)) => (1, *b),
        (Err(a), Err(b)) => panic!("no valid slot: {a}; {b}"),
    }
}

/// True if `status` is that of a child this process killed with
/// `Child::kill`: `SIGKILL` on Unix; on Windows `TerminateProcess` with
/// exit code 1 (what std passes), which a process that exits by itself
/// could also return, so tests there also rely on their children never
/// exiting with 1 (a panic exits with 101).
pub fn killed(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(libc::SIGKILL)
    }
    #[cfg(windows)]
    {
        status.code() == Some(1)
    }
}

/// Holds the lock that makes a test binary's tests run one at a time (each
/// binary that calls it says why). A test that panicked while holding it
/// does not poison the rest.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
