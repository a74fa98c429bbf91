//! `recmap load`: appends CSV, JSON lines or raw records to a store,
//! creating it if missing. All-or-nothing by default; `--batch` commits as
//! it goes and `--skip-bad` sets bad rows aside.
//!
//! Rows are encoded straight into a reusable buffer of many records that is
//! handed to `RawStore::extend_from_bytes` in large pieces; nothing is
//! committed until the end (or the end of each `--batch`), so a failed load
//! leaves the store as it was: uncommitted appends are discarded on reopen.

use crate::common::{input_name, schema_from_args, CliResult, Failure, RemoveOnFail, EXIT_OK};
use crate::progress::Progress;
use crate::value::{Codec, FastCell};
use recmap::{Options, RawStore};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

pub const HELP: &str = "\
Input formats:
  csv    a header row naming the fields (any order), or --no-header for
         columns in schema order; bytes[N] as hex, arrays as 1;2;3
  jsonl  one JSON object per line, keys are field names
  bin    raw little-endian records in the stored layout (as `export --format bin`)
The format defaults to the input's extension (.csv, .jsonl/.ndjson/.json,
.bin), else csv. No INPUT or `-` reads stdin.

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
        })?;
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
    let codec = Codec::new(store.schema());
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

type CsvReader = csv::Reader<Box<dyn Read + Send>>;

