//! `recmap info`: a store's format version, layout, schema and counts, as
//! text or JSON.

use crate::common::{note, open_for_reading, stdout, CliResult, Failure, EXIT_OK};
use recmap::Info;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

pub const HELP: &str = "\
JSON keys: path, format_version, record_size, record_align, records_per_page,
pages_per_group, records, generation, file_size, capacity, chunk_size,
data_offset, table_offset, append_only (committed records never change), spec, schema (a list of {name, type, offset, size}),
writer_active (true while a writer holds the store), writer_pid (its pid, or
null).

While a writer holds the store (a running load, a program with the store
open) the numbers are of its newest commit, read through a reader; the text
says so in a `writer:` line.

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
        "append_only": i.append_only,
        "spec": i.schema.spec(),
        "schema": fields,
    })
}

pub fn run(a: Args) -> CliResult {
    let mut src = open_for_reading(&a.path)?;
    let i = src.info()?;
    let beside = src.beside_writer();
    let pid = src.writer_pid().filter(|&p| p > 0);
    if beside {
        note(&format!(
            "a writer holds the store; showing its commit {} through a reader",
            i.generation
        ));
    }
    let mut out = stdout();
    let text = if a.json {
        let mut v = info_json(&i);
        v["writer_active"] = json!(beside);
        v["writer_pid"] = json!(pid);
        let mut s = serde_json::to_string_pretty(&v).expect("JSON of plain values");
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
             append-only:    {}\n\
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
            if i.append_only { "yes" } else { "no" },
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
        if beside {
            let who = pid.map_or(String::new(), |p| format!(" (pid {p})"));
            s.push_str(&format!(
                "writer:         active{who}; records and generation are its last commit\n"
            ));
        }
        s
    };
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    Ok(EXIT_OK)
}
