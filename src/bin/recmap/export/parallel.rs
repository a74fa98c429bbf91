//! A Parquet writer that encodes the columns of each row group on worker
//! threads (parquet's `ArrowColumnWriter`s), while the calling thread
//! reads records and builds batches: Parquet encoding and compression cost
//! several times the conversion, and a single-threaded writer would use
//! one core of the machine.
//!
//! Invariants: the file is what `ArrowWriter` with the same properties
//! writes (its footer and `ARROW:schema` come from an `ArrowWriter` turned
//! into its serialized writer before any row); each row group holds
//! exactly `row_group_rows` rows (the last fewer), its column chunks in
//! schema order; each leaf column belongs to one worker for the whole
//! file, so its values are encoded in order. Memory is bounded: the
//! channels to the workers hold at most `QUEUE` leaves each, and a row
//! group's encoded pages are held until the group is closed, as
//! `ArrowWriter` holds them.

use crate::common::Failure;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn,
    ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use recmap::arrow::arrow_array::RecordBatch;
use recmap::arrow::arrow_schema::Schema as ArrowSchema;
use std::io::Write;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Leaves waiting for a worker, at most.
const QUEUE: usize = 4;

enum Msg {
    /// The writers of this worker's leaves for the next row group.
    Writers(Vec<(usize, ArrowColumnWriter)>),
    /// A slice of leaf `usize`'s values.
    Leaf(usize, ArrowLeafColumn),
    /// Close the row group's writers and send back their chunks.
    Close,
}

type Chunks = Result<Vec<(usize, ArrowColumnChunk)>, ParquetError>;

struct Worker {
    tx: SyncSender<Msg>,
    rx: Receiver<Chunks>,
    handle: Option<JoinHandle<()>>,
}

fn work(rx: Receiver<Msg>, tx: mpsc::Sender<Chunks>) {
    let mut writers: Vec<(usize, ArrowColumnWriter)> = Vec::new();
    let mut failed: Option<ParquetError> = None;
    for msg in rx {
        match msg {
            Msg::Writers(w) => writers = w,
            Msg::Leaf(i, leaf) => {
                if failed.is_some() {
                    continue;
                }
                if let Some((_, w)) = writers.iter_mut().find(|(k, _)| *k == i) {
                    if let Err(e) = w.write(&leaf) {
                        failed = Some(e);
                    }
                }
            }
            Msg::Close => {
                let r = match failed.take() {
                    Some(e) => Err(e),
                    None => std::mem::take(&mut writers)
                        .into_iter()
                        .map(|(i, w)| w.close().map(|c| (i, c)))
                        .collect(),
                };
                if tx.send(r).is_err() {
                    return;
                }
            }
        }
    }
}

/// See the module doc.
pub struct ParallelParquet<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: Arc<ArrowSchema>,
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
    /// A writer of `schema` into `out` with `workers` encoding threads.
    pub fn new(
        out: W,
        schema: Arc<ArrowSchema>,
        props: WriterProperties,
        row_group_rows: usize,
        workers: usize,
    ) -> Result<Self, Failure> {
        let (file, factory) = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .and_then(|w| w.into_serialized_writer())
            .map_err(pq_err)?;
        // Leaves of the first row group: their count and widths decide
        // which worker encodes which (the widest to the least loaded).
        let leaves = factory.create_column_writers(0).map_err(pq_err)?.len();
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
        let workers = (0..n)
            .map(|k| {
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                let (rtx, rrx) = mpsc::channel();
                let handle = std::thread::Builder::new()
                    .name(format!("parquet-{k}"))
                    .spawn(move || work(rx, rtx))
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
            per[self.owner[i]].push((i, w));
        }
        for (k, w) in per.into_iter().enumerate() {
            self.send(k, Msg::Writers(w))?;
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), Failure> {
        for k in 0..self.workers.len() {
            self.send(k, Msg::Close)?;
        }
        let mut chunks: Vec<(usize, ArrowColumnChunk)> = Vec::with_capacity(self.owner.len());
        for w in &self.workers {
            let r =
                w.rx.recv()
                    .map_err(|_| Failure::usage("writing Parquet: an encoder thread stopped"))?;
            chunks.extend(r.map_err(pq_err)?);
        }
        chunks.sort_by_key(|(i, _)| *i);
        let mut rg = self.file.next_row_group().map_err(pq_err)?;
        for (_, c) in chunks {
            c.append_to_row_group(&mut rg).map_err(pq_err)?;
        }
        rg.close().map_err(pq_err)?;
        self.rows = 0;
        self.groups += 1;
        Ok(())
    }

    /// Writes `batch` (of the writer's schema), closing row groups as
    /// they fill.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), Failure> {
        let mut at = 0;
        while at < batch.num_rows() {
            if self.rows == 0 {
                self.open_group()?;
            }
            let n = (self.row_group_rows - self.rows).min(batch.num_rows() - at);
            let part = batch.slice(at, n);
            let mut leaf = 0;
            for (field, col) in self.schema.fields().iter().zip(part.columns()) {
                for l in compute_leaves(field, col).map_err(pq_err)? {
                    self.send(self.owner[leaf], Msg::Leaf(leaf, l))?;
                    leaf += 1;
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
