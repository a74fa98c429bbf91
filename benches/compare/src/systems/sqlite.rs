//! SQLite through rusqlite (bundled SQLite), `journal_mode=WAL`,
//! `synchronous=FULL`, table `r(id INTEGER PRIMARY KEY, v BLOB)` holding
//! the 64 record bytes. Load: one transaction of a prepared INSERT per
//! record. Gets: a prepared `SELECT v FROM r WHERE id=?` per lookup, the
//! blob copied out. Scan: `SELECT v FROM r` (rowid order). Update: a
//! prepared UPDATE in autocommit; append: an INSERT of the next id.

use crate::harness::{bb, read_rec, sum_a_bytes, Commit, Cx, Rec, Result};
use rusqlite::{params, Connection};
use std::hint::black_box;
use std::path::Path;

pub const ROW: &str = "SQLite (WAL, synchronous=FULL)";

pub fn run(cx: &mut Cx) -> Result<()> {
    let path = cx.path("sqlite.db");
    let n = cx.n();
    let side = |suffix: &str| {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let (wal, shm) = (side("-wal"), side("-shm"));
    let c = cx.load(ROW, &[&path, &wal, &shm], |data| {
        let mut c = Connection::open(&path)?;
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(format!("sqlite: journal_mode is {mode}, not wal").into());
        }
        c.execute_batch(
            "PRAGMA synchronous=FULL;
             CREATE TABLE r(id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
        )?;
        let tx = c.transaction()?;
        {
            let mut ins = tx.prepare("INSERT INTO r(id, v) VALUES (?1, ?2)")?;
            for r in data {
                ins.execute(params![r.a as i64, bytemuck::bytes_of(r)])?;
            }
        }
        tx.commit()?;
        Ok(c)
    })?;
    cx.table.row(ROW);
    let scan = || -> Result<u64> {
        let mut st = c.prepare_cached("SELECT v FROM r")?;
        let mut rows = st.query([])?;
        let mut sum = 0u64;
        while let Some(row) = rows.next()? {
            sum = sum.wrapping_add(sum_a_bytes(row.get_ref(0)?.as_blob()?));
        }
        Ok(black_box(sum))
    };
    cx.warm(ROW, scan)?;
    let mode = cx.s.get_mode;
    cx.get(ROW, true, |idx| {
        let mut st = c.prepare_cached("SELECT v FROM r WHERE id = ?1")?;
        let mut sum = 0u64;
        for &i in idx {
            let r = st.query_row([bb(mode, i) as i64], |row| {
                Ok(read_rec(row.get_ref(0)?.as_blob()?))
            })?;
            sum = sum.wrapping_add(bb(mode, r).get_value());
        }
        Ok(sum)
    })?;
    cx.scan(ROW, scan)?;
    let idx = cx.update_idx.clone();
    let files: [&Path; 3] = [&path, &wal, &shm];
    // The bytes loops end each chunk with a WAL checkpoint that copies the
    // WAL's pages into the database (synced) and truncates the WAL.
    let checkpoint = |_: &mut ()| -> Result<()> {
        let (busy, _, _): (i64, i64, i64) =
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if busy != 0 {
            return Err("sqlite: wal_checkpoint(TRUNCATE) was blocked".into());
        }
        Ok(())
    };
    cx.commits_with(
        ROW,
        Commit::Update,
        &files,
        &mut (),
        |_, k| {
            let i = idx[k as usize % idx.len()];
            let mut st = c.prepare_cached("UPDATE r SET v = ?1 WHERE id = ?2")?;
            st.execute(params![bytemuck::bytes_of(&Rec::updated(i, k)), i as i64])?;
            Ok(())
        },
        checkpoint,
    )?;
    cx.update100_with(
        ROW,
        &files,
        &mut (),
        |_, batch, k| {
            let tx = c.unchecked_transaction()?;
            {
                let mut st = tx.prepare_cached("UPDATE r SET v = ?1 WHERE id = ?2")?;
                for &i in batch {
                    st.execute(params![bytemuck::bytes_of(&Rec::updated(i, k)), i as i64])?;
                }
            }
            tx.commit()?;
            Ok(())
        },
        checkpoint,
    )?;
    let mut next = n;
    cx.commits_with(
        ROW,
        Commit::Append,
        &files,
        &mut (),
        |_, _| {
            let mut st = c.prepare_cached("INSERT INTO r(id, v) VALUES (?1, ?2)")?;
            st.execute(params![next as i64, bytemuck::bytes_of(&Rec::new(next))])?;
            next += 1;
            Ok(())
        },
        checkpoint,
    )?;
    drop(c);
    for p in [&path, &wal, &shm] {
        cx.remove(p);
    }
    Ok(())
}
