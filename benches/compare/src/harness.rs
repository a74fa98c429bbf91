//! The measuring harness every system runs through: the record type and the
//! data, the settings, the probe, the loops that time each workload (load,
//! random get, scan, durable update, durable append) and the results table.
//!
//! A system module calls [`Cx::load`], [`Cx::get`], [`Cx::scan`] and
//! [`Cx::commits`] with closures doing its own work; the harness decides how
//! often they run, checks the sums they return and records the figures.

use crate::measure::{self, DeviceWrites};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

recmap::record! {
    /// 64 bytes: `a` is the record's index (its key), `b`…`h` are derived
    /// from it. Updates change `c` only, so sums over `a` and `h` stay
    /// checkable after them.
    pub struct Rec {
        pub a: u64,
        pub b: u64,
        pub c: u64,
        pub d: u64,
        pub e: u64,
        pub f: u64,
        pub g: u64,
        pub h: u64,
    }
}

pub const REC: usize = std::mem::size_of::<Rec>();
const _: () = assert!(REC == 64);

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Rec {
    /// The record stored at index `i` by every load.
    pub fn new(i: u64) -> Rec {
        let s = splitmix(i);
        Rec {
            a: i,
            b: s,
            c: s.rotate_left(8),
            d: s.rotate_left(16),
            e: s.rotate_left(24),
            f: s.rotate_left(32),
            g: s.rotate_left(40),
            h: s ^ i,
        }
    }

    /// Record `i` as written by update number `k`: only `c` changes.
    pub fn updated(i: u64, k: u64) -> Rec {
        Rec {
            c: k,
            ..Rec::new(i)
        }
    }

    /// What a get adds to its sum: the first and the last word, so the
    /// whole 64-byte record (one cache line) is read.
    #[inline(always)]
    pub fn get_value(&self) -> u64 {
        self.a.wrapping_add(self.h)
    }
}

/// Which workloads run (a system's load always runs, since the others need
/// its data; it is only reported when selected).
#[derive(Clone, Copy, Debug)]
pub struct Workloads {
    pub load: bool,
    pub get: bool,
    pub scan: bool,
    pub update: bool,
    pub update100: bool,
    pub append: bool,
}

impl Workloads {
    pub const NAMES: [&'static str; 6] = ["load", "get", "scan", "update", "update100", "append"];

    pub fn parse(names: &[String]) -> std::result::Result<Workloads, String> {
        let mut w = Workloads {
            load: false,
            get: false,
            scan: false,
            update: false,
            update100: false,
            append: false,
        };
        for n in names {
            match n.as_str() {
                "load" => w.load = true,
                "get" => w.get = true,
                "scan" => w.scan = true,
                "update" => w.update = true,
                "update100" => w.update100 = true,
                "append" => w.append = true,
                _ => {
                    return Err(format!(
                        "--workloads: unknown workload {n:?} (known: {})",
                        Self::NAMES.join(",")
                    ))
                }
            }
        }
        Ok(w)
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub records: u64,
    pub dir: PathBuf,
    pub only: Option<Vec<String>>,
    pub workloads: Workloads,
    pub lookups: u64,
    pub slow_lookups: u64,
    pub passes: usize,
    pub scan_passes: usize,
    /// Pairs of a paired scan (`Cx::scan_vs`).
    pub scan_pairs: usize,
    /// Paired bulk loads of recmap against a raw write (`--load-pairs`).
    pub load_pairs: usize,
    /// The cold section (`--cold`).
    pub cold: bool,
    /// Records per `Snapshot::read_range` call of recmap's snapshot scan.
    pub snapshot_chunk: usize,
    pub load_runs: usize,
    pub commits: u64,
    pub commit_seconds: f64,
    pub bytes_ops: u64,
    pub keep: bool,
    /// How a random-get loop consumes each record.
    pub get_mode: GetMode,
    /// Get passes of the syscall/database systems (`passes` is for the in-memory ones).
    pub slow_passes: usize,
    /// update100 commits per system (each updating 100 records on 100 pages).
    pub commits100: u64,
    /// update100 operations in the separate device-bytes loop.
    pub bytes_ops100: u64,
    pub probe_fill: ProbeFill,
    pub probe_offset: ProbeOffset,
    pub probe_order: ProbeOrder,
}

/// How a random-get loop uses each record it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetMode {
    /// Fold `Rec::get_value` of every record into a checksum that is
    /// compared with the expected sum after the pass (the default): no
    /// per-get optimisation barrier, and nothing can be elided.
    Fold,
    /// The earlier default: every index and every record reference passes
    /// through `std::hint::black_box` (an optimisation barrier per get).
    BlackBox,
}

/// How the probe file is preallocated before the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeFill {
    /// Zeros written in 4 KiB `pwrite`s, then `fsync` (the default): the
    /// blocks are allocated and written (no unwritten extents), and the page
    /// cache holds the file in 4 KiB folios.
    Zeros4k,
    /// Bytes written in 2 MiB `pwrite`s (the suite's earlier probe): the
    /// page cache holds the file in folios of up to 2 MiB, and a 64-byte
    /// write-back of such a folio costs more (see README).
    Zeros2m,
    /// `fallocate(2)` only: unwritten extents, so each probe's `fdatasync`
    /// converts one and commits the journal.
    Fallocate,
}

/// Where each probe writes its 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOffset {
    /// A random 64-byte slot of the 64 MiB file (the default).
    Random,
    /// Always the first 64 bytes.
    Fixed,
}

/// Where the probe runs relative to the operation it is paired with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOrder {
    /// Right after each operation (the default).
    After,
    /// Alternately after and before (the suite's earlier pairing:
    /// op P P op op P P op …).
    Alternate,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            records: 1_000_000,
            dir: PathBuf::from("/var/tmp"),
            only: None,
            workloads: Workloads {
                load: true,
                get: true,
                scan: true,
                update: true,
                update100: true,
                append: true,
            },
            lookups: 1_000_000,
            slow_lookups: 200_000,
            passes: 21,
            scan_passes: 3,
            scan_pairs: 11,
            load_pairs: 6,
            cold: false,
            snapshot_chunk: 4096,
            load_runs: 3,
            commits: 10_000,
            commit_seconds: 15.0,
            bytes_ops: 1_000,
            keep: false,
            get_mode: GetMode::Fold,
            slow_passes: 5,
            commits100: 1_000,
            bytes_ops100: 100,
            probe_fill: ProbeFill::Zeros4k,
            probe_offset: ProbeOffset::Random,
            probe_order: ProbeOrder::After,
        }
    }
}

/// A column of the results table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Col {
    Load,
    Get,
    Scan,
    UpdateP50,
    UpdateP99,
    UpdateBytes,
    UpdateBytesCk,
    Update100P50,
    Update100P99,
    Update100Bytes,
    Update100BytesCk,
    AppendP50,
    AppendP99,
    AppendBytes,
    AppendBytesCk,
}

impl Col {
    pub fn title(self) -> &'static str {
        match self {
            Col::Load => "bulk load (durable)",
            Col::Get => "random get",
            Col::Scan => "scan",
            Col::UpdateP50 => "update+commit p50",
            Col::UpdateP99 => "update+commit p99",
            Col::UpdateBytes => "update: bytes/commit during the commits",
            Col::UpdateBytesCk => "update: bytes/commit incl. checkpoint",
            Col::Update100P50 => "update100+commit p50",
            Col::Update100P99 => "update100+commit p99",
            Col::Update100Bytes => "update100: bytes/commit during the commits",
            Col::Update100BytesCk => "update100: bytes/commit incl. checkpoint",
            Col::AppendP50 => "append+commit p50",
            Col::AppendP99 => "append+commit p99",
            Col::AppendBytes => "append: bytes/commit during the commits",
            Col::AppendBytesCk => "append: bytes/commit incl. checkpoint",
        }
    }
}

/// What a figure is, for formatting.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    MBps,
    Ns,
    GBps,
    Bytes,
}

