//! Checked commits: small commits publish their header with the same single
//! sync as their data, listing the pages open must find on disk. These tests
//! pin down the sync count, the fallback when a listed page did not reach
//! the disk, and the confirming header that protects an acknowledged checked
//! commit from later in-place writes to its pages.

use recmap::format::{decode_list, Header, FLAG_CHECKED, LIST_CARRIED, SLOT_OFFSETS};
use recmap::{IoEvent, Options, Store};
use std::path::Path;
use std::sync::{Arc, Mutex};

recmap::record! {
    pub struct Rec { pub id: u64, pub v: u64 }
}

fn rec(i: u64, v: u64) -> Rec {
    Rec { id: i, v }
}

fn store(path: &Path, n: u64) -> Store<Rec> {
    let mut s = Options::new().create_new(true).open::<Rec>(path).unwrap();
    s.extend((0..n).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    s
}

/// Counts syncs and writes the engine makes from now on.
fn count_io(s: &mut Store<Rec>) -> Arc<Mutex<(u64, u64)>> {
    let c = Arc::new(Mutex::new((0u64, 0u64)));
    let c2 = c.clone();
    s.raw_mut().set_io_observer(Some(Box::new(move |ev| {
        let mut c = c2.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            IoEvent::Sync => c.0 += 1,
            IoEvent::Write { .. } => c.1 += 1,
            IoEvent::SetLen { .. } => {}
        }
    })));
    c
}

fn newest_header(path: &Path) -> Header {
    let page = std::fs::read(path).unwrap();
    let slots: Vec<Header> = (0..2)
        .filter_map(|i| {
            let o = SLOT_OFFSETS[i] as usize;
            Header::decode(&page[o..o + 2048], i).ok()
        })
        .collect();
    *slots.iter().max_by_key(|h| h.generation).unwrap()
}

/// Entries of the newest header's group list that open checks (not carried).
fn own_entries(path: &Path) -> usize {
    let page = std::fs::read(path).unwrap();
    let h = newest_header(path);
    let o = SLOT_OFFSETS[h.slot_index()] as usize;
    decode_list(&page[o..o + 2048], &h)
        .iter()
        .filter(|e| e.0 & LIST_CARRIED == 0)
        .count()
}

#[test]
fn small_commits_sync_once_large_ones_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.rmap");
    // 100,000 records: 391 pages, loaded by an ordinary two-sync commit.
    let mut s = store(&path, 100_000);
    assert_eq!(newest_header(&path).flags & FLAG_CHECKED, 0);
    let io = count_io(&mut s);
    // One update: data, checksum entry and header, one sync.
    s.set(50_000, &rec(50_000, 1)).unwrap();
    s.commit().unwrap();
    assert_eq!(io.lock().unwrap().0, 1, "update + commit");
    assert_ne!(newest_header(&path).flags & FLAG_CHECKED, 0);
    // One append: data and header, one sync.
    s.push(&rec(100_000, 0)).unwrap();
    s.commit().unwrap();
    assert_eq!(io.lock().unwrap().0, 2, "append + commit");
    // 200 pages of appends: more than a checked commit lists, two syncs.
    let n = s.len();
    s.extend((n..n + 200 * 256).map(|i| rec(i, 0))).unwrap();
    let before = io.lock().unwrap().0;
    s.commit().unwrap();
    assert_eq!(io.lock().unwrap().0 - before, 2, "large commit");
    assert_eq!(newest_header(&path).flags & FLAG_CHECKED, 0);
}

