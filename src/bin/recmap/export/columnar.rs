//! `recmap export --format parquet | arrow | arrow-stream`: records as
//! Arrow record batches (through `recmap::arrow`), written as one Parquet
//! file, an Arrow IPC file or an Arrow IPC stream.
//!
//! Invariants: memory is bounded by one batch of records (at most
//! `batch_rows` of them, gathered here) plus, for Parquet, the row group
//! being encoded (at most `row_group_rows` records, encoded and
//! compressed); every record passed to [`ColumnarWriter::run`] is in the
//! output once, in order, after [`ColumnarWriter::finish`]. A writer that
//! is dropped unfinished leaves an incomplete file (no footer), never a
//! truncated one that reads as whole.
//!
//! Parquet has no seconds unit: a `timestamp[s]` column is written as
//! milliseconds (the value times 1000, as pyarrow writes one), so that
//! readers see a timestamp and not a bare integer; a value past the i64
//! range of milliseconds is an error naming the field.

use super::parallel::ParallelParquet;
use crate::common::Failure;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use recmap::arrow::arrow_array::cast::AsArray;
use recmap::arrow::arrow_array::types::TimestampSecondType;
use recmap::arrow::arrow_array::{Array, ArrayRef, RecordBatch, TimestampMillisecondArray};
use recmap::arrow::arrow_schema::{ArrowError, DataType, Field, Schema as ArrowSchema, TimeUnit};
use recmap::arrow::Converter;
use recmap::Schema;
use std::io::Write;
use std::sync::Arc;

/// Which columnar container to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// Apache Parquet.
    Parquet,
    /// The Arrow IPC file format (Feather v2): random access to batches.
    ArrowFile,
    /// The Arrow IPC stream format: batches back to back, no footer.
    ArrowStream,
}

/// The compression of the output's pages (Parquet) or buffers (Arrow IPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// Snappy (Parquet only): fast, the usual Parquet default.
    Snappy,
    /// Zstandard (level 1): smaller files, slower to write.
    Zstd,
}

/// Rows in a Parquet row group for records of `record_size` bytes: 1 Mi,
/// fewer so that a group holds at most 128 MiB of records.
pub fn default_row_group_rows(record_size: usize) -> usize {
    (1usize << 20).min(((128usize << 20) / record_size.max(1)).max(1))
}

/// Rows in a batch for the Parquet writer: 8 MiB of records, at most
/// 64 Ki (the encoder threads take a batch's columns as one message
/// each, so larger batches cost less hand-over).
pub fn default_parquet_batch_rows(record_size: usize) -> usize {
    ((8usize << 20) / record_size.max(1)).clamp(1, 64 * 1024)
}

enum Sink<W: Write + Send> {
    /// The writer and the schema it was given (seconds as milliseconds).
    Parquet(ArrowWriter<W>, Arc<ArrowSchema>),
    /// The same, encoding columns on worker threads.
    ParallelParquet(ParallelParquet<W>),
    File(FileWriter<W>),
    Stream(StreamWriter<W>),
}

/// Gathers records into batches and writes them to a columnar container.
pub struct ColumnarWriter<W: Write + Send> {
    conv: Converter,
    sink: Sink<W>,
    /// Records not yet in a batch: fewer than `batch_bytes` bytes.
    buf: Vec<u8>,
    batch_bytes: usize,
}

pub(super) fn arrow_err(e: ArrowError) -> Failure {
    match e {
        ArrowError::IoError(_, e) => Failure::io("stdout", e),
        ArrowError::ExternalError(b) => match b.downcast::<std::io::Error>() {
            Ok(e) => Failure::io("stdout", *e),
            Err(b) => Failure::usage(format!("writing Arrow: {b}")),
        },
        e => Failure::usage(format!("writing Arrow: {e}")),
    }
}

pub(super) fn parquet_err(e: parquet::errors::ParquetError) -> Failure {
    match e {
        parquet::errors::ParquetError::External(b) => match b.downcast::<std::io::Error>() {
            Ok(e) => Failure::io("stdout", *e),
            Err(b) => Failure::usage(format!("writing Parquet: {b}")),
        },
        e => Failure::usage(format!("writing Parquet: {e}")),
    }
}

