//! Transactions in one process: read-your-own-writes, rollback, drop as
//! rollback, readers that see only commits, snapshots that never mix
//! commits, and a reader of a log no writer has replayed.

mod common;

use recmap::{Error, Options, Reader, Store};

recmap::record! {
    pub struct Acct { pub id: u64, pub balance: i64 }
}

fn acct(id: u64, balance: i64) -> Acct {
    Acct { id, balance }
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn writer_reads_its_own_writes_and_rollback_restores() {
    let d = dir();
    let p = d.path().join("a.rmap");
    let mut s = Store::<Acct>::create(&p).unwrap();
    s.extend((0..2000).map(|i| acct(i, 100))).unwrap();
    s.commit().unwrap();
    s.set(5, &acct(5, -1)).unwrap();
    s.update(1500, |a| a.balance += 7).unwrap();
    s.push(&acct(2000, 3)).unwrap();
    assert_eq!(s.get(5).unwrap().balance, -1);
    assert_eq!(s.get(1500).unwrap().balance, 107);
    assert_eq!(s.get(2000).unwrap().balance, 3);
    // Iteration sees the pending images too.
    let sum: i64 = s.iter().map(|a| a.balance).sum();
    assert_eq!(sum, 2000 * 100 - 101 + 7 + 3);
    s.rollback().unwrap();
    assert_eq!(s.len(), 2000);
    assert_eq!(s.get(5).unwrap().balance, 100);
    assert_eq!(s.get(1500).unwrap().balance, 100);
    assert!(s.get(2000).is_none());
    assert!(!s.raw().has_uncommitted());
    // And a commit after a rollback commits only what came after.
    s.set(6, &acct(6, 9)).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Store::<Acct>::open_read_only(&p).unwrap();
    assert_eq!(s.get(5).unwrap().balance, 100);
    assert_eq!(s.get(6).unwrap().balance, 9);
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn dropping_a_writer_rolls_back_updates() {
    let d = dir();
    let p = d.path().join("a.rmap");
    let mut s = Store::<Acct>::create(&p).unwrap();
    s.extend((0..100).map(|i| acct(i, 1))).unwrap();
    s.commit().unwrap();
    s.set(3, &acct(3, 42)).unwrap();
    drop(s);
    let s = Store::<Acct>::open(&p).unwrap();
    assert_eq!(s.get(3).unwrap().balance, 1);
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn readers_see_only_commits_and_snapshots_expire_instead_of_mixing() {
    let d = dir();
    let p = d.path().join("a.rmap");
    let mut w = Store::<Acct>::create(&p).unwrap();
    w.extend((0..10_000).map(|i| acct(i, 10))).unwrap();
    w.commit().unwrap();
    let mut r = Reader::<Acct>::open(&p).unwrap();
    // An uncommitted update is invisible to a reader.
    w.set(0, &acct(0, 0)).unwrap();
    w.set(9_999, &acct(9_999, 20)).unwrap();
    r.refresh().unwrap();
    assert_eq!(r.get(0).unwrap().unwrap().balance, 10);
    assert_eq!(r.get(9_999).unwrap().unwrap().balance, 10);
    {
        let snap = r.snapshot().unwrap();
        let g = snap.generation();
        assert_eq!(snap.get(0).unwrap().unwrap().balance, 10);
        w.commit().unwrap();
        // The snapshot's commit is older than the pages' now: it refuses
        // rather than return a value of the newer commit.
        match snap.get(9_999) {
            Err(Error::SnapshotExpired { generation, index }) => {
                assert_eq!((generation, index), (g, 9_999))
            }
            other => panic!("expected SnapshotExpired, got {other:?}"),
        }
        // Pages the new commit did not touch still serve the snapshot
        // (unless they share a stripe: group 0 and 156 do not).
        assert_eq!(snap.get(5_000).unwrap().unwrap().balance, 10);
    }
    // A transaction retried on a fresh snapshot sees the new commit whole.
    let (a, b) = r
        .read_txn(|s| Ok((s.get(0)?.unwrap().balance, s.get(9_999)?.unwrap().balance)))
        .unwrap();
    assert_eq!((a, b), (0, 20));
    let snap = r.snapshot().unwrap();
    let total: i64 = snap.iter(0..10_000).map(|x| x.unwrap().balance).sum();
    assert_eq!(total, 10_000 * 10);
    let mut buf = vec![acct(0, 0); 300];
    assert_eq!(snap.read_range(9_900, &mut buf).unwrap(), 100);
    assert_eq!(buf[99].balance, 20);
}

/// A store at `p` of 1000 records of balance 1 whose last commit (record 7
/// set to 77, record 1000 appended with 5) is in the log only: the writer
/// crashed before a checkpoint and the data file forgot both records (as a
/// power loss could).
fn unreplayed_log(p: &std::path::Path) {
    let mut w = Store::<Acct>::create(p).unwrap();
    w.extend((0..1000).map(|i| acct(i, 1))).unwrap();
    w.commit().unwrap();
    w.checkpoint().unwrap();
    w.set(7, &acct(7, 77)).unwrap();
    w.push(&acct(1000, 5)).unwrap();
    w.commit().unwrap();
    assert_eq!(w.raw().log_commits(), 1);
    let data_offset = w.info().data_offset;
    w.simulate_crash();
    use crate::common::file_at::FileAt;
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(bytemuck::bytes_of(&acct(7, 1)), data_offset + 7 * 16)
        .unwrap();
    f.write_all_at(&[0xee; 16], data_offset + 1000 * 16)
        .unwrap();
}

#[test]
fn a_reader_of_an_unreplayed_log_reads_the_commits_in_it() {
    let d = dir();
    let p = d.path().join("a.rmap");
    unreplayed_log(&p);
    let data = std::fs::read(&p).unwrap();
    let mut r = Reader::<Acct>::open(&p).unwrap();
    assert_eq!(r.len(), 1001);
    assert_eq!(r.get(7).unwrap().unwrap().balance, 77);
    assert_eq!(r.get(1000).unwrap().unwrap().balance, 5);
    let snap = r.snapshot().unwrap();
    assert_eq!(snap.get(7).unwrap().unwrap().balance, 77);
    drop(r);
    let ro = Store::<Acct>::open_read_only(&p).unwrap();
    assert_eq!(ro.len(), 1001);
    assert_eq!(ro.get(7).unwrap().balance, 77);
    assert!(ro.verify().unwrap().is_ok());
    drop(ro);
    // Opening a writer replays and checkpoints: the data file changes.
    let w = Store::<Acct>::open(&p).unwrap();
    assert_eq!(w.get(7).unwrap().balance, 77);
    assert_eq!(w.raw().log_commits(), 0);
    assert!(w.verify().unwrap().is_ok());
    drop(w);
    assert_ne!(std::fs::read(&p).unwrap(), data);
}

/// A snapshot holding the images of an unreplayed log keeps serving them
/// after a writer replays that log into the data pages beside it, and
/// serves untouched pages through their stripes.
#[test]
fn a_snapshot_of_an_unreplayed_log_outlives_its_replay() {
    let d = dir();
    let p = d.path().join("a.rmap");
    unreplayed_log(&p);
    let mut r = Reader::<Acct>::open(&p).unwrap();
    let snap = r.snapshot().unwrap();
    assert_eq!(snap.get(7).unwrap().unwrap().balance, 77);
    // The writer replays the log: the data pages change under the snapshot.
    let w = Store::<Acct>::open(&p).unwrap();
    assert_eq!(w.get(7).unwrap().balance, 77);
    assert_eq!(snap.get(7).unwrap().unwrap().balance, 77, "an image");
    assert_eq!(snap.get(1000).unwrap().unwrap().balance, 5, "an image");
    // Record 500 is on a page the replay did not write (16-byte records,
    // 256 to a page; the log held records 7 and 1000).
    assert_eq!(
        snap.get(500).unwrap().unwrap().balance,
        1,
        "through its stripe"
    );
    assert!(snap.get(1001).unwrap().is_none());
    // Past the end, however far: nothing copied, no overflow.
    let mut buf = vec![acct(0, 0); 10];
    assert_eq!(snap.read_range(u64::MAX - 1, &mut buf).unwrap(), 0);
    assert_eq!(snap.read_range(1001, &mut buf).unwrap(), 0);
    assert_eq!(w.read_range(u64::MAX - 1, &mut buf).unwrap(), 0);
    // A neighbour of record 7 is the snapshot's value or expired, never other.
    match snap.get(8) {
        Ok(Some(a)) => assert_eq!(a.balance, 1),
        Err(recmap::Error::SnapshotExpired { .. }) => {}
        other => panic!("record 8: {other:?}"),
    }
    drop(w);
}

#[test]
fn commits_larger_than_the_log_are_atomic_too() {
    let d = dir();
    let p = d.path().join("a.rmap");
    let mut w = Options::new()
        .create(true)
        .log_size(64 << 10)
        .open::<Acct>(&p)
        .unwrap();
    w.extend((0..50_000).map(|i| acct(i, 1))).unwrap();
    w.commit().unwrap();
    for i in (0..50_000).step_by(3) {
        w.set(i, &acct(i, 2)).unwrap();
    }
    w.commit().unwrap();
    let log = std::fs::metadata(format!("{}-wal", p.display()))
        .unwrap()
        .len();
    assert_eq!(log, 64 << 10, "the log is given its room back");
    w.simulate_crash();
    let w = Store::<Acct>::open(&p).unwrap();
    let twos = w.iter().filter(|a| a.balance == 2).count();
    assert_eq!(twos, 50_000usize.div_ceil(3));
    assert!(w.verify().unwrap().is_ok());
}

#[test]
fn bulk_appends_rewritten_before_their_commit_are_checksummed_as_rewritten() {
    let d = dir();
    let p = d.path().join("bulk.rmap");
    let mut w = Store::<Acct>::create(&p).unwrap();
    // Large enough for the direct write path (the page checksums are then
    // taken from the caller's bytes as they are written).
    let batch: Vec<Acct> = (0..100_000).map(|i| acct(i, 1)).collect();
    w.extend_from_slice(&batch).unwrap();
    // Rewrite uncommitted appends in place, on several pages, before the
    // commit: their pages' checksums must cover the new bytes.
    for i in [0u64, 1, 5_000, 50_001, 99_999] {
        w.set(i, &acct(i, 2)).unwrap();
    }
    w.commit().unwrap();
    assert!(w.verify().unwrap().is_ok());
    drop(w);
    let r = Store::<Acct>::open_read_only(&p).unwrap();
    assert!(r.verify().unwrap().is_ok());
    assert_eq!(r.get(50_001).unwrap().balance, 2);
    assert_eq!(r.get(50_002).unwrap().balance, 1);
}
