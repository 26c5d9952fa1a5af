//! STIX 2.1 bundles (format `stix`): indicators whose pattern compares addresses or domains
//! (`ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value`,
//! `network-traffic:dst_ref.value`, `network-traffic:src_ref.value`; single or OR-ed
//! comparisons, `IN (...)` lists, CIDR values), and `ipv4-addr`, `ipv6-addr` and `domain-name`
//! objects given directly. Revoked indicators, indicators whose `valid_until` has passed and
//! patterns that need more than an address (AND with a port or URL, ...) are skipped with a
//! note naming the object. The earliest `valid_until` still to come is kept, so that the
//! daemon reads the list again at that moment.

use anyhow::{Result, bail};
use serde_json::Value;

use super::{ParsedList, entry::Direction};

/// The properties a pattern may compare, and the direction each says.
const ADDRESS_PATHS: [(&str, Option<Direction>); 5] = [
    ("ipv4-addr:value", None),
    ("ipv6-addr:value", None),
    ("domain-name:value", None),
    ("network-traffic:dst_ref.value", Some(Direction::Dst)),
    ("network-traffic:src_ref.value", Some(Direction::Src)),
];

/// Pattern keywords that make a pattern need more than an address.
const NARROWING: [&str; 14] = [
    "AND",
    "FOLLOWEDBY",
    "!=",
    "<",
    ">",
    "LIKE",
    "MATCHES",
    "NOT",
    "ISSUBSET",
    "ISSUPERSET",
    "WITHIN",
    "REPEATS",
    "START",
    "STOP",
];

/// Parses a bundle at time `now` (Unix seconds).
pub fn parse(text: &str, list: &mut ParsedList, now: u64) -> Result<()> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => bail!("invalid JSON at line {}: {e}", e.line()),
    };
    let Some(objects) = doc.get("objects").and_then(Value::as_array) else {
        bail!("a STIX bundle without \"objects\"");
    };
    for (i, obj) in objects.iter().enumerate() {
        let line = i + 1;
        let id = super::token::shown(obj.get("id").and_then(Value::as_str).unwrap_or("?"));
        match obj.get("type").and_then(Value::as_str) {
            Some("ipv4-addr" | "ipv6-addr" | "domain-name") => {
                match obj.get("value").and_then(Value::as_str) {
                    Some(v) => list.push_field(line, v),
                    None => list.skip(line, format!("{id}: no value")),
                }
            }
            Some("indicator") => indicator(obj, &id, line, list, now),
            _ => {} // malware, relationships, identities...: not entries
        }
    }
    Ok(())
}

fn indicator(obj: &Value, id: &str, line: usize, list: &mut ParsedList, now: u64) {
    if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
        return list.skip(line, format!("{id}: revoked"));
    }
    let until = obj.get("valid_until").and_then(Value::as_str);
    let until =
        until.map(|u| (u, u.parse::<jiff::Timestamp>().map(|t| t.as_second().max(0) as u64)));
    match until {
        Some((u, Ok(t))) if t <= now => {
            list.expired += 1;
            return list.skip(line, format!("{id}: valid until {u}, passed"));
        }
        Some((u, Err(_))) => {
            return list
                .skip(line, format!("{id}: unreadable valid_until {:?}", super::token::shown(u)));
        }
        _ => {}
    }
    if obj.get("pattern_type").and_then(Value::as_str).is_some_and(|t| t != "stix") {
        return list.skip(line, format!("{id}: not a STIX pattern"));
    }
    let pattern = obj.get("pattern").and_then(Value::as_str).unwrap_or("");
    match values(pattern) {
        Ok(values) => {
            for (v, said) in values {
                list.push_field_as(line, &v, said);
            }
            if let Some((_, Ok(t))) = until {
                list.expires = Some(list.expires.map_or(t, |e| e.min(t)));
            }
        }
        Err(why) => list.skip(line, format!("{id}: {why}")),
    }
}

/// The quoted values an address-only pattern compares, each with the direction its path says
/// (`src_ref` / `dst_ref`), or why the pattern is not one.
fn values(pattern: &str) -> Result<Vec<(String, Option<Direction>)>, String> {
    let (skeleton, quoted) = unquote(pattern);
    let mut out = Vec::with_capacity(quoted.len());
    let mut said = None;
    let words = skeleton.split(|c: char| c.is_whitespace() || "[]()=,".contains(c));
    for w in words.filter(|w| !w.is_empty()) {
        if let Some(n) = w.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
            out.extend(quoted.get(n).map(|v| (v.clone(), said)));
            continue;
        }
        let narrowing = NARROWING.iter().any(|k| w.eq_ignore_ascii_case(k));
        if narrowing || w.contains(['!', '<', '>']) {
            return Err(format!(
                "the pattern needs more than an address ({})",
                super::token::shown(w)
            ));
        }
        if w.contains(':') {
            said = match ADDRESS_PATHS.iter().find(|(p, _)| *p == w) {
                Some((_, d)) => *d,
                None => {
                    let w = super::token::shown(w);
                    return Err(format!("the pattern compares {w}, not an address"));
                }
            };
        }
    }
    if out.is_empty() {
        return Err("the pattern compares no value".into());
    }
    Ok(out)
}

/// The pattern with each quoted string replaced by `$n`, and the strings.
fn unquote(pattern: &str) -> (String, Vec<String>) {
    let (mut skeleton, mut quoted) = (String::new(), Vec::new());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\'' {
            skeleton.push(c);
            continue;
        }
        let mut s = String::new();
        while let Some(q) = chars.next() {
            match q {
                '\\' => s.extend(chars.next()),
                '\'' => break,
                other => s.push(other),
            }
        }
        skeleton.push_str(&format!(" ${} ", quoted.len()));
        quoted.push(s);
    }
    (skeleton, quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_patterns_give_their_values_and_others_say_why_not() {
        let ok = |p: &str| -> Vec<String> { values(p).unwrap().into_iter().map(|v| v.0).collect() };
        assert_eq!(ok("[ipv4-addr:value = '198.51.100.1']"), ["198.51.100.1"]);
        assert_eq!(
            ok("[ipv4-addr:value = '192.0.2.0/24' OR ipv6-addr:value = '2001:db8::1']"),
            ["192.0.2.0/24", "2001:db8::1"]
        );
        assert_eq!(
            ok("[domain-name:value IN ('a.example', 'b.example')]"),
            ["a.example", "b.example"]
        );
        assert_eq!(
            ok(
                "[network-traffic:dst_ref.value = '203.0.113.7'] OR [ipv4-addr:value = '203.0.113.8']"
            ),
            ["203.0.113.7", "203.0.113.8"]
        );
        let said = values(
            "[network-traffic:src_ref.value = '192.0.2.1' OR network-traffic:dst_ref.value IN ('192.0.2.2', '192.0.2.3')] OR [ipv4-addr:value = '192.0.2.4']",
        )
        .unwrap();
        let dirs: Vec<_> = said.iter().map(|v| v.1).collect();
        let (src, dst) = (Some(Direction::Src), Some(Direction::Dst));
        assert_eq!(dirs, [src, dst, dst, None]);
        let why = |p: &str| values(p).unwrap_err();
        assert!(
            why("[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 443]")
                .contains("more than an address")
        );
        assert!(why("[url:value = 'http://x.example/']").contains("compares url:value"));
        assert!(why("[ipv4-addr:value != '1.2.3.4']").contains("more than an address"));
    }
}
