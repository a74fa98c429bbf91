//! Writes the format-version-1 fixtures in `tests/fixtures/v1/` (run once,
//! with the version-1 code; see `tests/fixtures/v1/README.md`):
//!
//! `cargo run --example make_v1_fixture -- [DIR]` (default `tests/fixtures/v1`)
//!
//! - `small.rmap`: 1,000 records appended in 4 commits of 250, then records
//!   10, 500 and 999 updated in place in one commit, then closed.
//! - `checked.rmap`: the same, closed, reopened, record 42 updated in place
//!   and committed (a checked commit), and the handle forgotten so the
//!   closing confirmation never runs: the newest header is that checked commit.

use recmap::{Bool, Options, Store};
use std::path::Path;

recmap::record! {
    /// 24 bytes: 170 to a page, 6 pages for 1,000 records.
    pub struct Rec { pub id: u64, pub value: f64, pub count: u32, pub flag: Bool, pub _pad: [u8; 3] }
}

fn rec(i: u64) -> Rec {
    Rec {
        id: i,
        value: i as f64 * 0.5,
        count: ((i * 7) % 1000) as u32,
        flag: Bool::from(i.is_multiple_of(2)),
        _pad: [0; 3],
    }
}

/// The in-place updates both files share: (index, new record).
fn updates() -> [(u64, Rec); 3] {
    let r = |id, value, count, flag: bool| Rec {
        id,
        value,
        count,
        flag: flag.into(),
        _pad: [0; 3],
    };
    [
        (10, r(10, -1.0, 999, false)),
        (500, r(500, 1e300, 0, true)),
        (999, r(999, -0.0, 4_294_967_295, true)),
    ]
}

fn build(path: &Path) -> Result<(), recmap::Error> {
    let _ = std::fs::remove_file(path);
    let mut s: Store<Rec> = Options::new()
        .create_new(true)
        .chunk_size(65536)
        .open(path)?;
    for c in 0..4u64 {
        s.extend((c * 250..(c + 1) * 250).map(rec))?;
        s.commit()?;
    }
    for (i, r) in updates() {
        s.set(i, &r)?;
    }
    s.commit()?;
    s.close()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("tests/fixtures/v1".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let lock = |name: &str| dir.join(format!("{name}-lock"));

    build(&dir.join("small.rmap"))?;
    std::fs::remove_file(lock("small.rmap"))?;

    let checked = dir.join("checked.rmap");
    build(&checked)?;
    let mut s = Store::<Rec>::open(&checked)?;
    s.set(
        42,
        &Rec {
            id: 42,
            value: 42.25,
            count: 7,
            flag: Bool::TRUE,
            _pad: [0; 3],
        },
    )?;
    let stats = s.commit()?;
    // No Drop: the closing confirmation must not run.
    std::mem::forget(s);
    std::fs::remove_file(lock("checked.rmap"))?;
    println!("checked.rmap: generation {}", stats.generation);
    Ok(())
}
