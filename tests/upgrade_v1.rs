//! Format version 1: files written by the version-1 code
//! (`tests/fixtures/v1/{small,checked}.rmap`, described byte for byte in
//! `tests/fixtures/v1/README.md`) open, read-only and as a writer, and read
//! exactly the documented records, the checked one through its version-1
//! group list; `verify` is clean; the file stays version 1 (byte for byte)
//! until the first write, and the first commit, a growth or
//! `upgrade()` makes it version 2; a `Reader` reads it, and follows the
//! upgrade; a version-2 slot keeps a valid version-1 CRC at byte 124, so
//! version-1 software refuses an upgraded file (`UnsupportedVersion`)
//! instead of falling back to an older slot; and `recmap info` shows it.
//!
//! The fixtures are copied to a temporary directory before every open: a
//! writer open creates the log beside the file, and a commit rewrites it.

mod common;

use common::spawn::Launch;
use common::*;
use recmap::format::{decode_list, slot, FLAG_CHECKED, FORMAT_V1, FORMAT_VERSION, LIST_CARRIED};
use recmap::{Bool, Error, RawStore, Reader, Store};
use std::path::{Path, PathBuf};

recmap::record! {
    /// The fixtures' record type (README "Record type").
    pub struct Rec { pub id: u64, pub value: f64, pub count: u32, pub flag: Bool, pub _pad: [u8; 3] }
}

const SPEC: &str = "id:u64,value:f64,count:u32,flag:bool,_pad:bytes[3]";
const N: u64 = 1000;

fn r(id: u64, value: f64, count: u32, flag: bool) -> Rec {
    Rec {
        id,
        value,
        count,
        flag: flag.into(),
        _pad: [0; 3],
    }
}

/// Record `i` as appended.
fn appended(i: u64) -> Rec {
    r(
        i,
        i as f64 * 0.5,
        ((i * 7) % 1000) as u32,
        i.is_multiple_of(2),
    )
}

/// The records of `small.rmap`.
fn small() -> Vec<Rec> {
    let mut v: Vec<Rec> = (0..N).map(appended).collect();
    v[10] = r(10, -1.0, 999, false);
    v[500] = r(500, 1e300, 0, true);
    v[999] = r(999, -0.0, 4_294_967_295, true);
    v
}

/// The records of `checked.rmap`.
fn checked() -> Vec<Rec> {
    let mut v = small();
    v[42] = r(42, 42.25, 7, true);
    v
}

/// `(file name, its records, its generation)`.
fn fixtures() -> [(&'static str, Vec<Rec>, u64); 2] {
    [("small.rmap", small(), 8), ("checked.rmap", checked(), 9)]
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(name)
}

/// A copy of fixture `name` in a fresh temporary directory.
fn copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::copy(fixture_path(name), &path).unwrap();
    (dir, path)
}

/// Byte-for-byte equality (`-0.0 == 0.0` would hide a wrong sign).
fn same(a: &Rec, b: &Rec) -> bool {
    recmap::bytemuck::bytes_of(a) == recmap::bytemuck::bytes_of(b)
}

fn assert_records(s: &Store<Rec>, want: &[Rec], ctx: &str) {
    assert_eq!(s.len(), want.len() as u64, "{ctx}");
    for (i, w) in want.iter().enumerate() {
        let got = s.get(i as u64).unwrap();
        assert!(same(got, w), "{ctx}: record {i}: {got:?}, want {w:?}");
    }
    assert!(s.get(want.len() as u64).is_none(), "{ctx}");
}

fn assert_clean(s: &Store<Rec>, ctx: &str) {
    let rep = s.verify().unwrap();
    assert!(rep.is_ok() && rep.notes.is_empty(), "{ctx}: {rep:?}");
    assert_eq!(rep.records_checked, s.committed_len(), "{ctx}");
}

