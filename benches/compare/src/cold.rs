//! `--cold`: random gets and a full scan with the file's pages dropped
//! from the page cache before every pass (issue 13): recmap `Store::get`
//! (default `Random` access pattern) and `Store::iter`, a `Reader`
//! snapshot's `read_range` and `Store::read_range` in 1 MiB pieces (scans
//! only), raw memmap2
//! read-only maps with and without `MADV_RANDOM`, and `pread`; the scan's
//! yardstick is the device's sequential rate, read as a plain `read()` of
//! the same file in 1 MiB pieces after `POSIX_FADV_SEQUENTIAL`. Device bytes
//! come from `/sys/dev/block/MAJ:MIN/stat` (sectors read), so other
//! processes' reads count too: the run notes the idle rate.
//!
//! LMDB (heed) and SQLite (rusqlite) read the same records from their own
//! files: each pass opens the environment / connection afresh (so no
//! mapping and no SQLite page cache outlives a pass) after the file's pages
//! were dropped. Keys are the indices (big-endian for LMDB, the rowid for
//! SQLite); the SQLite file is left in rollback-journal mode with its WAL
//! checkpointed away, so a pass reads only `cold.db`.

use crate::harness::{Cx, Rec, Result, REC};
use crate::measure;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

/// Random gets per cold pass, and passes per method.
const GETS: usize = 2_000;
const PASSES: usize = 3;

fn fadvise(f: &File, advice: libc::c_int) {
    // SAFETY: posix_fadvise only reads its integer arguments; `f` is open.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, advice) };
}

/// Writes back and drops `path`'s cached pages (no mapping of it may be
/// alive: mapped pages stay cached).
fn drop_cache(path: &Path) -> Result<()> {
    let f = File::open(path)?;
    f.sync_all()?;
    fadvise(&f, libc::POSIX_FADV_DONTNEED);
    Ok(())
}

struct Line {
    method: &'static str,
    ns_per_get: f64,
    bytes_per_get: Option<f64>,
    scan_gbps: Option<f64>,
    scan_bytes: Option<f64>,
}

