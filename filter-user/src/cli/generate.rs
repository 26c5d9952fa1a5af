//! `takedown generate --out DIR` (hidden; `cargo xtask package` runs it): the man pages, from
//! the same clap definitions as the command line (`takedown.1`, and `takedown-run.1` and so
//! on, one a subcommand), and completions for bash, zsh and fish.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Where to write them (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: GenerateArgs, cmd: clap::Command) -> Result<()> {
    let man = args.out.join("man");
    let completions = args.out.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    page(&cmd, "takedown", &man)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("takedown-{}", sub.get_name());
        page(&sub.clone().display_name(name.clone()).bin_name(name.clone()), &name, &man)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd.clone(), "takedown", &completions)?;
        say!("{}", path.display());
    }
    Ok(())
}

/// Writes `<name>.1` for `cmd` in `dir`.
fn page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let mut text = Vec::new();
    clap_mangen::Man::new(cmd.clone()).title(name).render(&mut text)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    say!("{}", path.display());
    Ok(())
}
