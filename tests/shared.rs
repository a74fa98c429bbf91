//! Named shared stores: create, open by name, remove; missing, duplicate and
//! invalid names; and the two-process flag demo (`examples/ipc_flag.rs`) run
//! as real processes.

use recmap::shared::{remove_shared, shared_exists, shared_path};
use recmap::{Error, Reader, Store};
mod common;
use common::spawn::Launch;

recmap::record! {
    pub struct Flag { pub set: u32, pub by: u32 }
}

fn name(tag: &str) -> String {
    format!("recmap-test-{tag}-{}", std::process::id())
}

#[test]
fn create_open_remove() {
    let _serial = serial();
    let n = name("life");
    let mut s = Store::<Flag>::create_shared(&n).unwrap();
    s.push(&Flag { set: 7, by: 1 }).unwrap();
    s.commit().unwrap();
    assert!(shared_exists(&n).unwrap());
    let path = shared_path(&n).unwrap();
    if cfg!(target_os = "linux") {
        assert!(path.starts_with("/dev/shm"), "{path:?}");
    }
    // A duplicate name is refused; the existing store is untouched.
    assert!(matches!(
        Store::<Flag>::create_shared(&n),
        Err(Error::AlreadyExists { .. })
    ));
    let r = Reader::<Flag>::open_shared(&n).unwrap();
    assert_eq!(r.get(0).unwrap().unwrap().set, 7);
    // The reader keeps the store alive on every platform: the writer can
    // close and another open it by name.
    drop(s);
    let s = Store::<Flag>::open_shared(&n).unwrap();
    assert_eq!(s.len(), 1);
    drop(s);
    drop(r);
    if cfg!(windows) {
        // As .NET's named maps: freed with its last handle.
        assert!(!shared_exists(&n).unwrap());
        assert!(!path.exists(), "the last handle removes the files");
        assert!(matches!(
            Store::<Flag>::open_shared(&n),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(remove_shared(&n), Err(Error::NotFound { .. })));
    } else {
        // Under /dev/shm: kept until removed.
        assert!(shared_exists(&n).unwrap());
        let s = Store::<Flag>::open_shared(&n).unwrap();
        assert_eq!(s.len(), 1);
        drop(s);
        remove_shared(&n).unwrap();
    }
    assert!(!shared_exists(&n).unwrap());
    assert!(!path.exists());
    // The name can be taken again.
    let s = Store::<Flag>::create_shared(&n).unwrap();
    assert_eq!(s.len(), 0);
    drop(s);
    let _ = remove_shared(&n);
}

/// `Options::shared_global`: on Windows the section is named in `Global\`,
/// and opening finds it there; one name is one store in both namespaces.
/// Elsewhere the option changes nothing.
#[test]
fn a_global_name_is_found_and_is_the_same_store() {
    let _serial = serial();
    let n = name("global");
    let mut s = recmap::Options::new()
        .shared_global(true)
        .create_shared::<Flag>(&n)
        .unwrap();
    s.push(&Flag { set: 1, by: 3 }).unwrap();
    s.commit().unwrap();
    assert!(shared_exists(&n).unwrap());
    let r = Reader::<Flag>::open_shared(&n).unwrap();
    assert_eq!(r.get(0).unwrap().unwrap().by, 3);
    assert!(matches!(
        Store::<Flag>::create_shared(&n),
        Err(Error::AlreadyExists { .. })
    ));
    drop(s);
    drop(r);
    if cfg!(windows) {
        assert!(!shared_exists(&n).unwrap(), "freed with its last handle");
    } else {
        remove_shared(&n).unwrap();
    }
    assert!(!shared_path(&n).unwrap().exists());
}

/// Files at a name's path that no live handle anchors (every process of the
/// store died) are not a store to open on Windows, and `create_shared`
/// reclaims them; elsewhere they are the store.
#[test]
fn files_left_without_a_live_handle() {
    let _serial = serial();
    let n = name("left");
    let path = shared_path(&n).unwrap();
    // What a crash of every process leaves: the files, no handle.
    let mut s = Store::<Flag>::create(&path).unwrap();
    s.push(&Flag { set: 1, by: 9 }).unwrap();
    s.commit().unwrap();
    drop(s);
    assert!(path.exists());
    if cfg!(windows) {
        assert!(!shared_exists(&n).unwrap());
        assert_not_found(&n);
        let s = Store::<Flag>::create_shared(&n).unwrap();
        assert_eq!(s.len(), 0, "a new store, not the one left behind");
        drop(s);
        assert!(!path.exists());
    } else {
        assert!(shared_exists(&n).unwrap());
        assert_eq!(Store::<Flag>::open_shared(&n).unwrap().len(), 1);
        assert!(matches!(
            Store::<Flag>::create_shared(&n),
            Err(Error::AlreadyExists { .. })
        ));
        remove_shared(&n).unwrap();
    }
}

#[test]
fn missing_names() {
    let _serial = serial();
    let n = name("missing");
    assert_not_found(&n);
    assert!(matches!(remove_shared(&n), Err(Error::NotFound { .. })));
}

#[test]
fn invalid_names() {
    let _serial = serial();
    let long = "x".repeat(201);
    for bad in [
        "",
        "a/b",
        "../etc",
        ".hidden",
        "sp ace",
        "tab\t",
        "nul\0",
        "ünï",
        long.as_str(),
        "a\\b",
    ] {
        for r in [
            Store::<Flag>::create_shared(bad).map(drop),
            Store::<Flag>::open_shared(bad).map(drop),
            Reader::<Flag>::open_shared(bad).map(drop),
            remove_shared(bad),
        ] {
            match r {
                Err(Error::InvalidName { name, .. }) => assert_eq!(name, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
    assert!(shared_path("ok-name_1.2").is_ok());
}

/// The `examples/ipc_flag` binary, built if this test target was built alone.
fn demo() -> std::path::PathBuf {
    // `cargo test` builds examples next to the test binaries; when only this
    // test target was built, build the example the same way.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let demo = profile_dir
        .join("examples")
        .join(format!("ipc_flag{}", std::env::consts::EXE_SUFFIX));
    if !demo.exists() {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "--example",
                "ipc_flag",
                "--manifest-path",
            ])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(
            cargo.status().unwrap().success(),
            "building examples/ipc_flag.rs failed"
        );
    }
    assert!(demo.exists(), "{} not built", demo.display());
    demo
}

#[test]
fn ipc_flag_demo_runs_as_two_processes() {
    let _serial = serial();
    let demo = demo();
    let n = name("flag");
    let waiter = spawn_waiter(&demo, &n, std::process::Stdio::piped());
    let set = std::process::Command::new(&demo)
        .args(["set", &n])
        .launch_output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("flag set by process"), "{text}");
    assert!(!shared_exists(&n).unwrap(), "the waiter removes the store");
}

/// A process that dies holding the only handle of a store: on Windows the
/// system frees the store with it (the name is free again, and
/// `create_shared` reclaims the files); elsewhere the store stays.
#[test]
fn a_store_whose_only_process_was_killed() {
    let _serial = serial();
    let n = name("killed");
    let mut waiter = spawn_waiter(&demo(), &n, std::process::Stdio::null());
    waiter.kill().unwrap();
    waiter.wait().unwrap();
    if cfg!(windows) {
        // The system closes a dead process's handles, and with the last one
        // frees the section; the files wait for the next create.
        let t = std::time::Instant::now();
        while shared_exists(&n).unwrap() {
            assert!(
                t.elapsed().as_secs() < 20,
                "still live after its process died"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(matches!(
            Reader::<Flag>::open_shared(&n),
            Err(Error::NotFound { .. })
        ));
        let s = Store::<Flag>::create_shared(&n).unwrap();
        assert_eq!(s.len(), 0);
        drop(s);
        assert!(!shared_path(&n).unwrap().exists());
    } else {
        assert!(shared_exists(&n).unwrap());
        let r = Reader::<Flag>::open_shared(&n).unwrap();
        assert_eq!(r.len(), 1, "the flag record the dead process committed");
        drop(r);
        remove_shared(&n).unwrap();
    }
}

/// Neither a writer nor a reader opens the store `name`: `NotFound`.
fn assert_not_found(name: &str) {
    assert!(matches!(
        Store::<Flag>::open_shared(name),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Reader::<Flag>::open_shared(name),
        Err(Error::NotFound { .. })
    ));
}

/// Starts `ipc_flag wait NAME` (which creates the store `name` and waits
/// for its flag) and returns once the store exists.
fn spawn_waiter(
    demo: &std::path::Path,
    name: &str,
    stdout: std::process::Stdio,
) -> std::process::Child {
    let waiter = std::process::Command::new(demo)
        .args(["wait", name])
        .stdout(stdout)
        .launch()
        .unwrap();
    let t = std::time::Instant::now();
    while !shared_exists(name).unwrap() {
        assert!(t.elapsed().as_secs() < 20, "waiter never created the store");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    waiter
}

// Tests in this binary run one at a time: a child process forked by one
// test briefly holds copies of every open descriptor (until it execs), and
// with them the `flock` locks of another test's stores.
use common::serial;
