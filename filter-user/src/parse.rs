//! Parsing of takedown list files: one address or network a line, with the noise real feeds carry.
//!
//! Accepted per line: `#` and `;` comments (whole-line or inline), blank lines, CRLF, leading and
//! trailing blanks, extra columns after a blank (IPsum's `IP<TAB>count`), `IP:port` and
//! `[v6]:port` (the port is ignored), plain IPv4/IPv6 addresses and CIDRs (FireHOL netsets and
//! ipsets are this form). A CIDR with host bits set is masked, with a warning. Anything else is
//! skipped with its line number and reason; the good lines still load.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use ipnet::IpNet;

use crate::entry::{Direction, Entry};

/// A line that was not loaded, or loaded with a change, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineNote {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// A list file after parsing.
#[derive(Clone, Debug, Default)]
pub struct ParsedList {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The usable entries, in file order (duplicates kept; the plan merges them).
    pub entries: Vec<Entry>,
    /// Lines that were skipped.
    pub skipped: Vec<LineNote>,
    /// Lines that loaded with a change (host bits masked).
    pub warnings: Vec<LineNote>,
}

/// What one line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Nothing: blank or comment.
    Empty,
    /// A network; `masked` tells whether host bits were cleared.
    Net { net: IpNet, masked: bool },
}

/// Parses one line of a list.
pub fn parse_line(raw: &str) -> Result<Line, String> {
    let content = raw.split(['#', ';']).next().unwrap_or("");
    let Some(token) = content.split_ascii_whitespace().next() else {
        return Ok(Line::Empty);
    };
    parse_token(token)
}

fn parse_token(token: &str) -> Result<Line, String> {
    if let Ok(ip) = token.parse::<IpAddr>() {
        return Ok(Line::Net {
            net: IpNet::from(ip),
            masked: false,
        });
    }
    if token.contains('/') {
        let net: IpNet = token
            .parse()
            .map_err(|_| format!("not a valid CIDR: {token:?}"))?;
        let trunc = net.trunc();
        return Ok(Line::Net {
            masked: trunc != net,
            net: trunc,
        });
    }
    if let Some(addr) = strip_port(token) {
        return Ok(Line::Net {
            net: IpNet::from(addr),
            masked: false,
        });
    }
    Err(format!("not an IP address or CIDR: {token:?}"))
}

/// `1.2.3.4:80`, `[2001:db8::1]:443` or `[2001:db8::1]` to the address.
fn strip_port(token: &str) -> Option<IpAddr> {
    if let Some(rest) = token.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        let addr: Ipv6Addr = addr.parse().ok()?;
        return (tail.is_empty() || is_port(tail.strip_prefix(':')?)).then_some(addr.into());
    }
    let (addr, port) = token.split_once(':')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    is_port(port).then_some(addr.into())
}

fn is_port(s: &str) -> bool {
    s.parse::<u16>().is_ok()
}

/// Parses a whole list text; `direction` applies to every entry.
pub fn parse_text(path: &Path, text: &str, direction: Direction) -> ParsedList {
    let mut list = ParsedList {
        path: path.to_path_buf(),
        ..Default::default()
    };
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        match parse_line(raw) {
            Ok(Line::Empty) => {}
            Ok(Line::Net { net, masked }) => {
                if masked {
                    list.warnings.push(LineNote {
                        line,
                        reason: format!("host bits set, loaded as {net}"),
                    });
                }
                list.entries.push(Entry {
                    net,
                    direction,
                    line,
                });
            }
            Err(reason) => list.skipped.push(LineNote { line, reason }),
        }
    }
    list
}

/// Reads and parses a list file. Invalid UTF-8 is replaced, so one bad byte costs one line.
pub fn parse_file(path: &Path, direction: Direction) -> Result<ParsedList> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read list file {}", path.display()))?;
    Ok(parse_text(
        path,
        &String::from_utf8_lossy(&bytes),
        direction,
    ))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
