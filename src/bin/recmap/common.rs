//! Shared plumbing for the subcommands: the error type and exit codes,
//! tracing setup, schema arguments, opening stores, ranges and stdout.

use recmap::{Info, PageSums, RawReader, RawSnapshot, RawStore, Schema, SchemaError};
use std::fmt::Display;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: data rejected (verify found problems, load refused a row).
pub const EXIT_REJECTED: u8 = 1;
/// Exit code: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;

/// Why a subcommand stopped: an exit code and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    /// Printed as `recmap: <message>`; empty for a silent exit.
    pub message: String,
}

/// What a subcommand returns: the exit code on success.
pub type CliResult = Result<u8, Failure>;

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
    /// Rejected input data (exit 1).
    pub fn rejected(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_REJECTED,
            message: message.into(),
        }
    }
    /// An I/O error while doing `what`. A closed stdout (broken pipe) exits
    /// quietly with success: the reader stopped reading, which is its choice.
    pub fn io(what: impl Display, e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Failure {
                code: EXIT_OK,
                message: String::new(),
            };
        }
        Failure::usage(format!("{what}: {e}"))
    }
}

/// Exit code: interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

impl From<recmap::Error> for Failure {
    fn from(e: recmap::Error) -> Failure {
        use recmap::Error as E;
        match &e {
            // Damage met while serving records, and the file-size limit:
            // the data was refused (exit 1), not the command line.
            E::CorruptPage { .. } => Failure::rejected(format!(
                "{e}\n  (run `recmap verify` for every damaged page, `recmap repair` to keep \
                 the records before the first one, or pass --no-verify to read anyway)"
            )),
            E::FileTooLarge { .. } => Failure::rejected(format!(
                "{e}\n  (the file-size limit was reached: see `ulimit -f`)"
            )),
            E::Io { source, .. } if is_efbig(source) => Failure::rejected(format!(
                "{e}\n  (the file-size limit was reached: see `ulimit -f`)"
            )),
            E::Poisoned { reason, .. } if reason.contains("File too large") => {
                Failure::rejected(e.to_string())
            }
            E::Interrupted { .. } => Failure {
                code: EXIT_INTERRUPTED,
                message: e.to_string(),
            },
            _ => Failure::usage(e.to_string()),
        }
    }
}

fn is_efbig(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EFBIG)
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::FileTooLarge
    }
}

/// Prints the failure (if any) and turns the result into the process exit code.
pub fn finish(result: CliResult) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if !f.message.is_empty() {
                let _ = writeln!(io::stderr().lock(), "recmap: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Reports a command-line parsing error as `recmap: ...` (exit 2); help and
/// version requests print normally (exit 0; bare `recmap` prints help, exit 2).
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let _ = write!(io::stderr().lock(), "recmap: {text}");
    ExitCode::from(EXIT_USAGE)
}

/// Turns on the library's tracing when `RUST_LOG` is set (to stderr).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::from_default_env();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .try_init();
    }
}

/// Parses a schema spec, explaining where it went wrong.
pub fn parse_spec(spec: &str, origin: &str) -> Result<Schema, Failure> {
    Schema::parse(spec).map_err(|e| match &e {
        SchemaError::Spec { at, part, reason } => {
            let start = at + (part.len() - part.trim_start().len());
            let col = spec[..start.min(spec.len())].chars().count() + 1;
            let mut msg = format!(
                "bad schema spec ({origin}) at byte {at} (column {col}), in {part:?}: {reason}"
            );
            if !spec.contains('\n') && spec.len() <= 200 {
                // Point at the offending part under the spec.
                let width = part.trim().chars().count().max(1);
                msg.push_str(&format!(
                    "\n  {spec}\n  {}{}",
                    " ".repeat(col - 1),
                    "^".repeat(width)
                ));
            }
            Failure::usage(msg)
        }
        _ => Failure::usage(format!("bad schema spec ({origin}): {e}")),
    })
}

