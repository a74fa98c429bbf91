//! The targets table: the benchmark targets recmap is held to, each
//! computed from figures of this one run (rows or workloads the run
//! skipped are "not measured").
//!
//! | target | judged on |
//! |---|---|
//! | update+commit median ≤ SQLite's | the two medians (the quotient of the two rows' median pair ratios to the probe shown too) |
//! | update+commit ≤ 1.1× the paired probe | the commit median over the median of the probes paired with it (the median of per-pair ratios is shown too) |
//! | update bytes/commit ≤ 12 KiB | including the checkpoint and fsync (during the commits shown too) |
//! | update100 ≤ 3× update | the two medians of a loop alternating one commit of each kind, each followed by a probe (the separate loops' medians and the quotient of their probe-normalised pair ratios shown too) |
//! | `Store::get` ≤ 1.1× a read-only raw map of recmap's file | the quotient of the two rows' per-pass ratios to the same get reference (the quotient of the medians shown too) |
//! | `Snapshot::get` ≤ 1.2× `Store::get` | the median of per-pair ratios of `Snapshot::get` passes to `Store::get` passes over the same indices, run alternately (the quotient through the get reference shown too) |
//! | snapshot scan ≥ 0.9× the `Store::iter` scan | `Snapshot::iter` scans paired with `Store::iter` scans: the median of the per-pair throughput ratios (quotient of the medians, and the `read_range` scan's figures, shown too) |
//! | bulk load ≥ 0.9× the best raw method | the median of per-pair ratios of recmap loads to raw write() + fdatasync loads run alternately (`--load-pairs`); without pairs, the load medians over the best of memmap2 MmapMut, file write, BufWriter |

use crate::harness::{fmt_ratio, fmt_value, Col, Cx, Paired, Unit};
use crate::systems::rows;

fn paired<'a>(cx: &'a Cx, row: &str, workload: &str) -> Option<&'a Paired> {
    cx.paired
        .iter()
        .find(|p| p.row == row && p.workload == workload)
}

fn value(cx: &Cx, row: &str, col: Col) -> Option<f64> {
    cx.table.get(row, col).map(|c| c.value)
}

enum Limit {
    AtMost(f64),
    AtLeast(f64),
}

struct Line {
    target: String,
    /// The judged figure and the text describing it, or None when not measured.
    figure: Option<(f64, String)>,
    limit: Limit,
    limit_text: String,
}

