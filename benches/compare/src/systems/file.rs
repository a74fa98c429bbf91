//! A plain file of records through the file descriptor. Load: `write` in
//! 2 MiB chunks, then `fdatasync`. Get: one 64-byte `pread` into a record on
//! the stack. Scan: a `pread` per record (what "pread of one record" costs
//! over a whole file). Update: a 64-byte `pwrite` in place + `fdatasync`
//! (the same operation as the probe, on this file). Append: a `pwrite` at
//! the end + `fdatasync` (the file grows, so metadata goes with it).
//!
//! A second row maps this file (loaded by `write`, so its page cache may
//! hold large folios) with memmap2 and times durable updates through the
//! map (store + `msync` of the 4 KiB page), to compare with the `memmap2`
//! row, whose file was loaded through the map.

use crate::harness::{bb, Commit, Cx, Rec, Result, REC};
use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;

pub const ROW: &str = "file: pread / pwrite";
const ROW_MAPPED: &str = "memmap2 on this write()-loaded file";

fn pread(f: &File, i: u64) -> Result<Rec> {
    let mut r = Rec::new(0);
    f.read_exact_at(bytemuck::bytes_of_mut(&mut r), i * REC as u64)?;
    Ok(r)
}

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("file.dat");
    let n = cx.n();
    let file = cx.load(ROW, &[&path], |data| {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        for chunk in bytemuck::cast_slice::<Rec, u8>(data).chunks(2 << 20) {
            f.write_all(chunk)?;
        }
        f.sync_data()?;
        Ok(f)
    })?;
    cx.table.row(ROW);
    let scan = |f: &File| -> Result<u64> {
        let mut sum = 0u64;
        for i in 0..n {
            sum = sum.wrapping_add(pread(f, i)?.a);
        }
        Ok(black_box(sum))
    };
    cx.warm(ROW, || scan(&file))?;
    let mode = cx.s.get_mode;
    cx.get(ROW, true, |idx| {
        let mut sum = 0u64;
        for &i in idx {
            let r = bb(mode, pread(&file, bb(mode, i))?);
            sum = sum.wrapping_add(r.get_value());
        }
        Ok(sum)
    })?;
    cx.scan(ROW, || scan(&file))?;
    let idx = cx.update_idx.clone();
    cx.commits(ROW, Commit::Update, &[&path], |k| {
        let i = idx[k as usize % idx.len()];
        file.write_all_at(bytemuck::bytes_of(&Rec::updated(i, k)), i * REC as u64)?;
        file.sync_data()?;
        Ok(())
    })?;
    cx.update100(ROW, &[&path], |batch, k| {
        for &i in batch {
            file.write_all_at(bytemuck::bytes_of(&Rec::updated(i, k)), i * REC as u64)?;
        }
        file.sync_data()?;
        Ok(())
    })?;
    let mut next = n;
    cx.commits(ROW, Commit::Append, &[&path], |_| {
        file.write_all_at(bytemuck::bytes_of(&Rec::new(next)), next * REC as u64)?;
        file.sync_data()?;
        next += 1;
        Ok(())
    })?;
    if cx.s.workloads.update {
        // SAFETY: the file is private to this process and is not truncated
        // or written otherwise while mapped.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file)? };
        cx.table.row(ROW_MAPPED);
        cx.commits(ROW_MAPPED, Commit::Update, &[&path], |k| {
            let i = idx[k as usize % idx.len()];
            super::memmap::store(&mut map, i, &Rec::updated(i, k))
        })?;
    }
    drop(file);
    cx.remove(&path);
    Ok(())
}