/// The schema from `--schema SPEC` or `--schema-file FILE`, if either was given.
pub fn schema_from_args(
    spec: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Schema>, Failure> {
    match (spec, file) {
        (Some(s), _) => parse_spec(s, "--schema").map(Some),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| Failure::io(f.display(), e))?;
            parse_spec_file(&text, &f.display().to_string()).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// Parses a schema file: a spec over any number of lines, `#` starting a
/// comment to the end of its line. Errors name `FILE:LINE:COLUMN` (1-based,
/// columns in characters) and show the line.
pub fn parse_spec_file(text: &str, file: &str) -> Result<Schema, Failure> {
    // Comments become spaces, byte for byte, so the parser's positions are
    // positions in the file (no type or name contains `#`).
    let mut spec = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (code, rest) = line.split_at(line.find('#').unwrap_or(line.len()));
        spec.push_str(code);
        spec.extend(rest.bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }));
    }
    Schema::parse(&spec).map_err(|e| match &e {
        SchemaError::Spec { at, part, reason } => {
            let lead = part.len() - part.trim_start().len();
            let start = if part.trim().is_empty() {
                *at
            } else {
                at + lead
            };
            let start = start.min(text.len());
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_no = text[..start].matches('\n').count() + 1;
            let col = text[line_start..start].chars().count() + 1;
            let line = text[line_start..].lines().next().unwrap_or("");
            let mut msg = format!("{file}:{line_no}:{col}: bad schema spec");
            if part.trim().is_empty() {
                msg.push_str(&format!(": {reason}"));
            } else {
                msg.push_str(&format!(", in {:?}: {reason}", part.trim()));
            }
            if part.trim().contains('\n') {
                msg.push_str(" (a comma missing at the end of a line?)");
            }
            if line.len() <= 200 {
                msg.push_str(&format!("\n  {line}\n  {}^", " ".repeat(col - 1)));
            }
            Failure::usage(msg)
        }
        _ => Failure::usage(format!("bad schema spec ({file}): {e}")),
    })
}

// ----- reading beside a writer ---------------------------------------------
// `info`, `get`, `export`, `verify` and `schema` read through a `ReadSource`:
// a read-only handle while no writer holds the store (it excludes writers, so
// it is one commit for its whole life, and it reads the commits of a log no
// writer replayed), else a reader, whose every view is one snapshot: each
// record it yields belongs to that snapshot's commit, and a page a later
// commit changed fails the view with `SnapshotExpired` (`ViewError::Expired`)
// instead of mixing commits. `with_view` retries such a view on a new
// snapshot, up to `READ_TXN_TRIES` times.

/// A store opened for reading: see the section comment above.
// One value per command: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ReadSource {
    /// No writer held the store: a read-only handle.
    Store(RawStore),
    /// A writer held the store (`Locked`): a reader.
    Reader(RawReader),
}

/// Opens `path` for a read-side command: read-only if no writer holds it,
/// else through a reader.
pub fn open_for_reading(path: &Path) -> Result<ReadSource, Failure> {
    match RawStore::open_read_only(path) {
        Ok(s) => Ok(ReadSource::Store(s)),
        Err(recmap::Error::Locked { .. }) => Ok(ReadSource::Reader(RawReader::open(path)?)),
        Err(e) => Err(e.into()),
    }
}

impl ReadSource {
    /// True when the store is read through a reader (a writer held it).
    pub fn beside_writer(&self) -> bool {
        matches!(self, ReadSource::Reader(_))
    }
    /// The pid of the writer holding the store now, if one does.
    pub fn writer_pid(&self) -> Option<u64> {
        match self {
            ReadSource::Store(_) => None,
            ReadSource::Reader(r) => r.writer_pid(),
        }
    }
    /// See `AccessPattern`.
    pub fn set_access(&mut self, pattern: recmap::AccessPattern) {
        match self {
            ReadSource::Store(s) => s.set_access(pattern),
            ReadSource::Reader(r) => r.set_access(pattern),
        }
    }
    /// The store's numbers: of the newest commit for a reader.
    pub fn info(&mut self) -> Result<Info, Failure> {
        Ok(match self {
            ReadSource::Store(s) => s.info(),
            ReadSource::Reader(r) => {
                r.refresh()?;
                r.info()
            }
        })
    }
    /// A view of one commit: the read-only handle, or a snapshot of the
    /// newest commit.
    pub fn view(&mut self) -> Result<ReadView<'_>, Failure> {
        Ok(match self {
            ReadSource::Store(s) => ReadView::Store(s),
            ReadSource::Reader(r) => ReadView::Snapshot {
                snap: r.snapshot()?,
                sums: None,
                buf: Vec::new(),
            },
        })
    }
}

/// Why a read through a [`ReadView`] stopped.
#[derive(Debug)]
pub enum ViewError {
    /// The snapshot expired (a later commit changed a page it needed):
    /// the read may run again on a new snapshot.
    Expired(recmap::Error),
    /// Any other failure.
    Fail(Failure),
}

impl From<Failure> for ViewError {
    fn from(f: Failure) -> ViewError {
        ViewError::Fail(f)
    }
}

impl From<recmap::Error> for ViewError {
    fn from(e: recmap::Error) -> ViewError {
        match e {
            e @ recmap::Error::SnapshotExpired { .. } => ViewError::Expired(e),
            e => ViewError::Fail(e.into()),
        }
    }
}

