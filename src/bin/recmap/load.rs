//! `recmap load`: appends CSV, JSON lines or raw records to a store,
//! creating it if missing. All-or-nothing by default; `--batch` commits as
//! it goes and `--skip-bad` sets bad rows aside.
//!
//! Rows are encoded straight into a reusable buffer of many records that is
//! handed to `RawStore::extend_from_bytes` in large pieces (`bin` input goes
//! to the store as read); nothing is committed until the end (or the end of
//! each `--batch`), so a failed load leaves the store as it was: uncommitted
//! appends are discarded on reopen.
//!
//! CSV is converted in one pass over a large input buffer: the numbers of a
//! plain row are parsed where they lie, each parse also finding where its
//! field ends; rows the fast path does not take as they are (quoted fields,
//! errors) are read again by the `csv` crate's own rules ([`csv_input::csv_record_at`]),
//! so results and messages are as with the crate. One thread does it all:
//! on two busy cores a second thread did not pay. A helper thread starts the
//! disk writing while the load goes on ([`write_behind::WriteBehind`]), which shortens the
//! final commit.

//!
//! This file owns the command (arguments, `run`) and the load driver: the
//! record buffer, `--skip`, `--batch` commits, rejected rows and the
//! message that says what is committed and how to resume. One reader per
//! input format fills the buffer through [`Loader::accept`] and
//! [`Loader::reject`]: `csv_input`, `jsonl_input`, `bin_input`.
//!
//! Invariants: rows reach the store only through `flush` (or, for `bin`,
//! in whole chunks); a commit happens only at the end or at a `--batch`
//! boundary, and then `committed_rows`, `committed_input_rows` and
//! `last_committed` describe exactly what it made durable, so a failure
//! names the `--skip` that resumes after it.

mod bin_input;
mod csv_input;
mod jsonl_input;
mod write_behind;

use crate::common::{input_name, schema_from_args, CliResult, Failure, RemoveOnFail, EXIT_OK};
use crate::progress::Progress;
use crate::value::{self, Codec};
use recmap::{Options, RawStore};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use write_behind::WriteBehind;

pub const HELP: &str = "\
Input formats:
  csv    a header row naming the fields (any order), or --no-header for
         columns in schema order; bytes[N] as hex, arrays as 1;2;3
  jsonl  one JSON object per line, keys are field names
  bin    raw little-endian records in the stored layout (as `export --format bin`)
The format defaults to the input's extension (.csv, .jsonl/.ndjson/.json,
.bin), else csv. No INPUT or `-` reads stdin.

Values: integers also as exact integral floats (517.0, 1e3: pandas writes
integer columns with missing values so); timestamp[s|ms|us|ns] as RFC 3339
(2013-01-01T06:00:00Z; without an offset UTC; a bare date is midnight) or
the integer count; date as YYYY-MM-DD. A nullable field (`dep_delay:f32?`)
is null for a CSV cell that is empty, NA or NULL (--null TOKEN replaces
that set), a JSON null or an absent JSON key.

A bad row (wrong column count, bad number, integer out of range, string too
long, unknown or missing field, bool not true/false/1/0) stops the load with
FILE:LINE: field NAME: reason, commits nothing and exits 1. With --batch ROWS
the batches before the bad row stay committed and the message says how to
resume; with --skip-bad FILE bad rows are written to FILE and skipped.

