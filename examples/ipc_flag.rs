//! The classic two-process shared-memory demo, with a named recmap store:
//! one process creates a named store holding a flag record and waits until
//! the flag is set; another process opens the store by name and sets it.
//!
//! ```sh
//! cargo run --example ipc_flag -- wait demo    # terminal 1: creates "demo", waits
//! cargo run --example ipc_flag -- set demo     # terminal 2: sets the flag
//! cargo run --example ipc_flag                 # both, as two child processes
//! ```
//!
//! The waiting side prints `flag set by process PID` and removes the store
//! (on Windows the system frees it with its last handle).

use recmap::{Reader, Store};
use std::time::Duration;

recmap::record! {
    /// The shared flag: `set` is 0 or 1, `by` the pid of the setter.
    pub struct Flag { pub set: u32, pub by: u32 }
}

fn wait(name: &str) -> Result<(), recmap::Error> {
    let mut store = Store::<Flag>::create_shared(name)?;
    store.push(&Flag { set: 0, by: 0 })?;
    store.commit()?;
    // The reader keeps the store alive (on Windows a named store is freed
    // with its last handle, as .NET's named maps are).
    let mut reader = Reader::<Flag>::open_shared(name)?;
    store.close()?; // release the writer lock for the other process
    println!("waiting on shared store {name:?}");
    let result = loop {
        let flag = reader.get(0)?.expect("the flag record exists");
        if flag.set == 1 {
            break flag;
        }
        let seen = reader.generation();
        reader.wait_for_commit(seen, Duration::from_secs(30))?;
    };
    println!("flag set by process {}", result.by);
    drop(reader);
    // Windows freed it with the reader, its last handle; elsewhere it stays
    // until removed.
    match recmap::remove_shared(name) {
        Ok(()) | Err(recmap::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn set(name: &str) -> Result<(), recmap::Error> {
    let mut store = recmap::Options::new()
        .wait_for_lock(true)
        .open_shared::<Flag>(name)?;
    store.set(
        0,
        &Flag {
            set: 1,
            by: std::process::id(),
        },
    )?;
    store.close()?;
    println!("set the flag in {name:?}");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["wait", name] => wait(name),
        ["set", name] => set(name),
        [] => {
            // Demo: run both roles as separate processes.
            let me = std::env::current_exe().expect("own path");
            let name = format!("ipc-flag-demo-{}", std::process::id());
            let mut waiter = std::process::Command::new(&me)
                .args(["wait", &name])
                .spawn()
                .expect("spawn");
            while !recmap::shared::shared_exists(&name).unwrap_or(false) {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
            let setter = std::process::Command::new(&me)
                .args(["set", &name])
                .status()
                .expect("spawn");
            let waited = waiter.wait().expect("wait");
            if setter.success() && waited.success() {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        _ => {
            eprintln!("usage: ipc_flag [wait NAME | set NAME]");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("ipc_flag: {e}");
        std::process::exit(1);
    }
}
