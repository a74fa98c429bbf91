//! Operation sequences against a model.
//!
//! The input picks a record layout (a typed 8-byte dense record, or untyped
//! 12-byte, 5000-byte and 8192-byte records: non-dense, multi-page and dense
//! multi-page groups), whether the store is append-only, an initial
//! capacity, the log size (the default 4 MiB or the smallest, 64 KiB, so
//! commits checkpoint inside `commit`) and up to `MAX_OPS` operations
//! (`recmap_fuzz::ops`). The store lives in a 64 KiB-chunk file; the model
//! is the records' bytes as the writer sees them in a `Vec<u8>` and as the
//! last commit holds them in another. After every operation the store's
//! length, committed length, generation and every record (through `runs`,
//! and `get` on a sample) must equal the model's.
//!
//! Format version 2 semantics: changes are a transaction. The writer reads
//! its own uncommitted appends and updates; `rollback`, dropping the writer
//! and a crash (`simulate_crash`) all return to the last commit exactly,
//! and nothing uncommitted reaches the data file or another handle: a
//! `RawReader` beside the writer, a read-only handle and every reopen see
//! exactly the committed records, and `verify` never finds a problem (it
//! skips exactly the groups the writer has updated and not committed).
//!
//! Append-only stores (chosen by the input) refuse `set` of committed
//! records with `AppendOnly`. While a reader is open `compact` (and an
//! append-only truncating repair) are refused with `ReadersPresent`.
//!
//! Sizes are bounded: at most `MAX_BYTES` of records in a store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recmap::{Bool, Error, Options, RawReader, RawStore, Repair, Schema, Store, VerifyReport};
use recmap_fuzz::ops::{Input, Kind, Op};
use recmap_fuzz::{remove_store, scratch_path, stats};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CHUNK: u64 = 64 << 10;
/// Bytes of records a store may hold.
const MAX_BYTES: usize = 2 << 20;
/// The smallest log `Options::log_size` accepts.
const SMALL_LOG: u64 = 64 << 10;

recmap::record! {
    /// The typed record: 8 bytes, 512 per page.
    pub struct Small { pub a: u32, pub b: u16, pub c: u8, pub d: Bool }
}

impl Small {
    fn from_seed(v: u32) -> Small {
        Small {
            a: v,
            b: (v >> 3) as u16 ^ 0xa5a5,
            c: (v >> 11) as u8,
            d: Bool((v & 1) as u8),
        }
    }
}

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| scratch_path("ops_model"))
}

fuzz_target!(|input: Input| {
    let p = path();
    remove_store(p);
    stats::input();
    let mut h = Harness::create(p, &input);
    for op in &input.ops {
        stats::hit(op.name());
        h.apply(op);
        h.check();
    }
    h.close_and_check();
    remove_store(p);
});

enum Handle {
    Typed(Store<Small>),
    Raw(RawStore),
}

impl Handle {
    fn raw(&self) -> &RawStore {
        match self {
            Handle::Typed(s) => s.raw(),
            Handle::Raw(s) => s,
        }
    }
    fn raw_mut(&mut self) -> &mut RawStore {
        match self {
            Handle::Typed(s) => s.raw_mut(),
            Handle::Raw(s) => s,
        }
    }
    fn crash(self) {
        match self {
            Handle::Typed(s) => s.simulate_crash(),
            Handle::Raw(s) => s.simulate_crash(),
        }
    }
    fn close(self) -> recmap::Result<recmap::CommitStats> {
        match self {
            Handle::Typed(s) => s.close(),
            Handle::Raw(s) => s.close(),
        }
    }
}

struct Harness {
    path: PathBuf,
    kind: Kind,
    schema: Schema,
    size: usize,
    rpg: u64,
    ppg: u64,
    log_size: Option<u64>,
    h: Option<Handle>,
    append_only: bool,
    reader: Option<RawReader>,
    /// Every record's bytes as the writer reads them, in order.
    model: Vec<u8>,
    /// Every record's bytes as of the last commit.
    committed: Vec<u8>,
    /// Groups of committed records changed in place since the last commit.
    dirty: BTreeSet<u64>,
    /// Generation of the last commit.
    generation: u64,
}