impl<W: Write + Send> ColumnarWriter<W> {
    /// A writer of `container` for records of `schema` into `out`:
    /// batches of `batch_rows` records, Parquet row groups of
    /// `row_group_rows`.
    pub fn new(
        schema: &Schema,
        container: Container,
        compression: Compression,
        batch_rows: usize,
        row_group_rows: usize,
        out: W,
    ) -> Result<ColumnarWriter<W>, Failure> {
        let schema_of_records = schema;
        let conv = Converter::new(schema);
        let arrow_schema = conv.schema();
        let sink = match container {
            Container::Parquet => {
                let codec = match compression {
                    Compression::None => PqCompression::UNCOMPRESSED,
                    Compression::Snappy => PqCompression::SNAPPY,
                    Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
                };
                // Dictionary encoding for strings only: for numbers it costs
                // a hash per value (a third of the export's time) and the
                // page compression already shrinks repeats.
                let mut props = WriterProperties::builder()
                    .set_compression(codec)
                    .set_max_row_group_row_count(Some(row_group_rows.max(1)))
                    .set_dictionary_enabled(false)
                    .set_write_batch_size(8192)
                    .set_created_by(format!("recmap {}", env!("CARGO_PKG_VERSION")));
                for f in arrow_schema.fields() {
                    if f.data_type() == &DataType::Utf8 {
                        props = props.set_column_dictionary_enabled(
                            ColumnPath::from(f.name().as_str()),
                            true,
                        );
                    }
                }
                let props = props.build();
                let schema = Arc::new(millis_for_seconds(&arrow_schema));
                // Records without columns (padding only) still count rows:
                // the plain writer keeps them.
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                if threads > 1 && !schema.fields().is_empty() {
                    Sink::ParallelParquet(ParallelParquet::new(
                        out,
                        schema_of_records,
                        schema,
                        props,
                        row_group_rows,
                        threads.min(4),
                    )?)
                } else {
                    Sink::Parquet(
                        ArrowWriter::try_new(out, schema.clone(), Some(props))
                            .map_err(parquet_err)?,
                        schema,
                    )
                }
            }
            Container::ArrowFile | Container::ArrowStream => {
                let codec = match compression {
                    Compression::None => None,
                    Compression::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
                    Compression::Snappy => {
                        return Err(Failure::usage(
                            "--compression snappy is for Parquet; Arrow IPC takes none or zstd",
                        ))
                    }
                };
                let opts = IpcWriteOptions::default()
                    .try_with_compression(codec)
                    .map_err(arrow_err)?;
                if container == Container::ArrowFile {
                    Sink::File(
                        FileWriter::try_new_with_options(out, &arrow_schema, opts)
                            .map_err(arrow_err)?,
                    )
                } else {
                    Sink::Stream(
                        StreamWriter::try_new_with_options(out, &arrow_schema, opts)
                            .map_err(arrow_err)?,
                    )
                }
            }
        };
        let batch_bytes = batch_rows.max(1) * conv.record_size();
        Ok(ColumnarWriter {
            conv,
            sink,
            buf: Vec::new(),
            batch_bytes,
        })
    }

    fn write_batch(&mut self, records: &[u8]) -> Result<(), Failure> {
        let conv = &self.conv;
        let batch = || conv.convert(records).map_err(arrow_err);
        match &mut self.sink {
            Sink::Parquet(w, schema) => {
                let batch = seconds_to_millis(batch()?, schema)?;
                w.write(&batch).map_err(parquet_err)
            }
            // The parallel writer gathers its columns itself.
            Sink::ParallelParquet(w) => w.write_records(records),
            Sink::File(w) => w.write(&batch()?).map_err(arrow_err),
            Sink::Stream(w) => w.write(&batch()?).map_err(arrow_err),
        }
    }

    /// Takes consecutive whole records; writes each batch once it is full.
    pub fn run(&mut self, mut bytes: &[u8]) -> Result<(), Failure> {
        let full = self.batch_bytes;
        if !self.buf.is_empty() {
            let take = (full - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() < full {
                return Ok(());
            }
            let buf = std::mem::take(&mut self.buf);
            self.write_batch(&buf)?;
            self.buf = buf;
            self.buf.clear();
        }
        // Whole batches straight from the caller's bytes (the map).
        while bytes.len() >= full {
            self.write_batch(&bytes[..full])?;
            bytes = &bytes[full..];
        }
        if !bytes.is_empty() {
            self.buf.reserve(full);
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Writes the last batch and the container's footer; returns the
    /// output, not yet flushed.
    pub fn finish(mut self) -> Result<W, Failure> {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.write_batch(&buf)?;
        }
        match self.sink {
            Sink::Parquet(w, _) => w.into_inner().map_err(parquet_err),
            Sink::ParallelParquet(w) => w.finish(),
            Sink::File(mut w) => {
                w.finish().map_err(arrow_err)?;
                w.into_inner().map_err(arrow_err)
            }
            Sink::Stream(mut w) => {
                w.finish().map_err(arrow_err)?;
                w.into_inner().map_err(arrow_err)
            }
        }
    }
}

/// `schema` with each `Timestamp(Second, tz)` column as `Timestamp(Millisecond, tz)`.
fn millis_for_seconds(schema: &ArrowSchema) -> ArrowSchema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(TimeUnit::Second, tz) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
            _ => f.as_ref().clone(),
        })
        .collect();
    ArrowSchema::new_with_metadata(fields, schema.metadata().clone())
}

/// `batch` with its seconds columns as milliseconds, in `schema`
/// (from [`millis_for_seconds`]).
fn seconds_to_millis(
    batch: RecordBatch,
    schema: &Arc<ArrowSchema>,
) -> Result<RecordBatch, Failure> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (c, f) in batch.columns().iter().zip(schema.fields()) {
        columns.push(column_seconds_to_millis(f, c.clone())?);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
}

/// Column `c` as field `f` of the Parquet-facing schema (from
/// [`millis_for_seconds`]) takes it: a seconds column (its type differs
/// from `f`'s) as milliseconds, any other column as it is. A value whose
/// milliseconds overflow an i64 is an error naming the field.
pub(super) fn column_seconds_to_millis(f: &Field, c: ArrayRef) -> Result<ArrayRef, Failure> {
    let (DataType::Timestamp(TimeUnit::Second, _), DataType::Timestamp(TimeUnit::Millisecond, tz)) =
        (c.data_type(), f.data_type())
    else {
        return Ok(c);
    };
    let secs = c.as_primitive::<TimestampSecondType>();
    let mut millis = Vec::with_capacity(secs.len());
    for (i, &v) in secs.values().iter().enumerate() {
        match v.checked_mul(1000) {
            Some(ms) => millis.push(ms),
            // A null's slot holds zeros: only values can overflow.
            None => {
                return Err(Failure::rejected(format!(
                    "field {}: timestamp {v} s is outside the range Parquet's milliseconds \
                     hold (record {i} of its batch); export it as --format arrow",
                    f.name()
                )))
            }
        }
    }
    let a = TimestampMillisecondArray::new(millis.into(), secs.nulls().cloned())
        .with_timezone_opt(tz.clone());
    Ok(Arc::new(a))
}
