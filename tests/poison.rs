//! A failed sync poisons the writer: the commit fails, every later write and
//! commit fails with `Error::Poisoned`, reads still work, and reopening shows
//! the last good commit.

use recmap::{Error, Store};

recmap::record! {
    pub struct Rec { pub id: u64, pub v: u64 }
}

fn rec(i: u64) -> Rec {
    Rec { id: i, v: i * 3 }
}

fn check_poisoned(s: &mut Store<Rec>) {
    assert!(matches!(s.push(&rec(0)), Err(Error::Poisoned { .. })));
    assert!(matches!(s.set(0, &rec(0)), Err(Error::Poisoned { .. })));
    assert!(matches!(s.get_mut(0), Err(Error::Poisoned { .. })));
    let e = s.commit().unwrap_err();
    assert!(matches!(e, Error::Poisoned { op: "fsync", .. }), "{e}");
    assert!(e.to_string().contains("injected sync failure"), "{e}");
    assert!(s.raw().poisoned().is_some());
}

#[test]
fn failed_data_sync_poisons_and_reopen_shows_last_commit() {
    // (records appended, which sync fails, may the failed commit survive?)
    // 500 records (2 pages): a checked commit, one sync for data and header,
    // so after its failure the header may be in the page cache and the OS may
    // still write it. 40,000 records (157 pages, more than a checked commit
    // lists): sync 0 is the data sync, before the header is written, so the
    // commit cannot survive; sync 1 is the header's own.
    for (extra, nth, may_survive) in [(500u64, 0u64, true), (40_000, 0, false), (40_000, 1, true)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rmap");
        let mut s = Store::<Rec>::create(&path).unwrap();
        s.extend((0..1000).map(rec)).unwrap();
        s.commit().unwrap();
        let generation = s.generation();
        s.extend((1000..1000 + extra).map(rec)).unwrap();
        s.raw_mut().inject_sync_failure(nth);
        let e = s.commit().unwrap_err();
        assert!(matches!(e, Error::Io { op: "fsync", .. }), "{e}");
        check_poisoned(&mut s);
        // Reads keep working on the poisoned handle.
        assert_eq!(*s.get(999).unwrap(), rec(999));
        assert_eq!(
            s.generation(),
            generation,
            "no header was adopted after a failed sync"
        );
        drop(s);
        let s = Store::<Rec>::open(&path).unwrap();
        // Either the last good commit or, where the failed commit's header
        // was already written, that whole commit: never anything else.
        assert!(
            s.len() == 1000 || (may_survive && s.len() == 1000 + extra),
            "{extra} records, sync {nth}: len {}",
            s.len()
        );
        for i in 0..s.len() {
            assert_eq!(*s.get(i).unwrap(), rec(i));
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
    check_poisoned(&mut s);
    drop(s);
    let s = Store::<Rec>::open(&path).unwrap();
    assert_eq!(s.len(), 100);
    assert!(s.verify().unwrap().is_ok());
}
