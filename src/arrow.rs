//! Records as Apache Arrow [`RecordBatch`]es (feature `arrow`): the
//! column layout of a [`Schema`] ([`to_arrow_schema`]), the
//! conversion of whole records into one batch ([`Converter`]), and
//! iterators of batches over a store ([`batches`]) or a reader's snapshot
//! ([`snapshot_batches`]), each a [`RecordBatchReader`] that Parquet, IPC,
//! DataFusion or Polars writers take as it is.
//!
//! Mapping, one column per data field in offset order, named as the field:
//!
//! | recmap | Arrow |
//! | --- | --- |
//! | `u8` … `u64`, `i8` … `i64`, `f32`, `f64` | the same-width integer or float |
//! | `bool` | `Boolean` (any non-zero byte is true, as the typed `Bool`) |
//! | `timestamp[s/ms/us/ns]` | `Timestamp(unit, "UTC")` |
//! | `date` | `Date32` |
//! | `str[N]` | `Utf8`: the bytes up to the first NUL (invalid UTF-8 replaced by U+FFFD) |
//! | `bytes[N]` | `FixedSizeBinary(N)` |
//! | numeric arrays (`f32[3]`) | `FixedSizeList(item, 3)` of the element type, items not null |
//! | the `validity[N]` field, `_pad*` padding | no column |
//!
//! A nullable field's column is nullable and its null buffer is the
//! field's bit of each record's validity bitmap; other columns have no
//! nulls. The Arrow schema's metadata holds the store's layout:
//! `recmap.spec` (the `name:type` spec, validity and padding included),
//! `recmap.record_size` and `recmap.record_align`.
//!
//! Invariants: a batch holds exactly the records it was built from, in
//! order, every value decoded from the record's little-endian bytes (so
//! the values are those `recmap export --format jsonl` prints); memory is
//! bounded by the batch: the iterators read `rows_per_batch` records at a
//! time and never hold more than one batch's records. The iterators check
//! each page against its checksum before its records go into a batch
//! (unless told not to with `verify(false)`), so a damaged page is an
//! error, not a batch. A snapshot's batches all belong to its one commit:
//! a page a later commit changed ends the iteration with
//! [`Error::SnapshotExpired`] rather than
//! mixing commits. Errors of the store reach the caller as
//! `ArrowError::ExternalError` wrapping the [`crate::Error`] (see
//! [`store_error`]).

use crate::error::Error;
use crate::schema::{Field, FieldType, Schema, TimeUnit};
use crate::{PageSums, RawSnapshot, RawStore};
use arrow_array::builder::StringBuilder;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeBinaryArray, FixedSizeListArray,
    PrimitiveArray, RecordBatch, RecordBatchOptions,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

pub use arrow_array::RecordBatchReader;

/// The arrow-rs crates this module builds on, re-exported so that callers
/// use the same versions.
pub use {arrow_array, arrow_buffer, arrow_schema};

/// The most rows in a default-sized batch (64 Ki).
pub const DEFAULT_BATCH_ROWS: usize = 64 * 1024;

/// The most record bytes in a default-sized batch (512 KiB: 8 Ki records
/// of 64 bytes). Small enough that each column's buffers stay under the
/// size at which the system allocator maps and unmaps fresh memory for
/// every batch (which cost the Arrow IPC export half its time at 8 MiB),
/// large enough that per-batch overhead is noise.
pub const DEFAULT_BATCH_BYTES: usize = 512 << 10;

/// Default rows in one batch of records of `record_size` bytes:
/// [`DEFAULT_BATCH_ROWS`], fewer for large records so that a batch stays
/// within [`DEFAULT_BATCH_BYTES`] (at least one row).
pub fn default_batch_rows(record_size: usize) -> usize {
    DEFAULT_BATCH_ROWS.min((DEFAULT_BATCH_BYTES / record_size.max(1)).max(1))
}

/// The Arrow timestamp unit of a recmap one.
fn time_unit(u: TimeUnit) -> arrow_schema::TimeUnit {
    match u {
        TimeUnit::Seconds => arrow_schema::TimeUnit::Second,
        TimeUnit::Millis => arrow_schema::TimeUnit::Millisecond,
        TimeUnit::Micros => arrow_schema::TimeUnit::Microsecond,
        TimeUnit::Nanos => arrow_schema::TimeUnit::Nanosecond,
    }
}

