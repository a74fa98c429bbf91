//! `recmap upgrade`: rewrites a version-1 store's header as version 2 (one
//! checkpoint; the records are not touched) and folds any log into the data
//! file.

use crate::common::{CliResult, EXIT_OK};
use recmap::RawStore;
use std::path::PathBuf;

pub const HELP: &str = "\
A version-1 store is upgraded anyway by its first write; this does it now,
without writing records. It also checkpoints a version-2 store (folds the
commits in its log into the data file). Needs the writer lock: fails with
a locked error while another writer has the store open.

Example:
  recmap upgrade old.rmap";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
}

pub fn run(a: Args) -> CliResult {
    let mut store = crate::common::open_writer(|| RawStore::open(&a.path))?;
    let before = store.info().format_version;
    let upgraded = store.upgrade()?;
    store.checkpoint()?;
    let info = store.info();
    drop(store);
    if upgraded {
        eprintln!(
            "{}: upgraded from format version {before} to {} (generation {}, {} records)",
            a.path.display(),
            info.format_version,
            info.generation,
            info.committed_records
        );
    } else {
        eprintln!(
            "{}: already format version {} (generation {}, {} records); log checkpointed",
            a.path.display(),
            info.format_version,
            info.generation,
            info.committed_records
        );
    }
    Ok(EXIT_OK)
}
