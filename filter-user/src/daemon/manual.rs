//! The manual list: entries added with `takedown add`, kept in the state directory
//! (`manual.txt`), enforced like any list (bit 63 of an entry's lists) and kept across
//! refreshes and restarts. An entry may expire (`until=TIME`): the daemon takes it out at that
//! moment, or at its next start if it was down.

use std::{fmt::Write as _, net::IpAddr, path::Path};

use anyhow::{Context, Result};
use ipnet::IpNet;

use super::state::write_atomic;
use crate::{
    lists::{entry::Direction, token::shown},
    plan::Meta,
};

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
    /// When it leaves the list (Unix seconds); None: never.
    pub expires: Option<u64>,
}

impl ManualEntry {
    pub fn meta(&self) -> Meta {
        Meta { flags: self.direction.flags_for(self.monitor), lists: MANUAL_BIT }
    }

    /// True when its time has passed at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }

    /// "until 2026-12-31T00:00:00Z (in 3h 20m)", or "" for an entry that does not expire.
    pub fn lifetime(&self, now: u64) -> String {
        let Some(t) = self.expires else { return String::new() };
        let left = jiff::SignedDuration::from_secs(t.saturating_sub(now) as i64);
        format!("until {} (in {left:#})", super::status::utc(t))
    }
}

/// The furthest end a manual entry may be given, from now: a hundred years, in seconds (an
/// end past what a time can be written as would make the entry permanent).
pub const FURTHEST_END: u64 = 100 * 365 * 86_400;

/// When an entry added now for `duration` ("24h", "7d", "90m") or `until` a time
/// ("2026-12-31T00:00Z") expires, in Unix seconds; None when neither is given.
pub fn expiry(duration: Option<&str>, until: Option<&str>, now: u64) -> Result<Option<u64>> {
    let at = match (duration, until) {
        (Some(d), _) => {
            let span: jiff::Span = d.parse().with_context(|| format!("not a duration: {d:?}"))?;
            let secs = span
                .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .with_context(|| {
                    format!("not a duration in weeks, days, hours, minutes or seconds: {d:?}")
                })?
                .as_secs();
            now as i64 + secs
        }
        (None, Some(u)) => {
            let t: jiff::Timestamp = u
                .parse()
                .with_context(|| format!("not a time such as 2026-12-31T00:00Z: {u:?}"))?;
            t.as_second()
        }
        (None, None) => return Ok(None),
    };
    anyhow::ensure!(at > now as i64, "that time has already passed");
    anyhow::ensure!(
        at - now as i64 <= FURTHEST_END as i64,
        "that is more than {} years from now: leave out --for and --until for an entry that stays",
        FURTHEST_END / (365 * 86_400)
    );
    Ok(Some(at as u64))
}

/// Takes the expired entries out of `entries`; returns them.
pub fn take_expired(entries: &mut Vec<ManualEntry>, now: u64) -> Vec<ManualEntry> {
    let (gone, kept) = std::mem::take(entries).into_iter().partition(|e| e.expired(now));
    *entries = kept;
    gone
}

/// The earliest expiry among `entries`.
pub fn next_expiry(entries: &[ManualEntry]) -> Option<u64> {
    entries.iter().filter_map(|e| e.expires).min()
}

