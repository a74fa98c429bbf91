//! `recmap-compare`: runs the same workloads on recmap and on its peers
//! (raw memmap2, plain-file `pread`/`pwrite`, `BufReader`/`BufWriter`, an
//! in-memory `Vec`, LMDB through heed, redb, SQLite through rusqlite) and
//! prints one markdown table. See `README.md` beside `Cargo.toml`.
//!
//! This file owns the command line, the report header and the order of the
//! run; `harness` owns the measuring loops and the table; `systems/*` hold
//! one module per system. The seeded indices, medians/percentiles and the
//! block-device write counter come from the CLI's `measure` module, which
//! `recmap bench` uses too.

#[path = "../../../src/bin/recmap/measure.rs"]
mod measure;

mod alloc_count;
mod cold;
mod harness;
mod report;
mod systems;
mod targets;

use harness::{Cx, GetMode, ProbeFill, ProbeOffset, ProbeOrder, Settings, Workloads};
use std::path::PathBuf;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

const USAGE: &str = "\
recmap-compare: recmap against memmap2, pread, BufReader, Vec, LMDB, redb and SQLite

Usage: cargo run --release -- [OPTIONS]

Options:
  --records N          records of 64 bytes (default 1000000; 16000000 = 1 GiB)
  --dir DIR            scratch directory on the disk under test (default /var/tmp);
                       a fresh subdirectory is created and removed at the end
  --only LIST          systems to run, comma-separated:
                       recmap,memmap2,file,bufio,vec,lmdb,redb,sqlite (default all)
  --workloads LIST     load,get,scan,update,update100,append (default all)
  --lookups N          random gets per pass for in-memory systems (default 1000000)
  --slow-lookups N     random gets per pass for syscall/database systems (default 200000)
  --passes N           get passes of in-memory systems, each paired with a pass of the
                       read-only reference map (medians reported; default 21)
  --slow-passes N      get passes of syscall/database systems (default 5)
  --scan-passes N      scan passes (median reported; default 3, fewer if slow)
  --scan-pairs N       pairs of a paired scan (recmap snapshot scan against the
                       Store::iter scan; default 11, fewer if slow)
  --snapshot-chunk N   records per Snapshot::read_range call of the snapshot scan
                       (default 4096)
  --load-runs N        bulk loads per system, each into fresh files; the median
                       is reported (default 3)
  --load-pairs N       recmap bulk loads paired with a raw write() + fdatasync of
                       the same bytes, ABBA (default 6); judges the load target
  --cold               also random gets and a scan with the page cache dropped
                       before every pass (recmap, memmap2, pread, LMDB, SQLite; a section of its own)
  --commits N          update/append operations per system, each made durable,
                       each followed by one probe (default 10000)
  --commits100 N       update100 commits per system (100 records on 100 pages each;
                       default 1000)
  --bytes-ops100 N     update100 commits in the device-bytes loop (default 100)
  --commit-seconds S   time budget of one such loop (default 15; at least 200 ops)
  --bytes-ops N        operations in the separate device-bytes loop (default 1000,
                       in 5 chunks, each ending with the system's checkpoint and an
                       fsync of its files; the least per-op figures are reported)
  --get-mode MODE      fold: fold each record into a checksum that is checked (default);
                       black-box: black_box every get's index and record (the old default)
  --probe-fill F       4k: zeros written in 4 KiB writes (default); 2m: in 2 MiB writes
                       (the old probe: large page-cache folios); fallocate: unwritten extents
  --probe-offset O     random: a random 64-byte slot of the 64 MiB file (default); fixed: offset 0
  --probe-order O      after: one probe right after each operation (default);
                       alternate: after, then before the next, … (the old pairing)
  --keep               keep the scratch directory
  -h, --help           this text
";

