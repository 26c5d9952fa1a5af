//! From sources to a plan: read every list and the allowlist, apply the guards, number the
//! lists, and plan. `takedown check` and `takedown run` share this path, so what `check`
//! prints is what `run` loads.

use std::{collections::HashSet, net::IpAddr, path::PathBuf};

use anyhow::{Result, bail};
use filter_common::MAX_LISTS;
use ipnet::IpNet;

use crate::{
    guards::{self, GuardOptions, Verdict},
    lists::{self, LineNote, ListOptions, ParsedList},
    plan::{Meta, Plan},
};

/// Where the entries come from and which guards are relaxed.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Takedown lists and how to read each.
    pub lists: Vec<(PathBuf, ListOptions)>,
    /// Allowlist files (any list format; their domains are not used).
    pub allow: Vec<PathBuf>,
    /// Guard overrides.
    pub guards: GuardOptions,
    /// Never block this machine's own addresses (on unless overridden).
    pub protect_own: bool,
    /// Report a list that cannot be read or parsed and go on (for `check`), instead of failing.
    pub keep_going: bool,
}

/// One list after parsing and guarding.
#[derive(Clone, Debug)]
pub struct ListReport {
    pub list: ParsedList,
    /// Why the list could not be read or parsed (only with `keep_going`).
    pub error: Option<String>,
    /// Its bit in [`Meta::lists`].
    pub bit: u64,
    /// A monitor list: its entries count and report, and pass.
    pub monitor: bool,
    /// What the guards did, by line.
    pub guard_notes: Vec<LineNote>,
    /// Entries refused as too broad.
    pub refused: usize,
    /// Entries left out or split around special ranges.
    pub guarded: usize,
    /// Entries listed more than once in this list.
    pub duplicates: usize,
    /// Prefixes saved by aggregating this list's own prefixes.
    pub aggregated: usize,
    /// The networks it contributes, guarded.
    pub nets: Vec<IpNet>,
}

impl ListReport {
    /// The metadata of this list's entries.
    pub fn meta(&self) -> Meta {
        Meta { flags: self.list.direction.flags_for(self.monitor), lists: self.bit }
    }

    /// Its guarded networks with their metadata.
    pub fn entries(&self) -> impl Iterator<Item = (IpNet, Meta)> + '_ {
        let meta = self.meta();
        self.nets.iter().map(move |n| (*n, meta))
    }

    /// Usable entries: networks left after the guards, and domains.
    pub fn usable(&self) -> usize {
        self.nets.len() + self.list.domains.len()
    }
}

/// Every domain the reports name, with the union of the metadata of the lists naming it.
pub fn domains_of<'a>(reports: impl Iterator<Item = &'a ListReport>) -> Vec<(String, Meta)> {
    let mut out: std::collections::BTreeMap<String, Meta> = Default::default();
    for r in reports {
        for d in &r.list.domains {
            let m = out.entry(d.name.clone()).or_default();
            *m = m.union(r.meta());
        }
    }
    out.into_iter().collect()
}

/// Resolved addresses that pass the guards (a sinkhole at 127.0.0.1 or a private address is
/// not blocked), as plan entries.
pub fn guard_resolved(
    resolved: &[Resolved],
    guards: GuardOptions,
) -> impl Iterator<Item = (IpNet, Meta)> + '_ {
    resolved.iter().filter_map(move |r| {
        let net = IpNet::from(r.addr);
        matches!(guards::check(net, guards), Verdict::Keep).then_some((net, r.meta))
    })
}

/// Everything needed to plan, before domains are resolved.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub lists: Vec<ListReport>,
    /// Allowlist networks plus (unless overridden) this machine's addresses.
    pub allow: Vec<IpNet>,
    /// This machine's own addresses (empty when not protected).
    pub own: Vec<IpAddr>,
    /// Lines of allowlist files that were skipped.
    pub allow_notes: Vec<(PathBuf, LineNote)>,
    pub guards: GuardOptions,
}

