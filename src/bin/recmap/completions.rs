//! `recmap completions SHELL` and `recmap man`: shell completion scripts
//! (clap_complete) and roff man pages (clap_mangen), both generated from
//! the same clap definitions as the argument parser, so they list exactly
//! the subcommands and options the binary accepts.

use crate::common::{CliResult, Failure, EXIT_OK};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;

pub const COMPLETIONS_HELP: &str = "\
Prints the completion script for SHELL to stdout. Install it where the shell
looks for completions, for example:
  recmap completions bash > ~/.local/share/bash-completion/completions/recmap
  recmap completions zsh > ~/.zfunc/_recmap     # with fpath+=~/.zfunc
  recmap completions fish > ~/.config/fish/completions/recmap.fish";

pub const MAN_HELP: &str = "\
Without --out, prints the page recmap(1) (every subcommand listed) as roff
to stdout. With --out DIR, writes recmap.1 and one page per subcommand
(recmap-load.1, ...) into DIR, which must exist.

Examples:
  recmap man | man -l -
  recmap man --out /usr/local/share/man/man1";

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per subcommand into DIR instead of recmap(1) to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(a: CompletionsArgs) -> CliResult {
    let mut cmd = crate::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "recmap", &mut buf);
    let mut out = crate::common::stdout();
    out.write_all(&buf)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::io("write stdout", e))?;
    Ok(EXIT_OK)
}

pub fn man(a: ManArgs) -> CliResult {
    let cmd = crate::Cli::command();
    match a.out {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| Failure::io("render the man page", e))?;
            let mut out = crate::common::stdout();
            out.write_all(&buf)
                .and_then(|()| out.flush())
                .map_err(|e| Failure::io("write stdout", e))?;
        }
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Failure::usage(format!(
                    "--out {}: not a directory",
                    dir.display()
                )));
            }
            clap_mangen::generate_to(cmd, &dir)
                .map_err(|e| Failure::io(format!("write man pages into {}", dir.display()), e))?;
            let mut pages: Vec<String> = std::fs::read_dir(&dir)
                .map_err(|e| Failure::io(dir.display(), e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("recmap") && n.ends_with(".1"))
                .collect();
            pages.sort();
            eprintln!(
                "wrote {} man pages into {}: {}",
                pages.len(),
                dir.display(),
                pages.join(" ")
            );
        }
    }
    Ok(EXIT_OK)
}
