//! `recmap schema`: prints a store's schema spec, or Python code that opens
//! the records zero-copy with `numpy.memmap` (`--numpy`), or the Rust
//! `recmap::record!` declaration of the record type that opens the store
//! (`--rust`).
//!
//! Invariants: the Rust declaration lays every byte out explicitly (gaps and
//! tail as `_padN: [u8; K]` fields, under names the schema does not use),
//! so `T::schema()` equals the stored schema up to padding, which a typed
//! open accepts; it is a function of the schema and the file name only
//! (no paths, no counts), so a checked-in copy can be compared byte for
//! byte. The numpy code masks nullable fields by their validity bits.

use crate::common::{read_info, stdout, CliResult, Failure, EXIT_OK};
use recmap::{Field, FieldType, Info, Schema, TimeUnit};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
Without options, prints the spec (name:type,...), which --schema accepts.

With --numpy, prints Python code defining `dtype` (a structured dtype with the
stored names, formats, offsets and itemsize = record size) and `records`, a
view of the committed records through numpy.memmap. Records are packed per
4 KiB page and never straddle one, so the view is a (pages, per_page) grid
with strides (4096, record_size) made by np.lib.stride_tricks.as_strided.
Only the committed record count at the time of printing is valid.
Timestamps are datetime64[unit] in the view. `column(name)` gives a field
with nulls masked (numpy.ma, from the validity bits; `valid(name)` is the
mask's inverse) and dates as datetime64[D] (a converted copy: the stored
date is an int32 day count, numpy's datetime64 is 8 bytes).

With --rust, prints the recmap::record! declaration of a Rust type that opens
the store (recmap::Store::<T>::open): every field with its Rust type, the
gaps the layout leaves as `_padN: [u8; K]` fields, nullable fields marked
#[nullable(set = set_NAME)] with the validity field. The struct is named
after the file (flights.rmap: Flights) unless --name is given.

Examples:
  recmap schema ticks.rmap
  recmap schema ticks.rmap --numpy > open_ticks.py && python3 -i open_ticks.py
  recmap schema ticks.rmap --rust --name Tick > src/tick.rs";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Print Python code that maps the records with numpy.
    #[arg(long, conflicts_with = "rust")]
    pub numpy: bool,
    /// Print the Rust `recmap::record!` declaration that opens the store.
    #[arg(long)]
    pub rust: bool,
    /// With --rust: the struct's name (default: the file name in UpperCamelCase).
    #[arg(long, value_name = "NAME", requires = "rust")]
    pub name: Option<String>,
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
        // numpy has no 32-bit date: the day count as an integer in the view,
        // converted to datetime64[D] by `column`.
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
    s.push_str(&numpy_columns(&i.schema));
    s
}