fn parse_args() -> Result<Settings, String> {
    let mut s = Settings::default();
    let mut args = std::env::args().skip(1);
    let list = |v: String| -> Vec<String> {
        v.split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .filter(|x| !x.is_empty())
            .collect()
    };
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |name: &str, v: String| -> Result<u64, String> {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match a.as_str() {
            "--records" => s.records = num(&a, value(&a)?)?,
            "--dir" => s.dir = PathBuf::from(value(&a)?),
            "--only" => s.only = Some(list(value(&a)?)),
            "--workloads" => s.workloads = Workloads::parse(&list(value(&a)?))?,
            "--lookups" => s.lookups = num(&a, value(&a)?)?,
            "--slow-lookups" => s.slow_lookups = num(&a, value(&a)?)?,
            "--passes" => s.passes = num(&a, value(&a)?)? as usize,
            "--scan-passes" => s.scan_passes = num(&a, value(&a)?)? as usize,
            "--scan-pairs" => s.scan_pairs = num(&a, value(&a)?)? as usize,
            "--snapshot-chunk" => s.snapshot_chunk = num(&a, value(&a)?)?.max(1) as usize,
            "--load-runs" => s.load_runs = num(&a, value(&a)?)? as usize,
            "--load-pairs" => s.load_pairs = num(&a, value(&a)?)? as usize,
            "--commits" => s.commits = num(&a, value(&a)?)?,
            "--commits100" => s.commits100 = num(&a, value(&a)?)?,
            "--bytes-ops100" => s.bytes_ops100 = num(&a, value(&a)?)?,
            "--slow-passes" => s.slow_passes = num(&a, value(&a)?)? as usize,
            "--commit-seconds" => s.commit_seconds = num(&a, value(&a)?)? as f64,
            "--bytes-ops" => s.bytes_ops = num(&a, value(&a)?)?,
            "--keep" => s.keep = true,
            "--cold" => s.cold = true,
            "--get-mode" => {
                s.get_mode = match value(&a)?.as_str() {
                    "fold" => GetMode::Fold,
                    "black-box" => GetMode::BlackBox,
                    v => return Err(format!("--get-mode: {v:?}, expected fold or black-box")),
                }
            }
            "--probe-fill" => {
                s.probe_fill = match value(&a)?.as_str() {
                    "4k" => ProbeFill::Zeros4k,
                    "2m" => ProbeFill::Zeros2m,
                    "fallocate" => ProbeFill::Fallocate,
                    v => return Err(format!("--probe-fill: {v:?}, expected 4k, 2m or fallocate")),
                }
            }
            "--probe-offset" => {
                s.probe_offset = match value(&a)?.as_str() {
                    "random" => ProbeOffset::Random,
                    "fixed" => ProbeOffset::Fixed,
                    v => return Err(format!("--probe-offset: {v:?}, expected random or fixed")),
                }
            }
            "--probe-order" => {
                s.probe_order = match value(&a)?.as_str() {
                    "after" => ProbeOrder::After,
                    "alternate" => ProbeOrder::Alternate,
                    v => return Err(format!("--probe-order: {v:?}, expected after or alternate")),
                }
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if s.records < 2 {
        return Err("--records must be at least 2".into());
    }
    if s.passes == 0 || s.scan_passes == 0 || s.lookups == 0 || s.slow_lookups == 0 {
        return Err("--passes, --scan-passes and --lookups must be at least 1".into());
    }
    if let Some(only) = &s.only {
        for name in only {
            if !systems::NAMES.contains(&name.as_str()) {
                return Err(format!(
                    "--only: unknown system {name:?} (known: {})",
                    systems::NAMES.join(",")
                ));
            }
        }
    }
    Ok(s)
}

fn main() {
    let settings = match parse_args() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(settings) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(settings: Settings) -> harness::Result<()> {
    let mut cx = Cx::new(settings)?;
    let idle_before = cx.idle_device_rate(2.0);
    let mut header = report::header(&cx);
    if let Some(r) = idle_before {
        header.insert_str(
            header.rfind("\n\n").unwrap_or(header.len()),
            &format!(
                "\n- device writes by others while idle (2 s before the run): {:.0} kB/s",
                r / 1e3
            ),
        );
    }
    eprint!("{header}");
    for name in systems::NAMES {
        if cx.selected(name) {
            systems::run(name, &mut cx)?;
        }
    }
    let cold = if cx.s.cold {
        Some(cold::run(&mut cx)?)
    } else {
        None
    };
    let load_after = report::loadavg();
    if let Some(r) = cx.idle_device_rate(2.0) {
        cx.note(format!(
            "device writes by others while idle (2 s after the run): {:.0} kB/s",
            r / 1e3
        ));
    }
    let mut out = header;
    out.push_str(&cx.table.render(&cx.columns()));
    out.push('\n');
    let paired = cx.render_paired();
    if !paired.is_empty() {
        out.push_str(
            "Paired figures (each operation or get pass against the yardstick run next to it):\n\n",
        );
        out.push_str(&paired);
        out.push('\n');
    }
    let targets = targets::render(&cx);
    if !targets.is_empty() {
        out.push_str("Targets (each ratio from this run):\n\n");
        out.push_str(&targets);
        out.push('\n');
    }
    if let Some(c) = cold {
        out.push_str(&c);
    }
    out.push_str(&cx.notes());
    out.push_str(&format!("load average at the end: {load_after}\n"));
    print!("{out}");
    Ok(())
}
