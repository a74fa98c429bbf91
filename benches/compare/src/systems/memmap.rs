//! Raw memmap2: a plain file of records (no header, no checksums) mapped
//! read-write with `MmapMut`. Load: `set_len`, map, copy, `flush` (msync)
//! and `fdatasync`. Gets cast the mapped bytes with `bytemuck::from_bytes`;
//! scans cast the whole range to `&[Rec]`. A durable update stores into the
//! map and `flush_range`s (msync) its 4 KiB page; update100 stores 100
//! records and `flush`es the whole map once (one msync, one sync); an
//! append stores in room preallocated past the records. A second row reads
//! the same file through a read-only `Mmap` (gets only; the read baseline
//! the harness pairs every get with is a read-only map of a `write()`-loaded
//! file), a third maps it again with `MADV_RANDOM` and repeats the
//! workloads. `ro_file_get` times gets through a read-only map of another
//! system's file (recmap's).

use crate::harness::{get_loop, mapping_state, Commit, Cx, Rec, Result, REC};
use memmap2::{Advice, Mmap, MmapMut};
use std::hint::black_box;
use std::path::Path;

pub const ROW: &str = "memmap2 MmapMut";
const ROW_RO: &str = "memmap2 Mmap (read-only), same file";
const ROW_RANDOM: &str = "memmap2 MmapMut + MADV_RANDOM";

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("memmap2.dat");
    let n = cx.n();
    // Room for both rows' appends (warm-up, timed and bytes loops).
    let room = 2 * (cx.s.commits + cx.s.bytes_ops + 100);
    let (file, mut map) = cx.load(ROW, &[&path], |data| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.set_len((n + room) * REC as u64)?;
        // SAFETY: the file is private to this process and nothing else
        // truncates or writes it while mapped.
        let mut m = unsafe { MmapMut::map_mut(&file)? };
        m[..data.len() * REC].copy_from_slice(bytemuck::cast_slice(data));
        m.flush()?;
        file.sync_data()?;
        Ok((file, m))
    })?;
    let mut next = n;
    workloads(cx, ROW, &path, &mut map, &mut next)?;
    drop(map);
    ro_file_get(cx, ROW_RO, &path, 0)?;

    // SAFETY: as above.
    let mut map = unsafe { MmapMut::map_mut(&file)? };
    map.advise(Advice::Random)?;
    workloads(cx, ROW_RANDOM, &path, &mut map, &mut next)?;
    drop(map);
    drop(file);
    cx.remove(&path);
    Ok(())
}

fn scan(map: &[u8], n: u64) -> u64 {
    let recs: &[Rec] = bytemuck::cast_slice(&map[..n as usize * REC]);
    recs.iter().fold(0u64, |a, r| a.wrapping_add(r.a))
}

/// Stores record `i` through the map and msyncs its 4 KiB page.
pub(super) fn store(map: &mut MmapMut, i: u64, rec: &Rec) -> Result<()> {
    let off = i as usize * REC;
    map[off..off + REC].copy_from_slice(bytemuck::bytes_of(rec));
    // msync of the 4 KiB page holding the record.
    let page = off & !4095;
    map.flush_range(page, 4096)?;
    Ok(())
}

/// Random gets through a read-only `Mmap` of `path`, whose records start
/// at `data_offset` and are packed back to back (true of recmap's 64-byte
/// records, which fill pages exactly), indexed as a `&[Rec]`.
pub(super) fn ro_file_get(cx: &mut Cx, row: &str, path: &Path, data_offset: u64) -> Result<()> {
    if !cx.s.workloads.get {
        return Ok(());
    }
    let n = cx.n();
    let file = std::fs::File::open(path)?;
    // SAFETY: nothing writes or truncates the file while this map lives.
    let map = unsafe { Mmap::map(&file)? };
    let off = data_offset as usize;
    let recs: &[Rec] = bytemuck::cast_slice(&map[off..off + n as usize * REC]);
    cx.table.row(row);
    cx.warm(row, || {
        Ok(recs.iter().fold(0u64, |a, r| a.wrapping_add(r.a)))
    })?;
    let mode = cx.s.get_mode;
    cx.get(row, false, |idx| {
        Ok(get_loop(mode, idx, |i| &recs[i as usize]))
    })?;
    let st = mapping_state(map.as_ptr()).unwrap_or_default();
    cx.note(format!("{row}: mapping after the gets: {st}"));
    Ok(())
}

fn workloads(cx: &mut Cx, row: &str, path: &Path, map: &mut MmapMut, next: &mut u64) -> Result<()> {
    let n = cx.n();
    cx.table.row(row);
    cx.warm(row, || Ok(scan(map, n)))?;
    let mode = cx.s.get_mode;
    cx.get(row, false, |idx| {
        let m: &[u8] = map;
        Ok(get_loop(mode, idx, |i| {
            let off = i as usize * REC;
            bytemuck::from_bytes(&m[off..off + REC])
        }))
    })?;
    if cx.s.workloads.get {
        let st = mapping_state(map.as_ptr()).unwrap_or_default();
        cx.note(format!("{row}: mapping after the gets: {st}"));
    }
    cx.scan(row, || Ok(black_box(scan(map, n))))?;
    let idx = cx.update_idx.clone();
    cx.commits(row, Commit::Update, &[path], |k| {
        let i = idx[k as usize % idx.len()];
        store(map, i, &Rec::updated(i, k))
    })?;
    if row == ROW {
        cx.update100(row, &[path], |batch, k| {
            for &i in batch {
                let off = i as usize * REC;
                map[off..off + REC].copy_from_slice(bytemuck::bytes_of(&Rec::updated(i, k)));
            }
            map.flush()?;
            Ok(())
        })?;
    }
    cx.commits(row, Commit::Append, &[path], |_| {
        let i = *next;
        if (i + 1) as usize * REC > map.len() {
            return Err("memmap2: append room exhausted".into());
        }
        store(map, i, &Rec::new(i))?;
        *next += 1;
        Ok(())
    })?;
    Ok(())
}
