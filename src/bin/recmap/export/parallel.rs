//! A Parquet writer that encodes the columns of each row group on worker
//! threads, while the calling thread reads records and gathers their
//! columns: Parquet encoding and compression cost several times the
//! gathering, and a single-threaded writer would use one core.
//!
//! Two kinds of column. A *direct* column (a single number, bool, date or
//! timestamp, nullable or not) is gathered from the records straight into
//! the Parquet physical type (`i32`, `i64`, `f32`, `f64`, `bool`, with
//! definition levels for a nullable one) and encoded by a plain parquet
//! column writer with slices of values: no Arrow array, no per-value
//! index, and its buffers (the gathered values and the encoded chunk) are
//! reused from row group to row group. Every other column (strings,
//! `bytes[N]`, arrays) goes through `recmap::arrow` and parquet's
//! `ArrowColumnWriter`.
//!
//! Invariants: the file is what `ArrowWriter` with the same properties
//! writes for the same batches (footer and `ARROW:schema` from an
//! `ArrowWriter` turned into its serialized writer before any row; a
//! direct column's physical type, the same u32-as-i32 and u64-as-i64
//! reinterpretation and seconds-as-milliseconds as `ArrowWriter` uses, and
//! its column descriptor and properties are the file's); each row group
//! holds exactly `row_group_rows` rows (the last fewer), its column chunks
//! in schema order; each leaf column belongs to one worker for the whole
//! file, so its values are encoded in order. Memory is bounded: the
//! channels to the workers hold at most `QUEUE` messages each, each
//! direct column has at most that many gathered parts in flight (they come
//! back to be refilled), and a row group's encoded pages are held until
//! the group is closed, as `ArrowWriter` holds them.

use crate::common::Failure;
use bytes::Bytes;
use parquet::arrow::arrow_writer::ArrowLeafColumn;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Type as PhysicalType;
use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use recmap::arrow::arrow_schema::Schema as ArrowSchema;
use recmap::arrow::Converter;
use recmap::{FieldType, Schema, TimeUnit};
use std::io::Write;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Messages waiting for a worker, at most: a few batches' columns (one
/// message each), so that the gatherer rarely waits on a worker.
const QUEUE: usize = 16;

/// Records gathered into every direct column before the next ones: 32 KiB
/// of 64-byte records, so that a block is read from the cache by all but
/// the first column.
const GATHER_BLOCK: usize = 512;

/// How a direct column's bytes become its physical values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    I8,
    I16,
    /// `i32`, `u32` (reinterpreted, as `ArrowWriter` writes it) and `date`.
    I32,
    U8,
    U16,
    /// `i64`, `u64` (reinterpreted) and timestamps other than seconds.
    I64,
    /// `timestamp[s]`, written as milliseconds (checked).
    Seconds,
    F32,
    F64,
    Bool,
}

impl Kind {
    /// The kind of a single-element field of type `ty`, if it is direct.
    fn of(ty: FieldType) -> Option<Kind> {
        Some(match ty {
            FieldType::I8 => Kind::I8,
            FieldType::I16 => Kind::I16,
            FieldType::I32 | FieldType::U32 | FieldType::Date => Kind::I32,
            FieldType::U8 => Kind::U8,
            FieldType::U16 => Kind::U16,
            FieldType::I64 | FieldType::U64 => Kind::I64,
            FieldType::Timestamp(TimeUnit::Seconds) => Kind::Seconds,
            FieldType::Timestamp(_) => Kind::I64,
            FieldType::F32 => Kind::F32,
            FieldType::F64 => Kind::F64,
            FieldType::Bool => Kind::Bool,
            _ => return None,
        })
    }

    fn physical(self) -> PhysicalType {
        match self {
            Kind::I8 | Kind::I16 | Kind::I32 | Kind::U8 | Kind::U16 => PhysicalType::INT32,
            Kind::I64 | Kind::Seconds => PhysicalType::INT64,
            Kind::F32 => PhysicalType::FLOAT,
            Kind::F64 => PhysicalType::DOUBLE,
            Kind::Bool => PhysicalType::BOOLEAN,
        }
    }