/// The Arrow type of one element of a numeric, bool or temporal field.
fn elem_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::U8 => DataType::UInt8,
        FieldType::U16 => DataType::UInt16,
        FieldType::U32 => DataType::UInt32,
        FieldType::U64 => DataType::UInt64,
        FieldType::I8 => DataType::Int8,
        FieldType::I16 => DataType::Int16,
        FieldType::I32 => DataType::Int32,
        FieldType::I64 => DataType::Int64,
        FieldType::F32 => DataType::Float32,
        FieldType::F64 => DataType::Float64,
        FieldType::Bool => DataType::Boolean,
        FieldType::Timestamp(u) => DataType::Timestamp(time_unit(u), Some("UTC".into())),
        FieldType::Date => DataType::Date32,
        FieldType::Str => DataType::Utf8,
        // Columns are made only for data fields (see `is_column`).
        FieldType::Bytes | FieldType::Validity => DataType::Null,
    }
}

/// True for a field that becomes a column: every field but the validity
/// bitmap and `_pad*` padding.
pub fn is_column(f: &Field) -> bool {
    f.ty != FieldType::Validity && !f.is_padding()
}

/// The Arrow type of field `f`'s column (see the module doc's table).
pub fn data_type(f: &Field) -> DataType {
    match f.ty {
        FieldType::Str => DataType::Utf8,
        FieldType::Bytes => DataType::FixedSizeBinary(f.count as i32),
        ty if f.count == 1 => elem_type(ty),
        ty => DataType::FixedSizeList(
            Arc::new(arrow_schema::Field::new_list_field(elem_type(ty), false)),
            f.count as i32,
        ),
    }
}

/// The Arrow schema of `schema`'s records: one column per data field
/// (nullable exactly when the field is), and the layout in the metadata
/// (see the module doc).
pub fn to_arrow_schema(schema: &Schema) -> arrow_schema::Schema {
    let fields: Vec<arrow_schema::Field> = schema
        .fields
        .iter()
        .filter(|f| is_column(f))
        .map(|f| arrow_schema::Field::new(&f.name, data_type(f), f.is_nullable()))
        .collect();
    let metadata = HashMap::from([
        ("recmap.spec".to_string(), schema.spec()),
        (
            "recmap.record_size".to_string(),
            schema.record_size.to_string(),
        ),
        (
            "recmap.record_align".to_string(),
            schema.record_align.to_string(),
        ),
    ]);
    arrow_schema::Schema::new_with_metadata(fields, metadata)
}

/// One column's plan: where its bytes are and how to decode them.
#[derive(Clone, Debug)]
struct Column {
    ty: FieldType,
    count: usize,
    offset: usize,
    /// The validity bit: (byte offset in the record, mask).
    null: Option<(usize, u8)>,
    data_type: DataType,
}

/// Builds [`RecordBatch`]es from the bytes of whole records of one
/// schema. Cheap to keep: the plan is made once, in [`Converter::new`].
#[derive(Clone, Debug)]
pub struct Converter {
    schema: SchemaRef,
    record_size: usize,
    columns: Vec<Column>,
}

impl Converter {
    /// A converter for records of `schema`.
    pub fn new(schema: &Schema) -> Converter {
        let columns = schema
            .fields
            .iter()
            .filter(|f| is_column(f))
            .map(|f| Column {
                ty: f.ty,
                count: f.count as usize,
                offset: f.offset as usize,
                null: schema.validity_bit(f).map(|(at, mask)| (at as usize, mask)),
                data_type: data_type(f),
            })
            .collect();
        Converter {
            schema: Arc::new(to_arrow_schema(schema)),
            record_size: schema.record_size as usize,
            columns,
        }
    }

    /// The Arrow schema of the batches (see [`to_arrow_schema`]).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Bytes per record.
    pub fn record_size(&self) -> usize {
        self.record_size
    }

    /// One batch of the records in `records` (a whole number of them,
    /// back to back as a store holds them); `InvalidArgumentError` for a
    /// length that is not.
    pub fn convert(&self, records: &[u8]) -> Result<RecordBatch, ArrowError> {
        let size = self.record_size;
        if !records.len().is_multiple_of(size) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "{} bytes is not a whole number of {size}-byte records",
                records.len()
            )));
        }
        let n = records.len() / size;
        let columns = self
            .columns
            .iter()
            .map(|c| column(c, records, size, n))
            .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
    }

    /// Column `index` (in the order of [`Converter::schema`]'s fields) of
    /// the records in `records`, as [`Converter::convert`] would build it,
    /// without building the other columns. `InvalidArgumentError` for a
    /// length that is not a whole number of records or an index past the
    /// last column.
    pub fn convert_column(&self, index: usize, records: &[u8]) -> Result<ArrayRef, ArrowError> {
        let size = self.record_size;
        if !records.len().is_multiple_of(size) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "{} bytes is not a whole number of {size}-byte records",
                records.len()
            )));
        }
        let c = self.columns.get(index).ok_or_else(|| {
            ArrowError::InvalidArgumentError(format!(
                "column {index} of {}: no such column",
                self.columns.len()
            ))
        })?;
        column(c, records, size, records.len() / size)
    }
}