#[test]
fn a_listed_page_missing_from_disk_falls_back_to_the_previous_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rmap");
    let mut s = store(&path, 1_000);
    let g0 = s.generation();
    let before = std::fs::read(&path).unwrap();
    s.extend((1_000..1_300).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    let after = std::fs::read(&path).unwrap();
    drop(s);
    // A crash image: the new header page reached the disk, the new data did
    // not (every other byte as before the commit).
    let mut img = before.clone();
    img[..4096].copy_from_slice(&after[..4096]);
    let crash = dir.path().join("crash.rmap");
    std::fs::write(&crash, &img).unwrap();
    let r = Store::<Rec>::open_read_only(&crash).unwrap();
    assert_eq!((r.generation(), r.len()), (g0, 1_000));
    assert!(r.verify().unwrap().is_ok());
    drop(r);
    // A writer continues from there and its next commit replaces the torn one.
    let mut w = Store::<Rec>::open(&crash).unwrap();
    w.push(&rec(1_000, 7)).unwrap();
    w.commit().unwrap();
    drop(w);
    let r = Store::<Rec>::open_read_only(&crash).unwrap();
    assert_eq!(r.len(), 1_001);
    assert_eq!(*r.get(1_000).unwrap(), rec(1_000, 7));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn overwriting_a_page_of_the_last_checked_commit_confirms_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.rmap");
    let mut s = store(&path, 1_000);
    s.set(10, &rec(10, 1)).unwrap();
    s.commit().unwrap();
    let acked = s.generation();
    let io = count_io(&mut s);
    // Same page again, not committed: the engine must first make the last
    // commit independent of that page's bytes (a confirming header).
    s.set(11, &rec(11, 2)).unwrap();
    assert_eq!(io.lock().unwrap().0, 1, "one confirming sync");
    assert_eq!(s.generation(), acked + 1);
    // Another page of the now confirmed state: no further sync.
    s.set(900, &rec(900, 2)).unwrap();
    assert_eq!(io.lock().unwrap().0, 1);
    // What a process kill leaves (the page cache): the acknowledged commit,
    // with the uncommitted update's page reported, never an older commit.
    let img = std::fs::read(&path).unwrap();
    let crash = dir.path().join("kill.rmap");
    std::fs::write(&crash, &img).unwrap();
    let r = Store::<Rec>::open_read_only(&crash).unwrap();
    assert_eq!(r.len(), 1_000);
    assert!(r.generation() >= acked);
    assert_eq!(*r.get(10).unwrap(), rec(10, 1), "acknowledged update kept");
    let rep = r.verify().unwrap();
    assert!(
        rep.problems.len() <= 2,
        "only the pages with uncommitted updates: {:?}",
        rep.problems
    );
}

#[test]
fn a_clean_close_confirms_so_later_damage_is_reported_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.rmap");
    let mut s = store(&path, 1_000);
    s.set(3, &rec(3, 9)).unwrap();
    s.commit().unwrap();
    let g = s.generation();
    drop(s);
    let h = newest_header(&path);
    assert_eq!(h.generation, g + 1, "closing published a confirming header");
    assert_eq!(own_entries(&path), 0, "nothing left for open to check");
    // Damage the updated page: verify names it; the commit stays.
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    let off = r.info().data_offset + 3 * 16 + 8;
    drop(r);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[off as usize] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.generation(), g + 1);
    assert_eq!(r.len(), 1_000);
    assert_eq!(r.verify().unwrap().problems.len(), 1);
}

#[test]
fn checked_commits_carry_checksums_instead_of_writing_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rmap");
    let mut s = store(&path, 100_000); // 391 pages, an ordinary commit
    let io = count_io(&mut s);
    let mut flushes = 0;
    for k in 0..200u64 {
        // A different page every time (256 records of 16 bytes per page).
        let i = (k * 256 + 7) % 100_000;
        let (syncs, writes) = *io.lock().unwrap();
        s.set(i, &rec(i, k + 1)).unwrap();
        s.commit().unwrap();
        let (syncs2, writes2) = *io.lock().unwrap();
        if syncs2 - syncs == 1 {
            // The record and the header: no table write.
            assert_eq!(writes2 - writes, 2, "commit {k}");
            assert_ne!(newest_header(&path).flags & FLAG_CHECKED, 0);
        } else {
            // The list would overflow: the table is written, two syncs.
            assert_eq!(syncs2 - syncs, 2, "commit {k}");
            assert_eq!(newest_header(&path).flags & FLAG_CHECKED, 0);
            flushes += 1;
        }
        if k % 50 == 0 {
            assert!(s.verify().unwrap().is_ok(), "commit {k}");
        }
    }
    assert_eq!(flushes, 1, "one table flush in 200 single-page commits");
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert!(r.verify().unwrap().is_ok());
    for k in 0..200u64 {
        let i = (k * 256 + 7) % 100_000;
        assert_eq!(r.get(i).unwrap().v, k + 1);
    }
}