#[derive(Clone, Debug)]
pub struct Cell {
    pub value: f64,
    pub unit: Unit,
    /// Printed after the ratio, inside the parentheses.
    pub extra: Option<String>,
}

/// Rows in insertion order, each a map from column to cell.
#[derive(Default, Debug)]
pub struct Table {
    rows: Vec<(String, HashMap<Col, Cell>)>,
}

/// The row every ratio is relative to.
pub const BASE_ROW: &str = "recmap";

impl Table {
    pub fn row(&mut self, name: &str) {
        if !self.rows.iter().any(|r| r.0 == name) {
            self.rows.push((name.to_string(), HashMap::new()));
        }
    }

    pub fn set(&mut self, row: &str, col: Col, cell: Cell) {
        self.row(row);
        let r = self.rows.iter_mut().find(|r| r.0 == row).expect("row");
        r.1.insert(col, cell);
    }

    pub fn get(&self, row: &str, col: Col) -> Option<&Cell> {
        self.rows.iter().find(|r| r.0 == row)?.1.get(&col)
    }

    pub fn render(&self, cols: &[Col]) -> String {
        let mut s = String::from("| system |");
        for c in cols {
            s.push_str(&format!(" {} |", c.title()));
        }
        s.push_str("\n|---|");
        for _ in cols {
            s.push_str("---:|");
        }
        s.push('\n');
        // The probe's row last.
        let mut rows: Vec<_> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.0 == PROBE_ROW || r.0 == REF_ROW);
        for (name, cells) in rows {
            s.push_str(&format!("| {name} |"));
            for &c in cols {
                let text = match cells.get(&c) {
                    None => "—".to_string(),
                    Some(cell) => {
                        let mut t = fmt_value(cell.value, cell.unit);
                        let base = self.get(BASE_ROW, c).map(|b| b.value);
                        let mut inner = Vec::new();
                        if let Some(b) = base.filter(|b| *b > 0.0) {
                            inner.push(format!("{}×", fmt_ratio(cell.value / b)));
                        }
                        if let Some(x) = &cell.extra {
                            inner.push(x.clone());
                        }
                        if !inner.is_empty() {
                            t.push_str(&format!(" ({})", inner.join("; ")));
                        }
                        t
                    }
                };
                s.push_str(&format!(" {text} |"));
            }
            s.push('\n');
        }
        s
    }
}

pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else if r >= 0.1 || r <= 0.0 || !r.is_finite() {
        format!("{r:.2}")
    } else {
        // Two significant digits.
        let digits = (1.0 - r.log10().floor()) as usize;
        format!("{r:.digits$}")
    }
}

pub fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::MBps => format!("{v:.0} MB/s"),
        Unit::GBps => format!("{v:.2} GB/s"),
        Unit::Ns => {
            if v < 10.0 {
                format!("{v:.1} ns")
            } else if v < 10_000.0 {
                format!("{v:.0} ns")
            } else if v < 10_000_000.0 {
                format!("{:.0} µs", v / 1e3)
            } else {
                format!("{:.1} ms", v / 1e6)
            }
        }
        Unit::Bytes => {
            if v < 1024.0 {
                format!("{v:.0} B")
            } else if v < 1024.0 * 1024.0 {
                format!("{:.1} KiB", v / 1024.0)
            } else {
                format!("{:.2} MiB", v / 1024.0 / 1024.0)
            }
        }
    }
}

/// Update or append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    Update,
    /// One commit of 100 updates on 100 distinct random pages.
    Update100,
    Append,
}

impl Commit {
    fn name(self) -> &'static str {
        match self {
            Commit::Update => "update",
            Commit::Update100 => "update100",
            Commit::Append => "append",
        }
    }
    /// p50, p99, bytes during the commits, bytes including the checkpoint.
    fn cols(self) -> (Col, Col, Col, Col) {
        match self {
            Commit::Update => (
                Col::UpdateP50,
                Col::UpdateP99,
                Col::UpdateBytes,
                Col::UpdateBytesCk,
            ),
            Commit::Update100 => (
                Col::Update100P50,
                Col::Update100P99,
                Col::Update100Bytes,
                Col::Update100BytesCk,
            ),
            Commit::Append => (
                Col::AppendP50,
                Col::AppendP99,
                Col::AppendBytes,
                Col::AppendBytesCk,
            ),
        }
    }
}

/// The yardstick for durable writes: one 64-byte `pwrite` into a separate
/// 64 MiB file, then `fdatasync`, taken right after every commit of every
/// system. By default the file is preallocated by writing zeros in 4 KiB
/// writes (allocated, written blocks held in 4 KiB page-cache folios) and
/// each probe writes a random 64-byte slot; `--probe-fill` and
/// `--probe-offset` select the variants the README measures.
pub struct Probe {
    file: File,
    path: PathBuf,
    slots: u64,
    offset: ProbeOffset,
    k: u64,
    /// Every paired probe latency, per workload.
    samples: HashMap<&'static str, Vec<f64>>,
    /// Device bytes per probe, from a probe-only loop, per workload.
    bytes: HashMap<&'static str, Option<DevBytes>>,
    /// Rss / FilePmdMapped of the probe file read through a mapping once.
    pub state: Option<String>,
}

pub const PROBE_ROW: &str = "probe: pwrite 64 B + fdatasync";

impl Probe {
    fn new(path: &Path, fill: ProbeFill, offset: ProbeOffset) -> Result<Probe> {
        let slots: u64 = 1 << 20; // 64 MiB
        let len = slots * REC as u64;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        match fill {
            ProbeFill::Zeros4k | ProbeFill::Zeros2m => {
                let chunk = vec![
                    0u8;
                    if fill == ProbeFill::Zeros4k {
                        4096
                    } else {
                        2 << 20
                    }
                ];
                let mut off = 0;
                while off < len {
                    file.write_all_at(&chunk, off)?;
                    off += chunk.len() as u64;
                }
            }
            ProbeFill::Fallocate => {
                use std::os::fd::AsRawFd;
                // SAFETY: fallocate reads only its integer arguments; the fd is valid.
                let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
                if rc != 0 {
                    return Err(
                        format!("probe: fallocate: {}", std::io::Error::last_os_error()).into(),
                    );
                }
            }
        }
        file.sync_all()?;
        // SAFETY: the probe file is private to this process and not truncated while mapped.
        let state = unsafe { memmap2::Mmap::map(&file) }.ok().and_then(|m| {
            let touched = m
                .chunks(4096)
                .fold(0u64, |a, p| a.wrapping_add(p[0] as u64));
            std::hint::black_box(touched);
            mapping_state(m.as_ptr())
        });
        Ok(Probe {
            file,
            path: path.to_path_buf(),
            slots,
            offset,
            k: 0,
            samples: HashMap::new(),
            bytes: HashMap::new(),
            state,
        })
    }

    /// One probe: returns its latency in ns.
    pub fn once(&mut self) -> Result<f64> {
        self.k += 1;
        let slot = match self.offset {
            ProbeOffset::Random => measure::Xorshift64Star::new(self.k).below(self.slots),
            ProbeOffset::Fixed => 0,
        };
        let rec = Rec::updated(slot, self.k);
        let t = Instant::now();
        self.file
            .write_all_at(bytemuck::bytes_of(&rec), slot * REC as u64)?;
        self.file.sync_data()?;
        Ok(t.elapsed().as_nanos() as f64)
    }
}

/// The read baseline every get pass is paired with: a plain file of the
/// records written with `write` in 2 MiB chunks and `fdatasync`ed, mapped
/// read-only (`memmap2::Mmap`) and indexed as a `&[Rec]`.
pub struct Reference {
    _file: File,
    map: memmap2::Mmap,
    samples: Vec<f64>,
}

pub const REF_ROW: &str = "reference: memmap2 Mmap (read-only) of a write()-loaded file";

