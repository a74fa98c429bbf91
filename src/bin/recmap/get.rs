//! `recmap get`: prints records by index (CSV with a header, or JSON lines).

use crate::common::{open_for_reading, stdout, with_view, CliResult, Failure, ViewError, EXIT_OK};
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

While a writer holds the store the records are read through a snapshot of
its newest commit (a note on stderr names it): all of them as of that one
commit, never a record it has not committed.

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
    let mut src = open_for_reading(&a.path)?;
    let (schema, records) = with_view(&mut src, "get", |v| {
        let len = v.len();
        if let Some(&bad) = a.indices.iter().find(|&&i| i >= len) {
            return Err(ViewError::Fail(Failure::usage(format!(
                "index {bad} is past the end: {} has {len} records (valid indices 0..{len})",
                a.path.display()
            ))));
        }
        if let Some(m) = value::unsupported(v.schema()) {
            return Err(ViewError::Fail(Failure::usage(format!(
                "{}: {m}",
                a.path.display()
            ))));
        }
        // Every page checked (and every record copied) before anything is
        // printed: a damaged page or an expired snapshot prints nothing.
        let mut records = Vec::with_capacity(a.indices.len());
        for &i in &a.indices {
            v.scan(i..i + 1, !a.no_verify, &mut |b| {
                records.push(b.to_vec());
                Ok(())
            })?;
        }
        Ok((v.schema().clone(), records))
    })?;
    let format = if a.json { Format::Jsonl } else { Format::Csv };
    let mut w = RecordWriter::new(Codec::new(&schema), format, stdout())?;
    for rec in &records {
        w.record(rec)?;
    }
    w.finish()?;
    Ok(EXIT_OK)
}
