//! The rate at which the `csv` crate alone splits a file into records: the
//! yardstick for `recmap load` of CSV (which adds converting every field to
//! binary and writing the store).
//!
//! Reads FILE with `csv::Reader::read_byte_record` into one reused
//! `ByteRecord` and counts rows and fields, nothing else. The header row is
//! read like any other row and counted separately.
//!
//! `cargo run --release --example csv_parse_rate -- FILE [RUNS]`
//!
//! Prints one line per run and, last, the median run:
//! `median: ROWS rows, FIELDS fields, BYTES bytes in SECS s: R rows/s, M MB/s`.

use std::time::Instant;

fn parse(path: &str) -> Result<(u64, u64, u64, f64), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let file = std::fs::File::open(path)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file);
    let mut rec = csv::ByteRecord::new();
    let mut rows = 0u64;
    let mut fields = 0u64;
    while rdr.read_byte_record(&mut rec)? {
        rows += 1;
        fields += rec.len() as u64;
    }
    let bytes = rdr.position().byte();
    // The first row is the header.
    Ok((
        rows.saturating_sub(1),
        fields,
        bytes,
        t0.elapsed().as_secs_f64(),
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: csv_parse_rate FILE [RUNS]")?;
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let mut results = Vec::new();
    for k in 0..runs.max(1) {
        let r = parse(&path)?;
        let (rows, fields, bytes, secs) = r;
        println!(
            "run {}: {rows} rows, {fields} fields, {bytes} bytes in {secs:.3} s: {:.0} rows/s, {:.1} MB/s",
            k + 1,
            rows as f64 / secs,
            bytes as f64 / secs / 1e6
        );
        results.push(r);
    }
    results.sort_by(|a, b| a.3.total_cmp(&b.3));
    let (rows, fields, bytes, secs) = results[results.len() / 2];
    println!(
        "median: {rows} rows, {fields} fields, {bytes} bytes in {secs:.3} s: {:.0} rows/s, {:.1} MB/s",
        rows as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