/// Deterministic bytes of a record made from `v`.
fn record(kind: Kind, size: usize, v: u32) -> Vec<u8> {
    if kind == Kind::Typed8 {
        return recmap::bytemuck::bytes_of(&Small::from_seed(v)).to_vec();
    }
    let x = v.wrapping_mul(0x9e37_79b9);
    (0..size)
        .map(|k| (x.rotate_left(k as u32 % 32) as u8) ^ (k as u8))
        .collect()
}

impl Harness {
    fn create(path: &Path, input: &Input) -> Harness {
        let kind = input.kind;
        let schema = Schema::parse(kind.spec()).unwrap();
        let size = schema.record_size as usize;
        let log_size = input.small_log.then_some(SMALL_LOG);
        let mut opts = Options::new()
            .create_new(true)
            .chunk_size(CHUNK)
            .append_only(input.append_only)
            .initial_capacity((input.initial_capacity as u64).min((MAX_BYTES / size) as u64));
        if let Some(n) = log_size {
            opts = opts.log_size(n);
        }
        let h = match kind {
            Kind::Typed8 => {
                assert_eq!(<Small as recmap::Record>::schema(), schema);
                Handle::Typed(opts.open::<Small>(path).expect("create"))
            }
            _ => Handle::Raw(opts.open_raw(path, Some(&schema)).expect("create")),
        };
        let info = h.raw().info();
        let generation = h.raw().generation();
        Harness {
            path: path.to_path_buf(),
            kind,
            schema,
            size,
            rpg: info.records_per_page,
            ppg: info.pages_per_group,
            log_size,
            h: Some(h),
            append_only: input.append_only,
            reader: None,
            model: Vec::new(),
            committed: Vec::new(),
            dirty: BTreeSet::new(),
            generation,
        }
    }

    fn h(&mut self) -> &mut Handle {
        self.h.as_mut().unwrap()
    }
    fn len(&self) -> u64 {
        (self.model.len() / self.size) as u64
    }
    fn committed_len(&self) -> u64 {
        (self.committed.len() / self.size) as u64
    }
    fn room(&self) -> u64 {
        ((MAX_BYTES - self.model.len()) / self.size) as u64
    }
    fn rec(&self, v: u32) -> Vec<u8> {
        record(self.kind, self.size, v)
    }
    fn model_rec(&self, i: u64) -> &[u8] {
        let at = i as usize * self.size;
        &self.model[at..at + self.size]
    }
    fn committed_rec(&self, i: u64) -> &[u8] {
        let at = i as usize * self.size;
        &self.committed[at..at + self.size]
    }

    fn open_writer(&self) -> Handle {
        let mut opts = Options::new();
        if let Some(n) = self.log_size {
            opts = opts.log_size(n);
        }
        let h = match self.kind {
            Kind::Typed8 => Handle::Typed(opts.open::<Small>(&self.path).expect("reopen")),
            _ => Handle::Raw(
                opts.open_raw(&self.path, Some(&self.schema))
                    .expect("reopen"),
            ),
        };
        // Opening replays the log and checkpoints: the last commit, whole.
        let s = h.raw();
        assert_eq!(s.generation(), self.generation, "reopened generation");
        assert_eq!(s.committed_len(), self.committed_len());
        assert!(!s.has_uncommitted());
        assert_eq!(s.log_commits(), 0, "log left after recovery");
        h
    }

    /// Reopens the writer after the old handle was dropped or crashed
    /// (the model already rolled back or committed), and verifies.
    fn reopen(&mut self) {
        self.h = Some(self.open_writer());
        let rep = self.h().raw().verify().expect("verify");
        self.check_report(&rep, &BTreeSet::new());
    }

