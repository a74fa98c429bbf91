//! `recmap verify`: checks a store's header slots, schema block, length and
//! every committed page checksum; exit 0 when sound, 1 when damaged.

use crate::common::{note, stdout, CliResult, Failure, EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTED};
use crate::progress::Progress;
use crate::signals;
use recmap::{Problem, RawReader, RawStore, VerifyReport};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

pub const HELP: &str = "\
Exit status: 0 when the store is sound, 1 when problems were found (each is
listed with its data page, file pages and record range), 2 when the file
cannot be checked (missing, not a recmap file, locked, I/O error).
Notes (an older header slot torn by a crash) are not damage.

Verification reads every committed page once (time in proportion to the
records, not to the file's capacity). While stderr is a terminal a progress
line shows the pages checked; Ctrl-C stops it with a message (exit 130).

While a writer holds the store (a running load, a program with the store
open), verify reads through a snapshot of the writer's newest commit and
checks what a reader can check consistently: every committed data page of
that commit, copied under the snapshot's check, against the checksum that
commit gave it (from the checksum table, the log commits since the last
checkpoint, or the tail checksum). A page a later commit changes meanwhile is
checked again as of a newer commit (the output names both generations);
it is never reported as damage. Not checked beside a writer: the header
slots and the file length (the writer rewrites them), and records the writer
has not committed. The output says a writer was active; JSON adds
writer_active, writer_pid, last_generation and pages_rechecked.

Examples:
  recmap verify ticks.rmap
  recmap verify ticks.rmap --json";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

fn problem_json(p: &Problem) -> serde_json::Value {
    let mut v = match p {
        Problem::HeaderSlot { slot, .. } => json!({"kind": "header_slot", "slot": slot}),
        Problem::SchemaChecksum { expected, got } => {
            json!({"kind": "schema_checksum", "expected": expected, "got": got})
        }
        Problem::FileLength { expected, actual } => {
            json!({"kind": "file_length", "expected": expected, "actual": actual})
        }
        Problem::PageChecksum {
            group,
            first_page,
            pages,
            first_record,
            end_record,
            expected,
            got,
        } => json!({
            "kind": "page_checksum", "data_page": group, "first_page": first_page, "pages": pages,
            "first_record": first_record, "end_record": end_record, "expected": expected, "got": got,
        }),
    };
    v["message"] = json!(p.to_string());
    v
}

/// Open errors that mean the file is a damaged recmap store (exit 1, not 2).
fn is_damage(e: &recmap::Error) -> bool {
    matches!(
        e,
        recmap::Error::NoValidHeader { .. }
            | recmap::Error::HeaderDamaged { .. }
            | recmap::Error::ChecksumMismatch { .. }
            | recmap::Error::BadSchema { .. }
            | recmap::Error::Truncated { .. }
    )
}

pub fn run(a: Args) -> CliResult {
    let path = a.path.display().to_string();
    let opened = match RawStore::open_read_only(&a.path) {
        Err(recmap::Error::Locked { .. }) => match RawReader::open(&a.path) {
            Ok(r) => return beside_writer(r, &a),
            Err(e) => Err(e),
        },
        r => r,
    };
    let (report, fatal): (VerifyReport, Option<String>) = match opened {
        Ok(mut store) => {
            // Verify reads every page in order: let the kernel read ahead.
            store.set_access(recmap::AccessPattern::Sequential);
            signals::catch_interrupt();
            let mut progress = Progress::new(a.quiet);
            let report = store.verify_with(&mut |done, total| {
                progress.tick_of("verify", done, total, "pages");
                !signals::interrupted()
            });
            progress.clear();
            (report?, None)
        }
        Err(e @ recmap::Error::Truncated { .. }) => (
            VerifyReport::default(),
            Some(format!(
                "{e} (cut by another program? `recmap repair` keeps the records it can verify)"
            )),
        ),
        Err(e) if is_damage(&e) => (VerifyReport::default(), Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let ok = report.is_ok() && fatal.is_none();
    let mut out = stdout();
    let text = if a.json {
        let mut problems: Vec<_> = report.problems.iter().map(problem_json).collect();
        if let Some(f) = &fatal {
            problems.push(json!({"kind": "unreadable", "message": f}));
        }
        let v = json!({
            "path": path,
            "ok": ok,
            "writer_active": false,
            "generation": report.generation,
            "pages_checked": report.pages_checked,
            "records_checked": report.records_checked,
            "pages_skipped": report.pages_skipped,
            "problems_omitted": report.problems_omitted,
            "problems": problems,
            "notes": report.notes.iter().map(problem_json).collect::<Vec<_>>(),
        });
        let mut s = serde_json::to_string_pretty(&v).expect("JSON of plain values");
        s.push('\n');
        s
    } else {
        let mut s = String::new();
        if let Some(f) = &fatal {
            s.push_str(&format!("{path}: DAMAGED: {f}\n"));
        } else if ok {
            s.push_str(&format!(
                "{path}: ok (generation {}, {} data pages, {} records checked)\n",
                report.generation, report.pages_checked, report.records_checked
            ));
        } else {
            s.push_str(&format!(
                "{path}: {} problem{} (generation {}, {} data pages, {} records checked):\n",
                report.problems.len() as u64 + report.problems_omitted,
                if report.problems.len() as u64 + report.problems_omitted == 1 {
                    ""
                } else {
                    "s"
                },
                report.generation,
                report.pages_checked,
                report.records_checked
            ));
            for p in &report.problems {
                s.push_str(&format!("  {p}\n"));
            }
            if report.problems_omitted > 0 {
                s.push_str(&format!(
                    "  ... and {} more damaged data pages (not listed)\n",
                    report.problems_omitted
                ));
            }
        }
        for n in &report.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        s
    };
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    Ok(if ok { EXIT_OK } else { EXIT_REJECTED })
}

/// Damaged pages listed beside a writer (as the library's `verify` does).
const MAX_PROBLEMS: usize = 10_000;

/// The failure when snapshot after snapshot expired.
fn expired(e: recmap::Error, views: u32, pages: u64) -> Failure {
    Failure::usage(format!(
        "verify: {e}\n  (a writer kept changing the pages being checked: {views} snapshots \
         expired; {pages} data pages were checked; try again, or while the writer is idle)"
    ))
}

/// What `verify` checked through snapshots beside a writer.
#[derive(Default)]
struct Beside {
    /// The commit the check started on, and the last one it read.
    first_generation: u64,
    last_generation: u64,
    pages_checked: u64,
    records_checked: u64,
    /// Pages a later commit changed before they were read, checked again
    /// as of a newer commit.
    pages_rechecked: u64,
    problems: Vec<Problem>,
    problems_omitted: u64,
}

/// `verify` while a writer holds the store: every committed page of the
/// writer's newest commit, through a snapshot, against the checksum that
/// commit gave it (`RawSnapshot::read_group_checked`). A page a later
/// commit changed meanwhile expires the snapshot: the check goes on from
/// that page on a new snapshot (at most `READ_TXN_TRIES` in all).
fn beside_writer(mut r: RawReader, a: &Args) -> CliResult {
    let path = a.path.display().to_string();
    let pid = r.writer_pid().filter(|&p| p > 0);
    r.set_access(recmap::AccessPattern::Sequential);
    signals::catch_interrupt();
    let mut progress = Progress::new(a.quiet);
    let mut rep = Beside::default();
    let mut buf = Vec::new();
    let mut next = 0u64;
    let mut views = 0u32;
    loop {
        views += 1;
        let snap = r.snapshot()?;
        if views == 1 {
            rep.first_generation = snap.generation();
            note(&format!(
                "a writer{} holds the store; verifying its commit {} ({} records) through a snapshot",
                pid.map_or(String::new(), |p| format!(" (pid {p})")),
                snap.generation(),
                snap.len()
            ));
        }
        rep.last_generation = snap.generation();
        let mut sums = match snap.page_sums() {
            Ok(s) => s,
            Err(e @ recmap::Error::SnapshotExpired { .. }) => {
                if views >= recmap::READ_TXN_TRIES {
                    progress.clear();
                    return Err(expired(e, views, rep.pages_checked));
                }
                crate::common::backoff(views);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let p = recmap::format::Packing::new(snap.schema().record_size as u64);
        let groups = snap.len().div_ceil(p.records_per_group);
        let total = groups * p.pages_per_group;
        let mut restart = false;
        while next < groups {
            if next.is_multiple_of(4096) {
                progress.tick_of("verify", next * p.pages_per_group, total, "pages");
                if signals::interrupted() {
                    progress.clear();
                    return Err(Failure {
                        code: EXIT_INTERRUPTED,
                        message: format!(
                            "{path}: verify interrupted after {} of {total} data pages \
                             (no damage found in them)",
                            next * p.pages_per_group
                        ),
                    });
                }
            }
            match snap.read_group_checked(&mut sums, next, &mut buf) {
                Ok(found) => {
                    if let Some(problem) = found {
                        if rep.problems.len() >= MAX_PROBLEMS {
                            rep.problems_omitted += 1;
                        } else {
                            rep.problems.push(problem);
                        }
                    }
                    rep.pages_checked += p.pages_per_group;
                    rep.records_checked += (buf.len() / p.record_size as usize) as u64;
                    next += 1;
                }
                Err(e @ recmap::Error::SnapshotExpired { .. }) => {
                    if views >= recmap::READ_TXN_TRIES {
                        progress.clear();
                        return Err(expired(e, views, rep.pages_checked));
                    }
                    rep.pages_rechecked += p.pages_per_group;
                    crate::common::backoff(views);
                    restart = true;
                    break;
                }
                Err(e) => {
                    progress.clear();
                    return Err(e.into());
                }
            }
        }
        if !restart {
            progress.tick_of("verify", total, total, "pages");
            break;
        }
    }
    progress.clear();
    let ok = rep.problems.is_empty() && rep.problems_omitted == 0;
    let gens = if rep.first_generation == rep.last_generation {
        format!("commit {}", rep.first_generation)
    } else {
        format!(
            "commit {} (pages changed meanwhile as of commit {})",
            rep.first_generation, rep.last_generation
        )
    };
    let text = if a.json {
        let v = json!({
            "path": path,
            "ok": ok,
            "writer_active": true,
            "writer_pid": pid,
            "generation": rep.first_generation,
            "last_generation": rep.last_generation,
            "pages_checked": rep.pages_checked,
            "records_checked": rep.records_checked,
            "pages_rechecked": rep.pages_rechecked,
            "pages_skipped": 0,
            "problems_omitted": rep.problems_omitted,
            "problems": rep.problems.iter().map(problem_json).collect::<Vec<_>>(),
            "notes": [],
        });
        let mut s = serde_json::to_string_pretty(&v).expect("JSON of plain values");
        s.push('\n');
        s
    } else {
        let n = rep.problems.len() as u64 + rep.problems_omitted;
        let mut s = if ok {
            format!(
                "{path}: ok ({gens}, {} data pages, {} records checked)\n",
                rep.pages_checked, rep.records_checked
            )
        } else {
            format!(
                "{path}: {n} problem{} ({gens}, {} data pages, {} records checked):\n",
                if n == 1 { "" } else { "s" },
                rep.pages_checked,
                rep.records_checked
            )
        };
        for p in &rep.problems {
            s.push_str(&format!("  {p}\n"));
        }
        if rep.problems_omitted > 0 {
            s.push_str(&format!(
                "  ... and {} more damaged data pages (not listed)\n",
                rep.problems_omitted
            ));
        }
        s.push_str(&format!(
            "  note: a writer{} held the store: checked through a snapshot, every committed \
             page against the checksum its commit gave it; not checked: the header slots and \
             file length the writer rewrites, and its uncommitted records\n",
            pid.map_or(String::new(), |p| format!(" (pid {p})"))
        ));
        s
    };
    let mut out = stdout();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io("stdout", e))?;
    Ok(if ok { EXIT_OK } else { EXIT_REJECTED })
}
