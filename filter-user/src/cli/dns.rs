//! Command-line options for resolving domain entries (`takedown run`).

use std::net::{IpAddr, SocketAddr};

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// DNS server for domain entries, IP or IP:PORT (repeatable; default: /etc/resolv.conf).
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_server)]
    pub resolvers: Vec<SocketAddr>,
    /// Shortest time between two lookups of a domain, in seconds (TTLs below are raised).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub dns_min_ttl: u64,
    /// Longest time between two lookups of a domain, in seconds (TTLs above are lowered).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub dns_max_ttl: u64,
    /// Lookups in flight at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub dns_concurrency: usize,
    /// Seconds to wait for one DNS answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub dns_timeout: u64,
    /// Seconds to wait at start for domains to resolve before loading (the rest follow later).
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub dns_wait: u64,
}

fn parse_server(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("not an IP address or IP:PORT: {s:?}"))
}