    fn append(&mut self, n: u64, seed: u32, slice: bool) {
        let n = n.min(self.room());
        let first = self.len();
        let mut recs = Vec::with_capacity(n as usize * self.size);
        for k in 0..n {
            recs.extend_from_slice(&self.rec(seed.wrapping_add(k as u32)));
        }
        let got = match self.h() {
            Handle::Typed(s) => {
                let vals = (0..n).map(|k| Small::from_seed(seed.wrapping_add(k as u32)));
                if slice {
                    s.extend_from_slice(&vals.collect::<Vec<_>>())
                } else {
                    s.extend(vals)
                }
            }
            Handle::Raw(s) => s.extend_from_bytes(&recs),
        }
        .expect("extend");
        assert_eq!(got, first);
        self.model.extend_from_slice(&recs);
    }

    /// The model side of a commit.
    fn on_commit(&mut self, generation: u64) {
        self.committed.clone_from(&self.model);
        self.dirty.clear();
        self.generation = generation;
    }

    /// The model side of a rollback (explicit, by drop or by a crash).
    fn on_rollback(&mut self) {
        self.model.clone_from(&self.committed);
        self.dirty.clear();
    }

    /// Uncommitted changes never reach the file: `verify` finds nothing,
    /// and skips exactly the groups `handle_dirty`.
    fn check_report(&self, rep: &VerifyReport, handle_dirty: &BTreeSet<u64>) {
        if let Some(p) = rep.problems.first() {
            panic!("unexpected problem: {p} (of {})", rep.problems.len());
        }
        if let Some(n) = rep.notes.first() {
            panic!("unexpected note: {n}");
        }
        assert!(rep.is_ok());
        assert_eq!(rep.generation, self.generation, "verified generation");
        assert_eq!(rep.pages_skipped, handle_dirty.len() as u64 * self.ppg);
        let n = self.committed_len();
        let skipped: u64 = handle_dirty
            .iter()
            .map(|&g| ((g + 1) * self.rpg).min(n) - g * self.rpg)
            .sum();
        assert_eq!(rep.records_checked, n - skipped, "records_checked");
    }

