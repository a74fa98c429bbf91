//! Schema inference for `recmap load NEW.rmap INPUT…` without `--schema`
//! (and `--infer-only`): a first pass over the inputs decides every
//! field's type, then the load runs as if that schema had been given.
//!
//! Files are read whole; standard input only for a bounded prefix
//! ([`STDIN_ROWS`] rows or [`STDIN_BYTES`] bytes), which is kept and
//! replayed into the load before the rest of stdin, so a later row that
//! does not fit fails the load as any bad row does (FILE:LINE: field NAME).
//!
//! Rules (per column; `column` holds the evidence): the narrowest integer
//! type holding the range, unsigned when nothing is negative (integral
//! floats such as `517.0` count as integers); else `f32` when every number
//! has at most 6 significant digits (f32 gives back exactly that text),
//! else `f64`; `bool` for true/false in any case; `date` for `YYYY-MM-DD`;
//! `timestamp[unit]` for RFC 3339 / ISO 8601 date-times, unit the coarsest
//! that holds every value exactly; else `str[N]`, N the longest value in
//! UTF-8 bytes (at least 1). A column with a missing value (a null token,
//! JSON `null`, an absent key) is nullable.
//!
//! Invariants: names are the input's, unchanged (a name that is not a
//! valid field name is an error naming the column, since the load maps
//! CSV columns by name); fields are ordered by alignment, largest element
//! first and stable in input order, with the validity field and then an
//! explicit `_pad` field closing the record, so the layout has no
//! implicit padding; nothing is created or written here.

mod column;

use super::csv_input::{RowCap, RowTooLong};
use super::{infer_format, open_input, read_line_capped, Args, Format};
use crate::common::{input_name, Failure};
use crate::signals;
use crate::value::{self, DEFAULT_NULL_TOKENS};
use column::Column;
use recmap::schema::{is_valid_name, MAX_NAME_LEN, VALIDITY_NAME};
use recmap::{Field, Schema, PADDING_PREFIX};
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;

/// Data rows of standard input that inference reads (at most).
pub const STDIN_ROWS: u64 = 10_000;
/// Bytes of standard input that inference reads (at most).
pub const STDIN_BYTES: usize = 16 << 20;
/// The longest row (CSV record or JSON line) inference reads from a file:
/// a longer one is refused (`FILE:LINE: row longer than N bytes`), so an
/// input without line ends (`/dev/zero`) is not buffered whole. 64 MiB is
/// 4 × the largest record (16 MiB): the values of a row that gives a valid
/// schema fit in one record, and the factor 4 is the load's margin for
/// quotes, escapes and the text of numbers (see `Codec::max_row_len`).
pub const ROW_CAP: usize = 64 << 20;

/// What the load does about its schema.
pub enum Decision {
    /// Load with this schema (`None`: the existing store's), standard
    /// input starting with these bytes already read from it.
    Load(Option<Schema>, Option<Vec<u8>>),
    /// `--infer-only`: the schema is printed; nothing else to do.
    Done,
}

/// Decides the schema: the one given, the store's, or an inferred one.
pub fn decide(
    a: &Args,
    inputs: &[PathBuf],
    exists: bool,
    schema: Option<Schema>,
) -> Result<Decision, Failure> {
    if schema.is_some() || (exists && !a.infer_only) {
        return Ok(Decision::Load(schema, None));
    }
    infer(a, inputs).map_err(|f| match signals::caught() {
        // The inputs' readers stop once SIGINT, SIGTERM or SIGHUP is caught.
        Some(s) => Failure {
            code: s.exit_code(),
            message: format!(
                "interrupted by {} while inferring the schema: nothing was created",
                s.name()
            ),
        },
        None => f,
    })
}

