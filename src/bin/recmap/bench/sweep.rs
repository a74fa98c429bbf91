//! `recmap bench --sweep SIZES`: one scratch store grown from size to size
//! (append + commit, never rebuilt), with random-read ns/op per method timed
//! at each size; prints a table and optionally writes a hand-made SVG line
//! chart (x = records on a log scale, y = ns/op, one line per method).
//!
//! Invariants: the sizes are strictly increasing and at least 1 (checked by
//! [`parse_sizes`] before anything is written); every timed pass sums the ids
//! it read and the sum is checked, so every method does the same work.

use super::{id_of, io_fail, median_of_passes, pread, xml_escape, Geometry, COLD_READS};
use crate::common::{human_bytes, Failure};
use crate::measure;
use recmap::{Options, RawStore, Schema};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

/// The methods timed at each size, in table and chart order.
const METHODS: [&str; 3] = ["recmap get", "pread", "BufReader seek+read"];
/// Line colours, one per method.
const COLORS: [&str; 3] = ["#2a7ab0", "#d0702a", "#7a7a7a"];

/// One size's results: records, file size, ns/op per method (METHODS order).
pub struct Point {
    pub records: u64,
    pub file_size: u64,
    pub ns: [f64; 3],
}

/// The `--sweep` sizes: strictly increasing, each at least 1, never empty.
#[derive(Clone, Debug)]
pub struct Sizes(pub Vec<u64>);

/// Parses one count of at least 1: a plain integer or one with a K/M/G
/// suffix (binary: K = 2^10, M = 2^20, G = 2^30, so `256M` records of 64
/// bytes are 16 GiB). `--records` and `--reads` take it too.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let p = s.trim();
    let (digits, mul) = match p.char_indices().last() {
        Some((k, 'k' | 'K')) => (&p[..k], 1u64 << 10),
        Some((k, 'm' | 'M')) => (&p[..k], 1u64 << 20),
        Some((k, 'g' | 'G')) => (&p[..k], 1u64 << 30),
        _ => (p, 1),
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(mul))
        .ok_or_else(|| format!("'{p}' is not a count (an integer, optionally with K, M or G)"))?;
    if n < 1 {
        return Err(format!("'{p}': a count must be at least 1"));
    }
    Ok(n)
}

/// Parses `1M,4M,16M`: counts as [`parse_count`] reads them, strictly
/// increasing.
pub fn parse_sizes(s: &str) -> Result<Sizes, String> {
    let mut out: Vec<u64> = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        let n = parse_count(p)?;
        if let Some(&prev) = out.last() {
            if n <= prev {
                return Err(format!(
                    "'{p}' ({n}) is not larger than the size before it ({prev}): sizes must increase"
                ));
            }
        }
        out.push(n);
    }
    Ok(Sizes(out))
}

/// Fills `buf` with records `first..` (id, then the id's low byte as pad).
fn fill(buf: &mut [u8], rs: usize, first: u64) {
    for (j, rec) in buf.chunks_exact_mut(rs).enumerate() {
        let id = first + j as u64;
        rec[..8].copy_from_slice(&id.to_le_bytes());
        rec[8..].fill(id as u8);
    }
}

