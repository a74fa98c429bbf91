//! `recmap::arrow` (feature `arrow`) and `recmap export --format parquet |
//! arrow | arrow-stream`: the type mapping, nulls from the validity bits,
//! batch sizes, page checks, snapshots beside a writer, the CLI's output
//! read back with the parquet and arrow-ipc readers, and (when python3 has
//! pyarrow and duckdb) tests/arrow_interop.py.
#![cfg(feature = "arrow")]

use recmap::arrow::arrow_array::cast::AsArray;
use recmap::arrow::arrow_array::types::*;
use recmap::arrow::arrow_array::{Array, RecordBatch};
use recmap::arrow::arrow_schema::{DataType, TimeUnit};
use recmap::arrow::{self as ra, as_store_error};
use recmap::{Error, RawReader, RawStore, Schema};
use std::path::Path;
mod common;

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;
use common::spawn::Launch;

const SPEC: &str = "id:u64,small:i8?,f:f32?,d:f64,flag:bool?,ts:timestamp[ms]?,tns:timestamp[ns],\
                    day:date?,name:str[6]?,raw:bytes[3],vec:f32[3]?,_pad0:bytes[2]";

/// Record `i` of the test store: every third nullable field null (by a
/// pattern per field), values that depend on `i`.
fn record(schema: &Schema, i: u64) -> Vec<u8> {
    let mut r = vec![0u8; schema.record_size as usize];
    let put = |r: &mut Vec<u8>, name: &str, b: &[u8], present: bool| {
        let f = schema.field(name).unwrap();
        if let Some((at, mask)) = schema.validity_bit(f) {
            if !present {
                return;
            }
            r[at as usize] |= mask;
        }
        let o = f.offset as usize;
        r[o..o + b.len()].copy_from_slice(b);
    };
    let null = |k: u64| (i + k).is_multiple_of(3);
    put(&mut r, "id", &i.to_le_bytes(), true);
    put(
        &mut r,
        "small",
        &[(i as i8).wrapping_sub(100) as u8],
        !null(0),
    );
    put(&mut r, "f", &(i as f32 * 0.25).to_le_bytes(), !null(1));
    put(&mut r, "d", &(-(i as f64) / 3.0).to_le_bytes(), true);
    put(&mut r, "flag", &[(i % 2) as u8 * 7], !null(2));
    put(&mut r, "ts", &(i as i64 * 1000 - 5).to_le_bytes(), !null(0));
    put(
        &mut r,
        "tns",
        &(-(i as i64) * 1_000_000_007).to_le_bytes(),
        true,
    );
    put(&mut r, "day", &(i as i32 - 1000).to_le_bytes(), !null(1));
    let name = ["", "ab", "ÅÅÅ", "sixsix", "x"][i as usize % 5];
    put(&mut r, "name", name.as_bytes(), !null(2));
    put(&mut r, "raw", &[i as u8, 0, 0xff], true);
    let v: Vec<u8> = (0..3)
        .flat_map(|k| (i as f32 + k as f32).to_le_bytes())
        .collect();
    put(&mut r, "vec", &v, !null(0));
    r
}

fn make_store(path: &Path, n: u64) -> Schema {
    let schema = Schema::parse(SPEC).unwrap();
    let mut s = RawStore::create(path, &schema).unwrap();
    for i in 0..n {
        s.push(&record(&schema, i)).unwrap();
    }
    s.commit().unwrap();
    schema
}