impl Reference {
    fn new(path: &Path, data: &[Rec]) -> Result<Reference> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        for chunk in bytemuck::cast_slice::<Rec, u8>(data).chunks(2 << 20) {
            std::io::Write::write_all(&mut f, chunk)?;
        }
        f.sync_data()?;
        // SAFETY: the file is private to this process and never written or truncated again.
        let map = unsafe { memmap2::Mmap::map(&f)? };
        let recs: &[Rec] = bytemuck::cast_slice(&map);
        std::hint::black_box(recs.iter().fold(0u64, |a, r| a.wrapping_add(r.a)));
        Ok(Reference {
            _file: f,
            map,
            samples: Vec::new(),
        })
    }

    fn pass(&self, mode: GetMode, idx: &[u64]) -> u64 {
        let recs: &[Rec] = bytemuck::cast_slice(&self.map);
        get_loop(mode, idx, |i| &recs[i as usize])
    }
}

/// One paired comparison for the second table: a system's median against
/// the median of the yardstick runs paired with it, and the median of the
/// per-pair ratios.
#[derive(Clone, Debug)]
pub struct Paired {
    pub row: String,
    pub workload: &'static str,
    /// What the yardstick was: `ref` (get reference), `probe`, or the
    /// scan it was paired with.
    pub yard_name: String,
    pub unit: Unit,
    pub sys: f64,
    pub yard: f64,
    pub pair_ratio: f64,
    pub pairs: usize,
    /// update100 only: its median over the same row's single-update median,
    /// and the same for the probe-normalised (median pair ratio) figures.
    pub vs_update: Option<(f64, f64)>,
}

/// `Rss` and `FilePmdMapped` (file pages mapped with 2 MiB page-table
/// entries) of the mapping holding `ptr`, from `/proc/self/smaps`.
pub fn mapping_state(ptr: *const u8) -> Option<String> {
    let addr = ptr as usize;
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    let (mut rss, mut pmd) = (None, None);
    for l in smaps.lines() {
        let first = l.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                if inside {
                    break;
                }
                inside = a <= addr && addr < b;
                continue;
            }
        }
        if inside {
            let num = || l.split_whitespace().nth(1).map(str::to_string);
            if l.starts_with("Rss:") {
                rss = num();
            } else if l.starts_with("FilePmdMapped:") {
                pmd = num();
            }
        }
    }
    Some(format!(
        "Rss {} kB, FilePmdMapped {} kB",
        rss?,
        pmd.unwrap_or_else(|| "?".into())
    ))
}