/// Reads and guards every source. Fails on an unreadable file or more than 64 lists.
pub fn prepare(sources: &Sources) -> Result<Prepared> {
    if sources.lists.len() > MAX_LISTS {
        bail!("at most {MAX_LISTS} lists can be loaded at once, {} given", sources.lists.len());
    }
    let mut reports = Vec::with_capacity(sources.lists.len());
    for (i, (path, opts)) in sources.lists.iter().enumerate() {
        let bit = 1u64 << i;
        match lists::parse_file(path, opts) {
            Ok(list) => reports.push(guard_list(list, bit, sources.guards)),
            Err(e) if sources.keep_going => {
                let list = ParsedList {
                    path: path.clone(),
                    name: path.display().to_string(),
                    ..Default::default()
                };
                let mut r = guard_list(list, bit, sources.guards);
                r.error = Some(format!("{e:#}"));
                reports.push(r);
            }
            Err(e) => return Err(e),
        }
    }
    let mut allow = Vec::new();
    let mut allow_notes = Vec::new();
    for path in &sources.allow {
        let l = lists::parse_file(path, &ListOptions::default())?;
        allow.extend(l.entries.iter().map(|e| e.net));
        for d in &l.domains {
            let reason =
                format!("domain {} in an allowlist is not used: list addresses instead", d.name);
            allow_notes.push((path.clone(), LineNote { line: d.line, reason }));
        }
        allow_notes.extend(l.skipped.into_iter().map(|n| (path.clone(), n)));
    }
    let own = if sources.protect_own { crate::own::addresses()? } else { Vec::new() };
    allow.extend(own.iter().map(|a| IpNet::from(*a)));
    Ok(Prepared { lists: reports, allow, own, allow_notes, guards: sources.guards })
}

/// Applies the guards to a parsed list and counts what a report needs.
pub fn guard_list(list: ParsedList, bit: u64, opts: GuardOptions) -> ListReport {
    let mut report = ListReport {
        error: None,
        monitor: false,
        bit,
        guard_notes: Vec::new(),
        refused: 0,
        guarded: 0,
        duplicates: 0,
        aggregated: 0,
        nets: Vec::with_capacity(list.entries.len()),
        list,
    };
    let mut seen = HashSet::with_capacity(report.list.entries.len());
    for e in &report.list.entries {
        if !seen.insert(e.net) {
            report.duplicates += 1;
        }
        match guards::check(e.net, opts) {
            Verdict::Keep => report.nets.push(e.net),
            Verdict::Refused(reason) => {
                report.refused += 1;
                report.guard_notes.push(LineNote { line: e.line, reason });
            }
            Verdict::Special(reason) => {
                report.guarded += 1;
                report.guard_notes.push(LineNote { line: e.line, reason });
            }
            Verdict::Split(pieces, reason) => {
                report.guarded += 1;
                report.nets.extend(pieces);
                report.guard_notes.push(LineNote { line: e.line, reason });
            }
        }
    }
    let prefixes: Vec<IpNet> =
        seen.iter().filter(|n| n.prefix_len() < n.max_prefix_len()).copied().collect();
    report.aggregated = prefixes.len() - IpNet::aggregate(&prefixes).len();
    report
}

/// A domain's resolved address, with the metadata of the lists that name the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub addr: IpAddr,
    pub meta: Meta,
    /// The domains that resolved to it.
    pub names: Vec<String>,
}

impl Prepared {
    /// Plans the lists plus the given resolved addresses (which pass the guards first).
    pub fn plan(&self, resolved: &[Resolved]) -> Plan {
        let nets = self.lists.iter().flat_map(ListReport::entries);
        Plan::build(nets.chain(guard_resolved(resolved, self.guards)), &self.allow)
    }

    /// Lists with no usable entry (no network left after the guards and no domain).
    pub fn empty_lists(&self) -> impl Iterator<Item = &ListReport> {
        self.lists.iter().filter(|r| r.nets.is_empty() && r.list.domains.is_empty())
    }
}