/// What a version-1 reader makes of the slot at `i`: it checks the magic,
/// then the CRC at 124 over bytes `0..124`, then the version. `Ok(version)`
/// means it reads the slot as a valid slot of that version (and refuses
/// the file unless it is 1); `Err` means it takes the slot for torn and
/// would fall back to the other one.
fn as_a_v1_reader_sees_it(path: &Path, i: usize) -> Result<u32, &'static str> {
    let b = read_slot(path, i);
    if b[..8] != recmap::format::MAGIC {
        return Err("bad magic");
    }
    if get_u32(&b, slot::CRC) != crc32(&b[..slot::CRC]) {
        return Err("checksum mismatch");
    }
    Ok(get_u32(&b, slot::FORMAT_VERSION))
}

// Tests in this binary run one at a time: a child process spawned by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;

#[test]
fn the_fixtures_are_what_the_readme_says() {
    for name in ["small.rmap", "checked.rmap"] {
        assert_eq!(std::fs::metadata(fixture_path(name)).unwrap().len(), 65536);
    }
    let p = fixture_path("small.rmap");
    let (s0, s1) = (decode_slot(&p, 0).unwrap(), decode_slot(&p, 1).unwrap());
    assert_eq!((s0.version, s1.version), (FORMAT_V1, FORMAT_V1));
    assert_eq!((s0.generation, s1.generation), (8, 7));
    assert_eq!(
        (s0.record_count, s0.capacity, s0.tail_crc),
        (N, 2210, 0x471c_1ae9)
    );
    assert_eq!(s0.layout.data_offset, 8192);
    assert!(s0.flags & FLAG_CHECKED != 0 && s1.flags & FLAG_CHECKED != 0);
    let list = decode_list(&read_at(&p, 0, 2048), &s0);
    let groups: Vec<u64> = list.iter().map(|e| e.0).collect();
    assert_eq!(groups, (0..5).map(|g| g | LIST_CARRIED).collect::<Vec<_>>());
    let list = decode_list(&read_at(&p, 2048, 2048), &s1);
    let own: Vec<u64> = list
        .iter()
        .filter(|e| e.0 & LIST_CARRIED == 0)
        .map(|e| e.0)
        .collect();
    assert_eq!(own, [0, 2, 5]);

    let p = fixture_path("checked.rmap");
    let (s0, s1) = (decode_slot(&p, 0).unwrap(), decode_slot(&p, 1).unwrap());
    assert_eq!((s0.generation, s1.generation), (8, 9));
    assert_eq!(s0, decode_slot(&fixture_path("small.rmap"), 0).unwrap());
    let list = decode_list(&read_at(&p, 2048, 2048), &s1);
    assert_eq!(list.len(), 5);
    assert_eq!(list[0], (0, 0x920c_02ff));
    assert!(list[1..].iter().all(|e| e.0 & LIST_CARRIED != 0));
}

#[test]
fn a_v1_file_opens_read_only_and_reads_the_documented_records() {
    let _serial = serial();
    for (name, want, generation) in fixtures() {
        let (_d, path) = copy(name);
        let orig = std::fs::read(&path).unwrap();
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.schema().spec(), SPEC);
        let info = s.info();
        assert_eq!(info.format_version, FORMAT_V1, "{name}");
        assert_eq!((info.generation, info.committed_records), (generation, N));
        assert_eq!((info.capacity, info.data_offset), (2210, 8192));
        assert_records(&s, &want, name);
        assert_eq!(s.iter().count() as u64, N);
        assert_clean(&s, name);
        drop(s);
        let raw = RawStore::open_read_only(&path).unwrap();
        for (i, w) in want.iter().enumerate() {
            assert_eq!(raw.get(i as u64).unwrap(), recmap::bytemuck::bytes_of(w));
        }
        drop(raw);
        // Reading writes nothing, and makes no log.
        assert!(std::fs::read(&path).unwrap() == orig, "{name} changed");
        assert!(
            !wal_path(&path).exists(),
            "{name}: a read-only open made a log"
        );
    }
}