pub fn run(cx: &mut Cx) -> Result<String> {
    let dev = measure::DeviceWrites::for_path(&cx.path(""));
    let n = cx.n();
    let bytes = n as f64 * REC as f64;
    let path = cx.path("cold.rmap");
    let raw = cx.path("cold.raw");
    // The same records, as a store and as a plain file.
    {
        let mut s = recmap::Options::new()
            .create_new(true)
            .initial_capacity(n)
            .open::<Rec>(&path)?;
        for batch in cx.data.chunks((4 << 20) / REC) {
            s.extend_from_slice(batch)?;
        }
        s.close()?;
        let mut f = File::create(&raw)?;
        for c in bytemuck::cast_slice::<Rec, u8>(&cx.data).chunks(2 << 20) {
            std::io::Write::write_all(&mut f, c)?;
        }
        f.sync_all()?;
    }
    let idx = measure::random_indices(GETS as u64, n, measure::SEED ^ 0xC01D);
    let want: u64 = idx
        .iter()
        .fold(0, |a, &i| a.wrapping_add(Rec::new(i).get_value()));
    let read = || dev.as_ref().and_then(|d| d.read_bytes());
    // One cold pass of `f` (which opens what it reads, so nothing stays
    // mapped between passes): (ns per op, device bytes per op).
    let pass = |file: &Path,
                ops: usize,
                f: &mut dyn FnMut() -> Result<u64>,
                want: Option<u64>|
     -> Result<(f64, Option<f64>)> {
        drop_cache(file)?;
        let before = read();
        let t = Instant::now();
        let sum = f()?;
        let ns = t.elapsed().as_nanos() as f64 / ops as f64;
        if let Some(w) = want {
            if sum != w {
                return Err(format!("cold pass over {} read wrong data", file.display()).into());
            }
        }
        let b = before.zip(read()).map(|(a, b)| (b - a) as f64 / ops as f64);
        Ok((ns, b))
    };
    let median_of = |v: &mut Vec<(f64, Option<f64>)>| -> (f64, Option<f64>) {
        let mut ns: Vec<f64> = v.iter().map(|x| x.0).collect();
        let mut b: Vec<f64> = v.iter().filter_map(|x| x.1).collect();
        (
            measure::median(&mut ns),
            (!b.is_empty()).then(|| measure::median(&mut b)),
        )
    };
    let mut lines = Vec::new();

    // recmap.
    eprintln!("[cold] recmap: {PASSES} passes of {GETS} cold random gets, and cold scans");
    let mut gets = Vec::new();
    let mut scans = Vec::new();
    for _ in 0..PASSES {
        gets.push(pass(
            &path,
            GETS,
            &mut || {
                let s = recmap::Store::<Rec>::open_read_only(&path)?;
                Ok(idx.iter().fold(0u64, |a, &i| {
                    a.wrapping_add(s.get(i).expect("i < n").get_value())
                }))
            },
            Some(want),
        )?);
        scans.push(pass(
            &path,
            1,
            &mut || {
                let s = recmap::Store::<Rec>::open_read_only(&path)?;
                Ok(s.iter().fold(0u64, |a, r| a.wrapping_add(r.a)))
            },
            None,
        )?);
    }
    let (g, gb) = median_of(&mut gets);
    let (sc, sb) = median_of(&mut scans);
    lines.push(Line {
        method: "recmap Store::get / Store::iter",
        ns_per_get: g,
        bytes_per_get: gb,
        scan_gbps: Some(bytes / sc),
        scan_bytes: sb,
    }); // bytes per ns = GB/s

    // recmap's bulk read: a Reader snapshot's read_range into a 1 MiB buffer.
    let mut scans = Vec::new();
    for _ in 0..PASSES {
        scans.push(pass(
            &path,
            1,
            &mut || {
                let mut r = recmap::Reader::<Rec>::open(&path)?;
                let snap = r.snapshot()?;
                let mut buf = vec![Rec::new(0); (1 << 20) / REC];
                let (mut i, mut sum) = (0u64, 0u64);
                while i < n {
                    let got = snap.read_range(i, &mut buf)?;
                    sum = buf[..got].iter().fold(sum, |a, r| a.wrapping_add(r.a));
                    i += got as u64;
                }
                Ok(sum)
            },
            None,
        )?);
    }
    let (sc, sb) = median_of(&mut scans);
    lines.push(Line {
        method: "recmap Reader snapshot read_range (1 MiB)",
        ns_per_get: f64::NAN,
        bytes_per_get: None,
        scan_gbps: Some(bytes / sc),
        scan_bytes: sb,
    });

    // The same bulk copy through the store itself: Store::read_range.
    let mut scans = Vec::new();
    for _ in 0..PASSES {
        scans.push(pass(
            &path,
            1,
            &mut || {
                let s = recmap::Store::<Rec>::open_read_only(&path)?;
                let mut buf = vec![Rec::new(0); (1 << 20) / REC];
                let (mut i, mut sum) = (0u64, 0u64);
                while i < n {
                    let got = s.read_range(i, &mut buf)?;
                    sum = buf[..got].iter().fold(sum, |a, r| a.wrapping_add(r.a));
                    i += got as u64;
                }
                Ok(sum)
            },
            None,
        )?);
    }
    let (sc, sb) = median_of(&mut scans);
    lines.push(Line {
        method: "recmap Store::read_range (1 MiB)",
        ns_per_get: f64::NAN,
        bytes_per_get: None,
        scan_gbps: Some(bytes / sc),
        scan_bytes: sb,
    });

    // memmap2 read-only maps of the plain file, with and without MADV_RANDOM.
    for (method, random) in [
        ("memmap2 Mmap (read-only)", false),
        ("memmap2 Mmap + MADV_RANDOM", true),
    ] {
        eprintln!("[cold] {method}");
        let mut gets = Vec::new();
        for _ in 0..PASSES {
            gets.push(pass(
                &raw,
                GETS,
                &mut || {
                    let f = File::open(&raw)?;
                    // SAFETY: nothing writes or truncates the file while mapped.
                    let m = unsafe { memmap2::Mmap::map(&f)? };
                    if random {
                        m.advise(memmap2::Advice::Random)?;
                    }
                    let recs: &[Rec] = bytemuck::cast_slice(&m[..]);
                    Ok(idx
                        .iter()
                        .fold(0u64, |a, &i| a.wrapping_add(recs[i as usize].get_value())))
                },
                Some(want),
            )?);
        }
        let (g, gb) = median_of(&mut gets);
        lines.push(Line {
            method,
            ns_per_get: g,
            bytes_per_get: gb,
            scan_gbps: None,
            scan_bytes: None,
        });
    }

    // pread, and the device's sequential rate (read() in 1 MiB pieces).
    eprintln!("[cold] pread, and read() of the whole file");
    let mut gets = Vec::new();
    let mut scans = Vec::new();
    for _ in 0..PASSES {
        gets.push(pass(
            &raw,
            GETS,
            &mut || {
                use std::os::unix::fs::FileExt;
                let f = File::open(&raw)?;
                fadvise(&f, libc::POSIX_FADV_RANDOM);
                let mut r = Rec::new(0);
                let mut a = 0u64;
                for &i in &idx {
                    f.read_exact_at(bytemuck::bytes_of_mut(&mut r), i * REC as u64)?;
                    a = a.wrapping_add(r.get_value());
                }
                Ok(a)
            },
            Some(want),
        )?);
        scans.push(pass(
            &raw,
            1,
            &mut || {
                use std::io::Read;
                let mut f = File::open(&raw)?;
                fadvise(&f, libc::POSIX_FADV_SEQUENTIAL);
                let mut buf = vec![0u8; 1 << 20];
                let mut a = 0u64;
                loop {
                    let k = f.read(&mut buf)?;
                    if k == 0 {
                        break;
                    }
                    a = a.wrapping_add(
                        buf[..k]
                            .iter()
                            .step_by(4096)
                            .map(|&b| b as u64)
                            .sum::<u64>(),
                    );
                }
                Ok(a)
            },
            None,
        )?);
    }
    let (g, gb) = median_of(&mut gets);
    let (sc, sb) = median_of(&mut scans);
    lines.push(Line {
        method: "pread / read() 1 MiB",
        ns_per_get: g,
        bytes_per_get: gb,
        scan_gbps: Some(bytes / sc),
        scan_bytes: sb,
    });
    // LMDB: one environment, loaded once and closed; every pass reopens it.
    eprintln!("[cold] LMDB (heed)");
    let lmdb_dir = cx.path("cold-lmdb");
    let lmdb_file = lmdb_dir.join("data.mdb");
    let map_size = (n as usize * REC * 3 + (1 << 30)).next_multiple_of(1 << 20);
    type LmdbDb = heed::Database<heed::types::U64<heed::byteorder::BE>, heed::types::Bytes>;
    let open_lmdb = || -> Result<(heed::Env, LmdbDb)> {
        // SAFETY: the environment is private to this process, and every
        // earlier handle to it was dropped before this open.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .map_size(map_size)
                .open(&lmdb_dir)?
        };
        let rtxn = env.read_txn()?;
        let db: LmdbDb = env.open_database(&rtxn, None)?.ok_or("lmdb: no database")?;
        drop(rtxn);
        Ok((env, db))
    };
    {
        std::fs::create_dir_all(&lmdb_dir)?;
        // SAFETY: as above; this is the first handle.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .map_size(map_size)
                .open(&lmdb_dir)?
        };
        let mut wtxn = env.write_txn()?;
        let db: LmdbDb = env.create_database(&mut wtxn, None)?;
        for r in &cx.data {
            db.put_with_flags(
                &mut wtxn,
                heed::PutFlags::APPEND,
                &r.a,
                bytemuck::bytes_of(r),
            )?;
        }
        wtxn.commit()?;
        env.prepare_for_closing().wait();
    }
    let mut gets = Vec::new();
    let mut scans = Vec::new();
    for _ in 0..PASSES {
        gets.push(pass(
            &lmdb_file,
            GETS,
            &mut || {
                let (env, db) = open_lmdb()?;
                let sum = {
                    let rtxn = env.read_txn()?;
                    let mut a = 0u64;
                    for &i in &idx {
                        let v = db.get(&rtxn, &i)?.ok_or("lmdb: missing key")?;
                        a = a.wrapping_add(crate::harness::read_rec(v).get_value());
                    }
                    a
                };
                env.prepare_for_closing().wait();
                Ok(sum)
            },
            Some(want),
        )?);
        scans.push(pass(
            &lmdb_file,
            1,
            &mut || {
                let (env, db) = open_lmdb()?;
                let sum = {
                    let rtxn = env.read_txn()?;
                    let mut a = 0u64;
                    for kv in db.iter(&rtxn)? {
                        a = a.wrapping_add(crate::harness::sum_a_bytes(kv?.1));
                    }
                    a
                };
                env.prepare_for_closing().wait();
                Ok(sum)
            },
            None,
        )?);
    }
    let (g, gb) = median_of(&mut gets);
    let (sc, sb) = median_of(&mut scans);
    lines.push(Line {
        method: "LMDB (heed) get / cursor",
        ns_per_get: g,
        bytes_per_get: gb,
        scan_gbps: Some(bytes / sc),
        scan_bytes: sb,
    });
    cx.remove(&lmdb_dir);

    // SQLite: loaded once; every pass opens a new connection (an empty page cache).
    eprintln!("[cold] SQLite (rusqlite)");
    let db_path = cx.path("cold.db");
    {
        let mut c = rusqlite::Connection::open(&db_path)?;
        c.execute_batch("CREATE TABLE r(id INTEGER PRIMARY KEY, v BLOB NOT NULL);")?;
        let tx = c.transaction()?;
        {
            let mut ins = tx.prepare("INSERT INTO r(id, v) VALUES (?1, ?2)")?;
            for r in &cx.data {
                ins.execute(rusqlite::params![r.a as i64, bytemuck::bytes_of(r)])?;
            }
        }
        tx.commit()?;
    }
    let mut gets = Vec::new();
    let mut scans = Vec::new();
    for _ in 0..PASSES {
        gets.push(pass(
            &db_path,
            GETS,
            &mut || {
                let c = rusqlite::Connection::open_with_flags(
                    &db_path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                let mut st = c.prepare("SELECT v FROM r WHERE id = ?1")?;
                let mut a = 0u64;
                for &i in &idx {
                    let r = st.query_row([i as i64], |row| {
                        Ok(crate::harness::read_rec(row.get_ref(0)?.as_blob()?))
                    })?;
                    a = a.wrapping_add(r.get_value());
                }
                Ok(a)
            },
            Some(want),
        )?);
        scans.push(pass(
            &db_path,
            1,
            &mut || {
                let c = rusqlite::Connection::open_with_flags(
                    &db_path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                let mut st = c.prepare("SELECT v FROM r")?;
                let mut rows = st.query([])?;
                let mut a = 0u64;
                while let Some(row) = rows.next()? {
                    a = a.wrapping_add(crate::harness::sum_a_bytes(row.get_ref(0)?.as_blob()?));
                }
                Ok(a)
            },
            None,
        )?);
    }
    let (g, gb) = median_of(&mut gets);
    let (sc, sb) = median_of(&mut scans);
    lines.push(Line {
        method: "SQLite (rusqlite) SELECT by rowid / full SELECT",
        ns_per_get: g,
        bytes_per_get: gb,
        scan_gbps: Some(bytes / sc),
        scan_bytes: sb,
    });
    cx.remove(&db_path);

    cx.remove(&path);
    cx.remove(&raw);
    for suffix in ["-wal", "-lock"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        cx.remove(Path::new(&p));
    }

    let mut out = format!(
        "### Cold (page cache dropped before every pass)\n\n{PASSES} passes each, medians; {GETS} random gets a pass; device bytes from {} (every process's reads)\n\n| method | cold random get | device KiB read per get | cold scan | device bytes read by the scan |\n|---|---:|---:|---:|---:|\n",
        dev.as_ref().map_or("no device counter".to_string(), |d| d.device_name())
    );
    let kib = |b: Option<f64>| b.map_or("?".into(), |b| format!("{:.1}", b / 1024.0));
    for l in &lines {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            l.method,
            if l.ns_per_get.is_nan() {
                "—".to_string()
            } else {
                format!("{:.1} µs", l.ns_per_get / 1e3)
            },
            kib(l.bytes_per_get),
            l.scan_gbps.map_or("—".into(), |g| format!("{g:.2} GB/s")),
            l.scan_bytes
                .map_or("—".into(), |b| format!("{:.0} MB", b / 1e6)),
        ));
    }
    let re = &lines[0];
    let pr = lines
        .iter()
        .find(|l| l.method.starts_with("pread"))
        .expect("the pread line is pushed above");
    let bulk = &lines[1];
    out.push_str(&format!(
        "\nTargets (issue 13): cold random get {:.2}× pread's time (≤ 1.2×) and {} its bytes per get (≤ 2×); cold scan {} the device's sequential read (≥ 0.9×) through `Store::iter` (zero-copy, faults) and {} through a snapshot's `read_range` (a copy, `pread`).\n\n",
        re.ns_per_get / pr.ns_per_get,
        re.bytes_per_get.zip(pr.bytes_per_get).map_or("?".into(), |(a, b)| format!("{:.2}×", a / b.max(1.0))),
        re.scan_gbps.zip(pr.scan_gbps).map_or("?".into(), |(a, b)| format!("{:.2}×", a / b)),
        bulk.scan_gbps.zip(pr.scan_gbps).map_or("?".into(), |(a, b)| format!("{:.2}×", a / b)),
    ));
    Ok(out)
}
