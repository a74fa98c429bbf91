//! Progress and the end-of-run summary on stderr: a self-overwriting line
//! while stderr is a terminal, and one summary line at the end; `--quiet`
//! silences both.

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
        }
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
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-9);
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K{rows} rows, {} read, {:.0} rows/s, {:.1} MB/s",
            human_bytes(bytes),
            rows as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
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

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
