//! Progress and the end-of-run summary on stderr: a self-overwriting line
//! while stderr is a terminal, and one summary line at the end; `--quiet`
//! silences both.
//!
//! When the input's size is known (regular files: the sum of their sizes)
//! the load line shows the percent read and an estimate of the time left,
//! from the average rate so far; otherwise (stdin, pipes) the rows, bytes
//! and rates only. The lines are built by pure functions ([`load_line`],
//! [`eta`]) that the tests check.

use crate::common::human_bytes;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws at most a few times a second; cheap to call per batch of rows.
#[derive(Debug)]
pub struct Progress {
    live: bool,
    quiet: bool,
    start: Instant,
    last: Instant,
    drawn: bool,
    /// Input bytes expected in all, when known.
    total: Option<u64>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let now = Instant::now();
        Progress {
            live: !quiet && std::io::stderr().is_terminal(),
            quiet,
            start: now,
            last: now,
            drawn: false,
            total: None,
        }
    }

    /// The input's size in bytes, if known: the load line then shows the
    /// percent done and the time left.
    pub fn with_total(mut self, total: Option<u64>) -> Progress {
        self.total = total;
        self
    }

    /// `Some(now)` if a line is shown and the last one is 200 ms old (it
    /// then counts as drawn now).
    fn due(&mut self) -> Option<Instant> {
        if !self.live {
            return None;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < Duration::from_millis(200) {
            return None;
        }
        self.last = now;
        Some(now)
    }

    /// Redraws the progress line if it is due.
    pub fn tick(&mut self, rows: u64, bytes: u64) {
        let Some(now) = self.due() else {
            return;
        };
        let secs = now.duration_since(self.start).as_secs_f64();
        let line = load_line(rows, bytes, secs, self.total);
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K{line}");
        let _ = e.flush();
        self.drawn = true;
    }

    /// Redraws a `what: done/total unit (percent)` line if it is due
    /// (`verify`'s pages).
    pub fn tick_of(&mut self, what: &str, done: u64, total: u64, unit: &str) {
        if self.due().is_none() {
            return;
        }
        let pct = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K{what}: {done}/{total} {unit} ({pct:.1} %), Ctrl-C to stop"
        );
        let _ = e.flush();
        self.drawn = true;
    }

    /// Erases the progress line.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.drawn = false;
        }
    }

    /// Prints the final summary line (unless quiet).
    pub fn summary(&mut self, what: &str, rows: u64, bytes: u64, extra: &str) {
        self.clear();
        if self.quiet {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let s = secs.max(1e-9);
        let _ = writeln!(
            std::io::stderr().lock(),
            "{what} {rows} rows, {} in {secs:.2} s ({:.0} rows/s, {:.1} MB/s){extra}",
            human_bytes(bytes),
            rows as f64 / s,
            bytes as f64 / 1e6 / s
        );
    }
}

/// The load's progress line after `secs` seconds: rows, bytes read and
/// rates, and with the input's `total` size the percent read and the time
/// left at the average rate so far (`ETA ?` before any byte was read).
pub fn load_line(rows: u64, bytes: u64, secs: f64, total: Option<u64>) -> String {
    let s = secs.max(1e-9);
    let rates = format!(
        "{:.0} rows/s, {:.1} MB/s",
        rows as f64 / s,
        bytes as f64 / 1e6 / s
    );
    match total {
        Some(total) if total > 0 => {
            let done = bytes.min(total);
            let pct = done as f64 * 100.0 / total as f64;
            let left = if done == 0 {
                "?".to_string()
            } else {
                eta(secs * (total - done) as f64 / done as f64)
            };
            format!(
                "{pct:.1} % ({} of {}), {rows} rows, {rates}, ETA {left}",
                human_bytes(done),
                human_bytes(total)
            )
        }
        _ => format!("{rows} rows, {} read, {rates}", human_bytes(bytes)),
    }
}

/// A duration in seconds for an ETA: `42s`, `3m05s`, `2h07m` (rounded up
/// to the unit shown, so it says `1s` rather than `0s` until the end).
pub fn eta(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_string();
    }
    let s = secs.ceil() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = s.div_ceil(60);
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_rounded_up_to_its_unit() {
        assert_eq!(eta(0.0), "0s");
        assert_eq!(eta(0.2), "1s");
        assert_eq!(eta(59.0), "59s");
        assert_eq!(eta(59.5), "1m00s");
        assert_eq!(eta(185.0), "3m05s");
        assert_eq!(eta(3599.0), "59m59s");
        assert_eq!(eta(3600.0), "1h00m");
        assert_eq!(eta(7601.0), "2h07m");
        assert_eq!(eta(f64::NAN), "?");
        assert_eq!(eta(f64::INFINITY), "?");
        assert_eq!(eta(-1.0), "?");
    }

    #[test]
    fn load_line_with_a_known_size_shows_percent_and_eta() {
        // A quarter of 400 MB in 10 s: 30 s left at that rate.
        assert_eq!(
            load_line(1_000_000, 100_000_000, 10.0, Some(400_000_000)),
            "25.0 % (100.0 MB of 400.0 MB), 1000000 rows, 100000 rows/s, 10.0 MB/s, ETA 30s"
        );
        // Nothing read yet: no estimate.
        assert_eq!(
            load_line(0, 0, 0.5, Some(2_000)),
            "0.0 % (0 B of 2.0 kB), 0 rows, 0 rows/s, 0.0 MB/s, ETA ?"
        );
        // Done (and never past 100 %, should the count overshoot).
        assert_eq!(
            load_line(10, 2_500, 1.0, Some(2_000)),
            "100.0 % (2.0 kB of 2.0 kB), 10 rows, 10 rows/s, 0.0 MB/s, ETA 0s"
        );
    }

    #[test]
    fn load_line_without_a_size_shows_count_and_rate() {
        assert_eq!(
            load_line(5_000, 1_500_000, 2.0, None),
            "5000 rows, 1.5 MB read, 2500 rows/s, 0.8 MB/s"
        );
        // An empty file says nothing about the rest: no percent.
        assert_eq!(
            load_line(5_000, 1_500_000, 2.0, Some(0)),
            "5000 rows, 1.5 MB read, 2500 rows/s, 0.8 MB/s"
        );
        // At time zero the rates stay finite.
        assert!(!load_line(1, 1, 0.0, None).contains("inf"));
    }
}
