//! The write-ahead log's I/O pattern, as the engine's test observer reports
//! it (`RawStore::set_io_observer`). A commit is durable at its one log
//! sync; nothing of it reaches the data pages before that:
//! - a small update commit is exactly one log write (one contiguous run of
//!   frames, at the log's end) and one log sync, then the record's data
//!   write, and no data sync;
//! - small appends ride in the frame the same way;
//! - bulk appends (more than 256 KiB) are written to the data file and
//!   synced before their frame, which only counts them;
//! - a checkpoint (explicit, at close, and when the next frames would pass
//!   `Options::log_size`) writes the pending table entries, syncs, writes
//!   the next header slot, syncs;
//! - a commit larger than the log is one write past the limit, and is
//!   checkpointed at once (the log given back to its size);
//! - rollback and a drop without commit write nothing to the data pages or
//!   the log.
//!
//! Replaces `tests/checked_commit.rs` (format version 1's checked commits).

use recmap::format::wal::{
    record_entry_len, FrameHeader, CRC_ENTRY_LEN, FRAME_APPENDS_IN_PLACE, FRAME_HEADER_LEN,
    FRAME_MORE, FRAME_TRAILER_LEN,
};
use recmap::format::{choose_slot, Header, SLOT_LEN, SLOT_OFFSETS};
use recmap::{IoEvent, Options, Store};
mod common;
use common::file_at::FileAt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

recmap::record! {
    /// 16 bytes: 256 per page, dense.
    pub struct Rec { pub id: u64, pub v: u64 }
}

fn rec(id: u64, v: u64) -> Rec {
    Rec { id, v }
}

const SIZE: u64 = 16;
const PER_PAGE: u64 = 4096 / SIZE;
const SMALL_LOG: u64 = 64 << 10;

fn log_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// A store of `n` committed records (`v == 0`), checkpointed: the log is empty.
fn store(path: &Path, n: u64, log_size: u64) -> Store<Rec> {
    let mut s = Options::new()
        .create_new(true)
        .log_size(log_size)
        .initial_capacity(n + 100_000)
        .open::<Rec>(path)
        .unwrap();
    s.extend((0..n).map(|i| rec(i, 0))).unwrap();
    s.commit().unwrap();
    s.checkpoint().unwrap();
    assert_eq!(s.raw().log_commits(), 0);
    s
}

type Events = Arc<Mutex<Vec<IoEvent>>>;

/// Records every write, sync and length change the engine makes from now on.
fn record_io(s: &mut Store<Rec>) -> Events {
    record_io_and_frames(s).0
}

/// As `record_io`, and keeps the bytes of every log write as they were
/// written (a checkpoint may shrink the log before the test reads it).
fn record_io_and_frames(s: &mut Store<Rec>) -> (Events, Arc<Mutex<Vec<Vec<u8>>>>) {
    let ev: Events = Arc::default();
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (e2, f2) = (ev.clone(), frames.clone());
    let log = std::fs::File::open(log_path(s.raw().path())).unwrap();
    s.raw_mut().set_io_observer(Some(Box::new(move |e| {
        if let IoEvent::LogWrite { offset, len } = *e {
            let mut b = vec![0u8; len as usize];
            log.read_exact_at(&mut b, offset).unwrap();
            f2.lock().unwrap_or_else(|p| p.into_inner()).push(b);
        }
        e2.lock().unwrap_or_else(|p| p.into_inner()).push(*e)
    })));
    (ev, frames)
}

/// `e` without the log growth (`LogSetLen`) that may come right before a
/// commit's log write: a log grows as commits need room.
fn before_growth(e: &[IoEvent]) -> &[IoEvent] {
    let keep = e.len()
        - e.iter()
            .rev()
            .take_while(|e| matches!(e, IoEvent::LogSetLen { .. }))
            .count();
    &e[..keep]
}

fn take(ev: &Events) -> Vec<IoEvent> {
    std::mem::take(&mut *ev.lock().unwrap())
}

fn frame_len(crcs: u64, records: u64) -> u64 {
    (FRAME_HEADER_LEN + FRAME_TRAILER_LEN) as u64
        + crcs * CRC_ENTRY_LEN as u64
        + records * record_entry_len(SIZE)
}