/// Every value of `batch` (records `first..`) against `record`.
fn check_batch(batch: &RecordBatch, first: u64) {
    let n = batch.num_rows();
    let col = |name: &str| batch.column_by_name(name).unwrap();
    for k in 0..n {
        let i = first + k as u64;
        let null = |j: u64| (i + j).is_multiple_of(3);
        assert_eq!(col("id").as_primitive::<UInt64Type>().value(k), i);
        let small = col("small").as_primitive::<Int8Type>();
        assert_eq!(small.is_null(k), null(0), "record {i}");
        if !null(0) {
            assert_eq!(small.value(k), (i as i8).wrapping_sub(100));
        }
        let f = col("f").as_primitive::<Float32Type>();
        assert_eq!(f.is_null(k), null(1));
        if !null(1) {
            assert_eq!(f.value(k), i as f32 * 0.25);
        }
        assert_eq!(
            col("d").as_primitive::<Float64Type>().value(k),
            -(i as f64) / 3.0
        );
        let flag = col("flag").as_boolean();
        assert_eq!(flag.is_null(k), null(2));
        if !null(2) {
            assert_eq!(flag.value(k), i % 2 == 1, "any non-zero byte is true");
        }
        let ts = col("ts").as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.is_null(k), null(0));
        if !null(0) {
            assert_eq!(ts.value(k), i as i64 * 1000 - 5);
        }
        assert_eq!(
            col("tns")
                .as_primitive::<TimestampNanosecondType>()
                .value(k),
            -(i as i64) * 1_000_000_007
        );
        let day = col("day").as_primitive::<Date32Type>();
        assert_eq!(day.is_null(k), null(1));
        if !null(1) {
            assert_eq!(day.value(k), i as i32 - 1000);
        }
        let name = col("name").as_string::<i32>();
        assert_eq!(name.is_null(k), null(2));
        if !null(2) {
            assert_eq!(
                name.value(k),
                ["", "ab", "ÅÅÅ", "sixsix", "x"][i as usize % 5]
            );
        }
        let raw = col("raw").as_fixed_size_binary();
        assert_eq!(raw.value(k), &[i as u8, 0, 0xff]);
        let vec = col("vec").as_fixed_size_list();
        assert_eq!(vec.is_null(k), null(0));
        if !null(0) {
            let items = vec.value(k);
            let items = items.as_primitive::<Float32Type>();
            assert_eq!(items.values(), &[i as f32, i as f32 + 1.0, i as f32 + 2.0]);
        }
    }
}

#[test]
fn schema_maps_every_type_and_leaves_out_validity_and_padding() {
    let _serial = serial();
    let schema = Schema::parse(SPEC).unwrap();
    let a = ra::to_arrow_schema(&schema);
    let names: Vec<&str> = a.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["id", "small", "f", "d", "flag", "ts", "tns", "day", "name", "raw", "vec"]
    );
    let ty = |n: &str| a.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("id"), DataType::UInt64);
    assert_eq!(ty("small"), DataType::Int8);
    assert_eq!(ty("f"), DataType::Float32);
    assert_eq!(ty("flag"), DataType::Boolean);
    assert_eq!(
        ty("ts"),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        ty("tns"),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert_eq!(ty("day"), DataType::Date32);
    assert_eq!(ty("name"), DataType::Utf8);
    assert_eq!(ty("raw"), DataType::FixedSizeBinary(3));
    match ty("vec") {
        DataType::FixedSizeList(item, 3) => {
            assert_eq!(item.data_type(), &DataType::Float32);
            assert!(!item.is_nullable());
        }
        t => panic!("vec is {t:?}"),
    }
    for f in a.fields() {
        let nullable = schema.field(f.name()).unwrap().is_nullable();
        assert_eq!(f.is_nullable(), nullable, "{}", f.name());
    }
    assert_eq!(a.metadata()["recmap.spec"], schema.spec());
    assert_eq!(
        a.metadata()["recmap.record_size"],
        schema.record_size.to_string()
    );
}

#[test]
fn store_batches_hold_every_value_and_null() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rmap");
    make_store(&path, 1000);
    let s = RawStore::open_read_only(&path).unwrap();
    let mut first = 0;
    let mut sizes = vec![];
    for b in ra::batches(&s, 0..1000, 300) {
        let b = b.unwrap();
        check_batch(&b, first);
        first += b.num_rows() as u64;
        sizes.push(b.num_rows());
    }
    assert_eq!(sizes, [300, 300, 300, 100]);
    // A range, clamped to the store.
    let b: Vec<_> = ra::batches(&s, 995..2000, 64).map(|b| b.unwrap()).collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].num_rows(), 5);
    check_batch(&b[0], 995);
    assert_eq!(ra::batches(&s, 1000..1000, 10).count(), 0);
}

