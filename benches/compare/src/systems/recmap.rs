//! recmap: `Store<Rec>` created with `initial_capacity`, loaded with
//! `extend_from_slice` in 4 MiB batches and one `commit`; random gets with
//! `Store::get` (zero-copy `&Rec`) and, as a second row, by indexing the
//! `&[Rec]` run from `Store::slices`; scans with `Store::iter` and
//! `Store::slices`; durable updates with `set` + `commit`, appends with
//! `push` + `commit`, update100 with 100 `set`s + one `commit`. Also
//! counts heap allocations in the get and scan loops, and reads recmap's
//! own file through a plain read-only map (`memmap::ro_file_get`) to tell
//! the store's code from the file's page-cache state.

use crate::alloc_count::allocations;
use crate::harness::{get_loop, mapping_state, Commit, Cx, Rec, Result};
use std::cell::Cell;
use std::hint::black_box;

pub const ROW: &str = "recmap";
const ROW_SLICES: &str = "recmap (slices)";

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("recmap.rmap");
    let n = cx.n();
    let mut store = cx.load(ROW, &[&path], |data| {
        let mut s = recmap::Options::new()
            .create_new(true)
            .initial_capacity(n)
            .open::<Rec>(&path)?;
        for batch in data.chunks((4 << 20) / 64) {
            s.extend_from_slice(batch)?;
        }
        s.commit()?;
        Ok(s)
    })?;
    cx.table.row(ROW);
    cx.table.row(ROW_SLICES);

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
    super::memmap::ro_file_get(
        cx,
        "memmap2 Mmap (read-only) of recmap's file",
        &path,
        store.info().data_offset,
    )?;

    let allocs = Cell::new(0u64);
    let scans = Cell::new(0u64);
    cx.scan(ROW, || {
        let before = allocations();
        let sum = store.iter().fold(0u64, |a, r| a.wrapping_add(r.a));
        allocs.set(allocs.get() + allocations() - before);
        scans.set(scans.get() + 1);
        Ok(black_box(sum))
    })?;
    if scans.get() > 0 {
        cx.note(format!(
            "allocations during recmap scan loop (Store::iter): {} in {} scans",
            allocs.get(),
            scans.get()
        ));
    }
    cx.scan(ROW_SLICES, || {
        let mut sum = 0u64;
        for (_, s) in store.slices(0..n) {
            sum = s.iter().fold(sum, |a, r| a.wrapping_add(r.a));
        }
        Ok(black_box(sum))
    })?;

    let idx = cx.update_idx.clone();
    cx.commits(ROW, Commit::Update, |k| {
        let i = idx[k as usize % idx.len()];
        store.set(i, &Rec::updated(i, k))?;
        store.commit()?;
        Ok(())
    })?;
    cx.update100(ROW, |batch, k| {
        for &i in batch {
            store.set(i, &Rec::updated(i, k))?;
        }
        store.commit()?;
        Ok(())
    })?;
    cx.commits(ROW, Commit::Append, |_| {
        let i = store.len();
        store.push(&Rec::new(i))?;
        store.commit()?;
        Ok(())
    })?;
    drop(store);
    cx.remove(&path);
    Ok(())
}
