//! A typed Rust `Store` opens a store the command-line tool made, through
//! the declaration `recmap schema --rust` prints for it.
//!
//! The declaration is checked in as tests/fixtures/flights_layout.rs,
//! generated from the spec in tests/fixtures/flights_layout.spec: implicit
//! padding between fields and at the end, nullable fields of several types
//! (float, string, array), a timestamp, a date, strings, a bool and a field
//! named by a keyword (`type`). One test checks that the generator still
//! prints that file byte for byte (`RECMAP_BLESS=1` rewrites it instead);
//! the others open CLI-made stores with the type, read what `recmap load`
//! wrote (nulls included) and write values the CLI reads back.
#![cfg(feature = "cli")]

use recmap::{Bool, Date, Error, FixedStr, Record, Schema, Store, TimestampS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
mod common;
use common::spawn::Launch;

include!("fixtures/flights_layout.rs");

const BIN: &str = env!("CARGO_BIN_EXE_recmap");
const DECL: &str = include_str!("fixtures/flights_layout.rs");
const SPEC: &str = include_str!("fixtures/flights_layout.spec");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/flights_layout.rs"
);

/// Runs the tool; its stdout, or a panic with its stderr.
fn recmap(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .launch_output()
        .expect("run recmap");
    assert!(out.status.success(), "recmap {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores (seen: a writer
// open refused as `Locked` right after the test's own reader closed).
use common::serial;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A store `flights_layout.rmap` in `dir`, made by `recmap create` from the
/// fixture's spec.
fn cli_store(dir: &Path) -> PathBuf {
    let path = dir.join("flights_layout.rmap");
    recmap(&["create", s(&path), "--schema", SPEC.trim()]);
    path
}

const CSV: &str = "\
year,dep_time,carrier,tailnum,time_hour,day,arr_delay,type,ok,dist
2013,517.0,UA,N14228,2013-01-01T05:00:00Z,2013-01-01,11,1,true,1400;2.5
2013,,AA,,2013-01-01T06:00:00Z,2013-01-02,NA,2,false,
1969,-1.5,B6,N1,1969-12-31T23:59:59Z,1969-12-31,NULL,255,1,0;0
";

#[test]
fn schema_rust_prints_the_checked_in_fixture() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = cli_store(dir.path());
    let printed = recmap(&["schema", s(&path), "--rust"]);
    if std::env::var_os("RECMAP_BLESS").is_some() {
        std::fs::write(FIXTURE, &printed).unwrap();
        return;
    }
    assert!(
        printed == DECL,
        "`recmap schema --rust` no longer prints tests/fixtures/flights_layout.rs \
         (RECMAP_BLESS=1 cargo test --test rust_layout rewrites it):\n--- printed\n{printed}"
    );
    // --name renames the struct and nothing else.
    let named = recmap(&["schema", s(&path), "--rust", "--name", "Flight"]);
    assert_eq!(named, DECL.replace("FlightsLayout", "Flight"));
}

#[test]
fn the_fixture_type_is_the_stored_layout_with_explicit_padding() {
    let _serial = serial();
    let cli = Schema::parse(SPEC.trim()).unwrap();
    let rust = FlightsLayout::schema();
    assert_eq!(std::mem::size_of::<FlightsLayout>(), 56);
    assert_eq!(
        (rust.record_size, rust.record_align),
        (cli.record_size, cli.record_align)
    );
    let data: Vec<_> = rust
        .fields
        .iter()
        .filter(|f| !f.is_padding())
        .cloned()
        .collect();
    assert_eq!(
        data, cli.fields,
        "the same fields, offsets and validity bits"
    );
    let pads: Vec<_> = rust
        .fields
        .iter()
        .filter(|f| f.is_padding())
        .map(|f| (f.offset, f.count))
        .collect();
    assert_eq!(
        pads,
        [(2, 2), (28, 4), (42, 2), (53, 3)],
        "the gaps of the CLI's layout"
    );
    assert_eq!(
        rust.field("type").unwrap().offset,
        40,
        "r#type is the field `type`"
    );
}

#[test]
fn typed_store_reads_and_writes_a_cli_made_store() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = cli_store(dir.path());
    let csv = dir.path().join("flights.csv");
    std::fs::write(&csv, CSV).unwrap();
    recmap(&["load", "-q", s(&path), s(&csv)]);

    let mut store = Store::<FlightsLayout>::open(&path).unwrap();
    assert_eq!(store.len(), 3);
    let r = *store.get(0).unwrap();
    assert_eq!(
        (r.year, r.dep_time(), r.carrier.as_str()),
        (2013, Some(517.0), "UA")
    );
    assert_eq!(
        r.tailnum().map(|t| t.as_str().to_string()).as_deref(),
        Some("N14228")
    );
    assert_eq!(
        (r.time_hour, r.day),
        (TimestampS(1_357_016_400), Date(15_706))
    );
    assert_eq!((r.arr_delay(), r.r#type, r.ok.get()), (Some(11.0), 1, true));
    assert_eq!(r.dist(), Some([1400.0, 2.5]));
    // Empty fields, NA and NULL are nulls: their bits are clear.
    let r = *store.get(1).unwrap();
    assert_eq!(
        (r.dep_time(), r.tailnum(), r.arr_delay(), r.dist()),
        (None, None, None, None)
    );
    assert_eq!((r.carrier.as_str(), r.r#type, r.ok.get()), ("AA", 2, false));
    let r = *store.get(2).unwrap();
    assert_eq!(
        (r.time_hour.get(), r.day.days()),
        (-1, -1),
        "before the epoch"
    );
    assert_eq!(
        (r.dep_time(), r.arr_delay(), r.dist()),
        (Some(-1.5), None, Some([0.0, 0.0]))
    );

    // Writes through the typed API: values into nulls, nulls into values,
    // and a new record built from zeros (every nullable field null).
    store
        .update(1, |r| {
            r.set_dep_time(Some(-4.0));
            r.set_tailnum(FixedStr::new("N2"));
        })
        .unwrap();
    store.update(0, |r| r.set_dist(None)).unwrap();
    let mut new: FlightsLayout = recmap::bytemuck::Zeroable::zeroed();
    new.year = 2014;
    new.carrier = FixedStr::new("DL").unwrap();
    new.time_hour = TimestampS(1_388_534_400);
    new.day = Date(16_071);
    new.r#type = 9;
    new.ok = Bool::TRUE;
    new.set_arr_delay(Some(-0.5));
    store.push(&new).unwrap();
    store.close().unwrap();

    let rows: Vec<Value> = recmap(&["export", s(&path), "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["dist"], Value::Null);
    assert_eq!(rows[0]["dep_time"], json!(517.0));
    assert_eq!(
        (&rows[1]["dep_time"], &rows[1]["tailnum"]),
        (&json!(-4.0), &json!("N2"))
    );
    assert_eq!(rows[1]["arr_delay"], Value::Null);
    assert_eq!(
        rows[3],
        json!({"year": 2014, "dep_time": null, "carrier": "DL", "tailnum": null,
               "time_hour": "2014-01-01T00:00:00Z", "day": "2014-01-01", "arr_delay": -0.5,
               "type": 9, "ok": true, "dist": null})
    );
    assert!(recmap(&["verify", s(&path)]).contains("ok"));
}

recmap::record! {
    /// The example with its gap filled: `year:u16,dep_time:f32`.
    pub struct Gap { pub year: u16, pub _pad0: [u8; 2], pub dep_time: f32 }
}
recmap::record! {
    /// The same bytes under another field name: not the stored layout.
    pub struct Renamed { pub year: u16, pub _pad0: [u8; 2], pub dep: f32 }
}
recmap::record! {
    /// A real field where the store has a gap: not the stored layout.
    pub struct Filled { pub year: u16, pub month: u16, pub dep_time: f32 }
}

#[test]
fn padding_fields_open_gaps_and_real_mismatches_are_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gap.rmap");
    let csv = dir.path().join("gap.csv");
    std::fs::write(&csv, "year,dep_time\n2013,517.0\n").unwrap();
    recmap(&[
        "load",
        "-q",
        s(&path),
        s(&csv),
        "--schema",
        "year:u16,dep_time:f32",
    ]);
    {
        let store = Store::<Gap>::open_read_only(&path).unwrap();
        let r = store.get(0).unwrap();
        assert_eq!((r.year, r.dep_time), (2013, 517.0));
        assert_eq!(
            store.schema().spec(),
            "year:u16,dep_time:f32",
            "the stored schema as is"
        );
    }
    for e in [
        Store::<Renamed>::open(&path).map(drop).unwrap_err(),
        Store::<Filled>::open(&path).map(drop).unwrap_err(),
        recmap::Reader::<Renamed>::open(&path)
            .map(drop)
            .unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(matches!(e, Error::SchemaMismatch { .. }), "{e}");
        assert!(
            text.contains("stored:") && text.contains("dep_time: f32 @4"),
            "{text}"
        );
    }
    // The other way: a store the typed API made with the padding field
    // takes rows from the CLI under the spec without it.
    let typed = dir.path().join("typed.rmap");
    Store::<Gap>::create(&typed).unwrap().close().unwrap();
    recmap(&[
        "load",
        "-q",
        s(&typed),
        s(&csv),
        "--schema",
        "year:u16,dep_time:f32",
    ]);
    let store = Store::<Gap>::open(&typed).unwrap();
    assert_eq!(store.get(0).unwrap().dep_time, 517.0);
}
