//! Operation sequences against a model.
//!
//! The input picks a record layout (a typed 8-byte dense record, or untyped
//! 12-byte, 5000-byte and 8192-byte records: non-dense, multi-page and dense
//! multi-page groups), an initial capacity and up to `MAX_OPS` operations.
//! The store lives in a 64 KiB-chunk file; the model is the records' bytes
//! in a `Vec<u8>` plus what the last commit holds. After every operation the
//! store's length, committed length and every record (through `runs`, and
//! `get` on a sample) must equal the model's.
//!
//! Reopen semantics modelled:
//! - `close` (or commit then drop) keeps everything;
//! - dropping a writer without a commit loses the appends since the last
//!   commit, but in-place `set`s of committed records have already gone to
//!   the file and stay; their pages' checksums are then stale until a commit
//!   rewrites those pages or `repair` rebuilds them, so `verify` may report
//!   exactly those pages (the model tracks them) and nothing else.
//!
//! Append-only stores (chosen by the input) refuse `set` of committed
//! records with `AppendOnly`. A `RawReader` may be open beside the writer:
//! after `refresh` it must see exactly the committed records (in-place
//! updates included), and while it is open `compact` (and an append-only
//! truncating repair) are refused with `ReadersPresent`.
//!
//! Sizes are bounded: at most `MAX_BYTES` of records in a store.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recmap::{
    Bool, Error, Options, Problem, RawReader, RawStore, Repair, Schema, Store, VerifyReport,
};
use recmap_fuzz::{remove_store, scratch_path, stats};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CHUNK: u64 = 64 << 10;
const MAX_OPS: usize = 48;
/// Bytes of records a store may hold.
const MAX_BYTES: usize = 2 << 20;

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

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `Store<Small>`, 8 bytes.
    Typed8,
    /// `RawStore`, 12 bytes: 341 per page, 4 bytes of slack.
    Raw12,
    /// `RawStore`, 5000 bytes: 2-page groups with slack.
    Raw5000,
    /// `RawStore`, 8192 bytes: dense 2-page groups.
    Raw8192,
}

impl Kind {
    fn spec(self) -> &'static str {
        match self {
            Kind::Typed8 => "a:u32,b:u16,c:u8,d:bool",
            Kind::Raw12 => "x:u32,y:i16,z:str[6]",
            Kind::Raw5000 => "id:u64,blob:bytes[4992]",
            Kind::Raw8192 => "page:bytes[8192]",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Push(u32),
    /// Append `n` records (bulk path for raw; `extend` or
    /// `extend_from_slice` for typed).
    Extend {
        n: u8,
        seed: u32,
        slice: bool,
    },
    /// A large append: `k * 1031 + 1` records (bounded by `MAX_BYTES`); grows
    /// the file, and for dense layouts takes the direct-write path.
    Grow {
        k: u8,
        seed: u32,
    },
    Set {
        i: u16,
        v: u32,
    },
    /// Typed: `update` / `get_mut`; raw: `set` of the same bytes via `get`.
    Update {
        i: u16,
        v: u32,
        guard: bool,
    },
    Get {
        i: u16,
    },
    Runs {
        start: u16,
        len: u16,
    },
    Reserve(u16),
    Commit,
    Verify,
    /// Drop the writer without committing, reopen.
    DropReopen,
    /// `close` (commits), reopen.
    CloseReopen,
    /// Close, check a read-only handle (and that it refuses writes), reopen.
    ReadOnlyRound,
    /// While the writer is open, another open must fail with `Locked`.
    SecondOpen,
    /// Repair; needs nothing uncommitted.
    Repair {
        truncate: bool,
    },
    /// Shrink the file to the committed records; needs nothing uncommitted
    /// and no reader.
    Compact,
    /// Open a `RawReader` beside the writer (replacing any open one).
    ReaderOpen,
    /// `refresh` the reader (if open) and compare it with the commit.
    ReaderRefresh,
    ReaderClose,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Push(_) => "push",
            Op::Extend { .. } => "extend",
            Op::Grow { .. } => "grow",
            Op::Set { .. } => "set",
            Op::Update { .. } => "update",
            Op::Get { .. } => "get",
            Op::Runs { .. } => "runs",
            Op::Reserve(_) => "reserve",
            Op::Commit => "commit",
            Op::Verify => "verify",
            Op::DropReopen => "drop+reopen",
            Op::CloseReopen => "close+reopen",
            Op::ReadOnlyRound => "read-only round",
            Op::SecondOpen => "second open",
            Op::Repair { .. } => "repair",
            Op::Compact => "compact",
            Op::ReaderOpen => "reader open",
            Op::ReaderRefresh => "reader refresh",
            Op::ReaderClose => "reader close",
        }
    }
}

