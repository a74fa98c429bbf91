//! The report's header block: date, machine (CPU model, cores, RAM), kernel,
//! the filesystem of the scratch directory and its device counter, the load
//! average, and the exact command; plus how to read the table.

use crate::harness::{
    Cx, GetMode, ProbeFill, ProbeOffset, ProbeOrder, BASE_ROW, PROBE_ROW, REF_ROW,
};
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total() -> String {
    read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .map(|l| l.trim_start_matches("MemTotal:").trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The /proc/mounts entry whose mount point is the longest prefix of `path`:
/// (device, mount point, type, options).
pub fn mount_of(path: &Path) -> Option<(String, String, String, String)> {
    let p = std::fs::canonicalize(path).ok()?;
    read("/proc/mounts")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| {
                (
                    f[0].to_string(),
                    f[1].replace("\\040", " "),
                    f[2].to_string(),
                    f[3].to_string(),
                )
            })
        })
        .filter(|m| p.starts_with(&m.1))
        .max_by_key(|m| m.1.len())
}

/// UTC date and time from the system clock (no dependency for this).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn command() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut s = "cd benches/compare && cargo run --release --".to_string();
    for a in &args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

pub fn header(cx: &Cx) -> String {
    let n = cx.n();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let fs = match mount_of(&cx.dir) {
        Some((dev, mnt, ty, opts)) => {
            let warn = if matches!(ty.as_str(), "tmpfs" | "ramfs") {
                " — WARNING: memory-backed, durable figures mean nothing here; use --dir on a disk"
            } else {
                ""
            };
            format!("{ty} ({opts}) on {dev}, mounted at {mnt}{warn}")
        }
        None => "unknown".into(),
    };
    let dev = match &cx.dev {
        Some(d) => format!("{} ({})", d.device_name(), d.stat.display()),
        None => "none found: bytes/commit columns stay empty".into(),
    };
    let probe = probe_text(cx);
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "## recmap-compare: {n} records of 64 bytes ({:.1} MiB)\n\n\
         - date: {}\n\
         - command: `{}`\n\
         - machine: {} ({cores} cores available), {} RAM\n\
         - kernel: {}\n\
         - scratch dir: {} — {fs}\n\
         - device counter: {dev}\n\
         - {rustc}, load average at the start: {}\n\
         - random gets: {}; every get pass is paired with a pass of `{REF_ROW}` over the same indices\n\
         - probe: {}\n\
         - ratios in parentheses are this row's figure divided by the `{BASE_ROW}` row's: for \
         MB/s and GB/s above 1 is faster than recmap, for times and bytes above 1 is slower/more; \
         `N× probe` is the median commit over the median of the `{PROBE_ROW}` runs paired with it, \
         `pairs N×` the median of the per-pair ratios; `N× ref` the median of per-pass ratios to the \
         reference; `N× update` the update100 median over the same row's single-update median\n\n",
        (n * 64) as f64 / 1048576.0,
        utc_now(),
        command(),
        cpu_model(),
        mem_total(),
        read("/proc/sys/kernel/osrelease").trim(),
        cx.dir.display(),
        loadavg(),
        match cx.s.get_mode {
            GetMode::Fold => "each record folded into a checksum that is checked (`--get-mode fold`)",
            GetMode::BlackBox => "`black_box` on every get's index and record (`--get-mode black-box`)",
        },
        probe,
    )
}

fn probe_text(cx: &Cx) -> String {
    format!(
        "64-byte pwrite + fdatasync into a separate 64 MiB file, {}, {}, {}",
        match cx.s.probe_fill {
            ProbeFill::Zeros4k =>
                "preallocated by writing zeros in 4 KiB writes (`--probe-fill 4k`)",
            ProbeFill::Zeros2m =>
                "preallocated by writing zeros in 2 MiB writes (`--probe-fill 2m`)",
            ProbeFill::Fallocate => "preallocated by fallocate only (`--probe-fill fallocate`)",
        },
        match cx.s.probe_offset {
            ProbeOffset::Random => "at a random 64-byte slot (`--probe-offset random`)",
            ProbeOffset::Fixed => "always at offset 0 (`--probe-offset fixed`)",
        },
        match cx.s.probe_order {
            ProbeOrder::After => "one right after each operation (`--probe-order after`)",
            ProbeOrder::Alternate =>
                "alternately after and before an operation (`--probe-order alternate`)",
        }
    )
}
