//! Helpers shared by the fuzz targets and the seed generator
//! (`examples/gen_corpus.rs`): scratch paths, the record types of the seed
//! corpus, and `resign`, which makes mutated header slots pass their CRCs.

use recmap::format::{slot, SCHEMA_OFFSET, SLOT_LEN, SLOT_OFFSETS};
use recmap::{Bool, FixedStr};
use std::path::PathBuf;

/// Where the targets put their files: `$RECMAP_FUZZ_DIR`, else `/dev/shm`
/// when it exists (fsync and file creation are near free on tmpfs, which
/// matters for `ops_model`'s commits), else the system temp directory.
pub fn scratch_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RECMAP_FUZZ_DIR") {
        return PathBuf::from(d);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        return shm;
    }
    std::env::temp_dir()
}

/// One path per process and target, reused by every input.
pub fn scratch_path(target: &str) -> PathBuf {
    scratch_dir().join(format!("recmap-fuzz-{target}-{}.store", std::process::id()))
}

/// Removes a store file and any sidecar a writer may have left next to it
/// (`<path>-lock`, the coordination file of newer versions).
pub fn remove_store(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let mut lock = path.as_os_str().to_owned();
    lock.push("-lock");
    let _ = std::fs::remove_file(lock);
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Re-signs whatever a mutation left in the header page: for each slot that
/// carries the magic, sets `schema_crc` to the CRC of the schema block its
/// `schema_len` names (when the file holds it) and recomputes the slot CRC.
/// Without this, almost every mutation of a header or schema byte stops at
/// a checksum and the field validation behind it is never reached.
///
/// Returns false when nothing was re-signed (no slot with the magic).
pub fn resign(bytes: &mut [u8]) -> bool {
    let mut any = false;
    for &off in &SLOT_OFFSETS {
        let off = off as usize;
        if bytes.len() < off + SLOT_LEN || bytes[off..off + 8] != recmap::format::MAGIC {
            continue;
        }
        any = true;
        let schema_len = rd_u32(bytes, off + slot::SCHEMA_LEN) as usize;
        let at = SCHEMA_OFFSET as usize;
        if let Some(block) = bytes.get(at..at.saturating_add(schema_len)) {
            let crc = crc32fast::hash(block);
            bytes[off + slot::SCHEMA_CRC..off + slot::SCHEMA_CRC + 4]
                .copy_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&bytes[off..off + slot::CRC]);
        bytes[off + slot::CRC..off + slot::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    any
}

// ----- record types of the seed corpus (typed reads in `open_bytes`) -------

recmap::record! {
    /// 16 bytes: dense (256 per page).
    pub struct P16 { pub id: u64, pub x: f32, pub y: f32 }
}
recmap::record! {
    /// 24 bytes: 170 per page, 16 bytes of slack at each page end.
    pub struct R24 { pub id: u64, pub v: [f32; 3], pub flag: Bool, pub _pad: [u8; 3] }
}
recmap::record! {
    /// 12 bytes with a string: 341 per page.
    pub struct S12 { pub a: u32, pub b: u16, pub c: u8, pub d: Bool, pub name: FixedStr<4> }
}
recmap::record! {
    /// 1 byte: 4096 per page.
    pub struct B1 { pub flag: Bool }
}
recmap::record! {
    /// Larger than a page: each record takes a group of 2 pages.
    pub struct Big5000 { pub id: u64, pub blob: [u8; 4992] }
}
recmap::record! {
    /// Exactly one page.
    pub struct Page4096 { pub page: [u8; 4096] }
}

impl P16 {
    pub fn make(i: u64) -> Self {
        P16 {
            id: i,
            x: i as f32 * 0.5,
            y: -(i as f32),
        }
    }
}
impl R24 {
    pub fn make(i: u64) -> Self {
        R24 {
            id: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            v: [i as f32, 1.0, -2.5],
            flag: Bool((i % 2) as u8),
            _pad: [0; 3],
        }
    }
}
impl S12 {
    pub fn make(i: u64) -> Self {
        let names = ["", "a", "ab", "abcd", "é"];
        S12 {
            a: i as u32,
            b: (i * 7) as u16,
            c: (i * 13) as u8,
            d: Bool(i.is_multiple_of(3) as u8),
            name: FixedStr::new(names[(i % names.len() as u64) as usize]).unwrap(),
        }
    }
}
impl B1 {
    pub fn make(i: u64) -> Self {
        B1 {
            flag: Bool(i.is_multiple_of(5) as u8),
        }
    }
}
impl Big5000 {
    pub fn make(i: u64) -> Self {
        let mut blob = [0u8; 4992];
        for (k, b) in blob.iter_mut().enumerate() {
            *b = (k as u64 ^ i.wrapping_mul(31)) as u8;
        }
        Big5000 { id: i, blob }
    }
}
impl Page4096 {
    pub fn make(i: u64) -> Self {
        let mut page = [0u8; 4096];
        for (k, b) in page.iter_mut().enumerate() {
            *b = (k as u64).wrapping_add(i) as u8;
        }
        Page4096 { page }
    }
}

/// A schema with many long field names: its block spans two pages, so the
/// data region starts at 12288 instead of 8192.
pub fn wide_schema_spec() -> String {
    (0..60)
        .map(|k| format!("field_{k:02}_{}:u8", "x".repeat(50)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A raw-only schema with arrays, a string and a bool.
pub const MIXED_SPEC: &str = "t:i64,v:f64[3],name:str[7],ok:bool";

// ----- optional outcome counters -------------------------------------------

/// Counts named outcomes when `RECMAP_FUZZ_STATS` is set and prints them to
/// stderr at every power-of-two input count, to see what a target reaches
/// (for example how many inputs open as a store). Free when unset.
pub mod stats {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};

    fn enabled() -> bool {
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| std::env::var_os("RECMAP_FUZZ_STATS").is_some())
    }

    fn table() -> &'static Mutex<BTreeMap<&'static str, u64>> {
        static T: OnceLock<Mutex<BTreeMap<&'static str, u64>>> = OnceLock::new();
        T.get_or_init(Default::default)
    }

    /// Counts one `what`.
    pub fn hit(what: &'static str) {
        if enabled() {
            *table().lock().unwrap().entry(what).or_default() += 1;
        }
    }

    /// Counts one input; prints the table at 1, 2, 4, 8, ... inputs.
    pub fn input() {
        if !enabled() {
            return;
        }
        let mut t = table().lock().unwrap();
        let n = t.entry("inputs").or_default();
        *n += 1;
        if n.is_power_of_two() && *n >= 1024 {
            eprintln!("recmap-fuzz stats: {t:?}");
        }
    }
}