    fn apply(&mut self, op: &Op) {
        let len = self.len();
        match *op {
            Op::Push(v) => {
                if self.room() == 0 {
                    return;
                }
                let r = self.rec(v);
                let i = match self.h() {
                    Handle::Typed(s) => s.push(&Small::from_seed(v)),
                    Handle::Raw(s) => s.push(&r),
                }
                .expect("push");
                assert_eq!(i, len);
                self.model.extend_from_slice(&r);
            }
            Op::Extend { n, seed, slice } => self.append(n as u64, seed, slice),
            Op::Grow { k, seed } => self.append(k as u64 * 1031 + 1, seed, true),
            Op::Set { i, v } | Op::Update { i, v, .. } if len == 0 => {
                let r = self.rec(v);
                let e = self.h().raw_mut().set(i as u64, &r);
                assert!(matches!(e, Err(Error::IndexOutOfBounds { .. })), "{e:?}");
            }
            Op::Set { i, v } | Op::Update { i, v, .. }
                if self.append_only && (i as u64 % len) < self.committed_len() =>
            {
                let i = i as u64 % len;
                let r = self.rec(v);
                let e = match self.h() {
                    Handle::Typed(s) => s.update(i, |x| *x = Small::from_seed(v)),
                    Handle::Raw(s) => s.set(i, &r),
                };
                assert!(matches!(e, Err(Error::AppendOnly { .. })), "{e:?}");
            }
            Op::Set { i, v } => {
                let i = i as u64 % len;
                let r = self.rec(v);
                match self.h() {
                    Handle::Typed(s) => s.set(i, &Small::from_seed(v)),
                    Handle::Raw(s) => s.set(i, &r),
                }
                .expect("set");
                self.model_set(i, &r);
            }
            Op::Update { i, v, guard } => {
                let i = i as u64 % len;
                let r = self.rec(v);
                let old = self.model_rec(i).to_vec();
                match self.h() {
                    Handle::Typed(s) if guard => {
                        let mut g = s.get_mut(i).expect("get_mut");
                        assert_eq!(recmap::bytemuck::bytes_of(&*g), &old[..]);
                        *g = Small::from_seed(v);
                    }
                    Handle::Typed(s) => {
                        let was = s
                            .update(i, |x| std::mem::replace(x, Small::from_seed(v)))
                            .expect("update");
                        assert_eq!(recmap::bytemuck::bytes_of(&was), &old[..]);
                    }
                    Handle::Raw(s) => {
                        // Write back a record read from the store itself:
                        // the writer reads its own uncommitted images.
                        let cur = s.get(i).unwrap().to_vec();
                        assert_eq!(cur, old);
                        s.set(i, &r).expect("set");
                    }
                }
                self.model_set(i, &r);
            }
            Op::Get { i } => {
                let i = i as u64;
                let want = (i < len).then(|| self.model_rec(i).to_vec());
                let h = self.h.as_ref().unwrap();
                assert_eq!(h.raw().get(i).map(|b| b.to_vec()), want);
                if let Handle::Typed(s) = h {
                    assert_eq!(
                        s.get(i).map(|x| recmap::bytemuck::bytes_of(x).to_vec()),
                        want
                    );
                }
            }
            Op::Runs { start, len: n } => {
                let (a, b) = (start as u64, start as u64 + n as u64);
                self.check_runs(a..b);
            }
            Op::Reserve(n) => {
                let n = (n as u64).min(self.room());
                self.h().raw_mut().reserve(n).expect("reserve");
                assert!(self.h().raw().capacity() >= len + n);
            }
            Op::Commit => {
                let had = self.h().raw().has_uncommitted();
                assert_eq!(had, len != self.committed_len() || !self.dirty.is_empty());
                let stats = self.h().raw_mut().commit().expect("commit");
                assert_eq!(stats.records, len);
                let want = self.generation + u64::from(had);
                assert_eq!(stats.generation, want, "commit generation");
                if !had {
                    assert_eq!(stats.pages, 0);
                }
                self.on_commit(stats.generation);
                let rep = self.h().raw().verify().expect("verify");
                self.check_report(&rep, &BTreeSet::new());
            }
            Op::Rollback => {
                self.h().raw_mut().rollback().expect("rollback");
                self.on_rollback();
                assert!(!self.h().raw().has_uncommitted());
                let rep = self.h().raw().verify().expect("verify");
                self.check_report(&rep, &BTreeSet::new());
            }
            Op::Checkpoint => {
                let had = self.h().raw().has_uncommitted();
                self.h().raw_mut().checkpoint().expect("checkpoint");
                let s = self.h().raw();
                assert_eq!(s.log_commits(), 0);
                // Commits are folded in; uncommitted changes stay pending.
                assert_eq!(s.has_uncommitted(), had);
            }
            Op::Verify => {
                let rep = self.h().raw().verify().expect("verify");
                let dirty = self.dirty.clone();
                self.check_report(&rep, &dirty);
            }
            Op::DropReopen => {
                drop(self.h.take());
                self.on_rollback();
                self.reopen();
            }
            Op::CloseReopen => {
                let had = self.h().raw().has_uncommitted();
                let stats = self.h.take().unwrap().close().expect("close");
                assert_eq!(stats.generation, self.generation + u64::from(had));
                self.on_commit(stats.generation);
                self.reopen();
            }
            Op::Crash { read_first } => {
                self.h.take().unwrap().crash();
                self.on_rollback();
                if read_first {
                    // No writer: the data header plus the log's commits,
                    // read through an overlay (nothing is replayed).
                    stats::hit("crash: read the log first");
                    let ro = RawStore::open_read_only(&self.path).expect("read-only after a crash");
                    assert_eq!(ro.generation(), self.generation);
                    self.check_store(&ro);
                    let rep = ro.verify().expect("verify");
                    self.check_report(&rep, &BTreeSet::new());
                    drop(ro);
                    self.reader = None;
                    let r = RawReader::open(&self.path).expect("reader after a crash");
                    self.reader = Some(r);
                    self.check_reader();
                }
                self.reopen();
            }
            Op::ReadOnlyRound => {
                let stats = self.h().raw_mut().commit().expect("commit");
                self.on_commit(stats.generation);
                drop(self.h.take());
                let mut ro = RawStore::open_read_only(&self.path).expect("open read-only");
                assert!(matches!(ro.push(&self.rec(0)), Err(Error::ReadOnly { .. })));
                assert!(matches!(ro.rollback(), Err(Error::ReadOnly { .. })));
                assert!(matches!(ro.checkpoint(), Err(Error::ReadOnly { .. })));
                if len > 0 {
                    assert!(matches!(
                        ro.set(0, &self.rec(0)),
                        Err(Error::ReadOnly { .. })
                    ));
                }
                // A second reader is fine; a writer is locked out.
                let ro2 = RawStore::open_read_only(&self.path).expect("second reader");
                assert!(matches!(
                    RawStore::open(&self.path),
                    Err(Error::Locked { .. })
                ));
                drop(ro2);
                self.check_store(&ro);
                let rep = ro.verify().expect("verify");
                self.check_report(&rep, &BTreeSet::new());
                drop(ro);
                self.h = Some(self.open_writer());
            }
            Op::SecondOpen => {
                assert!(matches!(
                    RawStore::open_read_only(&self.path),
                    Err(Error::Locked { .. })
                ));
                assert!(matches!(
                    RawStore::open(&self.path),
                    Err(Error::Locked { .. })
                ));
            }
            Op::Repair { truncate } => {
                let how = if truncate {
                    Repair::TruncateToVerified
                } else {
                    Repair::RebuildChecksums
                };
                let uncommitted = self.h().raw().has_uncommitted();
                let r = self.h().raw_mut().repair(how);
                if truncate && self.append_only && self.reader.is_some() {
                    assert!(matches!(r, Err(Error::ReadersPresent { .. })), "{r:?}");
                    return;
                }
                if uncommitted {
                    assert!(matches!(r, Err(Error::InvalidOption { .. })), "{r:?}");
                    return;
                }
                // Nothing is ever damaged: nothing to repair.
                let rep = r.expect("repair");
                self.check_report(&rep.before, &BTreeSet::new());
                assert_eq!((rep.records_before, rep.records_after), (len, len));
                assert_eq!(rep.generation, self.generation);
                assert_eq!(rep.pages_rewritten, 0);
            }
            Op::Compact => {
                let uncommitted = self.h().raw().has_uncommitted();
                let cap = self.h().raw().capacity();
                let r = self.h().raw_mut().compact();
                if uncommitted {
                    assert!(matches!(r, Err(Error::InvalidOption { .. })), "{r:?}");
                } else if self.reader.is_some() {
                    assert!(matches!(r, Err(Error::ReadersPresent { .. })), "{r:?}");
                } else {
                    let freed = r.expect("compact");
                    let s = self.h().raw();
                    assert!(s.capacity() >= len);
                    if freed == 0 {
                        assert_eq!(s.capacity(), cap);
                    } else {
                        assert!(s.capacity() <= cap);
                    }
                    let rep = s.verify().expect("verify");
                    self.check_report(&rep, &BTreeSet::new());
                }
            }
            Op::ReaderOpen => {
                self.reader = None;
                let r = RawReader::open(&self.path).expect("reader beside the writer");
                self.reader = Some(r);
                self.check_reader();
            }
            Op::ReaderRefresh => {
                if let Some(r) = self.reader.as_mut() {
                    r.refresh().expect("refresh");
                    self.check_reader();
                }
            }
            Op::ReaderClose => self.reader = None,
        }
    }