#[derive(Debug)]
struct Input {
    kind: Kind,
    append_only: bool,
    initial_capacity: u16,
    ops: Vec<Op>,
}

/// Operations follow each other until the input (or `MAX_OPS`) ends. The
/// derived `Vec` decoding would put a continue-flag byte before each
/// element, so random bytes would average one operation.
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let kind = u.arbitrary()?;
        let append_only = u.arbitrary()?;
        let initial_capacity = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Input {
            kind,
            append_only,
            initial_capacity,
            ops,
        })
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
    let mut h = Harness::create(
        p,
        input.kind,
        input.append_only,
        input.initial_capacity as u64,
    );
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
}

struct Harness {
    path: PathBuf,
    kind: Kind,
    schema: Schema,
    size: usize,
    rpg: u64,
    h: Option<Handle>,
    append_only: bool,
    reader: Option<RawReader>,
    /// Every record's bytes, in order.
    model: Vec<u8>,
    /// Records as of the last commit.
    committed: u64,
    /// Groups of committed records changed in place since the last commit.
    dirty: BTreeSet<u64>,
    /// Groups whose stored checksum may be stale (set, then the writer was
    /// dropped before a commit rewrote them).
    stale: BTreeSet<u64>,
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
    fn create(path: &Path, kind: Kind, append_only: bool, initial_capacity: u64) -> Harness {
        let schema = Schema::parse(kind.spec()).unwrap();
        let size = schema.record_size as usize;
        let opts = Options::new()
            .create_new(true)
            .chunk_size(CHUNK)
            .append_only(append_only)
            .initial_capacity(initial_capacity.min((MAX_BYTES / size) as u64));
        let h = match kind {
            Kind::Typed8 => {
                assert_eq!(<Small as recmap::Record>::schema(), schema);
                Handle::Typed(opts.open::<Small>(path).expect("create"))
            }
            _ => Handle::Raw(opts.open_raw(path, Some(&schema)).expect("create")),
        };
        let rpg = h.raw().info().records_per_page;
        let generation = h.raw().generation();
        Harness {
            path: path.to_path_buf(),
            kind,
            schema,
            size,
            rpg,
            h: Some(h),
            append_only,
            reader: None,
            model: Vec::new(),
            committed: 0,
            dirty: BTreeSet::new(),
            stale: BTreeSet::new(),
            generation,
        }
    }