/// `Rss` and `FilePmdMapped` of every mapping of the file `path` (matched
/// by device and inode: a store created through a temporary name shows
/// that name), from `/proc/self/smaps`, each as `start address: Rss …,
/// FilePmdMapped …`.
pub fn mappings_of(path: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let want_dev = format!("{major:02x}:{minor:02x}");
    let want_ino = meta.ino().to_string();
    let mut out = Vec::new();
    let mut cur: Option<(String, Option<String>, Option<String>)> = None;
    let flush = |cur: &mut Option<(String, Option<String>, Option<String>)>,
                 out: &mut Vec<String>| {
        if let Some((start, rss, pmd)) = cur.take() {
            out.push(format!(
                "{start}: Rss {} kB, FilePmdMapped {} kB",
                rss.unwrap_or_else(|| "?".into()),
                pmd.unwrap_or_else(|| "?".into())
            ));
        }
    };
    for l in smaps.lines() {
        let first = l.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if usize::from_str_radix(a, 16).is_ok() && usize::from_str_radix(b, 16).is_ok() {
                flush(&mut cur, &mut out);
                let fields: Vec<&str> = l.split_whitespace().collect();
                if fields.len() > 4 && fields[3] == want_dev && fields[4] == want_ino {
                    cur = Some((a.to_string(), None, None));
                }
                continue;
            }
        }
        if let Some(c) = cur.as_mut() {
            let num = || l.split_whitespace().nth(1).map(str::to_string);
            if l.starts_with("Rss:") {
                c.1 = num();
            } else if l.starts_with("FilePmdMapped:") {
                c.2 = num();
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// The run's state: settings, data, the indices, the table, the probe.
pub struct Cx {
    pub s: Settings,
    /// `s.records` records, as every system loads them.
    pub data: Vec<Rec>,
    /// The random get indices (the same for every system; slow systems use a prefix).
    pub get_idx: Vec<u64>,
    /// The random indices of the update workload.
    pub update_idx: Vec<u64>,
    /// Scratch directory of this run (removed at the end unless `--keep`).
    pub dir: PathBuf,
    pub table: Table,
    pub dev: Option<DeviceWrites>,
    probe: Option<Probe>,
    reference: Option<Reference>,
    /// The paired figures (second table), in the order measured.
    pub paired: Vec<Paired>,
    /// Each row's single-update figures (median ns, median pair ratio), for update100.
    update_fig: HashMap<String, (f64, f64)>,
    notes: Vec<String>,
    /// Expected sums of a full get pass over `get_idx[..k]`, per k used.
    want_get: HashMap<usize, u64>,
    want_scan: u64,
    /// Set when loads ran more than once (for the notes).
    load_runs_note: Option<usize>,
    /// Per loaded row: device bytes written during its loads over the
    /// record bytes (median of the runs).
    pub load_bytes: Vec<(String, f64)>,
}

impl Drop for Cx {
    fn drop(&mut self) {
        if !self.s.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Cx {
    pub fn new(s: Settings) -> Result<Cx> {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let dir = s
            .dir
            .join(format!("recmap-compare-{}-{nonce}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let n = s.records;
        eprintln!("generating {n} records and the index sequences");
        let data: Vec<Rec> = (0..n).map(Rec::new).collect();
        let get_idx = measure::random_indices(s.lookups.max(s.slow_lookups), n, measure::SEED);
        let update_idx = measure::random_indices(s.commits.max(1) * 2, n, measure::SEED ^ 0xABCD);
        let want_scan = data.iter().fold(0u64, |acc, r| acc.wrapping_add(r.a));
        let dev = DeviceWrites::for_path(&dir);
        Ok(Cx {
            s,
            data,
            get_idx,
            update_idx,
            dir,
            table: Table::default(),
            dev,
            probe: None,
            reference: None,
            paired: Vec::new(),
            update_fig: HashMap::new(),
            notes: Vec::new(),
            want_get: HashMap::new(),
            want_scan,
            load_runs_note: None,
            load_bytes: Vec::new(),
        })
    }

    pub fn n(&self) -> u64 {
        self.s.records
    }

    pub fn selected(&self, system: &str) -> bool {
        self.s
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == system))
    }

    /// A fresh path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn note(&mut self, s: String) {
        self.notes.push(s);
    }

    pub fn columns(&self) -> Vec<Col> {
        let w = self.s.workloads;
        let mut c = Vec::new();
        if w.load {
            c.push(Col::Load);
        }
        if w.get {
            c.push(Col::Get);
        }
        if w.scan {
            c.push(Col::Scan);
        }
        for (on, kind) in [
            (w.update, Commit::Update),
            (w.update100, Commit::Update100),
            (w.append, Commit::Append),
        ] {
            if on {
                let (a, b, d, e) = kind.cols();
                c.extend([a, b, d, e]);
            }
        }
        c
    }

    /// Bytes per second written to the device while this process writes
    /// nothing, over `secs` (after a `sync`): other processes' share, which
    /// the bytes/commit columns cannot separate out.
    pub fn idle_device_rate(&self, secs: f64) -> Option<f64> {
        let dev = self.dev.as_ref()?;
        sync_all();
        let before = dev.bytes()?;
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let after = dev.bytes()?;
        Some((after - before) as f64 / t.elapsed().as_secs_f64())
    }

    pub fn notes(&mut self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.probe {
            if let Some(st) = &p.state {
                s.push_str(&format!(
                    "- probe file (64 MiB) read through a mapping after its preallocation: {st}\n"
                ));
            }
            for w in ["update", "update100", "append"] {
                if let Some(v) = p.samples.get(w) {
                    s.push_str(&format!(
                        "- probe during {w}: {} paired samples in all\n",
                        v.len()
                    ));
                }
            }
        }
        if let Some(r) = &self.reference {
            s.push_str(&format!(
                "- get reference: {} paired passes in all; its mapping: {}\n",
                r.samples.len(),
                mapping_state(r.map.as_ptr()).unwrap_or_else(|| "?".into())
            ));
        }
        if let Some(n) = self.load_runs_note {
            s.push_str(&format!(
                "- bulk load: median of {n} loads per system, each into fresh files\n"
            ));
        }
        if !self.load_bytes.is_empty() {
            let list: Vec<String> = self
                .load_bytes
                .iter()
                .map(|(r, w)| format!("{r} {w:.2}×"))
                .collect();
            s.push_str(&format!(
                "- bulk load: bytes written to the device during a load ÷ the record bytes (median of the loads; other processes' writes add): {}\n",
                list.join(", ")
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("- {n}\n"));
        }
        s
    }

    /// Times a durable bulk load of all records: `f` creates the system's
    /// files under `paths`, loads `data`, makes it durable and returns its
    /// open handle. Runs `load_runs` times (the median is reported), each
    /// into fresh files: between runs the handle is dropped and `paths`
    /// removed. Runs `sync` first (untimed) so no load pays for an earlier
    /// one's writeback.
    pub fn load<H>(
        &mut self,
        row: &str,
        paths: &[&Path],
        mut f: impl FnMut(&[Rec]) -> Result<H>,
    ) -> Result<H> {
        let runs = if self.s.workloads.load {
            self.s.load_runs.max(1)
        } else {
            1
        };
        let mb = (self.n() * REC as u64) as f64 / 1e6;
        let mut rates = Vec::new();
        let mut written = Vec::new();
        let mut handle = None;
        for run in 0..runs {
            if let Some(h) = handle.take() {
                drop(h);
                for p in paths {
                    self.remove_always(p);
                }
            }
            eprintln!("[{row}] load {}/{runs}: {} records", run + 1, self.n());
            sync_all();
            prefault_memory(self.n() as usize * REC * 5 / 4 + (64 << 20));
            let dev_before = self.dev.as_ref().and_then(|d| d.bytes());
            let t = Instant::now();
            handle = Some(f(&self.data)?);
            let secs = t.elapsed().as_secs_f64();
            let dev_after = self.dev.as_ref().and_then(|d| d.bytes());
            let ratio = dev_before
                .zip(dev_after)
                .map(|(a, b)| (b - a) as f64 / (mb * 1e6));
            eprintln!(
                "[{row}] load: {secs:.3} s, {:.0} MB/s; device bytes {}× the record bytes",
                mb / secs,
                ratio.map_or("?".into(), |r| format!("{r:.3}"))
            );
            rates.push(mb / secs);
            written.extend(ratio);
        }
        if self.s.workloads.load && !written.is_empty() {
            let w = measure::median(&mut written);
            self.load_bytes.push((row.to_string(), w));
        }
        if self.s.workloads.load {
            let n = rates.len();
            let med = measure::median(&mut rates);
            self.table.set(
                row,
                Col::Load,
                Cell {
                    value: med,
                    unit: Unit::MBps,
                    extra: None,
                },
            );
            if n > 1 {
                self.load_runs_note = Some(n);
            }
        }
        Ok(handle.expect("at least one run"))
    }

    /// Times random gets: `passes` (or `slow_passes`) passes over the first
    /// `lookups` (or `slow_lookups`) indices; `f` returns the sum of
    /// `Rec::get_value` of the records it read, which is checked. Every pass
    /// is paired with one pass of the reference (raw read-only map of a
    /// `write()`-loaded file) over the same indices, in ABBA order (pair j
    /// even: reference first). Records the median ns per get and the
    /// median of the per-pair ratios.
    pub fn get(
        &mut self,
        row: &str,
        slow: bool,
        mut f: impl FnMut(&[u64]) -> Result<u64>,
    ) -> Result<()> {
        if !self.s.workloads.get {
            return Ok(());
        }
        let (k, passes) = if slow {
            (self.s.slow_lookups, self.s.slow_passes)
        } else {
            (self.s.lookups, self.s.passes)
        };
        let k = k as usize;
        let want = *self.want_get.entry(k).or_insert_with(|| {
            self.get_idx[..k]
                .iter()
                .fold(0u64, |acc, &i| acc.wrapping_add(Rec::new(i).get_value()))
        });
        if self.reference.is_none() {
            eprintln!("[reference] writing and mapping the get reference file");
            self.reference = Some(Reference::new(&self.dir.join("reference.dat"), &self.data)?);
        }
        let mode = self.s.get_mode;
        let idx = &self.get_idx[..k];
        let reference = self.reference.as_mut().expect("reference");
        eprintln!(
            "[{row}] get: {passes} passes of {k} random lookups, each paired with a reference pass"
        );
        // Two untimed rounds first: memory just filled by a load reads slower
        // for a while on this VM (see README), and both sides start warm.
        for _ in 0..2 {
            std::hint::black_box(f(idx)?);
            std::hint::black_box(reference.pass(mode, idx));
        }
        let mut ref_f = |idx: &[u64]| -> Result<u64> { Ok(reference.pass(mode, idx)) };
        let (ns, ref_ns) = abba(
            passes.max(1),
            || timed_gets(row, idx, want, &mut f),
            || timed_gets("reference", idx, want, &mut ref_f),
            |_| false,
        )?;
        reference.samples.extend_from_slice(&ref_ns);
        let (pair, med, ref_med) = pair_medians(&ns, &ref_ns);
        eprintln!(
            "[{row}] get: median {med:.1} ns/op, reference {ref_med:.1}, pairs {pair:.2}× (passes {ns:.1?})"
        );
        self.table.set(
            row,
            Col::Get,
            Cell {
                value: med,
                unit: Unit::Ns,
                extra: Some(format!("{}× ref", fmt_ratio(pair))),
            },
        );
        let mut all = self.reference.as_ref().expect("reference").samples.clone();
        self.table.set(
            REF_ROW,
            Col::Get,
            Cell {
                value: measure::median(&mut all),
                unit: Unit::Ns,
                extra: None,
            },
        );
        self.push_pairs(row, "get", "ref", Unit::Ns, (pair, med, ref_med), ns.len());
        Ok(())
    }

    /// Records a paired comparison of `row` against `yard_name` for the
    /// second table: `medians` as `pair_medians` gives them (median
    /// per-pair ratio, the system's median, the yardstick's) over `pairs`
    /// pairs.
    fn push_pairs(
        &mut self,
        row: &str,
        workload: &'static str,
        yard_name: &str,
        unit: Unit,
        (pair_ratio, sys, yard): (f64, f64, f64),
        pairs: usize,
    ) {
        self.paired.push(Paired {
            row: row.to_string(),
            workload,
            yard_name: yard_name.to_string(),
            unit,
            sys,
            yard,
            pair_ratio,
            pairs,
            vs_update: None,
        });
    }

    /// Times random gets of `f` against gets of `base` directly: `passes`
    /// pairs of one pass each over the same `lookups` indices, in ABBA
    /// order, both sums checked. Records the median of the per-pair ratios
    /// (`f` over `base`, ns per get) as the row's `get vs <base_name>`
    /// figure. This is what a target comparing two get paths is judged on:
    /// the quotient of two ratios to the reference, taken minutes apart,
    /// carries the noise of both.
    pub fn get_vs(
        &mut self,
        row: &str,
        base_name: &str,
        mut f: impl FnMut(&[u64]) -> Result<u64>,
        mut base: impl FnMut(&[u64]) -> Result<u64>,
    ) -> Result<()> {
        if !self.s.workloads.get {
            return Ok(());
        }
        let k = self.s.lookups as usize;
        let passes = self.s.passes.max(1);
        let want = *self.want_get.entry(k).or_insert_with(|| {
            self.get_idx[..k]
                .iter()
                .fold(0u64, |acc, &i| acc.wrapping_add(Rec::new(i).get_value()))
        });
        let idx = &self.get_idx[..k];
        eprintln!(
            "[{row}] get: {passes} passes of {k} random lookups, each paired with a pass of {base_name}"
        );
        for _ in 0..2 {
            timed_gets(row, idx, want, &mut f)?;
            timed_gets(base_name, idx, want, &mut base)?;
        }
        let (a, b) = abba(
            passes,
            || timed_gets(row, idx, want, &mut f),
            || timed_gets(base_name, idx, want, &mut base),
            |_| false,
        )?;
        let (pair, med, base_med) = pair_medians(&a, &b);
        eprintln!(
            "[{row}] get: median {med:.1} ns/op, {base_name} {base_med:.1} ns/op, pairs {pair:.2}×"
        );
        let m = (pair, med, base_med);
        self.push_pairs(row, "get (direct pairs)", base_name, Unit::Ns, m, a.len());
        Ok(())
    }

    /// Times a full scan summing `a` of every record (`f` returns the sum).
    /// Up to `scan_passes` passes, fewer once 10 s have gone by; median GB/s.
    pub fn scan(&mut self, row: &str, mut f: impl FnMut() -> Result<u64>) -> Result<()> {
        if !self.s.workloads.scan {
            return Ok(());
        }
        eprintln!("[{row}] scan: {} records", self.n());
        let start = Instant::now();
        let mut gbps = Vec::new();
        for _ in 0..self.s.scan_passes {
            let t = Instant::now();
            let sum = f()?;
            let secs = t.elapsed().as_secs_f64();
            if sum != self.want_scan {
                return Err(format!(
                    "{row}: scan read wrong data (sum {sum}, want {})",
                    self.want_scan
                )
                .into());
            }
            gbps.push((self.n() * REC as u64) as f64 / 1e9 / secs);
            if start.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        let passes = gbps.len();
        let med = measure::median(&mut gbps);
        eprintln!("[{row}] scan: median {med:.2} GB/s ({passes} passes)");
        self.table.set(
            row,
            Col::Scan,
            Cell {
                value: med,
                unit: Unit::GBps,
                extra: None,
            },
        );
        Ok(())
    }

    /// Times bulk loads of `f` (which loads `data` into `paths` and returns
    /// a handle, dropped and its files removed after each run) paired with
    /// the raw yardstick: the same bytes written with `write` in 2 MiB
    /// pieces and `fdatasync`ed, to a file of its own. `pairs` pairs in ABBA
    /// order, each after an untimed `sync`; the paired table gets the median
    /// of the per-pair throughput ratios (above 1: faster than the raw
    /// write). Loads minutes apart on this machine differ by more than the
    /// target's margin (the disk changes speed), so only this ratio judges
    /// "bulk load ≥ 0.9× the best raw method".
    pub fn load_vs_raw<H>(
        &mut self,
        row: &str,
        paths: &[&Path],
        pairs: usize,
        mut f: impl FnMut(&[Rec]) -> Result<H>,
    ) -> Result<()> {
        if !self.s.workloads.load || pairs == 0 {
            return Ok(());
        }
        let raw_path = self.path("load-yardstick.raw");
        let mb = (self.n() * REC as u64) as f64 / 1e6;
        eprintln!("[{row}] load: {pairs} runs, each paired with a raw write() + fdatasync load");
        let data = std::mem::take(&mut self.data);
        let mut sys_run = |cx: &mut Cx| -> Result<f64> {
            sync_all();
            let t = Instant::now();
            let h = f(&data)?;
            let secs = t.elapsed().as_secs_f64();
            drop(h);
            for p in paths {
                cx.remove_always(p);
            }
            Ok(mb / secs)
        };
        let raw_run = |cx: &mut Cx| -> Result<f64> {
            sync_all();
            let t = Instant::now();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&raw_path)?;
            for chunk in bytemuck::cast_slice::<Rec, u8>(&data).chunks(2 << 20) {
                std::io::Write::write_all(&mut file, chunk)?;
            }
            file.sync_data()?;
            let secs = t.elapsed().as_secs_f64();
            drop(file);
            cx.remove_always(&raw_path);
            Ok(mb / secs)
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut result = Ok(());
        for j in 0..pairs {
            let pair = if j % 2 == 0 {
                raw_run(self).and_then(|r| Ok((sys_run(self)?, r)))
            } else {
                sys_run(self).and_then(|x| Ok((x, raw_run(self)?)))
            };
            match pair {
                Ok((x, r)) => {
                    a.push(x);
                    b.push(r);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.data = data;
        result?;
        let (pair, med, raw_med) = pair_medians(&a, &b);
        eprintln!(
            "[{row}] load: median {med:.0} MB/s, raw write {raw_med:.0} MB/s, pairs {pair:.2}× (runs {a:.0?} / {b:.0?})"
        );
        let m = (pair, med, raw_med);
        let yard = "raw write() 2 MiB + fdatasync";
        self.push_pairs(row, "load (MB/s)", yard, Unit::MBps, m, a.len());
        Ok(())
    }

    /// Times a full scan `f` paired with a full scan `base` (another row's
    /// scan, named `base_name`): one untimed pair, then up to `scan_pairs`
    /// pairs in ABBA order (fewer once 10 s have gone by, at least 3). The
    /// row's cell gets the median GB/s of `f` and the median of the per-pair
    /// throughput ratios (`f` over `base`: above 1 is faster); the paired
    /// table gets both medians.
    pub fn scan_vs(
        &mut self,
        row: &str,
        base_name: &str,
        mut f: impl FnMut() -> Result<u64>,
        mut base: impl FnMut() -> Result<u64>,
    ) -> Result<()> {
        if !self.s.workloads.scan {
            return Ok(());
        }
        let pairs = self.s.scan_pairs.max(1);
        eprintln!(
            "[{row}] scan: up to {pairs} passes of {} records, each paired with a pass of {base_name}",
            self.n()
        );
        let bytes = (self.n() * REC as u64) as f64 / 1e9;
        let want = self.want_scan;
        let timed = |label: &str, g: &mut dyn FnMut() -> Result<u64>| -> Result<f64> {
            let t = Instant::now();
            let sum = g()?;
            let secs = t.elapsed().as_secs_f64();
            if sum != want {
                return Err(
                    format!("{label}: scan read wrong data (sum {sum}, want {want})").into(),
                );
            }
            Ok(bytes / secs)
        };
        timed(row, &mut f)?;
        timed(base_name, &mut base)?;
        let start = Instant::now();
        let (a, b) = abba(
            pairs,
            || timed(row, &mut f),
            || timed(base_name, &mut base),
            |j| j >= 2 && start.elapsed() > Duration::from_secs(10),
        )?;
        let (pair, med, base_med) = pair_medians(&a, &b);
        eprintln!(
            "[{row}] scan: median {med:.2} GB/s, {base_name} {base_med:.2} GB/s, pairs {pair:.2}×"
        );
        self.table.set(
            row,
            Col::Scan,
            Cell {
                value: med,
                unit: Unit::GBps,
                extra: Some(format!("pairs {}× {base_name}", fmt_ratio(pair))),
            },
        );
        let m = (pair, med, base_med);
        self.push_pairs(row, "scan (GB/s)", base_name, Unit::GBps, m, a.len());
        Ok(())
    }

    /// Warms the page cache (and the system's mappings) with one untimed pass
    /// of `f`, a full scan.
    pub fn warm(&mut self, row: &str, f: impl FnOnce() -> Result<u64>) -> Result<()> {
        eprintln!("[{row}] warm-up scan (untimed)");
        let sum = f()?;
        if sum != self.want_scan {
            return Err(format!(
                "{row}: warm-up read wrong data (sum {sum}, want {})",
                self.want_scan
            )
            .into());
        }
        Ok(())
    }

    fn probe(&mut self) -> Result<&mut Probe> {
        if self.probe.is_none() {
            self.probe = Some(Probe::new(
                &self.dir.join("probe.dat"),
                self.s.probe_fill,
                self.s.probe_offset,
            )?);
        }
        Ok(self.probe.as_mut().expect("probe"))
    }

    /// Device bytes per operation: `ops` operations in 5 chunks. Each chunk
    /// starts clean (everything of the system folded in and on disk) and
    /// reads the device counter three times: before its operations, right
    /// after them (`during`: what the commits themselves wrote) and after
    /// `finish` (the system's own deferred work: recmap's
    /// `Store::checkpoint`, SQLite's `wal_checkpoint(TRUNCATE)`, nothing for
    /// the others) plus an `fsync` of every file in `files` (waits for the
    /// writeback of whatever the system left dirty in the page cache:
    /// `with_checkpoint`). Per chunk both figures are divided by the chunk's
    /// operations; the least of the chunks is reported for each (the device
    /// is shared with other processes, whose writes only add).
    fn device_bytes<S>(
        &self,
        ops: u64,
        files: &[&Path],
        sys: &mut S,
        mut op: impl FnMut(&mut S) -> Result<()>,
        mut finish: impl FnMut(&mut S) -> Result<()>,
    ) -> Result<Option<DevBytes>> {
        let Some(dev) = &self.dev else {
            return Ok(None);
        };
        // Start clean: earlier loops' deferred work is not this loop's.
        finish(sys)?;
        fsync_files(files)?;
        sync_all();
        let chunk = (ops / 5).max(1);
        let mut best: Option<DevBytes> = None;
        let start = Instant::now();
        for _ in 0..5 {
            let before = dev.bytes().ok_or("device counter unreadable")?;
            let mut done = 0u64;
            let t = Instant::now();
            while done < chunk {
                op(sys)?;
                done += 1;
                // A chunk stops early after its share of the time budget.
                if done >= 20 && t.elapsed().as_secs_f64() > self.s.commit_seconds / 10.0 {
                    break;
                }
            }
            let mid = dev.bytes().ok_or("device counter unreadable")?;
            finish(sys)?;
            fsync_files(files)?;
            let after = dev.bytes().ok_or("device counter unreadable")?;
            let this = DevBytes {
                during: (mid - before) as f64 / done as f64,
                with_checkpoint: (after - before) as f64 / done as f64,
            };
            best = Some(match best {
                None => this,
                Some(b) => DevBytes {
                    during: b.during.min(this.during),
                    with_checkpoint: b.with_checkpoint.min(this.with_checkpoint),
                },
            });
            if start.elapsed().as_secs_f64() > self.s.commit_seconds / 2.0 {
                break;
            }
        }
        Ok(best)
    }

    /// Times durable single-record updates or appends of a system that has
    /// no deferred work (`finish` does nothing); see `commits_with`.
    pub fn commits(
        &mut self,
        row: &str,
        kind: Commit,
        files: &[&Path],
        mut op: impl FnMut(u64) -> Result<()>,
    ) -> Result<()> {
        self.commits_with(row, kind, files, &mut (), |_, k| op(k), nothing)
    }

    /// Times durable single-record updates or appends. `op(sys, k)` does the
    /// `k`-th operation (0, 1, 2, … across all calls) and makes it durable;
    /// `finish(sys)` folds in what the system defers past its commits (a
    /// checkpoint; nothing for most), and `files` are all the system's
    /// files (fsynced after `finish` in the bytes loop).
    ///
    /// Latency: up to `commits` operations (at least 200, then stopping
    /// after `commit_seconds`), each followed by exactly one probe
    /// (`--probe-order alternate`: alternately after and before), so the
    /// system and the probe see the same disk conditions. Reported: median
    /// and p99 of the operations, the median of the paired probes, their
    /// ratio and the median of the per-pair ratios. Bytes: a separate loop of
    /// `bytes_ops` operations without the probe (see `device_bytes`), during
    /// the commits and including `finish` and the fsync; the probe's own
    /// bytes come from a probe-only loop, once per workload.
    pub fn commits_with<S>(
        &mut self,
        row: &str,
        kind: Commit,
        files: &[&Path],
        sys: &mut S,
        op: impl FnMut(&mut S, u64) -> Result<()>,
        finish: impl FnMut(&mut S) -> Result<()>,
    ) -> Result<()> {
        let (selected, want, bytes_ops) = match kind {
            Commit::Update => (self.s.workloads.update, self.s.commits, self.s.bytes_ops),
            Commit::Update100 => (
                self.s.workloads.update100,
                self.s.commits100,
                self.s.bytes_ops100,
            ),
            Commit::Append => (self.s.workloads.append, self.s.commits, self.s.bytes_ops),
        };
        if !selected {
            return Ok(());
        }
        self.commit_loop(row, kind, want.max(1), bytes_ops, files, sys, op, finish)
    }

    /// update100 of a system with no deferred work; see `update100_with`.
    pub fn update100(
        &mut self,
        row: &str,
        files: &[&Path],
        mut op: impl FnMut(&[u64], u64) -> Result<()>,
    ) -> Result<()> {
        self.update100_with(row, files, &mut (), |_, b, k| op(b, k), nothing)
    }

    /// Times durable commits of 100 updates each, on 100 distinct random
    /// pages (`batch` holds the indices, one record per 4 KiB page; record
    /// `i` is on page `i / 64`); `op(sys, batch, k)` applies
    /// `Rec::updated(i, k)` for every `i` of `batch` and commits once.
    /// Measured as `commits_with`.
    pub fn update100_with<S>(
        &mut self,
        row: &str,
        files: &[&Path],
        sys: &mut S,
        mut op: impl FnMut(&mut S, &[u64], u64) -> Result<()>,
        finish: impl FnMut(&mut S) -> Result<()>,
    ) -> Result<()> {
        if !self.s.workloads.update100 {
            return Ok(());
        }
        let count = (self.s.commits100 + self.s.bytes_ops100 + 10) as usize;
        let batches = batches100(count, self.n());
        self.commits_with(
            row,
            Commit::Update100,
            files,
            sys,
            |s, k| op(s, &batches[k as usize % batches.len()], k),
            finish,
        )
    }

    /// update100 against update in one loop: rounds of one single-record
    /// commit and one 100-record commit, their order alternating (ABBA),
    /// each followed by one probe, so both kinds see the same disk. Up to
    /// `--commits100` rounds (at least 200, then stopping after
    /// `--commit-seconds`). Records the two medians and the median of the
    /// per-round ratios as the row's `update100 ÷ update (alternating)`:
    /// the update100 target is judged on these, since the separate loops'
    /// medians are taken a minute apart, across the disk's drifts.
    pub fn update_vs_update100<S>(
        &mut self,
        row: &str,
        sys: &mut S,
        mut one: impl FnMut(&mut S, u64, u64) -> Result<()>,
        mut hundred: impl FnMut(&mut S, &[u64], u64) -> Result<()>,
    ) -> Result<()> {
        if !(self.s.workloads.update && self.s.workloads.update100) {
            return Ok(());
        }
        let want = self.s.commits100.max(1) as usize;
        let batches = batches100(want.min(1000) + 10, self.n());
        let idx = self.update_idx.clone();
        let budget = Duration::from_secs_f64(self.s.commit_seconds);
        eprintln!("[{row}] update100 ÷ update: up to {want} rounds of one of each, alternating, each followed by one probe");
        // Values no other loop writes (`Rec::updated(i, k)`).
        let base = 1u64 << 40;
        let mut k = 0u64;
        let mut round = |s: &mut Self, sys: &mut S, k: u64| -> Result<(f64, f64)> {
            let i = idx[k as usize % idx.len()];
            let batch = &batches[k as usize % batches.len()];
            let mut t1 = 0.0;
            let mut t100 = 0.0;
            for step in 0..2 {
                let single = (step == 0) == k.is_multiple_of(2);
                let t = Instant::now();
                if single {
                    one(sys, i, base + k)?;
                } else {
                    hundred(sys, batch, base + k)?;
                }
                let ns = t.elapsed().as_nanos() as f64;
                if single {
                    t1 = ns;
                } else {
                    t100 = ns;
                }
                s.probe()?.once()?;
            }
            Ok((t1, t100))
        };
        for _ in 0..10 {
            round(self, sys, k)?;
            k += 1;
        }
        let (mut l1, mut l100) = (Vec::with_capacity(want), Vec::with_capacity(want));
        let start = Instant::now();
        while l1.len() < want {
            let (a, b) = round(self, sys, k)?;
            l1.push(a);
            l100.push(b);
            k += 1;
            if l1.len() >= 200 && start.elapsed() > budget {
                break;
            }
        }
        let (pair, m100, m1) = pair_medians(&l100, &l1);
        eprintln!(
            "[{row}] update100 ÷ update: {} rounds, medians {:.0} / {:.0} µs = {:.2}×, per-round ratios {pair:.2}×",
            l1.len(),
            m100 / 1e3,
            m1 / 1e3,
            m100 / m1
        );
        let w = "update100 ÷ update (alternating)";
        self.push_pairs(row, w, "update", Unit::Ns, (pair, m100, m1), l1.len());
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_loop<S>(
        &mut self,
        row: &str,
        kind: Commit,
        want: u64,
        bytes_ops: u64,
        files: &[&Path],
        sys: &mut S,
        mut op: impl FnMut(&mut S, u64) -> Result<()>,
        mut finish: impl FnMut(&mut S) -> Result<()>,
    ) -> Result<()> {
        let w = kind.name();
        let budget = Duration::from_secs_f64(self.s.commit_seconds);
        eprintln!("[{row}] {w}: up to {want} durable ops, each paired with one probe");
        let mut k = 0u64;
        // Warm-up, untimed.
        for _ in 0..10 {
            op(sys, k)?;
            k += 1;
            self.probe()?.once()?;
        }
        let alternate = self.s.probe_order == ProbeOrder::Alternate;
        let mut lat = Vec::with_capacity(want as usize);
        let mut probe = Vec::with_capacity(want as usize);
        let start = Instant::now();
        while (lat.len() as u64) < want {
            let probe_first = alternate && lat.len() % 2 == 1;
            if probe_first {
                probe.push(self.probe()?.once()?);
            }
            let t = Instant::now();
            op(sys, k)?;
            lat.push(t.elapsed().as_nanos() as f64);
            k += 1;
            if !probe_first {
                probe.push(self.probe()?.once()?);
            }
            if lat.len() >= 200 && start.elapsed() > budget {
                break;
            }
        }
        let done = lat.len();
        let mut ratios: Vec<f64> = lat.iter().zip(&probe).map(|(a, b)| a / b).collect();
        let pair = measure::median(&mut ratios);
        let p50 = measure::median(&mut lat);
        let p99 = measure::percentile(&mut lat, 99.0);
        let probe_p50 = measure::median(&mut probe);
        eprintln!(
            "[{row}] {w}: {done} ops, p50 {:.0} µs, p99 {:.0} µs; paired probe p50 {:.0} µs; ratio {:.2}, pairs {pair:.2}",
            p50 / 1e3,
            p99 / 1e3,
            probe_p50 / 1e3,
            p50 / probe_p50
        );
        if (done as u64) < want {
            self.note(format!(
                "{row}: {w} stopped after {done} of {want} operations (time budget {} s)",
                self.s.commit_seconds
            ));
        }
        self.probe()?
            .samples
            .entry(w)
            .or_default()
            .extend_from_slice(&probe);

        eprintln!(
            "[{row}] {w}: device bytes, {bytes_ops} ops without the probe, then checkpoint + fsync"
        );
        let bytes = {
            let mut kk = k;
            self.device_bytes(
                bytes_ops,
                files,
                sys,
                |s| {
                    op(s, kk)?;
                    kk += 1;
                    Ok(())
                },
                &mut finish,
            )?
        };
        if let Some(b) = bytes {
            eprintln!(
                "[{row}] {w}: {:.0} B/commit during the commits, {:.0} B/commit with the checkpoint",
                b.during, b.with_checkpoint
            );
        }
        let mut vs_update = None;
        if kind == Commit::Update {
            self.update_fig.insert(row.to_string(), (p50, pair));
        }
        let mut extra = format!(
            "{}× probe, pairs {}×",
            fmt_ratio(p50 / probe_p50),
            fmt_ratio(pair)
        );
        if kind == Commit::Update100 {
            if let Some(&(u50, upair)) = self.update_fig.get(row) {
                vs_update = Some((p50 / u50, pair / upair));
                extra.push_str(&format!("; {}× update", fmt_ratio(p50 / u50)));
            }
        }
        self.set_commit_cells(row, kind, p50, Some(extra), p99, bytes);
        self.paired.push(Paired {
            row: row.to_string(),
            workload: w,
            yard_name: "probe".into(),
            unit: Unit::Ns,
            sys: p50,
            yard: probe_p50,
            pair_ratio: pair,
            pairs: done,
            vs_update,
        });

        // The probe's own row: all paired samples so far, and its bytes.
        let has_bytes = self.probe()?.bytes.contains_key(w);
        if !has_bytes {
            eprintln!(
                "[probe] {w}: device bytes, {} probes alone",
                self.s.bytes_ops
            );
            let mut p = self.probe.take().expect("probe");
            let path = p.path.clone();
            let b = self.device_bytes(
                self.s.bytes_ops,
                &[&path],
                &mut p,
                |p| p.once().map(|_| ()),
                nothing,
            );
            self.probe = Some(p);
            self.probe()?.bytes.insert(w, b?);
        }
        let p = self.probe()?;
        let mut all = p.samples[w].clone();
        let pb = p.bytes[w];
        let (m, q) = (
            measure::median(&mut all),
            measure::percentile(&mut all, 99.0),
        );
        self.set_commit_cells(PROBE_ROW, kind, m, None, q, pb);
        Ok(())
    }

    /// The p50, p99 and both bytes cells of one commit workload.
    fn set_commit_cells(
        &mut self,
        row: &str,
        kind: Commit,
        p50: f64,
        extra: Option<String>,
        p99: f64,
        bytes: Option<DevBytes>,
    ) {
        let (c50, c99, cb, cbk) = kind.cols();
        let cell = |value, unit, extra| Cell { value, unit, extra };
        self.table.set(row, c50, cell(p50, Unit::Ns, extra));
        self.table.set(row, c99, cell(p99, Unit::Ns, None));
        if let Some(b) = bytes {
            self.table.set(row, cb, cell(b.during, Unit::Bytes, None));
            self.table
                .set(row, cbk, cell(b.with_checkpoint, Unit::Bytes, None));
        }
    }

    /// The second table: every paired figure (system median, median of the
    /// yardstick runs paired with it, their ratio, median of per-pair ratios).
    pub fn render_paired(&self) -> String {
        if self.paired.is_empty() {
            return String::new();
        }
        let mut s = String::from(
            "| system | workload | median | paired yardstick median | ratio of medians | median of per-pair ratios | pairs | update100 ÷ update (medians; pair ratios) |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for p in &self.paired {
            let yard = &p.yard_name;
            s.push_str(&format!(
                "| {} | {} | {} | {} ({yard}) | {}× | {}× | {} | {} |\n",
                p.row,
                p.workload,
                fmt_value(p.sys, p.unit),
                fmt_value(p.yard, p.unit),
                fmt_ratio(p.sys / p.yard),
                fmt_ratio(p.pair_ratio),
                p.pairs,
                p.vs_update
                    .map(|(a, b)| format!("{}×; {}×", fmt_ratio(a), fmt_ratio(b)))
                    .unwrap_or_else(|| "—".into()),
            ));
        }
        s
    }

    /// Removes a file or directory of the scratch directory (each system
    /// deletes its files when done, so big runs need one system's space).
    pub fn remove(&self, path: &Path) {
        if !self.s.keep {
            self.remove_always(path);
        }
    }

    fn remove_always(&self, path: &Path) {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
    }
}

/// Touches and frees `bytes` of anonymous memory, untimed, right before a
/// load. On a VM whose balloon driver reports free pages to the host
/// (virtio-balloon free page reporting: here `page_reporting_order` 9),
/// memory freed for a few seconds is given back to the host, and the next
/// use of it (the page cache a load fills) faults it in again on the host:
/// a 1 GiB load measured 0.29–0.40 GB/s after a pause and 1.7–1.9 GB/s
/// right after another load. Touching the memory first puts every load in
/// the second case.
pub fn prefault_memory(bytes: usize) {
    let v = vec![1u8; bytes];
    std::hint::black_box(&v);
}

/// Device bytes per operation of one bytes loop (see `Cx::device_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct DevBytes {
    /// Written while the operations ran (their own syncs, and whatever
    /// writeback happened meanwhile).
    pub during: f64,
    /// The same plus the system's checkpoint (recmap `Store::checkpoint`,
    /// SQLite `wal_checkpoint(TRUNCATE)`) and an fsync of each of its files.
    pub with_checkpoint: f64,
}

/// The `finish` of systems that defer nothing past a commit.
pub fn nothing<S>(_: &mut S) -> Result<()> {
    Ok(())
}

/// `fsync` of every file in `paths` (the files of a directory, one level):
/// waits until whatever is dirty of them is on the device, metadata too.
pub fn fsync_files(paths: &[&Path]) -> Result<()> {
    fn one(p: &Path) -> Result<()> {
        match File::open(p) {
            Ok(f) => Ok(f.sync_all()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("fsync {}: {e}", p.display()).into()),
        }
    }
    for p in paths {
        if p.is_dir() {
            for e in std::fs::read_dir(p)? {
                let e = e?;
                if e.file_type()?.is_file() {
                    one(&e.path())?;
                }
            }
        } else {
            one(p)?;
        }
    }
    Ok(())
}

/// `sync(2)`: writes back everything dirty, so the next measurement starts clean.
pub fn sync_all() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Sums `a` of records from a byte slice of whole records (any alignment).
#[inline]
pub fn sum_a_bytes(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(REC).fold(0u64, |acc, r| {
        acc.wrapping_add(u64::from_le_bytes(r[..8].try_into().expect("8 bytes")))
    })
}

/// `count` batches of 100 record indices below `n`, each batch on 100
/// distinct 4 KiB pages (64 records per page; fewer pages than 100 gives
/// batches with repeats), seeded.
pub fn batches100(count: usize, n: u64) -> Vec<Vec<u64>> {
    let pages = n.div_ceil(64);
    let mut g = measure::Xorshift64Star::new(measure::SEED ^ 0x100);
    (0..count)
        .map(|_| {
            let mut seen = std::collections::HashSet::new();
            let mut b = Vec::with_capacity(100);
            while b.len() < 100 {
                let page = g.below(pages);
                if !seen.insert(page) && (seen.len() as u64) < pages {
                    continue;
                }
                let i = (page * 64 + g.below(64)).min(n - 1);
                b.push(i);
            }
            b
        })
        .collect()
}

/// The random-get loop of the systems that hand out `&Rec` (recmap,
/// memmap2, Vec, the reference): sums `Rec::get_value` of `get(i)` for
/// every index. `GetMode::Fold` (the default) is a plain loop: the sum is
/// returned and checked by the caller, so no get can be elided, and no
/// barrier sits between gets. `GetMode::BlackBox` puts every index and
/// every record reference through `black_box`; each is an optimisation
/// barrier that also makes the compiler reload, per get, whatever `get`
/// reads from memory (for `Store::get`: the fields of its record window).
#[inline(always)]
pub fn get_loop<'a>(mode: GetMode, idx: &[u64], get: impl Fn(u64) -> &'a Rec) -> u64 {
    #[inline(always)]
    fn run<'a, const EACH: bool>(idx: &[u64], get: impl Fn(u64) -> &'a Rec) -> u64 {
        let mut sum = 0u64;
        for &i in idx {
            let r = if EACH {
                std::hint::black_box(get(std::hint::black_box(i)))
            } else {
                get(i)
            };
            sum = sum.wrapping_add(r.get_value());
        }
        sum
    }
    match mode {
        GetMode::BlackBox => run::<true>(idx, get),
        GetMode::Fold => run::<false>(idx, get),
    }
}

/// The random-get loop of the systems that copy records out through a
/// fallible call (recmap's `Snapshot::get`): like `get_loop`, with the
/// mode chosen once outside the loop, and the first error returned.
#[inline(always)]
pub fn get_loop_owned<E>(
    mode: GetMode,
    idx: &[u64],
    get: impl FnMut(u64) -> std::result::Result<Rec, E>,
) -> std::result::Result<u64, E> {
    #[inline(always)]
    fn run<E, const EACH: bool>(
        idx: &[u64],
        mut get: impl FnMut(u64) -> std::result::Result<Rec, E>,
    ) -> std::result::Result<u64, E> {
        let mut sum = 0u64;
        for &i in idx {
            let r = if EACH {
                std::hint::black_box(get(std::hint::black_box(i))?)
            } else {
                get(i)?
            };
            sum = sum.wrapping_add(r.get_value());
        }
        Ok(sum)
    }
    match mode {
        GetMode::BlackBox => run::<E, true>(idx, get),
        GetMode::Fold => run::<E, false>(idx, get),
    }
}

/// `x` through `black_box` in `GetMode::BlackBox`, as is in `GetMode::Fold`
/// (for the get loops of the systems that copy records out).
#[inline(always)]
pub fn bb<T>(mode: GetMode, x: T) -> T {
    match mode {
        GetMode::BlackBox => std::hint::black_box(x),
        GetMode::Fold => x,
    }
}

/// A record copied out of bytes of any alignment.
#[inline(always)]
pub fn read_rec(bytes: &[u8]) -> Rec {
    bytemuck::pod_read_unaligned(bytes)
}

/// Up to `pairs` pairs of one run of `a` and one of `b`, in ABBA order
/// (pair j even: `b` first), stopping after pair j when `stop(j)`; the
/// figures of each, in pair order.
fn abba(
    pairs: usize,
    mut a: impl FnMut() -> Result<f64>,
    mut b: impl FnMut() -> Result<f64>,
    stop: impl Fn(usize) -> bool,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for j in 0..pairs {
        if j % 2 == 0 {
            ys.push(b()?);
            xs.push(a()?);
        } else {
            xs.push(a()?);
            ys.push(b()?);
        }
        if stop(j) {
            break;
        }
    }
    Ok((xs, ys))
}

/// The median of the per-pair ratios `a[k] / b[k]`, and the medians of `a`
/// and of `b`.
fn pair_medians(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (
        measure::median(&mut ratios),
        measure::median(&mut a.to_vec()),
        measure::median(&mut b.to_vec()),
    )
}

/// One timed pass of `g` over `idx`: ns per get; an error naming `label` if
/// its sum is not `want`.
fn timed_gets(
    label: &str,
    idx: &[u64],
    want: u64,
    g: &mut dyn FnMut(&[u64]) -> Result<u64>,
) -> Result<f64> {
    let t = Instant::now();
    let sum = g(std::hint::black_box(idx))?;
    let v = measure::ns_per_op(t, idx.len() as u64);
    if sum != want {
        return Err(format!("{label}: get read wrong data (sum {sum}, want {want})").into());
    }
    Ok(v)
}