    /// A reader just opened or refreshed sees the last commit: its length
    /// and generation, and its records, never the writer's uncommitted
    /// updates.
    fn check_reader(&self) {
        let r = self.reader.as_ref().unwrap();
        let n = self.committed_len();
        assert_eq!(r.len(), n);
        assert_eq!(r.generation(), self.generation, "reader generation");
        assert_eq!(r.is_append_only(), self.append_only);
        let mut picks = vec![0, 1, n / 2, n.saturating_sub(2), n.saturating_sub(1)];
        // A record of every group the writer changed and has not committed.
        picks.extend(self.dirty.iter().map(|&g| g * self.rpg));
        for i in picks {
            if i < n {
                assert_eq!(
                    r.get(i).expect("reader get").as_deref(),
                    Some(self.committed_rec(i)),
                    "reader record {i}"
                );
                if self.append_only {
                    assert_eq!(r.get_ref(i).expect("get_ref"), Some(self.committed_rec(i)));
                }
            }
        }
        assert_eq!(r.get(n).expect("reader get"), None);
        if !self.append_only {
            assert!(matches!(r.get_ref(0), Err(Error::InvalidOption { .. })));
        }
    }

    fn model_set(&mut self, i: u64, r: &[u8]) {
        let at = i as usize * self.size;
        self.model[at..at + self.size].copy_from_slice(r);
        if i < self.committed_len() {
            self.dirty.insert(i / self.rpg);
        }
    }

