//! End-to-end tests of the CLI's maintenance and tooling subcommands:
//! `repair` in its three modes and with `--dry-run` (on stores damaged on
//! purpose by flipping a byte of a data page), `compact` (in place and into
//! a copy), `completions`, `man`, and schema files (comments, blank lines,
//! a trailing comma, and errors at FILE:LINE:COLUMN).
#![cfg(feature = "cli")]

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
mod common;
use common::spawn::Launch;

const BIN: &str = env!("CARGO_BIN_EXE_recmap");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .launch_output()
        .expect("run recmap");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn info(store: &Path) -> Value {
    let r = run(&["info", s(store), "--json"]);
    ok(&r);
    serde_json::from_str(&r.stdout).expect("info --json is JSON")
}

/// Every file in `dir` with its bytes: a dry run must leave this as it was.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

const SPEC: &str = "id:u64,x:f64,name:str[8],ok:bool,n:u8";

/// CSV lines (without the header) of rows `0..n`.
fn rows(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("{i},{},r{i},{},{}", i as f64 / 8.0, i % 2 == 0, i % 256))
        .collect()
}

fn csv(rows: &[String]) -> String {
    let mut t = String::from("id,x,name,ok,n\n");
    for r in rows {
        t.push_str(r);
        t.push('\n');
    }
    t
}

/// The store's records as CSV lines (without the header), unchecked.
fn export(store: &Path) -> Vec<String> {
    let r = run(&["export", s(store), "--no-verify"]);
    ok(&r);
    r.stdout.lines().skip(1).map(str::to_string).collect()
}

/// A store of `n` records in `dir`.
fn store_of(dir: &Path, name: &str, n: u64) -> PathBuf {
    let store = dir.join(name);
    let input = dir.join(format!("{name}.csv"));
    std::fs::write(&input, csv(&rows(n))).unwrap();
    ok(&run(&["load", s(&store), "--schema", SPEC, s(&input)]));
    std::fs::remove_file(&input).unwrap();
    assert_eq!(info(&store)["records"], n);
    store
}

/// Flips one byte inside data page `page` (record bytes, not padding).
fn damage_page(store: &Path, page: u64) {
    let j = info(store);
    let at = j["data_offset"].as_u64().unwrap() + page * 4096 + 8 * 32 + 3;
    let mut b = std::fs::read(store).unwrap();
    b[at as usize] ^= 0x10;
    std::fs::write(store, &b).unwrap();
}

/// 3000 records of 32 bytes (128 a page, 24 pages), pages 3 and 10 damaged.
fn damaged_store(dir: &Path) -> PathBuf {
    let store = store_of(dir, "d.rmap", 3000);
    assert_eq!(info(&store)["records_per_page"], 128);
    damage_page(&store, 3);
    damage_page(&store, 10);
    assert_eq!(run(&["verify", s(&store)]).code, 1);
    store
}

#[test]
fn repair_dry_runs_print_the_plan_and_change_no_byte() {
    let d = tempfile::tempdir().unwrap();
    let store = damaged_store(d.path());
    let before = snapshot(d.path());
    let out = d.path().join("new.rmap");
    let first_page = info(&store)["data_offset"].as_u64().unwrap() / 4096;
    for (mode, extra, want) in [
        (
            "truncate",
            vec![],
            "would keep records 0..384 (384 of 3000) and drop 2616",
        ),
        (
            "rebuild-checksums",
            vec![],
            "would keep all 3000 records and rewrite the checksums of all 24 data pages",
        ),
        (
            "skip-damaged",
            vec!["--out", s(&out)],
            "would copy 2744 records of 3000 into the new store and drop 256",
        ),
    ] {
        let mut args = vec!["repair", s(&store), "--dry-run", "--mode", mode];
        args.extend(extra);
        let r = run(&args);
        ok(&r);
        assert!(r.stdout.contains(want), "{mode}: {r:?}");
        assert!(
            r.stdout.contains("3000 records in 24 data pages"),
            "{mode}: {r:?}"
        );
        assert!(r.stdout.contains("2 pages damaged"), "{mode}: {r:?}");
        assert!(
            r.stdout.contains(&format!(
                "damaged: data page 3 (file pages {}..{}, records 384..512)",
                first_page + 3,
                first_page + 4
            )),
            "{mode}: {r:?}"
        );
        assert!(
            r.stdout.contains(&format!(
                "damaged: data page 10 (file pages {}..{}, records 1280..1408)",
                first_page + 10,
                first_page + 11
            )),
            "{mode}: {r:?}"
        );
        assert!(r.stdout.contains("dry run: nothing was changed"), "{r:?}");
        assert_eq!(
            snapshot(d.path()),
            before,
            "{mode}: the dry run changed files"
        );
    }
    let r = run(&[
        "repair",
        s(&store),
        "--dry-run",
        "--mode",
        "skip-damaged",
        "--out",
        s(&out),
    ]);
    assert!(
        r.stdout.contains(
            "records kept (old -> new index): 0..384 -> 0..384, 512..1280 -> 384..1152, \
             1408..3000 -> 1152..2744"
        ),
        "{r:?}"
    );
    assert!(!out.exists());
    // A sound store: nothing to do, nothing changed.
    let sound = store_of(d.path(), "sound.rmap", 10);
    let before = std::fs::read(&sound).unwrap();
    let r = run(&["repair", s(&sound), "--dry-run"]);
    ok(&r);
    assert!(r.stdout.contains("sound, nothing to repair"), "{r:?}");
    assert_eq!(std::fs::read(&sound).unwrap(), before);
}