/// The length of a log write that ends a commit whose frames take `len`
/// bytes from `offset`: it runs on with zeros to the next page boundary.
fn padded(offset: u64, len: u64) -> u64 {
    (offset + len).next_multiple_of(4096) - offset
}

/// The frame header at `offset` of the store's log.
fn frame_at(path: &Path, offset: u64) -> FrameHeader {
    let f = std::fs::File::open(log_path(path)).unwrap();
    let mut b = [0u8; FRAME_HEADER_LEN];
    f.read_exact_at(&mut b, offset).unwrap();
    FrameHeader::decode(&b).expect("a frame header")
}

fn newest_header(path: &Path) -> Header {
    let page = std::fs::read(path).unwrap();
    let slots = [0, 1].map(|i| Header::decode(&page[SLOT_OFFSETS[i] as usize..][..2048], i));
    let i = choose_slot(&slots).expect("a valid header");
    slots[i].clone().unwrap()
}

fn is_header_write(e: &IoEvent) -> bool {
    matches!(*e, IoEvent::Write { offset, len } if SLOT_OFFSETS.contains(&offset) && len == SLOT_LEN as u64)
}

/// Asserts `events` is one checkpoint: table entry writes (inside the table
/// region, at least `min_table_writes`), a data sync, one header slot, a
/// data sync. Returns the table writes' offsets.
fn assert_checkpoint(events: &[IoEvent], table: std::ops::Range<u64>, what: &str) -> Vec<u64> {
    let n = events.len();
    assert!(n >= 3, "{what}: not a checkpoint: {events:?}");
    assert!(
        is_header_write(&events[n - 2]) && events[n - 1] == IoEvent::Sync,
        "{what}: must end with a header write and a sync: {events:?}"
    );
    assert_eq!(
        events[n - 3],
        IoEvent::Sync,
        "{what}: the table must be synced before the header: {events:?}"
    );
    events[..n - 3]
        .iter()
        .map(|e| match *e {
            IoEvent::Write { offset, len } if table.contains(&offset) && len % 4 == 0 => offset,
            _ => panic!("{what}: only table writes before the checkpoint's first sync: {events:?}"),
        })
        .collect()
}

fn table_region(s: &Store<Rec>) -> std::ops::Range<u64> {
    let i = s.info();
    i.table_offset..i.file_size
}

