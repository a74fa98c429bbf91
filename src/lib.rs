//! recmap: a memory-mapped, crash-safe, self-describing store of fixed-size
//! records.
//!
//! A file holds records of one layout, packed into 4 KiB pages, addressed by
//! index and read zero-copy as `&T` through a read-only memory map. Changes
//! are transactions: [`Store::commit`] writes them to a write-ahead log in
//! one write and one sync, then to the data pages, so a crash leaves every
//! commit whole or absent; [`Store::rollback`] discards them. [`Reader`]s in
//! other processes see only commits, and [`Snapshot`]s one commit at a time.
//! The header and schema block describe the layout, so tools read the file
//! without the Rust type ([`RawStore`]).
//!
//! ```
//! recmap::record! {
//!     pub struct Point { pub id: u64, pub x: f32, pub y: f32 }
//! }
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("points.rmap");
//! let mut store = recmap::Store::<Point>::create(&path)?;
//! store.extend((0..1000).map(|i| Point { id: i, x: i as f32, y: 0.5 }))?;
//! store.commit()?;
//! drop(store);
//!
//! let store = recmap::Store::<Point>::open_read_only(&path)?;
//! assert_eq!(store.len(), 1000);
//! assert_eq!(store.get(7).unwrap().x, 7.0);
//! assert!(store.verify()?.is_ok());
//! # Ok::<(), recmap::Error>(())
//! ```
//!
//! Layers: [`format`](mod@format) (bytes of the header, pure), [`schema`]
//! (the layout block and the `name:type` spec), the engine ([`RawStore`])
//! and the typed view ([`Store`]). All `unsafe` code lives in one private
//! module (`sys`).
//!
//! See `docs/format.md` (the byte-exact contract), `docs/durability.md`
//! (what survives a crash) and `docs/concurrency.md` (locks).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

extern crate self as recmap;

mod access;
#[cfg(feature = "arrow")]
pub mod arrow;
mod coord;
mod error;
mod fileio;
pub mod format;
mod reader;
mod record;
pub mod schema;
pub mod shared;
mod snapshot;
mod store;
mod stream;
mod sys;
mod typed;

pub use access::{AccessPattern, Advice};
pub use bytemuck;
pub use error::{Error, Result};
pub use reader::{PageSums, RawReader, Reader, READ_TXN_TRIES};
#[doc(hidden)]
pub use record::__private;
pub use record::{
    Bool, Date, FieldDef, FieldKind, FixedStr, Record, TimestampMs, TimestampNs, TimestampS,
    TimestampUs, Validity,
};
pub use schema::{Field, FieldType, Schema, SchemaError, TimeUnit, PADDING_PREFIX};
pub use shared::remove_shared;
pub use snapshot::{RawSnapshot, Snapshot, SnapshotIter};
pub use store::{
    CommitStats, Info, IoEvent, Options, Problem, RawStore, Repair, RepairReport, Runs,
    VerifyReport,
};
pub use typed::{RecordMut, Store};
