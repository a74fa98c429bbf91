//! Signal dispositions of the tool: the only `unsafe` code outside the
//! library's `sys` module, a few `libc` calls with their reasons.
//!
//! - `SIGXFSZ` is ignored for the whole run, so a write past the
//!   file-size limit (`ulimit -f`, `RLIMIT_FSIZE`) fails with `EFBIG`,
//!   which the library reports as `FileTooLarge` and the tool prints,
//!   instead of the process dying silently (exit 153).
//! - `SIGINT` (Ctrl-C) during `verify`, and `SIGINT`, `SIGTERM` or
//!   `SIGHUP` (the terminal or ssh session closed) during `load`, set a
//!   flag that says which signal came; the command checks it where it can
//!   stop cleanly (between pages, between input reads) and exits 128 + the
//!   signal's number. `SIGQUIT` keeps its default (end with a core dump):
//!   it is the request for a dump of the process as it is, not for a clean
//!   stop, and an uncommitted load leaves the store as it was anyway.
//! - [`StopOnSignal`] is the input reader of `load`: it checks the flag
//!   before every read, and waits for a pipe or terminal with `poll` in
//!   short steps, so a load blocked on an idle stdin stops too, whichever
//!   thread the signal was delivered to.
//!
//! Invariants: the handler does only async-signal-safe things (an atomic
//! store, `signal` to restore the defaults); the first signal caught puts
//! every signal it catches back to its default action, so a second
//! one ends the process at once; a signal the process inherited as ignored
//! (a background job of a non-interactive shell, `nohup`) stays ignored;
//! handlers are installed without `SA_RESTART`, so a blocking `read` in the
//! thread that takes the signal returns `EINTR`.
#![allow(unsafe_code)]
// Windows has no signals to catch: the flag and the polling reader's
// timing are never used there (`StopOnSignal` reads straight through).
#![cfg_attr(not(unix), allow(dead_code))]

use std::fs::File;
use std::io::{self, Read};
#[cfg(unix)]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicI32, AtomicU8};

/// The number of the first signal caught, 0 while none was.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

/// Bit 0: the handler is installed for `SIGINT`; bit 1: for `SIGTERM`;
/// bit 2: for `SIGHUP`.
static INSTALLED: AtomicU8 = AtomicU8::new(0);

/// How long [`StopOnSignal`] waits for input before it looks at the flag
/// again (only where no `EINTR` woke it: the signal went to another thread).
const POLL_STEP_MS: i32 = 100;

/// A signal that stops a command cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `SIGINT` (Ctrl-C).
    Int,
    /// `SIGTERM` (`kill`, service managers).
    Term,
    /// `SIGHUP` (the controlling terminal or ssh session went away).
    Hup,
}

impl Signal {
    /// The signal's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
            Signal::Hup => "SIGHUP",
        }
    }

    /// 128 + the signal's number, as shells report a death by it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Int => 130,
            Signal::Term => 143,
            Signal::Hup => 129,
        }
    }
}