    fn empty(self) -> Values {
        match self.physical() {
            PhysicalType::INT32 => Values::I32(Vec::new()),
            PhysicalType::INT64 => Values::I64(Vec::new()),
            PhysicalType::FLOAT => Values::F32(Vec::new()),
            PhysicalType::DOUBLE => Values::F64(Vec::new()),
            _ => Values::Bool(Vec::new()),
        }
    }
}

/// A direct column: where its bytes are.
#[derive(Clone, Debug)]
struct Direct {
    name: String,
    kind: Kind,
    offset: usize,
    /// The validity bit: (byte offset in the record, mask).
    null: Option<(usize, u8)>,
}

/// The gathered values of one direct column, in its physical type.
#[derive(Debug)]
enum Values {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
}

/// A slice of a direct column's rows: the non-null values, and for a
/// nullable column one definition level per row (1 value, 0 null).
#[derive(Debug)]
struct Part {
    values: Values,
    defs: Vec<i16>,
}

/// Each record's element at `offset`, as `f` reads its `N` bytes; only
/// where the validity bit is set if `null` is given (then with a level
/// per record in `defs`).
fn fill<T, const N: usize>(
    out: &mut Vec<T>,
    defs: &mut Vec<i16>,
    records: &[u8],
    size: usize,
    offset: usize,
    null: Option<(usize, u8)>,
    f: impl Fn([u8; N]) -> T,
) {
    let read = |r: &[u8]| -> T {
        let mut a = [0u8; N];
        a.copy_from_slice(&r[offset..offset + N]);
        f(a)
    };
    match null {
        None => out.extend(records.chunks_exact(size).map(read)),
        Some((at, mask)) => {
            for r in records.chunks_exact(size) {
                let valid = r[at] & mask != 0;
                defs.push(valid as i16);
                if valid {
                    out.push(read(r));
                }
            }
        }
    }
}

impl Direct {
    /// Appends this column of `records` to `part`.
    fn gather(&self, part: &mut Part, records: &[u8], size: usize) -> Result<(), Failure> {
        let (o, nl, d) = (self.offset, self.null, &mut part.defs);
        match (&mut part.values, self.kind) {
            (Values::I32(v), k) => match k {
                Kind::I8 => fill(v, d, records, size, o, nl, |b: [u8; 1]| b[0] as i8 as i32),
                Kind::U8 => fill(v, d, records, size, o, nl, |b: [u8; 1]| b[0] as i32),
                Kind::I16 => fill(v, d, records, size, o, nl, |b| i16::from_le_bytes(b) as i32),
                Kind::U16 => fill(v, d, records, size, o, nl, |b| u16::from_le_bytes(b) as i32),
                _ => fill(v, d, records, size, o, nl, i32::from_le_bytes),
            },
            (Values::I64(v), k) => {
                let from = v.len();
                fill(v, d, records, size, o, nl, i64::from_le_bytes);
                if k == Kind::Seconds {
                    for x in &mut v[from..] {
                        *x = x.checked_mul(1000).ok_or_else(|| {
                            Failure::rejected(format!(
                                "field {}: timestamp {x} s is outside the range Parquet's \
                                 milliseconds hold; export it as --format arrow",
                                self.name
                            ))
                        })?;
                    }
                }
            }
            (Values::F32(v), _) => fill(v, d, records, size, o, nl, f32::from_le_bytes),
            (Values::F64(v), _) => fill(v, d, records, size, o, nl, f64::from_le_bytes),
            (Values::Bool(v), _) => fill(v, d, records, size, o, nl, |b: [u8; 1]| b[0] != 0),
        }
        Ok(())
    }
}

impl Part {
    fn clear(&mut self) {
        self.defs.clear();
        match &mut self.values {
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::F32(v) => v.clear(),
            Values::F64(v) => v.clear(),
            Values::Bool(v) => v.clear(),
        }
    }
}