/// The Python for nullable and date fields: `NULLABLE`, `DATES`, `valid`
/// and `column` (printed for every store, so code using them needs no
/// case for stores without such fields).
fn numpy_columns(schema: &Schema) -> String {
    let validity = schema.validity_field().map(|v| v.name.as_str());
    let nullable: Vec<String> = schema
        .fields
        .iter()
        .filter_map(|f| {
            let (v, b) = (validity?, f.nullable?);
            Some(format!("{}: ({}, {b})", py_str(&f.name), py_str(v)))
        })
        .collect();
    let dates = py_list(
        schema
            .fields
            .iter()
            .filter(|f| f.ty == FieldType::Date)
            .map(|f| py_str(&f.name)),
    );
    format!(
        r#"
# Nullable fields: name -> (validity field, bit). A field holds a value where
# bit `bit` of its record's validity field (byte bit // 8, mask 1 << bit % 8)
# is set, and is null where it is clear (its slot then holds zeros).
NULLABLE = {{{nullable}}}
# Date fields: int32 days since 1970-01-01 in `records` (numpy's datetime64 is
# 8 bytes, so it cannot view them); `column` converts them. Timestamps are
# datetime64 in `records` already (i64 since the epoch, UTC; numpy reads the
# minimum i64 as NaT).
DATES = {dates}


def valid(name, recs=None):
    """Booleans: True where nullable field `name` of `recs` (default: records) holds a value."""
    recs = records if recs is None else recs
    vfield, bit = NULLABLE[name]
    return (recs[vfield][..., bit // 8] & (1 << (bit % 8))) != 0


def column(name, recs=None):
    """Field `name` of `recs` (default: records), ready to compute with.

    Nullable fields are a numpy.ma masked array, masked where null (the data
    stays the zero-copy view); date fields are converted to datetime64[D] (a
    copy); other fields are the view itself.
    """
    recs = records if recs is None else recs
    col = recs[name]
    if name in DATES:
        col = col.astype("datetime64[D]")
    if name in NULLABLE:
        null = ~valid(name, recs)
        null = null.reshape(null.shape + (1,) * (col.ndim - null.ndim))
        col = np.ma.masked_array(col, mask=np.broadcast_to(null, col.shape).copy())
    return col
"#,
        nullable = nullable.join(", "),
    )
}

/// Rust keywords (2021, strict and reserved, with `gen` of 2024): a field so
/// named is written raw (`r#type`).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Names no identifier can spell, not even raw.
const UNRAWABLE: &[&str] = &["_", "crate", "self", "Self", "super"];

/// The Rust identifier for schema name `name` (`r#type` for a keyword), or
/// why there is none.
fn rust_ident(name: &str, what: &str) -> Result<String, String> {
    if UNRAWABLE.contains(&name) {
        return Err(format!(
            "{what} {name:?} cannot be a Rust identifier, not even raw (r#{name}); \
             rename it (recmap cannot rename a field in place: export, edit the schema, load)"
        ));
    }
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!("{what} {name:?} is not a Rust identifier"));
    }
    Ok(if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    })
}

/// The struct name for a store file: its stem in UpperCamelCase
/// (`flights_2013.rmap` → `Flights2013`), `Record…` if that would not
/// start with a letter.
fn struct_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name = String::new();
    for part in stem.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            name.push(c.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "Record");
    }
    if name == "Self" {
        name.push_str("Record");
    }
    name
}

/// `Ok` if `name` can name the struct: an identifier, not a keyword.
fn check_struct_name(name: &str) -> Result<(), String> {
    match rust_ident(name, "struct name")? {
        r if r.starts_with("r#") => Err(format!("struct name {name:?} is a Rust keyword")),
        _ => Ok(()),
    }
}

/// The Rust type of a field in a `record!`, or why there is none.
fn rust_type(f: &Field) -> Result<String, String> {
    let n = f.count;
    let scalar = match f.ty {
        FieldType::U8 if n > 1 => {
            return Err(format!(
                "field {:?} is u8[{n}], which a Rust record cannot declare ([u8; {n}] is \
                 bytes[{n}], the same bytes under another type): store it as bytes[{n}]",
                f.name
            ))
        }
        FieldType::U8 => "u8",
        FieldType::U16 => "u16",
        FieldType::U32 => "u32",
        FieldType::U64 => "u64",
        FieldType::I8 => "i8",
        FieldType::I16 => "i16",
        FieldType::I32 => "i32",
        FieldType::I64 => "i64",
        FieldType::F32 => "f32",
        FieldType::F64 => "f64",
        FieldType::Bool => return Ok("recmap::Bool".into()),
        FieldType::Bytes => return Ok(format!("[u8; {n}]")),
        FieldType::Str => return Ok(format!("recmap::FixedStr<{n}>")),
        FieldType::Validity => return Ok(format!("recmap::Validity<{n}>")),
        FieldType::Date => return Ok("recmap::Date".into()),
        FieldType::Timestamp(u) => {
            return Ok(match u {
                TimeUnit::Seconds => "recmap::TimestampS",
                TimeUnit::Millis => "recmap::TimestampMs",
                TimeUnit::Micros => "recmap::TimestampUs",
                TimeUnit::Nanos => "recmap::TimestampNs",
            }
            .into())
        }
    };
    Ok(if n == 1 {
        scalar.to_string()
    } else {
        format!("[{scalar}; {n}]")
    })
}

