//! `recmap verify`: checks a store's header slots, schema block, length and
//! every committed page checksum; exit 0 when sound, 1 when damaged.

use crate::common::{stdout, CliResult, Failure, EXIT_OK, EXIT_REJECTED};
use crate::progress::Progress;
use crate::signals;
use recmap::{Problem, RawStore, VerifyReport};
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
            | recmap::Error::ChecksumMismatch { .. }
            | recmap::Error::BadSchema { .. }
            | recmap::Error::Truncated { .. }
    )
}

pub fn run(a: Args) -> CliResult {
    let path = a.path.display().to_string();
    let (report, fatal): (VerifyReport, Option<String>) = match RawStore::open_read_only(&a.path) {
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