/// Writes `part` with `w`, a column writer of its physical type.
fn write_part(w: &mut ColumnWriter<'_>, part: &Part) -> Result<(), ParquetError> {
    let defs = (!part.defs.is_empty()).then_some(part.defs.as_slice());
    match (w, &part.values) {
        (ColumnWriter::Int32ColumnWriter(w), Values::I32(v)) => w.write_batch(v, defs, None),
        (ColumnWriter::Int64ColumnWriter(w), Values::I64(v)) => w.write_batch(v, defs, None),
        (ColumnWriter::FloatColumnWriter(w), Values::F32(v)) => w.write_batch(v, defs, None),
        (ColumnWriter::DoubleColumnWriter(w), Values::F64(v)) => w.write_batch(v, defs, None),
        (ColumnWriter::BoolColumnWriter(w), Values::Bool(v)) => w.write_batch(v, defs, None),
        _ => Err(ParquetError::General(
            "a direct column's values do not match its writer".into(),
        )),
    }?;
    Ok(())
}

enum Msg {
    /// A new row group: the writers of this worker's Arrow-path leaves,
    /// and spare chunk buffers for its direct leaves.
    Open(Vec<(usize, ArrowColumnWriter)>, Vec<Vec<u8>>),
    /// A slice of Arrow-path leaf `usize`'s values.
    Leaf(usize, ArrowLeafColumn),
    /// A slice of direct leaf `usize`'s values (sent back once written).
    Part(usize, Part),
    /// Close the row group's writers and send back their chunks.
    Close,
}

/// A closed column chunk of either kind.
enum Chunk {
    Arrow(ArrowColumnChunk),
    Direct(Bytes, ColumnCloseResult),
}

type Chunks = Result<Vec<(usize, Chunk)>, ParquetError>;

struct Worker {
    tx: SyncSender<Msg>,
    rx: Receiver<Chunks>,
    handle: Option<JoinHandle<()>>,
}

/// What a worker needs to encode its direct leaves.
struct DirectLeaves {
    /// (leaf index, its column descriptor), in leaf order.
    leaves: Vec<(usize, ColumnDescPtr)>,
    props: WriterPropertiesPtr,
    /// Where written parts go back to be refilled.
    recycle: Sender<(usize, Part)>,
}

/// The messages of one row group up to its `Close`, written into `arrow`
/// and into direct column writers over `sinks` (one per direct leaf);
/// the direct leaves' close results, or `None` when the channel closed.
fn encode_group(
    rx: &Receiver<Msg>,
    arrow: &mut [(usize, ArrowColumnWriter)],
    direct: &DirectLeaves,
    sinks: &mut [TrackedWrite<Vec<u8>>],
) -> Option<Result<Vec<ColumnCloseResult>, ParquetError>> {
    let mut writers: Vec<ColumnWriter<'_>> = sinks
        .iter_mut()
        .zip(&direct.leaves)
        .map(|(s, (_, descr))| {
            get_column_writer(
                descr.clone(),
                direct.props.clone(),
                Box::new(SerializedPageWriter::new(s)),
            )
        })
        .collect();
    let mut failed: Option<ParquetError> = None;
    loop {
        match rx.recv().ok()? {
            Msg::Leaf(i, leaf) => {
                if failed.is_none() {
                    if let Some((_, w)) = arrow.iter_mut().find(|(k, _)| *k == i) {
                        failed = w.write(&leaf).err();
                    }
                }
            }
            Msg::Part(i, part) => {
                if failed.is_none() {
                    if let Some(k) = direct.leaves.iter().position(|(l, _)| *l == i) {
                        failed = write_part(&mut writers[k], &part).err();
                    }
                }
                // The gatherer may have stopped: then the part is dropped.
                let _ = direct.recycle.send((i, part));
            }
            Msg::Open(..) => {
                failed.get_or_insert(ParquetError::General(
                    "a row group opened inside another".into(),
                ));
            }
            Msg::Close => break,
        }
    }
    Some(match failed {
        Some(e) => Err(e),
        None => writers.into_iter().map(|w| w.close()).collect(),
    })
}

