//! End-to-end tests of the `recmap` command-line tool: every subcommand, the
//! exit codes, the exact `FILE:LINE` of rejected rows, all-or-nothing and
//! `--batch` loads, round trips through every format, corruption found by
//! `verify`, and (when python3 with numpy is present) tests/numpy_interop.py.
#![cfg(feature = "cli")]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
mod common;
use common::spawn::Launch;

const BIN: &str = env!("CARGO_BIN_EXE_recmap");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    raw: Vec<u8>,
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

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw: out.stdout,
    }
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Run {
    finish(
        cmd(args)
            .stdin(Stdio::null())
            .launch_output()
            .expect("run recmap"),
    )
}

fn run_stdin(args: &[&str], input: &[u8]) -> Run {
    let mut child = cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .expect("spawn recmap");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    finish(out)
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn info(store: &Path) -> Value {
    let r = run(&["info", s(store), "--json"]);
    ok(&r);
    serde_json::from_str(&r.stdout).expect("info --json is JSON")
}

fn records(store: &Path) -> u64 {
    info(store)["records"].as_u64().unwrap()
}

const SPEC: &str = "id:u64,x:f64,name:str[8],ok:bool,n:u8";

/// A store with two good rows.
fn store_with_two(d: &Dir) -> PathBuf {
    let store = d.path("s.rmap");
    let csv = d.write(
        "two.csv",
        "id,x,name,ok,n\n1,0.5,a,true,1\n2,0.25,b,false,2\n",
    );
    ok(&run(&["load", s(&store), "--schema", SPEC, s(&csv)]));
    assert_eq!(records(&store), 2);
    store
}

#[test]
fn help_documents_exit_codes_and_every_subcommand_has_an_example() {
    let r = run(&["--help"]);
    ok(&r);
    assert!(r.stdout.contains("Exit codes"), "{r:?}");
    assert!(r.stdout.contains("usage or I/O error"), "{r:?}");
    for sub in [
        "create", "load", "info", "get", "export", "verify", "schema", "bench",
    ] {
        let r = run(&[sub, "--help"]);
        ok(&r);
        assert!(
            r.stdout.contains("Example"),
            "{sub} --help has no example: {r:?}"
        );
    }
    let r = run(&["frobnicate"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("recmap: "), "{r:?}");
    let r = run(&["get", "x.rmap", "notanumber"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.starts_with("recmap: invalid value 'notanumber'"),
        "{r:?}"
    );
    let r = run(&["load", "x.rmap", "--batch", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn create_then_info_text_and_json() {
    let d = Dir::new();
    let store = d.path("c.rmap");
    let r = run(&[
        "create",
        s(&store),
        "--schema",
        "id:u64,x:f32,tag:str[5],raw:bytes[3]",
    ]);
    ok(&r);
    let r = run(&["info", s(&store)]);
    ok(&r);
    assert!(
        r.stdout.contains("id:u64,x:f32,tag:str[5],raw:bytes[3]"),
        "{r:?}"
    );
    assert!(r.stdout.contains("record size:    24 bytes"), "{r:?}");
    let j = info(&store);
    assert_eq!(j["records"], 0);
    assert_eq!(j["record_size"], 24);
    // A new store is written in the current format (version 2, with a log).
    assert_eq!(j["format_version"], recmap::format::FORMAT_VERSION);
    assert_eq!(j["format_version"], 2);
    assert!(r.stdout.contains("format version: 2\n"), "{r:?}");
    assert_eq!(j["generation"], 1);
    assert!(j["file_size"].as_u64().unwrap() >= 4096 * 3);
    assert!(j["capacity"].as_u64().unwrap() > 0);
    assert_eq!(j["data_offset"], 8192);
    let schema = j["schema"].as_array().unwrap();
    let got: Vec<(String, String, u64)> = schema
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["type"].as_str().unwrap().into(),
                f["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("id".into(), "u64".into(), 0),
            ("x".into(), "f32".into(), 8),
            ("tag".into(), "str[5]".into(), 12),
            ("raw".into(), "bytes[3]".into(), 17)
        ]
    );
    // create refuses an existing file.
    let r = run(&["create", s(&store), "--schema", "id:u64"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("already exists"), "{r:?}");
}

#[test]
fn bad_schema_specs_point_at_the_offending_part() {
    let d = Dir::new();
    let store = d.path("bad.rmap");
    let r = run(&["create", s(&store), "--schema", "id:u64,x:f65,y:u8"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("recmap: "), "{r:?}");
    assert!(r.stderr.contains("at byte 7"), "{r:?}");
    assert!(r.stderr.contains("\"x:f65\""), "{r:?}");
    assert!(r.stderr.contains("unknown type \"f65\""), "{r:?}");
    assert!(
        r.stderr.contains("\n         ^^^^^"),
        "caret under the part: {r:?}"
    );
    assert!(!store.exists());
    for bad in ["name:str", "a:u8,a:u8", "a", "", "a:str[0]", "1x:u8"] {
        let r = run(&["create", s(&store), "--schema", bad]);
        assert_eq!(r.code, 2, "{bad:?} accepted: {r:?}");
        assert!(r.stderr.contains("bad schema spec"), "{r:?}");
        assert!(!r.stderr.contains("panicked"), "{r:?}");
    }
    let file = d.write("x.schema", "id:u64,\nname:strr[4]\n");
    let r = run(&["load", s(&store), "--schema-file", s(&file), s(&file)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("strr"), "{r:?}");
    // A good schema file.
    let file = d.write("ok.schema", "id:u64,name:str[4]\n");
    ok(&run(&["create", s(&store), "--schema-file", s(&file)]));
    assert_eq!(info(&store)["record_size"], 16);
}

/// Every kind of bad row: exit 1, the exact FILE:LINE and field, nothing committed.
#[test]
fn bad_rows_report_file_line_field_and_commit_nothing() {
    let d = Dir::new();
    let store = store_with_two(&d);
    let head = "id,x,name,ok,n\n3,1.5,c,true,3\n4,2.5,d,false,4\n";
    let cases: &[(&str, &str)] = &[
        ("5,3.5,e,true\n", ":4: expected 5 columns, got 4"),
        ("5,3.5,e,true,5,6\n", ":4: expected 5 columns, got 6"),
        (
            "5,\"3.5,e,true,5\n",
            ":4: expected 5 columns, got 2; a quoted field runs across lines from here, so a closing quote (\") may be missing",
        ),
        ("5,abc,e,true,5\n", ":4: field x: not a number: \"abc\""),
        (
            "5,3.5,e,true,256\n",
            ":4: field n: \"256\" is out of range for u8",
        ),
        (
            "5,3.5,e,true,-1\n",
            ":4: field n: \"-1\" is out of range for u8",
        ),
        (
            "18446744073709551616,3.5,e,true,5\n",
            ":4: field id: \"18446744073709551616\" is out of range for u64",
        ),
        (
            "5,3.5,e,true,1.5\n",
            ":4: field n: \"1.5\" has a fractional part",
        ),
        (
            "5,3.5,abcdefghi,true,5\n",
            ":4: field name: string of 9 bytes is longer than str[8]",
        ),
        (
            "5,3.5,e,yes,5\n",
            ":4: field ok: not a bool (expected true, false, 1 or 0): \"yes\"",
        ),
        (
            "5,1e999,e,true,5\n",
            ":4: field x: \"1e999\" is out of range for f64",
        ),
        ("5,,e,true,5\n", ":4: field x: empty value"),
    ];
    for (k, (row, want)) in cases.iter().enumerate() {
        let file = d.write(
            &format!("bad{k}.csv"),
            &format!("{head}{row}6,4.5,f,true,6\n"),
        );
        let r = run(&["load", s(&store), s(&file)]);
        assert_eq!(r.code, 1, "{row:?}: {r:?}");
        let expect = format!("recmap: {}{want}", s(&file));
        assert!(
            r.stderr.starts_with(&expect),
            "{row:?}: want {expect:?}\n{r:?}"
        );
        assert!(
            r.stderr.contains("nothing from this load was committed"),
            "{r:?}"
        );
        assert_eq!(records(&store), 2, "after {row:?}");
    }
    // Header problems: unknown and missing fields.
    let file = d.write("unknown.csv", "id,x,name,ok,n,extra\n1,1,a,true,1,9\n");
    let r = run(&["load", s(&store), s(&file)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{}:1: field extra: unknown field", s(&file))),
        "{r:?}"
    );
    let file = d.write("missing.csv", "id,x,name,ok\n1,1,a,true\n");
    let r = run(&["load", s(&store), s(&file)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{}:1: field n: missing field", s(&file))),
        "{r:?}"
    );
    // JSON lines: unknown, missing, wrong type, bad JSON.
    let good = r#"{"id":3,"x":1.5,"name":"c","ok":true,"n":3}"#;
    let jcases: &[(&str, &str)] = &[
        (
            r#"{"id":5,"x":1.5,"name":"c","ok":true,"n":3,"zz":1}"#,
            ":3: field zz: unknown field",
        ),
        (
            r#"{"id":5,"x":1.5,"name":"c","ok":true}"#,
            ":3: field n: missing field",
        ),
        (
            r#"{"id":5,"x":"a","name":"c","ok":true,"n":3}"#,
            ":3: field x: expected a number (f64), got the string \"a\"",
        ),
        (
            r#"{"id":-5,"x":1.5,"name":"c","ok":true,"n":3}"#,
            ":3: field id: \"-5\" is out of range for u64",
        ),
        (
            r#"{"id":5,"x":1.5,"name":"c","ok":2,"n":3}"#,
            ":3: field ok: not a bool",
        ),
        (
            r#"{"id":5,"x":1.5,"name":"toolongname","ok":true,"n":3}"#,
            ":3: field name: string of 11 bytes is longer than str[8]",
        ),
        (r#"{"id":5,"x":1.5,"#, ":3: not a JSON object"),
        // Once the last of a repeated key won, silently.
        (
            r#"{"id":5,"x":1.5,"name":"c","ok":true,"n":3,"n":4}"#,
            ":3: field n: appears twice in the object",
        ),
    ];
    for (k, (row, want)) in jcases.iter().enumerate() {
        let file = d.write(
            &format!("bad{k}.jsonl"),
            &format!("{good}\n\n{row}\n{good}\n"),
        );
        let r = run(&["load", s(&store), s(&file)]);
        assert_eq!(r.code, 1, "{row:?}: {r:?}");
        let expect = format!("recmap: {}{want}", s(&file));
        assert!(
            r.stderr.starts_with(&expect),
            "{row:?}: want {expect:?}\n{r:?}"
        );
        assert_eq!(records(&store), 2);
    }
    // Raw records whose length is not a multiple of the record size.
    let file = d.path("short.bin");
    std::fs::write(&file, [0u8; 30]).unwrap();
    let r = run(&["load", s(&store), s(&file)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("30 bytes is not a multiple of the record size 32"),
        "{r:?}"
    );
    assert_eq!(records(&store), 2);
    let v = run(&["verify", s(&store)]);
    ok(&v);
}

#[test]
fn a_failed_load_into_a_new_store_leaves_no_file() {
    let d = Dir::new();
    let store = d.path("new.rmap");
    let file = d.write("bad.csv", "id,x,name,ok,n\n1,1,a,true,1\n2,x,b,true,2\n");
    let r = run(&["load", s(&store), "--schema", SPEC, s(&file)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!store.exists(), "the store this load created is removed");
    // Without a schema the load infers one from the input (x is text then).
    let r = run(&["load", s(&store), s(&file)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("no schema given: inferred"), "{r:?}");
}

/// A UTF-8 byte order mark opening a JSON lines input is skipped, as in
/// CSV (it was "expected value at line 1 column 1"), with a schema given
/// and when one is inferred; elsewhere it is still not JSON.
#[test]
fn a_bom_opening_json_lines_is_skipped() {
    let d = Dir::new();
    let input = b"\xEF\xBB\xBF{\"a\":1}\n{\"a\":2}\n";
    for schema in [&["--schema", "a:u64"][..], &[]] {
        let store = d.path(&format!("bom{}.rmap", schema.len()));
        let mut args = vec!["load", s(&store), "--format", "jsonl"];
        args.extend(schema);
        args.push("-");
        let r = run_stdin(&args, input);
        ok(&r);
        assert_eq!(records(&store), 2, "{schema:?}");
    }
    let store = d.path("bom_later.rmap");
    let r = run_stdin(
        &[
            "load",
            s(&store),
            "--format",
            "jsonl",
            "--schema",
            "a:u64",
            "-",
        ],
        b"{\"a\":1}\n\xEF\xBB\xBF{\"a\":2}\n",
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with("recmap: <stdin>:2: not a JSON object"),
        "{r:?}"
    );
}

/// A row longer than the load's cap (1 MiB for a narrow schema) is
/// refused from stdin as `FILE:LINE: row longer than N bytes`, exit 1,
/// nothing committed and a store the load created removed: in CSV (the
/// fast path, a quoted row, a last row without a line end, a row after
/// the switch to the csv crate's reader, even with --skip-bad), in JSON
/// lines, and in schema inference. A long row the schema allows loads.
#[test]
fn a_row_longer_than_the_cap_is_refused_naming_its_line() {
    let d = Dir::new();
    let store = d.path("new.rmap");
    let spec = "a:u64,s:str[8]";
    let long = "x".repeat(2 << 20);
    let quoted_rows: String = (0..100).map(|i| format!("\"{i}\",\"q\"\n")).collect();
    let cases: Vec<(String, Vec<&str>, String)> = vec![
        (format!("a,s\n1,{long}\n2,b\n"), vec![], ":2:".into()),
        (format!("a,s\n1,\"{long}\"\n"), vec![], ":2:".into()),
        (format!("a,s\n1,b\n2,{long}"), vec![], ":3:".into()),
        (
            format!("a,s\n{quoted_rows}\"7\",\"{long}\"\n"),
            vec![],
            ":102:".into(),
        ),
        (
            format!("a,s\n1,{long}\n"),
            vec!["--skip-bad", "rejects.txt"],
            ":2:".into(),
        ),
        (
            format!("{{\"a\":1,\"s\":\"b\"}}\n{{\"a\":2,\"s\":\"{long}\"}}\n"),
            vec!["--format", "jsonl"],
            ":2:".into(),
        ),
    ];
    for (input, extra, line) in &cases {
        let mut args = vec!["load", s(&store), "--schema", spec];
        args.extend(extra);
        args.push("-");
        let r = run_stdin(&args, input.as_bytes());
        let what = format!("{extra:?} {line}");
        assert_eq!(r.code, 1, "{what}: {r:?}");
        let want = format!("recmap: <stdin>{line} row longer than 1048576 bytes\n");
        assert!(r.stderr.starts_with(&want), "{what}: want {want:?}\n{r:?}");
        assert!(
            r.stderr.contains("nothing from this load was committed (")
                && r.stderr.contains("which this load created, is removed"),
            "{what}: {r:?}"
        );
        assert!(!store.exists(), "{what}: the store is left behind");
    }
    // Schema inference reads at most 16 MiB of stdin: a first row longer
    // than that is named (it used to be "no data rows").
    let huge = "x".repeat(17 << 20);
    let r = run_stdin(
        &["load", s(&store), "-"],
        format!("a,s\n1,{huge}\n").as_bytes(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("recmap: <stdin>:2: row longer than 16777216 bytes"),
        "{r:?}"
    );
    assert!(!store.exists());
    // From a file, inference reads rows up to 64 MiB.
    let file = d.path("huge.jsonl");
    let mut text = b"{\"a\":1}\n".to_vec();
    text.resize(text.len() + (64 << 20) + 1, b' ');
    std::fs::write(&file, &text).unwrap();
    let r = run(&["load", s(&store), s(&file)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "recmap: {}:2: row longer than 67108864 bytes",
            s(&file)
        )),
        "{r:?}"
    );
    std::fs::remove_file(&file).unwrap();
    assert!(!store.exists());
    // A wide field raises the cap: a 2 MiB value of str[3000000] loads.
    let r = run_stdin(
        &["load", s(&store), "--schema", "a:u64,s:str[3000000]", "-"],
        format!("a,s\n1,{long}\n").as_bytes(),
    );
    ok(&r);
    assert_eq!(records(&store), 1);
}

#[test]
fn load_checks_a_given_schema_against_the_stored_one() {
    let d = Dir::new();
    let store = store_with_two(&d);
    let file = d.write("one.csv", "id\n1\n");
    let r = run(&["load", s(&store), "--schema", "id:u64", s(&file)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not match the stored one"), "{r:?}");
    assert!(r.stderr.contains(SPEC), "{r:?}");
    let file = d.write("two.csv", "id,x,name,ok,n\n3,1,c,1,3\n");
    ok(&run(&["load", s(&store), "--schema", SPEC, s(&file)]));
    assert_eq!(records(&store), 3);
}

fn rows(n: usize, bad_at: Option<usize>) -> String {
    let mut t = String::from("id,x,name,ok,n\n");
    for i in 0..n {
        if Some(i) == bad_at {
            t.push_str(&format!("{i},oops,r{i},true,{}\n", i % 256));
        } else {
            t.push_str(&format!(
                "{i},{},r{i},{},{}\n",
                i as f64 / 7.0,
                i % 2 == 0,
                i % 256
            ));
        }
    }
    t
}

#[test]
fn batch_commits_and_says_where_to_resume() {
    let d = Dir::new();
    let store = d.path("b.rmap");
    // 10,000 rows, row 7,777 bad (line 7,779); batches of 1,000.
    let bad = d.write("bad.csv", &rows(10_000, Some(7_777)));
    let r = run(&[
        "load",
        s(&store),
        "--schema",
        SPEC,
        "--batch",
        "1000",
        s(&bad),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with(&format!("recmap: {}:7779: field x: not a number", s(&bad))),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "committed 7000 rows of this load, the last committed row is {}:7001",
            s(&bad)
        )),
        "{r:?}"
    );
    assert!(r.stderr.contains("--skip 7000"), "{r:?}");
    assert_eq!(records(&store), 7000);
    ok(&run(&["verify", s(&store)]));
    // Fix the row and resume from there.
    let fixed = d.write("fixed.csv", &rows(10_000, None));
    let r = run(&["load", s(&store), "--skip", "7000", s(&fixed)]);
    ok(&r);
    assert!(r.stderr.contains("skipped the first 7000 rows"), "{r:?}");
    assert_eq!(records(&store), 10_000);
    let full = d.path("full.rmap");
    ok(&run(&["load", s(&full), "--schema", SPEC, s(&fixed)]));
    let a = run(&["export", s(&store), "--format", "bin"]);
    let b = run(&["export", s(&full), "--format", "bin"]);
    assert_eq!(a.raw.len(), 10_000 * 32);
    assert!(a.raw == b.raw, "resumed load equals a full load");
    let e = run(&["export", s(&store)]);
    assert_eq!(e.stdout, std::fs::read_to_string(&fixed).unwrap());
}

#[test]
fn bad_row_line_numbers_hold_across_reader_batches_and_files() {
    let d = Dir::new();
    let store = d.path("m.rmap");
    let a = d.write("a.csv", &rows(5_000, None));
    let b = d.write("b.csv", &rows(20_000, Some(12_345)));
    let r = run(&["load", s(&store), "--schema", SPEC, s(&a), s(&b)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with(&format!("recmap: {}:12347: field x:", s(&b))),
        "{r:?}"
    );
    assert!(!store.exists());
    let ok_b = d.write("b2.csv", &rows(20_000, None));
    let r = run(&["load", s(&store), "--schema", SPEC, s(&a), s(&ok_b)]);
    ok(&r);
    assert!(r.stderr.contains("loaded 25000 rows"), "{r:?}");
    assert_eq!(records(&store), 25_000);
}

#[test]
fn skip_bad_writes_rejects_and_loads_the_rest() {
    let d = Dir::new();
    let store = store_with_two(&d);
    let file = d.write(
        "mixed.csv",
        "id,x,name,ok,n\n3,1.5,c,true,3\n4,nan?,d,true,4\n5,2.5,\"e,f\",true,5\n6,1,g,true\n7,1,h,maybe,7\n8,8,i,0,8\n",
    );
    let rejects = d.path("rejects.txt");
    let r = run(&["load", s(&store), "--skip-bad", s(&rejects), s(&file)]);
    ok(&r);
    assert!(r.stderr.contains("3 rows rejected"), "{r:?}");
    assert_eq!(records(&store), 5);
    let rej = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<&str> = rej.lines().collect();
    assert_eq!(lines.len(), 3, "{rej}");
    assert!(
        lines[0].starts_with(&format!("{}:3: field x: not a number", s(&file))),
        "{rej}"
    );
    assert!(lines[0].ends_with("\t4,nan?,d,true,4"), "{rej}");
    assert!(
        lines[1].starts_with(&format!("{}:5: expected 5 columns, got 4", s(&file))),
        "{rej}"
    );
    assert!(
        lines[2].starts_with(&format!("{}:6: field ok: not a bool", s(&file))),
        "{rej}"
    );
    let e = run(&["export", s(&store), "--range", "2.."]);
    ok(&e);
    assert_eq!(
        e.stdout,
        "id,x,name,ok,n\n3,1.5,c,true,3\n5,2.5,\"e,f\",true,5\n8,8,i,false,8\n"
    );
}

#[test]
fn stdin_input_in_every_format() {
    let d = Dir::new();
    let store = d.path("in.rmap");
    let r = run_stdin(
        &["load", s(&store), "--schema", SPEC],
        b"id,x,name,ok,n\n1,0.5,a,true,1\n",
    );
    ok(&r);
    assert!(r.stderr.contains("loaded 1 rows"), "{r:?}");
    let r = run_stdin(
        &["load", s(&store), "-", "--no-header", "--quiet"],
        b"2,0.25,b,0,2\n",
    );
    ok(&r);
    assert_eq!(r.stderr, "", "--quiet prints nothing");
    let r = run_stdin(
        &["load", s(&store), "--format", "jsonl", "-"],
        br#"{"n":3,"ok":true,"name":"c","x":-1e-300,"id":3}"#,
    );
    ok(&r);
    let bin = run(&["export", s(&store), "--format", "bin", "--range", "0..1"]);
    assert_eq!(bin.raw.len(), 32);
    ok(&run_stdin(
        &["load", s(&store), "--format", "bin", "-q"],
        &bin.raw,
    ));
    let r = run_stdin(&["load", s(&store), "--format", "jsonl"], b"{\"id\":1}\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("recmap: <stdin>:1: field"), "{r:?}");
    let e = run(&["export", s(&store)]);
    assert_eq!(
        e.stdout,
        "id,x,name,ok,n\n1,0.5,a,true,1\n2,0.25,b,false,2\n3,-1e-300,c,true,3\n1,0.5,a,true,1\n"
    );
}

const ALL_TYPES: &str = "a:u8,b:u16,c:u32,d:u64,e:i8,f:i16,g:i32,h:i64,x:f32,y:f64,ok:bool,s:str[12],raw:bytes[4],v:f32[3]";

fn all_types_csv() -> String {
    let mut t = String::from("a,b,c,d,e,f,g,h,x,y,ok,s,raw,v\n");
    t.push_str("255,65535,4294967295,18446744073709551615,-128,-32768,-2147483648,-9223372036854775808,0.1,0.1,true,\"hi, \"\"you\"\"\",deadbeef,1;2;3\n");
    t.push_str("0,0,0,0,127,32767,2147483647,9223372036854775807,-0,-0,false,,00,-0.5;1e-40;3.4028235e38\n");
    t.push_str("1,2,3,4,5,6,7,8,1e-30,1e-300,1,ünï ✓,,0;0;0\n");
    t.push_str("1,2,3,4,5,6,7,8,16777217,5e-324,0,x,01,1;1;1\n");
    t.push_str("1,2,3,4,5,6,7,8,inf,-inf,0,x,01,1;1;1\n");
    t.push_str("1,2,3,4,5,6,7,8,NaN,1.7976931348623157e308,0,x,01,1;1;1\n");
    t.push_str("1,2,3,4,5,6,7,8,3.1415927,2.718281828459045,0,x,01,1;1;1\n");
    t.push_str("1,2,3,4,5,6,7,8,123456.79,0.30000000000000004,0,x,01,1;1;1\n");
    t
}

#[test]
fn export_then_load_round_trips_exactly_in_every_format() {
    let d = Dir::new();
    let src = d.path("src.rmap");
    let csv = d.write("all.csv", &all_types_csv());
    ok(&run(&["load", s(&src), "--schema", ALL_TYPES, s(&csv)]));
    let bin = run(&["export", s(&src), "--format", "bin"]).raw;
    assert_eq!(
        bin.len() as u64,
        8 * info(&src)["record_size"].as_u64().unwrap()
    );
    for fmt in ["csv", "jsonl", "bin"] {
        let e = run(&["export", s(&src), "--format", fmt]);
        ok(&e);
        let file = d.path(&format!("out.{fmt}"));
        std::fs::write(&file, &e.raw).unwrap();
        let copy = d.path(&format!("copy-{fmt}.rmap"));
        ok(&run(&["load", s(&copy), "--schema", ALL_TYPES, s(&file)]));
        let again = run(&["export", s(&copy), "--format", "bin"]).raw;
        assert!(again == bin, "{fmt} round trip changed the bytes");
        let text = run(&["export", s(&copy), "--format", fmt]);
        assert!(text.raw == e.raw, "{fmt} export of the copy differs");
    }
    // Floats print as the shortest text that reads back the same bits.
    let j = run(&["export", s(&src), "--format", "jsonl"]);
    let lines: Vec<Value> = j
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["y"].to_string(), "0.1");
    assert_eq!(lines[0]["x"].to_string(), "0.1");
    assert_eq!(lines[0]["s"], "hi, \"you\"");
    assert_eq!(lines[0]["raw"], "deadbeef");
    assert_eq!(lines[0]["d"].to_string(), "18446744073709551615");
    assert_eq!(lines[1]["y"].to_string(), "-0.0");
    assert_eq!(lines[2]["y"].to_string(), "1e-300");
    assert_eq!(lines[2]["s"], "ünï ✓");
    assert_eq!(lines[3]["y"].to_string(), "5e-324");
    assert_eq!(lines[3]["x"].to_string(), "16777216.0");
    assert_eq!(lines[4]["x"], "inf");
    assert_eq!(lines[4]["y"], "-inf");
    assert_eq!(lines[5]["x"], "NaN");
    let csv_out = run(&["export", s(&src), "--range", "1..3"]);
    assert_eq!(
        csv_out.stdout.lines().nth(1).unwrap(),
        "0,0,0,0,127,32767,2147483647,9223372036854775807,-0,-0,false,,00000000,-0.5;1e-40;3.4028235e38"
    );
}

#[test]
fn get_prints_records_and_refuses_indices_past_the_end() {
    let d = Dir::new();
    let store = store_with_two(&d);
    let r = run(&["get", s(&store), "1", "0"]);
    ok(&r);
    assert_eq!(
        r.stdout,
        "id,x,name,ok,n\n2,0.25,b,false,2\n1,0.5,a,true,1\n"
    );
    let r = run(&["get", s(&store), "1", "--json"]);
    ok(&r);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["name"], "b");
    assert_eq!(v["x"].as_f64(), Some(0.25));
    let r = run(&["get", s(&store), "0", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "", "nothing printed");
    assert!(r.stderr.contains("index 2 is past the end"), "{r:?}");
    assert!(r.stderr.contains("has 2 records"), "{r:?}");
}

#[test]
fn export_ranges() {
    let d = Dir::new();
    let store = d.path("r.rmap");
    let file = d.write("r.csv", &rows(1000, None));
    ok(&run(&["load", s(&store), "--schema", SPEC, s(&file)]));
    let r = run(&[
        "export",
        s(&store),
        "--range",
        "998..1000",
        "--format",
        "jsonl",
    ]);
    ok(&r);
    assert_eq!(r.stdout.lines().count(), 2);
    assert!(r.stdout.starts_with("{\"id\":998,"), "{r:?}");
    let r = run(&["export", s(&store), "--range", "..3"]);
    assert_eq!(r.stdout.lines().count(), 4);
    let r = run(&["export", s(&store), "--range", "5..1001"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("has 1000 records"), "{r:?}");
    let r = run(&["export", s(&store), "--range", "7"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn verify_finds_a_flipped_byte_and_names_the_page() {
    let d = Dir::new();
    let store = d.path("v.rmap");
    let file = d.write("v.csv", &rows(1000, None));
    ok(&run(&["load", s(&store), "--schema", SPEC, s(&file)]));
    let r = run(&["verify", s(&store)]);
    ok(&r);
    assert!(r.stdout.contains(": ok"), "{r:?}");
    let j = info(&store);
    let data_offset = j["data_offset"].as_u64().unwrap();
    let per_page = j["records_per_page"].as_u64().unwrap();
    // Flip a byte of record 3 * per_page + 1: data page 3, file page data_offset/4096 + 3.
    let copy = d.path("bad.rmap");
    std::fs::copy(&store, &copy).unwrap();
    let mut bytes = std::fs::read(&copy).unwrap();
    let at = (data_offset + 3 * 4096 + 24 + 5) as usize;
    bytes[at] ^= 0x40;
    std::fs::write(&copy, &bytes).unwrap();
    let r = run(&["verify", s(&copy)]);
    assert_eq!(r.code, 1, "{r:?}");
    let first_page = data_offset / 4096 + 3;
    assert!(r.stdout.contains("1 problem"), "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "data page 3 (file pages {first_page}..{}, records {}..{})",
            first_page + 1,
            3 * per_page,
            4 * per_page
        )),
        "{r:?}"
    );
    let r = run(&["verify", s(&copy), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["kind"], "page_checksum");
    assert_eq!(v["problems"][0]["first_page"], first_page);
    assert_eq!(v["problems"][0]["first_record"], 3 * per_page);
    let r = run(&["verify", s(&store), "--json"]);
    ok(&r);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["records_checked"], 1000);
}

#[test]
fn verify_reports_damaged_headers_and_schema_with_exit_1() {
    let d = Dir::new();
    let store = store_with_two(&d);
    let flip = |name: &str, offsets: &[usize]| {
        let copy = d.path(name);
        let mut bytes = std::fs::read(&store).unwrap();
        for &at in offsets {
            bytes[at] ^= 0x01;
        }
        std::fs::write(&copy, &bytes).unwrap();
        copy
    };
    // Both header slots fail their CRC (record count byte of each).
    let both = flip("slots.rmap", &[56, 2048 + 56]);
    let r = run(&["verify", s(&both)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("DAMAGED") && r.stdout.contains("no valid header slot"),
        "{r:?}"
    );
    let r = run(&["info", s(&both)]);
    assert_eq!(r.code, 2, "{r:?}");
    // The schema block (page 1) does not match its checksum.
    let schema = flip("schema.rmap", &[4096 + 20]);
    let r = run(&["verify", s(&schema), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{r:?}"
    );
    // One torn slot alone is a note, not damage.
    let one = flip("one.rmap", &[2048 + 56]);
    let r = run(&["verify", s(&one)]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn non_recmap_and_missing_files_are_clear_errors() {
    let d = Dir::new();
    let text = d.write("notes.txt", &"hello, I am not a store\n".repeat(400));
    for sub in ["info", "verify", "export", "schema"] {
        let r = run(&[sub, s(&text)]);
        assert_eq!(r.code, 2, "{sub}: {r:?}");
        assert!(r.stderr.starts_with("recmap: "), "{r:?}");
        assert!(r.stderr.contains("not a recmap file"), "{sub}: {r:?}");
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("Error {"),
            "{r:?}"
        );
    }
    let r = run(&["get", s(&text), "0"]);
    assert_eq!(r.code, 2, "{r:?}");
    let short = d.write("short.txt", "tiny");
    let r = run(&["verify", s(&short)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a recmap file"), "{r:?}");
    let r = run(&["info", s(&d.path("nope.rmap"))]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not found"), "{r:?}");
    let r = run(&[
        "load",
        s(&d.path("x.rmap")),
        "--schema",
        "id:u64",
        s(&d.path("nope.csv")),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nope.csv"), "{r:?}");
}

#[test]
fn schema_prints_the_spec_and_numpy_code() {
    let d = Dir::new();
    let store = store_with_two(&d);
    let r = run(&["schema", s(&store)]);
    ok(&r);
    assert_eq!(r.stdout.trim(), SPEC);
    let r = run(&["schema", s(&store), "--numpy"]);
    ok(&r);
    for want in [
        "np.memmap",
        "as_strided",
        "\"itemsize\": RECORD_SIZE",
        "DATA_OFFSET = 8192",
        "RECORDS = 2",
        "PER_PAGE = 128",
        "\"S8\"",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?}: {r:?}");
    }
}

#[test]
fn rust_log_turns_on_library_tracing_on_stderr() {
    let d = Dir::new();
    let store = d.path("log.rmap");
    let out = cmd(&["create", s(&store), "--schema", "id:u64"])
        .env("RUST_LOG", "info")
        .launch_output()
        .unwrap();
    let r = finish(out);
    ok(&r);
    assert!(r.stderr.contains("INFO"), "{r:?}");
    assert!(r.stderr.contains("recmap.create"), "{r:?}");
    assert_eq!(r.stdout, "");
}

#[test]
fn bench_cold_drops_the_cache_before_each_pass_and_counts_the_bytes_read() {
    // In the target directory: on disk (a tmpfs has no storage reads).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let r = run(&[
        "bench",
        "--cold",
        "--records",
        "200000",
        "--reads",
        "50000",
        "--dir",
        s(dir.path()),
    ]);
    if !cfg!(target_os = "linux") {
        // No way to drop and count cached pages there: refused, not faked.
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains("--cold") && r.stderr.contains("Linux only"),
            "{r:?}"
        );
        return;
    }
    ok(&r);
    // Dropped, and confirmed by mincore.
    assert!(
        r.stdout
            .contains("cold (dropped before every pass; at most ")
            && r.stdout.contains("left cached, by mincore)"),
        "{r:?}"
    );
    assert!(r.stdout.contains("KiB read/op"), "{r:?}");
    assert!(r.stdout.contains("20000 random reads"), "capped: {r:?}");
    // Where the kernel counts reads, the random recmap gets read about a
    // page each (the cache was dropped: more than nothing, far less than
    // the megabytes of read-around).
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("random") && l.contains("recmap get"))
        .unwrap();
    let kib = line.split_whitespace().last().unwrap();
    let kib: f64 = kib.parse().unwrap_or_else(|_| panic!("{line}"));
    assert!(kib > 0.5 && kib <= 16.0, "{kib} KiB per cold get: {line}");
}

/// `--cold` on a tmpfs: the pages cannot be dropped, and `mincore` says so:
/// an error (exit 1), not warm figures printed as cold.
#[cfg(target_os = "linux")]
#[test]
fn bench_cold_on_a_tmpfs_is_refused_by_the_mincore_check() {
    if !std::path::Path::new("/dev/shm").is_dir() {
        eprintln!("skipped: no /dev/shm tmpfs here");
        return;
    }
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let r = run(&[
        "bench",
        "--cold",
        "--records",
        "100000",
        "--dir",
        s(dir.path()),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("stayed cached") && r.stderr.contains("tmpfs"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("random"), "no figures: {r:?}");
}

#[test]
fn bench_prints_a_table_and_writes_an_svg() {
    let d = Dir::new();
    let svg = d.path("bench.svg");
    let r = run(&[
        "bench",
        "--records",
        "3000",
        "--record-size",
        "40",
        "--reads",
        "2000",
        "--dir",
        s(d.dir.path()),
        "--svg",
        s(&svg),
    ]);
    ok(&r);
    for want in ["recmap get", "pread", "BufReader", "ns/op", "vs recmap"] {
        assert!(r.stdout.contains(want), "{want}: {r:?}");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"),
        "{chart}"
    );
    assert_eq!(chart.matches("<rect").count(), 7, "background + 6 bars");
    // The scratch store is removed.
    let left: Vec<_> = std::fs::read_dir(d.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bench.svg")]);
}

#[test]
fn numpy_reads_what_the_cli_wrote() {
    let have_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have_numpy {
        eprintln!("SKIPPED numpy_reads_what_the_cli_wrote: python3 with numpy is not available");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/numpy_interop.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("RECMAP_BIN", BIN)
        .env_remove("RUST_LOG")
        .launch_output()
        .unwrap();
    let r = finish(out);
    assert_eq!(r.code, 0, "tests/numpy_interop.py failed: {r:?}");
    assert!(r.stdout.contains("numpy interop: ok"), "{r:?}");
}

#[test]
fn help_documents_repair_no_verify_and_interruption() {
    let r = run(&["--help"]);
    ok(&r);
    assert!(r.stdout.contains("repair"), "{r:?}");
    assert!(r.stdout.contains("130"), "{r:?}");
    let r = run(&["repair", "--help"]);
    ok(&r);
    assert!(r.stdout.contains("Example"), "{r:?}");
    for sub in ["get", "export"] {
        let r = run(&[sub, "--help"]);
        ok(&r);
        assert!(r.stdout.contains("--no-verify"), "{sub}: {r:?}");
    }
    let r = run(&["verify", "--help"]);
    ok(&r);
    assert!(r.stdout.contains("Ctrl-C"), "{r:?}");
}
