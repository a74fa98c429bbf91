//! Helpers shared by the fuzz targets and the seed generator
//! (`examples/gen_corpus.rs`): scratch paths, the record types of the seed
//! corpus, `resign` and `resign_log`, which make mutated header slots and
//! log frames pass their CRCs, the split of an `open_bytes` input into a
//! data file and a log, and the `ops_model` input (`ops`).

use recmap::format::wal::{FrameHeader, FRAME_MAGIC, FRAME_MORE};
use recmap::format::{
    choose_slot, slot, Header, FLAG_CHECKED, LIST_ENTRY_LEN, MAX_LISTED_GROUPS, PAGE_SIZE,
    SCHEMA_OFFSET, SLOT_LEN, SLOT_LEN_V1, SLOT_OFFSETS,
};
use recmap::{Bool, FixedStr};
use std::path::PathBuf;

/// Where the targets put their files: `$RECMAP_FUZZ_DIR`, else `/dev/shm`
/// when it exists (fsync and file creation are near free on tmpfs, which
/// matters for `ops_model`'s commits), else the system temp directory.
pub fn scratch_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RECMAP_FUZZ_DIR") {
        return PathBuf::from(d);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        return shm;
    }
    std::env::temp_dir()
}

/// One path per process and target, reused by every input.
pub fn scratch_path(target: &str) -> PathBuf {
    scratch_dir().join(format!("recmap-fuzz-{target}-{}.store", std::process::id()))
}

