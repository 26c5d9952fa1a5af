//! Domain entries: resolved to addresses (A and AAAA) with their TTLs, re-resolved when the TTL
//! runs out (bounded by a minimum and a maximum), with bounded concurrency. A failed lookup
//! keeps the last known addresses and is reported; it is retried with a growing back-off.
//! Every address remembers which domains resolved to it.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use futures::{StreamExt, stream};
use hickory_resolver::{
    Resolver,
    config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
};

use crate::plan::{Meta, pipeline::Resolved};

/// How domains are resolved.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Shortest time between two lookups of a domain (and first retry after a failure).
    pub min_ttl: Duration,
    /// Longest time between two lookups of a domain (and longest retry back-off).
    pub max_ttl: Duration,
    /// Lookups in flight at once.
    pub concurrency: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(3600),
            concurrency: 32,
        }
    }
}

/// Looks a name up: its addresses and how long they are valid, or why not.
pub trait Lookup {
    fn lookup(&self, name: &str) -> impl Future<Output = Result<(Vec<IpAddr>, Duration), String>>;
}

/// The real resolver (hickory): the system's resolv.conf, or the given servers.
pub struct DnsLookup(Resolver<TokioRuntimeProvider>);

impl DnsLookup {
    /// A resolver using `servers` (IP:port), or /etc/resolv.conf when empty.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Self> {
        let mut builder = if servers.is_empty() {
            Resolver::builder_tokio().context("cannot read the system resolver configuration")?
        } else {
            let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
            for s in servers {
                let mut ns = NameServerConfig::udp(s.ip());
                ns.connections[0].port = s.port();
                config.add_name_server(ns);
            }
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.cache_size = 0;
        Ok(Self(builder.build().context("cannot build the resolver")?))
    }
}

impl Lookup for DnsLookup {
    async fn lookup(&self, name: &str) -> Result<(Vec<IpAddr>, Duration), String> {
        // Fully qualified: never expanded with the machine's search domains.
        let lookup = self.0.lookup_ip(format!("{name}.")).await.map_err(|e| e.to_string())?;
        let ttl = lookup.valid_until().saturating_duration_since(Instant::now());
        Ok((lookup.iter().collect(), ttl))
    }
}

/// What is known of one domain.
#[derive(Clone, Debug)]
pub struct DomainState {
    /// The lists naming it.
    pub meta: Meta,
    /// Its last known addresses (kept when a lookup fails).
    pub addrs: Vec<IpAddr>,
    /// When to look it up again.
    pub next: Instant,
    /// The last lookup's error, if it failed.
    pub error: Option<String>,
    /// Failed lookups in a row.
    pub failures: u32,
}

/// What one round of lookups did.
#[derive(Clone, Debug, Default)]
pub struct Round {
    pub looked_up: usize,
    pub failed: Vec<(String, String)>,
    /// The set of addresses changed.
    pub changed: bool,
}

/// Every domain and what is known of it.
#[derive(Clone, Debug, Default)]
pub struct Domains {
    pub table: BTreeMap<String, DomainState>,
}

impl Domains {
    /// All domains, due now.
    pub fn new(domains: impl IntoIterator<Item = (String, Meta)>, now: Instant) -> Self {
        let table = domains
            .into_iter()
            .map(|(name, meta)| {
                (name, DomainState { meta, addrs: vec![], next: now, error: None, failures: 0 })
            })
            .collect();
        Self { table }
    }

