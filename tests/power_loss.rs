//! Simulated power loss. A process kill keeps the page cache; a power loss
//! does not. The engine's test observer reports every write, sync and length
//! change; the harness keeps the file's *durable image* (as of the last sync)
//! and the writes made since, and at every event builds crash images: the
//! durable image plus an arbitrary subset of the later writes, at 512-byte
//! sector granularity and in any version order, with torn header slots and
//! with a new file length that reached disk before its contents.
//!
//! Every image must open at exactly the last durable header or the one being
//! written; every committed record must be intact; `verify()` must pass for
//! append-only work, and report (never silently accept) every page whose
//! in-place update was in flight.
//!
//! `RECMAP_POWER_SEED` replays a run; `RECMAP_POWER_STEPS` makes it longer.

use recmap::format::{Header, SLOT_LEN, SLOT_OFFSETS};
use recmap::{IoEvent, Problem, Store};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

recmap::record! {
    /// 24 bytes: 170 per page with padding, so the partial last page matters.
    pub struct Rec { pub id: u64, pub version: u64, pub check: u64 }
}

fn rec(id: u64, version: u64) -> Rec {
    Rec {
        id,
        version,
        check: mix(id ^ mix(version)),
    }
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

const SECTOR: u64 = 512;

/// What the writer has told the oracle.
#[derive(Default)]
struct Model {
    /// Values as of the last acknowledged commit.
    acked: Vec<Rec>,
    /// Newest value of every record (including uncommitted appends and updates).
    current: Vec<Rec>,
    /// Values written to committed records since the last acknowledged commit.
    in_flight: HashMap<u64, Vec<Rec>>,
}

struct Sim {
    seed: u64,
    rng: Rng,
    live: File,
    image_path: PathBuf,
    durable: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
    pending_len: Option<u64>,
    /// (generation, count) of the last durable header and of one written since.
    durable_header: (u64, u64),
    pending_header: Option<(u64, u64)>,
    model: Arc<Mutex<Model>>,
    append_only: bool,
    images: u64,
    events: u64,
    reported_pages: u64,
    continued: u64,
}

impl Sim {
    fn on_event(&mut self, ev: &IoEvent) {
        self.events += 1;
        match *ev {
            IoEvent::Write { offset, len } => {
                let mut buf = vec![0u8; len as usize];
                self.live.read_exact_at(&mut buf, offset).unwrap();
                if len >= SLOT_LEN as u64 && SLOT_OFFSETS.contains(&offset) {
                    let slot = SLOT_OFFSETS.iter().position(|&o| o == offset).unwrap();
                    let h = Header::decode(&buf, slot).expect("engine wrote an invalid header");
                    self.pending_header = Some((h.generation, h.record_count));
                }
                self.pending.push((offset, buf));
            }
            IoEvent::SetLen { len } => self.pending_len = Some(len),
            IoEvent::Sync => {
                if let Some(len) = self.pending_len.take() {
                    if len as usize > self.durable.len() {
                        self.durable.resize(len as usize, 0);
                    }
                }
                for (off, data) in self.pending.drain(..) {
                    let end = off as usize + data.len();
                    if end > self.durable.len() {
                        self.durable.resize(end, 0);
                    }
                    self.durable[off as usize..end].copy_from_slice(&data);
                }
                if let Some(h) = self.pending_header.take() {
                    self.durable_header = h;
                }
            }
        }
        let n = if self.pending.is_empty() { 1 } else { 8 };
        for _ in 0..n {
            let img = self.image();
            self.check(&img, ev);
        }
    }

    /// The durable image plus a random choice of what else reached the disk.
    fn image(&mut self) -> Vec<u8> {
        let mut img = self.durable.clone();
        let new_len = self.pending_len.filter(|_| self.rng.chance(2));
        if let Some(l) = new_len {
            img.resize(l as usize, 0);
        }
        if self.pending.is_empty() {
            return img;
        }
        // Per sector, the versions it went through since the last sync.
        let mut versions: HashMap<u64, Vec<usize>> = HashMap::new();
        for (w, (off, data)) in self.pending.iter().enumerate() {
            let first = off / SECTOR;
            let last = (off + data.len() as u64 - 1) / SECTOR;
            for s in first..=last {
                versions.entry(s).or_default().push(w);
            }
        }
        let mode = self.rng.below(4);
        let prefix = self.rng.below(self.pending.len() as u64 + 1) as usize;
        let skip_one = self.rng.below(versions.len() as u64);
        let mut sectors: Vec<u64> = versions.keys().copied().collect();
        sectors.sort_unstable();
        let mut page_choice: HashMap<u64, usize> = HashMap::new();
        for (k, s) in sectors.iter().enumerate() {
            let vs = &versions[s];
            // How many of this sector's writes reached the disk.
            let upto = match mode {
                0 => self.rng.below(vs.len() as u64 + 1) as usize,
                1 => {
                    let page = s * SECTOR / 4096;
                    let n = vs.len();
                    let r = self.rng.below(n as u64 + 1) as usize;
                    (*page_choice.entry(page).or_insert(r)).min(n)
                }
                2 => vs.iter().take_while(|&&w| w < prefix).count(),
                _ => {
                    if k as u64 == skip_one {
                        0
                    } else {
                        vs.len()
                    }
                }
            };
            for &w in &vs[..upto] {
                let (off, data) = &self.pending[w];
                let lo = (s * SECTOR).max(*off);
                let hi = ((s + 1) * SECTOR).min(off + data.len() as u64);
                if hi as usize > img.len() {
                    continue; // the length change did not reach the disk
                }
                img[lo as usize..hi as usize]
                    .copy_from_slice(&data[(lo - off) as usize..(hi - off) as usize]);
            }
        }
        // Sometimes tear a pending header slot inside its sector.
        if self.rng.chance(3) {
            if let Some((off, data)) = self
                .pending
                .iter()
                .rev()
                .find(|(o, d)| d.len() >= SLOT_LEN && SLOT_OFFSETS.contains(o))
            {
                // Anywhere inside the slot and the group list after it.
                let n = data.len();
                let cut = 1 + self.rng.below(n as u64 - 1) as usize;
                let o = *off as usize;
                if self.rng.chance(2) {
                    img[o..o + cut].copy_from_slice(&data[..cut]);
                } else {
                    img[o + cut..o + n].copy_from_slice(&data[cut..]);
                }
            }
        }
        img
    }

    fn fail(&self, ev: &IoEvent, msg: String) -> ! {
        panic!(
            "power-loss image {} after event {} ({ev:?}): {msg}\nreplay with RECMAP_POWER_SEED={}",
            self.images, self.events, self.seed
        );
    }

    fn check(&mut self, img: &[u8], ev: &IoEvent) {
        self.images += 1;
        std::fs::write(&self.image_path, img).unwrap();
        let store = match Store::<Rec>::open_read_only(&self.image_path) {
            Ok(s) => s,
            Err(e) => self.fail(ev, format!("open failed: {e}")),
        };
        let (g, n) = (store.generation(), store.len());
        let ok_header = (g, n) == self.durable_header || Some((g, n)) == self.pending_header;
        if !ok_header {
            self.fail(
                ev,
                format!(
                    "opened at generation {g} with {n} records; durable {:?}, in flight {:?}",
                    self.durable_header, self.pending_header
                ),
            );
        }
        let report = store.verify().unwrap();
        let model = self.model.lock().unwrap();
        if n as usize > model.current.len() {
            self.fail(ev, format!("{n} records, more than were ever written"));
        }
        let reported: HashSet<u64> = report
            .problems
            .iter()
            .map(|p| match p {
                Problem::PageChecksum { group, .. } => *group,
                other => self.fail(ev, format!("unexpected problem: {other}")),
            })
            .collect();
        if self.append_only && !report.is_ok() {
            self.fail(
                ev,
                format!("append-only work, but verify found {:?}", report.problems),
            );
        }
        let per_page = 4096 / 24;
        for &grp in &reported {
            let touched =
                (grp * per_page..(grp + 1) * per_page).any(|i| model.in_flight.contains_key(&i));
            if !touched {
                self.fail(
                    ev,
                    format!("page {grp} reported but no update of it was in flight"),
                );
            }
        }
        self.reported_pages += reported.len() as u64;
        for i in 0..n {
            let got = *store.get(i).unwrap();
            let acked = model.acked.get(i as usize);
            let fine = Some(&got) == acked
                || got == model.current[i as usize]
                || model.in_flight.get(&i).is_some_and(|v| v.contains(&got))
                || reported.contains(&(i / per_page));
            if !fine {
                self.fail(ev, format!("record {i} is {got:?}, acked {acked:?}"));
            }
        }
        drop(model);
        // Now and then, continue from the image as a writer.
        if self.rng.chance(16) {
            drop(store);
            let mut w = Store::<Rec>::open(&self.image_path).unwrap();
            let base = w.len();
            w.extend((base..base + 300).map(|i| rec(i, 99))).unwrap();
            w.commit().unwrap();
            drop(w);
            let r = Store::<Rec>::open_read_only(&self.image_path).unwrap();
            assert_eq!(r.len(), base + 300);
            assert_eq!(*r.get(base + 299).unwrap(), rec(base + 299, 99));
            self.continued += 1;
        }
    }
}

fn run(append_only: bool, seed: u64, steps: u64) -> (u64, u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.rmap");
    let mut store = recmap::Options::new()
        .create_new(true)
        .chunk_size(64 << 10)
        .open::<Rec>(&path)
        .unwrap();
    let durable = std::fs::read(&path).unwrap();
    let model = Arc::new(Mutex::new(Model::default()));
    let sim = Arc::new(Mutex::new(Sim {
        seed,
        rng: Rng(seed | 1),
        live: File::open(&path).unwrap(),
        image_path: dir.path().join("image.rmap"),
        durable,
        pending: Vec::new(),
        pending_len: None,
        durable_header: (store.generation(), 0),
        pending_header: None,
        model: model.clone(),
        append_only,
        images: 0,
        events: 0,
        reported_pages: 0,
        continued: 0,
    }));
    let s2 = sim.clone();
    store
        .raw_mut()
        .set_io_observer(Some(Box::new(move |ev| s2.lock().unwrap().on_event(ev))));
    let mut rng = Rng(mix(seed) | 1);
    for step in 0..steps {
        let len = store.len();
        // The model learns of every write before the engine makes it: the
        // observer checks crash images in the middle of the engine's calls.
        match rng.below(if append_only { 3 } else { 5 }) {
            0 => {
                let k = 1 + rng.below(4);
                for i in len..len + k {
                    model.lock().unwrap().current.push(rec(i, 0));
                    store.push(&rec(i, 0)).unwrap();
                }
            }
            1 | 2 => {
                let max = if rng.chance(8) { 3000 } else { 300 };
                let k = 1 + rng.below(max);
                let new: Vec<Rec> = (len..len + k).map(|i| rec(i, 0)).collect();
                model.lock().unwrap().current.extend_from_slice(&new);
                store.extend(new).unwrap();
            }
            _ if len > 0 => {
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(len);
                    let v = rec(i, step + 1);
                    {
                        let mut m = model.lock().unwrap();
                        m.current[i as usize] = v;
                        m.in_flight.entry(i).or_default().push(v);
                    }
                    store.set(i, &v).unwrap();
                }
            }
            _ => {}
        }
        if rng.chance(2) {
            store.commit().unwrap();
            let mut m = model.lock().unwrap();
            m.acked = m.current.clone();
            m.in_flight.clear();
        }
    }
    store.commit().unwrap();
    let s = sim.lock().unwrap();
    (s.images, s.events, s.reported_pages, s.continued)
}

fn seed() -> u64 {
    std::env::var("RECMAP_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn steps() -> u64 {
    std::env::var("RECMAP_POWER_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}

#[test]
fn power_loss_append_only() {
    let seed = seed();
    eprintln!("power_loss_append_only: RECMAP_POWER_SEED={seed}");
    let (images, events, reported, continued) = run(true, seed, steps());
    eprintln!("{images} images from {events} events, {continued} continued as writer");
    assert!(images >= 1000, "only {images} images");
    assert_eq!(reported, 0);
}

#[test]
fn power_loss_with_in_place_updates() {
    let seed = seed();
    eprintln!("power_loss_with_in_place_updates: RECMAP_POWER_SEED={seed}");
    let (images, events, reported, continued) = run(false, seed, steps());
    eprintln!(
        "{images} images from {events} events, {reported} pages reported, {continued} continued"
    );
    assert!(images >= 1000, "only {images} images");
}