pub fn render(cx: &Cx) -> String {
    let mut lines = Vec::new();
    let x = |r: f64| format!("{}×", fmt_ratio(r));

    // 1. Single-record update + commit.
    let u_re = value(cx, rows::RECMAP, Col::UpdateP50);
    let u_sq = value(cx, rows::SQLITE, Col::UpdateP50);
    // The two loops run minutes apart: the quotient of their probe-normalised
    // pair ratios is the figure to read when the disk's speed drifts.
    let norm = paired(cx, rows::RECMAP, "update")
        .zip(paired(cx, rows::SQLITE, "update"))
        .map(|(a, b)| a.pair_ratio / b.pair_ratio);
    lines.push(Line {
        target: "update+commit median ≤ SQLite (WAL, synchronous=FULL) median".into(),
        figure: u_re.zip(u_sq).map(|(a, b)| {
            (
                a / b,
                format!(
                    "{} ({} / {}; probe-normalised: {})",
                    x(a / b),
                    fmt_value(a, Unit::Ns),
                    fmt_value(b, Unit::Ns),
                    norm.map_or("?".into(), x)
                ),
            )
        }),
        limit: Limit::AtMost(1.0),
        limit_text: "≤ 1.00×".into(),
    });
    let up = paired(cx, rows::RECMAP, "update");
    lines.push(Line {
        target: "update+commit median ≤ 1.1× the paired probe".into(),
        figure: up.map(|p| {
            (
                p.sys / p.yard,
                format!(
                    "{} ({} / {}; median of per-pair ratios {})",
                    x(p.sys / p.yard),
                    fmt_value(p.sys, Unit::Ns),
                    fmt_value(p.yard, Unit::Ns),
                    x(p.pair_ratio)
                ),
            )
        }),
        limit: Limit::AtMost(1.1),
        limit_text: "≤ 1.10×".into(),
    });
    let b_ck = value(cx, rows::RECMAP, Col::UpdateBytesCk);
    let b_du = value(cx, rows::RECMAP, Col::UpdateBytes);
    lines.push(Line {
        target: "update bytes/commit ≤ 12 KiB, including the checkpoint".into(),
        figure: b_ck.map(|b| {
            (
                b / 1024.0,
                format!(
                    "{} incl. checkpoint + fsync ({} during the commits)",
                    fmt_value(b, Unit::Bytes),
                    b_du.map_or("?".into(), |d| fmt_value(d, Unit::Bytes))
                ),
            )
        }),
        limit: Limit::AtMost(12.0),
        limit_text: "≤ 12 KiB".into(),
    });

    // 2. update100 against update: judged on the loop alternating the two
    // (both medians under the same disk conditions); the separate loops'
    // medians, a minute apart, shown too.
    let u100 = paired(cx, rows::RECMAP, "update100").and_then(|p| p.vs_update);
    let alt = paired(cx, rows::RECMAP, "update100 ÷ update (alternating)");
    let separate = |(m, pr): (f64, f64)| {
        format!(
            "{} (quotient of the probe-normalised pair ratios {})",
            x(m),
            x(pr)
        )
    };
    lines.push(Line {
        target: "update100+commit median ≤ 3× update+commit median".into(),
        figure: match (alt, u100) {
            (Some(a), u) => Some((
                a.sys / a.yard,
                format!(
                    "{} (alternating, {} rounds: medians {} / {}, per-round ratios {}; separate loops: {})",
                    x(a.sys / a.yard),
                    a.pairs,
                    fmt_value(a.sys, Unit::Ns),
                    fmt_value(a.yard, Unit::Ns),
                    x(a.pair_ratio),
                    u.map_or("not measured".into(), separate)
                ),
            )),
            (None, u) => u.map(|v| (v.0, separate(v))),
        },
        limit: Limit::AtMost(3.0),
        limit_text: "≤ 3.00×".into(),
    });

    // 3, 4. Gets, through the same get reference.
    let get_vs = |a: &str, b: &str| {
        let pa = paired(cx, a, "get")?;
        let pb = paired(cx, b, "get")?;
        let q = pa.pair_ratio / pb.pair_ratio;
        Some((
            q,
            format!(
                "{} ({} ref / {} ref; medians {} / {} = {})",
                x(q),
                x(pa.pair_ratio),
                x(pb.pair_ratio),
                fmt_value(pa.sys, Unit::Ns),
                fmt_value(pb.sys, Unit::Ns),
                x(pa.sys / pb.sys)
            ),
        ))
    };
    lines.push(Line {
        target: "Store::get ≤ 1.1× a read-only memmap2 map of recmap's file".into(),
        figure: get_vs(rows::RECMAP, rows::RECMAP_RO_MAP),
        limit: Limit::AtMost(1.1),
        limit_text: "≤ 1.10×".into(),
    });
    // Judged on the direct pairs (each Snapshot::get pass against a
    // Store::get pass over the same indices); the quotient of the two
    // rows' ratios to the reference is shown too.
    let direct = paired(cx, rows::RECMAP_SNAPSHOT, "get (direct pairs)");
    let via_ref = get_vs(rows::RECMAP_SNAPSHOT, rows::RECMAP);
    lines.push(Line {
        target: "Snapshot::get ≤ 1.2× Store::get".into(),
        figure: match (direct, via_ref) {
            (Some(d), r) => Some((
                d.pair_ratio,
                format!(
                    "{} (median of {} per-pair ratios, medians {} / {}; through the get reference: {})",
                    x(d.pair_ratio),
                    d.pairs,
                    fmt_value(d.sys, Unit::Ns),
                    fmt_value(d.yard, Unit::Ns),
                    r.map_or("not measured".into(), |(_, t)| t)
                ),
            )),
            (None, r) => r,
        },
        limit: Limit::AtMost(1.2),
        limit_text: "≤ 1.20×".into(),
    });
    // Judged on the snapshot's scan API (`Snapshot::iter`); the same scan
    // through `read_range` into a buffer of `--snapshot-chunk` records is
    // shown beside it (a buffer past the L1 cache costs any copy into it,
    // glibc's memcpy included: docs/benchmarks.md).
    let sc = paired(cx, rows::RECMAP_SNAPSHOT_ITER, "scan (GB/s)");
    let rr = paired(cx, rows::RECMAP_SNAPSHOT, "scan (GB/s)");
    let chunk = cx.s.snapshot_chunk;
    lines.push(Line {
        target: "snapshot scan (Snapshot::iter) ≥ 0.9× Store::iter scan".into(),
        figure: sc.map(|p| {
            (
                p.pair_ratio,
                format!(
                    "{} (median of per-pair ratios; medians {} / {} = {}; read_range, {chunk} records a call: {})",
                    x(p.pair_ratio),
                    fmt_value(p.sys, Unit::GBps),
                    fmt_value(p.yard, Unit::GBps),
                    x(p.sys / p.yard),
                    rr.map_or("not measured".into(), |r| format!(
                        "{} pairs, medians {} / {}",
                        x(r.pair_ratio),
                        fmt_value(r.sys, Unit::GBps),
                        fmt_value(r.yard, Unit::GBps)
                    ))
                ),
            )
        }),
        limit: Limit::AtLeast(0.9),
        limit_text: "≥ 0.90×".into(),
    });

    // 5. Bulk load against the best raw method.
    let raw = [rows::MEMMAP, rows::FILE, rows::BUFIO]
        .into_iter()
        .filter_map(|r| value(cx, r, Col::Load).map(|v| (r, v)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let load = value(cx, rows::RECMAP, Col::Load);
    let written = cx
        .load_bytes
        .iter()
        .find(|(r, _)| r == rows::RECMAP)
        .map(|(_, w)| *w);
    // Judged by the paired runs when there are any: loads measured minutes
    // apart differ by more than the margin on this machine.
    let paired_load = paired(cx, rows::RECMAP, "load (MB/s)");
    let written_text = written.map_or("?".into(), |w| format!("{w:.2}×"));
    let unpaired = load.zip(raw).map(|(l, (r, v))| {
        format!(
            "unpaired medians {} / {} of {r} = {}",
            fmt_value(l, Unit::MBps),
            fmt_value(v, Unit::MBps),
            x(l / v)
        )
    });
    let figure = match paired_load {
        Some(p) => Some((
            p.pair_ratio,
            format!(
                "{} (median of {} per-pair ratios to a raw write() + fdatasync of the same bytes; medians {} / {}; {}; recmap's load wrote {written_text} the record bytes)",
                x(p.pair_ratio),
                p.pairs,
                fmt_value(p.sys, Unit::MBps),
                fmt_value(p.yard, Unit::MBps),
                unpaired.clone().unwrap_or_else(|| "no unpaired raw rows".into())
            ),
        )),
        None => load.zip(raw).map(|(l, (_, v))| {
            (
                l / v,
                format!(
                    "{} ({}; recmap's load wrote {written_text} the record bytes)",
                    x(l / v),
                    unpaired.clone().unwrap_or_default()
                ),
            )
        }),
    };
    lines.push(Line {
        target: "bulk load ≥ 0.9× the best raw method".into(),
        figure,
        limit: Limit::AtLeast(0.9),
        limit_text: "≥ 0.90×".into(),
    });

    if lines.iter().all(|l| l.figure.is_none()) {
        return String::new();
    }
    let mut s = String::from("| target | limit | this run | met |\n|---|---:|---|:---:|\n");
    for l in lines {
        let (fig, met) = match &l.figure {
            None => ("not measured".to_string(), "—"),
            Some((v, text)) => {
                let ok = match l.limit {
                    Limit::AtMost(m) => *v <= m,
                    Limit::AtLeast(m) => *v >= m,
                };
                (text.clone(), if ok { "yes" } else { "no" })
            }
        };
        s.push_str(&format!(
            "| {} | {} | {fig} | {met} |\n",
            l.target, l.limit_text
        ));
    }
    s
}