#[test]
fn a_v1_file_opens_as_a_writer_and_stays_v1_until_the_first_write() {
    let _serial = serial();
    for (name, want, generation) in fixtures() {
        let (_d, path) = copy(name);
        let orig = std::fs::read(&path).unwrap();
        let mut s = Store::<Rec>::open(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_V1, "{name}");
        assert_eq!(s.generation(), generation);
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        // Changes that are rolled back, or dropped, are not writes.
        s.set(3, &appended(3000)).unwrap();
        s.push(&appended(N)).unwrap();
        assert!(same(s.get(3).unwrap(), &appended(3000)));
        s.rollback().unwrap();
        assert_records(&s, &want, name);
        s.set(4, &appended(4000)).unwrap();
        assert_eq!(s.info().format_version, FORMAT_V1, "{name}");
        drop(s);
        assert!(
            std::fs::read(&path).unwrap() == orig,
            "{name}: a writer that committed nothing changed the file"
        );
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_V1, "{name}");
        assert_records(&s, &want, name);
    }
}

#[test]
fn the_first_commit_upgrades_to_v2() {
    let _serial = serial();
    for (name, mut want, generation) in fixtures() {
        let (_d, path) = copy(name);
        let mut s = Store::<Rec>::open(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_V1);
        let changed = r(7, 7.75, 77, false);
        s.set(7, &changed).unwrap();
        s.push(&appended(N)).unwrap();
        assert_eq!(
            s.info().format_version,
            FORMAT_V1,
            "{name}: staged is not written"
        );
        let st = s.commit().unwrap();
        assert_eq!(
            (st.generation, st.records),
            (generation + 1, N + 1),
            "{name}"
        );
        assert_eq!(s.info().format_version, FORMAT_VERSION, "{name}");
        want[7] = changed;
        want.push(appended(N));
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        drop(s);

        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_VERSION, "{name}");
        assert_eq!(s.generation(), generation + 1);
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        drop(s);
        // Both slots are version 2 now (the upgrade's header and the
        // closing checkpoint's); the file goes on as any version-2 store.
        for i in 0..2 {
            assert_eq!(decode_slot(&path, i).unwrap().version, FORMAT_VERSION);
        }
        let mut s = Store::<Rec>::open(&path).unwrap();
        s.set(999, &appended(999)).unwrap();
        s.commit().unwrap();
        want[999] = appended(999);
        s.close().unwrap();
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_records(&s, &want, name);
        assert_clean(&s, name);
    }
}

#[test]
fn upgrade_upgrades_explicitly_once() {
    let _serial = serial();
    for (name, want, generation) in fixtures() {
        // RawStore::upgrade.
        let (_d, path) = copy(name);
        let mut raw = RawStore::open(&path).unwrap();
        assert_eq!(raw.info().format_version, FORMAT_V1);
        assert!(raw.upgrade().unwrap(), "{name}: nothing to upgrade?");
        assert_eq!(raw.info().format_version, FORMAT_VERSION);
        assert_eq!((raw.generation(), raw.len()), (generation, N), "{name}");
        assert!(!raw.upgrade().unwrap(), "{name}: upgraded twice");
        drop(raw);
        // The group list's checksums are in the table now: the version-1
        // slot that carried them is not needed to verify.
        let (newest, h) = newest_slot(&path);
        assert_eq!(
            (h.version, h.generation, h.flags & FLAG_CHECKED),
            (2, generation, 0)
        );
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_VERSION, "{name}");
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        drop(s);
        write_slot(&path, 1 - newest, &[0; recmap::format::SLOT_LEN]);
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.generation(), generation);
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        drop(s);
        let mut raw = RawStore::open(&path).unwrap();
        assert!(!raw.upgrade().unwrap(), "{name}: a version-2 file upgraded");
        drop(raw);

        // Store::upgrade; a read-only handle refuses.
        let (_d, path) = copy(name);
        let mut ro = Store::<Rec>::open_read_only(&path).unwrap();
        assert!(matches!(ro.upgrade(), Err(Error::ReadOnly { .. })));
        drop(ro);
        let mut s = Store::<Rec>::open(&path).unwrap();
        assert!(s.upgrade().unwrap());
        assert!(!s.upgrade().unwrap());
        assert_eq!(s.info().format_version, FORMAT_VERSION);
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        drop(s);
        let mut s = Store::<Rec>::open(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_VERSION);
        assert!(!s.upgrade().unwrap());
    }
}

