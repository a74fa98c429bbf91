//! Arbitrary bytes as the coordination file (`<store>-lock`) beside a valid
//! store, then a reader, a writer, a reader beside it, a commit, a refresh.
//!
//! An input is a flags byte and the file's bytes. Flag bit 0 ("re-sign")
//! puts recmap's fixed coordination header (magic, version, stripe count)
//! over the first 16 bytes and pads or cuts the file to its full length, so
//! mutations reach the words behind the header: the published state, the
//! writer's pid, the high-water mark, the apply sequence, the identity of
//! the data file and the stripe words (taken here from the input's bytes
//! 16.., repeated to fill the file). Without it the bytes are the file as
//! they are (empty, short, foreign, a header of another version).
//!
//! Nothing may panic or hang, and whatever the file holds, a handle that
//! opens reads exactly what the store holds:
//!
//! 1. a `RawReader` with no writer: `Ok` (it reads the store's records) or
//!    `BadCoordination`;
//! 2. a writer: `Ok` or `BadCoordination` (a file it cannot trust is never
//!    written); if it opens, a reader beside it reads the records, the
//!    writer updates one and appends one and commits, the reader adopts the
//!    commit and reads both, a snapshot reads them or expires, and `compact`
//!    is refused while the reader is open;
//! 3. whatever happened, the data file still holds the store (reopened
//!    read-only with the coordination file removed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recmap::{Error, Options, RawReader, RawStore};
use recmap_fuzz::{remove_store, scratch_path, sidecar, stats, R24};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Length of a coordination file (version 3): 4096 bytes of header words
/// and 4096 stripe words.
const COORD_LEN: usize = 4096 + 4096 * 8;
/// Records in the store.
const RECORDS: u64 = 300;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| scratch_path("coord_file"))
}

/// The bytes of a valid, closed store of `RECORDS` records (made once).
fn template() -> &'static Vec<u8> {
    static T: OnceLock<Vec<u8>> = OnceLock::new();
    T.get_or_init(|| {
        let p = path();
        remove_store(p);
        let mut s = Options::new()
            .create_new(true)
            .chunk_size(64 << 10)
            .log_size(64 << 10)
            .open::<R24>(p)
            .expect("create the template store");
        s.extend((0..RECORDS).map(R24::make)).expect("append");
        s.commit().expect("commit");
        s.close().expect("close");
        let bytes = std::fs::read(p).expect("read the template");
        remove_store(p);
        bytes
    })
}

fn record(i: u64) -> Vec<u8> {
    recmap::bytemuck::bytes_of(&R24::make(i)).to_vec()
}

/// The lock file an input describes.
fn lock_bytes(input: &[u8]) -> Vec<u8> {
    let Some((&flags, rest)) = input.split_first() else {
        return Vec::new();
    };
    if flags & 1 == 0 {
        return rest.to_vec();
    }
    let mut f = vec![0u8; COORD_LEN];
    f[..8].copy_from_slice(b"RMAPCORD");
    f[8..12].copy_from_slice(&3u32.to_le_bytes());
    f[12..16].copy_from_slice(&4096u32.to_le_bytes());
    if !rest.is_empty() {
        for (k, b) in f[16..].iter_mut().enumerate() {
            *b = rest[k % rest.len()];
        }
    }
    f
}

fn expect_bad(e: &Error, who: &str) {
    let _ = e.to_string();
    assert!(
        matches!(e, Error::BadCoordination { .. }),
        "{who}: a coordination file can only be refused, not {e}"
    );
}

fuzz_target!(|input: &[u8]| {
    stats::input();
    let p = path();
    let data = template();
    remove_store(p);
    std::fs::write(p, data).expect("write the store");
    let lock = sidecar(p, "-lock");
    let bytes = lock_bytes(input);
    std::fs::write(&lock, &bytes).expect("write the lock file");

    // 1. A reader, no writer.
    match RawReader::open(p) {
        Ok(r) => {
            stats::hit("reader: opened");
            assert_eq!(r.len(), RECORDS);
            for i in [0, RECORDS - 1] {
                match r.get(i) {
                    Ok(v) => assert_eq!(v, Some(record(i)), "reader: record {i}"),
                    // A stripe the file claims busy, with no writer alive.
                    Err(Error::WriterDied { .. }) => stats::hit("reader: writer died"),
                    Err(e) => panic!("reader get {i}: {e}"),
                }
            }
        }
        Err(e) => {
            stats::hit("reader: refused");
            expect_bad(&e, "reader");
        }
    }

    // 2. A writer, a reader beside it, a commit.
    match Options::new().log_size(64 << 10).open_raw(p, None) {
        Ok(mut w) => {
            stats::hit("writer: opened");
            assert_eq!(w.len(), RECORDS);
            let mut r = RawReader::open(p).expect("a reader beside a writer that opened");
            assert_eq!(r.get(5).expect("reader get"), Some(record(5)));
            let new = record(1000);
            w.set(5, &new).expect("set");
            w.push(&record(RECORDS)).expect("push");
            w.commit().expect("commit");
            assert!(r.refresh().expect("refresh"));
            assert_eq!(r.len(), RECORDS + 1);
            assert_eq!(r.get(5).expect("get after commit"), Some(new.clone()));
            assert_eq!(r.get(RECORDS).expect("get appended"), Some(record(RECORDS)));
            match r.snapshot() {
                Ok(s) => {
                    let mut buf = vec![0u8; new.len()];
                    match s.read_into(5, &mut buf) {
                        Ok(true) => assert_eq!(buf, new),
                        Ok(false) => panic!("snapshot lost record 5"),
                        Err(Error::SnapshotExpired { .. }) => stats::hit("snapshot: expired"),
                        Err(e) => panic!("snapshot read: {e}"),
                    }
                }
                Err(e) => panic!("snapshot: {e}"),
            }
            assert!(matches!(w.compact(), Err(Error::ReadersPresent { .. })));
            drop(r);
            drop(w);
        }
        Err(e) => {
            stats::hit("writer: refused");
            expect_bad(&e, "writer");
            // Refused: never written.
            assert_eq!(std::fs::read(&lock).expect("lock file"), bytes);
        }
    }

    // 3. The store is intact.
    let _ = std::fs::remove_file(&lock);
    let s = RawStore::open_read_only(p).expect("the store after all that");
    assert!(s.len() == RECORDS || s.len() == RECORDS + 1);
    assert_eq!(s.get(0), Some(&record(0)[..]));
    assert!(s.verify().expect("verify").is_ok());
});
