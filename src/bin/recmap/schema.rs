//! `recmap schema`: prints a store's schema spec, or (`--numpy`) Python code
//! that opens the records zero-copy with `numpy.memmap`.

use crate::common::{open_read_only, stdout, CliResult, Failure, EXIT_OK};
use recmap::{FieldType, Info};
use std::io::Write;
use std::path::PathBuf;

pub const HELP: &str = "\
Without options, prints the spec (name:type,...), which --schema accepts.
With --numpy, prints Python code defining `dtype` (a structured dtype with the
stored names, formats, offsets and itemsize = record size) and `records`, a
view of the committed records through numpy.memmap. Records are packed per
4 KiB page and never straddle one, so the view is a (pages, per_page) grid
with strides (4096, record_size) made by np.lib.stride_tricks.as_strided.
Only the committed record count at the time of printing is valid.

Examples:
  recmap schema ticks.rmap
  recmap schema ticks.rmap --numpy > open_ticks.py && python3 -i open_ticks.py";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Print Python code that maps the records with numpy.
    #[arg(long)]
    pub numpy: bool,
}

/// The numpy format string of one field.
fn numpy_format(ty: FieldType, count: u32) -> String {
    let base = match ty {
        FieldType::U8 => "u1",
        FieldType::U16 => "<u2",
        FieldType::U32 => "<u4",
        FieldType::U64 => "<u8",
        FieldType::I8 => "i1",
        FieldType::I16 => "<i2",
        FieldType::I32 => "<i4",
        FieldType::I64 => "<i8",
        FieldType::F32 => "<f4",
        FieldType::F64 => "<f8",
        FieldType::Bool => "?",
        // numpy's datetime64 is the same i64 count since the epoch.
        FieldType::Timestamp(u) => return format!("<M8[{}]", u.suffix()),
        // numpy has no 32-bit date: the day count as an integer.
        FieldType::Date => "<i4",
        FieldType::Validity => return format!("({count},)u1"),
        FieldType::Str => return format!("S{count}"),
        FieldType::Bytes => return format!("({count},)u1"),
    };
    if count == 1 {
        base.to_string()
    } else {
        format!("({count},){base}")
    }
}

fn py_str(s: &str) -> String {
    serde_json::to_string(s).expect("JSON of a string")
}

fn py_list<T: AsRef<str>>(items: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = items.map(|s| s.as_ref().to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// Python code that opens the store's committed records with numpy.
pub fn numpy_code(i: &Info) -> String {
    let path = std::path::absolute(&i.path).unwrap_or_else(|_| i.path.clone());
    let f = &i.schema.fields;
    let names = py_list(f.iter().map(|f| py_str(&f.name)));
    let formats = py_list(f.iter().map(|f| py_str(&numpy_format(f.ty, f.count))));
    let offsets = py_list(f.iter().map(|f| f.offset.to_string()));
    let mut s = format!(
        r#"# Opens {path} zero-copy with numpy (printed by `recmap schema --numpy`).
# Only the first RECORDS records are valid: that was the committed count when
# this was printed; print it again (or see `recmap info`) after new commits.
import numpy as np

PATH = {path_lit}
RECORDS = {records}
RECORD_SIZE = {rs}
DATA_OFFSET = {data_offset}  # byte offset of record 0 in the file
PAGE = 4096

dtype = np.dtype({{
    "names": {names},
    "formats": {formats},
    "offsets": {offsets},
    "itemsize": RECORD_SIZE,
}})
"#,
        path = path.display(),
        path_lit = py_str(&path.display().to_string()),
        records = i.committed_records,
        rs = i.record_size,
        data_offset = i.data_offset,
    );
    if i.committed_records == 0 {
        s.push_str("\n# The store has no committed records.\nrecords = np.zeros(0, dtype=dtype)\n");
    } else if i.pages_per_group == 1 {
        let per_page = i.records_per_page;
        let dense = per_page * i.record_size as u64 == 4096;
        let flat = if dense {
            "# Records fill each page exactly, so this flat view is zero-copy too.\n"
        } else {
            "# Pages end with padding, so this flat array is a copy; index `grid` (or\n# use record(i)) to stay zero-copy.\n"
        };
        s.push_str(&format!(
            r#"
PER_PAGE = {per_page}  # records per 4 KiB page; records never straddle a page

# Record i is at DATA_OFFSET + (i // PER_PAGE) * PAGE + (i % PER_PAGE) * RECORD_SIZE.
pages = -(-RECORDS // PER_PAGE)
raw = np.memmap(PATH, dtype=np.uint8, mode="r", offset=DATA_OFFSET, shape=(pages * PAGE,))
# Zero-copy grid of records: grid[p, k] is record p * PER_PAGE + k.
grid = np.lib.stride_tricks.as_strided(
    raw[:RECORD_SIZE].view(dtype), shape=(pages, PER_PAGE), strides=(PAGE, RECORD_SIZE), writeable=False
)
{flat}records = grid.reshape(-1)[:RECORDS]


def record(i):
    """Record i, zero-copy."""
    if not 0 <= i < RECORDS:
        raise IndexError(i)
    return grid[i // PER_PAGE, i % PER_PAGE]
"#
        ));
    } else {
        s.push_str(&format!(
            r#"
PAGES_PER_RECORD = {ppg}  # each record starts a new page and takes this many pages

# Record i is at DATA_OFFSET + i * PAGES_PER_RECORD * PAGE.
raw = np.memmap(PATH, dtype=np.uint8, mode="r", offset=DATA_OFFSET, shape=(RECORDS * PAGES_PER_RECORD * PAGE,))
# Zero-copy view of the committed records.
records = np.lib.stride_tricks.as_strided(
    raw[:RECORD_SIZE].view(dtype), shape=(RECORDS,), strides=(PAGES_PER_RECORD * PAGE,), writeable=False
)


def record(i):
    """Record i, zero-copy."""
    return records[i]
"#,
            ppg = i.pages_per_group
        ));
    }
    s
}

pub fn run(a: Args) -> CliResult {
    let store = open_read_only(&a.path)?;
    let info = store.info();
    let text = if a.numpy {
        numpy_code(&info)
    } else {
        format!("{}\n", info.schema.spec())
    };
    let mut out = stdout();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    Ok(EXIT_OK)
}