#[test]
fn growth_upgrades_too() {
    let _serial = serial();
    for (name, want, generation) in fixtures() {
        let (_d, path) = copy(name);
        let mut s = Store::<Rec>::open(&path).unwrap();
        let cap = s.capacity();
        s.reserve(cap + 1).unwrap();
        assert!(s.capacity() > cap);
        assert_eq!(s.info().format_version, FORMAT_VERSION, "{name}");
        assert_eq!(s.generation(), generation);
        assert_records(&s, &want, name);
        assert_clean(&s, name);
        drop(s);
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_VERSION, "{name}");
        assert!(s.capacity() > cap);
        assert_records(&s, &want, name);
        assert_clean(&s, name);
    }
}

#[test]
fn an_interrupted_v1_checked_commit_falls_back_through_the_group_list() {
    let _serial = serial();
    // `checked.rmap`'s newest header is a checked commit whose list names
    // group 0 with the checksum of its new contents (record 42 changed).
    // Put record 42 back as it was, as if the commit's one sync had been
    // interrupted before its data page reached the disk: open must find
    // group 0 does not match, discard that header and use the other slot
    // (generation 8, `small.rmap`'s records), which verifies clean.
    let (_d, path) = copy("checked.rmap");
    let at = 8192 + 42 * 24;
    write_at(&path, at, recmap::bytemuck::bytes_of(&appended(42)));
    let ro = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!((ro.info().format_version, ro.generation()), (FORMAT_V1, 8));
    assert_records(&ro, &small(), "interrupted");
    assert!(ro.verify().unwrap().is_ok());
    drop(ro);
    // The writer's first commit upgrades from there.
    let mut s = Store::<Rec>::open(&path).unwrap();
    assert_eq!(s.generation(), 8);
    let mut want = small();
    want[43] = r(43, 0.0, 0, false);
    s.set(43, &want[43]).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(
        (s.info().format_version, s.generation()),
        (FORMAT_VERSION, 9)
    );
    assert_records(&s, &want, "after the upgrade");
    assert_clean(&s, "after the upgrade");
}

#[test]
fn a_reader_reads_a_v1_store_and_follows_its_upgrade() {
    let _serial = serial();
    for (name, want, generation) in fixtures() {
        let (_d, path) = copy(name);
        let mut reader = Reader::<Rec>::open(&path).unwrap();
        assert_eq!(
            (reader.len(), reader.generation()),
            (N, generation),
            "{name}"
        );
        for (i, w) in want.iter().enumerate() {
            assert!(
                same(&reader.get(i as u64).unwrap().unwrap(), w),
                "{name}: record {i}"
            );
        }
        assert!(reader.get(N).unwrap().is_none());
        {
            let snap = reader.snapshot().unwrap();
            let mut all = vec![appended(0); N as usize];
            assert_eq!(snap.read_range(0, &mut all).unwrap(), N as usize);
            assert!(all.iter().zip(&want).all(|(a, b)| same(a, b)), "{name}");
        }
        // A writer upgrades the file under the reader with its first commit.
        let mut s = Store::<Rec>::open(&path).unwrap();
        reader.refresh().unwrap();
        assert_eq!((reader.len(), reader.generation()), (N, generation));
        assert!(same(&reader.get(10).unwrap().unwrap(), &want[10]));
        let changed = r(10, 10.5, 1, true);
        s.set(10, &changed).unwrap();
        s.push(&appended(N)).unwrap();
        s.commit().unwrap();
        assert_eq!(s.info().format_version, FORMAT_VERSION);
        assert!(reader.refresh().unwrap(), "{name}: the commit was not seen");
        assert_eq!((reader.len(), reader.generation()), (N + 1, generation + 1));
        let mut want = want.clone();
        want[10] = changed;
        want.push(appended(N));
        for (i, w) in want.iter().enumerate() {
            assert!(
                same(&reader.get(i as u64).unwrap().unwrap(), w),
                "{name}: record {i}"
            );
        }
        drop(s);
        let reader = Reader::<Rec>::open(&path).unwrap();
        assert_eq!((reader.len(), reader.generation()), (N + 1, generation + 1));
        assert!(same(&reader.get(10).unwrap().unwrap(), &changed));
    }
}

