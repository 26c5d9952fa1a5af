//! `takedown add` and `takedown remove`: the manual list. The entry is saved in the state
//! directory first; then the daemon applies it (when one runs), or it is written straight into
//! the pinned maps (when none runs). Either way it survives refreshes and restarts. A change
//! holds the manual list's lock from its read to the daemon's reply, so parallel changes are
//! applied one after another and none is lost.

use std::{net::IpAddr, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Args;
use ipnet::IpNet;
use takedown::{
    daemon::{
        control::{self, Request},
        manual::{self, MANUAL_BIT, ManualEntry},
    },
    lists::entry::Direction,
    maps::{
        AddressMaps, FilterMaps,
        sync::{self, Edit},
        version::{self, Pinned},
    },
    plan::guards::{self, GuardOptions, Verdict},
};

use super::places::Places;

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Address or network to block.
    #[arg(value_name = "ADDR|CIDR", value_parser = parse_net)]
    net: IpNet,
    /// Which packets it blocks.
    #[arg(long, value_enum, default_value_t)]
    direction: Direction,
    /// Why (kept with the entry).
    #[arg(long, default_value = "")]
    comment: String,
    /// Monitor only: count and report packets to and from it, but let them pass.
    #[arg(long)]
    monitor: bool,
    /// Accept a network broader than /8 (IPv4) or /24 (IPv6).
    #[arg(long)]
    force_broad: bool,
    /// Accept a network in special ranges (private, loopback, ...).
    #[arg(long)]
    allow_special: bool,
    /// Take it off the list again after this long ("24h", "7d", "90m", "1w 2d").
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
    lifetime: Option<String>,
    /// Take it off the list again at this time ("2026-12-31T00:00Z").
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    #[command(flatten)]
    places: Places,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Address or network to take off the manual list.
    #[arg(value_name = "ADDR|CIDR", value_parser = parse_net)]
    net: IpNet,
    #[command(flatten)]
    places: Places,
}

pub fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(takedown::lists::token::canonical)
        .map_err(|_| format!("not an address or network: {s:?}"))
}

pub fn add(args: AddArgs) -> Result<()> {
    takedown::maps::privileges::require_bpf_admin("takedown add")?;
    let net = args.net.trunc();
    if net != args.net {
        log::warn!("{} has host bits set: adding {net}", args.net);
    }
    let opts = GuardOptions { force_broad: args.force_broad, allow_special: args.allow_special };
    match guards::check(net, opts) {
        Verdict::Keep => {}
        Verdict::Refused(why) | Verdict::Special(why) => bail!("not added: {why}"),
        Verdict::Split(pieces, _) => bail!("not added: {}", split_advice(net, &pieces)),
    }
    // The next whole second: an entry added "for 3s" lasts at least 3 s.
    let now = takedown::daemon::status::now() + 1;
    let expires = manual::expiry(args.lifetime.as_deref(), args.until.as_deref(), now)?;
    let state = args.places.state();
    state.prepare()?;
    // One change at a time, from the read to the daemon's reply: none is lost.
    let _lock = state.lock_manual()?;
    let mut entries = manual::load(&state.manual())?;
    let entry = ManualEntry {
        net,
        direction: args.direction,
        monitor: args.monitor,
        comment: args.comment.clone(),
        expires,
    };
    let (meta, lifetime) = (entry.meta(), entry.lifetime(now));
    manual::upsert(&mut entries, entry);
    manual::save(&state.manual(), &entries)?;
    let (how, edit) = apply(&args.places, |maps| sync::upsert(maps, net, meta))?;
    let what = if args.monitor { "monitor" } else { "block" };
    let lifetime = if lifetime.is_empty() { lifetime } else { format!(" {lifetime}") };
    say!("added {net} ({what}, {}) to the manual list{lifetime}; {how}", args.direction);
    // Written into the pinned filter with no daemon to look it up in the connection journal
    // (as a daemon does for what it adds): looked up here. An entry the filter held already
    // was looked up then.
    if edit == Some(Edit::Inserted)
        && let Err(e) = super::exposed::look_back(&state, net)
    {
        log::warn!("the connection journal could not be looked up: {e:#}");
    }
    if expires.is_some() && state.daemon_pid().is_none() {
        say!(
            "note: no daemon runs: the entry leaves the maps when `takedown run` runs at that time"
        );
    }
    // This machine's own addresses are protected unless the daemon runs with --block-own:
    // say so rather than let "added" suggest they are dropped.
    let own = takedown::plan::own::addresses().unwrap_or_default();
    if let Some(a) = own.iter().find(|a| net.contains(*a)) {
        say!(
            "note: {a} is this machine's own address: the filter never drops it (unless run with --block-own)"
        );
    }
    Ok(())
}

/// Why an entry overlapping special ranges is not added as it is, and what to add instead
/// (a list splits such an entry by itself; the manual list holds whole entries only).
fn split_advice(net: IpNet, pieces: &[IpNet]) -> String {
    const SHOWN: usize = 8;
    let mut shown: Vec<String> = pieces.iter().take(SHOWN).map(|p| p.to_string()).collect();
    if pieces.len() > SHOWN {
        shown.push(format!("and {} more", pieces.len() - SHOWN));
    }
    let what = if pieces.len() == 1 { "the network" } else { "the networks" };
    format!(
        "{net} overlaps special ranges; add {what} outside them instead ({}), or pass --allow-special",
        shown.join(", ")
    )
}

pub fn remove(args: RemoveArgs) -> Result<()> {
    takedown::maps::privileges::require_bpf_admin("takedown remove")?;
    let net = args.net.trunc();
    let state = args.places.state();
    state.prepare()?;
    let _lock = state.lock_manual()?;
    let mut entries = manual::load(&state.manual())?;
    if !manual::remove(&mut entries, &net) {
        bail!("{net} is not on the manual list (`takedown list --list manual` shows it)");
    }
    manual::save(&state.manual(), &entries)?;
    let (how, _) = apply(&args.places, |maps| sync::remove_lists(maps, net, MANUAL_BIT))?;
    say!("removed {net} from the manual list; {how}");
    Ok(())
}

/// Has the daemon reload the manual list, or edits the pinned maps when no daemon runs (then
/// with the edit made).
fn apply(
    places: &Places,
    direct: impl FnOnce(&mut AddressMaps) -> Result<Edit>,
) -> Result<(String, Option<Edit>)> {
    let state = places.state();
    if let Some(pid) = state.daemon_pid() {
        let reply =
            control::call(&state.socket(), &Request::ReloadManual, Duration::from_secs(60))?;
        if let Some(e) = reply.error {
            bail!("the daemon (pid {pid}) could not apply it: {e}");
        }
        return Ok((format!("applied by the daemon (pid {pid})"), None));
    }
    let pins = places.pins();
    match version::pinned(&pins) {
        Pinned::Nothing => {
            return Ok(("no filter runs: it is enforced when `takedown run` starts".into(), None));
        }
        // Written by this build, its entry could be one the program pinned there cannot find.
        Pinned::Other(layout) => {
            let why =
                format!("{}: the next `takedown run` applies it", version::other_layout(layout));
            return Ok((why, None));
        }
        Pinned::Current => {}
    }
    let mut maps = FilterMaps::open(&pins)?;
    let edit = direct(&mut maps.addr).context(
        "the manual list is saved, but the pinned filter could not take the change now (the next `takedown run` applies it)",
    )?;
    Ok(("applied to the pinned filter (no daemon runs)".into(), Some(edit)))
}
