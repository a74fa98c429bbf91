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
mod infer;
mod jsonl_input;
mod write_behind;

use crate::common::{
    input_name, schema_from_args, CliResult, Failure, RemoveOnFail, EXIT_OK, EXIT_REJECTED,
};
use crate::progress::Progress;
use crate::signals::{self, StopOnSignal};
use crate::value::{self, Codec};
use recmap::{Options, RawStore};
use std::cell::Cell;
use std::ffi::OsString;
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

Schema inference: a new store without --schema gets one inferred from the
whole input (for stdin, its first 10,000 rows), printed to stderr: the
narrowest integer type, f32 for numbers of at most 6 significant digits
else f64, bool, date, timestamp[unit], str[N] (longest value), `?` where a
value is missing; fields ordered by alignment (no padding). --infer-only
prints it to stdout and creates nothing.

A bad row (wrong column count, bad number, integer out of range, string too
long, unknown or missing field, bool not true/false/1/0) stops the load with
FILE:LINE: field NAME: reason, commits nothing and exits 1. With --batch ROWS
the batches before the bad row stay committed and the message says how to
resume; with --skip-bad FILE bad rows are written to FILE and skipped.
A row longer than max(1 MiB, 4 x the longest text of a record) stops the
load as FILE:LINE: row longer than N bytes (even with --skip-bad).

Examples:
  recmap load ticks.rmap --schema 'ts:i64,price:f64,sym:str[8]' ticks.csv
  recmap load flights.rmap flights.csv          # a new store: schema inferred
  recmap load flights.rmap flights.csv --infer-only > flights.schema
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
    /// The store to append to (created if missing, with --schema or else
    /// the schema inferred from the input).
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
    /// Infer the schema from the input, print it to stdout (one field a
    /// line, as --schema and --schema-file take it) and stop: nothing is
    /// created.
    #[arg(long, conflicts_with_all = ["schema", "schema_file"])]
    pub infer_only: bool,
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

