//! LMDB through heed, with default (durable) environment flags: every
//! write transaction's commit syncs. Keys are big-endian `u64` indices (so
//! key order is index order), values the 64 record bytes. Load: one write
//! transaction of `put_with_flags(APPEND)`s, one commit. Gets: one read
//! transaction per pass, `get` + copy of the value. Scan: a cursor over the
//! whole database. Update: a write transaction per `put`; append: a write
//! transaction per `APPEND` put of the next key.

use crate::harness::{bb, read_rec, sum_a_bytes, Commit, Cx, Rec, Result, REC};
use heed::byteorder::BE;
use heed::types::{Bytes, U64};
use heed::{Database, EnvOpenOptions, PutFlags};
use std::hint::black_box;

const ROW: &str = "LMDB (heed)";

type Db = Database<U64<BE>, Bytes>;

pub fn run(cx: &mut Cx) -> Result<()> {
    let dir = cx.path("lmdb");
    let n = cx.n();
    // Room for the records, copy-on-write pages of the commits, and slack.
    let map_size = (n as usize * REC * 3 + (1 << 30)).next_multiple_of(1 << 20);
    let (env, db) = cx.load(ROW, &[&dir], |data| {
        std::fs::create_dir_all(&dir)?;
        // SAFETY: the environment is private to this process and opened once.
        let env = unsafe { EnvOpenOptions::new().map_size(map_size).open(&dir)? };
        let mut wtxn = env.write_txn()?;
        let db: Db = env.create_database(&mut wtxn, None)?;
        for r in data {
            db.put_with_flags(&mut wtxn, PutFlags::APPEND, &r.a, bytemuck::bytes_of(r))?;
        }
        wtxn.commit()?;
        Ok((env, db))
    })?;
    cx.table.row(ROW);
    let scan = || -> Result<u64> {
        let rtxn = env.read_txn()?;
        let mut sum = 0u64;
        for kv in db.iter(&rtxn)? {
            let (_, v) = kv?;
            sum = sum.wrapping_add(sum_a_bytes(v));
        }
        Ok(black_box(sum))
    };
    cx.warm(ROW, scan)?;
    let mode = cx.s.get_mode;
    cx.get(ROW, true, |idx| {
        let rtxn = env.read_txn()?;
        let mut sum = 0u64;
        for &i in idx {
            let v = db.get(&rtxn, &bb(mode, i))?.ok_or("lmdb: missing key")?;
            let r = bb(mode, read_rec(v));
            sum = sum.wrapping_add(r.get_value());
        }
        Ok(sum)
    })?;
    cx.scan(ROW, scan)?;
    let idx = cx.update_idx.clone();
    cx.commits(ROW, Commit::Update, &[&dir], |k| {
        let i = idx[k as usize % idx.len()];
        let mut wtxn = env.write_txn()?;
        db.put(&mut wtxn, &i, bytemuck::bytes_of(&Rec::updated(i, k)))?;
        wtxn.commit()?;
        Ok(())
    })?;
    cx.update100(ROW, &[&dir], |batch, k| {
        let mut wtxn = env.write_txn()?;
        for &i in batch {
            db.put(&mut wtxn, &i, bytemuck::bytes_of(&Rec::updated(i, k)))?;
        }
        wtxn.commit()?;
        Ok(())
    })?;
    let mut next = n;
    cx.commits(ROW, Commit::Append, &[&dir], |_| {
        let mut wtxn = env.write_txn()?;
        db.put_with_flags(
            &mut wtxn,
            PutFlags::APPEND,
            &next,
            bytemuck::bytes_of(&Rec::new(next)),
        )?;
        wtxn.commit()?;
        next += 1;
        Ok(())
    })?;
    drop(env);
    cx.remove(&dir);
    Ok(())
}
