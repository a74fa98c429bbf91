//! `recmap export`: writes records to stdout as CSV, JSON lines or raw
//! records (the record writer `get` uses too; `load` reads these back), or
//! as Parquet or Arrow IPC (`columnar`, through `recmap::arrow`).
//!
//! Invariants: every format writes records `range` of one commit, in
//! order, each once; beside a writer, output that reached stdout is never
//! followed by records of another commit (see `Held`).

mod columnar;
mod parallel;

use crate::common::{
    open_for_reading, parse_range, with_view, CliResult, Failure, ViewError, EXIT_OK,
};
use crate::load::Format;
use crate::progress::Progress;
use crate::value::{self, Codec};
use columnar::{ColumnarWriter, Compression, Container};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const HELP: &str = "\
Formats:
  csv    a header row of field names, then one row per record
  jsonl  one JSON object per record (NaN and infinities as strings)
  bin    the records' raw bytes, back to back (record_size bytes each)
  parquet       Apache Parquet (Snappy by default; see --compression)
  arrow         the Arrow IPC file format (.arrow, Feather v2)
  arrow-stream  the Arrow IPC stream format (.arrows), for pipes
Floats are printed exactly (shortest text that reads back to the same bits),
so export then load reproduces the records byte for byte (csv, jsonl, bin).

Parquet and Arrow: one column per field (not the validity bitmap or _pad
padding), named as the field; a nullable field's nulls are Arrow nulls;
integers and floats keep their type, bool is Boolean, timestamp[unit] is
Timestamp(unit, UTC), date is Date32, str[N] is Utf8 (up to the first NUL),
bytes[N] is FixedSizeBinary(N), arrays like f32[3] are FixedSizeList(3).
The schema metadata holds recmap.spec, recmap.record_size and
recmap.record_align. Records go out in batches of --batch-rows (Parquet
row groups of --row-group-rows), so memory stays bounded. These formats
are binary and not written to a terminal.

Every page is checked against its checksum before its records are written:
a damaged page stops the export with an error naming it (exit 1; the records
before it have been written). --no-verify exports the records as they are.

While a writer holds the store (a running load, a program with the store
open), the export reads a snapshot of the writer's newest commit, named in a
note on stderr: every record written belongs to that one commit, and
records the writer has not committed are never written. If a later commit
changes a page the export has not reached yet, the snapshot expires: an
export whose output is still held in memory (the first 8 MiB) starts again
on a newer snapshot; a longer one stops with an error (exit 2), its output
incomplete, rather than mix commits. Appends never expire a snapshot.

Examples:
  recmap export ticks.rmap > ticks.csv
  recmap export ticks.rmap --range 1000..2000 --format jsonl
  recmap export ticks.rmap --format parquet > ticks.parquet
  duckdb -c \"SELECT count(*) FROM 'ticks.parquet'\"
  recmap export ticks.rmap --format bin | recmap load copy.rmap --schema \"$(recmap schema ticks.rmap)\" --format bin -";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Records A..B (A.., ..B also accepted); default all.
    #[arg(long, value_name = "A..B")]
    pub range: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Do not check the pages' checksums (export damaged records as they are).
    #[arg(long)]
    pub no_verify: bool,
    /// Compression for parquet (default snappy) and arrow (default none; zstd).
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// Records per Arrow record batch: default 512 KiB of records for arrow
    /// (8192 of 64 bytes), 8 MiB for parquet; at most 65536.
    #[arg(long, value_name = "N")]
    pub batch_rows: Option<usize>,
    /// Records per Parquet row group; default 1048576, fewer for records
    /// over 128 bytes (at most 128 MiB a group).
    #[arg(long, value_name = "N")]
    pub row_group_rows: Option<usize>,
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    Bin,
    Parquet,
    Arrow,
    ArrowStream,
}

impl ExportFormat {
    /// The text or raw format, or the columnar container.
    fn kind(self) -> Result<Format, Container> {
        match self {
            ExportFormat::Csv => Ok(Format::Csv),
            ExportFormat::Jsonl => Ok(Format::Jsonl),
            ExportFormat::Bin => Ok(Format::Bin),
            ExportFormat::Parquet => Err(Container::Parquet),
            ExportFormat::Arrow => Err(Container::ArrowFile),
            ExportFormat::ArrowStream => Err(Container::ArrowStream),
        }
    }
}

