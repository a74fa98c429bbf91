//! `recmap load` stopped by SIGINT, SIGTERM or SIGHUP, and by a full disk or the
//! file-size limit after committed batches: the exit code (130, 143, 129, or the
//! error's), the message (what is committed, the exact command that
//! resumes), the store afterwards (committed count, a created store removed
//! when nothing of it is committed, the file not left grown), and that
//! running the printed command gives exactly the data of one whole load.
//!
//! The load reads a pipe the test feeds, so the test decides when the
//! signal comes: after rows it knows were read (the pipe takes them only as
//! the load reads) or after a batch it sees committed (through a reader).
//! The child is spawned directly (a background job of a non-interactive
//! shell would start with SIGINT ignored, which the tool keeps ignored).
#![cfg(all(unix, feature = "cli"))]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
mod common;
use common::spawn::Launch;

const BIN: &str = env!("CARGO_BIN_EXE_recmap");
const SPEC: &str = "id:u64,v:i64";
/// Rows in the whole input of a signal test.
const BATCH_TOTAL: u64 = 5_000;
/// Rows fed before the signal in a `--batch 1000` load: two whole batches.
const BATCH_FED: u64 = 2_500;
/// Rows fed before the signal in an all-or-nothing load: more than the
/// driver buffers (4 MiB of records), so records reached the file and grew it.
const ALL_FED: u64 = 600_000;
const ALL_TOTAL: u64 = 601_000;
/// Rows of the store that exists before the load.
const PRE: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fmt {
    Csv,
    /// Every field quoted: the load switches to the `csv` crate on a reader
    /// thread, which is the one blocked on the pipe when the signal comes.
    CsvQuoted,
    Jsonl,
    Bin,
}

fn value(i: u64) -> i64 {
    (i as i64) * 7 - 3
}

/// An input in `fmt` (with its CSV header) of the rows with ids `from..to`.
fn input(fmt: Fmt, from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if matches!(fmt, Fmt::Csv | Fmt::CsvQuoted) {
        out.extend_from_slice(b"id,v\n");
    }
    for i in from..to {
        match fmt {
            Fmt::Csv => writeln!(out, "{i},{}", value(i)).unwrap(),
            Fmt::CsvQuoted => writeln!(out, "\"{i}\",\"{}\"", value(i)).unwrap(),
            Fmt::Jsonl => writeln!(out, "{{\"id\":{i},\"v\":{}}}", value(i)).unwrap(),
            Fmt::Bin => {
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&value(i).to_le_bytes());
            }
        }
    }
    out
}

/// The records (as `export --format bin` writes them) of rows `from..to`.
fn records(from: u64, to: u64) -> Vec<u8> {
    input(Fmt::Bin, from, to)
}

fn format_name(fmt: Fmt) -> &'static str {
    match fmt {
        Fmt::Csv | Fmt::CsvQuoted => "csv",
        Fmt::Jsonl => "jsonl",
        Fmt::Bin => "bin",
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Out {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stderr\n{}", self.code, self.stderr)
    }
}

