//! Raw record input for `recmap load`: the file is whole records in the
//! store's layout, handed to the store in large chunks without a copy per
//! record.
//!
//! Invariants: a chunk is split only where `--skip` ends and at `--batch`
//! boundaries, so a `--batch` commit holds whole batches as with the other
//! formats; rows still buffered are flushed first, so the store keeps the
//! input's order; an input that is not whole records fails.

use super::{Loader, Loc};
use crate::common::Failure;
use crate::signals;
use std::io::{self, Read};

/// Read size for `bin` input (rounded down to whole records).
const BIN_CHUNK: usize = 1 << 20;

impl Loader {
    /// Raw records: read in large chunks that go to the store whole (no
    /// copy per record), split only where `--skip` ends and at `--batch`
    /// boundaries.
    pub(super) fn load_bin(
        &mut self,
        mut input: Box<dyn Read + Send>,
        idx: usize,
    ) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let rs = self.rs;
        let mut chunk = vec![0u8; (BIN_CHUNK / rs).max(1) * rs];
        let mut pending = 0usize;
        let mut total = 0u64;
        // Index (in this input) of the first record in `chunk`.
        let mut record = 0u64;
        loop {
            let n = match input.read(&mut chunk[pending..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !signals::interrupted() => {
                    continue
                }
                Err(e) => return Err(Failure::io(&name, e)),
            };
            pending += n;
            total += n as u64;
            self.bytes += n as u64;
            let whole = pending / rs;
            let mut k = (self.skip - self.skipped).min(whole as u64) as usize;
            self.skipped += k as u64;
            self.input_rows += k as u64;
            while k < whole {
                let mut m = whole - k;
                if let Some(b) = self.batch {
                    m = m.min((b - self.rows % b).min(usize::MAX as u64) as usize);
                }
                self.flush()?;
                self.store.extend_from_bytes(&chunk[k * rs..(k + m) * rs])?;
                self.write_behind.note((m * rs) as u64);
                k += m;
                self.rows += m as u64;
                self.input_rows += m as u64;
                if let Some(b) = self.batch {
                    if self.rows.is_multiple_of(b) {
                        self.commit_batch(Loc {
                            input: idx,
                            line: record + k as u64 - 1,
                        })?;
                    }
                }
            }
            record += whole as u64;
            chunk.copy_within(whole * rs..pending, 0);
            pending -= whole * rs;
            self.progress_at(self.bytes);
        }
        if pending != 0 {
            return Err(self.failure(format!(
                "{name}: {total} bytes is not a multiple of the record size {rs} ({pending} trailing bytes)"
            )));
        }
        Ok(())
    }
}
