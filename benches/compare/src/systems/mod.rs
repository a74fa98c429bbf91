//! One module per system under test. Each `run` loads the records, then
//! runs the get, scan, update and append workloads through the harness,
//! recording its rows, and deletes its files at the end.

mod bufio;
mod file;
mod lmdb;
mod memmap;
mod recmap;
mod redb;
mod sqlite;
mod vec;

use crate::harness::{Cx, Result};

/// Names for `--only`, in the order they run and appear in the table.
pub const NAMES: [&str; 8] = [
    "recmap", "memmap2", "file", "bufio", "vec", "lmdb", "redb", "sqlite",
];

pub fn run(name: &str, cx: &mut Cx) -> Result<()> {
    match name {
        "recmap" => recmap::run(cx),
        "memmap2" => memmap::run(cx),
        "file" => file::run(cx),
        "bufio" => bufio::run(cx),
        "vec" => vec::run(cx),
        "lmdb" => lmdb::run(cx),
        "redb" => redb::run(cx),
        "sqlite" => sqlite::run(cx),
        _ => unreachable!("checked when parsing --only"),
    }
}
