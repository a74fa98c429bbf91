//! Schema inference in `recmap load NEW.rmap INPUT` without `--schema`:
//! the exact spec inferred from CSVs and JSON lines that pandas writes
//! (integer columns with missing values written as floats, empty fields,
//! naive and tz-aware ISO timestamps, dates, long and quoted strings,
//! bools), `--infer-only` printing it and creating nothing, the load that
//! follows (read back through pandas), standard input inferred from a
//! bounded prefix and replayed (a later row that does not fit fails with
//! FILE:LINE and the field), and header names that are not field names.
//!
//! The pandas tests are skipped with a printed reason without python3 and
//! pandas, except under `CI=true`, where they fail.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::Path;
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
    run_in(args, None)
}

/// Runs recmap, feeding `stdin` from a thread (so a large input cannot
/// block against a full stdout), and reaps it.
fn run_in(args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .expect("spawn recmap");
    let feeder = stdin.map(|data| {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // recmap may stop reading early (a bad row): a broken pipe is fine.
            let _ = w.write_all(&data);
        })
    });
    let out = child.wait_with_output().expect("wait for recmap");
    if let Some(f) = feeder {
        f.join().unwrap();
    }
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

/// True if python3 with pandas runs here; otherwise prints why the test is
/// skipped (and under CI=true fails instead).
fn have_pandas(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pandas"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // Windows (under Wine in CI) has no Python with pandas: these tests
        // run on Linux only (docs/platforms.md).
        assert!(
            cfg!(windows) || std::env::var("CI").as_deref() != Ok("true"),
            "{test}: python3 with pandas is required under CI (pip install -r tests/requirements.txt)"
        );
        eprintln!("SKIPPED {test}: python3 with pandas is not available");
    }
    ok
}

