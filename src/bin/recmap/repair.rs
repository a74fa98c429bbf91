//! `recmap repair`: makes a damaged or truncated store consistent again, in
//! one of three modes:
//! - `truncate` (the default, `Repair::TruncateToVerified`, in place): keep
//!   the records before the first damaged page;
//! - `rebuild-checksums` (`Repair::RebuildChecksums`, in place): keep every
//!   record as it stands and recompute the checksums;
//! - `skip-damaged` (`--out NEW`): copy the records of every page that
//!   verifies into a new store, dropping only the damaged pages; the
//!   damaged store is read, not changed.
//!
//! Invariants: `--dry-run` opens the store read-only and writes nothing
//! (no file is created, extended or changed); the plan it prints is the
//! one the same command without it carries out, computed from the same
//! verification. The in-place modes are one library commit each (crash-safe
//! like any commit). `skip-damaged` builds the new store under a temporary
//! name and links it into place only once it is complete, committed and
//! verified, so `NEW` never exists half-written and an existing file is
//! never replaced.

use crate::common::{CliResult, Failure, EXIT_OK};
use crate::compact::copy_into_new;
use recmap::{Error, Info, Options, Problem, RawStore, Repair, VerifyReport};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
Modes:
  truncate           (default) keep the records before the first page that
                     fails its checksum and commit that count (a new
                     generation). Records from the first damaged page on are
                     dropped, good pages after it too.
  rebuild-checksums  keep every record as it stands now and recompute the
                     checksum of every page. For damage you know to be
                     harmless (a crash interrupted in-place updates and the
                     records as they are will do): damaged bytes are kept
                     and no longer reported.
  skip-damaged       copy the records of every page that verifies into a
                     new store (--out NEW, which must not exist) and drop
                     only the damaged pages; the records after a dropped
                     page move down. The damaged store is not changed.

--dry-run prints what the mode would do (records kept and dropped, the
damaged pages) and changes nothing. A store truncated by another program is
opened for salvage: it is extended back to the length its header needs, and
the pages that were cut off (read as zeros) count as damaged (a dry run can
only report the cut). Damage to both header slots or to the schema block
cannot be repaired. The in-place modes need the writer lock; skip-damaged
holds a read lock on the store, so no writer commits while it copies. A
sound store is left as it is (exit 0).

Examples:
  recmap repair ticks.rmap --dry-run
  recmap repair ticks.rmap
  recmap repair ticks.rmap --mode skip-damaged --out ticks-good.rmap";

/// How to repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Keep the records before the first damaged page (in place).
    Truncate,
    /// Keep every record and recompute every checksum (in place).
    RebuildChecksums,
    /// Copy the records of every sound page into a new store (--out).
    SkipDamaged,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// What to keep.
    #[arg(long, value_enum, default_value_t = Mode::Truncate)]
    pub mode: Mode,
    /// The new store for --mode skip-damaged (must not exist).
    #[arg(long, value_name = "NEW")]
    pub out: Option<PathBuf>,
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait for another writer to close the store instead of failing.
    #[arg(long)]
    pub wait: bool,
}

/// Records per data page and where pages sit, for the messages.
struct Pages {
    per_page: u64,
    pages_per_group: u64,
    data_page0: u64,
    records: u64,
}

impl Pages {
    fn of(info: &Info) -> Pages {
        Pages {
            per_page: info.records_per_page,
            pages_per_group: info.pages_per_group,
            data_page0: info.data_offset / 4096,
            records: info.committed_records,
        }
    }
    fn count(&self) -> u64 {
        self.records.div_ceil(self.per_page)
    }
    /// `data pages A..B (file pages C..D)` for groups `[a, b)`.
    fn span(&self, a: u64, b: u64) -> String {
        let file = |g: u64| self.data_page0 + g * self.pages_per_group;
        let what = if b == a + 1 {
            format!("data page {a}")
        } else {
            format!("data pages {a}..{b}")
        };
        format!("{what} (file pages {}..{})", file(a), file(b))
    }
}

/// The damaged groups `verify` listed, in order; `None` if it omitted some
/// (then each page is checked again while copying).
fn damaged_groups(rep: &VerifyReport) -> Result<Vec<u64>, Failure> {
    if let Some(p) = rep
        .problems
        .iter()
        .find(|p| !matches!(p, Problem::PageChecksum { .. }))
    {
        return Err(Failure::usage(format!(
            "cannot repair: {p} (only damaged data pages can be repaired)"
        )));
    }
    Ok(rep
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::PageChecksum { group, .. } => Some(*group),
            _ => None,
        })
        .collect())
}

