//! `takedown generate --out DIR` (hidden; `cargo xtask package` runs it): the man pages, from
//! the same clap definitions as the command line (`takedown.8`, and `takedown-run.8` and so
//! on, one a subcommand: section 8, as for every command in /usr/sbin), and completions for
//! bash, zsh and fish. A page's synopsis is the command as typed (`takedown run`), each option
//! with its argument.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};

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
        let typed = format!("takedown {}", sub.get_name());
        page(&sub.clone().display_name(name.clone()).bin_name(typed), &name, &man)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd.clone(), "takedown", &completions)?;
        say!("{}", path.display());
    }
    Ok(())
}

/// The section of every page.
const SECTION: &str = "8";

/// Writes `<name>.8` for `cmd` in `dir`.
fn page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    // Built, an argument knows its value names and counts.
    let mut cmd = cmd.clone();
    cmd.build();
    let cmd = &cmd;
    let man = clap_mangen::Man::new(cmd.clone()).title(name).section(SECTION);
    let mut text = Vec::new();
    man.render_title(&mut text)?;
    man.render_name_section(&mut text)?;
    text.extend(synopsis(cmd).render().into_bytes());
    man.render_description_section(&mut text)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut text)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut text)?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(&mut text)?;
    }
    let path = dir.join(format!("{name}.{SECTION}"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    say!("{}", path.display());
    Ok(())
}

/// The SYNOPSIS section: the command as typed, then each option with its argument
/// (`[-c|--config FILE]`), positionals and the subcommand.
fn synopsis(cmd: &clap::Command) -> Roff {
    let mut line = vec![bold(cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string())];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional()) {
        let mut names = Vec::new();
        if let Some(s) = arg.get_short() {
            names.push(bold(format!("-{s}")));
        }
        if let Some(l) = arg.get_long() {
            if !names.is_empty() {
                names.push(roman("|"));
            }
            names.push(bold(format!("--{l}")));
        }
        let required = arg.is_required_set();
        line.push(roman(if required { " " } else { " [" }));
        line.extend(names);
        if arg.get_num_args().is_some_and(|n| n.takes_values()) {
            line.push(roman(" "));
            line.push(italic(value_name(arg)));
        }
        if matches!(arg.get_action(), clap::ArgAction::Append | clap::ArgAction::Count) {
            line.push(roman("..."));
        }
        line.push(roman(if required { "" } else { "]" }));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let (open, close) = if arg.is_required_set() { (" ", "") } else { (" [", "]") };
        line.extend([roman(open), italic(value_name(arg)), roman(if many { "..." } else { "" })]);
        line.push(roman(close));
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        line.extend([roman(" "), italic("COMMAND")]);
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]).text(line);
    roff
}

/// An argument's value name as the help shows it (`FILE`), else its name in capitals.
fn value_name(arg: &clap::Arg) -> String {
    match arg.get_value_names() {
        Some(names) => names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" "),
        None => arg.get_id().as_str().to_uppercase(),
    }
}
