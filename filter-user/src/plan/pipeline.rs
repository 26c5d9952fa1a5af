//! The one pipeline from sources to plan, used by `check`, `check --config`, `run` and every
//! refresh, so that what `check` prints is what `run` loads: the allowlist and this machine's
//! addresses are read once ([`Pipeline::new`]); each list's text is parsed and guarded with its
//! bit and monitor flag ([`Pipeline::list`]); lists, resolved domains and manual entries are
//! planned together ([`Pipeline::plan`]).

use std::{net::IpAddr, path::PathBuf};

use anyhow::{Result, bail};
use ipnet::IpNet;

pub use super::guarded::Nets;
use super::{
    Meta, Plan, guarded,
    guards::{self, GuardOptions, Verdict},
};
use crate::lists::{self, LineNote, ListOptions, ParsedList, entry::Direction};

/// The lists a filter can hold: every bit of an entry's lists but the manual list's (63).
pub const MAX_LISTS: usize = filter_common::MAX_LISTS - 1;

/// How to read one list, wherever its text comes from.
#[derive(Clone, Debug)]
pub struct ListSpec {
    /// Its name in reports, status and metrics.
    pub name: String,
    /// Where its text comes from (a file, or a URL written as a path), for notes.
    pub origin: PathBuf,
    pub options: ListOptions,
    /// A monitor list: its entries count and report, and pass.
    pub monitor: bool,
    /// The largest content read.
    pub max_bytes: u64,
    /// The publisher's minisign public key: the list is used only when its signature
    /// (`<list>.minisig`) verifies.
    pub minisign_key: Option<String>,
}

/// Fails when more lists are configured than entries can tell apart.
pub fn check_count(lists: usize) -> Result<()> {
    if lists > MAX_LISTS {
        bail!("at most {MAX_LISTS} lists can be loaded at once, {lists} given");
    }
    Ok(())
}

/// What every list is guarded and planned with.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    pub guards: GuardOptions,
    /// Allowlist networks plus (unless overridden) this machine's addresses.
    pub allow: Vec<IpNet>,
    /// This machine's own addresses (empty when not protected).
    pub own: Vec<IpAddr>,
    /// Lines of allowlist files that were skipped.
    pub allow_notes: Vec<(PathBuf, LineNote)>,
}

impl Pipeline {
    /// Reads the allowlist files and, when `protect_own`, this machine's addresses.
    pub fn new(allow_files: &[PathBuf], guards: GuardOptions, protect_own: bool) -> Result<Self> {
        let mut p = Pipeline { guards, ..Default::default() };
        for path in allow_files {
            let l = lists::parse_file(path, &ListOptions::default())?;
            p.allow.extend(l.entries.iter().map(|e| e.net));
            for d in &l.domains {
                let reason = format!(
                    "domain {} in an allowlist is not used: list addresses instead",
                    d.name
                );
                p.allow_notes.push((path.clone(), LineNote { line: d.line, reason }));
            }
            p.allow_notes.extend(l.skipped.into_iter().map(|n| (path.clone(), n)));
        }
        if protect_own {
            p.own = super::own::addresses()?;
        }
        p.allow.extend(p.own.iter().map(|a| IpNet::from(*a)));
        Ok(p)
    }

    /// Parses and guards the text of list `spec`, which holds bit `bit`.
    pub fn list(&self, spec: &ListSpec, bit: u32, text: &str) -> Result<ListReport> {
        let mut list = lists::parse_text(&spec.origin, text, &spec.options)?;
        list.name.clone_from(&spec.name);
        Ok(self.guard(list, bit, spec.monitor))
    }

    /// Reads and guards list file `spec` (bit `bit`); a file that cannot be read or parsed
    /// gives a report saying why (for `check`, which goes on).
    pub fn list_file(&self, spec: &ListSpec, bit: u32) -> ListReport {
        let bytes = lists::read_list(&spec.origin, spec.max_bytes).and_then(|b| {
            if let Some(key) = &spec.minisign_key {
                lists::signature::verify_file(&spec.origin, &b, key)?;
            }
            Ok(b)
        });
        // Valid UTF-8 (nearly every list) is used in place, not copied.
        let text = bytes.map(|b| String::from_utf8(b).unwrap_or_else(|e| lossy(e.as_bytes())));
        match text.and_then(|t| self.list(spec, bit, &t)) {
            Ok(report) => report,
            Err(e) => self.failed(spec, bit, format!("{e:#}")),
        }
    }

    /// The report of a list that could not be read or parsed.
    pub fn failed(&self, spec: &ListSpec, bit: u32, error: String) -> ListReport {
        let list =
            ParsedList { path: spec.origin.clone(), name: spec.name.clone(), ..Default::default() };
        ListReport { error: Some(error), ..self.guard(list, bit, spec.monitor) }
    }

    /// Plans the lists, the resolved domain addresses (guarded first) and the manual entries.
    pub fn plan<'a>(
        &self,
        lists: impl Iterator<Item = &'a ListReport> + Clone,
        resolved: &[Resolved],
        manual: impl Iterator<Item = (IpNet, Meta)>,
    ) -> Plan {
        let hosts = lists.clone().map(|l| l.nets.hosts.len()).sum();
        let nets = lists.flat_map(ListReport::entries);
        let domains = guard_resolved(resolved, self.guards);
        Plan::build_sized(nets.chain(domains).chain(manual), &self.allow, hosts)
    }

    fn guard(&self, list: ParsedList, bit: u32, monitor: bool) -> ListReport {
        let mut report = guard_list(list, 1u64 << bit, self.guards);
        report.monitor = monitor;
        report
    }
}

