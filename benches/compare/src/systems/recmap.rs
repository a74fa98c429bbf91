//! recmap: `Store<Rec>` created with `initial_capacity`, loaded with
//! `extend_from_slice` in 4 MiB batches and one `commit`; random gets with
//! `Store::get` (zero-copy `&Rec`) and, as a second row, by indexing the
//! `&[Rec]` run from `Store::slices`; scans with `Store::iter` and
//! `Store::slices`; durable updates with `set` + `commit`, appends with
//! `push` + `commit`, update100 with 100 `set`s + one `commit`. The bytes
//! loops end each chunk with `Store::checkpoint` (format version 2 writes a
//! commit's record images to the log, syncs the log, and writes the data
//! pages back later: a checkpoint syncs them) and an fsync of the data
//! file, the log and the coordination file. Also counts heap allocations in
//! the get and scan loops, reads recmap's own file through a plain
//! read-only map (`memmap::ro_file_get`) to tell the store's code from the
//! file's page-cache state, and reads the store through a `Reader` opened
//! beside the idle writer: `Snapshot::get` gets (each pass also paired
//! directly with a `Store::get` pass), `Snapshot::iter` scans and
//! `Snapshot::read_range` scans (`--snapshot-chunk`, default 4096 records a
//! call, into a reused `Vec`), each scan paired with the `Store::iter` scan.

use crate::alloc_count::allocations;
use crate::harness::{
    get_loop, get_loop_owned, mapping_state, mappings_of, Commit, Cx, Rec, Result,
};
use recmap::bytemuck::Zeroable;
use std::cell::Cell;
use std::hint::black_box;
use std::path::{Path, PathBuf};

