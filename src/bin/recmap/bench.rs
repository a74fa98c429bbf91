//! `recmap bench`: builds a store of N records in a scratch directory and
//! times reading one record (copied out) through recmap, `pread` and
//! `BufReader` + seek + read, at random and sequentially; prints a table and
//! optionally writes a hand-made SVG bar chart. `--sweep` (in `sweep`)
//! grows one store through several sizes and times random reads at each.

use crate::common::{human_bytes, CliResult, Failure, EXIT_OK};
use crate::measure;
use recmap::{Advice, Options, RawStore, Schema};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod sweep;

pub const HELP: &str = "\
The store has the schema id:u64 plus a bytes[] pad up to --record-size
(rounded up to a multiple of 8). Every method reads record i into a buffer
and sums the ids, so all do the same work; the file is in the page cache
(warm), which is what recmap's zero-copy map is for. pread is one system
call per record; BufReader (8 KiB buffer) seeks, which drops its buffer, then
reads. Random reads are timed in five parts of the index sequence and the
median part is reported. The scratch directory is removed at the end.

With --cold (Linux only), the file's cached pages are dropped before every
timed pass (dirty pages written back first, then madvise + posix_fadvise
DONTNEED) and the drop is confirmed with mincore (an error if more than 1 %
of the file stayed cached); the bytes each pass made the kernel read, from
/proc/self/io, are printed per read. Random reads are capped at 20,000 per
method (each one waits for the disk), and recmap's scan asks the kernel to
read ahead of it (`advise(WillNeed)` of the next MiBs, a MiB ahead; the
store keeps the default Random access pattern).

With --sweep SIZES (e.g. 1M,4M,16M,64M,256M: integers or K/M/G suffixes,
binary, strictly increasing), ONE store is grown from size to size (append,
commit; never rebuilt) and at each size the random reads above are timed
(warm, or cold with --cold; no scans). It prints one row per size (records,
file size, ns/op per method) and --svg FILE writes a line chart (x = records,
y = ns/op, both log scale). Progress goes to stderr. The largest size needs
about records x record size of disk (256M x 64 bytes = 16 GiB); free space
is not checked up front (the CLI has no portable free-space call): a full
disk stops the sweep with the store's NoSpace error and the scratch
directory is removed.

Examples:
  recmap bench
  recmap bench --sweep 1M,4M,16M,64M --reads 1000000 --dir /var/tmp --svg get-vs-size.svg
  recmap bench --cold --records 16000000
  recmap bench --records 5000000 --record-size 32 --reads 2000000 --svg bench.svg";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records in the scratch store (an integer, or with K, M or G: 16M).
    #[arg(long, conflicts_with = "sweep", default_value_t = 1_000_000, value_parser = sweep::parse_count)]
    pub records: u64,
    /// Bytes per record (at least 8).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=(16 << 20)))]
    pub record_size: u32,
    /// Random reads per method (an integer, or with K, M or G).
    #[arg(long, value_name = "M", default_value_t = 1_000_000, value_parser = sweep::parse_count)]
    pub reads: u64,
    /// Directory for the scratch store (default: the system temp directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write a bar chart of the results as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Drop the file's cached pages before every timed pass (cold reads).
    #[arg(long)]
    pub cold: bool,
    /// Grow one store through these sizes (e.g. 1M,4M,16M) and time random reads at each.
    #[arg(long, value_name = "SIZES", value_parser = sweep::parse_sizes)]
    pub sweep: Option<sweep::Sizes>,
}

/// Why `--cold` is refused off Linux.
pub(crate) const NO_COLD: &str = "--cold drops the file's cached pages (posix_fadvise DONTNEED) and confirms it (mincore), which recmap does on Linux only: here the timed passes would read a warm cache";

/// `--cold`: drops the cached pages of the store's first `n` records and
/// confirms with `mincore` that at most 1 % of the file stayed cached
/// (otherwise the pass would not be cold: an error). Returns the bytes
/// left cached.
pub(crate) fn drop_cached(store: &RawStore, n: u64) -> Result<u64, Failure> {
    store.advise(0..n, Advice::DontNeed);
    let left = store
        .cached_bytes(0..n)
        .ok_or_else(|| Failure::usage(NO_COLD))?;
    let size = store.info().file_size;
    if left.saturating_mul(100) > size {
        return Err(Failure::rejected(format!(
            "--cold: {} of the {} file stayed cached after posix_fadvise(DONTNEED) (by mincore): the timed pass would not be cold (a tmpfs keeps its pages: give --dir on a disk)",
            human_bytes(left),
            human_bytes(size)
        )));
    }
    Ok(left)
}