/// Text with every invalid UTF-8 sequence replaced (U+FFFD).
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
    /// The networks it contributes, guarded, with which packets each blocks. (The parsed
    /// entries, `list.entries`, are dropped once guarded: a million-entry list is held once.)
    pub nets: Nets,
    /// Its parsed entries by kind: exact IPv4, exact IPv6, IPv4 prefixes, IPv6 prefixes.
    pub kinds: [usize; 4],
    /// Which packets its entries block, in words (see [`ParsedList::direction_text`]).
    pub direction: String,
}

impl ListReport {
    /// The metadata of this list's entries that block `direction`.
    pub fn meta(&self, direction: Direction) -> Meta {
        Meta { flags: direction.flags_for(self.monitor), lists: self.bit }
    }

    /// Its guarded networks with their metadata, sorted (IPv4 addresses first).
    pub fn entries(&self) -> impl Iterator<Item = (IpNet, Meta)> + '_ {
        let hosts = self.nets.hosts.iter().map(|(a, d)| (IpNet::from(IpAddr::from(*a)), *d));
        hosts.chain(self.nets.other.iter().copied()).map(|(n, d)| (n, self.meta(d)))
    }

    /// Usable entries: networks left after the guards, and domains.
    pub fn usable(&self) -> usize {
        self.nets.len() + self.list.domains.len()
    }

    /// Why the list cannot be loaded: no usable entry (with the first reason a line was left
    /// out), or an error reading it.
    pub fn unusable(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        // A list whose records all ended (or not yet begun) is in force and empty.
        if self.usable() > 0 || (self.list.all_out_of_time() && self.guard_notes.is_empty()) {
            return None;
        }
        let first = self
            .list
            .skipped
            .first()
            .or(self.guard_notes.first())
            .map(|n| format!("; first at line {}: {}", n.line, n.reason))
            .unwrap_or_default();
        Some(format!(
            "no usable entry ({} lines skipped, {} refused or guarded{first})",
            self.list.skipped.len(),
            self.refused + self.guarded
        ))
    }
}

/// Every domain the reports name, with the union of the metadata of the lists naming it.
pub fn domains_of<'a>(reports: impl Iterator<Item = &'a ListReport>) -> Vec<(String, Meta)> {
    let mut out: std::collections::BTreeMap<String, Meta> = Default::default();
    for r in reports {
        for d in &r.list.domains {
            let m = out.entry(d.name.clone()).or_default();
            *m = m.union(r.meta(d.direction));
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

/// Applies the guards to a parsed list and counts what a report needs.
fn guard_list(mut list: ParsedList, bit: u64, opts: GuardOptions) -> ListReport {
    let g = guarded::guard(&list.entries, opts);
    list.entries = Vec::new();
    // A domain named twice is one entry.
    let mut names = rustc_hash::FxHashSet::default();
    let domains = list.domains.len();
    list.domains.retain(|d| names.insert(d.name.clone()));
    let (duplicates, prefixes) = g.nets.repeats();
    ListReport {
        error: None,
        monitor: false,
        bit,
        guard_notes: g.notes,
        refused: g.refused,
        guarded: g.guarded,
        duplicates: duplicates + domains - list.domains.len(),
        aggregated: prefixes.len() - IpNet::aggregate(&prefixes).len(),
        nets: g.nets,
        kinds: g.shape.kinds,
        direction: list.direction_text(&g.shape),
        list,
    }
}

/// A domain's resolved address, with the metadata of the lists that name the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub addr: IpAddr,
    pub meta: Meta,
    /// The domains that resolved to it.
    pub names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use filter_common::{FLAG_BOTH, FLAG_MON_DST, FLAG_MON_SRC};

    use super::*;

    fn spec(monitor: bool) -> ListSpec {
        ListSpec {
            name: "l".into(),
            origin: "l.txt".into(),
            options: ListOptions::default(),
            monitor,
            max_bytes: lists::DEFAULT_MAX_BYTES,
            minisign_key: None,
        }
    }

    #[test]
    fn sixty_three_lists_fit_and_the_manual_bit_stays_free() {
        assert!(check_count(63).is_ok());
        let e = check_count(64).unwrap_err().to_string();
        assert_eq!(e, "at most 63 lists can be loaded at once, 64 given");
    }

    #[test]
    fn a_monitor_list_is_planned_as_monitor_entries() {
        let p = Pipeline::default();
        let watch = p.list(&spec(true), 1, "203.0.113.7\n").unwrap();
        let drop = p.list(&spec(false), 0, "198.51.100.7\n").unwrap();
        let both = Direction::Both;
        assert_eq!(watch.meta(both), Meta { flags: FLAG_MON_SRC | FLAG_MON_DST, lists: 2 });
        assert_eq!(drop.meta(both), Meta { flags: FLAG_BOTH, lists: 1 });
        let plan = p.plan([watch, drop].iter(), &[], std::iter::empty());
        assert_eq!(plan.v4.exact[0], ([198, 51, 100, 7], Meta { flags: FLAG_BOTH, lists: 1 }));
        assert_eq!(plan.v4.exact[1].1.flags, FLAG_MON_SRC | FLAG_MON_DST);
    }
}
