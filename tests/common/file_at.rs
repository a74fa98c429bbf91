//! Positional file I/O for tests on every platform: `read_exact_at` and
//! `write_all_at` as Unix's `std::os::unix::fs::FileExt` has them.
//!
//! On Unix this is that trait. On Windows it is built on
//! `std::os::windows::fs::FileExt::{seek_read, seek_write}`, looping over
//! short transfers; those move the file's cursor, which no test relies on
//! (all their I/O is positional).

// Not every test binary that has `common` uses it.
#[cfg(unix)]
#[allow(unused_imports)]
pub use std::os::unix::fs::FileExt as FileAt;

/// `read_exact_at` / `write_all_at` for Windows.
#[cfg(windows)]
pub trait FileAt {
    /// Reads exactly `buf.len()` bytes at `offset`; `UnexpectedEof` if the
    /// file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
}

#[cfg(windows)]
impl FileAt for std::fs::File {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_read(buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Windows reports a read at or past the end as this error
                // (ERROR_HANDLE_EOF, 38) rather than 0 bytes.
                Err(e) if e.raw_os_error() == Some(38) => {
                    return Err(std::io::ErrorKind::UnexpectedEof.into())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_write(buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