#[test]
fn v1_software_refuses_an_upgraded_file() {
    let _serial = serial();
    for (name, _, _) in fixtures() {
        let (_d, path) = copy(name);
        // Before: both slots are version 1, as a version-1 reader sees them.
        for i in 0..2 {
            assert_eq!(as_a_v1_reader_sees_it(&path, i), Ok(1), "{name} slot {i}");
        }
        // Explicit upgrade: one version-2 slot next to the older version-1
        // one. Were the CRC at 124 not kept, a version-1 reader would take
        // the new slot for torn and silently use the old one, a state the
        // version-2 writer may already have overwritten data under.
        let mut s = Store::<Rec>::open(&path).unwrap();
        assert!(s.upgrade().unwrap());
        drop(s);
        let (newest, _) = newest_slot(&path);
        assert_eq!(
            as_a_v1_reader_sees_it(&path, newest),
            Ok(FORMAT_VERSION),
            "{name}: a version-1 reader must see a valid slot of an unknown version"
        );
        assert_eq!(as_a_v1_reader_sees_it(&path, 1 - newest), Ok(1));
        // After commits and checkpoints both slots are version 2, each with
        // a valid CRC at 124 over bytes 0..124 (checked with this test's own
        // CRC32, not the crate's).
        let mut s = Store::<Rec>::open(&path).unwrap();
        for k in 0..3 {
            s.push(&appended(N + k)).unwrap();
            s.commit().unwrap();
            s.checkpoint().unwrap();
        }
        drop(s);
        for i in 0..2 {
            let b = read_slot(&path, i);
            assert_eq!(
                get_u32(&b, slot::CRC),
                crc32(&b[..slot::CRC]),
                "{name} slot {i}"
            );
            assert_eq!(get_u32(&b, slot::V2_CRC), recmap::format::slot_crc_v2(&b));
            assert_eq!(as_a_v1_reader_sees_it(&path, i), Ok(FORMAT_VERSION));
        }
        // The version-2 reader says the same of a slot from the future.
        let mut b = read_slot(&path, newest_slot(&path).0);
        put_u32(&mut b, slot::FORMAT_VERSION, FORMAT_VERSION + 1);
        resign_v2(&mut b);
        write_slot(&path, newest_slot(&path).0, &b);
        assert!(matches!(
            Store::<Rec>::open_read_only(&path),
            Err(Error::UnsupportedVersion { found, .. }) if found == FORMAT_VERSION + 1
        ));
    }
}

#[cfg(feature = "cli")]
#[test]
fn recmap_info_and_verify_read_a_v1_file() {
    let _serial = serial();
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_recmap");
    for (name, _, generation) in fixtures() {
        let (_d, path) = copy(name);
        let orig = std::fs::read(&path).unwrap();
        let out = Command::new(bin)
            .args(["info", path.to_str().unwrap(), "--json"])
            .env_remove("RUST_LOG")
            .launch_output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["format_version"], 1, "{name}");
        assert_eq!(j["records"], N);
        assert_eq!(j["generation"], generation);
        assert_eq!(j["record_size"], 24);
        assert_eq!(j["data_offset"], 8192);
        assert_eq!(j["spec"], SPEC);
        let out = Command::new(bin)
            .args(["info", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .launch_output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("format version: 1\n"), "{text}");
        assert!(
            text.contains(&format!("generation:     {generation}\n")),
            "{text}"
        );
        let out = Command::new(bin)
            .args(["verify", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .launch_output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        // Neither command wrote anything.
        assert!(std::fs::read(&path).unwrap() == orig, "{name} changed");
        assert!(!wal_path(&path).exists());
        // `recmap upgrade` does, once.
        for (round, upgrades) in [(0, true), (1, false)] {
            let out = Command::new(bin)
                .args(["upgrade", path.to_str().unwrap()])
                .env_remove("RUST_LOG")
                .launch_output()
                .unwrap();
            assert!(out.status.success(), "{name} upgrade {round}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.contains("upgraded from"), upgrades, "{err}");
        }
        let s = Store::<Rec>::open_read_only(&path).unwrap();
        assert_eq!(s.info().format_version, FORMAT_VERSION);
        assert_eq!((s.generation(), s.len()), (generation, N));
        assert_clean(&s, name);
    }
}