#[test]
fn repair_truncate_keeps_the_records_before_the_first_damaged_page() {
    let d = tempfile::tempdir().unwrap();
    let store = damaged_store(d.path());
    let r = run(&["repair", s(&store)]);
    ok(&r);
    assert!(r.stderr.contains("kept records 0..384"), "{r:?}");
    ok(&run(&["verify", s(&store)]));
    assert_eq!(export(&store), rows(384));
    // Once repaired, a second repair has nothing to do.
    let r = run(&["repair", s(&store)]);
    ok(&r);
    assert!(r.stderr.contains("nothing to repair"), "{r:?}");
}

#[test]
fn repair_rebuild_checksums_keeps_every_record() {
    let d = tempfile::tempdir().unwrap();
    let store = damaged_store(d.path());
    let damaged = export(&store);
    let r = run(&["repair", s(&store), "--mode", "rebuild-checksums"]);
    ok(&r);
    assert!(r.stderr.contains("24 page checksums rewritten"), "{r:?}");
    ok(&run(&["verify", s(&store)]));
    let now = export(&store);
    assert_eq!(now, damaged, "records kept as they read");
    let good = rows(3000);
    let differ: Vec<usize> = (0..3000).filter(|&i| now[i] != good[i]).collect();
    assert_eq!(
        differ,
        vec![384 + 8, 1280 + 8],
        "only the flipped records differ"
    );
}

