//! Writes the seed corpora: for `open_bytes`, small valid stores made by the
//! library (64 KiB chunks, so most seeds are one 64 KiB chunk); for
//! `ops_model`, a few pseudo-random inputs of 32 to 384 bytes, which decode
//! to about 5 to 48 operations (libFuzzer would otherwise start from tiny
//! inputs).
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus            # -> fuzz/corpus/
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus -- DIR     # -> DIR/open_bytes, DIR/ops_model
//! ```
//!
//! The output is deterministic (no timestamps in the format), so re-running
//! it leaves the committed seeds unchanged unless the format changed. Seed
//! files have no `.rmap` extension because the repository ignores `*.rmap`.

use recmap::{Options, RawStore, Record, Schema, Store};
use recmap_fuzz::*;
use std::path::{Path, PathBuf};

const CHUNK: u64 = 64 << 10;

fn typed<T: Record>(path: &Path) -> Store<T> {
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open::<T>(path)
        .unwrap()
}

fn raw(path: &Path, spec: &str) -> RawStore {
    let schema = Schema::parse(spec).unwrap();
    Options::new()
        .create_new(true)
        .chunk_size(CHUNK)
        .open_raw(path, Some(&schema))
        .unwrap()
}

/// Deterministic record bytes for untyped stores.
fn raw_record(size: usize, i: u64) -> Vec<u8> {
    (0..size)
        .map(|k| (k as u64).wrapping_mul(7).wrapping_add(i) as u8)
        .collect()
}

fn typed_seed<T: Record>(dir: &Path, name: &str, commits: &[u64], make: fn(u64) -> T) -> PathBuf {
    let path = dir.join(name);
    let mut s = typed::<T>(&path);
    let mut n = 0;
    for &upto in commits {
        s.extend((n..upto).map(make)).unwrap();
        s.commit().unwrap();
        n = upto;
    }
    assert!(s.verify().unwrap().is_ok());
    s.close().unwrap();
    path
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    ops_model_seeds(&root.join("ops_model"));
    let dir = root.join("open_bytes");
    std::fs::create_dir_all(&dir).unwrap();
    // Build in a scratch directory (the library makes temporary names and
    // hard links next to the target), then copy the finished files.
    let work = scratch_dir().join(format!("recmap-gen-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let w = work.as_path();

    let mut seeds: Vec<PathBuf> = vec![
        // Empty stores: slot 1 only (generation 1), no data.
        typed_seed::<P16>(w, "seed-p16-empty", &[], P16::make),
        typed_seed::<Big5000>(w, "seed-big5000-empty", &[], Big5000::make),
        // A few records: tail group checksum in the header.
        typed_seed::<P16>(w, "seed-p16-1", &[1], P16::make),
        // Exactly one full dense page; then a page plus one over two commits
        // (both slots valid, table entry plus tail CRC).
        typed_seed::<P16>(w, "seed-p16-page", &[256], P16::make),
        typed_seed::<P16>(w, "seed-p16-page-plus1", &[128, 257], P16::make),
        // Non-dense packings.
        typed_seed::<R24>(w, "seed-r24-170", &[170], R24::make),
        typed_seed::<S12>(w, "seed-s12-342", &[100, 341, 342], S12::make),
        typed_seed::<B1>(w, "seed-b1-4097", &[4097], B1::make),
        // Records larger than a page (2-page groups) and exactly a page.
        typed_seed::<Big5000>(w, "seed-big5000-3", &[1, 3], Big5000::make),
        typed_seed::<Page4096>(w, "seed-page4096-5", &[5], Page4096::make),
    ];

    // Grown past the first 64 KiB chunk (a 128 KiB file) by appends that
    // were then dropped without a commit: the growth published a header
    // with the new capacity and the old record count. Before that, an
    // in-place update was committed (generation > 2, both slots valid).
    {
        let path = w.join("seed-r24-grown-dropped");
        let mut s = typed::<R24>(&path);
        s.extend((0..2000).map(R24::make)).unwrap();
        s.commit().unwrap();
        s.set(7, &R24::make(9999)).unwrap();
        s.commit().unwrap();
        let cap = s.capacity();
        s.extend((2000..2400).map(R24::make)).unwrap();
        assert!(s.capacity() > cap);
        drop(s);
        seeds.push(path);
    }

    // A stale page checksum: an in-place update reached the file, the
    // handle was dropped before committing. Opens, but verify reports it.
    {
        let path = w.join("seed-p16-stale-page");
        let mut s = typed::<P16>(&path);
        s.extend((0..300).map(P16::make)).unwrap();
        s.commit().unwrap();
        s.set(3, &P16::make(4242)).unwrap();
        drop(s);
        let s = RawStore::open_read_only(&path).unwrap();
        assert!(!s.verify().unwrap().is_ok());
        seeds.push(path);
    }

    // Untyped schemas: arrays, str, bool; and a schema block over one page.
    {
        let path = w.join("seed-mixed-10");
        let mut s = raw(&path, MIXED_SPEC);
        let size = s.record_size();
        for i in 0..10 {
            s.push(&raw_record(size, i)).unwrap();
        }
        s.close().unwrap();
        seeds.push(path);
    }
    {
        let path = w.join("seed-wide-schema-20");
        let mut s = raw(&path, &wide_schema_spec());
        let size = s.record_size();
        let bytes: Vec<u8> = (0..20).flat_map(|i| raw_record(size, i)).collect();
        s.extend_from_bytes(&bytes).unwrap();
        s.close().unwrap();
        let s = RawStore::open_read_only(&path).unwrap();
        assert!(s.info().data_offset > 8192);
        seeds.push(path);
    }

    let mut total = 0;
    for p in &seeds {
        let s = RawStore::open_read_only(p).unwrap();
        let len = std::fs::metadata(p).unwrap().len();
        total += len;
        println!(
            "{:<28} {:>7} bytes  {:>5} records  gen {}",
            p.file_name().unwrap().to_string_lossy(),
            len,
            s.len(),
            s.generation()
        );
        drop(s);
        std::fs::copy(p, dir.join(p.file_name().unwrap())).unwrap();
        remove_store(p);
    }
    println!("{} seeds, {total} bytes -> {}", seeds.len(), dir.display());
    std::fs::remove_dir_all(&work).unwrap();
}

/// Pseudo-random byte strings (splitmix64, fixed seeds) of growing length.
fn ops_model_seeds(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 0x005e_ed0f_ca11_ab1e_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // Replace earlier generated seeds (regress-* inputs stay).
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let lens = [32usize, 48, 64, 96, 128, 160, 192, 256, 320, 384];
    let mut total = 0;
    for (k, len) in lens.into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        std::fs::write(dir.join(format!("seed-random-{k:02}")), &bytes).unwrap();
        total += len;
    }
    println!(
        "{} ops_model seeds, {total} bytes -> {}",
        lens.len(),
        dir.display()
    );
}
