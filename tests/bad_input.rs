//! Bad input: every malformed, foreign, truncated or corrupted file, and every
//! misuse of the API, must give the right typed `recmap::Error` variant (with
//! the right numbers) and never a panic.
//!
//! Covers: empty, short and random files; a store cut below its header page
//! or below the length its header needs (`Truncated`); wrong magic; a future
//! format version and a foreign byte order (slot re-signed with a local
//! CRC32); the wrong record type (`SchemaMismatch`, whose message shows both
//! layouts); each header slot corrupted in turn (the store opens from the
//! other slot, with whatever of the log still follows that slot, and the next
//! checkpoint rewrites the damaged one), both corrupted (`NoValidHeader`); a
//! corrupt or malformed schema block; every single-bit flip of either
//! version-2 header slot (all 256 bytes); hostile but correctly signed header
//! fields; the log (`<store>-wal`): a symlink, FIFO or directory in its place
//! (`BadCoordination`, never a hang), garbage, torn, foreign and stale frames
//! (ignored: nothing replayed), and correctly signed frames that break a
//! content rule (`CorruptLog`); and `ReadOnly`, `IndexOutOfBounds`,
//! `AlreadyExists`, `NotFound` and `InvalidOption` from API misuse.

mod common;

use common::*;
use recmap::format::wal::{frame, CommitWriter, FrameHeader, FRAME_HEADER_LEN};
use recmap::format::{slot, Header, Layout, SlotError, FORMAT_VERSION, SCHEMA_OFFSET, SLOT_LEN};
use recmap::{Error, Options, RawStore, Record, Store};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

const CHUNK: u64 = 64 << 10;

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.rmap");
    (dir, path)
}

fn create_r24(path: &Path) -> Store<R24> {
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open::<R24>(path)
        .unwrap()
}

/// A store with `n` committed `R24` records and one commit after creation.
fn store_with(path: &Path, n: u64) {
    let mut s = create_r24(path);
    s.extend((0..n).map(R24::make)).unwrap();
    s.commit().unwrap();
}

/// Both ways to open, writer and read-only: both must fail the same way.
fn open_both(path: &Path) -> [Result<Store<R24>, Error>; 2] {
    [Store::<R24>::open(path), Store::<R24>::open_read_only(path)]
}

fn assert_records(s: &Store<R24>, n: u64) {
    assert_eq!(s.len(), n);
    for i in 0..n {
        assert_eq!(*s.get(i).unwrap(), R24::make(i), "record {i}");
    }
    assert!(s.get(n).is_none());
}

/// Records of `two_headers`' states: after its first commit, its second
/// commit, and its third (the one left in the log).
const OLDER: u64 = 1000;
const NEWER: u64 = OLDER + 170 * 200;
const NEWEST: u64 = NEWER + 1;

/// The generation and record count of a valid slot.
fn gen_len(path: &Path, i: usize) -> (u64, u64) {
    let h = decode_slot(path, i).unwrap_or_else(|e| panic!("slot {i} invalid: {e}"));
    (h.generation, h.record_count)
}

/// A store whose two slots both hold valid headers, each of which opens to
/// a different state; returns `(older slot, (generation, len) opened from
/// it, newer slot, (generation, len) opened from it)`.
///
/// Commit 2 (1000 records) is checkpointed (`header_seq` s, the older
/// slot), then commit 3 (`NEWER` records, appended in place) is
/// checkpointed (s + 1, the newer slot), then commit 4 (one more record) is
/// made durable in the log and the writer "crashes" before checkpointing it.
/// Commit 4's frames name s + 1 and were written over commit 3's (which
/// named s) at the start of the log, so:
/// - from the newer slot the store opens at commit 4 (header + log);
/// - from the older slot it opens at exactly commit 2: nothing in the log
///   continues that header's chain any more.
///
/// Commit 2 ends in a partly filled page (1000 = 5 * 170 + 150 records), so
/// falling back to it also checks that the later commits did not overwrite
/// anything its checksums cover. The capacity is reserved up front, so no
/// growth publishes a header in between.
fn two_headers(path: &Path) -> (usize, (u64, u64), usize, (u64, u64)) {
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .initial_capacity(NEWEST)
        .open::<R24>(path)
        .unwrap();
    s.extend((0..OLDER).map(R24::make)).unwrap();
    s.commit().unwrap();
    s.checkpoint().unwrap();
    s.extend((OLDER..NEWER).map(R24::make)).unwrap();
    s.commit().unwrap();
    s.checkpoint().unwrap();
    s.push(&R24::make(NEWER)).unwrap();
    assert_eq!(s.commit().unwrap().generation, 4);
    assert_eq!(s.raw().log_commits(), 1);
    s.simulate_crash();
    let (newer, nh) = newest_slot(path);
    let older = 1 - newer;
    let oh = decode_slot(path, older).unwrap();
    assert_eq!(nh.header_seq, oh.header_seq + 1);
    assert_eq!(nh.slot_index(), newer);
    assert_eq!(gen_len(path, older), (2, OLDER));
    assert_eq!(gen_len(path, newer), (3, NEWER));
    (older, (2, OLDER), newer, (4, NEWEST))
}

/// Runs `f`, turning a panic into a test failure that names `what`.
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: panicked: {msg}");
        }
    }
}

#[test]
fn local_crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn empty_file_is_not_recmap() {
    let (_d, path) = tmp();
    std::fs::File::create(&path).unwrap();
    for r in open_both(&path) {
        assert!(matches!(r, Err(Error::NotRecmap { .. })), "{r:?}");
    }
    assert!(matches!(
        RawStore::open(&path),
        Err(Error::NotRecmap { .. })
    ));
    // Still empty: a failed open never writes.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn random_bytes_are_rejected() {
    let (_d, path) = tmp();
    let mut rng = Rng::new(0xbad1);
    for &size in &[1usize, 7, 100, 2047, 4095, 4096, 4097, 8192, 65536, 200_000] {
        let mut bytes = vec![0u8; size];
        rng.fill(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        for r in open_both(&path) {
            // No recmap magic anywhere: "not a recmap file", however long.
            assert!(
                matches!(r, Err(Error::NotRecmap { .. })),
                "size {size}: {r:?}"
            );
        }
        // With the magic planted in both slots but garbage around it, it is a
        // damaged recmap file instead.
        if size >= 4096 {
            for off in recmap::format::SLOT_OFFSETS {
                bytes[off as usize..off as usize + 8].copy_from_slice(&recmap::format::MAGIC);
            }
            std::fs::write(&path, &bytes).unwrap();
            for r in open_both(&path) {
                match r {
                    Err(Error::NoValidHeader { slot0, slot1, .. }) => {
                        assert!(
                            matches!(slot0, SlotError::ChecksumMismatch { .. }),
                            "{slot0}"
                        );
                        assert!(
                            matches!(slot1, SlotError::ChecksumMismatch { .. }),
                            "{slot1}"
                        );
                    }
                    r => panic!("size {size} with magic: {r:?}"),
                }
            }
        }
    }
}

#[test]
fn all_zero_files_are_not_recmap() {
    let (_d, path) = tmp();
    for size in [4096u64, 1 << 20] {
        std::fs::File::create(&path).unwrap().set_len(size).unwrap();
        for r in open_both(&path) {
            assert!(matches!(r, Err(Error::NotRecmap { .. })), "{size}: {r:?}");
        }
    }
}

#[test]
fn store_cut_below_the_header_page_is_truncated_or_not_recmap() {
    let (_d, path) = tmp();
    store_with(&path, 10);
    // With the magic still there it is a truncated recmap file; without it
    // (fewer than 8 bytes) nothing says it was ever ours.
    for len in [4095u64, 2048, 128, 8, 7, 1] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        for r in open_both(&path) {
            match r {
                Err(Error::Truncated { actual, .. }) if len >= 8 => assert_eq!(actual, len),
                Err(Error::NotRecmap { reason, .. }) if len < 8 => {
                    assert!(reason.contains(&len.to_string()), "{reason}")
                }
                r => panic!("len {len}: {r:?}"),
            }
        }
    }
}