fn csv_failure(name: &str, e: csv::Error) -> Failure {
    let msg = format!("{name}: {e}");
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Failure::io(name, e),
        _ => Failure::rejected(msg),
    }
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
            self.filled = 0;
        }
        Ok(())
    }

    /// The record slot the next row is parsed into.
    #[inline]
    fn slot(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled * self.rs..(self.filled + 1) * self.rs]
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

    /// The row just parsed into `slot()` is good.
    #[inline]
    fn accept(&mut self, at: Loc) -> Result<(), Failure> {
        self.filled += 1;
        self.rows += 1;
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

    /// Reads the header (unless `no_header`) and returns, per column, the field it fills.
    fn csv_header(
        &self,
        rdr: &mut CsvReader,
        name: &str,
        no_header: bool,
    ) -> Result<Option<Vec<usize>>, Failure> {
        let nfields = self.codec.fields.len();
        if no_header {
            return Ok(Some((0..nfields).collect()));
        }
        let mut row = csv::ByteRecord::new();
        if !rdr
            .read_byte_record(&mut row)
            .map_err(|e| csv_failure(name, e))?
        {
            return Ok(None); // empty input
        }
        let line = row.position().map_or(1, |p| p.line());
        let at = format!("{name}:{line}");
        let mut map = Vec::with_capacity(row.len());
        for (j, col) in row.iter().enumerate() {
            let col = if j == 0 {
                col.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(col)
            } else {
                col
            };
            let col = String::from_utf8_lossy(col);
            let col = col.trim();
            let f = self.codec.index_of(col).ok_or_else(|| {
                self.failure(format!(
                    "{at}: field {col}: unknown field in the header (the schema has: {})",
                    self.codec.names()
                ))
            })?;
            if map.contains(&f) {
                return Err(self.failure(format!("{at}: field {col}: appears twice in the header")));
            }
            map.push(f);
        }
        if let Some(missing) = (0..nfields).find(|f| !map.contains(f)) {
            return Err(self.failure(format!(
                "{at}: field {}: missing field (no such column in the header)",
                self.codec.fields[missing].name
            )));
        }
        Ok(Some(map))
    }

    /// CSV: a reader thread splits rows (the csv crate) while this thread
    /// converts fields into records, so the two overlap on two cores.
    fn load_csv(
        &mut self,
        input: Box<dyn Read + Send>,
        idx: usize,
        no_header: bool,
    ) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 18)
            .from_reader(input);
        let Some(map) = self.csv_header(&mut rdr, &name, no_header)? else {
            return Ok(());
        };
        let cells: Vec<(FastCell, usize)> = map
            .iter()
            .map(|&f| (FastCell::new(&self.codec.fields[f]), f))
            .collect();
        let ncols = cells.len();
        const ROWS_PER_BATCH: usize = 256;
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<(Vec<csv::ByteRecord>, usize)>(8);
            let (back_tx, back_rx) = mpsc::channel::<Vec<csv::ByteRecord>>();
            let reader = scope.spawn(move || -> Result<u64, csv::Error> {
                loop {
                    let mut batch = back_rx.try_recv().unwrap_or_default();
                    let mut n = 0;
                    while n < ROWS_PER_BATCH {
                        if batch.len() == n {
                            batch.push(csv::ByteRecord::new());
                        }
                        if !rdr.read_byte_record(&mut batch[n])? {
                            break;
                        }
                        n += 1;
                    }
                    let done = n < ROWS_PER_BATCH;
                    if tx.send((batch, n)).is_err() || done {
                        return Ok(rdr.position().byte());
                    }
                }
            });
            for (batch, n) in rx {
                for row in &batch[..n] {
                    self.csv_row(row, idx, &cells, ncols)?;
                }
                if let Some(last) = batch[..n].last().and_then(|r| r.position()) {
                    self.progress_at(self.bytes + last.byte());
                }
                let _ = back_tx.send(batch);
            }
            let bytes = reader
                .join()
                .expect("the CSV reader thread does not panic")
                .map_err(|e| csv_failure(&name, e))?;
            self.bytes += bytes;
            Ok(())
        })
    }

    #[inline]
    fn csv_row(
        &mut self,
        row: &csv::ByteRecord,
        idx: usize,
        cells: &[(FastCell, usize)],
        ncols: usize,
    ) -> Result<(), Failure> {
        if self.skipping() {
            return Ok(());
        }
        let line = row.position().map_or(0, |p| p.line());
        let at = Loc { input: idx, line };
        if row.len() != ncols {
            let reason = format!("expected {ncols} columns, got {}", row.len());
            return self.reject(at, reason, || csv_line(row));
        }
        let rs = self.rs;
        let rec = &mut self.buf[self.filled * rs..(self.filled + 1) * rs];
        let mut err = None;
        for (cell, (fast, f)) in row.iter().zip(cells) {
            if !fast.parse(cell, rec) {
                let fc = &self.codec.fields[*f];
                if let Err(e) = fc.parse_text(cell, rec) {
                    err = Some(format!("field {}: {e}", fc.name));
                    break;
                }
            }
        }
        match err {
            None => self.accept(at),
            Some(reason) => self.reject(at, reason, || csv_line(row)),
        }
    }

    fn load_jsonl(&mut self, input: Box<dyn Read + Send>, idx: usize) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let mut r = BufReader::with_capacity(1 << 18, input);
        let mut line = Vec::new();
        let mut lineno = 0u64;
        let mut seen = vec![false; self.codec.fields.len()];
        loop {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .map_err(|e| Failure::io(&name, e))?;
            if n == 0 {
                break;
            }
            lineno += 1;
            self.bytes += n as u64;
            let text = line.trim_ascii();
            if text.is_empty() || self.skipping() {
                continue;
            }
            let at = Loc {
                input: idx,
                line: lineno,
            };
            if lineno.is_multiple_of(4096) {
                self.progress_at(self.bytes);
            }
            let result =
                match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(text) {
                    Err(e) => Err(format!("not a JSON object: {e}")),
                    Ok(obj) => {
                        seen.fill(false);
                        let rs = self.rs;
                        let rec = &mut self.buf[self.filled * rs..(self.filled + 1) * rs];
                        let mut res = Ok(());
                        for (k, v) in &obj {
                            let Some(f) = self.codec.index_of(k) else {
                                res = Err(format!(
                                    "field {k}: unknown field (the schema has: {})",
                                    self.codec.names()
                                ));
                                break;
                            };
                            let fc = &self.codec.fields[f];
                            if let Err(e) = fc.parse_json(v, rec) {
                                res = Err(format!("field {}: {e}", fc.name));
                                break;
                            }
                            seen[f] = true;
                        }
                        if res.is_ok() {
                            if let Some(m) = seen.iter().position(|s| !s) {
                                res = Err(format!(
                                    "field {}: missing field",
                                    self.codec.fields[m].name
                                ));
                            }
                        }
                        res
                    }
                };
            match result {
                Ok(()) => self.accept(at)?,
                Err(reason) => {
                    let raw = text.to_vec();
                    self.reject(at, reason, || raw)?
                }
            }
        }
        Ok(())
    }

    fn load_bin(&mut self, mut input: Box<dyn Read + Send>, idx: usize) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let rs = self.rs;
        let mut chunk = vec![0u8; ((1 << 20) / rs).max(1) * rs];
        let mut pending = 0usize;
        let mut total = 0u64;
        let mut record = 0u64;
        loop {
            let n = match input.read(&mut chunk[pending..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::io(&name, e)),
            };
            pending += n;
            total += n as u64;
            self.bytes += n as u64;
            let whole = pending / rs;
            for k in 0..whole {
                let at = Loc {
                    input: idx,
                    line: record,
                };
                record += 1;
                if self.skipping() {
                    continue;
                }
                self.slot().copy_from_slice(&chunk[k * rs..(k + 1) * rs]);
                self.accept(at)?;
            }
            chunk.copy_within(whole * rs..pending, 0);
            pending -= whole * rs;
            self.progress_at(self.bytes);
        }
        if pending != 0 {
            return Err(self.failure(format!(
                "{name}: {total} bytes is not a multiple of the record size {rs} ({pending} trailing bytes)"
            )));
        }
        Ok(())
    }
}

/// A CSV row re-encoded as one line (for the rejects file).
fn csv_line(row: &csv::ByteRecord) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = w.write_byte_record(row);
    let mut v = w.into_inner().unwrap_or_default();
    if v.last() == Some(&b'\n') {
        v.pop();
    }
    v
}
