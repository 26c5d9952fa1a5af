//! Classifying one field of a list: an address, a network, `IP:port`, a URL, a domain, or junk.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::IpNet;

/// What a field held, for the per-kind counts of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A bare IPv4 or IPv6 address.
    Ip,
    /// A CIDR network (a /32 or /128 counts as an address in the plan).
    Cidr,
    /// `IP:port` or `[v6]:port`.
    IpPort,
    /// A URL (its host is the entry).
    Url,
    /// A domain name (optionally with `:port`).
    Domain,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ip => "ip",
            Self::Cidr => "cidr",
            Self::IpPort => "ip:port",
            Self::Url => "url",
            Self::Domain => "domain",
        })
    }
}

/// The entry a field names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A network; `masked` tells whether host bits were cleared.
    Net { net: IpNet, masked: bool },
    /// A domain name, lower-case, without a trailing dot.
    Domain(String),
}

/// Classifies one field. The error is the reason the field is skipped.
pub fn classify(field: &str) -> Result<(Target, Kind), String> {
    let field = field.trim().trim_matches('"').trim();
    if let Ok(ip) = field.parse::<IpAddr>() {
        return Ok((host(ip), Kind::Ip));
    }
    if let Some((_, rest)) = field.split_once("://") {
        return url_host(rest)
            .map(|t| (t, Kind::Url))
            .ok_or_else(|| format!("URL without a valid host: {:?}", shown(field)));
    }
    if field.contains('/') {
        if let Ok(net) = field.parse::<IpNet>() {
            let trunc = net.trunc();
            return Ok((Target::Net { masked: trunc != net, net: canonical(trunc) }, Kind::Cidr));
        }
        if field.starts_with('/') {
            return Err(format!("a path, not an address: {:?}", shown(field)));
        }
        let (before, after) = field.split_once('/').unwrap_or_default();
        if before.parse::<IpAddr>().is_ok() && after.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("not a valid CIDR: {:?}", shown(field)));
        }
        // A URL without a scheme: `evil.example/gate.php`.
        return url_host(field)
            .map(|t| (t, Kind::Url))
            .ok_or_else(|| format!("not an address, network, URL or domain: {:?}", shown(field)));
    }
    if let Some(ip) = strip_port(field) {
        return Ok((host(ip), Kind::IpPort));
    }
    let name = field.rsplit_once(':').filter(|(_, p)| is_port(p)).map_or(field, |(h, _)| h);
    if let Some(domain) = domain(name) {
        return Ok((Target::Domain(domain), Kind::Domain));
    }
    Err(format!("not an address, network, URL or domain: {:?}", shown(field)))
}

fn host(ip: IpAddr) -> Target {
    Target::Net { net: IpNet::from(ip.to_canonical()), masked: false }
}

/// An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/n`, n >= 96) as the IPv4 network it is: IPv4
/// traffic matches it, and the IPv4 guards apply.
pub fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.addr().to_ipv4_mapped() {
            Some(a) => IpNet::new(IpAddr::V4(a), n.prefix_len() - 96).unwrap_or(net),
            None => net,
        },
        _ => net,
    }
}

/// At most 60 characters of `field`, for a note (a junk line can be megabytes long).
pub fn shown(field: &str) -> String {
    let mut out: String = field.chars().take(60).collect();
    if out.len() < field.len() {
        out.push_str("...");
    }
    out
}

/// The host of `[user@]host[:port][/path...]`, as an address or a domain.
fn url_host(rest: &str) -> Option<Target> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(ip) = strip_port(hostport).or_else(|| hostport.parse().ok()) {
        return Some(host(ip));
    }
    let name = hostport.rsplit_once(':').filter(|(_, p)| is_port(p)).map_or(hostport, |(h, _)| h);
    domain(name).map(Target::Domain)
}

/// `1.2.3.4:80`, `[2001:db8::1]:443` or `[2001:db8::1]` to the address.
fn strip_port(field: &str) -> Option<IpAddr> {
    if let Some(rest) = field.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        let addr: Ipv6Addr = addr.parse().ok()?;
        return (tail.is_empty() || is_port(tail.strip_prefix(':')?)).then_some(addr.into());
    }
    let (addr, port) = field.split_once(':')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    is_port(port).then_some(addr.into())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.parse::<u16>().is_ok()
}

/// A valid domain name, normalised (lower case, no trailing dot): at least two labels of
/// letters, digits, `-` and `_`, and a top-level label of two or more characters that starts
/// with a letter (so `84.54.0.51.78` is not a domain).
pub fn domain(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.len() > 253 {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let tld = labels.last()?;
    let valid_label = |l: &&str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let tld_ok = tld.len() >= 2 && tld.starts_with(|c: char| c.is_ascii_alphabetic());
    (labels.len() >= 2 && tld_ok && labels.iter().all(valid_label)).then_some(name)
}
