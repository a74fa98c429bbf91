//! Basic round trips through the public API.
use recmap::{Bool, FixedStr, Options, RawStore, Store};

recmap::record! {
    pub struct Rec { pub id: u64, pub v: f32, pub ok: Bool, pub name: FixedStr<3> }
}

recmap::record! {
    pub struct Big { pub id: u64, pub payload: [u8; 5000 - 8] }
}

fn rec(i: u64) -> Rec {
    Rec {
        id: i,
        v: i as f32 * 0.5,
        ok: Bool::from(i.is_multiple_of(2)),
        name: FixedStr::new("ab").unwrap(),
    }
}

#[test]
fn push_commit_reopen_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rmap");
    let mut s = Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(&path)
        .unwrap();
    assert_eq!(s.schema().spec(), "id:u64,v:f32,ok:bool,name:str[3]");
    for i in 0..10_000 {
        assert_eq!(s.push(&rec(i)).unwrap(), i);
    }
    assert_eq!(s.get(9_999).unwrap().id, 9_999);
    s.extend((10_000..200_000).map(rec)).unwrap();
    let st = s.commit().unwrap();
    assert_eq!(st.records, 200_000);
    s.set(5, &rec(55)).unwrap();
    s.get_mut(6).unwrap().id = 66;
    s.commit().unwrap();
    assert!(s.verify().unwrap().is_ok());
    let all: Vec<u64> = s.iter().map(|r| r.id).collect();
    assert_eq!(all.len(), 200_000);
    drop(s);
    let s = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(s.len(), 200_000);
    assert_eq!(s.get(5).unwrap().id, 55);
    assert_eq!(s.get(6).unwrap().id, 66);
    assert_eq!(s.get(7).unwrap().name.as_str(), "ab");
    for i in (0..200_000).step_by(997) {
        if i != 5 && i != 6 {
            assert_eq!(*s.get(i).unwrap(), rec(i));
        }
    }
    let r = s.verify().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.records_checked, 200_000);
    let raw = RawStore::open_read_only(&path);
    assert!(raw.is_ok(), "two shared opens coexist");
}

#[test]
fn big_records_and_uncommitted_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.rmap");
    let mut s = Store::<Big>::create(&path).unwrap();
    for i in 0..50 {
        s.push(&Big {
            id: i,
            payload: [i as u8; 4992],
        })
        .unwrap();
    }
    s.commit().unwrap();
    for i in 50..60 {
        s.push(&Big {
            id: i,
            payload: [0; 4992],
        })
        .unwrap();
    }
    drop(s);
    let s = Store::<Big>::open(&path).unwrap();
    assert_eq!(s.len(), 50);
    assert_eq!(s.get(49).unwrap().payload[4991], 49);
    assert!(s.verify().unwrap().is_ok());
    assert!(matches!(
        Store::<Big>::open(&path),
        Err(recmap::Error::Locked { .. })
    ));
    assert!(matches!(
        Store::<Rec>::open_read_only(&path),
        Err(recmap::Error::Locked { .. })
    ));
}

#[test]
fn handles_are_send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<Store<Rec>>();
    is::<RawStore>();
}