    fn check_runs(&self, range: std::ops::Range<u64>) {
        let s = self.h.as_ref().unwrap().raw();
        check_runs_of(s, &self.model, self.size, self.rpg, range);
    }

    /// Length, committed length, generation, every record (through runs)
    /// and a sample through `get`: a writer against the writer's model, a
    /// read-only handle against the committed one.
    fn check_store(&self, s: &RawStore) {
        let model = if s.is_read_only() {
            &self.committed
        } else {
            &self.model
        };
        let len = (model.len() / self.size) as u64;
        let committed = self.committed_len();
        assert_eq!(s.len(), len);
        assert_eq!(s.committed_len(), committed);
        assert!(s.capacity() >= len);
        assert_eq!(s.generation(), self.generation, "generation");
        let info = s.info();
        assert_eq!(
            info.file_size % CHUNK,
            0,
            "file length not a chunk multiple"
        );
        check_runs_of(s, model, self.size, self.rpg, 0..len);
        let mut picks = vec![
            0,
            1,
            len / 2,
            committed.saturating_sub(1),
            committed,
            len.saturating_sub(1),
        ];
        picks.extend(self.dirty.iter().map(|&g| g * self.rpg));
        for i in picks {
            if i < len {
                let at = i as usize * self.size;
                assert_eq!(s.get(i), Some(&model[at..at + self.size]), "record {i}");
            }
        }
        assert_eq!(s.get(len), None);
    }

    /// After every operation: the store against the model, and typed reads.
    fn check(&mut self) {
        let h = self.h.as_ref().unwrap();
        self.check_store(h.raw());
        if let Handle::Typed(s) = h {
            let len = self.len();
            for i in [0, len / 3, len.saturating_sub(1)] {
                if i < len {
                    let got = recmap::bytemuck::bytes_of(s.get(i).unwrap());
                    assert_eq!(got, self.model_rec(i));
                }
            }
            let n: usize = s.slices(0..len).map(|(_, r)| r.len()).sum();
            assert_eq!(n as u64, len);
        }
    }

    fn close_and_check(mut self) {
        self.reader = None;
        let h = self.h.take().unwrap();
        let had = h.raw().has_uncommitted();
        let stats = h.close().expect("close");
        assert_eq!(stats.records, self.len());
        assert_eq!(stats.generation, self.generation + u64::from(had));
        self.on_commit(stats.generation);
        let s = RawStore::open_read_only(&self.path).expect("final open");
        self.check_store(&s);
        let rep = s.verify().expect("verify");
        self.check_report(&rep, &BTreeSet::new());
    }
}

/// `runs(range)` tiles the clamped range with the model's records; for
/// layouts with slack no run crosses a group.
fn check_runs_of(s: &RawStore, model: &[u8], size: usize, rpg: u64, range: std::ops::Range<u64>) {
    let len = (model.len() / size) as u64;
    let end = range.end.min(len);
    let dense = (rpg as usize * size).is_multiple_of(4096);
    let mut next = range.start;
    for (first, bytes) in s.runs(range.clone()) {
        assert_eq!(first, next);
        let n = (bytes.len() / size) as u64;
        assert!(n > 0 && bytes.len() % size == 0);
        if !dense {
            assert_eq!(first / rpg, (first + n - 1) / rpg, "run crosses a group");
        }
        let at = first as usize * size;
        assert!(
            bytes == &model[at..at + bytes.len()],
            "records {first}..{} differ",
            first + n
        );
        next = first + n;
    }
    assert_eq!(next, end.max(range.start));
}