/// Reads the manual list (none when the file does not exist); a line that is not an entry is
/// logged and skipped (and kept in the file by the next [`save`]).
pub fn load(path: &Path) -> Result<Vec<ManualEntry>> {
    let mut out = Vec::new();
    for (i, line) in read_lines(path)?.iter().enumerate() {
        match parse_line(line) {
            Ok(Some(entry)) => out.push(entry),
            Ok(None) => {}
            Err(why) => log::warn!("{}:{}: skipped: {why}", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// The file's lines (none when it does not exist). Invalid UTF-8 costs the line it is on,
/// like in any list.
fn read_lines(path: &Path) -> Result<Vec<String>> {
    match std::fs::read(path) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).lines().map(String::from).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// One line: an entry, nothing (blank or a comment), or why it is no entry. An entry whose end
/// (`until=`) cannot be read is none: enforced for good, it would outlast what was meant.
fn parse_line(line: &str) -> Result<Option<ManualEntry>, String> {
    let (data, comment) = line.split_once('#').unwrap_or((line, ""));
    let mut fields = data.split_whitespace();
    let Some(net) = fields.next() else { return Ok(None) };
    let parsed = net.parse::<IpNet>().or_else(|_| net.parse::<IpAddr>().map(IpNet::from));
    let net = parsed.map_err(|_| format!("not a network: {:?}", shown(net)))?;
    let mut entry = ManualEntry {
        net,
        direction: Direction::Both,
        monitor: false,
        comment: comment.trim().to_string(),
        expires: None,
    };
    for field in fields {
        match field {
            "src" => entry.direction = Direction::Src,
            "dst" => entry.direction = Direction::Dst,
            "both" => entry.direction = Direction::Both,
            "monitor" => entry.monitor = true,
            f => match f.strip_prefix("until=").map(str::parse::<jiff::Timestamp>) {
                Some(Ok(t)) => entry.expires = Some(t.as_second().max(0) as u64),
                Some(Err(_)) => return Err(format!("unreadable end {:?}", shown(f))),
                None => return Err(format!("unknown field {:?}", shown(f))),
            },
        }
    }
    Ok(Some(entry))
}

/// Writes the manual list atomically; the lines of the file it replaces that are no entry
/// (hand-written, unreadable) are kept as written, after the entries.
pub fn save(path: &Path, entries: &[ManualEntry]) -> Result<()> {
    let mut text = String::from(
        "# takedown manual entries: NETWORK DIRECTION [monitor] [until=TIME] # comment\n",
    );
    for e in entries {
        let _ =
            write!(text, "{} {}{}", e.net, e.direction, if e.monitor { " monitor" } else { "" });
        if let Some(t) = e.expires {
            let _ = write!(text, " until={}", super::status::utc(t));
        }
        if !e.comment.is_empty() {
            let _ = write!(text, " # {}", e.comment);
        }
        text.push('\n');
    }
    for line in read_lines(path)?.iter().filter(|l| parse_line(l).is_err()) {
        let _ = writeln!(text, "{line}");
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
            expires: c.is_empty().then_some(1_798_675_200),
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
        let bad = ["junk", "198.51.100.9/32 both until=next-week # hand-written", "\u{1}\u{2}"];
        let text = format!("{}\n203.0.113.7/32 both # ok\n{}\n{}\n", bad[0], bad[1], bad[2]);
        std::fs::write(&path, text).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.len(), 1, "an unreadable end is no entry for good: {back:?}");
        assert_eq!(back[0].net, "203.0.113.7/32".parse::<IpNet>().unwrap());
        // The next save (an `add`) keeps what it cannot read, as written.
        save(&path, &back).unwrap();
        let saved = std::fs::read_to_string(&path).unwrap();
        for line in bad {
            assert!(saved.lines().any(|l| l == line), "{line:?} lost: {saved}");
        }
        assert_eq!(load(&path).unwrap(), back);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn durations_and_times_become_an_expiry() {
        let now = 1_795_000_000;
        assert_eq!(expiry(Some("24h"), None, now).unwrap(), Some(now + 86_400));
        assert_eq!(expiry(Some("7d"), None, now).unwrap(), Some(now + 7 * 86_400));
        assert_eq!(expiry(None, Some("2026-12-31T00:00Z"), now).unwrap(), Some(1_798_675_200));
        assert_eq!(expiry(None, None, now).unwrap(), None);
        let err = |d, u| format!("{:#}", expiry(d, u, now).unwrap_err());
        assert!(err(Some("-5m"), None).contains("already passed"));
        assert!(err(None, Some("2020-01-01T00:00Z")).contains("already passed"));
        assert!(err(Some("1mo"), None).contains("weeks, days, hours"));
        assert!(err(None, Some("tomorrow")).contains("not a time"));
        // Ends past a hundred years would overflow or print as junk: refused.
        assert!(err(Some("175307616h"), None).contains("more than 100 years from now"));
        assert!(err(None, Some("9999-01-01T00:00Z")).contains("more than 100 years"));
        assert!(expiry(None, Some("2099-01-01T00:00Z"), now).is_ok());
    }

    #[test]
    fn expired_entries_are_taken_out() {
        let e = |n: &str, expires| ManualEntry {
            net: n.parse().unwrap(),
            direction: Direction::Both,
            monitor: false,
            comment: String::new(),
            expires,
        };
        let mut entries =
            vec![e("192.0.2.1/32", Some(10)), e("192.0.2.2/32", None), e("192.0.2.3/32", Some(30))];
        assert_eq!(next_expiry(&entries), Some(10));
        let gone = take_expired(&mut entries, 10);
        assert_eq!(gone.len(), 1);
        assert_eq!(next_expiry(&entries), Some(30));
        assert_eq!(entries[1].lifetime(20), "until 1970-01-01T00:00:30Z (in 10s)");
    }
}