pub fn run(
    path: &Path,
    schema: &Schema,
    sizes: &[u64],
    reads: u64,
    cold: bool,
) -> Result<Vec<Point>, Failure> {
    let rs = schema.record_size as usize;
    let total = *sizes.last().expect("parse_sizes gives at least one size");
    let mut store = Options::new()
        .create_new(true)
        .initial_capacity(sizes[0])
        .open_raw(path, Some(schema))?;
    let per_batch = ((4usize << 20) / rs).max(1) as u64;
    let mut buf = vec![0u8; per_batch as usize * rs];
    let reads = if cold { reads.min(COLD_READS) } else { reads };
    let mut rec = vec![0u8; rs];
    let mut points = Vec::new();
    let t_all = Instant::now();
    let mut last_pct = u64::MAX;
    for &n in sizes {
        // Grow: append up to n, commit.
        let mut i = store.len();
        while i < n {
            let k = per_batch.min(n - i);
            fill(&mut buf[..k as usize * rs], rs, i);
            store.extend_from_bytes(&buf[..k as usize * rs])?;
            i += k;
            let pct = i * 100 / total;
            if pct != last_pct {
                last_pct = pct;
                eprint!(
                    "\rbench: writing {i} of {total} records ({pct} %, {:.0} s)   ",
                    t_all.elapsed().as_secs_f64()
                );
            }
        }
        store.commit()?;
        eprint!(
            "\rbench: {n} records written and committed; timing reads ({:.0} s)        ",
            t_all.elapsed().as_secs_f64()
        );
        let info = store.info();
        let geo = Geometry {
            data_offset: info.data_offset,
            per_group: info.records_per_page,
            group_bytes: info.pages_per_group * 4096,
            rs: rs as u64,
        };
        // Committed, so the pages are clean and dropping them loses nothing.
        let evict = |store: &RawStore| -> Result<(), Failure> {
            if cold {
                super::drop_cached(store, n)?;
            }
            Ok(())
        };
        if !cold {
            let mut warm = 0u64;
            for i in 0..n {
                warm = warm.wrapping_add(id_of(store.get(i).expect("i < len")));
            }
            black_box(warm);
        }
        let idx = measure::random_indices(reads, n, measure::SEED ^ n);
        let want: u64 = idx.iter().fold(0u64, |s, &i| s.wrapping_add(i));
        let check = |what: &str, got: u64| -> Result<(), Failure> {
            if got != want {
                return Err(Failure::usage(format!(
                    "bench: {what} at {n} records read wrong data (id sum {got}, expected {want})"
                )));
            }
            Ok(())
        };

        let mut sum = 0u64;
        let get_ns = median_of_passes(&idx, |part| {
            evict(&store)?;
            for &i in part {
                rec.copy_from_slice(store.get(black_box(i)).expect("i < len"));
                sum = sum.wrapping_add(id_of(&rec));
            }
            Ok(())
        })?;
        check("recmap get", sum)?;

        let file = File::open(path).map_err(io_fail(path))?;
        let mut sum = 0u64;
        let pread_ns = median_of_passes(&idx, |part| {
            evict(&store)?;
            for &i in part {
                pread(&file, &mut rec, geo.offset(i)).map_err(io_fail(path))?;
                sum = sum.wrapping_add(id_of(&rec));
            }
            Ok(())
        })?;
        check("pread", sum)?;

        let mut r = BufReader::new(file);
        let mut sum = 0u64;
        let buf_ns = median_of_passes(&idx, |part| {
            evict(&store)?;
            for &i in part {
                r.seek(SeekFrom::Start(geo.offset(i)))
                    .map_err(io_fail(path))?;
                r.read_exact(&mut rec).map_err(io_fail(path))?;
                sum = sum.wrapping_add(id_of(&rec));
            }
            Ok(())
        })?;
        check("BufReader", sum)?;
        points.push(Point {
            records: n,
            file_size: info.file_size,
            ns: [get_ns, pread_ns, buf_ns],
        });
    }
    eprintln!(
        "\rbench: sweep done in {:.0} s                                        ",
        t_all.elapsed().as_secs_f64()
    );
    Ok(points)
}

/// The table: one row per size.
pub fn table(points: &[Point], rs: usize, reads: u64, cold: bool) -> String {
    let mut out = format!(
        "recmap bench --sweep: records of {rs} bytes, {reads} random reads per method and size, {} page cache\n\n",
        if cold { "cold (dropped before every pass)" } else { "warm" }
    );
    out.push_str(&format!("{:>12} {:>10}", "records", "file"));
    for m in METHODS {
        out.push_str(&format!(" {:>20}", format!("{m} ns/op")));
    }
    out.push_str(&format!(" {:>10}\n", "pread/get"));
    for p in points {
        out.push_str(&format!(
            "{:>12} {:>10}",
            p.records,
            human_bytes(p.file_size)
        ));
        for ns in p.ns {
            out.push_str(&format!(" {ns:>20.1}"));
        }
        out.push_str(&format!(" {:>9.2}x\n", p.ns[1] / p.ns[0].max(1e-9)));
    }
    out
}

