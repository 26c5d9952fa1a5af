//! The manual list: entries added with `takedown add`, kept in the state directory
//! (`manual.txt`), enforced like any list (bit 63 of an entry's lists) and kept across
//! refreshes and restarts.

use std::{fmt::Write as _, net::IpAddr, path::Path};

use anyhow::{Context, Result};
use ipnet::IpNet;

use super::state::write_atomic;
use crate::{lists::entry::Direction, plan::Meta};

/// The manual list's name.
pub const MANUAL: &str = "manual";
/// The manual list's bit in [`Meta::lists`].
pub const MANUAL_BIT: u64 = 1 << 63;

/// One manual entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualEntry {
    pub net: IpNet,
    pub direction: Direction,
    /// Count and report only; packets pass.
    pub monitor: bool,
    pub comment: String,
}

impl ManualEntry {
    pub fn meta(&self) -> Meta {
        Meta { flags: self.direction.flags_for(self.monitor), lists: MANUAL_BIT }
    }
}

/// Reads the manual list (none when the file does not exist); a line that is not an entry is
/// logged and skipped.
pub fn load(path: &Path) -> Result<Vec<ManualEntry>> {
    // Invalid UTF-8 costs the line it is on, like in any list.
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (data, comment) = line.split_once('#').unwrap_or((line, ""));
        let mut fields = data.split_whitespace();
        let Some(net) = fields.next() else { continue };
        // A bad line is reported and skipped, like in any list: the rest is enforced.
        let parsed = net.parse::<IpNet>().or_else(|_| net.parse::<IpAddr>().map(IpNet::from));
        let Ok(net) = parsed else {
            let shown: String = net.chars().take(60).collect();
            log::warn!("{}:{}: skipped: not a network: {shown:?}", path.display(), i + 1);
            continue;
        };
        let direction = match fields.next() {
            Some("src") => Direction::Src,
            Some("dst") => Direction::Dst,
            _ => Direction::Both,
        };
        let monitor = fields.next() == Some("monitor");
        out.push(ManualEntry { net, direction, monitor, comment: comment.trim().to_string() });
    }
    Ok(out)
}

/// Writes the manual list atomically.
pub fn save(path: &Path, entries: &[ManualEntry]) -> Result<()> {
    let mut text =
        String::from("# takedown manual entries: NETWORK DIRECTION [monitor] # comment\n");
    for e in entries {
        let _ =
            write!(text, "{} {}{}", e.net, e.direction, if e.monitor { " monitor" } else { "" });
        if !e.comment.is_empty() {
            let _ = write!(text, " # {}", e.comment);
        }
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Adds `entry`, replacing an entry for the same network.
pub fn upsert(entries: &mut Vec<ManualEntry>, entry: ManualEntry) {
    entries.retain(|e| e.net != entry.net);
    entries.push(entry);
}

/// Removes the entry for `net`; true when there was one.
pub fn remove(entries: &mut Vec<ManualEntry>, net: &IpNet) -> bool {
    let before = entries.len();
    entries.retain(|e| &e.net != net);
    entries.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = std::env::temp_dir().join(format!("td-manual-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("manual.txt");
        assert!(load(&path).unwrap().is_empty());
        let mut entries = vec![];
        let e = |n: &str, d, c: &str| ManualEntry {
            net: n.parse().unwrap(),
            direction: d,
            monitor: c.is_empty(),
            comment: c.into(),
        };
        upsert(&mut entries, e("203.0.113.7/32", Direction::Both, "ticket 42"));
        upsert(&mut entries, e("2001:db8::/48", Direction::Dst, ""));
        upsert(&mut entries, e("203.0.113.7/32", Direction::Src, "ticket 43"));
        save(&path, &entries).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back, entries);
        assert_eq!(back.len(), 2);
        assert!(remove(&mut entries, &"2001:db8::/48".parse().unwrap()));
        assert!(!remove(&mut entries, &"2001:db8::/48".parse().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_line_is_skipped_and_the_rest_loads() {
        let dir = std::env::temp_dir().join(format!("td-manual-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("manual.txt");
        std::fs::write(&path, "junk\n203.0.113.7/32 both # ok\n\u{1}\u{2}\n").unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].net, "203.0.113.7/32".parse::<IpNet>().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
