//! Starting child processes in tests: `spawn` and `output` that survive a
//! failure of the process launcher itself under Wine.
//!
//! Wine's `CreateProcessW` fails now and then with `ERROR_INTERNAL_ERROR`
//! (1359) when its server is busy starting other processes (the suite starts
//! hundreds, two at a time); the same call succeeds a moment later. That is
//! the test host failing to start a process, not the program under test
//! failing, so only that one error is retried, a few times, and only on
//! Windows. Every other error, and every exit status, is returned as is.

use std::io;
use std::process::{Child, Command, Output};

/// How many launches are tried before the launcher's error is returned.
#[cfg(windows)]
const ATTEMPTS: u32 = 5;

/// `spawn` and `output` with the launcher retry described above.
pub trait Launch {
    /// [`Command::spawn`], retrying a launcher failure on Windows.
    fn launch(&mut self) -> io::Result<Child>;
    /// [`Command::output`], retrying a launcher failure on Windows.
    fn launch_output(&mut self) -> io::Result<Output>;
}

impl Launch for Command {
    fn launch(&mut self) -> io::Result<Child> {
        retry(|| self.spawn())
    }

    fn launch_output(&mut self) -> io::Result<Output> {
        // The launcher's error comes from the spawn inside `output`, before
        // the child runs, so a retried child never runs twice.
        retry(|| self.output())
    }
}

#[cfg(windows)]
fn retry<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    const ERROR_INTERNAL_ERROR: i32 = 1359;
    let mut attempt = 1;
    loop {
        match start() {
            Err(e) if e.raw_os_error() == Some(ERROR_INTERNAL_ERROR) && attempt < ATTEMPTS => {
                eprintln!("launch: Wine's CreateProcessW said ERROR_INTERNAL_ERROR (attempt {attempt} of {ATTEMPTS}); retrying");
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)));
            }
            r => return r,
        }
    }
}

#[cfg(not(windows))]
fn retry<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    start()
}
