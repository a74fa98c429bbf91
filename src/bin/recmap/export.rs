//! `recmap export`: writes records to stdout as CSV, JSON lines or raw
//! records; also the record writer `get` uses. `load` reads every format back.

use crate::common::{open_read_only, parse_range, stdout, CliResult, Failure, EXIT_OK};
use crate::load::Format;
use crate::value::{self, Codec};
use std::io::Write;
use std::path::PathBuf;

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

/// Records checked, then written, at a time: pages are hashed just before
/// their records are written, while still in the cache.
const CHECK_BLOCK_BYTES: u64 = 4 << 20;

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
    let mut store = open_read_only(&a.path)?;
    // An export reads the whole range in order: let the kernel read ahead.
    store.set_access(recmap::AccessPattern::Sequential);
    let range = match &a.range {
        Some(r) => parse_range(r, store.len(), &a.path)?,
        None => 0..store.len(),
    };
    if let Some(m) = value::unsupported(store.schema()) {
        return Err(Failure::usage(format!("{}: {m}", a.path.display())));
    }
    let mut w = RecordWriter::new(Codec::new(store.schema()), a.format, stdout())?;
    let block = (CHECK_BLOCK_BYTES / store.record_size() as u64).max(1);
    let mut at = range.start;
    while at < range.end {
        let end = range.end.min(at + block);
        if !a.no_verify {
            store.check_records(at..end)?;
        }
        for (_, bytes) in store.runs(at..end) {
            w.run(bytes)?;
        }
        at = end;
    }
    w.finish()?;
    Ok(EXIT_OK)
}