#[test]
fn a_small_update_commit_is_one_log_write_and_one_log_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.rmap");
    let mut s = store(&path, 100_000, 4 << 20);
    let data_offset = s.info().data_offset;
    let ev = record_io(&mut s);
    let mut end = 0;
    for (k, i) in [50_000u64, 7, 99_999, 50_001].into_iter().enumerate() {
        let g = s.generation();
        s.set(i, &rec(i, k as u64 + 1)).unwrap();
        assert_eq!(take(&ev), [], "set wrote before the commit");
        assert_eq!(s.get(i), Some(&rec(i, k as u64 + 1)), "read your own write");
        s.commit().unwrap();
        let e = take(&ev);
        // A full page's checksum is logged; the partly filled last page's
        // is the frame's tail_crc.
        let crcs = u64::from(i / PER_PAGE < 100_000 / PER_PAGE);
        let want_len = frame_len(crcs, 1);
        assert_eq!(
            e,
            [
                IoEvent::LogWrite {
                    offset: end,
                    len: padded(end, want_len)
                },
                IoEvent::LogSync,
                IoEvent::Write {
                    offset: data_offset + i * SIZE,
                    len: SIZE
                },
            ],
            "commit {k}: one frame at the log's end, its sync, then the record"
        );
        let h = frame_at(&path, end);
        assert_eq!(h.generation, g + 1);
        assert_eq!((h.crc_entries as u64, h.record_entries), (crcs, 1));
        assert_eq!((h.prev_count, h.record_count), (100_000, 100_000));
        assert_eq!(h.flags, 0);
        end += want_len;
    }
    assert_eq!(s.raw().log_commits(), 4);

    // A batch over 100 pages: still one write and one sync, every data
    // write after it.
    let idx: Vec<u64> = (0..100).map(|k| k * 3 * PER_PAGE + k).collect();
    for &i in &idx {
        s.set(i, &rec(i, 77)).unwrap();
    }
    assert_eq!(take(&ev), []);
    s.commit().unwrap();
    let e = take(&ev);
    assert_eq!(
        e[0],
        IoEvent::LogWrite {
            offset: end,
            len: padded(end, frame_len(100, 100))
        }
    );
    assert_eq!(e[1], IoEvent::LogSync);
    let writes: Vec<u64> = e[2..]
        .iter()
        .map(|e| match *e {
            IoEvent::Write { offset, len: SIZE } => (offset - data_offset) / SIZE,
            _ => panic!("after the log sync only record writes: {e:?}"),
        })
        .collect();
    assert_eq!(writes, idx);
    drop(s);
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    for &i in &idx {
        assert_eq!(r.get(i), Some(&rec(i, 77)));
    }
    assert_eq!(r.get(50_000), Some(&rec(50_000, 1)));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn small_appends_ride_in_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rmap");
    let mut s = store(&path, 1_000, 4 << 20);
    let data_offset = s.info().data_offset;
    let ev = record_io(&mut s);
    for i in 1_000..1_010 {
        s.push(&rec(i, 5)).unwrap();
    }
    assert_eq!(take(&ev), [], "push wrote before the commit");
    s.commit().unwrap();
    let e = take(&ev);
    assert_eq!(
        e,
        [
            IoEvent::LogWrite {
                offset: 0,
                len: padded(0, frame_len(0, 10))
            },
            IoEvent::LogSync,
            IoEvent::Write {
                offset: data_offset + 1_000 * SIZE,
                len: 10 * SIZE
            },
        ]
    );
    let h = frame_at(&path, 0);
    assert_eq!((h.prev_count, h.record_count), (1_000, 1_010));
    assert_eq!(
        (h.record_entries, h.flags & FRAME_APPENDS_IN_PLACE),
        (10, 0)
    );

    // Exactly 256 KiB of appends is still logged: no data sync.
    let n = (256 << 10) / SIZE;
    for i in 1_010..1_010 + n {
        s.push(&rec(i, 6)).unwrap();
    }
    assert_eq!(take(&ev), []);
    s.commit().unwrap();
    let e = take(&ev);
    assert!(!e.contains(&IoEvent::Sync), "{:?}", &e[..e.len().min(8)]);
    let lw = e
        .iter()
        .position(|e| matches!(e, IoEvent::LogWrite { .. }))
        .unwrap();
    assert!(before_growth(&e[..lw]).is_empty(), "{:?}", &e[..lw]);
    let e = &e[lw..];
    assert!(matches!(e[0], IoEvent::LogWrite { .. }) && e[1] == IoEvent::LogSync);
    let at = frame_len(0, 10);
    assert_eq!(frame_at(&path, at).record_count, 1_010 + n);
    assert!(e[2..].iter().all(
        |e| matches!(e, IoEvent::Write { offset, .. } if *offset >= data_offset + 1_010 * SIZE)
    ));
    drop(s);
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.len(), 1_010 + n);
    assert_eq!(r.get(1_005), Some(&rec(1_005, 5)));
    assert_eq!(r.get(1_010 + n - 1), Some(&rec(1_010 + n - 1, 6)));
}

