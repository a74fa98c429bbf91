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
//! errors) are read again by the `csv` crate's own rules ([`csv_record_at`]),
//! so results and messages are as with the crate. One thread does it all:
//! on two busy cores a second thread did not pay. A helper thread starts the
//! disk writing while the load goes on ([`WriteBehind`]), which shortens the
//! final commit.

use crate::common::{input_name, schema_from_args, CliResult, Failure, RemoveOnFail, EXIT_OK};
use crate::progress::Progress;
use crate::value::{self, Codec, FastCell, FieldCodec};
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

/// Bytes handed to the store between two write-behind syncs.
const WRITE_BEHIND: u64 = 64 << 20;

/// Gets the disk writing the appended records while the load goes on:
/// every [`WRITE_BEHIND`] bytes handed to the store, a helper thread
/// `fdatasync`s the store file through a read-only handle of its own, so
/// the final commit's sync finds little left to write (the commit is still
/// what makes the load durable and visible). The store's `flock` belongs to
/// its own handle, which this one does not touch. A failed sync here is
/// ignored: the kernel reports a writeback error to the store's handle too,
/// at the commit's sync.
struct WriteBehind {
    path: PathBuf,
    pending: u64,
    tx: Option<mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    off: bool,
}

impl WriteBehind {
    fn new(path: &Path) -> WriteBehind {
        WriteBehind {
            path: path.to_path_buf(),
            pending: 0,
            tx: None,
            thread: None,
            off: false,
        }
    }

    /// `n` more bytes went to the store.
    #[inline]
    fn note(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= WRITE_BEHIND {
            self.pending = 0;
            self.kick();
        }
    }

    #[cold]
    fn kick(&mut self) {
        if self.off {
            return;
        }
        if self.tx.is_none() {
            let Ok(file) = File::open(&self.path) else {
                self.off = true;
                return;
            };
            // One request waits while a sync runs; more are dropped.
            let (tx, rx) = mpsc::sync_channel::<()>(1);
            let spawned = std::thread::Builder::new()
                .name("write-behind".into())
                .spawn(move || {
                    for () in rx {
                        let _ = file.sync_data();
                    }
                });
            match spawned {
                Ok(t) => {
                    self.tx = Some(tx);
                    self.thread = Some(t);
                }
                Err(_) => {
                    self.off = true;
                    return;
                }
            }
        }
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }

    /// Waits for a sync under way (before the commit's own).
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Read size for `bin` input (rounded down to whole records).
const BIN_CHUNK: usize = 1 << 20;

/// Input buffer size for CSV (grown for a longer record).
const IN_BUF: usize = 1 << 20;

/// CSV input: a buffer refilled from the reader, the unprocessed tail (a
/// partial row) kept at its front.
struct InBuf {
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// The unprocessed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// Input offset of `buf[0]`.
    base: u64,
}

impl InBuf {
    /// Moves the unprocessed bytes to the front and reads more after them,
    /// growing the buffer when it is full. False (and `eof`) at the end.
    fn refill(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the record at `start` as the `csv` crate would (see
    /// [`csv_record_at`]), reading more input until it is complete, and
    /// moves past it. Returns whether there was one (else only blank lines
    /// were left) and how many `\n` it consumed.
    fn csv_record(
        &mut self,
        row: &mut csv::ByteRecord,
        field: &mut Vec<u8>,
        name: &str,
    ) -> Result<(bool, u64), Failure> {
        loop {
            let data = &self.buf[self.start..self.end];
            match csv_record_at(data, self.eof, row, field) {
                Some((got, used, newlines)) => {
                    self.start += used;
                    return Ok((got, newlines));
                }
                None => {
                    self.refill().map_err(|e| Failure::io(name, e))?;
                }
            }
        }
    }
}

/// Where [`csv_record_at`] is in a record (the `csv-core` parser's states
/// for the `csv` crate's default dialect, which `ReaderBuilder::new()` uses).
#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A `"` inside a quoted field: either the first of `""` or the end.
    QuoteInQuoted,
}

/// One record from `data`, which starts where a record may start, by the
/// rules of the `csv` crate's default reader (delimiter `,`, quote `"`,
/// doubled quotes, no escape or comments, `\r`, `\n` or `\r\n` ending a
/// record, blank lines skipped): the same fields, and the same bytes and
/// `\n`s consumed, as `csv_core` with that configuration (its NFA,
/// transcribed; a record ended by `\r` leaves a following `\n` unread,
/// as there). Returns (a record was found, bytes used, `\n`s consumed),
/// or `None` when `data` ends inside the record and `eof` is false. At the
/// end of the input an open record (even an open quote) ends as in the
/// crate. The caller strips a UTF-8 BOM at the very start of the input.
fn csv_record_at(
    data: &[u8],
    eof: bool,
    row: &mut csv::ByteRecord,
    field: &mut Vec<u8>,
) -> Option<(bool, usize, u64)> {
    use CsvState::*;
    row.clear();
    field.clear();
    let mut state = StartRecord;
    let mut newlines = 0u64;
    let mut i = 0;
    loop {
        let Some(&c) = data.get(i) else {
            if !eof {
                return None;
            }
            if state == StartRecord {
                return Some((false, i, newlines));
            }
            row.push_field(field);
            return Some((true, i, newlines));
        };
        let term = c == b'\r' || c == b'\n';
        match state {
            StartRecord => {
                if term {
                    newlines += (c == b'\n') as u64;
                    i += 1;
                } else {
                    state = StartField;
                }
                continue;
            }
            StartField if c == b'"' => state = InQuoted,
            InQuoted if c == b'"' => state = QuoteInQuoted,
            InQuoted => {
                newlines += (c == b'\n') as u64;
                field.push(c);
            }
            QuoteInQuoted if c == b'"' => {
                field.push(c);
                state = InQuoted;
            }
            StartField | InField | QuoteInQuoted => {
                if c == b',' {
                    row.push_field(field);
                    field.clear();
                    state = StartField;
                } else if term {
                    // The terminator is consumed; a `\r`'s `\n` is not.
                    row.push_field(field);
                    newlines += (c == b'\n') as u64;
                    return Some((true, i + 1, newlines));
                } else {
                    field.push(c);
                    state = InField;
                }
            }
        }
        i += 1;
    }
}

/// The index of the first `,`, `\r` or `\n` in `buf` from `p` (else `buf.len()`).
#[inline(always)]
fn field_end(buf: &[u8], mut p: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn zero_bytes(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGH
    }
    while p < buf.len() {
        let w = value::load8(buf, p);
        let m = zero_bytes(w ^ (ONES * b',' as u64))
            | zero_bytes(w ^ (ONES * b'\n' as u64))
            | zero_bytes(w ^ (ONES * b'\r' as u64));
        if m != 0 {
            return (p + (m.trailing_zeros() / 8) as usize).min(buf.len());
        }
        p += 8;
    }
    buf.len()
}

/// The fast path for one CSV row starting at `buf[p]`, which must end with
/// a record terminator: every field converted into `rec`. Returns the index
/// of the row's terminator, or `None` when [`csv_record_at`] should read the
/// row instead (a quoted field, a wrong column count, a bad value: the same
/// result then, and the same message for an error).
#[inline(always)]
fn parse_row(
    buf: &[u8],
    mut p: usize,
    cells: &[(FastCell, usize)],
    fields: &[FieldCodec],
    rec: &mut [u8],
) -> Option<usize> {
    let last = cells.len() - 1;
    for (k, (fast, f)) in cells.iter().enumerate() {
        // A number followed by the delimiter this column needs.
        if let Some(e) = fast.parse_at(buf, p, rec) {
            match buf.get(e) {
                Some(b',') if k < last => {
                    p = e + 1;
                    continue;
                }
                Some(b'\n' | b'\r') if k == last => return Some(e),
                _ => {}
            }
        }
        // Anything else: find the field, then convert it as a whole.
        if buf.get(p) == Some(&b'"') {
            return None;
        }
        let e = field_end(buf, p);
        let cell = &buf[p..e];
        if !fast.parse(cell, rec) && fields[*f].parse_text(cell, rec).is_err() {
            return None;
        }
        let t = *buf.get(e)?;
        if (t == b',') != (k < last) {
            return None;
        }
        p = e + 1;
    }
    Some(p - 1)
}

/// Finds the end of a row skipped by `--skip` (not checked) like
/// [`parse_row`]; `None` for a quoted field.
#[inline]
fn skip_row(buf: &[u8], mut p: usize) -> Option<usize> {
    loop {
        if buf.get(p) == Some(&b'"') {
            return None;
        }
        let e = field_end(buf, p);
        if *buf.get(e)? != b',' {
            return Some(e);
        }
        p = e + 1;
    }
}

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

    /// The header row: per column, the field it fills.
    fn csv_header(
        &self,
        row: &csv::ByteRecord,
        name: &str,
        line: u64,
    ) -> Result<Vec<usize>, Failure> {
        let nfields = self.codec.fields.len();
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
        Ok(map)
    }

