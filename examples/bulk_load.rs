//! Bulk-loads generated records into a new store, commits, reopens it
//! read-only, verifies every page checksum and prints a summary.
//!
//! `cargo run --release --example bulk_load -- [PATH] [RECORDS]`
//! (defaults: a temporary file, 5,000,000 records).

use std::time::Instant;

recmap::record! {
    /// One sensor reading: 32 bytes, 128 to a page.
    pub struct Reading {
        pub id: u64,
        pub sensor: u32,
        pub flags: u32,
        pub value: f64,
        pub ts: i64,
    }
}

fn reading(i: u64) -> Reading {
    Reading {
        id: i,
        sensor: (i % 97) as u32,
        flags: (i % 3) as u32,
        value: (i as f64).sqrt(),
        ts: 1_700_000_000_000 + i as i64,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tmp;
    let path = match args.next() {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("readings.rmap")
        }
    };
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5_000_000);

    let t0 = Instant::now();
    let mut store = recmap::Options::new()
        .create_new(true)
        .open::<Reading>(&path)?;
    let batch: Vec<Reading> = Vec::with_capacity(1 << 16);
    let mut batch = batch;
    let mut i = 0;
    while i < n {
        batch.clear();
        batch.extend((i..n.min(i + (1 << 16))).map(reading));
        store.extend_from_slice(&batch)?;
        i += batch.len() as u64;
    }
    let stats = store.commit()?;
    let load = t0.elapsed();
    drop(store);

    let t1 = Instant::now();
    let store = recmap::Store::<Reading>::open_read_only(&path)?;
    let sum: f64 = store.iter().map(|r| r.value).sum();
    let scan = t1.elapsed();
    let report = store.verify()?;
    let info = store.info();
    assert_eq!(store.get(n - 1).map(|r| r.id), Some(n - 1));

    let mb = (n * std::mem::size_of::<Reading>() as u64) as f64 / 1e6;
    println!("path        {}", path.display());
    println!("schema      {}", info.schema.spec());
    println!(
        "records     {} ({} bytes each, {} per page)",
        info.records, info.record_size, info.records_per_page
    );
    println!(
        "file size   {} bytes (capacity {} records)",
        info.file_size, info.capacity
    );
    println!(
        "load        {:.2} s, {:.0} records/s, {:.0} MB/s (commit {:?}, generation {})",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64(),
        mb / load.as_secs_f64(),
        stats.duration,
        stats.generation
    );
    println!(
        "scan        {:.3} s, {:.0} MB/s (sum of values {sum:.1})",
        scan.as_secs_f64(),
        mb / scan.as_secs_f64()
    );
    println!(
        "verify      {} ({} pages, {} records checked)",
        if report.is_ok() { "ok" } else { "FAILED" },
        report.pages_checked,
        report.records_checked
    );
    if !report.is_ok() {
        for p in &report.problems {
            eprintln!("  {p}");
        }
        std::process::exit(1);
    }
    Ok(())
}