/// The `recmap::record!` declaration of a type that opens a store of
/// `schema` named `file` (its file name, for the comments), struct `name`.
pub fn rust_code(schema: &Schema, file: &str, name: &str) -> Result<String, String> {
    check_struct_name(name)?;
    // Validity bits run 0, 1, 2, … in field order in a `record!`; a store
    // whose bits are assigned otherwise has no such declaration.
    let mut next_bit = 0u16;
    for f in &schema.fields {
        if let Some(b) = f.nullable {
            if b != next_bit {
                return Err(format!(
                    "field {:?} has validity bit {b}, but a record! gives the nullable fields \
                     bits 0, 1, 2, … in field order (it would get bit {next_bit})",
                    f.name
                ));
            }
            next_bit += 1;
        }
    }
    let used: std::collections::HashSet<&str> =
        schema.fields.iter().map(|f| f.name.as_str()).collect();
    let mut pads = (0u32..)
        .map(|k| format!("_pad{k}"))
        .filter(|p| !used.contains(p.as_str()));
    let mut methods: std::collections::HashSet<String> = schema
        .fields
        .iter()
        .filter(|f| f.is_nullable())
        .map(|f| f.name.clone())
        .collect();
    let mut lines: Vec<String> = Vec::new();
    let mut gap = |lines: &mut Vec<String>, from: u32, to: u32| {
        let p = pads.next().expect("unbounded names");
        lines.push(format!(
            "        pub {p}: [u8; {}], // bytes {from}..{to}: padding",
            to - from
        ));
    };
    let mut end = 0u32;
    let mut max_align = 1u32;
    for f in &schema.fields {
        if f.offset > end {
            gap(&mut lines, end, f.offset);
        }
        let field = rust_ident(&f.name, "field")?;
        let ty = rust_type(f)?;
        if f.is_nullable() {
            let mut setter = format!("set_{}", f.name);
            while methods.contains(&setter) {
                setter.push('_');
            }
            methods.insert(setter.clone());
            lines.push(format!("        #[nullable(set = {setter})]"));
        }
        lines.push(format!("        pub {field}: {ty},"));
        end = f.offset + f.size();
        max_align = max_align.max(f.ty.elem_size());
    }
    if schema.record_size > end {
        gap(&mut lines, end, schema.record_size);
    }
    let mut out = format!(
        "// The record type of `{file}`, printed by `recmap schema --rust`:\n\
         // recmap::Store::<{name}>::open(path) opens the store.\n\
         // Stored schema: {spec}\n\
         recmap::record! {{\n    \
         /// A record of `{file}`: {size} bytes, align {align}.\n",
        spec = schema.spec(),
        size = schema.record_size,
        align = schema.record_align,
    );
    if schema.record_align > max_align {
        out.push_str(&format!("    #[repr(align({}))]\n", schema.record_align));
    }
    if schema.fields.iter().any(|f| !is_snake_case(&f.name)) {
        out.push_str("    #[allow(non_snake_case)]\n");
    }
    out.push_str(&format!("    pub struct {name} {{\n"));
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("    }\n}\n");
    Ok(out)
}

/// True if rustc's `non_snake_case` lint accepts `name` as a field name.
fn is_snake_case(name: &str) -> bool {
    let core = name.trim_matches('_');
    !core.contains("__") && !core.chars().any(|c| c.is_ascii_uppercase())
}