Examples:
  recmap load ticks.rmap --schema 'ts:i64,price:f64,sym:str[8]' ticks.csv
  cat more.jsonl | recmap load ticks.rmap --format jsonl -
  recmap load ticks.rmap --batch 100000 --skip-bad rejects.txt big.csv
  recmap load ticks.rmap --skip 300000 big.csv     # resume after a failed --batch load";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
    Bin,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to append to (created if missing; then a schema is required).
    pub path: PathBuf,
    /// Input files; `-` or none reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Schema spec: required to create the store; must match an existing one.
    #[arg(long, value_name = "SPEC")]
    pub schema: Option<String>,
    /// Read the schema spec from FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "schema")]
    pub schema_file: Option<PathBuf>,
    /// Input format (default: from the extension, else csv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Commit every ROWS rows (a failure keeps the committed batches).
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// CSV has no header row: columns are the fields in schema order.
    #[arg(long)]
    pub no_header: bool,
    /// Write rejected rows with reasons to REJECTS_FILE and load the rest.
    #[arg(long, value_name = "REJECTS_FILE")]
    pub skip_bad: Option<PathBuf>,
    /// Skip the first N data rows of the input (to resume a --batch load).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip: u64,
    /// A CSV cell that means null in a nullable field (repeatable; replaces
    /// the default set: the empty cell, NA and NULL). JSON's null is always null.
    #[arg(long = "null", value_name = "TOKEN", allow_hyphen_values = true)]
    pub null_tokens: Vec<String>,
    /// No progress and no summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where a row came from: input index and line (record index for `bin`).
#[derive(Clone, Copy, Debug, Default)]
struct Loc {
    input: usize,
    line: u64,
}

struct Rejects {
    path: PathBuf,
    out: io::BufWriter<File>,
    count: u64,
}

struct Loader {
    store: RawStore,
    codec: Codec,
    rs: usize,
    /// Encoded records waiting for `extend_from_bytes`.
    buf: Vec<u8>,
    filled: usize,
    cap: usize,
    batch: Option<u64>,
    /// Rows appended by this load, and how many of them are committed.
    rows: u64,
    committed_rows: u64,
    last_committed: Option<Loc>,
    skip: u64,
    skipped: u64,
    /// Data rows seen (loaded, rejected or skipped), and as of the last commit.
    input_rows: u64,
    committed_input_rows: u64,
    rejects: Option<Rejects>,
    progress: Progress,
    /// Input bytes of the inputs finished so far.
    bytes: u64,
    names: Vec<String>,
    formats: Vec<Format>,
    records_before: u64,
    /// Total input size when every input is a file (for reserving room once).
    input_size: Option<u64>,
    reserved: bool,
    write_behind: WriteBehind,
}

fn infer_format(p: &Path) -> Format {
    match p
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
        Some("bin" | "rec" | "raw") => Format::Bin,
        _ => Format::Csv,
    }
}

