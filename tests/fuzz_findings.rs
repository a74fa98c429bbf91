//! Regression tests for what fuzzing found (see `docs/fuzzing.md`).

use recmap::format::{slot, Header, MAX_GENERATION, SLOT_LEN, SLOT_OFFSETS};
use recmap::{RawStore, Schema};
mod common;
use common::file_at::FileAt;

/// A new store whose only header (slot 1) claims generation `g`.
fn store_at_generation(path: &std::path::Path, g: u64) {
    drop(RawStore::create(path, &Schema::parse("x:u64").unwrap()).unwrap());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; SLOT_LEN];
    f.read_exact_at(&mut b, SLOT_OFFSETS[1]).unwrap();
    b[slot::GENERATION..slot::GENERATION + 8].copy_from_slice(&g.to_le_bytes());
    let crc = crc32fast::hash(&b[..slot::CRC]);
    b[slot::CRC..slot::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    let crc = recmap::format::slot_crc_v2(&b);
    b[slot::V2_CRC..slot::V2_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&b, SLOT_OFFSETS[1]).unwrap();
}

#[test]
fn generations_past_the_limit_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.rmap");
    store_at_generation(&path, u64::MAX);
    assert!(
        RawStore::open(&path).is_err(),
        "a header at u64::MAX is invalid"
    );

    let path = dir.path().join("h.rmap");
    store_at_generation(&path, MAX_GENERATION - 1);
    let mut s = RawStore::open(&path).unwrap();
    s.push(&7u64.to_le_bytes()).unwrap();
    assert_eq!(s.commit().unwrap().generation, MAX_GENERATION);
    s.push(&8u64.to_le_bytes()).unwrap();
    let e = s.commit().unwrap_err();
    assert!(e.to_string().contains("generations"), "{e}");
    drop(s);
    let s = RawStore::open_read_only(&path).unwrap();
    assert_eq!(
        (s.len(), s.generation()),
        (1, MAX_GENERATION),
        "the last Ok commit is kept"
    );
}

#[test]
fn header_decode_of_a_short_slice_is_an_error_not_a_panic() {
    for n in 0..SLOT_LEN {
        assert!(Header::decode(&vec![0x89; n], 0).is_err());
    }
}