    /// Looks up every domain that is due at `now`, `policy.concurrency` at a time. Each answer
    /// is recorded as it arrives, so a caller that stops waiting keeps what was resolved.
    pub async fn refresh_due(
        &mut self,
        lookup: &impl Lookup,
        policy: Policy,
        now: Instant,
    ) -> Round {
        let due: Vec<String> =
            self.table.iter().filter(|(_, s)| s.next <= now).map(|(n, _)| n.clone()).collect();
        let mut answers = stream::iter(due)
            .map(|name| async move {
                let r = lookup.lookup(&name).await;
                (name, r)
            })
            .buffer_unordered(policy.concurrency.max(1));
        let mut round = Round::default();
        while let Some((name, result)) = answers.next().await {
            round.looked_up += 1;
            let state = self.table.get_mut(&name).expect("due names come from the table");
            match result {
                Ok((addrs, _)) if addrs.is_empty() => {
                    fail(state, "no addresses".into(), policy, now, &name, &mut round);
                }
                Ok((mut addrs, ttl)) => {
                    addrs.sort();
                    addrs.dedup();
                    round.changed |= addrs != state.addrs;
                    state.addrs = addrs;
                    state.error = None;
                    state.failures = 0;
                    state.next = now + ttl.clamp(policy.min_ttl, policy.max_ttl);
                }
                Err(e) => fail(state, e, policy, now, &name, &mut round),
            }
        }
        round
    }

    /// Replaces the set of domains: new names are due at `now`, known names keep what is known
    /// of them (with their new metadata), names gone are dropped.
    pub fn replace_set(&mut self, names: impl IntoIterator<Item = (String, Meta)>, now: Instant) {
        let mut next = BTreeMap::new();
        for (name, meta) in names {
            let state = match self.table.remove(&name) {
                Some(mut s) => {
                    s.meta = meta;
                    s
                }
                None => DomainState { meta, addrs: vec![], next: now, error: None, failures: 0 },
            };
            next.insert(name, state);
        }
        self.table = next;
    }

    /// When the next lookup is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.table.values().map(|s| s.next).min()
    }

    /// Every known address with the union of the metadata of the domains resolving to it, and
    /// their names.
    pub fn resolved(&self) -> Vec<Resolved> {
        let mut by_addr: BTreeMap<IpAddr, (Meta, Vec<String>)> = BTreeMap::new();
        for (name, s) in &self.table {
            for a in &s.addrs {
                let (m, names) = by_addr.entry(*a).or_default();
                *m = m.union(s.meta);
                names.push(name.clone());
            }
        }
        by_addr.into_iter().map(|(addr, (meta, names))| Resolved { addr, meta, names }).collect()
    }
}

/// Keeps `domains` resolved in the background: after each round that changed an address (or a
/// new set of names from `names`), the resolved addresses are sent on the returned channel.
/// Runs on a `LocalSet`; ends when the receiver is dropped.
pub fn spawn_local_resolver(
    mut domains: Domains,
    lookup: DnsLookup,
    policy: Policy,
    mut names: tokio::sync::watch::Receiver<Vec<(String, Meta)>>,
) -> tokio::sync::watch::Receiver<Vec<Resolved>> {
    let (tx, rx) = tokio::sync::watch::channel(domains.resolved());
    tokio::task::spawn_local(async move {
        loop {
            let next = domains.next_due().unwrap_or_else(|| Instant::now() + policy.max_ttl);
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {
                    let round = domains.refresh_due(&lookup, policy, Instant::now()).await;
                    report(&round, domains.table.len());
                    if round.changed && tx.send(domains.resolved()).is_err() {
                        return;
                    }
                }
                changed = names.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let set = names.borrow_and_update().clone();
                    domains.replace_set(set, Instant::now());
                    if tx.send(domains.resolved()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Logs a round: a summary line, the failures at debug level.
pub fn report(round: &Round, total: usize) {
    if let Some((name, error)) = round.failed.first() {
        log::warn!(
            "domains: {} of {} lookups failed, last known addresses kept (first: {name}: {error})",
            round.failed.len(),
            round.looked_up
        );
    }
    for (name, error) in &round.failed {
        log::debug!("domain {name}: {error}");
    }
    log::info!(
        "domains: looked up {} of {total}, addresses {}",
        round.looked_up,
        if round.changed { "changed" } else { "unchanged" }
    );
}

fn fail(
    state: &mut DomainState,
    error: String,
    policy: Policy,
    now: Instant,
    name: &str,
    round: &mut Round,
) {
    state.failures += 1;
    let backoff = policy.min_ttl.saturating_mul(1 << state.failures.min(16).saturating_sub(1));
    state.next = now + backoff.min(policy.max_ttl);
    round.failed.push((name.to_string(), error.clone()));
    state.error = Some(error);
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
