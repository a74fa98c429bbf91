//! `recmap compact`: checkpoints a store's log and shrinks its data file to
//! what the committed records need, in place (the library's
//! `RawStore::compact`), or writes a compacted copy to a new path (`--out`,
//! optionally with a smaller growth unit); prints the sizes before and
//! after. Also owns `copy_into_new`, the copy that `repair --mode
//! skip-damaged` uses too.
//!
//! Invariants:
//! - in place, the whole run holds the writer lock (no other writer is
//!   active) and the shrink the coordination file's exclusive lock (no
//!   reader maps the pages it cuts off); every step is the library's
//!   crash-safe sequence (new checksum table in unused space, synced; the
//!   header pointing at it made durable; only then the truncation), so a
//!   crash at any point leaves the old layout or the new one, whole. The
//!   store keeps its inode, owner, mode and links: nothing is renamed;
//! - a copy is built under a temporary name beside its destination,
//!   committed, verified and closed, and only then hard-linked to the
//!   destination (which fails if that exists: nothing is ever replaced), so
//!   the destination appears complete or not at all;
//! - neither changes a record: a copy holds the source's records in order
//!   (less the pages the caller leaves out), with the same schema.

use crate::common::{human_bytes, CliResult, Failure, RemoveOnFail, EXIT_OK};
use recmap::{Error, Options, RawStore};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
Folds the log into the data file (a checkpoint) and shrinks the data file to
the smallest multiple of its growth unit (the chunk size, at most 64 MiB)
that holds the committed records and their checksum table: the room a load
or a repair left behind is given back. The records, the schema and the
growth unit are unchanged; `verify` stays clean.

In place it is crash-safe: a crash at any point leaves the store whole, in
its old length or its new one. It needs the writer lock (fails at once while
another writer has the store open, unless --wait) and no readers: while a
reader has the store open the file cannot shrink (exit 2; the log is still
checkpointed). The log file (<store>-wal) keeps its length; its contents are
folded in.

With --out NEW it writes a compacted copy instead (NEW must not exist; the
store is only read, under a read lock), which may take a smaller growth unit
(--chunk-size, a multiple of 65536): the tightest file for a store that will
not grow much. Swap it in yourself once nothing has the store open.

Examples:
  recmap compact ticks.rmap
  recmap compact ticks.rmap --out ticks-small.rmap --chunk-size 65536";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    pub path: PathBuf,
    /// Write a compacted copy to NEW (must not exist) instead of shrinking in place.
    #[arg(long, value_name = "NEW")]
    pub out: Option<PathBuf>,
    /// Growth unit of the copy in bytes (a multiple of 65536; default: the store's).
    #[arg(long, value_name = "BYTES", requires = "out")]
    pub chunk_size: Option<u64>,
    /// Wait for another writer to close the store instead of failing.
    #[arg(long)]
    pub wait: bool,
}

