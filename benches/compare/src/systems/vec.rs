//! An in-memory `Vec<Rec>` holding the same records (anonymous memory, no
//! durability): gets index it, scans iterate it. Nothing to load or commit,
//! so only the get and scan columns are filled.

use crate::harness::{get_loop, Cx, Rec, Result};
use std::hint::black_box;

const ROW: &str = "Vec<Rec> (in memory)";

pub fn run(cx: &mut Cx) -> Result<()> {
    let v: Vec<Rec> = cx.data.clone();
    cx.table.row(ROW);
    let mode = cx.s.get_mode;
    cx.get(ROW, false, |idx| {
        Ok(get_loop(mode, idx, |i| &v[i as usize]))
    })?;
    cx.scan(ROW, || {
        Ok(black_box(v.iter().fold(0u64, |a, r| a.wrapping_add(r.a))))
    })?;
    Ok(())
}