#[test]
fn truncated_data_reports_expected_and_actual_length() {
    let (_d, path) = tmp();
    store_with(&path, 3000); // past the first chunk: the file has grown
    let gens = [0, 1].map(|i| decode_slot(&path, i).map_or(0, |h| h.generation));
    let b = read_slot(&path, if gens[0] > gens[1] { 0 } else { 1 });
    let needed = get_u64(&b, slot::TABLE_OFFSET) + get_u64(&b, slot::TABLE_LEN);
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_len >= needed && file_len > CHUNK,
        "file {file_len}, header needs {needed}"
    );
    let set_len = |len: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap()
    };
    let check = |actual: u64| {
        for r in open_both(&path) {
            match r {
                Err(Error::Truncated {
                    expected,
                    actual: got,
                    ..
                }) => {
                    assert_eq!((expected, got), (needed, actual));
                }
                r => panic!("cut to {actual}: {r:?}"),
            }
        }
    };
    // One byte short: the last byte is in the unused tail of the checksum
    // table (zero), so restoring the length restores the file exactly.
    set_len(needed - 1);
    check(needed - 1);
    set_len(needed);
    let s = Store::<R24>::open_read_only(&path).unwrap();
    assert_records(&s, 3000);
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    for actual in [needed - 4096, needed / 2, 8192, 4096] {
        set_len(actual);
        check(actual);
    }
}

#[test]
fn wrong_magic_in_both_slots_is_not_recmap() {
    let (_d, path) = tmp();
    let (older, _, newer, _) = two_headers(&path);
    for i in [older, newer] {
        let mut b = read_slot(&path, i);
        b[..8].copy_from_slice(b"SQLite f");
        resign_v2(&mut b); // even correct CRCs do not make it ours
        write_slot(&path, i, &b);
    }
    for r in open_both(&path) {
        assert!(matches!(r, Err(Error::NotRecmap { .. })), "{r:?}");
    }
}

#[test]
fn future_format_version_is_unsupported() {
    let (_d, path) = tmp();
    store_with(&path, 5);
    // Created (header_seq 1, slot 1) and committed once, which closing
    // checkpointed (header_seq 2, slot 0, generation 2). Rewrite the newer
    // slot as the next version, correctly signed.
    let (newest, h) = newest_slot(&path);
    assert_eq!((newest, h.header_seq, h.generation), (0, 2, 2));
    let mut b = read_slot(&path, 0);
    put_u32(&mut b, slot::FORMAT_VERSION, FORMAT_VERSION + 1);
    resign_v2(&mut b);
    write_slot(&path, 0, &b);
    for r in open_both(&path) {
        match r {
            Err(Error::UnsupportedVersion {
                found, supported, ..
            }) => {
                assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
            }
            r => panic!("{r:?}"),
        }
    }
    let msg = Store::<R24>::open(&path).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("version {}", FORMAT_VERSION + 1))
            && msg.contains(&format!("reads version {FORMAT_VERSION}")),
        "{msg}"
    );

    // A brand-new file whose only slot is from the future.
    let (_d2, path2) = tmp();
    create_r24(&path2);
    assert!(matches!(decode_slot(&path2, 0), Err(SlotError::Empty)));
    let mut b = read_slot(&path2, 1);
    put_u32(&mut b, slot::FORMAT_VERSION, 7);
    resign_v2(&mut b);
    write_slot(&path2, 1, &b);
    let r = RawStore::open_read_only(&path2);
    assert!(
        matches!(r, Err(Error::UnsupportedVersion { found: 7, .. })),
        "{r:?}"
    );
}

#[test]
fn foreign_byte_order_is_no_valid_header() {
    let (_d, path) = tmp();
    create_r24(&path);
    let mut b = read_slot(&path, 1);
    put_u32(&mut b, slot::BYTE_ORDER_MARK, 0x0403_0201);
    resign_v2(&mut b);
    write_slot(&path, 1, &b);
    for r in open_both(&path) {
        match r {
            Err(Error::NoValidHeader { slot0, slot1, .. }) => {
                assert_eq!(slot0, SlotError::Empty);
                assert_eq!(slot1, SlotError::WrongByteOrder { found: 0x0403_0201 });
            }
            r => panic!("{r:?}"),
        }
    }
}

#[test]
fn wrong_record_type_is_schema_mismatch_showing_both_layouts() {
    recmap::record! {
        #[allow(dead_code)]
        struct Swapped { val: u64, id: u64 }
    }
    let (_d, path) = tmp();
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open::<R16>(&path)
        .unwrap()
        .close()
        .unwrap();

    let check = |r: Result<String, Error>, requested: recmap::Schema| match r {
        Err(e @ Error::SchemaMismatch { .. }) => {
            if let Error::SchemaMismatch {
                stored,
                requested: req,
                ..
            } = &e
            {
                assert_eq!(**stored, R16::schema());
                assert_eq!(**req, requested);
            }
            let msg = e.to_string();
            assert!(
                msg.contains(&R16::schema().to_string()),
                "stored layout missing: {msg}"
            );
            assert!(
                msg.contains(&requested.to_string()),
                "requested layout missing: {msg}"
            );
        }
        r => panic!("{r:?}"),
    };
    // Different size.
    check(
        Store::<R24>::open(&path).map(|s| format!("{s:?}")),
        R24::schema(),
    );
    check(
        Store::<R24>::open_read_only(&path).map(|s| format!("{s:?}")),
        R24::schema(),
    );
    check(
        Store::<Big>::open(&path).map(|s| format!("{s:?}")),
        Big::schema(),
    );
    // Same size and types, different field names.
    check(
        Store::<Swapped>::open(&path).map(|s| format!("{s:?}")),
        Swapped::schema(),
    );
    check(
        Options::new()
            .open_raw(&path, Some(&R24::schema()))
            .map(|s| format!("{s:?}")),
        R24::schema(),
    );
    // The failed opens released their locks and changed nothing.
    let s = Store::<R16>::open(&path).unwrap();
    assert_eq!(s.len(), 0);
}

