//! Write-behind for `recmap load`: a helper thread that gets the store
//! file's appended bytes to the disk while the load goes on.
//!
//! Invariants: it only ever `fdatasync`s through a read-only handle of its
//! own, never writes, never touches the store's handle or its `flock`, and
//! never makes anything durable or visible by itself (the commit does);
//! at most one sync request waits while one runs; any failure turns it off
//! silently, since the commit's own sync reports a writeback error.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Bytes handed to the store between two write-behind syncs.
const WRITE_BEHIND: u64 = 64 << 20;

/// Gets the disk writing the appended records while the load goes on:
/// every [`WRITE_BEHIND`] bytes handed to the store, a helper thread
/// `fdatasync`s the store file through a read-only handle of its own, so
/// the final commit's sync finds little left to write (the commit is still
/// what makes the load durable and visible). The store's `flock` belongs to
/// its own handle, which this one does not touch. A failed sync here is
/// ignored: the kernel reports a writeback error to the store's handle too,
/// at the commit's sync.
pub(super) struct WriteBehind {
    path: PathBuf,
    pending: u64,
    tx: Option<mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    off: bool,
}

impl WriteBehind {
    pub(super) fn new(path: &Path) -> WriteBehind {
        WriteBehind {
            path: path.to_path_buf(),
            pending: 0,
            tx: None,
            thread: None,
            off: false,
        }
    }

    /// `n` more bytes went to the store.
    #[inline]
    pub(super) fn note(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= WRITE_BEHIND {
            self.pending = 0;
            self.kick();
        }
    }

    #[cold]
    fn kick(&mut self) {
        if self.off {
            return;
        }
        if self.tx.is_none() {
            let Ok(file) = File::open(&self.path) else {
                self.off = true;
                return;
            };
            // One request waits while a sync runs; more are dropped.
            let (tx, rx) = mpsc::sync_channel::<()>(1);
            let spawned = std::thread::Builder::new()
                .name("write-behind".into())
                .spawn(move || {
                    for () in rx {
                        let _ = file.sync_data();
                    }
                });
            match spawned {
                Ok(t) => {
                    self.tx = Some(tx);
                    self.thread = Some(t);
                }
                Err(_) => {
                    self.off = true;
                    return;
                }
            }
        }
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }

    /// Waits for a sync under way (before the commit's own).
    pub(super) fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.finish();
    }
}