fn run_with(args: &[String], stdin: &[u8]) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .expect("spawn recmap");
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for recmap");
    feeder.join().unwrap();
    Out {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Out {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run_with(&args, b"")
}

/// The committed records of `store`, as `export --format bin` writes them.
fn exported(store: &Path) -> Vec<u8> {
    let out = run(&["export", s(store), "--format", "bin"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout
}

fn committed(store: &Path) -> u64 {
    let out = run(&["info", s(store), "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["records"].as_u64().unwrap()
}

/// Splits a command line the way a POSIX shell does for the words the tool
/// prints: plain words and single-quoted parts.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn shell_words_reads_quoted_words() {
    assert_eq!(
        shell_words("a 'b c' 'it'\\''s' d"),
        vec!["a", "b c", "it's", "d"]
    );
}

/// The command after `resume with:` / `run it again with:` in `stderr`, as
/// arguments for the binary (its first word is the binary this test ran).
fn resume_command(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("resume with: ")
                .or_else(|| l.trim_start().strip_prefix("run it again with: "))
        })
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"));
    let mut words = shell_words(line);
    assert_eq!(words[0], BIN, "the command starts with the program as run");
    words.remove(0);
    words
}

/// A `recmap load` reading a pipe that this test feeds.
struct Load {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Load {
    fn spawn(args: &[String]) -> Load {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The load gets SIGINT at its default, whatever this process
        // inherited: a test run started as a background job of a
        // non-interactive shell has SIGINT ignored, the load would inherit
        // that and keep it (by design: an_inherited_ignored_sigint_stays_
        // ignored), and a SIGINT test would wait for a load that runs on.
        // SAFETY: between fork and exec the closure only calls `signal`,
        // which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.launch().expect("spawn recmap load");
        let stdin = child.stdin.take();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Load {
            child,
            stdin,
            stderr: Some(stderr),
        }
    }

    /// Writes `data` to the load's stdin; returns once the pipe took it
    /// all, i.e. the load read all of it but at most a pipe's buffer.
    fn feed(&mut self, data: &[u8]) {
        self.stdin
            .as_mut()
            .unwrap()
            .write_all(data)
            .expect("the load reads its input");
        self.stdin.as_mut().unwrap().flush().unwrap();
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill only sends a signal to the child this test started
        // (and has not reaped yet: its PID is still its own).
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the load to end (its stdin still open, so it does not see
    /// the end of its input first), then closes the pipe.
    fn wait(mut self) -> Out {
        // Never a hang: a load that outlives any slow machine's need is a
        // failure (`Drop` kills and reaps it).
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait for recmap load") {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "recmap load still running 300 s after it was told to stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.stdin.take());
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Out {
            code: status.code(),
            stdout: Vec::new(),
            stderr,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // A test that failed half-way still reaps its child.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits (as long as a slow machine needs) until `store` has `n` committed
/// records, watched through a reader beside the load's writer.
fn wait_for_committed(store: &Path, n: u64, load: &mut Load) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut r) = recmap::RawReader::open(store) {
            let _ = r.refresh();
            if r.len() >= n {
                return;
            }
        }
        if let Ok(Some(st)) = load.child.try_wait() {
            panic!("the load ended before committing {n} records: {st}");
        }
        assert!(Instant::now() < deadline, "no commit of {n} records");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    fmt: Fmt,
    batch: bool,
    create: bool,
    sig: libc::c_int,
}

fn check(case: Case) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.rmap");
    let (fed, total) = if case.batch {
        (BATCH_FED, BATCH_TOTAL)
    } else {
        (ALL_FED, ALL_TOTAL)
    };
    let ids_from = if case.create { 0 } else { PRE };
    // Input ids start after the existing store's (ids 0..PRE).
    let before_len = if case.create {
        0
    } else {
        let pre = dir.path().join("pre.bin");
        std::fs::write(&pre, records(0, PRE)).unwrap();
        let out = run(&["load", s(&store), "--schema", SPEC, s(&pre)]);
        assert_eq!(out.code, Some(0), "{out:?}");
        std::fs::metadata(&store).unwrap().len()
    };
    let mut args: Vec<String> = vec!["load".into(), s(&store).into()];
    if case.create {
        args.extend(["--schema".into(), SPEC.into()]);
    }
    args.extend(["--format".into(), format_name(case.fmt).into()]);
    if case.batch {
        args.extend(["--batch".into(), "1000".into()]);
    }
    args.push("-".into());
    let full = input(case.fmt, ids_from, ids_from + total);
    let cut = prefix_len(case.fmt, &full, fed);
    let mut load = Load::spawn(&args);
    load.feed(&full[..cut]);
    if case.batch {
        wait_for_committed(&store, before_rows(case) + 2_000, &mut load);
    } else if !case.create {
        // The load appended records past the committed ones: the file grew.
        let grown = std::fs::metadata(&store).unwrap().len();
        assert!(
            grown > before_len,
            "the uncommitted records grew the file ({grown} > {before_len})"
        );
    }
    load.signal(case.sig);
    let out = load.wait();
    let (code, name) = match case.sig {
        libc::SIGINT => (130, "SIGINT"),
        libc::SIGHUP => (129, "SIGHUP"),
        _ => (143, "SIGTERM"),
    };
    assert_eq!(out.code, Some(code), "{case:?}: {out:?}");
    assert!(
        out.stderr
            .starts_with(&format!("recmap: interrupted by {name}\n")),
        "{case:?}: {out:?}"
    );
    let path = s(&store);
    if case.batch {
        assert!(
            out.stderr.contains(&format!(
                "committed 2000 rows of this load, the last committed row is {} ({path} has {} records)",
                row_at(case.fmt, 2_000),
                before_rows(case) + 2_000
            )),
            "{case:?}: {out:?}"
        );
        assert!(out.stderr.contains("--skip 2000"), "{case:?}: {out:?}");
        assert!(
            out.stderr
                .contains("(feed it the same input again: it skips the first 2000 rows)"),
            "{case:?}: {out:?}"
        );
        assert_eq!(committed(&store), before_rows(case) + 2_000, "{case:?}");
    } else if case.create {
        assert!(
            out.stderr.contains(&format!(
                "nothing from this load was committed ({path}, which this load created, is removed)"
            )),
            "{case:?}: {out:?}"
        );
        for suffix in ["", "-wal", "-lock"] {
            let p = PathBuf::from(format!("{path}{suffix}"));
            assert!(!p.exists(), "{case:?}: {} is left behind", p.display());
        }
    } else {
        assert!(
            out.stderr.contains(&format!(
                "nothing from this load was committed ({path} still has {PRE} records)"
            )),
            "{case:?}: {out:?}"
        );
        assert_eq!(committed(&store), PRE, "{case:?}");
        let after = std::fs::metadata(&store).unwrap().len();
        assert!(
            after <= before_len,
            "{case:?}: the file is left grown: {after} bytes, {before_len} before the load"
        );
    }
    // The printed command, given the same input again, completes the load.
    let resume = resume_command(&out.stderr);
    let done = run_with(&resume, &full);
    assert_eq!(done.code, Some(0), "{case:?}: resume {resume:?}: {done:?}");
    let want = records(0, ids_from + total);
    assert!(
        exported(&store) == want,
        "{case:?}: the resumed store differs from one whole load"
    );
}

/// Rows committed before the load (the existing store's).
fn before_rows(case: Case) -> u64 {
    if case.create {
        0
    } else {
        PRE
    }
}

/// Where data row `n` (1-based) of stdin is, as the tool names it.
fn row_at(fmt: Fmt, n: u64) -> String {
    match fmt {
        Fmt::Csv | Fmt::CsvQuoted => format!("<stdin>:{}", n + 1),
        Fmt::Jsonl => format!("<stdin>:{n}"),
        Fmt::Bin => format!("<stdin>:record {}", n - 1),
    }
}

/// Bytes of `data` holding its header (if any) and first `rows` rows.
fn prefix_len(fmt: Fmt, data: &[u8], rows: u64) -> usize {
    if fmt == Fmt::Bin {
        return rows as usize * 16;
    }
    let lines = rows as usize + usize::from(matches!(fmt, Fmt::Csv | Fmt::CsvQuoted));
    data.iter()
        .enumerate()
        .filter(|(_, &c)| c == b'\n')
        .nth(lines - 1)
        .map_or(data.len(), |(i, _)| i + 1)
}

#[test]
fn sigint_all_or_nothing_removes_the_store_it_created() {
    check(Case {
        fmt: Fmt::Csv,
        batch: false,
        create: true,
        sig: libc::SIGINT,
    });
}

#[test]
fn sigterm_all_or_nothing_keeps_an_existing_store_as_it_was() {
    check(Case {
        fmt: Fmt::Csv,
        batch: false,
        create: false,
        sig: libc::SIGTERM,
    });
}

/// SIGHUP (the terminal or ssh session closed) stops a load as SIGTERM
/// does: exit 129, the message, and the store it was creating removed
/// with its -wal and -lock files (it used to die silently, leaving them).
#[test]
fn sighup_all_or_nothing_removes_the_store_it_created() {
    check(Case {
        fmt: Fmt::Csv,
        batch: false,
        create: true,
        sig: libc::SIGHUP,
    });
}

/// SIGHUP after committed batches keeps them and says how to resume.
#[test]
fn sighup_batch_keeps_the_batches_of_a_store_it_created() {
    check(Case {
        fmt: Fmt::Csv,
        batch: true,
        create: true,
        sig: libc::SIGHUP,
    });
}

#[test]
fn sigint_all_or_nothing_jsonl_existing_store() {
    check(Case {
        fmt: Fmt::Jsonl,
        batch: false,
        create: false,
        sig: libc::SIGINT,
    });
}

#[test]
fn sigterm_batch_keeps_the_batches_of_a_store_it_created() {
    check(Case {
        fmt: Fmt::Csv,
        batch: true,
        create: true,
        sig: libc::SIGTERM,
    });
}

#[test]
fn sigint_batch_existing_store() {
    check(Case {
        fmt: Fmt::Csv,
        batch: true,
        create: false,
        sig: libc::SIGINT,
    });
}

#[test]
fn sigint_batch_quoted_csv_read_on_a_reader_thread() {
    check(Case {
        fmt: Fmt::CsvQuoted,
        batch: true,
        create: false,
        sig: libc::SIGINT,
    });
}

#[test]
fn sigterm_batch_jsonl_created_store() {
    check(Case {
        fmt: Fmt::Jsonl,
        batch: true,
        create: true,
        sig: libc::SIGTERM,
    });
}

#[test]
fn sigterm_batch_bin_existing_store() {
    check(Case {
        fmt: Fmt::Bin,
        batch: true,
        create: false,
        sig: libc::SIGTERM,
    });
}

#[test]
fn sigint_all_or_nothing_bin_created_store() {
    check(Case {
        fmt: Fmt::Bin,
        batch: false,
        create: true,
        sig: libc::SIGINT,
    });
}

/// What a `--batch` load that failed for want of room says, and that its
/// printed command, run once there is room, completes the load exactly.
fn check_out_of_room(
    out: &Out,
    store: &Path,
    csv: &Path,
    batch: u64,
    rows: u64,
) -> (u64, Vec<String>) {
    assert_ne!(out.code, Some(0), "{out:?}");
    let n: u64 = out
        .stderr
        .split("\n  committed ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no committed count in: {out:?}"));
    assert!(
        n > 0 && n < rows && n.is_multiple_of(batch),
        "{n} committed of {rows}: {out:?}"
    );
    assert!(
        out.stderr.contains(&format!(
            "the last committed row is {}:{} ({} has {n} records)",
            s(csv),
            n + 1,
            s(store)
        )),
        "{out:?}"
    );
    assert!(out.stderr.contains(&format!("--skip {n}")), "{out:?}");
    assert_eq!(committed(store), n, "{out:?}");
    (n, resume_command(&out.stderr))
}

/// Removes the tmpfs mount when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_after_committed_batches_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status();
    if !matches!(mounted, Ok(st) if st.success()) {
        eprintln!("skipped: cannot mount a 4 MiB tmpfs here (needs root): {mounted:?}");
        return;
    }
    let _mount = Mount(mnt.clone());
    let rows = 400_000;
    let csv = dir.path().join("big.csv");
    std::fs::write(&csv, input(Fmt::Csv, 0, rows)).unwrap();
    let store = mnt.join("s.rmap");
    let args: Vec<String> = [
        "load",
        s(&store),
        "--schema",
        SPEC,
        "--batch",
        "10000",
        s(&csv),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let out = run_with(&args, b"");
    assert!(out.stderr.contains("no space left"), "{out:?}");
    assert_eq!(out.code, Some(2), "{out:?}");
    let (_, resume) = check_out_of_room(&out, &store, &csv, 10_000, rows);
    // Room again: the printed command completes the load.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(grown.success());
    let done = run_with(&resume, b"");
    assert_eq!(done.code, Some(0), "{resume:?}: {done:?}");
    assert!(
        exported(&store) == records(0, rows),
        "resumed = one whole load"
    );
}

#[test]
fn the_file_size_limit_after_committed_batches_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 400_000;
    let csv = dir.path().join("big.csv");
    std::fs::write(&csv, input(Fmt::Csv, 0, rows)).unwrap();
    let store = dir.path().join("s.rmap");
    // 4 MiB in 512-byte blocks: the records (6.4 MB) do not fit.
    let limited = Command::new("sh")
        .args(["-c", "ulimit -f 8192 && exec \"$0\" \"$@\"", BIN])
        .args(["load", s(&store), "--schema", SPEC, "--batch", "10000"])
        .arg(&csv)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .launch_output()
        .unwrap();
    let out = Out {
        code: limited.status.code(),
        stdout: Vec::new(),
        stderr: String::from_utf8_lossy(&limited.stderr).into_owned(),
    };
    assert!(out.stderr.contains("file-size limit"), "{out:?}");
    assert_eq!(out.code, Some(1), "{out:?}");
    let (_, resume) = check_out_of_room(&out, &store, &csv, 10_000, rows);
    let done = run_with(&resume, b"");
    assert_eq!(done.code, Some(0), "{resume:?}: {done:?}");
    assert!(
        exported(&store) == records(0, rows),
        "resumed = one whole load"
    );
}

/// A load that inherited SIGINT as ignored (as a background job of a
/// non-interactive shell does) keeps ignoring it: the load completes.
#[test]
fn an_inherited_ignored_sigint_stays_ignored() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.rmap");
    let mut cmd = Command::new(BIN);
    cmd.args(["load", s(&store), "--schema", SPEC, "--batch", "1000", "-"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only calls `signal`, which
    // is async-signal-safe, to set the disposition the child inherits.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = cmd.launch().expect("spawn recmap load");
    let mut load = Load {
        child,
        stdin: None,
        stderr: None,
    };
    load.stdin = load.child.stdin.take();
    let mut err = load.child.stderr.take().unwrap();
    load.stderr = Some(std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    }));
    let full = input(Fmt::Csv, 0, BATCH_TOTAL);
    load.feed(&full[..prefix_len(Fmt::Csv, &full, BATCH_FED)]);
    wait_for_committed(&store, 2_000, &mut load);
    load.signal(libc::SIGINT);
    load.feed(&full[prefix_len(Fmt::Csv, &full, BATCH_FED)..]);
    drop(load.stdin.take());
    let out = load.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(exported(&store) == records(0, BATCH_TOTAL), "{out:?}");
}
