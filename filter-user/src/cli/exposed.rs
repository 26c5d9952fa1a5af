//! `takedown exposed`: which inside hosts contacted these addresses, from the connection
//! journal (the entries of a loaded list, given networks, or a list file that need not be
//! loaded; every loaded entry by default); `takedown journal purge` deletes the journal.

use std::{io::Write, path::PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use ipnet::IpNet;
use takedown::{
    daemon::{
        hosts::HostTable,
        journal::{
            dir_of,
            exposure::{self, Exposed, Findings, Wanted},
            store::Store,
        },
        state::StateDir,
        status::{now, utc},
    },
    lists::{self, ListOptions},
};

use super::{
    entries::parse_net,
    exposed_csv, inspect,
    observe::{Format, parse_period},
    places::Places,
};

#[derive(Args, Debug)]
pub struct ExposedArgs {
    /// Only contacts in this last period (e.g. 7d, 12h); default: the whole journal.
    #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
    since: Option<u64>,
    /// The entries of this loaded list.
    #[arg(long = "list", value_name = "NAME")]
    list: Option<String>,
    /// This address or network (repeat for several).
    #[arg(long = "entry", value_name = "ADDR|CIDR", value_parser = parse_net)]
    entries: Vec<IpNet>,
    /// The addresses of this list file, in any format `check` reads (it need not be loaded).
    #[arg(long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    format: Format,
    #[command(flatten)]
    places: Places,
}

#[derive(Args, Debug)]
pub struct JournalArgs {
    #[command(subcommand)]
    command: JournalCommand,
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
    /// Delete the connection journal (every hour, or those before a time).
    Purge {
        /// Only hours that ended this long ago (e.g. 7d) or more.
        #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
        before: Option<u64>,
        #[command(flatten)]
        places: Places,
    },
}

pub fn exposed(args: ExposedArgs) -> Result<()> {
    let state = args.places.state();
    let dir = dir_of(&state);
    super::places::root_only("takedown exposed", &dir, &dir, "")?;
    let store = Store::new(dir);
    let since = args.since.map_or(0, |p| now().saturating_sub(p));
    readable(&store, since)?;
    let wanted = wanted(&args)?;
    if wanted.is_empty() {
        bail!("no address to look for: the list, entries or files hold none");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (found, problems) = exposure::find_each(&store, since, &wanted, cores);
    problems.iter().for_each(|p| log::warn!("connection journal: {p}"));
    // Many contacts can be asked for: each host's lines are made apart (by the threads that
    // read its share), then written in order through one buffer.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if args.format.json {
        json(&mut out, found, &problems)
    } else if !args.format.csv {
        text(&mut out, found)
    } else {
        writeln!(out, "{}", exposed_csv::HEADER).and_then(|()| {
            let lines = || {
                let mut lines = exposed_csv::Lines::default();
                move |e: Exposed| lines.of(&e)
            };
            found.each(lines, |l| out.write_all(&l))
        })
    };
    let written =
        written.and_then(|()| match (problems.len(), args.format.json || args.format.csv) {
            (0, _) | (_, true) => Ok(()),
            (n, false) => {
                writeln!(out, "({n} hour file(s) could not be read in full: see the warnings)")
            }
        });
    // A closed pipe (`| head`) ends the output; a full disk is an error.
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `{"exposed": [host, ...], "unreadable": [line, ...]}`, a host a line.
fn json(out: &mut impl Write, found: Findings, problems: &[String]) -> std::io::Result<()> {
    write!(out, "{{\n  \"exposed\": [")?;
    let mut first = true;
    found.each(
        || |e: Exposed| serde_json::to_vec(&e),
        |e| {
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            first = false;
            out.write_all(&e?)
        },
    )?;
    write!(out, "\n  ],\n  \"unreadable\": ")?;
    serde_json::to_writer(&mut *out, problems)?;
    writeln!(out, "\n}}")
}

/// A `--file`'s skipped lines and notes shown (`check` shows them all).
const SHOWN_NOTES: usize = 10;

/// The networks asked for: `--entry`, `--file`, `--list`, or every loaded entry (each file's
/// taken in as it is read: no list of them all).
fn wanted(args: &ExposedArgs) -> Result<Wanted> {
    for e in args.entries.iter().filter(|e| e.trunc() != **e) {
        log::warn!("{e} has host bits set: looking for {}", e.trunc());
    }
    let mut wanted = Wanted::new(args.entries.iter().copied());
    for f in &args.files {
        let parsed = lists::parse_file(f, &ListOptions::default())?;
        let notes = parsed.skipped.iter().map(|n| ("skipped", n));
        let notes: Vec<_> = notes.chain(parsed.warnings.iter().map(|n| ("note", n))).collect();
        for (what, n) in notes.iter().take(SHOWN_NOTES) {
            log::warn!("{}:{}: {what}: {}", f.display(), n.line, n.reason);
        }
        if notes.len() > SHOWN_NOTES {
            log::warn!(
                "{}: ... and {} more (`takedown check` shows all)",
                f.display(),
                notes.len() - SHOWN_NOTES
            );
        }
        if parsed.entries.is_empty() {
            let (skipped, domains) = (parsed.skipped.len(), parsed.domains.len());
            bail!(
                "{} holds no address ({skipped} line(s) skipped, {domains} domain(s))",
                f.display()
            );
        }
        wanted.merge(Wanted::new(parsed.entries.iter().map(|e| e.net)));
    }
    if args.list.is_some() || wanted.is_empty() {
        let plan = args.places.maps("takedown exposed")?.plan()?;
        let bits = match &args.list {
            Some(name) => match inspect::status(&args.places).list_bit(name) {
                Some(bit) => 1u64 << bit,
                None => bail!("no list is named {name:?} (`takedown status` names them)"),
            },
            None => u64::MAX,
        };
        let nets = plan.nets().filter(|(_, m)| m.lists & bits != 0).map(|(n, _)| n);
        wanted.merge(Wanted::new(nets));
    }
    Ok(wanted)
}

/// The text form: each host as it comes (its lines made by the threads that read its share),
/// then how many opened connections and how many were only reached.
fn text(out: &mut impl Write, found: Findings) -> std::io::Result<()> {
    let (mut hosts, mut talked) = (0, 0);
    found.each(
        || |e: Exposed| host_lines(&e),
        |(opened, lines)| {
            hosts += 1;
            talked += usize::from(opened);
            out.write_all(&lines)
        },
    )?;
    if hosts == 0 {
        return writeln!(out, "no inside host contacted these addresses in the journal");
    }
    writeln!(
        out,
        "{talked} inside host(s) opened connections to these addresses; {} were only reached by them",
        hosts - talked
    )
}

/// Whether host `e` opened a connection, and its lines: its own, then a contact a line.
fn host_lines(e: &Exposed) -> (bool, Vec<u8>) {
    let mut out = Vec::new();
    let opened = e.talked();
    let only = if opened { "" } else { " (only reached: not a sign of infection)" };
    let _ = writeln!(out, "{}{only}", e.host);
    for c in &e.contacts {
        let by = if c.opened_by == "inside" { "the host" } else { "the remote" };
        let (first, last) = (utc(c.first), utc(c.last));
        let _ = writeln!(
            out,
            "  {} ({}) {}/{}, opened by {by}: {} connection(s), first {first}, last {last}",
            c.remote, c.entry, c.proto, c.port, c.count
        );
    }
    (opened, out)
}

/// What a daemon does for each entry it adds, done by `takedown add` when none runs: `net` is
/// looked up in the connection journal (when there is one); each host found is said, and
/// each that opened a connection marked in the host table.
pub fn look_back(state: &StateDir, net: IpNet) -> Result<()> {
    let store = Store::new(dir_of(state));
    if store.files().is_empty() {
        return Ok(());
    }
    let (found, problems) = exposure::find(&store, 0, &Wanted::new([net]), 1);
    problems.iter().for_each(|p| log::warn!("connection journal: {p}"));
    if found.is_empty() {
        return Ok(());
    }
    let mut table = HostTable::read(&state.hosts_file())?;
    for e in &found {
        say!("{}", exposure::describe(e));
        table.mark_exposed(e);
    }
    table.save(&state.hosts_file())?;
    let marked =
        if found.iter().any(|e| e.talked()) { "; `takedown hosts` marks them" } else { "" };
    say!("(found in the connection journal, as no daemon runs{marked})");
    Ok(())
}

pub fn journal(args: JournalArgs) -> Result<()> {
    let JournalCommand::Purge { before, places } = args.command;
    let store = Store::new(dir_of(&places.state()));
    super::places::root_only("takedown journal purge", store.dir(), store.dir(), "")?;
    if !store.dir().is_dir() {
        bail!(no_journal(&store));
    }
    let (n, failed) = store.purge(before.map(|p| now().saturating_sub(p)));
    say!("deleted {n} hour(s) of the connection journal in {}", store.dir().display());
    if !failed.is_empty() {
        bail!("{} hour file(s) could not be deleted: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

/// An error when the journal cannot answer: there is none, it holds no hour, or none of its
/// hours since `since` can be opened (an answer from it would be no answer, not an
/// all-clear).
fn readable(store: &Store, since: u64) -> Result<()> {
    if store.files().is_empty() {
        bail!(no_journal(store));
    }
    let files = store.files_since(since);
    let shut: Vec<String> = files
        .iter()
        .filter_map(|f| {
            std::fs::File::open(&f.path).err().map(|e| format!("{}: {e}", f.path.display()))
        })
        .collect();
    if !files.is_empty() && shut.len() == files.len() {
        let dir = store.dir().display();
        bail!(
            "none of the {} hour file(s) of the connection journal in {dir} can be opened ({})",
            shut.len(),
            shut[0]
        );
    }
    Ok(())
}

/// Why a journal `store` holds nothing to read: no directory, or no hour yet.
fn no_journal(store: &Store) -> String {
    let dir = store.dir().display();
    match store.dir().is_dir() {
        true => format!("the connection journal in {dir} holds no hour yet"),
        false => format!(
            "there is no connection journal in {dir} (`takedown run` keeps one with --journal DAYS or a [journal] table; --state-dir names another state directory)"
        ),
    }
}
