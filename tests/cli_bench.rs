//! End-to-end tests of `recmap bench --sweep`: one table row per size, a
//! well-formed SVG line chart with one polyline per method, and usage errors
//! (exit 2, the bad value named) for sizes that are not counts, zero, or not
//! increasing. No timing is asserted: only the shape of the output.
#![cfg(feature = "cli")]

use std::process::Command;
mod common;
use common::spawn::Launch;

const BIN: &str = env!("CARGO_BIN_EXE_recmap");
/// The methods `bench --sweep` times at each size.
const METHODS: [&str; 3] = ["recmap get", "pread", "BufReader seek+read"];

fn bench(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("bench")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .launch_output()
        .expect("run recmap");
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks that `s` is well-formed XML as far as an SVG writer can get it
/// wrong: every tag closed in order, one root, quoted attributes, no stray
/// `<` or `&` in text. Returns the element names in document order.
fn well_formed(s: &str) -> Result<Vec<String>, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut roots = 0;
    let mut rest = s;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        let gt = rest[lt..].find('>').ok_or("unclosed tag")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> with nothing open"))?;
            if open != name.trim() {
                return Err(format!("</{name}> closes <{open}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body
            .split_whitespace()
            .next()
            .ok_or("empty tag")?
            .to_string();
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("bad element name {name:?}"));
        }
        if !body.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in <{body}>"));
        }
        for attr in body[name.len()..].split('"').step_by(2) {
            let a = attr.trim();
            if !a.is_empty() && !a.ends_with('=') {
                return Err(format!("unquoted attribute in <{body}>"));
            }
        }
        if stack.is_empty() {
            roots += 1;
        }
        names.push(name.clone());
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("left open: {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(names)
}

fn check_text(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(amp) = rest.find('&') {
        let semi = rest[amp..].find(';').ok_or("bare &")? + amp;
        if !matches!(&rest[amp..=semi], "&amp;" | "&lt;" | "&gt;" | "&quot;") {
            return Err(format!("unknown entity {}", &rest[amp..=semi]));
        }
        rest = &rest[semi + 1..];
    }
    Ok(())
}

#[test]
fn sweep_prints_one_row_per_size_and_a_line_per_method() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    let (code, out, err) = bench(
        dir.path(),
        &[
            "--sweep",
            "1000,4000,5K",
            "--reads",
            "1000",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first().is_some_and(|c| c.parse::<u64>().is_ok()))
        .collect();
    let sizes: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(sizes, ["1000", "4000", "5120"], "{out}");
    for r in &rows {
        // records, file size (number + unit), one ns/op per method, pread/get.
        assert_eq!(r.len(), 3 + METHODS.len() + 1, "row {r:?}");
        for ns in &r[3..3 + METHODS.len()] {
            let v: f64 = ns.parse().unwrap_or_else(|_| panic!("ns/op {ns:?}"));
            assert!(v > 0.0, "ns/op {v} in {r:?}");
        }
    }
    for m in METHODS {
        assert!(out.contains(m), "column {m} missing:\n{out}");
    }
    assert!(err.contains("100 %"), "no progress on stderr:\n{err}");

    let text = std::fs::read_to_string(&svg).unwrap();
    let names = well_formed(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(names[0], "svg");
    assert_eq!(
        names.iter().filter(|n| *n == "polyline").count(),
        METHODS.len()
    );
    for m in METHODS {
        assert!(text.contains(&format!(">{m}<")), "legend {m} missing");
    }
    // Every polyline has one point per size.
    for line in text.lines().filter(|l| l.starts_with("<polyline")) {
        let pts = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split_whitespace().count(), 3, "{line}");
    }
    assert!(text.contains("log scale"), "x axis label");
    assert!(text.contains("ns per random get"), "y axis label");
    // The scratch store is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "sweep.svg")
        .collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}

#[test]
fn sweep_cold_runs_at_small_sizes() {
    // In the target directory: on disk (a tmpfs keeps its pages).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (code, out, err) = bench(
        dir.path(),
        &["--sweep", "1K,2K", "--reads", "200", "--cold"],
    );
    if !cfg!(target_os = "linux") {
        // No way to drop and count cached pages there: refused, not faked.
        assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains("Linux only"), "{err}");
        return;
    }
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("cold"), "{out}");
    let n = out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|c| c.parse::<u64>().is_ok())
        })
        .count();
    assert_eq!(n, 2, "{out}");
}

#[test]
fn bad_sweep_values_are_usage_errors_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    for (arg, named) in [
        ("1000,abc", "'abc'"),
        ("0,10", "'0'"),
        ("4000,1000", "'1000'"),
        ("10,10", "'10'"),
        ("1M,", "''"),
        ("5Q", "'5Q'"),
        ("99999999999999999999G", "'99999999999999999999G'"),
    ] {
        let (code, out, err) = bench(dir.path(), &["--sweep", arg]);
        assert_eq!(code, 2, "--sweep {arg}: stdout {out} stderr {err}");
        assert!(err.contains(named), "--sweep {arg}: {err}");
        assert!(out.is_empty(), "--sweep {arg}: {out}");
    }
    // --records and --sweep do not mix.
    let (code, _, err) = bench(dir.path(), &["--sweep", "1000", "--records", "10"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn records_and_reads_take_the_sweep_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = bench(dir.path(), &["--records", "2K", "--reads", "1k"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("2048 records"), "{out}");
    assert!(out.contains("1024 random reads"), "{out}");
    for arg in ["0", "2X", "-1", "99999999999999999999G"] {
        let (code, out, err) = bench(dir.path(), &["--records", arg]);
        assert_eq!(code, 2, "--records {arg}: stdout {out} stderr {err}");
        assert!(err.contains(&format!("'{arg}'")), "--records {arg}: {err}");
    }
}