/// Little-endian decoding of a native element type.
trait Le: Sized + Copy {
    const SIZE: usize;
    fn le(b: &[u8]) -> Self;
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn le(b: &[u8]) -> $t {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
le!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// The `count` elements of each record at byte `offset`, record after
/// record.
fn gather<T: Le>(records: &[u8], size: usize, offset: usize, count: usize) -> Vec<T> {
    let width = T::SIZE * count;
    let mut v = Vec::with_capacity(records.len() / size * count);
    if count == 1 {
        v.extend(
            records
                .chunks_exact(size)
                .map(|r| T::le(&r[offset..offset + width])),
        );
    } else {
        for r in records.chunks_exact(size) {
            v.extend(r[offset..offset + width].chunks_exact(T::SIZE).map(T::le));
        }
    }
    v
}

/// A primitive array of the elements of column `c`.
fn primitive<P>(c: &Column, records: &[u8], size: usize, nulls: Option<NullBuffer>) -> ArrayRef
where
    P: ArrowPrimitiveType,
    P::Native: Le,
{
    let values = ScalarBuffer::from(gather::<P::Native>(records, size, c.offset, c.count));
    let a = PrimitiveArray::<P>::new(values, nulls).with_data_type(elem_type(c.ty));
    Arc::new(a)
}

/// Column `c` of the `n` records in `records`.
fn column(c: &Column, records: &[u8], size: usize, n: usize) -> Result<ArrayRef, ArrowError> {
    let nulls = c.null.map(|(at, mask)| {
        NullBuffer::new(BooleanBuffer::collect_bool(n, |i| {
            records[i * size + at] & mask != 0
        }))
    });
    // A list's items have no nulls of their own: the list carries them.
    let (elem_nulls, list_nulls) = if c.count > 1 && !c.ty.needs_len() {
        (None, nulls)
    } else {
        (nulls, None)
    };
    let values: ArrayRef = match c.ty {
        FieldType::U8 => primitive::<UInt8Type>(c, records, size, elem_nulls),
        FieldType::U16 => primitive::<UInt16Type>(c, records, size, elem_nulls),
        FieldType::U32 => primitive::<UInt32Type>(c, records, size, elem_nulls),
        FieldType::U64 => primitive::<UInt64Type>(c, records, size, elem_nulls),
        FieldType::I8 => primitive::<Int8Type>(c, records, size, elem_nulls),
        FieldType::I16 => primitive::<Int16Type>(c, records, size, elem_nulls),
        FieldType::I32 => primitive::<Int32Type>(c, records, size, elem_nulls),
        FieldType::I64 => primitive::<Int64Type>(c, records, size, elem_nulls),
        FieldType::F32 => primitive::<Float32Type>(c, records, size, elem_nulls),
        FieldType::F64 => primitive::<Float64Type>(c, records, size, elem_nulls),
        FieldType::Date => primitive::<Date32Type>(c, records, size, elem_nulls),
        FieldType::Timestamp(u) => match u {
            TimeUnit::Seconds => primitive::<TimestampSecondType>(c, records, size, elem_nulls),
            TimeUnit::Millis => primitive::<TimestampMillisecondType>(c, records, size, elem_nulls),
            TimeUnit::Micros => primitive::<TimestampMicrosecondType>(c, records, size, elem_nulls),
            TimeUnit::Nanos => primitive::<TimestampNanosecondType>(c, records, size, elem_nulls),
        },
        FieldType::Bool => {
            let at = c.offset;
            let values = BooleanBuffer::collect_bool(n, |i| records[i * size + at] != 0);
            Arc::new(BooleanArray::new(values, elem_nulls))
        }
        FieldType::Bytes => {
            let w = c.count;
            let mut v = Vec::with_capacity(n * w);
            for r in records.chunks_exact(size) {
                v.extend_from_slice(&r[c.offset..c.offset + w]);
            }
            Arc::new(FixedSizeBinaryArray::try_new(
                w as i32,
                Buffer::from_vec(v),
                elem_nulls,
            )?)
        }
        FieldType::Str => Arc::new(strings(c, records, size, n, elem_nulls.as_ref())?),
        FieldType::Validity => {
            return Err(ArrowError::InvalidArgumentError(
                "the validity field is not a column".into(),
            ))
        }
    };
    if c.count > 1 && !c.ty.needs_len() {
        let DataType::FixedSizeList(item, len) = &c.data_type else {
            unreachable!("numeric arrays are lists (data_type)")
        };
        return Ok(Arc::new(FixedSizeListArray::try_new(
            item.clone(),
            *len,
            values,
            list_nulls,
        )?));
    }
    Ok(values)
}

/// A `str[N]` column: each value up to its first NUL; null where `nulls`
/// says so. The values are copied into one buffer and checked as UTF-8
/// once (by `StringArray::try_new`: valid text, offsets on character
/// boundaries); only a batch with invalid UTF-8 in it is built again value
/// by value, with U+FFFD replacing the invalid bytes.
fn strings(
    c: &Column,
    records: &[u8],
    size: usize,
    n: usize,
    nulls: Option<&NullBuffer>,
) -> Result<arrow_array::StringArray, ArrowError> {
    let text = |r: &[u8]| -> usize {
        let raw = &r[c.offset..c.offset + c.count];
        raw.iter().position(|&x| x == 0).unwrap_or(raw.len())
    };
    let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
    let mut values: Vec<u8> = Vec::with_capacity(n * c.count.min(64));
    offsets.push(0);
    for (i, r) in records.chunks_exact(size).enumerate() {
        if !nulls.is_some_and(|m| m.is_null(i)) {
            values.extend_from_slice(&r[c.offset..c.offset + text(r)]);
        }
        offsets.push(i32::try_from(values.len()).map_err(|_| {
            ArrowError::InvalidArgumentError(format!(
                "a batch of {n} values of a str[{}] column holds more than 2 GiB of text; \
                 use smaller batches",
                c.count
            ))
        })?);
    }
    let offsets = arrow_buffer::OffsetBuffer::new(ScalarBuffer::from(offsets));
    if let Ok(a) =
        arrow_array::StringArray::try_new(offsets, Buffer::from_vec(values), nulls.cloned())
    {
        return Ok(a);
    }
    let mut b = StringBuilder::with_capacity(n, n * c.count.min(64));
    for (i, r) in records.chunks_exact(size).enumerate() {
        if nulls.is_some_and(|m| m.is_null(i)) {
            b.append_null();
            continue;
        }
        b.append_value(String::from_utf8_lossy(&r[c.offset..c.offset + text(r)]));
    }
    Ok(b.finish())
}

/// A store error as the `ArrowError` the iterators yield
/// (`ExternalError`); [`as_store_error`] gets it back.
pub fn store_error(e: Error) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

/// The [`crate::Error`] inside an `ArrowError` from this module's
/// iterators, if it holds one.
pub fn as_store_error(e: &ArrowError) -> Option<&Error> {
    match e {
        ArrowError::ExternalError(b) => b.downcast_ref::<Error>(),
        _ => None,
    }
}

/// The batches of records `range` (clamped to the store's `len`, which
/// for a writer's own handle includes its uncommitted appends), at most
/// `rows_per_batch` records each (at least 1; see [`default_batch_rows`]).
/// Pages are checked against their checksums before their records are
/// converted (committed pages only; see
/// [`RawStore::check_records`]); [`StoreBatches::verify`] turns that off.
pub fn batches(store: &RawStore, range: Range<u64>, rows_per_batch: usize) -> StoreBatches<'_> {
    let end = range.end.min(store.len());
    StoreBatches {
        store,
        conv: Converter::new(store.schema()),
        next: range.start.min(end),
        end,
        rows: rows_per_batch.max(1) as u64,
        verify: true,
        buf: Vec::new(),
        failed: false,
    }
}

/// Iterator of [`batches`]: one [`RecordBatch`] per `rows_per_batch`
/// records, the last one shorter.
#[derive(Debug)]
pub struct StoreBatches<'a> {
    store: &'a RawStore,
    conv: Converter,
    next: u64,
    end: u64,
    rows: u64,
    verify: bool,
    buf: Vec<u8>,
    failed: bool,
}