fn infer(a: &Args, inputs: &[PathBuf]) -> Result<Decision, Failure> {
    if a.no_header {
        return Err(Failure::usage(
            "inferring a schema needs a header row naming the columns: drop --no-header or give --schema",
        ));
    }
    let mut inf = Inference {
        nulls: NullTokens::new(if a.null_tokens.is_empty() {
            DEFAULT_NULL_TOKENS.map(|t| t.as_bytes().to_vec()).to_vec()
        } else {
            a.null_tokens
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect()
        }),
        ..Inference::default()
    };
    let mut prefix = None;
    let mut sources = Vec::new();
    for p in inputs {
        let name = input_name(p);
        let format = a.format.unwrap_or_else(|| {
            if p.as_os_str() == "-" {
                Format::Csv
            } else {
                infer_format(p)
            }
        });
        if format == Format::Bin {
            return Err(Failure::usage(format!(
                "{name}: bin input has no field names to infer a schema from: give --schema"
            )));
        }
        let rows = if p.as_os_str() == "-" {
            // Unbuffered: the load goes on reading stdin right after `buf`.
            let (buf, eof) =
                read_prefix(&mut open_input(p)?, format).map_err(|e| Failure::io(&name, e))?;
            let rows = match format {
                Format::Csv => inf.csv(&buf[..], &name, STDIN_ROWS, (!eof).then_some(buf.len()))?,
                _ => {
                    let end = if eof {
                        buf.len()
                    } else {
                        buf.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
                    };
                    if end < buf.len() {
                        let lines = buf[..end].iter().filter(|&&c| c == b'\n').count();
                        inf.cut_line = Some(lines as u64 + 1);
                    }
                    inf.jsonl(&buf[..end], &name, STDIN_ROWS)?
                }
            };
            // No whole row in all the bytes inference reads: the row under
            // way at the cut is longer than that.
            if rows == 0 && buf.len() >= STDIN_BYTES {
                if let Some(line) = inf.cut_line.take() {
                    return Err(Failure::rejected(format!(
                        "{name}:{line}: row longer than {STDIN_BYTES} bytes, all of stdin that schema inference reads: give --schema"
                    )));
                }
            }
            let whole = eof && rows < STDIN_ROWS;
            prefix = Some(buf);
            if whole {
                format!("all {rows} rows of {name}")
            } else {
                format!("the first {rows} rows of {name}")
            }
        } else {
            let f = open_input(p)?;
            let rows = match format {
                Format::Csv => inf.csv(f, &name, u64::MAX, None)?,
                _ => inf.jsonl(f, &name, u64::MAX)?,
            };
            format!("{rows} rows of {name}")
        };
        sources.push(rows);
    }
    if inf.rows == 0 {
        return Err(Failure::rejected(format!(
            "no data rows to infer a schema from (in {}): give --schema",
            inputs
                .iter()
                .map(|p| input_name(p))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let (schema, lines) = inf.schema()?;
    let from = sources.join(", ");
    if a.infer_only {
        let mut out = io::stdout().lock();
        let n = schema.fields.len();
        for (i, f) in schema.fields.iter().enumerate() {
            let comma = if i + 1 < n { "," } else { "" };
            writeln!(out, "{}: {}{comma}", f.name, f.type_spec())
                .and_then(|_| out.flush())
                .map_err(|e| Failure::io("stdout", e))?;
        }
        if !a.quiet {
            eprintln!(
                "inferred from {from} ({}-byte records; fields ordered by alignment, largest first, so the record has no padding):\n{lines}",
                schema.record_size
            );
        }
        return Ok(Decision::Done);
    }
    if !a.quiet {
        let partial = if prefix.is_some() {
            "\n  (a later row of stdin that does not fit fails the load: give --schema to be sure)"
        } else {
            ""
        };
        eprintln!(
            "{}: no schema given: inferred from {from}, {}-byte records (fields ordered by alignment, largest first, so the record has no padding; CSV columns are matched by name):\n{lines}\n  as --schema: '{}'\n  (the lines above, saved to a file, also work as --schema-file; --infer-only prints them alone){partial}",
            a.path.display(),
            schema.record_size,
            schema.spec()
        );
    }
    Ok(Decision::Load(Some(schema), prefix))
}

/// Reads the start of standard input: until [`STDIN_ROWS`] rows (and a
/// CSV header) have surely arrived, [`STDIN_BYTES`] are read, or the input
/// ends. Returns the bytes and whether the input ended.
fn read_prefix(r: &mut impl Read, format: Format) -> io::Result<(Vec<u8>, bool)> {
    let want_lines = STDIN_ROWS + 1 + (format == Format::Csv) as u64;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut lines = 0u64;
    let mut chunk = vec![0u8; 1 << 16];
    while buf.len() < STDIN_BYTES && lines < want_lines {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok((buf, true)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        lines += chunk[..n].iter().filter(|&&c| c == b'\n').count() as u64;
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((buf, false))
}

/// The CSV cells that mean null, with quick filters (most cells are none).
#[derive(Default)]
struct NullTokens {
    tokens: Vec<Vec<u8>>,
    /// Bit `n` set: a token of `n < 64` bytes.
    lens: u64,
    long: bool,
    empty: bool,
    /// The tokens' first bytes.
    first: Vec<bool>,
}

impl NullTokens {
    fn new(tokens: Vec<Vec<u8>>) -> NullTokens {
        let mut first = vec![false; 256];
        for t in &tokens {
            if let Some(&b) = t.first() {
                first[b as usize] = true;
            }
        }
        NullTokens {
            lens: tokens
                .iter()
                .filter(|t| t.len() < 64)
                .fold(0, |m, t| m | 1 << t.len()),
            long: tokens.iter().any(|t| t.len() >= 64),
            empty: tokens.iter().any(|t| t.is_empty()),
            first,
            tokens,
        }
    }

    #[inline(always)]
    fn is_null(&self, cell: &[u8]) -> bool {
        let Some(&b) = cell.first() else {
            return self.empty;
        };
        let by_len = if cell.len() < 64 {
            self.lens >> cell.len() & 1 != 0
        } else {
            self.long
        };
        by_len && self.first[b as usize] && self.tokens.iter().any(|t| t[..] == *cell)
    }
}

/// The evidence from every input so far.
#[derive(Default)]
struct Inference {
    cols: Vec<Column>,
    index: HashMap<String, usize>,
    /// Data rows that counted (right column count, JSON objects), and JSON
    /// objects among them.
    rows: u64,
    json_rows: u64,
    nulls: NullTokens,
    /// Input names, and for each column the input where it first appeared.
    names: Vec<String>,
    /// The line of the row left out where a stdin prefix was cut.
    cut_line: Option<u64>,
}

impl Inference {
    /// The column called `name` (new at the end if not seen before).
    fn column(&mut self, name: &str, at: &str) -> Result<usize, Failure> {
        if let Some(&c) = self.index.get(name) {
            return Ok(c);
        }
        if !is_valid_name(name) {
            let hint: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .take(MAX_NAME_LEN)
                .collect();
            let hint = if hint.starts_with(|c: char| c.is_ascii_digit()) || hint.is_empty() {
                format!("_{hint}")
            } else {
                hint
            };
            return Err(Failure::rejected(format!(
                "{at}: column {name:?}: not a valid field name (letters, digits and _, not starting with a digit, at most {MAX_NAME_LEN} bytes); rename it in the input (say {hint}) or give --schema"
            )));
        }
        self.cols.push(Column::new(name.to_string()));
        self.index.insert(name.to_string(), self.cols.len() - 1);
        Ok(self.cols.len() - 1)
    }

    /// A CSV input: the header, then up to `max_rows` rows. With
    /// `tail: Some(len)` the input was cut at `len` bytes, and a record
    /// reaching there may be incomplete: it is left out.
    fn csv(
        &mut self,
        r: impl Read + Send,
        name: &str,
        max_rows: u64,
        tail: Option<usize>,
    ) -> Result<u64, Failure> {
        self.names.push(name.to_string());
        let err = |e: csv::Error| {
            if let Some(t) = RowTooLong::in_csv(&e) {
                return Failure::rejected(format!("{name}:{t}"));
            }
            let msg = format!("{name}: {e}");
            match e.into_kind() {
                csv::ErrorKind::Io(e) => Failure::io(name, e),
                _ => Failure::rejected(msg),
            }
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(RowCap::new(r, ROW_CAP));
        let mut row = csv::ByteRecord::new();
        if !rdr.read_byte_record(&mut row).map_err(err)? {
            return Ok(0);
        }
        let at = format!("{name}:1");
        let mut map = Vec::with_capacity(row.len());
        for (j, col) in row.iter().enumerate() {
            let col = if j == 0 {
                col.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(col)
            } else {
                col
            };
            let col = String::from_utf8_lossy(col);
            let c = self.column(col.trim(), &at)?;
            if map.contains(&c) {
                return Err(Failure::rejected(format!(
                    "{at}: column {:?}: appears twice in the header",
                    col.trim()
                )));
            }
            map.push(c);
        }
        let input = self.names.len() - 1;
        for c in &mut self.cols {
            c.input = input;
        }
        let nulls = &self.nulls;
        let classify = |cols: &mut [Column], rows: &[csv::ByteRecord]| {
            for row in rows {
                let line = row.position().map_or(0, |p| p.line());
                // The record's fields lie one after the other in `buf`.
                let buf = row.as_slice();
                let base = buf.as_ptr() as usize;
                for (cell, &c) in row.iter().zip(&map) {
                    let col = &mut cols[c];
                    if nulls.is_null(cell) {
                        col.nulls += 1;
                    } else {
                        // A cell of up to 8 bytes as one word (a repeat of
                        // the column's previous value is then one compare).
                        let n = cell.len();
                        let key = if n <= 8 {
                            let w = value::load8(buf, cell.as_ptr() as usize - base);
                            Some(if n == 8 { w } else { w & ((1 << (8 * n)) - 1) })
                        } else {
                            None
                        };
                        col.text(cell, line, key);
                    }
                }
            }
        };
        // The csv crate splits records on a thread of its own, which hands
        // them to this one to classify, or classifies them itself into a
        // second set of columns when this one is behind: on two cores the
        // work spreads over both. Merged at the end, the evidence is the
        // same as from one pass (it does not depend on the order of rows).
        const BATCH: usize = 512;
        let mut own: Vec<Column> = self
            .cols
            .iter()
            .map(|c| {
                let mut o = Column::new(c.name.clone());
                o.input = input;
                o
            })
            .collect();
        let ncols = map.len();
        let cols = &mut self.cols;
        let (rows, own, cut) = std::thread::scope(
            |scope| -> Result<(u64, Vec<Column>, Option<u64>), Failure> {
                let (tx, rx) = mpsc::sync_channel::<(Vec<csv::ByteRecord>, usize)>(4);
                let (back_tx, back_rx) = mpsc::channel::<Vec<csv::ByteRecord>>();
                let classify = &classify;
                let reader = scope.spawn(
                    move || -> Result<(u64, Vec<Column>, Option<u64>), csv::Error> {
                        let mut rows = 0u64;
                        let mut spare = Vec::new();
                        let mut cut = None;
                        loop {
                            let mut batch = back_rx
                                .try_recv()
                                .unwrap_or_else(|_| std::mem::take(&mut spare));
                            let mut n = 0;
                            let mut end = false;
                            while n < BATCH {
                                if batch.len() == n {
                                    batch.push(csv::ByteRecord::new());
                                }
                                let line = rdr.position().line();
                                if rows == max_rows || !rdr.read_byte_record(&mut batch[n])? {
                                    end = true;
                                    break;
                                }
                                if tail.is_some_and(|t| rdr.position().byte() as usize >= t) {
                                    cut = Some(line);
                                    end = true;
                                    break;
                                }
                                // Rows of the wrong width are the load's to reject.
                                if batch[n].len() == ncols {
                                    n += 1;
                                    rows += 1;
                                }
                            }
                            match tx.try_send((batch, n)) {
                                Ok(()) => {}
                                Err(mpsc::TrySendError::Full((batch, n))) => {
                                    classify(&mut own, &batch[..n]);
                                    spare = batch;
                                }
                                Err(mpsc::TrySendError::Disconnected(_)) => end = true,
                            }
                            if end {
                                return Ok((rows, own, cut));
                            }
                        }
                    },
                );
                for (batch, n) in rx {
                    classify(cols, &batch[..n]);
                    let _ = back_tx.send(batch);
                }
                reader
                    .join()
                    .expect("the CSV reader thread does not panic")
                    .map_err(err)
            },
        )?;
        for (c, o) in self.cols.iter_mut().zip(own) {
            c.merge(o);
        }
        self.cut_line = cut;
        self.rows += rows;
        Ok(rows)
    }

    /// A JSON lines input: up to `max_rows` objects.
    fn jsonl(&mut self, r: impl Read, name: &str, max_rows: u64) -> Result<u64, Failure> {
        self.names.push(name.to_string());
        let mut r = BufReader::with_capacity(1 << 18, r);
        let mut line = Vec::new();
        let (mut lineno, mut rows) = (0u64, 0u64);
        while rows < max_rows {
            line.clear();
            match read_line_capped(&mut r, &mut line, ROW_CAP).map_err(|e| Failure::io(name, e))? {
                Some(0) => break,
                Some(_) => {}
                None => {
                    return Err(Failure::rejected(format!(
                        "{name}:{}: row longer than {ROW_CAP} bytes",
                        lineno + 1
                    )))
                }
            }
            lineno += 1;
            let text = if lineno == 1 {
                super::jsonl_input::first_line_text(&line)
            } else {
                line.trim_ascii()
            };
            if text.is_empty() {
                continue;
            }
            // A line that is not an object is the load's to reject.
            let Ok(obj) = super::jsonl_input::parse_object(text) else {
                continue;
            };
            let at = format!("{name}:{lineno}");
            for (k, v) in &obj {
                let c = self.column(k, &at)?;
                let col = &mut self.cols[c];
                col.input = self.names.len() - 1;
                col.seen += 1;
                if v.is_null() {
                    col.nulls += 1;
                } else {
                    col.json(v, lineno)
                        .map_err(|e| Failure::rejected(format!("{at}: field {k}: {e}")))?;
                }
            }
            rows += 1;
        }
        self.rows += rows;
        self.json_rows += rows;
        Ok(rows)
    }

    /// The schema the evidence picks, and its description one field a line.
    fn schema(&mut self) -> Result<(Schema, String), Failure> {
        let json_rows = self.json_rows;
        let mut fields = Vec::new();
        for c in &mut self.cols {
            c.absent = json_rows.saturating_sub(c.seen);
            let (ty, count) = c
                .choose(&self.names)
                .map_err(|e| Failure::rejected(format!("field {}: {e}; give --schema", c.name)))?;
            let f = Field::new(c.name.clone(), ty, count, 0);
            let f = if c.missing() > 0 {
                f.with_null_bit(0)
            } else {
                f
            };
            fields.push((f, c.describe(ty)));
        }
        // Largest element first (stable), so every field lands aligned
        // right after the one before it.
        fields.sort_by_key(|f| std::cmp::Reverse(f.0.ty.elem_size()));
        let taken = |n: &str| self.index.contains_key(n);
        let unique = |base: &str| {
            (0..)
                .map(|i| match i {
                    0 if base == VALIDITY_NAME => base.to_string(),
                    i => format!("{base}{i}"),
                })
                .find(|n| !taken(n))
                .expect("a free name")
        };
        let nullable = fields.iter().filter(|f| f.0.is_nullable()).count() as u32;
        let size: u64 =
            fields.iter().map(|f| f.0.size() as u64).sum::<u64>() + nullable.div_ceil(8) as u64;
        let align = fields
            .iter()
            .map(|f| f.0.ty.elem_size() as u64)
            .max()
            .unwrap_or(1);
        let mut parts: Vec<(String, String, String)> = fields
            .into_iter()
            .map(|(f, d)| (f.name.clone(), f.type_spec(), d))
            .collect();
        if nullable > 0 {
            parts.push((
                unique(VALIDITY_NAME),
                format!("validity[{}]", nullable.div_ceil(8)),
                format!("the validity bits of the {nullable} nullable fields"),
            ));
        }
        let pad = size.next_multiple_of(align) - size;
        if pad > 0 {
            parts.push((
                unique(PADDING_PREFIX),
                format!("bytes[{pad}]"),
                format!("explicit padding to the record's alignment ({align}); no input column"),
            ));
        }
        let spec = parts
            .iter()
            .map(|(n, t, _)| format!("{n}:{t}"))
            .collect::<Vec<_>>()
            .join(",");
        let schema = Schema::parse(&spec)
            .map_err(|e| Failure::rejected(format!("the inferred schema is not valid: {e}")))?;
        debug_assert_eq!(schema.record_size as u64, size + pad);
        let width = parts
            .iter()
            .map(|(n, t, _)| n.len() + t.len() + 3)
            .max()
            .unwrap_or(0);
        let lines = parts
            .iter()
            .map(|(n, t, d)| {
                let f = format!("{n}: {t},");
                format!("  {f:width$}  # {d}")
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok((schema, lines))
    }
}

#[cfg(test)]
mod tests;