/// One commit of a store, as a read-only handle or a reader's snapshot.
// One value per command: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ReadView<'a> {
    /// A read-only handle (no writer can change it).
    Store(&'a RawStore),
    /// A snapshot beside a writer; `sums` are its page checksums, gathered
    /// at the first page check.
    Snapshot {
        snap: RawSnapshot<'a>,
        sums: Option<PageSums>,
        buf: Vec<u8>,
    },
}

impl ReadView<'_> {
    /// The record layout.
    pub fn schema(&self) -> &Schema {
        match self {
            ReadView::Store(s) => s.schema(),
            ReadView::Snapshot { snap, .. } => snap.schema(),
        }
    }
    /// Committed records in this view.
    pub fn len(&self) -> u64 {
        match self {
            ReadView::Store(s) => s.len(),
            ReadView::Snapshot { snap, .. } => snap.len(),
        }
    }
    /// The commit this view shows.
    pub fn generation(&self) -> u64 {
        match self {
            ReadView::Store(s) => s.generation(),
            ReadView::Snapshot { snap, .. } => snap.generation(),
        }
    }
    /// True for a snapshot beside a writer.
    pub fn is_snapshot(&self) -> bool {
        matches!(self, ReadView::Snapshot { .. })
    }

    /// Calls `out` with the records of `range` (within `len`), in order, as
    /// runs of whole records. With `check`, the records of each page are
    /// checked against the page's checksum before any of them is passed on:
    /// a damaged page is `CorruptPage` naming it (the runs before it were
    /// passed). Beside a writer the bytes checked are the bytes passed on,
    /// copied under the snapshot's check.
    pub fn scan(
        &mut self,
        range: Range<u64>,
        check: bool,
        out: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
    ) -> Result<(), ViewError> {
        if range.start >= range.end {
            return Ok(());
        }
        match self {
            ReadView::Store(s) => {
                // Pages are hashed just before their records are written,
                // while still in the cache.
                let block = ((4u64 << 20) / s.record_size() as u64).max(1);
                let mut at = range.start;
                while at < range.end {
                    let end = range.end.min(at + block);
                    if check {
                        s.check_records(at..end)?;
                    }
                    for (_, bytes) in s.runs(at..end) {
                        out(bytes)?;
                    }
                    at = end;
                }
                Ok(())
            }
            ReadView::Snapshot { snap, sums, buf } => {
                let size = snap.schema().record_size as u64;
                let rpg = recmap::format::Packing::new(size).records_per_group;
                if check && sums.is_none() {
                    *sums = Some(snap.page_sums()?);
                }
                for g in range.start / rpg..=(range.end - 1) / rpg {
                    let first = g * rpg;
                    if check {
                        let s = sums.as_mut().expect("gathered above");
                        if let Some(p) = snap.read_group_checked(s, g, buf)? {
                            return Err(ViewError::Fail(corrupt(snap.path(), p).into()));
                        }
                    } else {
                        let n = (rpg.min(snap.len() - first) * size) as usize;
                        buf.resize(n, 0);
                        snap.read_range_bytes(first, buf)?;
                    }
                    let from = range.start.max(first) - first;
                    let to = range.end.min(first + rpg) - first;
                    out(&buf[(from * size) as usize..(to * size) as usize])?;
                }
                Ok(())
            }
        }
    }
}

/// A damaged page found through a snapshot, as the error a read-only
/// handle's `check_records` gives.
fn corrupt(path: &Path, p: recmap::Problem) -> recmap::Error {
    match p {
        recmap::Problem::PageChecksum {
            group,
            first_record,
            end_record,
            expected,
            got,
            ..
        } => recmap::Error::CorruptPage {
            path: path.to_path_buf(),
            group,
            first_record,
            end_record,
            expected,
            got,
        },
        other => recmap::Error::InvalidOption {
            option: "page check",
            reason: other.to_string(),
        },
    }
}

/// The pause before the `tries`-th new snapshot after an expired one:
/// 50 µs doubling to 20 ms, so `READ_TXN_TRIES` views span about 1.7 s. A
/// snapshot expires while a checkpoint rewrites the pages it reads, and a
/// checkpoint on a busy machine outlasts any number of immediate retries;
/// waiting lets it end (a new snapshot then reads its result).
pub fn backoff(tries: u32) {
    let us = (50u64 << tries.min(9)).min(20_000);
    std::thread::sleep(std::time::Duration::from_micros(us));
}

