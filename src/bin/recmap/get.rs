//! `recmap get`: prints records by index (CSV with a header, or JSON lines).

use crate::common::{open_read_only, stdout, CliResult, Failure, EXIT_OK};
use crate::export::RecordWriter;
use crate::load::Format;
use crate::value::{self, Codec};
use std::path::PathBuf;

pub const HELP: &str = "\
Prints the records in the order given: CSV with a header row, or with --json
one JSON object per line. An index at or past the end is an error (exit 2)
and nothing is printed.

The checksums of the pages holding the requested records are checked first:
a damaged page is an error naming it (exit 1) and nothing is printed.
--no-verify prints the records as they are.

Examples:
  recmap get ticks.rmap 0 41 99
  recmap get ticks.rmap 7 --json";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Record indices (0-based).
    #[arg(value_name = "INDEX", required = true)]
    pub indices: Vec<u64>,
    /// Print JSON lines instead of CSV.
    #[arg(long)]
    pub json: bool,
    /// Do not check the pages' checksums (print damaged records as they are).
    #[arg(long)]
    pub no_verify: bool,
}

pub fn run(a: Args) -> CliResult {
    let store = open_read_only(&a.path)?;
    let len = store.len();
    if let Some(&bad) = a.indices.iter().find(|&&i| i >= len) {
        return Err(Failure::usage(format!(
            "index {bad} is past the end: {} has {len} records (valid indices 0..{len})",
            a.path.display()
        )));
    }
    if let Some(m) = value::unsupported(store.schema()) {
        return Err(Failure::usage(format!("{}: {m}", a.path.display())));
    }
    if !a.no_verify {
        for &i in &a.indices {
            store.check_records(i..i + 1)?;
        }
    }
    let format = if a.json { Format::Jsonl } else { Format::Csv };
    let mut w = RecordWriter::new(Codec::new(store.schema()), format, stdout())?;
    for &i in &a.indices {
        w.record(store.get(i).expect("index checked against len"))?;
    }
    w.finish()?;
    Ok(EXIT_OK)
}
