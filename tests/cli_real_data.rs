//! Real data as pandas writes it, end to end through the `recmap` tool:
//! nullable fields (empty cells, `NA`, `NULL`, `--null`, JSON `null` and
//! absent keys), `timestamp[unit]` and `date` from RFC 3339 / ISO 8601,
//! integer columns that pandas wrote as floats because they hold a missing
//! value, long and quoted strings; and the way back: `export` writes nulls
//! as nulls and temporal values in the form they were read, so pandas reads
//! the export back to the frame it wrote.
//!
//! The CSVs are written by pandas inside the tests (`df.to_csv(path,
//! index=False)`). Without python3 and pandas the pandas tests are skipped
//! with a printed reason, except under `CI=true`, where they fail.
#![cfg(feature = "cli")]

use serde_json::Value;
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

fn run_in(args: &[&str], stdin: Option<&[u8]>) -> Run {
    use std::io::Write;
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
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    let out = child.wait_with_output().expect("wait for recmap");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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

/// A flights-like frame: integer columns with missing values (pandas
/// writes them as floats), float gaps, a tz-aware and a naive timestamp, a
/// date, long and quoted strings, a nullable bool.
const FLIGHTS: &str = r#"
import pandas as pd, numpy as np
n = 1000
rng = np.random.default_rng(7)
dep_time = rng.integers(1, 2400, n).astype(float)
dep_time[rng.random(n) < 0.1] = np.nan
dep_delay = np.round(rng.normal(10, 30, n), 1)
dep_delay[rng.random(n) < 0.1] = np.nan
tail = np.array(["N%05d" % i for i in range(n)], dtype=object)
tail[rng.random(n) < 0.1] = None
note = np.array(['late, "weather"' if i % 7 == 0 else "x" * (i % 60) for i in range(n)], dtype=object)
df = pd.DataFrame({
    "year": np.full(n, 2013, dtype=np.int64),
    "flight": rng.integers(1, 8000, n),
    "dep_time": dep_time,
    "dep_delay": dep_delay,
    "tailnum": tail,
    "note": note,
    "time_hour": pd.Timestamp("2013-01-01T05:00:00Z") + pd.to_timedelta(np.arange(n), unit="h"),
    "sched": pd.Timestamp("2013-01-01 05:00:00") + pd.to_timedelta(np.arange(n) * 1500, unit="ms"),
    "day": (pd.Timestamp("2013-01-01") + pd.to_timedelta(np.arange(n) // 24, unit="D")).date,
})
df.to_csv("flights.csv", index=False)
df.to_json("flights.jsonl", orient="records", lines=True, date_format="iso")
"#;

const FLIGHTS_SCHEMA: &str = "year:u16,flight:u16,dep_time:u16?,dep_delay:f32?,tailnum:str[6]?,\
                              note:str[64],time_hour:timestamp[s],sched:timestamp[ms],day:date";

#[test]
fn a_pandas_csv_with_missing_values_and_timestamps_loads_and_exports_back() {
    if !have_pandas("a_pandas_csv_with_missing_values_and_timestamps_loads_and_exports_back") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    python(FLIGHTS, dir.path());
    let store = dir.path().join("flights.rmap");
    let store_s = store.to_str().unwrap();
    let csv = dir.path().join("flights.csv");
    let r = run(&[
        "load",
        store_s,
        "--schema",
        FLIGHTS_SCHEMA,
        csv.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("has 1000 records"), "{r:?}");

    // Nulls come back as JSON nulls, temporal values as RFC 3339 text.
    let r = run(&["export", store_s, "--format", "jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rows: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1000);
    let nulls = |k: &str| rows.iter().filter(|r| r[k].is_null()).count();
    for k in ["dep_time", "dep_delay", "tailnum"] {
        let n = nulls(k);
        assert!((50..200).contains(&n), "{k}: {n} nulls of 1000");
    }
    assert_eq!(nulls("year") + nulls("note") + nulls("time_hour"), 0);
    assert_eq!(rows[0]["time_hour"], "2013-01-01T05:00:00Z");
    assert_eq!(rows[1]["time_hour"], "2013-01-01T06:00:00Z");
    assert_eq!(rows[1]["sched"], "2013-01-01T05:00:01.5Z");
    assert_eq!(rows[25]["day"], "2013-01-02");
    assert_eq!(rows[7]["note"], "late, \"weather\"");

    // The export reads back in pandas to the frame pandas wrote.
    let export = dir.path().join("export.csv");
    let r = run(&["export", store_s, "--format", "csv"]);
    assert_eq!(r.code, 0, "{r:?}");
    std::fs::write(&export, &r.stdout).unwrap();
    let verdict = python(
        r#"
import pandas as pd, numpy as np
a = pd.read_csv("flights.csv")
b = pd.read_csv("export.csv")
assert list(a.columns) == list(b.columns), (a.columns, b.columns)
for c in ["year", "flight", "dep_time"]:
    assert ((a[c] == b[c]) | (a[c].isna() & b[c].isna())).all(), c
# f32 storage: equal to f32 precision.
da, db = a["dep_delay"], b["dep_delay"]
assert (da.isna() == db.isna()).all()
assert np.allclose(da[da.notna()].astype(np.float32), db[db.notna()].astype(np.float32))
for c in ["tailnum", "note"]:
    assert ((a[c] == b[c]) | (a[c].isna() & b[c].isna())).all(), c
for c in ["time_hour", "sched"]:
    ta = pd.to_datetime(a[c], utc=True, format="ISO8601")
    tb = pd.to_datetime(b[c], utc=True, format="ISO8601")
    assert (ta == tb).all(), c
assert (pd.to_datetime(a["day"]) == pd.to_datetime(b["day"])).all()
print("same")
"#,
        dir.path(),
    );
    assert_eq!(verdict.trim(), "same");

    // The JSON lines pandas wrote load into the same records.
    let store2 = dir.path().join("flights2.rmap");
    let jsonl = dir.path().join("flights.jsonl");
    let r = run(&[
        "load",
        store2.to_str().unwrap(),
        "--schema",
        FLIGHTS_SCHEMA,
        jsonl.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let a = run(&["export", store_s, "--format", "jsonl"]).stdout;
    let b = run(&["export", store2.to_str().unwrap(), "--format", "jsonl"]).stdout;
    assert_eq!(a, b);
}

#[test]
fn integral_floats_load_into_integer_fields_and_fractions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("i.rmap");
    let s = store.to_str().unwrap();
    let r = run_in(
        &["load", s, "--schema", "a:u16,b:i64"],
        Some(b"a,b\n517.0,-1e3\n1E2,9007199254740993.0\n"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["export", s, "--format", "csv"]);
    assert_eq!(r.stdout, "a,b\n517,-1000\n100,9007199254740993\n");
    // A fraction or a value out of range: FILE:LINE: field NAME, nothing committed.
    let r = run_in(&["load", s], Some(b"a,b\n1.0,2\n517.5,1\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("<stdin>:3: field a: \"517.5\" has a fractional part"),
        "{r:?}"
    );
    let r = run_in(&["load", s], Some(b"a,b\n65536.0,2\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("<stdin>:2: field a: ") && r.stderr.contains("out of range for u16"),
        "{r:?}"
    );
    assert!(run(&["info", s]).stdout.contains('2'));
    let r = run(&["export", s, "--format", "csv"]);
    assert_eq!(r.stdout.lines().count(), 3, "nothing more was committed");
}

#[test]
fn null_tokens_json_nulls_and_absent_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("n.rmap");
    let s = store.to_str().unwrap();
    let spec = "id:u32,x:f64?,name:str[8]?,t:timestamp[ms]?,d:date?";
    let r = run_in(
        &["load", s, "--schema", spec],
        Some(b"id,x,name,t,d\n1,,,,\n2,NA,NULL,NA,NULL\n3,1.5,ab,1970-01-01T00:00:01.25Z,1970-01-02\n"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_in(
        &["load", s, "--format", "jsonl"],
        Some(b"{\"id\":4,\"x\":null,\"name\":null,\"t\":null,\"d\":null}\n{\"id\":5}\n{\"id\":6,\"x\":2,\"name\":\"\",\"t\":1,\"d\":3}\n"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["export", s, "--format", "jsonl"]);
    let want = "\
{\"id\":1,\"x\":null,\"name\":null,\"t\":null,\"d\":null}
{\"id\":2,\"x\":null,\"name\":null,\"t\":null,\"d\":null}
{\"id\":3,\"x\":1.5,\"name\":\"ab\",\"t\":\"1970-01-01T00:00:01.25Z\",\"d\":\"1970-01-02\"}
{\"id\":4,\"x\":null,\"name\":null,\"t\":null,\"d\":null}
{\"id\":5,\"x\":null,\"name\":null,\"t\":null,\"d\":null}
{\"id\":6,\"x\":2.0,\"name\":\"\",\"t\":\"1970-01-01T00:00:00.001Z\",\"d\":\"1970-01-04\"}
";
    assert_eq!(r.stdout, want);
    // CSV export: a null is the empty cell.
    let r = run(&["export", s, "--format", "csv", "--range", "0..3"]);
    assert_eq!(
        r.stdout,
        "id,x,name,t,d\n1,,,,\n2,,,,\n3,1.5,ab,1970-01-01T00:00:01.25Z,1970-01-02\n"
    );

    // --null replaces the default set: "-999" is null, "" and NA are not.
    let store2 = dir.path().join("m.rmap");
    let s2 = store2.to_str().unwrap();
    let r = run_in(
        &["load", s2, "--schema", "id:u32,v:i32?", "--null", "-999"],
        Some(b"id,v\n1,-999\n2,7\n"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        run(&["export", s2, "--format", "csv"]).stdout,
        "id,v\n1,\n2,7\n"
    );
    let r = run_in(&["load", s2, "--null", "-999"], Some(b"id,v\n3,NA\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("<stdin>:2: field v: not an integer"),
        "{r:?}"
    );

    // A missing value in a field that is not nullable says how to declare it.
    let r = run_in(&["load", s], Some(b"id,x,name,t,d\n,1,a,,\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("<stdin>:2: field id: empty value, but the field is not nullable (declare it id:u32? to store nulls)"),
        "{r:?}"
    );
}

#[test]
fn timestamps_are_exact_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("t.rmap");
    let s = store.to_str().unwrap();
    let r = run_in(
        &["load", s, "--schema", "t:timestamp[s],d:date"],
        Some(
            b"t,d\n2013-01-01T06:00:00Z,2013-01-01\n2013-01-01 07:00:00+01:00,1969-12-31\n2013-01-01 06:00:00,2000-02-29\n",
        ),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        run(&["export", s, "--format", "csv"]).stdout,
        "t,d\n2013-01-01T06:00:00Z,2013-01-01\n2013-01-01T06:00:00Z,1969-12-31\n2013-01-01T06:00:00Z,2000-02-29\n"
    );
    for (row, why) in [
        (
            "2013-01-01T06:00:00.5Z,2013-01-01",
            "field t: \"2013-01-01T06:00:00.5Z\" has more precision than timestamp[s]",
        ),
        (
            "2013-02-30T06:00:00Z,2013-01-01",
            "field t: not a timestamp",
        ),
        ("2013-01-01T06:00:00Z,2013-02-30", "field d: not a date"),
        ("2013-01-01T06:00:00Z,yesterday", "field d: not a date"),
        // A leap second: once stored as :59 without a word.
        (
            "2016-12-31T23:59:60Z,2013-01-01",
            "field t: \"2016-12-31T23:59:60Z\" is a leap second (second 60)",
        ),
    ] {
        let input = format!("t,d\n{row}\n");
        let r = run_in(&["load", s], Some(input.as_bytes()));
        assert_eq!(r.code, 1, "{row}: {r:?}");
        assert!(
            r.stderr.contains(&format!("<stdin>:2: {why}")),
            "{row}: {r:?}"
        );
    }
}

/// The first and last days of the years dates are parsed in load and export
/// back as written (each lies past the UTC instants the date library holds,
/// which once made the conversion panic); a timestamp there is refused,
/// named as out of range.
#[test]
fn dates_at_the_ends_of_the_calendar_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("d.rmap");
    let s = store.to_str().unwrap();
    let input = b"d\n9999-12-31\n-009999-01-01\n0000-01-01\n";
    let r = run_in(&["load", s, "--schema", "d:date"], Some(input));
    assert_eq!(r.code, 0, "{r:?}");
    let out = run(&["export", s, "--format", "csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, String::from_utf8_lossy(input));
    let other = dir.path().join("t.rmap");
    let r = run_in(
        &[
            "load",
            other.to_str().unwrap(),
            "--schema",
            "t:timestamp[s]",
        ],
        Some(b"t\n9999-12-31 23:00:00\n"),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("<stdin>:2: field t: \"9999-12-31 23:00:00\" is out of range"),
        "{r:?}"
    );
}