/// `<path><suffix>`: the files a store keeps beside its data file.
pub fn sidecar(path: &std::path::Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes a store file and the files a writer keeps next to it: the log
/// (`<path>-wal`) and the coordination file (`<path>-lock`).
pub fn remove_store(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(sidecar(path, "-wal"));
    let _ = std::fs::remove_file(sidecar(path, "-lock"));
}

/// In an `open_bytes` input, separates the data file (before) from the
/// log file (after). Inputs without it are a data file alone (no log).
pub const LOG_MARKER: &[u8; 16] = b"\n--recmap-wal--\n";

/// Splits an `open_bytes` input at the first `LOG_MARKER`: the data file's
/// bytes and, if the marker is there, the log's.
pub fn split_input(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.windows(LOG_MARKER.len()).position(|w| w == LOG_MARKER) {
        Some(at) => (&data[..at], Some(&data[at + LOG_MARKER.len()..])),
        None => (data, None),
    }
}

/// Joins a data file and a log into one `open_bytes` input.
pub fn join_input(data: &[u8], log: Option<&[u8]>) -> Vec<u8> {
    let mut v = data.to_vec();
    if let Some(log) = log {
        v.extend_from_slice(LOG_MARKER);
        v.extend_from_slice(log);
    }
    v
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Re-signs whatever a mutation left in the header page: for each slot that
/// carries the magic, sets `schema_crc` to the CRC of the schema block its
/// `schema_len` names (when the file holds it) and recomputes the slot's
/// CRCs: a version-2 slot both (the one at 124 over bytes `0..124`, the one
/// at 252 over `0..252`), a version-1 slot its one at 124, after the CRC of
/// its group list when it is a checked commit whose list fits. Without
/// this, almost every mutation of a header or schema byte stops at a
/// checksum and the field validation behind it is never reached.
///
/// Returns false when nothing was re-signed (no slot with the magic).
pub fn resign(bytes: &mut [u8]) -> bool {
    let mut any = false;
    for &off in &SLOT_OFFSETS {
        let off = off as usize;
        if bytes.len() < off + SLOT_LEN_V1 || bytes[off..off + 8] != recmap::format::MAGIC {
            continue;
        }
        any = true;
        let schema_len = rd_u32(bytes, off + slot::SCHEMA_LEN) as usize;
        let at = SCHEMA_OFFSET as usize;
        if let Some(block) = bytes.get(at..at.saturating_add(schema_len)) {
            let crc = crc32fast::hash(block);
            put_u32(bytes, off + slot::SCHEMA_CRC, crc);
        }
        let version = rd_u32(bytes, off + slot::FORMAT_VERSION);
        let flags = rd_u32(bytes, off + slot::FLAGS);
        let list_len =
            u16::from_le_bytes([bytes[off + slot::LIST_LEN], bytes[off + slot::LIST_LEN + 1]])
                as usize;
        if version == 1 && flags & FLAG_CHECKED != 0 && list_len <= MAX_LISTED_GROUPS {
            let list = off + SLOT_LEN_V1..off + SLOT_LEN_V1 + list_len * LIST_ENTRY_LEN;
            if let Some(l) = bytes.get(list) {
                let crc = crc32fast::hash(l);
                put_u32(bytes, off + slot::LIST_CRC, crc);
            }
        }
        let crc = crc32fast::hash(&bytes[off..off + slot::CRC]);
        put_u32(bytes, off + slot::CRC, crc);
        if version != 1 && bytes.len() >= off + SLOT_LEN {
            let crc = recmap::format::slot_crc_v2(&bytes[off..off + recmap::format::SLOT_LEN]);
            put_u32(bytes, off + slot::V2_CRC, crc);
        }
    }
    any
}

/// The header an open would use, decoded from the start of a data file
/// (zero-padded to a page), if either slot is valid.
pub fn data_header(data: &[u8]) -> Option<Header> {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    let n = data.len().min(page.len());
    page[..n].copy_from_slice(&data[..n]);
    let slots = [
        Header::decode(&page[SLOT_OFFSETS[0] as usize..], 0),
        Header::decode(&page[SLOT_OFFSETS[1] as usize..], 1),
    ];
    choose_slot(&slots).and_then(|i| slots[i].as_ref().ok().copied())
}

/// Re-signs the frames a mutation left in a log so that they continue the
/// chain of data header `h`: walking from the start while frames carry
/// the magic and fit, each gets `h`'s store id and `header_seq`, the
/// generation and previous count that continue the chain (those of the
/// commit it belongs to, after a frame with `FRAME_MORE`), and a fresh
/// checksum. Everything else (counts, entries, flags) is left as it is, so
/// the content rules and the replay behind the checksum are reached.
///
/// Returns the number of frames re-signed.
pub fn resign_log(h: &Header, log: &mut [u8]) -> usize {
    let record_size = h.layout.packing.record_size;
    let (mut generation, mut count) = (h.generation, h.record_count);
    let mut open: Option<(u64, u64)> = None;
    let mut at = 0usize;
    let mut n = 0;
    while log.len() >= at + 64 && log[at..at + 8] == FRAME_MAGIC {
        let Some(mut f) = FrameHeader::decode(&log[at..]) else {
            break;
        };
        let Some(len) = f.frame_len(record_size) else {
            break;
        };
        let len = len as usize;
        if log.len() - at < len {
            break;
        }
        f.store_id = h.store_id;
        f.header_seq = h.header_seq;
        (f.generation, f.prev_count) = open.unwrap_or((generation + 1, count));
        let b = &mut log[at..at + len];
        b[..64].copy_from_slice(&f.encode());
        let crc = crc32fast::hash(&b[..len - 4]);
        put_u32(b, len - 4, crc);
        if f.flags & FRAME_MORE != 0 {
            open = Some((f.generation, f.prev_count));
        } else {
            open = None;
            generation = f.generation;
            count = f.record_count;
        }
        at += len;
        n += 1;
    }
    n
}

// ----- record types of the seed corpus (typed reads in `open_bytes`) -------

recmap::record! {
    /// 16 bytes: dense (256 per page).
    pub struct P16 { pub id: u64, pub x: f32, pub y: f32 }
}
recmap::record! {
    /// 24 bytes: 170 per page, 16 bytes of slack at each page end.
    pub struct R24 { pub id: u64, pub v: [f32; 3], pub flag: Bool, pub _pad: [u8; 3] }
}
recmap::record! {
    /// 12 bytes with a string: 341 per page.
    pub struct S12 { pub a: u32, pub b: u16, pub c: u8, pub d: Bool, pub name: FixedStr<4> }
}
recmap::record! {
    /// 1 byte: 4096 per page.
    pub struct B1 { pub flag: Bool }
}
recmap::record! {
    /// Larger than a page: each record takes a group of 2 pages.
    pub struct Big5000 { pub id: u64, pub blob: [u8; 4992] }
}
recmap::record! {
    /// Exactly one page.
    pub struct Page4096 { pub page: [u8; 4096] }
}

impl P16 {
    pub fn make(i: u64) -> Self {
        P16 {
            id: i,
            x: i as f32 * 0.5,
            y: -(i as f32),
        }
    }
}
impl R24 {
    pub fn make(i: u64) -> Self {
        R24 {
            id: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            v: [i as f32, 1.0, -2.5],
            flag: Bool((i % 2) as u8),
            _pad: [0; 3],
        }
    }
}
impl S12 {
    pub fn make(i: u64) -> Self {
        let names = ["", "a", "ab", "abcd", "é"];
        S12 {
            a: i as u32,
            b: (i * 7) as u16,
            c: (i * 13) as u8,
            d: Bool(i.is_multiple_of(3) as u8),
            name: FixedStr::new(names[(i % names.len() as u64) as usize]).unwrap(),
        }
    }
}
impl B1 {
    pub fn make(i: u64) -> Self {
        B1 {
            flag: Bool(i.is_multiple_of(5) as u8),
        }
    }
}
impl Big5000 {
    pub fn make(i: u64) -> Self {
        let mut blob = [0u8; 4992];
        for (k, b) in blob.iter_mut().enumerate() {
            *b = (k as u64 ^ i.wrapping_mul(31)) as u8;
        }
        Big5000 { id: i, blob }
    }
}
impl Page4096 {
    pub fn make(i: u64) -> Self {
        let mut page = [0u8; 4096];
        for (k, b) in page.iter_mut().enumerate() {
            *b = (k as u64).wrapping_add(i) as u8;
        }
        Page4096 { page }
    }
}

/// A schema with many long field names: its block spans two pages, so the
/// data region starts at 12288 instead of 8192.
pub fn wide_schema_spec() -> String {
    (0..60)
        .map(|k| format!("field_{k:02}_{}:u8", "x".repeat(50)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A raw-only schema with arrays, a string and a bool.
pub const MIXED_SPEC: &str = "t:i64,v:f64[3],name:str[7],ok:bool";

// ----- optional outcome counters -------------------------------------------

/// Counts named outcomes when `RECMAP_FUZZ_STATS` is set and prints them to
/// stderr at every power-of-two input count, to see what a target reaches
/// (for example how many inputs open as a store). Free when unset.
pub mod stats {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};

    fn enabled() -> bool {
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| std::env::var_os("RECMAP_FUZZ_STATS").is_some())
    }

    fn table() -> &'static Mutex<BTreeMap<&'static str, u64>> {
        static T: OnceLock<Mutex<BTreeMap<&'static str, u64>>> = OnceLock::new();
        T.get_or_init(Default::default)
    }

    /// Counts one `what`.
    pub fn hit(what: &'static str) {
        if enabled() {
            *table().lock().unwrap().entry(what).or_default() += 1;
        }
    }

    /// Counts one input; prints the table at 1, 2, 4, 8, ... inputs.
    pub fn input() {
        if !enabled() {
            return;
        }
        let mut t = table().lock().unwrap();
        let n = t.entry("inputs").or_default();
        *n += 1;
        if n.is_power_of_two() && *n >= 1024 {
            eprintln!("recmap-fuzz stats: {t:?}");
        }
    }
}

// ----- the input of `ops_model` ---------------------------------------------

/// The input of the `ops_model` target: its decoding (`Arbitrary`) and, for
/// the seed generator, an encoding that decodes back to the same value.
pub mod ops {
    use arbitrary::{Arbitrary, Unstructured};

    /// Most operations one input runs.
    pub const MAX_OPS: usize = 48;

    #[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
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
        pub const ALL: [Kind; 4] = [Kind::Typed8, Kind::Raw12, Kind::Raw5000, Kind::Raw8192];

        pub fn spec(self) -> &'static str {
            match self {
                Kind::Typed8 => "a:u32,b:u16,c:u8,d:bool",
                Kind::Raw12 => "x:u32,y:i16,z:str[6]",
                Kind::Raw5000 => "id:u64,blob:bytes[4992]",
                Kind::Raw8192 => "page:bytes[8192]",
            }
        }
    }

    /// One operation. The variant order is the encoding (`Op::index`).
    #[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
    pub enum Op {
        Push(u32),
        /// Append `n` records (bulk path for raw; `extend` or
        /// `extend_from_slice` for typed).
        Extend {
            n: u8,
            seed: u32,
            slice: bool,
        },
        /// A large append: `k * 1031 + 1` records (bounded by the target's
        /// `MAX_BYTES`); grows the file, and for dense layouts takes the
        /// direct-write path.
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
        /// Drop the writer without committing (a rollback), reopen.
        DropReopen,
        /// `close` (commits), reopen.
        CloseReopen,
        /// Commit, drop, check a read-only handle (and that it refuses
        /// writes), reopen.
        ReadOnlyRound,
        /// While the writer is open, another open must fail with `Locked`.
        SecondOpen,
        /// Repair; needs nothing uncommitted.
        Repair {
            truncate: bool,
        },
        /// Shrink the file to the committed records; needs nothing
        /// uncommitted and no reader.
        Compact,
        /// Open a `RawReader` beside the writer (replacing any open one).
        ReaderOpen,
        /// `refresh` the reader (if open) and compare it with the commit.
        ReaderRefresh,
        ReaderClose,
        /// Discard every change since the last commit.
        Rollback,
        /// Fold the log into the data file.
        Checkpoint,
        /// `simulate_crash` (what a `SIGKILL` leaves), then (`read_first`)
        /// a read-only handle and a `RawReader` on the unreplayed log, then
        /// a writer, which replays it.
        Crash {
            read_first: bool,
        },
    }

    /// Variants of `Op`.
    pub const OP_VARIANTS: u32 = 22;

    impl Op {
        pub fn name(&self) -> &'static str {
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
                Op::Rollback => "rollback",
                Op::Checkpoint => "checkpoint",
                Op::Crash { .. } => "crash+reopen",
            }
        }

        /// The variant's position in the declaration (its encoding).
        fn index(&self) -> u32 {
            match self {
                Op::Push(_) => 0,
                Op::Extend { .. } => 1,
                Op::Grow { .. } => 2,
                Op::Set { .. } => 3,
                Op::Update { .. } => 4,
                Op::Get { .. } => 5,
                Op::Runs { .. } => 6,
                Op::Reserve(_) => 7,
                Op::Commit => 8,
                Op::Verify => 9,
                Op::DropReopen => 10,
                Op::CloseReopen => 11,
                Op::ReadOnlyRound => 12,
                Op::SecondOpen => 13,
                Op::Repair { .. } => 14,
                Op::Compact => 15,
                Op::ReaderOpen => 16,
                Op::ReaderRefresh => 17,
                Op::ReaderClose => 18,
                Op::Rollback => 19,
                Op::Checkpoint => 20,
                Op::Crash { .. } => 21,
            }
        }

        fn encode(&self, out: &mut Vec<u8>) {
            variant(out, self.index(), OP_VARIANTS);
            match *self {
                Op::Push(v) => out.extend(v.to_le_bytes()),
                Op::Extend { n, seed, slice } => {
                    out.push(n);
                    out.extend(seed.to_le_bytes());
                    out.push(slice as u8);
                }
                Op::Grow { k, seed } => {
                    out.push(k);
                    out.extend(seed.to_le_bytes());
                }
                Op::Set { i, v } => {
                    out.extend(i.to_le_bytes());
                    out.extend(v.to_le_bytes());
                }
                Op::Update { i, v, guard } => {
                    out.extend(i.to_le_bytes());
                    out.extend(v.to_le_bytes());
                    out.push(guard as u8);
                }
                Op::Get { i } => out.extend(i.to_le_bytes()),
                Op::Runs { start, len } => {
                    out.extend(start.to_le_bytes());
                    out.extend(len.to_le_bytes());
                }
                Op::Reserve(n) => out.extend(n.to_le_bytes()),
                Op::Repair { truncate } => out.push(truncate as u8),
                Op::Crash { read_first } => out.push(read_first as u8),
                Op::Commit
                | Op::Verify
                | Op::DropReopen
                | Op::CloseReopen
                | Op::ReadOnlyRound
                | Op::SecondOpen
                | Op::Compact
                | Op::ReaderOpen
                | Op::ReaderRefresh
                | Op::ReaderClose
                | Op::Rollback
                | Op::Checkpoint => {}
            }
        }
    }

    /// The bytes `arbitrary`'s derived enums decode as variant `k` of `n`
    /// (a `u32` scaled by `n`, the high 32 bits).
    fn variant(out: &mut Vec<u8>, k: u32, n: u32) {
        let v = ((k as u64) << 32).div_ceil(n as u64) as u32;
        out.extend(v.to_le_bytes());
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Input {
        pub kind: Kind,
        pub append_only: bool,
        pub initial_capacity: u16,
        /// `Options::log_size(64 KiB)`, the smallest: commits checkpoint
        /// inside `commit` often.
        pub small_log: bool,
        pub ops: Vec<Op>,
    }

    /// Operations follow each other until the input (or `MAX_OPS`) ends.
    /// The derived `Vec` decoding would put a continue-flag byte before
    /// each element, so random bytes would average one operation.
    impl<'a> Arbitrary<'a> for Input {
        fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
            let kind = u.arbitrary()?;
            let append_only = u.arbitrary()?;
            let initial_capacity = u.arbitrary()?;
            let small_log = u.arbitrary()?;
            let mut ops = Vec::new();
            while !u.is_empty() && ops.len() < MAX_OPS {
                ops.push(u.arbitrary()?);
            }
            Ok(Input {
                kind,
                append_only,
                initial_capacity,
                small_log,
                ops,
            })
        }
    }

    impl Input {
        /// Bytes that decode to `self` (at most `MAX_OPS` operations).
        pub fn encode(&self) -> Vec<u8> {
            assert!(self.ops.len() <= MAX_OPS);
            let mut out = Vec::new();
            let k = Kind::ALL.iter().position(|&k| k == self.kind).unwrap();
            variant(&mut out, k as u32, Kind::ALL.len() as u32);
            out.push(self.append_only as u8);
            out.extend(self.initial_capacity.to_le_bytes());
            out.push(self.small_log as u8);
            for op in &self.ops {
                op.encode(&mut out);
            }
            out
        }

        /// Decodes bytes as the target does.
        pub fn decode(bytes: &[u8]) -> arbitrary::Result<Input> {
            Input::arbitrary_take_rest(Unstructured::new(bytes))
        }
    }
}