fn work(rx: Receiver<Msg>, tx: Sender<Chunks>, direct: DirectLeaves) {
    let mut spare: Vec<Vec<u8>> = Vec::new();
    while let Ok(msg) = rx.recv() {
        let Msg::Open(mut arrow, bufs) = msg else {
            continue;
        };
        spare.extend(bufs);
        let mut sinks: Vec<TrackedWrite<Vec<u8>>> = direct
            .leaves
            .iter()
            .map(|_| {
                let mut b = spare.pop().unwrap_or_default();
                b.clear();
                TrackedWrite::new(b)
            })
            .collect();
        let Some(closed) = encode_group(&rx, &mut arrow, &direct, &mut sinks) else {
            return;
        };
        let r = closed.and_then(|closed| {
            let mut chunks: Vec<(usize, Chunk)> = Vec::with_capacity(arrow.len() + sinks.len());
            for (i, w) in arrow {
                chunks.push((i, Chunk::Arrow(w.close()?)));
            }
            for ((sink, close), (i, _)) in sinks.into_iter().zip(closed).zip(&direct.leaves) {
                let bytes = Bytes::from(sink.into_inner()?);
                chunks.push((*i, Chunk::Direct(bytes, close)));
            }
            Ok(chunks)
        });
        if tx.send(r).is_err() {
            return;
        }
    }
}

/// How the gatherer produces leaf `i`.
enum Plan {
    /// A direct column (the next of `ParallelParquet::direct`).
    Direct,
    /// Through `recmap::arrow`: its column in the converter.
    Arrow(usize),
}

/// See the module doc.
pub struct ParallelParquet<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    /// The file's Arrow schema (seconds as milliseconds).
    schema: Arc<ArrowSchema>,
    conv: Converter,
    plan: Vec<Plan>,
    /// The direct columns, and the leaf of each.
    direct: Vec<(usize, Direct)>,
    /// Parts ready to be refilled, per direct slot.
    spare_parts: Vec<Vec<Part>>,
    recycled: Receiver<(usize, Part)>,
    /// Chunk buffers back from closed row groups, per worker.
    spare_bufs: Vec<Vec<Vec<u8>>>,
    workers: Vec<Worker>,
    /// The worker of each leaf column.
    owner: Vec<usize>,
    row_group_rows: usize,
    /// Rows in the open row group; its writers exist iff `> 0`.
    rows: usize,
    groups: usize,
}

fn pq_err(e: ParquetError) -> Failure {
    super::columnar::parquet_err(e)
}