/// Output held in memory before it goes to stdout, so that an export
/// beside a writer whose snapshot expires can start again on a new one.
const HOLD_BYTES: usize = 8 << 20;

/// Stdout, behind a buffer of up to `limit` bytes that is written out (and
/// `spilled` set) once it would grow past that, or by a flush once `done`
/// is set: until then nothing reached stdout and the output is dropped
/// with it (the CSV writer flushes when dropped, which must not spill).
/// `Send`, as the Parquet writer requires of its output.
struct Held {
    mem: Vec<u8>,
    limit: usize,
    out: Option<io::BufWriter<io::Stdout>>,
    spilled: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Held {
    fn spill(&mut self) -> io::Result<&mut io::BufWriter<io::Stdout>> {
        if self.out.is_none() {
            let mut o = io::BufWriter::with_capacity(1 << 16, io::stdout());
            self.spilled.store(true, Ordering::Relaxed);
            o.write_all(&std::mem::take(&mut self.mem))?;
            self.out = Some(o);
        }
        Ok(self.out.as_mut().expect("set above"))
    }
}

impl Write for Held {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.out.is_none() && self.mem.len() + b.len() > self.limit {
            self.spill()?;
        }
        match &mut self.out {
            Some(o) => o.write(b),
            None => {
                self.mem.extend_from_slice(b);
                Ok(b.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(o) => o.flush(),
            None if self.done.load(Ordering::Relaxed) => self.spill()?.flush(),
            None => Ok(()),
        }
    }
}

/// Writes records in one of the formats.
pub struct RecordWriter<W: Write> {
    codec: Codec,
    format: Format,
    csv: Option<csv::Writer<W>>,
    raw: Option<W>,
    cell: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(codec: Codec, format: Format, out: W) -> Result<RecordWriter<W>, Failure> {
        let mut w = RecordWriter {
            codec,
            format,
            csv: None,
            raw: None,
            cell: Vec::with_capacity(1 << 16),
        };
        if format == Format::Csv {
            let mut c = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .buffer_capacity(1 << 16)
                .from_writer(out);
            for f in &w.codec.fields {
                c.write_field(&f.name).map_err(csv_err)?;
            }
            c.write_record(None::<&[u8]>).map_err(csv_err)?;
            w.csv = Some(c);
        } else {
            w.raw = Some(out);
        }
        Ok(w)
    }

    /// Writes one record.
    #[inline]
    pub fn record(&mut self, rec: &[u8]) -> Result<(), Failure> {
        match self.format {
            Format::Csv => {
                let c = self.csv.as_mut().expect("csv writer");
                for f in &self.codec.fields {
                    self.cell.clear();
                    f.write_text(rec, &mut self.cell);
                    c.write_field(&self.cell).map_err(csv_err)?;
                }
                c.write_record(None::<&[u8]>).map_err(csv_err)
            }
            Format::Jsonl => {
                self.cell.clear();
                self.codec.write_json_record(rec, &mut self.cell);
                self.cell.push(b'\n');
                self.raw
                    .as_mut()
                    .expect("writer")
                    .write_all(&self.cell)
                    .map_err(|e| Failure::io("stdout", e))
            }
            Format::Bin => self
                .raw
                .as_mut()
                .expect("writer")
                .write_all(rec)
                .map_err(|e| Failure::io("stdout", e)),
        }
    }