/// A line chart: x = records (log scale), y = ns/op (log scale), one
/// polyline per method, labelled axes and a legend.
pub fn svg(title: &str, points: &[Point]) -> String {
    let (left, right, top, bottom) = (80.0, 200.0, 50.0, 60.0);
    let (pw, ph) = (600.0, 360.0);
    let (width, height) = (left + pw + right, top + ph + bottom);
    let lx = |r: u64| (r.max(1) as f64).log10();
    let (x0, x1) = (
        lx(points.first().map_or(1, |p| p.records)),
        lx(points.last().map_or(1, |p| p.records)),
    );
    let xspan = if x1 > x0 { x1 - x0 } else { 1.0 };
    // y: log scale over whole decades, so a 50 ns line and a 100 µs line
    // both show their growth.
    let (lo, hi) = points
        .iter()
        .flat_map(|p| p.ns)
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, 1e-9_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (d0, d1) = if lo > hi {
        (0, 1)
    } else {
        let d0 = lo.log10().floor() as i32;
        (d0, (hi.log10().ceil() as i32).max(d0 + 1))
    };
    let px = |r: u64| left + (lx(r) - x0) / xspan * pw;
    let py = |ns: f64| {
        let v = ns.max(10f64.powi(d0)).log10();
        top + ph - (v - d0 as f64) / (d1 - d0) as f64 * ph
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"25\" font-size=\"14\" font-weight=\"bold\">{}</text>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        xml_escape(title),
        top + ph,
        left + pw,
        top + ph,
        top + ph
    );
    // y ticks: every decade labelled, 2x and 5x as light grid lines.
    for d in d0..=d1 {
        for (m, label) in [(1.0, true), (2.0, false), (5.0, false)] {
            let v = m * 10f64.powi(d);
            if d == d1 && m > 1.0 {
                break;
            }
            let y = py(v);
            s.push_str(&format!(
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"{}\"/>\n",
                left + pw,
                if label { "#c8c8c8" } else { "#ececec" }
            ));
            if label {
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                    left - 6.0,
                    y + 4.0,
                    short_ns(v)
                ));
            }
        }
    }
    // x ticks: one per measured size.
    for p in points {
        let x = px(p.records);
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"black\"/>\n\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            top + ph,
            top + ph + 5.0,
            top + ph + 18.0,
            short_count(p.records)
        ));
    }
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">records in the store (log scale)</text>\n\
         <text x=\"20\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {})\">ns per random get (log scale, lower is better)</text>\n",
        left + pw / 2.0,
        top + ph + 45.0,
        top + ph / 2.0,
        top + ph / 2.0
    ));
    for (m, (name, color)) in METHODS.iter().zip(COLORS).enumerate() {
        let pts: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.records), py(p.ns[m])))
            .collect();
        let ly = top + 20.0 + m as f64 * 20.0;
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/>\n\
             <text x=\"{}\" y=\"{}\">{}</text>\n",
            pts.join(" "),
            left + pw + 15.0,
            left + pw + 40.0,
            left + pw + 46.0,
            ly + 4.0,
            xml_escape(name)
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// A decade of nanoseconds as a label: `100 ns`, `10 µs`, `1 ms`.
fn short_ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{} µs", v / 1e3)
    } else {
        format!("{v} ns")
    }
}

/// `1048576` as `1M`, `1000` as `1000`: exact K/M/G multiples get a suffix.
fn short_count(n: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", n >> shift);
        }
    }
    n.to_string()
}

/// Writes the table to stdout and the chart to `svg_path` if given.
pub fn report(
    points: &[Point],
    rs: usize,
    reads: u64,
    cold: bool,
    svg_path: Option<&Path>,
) -> Result<(), Failure> {
    let reads = if cold { reads.min(COLD_READS) } else { reads };
    let out = table(points, rs, reads, cold);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    if let Some(p) = svg_path {
        let cache = if cold { "cold" } else { "warm" };
        let title = format!("recmap bench --sweep: random get of {rs}-byte records, {cache} cache");
        std::fs::write(p, svg(&title, points)).map_err(io_fail(p))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}
