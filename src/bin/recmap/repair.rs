//! `recmap repair`: makes a damaged or truncated store consistent again by
//! keeping the records before its first damaged page
//! (`Repair::TruncateToVerified`), opening it for salvage (a file another
//! program truncated is extended back first; the lost pages fail their
//! checksums and are dropped with everything after them).

use crate::common::{CliResult, EXIT_OK};
use recmap::{Options, Repair};
use std::path::PathBuf;

pub const HELP: &str = "\
Keeps the records before the first page that fails its checksum and commits
that count (a new generation; crash-safe like any commit). Records from the
first damaged page on are dropped: export them first with
`recmap export --no-verify` if any might be worth saving. A store truncated
by another program is opened for salvage: it is extended back to the length
its header needs, and the pages that were cut off (read as zeros) count as
damaged. Damage to both header slots or to the schema block cannot be
repaired. Needs the writer lock. A sound store is left as it is (exit 0).

Example:
  recmap repair ticks.rmap";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
}

pub fn run(a: Args) -> CliResult {
    let before_len = std::fs::metadata(&a.path).map(|m| m.len()).ok();
    let mut store = Options::new().salvage(true).open_raw(&a.path, None)?;
    let needed = store.info().file_size;
    let rep = store.repair(Repair::TruncateToVerified)?;
    store.checkpoint()?;
    drop(store);
    let path = a.path.display();
    if let Some(len) = before_len.filter(|&l| l < needed) {
        eprintln!(
            "{path}: the file was truncated to {len} bytes (its header needs {needed}); \
             extended back for salvage"
        );
    }
    if rep.before.is_ok() {
        eprintln!(
            "{path}: sound, nothing to repair ({} records, generation {})",
            rep.records_after, rep.generation
        );
        return Ok(EXIT_OK);
    }
    let damaged = rep.before.problems.len() as u64 + rep.before.problems_omitted;
    eprintln!(
        "{path}: kept records 0..{} ({} of {}), dropped {} from the first damaged page on \
         ({damaged} damaged page{}); committed as generation {}",
        rep.records_after,
        rep.records_after,
        rep.records_before,
        rep.records_before - rep.records_after,
        if damaged == 1 { "" } else { "s" },
        rep.generation
    );
    if let Some(p) = rep.before.problems.first() {
        eprintln!("  first damage: {p}");
    }
    Ok(EXIT_OK)
}
