//! CSV input for `recmap load`: rows read from a large buffer and
//! converted in one pass, the header mapped to fields, and the `csv`
//! crate's rules for every row the fast path declines.
//!
//! Invariant: every row means what the `csv` crate's default reader makes
//! of it, and a bad row fails with the crate's message: [`csv_record_at`]
//! is that reader's state machine transcribed (same fields, same bytes and
//! `\n`s consumed), and [`parse_row`] takes a row only when it gives the
//! same bytes as reading it with `csv_record_at` would, else declines.

use super::{Loader, Loc};
use crate::common::Failure;
use crate::signals;
use crate::value::{self, FastCell, FieldCodec};
use std::io::{self, Read};
use std::sync::mpsc;

/// Input buffer size for CSV (grown for a longer record).
const IN_BUF: usize = 1 << 20;

/// What [`InBuf::csv_record`] found.
enum Record {
    /// Whether there was a record (else only blank lines were left), and
    /// how many `\n` it consumed.
    Read(bool, u64),
    /// The record at `start` is longer than the cap: the load stops.
    TooLong,
}

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
                // A read cut short by a signal the load stops for is not retried.
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !signals::interrupted() => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the record at `start` as the `csv` crate would (see
    /// [`csv_record_at`]), reading more input until it is complete, and
    /// moves past it; a record longer than `cap` bytes (from its first
    /// byte to its terminator) is not read further ([`Record::TooLong`]).
    ///
    /// The scan resumes where it stopped after each read instead of
    /// starting over (starting over made a long record from a pipe, read
    /// 64 KiB at a time, cost time quadratic in its length), and blank
    /// lines before the record are dropped as they are passed, so the
    /// buffer holds at most the record's `cap` bytes and one read more.
    fn csv_record(
        &mut self,
        row: &mut csv::ByteRecord,
        field: &mut Vec<u8>,
        name: &str,
        cap: usize,
    ) -> Result<Record, Failure> {
        let mut scan = CsvScan::new(row, field);
        let mut blank_newlines = 0u64;
        loop {
            let data = &self.buf[self.start..self.end];
            let found = scan.resume(data, self.eof, row, field);
            if scan.from.is_some_and(|from| scan.i - from > cap) {
                return Ok(Record::TooLong);
            }
            match found {
                Some((got, used, newlines)) => {
                    self.start += used;
                    return Ok(Record::Read(got, blank_newlines + newlines));
                }
                None => {
                    if scan.from.is_none() {
                        // Only blank lines so far: passed, and forgotten.
                        self.start += scan.i;
                        blank_newlines += scan.newlines;
                        scan = CsvScan::new(row, field);
                    }
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
#[cfg(test)]
fn csv_record_at(
    data: &[u8],
    eof: bool,
    row: &mut csv::ByteRecord,
    field: &mut Vec<u8>,
) -> Option<(bool, usize, u64)> {
    CsvScan::new(row, field).resume(data, eof, row, field)
}

/// [`csv_record_at`] as a scan that can stop where its data ends and go on
/// when more came (with `data` the same bytes and more after them, and the
/// same `row` and `field`, which hold the record read so far), so a long
/// record is scanned once however many reads it takes.
struct CsvScan {
    state: CsvState,
    /// The next byte of `data` to look at.
    i: usize,
    /// `\n`s consumed so far.
    newlines: u64,
    /// Where the record's first byte is (`None` while only blank lines
    /// were passed).
    from: Option<usize>,
}

impl CsvScan {
    /// A scan of a new record (`row` and `field` emptied for it).
    fn new(row: &mut csv::ByteRecord, field: &mut Vec<u8>) -> CsvScan {
        row.clear();
        field.clear();
        CsvScan {
            state: CsvState::StartRecord,
            i: 0,
            newlines: 0,
            from: None,
        }
    }

    /// Goes on from `self.i` (see [`csv_record_at`] for the result). On
    /// `None` the scan stands at `data.len()`, ready for more.
    fn resume(
        &mut self,
        data: &[u8],
        eof: bool,
        row: &mut csv::ByteRecord,
        field: &mut Vec<u8>,
    ) -> Option<(bool, usize, u64)> {
        use CsvState::*;
        let mut state = self.state;
        let mut newlines = self.newlines;
        let mut i = self.i;
        // On return, whatever it is, the scan is saved where it stands.
        let out = loop {
            let Some(&c) = data.get(i) else {
                if !eof {
                    break None;
                }
                if state == StartRecord {
                    break Some((false, i, newlines));
                }
                row.push_field(field);
                break Some((true, i, newlines));
            };
            let term = c == b'\r' || c == b'\n';
            match state {
                StartRecord => {
                    if term {
                        newlines += (c == b'\n') as u64;
                        i += 1;
                    } else {
                        state = StartField;
                        self.from = Some(i);
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
                        self.i = i;
                        self.state = state;
                        self.newlines = newlines;
                        return Some((true, i + 1, newlines));
                    } else {
                        field.push(c);
                        state = InField;
                    }
                }
            }
            i += 1;
        };
        self.i = i;
        self.state = state;
        self.newlines = newlines;
        out
    }
}

/// The error [`RowCap`] reads end with: a record of more than `cap` bytes
/// begins at `line` (counted as the `csv` crate counts a record's line,
/// from 1 at the start of what `RowCap` reads).
#[derive(Debug)]
pub(super) struct RowTooLong {
    pub line: u64,
    pub cap: usize,
}

impl std::fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: row longer than {} bytes", self.line, self.cap)
    }
}

impl std::error::Error for RowTooLong {}

impl RowTooLong {
    /// The `RowTooLong` inside an error from a `csv` reader of a [`RowCap`].
    pub(super) fn in_csv(e: &csv::Error) -> Option<&RowTooLong> {
        match e.kind() {
            csv::ErrorKind::Io(e) => e.get_ref()?.downcast_ref(),
            _ => None,
        }
    }
}

/// A reader for the `csv` crate that fails ([`RowTooLong`]) once a record
/// is longer than `cap` bytes, so the crate, which buffers a record whole,
/// never holds more than about `cap` bytes of one. It follows the records
/// with the state machine of [`csv_record_at`] (the crate's default
/// dialect, a record's bytes from its first to its terminator), one step a
/// byte.
pub(super) struct RowCap<R> {
    inner: R,
    cap: usize,
    state: CsvState,
    /// Bytes of the record under way so far.
    len: usize,
    /// `\n`s read, and as of the end of the last record (its line is one more).
    newlines: u64,
    line_done: u64,
}

impl<R> RowCap<R> {
    pub(super) fn new(inner: R, cap: usize) -> RowCap<R> {
        RowCap {
            inner,
            cap,
            state: CsvState::StartRecord,
            len: 0,
            newlines: 0,
            line_done: 0,
        }
    }

    /// Follows `data`; false once the record under way is too long.
    fn follow(&mut self, data: &[u8]) -> bool {
        use CsvState::*;
        for &c in data {
            let term = c == b'\r' || c == b'\n';
            self.newlines += (c == b'\n') as u64;
            let ended = match self.state {
                // Blank lines: not counted in the next record's line.
                StartRecord if term => continue,
                InQuoted => {
                    if c == b'"' {
                        self.state = QuoteInQuoted;
                    }
                    false
                }
                QuoteInQuoted if c == b'"' => {
                    self.state = InQuoted;
                    false
                }
                StartRecord | StartField if c == b'"' => {
                    self.state = InQuoted;
                    false
                }
                _ if term => true,
                _ if c == b',' => {
                    self.state = StartField;
                    false
                }
                _ => {
                    self.state = InField;
                    false
                }
            };
            if ended {
                self.state = StartRecord;
                self.len = 0;
                self.line_done = self.newlines;
            } else {
                self.len += 1;
                if self.len > self.cap {
                    return false;
                }
            }
        }
        true
    }
}

impl<R: Read> Read for RowCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.follow(&buf[..n]) {
            return Err(io::Error::other(RowTooLong {
                line: self.line_done + 1,
                cap: self.cap,
            }));
        }
        Ok(n)
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

impl Loader {
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
    pub(super) fn load_csv(
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
        let cap = self.codec.max_row_len();
        let too_long = |l: &Loader, line: u64| {
            l.failure(format!("{name}:{line}: row longer than {cap} bytes"))
        };
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
            let (got, newlines) = match inb.csv_record(&mut row, &mut field, &name, cap)? {
                Record::Read(got, newlines) => (got, newlines),
                Record::TooLong => return Err(too_long(self, rec_line)),
            };
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
        // The first `clean` unprocessed bytes (a partial row) hold no record
        // terminator: only what came after them is searched for one, so a
        // long row read in many short reads is searched once, not once a read.
        let mut clean = 0usize;
        loop {
            // Whole rows: up to the last record terminator read so far.
            let region_end = match inb.buf[inb.start + clean..inb.end]
                .iter()
                .rposition(|&c| c == b'\n' || c == b'\r')
            {
                Some(i) => inb.start + clean + i + 1,
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
                if t - p > cap {
                    // (Rows of valid values are shorter: see `max_row_len`.)
                    return Err(too_long(self, rec_line));
                }
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
                clean = 0;
                // A row for the csv crate (or the last one, without a terminator).
                let (got, newlines) = match inb.csv_record(&mut row, &mut field, &name, cap)? {
                    Record::Read(got, newlines) => (got, newlines),
                    Record::TooLong => return Err(too_long(self, rec_line)),
                };
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
            // `start` is where a row begins and nothing after it ends one.
            clean = inb.end - inb.start;
            if clean > cap {
                return Err(too_long(self, rec_line));
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
        let cap = self.codec.max_row_len();
        let rest = RowCap::new(rest, cap);
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
                .map_err(|e| match RowTooLong::in_csv(&e) {
                    Some(t) => self.failure(format!(
                        "{name}:{}: row longer than {cap} bytes",
                        first_line + t.line - 1
                    )),
                    None => csv_failure(&name, e),
                })?;
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
            let mut reason = format!("expected {ncols} columns, got {}", row.len());
            // A quote never closed makes the rest of the input one field:
            // a field with a line end in it is the usual sign.
            if row.len() < ncols && row.iter().any(|f| f.contains(&b'\n')) {
                reason.push_str(
                    "; a quoted field runs across lines from here, so a closing quote (\") may be missing",
                );
            }
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
    /// A xorshift generator of numbers and of short random inputs made of
    /// the bytes CSV's rules turn on (quotes, separators, line ends).
    struct Inputs(u64);

    impl Inputs {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn input(&mut self) -> Vec<u8> {
            let alphabet = b"a1,,\"\"\r\n\n x";
            let len = (self.next() % 40) as usize;
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn csv_record_at_matches_the_csv_crate() {
        let mut gen = Inputs(0x9E37_79B9_7F4A_7C15);
        let (mut row, mut field) = (csv::ByteRecord::new(), Vec::new());
        for _ in 0..20_000 {
            let data = gen.input();
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
                let cut = at - used + (gen.next() % used.max(1) as u64) as usize;
                assert!(
                    csv_record_at(&data[at - used..cut], false, &mut row, &mut field).is_none(),
                    "{data:?} cut at {cut}"
                );
            }
        }
    }

    /// `RowCap` and the resumed `CsvScan` see the same record lengths:
    /// reading random CSV through `RowCap` with the longest record's length
    /// as the cap passes whole, one byte less fails; and a scan fed one
    /// byte at a time finds the records a whole scan finds.
    #[test]
    fn row_cap_and_resumed_scans_agree_with_whole_scans() {
        let mut gen = Inputs(0x2545_F491_4F6C_DD1D);
        let (mut row, mut field) = (csv::ByteRecord::new(), Vec::new());
        let (mut row2, mut field2) = (csv::ByteRecord::new(), Vec::new());
        for _ in 0..5_000 {
            let data = gen.input();
            let (mut at, mut longest) = (0, 0);
            loop {
                let mut scan = CsvScan::new(&mut row, &mut field);
                let (got, used, _) = scan
                    .resume(&data[at..], true, &mut row, &mut field)
                    .unwrap();
                // Byte by byte, resumed: the same record.
                let mut slow = CsvScan::new(&mut row2, &mut field2);
                let mut end = 0;
                let found = loop {
                    let eof = end == data.len() - at;
                    if let Some(r) = slow.resume(&data[at..at + end], eof, &mut row2, &mut field2) {
                        break r;
                    }
                    end += 1;
                };
                assert_eq!(found.0, got, "{data:?}");
                assert_eq!(found.1, used, "{data:?}");
                if !got {
                    break;
                }
                assert_eq!(row2, row, "{data:?}");
                longest = longest.max(scan.i - scan.from.unwrap());
                at += used;
            }
            let read = |cap: usize| {
                let mut r = RowCap::new(&data[..], cap);
                let mut out = Vec::new();
                r.read_to_end(&mut out).map(|_| out)
            };
            assert_eq!(read(longest).unwrap(), data, "{data:?}");
            if longest > 0 {
                let e = read(longest - 1).unwrap_err();
                assert!(e.get_ref().unwrap().is::<RowTooLong>(), "{data:?}");
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