    /// Writes `n` consecutive records given as one slice.
    pub fn run(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if self.format == Format::Bin {
            return self
                .raw
                .as_mut()
                .expect("writer")
                .write_all(bytes)
                .map_err(|e| Failure::io("stdout", e));
        }
        for rec in bytes.chunks_exact(self.codec.record_size) {
            self.record(rec)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), Failure> {
        let r = match (self.csv, self.raw) {
            (Some(mut c), _) => c.flush(),
            (_, Some(mut w)) => w.flush(),
            _ => Ok(()),
        };
        r.map_err(|e| Failure::io("stdout", e))
    }
}

fn csv_err(e: csv::Error) -> Failure {
    let msg = format!("writing CSV: {e}");
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Failure::io("stdout", e),
        _ => Failure::usage(msg),
    }
}

/// The text formats' writer or a columnar one, behind one `run`.
enum Out {
    Records(RecordWriter<Held>),
    Columnar(ColumnarWriter<Held>),
}

impl Out {
    fn run(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        match self {
            Out::Records(w) => w.run(bytes),
            Out::Columnar(w) => w.run(bytes),
        }
    }
    fn finish(self) -> Result<(), Failure> {
        match self {
            Out::Records(w) => w.finish(),
            Out::Columnar(w) => w.finish()?.flush().map_err(|e| Failure::io("stdout", e)),
        }
    }
}

pub fn run(a: Args) -> CliResult {
    let kind = a.format.kind();
    if let Err(c) = kind {
        if io::stdout().is_terminal() {
            let (name, ext) = match c {
                Container::Parquet => ("parquet", "parquet"),
                Container::ArrowFile => ("arrow", "arrow"),
                Container::ArrowStream => ("arrow-stream", "arrows"),
            };
            return Err(Failure::usage(format!(
                "export: {name} output is binary and stdout is a terminal: redirect it to a \
                 file or a pipe (recmap export {} --format {name} > out.{ext})",
                a.path.display()
            )));
        }
    }
    if kind.is_ok()
        && (a.compression.is_some() || a.batch_rows.is_some() || a.row_group_rows.is_some())
    {
        return Err(Failure::usage(
            "export: --compression, --batch-rows and --row-group-rows are for --format parquet, arrow or arrow-stream",
        ));
    }
    if a.batch_rows == Some(0) || a.row_group_rows == Some(0) {
        return Err(Failure::usage(
            "export: --batch-rows and --row-group-rows must be at least 1",
        ));
    }
    let mut src = open_for_reading(&a.path)?;
    // An export reads the whole range in order: let the kernel read ahead.
    src.set_access(recmap::AccessPattern::Sequential);
    let spilled = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    with_view(&mut src, "export", |v| {
        if spilled.load(Ordering::Relaxed) {
            // Output of an expired snapshot already reached stdout.
            return Err(ViewError::Fail(Failure::usage(
                "export: refusing to start again after output was written",
            )));
        }
        let range = match &a.range {
            Some(r) => parse_range(r, v.len(), &a.path)?,
            None => 0..v.len(),
        };
        if let Some(m) = value::unsupported(v.schema()) {
            return Err(ViewError::Fail(Failure::usage(format!(
                "{}: {m}",
                a.path.display()
            ))));
        }
        let held = Held {
            mem: Vec::new(),
            limit: if v.is_snapshot() { HOLD_BYTES } else { 0 },
            out: None,
            spilled: spilled.clone(),
            done: done.clone(),
        };
        let size = v.schema().record_size as usize;
        let mut w = match kind {
            Ok(f) => Out::Records(RecordWriter::new(Codec::new(v.schema()), f, held)?),
            Err(c) => Out::Columnar(ColumnarWriter::new(
                v.schema(),
                c,
                a.compression.unwrap_or(if c == Container::Parquet {
                    Compression::Snappy
                } else {
                    Compression::None
                }),
                a.batch_rows.unwrap_or(if c == Container::Parquet {
                    columnar::default_parquet_batch_rows(size)
                } else {
                    recmap::arrow::default_batch_rows(size)
                }),
                a.row_group_rows
                    .unwrap_or(columnar::default_row_group_rows(size)),
                held,
            )?),
        };
        // Progress on a terminal only (records written of the range).
        let mut progress = Progress::new(false);
        let total = range.end - range.start;
        let mut written = 0u64;
        let scanned = v.scan(range.clone(), !a.no_verify, &mut |bytes| {
            written += (bytes.len() / size) as u64;
            progress.tick_of("export", written, total, "records");
            w.run(bytes)
        });
        progress.clear();
        match scanned {
            Err(ViewError::Expired(e)) if spilled.load(Ordering::Relaxed) => {
                return Err(ViewError::Fail(Failure::usage(format!(
                    "export: {e}\n  (the output is incomplete: records {}..{} of commit {} were \
                     being written when a later commit changed a page not yet read; run the \
                     export again, or while the writer is idle)",
                    range.start,
                    range.end,
                    v.generation()
                ))))
            }
            r => r?,
        }
        done.store(true, Ordering::Relaxed);
        w.finish()?;
        Ok(())
    })?;
    Ok(EXIT_OK)
}