impl StoreBatches<'_> {
    /// Whether pages are checked against their checksums first (default
    /// true). Without, damaged records are converted as they are.
    pub fn verify(mut self, yes: bool) -> Self {
        self.verify = yes;
        self
    }
}

impl Iterator for StoreBatches<'_> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let (first, stop) = (self.next, self.end.min(self.next + self.rows));
        self.next = stop;
        if self.verify {
            if let Err(e) = self.store.check_records(first..stop) {
                self.failed = true;
                return Some(Err(store_error(e)));
            }
        }
        let mut runs = self.store.runs(first..stop);
        let whole = (stop - first) as usize * self.conv.record_size;
        let r = match runs.next() {
            // One run: converted where it lies.
            Some((_, bytes)) if bytes.len() == whole => self.conv.convert(bytes),
            Some((_, bytes)) => {
                self.buf.clear();
                self.buf.extend_from_slice(bytes);
                for (_, bytes) in runs {
                    self.buf.extend_from_slice(bytes);
                }
                self.conv.convert(&self.buf)
            }
            None => self.conv.convert(&[]),
        };
        self.failed = r.is_err();
        Some(r)
    }
}

impl RecordBatchReader for StoreBatches<'_> {
    fn schema(&self) -> SchemaRef {
        self.conv.schema()
    }
}

