//! The daemon's domains: resolved once at start (waiting at most `dns.wait`), then kept
//! resolved in the background; new addresses reach the daemon's loop through a channel, and
//! new sets of names (after a refresh) reach the resolver through another.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use super::Daemon;
use crate::{
    plan::{Meta, pipeline::Resolved},
    sources::dns::{self as domains, DnsLookup, Domains, Policy},
};

/// The domains of the lists and their lookup.
pub struct Resolver {
    table: Domains,
    lookup: DnsLookup,
    policy: Policy,
}

/// The two ends the daemon's loop holds: new addresses in, new names out.
pub struct Channels {
    pub addresses: watch::Receiver<Vec<Resolved>>,
    pub names: watch::Sender<Vec<(String, Meta)>>,
}

impl Resolver {
    /// "N of M resolved to K addresses, F failed", for the start report.
    pub fn summary(&self) -> String {
        let t = &self.table.table;
        let resolved = t.values().filter(|s| !s.addrs.is_empty()).count();
        let failed = t.values().filter(|s| s.error.is_some()).count();
        let addresses = self.table.resolved().len();
        format!("{resolved} of {} resolved to {addresses} addresses, {failed} failed", t.len())
    }

    /// Keeps the domains resolved on the current `LocalSet`.
    pub fn spawn(self, names: Vec<(String, Meta)>) -> Channels {
        let (tx, rx) = watch::channel(names);
        let addresses = domains::spawn_local_resolver(self.table, self.lookup, self.policy, rx);
        Channels { addresses, names: tx }
    }
}

impl Daemon {
    /// Resolves every domain the lists name (None when they name none), waiting at most the
    /// configured time; what resolved is planned from now on.
    pub async fn resolve_first(&mut self) -> Result<Option<Resolver>> {
        let dns = self.settings.config.dns.clone();
        let policy = Policy {
            min_ttl: Duration::from_secs(dns.min_ttl),
            max_ttl: Duration::from_secs(dns.max_ttl.max(dns.min_ttl)),
            concurrency: dns.concurrency,
        };
        let mut table = Domains::new(self.domain_names(), Instant::now());
        if table.table.is_empty() {
            return Ok(None);
        }
        let lookup = DnsLookup::new(&dns.resolvers, Duration::from_secs(dns.timeout))?;
        let wait = Duration::from_secs(dns.wait);
        let first = table.refresh_due(&lookup, policy, Instant::now());
        if tokio::time::timeout(wait, first).await.is_err() {
            log::warn!(
                "domains: not all resolved within {wait:?}; loading what is, the rest follow"
            );
        }
        self.set_resolved(table.resolved());
        Ok(Some(Resolver { table, lookup, policy }))
    }
}
