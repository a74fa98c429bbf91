//! Arbitrary bytes as a store file, optionally with a log beside it.
//!
//! An input is a data file, or a data file, `recmap_fuzz::LOG_MARKER` and
//! the bytes of its log (`<store>-wal`). Each input is checked twice: as it
//! is, and "re-signed" (see `recmap_fuzz::resign`: header slot CRCs and the
//! schema CRC recomputed; `recmap_fuzz::resign_log`: log frames made to
//! continue the data header's chain, checksums recomputed), so mutations get
//! past the checksums into the field validation, the log's content rules
//! and the reading and replaying code. For each version:
//!
//! 1. the pure decoders: `Header::decode` on both slots of the header page,
//!    `choose_slot`, `Schema::decode` on the schema block (and on the input
//!    itself), the log's frames through `wal::Chain`; whatever decodes must
//!    re-encode to the same bytes;
//! 2. `RawStore::open_read_only` (which reads the log's commits into an
//!    overlay): an error must display; a store must read every sampled
//!    record (`get`), tile `runs`, `verify` without damage to the header or
//!    schema, refuse writes, and read typed for the seed types; a
//!    `RawReader` must open beside it and read the same records;
//! 3. when the store's numbers keep growth small, a writer, which replays
//!    the log into the data file: it must see what the read-only handle
//!    saw; repair if `verify` found damage (then `verify` must be clean),
//!    push one record, commit (a reader opened before sees it after
//!    `refresh`), `compact` (refused while the reader is open), reopen.
//!
//! Nothing may panic: a log that is not recmap's must give `Ok` (its frames
//! end the log) or a typed error (`CorruptLog`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recmap::format::wal::{Chain, FrameError, FrameHeader, FRAME_HEADER_LEN};
use recmap::format::{
    choose_slot, Header, FORMAT_V1, PAGE_SIZE, SCHEMA_OFFSET, SLOT_LEN, SLOT_LEN_V1, SLOT_OFFSETS,
};
use recmap::{Error, Options, Problem, RawReader, RawStore, Record, Repair, Schema, Store};
use recmap_fuzz::*;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Records read from each end of a store.
const SAMPLE: u64 = 2048;
/// Records read through a `RawReader` from each end (each read allocates).
const READER_SAMPLE: u64 = 64;
/// Largest input the decoders look at as a schema block on its own.
const MAX_BLOCK: usize = 64 * 1024;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| scratch_path("open_bytes"))
}

/// The writer's log size: the smallest, so that opening a writer (which
/// makes its log at least this long, writing zeros) stays cheap.
const WRITER_LOG: u64 = 64 << 10;
/// Largest log the decoders walk on their own (the file is written whole).
const MAX_LOG_WALK: usize = 1 << 20;

fuzz_target!(|input: &[u8]| {
    stats::input();
    let (data, log) = split_input(input);
    if log.is_some() {
        stats::hit("input with a log");
    }
    check(data, log);
    let mut fixed = data.to_vec();
    let mut fixed_log = log.map(|l| l.to_vec());
    resign(&mut fixed);
    if let (Some(h), Some(l)) = (data_header(&fixed), fixed_log.as_mut()) {
        if resign_log(&h, l) > 0 {
            stats::hit("log frames re-signed");
        }
    }
    if fixed != data || fixed_log.as_deref() != log {
        stats::hit("resigned");
        check(&fixed, fixed_log.as_deref());
    }
});

fn check(data: &[u8], log: Option<&[u8]>) {
    let slots = decode_header_page(data);
    decode_schema_blocks(data, &slots);
    if let (Some(h), Some(l)) = (data_header(data), log) {
        decode_log(&h, l);
    }
    let p = path();
    remove_store(p);
    std::fs::write(p, data).expect("write scratch file");
    if let Some(l) = log {
        std::fs::write(sidecar(p, "-wal"), l).expect("write scratch log");
    }
    if let Some(seen) = read_only(p) {
        writer(p, &seen);
    }
}

// ----- pure decoders --------------------------------------------------------

