//! Model-based property tests: random sequences of store operations are run
//! against a `Store<T>` and a plain `Vec<T>` model, and after every operation
//! the store must agree with the model (length, committed length, every
//! record through `iter()`, and a sample through `get()`).
//!
//! Operations: `push`, `extend` (iterator and `extend_from_slice`, including
//! slices big enough for the direct-write path), `set`, `get_mut`, `update`
//! (also past the end, which must be `IndexOutOfBounds` and change nothing),
//! `reserve`, `commit`, `verify`, drop-without-commit-and-reopen, and
//! `close` + read-only check + reopen.
//!
//! Dropping a writer without committing discards its appends but not its
//! in-place updates of committed records (`docs/durability.md`, promises 4
//! and 5), so the model truncates to the committed length and keeps those
//! updates. It also tracks which committed values the page checksums
//! describe, so every `verify()` must report exactly the pages whose in-place
//! updates were dropped uncommitted and not rewritten since (the checksum of
//! the partly filled last page may be refreshed by any commit, so it is
//! allowed but not required to be reported).
//!
//! Record types: 16 bytes (divides a page: dense), 24 bytes (170 per page
//! with padding at every page end) and 5000 bytes (two pages per record). The
//! chunk size is 64 KiB so the file grows often. `PROPTEST_CASES` overrides
//! the number of cases per record type.

mod common;

use common::{Big, Make, R16, R24};
use proptest::prelude::*;
use recmap::format::Packing;
use recmap::{Error, Options, Problem, Store};
use std::collections::BTreeSet;
use std::path::PathBuf;

const CHUNK: u64 = 64 << 10;

#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    Extend { seed: u64, n: u64, slice: bool },
    Set { idx: u64, seed: u64 },
    GetMut { idx: u64, seed: u64 },
    Update { idx: u64, seed: u64 },
    Reserve(u64),
    Commit,
    Verify,
    DropReopen,
    CloseReopen,
}

/// Operation sequences; `small` and `big` bound the batch sizes (in records).
fn ops(small: u64, big: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => any::<u64>().prop_map(Op::Push),
        4 => (any::<u64>(), 0..=small, any::<bool>()).prop_map(|(seed, n, slice)| Op::Extend { seed, n, slice }),
        1 => (any::<u64>(), 0..=big, any::<bool>()).prop_map(|(seed, n, slice)| Op::Extend { seed, n, slice }),
        4 => (any::<u64>(), any::<u64>()).prop_map(|(idx, seed)| Op::Set { idx, seed }),
        2 => (any::<u64>(), any::<u64>()).prop_map(|(idx, seed)| Op::GetMut { idx, seed }),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(idx, seed)| Op::Update { idx, seed }),
        1 => (0..=big).prop_map(Op::Reserve),
        3 => Just(Op::Commit),
        1 => Just(Op::Verify),
        2 => Just(Op::DropReopen),
        1 => Just(Op::CloseReopen),
    ];
    proptest::collection::vec(op, 1..48)
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

struct Harness<T: Make> {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Option<Store<T>>,
    /// What the store must read back now.
    model: Vec<T>,
    /// The committed record count.
    committed: u64,
    /// For records `< committed`: the values the stored checksums describe
    /// (conservatively: only groups a commit must re-checksum are updated).
    ck: Vec<T>,
    /// Groups with in-place updates of committed records since the last
    /// commit of this handle (the engine's dirty set).
    dirty: BTreeSet<u64>,
    rpg: u64,
    step: usize,
}