/// The newer slot damaged while the log holds frames of its cycle (which
/// are written only once it is durable): the header it held existed, and
/// opening at the older slot would drop commits 3 and 4 without a word
/// (and the next commit would overwrite the damaged slot for good). Every
/// opener refuses with `HeaderDamaged`, naming the log and both header
/// numbers, and nothing is written.
#[test]
fn a_damaged_newer_slot_the_log_outlived_is_refused_not_rolled_back() {
    for how in ["flip", "zero"] {
        let (_d, path) = tmp();
        let (_, _, newer, _) = two_headers(&path);
        let seq = decode_slot(&path, newer).unwrap().header_seq;
        let mut b = read_slot(&path, newer);
        if how == "flip" {
            b[slot::RECORD_COUNT] ^= 0x40;
        } else {
            b = [0; SLOT_LEN];
        }
        write_slot(&path, newer, &b);
        let before = (
            std::fs::read(&path).unwrap(),
            std::fs::read(wal_of(&path)).unwrap(),
        );
        let refused = |r: Result<(), Error>, who: &str| match r {
            Err(Error::HeaderDamaged {
                path: p,
                header_seq,
                log_seq,
            }) => {
                // The same file (named by its canonical path: symlinks
                // resolved; on Windows perhaps the verbatim form).
                assert_eq!(
                    std::fs::canonicalize(&p).unwrap(),
                    std::fs::canonicalize(wal_of(&path)).unwrap(),
                    "{how} {who}: {p:?}"
                );
                assert_eq!((header_seq, log_seq), (seq - 1, seq), "{how} {who}");
            }
            r => panic!("{how} {who}: expected HeaderDamaged, got {r:?}"),
        };
        refused(Store::<R24>::open_read_only(&path).map(drop), "read-only");
        refused(Store::<R24>::open(&path).map(drop), "writer");
        refused(recmap::Reader::<R24>::open(&path).map(drop), "reader");
        refused(recmap::RawReader::open(&path).map(drop), "raw reader");
        let after = (
            std::fs::read(&path).unwrap(),
            std::fs::read(wal_of(&path)).unwrap(),
        );
        assert!(before == after, "{how}: the files changed");
    }
}

fn wal_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

#[test]
fn each_slot_corrupted_in_turn_opens_from_the_other() {
    // The older slot damaged: the newer one and the log give commit 4.
    // (The newer slot damaged is the test above: the log outlived it.)
    for target in ["older"] {
        for how in ["flip", "zero"] {
            let (_d, path) = tmp();
            let (older, _, _, n) = two_headers(&path);
            let (bad, (want_gen, want_len)) = (older, n);
            let mut b = read_slot(&path, bad);
            if how == "flip" {
                b[slot::RECORD_COUNT] ^= 0x40; // a different count, CRCs not updated
            } else {
                b = [0; SLOT_LEN]; // never written (e.g. torn to zeros)
            }
            write_slot(&path, bad, &b);
            let ctx = format!("{target} slot {bad} {how}");

            let ro = Store::<R24>::open_read_only(&path).unwrap();
            assert_eq!((ro.generation(), ro.len()), (want_gen, want_len), "{ctx}");
            assert_records(&ro, want_len);
            let rep = ro.verify().unwrap();
            assert!(rep.is_ok(), "{ctx}: {rep:?}");
            assert_eq!(rep.records_checked, want_len, "{ctx}");
            if how == "flip" {
                assert!(
                    rep.notes.iter().any(
                        |n| matches!(n, recmap::Problem::HeaderSlot { slot, .. } if *slot == bad)
                    ),
                    "{ctx}: torn slot not noted: {rep:?}"
                );
            }
            drop(ro);

            // A writer opens at the same state (replaying the log into the
            // data file if the newer slot is the good one); the checkpoints
            // of its recovery and of its next commit rewrite the damaged
            // slot, and both slots are valid again.
            let mut s = Store::<R24>::open(&path).unwrap();
            assert_eq!(
                (s.generation(), s.len(), s.committed_len()),
                (want_gen, want_len, want_len),
                "{ctx}"
            );
            s.push(&R24::make(want_len)).unwrap();
            let st = s.commit().unwrap();
            assert_eq!(st.generation, want_gen + 1, "{ctx}");
            drop(s);
            assert!(
                decode_slot(&path, bad).is_ok(),
                "{ctx}: damaged slot not rewritten"
            );
            assert!(decode_slot(&path, 1 - bad).is_ok(), "{ctx}");
            let (_, h) = newest_slot(&path);
            assert_eq!(
                (h.generation, h.record_count),
                (want_gen + 1, want_len + 1),
                "{ctx}"
            );
            let s = Store::<R24>::open_read_only(&path).unwrap();
            assert_records(&s, want_len + 1);
            let rep = s.verify().unwrap();
            assert!(rep.is_ok() && rep.notes.is_empty(), "{ctx}: {rep:?}");
        }
    }
}

#[test]
fn a_damaged_newest_header_loses_nothing_the_log_still_holds() {
    // Closed cleanly: commit 3's checkpoint wrote the newest header, and
    // commit 3's frames (naming the older header) are still at the start of
    // the log. With the newest header torn, the older one plus the log give
    // commit 3 back, whole.
    for how in ["flip", "zero"] {
        let (_d, path) = tmp();
        let mut s = create_r24(&path);
        s.extend((0..OLDER).map(R24::make)).unwrap();
        s.commit().unwrap();
        s.checkpoint().unwrap();
        s.extend((OLDER..NEWER).map(R24::make)).unwrap();
        s.commit().unwrap();
        s.close().unwrap();
        let (newest, h) = newest_slot(&path);
        assert_eq!((h.generation, h.record_count), (3, NEWER));
        let older = decode_slot(&path, 1 - newest).unwrap();
        assert_eq!(
            (older.header_seq + 1, older.record_count),
            (h.header_seq, OLDER)
        );
        let mut b = read_slot(&path, newest);
        if how == "flip" {
            b[slot::STORE_ID] ^= 0x01; // the version-2 part: only the slot CRC sees it
        } else {
            b = [0; SLOT_LEN];
        }
        write_slot(&path, newest, &b);

        let ro = Store::<R24>::open_read_only(&path).unwrap();
        assert_eq!((ro.generation(), ro.len()), (3, NEWER), "{how}");
        assert_records(&ro, NEWER);
        let rep = ro.verify().unwrap();
        assert!(rep.is_ok(), "{how}: {rep:?}");
        drop(ro);
        let r = recmap::Reader::<R24>::open(&path).unwrap();
        assert_eq!((r.generation(), r.len()), (3, NEWER), "{how}");
        assert_eq!(r.get(NEWER - 1).unwrap(), Some(R24::make(NEWER - 1)));
        drop(r);
        // A writer replays it and checkpoints: the damaged slot is rewritten.
        let s = Store::<R24>::open(&path).unwrap();
        assert_eq!((s.generation(), s.len()), (3, NEWER), "{how}");
        drop(s);
        assert_eq!(gen_len(&path, newest), (3, NEWER), "{how}");
        let s = Store::<R24>::open_read_only(&path).unwrap();
        assert_records(&s, NEWER);
        let rep = s.verify().unwrap();
        assert!(rep.is_ok() && rep.notes.is_empty(), "{how}: {rep:?}");
    }
}