pub fn run(a: Args) -> CliResult {
    let schema = schema_from_args(a.schema.as_deref(), a.schema_file.as_deref())?;
    let inputs = if a.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.inputs.clone()
    };
    if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(Failure::usage("stdin (-) can be given only once"));
    }
    for p in inputs.iter().filter(|p| p.as_os_str() != "-") {
        if let Err(e) = std::fs::metadata(p) {
            return Err(Failure::io(p.display(), e));
        }
    }
    let exists = a.path.exists();
    if !exists && schema.is_none() {
        return Err(Failure::usage(format!(
            "{} does not exist: give --schema SPEC or --schema-file FILE to create it",
            a.path.display()
        )));
    }
    if let Some(m) = schema.as_ref().and_then(value::unsupported) {
        return Err(Failure::usage(format!("--schema: {m}")));
    }
    // Declared before the store so it runs after the store is dropped.
    let mut cleanup = RemoveOnFail { path: None };
    let store = Options::new()
        .create(true)
        .open_raw(&a.path, schema.as_ref())
        .map_err(|e| match e {
            recmap::Error::SchemaMismatch {
                path,
                stored,
                requested,
            } => Failure::usage(format!(
                "{}: the given schema does not match the stored one\n  stored: {}\n  given:  {}",
                path.display(),
                stored.spec(),
                requested.spec()
            )),
            e => e.into(),
        });
    let store = match store {
        Ok(s) => s,
        Err(f) => {
            // A store this load was creating and did not finish (its log
            // did not fit under a size limit, say): nothing is at the path,
            // so the log and coordination file begun beside it go too.
            if !exists && !a.path.exists() {
                RemoveOnFail {
                    path: Some(a.path.clone()),
                }
                .drop_side_files();
            }
            return Err(f);
        }
    };
    if !exists {
        cleanup.path = Some(a.path.clone());
    }
    let rejects = match &a.skip_bad {
        Some(p) => Some(Rejects {
            path: p.clone(),
            out: io::BufWriter::new(File::create(p).map_err(|e| Failure::io(p.display(), e))?),
            count: 0,
        }),
        None => None,
    };
    if let Some(m) = value::unsupported(store.schema()) {
        return Err(Failure::usage(format!("{}: {m}", a.path.display())));
    }
    let codec = if a.null_tokens.is_empty() {
        Codec::new(store.schema())
    } else {
        Codec::with_null_tokens(store.schema(), a.null_tokens.iter().map(|t| t.as_bytes()))
    };
    let rs = codec.record_size;
    let cap = ((4 << 20) / rs).max(1);
    let mut l = Loader {
        records_before: store.committed_len(),
        input_size: inputs
            .iter()
            .map(|p| {
                if p.as_os_str() == "-" {
                    None
                } else {
                    std::fs::metadata(p).ok().map(|m| m.len())
                }
            })
            .sum(),
        reserved: false,
        write_behind: WriteBehind::new(&a.path),
        store,
        codec,
        rs,
        buf: vec![0u8; cap * rs],
        filled: 0,
        cap,
        batch: a.batch,
        rows: 0,
        committed_rows: 0,
        last_committed: None,
        skip: a.skip,
        skipped: 0,
        input_rows: 0,
        committed_input_rows: 0,
        rejects,
        progress: Progress::new(a.quiet),
        bytes: 0,
        names: inputs.iter().map(|p| input_name(p)).collect(),
        formats: inputs
            .iter()
            .map(|p| {
                a.format.unwrap_or_else(|| {
                    if p.as_os_str() == "-" {
                        Format::Csv
                    } else {
                        infer_format(p)
                    }
                })
            })
            .collect(),
    };
    let result = l.load_all(&inputs, a.no_header);
    if l.committed_rows > 0 {
        cleanup.disarm();
    }
    result?;
    l.flush()?;
    l.write_behind.finish();
    l.store.commit()?;
    cleanup.disarm();
    if let Some(r) = &mut l.rejects {
        r.out
            .flush()
            .map_err(|e| Failure::io(r.path.display(), e))?;
    }
    let mut extra = format!(
        "; {} has {} records",
        a.path.display(),
        l.store.committed_len()
    );
    if l.skipped > 0 {
        extra.push_str(&format!("; skipped the first {} rows", l.skipped));
    }
    if let Some(r) = &l.rejects {
        extra.push_str(&format!(
            "; {} rows rejected (see {})",
            r.count,
            r.path.display()
        ));
    }
    let (rows, bytes) = (l.rows, l.bytes);
    l.progress.summary("loaded", rows, bytes, &extra);
    Ok(EXIT_OK)
}

fn open_input(p: &Path) -> Result<Box<dyn Read + Send>, Failure> {
    if p.as_os_str() == "-" {
        Ok(Box::new(io::stdin()))
    } else {
        Ok(Box::new(
            File::open(p).map_err(|e| Failure::io(p.display(), e))?,
        ))
    }
}

impl Loader {
    fn load_all(&mut self, inputs: &[PathBuf], no_header: bool) -> Result<(), Failure> {
        for (i, p) in inputs.iter().enumerate() {
            let r = open_input(p)?;
            match self.formats[i] {
                Format::Csv => self.load_csv(r, i, no_header)?,
                Format::Jsonl => self.load_jsonl(r, i)?,
                Format::Bin => self.load_bin(r, i)?,
            }
        }
        Ok(())
    }