impl<T: Make> Harness<T> {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.rmap");
        let store = Options::new()
            .create_new(true)
            .chunk_size(CHUNK)
            .open::<T>(&path)
            .unwrap();
        Harness {
            _dir: dir,
            path,
            store: Some(store),
            model: Vec::new(),
            committed: 0,
            ck: Vec::new(),
            dirty: BTreeSet::new(),
            rpg: Packing::new(std::mem::size_of::<T>() as u64).records_per_group,
            step: 0,
        }
    }

    fn s(&mut self) -> &mut Store<T> {
        self.store.as_mut().unwrap()
    }

    fn len(&self) -> u64 {
        self.model.len() as u64
    }

    /// Maps a random index to `0..len + 2`: mostly in range, sometimes not.
    fn index(&self, idx: u64) -> u64 {
        idx % (self.len() + 2)
    }

    /// Records an in-place write of record `i` in the model.
    fn wrote(&mut self, i: u64, v: T) {
        self.model[i as usize] = v;
        if i < self.committed {
            self.dirty.insert(i / self.rpg);
        }
    }

    fn oob(&self, r: Result<(), Error>, i: u64, what: &str) {
        match r {
            Err(Error::IndexOutOfBounds { index, len }) => {
                assert_eq!((index, len), (i, self.len()), "{what}")
            }
            r => panic!(
                "step {}: {what}({i}) with len {}: {r:?}",
                self.step,
                self.len()
            ),
        }
    }

    fn apply(&mut self, op: &Op) {
        let step = self.step;
        match *op {
            Op::Push(seed) => {
                let v = T::make(seed);
                let i = self.s().push(&v).unwrap();
                assert_eq!(i, self.len(), "step {step}: push index");
                self.model.push(v);
            }
            Op::Extend { seed, n, slice } => {
                let vals: Vec<T> = (0..n).map(|k| T::make(seed.wrapping_add(k))).collect();
                let first = if slice {
                    self.s().extend_from_slice(&vals).unwrap()
                } else {
                    self.s().extend(vals.iter().copied()).unwrap()
                };
                assert_eq!(first, self.len(), "step {step}: extend first index");
                self.model.extend(vals);
            }
            Op::Set { idx, seed } => {
                let (i, v) = (self.index(idx), T::make(seed));
                let r = self.s().set(i, &v);
                if i < self.len() {
                    r.unwrap();
                    self.wrote(i, v);
                } else {
                    self.oob(r, i, "set");
                }
            }
            Op::GetMut { idx, seed } => {
                let (i, v) = (self.index(idx), T::make(seed));
                let r = self.s().get_mut(i).map(|mut g| {
                    *g = v;
                });
                if i < self.len() {
                    r.unwrap();
                    self.wrote(i, v);
                } else {
                    self.oob(r, i, "get_mut");
                }
            }
            Op::Update { idx, seed } => {
                let (i, v) = (self.index(idx), T::make(seed));
                let expect_old = self.model.get(i as usize).copied();
                let r = self.s().update(i, |rec| {
                    let old = *rec;
                    *rec = v;
                    old
                });
                match expect_old {
                    Some(old) => {
                        assert_eq!(
                            r.unwrap(),
                            old,
                            "step {step}: update saw the wrong old value"
                        );
                        self.wrote(i, v);
                    }
                    None => self.oob(r.map(drop), i, "update"),
                }
            }
            Op::Reserve(n) => {
                let (gen, committed) = (self.s().generation(), self.s().committed_len());
                self.s().reserve(n).unwrap();
                let len = self.len();
                assert!(self.s().capacity() >= len + n, "step {step}: reserve({n})");
                // Growth publishes a new layout but commits nothing.
                assert!(self.s().generation() >= gen);
                assert_eq!(self.s().committed_len(), committed);
            }
            Op::Commit => self.commit(),
            Op::Verify => self.verify(),
            Op::DropReopen => {
                let gen = self.s().generation();
                self.store = None; // drop without commit
                self.model.truncate(self.committed as usize);
                self.dirty.clear();
                self.reopen();
                // Nothing new is committed; at most a confirming header of
                // the last commit (same records) is published on the way out.
                let g = self.s().generation();
                assert!(
                    g == gen || g == gen + 1,
                    "step {step}: a dropped handle published generation {g} after {gen}"
                );
                assert_eq!(self.s().len(), self.committed, "step {step}");
                self.verify();
            }
            Op::CloseReopen => {
                let had_changes = self.s().raw().has_uncommitted();
                let gen = self.s().generation();
                let stats = self.store.take().unwrap().close().unwrap();
                assert_eq!(stats.records, self.len());
                assert_eq!(stats.generation, if had_changes { gen + 1 } else { gen });
                self.committed_model();
                // A read-only handle sees exactly the committed state.
                let ro = Store::<T>::open_read_only(&self.path).unwrap();
                self.compare(&ro, "read-only");
                self.check_verify(&ro);
                drop(ro);
                self.reopen();
                self.verify();
            }
        }
        self.step += 1;
        let s = self.store.as_ref().unwrap();
        self.compare(s, "writer");
    }

    fn reopen(&mut self) {
        let s = Options::new().open::<T>(&self.path).unwrap();
        assert_eq!(s.info().chunk_size, CHUNK);
        assert_eq!(s.committed_len(), self.committed);
        self.store = Some(s);
    }

    fn commit(&mut self) {
        let had_changes = self.s().raw().has_uncommitted();
        let expect_changes = self.len() != self.committed || !self.dirty.is_empty();
        assert_eq!(
            had_changes, expect_changes,
            "step {}: has_uncommitted",
            self.step
        );
        let gen = self.s().generation();
        let st = self.s().commit().unwrap();
        assert_eq!(st.records, self.len());
        if had_changes {
            assert_eq!(
                st.generation,
                gen + 1,
                "step {}: commit generation",
                self.step
            );
        } else {
            assert_eq!(
                (st.generation, st.pages),
                (gen, 0),
                "step {}: empty commit",
                self.step
            );
        }
        assert_eq!(self.s().generation(), st.generation);
        self.committed_model();
        self.verify();
    }

    /// The model side of a commit: which checksums it rewrites.
    fn committed_model(&mut self) {
        let len = self.len();
        if len == self.committed && self.dirty.is_empty() {
            return;
        }
        let mut groups: BTreeSet<u64> = std::mem::take(&mut self.dirty);
        if len > self.committed {
            groups.extend(self.committed / self.rpg..=(len - 1) / self.rpg);
        }
        self.ck.resize(len as usize, T::zeroed());
        for g in groups {
            let (a, b) = (g * self.rpg, ((g + 1) * self.rpg).min(len));
            self.ck[a as usize..b as usize].copy_from_slice(&self.model[a as usize..b as usize]);
        }
        self.committed = len;
    }

    fn verify(&mut self) {
        let s = self.store.take().unwrap();
        self.check_verify(&s);
        self.store = Some(s);
    }

    /// `verify()` must report exactly the committed groups whose bytes differ
    /// from what their checksums describe, skipping this handle's dirty ones.
    fn check_verify(&self, s: &Store<T>) {
        let step = self.step;
        let rep = s.verify().unwrap();
        let mut stale = BTreeSet::new();
        for g in 0..self.committed.div_ceil(self.rpg) {
            let (a, b) = (g * self.rpg, ((g + 1) * self.rpg).min(self.committed));
            if !self.dirty.contains(&g)
                && self.ck[a as usize..b as usize] != self.model[a as usize..b as usize]
            {
                stale.insert(g);
            }
        }
        let mut reported = BTreeSet::new();
        for p in &rep.problems {
            match p {
                Problem::PageChecksum { group, .. } => {
                    reported.insert(*group);
                }
                p => panic!("step {step}: unexpected problem {p}"),
            }
        }
        let tail = (!self.committed.is_multiple_of(self.rpg)).then_some(self.committed / self.rpg);
        let required: BTreeSet<u64> = stale.iter().copied().filter(|&g| Some(g) != tail).collect();
        assert!(
            required.is_subset(&reported) && reported.is_subset(&stale),
            "step {step}: verify reported pages {reported:?}, expected {required:?} (tail {tail:?} optional)"
        );
        assert!(
            rep.notes.is_empty(),
            "step {step}: unexpected notes {:?}",
            rep.notes
        );
        let skipped =
            self.dirty.len() as u64 * Packing::new(std::mem::size_of::<T>() as u64).pages_per_group;
        assert_eq!(rep.pages_skipped, skipped, "step {step}: pages_skipped");
        assert_eq!(rep.generation, s.generation());
        if self.dirty.is_empty() {
            assert_eq!(
                rep.records_checked, self.committed,
                "step {step}: records_checked"
            );
        }
    }

    fn compare(&self, s: &Store<T>, what: &str) {
        let step = self.step;
        let len = self.len();
        assert_eq!(s.len(), len, "step {step} {what}: len");
        assert_eq!(
            s.committed_len(),
            self.committed,
            "step {step} {what}: committed_len"
        );
        assert!(s.capacity() >= len, "step {step} {what}: capacity");
        let mut n = 0u64;
        for (i, (got, want)) in s.iter().zip(&self.model).enumerate() {
            assert_eq!(got, want, "step {step} {what}: record {i} via iter");
            n += 1;
        }
        assert_eq!(n, len, "step {step} {what}: iter length");
        // `get` on a spread of indices, plus the boundaries.
        let mut idx: Vec<u64> = (0..len).step_by((len as usize / 64).max(1)).collect();
        idx.extend([
            self.committed.saturating_sub(1),
            self.committed,
            len.saturating_sub(1),
        ]);
        for i in idx.into_iter().filter(|&i| i < len) {
            assert_eq!(
                s.get(i),
                Some(&self.model[i as usize]),
                "step {step} {what}: get({i})"
            );
        }
        assert!(s.get(len).is_none(), "step {step} {what}: get(len)");
    }
}

fn run<T: Make>(ops: &[Op]) {
    let mut h = Harness::<T>::new();
    for op in ops {
        h.apply(op);
    }
    // Whatever happened, a final close leaves a sound store.
    h.store.take().unwrap().close().unwrap();
    h.committed_model();
    h.reopen();
    h.verify();
    let s = h.store.as_ref().unwrap();
    h.compare(s, "final");
}

proptest! {
    #![proptest_config(config())]

    /// 16-byte records: 256 per page; `big` reaches the direct-write path
    /// (>= 256 KiB in one `extend_from_slice`).
    #[test]
    fn model_r16(ops in ops(600, 20_000)) {
        run::<R16>(&ops);
    }

    /// 24-byte records: 170 per page, 16 bytes of padding per page.
    #[test]
    fn model_r24(ops in ops(500, 6_000)) {
        run::<R24>(&ops);
    }

    /// 5000-byte records: two pages each, six or so per 64 KiB chunk.
    #[test]
    fn model_big(ops in ops(6, 40)) {
        run::<Big>(&ops);
    }
}
