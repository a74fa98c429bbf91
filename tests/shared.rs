//! Named shared stores: create, open by name, remove; missing, duplicate and
//! invalid names; and the two-process flag demo (`examples/ipc_flag.rs`) run
//! as real processes.

use recmap::shared::{remove_shared, shared_exists, shared_path};
use recmap::{Error, Reader, Store};

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
    drop(r);
    drop(s);
    let s = Store::<Flag>::open_shared(&n).unwrap();
    assert_eq!(s.len(), 1);
    drop(s);
    remove_shared(&n).unwrap();
    assert!(!shared_exists(&n).unwrap());
    assert!(!path.exists());
}

#[test]
fn missing_names() {
    let _serial = serial();
    let n = name("missing");
    assert!(matches!(
        Store::<Flag>::open_shared(&n),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Reader::<Flag>::open_shared(&n),
        Err(Error::NotFound { .. })
    ));
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

#[test]
fn ipc_flag_demo_runs_as_two_processes() {
    let _serial = serial();
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
    let n = name("flag");
    let waiter = std::process::Command::new(&demo)
        .args(["wait", &n])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !shared_exists(&n).unwrap() {
        assert!(t.elapsed().as_secs() < 20, "waiter never created the store");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let set = std::process::Command::new(&demo)
        .args(["set", &n])
        .output()
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

/// Tests in this binary run one at a time: a child process forked by one
/// test briefly holds copies of every open descriptor (until it execs), and
/// with them the `flock` locks of another test's stores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
