//! `recmap export`: writes records to stdout as CSV, JSON lines or raw
//! records; also the record writer `get` uses. `load` reads every format back.

use crate::common::{
    open_for_reading, parse_range, stdout, with_view, CliResult, Failure, ViewError, EXIT_OK,
};
use crate::load::Format;
use crate::value::{self, Codec};
use std::cell::Cell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;

pub const HELP: &str = "\
Formats:
  csv    a header row of field names, then one row per record
  jsonl  one JSON object per record (NaN and infinities as strings)
  bin    the records' raw bytes, back to back (record_size bytes each)
Floats are printed exactly (shortest text that reads back to the same bits),
so export then load reproduces the records byte for byte.

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
    pub format: Format,
    /// Do not check the pages' checksums (export damaged records as they are).
    #[arg(long)]
    pub no_verify: bool,
}

/// Output held in memory before it goes to stdout, so that an export
/// beside a writer whose snapshot expires can start again on a new one.
const HOLD_BYTES: usize = 8 << 20;

/// Stdout, behind a buffer of up to `limit` bytes that is written out (and
/// `spilled` set) once it would grow past that, or by a flush once `done`
/// is set: until then nothing reached stdout and the output is dropped
/// with it (the CSV writer flushes when dropped, which must not spill).
struct Held {
    mem: Vec<u8>,
    limit: usize,
    out: Option<io::BufWriter<io::StdoutLock<'static>>>,
    spilled: Rc<Cell<bool>>,
    done: Rc<Cell<bool>>,
}

impl Held {
    fn spill(&mut self) -> io::Result<&mut io::BufWriter<io::StdoutLock<'static>>> {
        if self.out.is_none() {
            let mut o = stdout();
            self.spilled.set(true);
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
            None if self.done.get() => self.spill()?.flush(),
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

pub fn run(a: Args) -> CliResult {
    let mut src = open_for_reading(&a.path)?;
    // An export reads the whole range in order: let the kernel read ahead.
    src.set_access(recmap::AccessPattern::Sequential);
    let spilled = Rc::new(Cell::new(false));
    let done = Rc::new(Cell::new(false));
    with_view(&mut src, "export", |v| {
        if spilled.get() {
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
        let mut w = RecordWriter::new(Codec::new(v.schema()), a.format, held)?;
        match v.scan(range.clone(), !a.no_verify, &mut |bytes| w.run(bytes)) {
            Err(ViewError::Expired(e)) if spilled.get() => {
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
        done.set(true);
        w.finish()?;
        Ok(())
    })?;
    Ok(EXIT_OK)
}