pub fn run(a: Args) -> CliResult {
    // Beside a writer: its newest commit, through a reader (a note says so).
    let info = read_info(&a.path, "schema")?;
    let text = if a.numpy {
        numpy_code(&info)
    } else if a.rust {
        let name = match a.name {
            Some(n) => {
                check_struct_name(&n).map_err(|m| Failure::usage(format!("--name: {m}")))?;
                n
            }
            None => struct_name(&a.path),
        };
        let file = a
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        rust_code(&info.schema, &file, &name)
            .map_err(|m| Failure::rejected(format!("{}: --rust: {m}", a.path.display())))?
    } else {
        format!("{}\n", info.schema.spec())
    };
    let mut out = stdout();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(spec: &str) -> Result<String, String> {
        rust_code(&Schema::parse(spec).unwrap(), "t.rmap", "T")
    }

    #[test]
    fn struct_names_from_file_names() {
        for (file, want) in [
            ("dir/flights_2013.rmap", "Flights2013"),
            ("my-ticks.db.rmap", "MyTicksDb"),
            ("Weather", "Weather"),
            ("2013.rmap", "Record2013"),
            ("é.rmap", "Record"),
            ("self.rmap", "SelfRecord"),
        ] {
            assert_eq!(struct_name(Path::new(file)), want, "{file}");
        }
        assert!(check_struct_name("Tick").is_ok());
        for bad in ["type", "Self", "_", "9x", "a-b", ""] {
            assert!(check_struct_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_types_and_layout() {
        let code = rust("type:u8,x:f64?,set_x:u8?,t:timestamp[ms],d:date,s:str[3],b:bool,v:i16[2]")
            .unwrap();
        for want in [
            "pub r#type: u8,",
            "pub _pad0: [u8; 7], // bytes 1..8: padding",
            "#[nullable(set = set_x_)]\n        pub x: f64,",
            "#[nullable(set = set_set_x)]\n        pub set_x: u8,",
            "pub t: recmap::TimestampMs,",
            "pub d: recmap::Date,",
            "pub s: recmap::FixedStr<3>,",
            "pub b: recmap::Bool,",
            "pub v: [i16; 2],",
            "pub _valid: recmap::Validity<1>,",
            "/// A record of `t.rmap`: 48 bytes, align 8.",
        ] {
            assert!(code.contains(want), "{want:?} in\n{code}");
        }
        assert!(!code.contains("allow(non_snake_case)"), "{code}");
        assert!(rust("Year:u16")
            .unwrap()
            .contains("#[allow(non_snake_case)]"));
        // Padding names skip the schema's own.
        let code = rust("a:u8,_pad0:bytes[1],b:u32").unwrap();
        assert!(
            code.contains("pub _pad0: [u8; 1],\n        pub _pad1: [u8; 2], // bytes 2..4"),
            "{code}"
        );
        // An alignment above the fields' needs is kept.
        let mut s = Schema::parse("a:u8").unwrap();
        (s.record_size, s.record_align) = (16, 16);
        let code = rust_code(&s, "t.rmap", "T").unwrap();
        assert!(
            code.contains("#[repr(align(16))]") && code.contains("pub _pad0: [u8; 15]"),
            "{code}"
        );
    }

    #[test]
    fn layouts_without_a_declaration_are_refused_clearly() {
        for (spec, why) in [
            ("self:u8", "\"self\" cannot be a Rust identifier"),
            ("_:u8", "\"_\" cannot be a Rust identifier"),
            ("crate:u8?", "\"crate\" cannot be a Rust identifier"),
            (
                "a:u8[4]",
                "a Rust record cannot declare ([u8; 4] is bytes[4]",
            ),
        ] {
            let e = rust(spec).unwrap_err();
            assert!(e.contains(why), "{spec}: {e}");
        }
        let s = Schema::parse("a:u8?,b:u8?").unwrap();
        let mut swapped = s.clone();
        (swapped.fields[0].nullable, swapped.fields[1].nullable) = (Some(1), Some(0));
        let e = rust_code(&swapped, "t.rmap", "T").unwrap_err();
        assert!(e.contains("\"a\" has validity bit 1"), "{e}");
        assert!(rust_code(&s, "t.rmap", "T").is_ok());
    }

    #[test]
    fn numpy_columns_name_the_bits_and_dates() {
        let py = numpy_columns(&Schema::parse("a:u8?,d:date,b:f32[2]?").unwrap());
        assert!(
            py.contains(r#"NULLABLE = {"a": ("_valid", 0), "b": ("_valid", 1)}"#),
            "{py}"
        );
        assert!(py.contains(r#"DATES = ["d"]"#), "{py}");
        let py = numpy_columns(&Schema::parse("a:u8").unwrap());
        assert!(
            py.contains("NULLABLE = {}") && py.contains("DATES = []"),
            "{py}"
        );
    }
}