#[test]
fn a_damaged_page_is_an_error_unless_not_verified() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rmap");
    let schema = make_store(&path, 500);
    let data = RawStore::open_read_only(&path).unwrap().info().data_offset;
    // Flip a byte of the `d` field of record 0 (data page 0).
    let off = data + schema.field("d").unwrap().offset as u64;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[off as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let s = RawStore::open_read_only(&path).unwrap();
    let mut it = ra::batches(&s, 0..500, 100);
    let e = it.next().unwrap().unwrap_err();
    assert!(
        matches!(
            as_store_error(&e),
            Some(Error::CorruptPage { group: 0, .. })
        ),
        "{e}"
    );
    assert!(it.next().is_none(), "the iteration ends at the error");
    let b = ra::batches(&s, 0..500, 100)
        .verify(false)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.num_rows(), 100);
    assert_ne!(
        b.column_by_name("d")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0),
        -0.0 / 3.0
    );
}

#[test]
fn snapshot_batches_are_of_one_commit_beside_a_writer() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rmap");
    let schema = make_store(&path, 2000);
    let mut w = RawStore::open(&path).unwrap();
    let mut r = RawReader::open(&path).unwrap();
    {
        let snap = r.snapshot().unwrap();
        // A later commit appends: the snapshot still has 2000 records.
        for i in 2000..2100 {
            w.push(&record(&schema, i)).unwrap();
        }
        w.commit().unwrap();
        let mut first = 0;
        for (verify, rows) in [(true, 333), (false, 1000)] {
            first = 0;
            for b in ra::snapshot_batches(&snap, 0..u64::MAX, rows).verify(verify) {
                let b = b.unwrap();
                check_batch(&b, first);
                first += b.num_rows() as u64;
            }
            assert_eq!(first, 2000);
        }
        // A later commit changes record 1500 in place: the snapshot's
        // batches stop with SnapshotExpired before reaching a mixed page.
        let mut changed = record(&schema, 1500);
        changed[0] ^= 1;
        w.set(1500, &changed).unwrap();
        w.commit().unwrap();
        let mut got = 0;
        let mut err = None;
        for b in ra::snapshot_batches(&snap, 0..2000, 500) {
            match b {
                Ok(b) => {
                    check_batch(&b, got);
                    got += b.num_rows() as u64;
                }
                Err(e) => err = Some(e),
            }
        }
        let e = err.expect("the snapshot expired");
        assert!(
            matches!(as_store_error(&e), Some(Error::SnapshotExpired { .. })),
            "{e}"
        );
        assert!(got <= 1500, "{got}");
        let _ = first;
    }
    // A new snapshot sees both commits.
    let snap = r.snapshot().unwrap();
    let n: usize = ra::snapshot_batches(&snap, 0..u64::MAX, 4096)
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(n, 2100);
}