#[test]
fn repair_skip_damaged_copies_every_sound_page_into_a_new_store() {
    let d = tempfile::tempdir().unwrap();
    let store = damaged_store(d.path());
    let before = std::fs::read(&store).unwrap();
    let out = d.path().join("good.rmap");
    // --out is required, and must be new.
    let r = run(&["repair", s(&store), "--mode", "skip-damaged"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--out"), "{r:?}");
    let r = run(&["repair", s(&store), "--out", s(&out)]);
    assert_eq!(r.code, 2, "--out with truncate: {r:?}");
    let r = run(&[
        "repair",
        s(&store),
        "--mode",
        "skip-damaged",
        "--out",
        s(&out),
    ]);
    ok(&r);
    assert!(r.stderr.contains("wrote"), "{r:?}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the source is unchanged"
    );
    ok(&run(&["verify", s(&out)]));
    let all = rows(3000);
    let want: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !(384..512).contains(i) && !(1280..1408).contains(i))
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(export(&out), want);
    assert_eq!(info(&out)["schema"], info(&store)["schema"]);
    // No temporary file is left beside it.
    let names: BTreeSet<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "left behind: {names:?}"
    );
    // An existing --out is never replaced.
    let r = run(&[
        "repair",
        s(&store),
        "--mode",
        "skip-damaged",
        "--out",
        s(&out),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("already exists"), "{r:?}");
    assert_eq!(export(&out), want);
}

#[test]
fn compact_shrinks_the_file_and_keeps_the_records() {
    let d = tempfile::tempdir().unwrap();
    // 100,000 records (3.2 MB) cut to 1280 by a repair: the file keeps its length.
    let store = store_of(d.path(), "c.rmap", 100_000);
    damage_page(&store, 10);
    ok(&run(&["repair", s(&store)]));
    let data = export(&store);
    assert_eq!(data.len(), 1280);
    let big = std::fs::metadata(&store).unwrap().len();
    assert!(big > 3_000_000, "{big}");
    let r = run(&["compact", s(&store)]);
    ok(&r);
    let small = std::fs::metadata(&store).unwrap().len();
    assert_eq!(
        small,
        1 << 20,
        "one growth unit of 1 MiB holds 1280 records"
    );
    assert!(
        r.stderr.contains(&format!("({big} -> {small} bytes")),
        "{r:?}"
    );
    ok(&run(&["verify", s(&store)]));
    assert_eq!(export(&store), data);
    // Again: nothing left to give back.
    let r = run(&["compact", s(&store)]);
    ok(&r);
    assert_eq!(std::fs::metadata(&store).unwrap().len(), small);
    // A copy with a 64 KiB growth unit is smaller still, and the same.
    let out = d.path().join("tight.rmap");
    let r = run(&[
        "compact",
        s(&store),
        "--out",
        s(&out),
        "--chunk-size",
        "65536",
    ]);
    ok(&r);
    let tight = std::fs::metadata(&out).unwrap().len();
    assert!(tight < small && tight.is_multiple_of(65536), "{tight}");
    assert!(tight <= 128 << 10, "1280 records of 32 bytes: {tight}");
    ok(&run(&["verify", s(&out)]));
    assert_eq!(export(&out), data);
    assert_eq!(std::fs::metadata(&store).unwrap().len(), small);
    // A damaged store is not copied (the copy would bless the damage).
    damage_page(&store, 2);
    let r = run(&["compact", s(&store), "--out", s(&d.path().join("x.rmap"))]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!d.path().join("x.rmap").exists());
}

#[test]
fn compact_refuses_while_a_writer_holds_the_store() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("w.rmap");
    // A load from a pipe that stays open holds the writer lock; a store it
    // creates appears at its path with the lock already taken.
    let mut child = Command::new(BIN)
        .args(["load", s(&store), "--schema", SPEC, "-"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .launch()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(csv(&rows(3)).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut waited = 0;
    while !store.exists() && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    assert!(store.exists(), "the load never created its store");
    let r = run(&["compact", s(&store)]);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the load: {out:?}");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.to_lowercase().contains("lock"), "{r:?}");
    ok(&run(&["compact", s(&store)]));
    ok(&run(&["verify", s(&store)]));
    assert_eq!(export(&store), rows(3));
}

/// The subcommands `recmap --help` lists.
fn subcommands() -> Vec<String> {
    let r = run(&["--help"]);
    ok(&r);
    let list: Vec<String> = r
        .stdout
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    for want in ["repair", "compact", "completions", "man", "load"] {
        assert!(list.iter().any(|n| n == want), "{want} in {list:?}");
    }
    list
}

#[test]
fn completions_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completions", shell]);
        ok(&r);
        assert!(r.stdout.len() > 1000, "{shell}: {r:?}");
        for sub in &subs {
            assert!(r.stdout.contains(sub.as_str()), "{shell} lacks {sub}");
        }
        assert!(r.stdout.contains("dry-run"), "{shell}: repair's options");
    }
    let r = run(&["completions", "nosuchshell"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn man_pages_are_roff_listing_every_subcommand() {
    let subs = subcommands();
    let r = run(&["man"]);
    ok(&r);
    assert!(r.stdout.contains(".TH recmap 1"), "{r:?}");
    assert!(r.stdout.contains(".SH SUBCOMMANDS"), "{r:?}");
    for sub in &subs {
        // roff escapes the hyphen.
        assert!(
            r.stdout.contains(&format!("recmap\\-{sub}(1)")),
            "man page lacks {sub}"
        );
    }
    let d = tempfile::tempdir().unwrap();
    let r = run(&["man", "--out", s(d.path())]);
    ok(&r);
    for sub in &subs {
        let page = std::fs::read_to_string(d.path().join(format!("recmap-{sub}.1")))
            .unwrap_or_else(|e| panic!("recmap-{sub}.1: {e}"));
        assert!(
            page.contains(&format!(".TH recmap-{sub} 1")),
            "{sub}: {page}"
        );
    }
    let repair = std::fs::read_to_string(d.path().join("recmap-repair.1")).unwrap();
    assert!(repair.contains("dry\\-run"), "{repair}");
    let r = run(&["man", "--out", s(&d.path().join("missing"))]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn schema_files_take_comments_blank_lines_and_a_trailing_comma() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("flights.schema");
    std::fs::write(
        &file,
        "# flights, one field a line\n\
         \n\
         id:u64,        # the key\n\
         x: f64 ,\n\
         \n\
         # the rest\n\
         name:str[8], ok:bool,\n\
         n:u8,   # trailing comma, then a comment\n\
         \n",
    )
    .unwrap();
    let store = d.path().join("f.rmap");
    ok(&run(&["create", s(&store), "--schema-file", s(&file)]));
    let r = run(&["schema", s(&store)]);
    ok(&r);
    assert_eq!(r.stdout.trim(), SPEC);
    // Loads take it too.
    let input = d.path().join("in.csv");
    std::fs::write(&input, csv(&rows(5))).unwrap();
    let store2 = d.path().join("g.rmap");
    ok(&run(&[
        "load",
        s(&store2),
        "--schema-file",
        s(&file),
        s(&input),
    ]));
    assert_eq!(export(&store2), rows(5));
    // Inline specs may end with a comma too.
    let store3 = d.path().join("h.rmap");
    ok(&run(&["create", s(&store3), "--schema", "a:u8,b:u32,"]));
}

#[test]
fn schema_file_errors_give_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("e.rmap");
    let cases: &[(&str, &str, &str)] = &[
        (
            "# comment\nid:u64,   # key\n\nname:str[4],\n   x:f65, # bad\n",
            ":5:4: bad schema spec, in \"x:f65\": unknown type \"f65\"",
            "\n     x:f65, # bad\n     ^",
        ),
        (
            "id:u64,\nid:u32\n",
            ":2:1: bad schema spec, in \"id:u32\": duplicate field name \"id\"",
            "\n  id:u32\n  ^",
        ),
        (
            "a:u8, é:u8,\n",
            ":1:7: bad schema spec, in \"é:u8\": bad field name",
            "",
        ),
        (
            "id:u64\nname:str[4]\n",
            ":1:1: bad schema spec",
            "a comma missing at the end of a line?",
        ),
        (
            "# only a comment\n\n",
            ":1:1: bad schema spec: empty schema",
            "",
        ),
        ("a:u8,,\n", ":1:6: bad schema spec", "expected name:type"),
    ];
    for (i, (text, at, more)) in cases.iter().enumerate() {
        let file = d.path().join(format!("bad{i}.schema"));
        std::fs::write(&file, text).unwrap();
        let r = run(&["create", s(&store), "--schema-file", s(&file)]);
        assert_eq!(r.code, 2, "{text:?}: {r:?}");
        let want = format!("recmap: {}{at}", file.display());
        assert!(
            r.stderr.starts_with(&want),
            "{text:?}: want {want:?}: {r:?}"
        );
        assert!(r.stderr.contains(more), "{text:?}: {r:?}");
        assert!(!store.exists());
    }
    // Inline: the column (and the byte position) on one line.
    let r = run(&["create", s(&store), "--schema", "id:u64, x:f65"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("(column 9)"), "{r:?}");
    assert!(
        r.stderr.contains("\n  id:u64, x:f65\n          ^^^^^"),
        "{r:?}"
    );
}

/// A `--batch --skip-bad` load that fails at a second input's bad header
/// keeps in the rejects file only the rows rejected up to the last commit;
/// the printed resume command appends to it, so once the input is fixed
/// every bad row is listed exactly once and every good row is loaded once.
#[test]
fn a_resumed_skip_bad_load_lists_each_rejected_row_once() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("r.rmap");
    let rejects = d.path().join("rejects.txt");
    // Rows 0..30 with every 7th bad (a number that is not one).
    let mut lines = rows(30);
    for i in (0..30).step_by(7) {
        lines[i] = format!("{i},oops,r{i},true,1");
    }
    let first = d.path().join("a.csv");
    std::fs::write(&first, csv(&lines)).unwrap();
    let second = d.path().join("b.csv");
    std::fs::write(&second, "id,nope\n1,2\n").unwrap();
    let r = run(&[
        "load",
        s(&store),
        "--schema",
        SPEC,
        "--batch",
        "10",
        "--skip-bad",
        s(&rejects),
        s(&first),
        s(&second),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    // 30 rows, 5 bad: 25 good, committed in batches of 10 (rows 0..=11 and
    // 12..=23 of the input, the bad 0, 7, 14 and 21 among them).
    assert_eq!(info(&store)["records"], 20, "{r:?}");
    let kept = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(kept.lines().count(), 4, "{kept}\n{r:?}");
    assert!(
        r.stderr
            .contains("keeps the rows rejected up to the last commit"),
        "{r:?}"
    );
    let resume = r
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("fix the input, then resume with: "))
        .unwrap_or_else(|| panic!("no resume command: {r:?}"));
    assert!(resume.contains("--skip 24"), "{resume}");
    // Fix the second input and run the printed command (its words are
    // shell-quoted where needed; none of these holds a space or a quote).
    std::fs::write(&second, csv(&rows(3))).unwrap();
    let args: Vec<&str> = resume
        .split(' ')
        .skip(1)
        .map(|w| w.trim_matches('\''))
        .collect();
    let r = run(&args);
    ok(&r);
    let all = std::fs::read_to_string(&rejects).unwrap();
    let bad: Vec<u64> = all
        .lines()
        .map(|l| {
            l.rsplit('\t')
                .next()
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(bad, [0, 7, 14, 21, 28], "{all}");
    let ids: Vec<u64> = export(&store)
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let want: Vec<u64> = (0..30).filter(|i| i % 7 != 0).chain(0..3).collect();
    assert_eq!(ids, want);
}

/// `create --append-only` makes a store whose committed records never
/// change; `info` says so, and `compact --out` and `repair --skip-damaged`,
/// which write new stores, keep the flag.
#[test]
fn copies_keep_the_append_only_flag() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("a.rmap");
    ok(&run(&[
        "create",
        s(&store),
        "--schema",
        SPEC,
        "--append-only",
    ]));
    let input = d.path().join("in.csv");
    std::fs::write(&input, csv(&rows(2000))).unwrap();
    ok(&run(&["load", s(&store), s(&input)]));
    assert_eq!(info(&store)["append_only"], true);
    let text = run(&["info", s(&store)]);
    assert!(text.stdout.contains("append-only:    yes"), "{text:?}");
    let copy = d.path().join("copy.rmap");
    ok(&run(&["compact", s(&store), "--out", s(&copy)]));
    assert_eq!(info(&copy)["append_only"], true);
    assert_eq!(export(&copy), rows(2000));
    damage_page(&store, 3);
    let saved = d.path().join("saved.rmap");
    let r = run(&[
        "repair",
        s(&store),
        "--mode",
        "skip-damaged",
        "--out",
        s(&saved),
    ]);
    ok(&r);
    assert_eq!(info(&saved)["append_only"], true, "{r:?}");
    let plain = store_of(d.path(), "plain.rmap", 10);
    assert_eq!(info(&plain)["append_only"], false);
}

/// Loads `rows` records `(i, 3i)` of schema `a:u64,b:u64` into a new
/// store at `store`, through the tool's stdin.
#[cfg(unix)]
fn load_pairs(store: &Path, rows: u64) {
    let csv: String = std::iter::once("a,b\n".to_string())
        .chain((0..rows).map(|i| format!("{i},{}\n", i * 3)))
        .collect();
    let mut load = Command::new(BIN)
        .args(["load", s(store), "--schema", "a:u64,b:u64", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .launch()
        .unwrap();
    load.stdin
        .take()
        .unwrap()
        .write_all(csv.as_bytes())
        .unwrap();
    assert!(load.wait().unwrap().success());
}

/// A store shortened by another program while `export` reads it: the tool
/// says so, naming the store, and exits 2 (a read of a page past the new
/// end through the map raises SIGBUS, which once ended it with no word,
/// exit 135). The export is held still by a full pipe on its stdout while
/// the file is cut, then let go.
#[cfg(unix)]
#[test]
fn a_store_shortened_during_export_is_reported_not_a_silent_bus_error() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("big.rmap");
    load_pairs(&store, 400_000);
    let mut child = Command::new(BIN)
        .args(["export", s(&store), "--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    // Read a little, so the export is under way and then blocks on the
    // full pipe with most of the store unread.
    let mut head = vec![0u8; 4096];
    out.read_exact(&mut head).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), None, "died of a signal: {status:?}, {err}");
    assert_ne!(status.code(), Some(0), "{err}");
    assert!(err.contains(s(&store)), "names the store: {err}");
}

/// `compact --out` onto a file system without room: the error names the
/// store that was to be written (not only the temporary name it was built
/// under), and nothing is left behind. Needs root for the tmpfs.
#[cfg(target_os = "linux")]
#[test]
fn compact_out_on_a_full_disk_names_the_store_it_was_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("src.rmap");
    load_pairs(&store, 100_000);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status();
    if !matches!(mounted, Ok(st) if st.success()) {
        println!("SKIPPED compact_out_on_a_full_disk_names_the_store_it_was_to_write: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let out = mnt.join("c.rmap");
    let r = run(&["compact", s(&store), "--out", s(&out)]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{} was not written", out.display())),
        "{r:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&mnt).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