fn decode_header_page(data: &[u8]) -> [Option<Header>; 2] {
    // As the library reads it: one zero-padded page.
    let mut page = vec![0u8; PAGE_SIZE as usize];
    let n = data.len().min(page.len());
    page[..n].copy_from_slice(&data[..n]);
    let mut out = [None, None];
    for (idx, &off) in SLOT_OFFSETS.iter().enumerate() {
        let bytes = &page[off as usize..];
        for slot_index in [idx, 1 - idx] {
            let r = Header::decode(bytes, slot_index);
            match &r {
                Ok(h) => {
                    stats::hit(if h.version == FORMAT_V1 {
                        "header slot decoded (v1)"
                    } else {
                        "header slot decoded (v2)"
                    });
                    assert_eq!(h.slot_index(), slot_index);
                    if h.version == FORMAT_V1 {
                        assert_eq!(h.store_id, 0);
                        assert_eq!(h.header_seq, h.generation);
                        assert_eq!(
                            &h.encode_v1()[..],
                            &bytes[..SLOT_LEN_V1],
                            "v1 decode/encode round trip"
                        );
                    } else {
                        assert_ne!(h.store_id, 0);
                        assert_eq!(
                            &h.encode()[..],
                            &bytes[..SLOT_LEN],
                            "decode/encode round trip"
                        );
                    }
                    let l = h.layout;
                    assert_eq!(l.capacity(), h.capacity);
                    assert!(h.record_count <= h.capacity);
                    assert_eq!(l.data_offset % PAGE_SIZE, 0);
                    assert_eq!(l.table_offset % PAGE_SIZE, 0);
                    assert!(l.file_len() <= recmap::format::MAX_FILE_LEN);
                    assert_eq!(l.packing.record_size, h.record_size as u64);
                    if slot_index == idx {
                        out[idx] = Some(*h);
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
    let both = [
        Header::decode(&page[SLOT_OFFSETS[0] as usize..], 0),
        Header::decode(&page[SLOT_OFFSETS[1] as usize..], 1),
    ];
    if let Some(i) = choose_slot(&both) {
        assert!(both[i].is_ok());
    }
    out
}

fn decode_schema_blocks(data: &[u8], slots: &[Option<Header>; 2]) {
    let at = SCHEMA_OFFSET as usize;
    if data.len() <= MAX_BLOCK {
        decode_schema(data);
    }
    if data.len() > at {
        decode_schema(&data[at..data.len().min(at + MAX_BLOCK)]);
    }
    for h in slots.iter().flatten() {
        if let Some(block) = data.get(at..at + h.schema_len as usize) {
            decode_schema(block);
        }
    }
}

fn decode_schema(block: &[u8]) {
    let s = match Schema::decode(block) {
        Ok(s) => {
            stats::hit("schema block decoded");
            s
        }
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(s.validate().is_ok());
    assert_eq!(s.encoded_len(), block.len());
    assert_eq!(s.encode(), block, "schema decode/encode round trip");
    let _ = s.to_string();
    let spec = s.spec();
    for f in &s.fields {
        assert!(f.offset as u64 + f.size() as u64 <= s.record_size as u64);
        assert_eq!(s.field(&f.name), Some(f));
    }
    // Any valid layout's spec parses back (packed, so no larger), except the
    // two things a spec cannot say: no fields, and bool arrays.
    let bool_array = s
        .fields
        .iter()
        .any(|f| f.ty == recmap::FieldType::Bool && f.count != 1);
    match Schema::parse(&spec) {
        Ok(p) => {
            assert_eq!(p.fields.len(), s.fields.len());
            for (a, b) in p.fields.iter().zip(&s.fields) {
                assert_eq!((&a.name, a.ty, a.count), (&b.name, b.ty, b.count));
                assert!(a.offset <= b.offset);
            }
            assert!(p.record_size <= s.record_size);
            assert!(p.record_align <= s.record_align);
            assert_eq!(Schema::parse(&p.spec()).as_ref(), Ok(&p));
        }
        Err(e) => assert!(
            s.fields.is_empty() || bool_array,
            "spec {spec:?} of a valid schema does not parse: {e}"
        ),
    }
}

/// Walks the log's frames as a recovery does, without I/O: every frame
/// header re-encodes to its bytes, and the chain ends at the first frame
/// that does not continue it (or at a content rule it breaks).
fn decode_log(h: &Header, log: &[u8]) {
    if h.version == FORMAT_V1 {
        return;
    }
    let log = &log[..log.len().min(MAX_LOG_WALK)];
    let mut chain = Chain {
        store_id: h.store_id,
        header_seq: h.header_seq,
        generation: h.generation,
        record_count: h.record_count,
        capacity: h.capacity,
        packing: h.layout.packing,
        open: None,
    };
    let mut at = 0usize;
    while let Some(f) = FrameHeader::decode(&log[at..]) {
        assert_eq!(&f.encode()[..], &log[at..at + FRAME_HEADER_LEN]);
        let len = match chain.check_header(&f, (log.len() - at) as u64) {
            Ok(len) => len as usize,
            Err(e) => {
                assert!(matches!(e, FrameError::End(_)), "{e:?}");
                break;
            }
        };
        match chain.accept(&f, &log[at..at + len]) {
            Ok(done) => {
                stats::hit(if done {
                    "log: commit accepted"
                } else {
                    "log: frame accepted"
                });
                if done {
                    assert_eq!(chain.generation, f.generation);
                    assert_eq!(chain.record_count, f.record_count);
                    assert!(chain.record_count <= h.capacity);
                }
            }
            Err(FrameError::End(_)) => break,
            Err(FrameError::Corrupt(_)) => {
                stats::hit("log: corrupt frame");
                break;
            }
        }
        at += len;
    }
}

// ----- the store, read-only ---------------------------------------------------

/// Sampled record indices: the first and last `SAMPLE`.
fn sample(len: u64) -> impl Iterator<Item = u64> {
    let head = 0..len.min(SAMPLE);
    let tail = len.saturating_sub(SAMPLE).max(len.min(SAMPLE))..len;
    head.chain(tail)
}

/// What the read-only handle saw, for the writer (which replays the log)
/// to compare with.
struct Seen {
    len: u64,
    generation: u64,
    /// Records `(index, bytes)` of the first and last `READER_SAMPLE`.
    records: Vec<(u64, Vec<u8>)>,
}

/// Returns what the store holds when a writer is worth trying on it.
fn read_only(p: &PathBuf) -> Option<Seen> {
    let mut s = match RawStore::open_read_only(p) {
        Ok(s) => s,
        Err(e) => {
            stats::hit(match e {
                Error::NotRecmap { .. } => "open: NotRecmap",
                Error::NoValidHeader { .. } => "open: NoValidHeader",
                Error::UnsupportedVersion { .. } => "open: UnsupportedVersion",
                Error::Truncated { .. } => "open: Truncated",
                Error::ChecksumMismatch { .. } => "open: ChecksumMismatch",
                Error::BadSchema { .. } => "open: BadSchema",
                Error::CorruptLog { .. } => "open: CorruptLog",
                Error::HeaderDamaged { .. } => "open: HeaderDamaged",
                Error::BadCoordination { .. } => "open: BadCoordination",
                _ => "open: other error",
            });
            let _ = e.to_string();
            // Both read the log the same way. (Checked for this error only:
            // a reader's first open of a store costs a millisecond.)
            if matches!(e, Error::CorruptLog { .. } | Error::HeaderDamaged { .. }) {
                if let Ok(r) = RawReader::open(p) {
                    panic!("a reader opens ({r:?}) where a read-only handle finds {e}");
                }
            }
            return None;
        }
    };
    stats::hit("open: ok");
    if s.info().format_version == FORMAT_V1 {
        stats::hit("open: ok (v1)");
    }
    check_reads(&s);
    let rep = s
        .verify()
        .expect("verify of an opened store does no failing I/O");
    check_report(&s, &rep);
    check_reader(&s);
    let size = s.record_size();
    assert!(matches!(
        s.push(&vec![0; size]),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(s.commit(), Err(Error::ReadOnly { .. })));
    let info = s.info();
    let small = info.chunk_size <= 1 << 20 && info.record_size <= 64 << 10;
    let len = s.len();
    let head = 0..len.min(READER_SAMPLE);
    let tail = len.saturating_sub(READER_SAMPLE).max(head.end)..len;
    let seen = Seen {
        len,
        generation: s.generation(),
        records: head
            .chain(tail)
            .map(|i| (i, s.get(i).unwrap().to_vec()))
            .collect(),
    };
    check_typed(s);
    small.then_some(seen)
}

fn check_reads(s: &RawStore) {
    let len = s.len();
    let size = s.record_size();
    assert_eq!(len, s.committed_len());
    assert!(!s.has_uncommitted());
    assert!(s.is_read_only());
    assert!(s.capacity() >= len);
    assert_eq!(size as u32, s.schema().record_size);
    assert!(s.schema().validate().is_ok());
    let info = s.info();
    assert_eq!(info.records, len);
    assert!(info.file_size >= info.table_offset);
    assert!(info.table_offset >= info.data_offset);
    for i in sample(len) {
        let r = s.get(i).expect("record below len");
        assert_eq!(r.len(), size);
    }
    assert!(s.get(len).is_none());
    assert!(s.get(u64::MAX).is_none());
    // Runs tile [start, end) in order, each one the records it claims.
    for range in [0..len, len / 3..len.saturating_add(5), len..u64::MAX] {
        let end = range.end.min(len);
        let mut next = range.start;
        for (first, bytes) in s.runs(range.clone()) {
            assert_eq!(first, next);
            assert!(!bytes.is_empty() && bytes.len() % size == 0);
            let n = (bytes.len() / size) as u64;
            assert_eq!(Some(&bytes[..size]), s.get(first));
            assert_eq!(Some(&bytes[bytes.len() - size..]), s.get(first + n - 1));
            next = first + n;
        }
        assert_eq!(next, end.max(range.start));
    }
}

fn check_report(s: &RawStore, rep: &recmap::VerifyReport) {
    assert_eq!(rep.generation, s.generation());
    for p in &rep.problems {
        // Open already checked the schema CRC and the file length.
        assert!(matches!(p, Problem::PageChecksum { .. }), "{p}");
        let _ = p.to_string();
    }
    for n in &rep.notes {
        assert!(matches!(n, Problem::HeaderSlot { .. }));
        let _ = n.to_string();
    }
    assert_eq!(rep.records_checked, s.committed_len());
}

/// A reader opens wherever a read-only store does, and reads the same bytes.
fn check_reader(s: &RawStore) {
    let r = match RawReader::open(s.path()) {
        Ok(r) => r,
        Err(e) => panic!("opens read-only but not as a reader: {e}"),
    };
    let len = s.len();
    assert_eq!(r.len(), len);
    assert_eq!(r.generation(), s.generation());
    assert_eq!(r.schema(), s.schema());
    let head = 0..len.min(READER_SAMPLE);
    let tail = len.saturating_sub(READER_SAMPLE).max(head.end)..len;
    for i in head.chain(tail) {
        assert_eq!(r.get(i).expect("reader get").as_deref(), s.get(i));
        match r.get_ref(i) {
            Ok(b) => {
                assert!(r.is_append_only());
                assert_eq!(b, s.get(i));
            }
            Err(e) => {
                assert!(!r.is_append_only());
                assert!(matches!(e, Error::InvalidOption { .. }));
            }
        }
    }
    assert_eq!(r.get(len).expect("reader get past the end"), None);
    let mut wrong = vec![0u8; s.record_size() + 1];
    if len > 0 {
        assert!(matches!(
            r.read_into(0, &mut wrong),
            Err(Error::InvalidOption { .. })
        ));
    }
}

fn check_typed(s: RawStore) {
    fn typed<T: Record + PartialEq>(s: RawStore) {
        let t = Store::<T>::from_raw(s).expect("schema was compared");
        let len = t.len();
        for i in sample(len) {
            let v = t.get(i).unwrap();
            assert_eq!(bytemuck_bytes(v), t.raw().get(i).unwrap());
        }
        assert_eq!(
            t.iter().take(SAMPLE as usize).count() as u64,
            len.min(SAMPLE)
        );
        let n: usize = t.slices(0..len).map(|(_, r)| r.len()).sum();
        assert_eq!(n as u64, len);
    }
    let schema = s.schema().clone();
    macro_rules! try_types {
        ($($t:ty),*) => {
            $( if schema == <$t>::schema() { stats::hit("typed read"); return typed::<$t>(s); } )*
        };
    }
    try_types!(P16, R24, S12, B1, Big5000, Page4096);
}

fn bytemuck_bytes<T: Record>(v: &T) -> &[u8] {
    recmap::bytemuck::bytes_of(v)
}

// ----- the store, a writer ----------------------------------------------------

fn writer(p: &PathBuf, seen: &Seen) {
    let mut s = match Options::new().log_size(WRITER_LOG).open_raw(p, None) {
        Ok(s) => s,
        Err(e) => panic!("opens read-only but not for writing: {e}"),
    };
    // The writer replayed the log the read-only handle overlaid.
    assert_eq!((s.len(), s.generation()), (seen.len, seen.generation));
    assert_eq!(s.log_commits(), 0, "a writer's open leaves no log behind");
    for (i, rec) in &seen.records {
        assert_eq!(s.get(*i), Some(&rec[..]), "record {i} replayed");
    }
    let before = s.verify().unwrap();
    if !before.is_ok() && s.generation() == recmap::format::MAX_GENERATION {
        // A repair is a commit: at the last generation it is refused
        // before anything is written.
        stats::hit("writer: no generation left to repair");
        let e = s
            .repair(Repair::RebuildChecksums)
            .expect_err("a repair past the last generation");
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    option: "generation",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(s.verify().unwrap().problems, before.problems);
        return;
    }
    if !before.is_ok() {
        stats::hit("writer: repaired");
        let rep = s
            .repair(Repair::RebuildChecksums)
            .expect("repair of page checksums");
        assert_eq!(rep.records_after, rep.records_before);
        let after = s.verify().unwrap();
        assert!(
            after.is_ok(),
            "still damaged after repair: {:?}",
            after.problems
        );
    }
    stats::hit("writer: opened");
    let len = s.len();
    let mut reader = RawReader::open(p).expect("reader beside the writer");
    assert_eq!(reader.len(), len);
    let rec: Vec<u8> = (0..s.record_size()).map(|k| k as u8 ^ 0x5a).collect();
    assert_eq!(s.push(&rec).expect("push"), len);
    if s.generation() == recmap::format::MAX_GENERATION {
        // The last generation a header can carry: the commit is refused
        // before anything is written, and the store stays as it was.
        stats::hit("writer: generations used up");
        let e = s.commit().expect_err("a commit past the last generation");
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    option: "generation",
                    ..
                }
            ),
            "{e}"
        );
        s.rollback().expect("rollback");
        assert_eq!((s.len(), s.generation()), (len, seen.generation));
        return;
    }
    s.commit().expect("commit");
    assert_eq!(s.get(len), Some(&rec[..]));
    let rep = s.verify().unwrap();
    assert!(rep.is_ok(), "damaged after a commit: {:?}", rep.problems);
    assert!(reader.refresh().expect("refresh"));
    assert_eq!(reader.len(), len + 1);
    assert_eq!(reader.generation(), s.generation());
    assert_eq!(reader.get(len).unwrap().as_deref(), Some(&rec[..]));
    // Shrinking is refused while a reader maps the file, then allowed.
    assert!(matches!(s.compact(), Err(Error::ReadersPresent { .. })));
    drop(reader);
    let cap = s.capacity();
    let freed = s.compact().expect("compact");
    stats::hit(if freed > 0 {
        "writer: compacted"
    } else {
        "writer: nothing to compact"
    });
    assert!(s.capacity() > len && s.capacity() <= cap);
    assert_eq!(s.get(len), Some(&rec[..]));
    let rep = s.verify().unwrap();
    assert!(rep.is_ok(), "damaged after compact: {:?}", rep.problems);
    let generation = s.generation();
    drop(s);
    let s = RawStore::open_read_only(p).expect("reopen after commit");
    assert_eq!(s.len(), len + 1);
    assert_eq!(s.info().format_version, 2, "a commit upgrades a v1 file");
    assert_eq!(s.generation(), generation, "closing commits nothing");
    assert_eq!(s.get(len), Some(&rec[..]));
    assert!(s.verify().unwrap().is_ok());
}
