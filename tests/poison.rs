//! A failed sync poisons the writer: the operation fails, every later write
//! and commit fails with `Error::Poisoned` naming the sync that failed
//! (`fsync` of the data file or `fsync log`), reads still work, and reopening
//! shows the last commit that reached the log (the page cache survives an
//! injected failure, so a commit whose frames were written is always there).

use recmap::{Error, IoEvent, Store};
use std::sync::{Arc, Mutex};

recmap::record! {
    pub struct Rec { pub id: u64, pub v: u64 }
}

fn rec(i: u64) -> Rec {
    Rec { id: i, v: i * 3 }
}

fn check_poisoned(s: &mut Store<Rec>, op: &str) {
    assert!(matches!(s.push(&rec(0)), Err(Error::Poisoned { .. })));
    assert!(matches!(s.set(0, &rec(0)), Err(Error::Poisoned { .. })));
    assert!(matches!(s.get_mut(0), Err(Error::Poisoned { .. })));
    assert!(matches!(s.checkpoint(), Err(Error::Poisoned { .. })));
    assert!(matches!(s.rollback(), Err(Error::Poisoned { .. })));
    let e = s.commit().unwrap_err();
    assert!(matches!(e, Error::Poisoned { op: o, .. } if o == op), "{e}");
    assert!(e.to_string().contains("injected sync failure"), "{e}");
    assert!(s.raw().poisoned().is_some());
}

/// Records every write-path event of `s` from now on.
fn observe(s: &mut Store<Rec>) -> Arc<Mutex<Vec<IoEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    s.raw_mut()
        .set_io_observer(Some(Box::new(move |ev| e.lock().unwrap().push(*ev))));
    events
}

#[test]
fn failed_commit_sync_poisons_and_reopen_shows_the_last_logged_commit() {
    // (records appended, which sync fails, the op it poisons, is the failed
    // commit in the log?)
    // 500 records (12 KB): logged with the commit, whose one sync is the log's.
    // 40,000 records (960 KB, more than the 256 KiB logged inline): written
    // in place first; sync 0 is that data sync, before any frame is
    // written, so the commit is lost; sync 1 is the log's, after its frames
    // were written.
    for (extra, nth, op, logged) in [
        (500u64, 0u64, "fsync log", true),
        (40_000, 0, "fsync", false),
        (40_000, 1, "fsync log", true),
    ] {
        let ctx = format!("{extra} records, sync {nth}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rmap");
        let mut s = Store::<Rec>::create(&path).unwrap();
        s.extend((0..1000).map(rec)).unwrap();
        s.commit().unwrap();
        let generation = s.generation();
        s.extend((1000..1000 + extra).map(rec)).unwrap();
        let events = observe(&mut s);
        s.raw_mut().inject_sync_failure(nth);
        let e = s.commit().unwrap_err();
        assert!(
            matches!(e, Error::Io { op: o, .. } if o == op),
            "{ctx}: {e}"
        );
        // The error names the file that failed: the log for its sync.
        let Error::Io { path: failed, .. } = &e else {
            unreachable!()
        };
        assert_eq!(
            failed.to_string_lossy().ends_with("-wal"),
            op == "fsync log",
            "{ctx}: {e}"
        );
        // The failed sync is the last event: nothing is written after it,
        // in particular no record image is applied to the data file.
        let ev = events.lock().unwrap().clone();
        let wrote_frames = ev.iter().any(|e| matches!(e, IoEvent::LogWrite { .. }));
        assert_eq!(wrote_frames, logged, "{ctx}: {ev:?}");
        if op == "fsync log" {
            assert!(
                matches!(ev.last(), Some(IoEvent::LogWrite { .. })),
                "{ctx}: {ev:?}"
            );
        }
        check_poisoned(&mut s, op);
        // Reads keep working on the poisoned handle.
        assert_eq!(*s.get(999).unwrap(), rec(999));
        assert_eq!(
            s.generation(),
            generation,
            "{ctx}: no commit was adopted after a failed sync"
        );
        drop(s);
        let s = Store::<Rec>::open(&path).unwrap();
        // The last good commit or, if its frames reached the log before
        // the failure, the failed commit whole: never anything in between.
        let want = if logged { 1000 + extra } else { 1000 };
        assert_eq!(s.len(), want, "{ctx}");
        for i in 0..s.len() {
            assert_eq!(*s.get(i).unwrap(), rec(i));
        }
        assert!(s.verify().unwrap().is_ok(), "{ctx}");
    }
}

#[test]
fn failed_checkpoint_sync_poisons_and_loses_no_commit() {
    // A checkpoint syncs the data file (sync 0), writes the next header and
    // syncs again (sync 1). Either failing leaves the commits in the log,
    // which the next writer replays.
    for nth in [0u64, 1] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.rmap");
        let mut s = Store::<Rec>::create(&path).unwrap();
        s.extend((0..1000).map(rec)).unwrap();
        s.commit().unwrap();
        s.set(5, &rec(5000)).unwrap();
        s.commit().unwrap();
        assert_eq!(s.raw().log_commits(), 2);
        let generation = s.generation();
        s.raw_mut().inject_sync_failure(nth);
        let e = s.checkpoint().unwrap_err();
        assert!(
            matches!(e, Error::Io { op: "fsync", .. }),
            "sync {nth}: {e}"
        );
        check_poisoned(&mut s, "fsync");
        assert_eq!(*s.get(5).unwrap(), rec(5000));
        drop(s); // poisoned: no checkpoint on drop
        let s = Store::<Rec>::open(&path).unwrap();
        assert_eq!((s.generation(), s.len()), (generation, 1000), "sync {nth}");
        assert_eq!(s.raw().log_commits(), 0, "recovery checkpointed");
        for i in 0..1000 {
            let want = if i == 5 { rec(5000) } else { rec(i) };
            assert_eq!(*s.get(i).unwrap(), want, "sync {nth}, record {i}");
        }
        assert!(s.verify().unwrap().is_ok());
    }
}

#[test]
fn failed_growth_sync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.rmap");
    let mut s = recmap::Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(&path)
        .unwrap();
    s.extend((0..100).map(rec)).unwrap();
    s.commit().unwrap();
    s.raw_mut().inject_sync_failure(0);
    let cap = s.capacity();
    let e = s.extend((100..cap + 10).map(rec)).unwrap_err();
    assert!(matches!(e, Error::Io { op: "fsync", .. }), "{e}");
    check_poisoned(&mut s, "fsync");
    drop(s);
    let s = Store::<Rec>::open(&path).unwrap();
    assert_eq!(s.len(), 100);
    assert!(s.verify().unwrap().is_ok());
}