impl<W: Write + Send> ParallelParquet<W> {
    /// A writer of records of `records` into `out`, as a Parquet file of
    /// Arrow schema `schema` (the converter's, seconds as milliseconds),
    /// with `workers` encoding threads.
    pub fn new(
        out: W,
        records: &Schema,
        schema: Arc<ArrowSchema>,
        props: WriterProperties,
        row_group_rows: usize,
        workers: usize,
    ) -> Result<Self, Failure> {
        let (file, factory) = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .and_then(|w| w.into_serialized_writer())
            .map_err(pq_err)?;
        let conv = Converter::new(records);
        let fields: Vec<_> = records
            .fields
            .iter()
            .filter(|f| recmap::arrow::is_column(f))
            .collect();
        let leaves = factory.create_column_writers(0).map_err(pq_err)?.len();
        let descr = file.schema_descr();
        // recmap's schemas are flat: one leaf per column. Anything else
        // (not expected) takes the Arrow path for every column.
        let flat = leaves == fields.len() && leaves == descr.num_columns();
        let mut plan = Vec::with_capacity(leaves);
        let mut direct = Vec::new();
        let mut descrs = Vec::new();
        for i in 0..leaves {
            let d = fields
                .get(i)
                .filter(|_| flat)
                .copied()
                .filter(|f| f.count == 1)
                .and_then(|f| Kind::of(f.ty).map(|k| (f, k)))
                .filter(|(_, k)| descr.column(i).physical_type() == k.physical());
            match d {
                Some((f, kind)) => {
                    plan.push(Plan::Direct);
                    direct.push((
                        i,
                        Direct {
                            name: f.name.clone(),
                            kind,
                            offset: f.offset as usize,
                            null: records.validity_bit(f).map(|(at, m)| (at as usize, m)),
                        },
                    ));
                    descrs.push(descr.column(i));
                }
                None => plan.push(Plan::Arrow(i)),
            }
        }
        // Which worker encodes which leaf: the widest to the least loaded.
        let widths = leaf_widths(&schema, leaves);
        let n = workers.clamp(1, leaves.max(1));
        let mut load = vec![0usize; n];
        let mut owner = vec![0usize; leaves];
        let mut order: Vec<usize> = (0..leaves).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(widths[i]));
        for i in order {
            let w = (0..n).min_by_key(|&k| load[k]).expect("n >= 1");
            load[w] += widths[i];
            owner[i] = w;
        }
        let props = file.properties().clone();
        let (recycle, recycled) = mpsc::channel();
        let workers = (0..n)
            .map(|k| {
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                let (rtx, rrx) = mpsc::channel();
                let mine = DirectLeaves {
                    leaves: direct
                        .iter()
                        .zip(&descrs)
                        .filter(|((i, _), _)| owner[*i] == k)
                        .map(|((i, _), d)| (*i, d.clone()))
                        .collect(),
                    props: props.clone(),
                    recycle: recycle.clone(),
                };
                let handle = std::thread::Builder::new()
                    .name(format!("parquet-{k}"))
                    .spawn(move || work(rx, rtx, mine))
                    .map_err(|e| Failure::usage(format!("starting a Parquet encoder: {e}")))?;
                Ok(Worker {
                    tx,
                    rx: rrx,
                    handle: Some(handle),
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        Ok(ParallelParquet {
            file,
            factory,
            schema,
            conv,
            plan,
            spare_parts: direct.iter().map(|_| Vec::new()).collect(),
            direct,
            recycled,
            spare_bufs: (0..n).map(|_| Vec::new()).collect(),
            workers,
            owner,
            row_group_rows: row_group_rows.max(1),
            rows: 0,
            groups: 0,
        })
    }

    fn send(&self, w: usize, msg: Msg) -> Result<(), Failure> {
        self.workers[w]
            .tx
            .send(msg)
            .map_err(|_| Failure::usage("writing Parquet: an encoder thread stopped"))
    }

    fn open_group(&mut self) -> Result<(), Failure> {
        let mut per: Vec<Vec<(usize, ArrowColumnWriter)>> =
            (0..self.workers.len()).map(|_| Vec::new()).collect();
        let writers = self
            .factory
            .create_column_writers(self.groups)
            .map_err(pq_err)?;
        for (i, w) in writers.into_iter().enumerate() {
            // A direct leaf's Arrow writer is not used.
            if matches!(self.plan[i], Plan::Arrow(_)) {
                per[self.owner[i]].push((i, w));
            }
        }
        for (k, w) in per.into_iter().enumerate() {
            let bufs = std::mem::take(&mut self.spare_bufs[k]);
            self.send(k, Msg::Open(w, bufs))?;
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), Failure> {
        for k in 0..self.workers.len() {
            self.send(k, Msg::Close)?;
        }
        let mut chunks: Vec<(usize, Chunk)> = Vec::with_capacity(self.owner.len());
        for w in &self.workers {
            let r =
                w.rx.recv()
                    .map_err(|_| Failure::usage("writing Parquet: an encoder thread stopped"))?;
            chunks.extend(r.map_err(pq_err)?);
        }
        chunks.sort_by_key(|(i, _)| *i);
        let mut rg = self.file.next_row_group().map_err(pq_err)?;
        for (i, c) in chunks {
            match c {
                Chunk::Arrow(c) => c.append_to_row_group(&mut rg).map_err(pq_err)?,
                Chunk::Direct(bytes, close) => {
                    rg.append_column(&bytes, close).map_err(pq_err)?;
                    self.spare_bufs[self.owner[i]].push(Vec::from(bytes));
                }
            }
        }
        rg.close().map_err(pq_err)?;
        self.rows = 0;
        self.groups += 1;
        Ok(())
    }

    /// A part for direct slot `slot`: a written one back from a worker if
    /// there is one, else a new one.
    fn part(&mut self, slot: usize) -> Part {
        while let Ok((leaf, p)) = self.recycled.try_recv() {
            if let Some(s) = self.direct.iter().position(|(l, _)| *l == leaf) {
                self.spare_parts[s].push(p);
            }
        }
        self.spare_parts[slot].pop().unwrap_or_else(|| Part {
            values: self.direct[slot].1.kind.empty(),
            defs: Vec::new(),
        })
    }

    /// Writes `records` (whole records of the schema), closing row groups
    /// as they fill.
    pub fn write_records(&mut self, records: &[u8]) -> Result<(), Failure> {
        let size = self.conv.record_size();
        let total = records.len() / size;
        let mut at = 0;
        while at < total {
            if self.rows == 0 {
                self.open_group()?;
            }
            let n = (self.row_group_rows - self.rows).min(total - at);
            let part = &records[at * size..(at + n) * size];
            // The direct columns block by block, each block read by every
            // column while it is in the cache.
            let mut parts = Vec::with_capacity(self.direct.len());
            for slot in 0..self.direct.len() {
                let mut p = self.part(slot);
                p.clear();
                parts.push(p);
            }
            for block in part.chunks(GATHER_BLOCK * size) {
                for ((_, d), p) in self.direct.iter().zip(&mut parts) {
                    d.gather(p, block, size)?;
                }
            }
            let mut parts = parts.into_iter();
            for leaf in 0..self.plan.len() {
                match self.plan[leaf] {
                    Plan::Direct => {
                        let p = parts.next().expect("a part per direct column");
                        self.send(self.owner[leaf], Msg::Part(leaf, p))?;
                    }
                    Plan::Arrow(c) => {
                        let col = self
                            .conv
                            .convert_column(c, part)
                            .map_err(super::columnar::arrow_err)?;
                        let field = &self.schema.fields()[leaf];
                        let col = super::columnar::column_seconds_to_millis(field, col)?;
                        for l in compute_leaves(field, &col).map_err(pq_err)? {
                            self.send(self.owner[leaf], Msg::Leaf(leaf, l))?;
                        }
                    }
                }
            }
            self.rows += n;
            at += n;
            if self.rows == self.row_group_rows {
                self.close_group()?;
            }
        }
        Ok(())
    }

    /// Closes the last row group, writes the footer and returns the output.
    pub fn finish(mut self) -> Result<W, Failure> {
        if self.rows > 0 {
            self.close_group()?;
        }
        for w in &mut self.workers {
            let (tx, _) = mpsc::sync_channel(0);
            drop(std::mem::replace(&mut w.tx, tx));
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
        self.file.into_inner().map_err(pq_err)
    }
}

/// Bytes per row of each leaf column, for balancing the workers: the
/// width of its Arrow type (strings and lists by their fixed size).
fn leaf_widths(schema: &ArrowSchema, leaves: usize) -> Vec<usize> {
    use recmap::arrow::arrow_schema::DataType as D;
    let mut w: Vec<usize> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            D::FixedSizeList(item, n) => {
                item.data_type().primitive_width().unwrap_or(1) * *n as usize
            }
            D::FixedSizeBinary(n) => *n as usize,
            // Dictionary encoding makes a string cost more than its bytes.
            D::Utf8 => 32,
            D::Boolean => 1,
            t => t.primitive_width().unwrap_or(8),
        })
        .collect();
    // One leaf per field for recmap's flat schemas; anything else evenly.
    if w.len() != leaves {
        w = vec![1; leaves];
    }
    w
}
