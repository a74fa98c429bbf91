//! Signal dispositions of the tool: the only `unsafe` code outside the
//! library's `sys` module, two `libc` calls with their reasons.
//!
//! - `SIGXFSZ` is ignored for the whole run, so a write past the
//!   file-size limit (`ulimit -f`, `RLIMIT_FSIZE`) fails with `EFBIG`,
//!   which the library reports as `FileTooLarge` and the tool prints,
//!   instead of the process dying silently (exit 153).
//! - `SIGINT` (Ctrl-C) sets a flag during `verify`, which checks it between
//!   pages and stops with a message; the handler resets itself, so a
//!   second Ctrl-C ends the process at once.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
extern "C" fn on_sigint(_: libc::c_int) {
    // An atomic store is async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on Ctrl-C sets the flag `interrupted` reads (once: the next one
/// terminates the process as usual). Unix; elsewhere Ctrl-C keeps its
/// default effect.
pub fn catch_interrupt() {
    // `SA_RESETHAND` restores the default disposition after the first
    // delivery.
    #[cfg(unix)]
    // SAFETY: `sa` is a zeroed, then filled, `sigaction` that outlives the
    // call; the handler only does an atomic store (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

/// True once Ctrl-C was pressed after `catch_interrupt`.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
