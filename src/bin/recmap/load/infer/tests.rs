//! Unit tests of schema inference: number classification, the choice per
//! column, and the layout of the inferred schema.

use super::column::{scan_num, swar_num, Num};
use super::{Inference, NullTokens};
use crate::value::DEFAULT_NULL_TOKENS;

fn inference() -> Inference {
    Inference {
        nulls: NullTokens::new(DEFAULT_NULL_TOKENS.map(|t| t.as_bytes().to_vec()).to_vec()),
        ..Inference::default()
    }
}

/// The one-line spec inferred from a CSV text (or the error).
fn csv_spec(text: impl AsRef<[u8]>) -> String {
    let mut inf = inference();
    inf.csv(text.as_ref(), "t.csv", u64::MAX, None).unwrap();
    inf.schema()
        .map(|s| s.0.spec())
        .unwrap_or_else(|f| f.message)
}

fn jsonl_spec(text: &str) -> String {
    let mut inf = inference();
    inf.jsonl(text.as_bytes(), "t.jsonl", u64::MAX)
        .map_err(|f| f.message)
        .and_then(|_| inf.schema().map(|s| s.0.spec()).map_err(|f| f.message))
        .unwrap_or_else(|e| e)
}

#[test]
fn numbers_are_classified_on_their_digits() {
    assert_eq!(scan_num(b"517"), Num::Int(517));
    assert_eq!(scan_num(b"-43"), Num::Int(-43));
    assert_eq!(scan_num(b"+7"), Num::Int(7));
    assert_eq!(scan_num(b"517.0"), Num::Int(517));
    assert_eq!(scan_num(b"-0.0"), Num::Int(0));
    assert_eq!(scan_num(b"1e3"), Num::Wide(1000, true));
    assert_eq!(scan_num(b"-2.50e1"), Num::Wide(-25, true));
    assert_eq!(scan_num(b"1.234567e6"), Num::Wide(1_234_567, false));
    assert_eq!(scan_num(b"12e5"), Num::Wide(1_200_000, true));
    assert_eq!(
        scan_num(b"999999999999999999"),
        Num::Int(999_999_999_999_999_999)
    );
    // Beyond f64's 2^53 the digits still decide.
    assert_eq!(
        scan_num(b"9007199254740993.0"),
        Num::Int(9_007_199_254_740_993)
    );
    assert_eq!(
        scan_num(b"18446744073709551616"),
        Num::Wide(18_446_744_073_709_551_616, false)
    );
    assert_eq!(scan_num(b"2.5"), Num::Float(true));
    assert_eq!(scan_num(b"39.02"), Num::Float(true));
    assert_eq!(scan_num(b"6.29021"), Num::Float(true));
    assert_eq!(scan_num(b"40.639751"), Num::Float(false));
    assert_eq!(scan_num(b"1e-38"), Num::Float(false));
    assert_eq!(scan_num(b".5"), Num::Float(true));
    assert_eq!(scan_num(b"1e39"), Num::Float(false));
    assert_eq!(scan_num(b"-inf"), Num::Float(true));
    assert_eq!(scan_num(b"NaN"), Num::Float(true));
    for no in [
        &b""[..],
        b"-",
        b".",
        b"1e",
        b"e5",
        b"1.2.3",
        b"0x10",
        b"1_000",
        b"12a",
        b"1e400",
        b"2013-01-01",
    ] {
        assert_eq!(scan_num(no), Num::No, "{:?}", String::from_utf8_lossy(no));
    }
}

/// The f32 rule holds: every value it admits comes back from f32's
/// shortest text as the same decimal.
#[test]
fn the_f32_rule_is_exact() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let digits = (x % 6 + 1) as u32;
        let mant = (x >> 8) % 10u64.pow(digits);
        let exp = ((x >> 40) % 75) as i32 - 37 - digits as i32 + 1;
        let text = format!("{mant}e{exp}");
        let keep = match scan_num(text.as_bytes()) {
            Num::Wide(_, f) | Num::Float(f) => f,
            Num::Int(v) => v.abs() < 1_000_000,
            Num::No => panic!("{text}"),
        };
        let v: f32 = text.parse().unwrap();
        let back: f64 = v.to_string().parse().unwrap();
        let want: f64 = text.parse().unwrap();
        if keep {
            assert_eq!(back, want, "{text} -> {v}");
        }
    }
}