#[test]
fn both_slots_corrupted_is_no_valid_header() {
    let (_d, path) = tmp();
    let (older, _, newer, _) = two_headers(&path);
    flip_byte(
        &path,
        recmap::format::SLOT_OFFSETS[older] + slot::GENERATION as u64,
        0x01,
    );
    flip_byte(
        &path,
        recmap::format::SLOT_OFFSETS[newer] + slot::CRC as u64 + 3,
        0x80,
    );
    for r in open_both(&path) {
        match r {
            Err(e @ Error::NoValidHeader { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("slot 0") && msg.contains("slot 1"), "{msg}");
                if let Error::NoValidHeader { slot0, slot1, .. } = e {
                    assert!(
                        matches!(slot0, SlotError::ChecksumMismatch { .. }),
                        "{slot0}"
                    );
                    assert!(
                        matches!(slot1, SlotError::ChecksumMismatch { .. }),
                        "{slot1}"
                    );
                }
            }
            r => panic!("{r:?}"),
        }
    }
}

#[test]
fn corrupt_schema_block_is_checksum_mismatch() {
    let (_d, path) = tmp();
    let (_, _, newer, _) = two_headers(&path);
    let h = decode_slot(&path, newer).unwrap();
    for at in [0u64, 5, h.schema_len as u64 - 1] {
        flip_byte(&path, SCHEMA_OFFSET + at, 0x10);
        let block = read_at(&path, SCHEMA_OFFSET, h.schema_len as usize);
        for r in open_both(&path) {
            match r {
                Err(Error::ChecksumMismatch { expected, got, .. }) => {
                    assert_eq!((expected, got), (h.schema_crc, crc32(&block)), "byte {at}");
                }
                r => panic!("byte {at}: {r:?}"),
            }
        }
        flip_byte(&path, SCHEMA_OFFSET + at, 0x10);
        assert!(Store::<R24>::open_read_only(&path).is_ok());
    }
}

#[test]
fn malformed_but_signed_schema_block_is_bad_schema() {
    let (_d, path) = tmp();
    create_r24(&path);
    let h = decode_slot(&path, 1).unwrap();
    // Break the schema block's own magic, then make every checksum agree.
    flip_byte(&path, SCHEMA_OFFSET, 0xff);
    let block = read_at(&path, SCHEMA_OFFSET, h.schema_len as usize);
    let mut b = read_slot(&path, 1);
    put_u32(&mut b, slot::SCHEMA_CRC, crc32(&block));
    resign_v2(&mut b);
    write_slot(&path, 1, &b);
    for r in open_both(&path) {
        assert!(matches!(r, Err(Error::BadSchema { .. })), "{r:?}");
    }
}

/// Opens read-only and reports `(generation, len)` or the error, checking
/// on the way that nothing panics and the records that are there are sane.
fn probe(path: &Path, what: &str) -> Result<(u64, u64), Error> {
    no_panic(what, || {
        let s = RawStore::open_read_only(path)?;
        Ok((s.generation(), s.len()))
    })
}

#[test]
fn every_bit_flip_of_either_slot_is_caught() {
    let (_d, path) = tmp();
    let (older, _, newer, n) = two_headers(&path);
    // A flip anywhere in the 256 bytes of a version-2 slot (the
    // version-1-compatible CRC at 124 and the slot CRC at 252 included)
    // invalidates it: in the older slot the store opens from the newer one
    // (and its log); in the newer one, whose cycle the log's frames show,
    // open refuses (`HeaderDamaged`) rather than fall back and drop
    // commits 3 and 4.
    for bad in [newer, older] {
        let orig = read_slot(&path, bad);
        for bit in 0..SLOT_LEN * 8 {
            let mut b = orig;
            b[bit / 8] ^= 1 << (bit % 8);
            write_slot(&path, bad, &b);
            let what = format!("slot {bad} bit {bit}");
            match probe(&path, &what) {
                Ok(got) if bad == older => assert_eq!(got, n, "{what}"),
                Err(Error::HeaderDamaged { .. }) if bad == newer => {}
                r => panic!("{what}: {r:?}"),
            }
        }
        write_slot(&path, bad, &orig);
    }
    // Unchanged after restoring: a sanity check on the restore itself.
    assert_eq!(probe(&path, "restored").unwrap(), n);
}

#[test]
fn every_bit_flip_of_the_only_slot_is_an_error() {
    let (_d, path) = tmp();
    create_r24(&path);
    assert_eq!(decode_slot(&path, 0), Err(SlotError::Empty));
    let orig = read_slot(&path, 1);
    for bit in 0..SLOT_LEN * 8 {
        let mut b = orig;
        b[bit / 8] ^= 1 << (bit % 8);
        write_slot(&path, 1, &b);
        let what = format!("bit {bit}");
        match probe(&path, &what) {
            // A flip inside the magic makes the file foreign; anywhere else
            // the CRC catches it.
            Err(Error::NotRecmap { .. }) if bit < 64 => {}
            Err(Error::NoValidHeader {
                slot0: SlotError::Empty,
                slot1,
                ..
            }) if bit >= 64 => {
                assert!(
                    matches!(slot1, SlotError::ChecksumMismatch { .. }),
                    "{what}: {slot1}"
                );
            }
            r => panic!("{what}: {r:?}"),
        }
    }
}