fn len_of(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// The file beside the store's canonical path (where its log is, whatever
/// name the store was given by).
fn side(p: &Path, suffix: &str) -> PathBuf {
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut s = p.into_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn run(a: Args) -> CliResult {
    if let Some(out) = &a.out {
        return copy(&a, out);
    }
    let path = a.path.display().to_string();
    let mut store = crate::common::open_writer(|| {
        Options::new().wait_for_lock(a.wait).open_raw(&a.path, None)
    })?;
    // Under the lock: no writer can change the sizes between here and the end.
    let (data_before, log_before) = (len_of(&a.path), len_of(&side(&a.path, "-wal")));
    // Opening a writer replays and folds in any log; this is for certain.
    store.checkpoint()?;
    let released = match store.compact() {
        Ok(n) => n,
        Err(e @ Error::ReadersPresent { .. }) => {
            return Err(Failure::usage(format!(
                "{e}\n  (the log was checkpointed; run compact again once the readers have \
                 closed the store)"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let info = store.info();
    store.close()?;
    let (data_after, log_after) = (len_of(&a.path), len_of(&side(&a.path, "-wal")));
    eprintln!(
        "{path}: data file {} -> {} ({data_before} -> {data_after} bytes, {} released); \
         log {} -> {}, checkpointed",
        human_bytes(data_before),
        human_bytes(data_after),
        human_bytes(released),
        human_bytes(log_before),
        human_bytes(log_after),
    );
    eprintln!(
        "  {} records of {} bytes, capacity {} records, growth unit {}",
        info.committed_records,
        info.record_size,
        info.capacity,
        human_bytes(info.chunk_size.min(64 << 20))
    );
    Ok(EXIT_OK)
}

fn copy(a: &Args, out: &Path) -> CliResult {
    if out.symlink_metadata().is_ok() {
        return Err(Failure::usage(format!(
            "{} already exists: --out needs a new path",
            out.display()
        )));
    }
    let src = Options::new()
        .wait_for_lock(a.wait)
        .open_raw_read_only(&a.path)?;
    src.check_records(0..src.committed_len())?;
    let before = len_of(&a.path);
    let (kept, _) = copy_into_new(&src, out, a.chunk_size, &mut |_, _| true)?;
    drop(src);
    let after = len_of(out);
    eprintln!(
        "{}: {} ({before} bytes) -> {}: {} ({after} bytes), {kept} records",
        a.path.display(),
        human_bytes(before),
        out.display(),
        human_bytes(after),
    );
    Ok(EXIT_OK)
}

/// A path beside `out` to build it under: `.<name>.tmp-<pid>`.
fn temp_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Uncommitted bytes staged before a commit while copying (bounds memory).
const COPY_BATCH: u64 = 64 << 20;

/// Copies the committed records of `src` into a new store at `out` (which
/// must not exist): the records of each data page `g` (records `range`)
/// for which `keep(g, range)` is true, in order, with `src`'s schema and
/// growth unit (or `chunk_size`), sized for exactly what it holds. Returns
/// (records copied, records left out). See the module invariants.
pub fn copy_into_new(
    src: &RawStore,
    out: &Path,
    chunk_size: Option<u64>,
    keep: &mut dyn FnMut(u64, Range<u64>) -> bool,
) -> Result<(u64, u64), Failure> {
    let info = src.info();
    let (per_page, n) = (info.records_per_page, info.committed_records);
    let mut wanted = Vec::new();
    let mut kept = 0;
    for g in 0..n.div_ceil(per_page) {
        let range = g * per_page..((g + 1) * per_page).min(n);
        if keep(g, range.clone()) {
            kept += range.end - range.start;
            wanted.push(range);
        }
    }
    let tmp = temp_beside(out);
    let mut guard = RemoveOnFail {
        path: Some(tmp.clone()),
    };
    // Errors of the copy name the file being built, which is the temporary
    // one: say which store it was to become (and that it is gone).
    let named = |f: Failure| Failure {
        message: format!(
            "{} was not written (it was being built as {}, now removed): {}",
            out.display(),
            tmp.display(),
            f.message
        ),
        ..f
    };
    let r = build_copy(src, out, &tmp, chunk_size, wanted, kept, &mut guard);
    r.map(|()| (kept, n - kept)).map_err(named)
}

/// The part of `copy_into_new` that writes: the new store under `tmp`,
/// then linked to `out`.
fn build_copy(
    src: &RawStore,
    out: &Path,
    tmp: &Path,
    chunk_size: Option<u64>,
    wanted: Vec<Range<u64>>,
    kept: u64,
    guard: &mut RemoveOnFail,
) -> Result<(), Failure> {
    let info = src.info();
    let mut dst = Options::new()
        .create_new(true)
        .chunk_size(chunk_size.unwrap_or(info.chunk_size))
        .append_only(info.append_only)
        .initial_capacity(kept)
        .open_raw(tmp, Some(src.schema()))?;
    let size = info.record_size as u64;
    let mut staged = 0u64;
    for range in wanted {
        for (_, bytes) in src.runs(range) {
            dst.extend_from_bytes(bytes)?;
            staged += bytes.len() as u64;
        }
        if staged >= COPY_BATCH {
            dst.commit()?;
            staged = 0;
        }
    }
    dst.commit()?;
    match dst.compact() {
        Ok(_) | Err(Error::ReadersPresent { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let check = dst.verify()?;
    if !check.is_ok() || dst.committed_len() != kept || dst.record_size() as u64 != size {
        return Err(Failure::usage(format!(
            "the copy {} did not verify ({} problems); {} was not written",
            tmp.display(),
            check.problems.len(),
            out.display()
        )));
    }
    dst.close()?;
    // The copy gets the source's permission bits (best effort).
    if let Ok(m) = std::fs::metadata(src.path()) {
        let _ = std::fs::set_permissions(tmp, m.permissions());
    }
    // `hard_link` fails if `out` exists: nothing is ever replaced.
    std::fs::hard_link(tmp, out)
        .map_err(|e| Failure::io(format!("link {} to {}", tmp.display(), out.display()), e))?;
    // The temporary name goes, with its log (only checkpointed frames) and
    // coordination file (only this process's state).
    let _ = std::fs::remove_file(tmp);
    guard.drop_side_files();
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
