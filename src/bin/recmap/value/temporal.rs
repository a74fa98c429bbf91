//! `timestamp[unit]` and `date` values as text: RFC 3339 / ISO 8601 parsed
//! and printed by `jiff`, and the stored integers (`i64` units since the
//! Unix epoch in UTC; `i32` days since 1970-01-01).
//!
//! Accepted text for a timestamp: a date and time with an offset
//! (`2013-01-01T06:00:00Z`, `2013-01-01 06:00:00+01:00`), a date and time
//! without one (taken as UTC, as pandas writes naive datetimes:
//! `2013-01-01 06:00:00`), a bare date (midnight UTC), or a plain integer
//! (the stored count in the field's unit). A date: `2013-01-01`, a
//! date-time at exactly midnight UTC, or a plain integer (days since the
//! epoch).
//!
//! Invariants: a value is never rounded or truncated: text with more
//! precision than the unit (`…:00.5Z` into `timestamp[s]`) and instants
//! outside the `i64` range of the unit are errors; printing writes what
//! parsing reads back to the same integer (RFC 3339 in UTC with `Z` and as
//! many fractional digits as needed; outside the years jiff represents,
//! −9999..=9999, the plain integer).

use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;
use jiff::Timestamp;
use recmap::TimeUnit;
use std::io::Write;

/// Nanoseconds in one `unit`.
fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Seconds => 1_000_000_000,
        TimeUnit::Millis => 1_000_000,
        TimeUnit::Micros => 1_000,
        TimeUnit::Nanos => 1,
    }
}

