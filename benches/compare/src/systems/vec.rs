//! An in-memory `Vec<Rec>` holding the same records (anonymous memory, no
//! durability): gets index it, scans iterate it. Nothing to load or commit,
//! so only the get and scan columns are filled.

use crate::harness::{Cx, Rec, Result};
use std::hint::black_box;

const ROW: &str = "Vec<Rec> (in memory)";

pub fn run(cx: &mut Cx) -> Result<()> {
    let v: Vec<Rec> = cx.data.clone();
    cx.table.row(ROW);
    cx.get(ROW, false, |idx| {
        let mut sum = 0u64;
        for &i in idx {
            let r: &Rec = black_box(&v[black_box(i) as usize]);
            sum = sum.wrapping_add(r.get_value());
        }
        Ok(sum)
    })?;
    cx.scan(ROW, || {
        Ok(black_box(v.iter().fold(0u64, |a, r| a.wrapping_add(r.a))))
    })?;
    Ok(())
}
