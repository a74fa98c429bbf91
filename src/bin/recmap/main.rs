//! `recmap`, the command-line tool: argument parsing and dispatch only.
//!
//! Each subcommand lives in its own module (`create`, `load`, …) with its
//! `Args` and `run`; shared pieces are in `common` (errors, exit codes,
//! opening stores), `value` (field text/JSON codecs), `progress` and
//! `signals` (the only `unsafe`: SIGXFSZ ignored, Ctrl-C caught in verify).
#![deny(unsafe_code)]

mod bench;
mod common;
mod compact;
mod completions;
mod create;
mod export;
mod get;
mod info;
mod load;
mod measure;
mod progress;
mod repair;
mod schema;
mod signals;
mod upgrade;
mod value;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const MAIN_HELP: &str = "\
Exit codes:
  0  success
  1  the data was rejected: `verify` found problems, `get`/`export` met a
     damaged page, `load` refused a bad input row (nothing from that load
     was committed, or with --batch only the batches before the bad row),
     or a write passed the file-size limit (ulimit -f)
  2  usage or I/O error: bad arguments or schema spec, missing or non-recmap
     file (a FIFO, socket, directory or device is refused at once), index
     past the end, locked store, disk errors
  129  stopped by SIGHUP during `load` (the terminal or session closed)
  130  interrupted by Ctrl-C (SIGINT) during `verify` or `load`
  143  stopped by SIGTERM during `load` (a stopped load rolls back,
       or with --batch keeps its batches, and prints the resume command)

Data goes to stdout, diagnostics (errors, progress, summaries) to stderr.
Set RUST_LOG=info (or debug, recmap=trace, ...) to see the library's tracing.

Example:
  recmap create points.rmap --schema 'id:u64,x:f64,y:f64,name:str[16]'
  recmap load points.rmap points.csv
  recmap info points.rmap
  recmap export points.rmap --format jsonl --range 0..10";

/// A memory-mapped, crash-safe, self-describing fixed-size record store.
#[derive(Debug, Parser)]
#[command(name = "recmap", version, after_help = MAIN_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty store with a schema.
    #[command(after_help = create::HELP)]
    Create(create::Args),
    /// Append CSV, JSON lines or raw records to a store (creating it if missing).
    #[command(after_help = load::HELP)]
    Load(load::Args),
    /// Show a store's format version, record size, schema and counts.
    #[command(after_help = info::HELP)]
    Info(info::Args),
    /// Print records by index.
    #[command(after_help = get::HELP)]
    Get(get::Args),
    /// Write records to stdout as CSV, JSON lines or raw bytes.
    #[command(after_help = export::HELP)]
    Export(export::Args),
    /// Check headers, schema and every committed page checksum.
    #[command(after_help = verify::HELP)]
    Verify(verify::Args),
    /// Print the schema spec, the Rust `record!` that opens the store, or Python code for numpy.
    #[command(after_help = schema::HELP)]
    Schema(schema::Args),
    /// Repair a damaged or truncated store (truncate, rebuild checksums, or copy the sound pages).
    #[command(after_help = repair::HELP)]
    Repair(repair::Args),
    /// Checkpoint the log and shrink the data file to what its records need.
    #[command(after_help = compact::HELP)]
    Compact(compact::Args),
    /// Upgrade a version-1 store to format version 2 and checkpoint its log.
    #[command(after_help = upgrade::HELP)]
    Upgrade(upgrade::Args),
    /// Time random and sequential reads: recmap vs pread vs BufReader.
    #[command(after_help = bench::HELP)]
    Bench(bench::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = completions::COMPLETIONS_HELP)]
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), or write one per subcommand with --out DIR.
    #[command(after_help = completions::MAN_HELP)]
    Man(completions::ManArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return common::usage_error(e),
    };
    signals::ignore_sigxfsz();
    common::init_tracing();
    let store = match &cli.command {
        Command::Create(a) => Some(&a.path),
        Command::Load(a) => Some(&a.path),
        Command::Info(a) => Some(&a.path),
        Command::Get(a) => Some(&a.path),
        Command::Export(a) => Some(&a.path),
        Command::Verify(a) => Some(&a.path),
        Command::Schema(a) => Some(&a.path),
        Command::Repair(a) => Some(&a.path),
        Command::Compact(a) => Some(&a.path),
        Command::Upgrade(a) => Some(&a.path),
        _ => None,
    };
    if let Some(p) = store {
        signals::report_bus_errors(p);
    }
    let result = match cli.command {
        Command::Create(a) => create::run(a),
        Command::Load(a) => load::run(a),
        Command::Info(a) => info::run(a),
        Command::Get(a) => get::run(a),
        Command::Export(a) => export::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Repair(a) => repair::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Upgrade(a) => upgrade::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
    };
    common::finish(result)
}