    fn loc(&self, l: Loc) -> String {
        match self.formats[l.input] {
            Format::Bin => format!("{}:record {}", self.names[l.input], l.line),
            _ => format!("{}:{}", self.names[l.input], l.line),
        }
    }

    /// Progress, and once enough rows show the bytes per row, room for the
    /// whole input in one growth step instead of many doublings.
    fn progress_at(&mut self, bytes_now: u64) {
        self.progress.tick(self.rows, bytes_now);
        if !self.reserved && self.rows >= 1000 && bytes_now > 0 {
            self.reserved = true;
            if let Some(total) = self.input_size {
                let est = (total as f64 * self.rows as f64 / bytes_now as f64 * 1.05) as u64;
                let more = est.saturating_sub(self.rows);
                if self.store.len() + more > self.store.capacity() {
                    // Only an optimization: a failure here shows up on the next append.
                    let _ = self.store.reserve(more);
                }
            }
        }
    }

    /// Appends the buffered records to the store.
    fn flush(&mut self) -> Result<(), Failure> {
        if self.filled > 0 {
            self.store
                .extend_from_bytes(&self.buf[..self.filled * self.rs])?;
            self.write_behind.note((self.filled * self.rs) as u64);
            self.filled = 0;
        }
        Ok(())
    }

    /// True (and counts it) while the first `--skip` rows are being skipped.
    #[inline]
    fn skipping(&mut self) -> bool {
        self.input_rows += 1;
        if self.skipped < self.skip {
            self.skipped += 1;
            true
        } else {
            false
        }
    }

    /// The row just parsed into the next slot of `buf` is good.
    #[inline(always)]
    fn accept(&mut self, at: Loc) -> Result<(), Failure> {
        self.filled += 1;
        self.rows += 1;
        if self.filled == self.cap || self.batch.is_some() {
            return self.accept_more(at);
        }
        Ok(())
    }

    /// The rest of `accept`: a full buffer, a `--batch` boundary.
    #[inline(never)]
    fn accept_more(&mut self, at: Loc) -> Result<(), Failure> {
        if self.filled == self.cap {
            self.flush()?;
        }
        if let Some(b) = self.batch {
            if self.rows.is_multiple_of(b) {
                self.flush()?;
                self.store.commit()?;
                self.committed_rows = self.rows;
                self.committed_input_rows = self.input_rows;
                self.last_committed = Some(at);
            }
        }
        Ok(())
    }

    /// A bad row: set aside with `--skip-bad`, else the load fails.
    fn reject(
        &mut self,
        at: Loc,
        reason: String,
        raw: impl FnOnce() -> Vec<u8>,
    ) -> Result<(), Failure> {
        let loc = self.loc(at);
        if let Some(r) = &mut self.rejects {
            r.count += 1;
            let mut line = format!("{loc}: {reason}\t").into_bytes();
            line.extend_from_slice(&raw());
            line.push(b'\n');
            return r
                .out
                .write_all(&line)
                .map_err(|e| Failure::io(r.path.display(), e));
        }
        Err(self.failure(format!("{loc}: {reason}")))
    }

    /// The load failed: say what is committed and how to resume.
    fn failure(&self, first_line: String) -> Failure {
        let path = self.store.path().display();
        let msg = match (self.batch, self.last_committed) {
            (None, _) => format!(
                "{first_line}\n  nothing from this load was committed ({path} still has {} records)",
                self.records_before
            ),
            (Some(b), None) => format!(
                "{first_line}\n  nothing from this load was committed (the first batch of {b} rows was not complete; {path} still has {} records)",
                self.records_before
            ),
            (Some(_), Some(last)) => format!(
                "{first_line}\n  committed {} rows of this load, the last committed row is {} ({path} has {} records)\n  fix the input, then resume with: recmap load {path} --skip {} ... (the same inputs)",
                self.committed_rows,
                self.loc(last),
                self.store.committed_len(),
                self.committed_input_rows,
            ),
        };
        Failure::rejected(msg)
    }
}