fn plural(n: u64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// The plan, as lines; `first` is the first damaged record (truncate keeps
/// records before it).
fn describe(path: &str, mode: Mode, pages: &Pages, rep: &VerifyReport, will: bool) -> Vec<String> {
    let damaged = rep.problems.len() as u64 + rep.problems_omitted;
    let n = pages.records;
    // The verbs: what a dry run would do, or what was done.
    let v = |would: &'static str, did: &'static str| if will { did } else { would };
    let mut out = vec![format!(
        "{path}: {} in {}, generation {}; {} damaged",
        plural(n, "record"),
        plural(pages.count(), "data page"),
        rep.generation,
        plural(damaged, "page")
    )];
    for p in &rep.problems {
        out.push(format!("  damaged: {p}"));
    }
    if rep.problems_omitted > 0 {
        out.push(format!(
            "  and {} more damaged pages not listed",
            rep.problems_omitted
        ));
    }
    let first = rep
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::PageChecksum { first_record, .. } => Some(*first_record),
            _ => None,
        })
        .min()
        .unwrap_or(n);
    match mode {
        Mode::Truncate => {
            let g = first / pages.per_page;
            out.push(format!(
                "{} records 0..{first} ({first} of {n}) and {} {} (records {first}..{n}: {}, \
                 {} of them damaged)",
                v("would keep", "kept"),
                v("drop", "dropped"),
                n - first,
                pages.span(g, pages.count()),
                damaged
            ));
        }
        Mode::RebuildChecksums => out.push(format!(
            "{} all {} and {} the checksums of all {}: the damaged pages' records are kept \
             as they read now",
            v("would keep", "kept"),
            plural(n, "record"),
            v("rewrite", "rewrote"),
            plural(pages.count(), "data page")
        )),
        Mode::SkipDamaged => {
            let dropped: u64 = rep
                .problems
                .iter()
                .map(|p| match p {
                    Problem::PageChecksum {
                        first_record,
                        end_record,
                        ..
                    } => end_record - first_record,
                    _ => 0,
                })
                .sum();
            let more = if rep.problems_omitted > 0 {
                " at least"
            } else {
                ""
            };
            out.push(format!(
                "{}{more} {} of {n} into the new store and {}{more} {} (the records of the \
                 damaged pages); records after a dropped page move down",
                v("would copy", "copied"),
                plural(n - dropped, "record"),
                v("drop", "dropped"),
                dropped
            ));
            if rep.problems_omitted == 0 {
                out.push(moves(pages, rep));
            }
        }
    }
    out
}

/// Where the kept records of `skip-damaged` land: `old -> new` index
/// ranges, at most `MAX_MOVES` of them listed.
fn moves(pages: &Pages, rep: &VerifyReport) -> String {
    const MAX_MOVES: usize = 20;
    let mut parts = Vec::new();
    let (mut from, mut to) = (0u64, 0u64);
    let mut cuts: Vec<(u64, u64)> = rep
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::PageChecksum {
                first_record,
                end_record,
                ..
            } => Some((*first_record, *end_record)),
            _ => None,
        })
        .collect();
    cuts.push((pages.records, pages.records));
    for (a, b) in cuts {
        if a > from {
            parts.push(format!("{from}..{a} -> {to}..{}", to + (a - from)));
            to += a - from;
        }
        from = b;
    }
    let total = parts.len();
    parts.truncate(MAX_MOVES);
    let more = if total > MAX_MOVES {
        format!(", and {} more ranges", total - MAX_MOVES)
    } else {
        String::new()
    };
    format!(
        "  records kept (old -> new index): {}{more}",
        parts.join(", ")
    )
}

pub fn run(a: Args) -> CliResult {
    match (a.mode, &a.out) {
        (Mode::SkipDamaged, None) => {
            return Err(Failure::usage(
                "--mode skip-damaged writes a new store: give --out NEW",
            ))
        }
        (Mode::Truncate | Mode::RebuildChecksums, Some(_)) => {
            return Err(Failure::usage(
                "--out is for --mode skip-damaged (the other modes repair in place)",
            ))
        }
        _ => {}
    }
    if let Some(out) = &a.out {
        if out.symlink_metadata().is_ok() {
            return Err(Failure::usage(format!(
                "{} already exists: --out needs a new path",
                out.display()
            )));
        }
    }
    if a.dry_run {
        dry_run(&a)
    } else if a.mode == Mode::SkipDamaged {
        skip_damaged(&a)
    } else {
        in_place(&a)
    }
}

fn dry_run(a: &Args) -> CliResult {
    let lines = plan(a)?;
    let mut out = crate::common::stdout();
    lines
        .iter()
        .try_for_each(|l| writeln!(out, "{l}"))
        .and_then(|()| writeln!(out, "dry run: nothing was changed"))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::io("write stdout", e))?;
    Ok(EXIT_OK)
}