#[test]
fn bulk_appends_are_synced_before_their_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.rmap");
    let mut s = store(&path, 1_000, 4 << 20);
    let data_offset = s.info().data_offset;
    let ev = record_io(&mut s);
    let mut count = 1_000u64;
    // Staged by push (then flushed by the commit) and written directly by
    // extend_from_slice (a dense layout): both more than 256 KiB.
    for (k, n) in [20_000u64, 30_000].into_iter().enumerate() {
        let new: Vec<Rec> = (count..count + n).map(|i| rec(i, k as u64)).collect();
        if k == 0 {
            for r in &new {
                s.push(r).unwrap();
            }
        } else {
            s.extend_from_slice(&new).unwrap();
        }
        s.commit().unwrap();
        let e = take(&ev);
        let log_write = e
            .iter()
            .position(|e| matches!(e, IoEvent::LogWrite { .. }))
            .expect("a log write");
        assert_eq!(
            e.iter()
                .filter(|e| matches!(e, IoEvent::LogWrite { .. }))
                .count(),
            1
        );
        assert_eq!(e[log_write + 1], IoEvent::LogSync);
        assert!(
            !e[log_write..].contains(&IoEvent::Sync),
            "no data sync after the frame"
        );
        let sync = e[..log_write]
            .iter()
            .rposition(|e| *e == IoEvent::Sync)
            .expect("a data sync before the frame");
        // The appended records were all written before that sync.
        let (lo, hi) = (data_offset + count * SIZE, data_offset + (count + n) * SIZE);
        let mut covered: Vec<(u64, u64)> = e[..sync]
            .iter()
            .filter_map(|e| match *e {
                IoEvent::Write { offset, len } => Some((offset, offset + len)),
                _ => None,
            })
            .collect();
        covered.sort_unstable();
        let mut at = lo;
        for (a, b) in covered {
            if a <= at {
                at = at.max(b);
            }
        }
        assert!(
            at >= hi,
            "appends {lo}..{hi} written before the sync only up to {at}"
        );
        assert!(
            e[log_write + 2..].iter().all(
                |e| matches!(e, IoEvent::Write { offset, .. } if *offset < lo || *offset >= hi)
            ),
            "the appends were not written again"
        );
        let IoEvent::LogWrite { offset, len } = e[log_write] else {
            unreachable!()
        };
        let h = frame_at(&path, offset);
        assert_ne!(h.flags & FRAME_APPENDS_IN_PLACE, 0);
        assert_eq!(h.record_entries, 0, "the frame only counts them");
        assert_eq!((h.prev_count, h.record_count), (count, count + n));
        let flen = frame_len(h.crc_entries as u64, h.record_entries as u64);
        assert!(flen < 4096, "a frame of checksums only: {flen} bytes");
        assert_eq!(len, padded(offset, flen));
        count += n;
    }
    drop(s);
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.len(), count);
    assert_eq!(r.get(20_999), Some(&rec(20_999, 0)));
    assert_eq!(r.get(count - 1), Some(&rec(count - 1, 1)));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn checkpoints_write_the_table_then_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.rmap");
    let mut s = store(&path, 100_000, 4 << 20);
    let table = table_region(&s);
    let ev = record_io(&mut s);
    // Explicit: five pages changed by two commits.
    for (k, g) in [3u64, 90, 91, 200, 389].into_iter().enumerate() {
        let i = g * PER_PAGE + 1;
        s.set(i, &rec(i, 9)).unwrap();
        if k % 3 == 2 {
            s.commit().unwrap();
        }
    }
    s.commit().unwrap();
    let seq = newest_header(&path).header_seq;
    take(&ev);
    s.checkpoint().unwrap();
    let e = take(&ev);
    let writes = assert_checkpoint(&e, table.clone(), "explicit checkpoint");
    let want: Vec<u64> = [3u64, 90, 200, 389]
        .iter()
        .map(|g| table.start + g * 4)
        .collect();
    assert_eq!(writes, want, "one write per run of adjacent groups");
    let h = newest_header(&path);
    assert_eq!((h.header_seq, h.generation), (seq + 1, s.generation()));
    assert_eq!(s.raw().log_commits(), 0);
    s.checkpoint().unwrap();
    assert_eq!(take(&ev), [], "nothing to checkpoint");

    // At close.
    s.set(5, &rec(5, 10)).unwrap();
    s.commit().unwrap();
    take(&ev);
    let g = s.generation();
    s.close().unwrap();
    let e = take(&ev);
    assert_checkpoint(&e, table.clone(), "close");
    let h = newest_header(&path);
    assert_eq!((h.header_seq, h.generation), (seq + 2, g));

    // At drop.
    let mut s = Options::new().open::<Rec>(&path).unwrap();
    let ev = record_io(&mut s);
    s.set(6, &rec(6, 11)).unwrap();
    s.commit().unwrap();
    take(&ev);
    drop(s);
    assert_checkpoint(&take(&ev), table.clone(), "drop");
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.get(6), Some(&rec(6, 11)));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn a_commit_that_would_pass_the_log_size_checkpoints_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.rmap");
    let mut s = store(&path, 100_000, SMALL_LOG);
    let table = table_region(&s);
    let ev = record_io(&mut s);
    let mut end = 0u64;
    let mut checkpoints = 0;
    let mut k = 0u64;
    let last = loop {
        k += 1;
        // Alternating pages: every frame has one checksum entry.
        let i = (k % 7) * PER_PAGE * 13;
        s.set(i, &rec(i, k)).unwrap();
        s.commit().unwrap();
        let e = take(&ev);
        let lw = e
            .iter()
            .position(|e| matches!(e, IoEvent::LogWrite { .. }))
            .unwrap();
        let IoEvent::LogWrite { offset, len } = e[lw] else {
            unreachable!()
        };
        assert_eq!(e[lw + 1], IoEvent::LogSync);
        assert_eq!(e.len(), lw + 3, "commit {k}: {e:?}");
        let h = frame_at(&path, offset);
        let flen = frame_len(h.crc_entries as u64, h.record_entries as u64);
        assert_eq!(len, padded(offset, flen), "commit {k}: padded to a page");
        if lw == 0 {
            assert_eq!(offset, end, "commit {k}: frames follow each other");
            assert!(end + len <= SMALL_LOG, "commit {k} passed the log size");
            end += flen;
        } else {
            assert!(end + flen > SMALL_LOG, "commit {k} checkpointed early");
            assert_checkpoint(&e[..lw], table.clone(), "checkpoint to make room");
            assert_eq!(offset, 0, "the log starts over");
            let h = newest_header(&path);
            assert_eq!(h.generation, s.generation() - 1);
            assert_eq!(
                frame_at(&path, 0).header_seq,
                h.header_seq,
                "the frame follows the new header"
            );
            end = flen;
            checkpoints += 1;
            if checkpoints == 3 {
                break (i, k);
            }
        }
        assert!(k < 5_000, "no checkpoint in {k} commits");
    };
    assert_eq!(std::fs::metadata(log_path(&path)).unwrap().len(), SMALL_LOG);
    // A kill right after the commit that followed the checkpoint: that
    // commit is in the log only, and is found.
    let g = s.generation();
    s.simulate_crash();
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.generation(), g);
    assert_eq!(r.get(last.0), Some(&rec(last.0, last.1)));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn a_commit_larger_than_the_log_works_and_is_checkpointed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rmap");
    let mut s = store(&path, 100_000, SMALL_LOG);
    let table = table_region(&s);
    let (ev, frames) = record_io_and_frames(&mut s);
    // First with an empty log, then after a small commit (which the big one
    // checkpoints before it).
    for round in 0..2u64 {
        let seq = newest_header(&path).header_seq;
        if round == 1 {
            s.set(2, &rec(2, 1)).unwrap();
            s.commit().unwrap();
            take(&ev);
        }
        // 60,000 updates: 1.4 MB of record images, two frames.
        let n = 60_000u64;
        for i in 0..n {
            s.set(i * 3 / 2, &rec(i * 3 / 2, 100 + round)).unwrap();
        }
        s.commit().unwrap();
        let e = take(&ev);
        let lw = e
            .iter()
            .position(|e| matches!(e, IoEvent::LogWrite { .. }))
            .unwrap();
        assert_eq!(
            e.iter()
                .filter(|e| matches!(e, IoEvent::LogWrite { .. }))
                .count(),
            1,
            "one contiguous write"
        );
        if round == 0 {
            assert!(before_growth(&e[..lw]).is_empty(), "{:?}", &e[..lw]);
        } else {
            assert_checkpoint(
                before_growth(&e[..lw]),
                table.clone(),
                "checkpoint before the big commit",
            );
        }
        let IoEvent::LogWrite { offset, len } = e[lw] else {
            unreachable!()
        };
        assert_eq!(offset, 0);
        assert!(len > SMALL_LOG);
        assert_eq!(e[lw + 1], IoEvent::LogSync);
        // Two frames, back to back, filling the write.
        let bytes = frames.lock().unwrap().pop().unwrap();
        assert_eq!(bytes.len() as u64, len);
        let first = FrameHeader::decode(&bytes).unwrap();
        assert_ne!(first.flags & FRAME_MORE, 0);
        let l1 = frame_len(first.crc_entries as u64, first.record_entries as u64);
        let second = FrameHeader::decode(&bytes[l1 as usize..]).unwrap();
        assert_eq!(second.flags & FRAME_MORE, 0);
        let l2 = frame_len(second.crc_entries as u64, second.record_entries as u64);
        assert_eq!(padded(0, l1 + l2), len);
        assert!(
            bytes[(l1 + l2) as usize..].iter().all(|&b| b == 0),
            "zeros after the frames"
        );
        assert_eq!((first.record_entries + second.record_entries) as u64, n);
        // The updates applied, then at once a checkpoint, then the log
        // shrinks back to its size.
        let rest = &e[lw + 2..];
        assert_eq!(rest.last(), Some(&IoEvent::LogSetLen { len: SMALL_LOG }));
        let ckpt = rest.len() - 1;
        let applied = rest[..ckpt]
            .iter()
            .take_while(|e| matches!(e, IoEvent::Write { offset, .. } if *offset < table.start))
            .count();
        let written: u64 = rest[..applied]
            .iter()
            .map(|e| match *e {
                IoEvent::Write { len, .. } => len,
                _ => 0,
            })
            .sum();
        assert!(written >= n * SIZE, "{written} bytes of records applied");
        assert_checkpoint(
            &rest[applied..ckpt],
            table.clone(),
            "checkpoint after the big commit",
        );
        let h = newest_header(&path);
        assert_eq!(h.generation, s.generation());
        assert_eq!(h.header_seq, seq + 1 + round);
        assert_eq!(s.raw().log_commits(), 0);
        assert_eq!(std::fs::metadata(log_path(&path)).unwrap().len(), SMALL_LOG);
    }
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.get(2), Some(&rec(2, 1)));
    assert_eq!(r.get(1), Some(&rec(1, 101)));
    assert_eq!(r.get(3), Some(&rec(3, 101)));
    assert_eq!(r.get(89_998), Some(&rec(89_998, 101)));
    assert_eq!(r.get(89_999), Some(&rec(89_999, 0)));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn rollback_leaves_the_files_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.rmap");
    let mut s = store(&path, 10_000, 4 << 20);
    s.set(3, &rec(3, 1)).unwrap();
    s.commit().unwrap(); // one commit in the log, applied
    let (data, log) = (
        std::fs::read(&path).unwrap(),
        std::fs::read(log_path(&path)).unwrap(),
    );
    let g = s.generation();
    let ev = record_io(&mut s);
    // Updates (one of them a second time), staged appends, a guard.
    for i in [3u64, 4, 5_000, 9_999, 4] {
        s.set(i, &rec(i, 2)).unwrap();
    }
    s.update(7, |r| r.v = 2).unwrap();
    for i in 10_000..10_050 {
        s.push(&rec(i, 2)).unwrap();
    }
    assert_eq!(s.get(4), Some(&rec(4, 2)));
    s.rollback().unwrap();
    assert_eq!(take(&ev), [], "rollback wrote");
    assert!(std::fs::read(&path).unwrap() == data, "data file changed");
    assert!(
        std::fs::read(log_path(&path)).unwrap() == log,
        "log changed"
    );
    assert_eq!((s.len(), s.generation()), (10_000, g));
    assert_eq!(s.get(3), Some(&rec(3, 1)));
    assert_eq!(s.get(4), Some(&rec(4, 0)));
    assert_eq!(s.get(7), Some(&rec(7, 0)));
    assert_eq!(s.get(10_000), None);
    assert!(!s.raw().has_uncommitted());
    s.commit().unwrap();
    assert_eq!(take(&ev), [], "nothing left to commit");
    assert_eq!(s.generation(), g);

    // Appends large enough to be flushed to the data file: only bytes past
    // the committed records change (no header, table or committed record).
    let info = s.info();
    let committed_end = (info.data_offset + 10_000 * SIZE) as usize;
    let table = info.table_offset as usize;
    let many: Vec<Rec> = (10_000..60_000).map(|i| rec(i, 3)).collect();
    s.extend_from_slice(&many).unwrap();
    s.set(2, &rec(2, 3)).unwrap();
    assert!(!take(&ev).iter().any(|e| matches!(
        e,
        IoEvent::Sync | IoEvent::LogWrite { .. } | IoEvent::LogSync
    )));
    s.rollback().unwrap();
    let now = std::fs::read(&path).unwrap();
    assert!(
        now[..committed_end] == data[..committed_end],
        "header or records changed"
    );
    assert!(now[table..] == data[table..], "table changed");
    assert!(
        std::fs::read(log_path(&path)).unwrap() == log,
        "log changed"
    );
    assert_eq!(s.len(), 10_000);
    assert_eq!(s.get(2), Some(&rec(2, 0)));
    assert!(s.verify().unwrap().is_ok());
    // The next commit starts from the last one.
    s.push(&rec(10_000, 4)).unwrap();
    s.commit().unwrap();
    assert_eq!(s.generation(), g + 1);
    drop(s);
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!(r.len(), 10_001);
    assert_eq!(r.get(10_000), Some(&rec(10_000, 4)));
    assert_eq!(r.get(2), Some(&rec(2, 0)));
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn dropping_without_commit_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.rmap");
    // With an empty log: nothing is written at all.
    let mut s = store(&path, 1_000, 4 << 20);
    let data = std::fs::read(&path).unwrap();
    let log = std::fs::read(log_path(&path)).unwrap();
    let g = s.generation();
    let ev = record_io(&mut s);
    s.set(6, &rec(6, 1)).unwrap();
    s.push(&rec(1_000, 1)).unwrap();
    drop(s);
    assert_eq!(take(&ev), []);
    assert!(std::fs::read(&path).unwrap() == data, "data file changed");
    assert!(
        std::fs::read(log_path(&path)).unwrap() == log,
        "log changed"
    );

    // With a commit in the log: the drop checkpoints it, and only it.
    let mut s = Options::new().open::<Rec>(&path).unwrap();
    assert_eq!((s.len(), s.generation()), (1_000, g));
    s.set(5, &rec(5, 2)).unwrap();
    s.commit().unwrap();
    let table = table_region(&s);
    let ev = record_io(&mut s);
    s.set(6, &rec(6, 3)).unwrap();
    s.set(900, &rec(900, 3)).unwrap();
    s.push(&rec(1_000, 3)).unwrap();
    drop(s);
    let e = take(&ev);
    assert!(!e
        .iter()
        .any(|e| matches!(e, IoEvent::LogWrite { .. } | IoEvent::LogSync)));
    assert_checkpoint(&e, table, "drop: only the checkpoint of the last commit");
    let r = Store::<Rec>::open_read_only(&path).unwrap();
    assert_eq!((r.len(), r.generation()), (1_000, g + 1));
    assert_eq!(r.get(5), Some(&rec(5, 2)));
    assert_eq!(r.get(6), Some(&rec(6, 0)));
    assert_eq!(r.get(900), Some(&rec(900, 0)));
    assert!(r.verify().unwrap().is_ok());
}