/// Random reads per method with `--cold` at the most: each waits for the disk.
const COLD_READS: u64 = 20_000;

/// Removes the scratch directory on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Row {
    pattern: &'static str,
    method: &'static str,
    ns: f64,
    ratio: f64,
    /// `--cold`: bytes the kernel read per operation (Linux), if known.
    read_per_op: Option<f64>,
}

/// Bytes this process has made the kernel read from storage so far
/// (`/proc/self/io` `read_bytes`); `None` where that is not available.
fn read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Where record `i` is in the file.
#[derive(Clone, Copy)]
struct Geometry {
    data_offset: u64,
    per_group: u64,
    group_bytes: u64,
    rs: u64,
}

impl Geometry {
    #[inline]
    fn offset(&self, i: u64) -> u64 {
        self.data_offset + (i / self.per_group) * self.group_bytes + (i % self.per_group) * self.rs
    }
}

fn id_of(buf: &[u8]) -> u64 {
    u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"))
}

fn io_fail(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::io(path.display(), e)
}

#[cfg(unix)]
fn pread(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(windows)]
fn pread(f: &File, mut buf: &mut [u8], mut off: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, off)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                off += n as u64;
            }
        }
    }
    Ok(())
}

pub fn run(a: Args) -> CliResult {
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("recmap-bench-{}-{nonce}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io_fail(&dir))?;
    let _scratch = Scratch(dir.clone());
    let path = dir.join("bench.rmap");

    if a.cold && !cfg!(target_os = "linux") {
        return Err(Failure::usage(NO_COLD));
    }
    let spec = if a.record_size <= 8 {
        "id:u64".to_string()
    } else {
        format!("id:u64,pad:bytes[{}]", a.record_size - 8)
    };
    let schema = Schema::parse(&spec).map_err(|e| Failure::usage(e.to_string()))?;
    let rs = schema.record_size as usize;
    if let Some(sizes) = &a.sweep {
        let points = sweep::run(&path, &schema, &sizes.0, a.reads, a.cold)?;
        sweep::report(&points, rs, a.reads, a.cold, a.svg.as_deref())?;
        return Ok(EXIT_OK);
    }
    let n = a.records;

    // Write.
    let t0 = Instant::now();
    let mut store = Options::new()
        .create_new(true)
        .initial_capacity(n)
        .open_raw(&path, Some(&schema))?;
    let per_batch = ((4usize << 20) / rs).max(1) as u64;
    let mut buf = vec![0u8; per_batch as usize * rs];
    let mut i = 0u64;
    // Progress on stderr, once a percent, when a write takes a while (a
    // store of many GB takes minutes); the table goes to stdout.
    let mut last_pct = u64::MAX;
    while i < n {
        let k = per_batch.min(n - i);
        for (j, rec) in buf[..k as usize * rs].chunks_exact_mut(rs).enumerate() {
            let id = i + j as u64;
            rec[..8].copy_from_slice(&id.to_le_bytes());
            rec[8..].fill(id as u8);
        }
        store.extend_from_bytes(&buf[..k as usize * rs])?;
        i += k;
        let pct = i * 100 / n;
        if pct != last_pct && t0.elapsed().as_secs() >= 1 {
            last_pct = pct;
            eprint!(
                "\rbench: writing {i} of {n} records ({pct} %, {:.0} s)   ",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    if last_pct != u64::MAX {
        eprintln!("\rbench: {n} records written; committing and timing reads          ");
    }
    store.commit()?;
    drop(store);
    let write_s = t0.elapsed().as_secs_f64();

    let store = RawStore::open_read_only(&path)?;
    let info = store.info();
    // `--cold`: no page of the file cached when a pass starts. The store
    // was closed (its pages are clean), so dropping them loses nothing.
    let cold = a.cold;
    let left = std::cell::Cell::new(0u64);
    let evict = |store: &RawStore| -> Result<(), Failure> {
        if cold {
            left.set(left.get().max(drop_cached(store, n)?));
        }
        Ok(())
    };
    let geo = Geometry {
        data_offset: info.data_offset,
        per_group: info.records_per_page,
        group_bytes: info.pages_per_group * 4096,
        rs: rs as u64,
    };
    let mut rec = vec![0u8; rs];

    // Random indices (xorshift64*), generated up front so no method pays for them.
    let reads = if cold {
        a.reads.min(COLD_READS)
    } else {
        a.reads
    };
    let idx = measure::random_indices(reads, n, measure::SEED);
    let want_random: u64 = idx.iter().fold(0u64, |s, &i| s.wrapping_add(i));
    let want_seq: u64 = (0..n).fold(0u64, |s, i| s.wrapping_add(i));

    // Warm-up: touch every page through the map (and so the page cache).
    if !cold {
        let mut warm = 0u64;
        for i in 0..n {
            warm = warm.wrapping_add(id_of(store.get(i).expect("i < len")));
        }
        black_box(warm);
    }

    let check = |what: &str, got: u64, want: u64| -> Result<(), Failure> {
        if got != want {
            return Err(Failure::usage(format!(
                "bench: {what} read wrong data (id sum {got}, expected {want})"
            )));
        }
        Ok(())
    };
    // (pattern, method, ns per op, bytes read per op)
    let mut results: Vec<(&'static str, &'static str, f64, Option<f64>)> = Vec::new();
    // Bytes read per op from `before` (a `read_bytes()` reading) and `ops`.
    let per_op = |before: Option<u64>, ops: u64| -> Option<f64> {
        Some((read_bytes()?.checked_sub(before?)?) as f64 / ops.max(1) as f64)
    };

    // recmap: random, sequential.
    let mut sum = 0u64;
    let before = read_bytes();
    let ns = median_of_passes(&idx, |part| {
        evict(&store)?;
        for &i in part {
            rec.copy_from_slice(store.get(black_box(i)).expect("i < len"));
            sum = sum.wrapping_add(id_of(&rec));
        }
        Ok(())
    })?;
    results.push(("random", "recmap get", ns, per_op(before, reads)));
    check("recmap random", sum, want_random)?;
    // Cold, the scan asks for the next MiBs a MiB ahead (`advise`), as
    // `Store::iter` does under the Random pattern: measured faster than the
    // Sequential pattern's read-ahead on this machine (docs/benchmarks.md).
    let window = ((1u64 << 20) / geo.group_bytes).max(1) * geo.per_group;
    evict(&store)?;
    let before = read_bytes();
    let t = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        if cold && i % window == 0 {
            store.advise(i + window..i + 5 * window, Advice::WillNeed);
        }
        rec.copy_from_slice(store.get(black_box(i)).expect("i < len"));
        sum = sum.wrapping_add(id_of(&rec));
    }
    results.push((
        "scan",
        "recmap get",
        measure::ns_per_op(t, n),
        per_op(before, n),
    ));
    check("recmap scan", sum, want_seq)?;

    // pread.
    let file = File::open(&path).map_err(io_fail(&path))?;
    let mut sum = 0u64;
    let before = read_bytes();
    let ns = median_of_passes(&idx, |part| {
        evict(&store)?;
        for &i in part {
            pread(&file, &mut rec, geo.offset(i)).map_err(io_fail(&path))?;
            sum = sum.wrapping_add(id_of(&rec));
        }
        Ok(())
    })?;
    results.push(("random", "pread", ns, per_op(before, reads)));
    check("pread random", sum, want_random)?;
    evict(&store)?;
    let before = read_bytes();
    let t = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        pread(&file, &mut rec, geo.offset(i)).map_err(io_fail(&path))?;
        sum = sum.wrapping_add(id_of(&rec));
    }
    results.push(("scan", "pread", measure::ns_per_op(t, n), per_op(before, n)));
    check("pread scan", sum, want_seq)?;

    // BufReader: seek + read at random; in order, reading on and skipping page padding.
    let mut r = BufReader::new(File::open(&path).map_err(io_fail(&path))?);
    let mut sum = 0u64;
    let before = read_bytes();
    let ns = median_of_passes(&idx, |part| {
        evict(&store)?;
        for &i in part {
            r.seek(SeekFrom::Start(geo.offset(i)))
                .map_err(io_fail(&path))?;
            r.read_exact(&mut rec).map_err(io_fail(&path))?;
            sum = sum.wrapping_add(id_of(&rec));
        }
        Ok(())
    })?;
    results.push(("random", "BufReader seek+read", ns, per_op(before, reads)));
    check("BufReader random", sum, want_random)?;
    evict(&store)?;
    let before = read_bytes();
    let t = Instant::now();
    let mut sum = 0u64;
    r.seek(SeekFrom::Start(geo.offset(0)))
        .map_err(io_fail(&path))?;
    let mut pos = geo.offset(0);
    for i in 0..n {
        let off = geo.offset(i);
        if off != pos {
            r.seek_relative((off - pos) as i64)
                .map_err(io_fail(&path))?;
        }
        r.read_exact(&mut rec).map_err(io_fail(&path))?;
        pos = off + rs as u64;
        sum = sum.wrapping_add(id_of(&rec));
    }
    results.push((
        "scan",
        "BufReader read",
        measure::ns_per_op(t, n),
        per_op(before, n),
    ));
    check("BufReader scan", sum, want_seq)?;

    results.sort_by_key(|r| r.0 != "random"); // random first, then scans
    let base_of = |pattern: &str| {
        results
            .iter()
            .find(|r| r.0 == pattern && r.1 == "recmap get")
            .map_or(1.0, |r| r.2)
    };
    let rows: Vec<Row> = results
        .iter()
        .map(|&(pattern, method, ns, read)| Row {
            pattern,
            method,
            ns,
            ratio: ns / base_of(pattern).max(1e-9),
            read_per_op: read.filter(|_| cold),
        })
        .collect();

    let mut out = String::new();
    out.push_str(&format!(
        "recmap bench: {n} records of {rs} bytes ({} file, {} per page), {} random reads, {} page cache\n",
        human_bytes(info.file_size),
        if info.pages_per_group == 1 { format!("{}", info.records_per_page) } else { format!("1 per {} pages", info.pages_per_group) },
        reads,
        if cold {
            format!(
                "cold (dropped before every pass; at most {} left cached, by mincore)",
                human_bytes(left.get())
            )
        } else {
            "warm".to_string()
        }
    ));
    out.push_str(&format!(
        "write: {:.1} ns/record, {:.0} MB/s (extend_from_bytes + commit)\n\n",
        write_s * 1e9 / n as f64,
        (n * rs as u64) as f64 / 1e6 / write_s.max(1e-9)
    ));
    out.push_str(&format!(
        "{:<8} {:<22} {:>10} {:>11}{}\n",
        "access",
        "method",
        "ns/op",
        "vs recmap",
        if cold { "   KiB read/op" } else { "" }
    ));
    for r in &rows {
        let read = match (cold, r.read_per_op) {
            (false, _) => String::new(),
            (true, Some(b)) => format!(" {:>13.2}", b / 1024.0),
            (true, None) => format!(" {:>13}", "?"),
        };
        out.push_str(&format!(
            "{:<8} {:<22} {:>10.1} {:>10.2}x{read}\n",
            r.pattern, r.method, r.ns, r.ratio
        ));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    if let Some(svg) = &a.svg {
        let cache = if cold { "cold" } else { "warm" };
        let title = format!(
            "recmap bench: {n} records of {rs} bytes, {cache} cache (ns per record read, lower is better)"
        );
        std::fs::write(svg, svg_chart(&title, &rows)).map_err(io_fail(svg))?;
        eprintln!("wrote {}", svg.display());
    }
    Ok(EXIT_OK)
}

/// Random reads are timed in up to [`PASSES`] consecutive parts of the index
/// sequence; the figure is the median part's ns per read, so a burst of load
/// from other processes during one part does not skew it.
const PASSES: usize = 5;

fn median_of_passes(
    idx: &[u64],
    mut pass: impl FnMut(&[u64]) -> Result<(), Failure>,
) -> Result<f64, Failure> {
    let per = idx.len().div_ceil(PASSES).max(1);
    let mut ns = Vec::with_capacity(PASSES);
    for part in idx.chunks(per) {
        let t = Instant::now();
        pass(part)?;
        ns.push(measure::ns_per_op(t, part.len() as u64));
    }
    Ok(measure::median(&mut ns))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart, one bar per row, scaled to the slowest.
fn svg_chart(title: &str, rows: &[Row]) -> String {
    let (label_w, bar_w, bar_h, gap, top) = (260.0, 520.0, 24.0, 10.0, 50.0);
    let width = label_w + bar_w + 170.0;
    let height = top + rows.len() as f64 * (bar_h + gap) + 20.0;
    let max = rows.iter().map(|r| r.ns).fold(1e-9, f64::max);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"25\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        xml_escape(title)
    );
    for (k, r) in rows.iter().enumerate() {
        let y = top + k as f64 * (bar_h + gap);
        let w = (r.ns / max * bar_w).max(1.0);
        let color = if r.method.starts_with("recmap") {
            "#2a7ab0"
        } else {
            "#b0b0b0"
        };
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{color}\"/>\n\
             <text x=\"{:.1}\" y=\"{}\">{:.1} ns ({:.2}x)</text>\n",
            label_w - 8.0,
            y + bar_h * 0.7,
            xml_escape(&format!("{}: {}", r.pattern, r.method)),
            label_w + w + 6.0,
            y + bar_h * 0.7,
            r.ns,
            r.ratio
        ));
    }
    s.push_str("</svg>\n");
    s
}