/// What a repair would do, from a read-only open (which writes nothing).
fn plan(a: &Args) -> Result<Vec<String>, Failure> {
    let path = a.path.display().to_string();
    let store = match Options::new()
        .wait_for_lock(a.wait)
        .open_raw_read_only(&a.path)
    {
        Ok(s) => s,
        Err(Error::Truncated {
            expected, actual, ..
        }) => {
            return Ok(vec![
                format!("{path}: truncated to {actual} bytes, its header needs {expected}"),
                format!(
                    "would extend it back to {expected} bytes; the pages past byte {actual} \
                     read as zeros and fail their checksums (which records that drops is known \
                     only after the extension: repair a copy to see it)"
                ),
            ]);
        }
        Err(e) => return Err(e.into()),
    };
    let rep = store.verify()?;
    damaged_groups(&rep)?;
    if rep.is_ok() {
        return Ok(vec![format!(
            "{path}: sound, nothing to repair ({}, generation {})",
            plural(store.committed_len(), "record"),
            rep.generation
        )]);
    }
    let mut lines = describe(&path, a.mode, &Pages::of(&store.info()), &rep, false);
    if let Some(out) = &a.out {
        lines.push(format!("would write the new store {}", out.display()));
    }
    Ok(lines)
}

/// Notes a salvage extension on stderr.
fn note_truncation(path: &Path, before_len: Option<u64>, needed: u64) {
    if let Some(len) = before_len.filter(|&l| l < needed) {
        eprintln!(
            "{}: the file was truncated to {len} bytes (its header needs {needed}); \
             extended back for salvage",
            path.display()
        );
    }
}

fn in_place(a: &Args) -> CliResult {
    let before_len = std::fs::metadata(&a.path).map(|m| m.len()).ok();
    let mut store = Options::new()
        .salvage(true)
        .wait_for_lock(a.wait)
        .open_raw(&a.path, None)?;
    note_truncation(&a.path, before_len, store.info().file_size);
    // The report is of the verification the repair acted on (`rep.before`).
    let pages = Pages::of(&store.info());
    let how = match a.mode {
        Mode::RebuildChecksums => Repair::RebuildChecksums,
        _ => Repair::TruncateToVerified,
    };
    let rep = store.repair(how)?;
    store.checkpoint()?;
    drop(store);
    let path = a.path.display().to_string();
    if rep.before.is_ok() {
        eprintln!(
            "{path}: sound, nothing to repair ({}, generation {})",
            plural(rep.records_after, "record"),
            rep.generation
        );
        return Ok(EXIT_OK);
    }
    for line in describe(&path, a.mode, &pages, &rep.before, true) {
        eprintln!("{line}");
    }
    eprintln!(
        "committed as generation {}: {} kept, {} dropped, {} rewritten",
        rep.generation,
        plural(rep.records_after, "record"),
        rep.records_before - rep.records_after,
        plural(rep.pages_rewritten, "page checksum")
    );
    Ok(EXIT_OK)
}

/// Opens the damaged store for copying: read-only (a read lock: no writer
/// commits meanwhile), or for salvage if another program truncated it.
fn open_source(a: &Args) -> Result<(RawStore, bool), Failure> {
    match Options::new()
        .wait_for_lock(a.wait)
        .open_raw_read_only(&a.path)
    {
        Err(Error::Truncated {
            expected, actual, ..
        }) => {
            let s = Options::new()
                .salvage(true)
                .wait_for_lock(a.wait)
                .open_raw(&a.path, None)?;
            note_truncation(&a.path, Some(actual), expected);
            Ok((s, true))
        }
        r => Ok((r?, false)),
    }
}

fn skip_damaged(a: &Args) -> CliResult {
    let out = a.out.as_deref().expect("checked in run");
    let (src, salvaged) = open_source(a)?;
    let rep = src.verify()?;
    let listed = damaged_groups(&rep)?;
    let path = a.path.display().to_string();
    if rep.is_ok() {
        eprintln!(
            "{path}: sound, nothing to repair ({}); {} not written",
            plural(src.committed_len(), "record"),
            out.display()
        );
        return Ok(EXIT_OK);
    }
    let pages = Pages::of(&src.info());
    let mut damaged = listed.iter().peekable();
    let omitted = rep.problems_omitted > 0;
    let (kept, dropped) = copy_into_new(&src, out, None, &mut |g, range| {
        // Listed damage is known; with some omitted, check every page again.
        if omitted {
            !matches!(src.check_records(range), Err(Error::CorruptPage { .. }))
        } else {
            damaged.next_if_eq(&&g).is_none()
        }
    })?;
    drop(src);
    for line in describe(&path, Mode::SkipDamaged, &pages, &rep, true) {
        eprintln!("{line}");
    }
    eprintln!(
        "wrote {}: {} ({} dropped); {path} {}",
        out.display(),
        plural(kept, "record"),
        dropped,
        if salvaged {
            "was only extended back"
        } else {
            "is unchanged"
        }
    );
    Ok(EXIT_OK)
}