#[test]
fn convert_refuses_a_partial_record() {
    let _serial = serial();
    let schema = Schema::parse("a:u32").unwrap();
    let c = ra::Converter::new(&schema);
    assert!(c.convert(&[0u8; 6]).is_err());
    let b = c.convert(&[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
    assert_eq!(
        b.column(0).as_primitive::<UInt32Type>().values(),
        &[1u32, 2]
    );
    // Records of padding only: batches of rows without columns.
    let schema = Schema::parse("_pad0:bytes[4]").unwrap();
    let b = ra::Converter::new(&schema).convert(&[0u8; 12]).unwrap();
    assert_eq!((b.num_rows(), b.num_columns()), (3, 0));
}

#[test]
fn strings_replace_invalid_utf8_value_by_value() {
    let _serial = serial();
    // str[3] then a u8: valid text, text cut at a NUL, a lone invalid byte,
    // and the two halves of "é" (C3 A9) in two records: together they are
    // valid UTF-8, each alone is not.
    let schema = Schema::parse("s:str[3]?,n:u8,_valid:validity[1],_pad0:bytes[3]").unwrap();
    let size = schema.record_size as usize;
    let texts: [&[u8]; 6] = [b"abc", b"a\0z", &[0xFF], &[0xC3], &[0xA9], b"ok"];
    let mut records = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let mut r = vec![0u8; size];
        r[..t.len()].copy_from_slice(t);
        r[3] = i as u8;
        let (at, mask) = schema.validity_bit(schema.field("s").unwrap()).unwrap();
        // Record 5 is null: its bytes are not text.
        if i != 5 {
            r[at as usize] |= mask;
        }
        records.extend_from_slice(&r);
    }
    let c = ra::Converter::new(&schema);
    let b = c.convert(&records).unwrap();
    let s = b.column(0).as_string::<i32>();
    let got: Vec<Option<&str>> = s.iter().collect();
    assert_eq!(
        got,
        [
            Some("abc"),
            Some("a"),
            Some("\u{FFFD}"),
            Some("\u{FFFD}"),
            Some("\u{FFFD}"),
            None
        ]
    );
    // One column alone is the same column; the other one too.
    assert_eq!(
        c.convert_column(0, &records).unwrap().as_ref(),
        b.column(0).as_ref()
    );
    assert_eq!(
        c.convert_column(1, &records)
            .unwrap()
            .as_primitive::<UInt8Type>()
            .values(),
        &[0u8, 1, 2, 3, 4, 5]
    );
    assert!(c.convert_column(2, &records).is_err());
    assert!(c.convert_column(0, &records[..size + 1]).is_err());
    // Without the bad records the fast path keeps every value as it is.
    let b = c.convert(&records[..2 * size]).unwrap();
    let got: Vec<Option<&str>> = b.column(0).as_string::<i32>().iter().collect();
    assert_eq!(got, [Some("abc"), Some("a")]);
    // The halves of one character, alone in a batch: valid as one buffer,
    // still invalid value by value.
    let b = c.convert(&records[3 * size..5 * size]).unwrap();
    let got: Vec<Option<&str>> = b.column(0).as_string::<i32>().iter().collect();
    assert_eq!(got, [Some("\u{FFFD}"), Some("\u{FFFD}")]);
}

#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::process::{Command, Output, Stdio};

    const BIN: &str = env!("CARGO_BIN_EXE_recmap");

    fn run(args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .launch_output()
            .unwrap()
    }

    fn export(path: &Path, args: &[&str]) -> Vec<u8> {
        let mut a = vec!["export", path.to_str().unwrap()];
        a.extend_from_slice(args);
        let out = run(&a);
        assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `bytes` in a file of `dir` (the Parquet reader reads files).
    fn file(dir: &tempfile::TempDir, bytes: Vec<u8>) -> std::fs::File {
        let p = dir.path().join("out.parquet");
        std::fs::write(&p, bytes).unwrap();
        std::fs::File::open(p).unwrap()
    }

    /// Batches read back must hold the same records as the library's.
    fn check_all(batches: impl Iterator<Item = RecordBatch>, want_rows: u64) -> Vec<usize> {
        let mut first = 0;
        let mut sizes = vec![];
        for b in batches {
            check_batch(&b, first);
            first += b.num_rows() as u64;
            sizes.push(b.num_rows());
        }
        assert_eq!(first, want_rows);
        sizes
    }

    #[test]
    fn parquet_and_arrow_exports_read_back() {
        let _serial = super::serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rmap");
        make_store(&path, 5000);
        let lib_schema = ra::to_arrow_schema(&Schema::parse(SPEC).unwrap());

        for compression in ["snappy", "zstd", "none"] {
            let pq = export(
                &path,
                &[
                    "--format",
                    "parquet",
                    "--compression",
                    compression,
                    "--row-group-rows",
                    "2000",
                ],
            );
            let r = ParquetRecordBatchReaderBuilder::try_new(file(&dir, pq)).unwrap();
            let groups: Vec<i64> = r
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            assert_eq!(groups, [2000, 2000, 1000], "{compression}");
            assert_eq!(r.schema().fields(), lib_schema.fields());
            assert_eq!(
                r.schema().metadata()["recmap.spec"],
                lib_schema.metadata()["recmap.spec"]
            );
            check_all(r.build().unwrap().map(|b| b.unwrap()), 5000);
        }

        for compression in ["none", "zstd"] {
            let ipc = export(
                &path,
                &[
                    "--format",
                    "arrow",
                    "--batch-rows",
                    "1500",
                    "--compression",
                    compression,
                ],
            );
            let r =
                arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(ipc), None).unwrap();
            assert_eq!(r.schema().as_ref(), &lib_schema);
            let sizes = check_all(r.map(|b| b.unwrap()), 5000);
            assert_eq!(sizes, [1500, 1500, 1500, 500]);
        }

        let stream = export(&path, &["--format", "arrow-stream", "--range", "10..4000"]);
        let r =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None).unwrap();
        let mut first = 10;
        for b in r {
            let b = b.unwrap();
            check_batch(&b, first);
            first += b.num_rows() as u64;
        }
        assert_eq!(first, 4000);
    }

    #[test]
    fn seconds_past_the_millisecond_range_stop_a_parquet_export() {
        let _serial = super::serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.rmap");
        let schema = Schema::parse("id:u32,_pad0:bytes[4],t:timestamp[s]").unwrap();
        let mut s = RawStore::create(&path, &schema).unwrap();
        for t in [0i64, -5, i64::MAX / 100] {
            let mut r = vec![0u8; 16];
            r[8..].copy_from_slice(&t.to_le_bytes());
            s.push(&r).unwrap();
        }
        s.commit().unwrap();
        drop(s);
        let out = run(&["export", path.to_str().unwrap(), "--format", "parquet"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("field t") && err.contains("outside the range"),
            "{err}"
        );
        // Arrow keeps seconds: the same store exports.
        let ok = export(&path, &["--format", "arrow"]);
        let r = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(ok), None).unwrap();
        let b = r.into_iter().next().unwrap().unwrap();
        assert_eq!(
            b.column(1).as_primitive::<TimestampSecondType>().values(),
            &[0, -5, i64::MAX / 100]
        );
        // Values in range are milliseconds in Parquet.
        let path = dir.path().join("ok.rmap");
        let mut s = RawStore::create(&path, &schema).unwrap();
        for t in [0i64, -5] {
            let mut r = vec![0u8; 16];
            r[8..].copy_from_slice(&t.to_le_bytes());
            s.push(&r).unwrap();
        }
        s.commit().unwrap();
        drop(s);
        let pq = export(&path, &["--format", "parquet"]);
        let r = ParquetRecordBatchReaderBuilder::try_new(file(&dir, pq))
            .unwrap()
            .build()
            .unwrap();
        let b = r.into_iter().next().unwrap().unwrap();
        assert_eq!(
            b.column(1)
                .as_primitive::<TimestampMillisecondType>()
                .values(),
            &[0, -5000]
        );
    }

    #[test]
    fn bad_columnar_options_are_usage_errors() {
        let _serial = super::serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rmap");
        make_store(&path, 10);
        let p = path.to_str().unwrap();
        for (args, want) in [
            (
                vec!["--format", "csv", "--compression", "zstd"],
                "--compression",
            ),
            (
                vec!["--format", "arrow", "--compression", "snappy"],
                "snappy",
            ),
            (
                vec!["--format", "parquet", "--batch-rows", "0"],
                "at least 1",
            ),
            (vec!["--format", "parquet", "--compression", "lz4"], "lz4"),
        ] {
            let mut a = vec!["export", p];
            a.extend(args.iter());
            let out = run(&a);
            assert_eq!(out.status.code(), Some(2), "{a:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(want), "{a:?}: {err}");
            assert!(out.stdout.is_empty());
        }
    }

    #[test]
    fn a_damaged_page_stops_a_parquet_export() {
        let _serial = super::serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rmap");
        let schema = make_store(&path, 500);
        let data = RawStore::open_read_only(&path).unwrap().info().data_offset;
        let off = data + schema.field("d").unwrap().offset as u64;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[off as usize] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let out = run(&["export", path.to_str().unwrap(), "--format", "parquet"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"));
        let ok = export(&path, &["--format", "parquet", "--no-verify"]);
        let r = ParquetRecordBatchReaderBuilder::try_new(file(&dir, ok))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(r.map(|b| b.unwrap().num_rows()).sum::<usize>(), 500);
    }

    #[test]
    fn pyarrow_and_duckdb_read_the_exports() {
        let _serial = super::serial();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/arrow_interop.py");
        let out = match Command::new("python3")
            .arg(&script)
            .env("RECMAP_BIN", BIN)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .launch_output()
        {
            Ok(o) => o,
            // Windows (under Wine in CI) has no Python with pyarrow and
            // DuckDB: this test runs on Linux only (docs/platforms.md).
            Err(e) if cfg!(windows) || std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED pyarrow_and_duckdb_read_the_exports: no python3 ({e})");
                return;
            }
            Err(e) => panic!("python3 is needed under CI=true: {e}"),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tests/arrow_interop.py failed:\n{stdout}\n{stderr}"
        );
        if stdout.contains("SKIPPED") {
            eprintln!("SKIPPED pyarrow_and_duckdb_read_the_exports: {stdout}");
            return;
        }
        assert!(stdout.contains("arrow interop: ok"), "{stdout}\n{stderr}");
    }
}
