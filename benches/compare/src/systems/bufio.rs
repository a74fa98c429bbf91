//! std's buffered I/O on a plain file of records (8 KiB buffers). Load:
//! `BufWriter` writing one record at a time, `flush`, then `fdatasync`.
//! Get: `BufReader` `seek(SeekFrom::Start)` + `read_exact` of 64 bytes (the
//! seek discards the buffer, so each get is an `lseek` and an 8 KiB `read`).
//! Scan: `read_exact` of one record after another from the start. No
//! durable single-record writes (see the `file` row for `pwrite`).

use crate::harness::{bb, Cx, Rec, Result, REC};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

pub const ROW: &str = "BufReader / BufWriter";

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("bufio.dat");
    let n = cx.n();
    cx.load(ROW, &[&path], |data| {
        let f = File::create_new(&path)?;
        let mut w = BufWriter::new(f);
        for r in data {
            w.write_all(bytemuck::bytes_of(r))?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_data()?;
        Ok(())
    })?;
    cx.table.row(ROW);
    let mut reader = BufReader::new(File::open(&path)?);
    let scan = |r: &mut BufReader<File>| -> Result<u64> {
        r.seek(SeekFrom::Start(0))?;
        let mut rec = Rec::new(0);
        let mut sum = 0u64;
        for _ in 0..n {
            r.read_exact(bytemuck::bytes_of_mut(&mut rec))?;
            sum = sum.wrapping_add(rec.a);
        }
        Ok(black_box(sum))
    };
    cx.warm(ROW, || scan(&mut reader))?;
    let mode = cx.s.get_mode;
    cx.get(ROW, true, |idx| {
        let mut rec = Rec::new(0);
        let mut sum = 0u64;
        for &i in idx {
            reader.seek(SeekFrom::Start(bb(mode, i) * REC as u64))?;
            reader.read_exact(bytemuck::bytes_of_mut(&mut rec))?;
            sum = sum.wrapping_add(bb(mode, &rec).get_value());
        }
        Ok(sum)
    })?;
    cx.scan(ROW, || scan(&mut reader))?;
    drop(reader);
    cx.remove(&path);
    Ok(())
}
