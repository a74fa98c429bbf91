//! `recmap info`: a store's format version, layout, schema and counts, as
//! text or JSON.

use crate::common::{open_read_only, stdout, CliResult, Failure, EXIT_OK};
use recmap::Info;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

pub const HELP: &str = "\
JSON keys: path, format_version, record_size, record_align, records_per_page,
pages_per_group, records, generation, file_size, capacity, chunk_size,
data_offset, table_offset, spec, schema (a list of {name, type, offset, size}).

Example:
  recmap info ticks.rmap
  recmap info ticks.rmap --json | jq .records";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn info_json(i: &Info) -> serde_json::Value {
    let fields: Vec<_> = i
        .schema
        .fields
        .iter()
        .map(|f| json!({"name": f.name, "type": f.type_spec(), "offset": f.offset, "size": f.size()}))
        .collect();
    json!({
        "path": i.path.display().to_string(),
        "format_version": i.format_version,
        "record_size": i.record_size,
        "record_align": i.record_align,
        "records_per_page": i.records_per_page,
        "pages_per_group": i.pages_per_group,
        "records": i.committed_records,
        "generation": i.generation,
        "file_size": i.file_size,
        "capacity": i.capacity,
        "chunk_size": i.chunk_size,
        "data_offset": i.data_offset,
        "table_offset": i.table_offset,
        "spec": i.schema.spec(),
        "schema": fields,
    })
}

pub fn run(a: Args) -> CliResult {
    let store = open_read_only(&a.path)?;
    let i = store.info();
    let mut out = stdout();
    let text = if a.json {
        let mut s = serde_json::to_string_pretty(&info_json(&i)).expect("JSON of plain values");
        s.push('\n');
        s
    } else {
        let packing = if i.pages_per_group == 1 {
            format!("{} per 4 KiB page", i.records_per_page)
        } else {
            format!("{} pages each", i.pages_per_group)
        };
        let mut s = format!(
            "path:           {}\n\
             format version: {}\n\
             record size:    {} bytes (align {}, {packing})\n\
             records:        {}\n\
             generation:     {}\n\
             file size:      {} bytes\n\
             capacity:       {} records\n\
             chunk size:     {} bytes\n\
             data offset:    {}\n\
             schema:         {}\n",
            i.path.display(),
            i.format_version,
            i.record_size,
            i.record_align,
            i.committed_records,
            i.generation,
            i.file_size,
            i.capacity,
            i.chunk_size,
            i.data_offset,
            i.schema.spec(),
        );
        let w = i
            .schema
            .fields
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(0);
        for f in &i.schema.fields {
            s.push_str(&format!(
                "  {:<w$}  {:<10} offset {:>5}  size {}\n",
                f.name,
                f.type_spec(),
                f.offset,
                f.size()
            ));
        }
        s
    };
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    Ok(EXIT_OK)
}