/// Runs `f` on a view of `src`; beside a writer, on a snapshot of the newest
/// commit, again on a new one when it expires (up to `READ_TXN_TRIES`
/// views), saying on stderr which commit was read. `f` must not keep
/// output of a view that failed (or must itself refuse to run again, by
/// returning `Fail`).
pub fn with_view<R>(
    src: &mut ReadSource,
    what: &str,
    mut f: impl FnMut(&mut ReadView<'_>) -> Result<R, ViewError>,
) -> Result<R, Failure> {
    let pid = src.writer_pid();
    let mut tries = 0;
    loop {
        let mut view = src.view()?;
        if view.is_snapshot() {
            let who = match pid {
                Some(p) if p > 0 => format!("a writer (pid {p})"),
                _ => "a writer".to_string(),
            };
            let again = if tries > 0 { "again, " } else { "" };
            note(&format!(
                "{who} holds the store; {what} {again}reads commit {} ({} records) through a snapshot",
                view.generation(),
                view.len()
            ));
        }
        match f(&mut view) {
            Err(ViewError::Expired(e)) if tries + 1 < recmap::READ_TXN_TRIES => {
                tries += 1;
                tracing::debug!(error = %e, tries, "snapshot expired, retrying");
                backoff(tries);
            }
            Err(ViewError::Expired(e)) => {
                return Err(Failure::usage(format!(
                    "{what}: {e}\n  (a writer kept changing the pages this read needs: {tries} \
                     snapshots in a row expired; try again, or while the writer is idle)",
                    tries = tries + 1
                )))
            }
            Err(ViewError::Fail(f)) => return Err(f),
            Ok(r) => return Ok(r),
        }
    }
}

/// The store's numbers for a command that reads no records (`schema`):
/// beside a writer, of its newest commit, with a note on stderr saying so.
pub fn read_info(path: &Path, what: &str) -> Result<Info, Failure> {
    let mut src = open_for_reading(path)?;
    let info = src.info()?;
    if src.beside_writer() {
        note(&format!(
            "a writer holds the store; {what} shows its commit {} ({} records) through a reader",
            info.generation, info.committed_records
        ));
    }
    Ok(info)
}

/// Prints `note: ...` on stderr.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "note: {text}");
}

/// A buffered, locked stdout for data.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

/// Parses `A..B`, `A..`, `..B` or `..` against a store of `len` records.
pub fn parse_range(text: &str, len: u64, path: &Path) -> Result<std::ops::Range<u64>, Failure> {
    let bad = || {
        Failure::usage(format!(
            "bad range {text:?}: expected A..B, A.. or ..B (record indices)"
        ))
    };
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let num = |s: &str, default: u64| -> Result<u64, Failure> {
        let s = s.trim();
        if s.is_empty() {
            Ok(default)
        } else {
            s.parse().map_err(|_| bad())
        }
    };
    let (start, end) = (num(a, 0)?, num(b, len)?);
    if start > end {
        return Err(Failure::usage(format!(
            "bad range {text:?}: start {start} is after end {end}"
        )));
    }
    if end > len {
        return Err(Failure::usage(format!(
            "range {start}..{end} is past the end: {} has {len} records",
            path.display()
        )));
    }
    Ok(start..end)
}

/// `1234567` → `1.23 MB` (decimal units, as in throughput figures).
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A display name for an input path (`-` is stdin).
pub fn input_name(p: &Path) -> String {
    if p == Path::new("-") {
        "<stdin>".to_string()
    } else {
        p.display().to_string()
    }
}

/// Removes a file on drop unless disarmed (a store this command created).
#[derive(Debug)]
pub struct RemoveOnFail {
    pub path: Option<PathBuf>,
}

impl RemoveOnFail {
    pub fn disarm(&mut self) {
        self.path = None;
    }
}

impl RemoveOnFail {
    /// Removes the log and coordination files beside the path (not the
    /// path itself), and disarms.
    pub fn drop_side_files(&mut self) {
        if let Some(p) = self.path.take() {
            remove_side_files(&p);
        }
    }
}

fn remove_side_files(p: &Path) {
    // The log and coordination files the store's writer made beside it.
    for suffix in ["-wal", "-lock"] {
        let mut side = p.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
}

impl Drop for RemoveOnFail {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
            remove_side_files(p);
        }
    }
}

/// How long a writer's open keeps trying while the store is `Locked`.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `open` (a writer's open), again every 10 ms for up to half a second
/// while it fails with `Locked`. A lock can outlive its handle for a moment:
/// `flock` locks belong to the open file, and a child that a multithreaded
/// program forks while the handle is open holds it until the child's `exec`
/// closes it. A writer that really holds the store still gets `Locked`,
/// half a second later (`--wait`, where a command has it, waits for good).
pub fn open_writer<R>(mut open: impl FnMut() -> recmap::Result<R>) -> recmap::Result<R> {
    let start = std::time::Instant::now();
    loop {
        match open() {
            Err(recmap::Error::Locked { .. }) if start.elapsed() < LOCK_GRACE => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}