#[test]
fn integer_columns_get_the_narrowest_type() {
    assert_eq!(
        csv_spec("a,b,c,d,e\n0,-1,300,-129,4294967296\n255,127,0,0,0\n"),
        "e:u64,c:u16,d:i16,a:u8,b:i8,_pad0:bytes[2]"
    );
    // pandas writes an integer column with a missing value as floats.
    assert_eq!(
        csv_spec("dep_time,n\n517.0,1\n,2\n2400.0,3\n"),
        "dep_time:u16?,n:u8,_valid:validity[1]"
    );
    // Past 64 bits: a float.
    assert_eq!(csv_spec("a\n18446744073709551616\n"), "a:f64");
    assert_eq!(csv_spec("a\n-1\n18446744073709551615\n"), "a:f64");
}

#[test]
fn floats_bools_dates_timestamps_and_strings() {
    assert_eq!(csv_spec("t\n39.02\n-4.5\n1\n"), "t:f32");
    assert_eq!(csv_spec("t\n40.639751\n1\n"), "t:f64");
    assert_eq!(csv_spec("b\nTrue\nfalse\nTRUE\n"), "b:bool");
    // 0/1 stay integers; a mix is a string.
    assert_eq!(csv_spec("b\n0\n1\n"), "b:u8");
    assert_eq!(csv_spec("b\ntrue\n1\n"), "b:str[4]");
    assert_eq!(csv_spec("d\n2013-01-01\n1969-12-31\n"), "d:date");
    assert_eq!(
        csv_spec("t\n2013-01-01 05:00:00\n2013-01-01 06:00:00\n"),
        "t:timestamp[s]"
    );
    assert_eq!(
        csv_spec("t\n2013-01-01 05:00:00+00:00\n2013-01-01T06:00:00.25Z\n2013-01-02\n"),
        "t:timestamp[ms]"
    );
    assert_eq!(
        csv_spec("t\n2013-01-01T05:00:00.000001Z\n"),
        "t:timestamp[us]"
    );
    assert_eq!(
        csv_spec("t\n2013-01-01T05:00:00.000000001Z\n"),
        "t:timestamp[ns]"
    );
    // Nanoseconds past 2262 do not fit i64: a string.
    assert_eq!(csv_spec("t\n2300-01-01T05:00:00.000000001Z\n"), "t:str[30]");
    assert_eq!(csv_spec("d\n2013-02-30\n"), "d:str[10]");
    assert_eq!(csv_spec("s\nUA\n\"a, b\"\nnaïve\n"), "s:str[6]");
    assert_eq!(
        csv_spec("s,n\n,1\n,2\n"),
        "s:str[1]?,n:u8,_valid:validity[1]"
    );
    assert_eq!(csv_spec("s\nNA\nx\nNULL\n"), "s:str[1]?,_valid:validity[1]");
}

#[test]
fn the_layout_has_no_implicit_padding() {
    // Alignment order (stable), then the validity bits, then explicit padding.
    assert_eq!(
        csv_spec("year,dep_delay,carrier,t\n2013,2.5,UA,2013-01-01T00:00:00Z\n2013,,AA,2013-01-01T01:00:00Z\n"),
        "t:timestamp[s],dep_delay:f32?,year:u16,carrier:str[2],_valid:validity[1],_pad0:bytes[7]"
    );
    // The generated names avoid the columns'.
    assert_eq!(
        csv_spec("_valid,_pad0,x\n1,2,\n"),
        "_valid:u8,_pad0:u8,x:str[1]?,_valid1:validity[1]"
    );
    assert_eq!(
        csv_spec("_valid,x\n1,\n1,1.5\n"),
        "x:f32?,_valid:u8,_valid1:validity[1],_pad0:bytes[2]"
    );
}

