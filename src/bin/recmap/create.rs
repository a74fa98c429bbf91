//! `recmap create`: makes an empty store with a schema.

use crate::common::{schema_from_args, CliResult, Failure, EXIT_OK};
use recmap::Options;
use std::path::PathBuf;

pub const HELP: &str = "\
Schema spec: name:type,... with types u8 u16 u32 u64 i8 i16 i32 i64 f32 f64
bool str[N] bytes[N] (and arrays of numbers such as f32[3]). Fields are laid
out in order, each aligned to its size, like a #[repr(C)] struct.

Example:
  recmap create ticks.rmap --schema 'ts:i64,price:f64,qty:u32,sym:str[8]'
  recmap create ticks.rmap --schema-file ticks.schema";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to create (must not exist).
    pub path: PathBuf,
    /// The record layout, e.g. 'id:u64,x:f64,name:str[16]'.
    #[arg(long, value_name = "SPEC", required_unless_present = "schema_file")]
    pub schema: Option<String>,
    /// Read the schema spec from FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "schema")]
    pub schema_file: Option<PathBuf>,
    /// Growth unit in bytes (a multiple of 65536).
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
    /// Committed records can never change: only appends (readers beside a
    /// writer may then borrow records zero-copy). Kept by compact and repair.
    #[arg(long)]
    pub append_only: bool,
}

pub fn run(a: Args) -> CliResult {
    let schema = schema_from_args(a.schema.as_deref(), a.schema_file.as_deref())?
        .ok_or_else(|| Failure::usage("give --schema SPEC or --schema-file FILE"))?;
    let mut opts = Options::new().create_new(true).append_only(a.append_only);
    if let Some(c) = a.chunk_size {
        opts = opts.chunk_size(c);
    }
    let store = opts.open_raw(&a.path, Some(&schema))?;
    store.close()?;
    eprintln!(
        "created {}: {}-byte records ({}){}",
        a.path.display(),
        schema.record_size,
        schema.spec(),
        if a.append_only { ", append-only" } else { "" }
    );
    Ok(EXIT_OK)
}
