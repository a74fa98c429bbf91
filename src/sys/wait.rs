//! Sleeping on a word of a shared mapping until another process changes it
//! (Linux futexes; a short sleep elsewhere), and waking the sleepers.

use std::sync::atomic::AtomicU32;
#[cfg(not(target_os = "linux"))]
use std::sync::atomic::Ordering;

/// Sleeps until `word` may differ from `expected` or `timeout` passes.
/// Linux: a shared futex wait (the word lives in a shared mapping, so
/// writers in other processes wake it). Elsewhere: a short sleep.
pub(crate) fn wait_on(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    #[cfg(target_os = "linux")]
    {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // FUTEX_WAIT (not PRIVATE: other processes' wakes reach it) only
        // reads the word and sleeps; spurious returns are fine, callers loop.
        // SAFETY: `word` is a valid aligned atomic that outlives the call,
        // `ts` a valid relative timeout.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &ts as *const libc::timespec,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if word.load(Ordering::Acquire) == expected {
            std::thread::sleep(timeout.min(std::time::Duration::from_micros(200)));
        }
    }
}

/// Wakes every process waiting in `wait_on(word, …)`.
pub(crate) fn wake_all(word: &AtomicU32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as in `wait_on`; FUTEX_WAKE does not access memory beyond
        // using the address as a key.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = word;
    }
}