/// The `--skip-bad` file. Invariant: its first `at_commit` bytes are the
/// rows rejected up to the last commit (and, on a resume, those of the loads
/// before); a failed load cuts it back to them, so the resume command, which
/// appends (`--skip` > 0), neither loses nor repeats a rejected row.
struct Rejects {
    path: PathBuf,
    out: io::BufWriter<File>,
    count: u64,
    /// Bytes in the file: those it had when the load began plus those written.
    written: u64,
    at_commit: u64,
    /// `written` when the commit under way (`Loader::committing`) began.
    at_committing: u64,
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
    /// The store's capacity when the load began (a failed load gives back
    /// what it grew the file by).
    capacity_before: u64,
    /// This load created the store (it is removed if nothing is committed).
    created: bool,
    /// A commit under way: `Some(Some(at))` for the `--batch` commit ending
    /// at row `at`, `Some(None)` for the final one. Still set after it
    /// failed, when it may or may not have reached the disk.
    committing: Option<Option<Loc>>,
    /// The failure is the input's fault (a bad row or header): the resume
    /// hint says to fix the input first.
    input_fault: Cell<bool>,
    /// Total input size when every input is a regular file (for reserving
    /// room once, and for the progress's percent and ETA).
    input_size: Option<u64>,
    reserved: bool,
    write_behind: WriteBehind,
    /// What schema inference already read from stdin: read first.
    stdin_prefix: Option<Vec<u8>>,
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
    // Before the store is opened: a signal from here on stops the load at a
    // row boundary (see `signals`), and a store being created is removed.
    signals::catch_stop_signals();
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
    // No schema for a new store: one inferred from the input (`infer`).
    let (schema, stdin_prefix) = match infer::decide(&a, &inputs, exists, schema)? {
        infer::Decision::Load(s, prefix) => (s, prefix),
        infer::Decision::Done => return Ok(EXIT_OK),
    };
    if let Some(m) = schema.as_ref().and_then(value::unsupported) {
        return Err(Failure::usage(format!("--schema: {m}")));
    }
    // Declared before the store so it runs after the store is dropped.
    let mut cleanup = RemoveOnFail { path: None };
    let store = crate::common::open_writer(|| {
        Options::new()
            .create(true)
            .open_raw(&a.path, schema.as_ref())
    })
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
        Some(p) => {
            // A resume (`--skip`) adds to the rejects of the loads before it.
            let f = if a.skip > 0 {
                File::options().create(true).append(true).open(p)
            } else {
                File::create(p)
            }
            .map_err(|e| Failure::io(p.display(), e))?;
            let len = f.metadata().map_err(|e| Failure::io(p.display(), e))?.len();
            Some(Rejects {
                path: p.clone(),
                out: io::BufWriter::new(f),
                count: 0,
                written: len,
                at_commit: len,
                at_committing: len,
            })
        }
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
    // Only regular files have a size that says how much input is coming.
    let input_size: Option<u64> = inputs
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                None
            } else {
                std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
            }
        })
        .sum();
    let mut l = Loader {
        records_before: store.committed_len(),
        capacity_before: store.capacity(),
        created: !exists,
        committing: None,
        input_fault: Cell::new(false),
        input_size,
        reserved: false,
        write_behind: WriteBehind::new(&a.path),
        stdin_prefix,
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
        progress: Progress::new(a.quiet).with_total(input_size),
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
    let result = l
        .load_all(&inputs, a.no_header)
        .and_then(|()| l.commit_all());
    if let Err(f) = result {
        let (f, keep) = l.fail(f, inputs.iter().any(|p| p.as_os_str() == "-"));
        if keep {
            cleanup.disarm();
        }
        return Err(f);
    }
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

/// `FILE:LINE`, or `FILE:record N` for `bin` input.
fn loc_text(names: &[String], formats: &[Format], l: Loc) -> String {
    match formats[l.input] {
        Format::Bin => format!("{}:record {}", names[l.input], l.line),
        _ => format!("{}:{}", names[l.input], l.line),
    }
}

/// Opens an input as a reader that stops once a signal was caught (stdin
/// through a descriptor of its own, unbuffered: `poll` on it must not miss
/// data held in a buffer).
fn open_input(p: &Path) -> Result<Box<dyn Read + Send>, Failure> {
    let name = input_name(p);
    let file = if p.as_os_str() == "-" {
        #[cfg(unix)]
        let own = std::os::fd::AsFd::as_fd(&io::stdin()).try_clone_to_owned();
        #[cfg(windows)]
        let own = std::os::windows::io::AsHandle::as_handle(&io::stdin()).try_clone_to_owned();
        own.map(File::from).map_err(|e| Failure::io(&name, e))?
    } else {
        File::open(p).map_err(|e| Failure::io(&name, e))?
    };
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    Ok(Box::new(StopOnSignal::new(file, !regular)))
}

/// Reads one line (through its `\n`, if it has one) onto the end of
/// `line`, as `BufRead::read_until` does, but stops once the line, without
/// its `\n`, is longer than `cap` bytes: then `Ok(None)`, having kept at most
/// `cap` bytes of it (so an input without line ends, such as `/dev/zero`,
/// is not buffered whole). `Ok(Some(0))` at the end of the input; else the
/// bytes read.
fn read_line_capped(
    r: &mut impl io::BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<usize>> {
    let mut n = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            // As `read_until`: `StopOnSignal` stops with another error.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(Some(n));
        }
        let (take, done) = match buf.iter().position(|&c| c == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take - usize::from(done) > cap {
            return Ok(None);
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        n += take;
        if done {
            return Ok(Some(n));
        }
    }
}

/// `arg` as a shell word: as it is when it has no character a shell
/// treats specially, else in single quotes.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The command line `args` (as this process got it) with its `--skip`
/// replaced by `--skip N` (put before a `--`, else at the end).
fn with_skip(args: &[OsString], n: u64) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 2);
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    let mut tail = Vec::new();
    while let Some(a) = it.next() {
        if a == "--" {
            tail.push(a);
            tail.extend(it.by_ref());
            break;
        }
        if a == "--skip" {
            it.next();
            continue;
        }
        if a.starts_with("--skip=") {
            continue;
        }
        out.push(a);
    }
    if n > 0 {
        out.push("--skip".into());
        out.push(n.to_string());
    }
    out.extend(tail);
    out.iter()
        .map(|a| shell_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Loader {
    fn load_all(&mut self, inputs: &[PathBuf], no_header: bool) -> Result<(), Failure> {
        for (i, p) in inputs.iter().enumerate() {
            let mut r = open_input(p)?;
            if p.as_os_str() == "-" {
                if let Some(prefix) = self.stdin_prefix.take() {
                    r = Box::new(io::Cursor::new(prefix).chain(r));
                }
            }
            match self.formats[i] {
                Format::Csv => self.load_csv(r, i, no_header)?,
                Format::Jsonl => self.load_jsonl(r, i)?,
                Format::Bin => self.load_bin(r, i)?,
            }
        }
        Ok(())
    }

    fn loc(&self, l: Loc) -> String {
        loc_text(&self.names, &self.formats, l)
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
                self.commit_batch(at)?;
            }
        }
        Ok(())
    }

    /// Commits the rows appended so far, `at` being the last of them.
    fn commit_batch(&mut self, at: Loc) -> Result<(), Failure> {
        self.committing = Some(Some(at));
        if let Some(r) = &mut self.rejects {
            r.at_committing = r.written;
        }
        self.store.commit()?;
        self.committing = None;
        self.committed_rows = self.rows;
        self.committed_input_rows = self.input_rows;
        self.last_committed = Some(at);
        if let Some(r) = &mut self.rejects {
            r.at_commit = r.written;
        }
        Ok(())
    }

    /// The end of the input: commits everything, unless a signal came
    /// first (then the load stops as at any other row boundary).
    fn commit_all(&mut self) -> Result<(), Failure> {
        if let Some(s) = signals::caught() {
            return Err(Failure::usage(format!("interrupted by {}", s.name())));
        }
        self.flush()?;
        self.write_behind.finish();
        self.committing = Some(None);
        self.store.commit()?;
        self.committing = None;
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
            r.written += line.len() as u64;
            return r
                .out
                .write_all(&line)
                .map_err(|e| Failure::io(r.path.display(), e));
        }
        Err(self.failure(format!("{loc}: {reason}")))
    }

    /// The input is at fault (a bad row or header): the load fails with
    /// `first_line`, and [`Loader::fail`] adds what is committed.
    fn failure(&self, first_line: String) -> Failure {
        self.input_fault.set(true);
        Failure::rejected(first_line)
    }

    /// The load stopped (a bad row, an I/O error such as a full disk, a
    /// signal): rolls back what is not committed, gives back what the load
    /// grew the file by, and says what is committed and how to resume.
    /// Returns the failure and whether the store keeps rows of this load (a
    /// store this load created is removed otherwise). `stdin`: an input is
    /// stdin (the resume command must be fed it again).
    fn fail(mut self, f: Failure, stdin: bool) -> (Failure, bool) {
        let signal = signals::caught();
        let path = self.store.path().to_path_buf();
        let mut committed_len = self.store.committed_len();
        let mut all_committed = false;
        let poisoned = self.store.poisoned().is_some();
        if !poisoned {
            let _ = self.store.rollback();
            let kept = !self.created || self.committed_rows > 0;
            // Best effort: refused while readers have the store open.
            if kept && self.store.capacity() > self.capacity_before {
                let _ = self.store.compact();
            }
        }
        drop(self.store);
        if let (true, Some(at)) = (poisoned, self.committing) {
            // The commit that failed may have reached the disk: the store,
            // reopened, says whether it counts.
            let landed = self.records_before + self.rows;
            if let Ok(n) = RawStore::open_read_only(&path).map(|s| s.committed_len()) {
                committed_len = n;
                if n == landed {
                    self.committed_rows = self.rows;
                    self.committed_input_rows = self.input_rows;
                    self.last_committed = at;
                    all_committed = at.is_none();
                    if let Some(r) = &mut self.rejects {
                        r.at_commit = r.at_committing;
                    }
                }
            }
        }
        // The rejects file keeps the rows rejected up to the last commit:
        // the resume command sees the rest of the input again.
        let mut rejects_note = None;
        if let Some(r) = &mut self.rejects {
            let keep = if all_committed {
                r.written
            } else {
                r.at_commit
            };
            let cut = r
                .out
                .flush()
                .and_then(|()| r.out.get_ref().set_len(keep))
                .and_then(|()| r.out.get_ref().sync_all());
            rejects_note = Some(match cut {
                Ok(()) => format!(
                    "{} keeps the rows rejected up to the last commit (a resume appends to it)",
                    r.path.display()
                ),
                Err(e) => format!(
                    "{}: {e}; it may list rows rejected after the last commit, which a resume lists again",
                    r.path.display()
                ),
            });
        }
        let p = path.display();
        let mut msg = match signal {
            Some(s) => format!("interrupted by {}", s.name()),
            None => f.message,
        };
        let removed = self.created && self.committed_rows == 0;
        let had = if removed {
            format!("{p}, which this load created, is removed")
        } else {
            format!("{p} still has {committed_len} records")
        };
        msg.push_str("\n  ");
        msg.push_str(&match (self.committed_rows, self.batch, self.last_committed) {
            (0, Some(b), _) => format!(
                "nothing from this load was committed (the first batch of {b} rows was not complete; {had})"
            ),
            (0, None, _) => format!("nothing from this load was committed ({had})"),
            (n, _, Some(last)) => format!(
                "committed {n} rows of this load, the last committed row is {} ({p} has {committed_len} records)",
                loc_text(&self.names, &self.formats, last)
            ),
            (n, _, None) => format!(
                "the commit reached the disk all the same: all {n} rows of this load are committed ({p} has {committed_len} records)"
            ),
        });
        if !all_committed && (signal.is_some() || self.committed_rows > 0) {
            let skip = if self.committed_rows > 0 {
                self.committed_input_rows
            } else {
                self.skip
            };
            let args: Vec<OsString> = std::env::args_os().collect();
            let first = match (
                self.input_fault.get() && signal.is_none(),
                self.committed_rows,
            ) {
                (true, _) => "fix the input, then resume with",
                (false, 0) => "run it again with",
                (false, _) => "resume with",
            };
            msg.push_str(&format!("\n  {first}: {}", with_skip(&args, skip)));
            if stdin && skip > 0 {
                msg.push_str(&format!(
                    "\n  (feed it the same input again: it skips the first {skip} rows)"
                ));
            }
            if let Some(n) = rejects_note {
                msg.push_str(&format!("\n  {n}"));
            }
        }
        let code = match signal {
            Some(s) => s.exit_code(),
            None if f.code == 0 => EXIT_REJECTED,
            None => f.code,
        };
        let f = Failure { code, message: msg };
        (f, !removed)
    }
}
