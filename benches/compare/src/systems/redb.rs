//! redb with its default durability (`Durability::Immediate`: every commit
//! is durable). One table `u64 -> &[u8]` (the 64 record bytes). Load: one
//! write transaction of inserts, one commit. Gets: one read transaction and
//! table per pass, `get` + copy of the value. Scan: `iter` over the table.
//! Update and append: a write transaction per insert.

use crate::harness::{bb, read_rec, sum_a_bytes, Commit, Cx, Rec, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::hint::black_box;

const ROW: &str = "redb";
const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("r");

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("redb.redb");
    let n = cx.n();
    let db = cx.load(ROW, &[&path], |data| {
        let db = Database::create(&path)?;
        let wtxn = db.begin_write()?;
        {
            let mut t = wtxn.open_table(TABLE)?;
            for r in data {
                t.insert(r.a, bytemuck::bytes_of(r))?;
            }
        }
        wtxn.commit()?;
        Ok(db)
    })?;
    cx.table.row(ROW);
    let scan = || -> Result<u64> {
        let rtxn = db.begin_read()?;
        let t = rtxn.open_table(TABLE)?;
        let mut sum = 0u64;
        for kv in t.iter()? {
            let (_, v) = kv?;
            sum = sum.wrapping_add(sum_a_bytes(v.value()));
        }
        Ok(black_box(sum))
    };
    cx.warm(ROW, scan)?;
    let mode = cx.s.get_mode;
    cx.get(ROW, true, |idx| {
        let rtxn = db.begin_read()?;
        let t = rtxn.open_table(TABLE)?;
        let mut sum = 0u64;
        for &i in idx {
            let v = t.get(bb(mode, i))?.ok_or("redb: missing key")?;
            let r = bb(mode, read_rec(v.value()));
            sum = sum.wrapping_add(r.get_value());
        }
        Ok(sum)
    })?;
    cx.scan(ROW, scan)?;
    let idx = cx.update_idx.clone();
    cx.commits(ROW, Commit::Update, &[&path], |k| {
        let i = idx[k as usize % idx.len()];
        let wtxn = db.begin_write()?;
        {
            let mut t = wtxn.open_table(TABLE)?;
            t.insert(i, bytemuck::bytes_of(&Rec::updated(i, k)))?;
        }
        wtxn.commit()?;
        Ok(())
    })?;
    cx.update100(ROW, &[&path], |batch, k| {
        let wtxn = db.begin_write()?;
        {
            let mut t = wtxn.open_table(TABLE)?;
            for &i in batch {
                t.insert(i, bytemuck::bytes_of(&Rec::updated(i, k)))?;
            }
        }
        wtxn.commit()?;
        Ok(())
    })?;
    let mut next = n;
    cx.commits(ROW, Commit::Append, &[&path], |_| {
        let wtxn = db.begin_write()?;
        {
            let mut t = wtxn.open_table(TABLE)?;
            t.insert(next, bytemuck::bytes_of(&Rec::new(next)))?;
        }
        wtxn.commit()?;
        next += 1;
        Ok(())
    })?;
    drop(db);
    cx.remove(&path);
    Ok(())
}