/// The message the `SIGBUS` handler writes, made before it is installed
/// (null until then); never freed.
#[cfg(unix)]
static BUS_MESSAGE: std::sync::atomic::AtomicPtr<Vec<u8>> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Reports a `SIGBUS` (a page of the store's map that cannot be read: the
/// file was shortened by another program while it was read, or the device
/// failed a read) with a message naming `store`, and exits 2, instead of
/// the process dying with no word (exit 135). Output written before it
/// stays incomplete, as the message says. (Unix; a no-op elsewhere.)
pub fn report_bus_errors(store: &std::path::Path) {
    #[cfg(unix)]
    {
        let msg = format!(
            "recmap: {}: a page of the store could not be read (SIGBUS): the file was shortened \
             while it was being read (another program truncated or replaced it) or the device \
             failed a read; any output written is incomplete\n",
            store.display()
        );
        let leaked = Box::into_raw(Box::new(msg.into_bytes()));
        BUS_MESSAGE.store(leaked, Ordering::Release);
        // The previous disposition is not kept: SIGBUS from the map is
        // never wanted.
        // SAFETY: `sa` is a zeroed, then filled, `sigaction` outliving the
        // call; the handler does only async-signal-safe things (an atomic
        // load, `write`, `_exit`).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_bus_error as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    }
    #[cfg(not(unix))]
    let _ = store;
}

#[cfg(unix)]
extern "C" fn on_bus_error(_sig: libc::c_int) {
    let msg = BUS_MESSAGE.load(Ordering::Acquire);
    // SAFETY: `msg` is null or the leaked, never-freed message vector,
    // published before the handler was installed; `write` and `_exit` are
    // async-signal-safe (POSIX), and nothing returns to the faulting load.
    unsafe {
        if let Some(m) = msg.as_ref() {
            libc::write(2, m.as_ptr().cast(), m.len());
        }
        libc::_exit(2);
    }
}

/// Ignores `SIGXFSZ` (Unix; a no-op elsewhere).
pub fn ignore_sigxfsz() {
    #[cfg(unix)]
    // SAFETY: `signal` only changes this process's disposition of SIGXFSZ
    // to "ignore"; it reads no memory of ours. Called once at startup,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    // An atomic compare-exchange is async-signal-safe; the first one wins.
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::Relaxed, Ordering::Relaxed);
    let installed = INSTALLED.load(Ordering::Relaxed);
    // SAFETY: `signal` is async-signal-safe (POSIX) and only sets the
    // dispositions of the signals this handler took over back to the
    // default: the next SIGINT, SIGTERM or SIGHUP ends the process at once.
    unsafe {
        if installed & 1 != 0 {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
        }
        if installed & 2 != 0 {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
        if installed & 4 != 0 {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
        }
    }
}

/// Installs the flag-setting handler for `sig`, unless the process
/// inherited `sig` as ignored.
#[cfg(unix)]
fn catch(sig: libc::c_int) {
    // `old` and `sa` are zeroed, then filled, `sigaction`s that outlive the
    // calls; the first call only reads the disposition into `old`.
    // SAFETY: the pointers are valid for the calls, and the handler the
    // second installs only does what `on_signal` says (async-signal-safe).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
        {
            return;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        // No SA_RESTART: a blocking read returns EINTR.
        sa.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut sa.sa_mask);
        let bit = match sig {
            libc::SIGTERM => 2,
            libc::SIGHUP => 4,
            _ => 1,
        };
        INSTALLED.fetch_or(bit, Ordering::Relaxed);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// From now on Ctrl-C sets the flag `interrupted` reads (once: the next one
/// terminates the process as usual). Unix; elsewhere Ctrl-C keeps its
/// default effect. `SIGTERM` keeps its default (`verify` stops on Ctrl-C
/// only).
pub fn catch_interrupt() {
    #[cfg(unix)]
    catch(libc::SIGINT);
}

/// From now on `SIGINT`, `SIGTERM` and `SIGHUP` set the flag `caught`
/// reads (the first one only: the next ends the process as usual). Unix
/// only.
pub fn catch_stop_signals() {
    #[cfg(unix)]
    {
        catch(libc::SIGINT);
        catch(libc::SIGTERM);
        catch(libc::SIGHUP);
    }
}

/// The signal caught since `catch_interrupt` or `catch_stop_signals`, if any.
pub fn caught() -> Option<Signal> {
    #[cfg(unix)]
    {
        match CAUGHT.load(Ordering::Relaxed) {
            0 => None,
            libc::SIGTERM => Some(Signal::Term),
            libc::SIGHUP => Some(Signal::Hup),
            _ => Some(Signal::Int),
        }
    }
    #[cfg(not(unix))]
    None
}

/// True once Ctrl-C was pressed after `catch_interrupt`.
pub fn interrupted() -> bool {
    caught().is_some()
}

/// The error [`StopOnSignal`] returns once a signal was caught (not
/// `ErrorKind::Interrupted`, which readers retry).
fn stopped() -> io::Error {
    io::Error::other("stopped by a signal")
}

/// An input file (or stdin, a pipe, a terminal) that stops with an error
/// once a signal was caught: one atomic load per read. Where the input is
/// not a regular file, a read waits for data with `poll` in steps of
/// [`POLL_STEP_MS`], looking at the flag between them, so a signal taken
/// by another thread than the one blocked on the input still stops it.
#[derive(Debug)]
pub struct StopOnSignal {
    file: File,
    poll: bool,
}

impl StopOnSignal {
    /// Wraps `file`; `poll` for inputs that can block (not regular files).
    pub fn new(file: File, poll: bool) -> StopOnSignal {
        StopOnSignal { file, poll }
    }

    /// Waits until the input is readable (or at its end, or failed: the read
    /// says which); false after a step without data or an `EINTR`.
    #[cfg(unix)]
    fn wait(&self) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut fds = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fds` is one valid `pollfd` that outlives the call (count
        // 1); the descriptor belongs to `self.file`, open for the call.
        let rc = unsafe { libc::poll(&mut fds, 1, POLL_STEP_MS) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0)
    }
}

impl Read for StopOnSignal {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if caught().is_some() {
                return Err(stopped());
            }
            #[cfg(unix)]
            if self.poll && !self.wait()? {
                continue;
            }
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        // SIGHUP is 1, SIGINT 2 and SIGTERM 15 everywhere (POSIX's
        // numbers; Windows has no such signals, and the CLI uses the same
        // codes there).
        #[cfg(unix)]
        assert_eq!((libc::SIGHUP, libc::SIGINT, libc::SIGTERM), (1, 2, 15));
        assert_eq!(Signal::Hup.exit_code() as i32, 128 + 1);
        assert_eq!(Signal::Int.exit_code() as i32, 128 + 2);
        assert_eq!(Signal::Term.exit_code() as i32, 128 + 15);
    }
}