#[test]
fn bad_names_and_values_are_errors_naming_them() {
    let mut inf = inference();
    let e = inf
        .csv(&b"year,dep time\n1,2\n"[..], "t.csv", u64::MAX, None)
        .unwrap_err();
    assert!(
        e.message
            .contains("t.csv:1: column \"dep time\": not a valid field name")
            && e.message.contains("dep_time"),
        "{}",
        e.message
    );
    let mut inf = inference();
    let e = inf
        .csv(&b"a,a\n1,2\n"[..], "t.csv", u64::MAX, None)
        .unwrap_err();
    assert!(e.message.contains("appears twice"), "{}", e.message);
    let m = csv_spec(b"s\nok\n\xff\n");
    assert!(
        m.contains("field s:") && m.contains("t.csv:3") && m.contains("UTF-8"),
        "{m}"
    );
}

#[test]
fn csv_rows_of_the_wrong_width_and_a_cut_tail_are_left_out() {
    assert_eq!(csv_spec("a,b\n1,2\n1,2,3\nx\n3,4\n"), "a:u8,b:u8");
    let text = b"a\n1\n2\n300";
    let mut inf = inference();
    let rows = inf.csv(&text[..], "-", u64::MAX, Some(text.len())).unwrap();
    assert_eq!(rows, 2);
    assert_eq!(inf.schema().unwrap().0.spec(), "a:u8");
    let mut inf = inference();
    assert_eq!(inf.csv(&b"a\n1\n2\n3\n"[..], "-", 2, None).unwrap(), 2);
}

#[test]
fn jsonl_kinds_nulls_and_absent_keys() {
    assert_eq!(
        jsonl_spec(
            "{\"a\":1,\"b\":\"x\",\"c\":true,\"t\":\"2013-01-01T06:00:00Z\"}\n\n{\"a\":2.0,\"b\":null,\"c\":false,\"t\":\"2013-01-01\"}\n{\"a\":3,\"c\":true,\"t\":\"2013-01-02\",\"d\":1.5}\n"
        ),
        "t:timestamp[s],d:f32?,a:u8,b:str[1]?,c:bool,_valid:validity[1]"
    );
    let m = jsonl_spec("{\"a\":1}\n{\"a\":\"x\"}\n");
    assert!(
        m.contains(
            "field a: no type holds every value (a number at t.jsonl:1, a string at t.jsonl:2)"
        ),
        "{m}"
    );
    let m = jsonl_spec("{\"a\":[1,2]}\n");
    assert!(m.contains("t.jsonl:1: field a: arrays"), "{m}");
    let m = jsonl_spec("{\"a b\":1}\n");
    assert!(m.contains("t.jsonl:1: column \"a b\""), "{m}");
    // Strings that look like numbers stay strings in JSON (the load takes
    // numbers only as JSON numbers).
    assert_eq!(jsonl_spec("{\"z\":\"5\"}\n"), "z:str[1]");
}

/// The word-at-a-time path gives `scan_num`'s answer wherever it answers,
/// and answers for the common shapes.
#[test]
fn swar_num_agrees_with_scan_num() {
    let alphabet = b"0123456789.-+e 0000a";
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut answered = 0;
    for _ in 0..300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 8 + 1) as usize;
        let cell: Vec<u8> = (0..n)
            .map(|i| alphabet[((x >> (8 + 5 * i)) % alphabet.len() as u64) as usize])
            .collect();
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&cell);
        if let Some(got) = swar_num(u64::from_le_bytes(w), n) {
            answered += 1;
            assert_eq!(got, scan_num(&cell), "{:?}", String::from_utf8_lossy(&cell));
        }
    }
    assert!(answered > 10_000, "{answered}");
    for (cell, want) in [
        (&b"2013"[..], Num::Int(2013)),
        (b"-43", Num::Int(-43)),
        (b"99999999", Num::Int(99_999_999)),
        (b"2176.0", Num::Int(2176)),
        (b"-0.0", Num::Int(0)),
        (b"48.15", Num::Float(true)),
        (b"6.290211", Num::Float(false)),
        (b"6.290210", Num::Float(true)),
        (b"0.123456", Num::Float(true)),
        (b".5", Num::Float(true)),
        (b"5.", Num::Int(5)),
    ] {
        let mut w = [0u8; 8];
        w[..cell.len()].copy_from_slice(cell);
        assert_eq!(
            swar_num(u64::from_le_bytes(w), cell.len()),
            Some(want),
            "{cell:?}"
        );
        assert_eq!(scan_num(cell), want, "{cell:?}");
    }
}