pub const ROW: &str = "recmap";
const ROW_SLICES: &str = "recmap (slices)";
pub const ROW_RO_MAP: &str = "memmap2 Mmap (read-only) of recmap's file";
pub const ROW_SNAPSHOT: &str = "recmap Reader::snapshot (get, read_range)";
pub const ROW_SNAPSHOT_ITER: &str = "recmap Reader::snapshot (iter)";

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("recmap.rmap");
    let (wal, lock) = (side(&path, "-wal"), side(&path, "-lock"));
    let files: [&Path; 3] = [&path, &wal, &lock];
    let n = cx.n();
    let load = |data: &[Rec]| -> Result<recmap::Store<Rec>> {
        let mut s = recmap::Options::new()
            .create_new(true)
            .initial_capacity(n)
            .open::<Rec>(&path)?;
        for batch in data.chunks((4 << 20) / 64) {
            s.extend_from_slice(batch)?;
        }
        s.commit()?;
        Ok(s)
    };
    let mut store = cx.load(ROW, &files, load)?;
    cx.table.row(ROW);
    cx.table.row(ROW_SLICES);
    if cx.s.workloads.load && cx.s.load_pairs > 0 {
        // The same load again, paired with a raw write of the same bytes.
        drop(store);
        for p in files {
            cx.remove(p);
        }
        let pairs = cx.s.load_pairs;
        cx.load_vs_raw(ROW, &files, pairs, load)?;
        let data = std::mem::take(&mut cx.data);
        let reloaded = load(&data);
        cx.data = data;
        store = reloaded?;
    }

    cx.warm(ROW, || {
        Ok(store.iter().fold(0u64, |a, r| a.wrapping_add(r.a)))
    })?;

    // Random get through Store::get, counting allocations inside the loop.
    let allocs = Cell::new(0u64);
    let lookups = Cell::new(0u64);
    let mode = cx.s.get_mode;
    cx.get(ROW, false, |idx| {
        let before = allocations();
        let sum = get_loop(mode, idx, |i| store.get(i).expect("i < len"));
        allocs.set(allocs.get() + allocations() - before);
        lookups.set(lookups.get() + idx.len() as u64);
        Ok(sum)
    })?;
    if lookups.get() > 0 {
        cx.note(format!(
            "allocations during recmap get loop: {} ({} Store::get calls, counted by the global allocator)",
            allocs.get(),
            lookups.get()
        ));
    }

    // Random get by indexing the one &[Rec] run (64-byte records fill pages exactly).
    cx.get(ROW_SLICES, false, |idx| {
        let recs: &[Rec] = store.slices(0..n).next().map_or(&[], |(_, s)| s);
        Ok(get_loop(mode, idx, |i| &recs[i as usize]))
    })?;
    if let Some(r) = store.get(0) {
        let st = mapping_state(r as *const Rec as *const u8).unwrap_or_default();
        cx.note(format!("recmap's mapping after the gets: {st}"));
    }
    super::memmap::ro_file_get(cx, ROW_RO_MAP, &path, store.info().data_offset)?;

    // A Reader beside the idle writer (the Store stays open and commits
    // nothing while it reads): no overlay, the map read directly, one stripe
    // check per get. One snapshot per pass.
    let mut reader = recmap::Reader::<Rec>::open(&path)?;
    cx.table.row(ROW_SNAPSHOT);
    let snap_allocs = Cell::new(0u64);
    cx.get(ROW_SNAPSHOT, false, |idx| {
        let snap = reader.snapshot()?;
        let before = allocations();
        // `None` (past the end) folds as a zeroed record: the checksum catches it.
        let sum = get_loop_owned(mode, idx, |i| {
            snap.get(i).map(|r| r.unwrap_or(Rec::zeroed()))
        })?;
        snap_allocs.set(snap_allocs.get() + allocations() - before);
        Ok(sum)
    })?;
    // The same gets against Store::get directly, pass for pass: what the
    // Snapshot::get target is judged on.
    cx.get_vs(
        ROW_SNAPSHOT,
        "Store::get",
        |idx| {
            let snap = reader.snapshot()?;
            Ok(get_loop_owned(mode, idx, |i| {
                snap.get(i).map(|r| r.unwrap_or(Rec::zeroed()))
            })?)
        },
        |idx| Ok(get_loop(mode, idx, |i| store.get(i).expect("i < len"))),
    )?;
    if cx.s.workloads.get {
        cx.note(format!(
            "allocations during recmap Snapshot::get loop: {}",
            snap_allocs.get()
        ));
        cx.note(format!(
            "mappings of recmap's file after the snapshot gets (the Store's, the read-only raw map's, the Reader's): {}",
            mappings_of(&path).join("; ")
        ));
    }

    let allocs = Cell::new(0u64);
    let scans = Cell::new(0u64);
    let iter_scan = || -> Result<u64> {
        let before = allocations();
        let sum = store.iter().fold(0u64, |a, r| a.wrapping_add(r.a));
        allocs.set(allocs.get() + allocations() - before);
        scans.set(scans.get() + 1);
        Ok(black_box(sum))
    };
    cx.scan(ROW, iter_scan)?;
    cx.scan(ROW_SLICES, || {
        let mut sum = 0u64;
        for (_, s) in store.slices(0..n) {
            sum = s.iter().fold(sum, |a, r| a.wrapping_add(r.a));
        }
        Ok(black_box(sum))
    })?;
    let mut buf = vec![Rec::zeroed(); cx.s.snapshot_chunk];
    if cx.s.workloads.scan {
        cx.note(format!(
            "recmap snapshot scan: {} records per Snapshot::read_range call, into one reused Vec",
            buf.len()
        ));
    }
    cx.scan_vs(
        ROW_SNAPSHOT,
        "Store::iter",
        || {
            let snap = reader.snapshot()?;
            let (mut sum, mut first) = (0u64, 0u64);
            loop {
                let got = snap.read_range(first, &mut buf)?;
                if got == 0 {
                    break;
                }
                sum = buf[..got].iter().fold(sum, |a, r| a.wrapping_add(r.a));
                first += got as u64;
            }
            Ok(black_box(sum))
        },
        iter_scan,
    )?;
    // The scan API of a snapshot, a page at a time: what the snapshot-scan
    // target is judged on (the read_range row above shows what a buffer of
    // `--snapshot-chunk` records costs on top).
    cx.table.row(ROW_SNAPSHOT_ITER);
    cx.scan_vs(
        ROW_SNAPSHOT_ITER,
        "Store::iter",
        || {
            let snap = reader.snapshot()?;
            let mut sum = 0u64;
            for r in snap.iter(0..n) {
                sum = sum.wrapping_add(r?.a);
            }
            Ok(black_box(sum))
        },
        iter_scan,
    )?;
    if scans.get() > 0 {
        cx.note(format!(
            "allocations during recmap scan loop (Store::iter): {} in {} scans",
            allocs.get(),
            scans.get()
        ));
    }
    drop(buf);
    drop(reader);

    let idx = cx.update_idx.clone();
    let checkpoint = |s: &mut recmap::Store<Rec>| -> Result<()> { Ok(s.checkpoint()?) };
    cx.commits_with(
        ROW,
        Commit::Update,
        &files,
        &mut store,
        |s, k| {
            let i = idx[k as usize % idx.len()];
            s.set(i, &Rec::updated(i, k))?;
            s.commit()?;
            Ok(())
        },
        checkpoint,
    )?;
    cx.update100_with(
        ROW,
        &files,
        &mut store,
        |s, batch, k| {
            for &i in batch {
                s.set(i, &Rec::updated(i, k))?;
            }
            s.commit()?;
            Ok(())
        },
        checkpoint,
    )?;
    cx.update_vs_update100(
        ROW,
        &mut store,
        |s, i, k| {
            s.set(i, &Rec::updated(i, k))?;
            s.commit()?;
            Ok(())
        },
        |s, batch, k| {
            for &i in batch {
                s.set(i, &Rec::updated(i, k))?;
            }
            s.commit()?;
            Ok(())
        },
    )?;
    cx.commits_with(
        ROW,
        Commit::Append,
        &files,
        &mut store,
        |s, _| {
            let i = s.len();
            s.push(&Rec::new(i))?;
            s.commit()?;
            Ok(())
        },
        checkpoint,
    )?;
    drop(store);
    for p in files {
        cx.remove(p);
    }
    Ok(())
}