/// The batches of records `range` (clamped to the snapshot's `len`) as of
/// the snapshot's commit, at most `rows_per_batch` records each (at least
/// 1). Each page is checked against the checksum its commit gave it
/// before its records are converted; [`SnapshotBatches::verify`] turns
/// that off. A page a later commit changed ends the iteration with
/// `SnapshotExpired`: take a new snapshot and start again.
pub fn snapshot_batches<'r>(
    snap: &RawSnapshot<'r>,
    range: Range<u64>,
    rows_per_batch: usize,
) -> SnapshotBatches<'r> {
    let end = range.end.min(snap.len());
    SnapshotBatches {
        snap: *snap,
        conv: Converter::new(snap.schema()),
        next: range.start.min(end),
        end,
        rows: rows_per_batch.max(1) as u64,
        verify: true,
        sums: None,
        page: Vec::new(),
        buf: Vec::new(),
        failed: false,
    }
}

/// Iterator of [`snapshot_batches`]: one [`RecordBatch`] per
/// `rows_per_batch` records of one commit, the last one shorter.
#[derive(Debug)]
pub struct SnapshotBatches<'r> {
    snap: RawSnapshot<'r>,
    conv: Converter,
    next: u64,
    end: u64,
    rows: u64,
    verify: bool,
    sums: Option<PageSums>,
    page: Vec<u8>,
    buf: Vec<u8>,
    failed: bool,
}

impl SnapshotBatches<'_> {
    /// Whether pages are checked against their commit's checksums first
    /// (default true). Without, the records are copied as the snapshot
    /// holds them.
    pub fn verify(mut self, yes: bool) -> Self {
        self.verify = yes;
        self
    }

    /// The records `first..stop` as of the snapshot, into `self.buf`.
    fn fill(&mut self, first: u64, stop: u64) -> crate::Result<()> {
        let size = self.conv.record_size as u64;
        self.buf.clear();
        if !self.verify {
            self.buf.resize(((stop - first) * size) as usize, 0);
            self.snap.read_range_bytes(first, &mut self.buf)?;
            return Ok(());
        }
        if self.sums.is_none() {
            self.sums = Some(self.snap.page_sums()?);
        }
        let sums = self.sums.as_mut().expect("gathered above");
        let rpg = crate::format::Packing::new(size).records_per_group;
        for g in first / rpg..=(stop - 1) / rpg {
            if let Some(p) = self.snap.read_group_checked(sums, g, &mut self.page)? {
                return Err(corrupt(self.snap.path(), p));
            }
            let at = g * rpg;
            let from = (first.max(at) - at) * size;
            let to = (stop.min(at + rpg) - at) * size;
            self.buf
                .extend_from_slice(&self.page[from as usize..to as usize]);
        }
        Ok(())
    }
}

/// A damaged page found through a snapshot, as the error a store's
/// `check_records` gives for it.
fn corrupt(path: &std::path::Path, p: crate::Problem) -> Error {
    match p {
        crate::Problem::PageChecksum {
            group,
            first_record,
            end_record,
            expected,
            got,
            ..
        } => Error::CorruptPage {
            path: path.to_path_buf(),
            group,
            first_record,
            end_record,
            expected,
            got,
        },
        other => Error::InvalidOption {
            option: "page check",
            reason: other.to_string(),
        },
    }
}

impl Iterator for SnapshotBatches<'_> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let (first, stop) = (self.next, self.end.min(self.next + self.rows));
        self.next = stop;
        if let Err(e) = self.fill(first, stop) {
            self.failed = true;
            return Some(Err(store_error(e)));
        }
        let r = self.conv.convert(&self.buf);
        self.failed = r.is_err();
        Some(r)
    }
}

impl RecordBatchReader for SnapshotBatches<'_> {
    fn schema(&self) -> SchemaRef {
        self.conv.schema()
    }
}