    fn h(&mut self) -> &mut Handle {
        self.h.as_mut().unwrap()
    }
    fn len(&self) -> u64 {
        (self.model.len() / self.size) as u64
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

    fn open_writer(&self) -> Handle {
        match self.kind {
            Kind::Typed8 => Handle::Typed(Store::<Small>::open(&self.path).expect("reopen")),
            _ => Handle::Raw(
                Options::new()
                    .open_raw(&self.path, Some(&self.schema))
                    .expect("reopen"),
            ),
        }
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

    fn on_commit(&mut self) {
        // The commit rewrote the checksums of the dirty groups and of every
        // group appends touched.
        let len = self.len();
        for g in std::mem::take(&mut self.dirty) {
            self.stale.remove(&g);
        }
        if len > self.committed {
            let (a, b) = (self.committed / self.rpg, (len - 1) / self.rpg);
            self.stale.retain(|&g| g < a || g > b);
        }
        self.committed = len;
    }

    fn check_report(&self, rep: &VerifyReport, handle_dirty: &BTreeSet<u64>) {
        for p in &rep.problems {
            match p {
                Problem::PageChecksum { group, .. } => {
                    stats::hit("verify: stale page reported");
                    assert!(
                        self.stale.contains(group) && !handle_dirty.contains(group),
                        "page {group} damaged, stale pages {:?}: {p}",
                        self.stale
                    )
                }
                _ => panic!("unexpected problem: {p}"),
            }
        }
        if let Some(n) = rep.notes.first() {
            panic!("unexpected note: {n}");
        }
        if self.stale.is_empty() {
            assert!(rep.is_ok());
        }
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
                if self.append_only && (i as u64 % len) < self.committed =>
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
                match self.h() {
                    Handle::Typed(s) if guard => {
                        let mut g = s.get_mut(i).expect("get_mut");
                        *g = Small::from_seed(v);
                    }
                    Handle::Typed(s) => {
                        let old = s.update(i, |x| std::mem::replace(x, Small::from_seed(v)));
                        let _ = old.expect("update");
                    }
                    Handle::Raw(s) => {
                        // Write back a record read from the store itself.
                        let cur = s.get(i).unwrap().to_vec();
                        s.set(i, &r).expect("set");
                        assert_ne!(cur.len(), 0);
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
                let stats = self.h().raw_mut().commit().expect("commit");
                assert_eq!(stats.records, len);
                if had {
                    assert_eq!(stats.generation, self.h().raw().generation());
                }
                self.on_commit();
                let rep = self.h().raw().verify().expect("verify");
                self.check_report(&rep, &BTreeSet::new());
            }
            Op::Verify => {
                let rep = self.h().raw().verify().expect("verify");
                let dirty = self.dirty.clone();
                self.check_report(&rep, &dirty);
            }
            Op::DropReopen => {
                drop(self.h.take());
                self.model.truncate(self.committed as usize * self.size);
                self.stale.extend(std::mem::take(&mut self.dirty));
                self.h = Some(self.open_writer());
                let rep = self.h().raw().verify().expect("verify");
                self.check_report(&rep, &BTreeSet::new());
            }
            Op::CloseReopen => {
                let h = self.h.take().unwrap();
                match h {
                    Handle::Typed(s) => s.close(),
                    Handle::Raw(s) => s.close(),
                }
                .expect("close");
                self.on_commit();
                self.h = Some(self.open_writer());
                let rep = self.h().raw().verify().expect("verify");
                self.check_report(&rep, &BTreeSet::new());
            }
            Op::ReadOnlyRound => {
                self.h().raw_mut().commit().expect("commit");
                self.on_commit();
                drop(self.h.take());
                let mut ro = RawStore::open_read_only(&self.path).expect("open read-only");
                assert!(matches!(ro.push(&self.rec(0)), Err(Error::ReadOnly { .. })));
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
                let rep = r.expect("repair");
                self.check_report(&rep.before, &BTreeSet::new());
                assert_eq!(rep.records_before, len);
                if truncate {
                    let first_bad = rep
                        .before
                        .problems
                        .iter()
                        .filter_map(|p| match p {
                            Problem::PageChecksum { first_record, .. } => Some(*first_record),
                            _ => None,
                        })
                        .min()
                        .unwrap_or(len);
                    assert_eq!(rep.records_after, first_bad);
                    self.model.truncate(first_bad as usize * self.size);
                } else {
                    assert_eq!(rep.records_after, len);
                }
                self.committed = rep.records_after;
                self.stale.clear();
                let after = self.h().raw().verify().expect("verify");
                assert!(after.is_ok(), "damaged after repair: {:?}", after.problems);
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

    /// A refreshed reader sees the last commit: its length, and every
    /// committed record as the model has it (in-place updates of committed
    /// records are in the file at once).
    fn check_reader(&self) {
        let r = self.reader.as_ref().unwrap();
        assert_eq!(r.len(), self.committed);
        if let Some(h) = self.h.as_ref() {
            assert_eq!(r.generation(), h.raw().generation());
        }
        assert_eq!(r.is_append_only(), self.append_only);
        let n = self.committed;
        for i in [0, 1, n / 2, n.saturating_sub(2), n.saturating_sub(1)] {
            if i < n {
                assert_eq!(
                    r.get(i).expect("reader get").as_deref(),
                    Some(self.model_rec(i)),
                    "reader record {i}"
                );
                if self.append_only {
                    assert_eq!(r.get_ref(i).expect("get_ref"), Some(self.model_rec(i)));
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
        if i < self.committed {
            self.dirty.insert(i / self.rpg);
        }
    }

    fn check_runs(&self, range: std::ops::Range<u64>) {
        let s = self.h.as_ref().unwrap().raw();
        check_runs_of(s, &self.model, self.size, self.rpg, range);
    }

    /// Length, committed length, every record (through runs) and a sample
    /// through `get`.
    fn check_store(&self, s: &RawStore) {
        let len = self.len();
        assert_eq!(s.len(), len);
        assert_eq!(s.committed_len(), self.committed);
        assert!(s.capacity() >= len);
        assert!(s.generation() >= self.generation);
        let info = s.info();
        assert_eq!(
            info.file_size % CHUNK,
            0,
            "file length not a chunk multiple"
        );
        check_runs_of(s, &self.model, self.size, self.rpg, 0..len);
        let picks = [
            0,
            1,
            len / 2,
            self.committed.saturating_sub(1),
            self.committed,
            len.saturating_sub(1),
        ];
        for i in picks {
            if i < len {
                assert_eq!(s.get(i), Some(self.model_rec(i)), "record {i}");
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
        self.generation = h.raw().generation();
    }

    fn close_and_check(mut self) {
        self.reader = None;
        let h = self.h.take().unwrap();
        let stats = match h {
            Handle::Typed(s) => s.close(),
            Handle::Raw(s) => s.close(),
        }
        .expect("close");
        assert_eq!(stats.records, self.len());
        self.on_commit();
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