#[test]
fn hostile_signed_header_fields_never_panic() {
    let (_d, path) = tmp();
    let mut s = create_r24(&path);
    s.extend((0..500).map(R24::make)).unwrap();
    s.commit().unwrap(); // generation 2, in the log
    drop(s); // checkpointed: header_seq 2, slot 0; slot 1 holds header_seq 1
    assert_eq!(newest_slot(&path).0, 0);
    // Make slot 1 empty so the edited slot 0 is the only candidate.
    write_slot(&path, 1, &[0; SLOT_LEN]);
    let orig = read_slot(&path, 0);
    let fields: &[(usize, usize)] = &[
        (slot::FORMAT_VERSION, 4),
        (slot::PAGE_SIZE, 4),
        (slot::FLAGS, 4),
        (slot::RECORD_SIZE, 4),
        (slot::RECORD_ALIGN, 4),
        (slot::RECORDS_PER_PAGE, 4),
        (slot::PAGES_PER_GROUP, 4),
        (slot::CHUNK_SIZE, 8),
        (slot::GENERATION, 8),
        (slot::RECORD_COUNT, 8),
        (slot::CAPACITY, 8),
        (slot::SCHEMA_OFFSET, 8),
        (slot::SCHEMA_LEN, 4),
        (slot::SCHEMA_CRC, 4),
        (slot::DATA_OFFSET, 8),
        (slot::TABLE_OFFSET, 8),
        (slot::TABLE_LEN, 8),
        (slot::TAIL_CRC, 4),
        (slot::RESERVED, 4),
        (slot::LIST_CRC, 4),
        (slot::HEADER_SEQ, 8),
        (slot::STORE_ID, 8),
        (slot::V2_RESERVED, 8),
    ];
    let mut rng = Rng::new(42);
    let (mut opened, mut failed) = (0, 0);
    for case in 0..600 {
        let mut b = orig;
        // One to three fields get a hostile value.
        for _ in 0..rng.range(1, 3) {
            let (at, width) = fields[rng.below(fields.len() as u64) as usize];
            let old = if width == 4 {
                get_u32(&b, at) as u64
            } else {
                get_u64(&b, at)
            };
            let v = match rng.below(8) {
                0 => 0,
                1 => u64::MAX,
                2 => old.wrapping_add(1),
                3 => old.wrapping_sub(1),
                4 => old.wrapping_mul(2),
                5 => 1 << rng.below(64),
                6 => old ^ (1 << rng.below(64)),
                _ => rng.next_u64(),
            };
            if width == 4 {
                put_u32(&mut b, at, v as u32);
            } else {
                put_u64(&mut b, at, v);
            }
        }
        resign_v2(&mut b);
        write_slot(&path, 0, &b);
        let what = format!("case {case}: slot {b:02x?}");
        let r = no_panic(&what, || -> Result<(), Error> {
            let s = RawStore::open_read_only(&path)?;
            // Whatever the header claims, reads stay inside the map.
            if let Some(last) = s.len().checked_sub(1) {
                assert_eq!(s.get(last).unwrap().len(), s.record_size());
            }
            let _ = s.runs(0..s.len()).count();
            let _ = s.verify()?;
            drop(s);
            // A writer opens too (and, dropped unchanged, writes nothing:
            // no edit makes the log's frames, which name header_seq 1,
            // continue a header in slot 0, so there is nothing to replay).
            let page = read_at(&path, 0, 4096);
            let w = RawStore::open(&path)?;
            assert!(!w.has_uncommitted());
            assert_eq!(w.log_commits(), 0);
            drop(w);
            assert!(
                read_at(&path, 0, 4096) == page,
                "a writer wrote the header page"
            );
            Ok(())
        });
        match r {
            Ok(()) => opened += 1,
            Err(
                Error::NoValidHeader { .. }
                | Error::UnsupportedVersion { .. }
                | Error::Truncated { .. }
                | Error::ChecksumMismatch { .. }
                | Error::BadSchema { .. },
            ) => failed += 1,
            Err(e) => panic!("{what}: unexpected error kind: {e:?}"),
        }
        write_slot(&path, 0, &orig);
    }
    assert!(
        failed > 0,
        "no hostile header was rejected ({opened} opened)"
    );
    // (The seed is fixed: some hostile values are still valid, e.g. a
    // smaller record count, and those stores must be readable.)
    assert!(opened > 0, "every hostile header was rejected");
    // The untouched store is still fine.
    let s = Store::<R24>::open_read_only(&path).unwrap();
    assert_records(&s, 500);
}

#[test]
fn capacity_beyond_the_file_is_truncated_with_the_header_numbers() {
    let (_d, path) = tmp();
    create_r24(&path);
    let mut b = read_slot(&path, 1);
    let h = Header::decode(&b, 1).unwrap();
    let groups = h.layout.capacity_groups * 10;
    let big = Layout::with_groups(h.layout.packing, h.schema_len, groups).unwrap();
    put_u64(&mut b, slot::CAPACITY, big.capacity());
    put_u64(&mut b, slot::TABLE_OFFSET, big.table_offset);
    put_u64(&mut b, slot::TABLE_LEN, big.table_len);
    resign_v2(&mut b);
    write_slot(&path, 1, &b);
    let actual = std::fs::metadata(&path).unwrap().len();
    for r in open_both(&path) {
        match r {
            Err(Error::Truncated {
                expected,
                actual: got,
                ..
            }) => assert_eq!((expected, got), (big.file_len(), actual)),
            r => panic!("{r:?}"),
        }
    }
}