/// `compact` gives the log's room back: a log that grew to its size limit
/// goes back to its initial 64 KiB (after a checkpoint of what it held),
/// and the records are unchanged.
#[test]
fn compact_trims_a_grown_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rmap");
    let mut s = store(&path, 100_000, 1 << 20);
    // Commits of 50 records on 50 pages each grow the log past 64 KiB.
    for k in 1..=40u64 {
        for j in 0..50 {
            let i = j * PER_PAGE * 7 % 100_000;
            s.set(i, &rec(i, k)).unwrap();
        }
        s.commit().unwrap();
    }
    let grown = std::fs::metadata(log_path(&path)).unwrap().len();
    assert!(grown > SMALL_LOG, "the log grew: {grown}");
    assert!(s.raw().log_commits() > 0);
    s.raw_mut().compact().unwrap();
    assert_eq!(s.raw().log_commits(), 0, "checkpointed first");
    assert_eq!(std::fs::metadata(log_path(&path)).unwrap().len(), SMALL_LOG);
    for j in 0..50 {
        let i = j * PER_PAGE * 7 % 100_000;
        assert_eq!(s.get(i).unwrap().v, 40);
    }
    // The trimmed log is used as before, and survives a reopen.
    s.set(1, &rec(1, 99)).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = Options::new().open::<Rec>(&path).unwrap();
    assert_eq!(s.get(1).unwrap().v, 99);
    assert_eq!(s.get(PER_PAGE * 7).unwrap().v, 40);
}