    /// CSV. Rows are read from a large buffer and converted in one pass: the
    /// numbers of a plain row are parsed where they lie, each parse also
    /// finding where its field ends, straight into the record. A row the
    /// fast path does not take as it is (a quoted field, a wrong column
    /// count, a bad value) is read again by the `csv` crate's rules
    /// ([`csv_record_at`]) and converted field by field as before, so it
    /// means the same and fails with the same message. An input with many
    /// such rows is read by the `csv` crate itself from there on.
    ///
    /// Line numbers are the `csv` crate's: a record's line is where the
    /// previous record ended (blank lines before it, and the `\n` of a
    /// `\r\n`, are not counted yet).
    fn load_csv(
        &mut self,
        input: Box<dyn Read + Send>,
        idx: usize,
        no_header: bool,
    ) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let mut inb = InBuf {
            input,
            buf: vec![0u8; IN_BUF],
            start: 0,
            end: 0,
            eof: false,
            base: 0,
        };
        let mut row = csv::ByteRecord::new();
        let mut field = Vec::new();
        // The csv crate drops a UTF-8 BOM at the start of the input.
        while inb.end < 3 && !inb.eof {
            inb.refill().map_err(|e| Failure::io(&name, e))?;
        }
        if inb.buf[..inb.end].starts_with(b"\xEF\xBB\xBF") {
            inb.start = 3;
        }
        // `line`: the line of `buf[start]`; `rec_line`: the next record's.
        let mut line = 1u64;
        let mut rec_line = 1u64;
        let map = if no_header {
            (0..self.codec.fields.len()).collect()
        } else {
            let (got, newlines) = inb.csv_record(&mut row, &mut field, &name)?;
            if !got {
                return Ok(()); // empty input (counted as 0 bytes, as before)
            }
            let map = self.csv_header(&row, &name, rec_line)?;
            line += newlines;
            rec_line = line;
            map
        };
        let cells: Vec<(FastCell, usize)> = map
            .iter()
            .map(|&f| (FastCell::new(&self.codec.fields[f]), f))
            .collect();
        let ncols = cells.len();
        let rs = self.rs;
        // Rows the fast path took and rows it passed to the csv crate.
        let (mut fast, mut slow) = (0u64, 0u64);
        loop {
            // Whole rows: up to the last record terminator read so far.
            let region_end = match inb.buf[inb.start..inb.end]
                .iter()
                .rposition(|&c| c == b'\n' || c == b'\r')
            {
                Some(i) => inb.start + i + 1,
                None => inb.start,
            };
            let region = &inb.buf[..region_end];
            let mut p = inb.start;
            while p < region_end {
                match region[p] {
                    b'\n' => {
                        line += 1;
                        p += 1;
                        continue;
                    }
                    b'\r' => {
                        p += 1;
                        continue;
                    }
                    _ => {}
                }
                let end = if self.skipped < self.skip {
                    skip_row(region, p)
                } else {
                    let rec = &mut self.buf[self.filled * rs..(self.filled + 1) * rs];
                    parse_row(region, p, &cells, &self.codec.fields, rec)
                };
                let Some(t) = end else { break };
                if !self.skipping() {
                    self.accept(Loc {
                        input: idx,
                        line: rec_line,
                    })?;
                }
                fast += 1;
                if region[t] == b'\n' {
                    line += 1;
                }
                rec_line = line;
                p = t + 1;
            }
            inb.start = p;
            self.progress_at(self.bytes + inb.base + p as u64);
            if p < region_end || (inb.eof && inb.start < inb.end) {
                // A row for the csv crate (or the last one, without a terminator).
                let (got, newlines) = inb.csv_record(&mut row, &mut field, &name)?;
                if got {
                    self.csv_row(&row, idx, &cells, ncols, rec_line)?;
                }
                line += newlines;
                rec_line = line;
                slow += 1;
                // (Not where a BOM follows: a new csv reader would drop it.)
                if slow >= 64
                    && slow * 8 > fast
                    && !inb.buf[inb.start..inb.end].starts_with(b"\xEF\xBB\xBF")
                {
                    return self.load_csv_stream(inb, idx, &cells, rec_line);
                }
                continue;
            }
            if inb.eof {
                break;
            }
            inb.refill().map_err(|e| Failure::io(&name, e))?;
        }
        self.bytes += inb.base + inb.end as u64;
        Ok(())
    }