#[test]
fn read_only_handle_rejects_every_write() {
    let (_d, path) = tmp();
    store_with(&path, 10);
    let mut s = Store::<R24>::open_read_only(&path).unwrap();
    let ro = |r: Result<(), Error>, op: &str| {
        assert!(matches!(r, Err(Error::ReadOnly { .. })), "{op}: {r:?}");
    };
    let rec = R24::make(99);
    ro(s.push(&rec).map(drop), "push");
    ro(s.extend([rec, rec]).map(drop), "extend");
    ro(s.extend_from_slice(&[rec]).map(drop), "extend_from_slice");
    ro(s.set(0, &rec), "set");
    ro(s.set(1000, &rec), "set past end");
    ro(s.get_mut(0).map(drop), "get_mut");
    ro(s.reserve(1), "reserve");
    ro(s.commit().map(drop), "commit");
    assert_eq!(s.len(), 10);
    assert_eq!(*s.get(0).unwrap(), R24::make(0));
    // close() of a read-only handle is a no-op, not an error.
    assert_eq!(s.close().unwrap().records, 10);

    let mut raw = RawStore::open_read_only(&path).unwrap();
    assert!(raw.is_read_only());
    let bytes = vec![0u8; raw.record_size()];
    assert!(matches!(raw.push(&bytes), Err(Error::ReadOnly { .. })));
    assert!(matches!(
        raw.extend_from_bytes(&bytes),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(raw.set(0, &bytes), Err(Error::ReadOnly { .. })));
    assert!(matches!(raw.commit(), Err(Error::ReadOnly { .. })));
    drop(raw);
    let s = Store::<R24>::open_read_only(&path).unwrap();
    assert_records(&s, 10);
}

#[test]
fn set_past_the_end_is_index_out_of_bounds() {
    let (_d, path) = tmp();
    store_with(&path, 10);
    let mut s = Store::<R24>::open(&path).unwrap();
    s.extend((10..15).map(R24::make)).unwrap(); // 5 staged, uncommitted
    let rec = R24::make(1234);
    for index in [15u64, 16, 1 << 40, u64::MAX] {
        match s.set(index, &rec) {
            Err(Error::IndexOutOfBounds { index: i, len }) => assert_eq!((i, len), (index, 15)),
            r => panic!("set({index}): {r:?}"),
        }
    }
    assert!(matches!(
        s.get_mut(15),
        Err(Error::IndexOutOfBounds { index: 15, len: 15 })
    ));
    assert!(matches!(
        s.update(99, |_| ()),
        Err(Error::IndexOutOfBounds { index: 99, len: 15 })
    ));
    let mut raw_bytes = vec![0u8; 24];
    raw_bytes[0] = 1;
    // The handle is still healthy: in-range sets (committed and staged) work.
    s.set(14, &rec).unwrap();
    s.set(3, &rec).unwrap();
    s.commit().unwrap();
    assert_eq!(s.len(), 15);
    assert_eq!(*s.get(14).unwrap(), rec);
    assert_eq!(*s.get(3).unwrap(), rec);
    assert!(s.verify().unwrap().is_ok());
    let mut raw = s.into_raw();
    assert!(matches!(
        raw.set(15, &raw_bytes),
        Err(Error::IndexOutOfBounds { index: 15, len: 15 })
    ));
}

#[test]
fn wrong_record_byte_length_is_invalid_option() {
    let (_d, path) = tmp();
    let mut raw = Options::new()
        .create_new(true)
        .open_raw(&path, Some(&R24::schema()))
        .unwrap();
    for n in [0usize, 1, 23, 25] {
        let r = raw.push(&vec![0; n]);
        assert!(
            matches!(
                r,
                Err(Error::InvalidOption {
                    option: "record bytes",
                    ..
                })
            ),
            "{n}: {r:?}"
        );
    }
    let r = raw.extend_from_bytes(&[0; 47]);
    assert!(
        matches!(
            r,
            Err(Error::InvalidOption {
                option: "record bytes",
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(raw.len(), 0);
    raw.push(&[0; 24]).unwrap();
    let r = raw.set(0, &[0; 8]);
    assert!(matches!(r, Err(Error::InvalidOption { .. })), "{r:?}");
}

#[test]
fn create_over_an_existing_file_is_already_exists() {
    let (_d, path) = tmp();
    store_with(&path, 7);
    assert!(matches!(
        Store::<R24>::create(&path),
        Err(Error::AlreadyExists { .. })
    ));
    let r = Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open::<R24>(&path);
    assert!(matches!(r, Err(Error::AlreadyExists { .. })), "{r:?}");
    assert!(matches!(
        RawStore::create(&path, &R24::schema()),
        Err(Error::AlreadyExists { .. })
    ));
    // The existing store is untouched, and create(true) opens it as is.
    let s = Options::new().create(true).open::<R24>(&path).unwrap();
    assert_records(&s, 7);
    drop(s);

    // Any existing file, recmap or not, is left alone.
    let other = path.with_file_name("notes.txt");
    std::fs::write(&other, b"hello").unwrap();
    assert!(matches!(
        Store::<R24>::create(&other),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&other).unwrap(), b"hello");
    // No temporary files left behind by the failed creations, and no log
    // or coordination file for `notes.txt`. (The store, its coordination
    // file `store.rmap-lock`, its log `store.rmap-wal`, and notes.txt.)
    let mut names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "notes.txt",
            "store.rmap",
            "store.rmap-lock",
            "store.rmap-wal"
        ]
    );
}

#[test]
fn opening_a_missing_path_is_not_found() {
    let (_d, path) = tmp();
    for r in open_both(&path) {
        match r {
            Err(Error::NotFound { path: p }) => assert_eq!(p, path),
            r => panic!("{r:?}"),
        }
    }
    assert!(matches!(RawStore::open(&path), Err(Error::NotFound { .. })));
    assert!(matches!(
        RawStore::open_read_only(&path),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Options::new().wait_for_lock(true).open::<R24>(&path),
        Err(Error::NotFound { .. })
    ));
    assert!(!path.exists(), "a failed open must not create the file");
}

#[test]
fn invalid_chunk_size_is_invalid_option() {
    let (_d, path) = tmp();
    for chunk in [
        0u64,
        1,
        4096,
        1000,
        (64 << 10) + 1,
        96 << 10,
        (1 << 40) + (64 << 10),
        u64::MAX,
    ] {
        let r = Options::new()
            .create_new(true)
            .chunk_size(chunk)
            .open::<R24>(&path);
        match r {
            Err(Error::InvalidOption { option, reason }) => {
                assert_eq!(option, "chunk_size");
                assert!(reason.contains(&chunk.to_string()), "{reason}");
            }
            r => panic!("chunk {chunk}: {r:?}"),
        }
        let r = Options::new()
            .create(true)
            .chunk_size(chunk)
            .open::<R24>(&path);
        assert!(
            matches!(
                r,
                Err(Error::InvalidOption {
                    option: "chunk_size",
                    ..
                })
            ),
            "{chunk}: {r:?}"
        );
        assert!(!path.exists(), "chunk {chunk}: file created anyway");
    }
    // Valid extremes are accepted.
    Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<R24>(&path)
        .unwrap();
    // An existing store keeps its chunk size: the option is ignored on open.
    let s = Options::new().chunk_size(12345).open::<R24>(&path).unwrap();
    assert_eq!(s.info().chunk_size, 64 << 10);
}

#[test]
fn creating_without_a_schema_is_invalid_option() {
    let (_d, path) = tmp();
    let r = Options::new().create_new(true).open_raw(&path, None);
    assert!(
        matches!(
            r,
            Err(Error::InvalidOption {
                option: "schema",
                ..
            })
        ),
        "{r:?}"
    );
    assert!(!path.exists());
}

// ----- the log -------------------------------------------------------------

/// Runs `f` on another thread and fails the test if it does not return
/// within 10 seconds: opening a FIFO the blocking way would hang forever.
fn within_10s<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: hung (or panicked)"))
}

/// Every way to open a store, each reporting only success or the error.
type Opener = fn(&Path) -> Result<(), Error>;
const OPENERS: [(&str, Opener); 5] = [
    ("writer", |p| Store::<R24>::open(p).map(drop)),
    ("read-only", |p| Store::<R24>::open_read_only(p).map(drop)),
    ("raw writer", |p| RawStore::open(p).map(drop)),
    ("raw read-only", |p| RawStore::open_read_only(p).map(drop)),
    ("reader", |p| recmap::Reader::<R24>::open(p).map(drop)),
];

#[test]
fn a_log_that_is_not_a_regular_file_is_bad_coordination() {
    // Windows has no FIFOs, and symbolic links need a privilege there.
    #[cfg(unix)]
    let kinds = ["symlink", "dangling symlink", "fifo", "directory"];
    #[cfg(not(unix))]
    let kinds = ["directory"];
    for kind in kinds {
        let (d, path) = tmp();
        store_with(&path, 10);
        let wal = wal_path(&path);
        std::fs::remove_file(&wal).unwrap();
        let target = d.path().join("target");
        let make_bad = |wal: &Path| match kind {
            #[cfg(unix)]
            "symlink" => {
                std::fs::write(&target, b"not a log").unwrap();
                std::os::unix::fs::symlink(&target, wal).unwrap();
            }
            #[cfg(unix)]
            "dangling symlink" => std::os::unix::fs::symlink(&target, wal).unwrap(),
            #[cfg(unix)]
            "fifo" => {
                let c = std::ffi::CString::new(wal.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: mkfifo on a NUL-terminated path we own.
                #[allow(unsafe_code)]
                let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
                assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
            }
            _ => std::fs::create_dir(wal).unwrap(),
        };
        let remove_bad = |wal: &Path| {
            if kind == "directory" {
                std::fs::remove_dir(wal).unwrap();
            } else {
                std::fs::remove_file(wal).unwrap();
            }
        };
        make_bad(&wal);
        let data = std::fs::read(&path).unwrap();
        for (who, open) in OPENERS {
            let p = path.clone();
            let what = format!("{kind}, {who}");
            match within_10s(&what, move || open(&p)) {
                Err(Error::BadCoordination { path: p, reason }) => {
                    assert_eq!(p, wal, "{what}: {reason}")
                }
                r => panic!("{what}: {r:?}"),
            }
        }
        // Nothing was written through it or beside it.
        assert!(
            std::fs::read(&path).unwrap() == data,
            "{kind}: data file changed"
        );
        match kind {
            "symlink" => assert_eq!(std::fs::read(&target).unwrap(), b"not a log"),
            "dangling symlink" => assert!(!target.exists(), "created through the link"),
            _ => {}
        }
        // Removed, the store opens again as it was.
        remove_bad(&wal);
        let s = Store::<R24>::open(&path).unwrap();
        assert_records(&s, 10);
        drop(s);

        // Creating a store beside such a log fails the same way; whatever
        // it left at the path is a complete (empty) store.
        let new = d.path().join("new.rmap");
        let new_wal = wal_path(&new);
        make_bad(&new_wal);
        let p = new.clone();
        let r = within_10s(&format!("{kind}, create"), move || {
            Options::new()
                .create_new(true)
                .chunk_size(CHUNK)
                .open::<R24>(&p)
                .map(drop)
        });
        assert!(
            matches!(r, Err(Error::BadCoordination { .. })),
            "{kind}, create: {r:?}"
        );
        remove_bad(&new_wal);
        if new.exists() {
            let s = Store::<R24>::open(&new).unwrap();
            assert_eq!(s.len(), 0);
            assert!(s.verify().unwrap().is_ok());
        }
    }
}

/// The frame header of the commit that would follow header `h` (no
/// appends: `record_count` = `prev_count`), with `tail_crc` given.
fn next_frame(h: &Header, tail_crc: u32) -> FrameHeader {
    FrameHeader {
        store_id: h.store_id,
        header_seq: h.header_seq,
        generation: h.generation + 1,
        record_count: h.record_count,
        prev_count: h.record_count,
        tail_crc,
        flags: 0,
        crc_entries: 0,
        record_entries: 0,
    }
}

/// Encodes one commit: checksum entries, then record entries.
fn encode_commit(f: FrameHeader, crcs: &[(u64, u32)], records: &[(u64, R24)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = CommitWriter::new(&mut out, f, 24);
    for &(g, crc) in crcs {
        w.push_crc(g, crc);
    }
    for (i, r) in records {
        w.push_record(*i, recmap::bytemuck::bytes_of(r));
    }
    w.finish();
    out
}

/// Re-signs a frame (its CRC is the last 4 bytes, over everything before).
fn resign_frame(b: &mut [u8]) {
    let n = b.len();
    let crc = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

/// The checksum of the 10 records of `store_with(path, 10)` (one partly
/// filled page, so the header's `tail_crc`) with record 3 replaced by `r3`.
fn tail_crc_with(r3: &R24) -> u32 {
    let mut bytes = Vec::new();
    for i in 0..10 {
        let r = if i == 3 { *r3 } else { R24::make(i) };
        bytes.extend_from_slice(recmap::bytemuck::bytes_of(&r));
    }
    crc32(&bytes)
}

/// A closed store of 10 records and the frame of a valid next commit that
/// sets record 3 to `R24::make(1003)`: `(dir, path, header, frame bytes)`.
fn store_and_valid_frame() -> (tempfile::TempDir, PathBuf, Header, Vec<u8>) {
    let (d, path) = tmp();
    store_with(&path, 10);
    let (_, h) = newest_slot(&path);
    assert_eq!((h.generation, h.record_count), (2, 10));
    let new3 = R24::make(1003);
    let frame = encode_commit(next_frame(&h, tail_crc_with(&new3)), &[], &[(3, new3)]);
    (d, path, h, frame)
}

#[test]
fn a_handmade_valid_frame_is_replayed() {
    // The control for the two tests below: the frames they damage are
    // exactly what recmap would have logged.
    let (_d, path, _, frame) = store_and_valid_frame();
    let wal = wal_path(&path);
    write_at(&wal, 0, &frame);
    let want = |i: u64| {
        if i == 3 {
            R24::make(1003)
        } else {
            R24::make(i)
        }
    };
    let ro = Store::<R24>::open_read_only(&path).unwrap();
    assert_eq!((ro.generation(), ro.len()), (3, 10));
    for i in 0..10 {
        assert_eq!(*ro.get(i).unwrap(), want(i), "record {i}");
    }
    assert!(ro.verify().unwrap().is_ok());
    drop(ro);
    let r = recmap::Reader::<R24>::open(&path).unwrap();
    assert_eq!(r.generation(), 3);
    assert_eq!(r.get(3).unwrap(), Some(want(3)));
    drop(r);
    let s = Store::<R24>::open(&path).unwrap(); // replays and checkpoints
    assert_eq!((s.generation(), s.raw().log_commits()), (3, 0));
    assert_eq!(*s.get(3).unwrap(), want(3));
    drop(s);
    assert_eq!(gen_len(&path, newest_slot(&path).0), (3, 10));
    let s = Store::<R24>::open_read_only(&path).unwrap();
    assert_eq!(*s.get(3).unwrap(), want(3));
    let rep = s.verify().unwrap();
    assert!(rep.is_ok() && rep.notes.is_empty(), "{rep:?}");
}

#[test]
fn garbage_in_the_log_is_ignored() {
    type Damage = fn(&Path, &Header, &[u8]);
    let cases: &[(&str, Damage)] = &[
        ("zeros", |wal, _, _| {
            let len = std::fs::metadata(wal).unwrap().len();
            write_at(wal, 0, &vec![0u8; len as usize]);
        }),
        ("random bytes", |wal, _, _| {
            let mut b = vec![0u8; std::fs::metadata(wal).unwrap().len() as usize];
            Rng::new(0x1097).fill(&mut b);
            write_at(wal, 0, &b);
        }),
        ("frame magic, then random bytes", |wal, _, _| {
            let mut b = vec![0u8; 1 << 16];
            Rng::new(0x1098).fill(&mut b);
            b[..8].copy_from_slice(&recmap::format::wal::FRAME_MAGIC);
            write_at(wal, 0, &b);
        }),
        ("a few bytes", |wal, _, _| {
            std::fs::write(wal, b"\x89RECWAL\n garbage").unwrap();
        }),
        ("empty", |wal, _, _| std::fs::write(wal, b"").unwrap()),
        ("torn frame (one byte flipped)", |wal, _, f| {
            let mut b = f.to_vec();
            b[FRAME_HEADER_LEN + 12] ^= 0x10; // inside record 3's image
            write_at(wal, 0, &b);
        }),
        ("frame cut short by the end of the file", |wal, _, f| {
            std::fs::write(wal, &f[..f.len() - 1]).unwrap();
        }),
        ("another store's frame", |wal, h, f| {
            let mut b = f.to_vec();
            put_u64(&mut b, frame::STORE_ID, h.store_id ^ 1);
            resign_frame(&mut b);
            write_at(wal, 0, &b);
        }),
        ("a frame of the previous log cycle", |wal, h, f| {
            let mut b = f.to_vec();
            put_u64(&mut b, frame::HEADER_SEQ, h.header_seq - 1);
            resign_frame(&mut b);
            write_at(wal, 0, &b);
        }),
        ("a frame that skips a generation", |wal, h, f| {
            let mut b = f.to_vec();
            put_u64(&mut b, frame::GENERATION, h.generation + 2);
            resign_frame(&mut b);
            write_at(wal, 0, &b);
        }),
        ("a frame with another previous count", |wal, h, f| {
            let mut b = f.to_vec();
            put_u64(&mut b, frame::PREV_COUNT, h.record_count - 1);
            resign_frame(&mut b);
            write_at(wal, 0, &b);
        }),
    ];
    for &(what, damage) in cases {
        let (_d, path, h, frame) = store_and_valid_frame();
        let wal = wal_path(&path);
        damage(&wal, &h, &frame);
        let data = std::fs::read(&path).unwrap();
        for (who, open) in OPENERS {
            let r = no_panic(&format!("{what}, {who}"), || open(&path));
            assert!(r.is_ok(), "{what}, {who}: {r:?}");
        }
        let ro = Store::<R24>::open_read_only(&path).unwrap();
        assert_eq!((ro.generation(), ro.len()), (2, 10), "{what}");
        assert_records(&ro, 10);
        assert!(ro.verify().unwrap().is_ok(), "{what}");
        drop(ro);
        let r = recmap::Reader::<R24>::open(&path).unwrap();
        assert_eq!((r.generation(), r.len()), (2, 10), "{what}");
        assert_eq!(r.get(3).unwrap(), Some(R24::make(3)), "{what}");
        drop(r);
        let s = Store::<R24>::open(&path).unwrap();
        assert_eq!((s.generation(), s.raw().log_commits()), (2, 0), "{what}");
        assert_records(&s, 10);
        drop(s);
        // Nothing was replayed into the data file.
        assert!(
            std::fs::read(&path).unwrap() == data,
            "{what}: data file changed"
        );
        // And the store works on: the next commit's frames overwrite the garbage.
        let mut s = Store::<R24>::open(&path).unwrap();
        s.push(&R24::make(10)).unwrap();
        s.commit().unwrap();
        s.simulate_crash();
        let s = Store::<R24>::open_read_only(&path).unwrap();
        assert_records(&s, 11);
        assert!(s.verify().unwrap().is_ok(), "{what}");
    }
}

#[test]
fn a_signed_frame_that_breaks_a_content_rule_is_corrupt_log() {
    // Each frame has a valid CRC, names this store and continues its chain,
    // so recmap must have written it; yet its content is impossible: the
    // log is not recmap's, and opening refuses rather than replay it.
    type Bad = fn(&Header) -> Vec<u8>;
    let cases: &[(&str, Bad)] = &[
        ("record index = record count", |h| {
            encode_commit(next_frame(h, 0), &[], &[(h.record_count, R24::make(0))])
        }),
        ("record index past the capacity", |h| {
            encode_commit(next_frame(h, 0), &[], &[(h.capacity, R24::make(0))])
        }),
        ("record index u64::MAX", |h| {
            encode_commit(next_frame(h, 0), &[], &[(u64::MAX, R24::make(0))])
        }),
        ("record indices out of order", |h| {
            let (a, b) = (R24::make(1), R24::make(2));
            encode_commit(next_frame(h, 0), &[], &[(5, a), (4, b)])
        }),
        ("the same record twice", |h| {
            let (a, b) = (R24::make(1), R24::make(2));
            encode_commit(next_frame(h, 0), &[], &[(4, a), (4, b)])
        }),
        ("a checksum entry for a group that is not full", |h| {
            encode_commit(next_frame(h, 0), &[(0, 1)], &[])
        }),
        ("a record count past the capacity", |h| {
            let f = FrameHeader {
                record_count: h.capacity + 1,
                flags: recmap::format::wal::FRAME_APPENDS_IN_PLACE,
                ..next_frame(h, 7)
            };
            encode_commit(f, &[], &[])
        }),
        ("a record count below the previous one", |h| {
            let f = FrameHeader {
                record_count: h.record_count - 1,
                ..next_frame(h, 7)
            };
            encode_commit(f, &[], &[])
        }),
        ("appends neither logged nor written in place", |h| {
            let f = FrameHeader {
                record_count: h.record_count + 1,
                ..next_frame(h, 7)
            };
            encode_commit(f, &[], &[])
        }),
        ("an unknown frame flag", |h| {
            let f = FrameHeader {
                flags: 0x80,
                ..next_frame(h, 0)
            };
            encode_commit(f, &[], &[])
        }),
    ];
    for &(what, bad) in cases {
        for after_a_good_commit in [false, true] {
            let ctx = format!("{what} (after a good commit: {after_a_good_commit})");
            let (_d, path, h, good) = store_and_valid_frame();
            let wal = wal_path(&path);
            let (log, offset) = if after_a_good_commit {
                // The bad frame follows a complete, valid commit.
                let next = Header {
                    generation: h.generation + 1,
                    ..h
                };
                let mut log = good.clone();
                log.extend_from_slice(&bad(&next));
                (log, good.len() as u64)
            } else {
                (bad(&h), 0)
            };
            write_at(&wal, 0, &log);
            let data = std::fs::read(&path).unwrap();
            for (who, open) in OPENERS {
                match no_panic(&format!("{ctx}, {who}"), || open(&path)) {
                    Err(Error::CorruptLog {
                        path: p,
                        offset: at,
                        reason,
                    }) => {
                        assert_eq!((p, at), (wal.clone(), offset), "{ctx}, {who}: {reason}")
                    }
                    r => panic!("{ctx}, {who}: {r:?}"),
                }
            }
            assert!(
                std::fs::read(&path).unwrap() == data,
                "{ctx}: the data file changed"
            );
            // Without the log the store opens at its header's state.
            std::fs::remove_file(&wal).unwrap();
            let s = Store::<R24>::open(&path).unwrap();
            assert_eq!(s.generation(), 2, "{ctx}");
            assert_records(&s, 10);
        }
    }
}