fn python(script: &str, dir: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .launch_output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every kind of column pandas writes, in an order that the inference
/// changes (it orders fields by alignment). The longest `note` is 72 bytes
/// of UTF-8 (70 x and an é); some notes hold a comma and quotes.
const FRAME: &str = r#"
import pandas as pd, numpy as np
n = 200
rng = np.random.default_rng(3)
dep = rng.integers(1, 2400, n).astype(float); dep[::7] = np.nan
delay = rng.integers(-40, 1300, n).astype(float); delay[3::11] = np.nan
temp = np.round(rng.normal(55, 17, n), 2); temp[5::9] = np.nan
note = np.array(['late, "weather"' if i % 5 == 0 else "x" * (i % 70) for i in range(n)], dtype=object)
note[1] = "x" * 70 + "\u00e9"
note[2::17] = None
flag = np.array([bool(i % 3) for i in range(n)], dtype=object)
flag[::13] = None
df = pd.DataFrame({
    "year": np.full(n, 2013),
    "dep_time": dep,
    "delay": delay,
    "temp": temp,
    "lat": rng.uniform(25, 48, n),
    "carrier": rng.choice(["UA", "AA", "B6"], n),
    "note": note,
    "ok": rng.random(n) < 0.5,
    "flag": flag,
    "t_naive": pd.Timestamp("2013-01-01 05:00:00") + pd.to_timedelta(np.arange(n), unit="h"),
    "t_tz": pd.Timestamp("2013-01-01T05:00:00Z") + pd.to_timedelta(np.arange(n) * 250, unit="ms"),
    "day": (pd.Timestamp("2013-01-01") + pd.to_timedelta(np.arange(n) // 24, unit="D")).date,
    "small": rng.integers(0, 2, n),
})
df.to_csv("frame.csv", index=False)
"#;

/// What inference must make of `FRAME`: 8-byte fields, then 4, 2 and 1,
/// each group in input order; the validity bits of the 5 nullable fields;
/// 4 bytes of explicit padding to the 8-byte alignment (116 -> 120).
const FRAME_FIELDS: [&str; 15] = [
    "lat: f64",
    "t_naive: timestamp[s]",
    "t_tz: timestamp[ms]",
    "temp: f32?",
    "day: date",
    "year: u16",
    "dep_time: u16?",
    "delay: i16?",
    "carrier: str[2]",
    "note: str[72]?",
    "ok: bool",
    "flag: bool?",
    "small: u8",
    "_valid: validity[1]",
    "_pad0: bytes[4]",
];

#[test]
fn infers_the_exact_schema_of_a_pandas_csv_and_infer_only_creates_nothing() {
    if !have_pandas("infers_the_exact_schema_of_a_pandas_csv") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    python(FRAME, dir.path());
    let csv = dir.path().join("frame.csv");
    let store = dir.path().join("frame.rmap");
    let before = listing(dir.path());
    let r = run(&["load", s(&store), s(&csv), "--infer-only"]);
    ok(&r);
    assert_eq!(r.stdout, FRAME_FIELDS.join(",\n") + "\n", "{r:?}");
    assert!(
        r.stderr.contains("inferred from 200 rows of")
            && r.stderr.contains("120-byte records")
            && r.stderr.contains("fields ordered by alignment")
            && r.stderr.contains("  dep_time: u16?,")
            && r.stderr.contains("missing"),
        "{r:?}"
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "--infer-only created something"
    );
    // The printed lines are a schema file as they are.
    let schema_file = dir.path().join("frame.schema");
    std::fs::write(&schema_file, &r.stdout).unwrap();
    let spec: String = FRAME_FIELDS.join(",").replace(": ", ":");
    let made = dir.path().join("made.rmap");
    let c = run(&["create", s(&made), "--schema-file", s(&schema_file)]);
    ok(&c);
    assert!(c.stderr.contains("120-byte records"), "{c:?}");
    assert_eq!(run(&["schema", s(&made)]).stdout, format!("{spec}\n"));
}

#[test]
fn a_load_without_a_schema_infers_it_and_loads_what_pandas_reads_back() {
    if !have_pandas("a_load_without_a_schema_infers_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    python(FRAME, dir.path());
    let csv = dir.path().join("frame.csv");
    let store = dir.path().join("frame.rmap");
    let r = run(&["load", s(&store), s(&csv)]);
    ok(&r);
    let spec: String = FRAME_FIELDS.join(",").replace(": ", ":");
    assert!(
        r.stderr.contains("no schema given: inferred from 200 rows")
            && r.stderr.contains(&format!("as --schema: '{spec}'"))
            && r.stderr.contains("CSV columns are matched by name"),
        "{r:?}"
    );
    assert_eq!(run(&["schema", s(&store)]).stdout, format!("{spec}\n"));
    // A second load into the store uses its schema: no inference.
    let again = run(&["load", s(&store), s(&csv)]);
    ok(&again);
    assert!(!again.stderr.contains("inferred"), "{again:?}");
    // The export, read by pandas, is the frame (columns in store order,
    // timestamps in UTC): twice over.
    let e = run(&["export", s(&store), "--format", "csv"]);
    ok(&e);
    std::fs::write(dir.path().join("out.csv"), &e.stdout).unwrap();
    let check = r#"
import pandas as pd
a = pd.read_csv("frame.csv")
b = pd.read_csv("out.csv")
assert sorted(b.columns) == sorted(a.columns), (list(a.columns), list(b.columns))
a = pd.concat([a, a], ignore_index=True)
b = b[a.columns]
for c in ["t_naive", "t_tz"]:
    a[c] = pd.to_datetime(a[c], utc=True, format="ISO8601")
    b[c] = pd.to_datetime(b[c], utc=True, format="ISO8601")
for c in a.columns:
    x, y = a[c], b[c]
    if x.dtype == object or y.dtype == object:
        x, y = x.astype(str).str.lower(), y.astype(str).str.lower()
    pd.testing.assert_series_equal(x, y, check_dtype=False, check_names=False)
print("same")
"#;
    assert_eq!(python(check, dir.path()).trim(), "same");
}

#[test]
fn jsonl_from_pandas_is_inferred_with_nulls() {
    if !have_pandas("jsonl_from_pandas_is_inferred_with_nulls") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Columns in alphabetical order: the order keys are met in either way.
    python(
        r#"
import pandas as pd, numpy as np
n = 50
dep = np.arange(n, dtype=float) * 48; dep[::4] = np.nan
df = pd.DataFrame({
    "carrier": ["UA", "B6"] * (n // 2),
    "dep_time": dep,
    "ok": [True, False] * (n // 2),
    "t": pd.Timestamp("2013-01-01T05:00:00Z") + pd.to_timedelta(np.arange(n), unit="h"),
    "year": np.full(n, 2013),
})
df.to_json("f.jsonl", orient="records", lines=True, date_format="iso")
"#,
        dir.path(),
    );
    let jsonl = dir.path().join("f.jsonl");
    let store = dir.path().join("f.rmap");
    let r = run(&["load", s(&store), s(&jsonl), "--infer-only"]);
    ok(&r);
    assert_eq!(
        r.stdout,
        "t: timestamp[s],\ndep_time: u16?,\nyear: u16,\ncarrier: str[2],\nok: bool,\n_valid: validity[1]\n",
        "{r:?}"
    );
    assert!(!store.exists());
    let r = run(&["load", s(&store), s(&jsonl)]);
    ok(&r);
    assert!(r.stderr.contains("has 50 records"), "{r:?}");
}

#[test]
fn stdin_is_inferred_from_a_prefix_and_a_later_row_that_does_not_fit_fails() {
    if !have_pandas("stdin_is_inferred_from_a_prefix") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 10,000 rows of small values, then one that needs a wider type (line
    // 10,002: the header is line 1).
    python(
        r#"
import pandas as pd
v = [i % 200 for i in range(10000)] + [300, 5]
pd.DataFrame({"id": range(len(v)), "v": v, "name": ["ab"] * len(v)}).to_csv("late.csv", index=False)
"#,
        dir.path(),
    );
    let data = std::fs::read(dir.path().join("late.csv")).unwrap();
    let store = dir.path().join("late.rmap");
    let r = run_in(&["load", s(&store), "-"], Some(data.clone()));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("inferred from the first 10000 rows of <stdin>")
            && r.stderr.contains("v: u8,")
            && r.stderr.contains("<stdin>:10002: field v: ")
            && r.stderr.contains("out of range for u8"),
        "{r:?}"
    );
    assert!(
        !store.exists(),
        "the store this load created is left behind"
    );
    // The same rows from a file: the whole file decides (v: u16).
    let r = run(&["load", s(&store), s(&dir.path().join("late.csv"))]);
    ok(&r);
    assert!(r.stderr.contains("v: u16,"), "{r:?}");
    assert!(r.stderr.contains("has 10002 records"), "{r:?}");
}

#[test]
fn stdin_prefix_is_replayed_into_the_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // More rows than the prefix takes, so the load reads the kept prefix
    // and then the rest of stdin: every row arrives once.
    let mut data = b"n,sq,tag\n".to_vec();
    for i in 0..25_000u64 {
        writeln!(data, "{i},{},t{}", i * i, i % 10).unwrap();
    }
    let store = dir.path().join("sq.rmap");
    let r = run_in(&["load", s(&store), "-"], Some(data));
    ok(&r);
    assert!(
        r.stderr.contains("the first 10000 rows of <stdin>")
            && r.stderr.contains("n: u16,")
            && r.stderr.contains("has 25000 records"),
        "{r:?}"
    );
    let e = run(&["export", s(&store), "--format", "csv"]);
    ok(&e);
    let mut lines = e.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (n, sq) = (
        header.iter().position(|h| *h == "n").unwrap(),
        header.iter().position(|h| *h == "sq").unwrap(),
    );
    let mut count = 0u64;
    for (i, l) in lines.enumerate() {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[n], i.to_string(), "row {i}: {l}");
        assert_eq!(f[sq], (i as u64 * i as u64).to_string(), "row {i}: {l}");
        count += 1;
    }
    assert_eq!(count, 25_000);
    // A short stdin is inferred whole.
    let small = dir.path().join("small.rmap");
    let r = run_in(&["load", s(&small), "-"], Some(b"a,b\n1,x\n2,\n".to_vec()));
    ok(&r);
    assert!(
        r.stderr.contains("all 2 rows of <stdin>") && r.stderr.contains("b: str[1]?"),
        "{r:?}"
    );
}

#[test]
fn header_names_that_are_not_field_names_are_errors_naming_the_column() {
    if !have_pandas("header_names_that_are_not_field_names") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    python(
        r#"
import pandas as pd
pd.DataFrame({"year": [2013], "dep time": [517]}).to_csv("bad.csv", index=False)
"#,
        dir.path(),
    );
    let store = dir.path().join("bad.rmap");
    let r = run(&["load", s(&store), s(&dir.path().join("bad.csv"))]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("bad.csv:1: column \"dep time\": not a valid field name")
            && r.stderr.contains("dep_time"),
        "{r:?}"
    );
    assert!(!store.exists());
}

#[test]
fn inference_takes_the_null_tokens_and_refuses_what_it_cannot_infer() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("dash.csv");
    std::fs::write(&csv, "a,b\n-,x\n5,\n").unwrap();
    let store = dir.path().join("x.rmap");
    // With `--null -` a dash is missing and an empty cell is an empty string.
    let r = run(&["load", s(&store), s(&csv), "--null", "-", "--infer-only"]);
    ok(&r);
    assert_eq!(
        r.stdout, "a: u8?,\nb: str[1],\n_valid: validity[1]\n",
        "{r:?}"
    );
    let r = run(&["load", s(&store), s(&csv), "--infer-only"]);
    ok(&r);
    assert_eq!(
        r.stdout, "a: str[1],\nb: str[1]?,\n_valid: validity[1]\n",
        "{r:?}"
    );
    for (args, want) in [
        (vec!["--no-header"], "needs a header row"),
        (vec!["--format", "bin"], "bin input has no field names"),
    ] {
        let mut a = vec!["load", s(&store), s(&csv)];
        a.extend(args);
        let r = run(&a);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(want), "{r:?}");
    }
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "a,b\n").unwrap();
    let r = run(&["load", s(&store), s(&empty)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no data rows to infer a schema from"),
        "{r:?}"
    );
    assert!(!store.exists());
}