    /// The rest of a CSV input where the fast path did not pay: every record
    /// through the `csv` crate, split on a reader thread while this thread
    /// converts, so the two overlap on two cores.
    fn load_csv_stream(
        &mut self,
        inb: InBuf,
        idx: usize,
        cells: &[(FastCell, usize)],
        first_line: u64,
    ) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let done = inb.base + inb.start as u64;
        let rest = io::Cursor::new(inb.buf[inb.start..inb.end].to_vec()).chain(inb.input);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 18)
            .from_reader(rest);
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
                    let line = first_line + row.position().map_or(1, |p| p.line()) - 1;
                    self.csv_row(row, idx, cells, ncols, line)?;
                }
                if let Some(last) = batch[..n].last().and_then(|r| r.position()) {
                    self.progress_at(self.bytes + done + last.byte());
                }
                let _ = back_tx.send(batch);
            }
            let bytes = reader
                .join()
                .expect("the CSV reader thread does not panic")
                .map_err(|e| csv_failure(&name, e))?;
            self.bytes += done + bytes;
            Ok(())
        })
    }

    /// One record from the `csv` crate (a row the fast path did not take).
    #[inline]
    fn csv_row(
        &mut self,
        row: &csv::ByteRecord,
        idx: usize,
        cells: &[(FastCell, usize)],
        ncols: usize,
        line: u64,
    ) -> Result<(), Failure> {
        if self.skipping() {
            return Ok(());
        }
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

    /// Raw records: read in large chunks that go to the store whole (no
    /// copy per record), split only where `--skip` ends and at `--batch`
    /// boundaries.
    fn load_bin(&mut self, mut input: Box<dyn Read + Send>, idx: usize) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let rs = self.rs;
        let mut chunk = vec![0u8; (BIN_CHUNK / rs).max(1) * rs];
        let mut pending = 0usize;
        let mut total = 0u64;
        // Index (in this input) of the first record in `chunk`.
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
            let mut k = (self.skip - self.skipped).min(whole as u64) as usize;
            self.skipped += k as u64;
            self.input_rows += k as u64;
            while k < whole {
                let mut m = whole - k;
                if let Some(b) = self.batch {
                    m = m.min((b - self.rows % b).min(usize::MAX as u64) as usize);
                }
                self.flush()?;
                self.store.extend_from_bytes(&chunk[k * rs..(k + m) * rs])?;
                self.write_behind.note((m * rs) as u64);
                k += m;
                self.rows += m as u64;
                self.input_rows += m as u64;
                if let Some(b) = self.batch {
                    if self.rows.is_multiple_of(b) {
                        self.store.commit()?;
                        self.committed_rows = self.rows;
                        self.committed_input_rows = self.input_rows;
                        self.last_committed = Some(Loc {
                            input: idx,
                            line: record + k as u64 - 1,
                        });
                    }
                }
            }
            record += whole as u64;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `csv_record_at` reads records exactly as the `csv` crate does: the
    /// same fields, and after each record the same byte and line position;
    /// with the input cut short it waits for more instead of guessing.
    #[test]
    fn csv_record_at_matches_the_csv_crate() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"a1,,\"\"\r\n\n x";
        let (mut row, mut field) = (csv::ByteRecord::new(), Vec::new());
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&data[..]);
            let mut want = csv::ByteRecord::new();
            let (mut at, mut line) = (0usize, 1u64);
            loop {
                let got_want = rdr.read_byte_record(&mut want).unwrap();
                let (got, used, newlines) =
                    csv_record_at(&data[at..], true, &mut row, &mut field).unwrap();
                assert_eq!(got, got_want, "{data:?} at {at}");
                at += used;
                line += newlines;
                assert_eq!(at as u64, rdr.position().byte(), "{data:?}");
                assert_eq!(line, rdr.position().line(), "{data:?}");
                if !got {
                    break;
                }
                assert_eq!(row, want, "{data:?}");
                // Cut anywhere before its end, the record is not taken.
                let cut = at - used + (next() % used.max(1) as u64) as usize;
                assert!(
                    csv_record_at(&data[at - used..cut], false, &mut row, &mut field).is_none(),
                    "{data:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn field_end_finds_the_first_delimiter() {
        let text = b"0123456789abcdef,x\ry\n";
        for p in 0..text.len() {
            let want = text[p..]
                .iter()
                .position(|&c| c == b',' || c == b'\r' || c == b'\n')
                .map_or(text.len(), |i| p + i);
            assert_eq!(field_end(text, p), want);
            assert_eq!(field_end(&text[..16], p.min(16)), 16);
        }
    }
}