fn show(t: &[u8]) -> String {
    let s = String::from_utf8_lossy(t);
    if s.chars().count() > 40 {
        format!("{:?}…", s.chars().take(40).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// A plain decimal integer (optional sign), or `None` for any other text.
fn plain_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Where the seconds are in the date-time text `s` (a date, `T`, `t` or a
/// space, then `HH:MM:SS` or `HHMMSS`) when they are 60: a leap second,
/// which jiff reads as second 59 (Unix time has no leap seconds), so it is
/// refused rather than moved.
fn leap_second_at(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let date = if matches!(b.first(), Some(b'+' | b'-')) {
        13
    } else {
        10
    };
    let rest = b.get(date..)?;
    let (&(b'T' | b't' | b' '), time) = rest.split_first()? else {
        return None;
    };
    let (hh, time) = time.split_at(time.len().min(2));
    let time = time.strip_prefix(b":").unwrap_or(time);
    let (mm, time) = time.split_at(time.len().min(2));
    let time = time.strip_prefix(b":").unwrap_or(time);
    (hh.len() == 2 && mm.len() == 2 && time.starts_with(b"60")).then(|| b.len() - time.len())
}

/// True if `s` is a leap second of a date-time that is valid otherwise
/// (the same text with second 59 is an accepted timestamp).
fn is_leap_second(s: &str) -> bool {
    leap_second_at(s).is_some_and(|at| {
        let mut t = s.to_string();
        t.replace_range(at..at + 2, "59");
        parse_instant(&t).is_some()
    })
}

/// The error for a leap second in `t`.
fn leap_second_error(t: &[u8]) -> String {
    format!(
        "{} is a leap second (second 60), which a timestamp (Unix time, no leap seconds) cannot hold",
        show(t)
    )
}

/// The instant `s` names, if it is a timestamp in one of the accepted
/// text forms (not a plain integer). A leap second is none (see
/// [`is_leap_second`]).
pub fn parse_instant(s: &str) -> Option<Timestamp> {
    // Cheap shape check first: every accepted form starts `YYYY-MM-DD`
    // (or a sign and six year digits); this keeps inference fast on
    // columns that are not dates at all.
    let b = s.as_bytes();
    let dated = (b.len() >= 10 && b[4] == b'-' && b[..4].iter().all(u8::is_ascii_digit))
        || (b.len() >= 13 && matches!(b[0], b'+' | b'-') && b[7] == b'-');
    if !dated || leap_second_at(s).is_some() {
        return None;
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    // No offset: a naive date-time (or a bare date) in UTC.
    let dt: DateTime = s.parse().ok()?;
    Offset::UTC.to_timestamp(dt).ok()
}

/// Parses a timestamp for a field of `unit` into the stored `i64`.
pub fn parse_timestamp(text: &[u8], unit: TimeUnit) -> Result<i64, String> {
    let t = text.trim_ascii();
    let s = std::str::from_utf8(t).map_err(|_| format!("not a timestamp: {}", show(text)))?;
    if s.is_empty() {
        return Err(format!(
            "empty value, expected a timestamp (timestamp[{}])",
            unit.suffix()
        ));
    }
    if let Some(v) = plain_int(s) {
        return Ok(v);
    }
    let ts = parse_instant(s).ok_or_else(|| {
        if is_leap_second(s) {
            leap_second_error(t)
        } else if s.parse::<DateTime>().is_ok() {
            // A date-time, but past the instants jiff holds (UTC
            // -9999-01-02 ..= 9999-12-30 22:00, as its offsets allow).
            format!("{} is out of range for a timestamp", show(t))
        } else {
            format!(
                "not a timestamp (expected RFC 3339 such as 2013-01-01T06:00:00Z): {}",
                show(t)
            )
        }
    })?;
    // Seconds and nanoseconds apart: no 128-bit division on the hot path.
    let per = nanos_per(unit) as i32;
    let (sec, sub) = (ts.as_second(), ts.subsec_nanosecond());
    if sub % per != 0 {
        return Err(format!(
            "{} has more precision than timestamp[{}]",
            show(t),
            unit.suffix()
        ));
    }
    let units_per_sec = (1_000_000_000 / per) as i64;
    sec.checked_mul(units_per_sec)
        .and_then(|v| v.checked_add((sub / per) as i64))
        .ok_or_else(|| {
            format!(
                "{} is out of range for timestamp[{}]",
                show(t),
                unit.suffix()
            )
        })
}

/// The finest unit `ts` needs to be stored exactly (`s` for whole seconds).
pub fn unit_needed(ts: Timestamp) -> TimeUnit {
    let sub = ts.subsec_nanosecond();
    if sub == 0 {
        TimeUnit::Seconds
    } else if sub % 1_000_000 == 0 {
        TimeUnit::Millis
    } else if sub % 1_000 == 0 {
        TimeUnit::Micros
    } else {
        TimeUnit::Nanos
    }
}

/// True if `ts` fits an `i64` count of `unit`.
pub fn fits(ts: Timestamp, unit: TimeUnit) -> bool {
    i64::try_from(ts.as_nanosecond() / nanos_per(unit)).is_ok()
}

/// The date `s` names (`YYYY-MM-DD`), if it is one.
pub fn parse_civil_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    // `YYYY-MM-DD`, or with a signed six-digit year (`-009999-01-01`, as
    // jiff writes the years before 0000).
    let plain = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    let signed = b.len() == 13 && matches!(b[0], b'+' | b'-') && b[7] == b'-' && b[10] == b'-';
    if !(plain || signed) {
        return None;
    }
    s.parse().ok()
}

/// 1970-01-01, day 0 of a stored date.
const EPOCH: Date = Date::constant(1970, 1, 1);

/// Days from 1970-01-01 to `d`, in civil-date arithmetic: every date jiff
/// parses (years -9999..=9999, about ±4.4 M days) has one, including the
/// days at either end that no UTC instant jiff represents reaches.
fn epoch_days(d: Date) -> Result<i32, String> {
    EPOCH
        .until((jiff::Unit::Day, d))
        .map(|span| span.get_days())
        .map_err(|e| format!("{d} is out of range for date: {e}"))
}

/// Parses a date into the stored `i32` (days since 1970-01-01).
pub fn parse_date(text: &[u8]) -> Result<i32, String> {
    let t = text.trim_ascii();
    let s = std::str::from_utf8(t).map_err(|_| format!("not a date: {}", show(text)))?;
    if s.is_empty() {
        return Err("empty value, expected a date (YYYY-MM-DD)".into());
    }
    if let Some(v) = plain_int(s) {
        return i32::try_from(v).map_err(|_| format!("{} is out of range for date", show(t)));
    }
    if let Some(d) = parse_civil_date(s) {
        return epoch_days(d);
    }
    // A date-time at midnight UTC is a date (pandas' JSON writes dates so:
    // `2013-01-01T00:00:00.000`); another time of day would be lost.
    match parse_instant(s) {
        Some(ts) if ts.as_nanosecond() % 86_400_000_000_000 == 0 => {
            i32::try_from(ts.as_second().div_euclid(86_400))
                .map_err(|_| format!("{} is out of range for date", show(t)))
        }
        Some(_) => Err(format!(
            "{} has a time of day, expected a date (YYYY-MM-DD)",
            show(t)
        )),
        None if is_leap_second(s) => Err(leap_second_error(t)),
        None => Err(format!("not a date (expected YYYY-MM-DD): {}", show(t))),
    }
}

/// Writes a stored timestamp as RFC 3339 in UTC (or the integer, outside
/// the years jiff represents).
pub fn write_timestamp(v: i64, unit: TimeUnit, out: &mut Vec<u8>) {
    let r = match Timestamp::from_nanosecond(v as i128 * nanos_per(unit)) {
        Ok(ts) => write!(out, "{ts}"),
        Err(_) => write!(out, "{v}"),
    };
    r.expect("writing to a Vec cannot fail");
}

/// Writes a stored date as `YYYY-MM-DD` (or the integer, outside the
/// years jiff represents).
pub fn write_date(v: i32, out: &mut Vec<u8>) {
    let r = match EPOCH.checked_add(jiff::Span::new().try_days(v).unwrap_or_default()) {
        Ok(d) if epoch_days(d) == Ok(v) => write!(out, "{d}"),
        _ => write!(out, "{v}"),
    };
    r.expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str, unit: TimeUnit) -> Result<i64, String> {
        parse_timestamp(text.as_bytes(), unit)
    }

    fn show_ts(v: i64, unit: TimeUnit) -> String {
        let mut out = Vec::new();
        write_timestamp(v, unit, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_in_every_form() {
        use TimeUnit::*;
        assert_eq!(ts("2013-01-01T06:00:00Z", Seconds), Ok(1_357_020_000));
        assert_eq!(ts("2013-01-01 06:00:00", Seconds), Ok(1_357_020_000));
        assert_eq!(ts("2013-01-01 07:00:00+01:00", Seconds), Ok(1_357_020_000));
        assert_eq!(ts("2013-01-01", Seconds), Ok(1_356_998_400));
        assert_eq!(ts("1357020000", Seconds), Ok(1_357_020_000));
        assert_eq!(ts("1970-01-01T00:00:00.001Z", Millis), Ok(1));
        assert_eq!(ts("1969-12-31T23:59:59.999999999Z", Nanos), Ok(-1));
        assert!(ts("2013-01-01T06:00:00.5Z", Seconds)
            .unwrap_err()
            .contains("more precision"));
        assert!(ts("2300-01-01T00:00:00Z", Nanos)
            .unwrap_err()
            .contains("out of range"));
        assert!(ts("2013-13-01", Seconds)
            .unwrap_err()
            .contains("not a timestamp"));
        assert!(ts("yesterday", Seconds)
            .unwrap_err()
            .contains("not a timestamp"));
        assert!(ts("", Millis).unwrap_err().contains("empty"));
        assert!(ts("9999-12-31T23:00:00", Seconds)
            .unwrap_err()
            .contains("out of range"));
        // A leap second is refused, not stored as second 59 (as jiff reads it).
        for leap in [
            "2016-12-31T23:59:60Z",
            "2016-12-31 23:59:60",
            "2016-12-31T23:59:60.5+00:00",
            "2016-12-31t235960Z",
        ] {
            let e = ts(leap, Nanos).unwrap_err();
            assert!(e.contains("is a leap second"), "{leap}: {e}");
            assert!(parse_instant(leap).is_none(), "{leap}");
        }
        assert!(parse_date(b"2016-12-31T23:59:60Z")
            .unwrap_err()
            .contains("is a leap second"));
        assert_eq!(ts("2016-12-31T23:59:59Z", Seconds), Ok(1_483_228_799));
        assert!(ts("2016-12-31T23:60:00Z", Seconds).is_err());
    }

    #[test]
    fn timestamps_round_trip_through_text() {
        use TimeUnit::*;
        for (v, unit) in [
            (0, Seconds),
            (1_357_020_000, Seconds),
            (-1, Nanos),
            (1_357_020_000_123, Millis),
            (i64::MAX, Nanos),
            (i64::MIN, Nanos),
            (i64::MAX, Seconds),
            (-62_000_000_000, Seconds),
        ] {
            let text = show_ts(v, unit);
            assert_eq!(ts(&text, unit), Ok(v), "{v} {unit:?} -> {text}");
        }
        assert_eq!(show_ts(1_357_020_000, Seconds), "2013-01-01T06:00:00Z");
        assert_eq!(show_ts(1_500, Millis), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date(b"1970-01-01"), Ok(0));
        assert_eq!(parse_date(b"1969-12-31"), Ok(-1));
        assert_eq!(parse_date(b"2013-01-01"), Ok(15_706));
        assert_eq!(parse_date(b"15706"), Ok(15_706));
        assert!(parse_date(b"2013-02-30").is_err());
        assert_eq!(parse_date(b"2013-01-01T00:00:00.000"), Ok(15_706));
        assert_eq!(parse_date(b"2013-01-01T00:00:00Z"), Ok(15_706));
        assert!(parse_date(b"2013-01-01T06:00:00Z")
            .unwrap_err()
            .contains("time of day"));
        // The last and first days of the years jiff parses, which no UTC
        // instant it represents reaches (2_932_896 is 9999-12-31).
        assert_eq!(parse_date(b"9999-12-31"), Ok(2_932_896));
        assert_eq!(parse_date(b"-009999-01-01"), Ok(-4_371_587));
        for v in [
            0,
            -1,
            15_706,
            2_932_896,
            -4_371_587,
            -719_528,
            i32::MAX,
            i32::MIN,
        ] {
            let mut out = Vec::new();
            write_date(v, &mut out);
            assert_eq!(parse_date(&out), Ok(v), "{}", String::from_utf8_lossy(&out));
        }
        let mut out = Vec::new();
        write_date(2_932_896, &mut out);
        assert_eq!(out, b"9999-12-31");
    }
}
