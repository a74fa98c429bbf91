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

/// Row names the targets table reads.
pub mod rows {
    pub use super::bufio::ROW as BUFIO;
    pub use super::file::ROW as FILE;
    pub use super::memmap::ROW as MEMMAP;
    pub use super::recmap::{
        ROW as RECMAP, ROW_RO_MAP as RECMAP_RO_MAP, ROW_SNAPSHOT as RECMAP_SNAPSHOT,
        ROW_SNAPSHOT_ITER as RECMAP_SNAPSHOT_ITER,
    };
    pub use super::sqlite::ROW as SQLITE;
}

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
