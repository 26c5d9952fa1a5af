//! STIX patterns reduced to what takedown enforces: the addresses and domains an indicator's
//! pattern compares, each with the direction its path says (`src_ref` / `dst_ref`).
//!
//! A pattern is taken when every comparison in it is `=` or `IN` on an address path
//! ([`ADDRESS_PATHS`]), or one of the comparisons that narrow nothing takedown can enforce
//! ([`BESIDE`]): a type test beside the value (`network-traffic:dst_ref.type = 'ipv4-addr'`,
//! as MISP's STIX export writes every IP attribute) and a port or protocol beside the address
//! (MISP's `ip-dst|port`: takedown blocks the whole address, as MISP's own IDS exports of an
//! address do). Several comparisons of one observation may be joined by AND or OR, and
//! observations by OR; anything else (AND or FOLLOWEDBY between observations, other operators,
//! other paths, qualifiers) makes the pattern one takedown cannot enforce, said in words.

use super::entry::Direction;

/// The properties a pattern may compare, and the direction each says.
const ADDRESS_PATHS: [(&str, Option<Direction>); 6] = [
    ("ipv4-addr:value", None),
    ("ipv6-addr:value", None),
    ("domain-name:value", None),
    ("domain-name:resolves_to_refs[*].value", None),
    ("network-traffic:dst_ref.value", Some(Direction::Dst)),
    ("network-traffic:src_ref.value", Some(Direction::Src)),
];

/// Comparisons that narrow nothing takedown enforces: taken and set aside.
const BESIDE: [&str; 7] = [
    "network-traffic:dst_ref.type",
    "network-traffic:src_ref.type",
    "domain-name:resolves_to_refs[*].type",
    "network-traffic:dst_port",
    "network-traffic:src_port",
    "network-traffic:protocols[*]",
    "network-traffic:protocols",
];

/// Pattern keywords that make a pattern need more than an address.
const NARROWING: [&str; 13] = [
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "NOT",
    "ISSUBSET",
    "ISSUPERSET",
    "WITHIN",
    "REPEATS",
    "START",
    "STOP",
    "SECONDS",
    "TIMES",
    "EXISTS",
];

/// What the last path of a pattern compares.
#[derive(Clone, Copy)]
enum Compared {
    Address(Option<Direction>),
    Beside,
}

/// The quoted values an address pattern compares, each with the direction its path says, or
/// why the pattern is not one takedown can enforce.
pub fn values(pattern: &str) -> Result<Vec<(String, Option<Direction>)>, String> {
    let mut out = Vec::new();
    let (mut depth, mut compared) = (0i32, None);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '\'' => {
                let value = quoted(&mut chars);
                match compared {
                    Some(Compared::Address(said)) => out.push((value, said)),
                    Some(Compared::Beside) => {}
                    None => return Err("the pattern has a value no path compares".into()),
                }
            }
            c if c.is_whitespace() || "(),=".contains(c) => {}
            c => {
                let w = word(c, &mut chars);
                if w.contains(':') {
                    compared = Some(path(&w)?);
                } else {
                    keyword(&w, depth, compared)?;
                }
            }
        }
    }
    if out.is_empty() {
        return Err("the pattern compares no value".into());
    }
    Ok(out)
}

/// What a path compares, or why the pattern cannot be enforced.
fn path(w: &str) -> Result<Compared, String> {
    if let Some((_, said)) = ADDRESS_PATHS.iter().find(|(p, _)| *p == w) {
        return Ok(Compared::Address(*said));
    }
    if BESIDE.contains(&w) {
        return Ok(Compared::Beside);
    }
    Err(format!("the pattern compares {}, not an address", super::token::shown(w)))
}

/// Checks a word that is no path: AND and OR inside an observation, OR between observations,
/// IN, and an unquoted number beside a port.
fn keyword(w: &str, depth: i32, compared: Option<Compared>) -> Result<(), String> {
    let is = |k: &str| w.eq_ignore_ascii_case(k);
    if is("OR") || is("IN") || (is("AND") && depth > 0) {
        return Ok(());
    }
    if is("AND") {
        return Err("the pattern needs two observations at once (AND between [...])".into());
    }
    let number = w.bytes().all(|b| b.is_ascii_digit());
    if number && matches!(compared, Some(Compared::Beside)) {
        return Ok(());
    }
    let narrowing = NARROWING.iter().any(|k| is(k)) || w.contains(['!', '<', '>']);
    let what = if narrowing { "needs more than an address" } else { "has" };
    Err(format!("the pattern {what} ({})", super::token::shown(w)))
}

/// A word starting with `first`: a path (with its `[*]` indexes), a keyword or a number.
fn word(first: char, chars: &mut std::iter::Peekable<std::str::Chars>) -> String {
    let mut w = String::from(first);
    while let Some(&c) = chars.peek() {
        if c == '[' && w.contains(':') {
            // An index inside a path: `resolves_to_refs[*].value`.
            for c in chars.by_ref() {
                w.push(c);
                if c == ']' {
                    break;
                }
            }
            continue;
        }
        if c == '\'' && w.contains(':') && w.ends_with('.') {
            // A quoted property name inside a path: `file:hashes.'SHA-256'`.
            chars.next();
            w.push_str(&format!("'{}'", quoted(chars)));
            continue;
        }
        if c.is_whitespace() || "()[],='".contains(c) {
            break;
        }
        w.push(c);
        chars.next();
    }
    w
}

/// The rest of a quoted string whose opening quote was read (`\'` and `\\` unescaped).
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars>) -> String {
    let mut s = String::new();
    while let Some(q) = chars.next() {
        match q {
            '\\' => s.extend(chars.next()),
            '\'' => break,
            other => s.push(other),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Vec<String> {
        values(p).unwrap().into_iter().map(|v| v.0).collect()
    }

    #[test]
    fn address_patterns_give_their_values_and_others_say_why_not() {
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
        assert!(why("[url:value = 'http://x.example/']").contains("compares url:value"));
        assert!(why("[file:hashes.'SHA-256' = 'aa']").contains("compares file:hashes.'SHA-256',"));
        assert!(why("[ipv4-addr:value != '1.2.3.4']").contains("more than an address"));
        assert!(
            why("[ipv4-addr:value = '1.2.3.4' AND url:value = 'http://x/']")
                .contains("compares url:value")
        );
        assert!(
            why("[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '1.2.3.5']")
                .contains("two observations")
        );
        assert!(
            why("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']")
                .contains("more than an address")
        );
        assert!(
            why("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS").contains("more than an address")
        );
    }

    /// The patterns misp-stix writes for MISP's IP attributes (tests/fixtures/misp-stix/).
    #[test]
    fn type_tests_and_ports_beside_an_address_narrow_nothing() {
        let dst = "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.161']";
        assert_eq!(values(dst).unwrap(), [("198.51.100.161".into(), Some(Direction::Dst))]);
        let port = "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.162' AND network-traffic:dst_port = '443']";
        assert_eq!(ok(port), ["198.51.100.162"]);
        assert_eq!(
            ok("[ipv4-addr:value = '192.0.2.9' AND network-traffic:dst_port = 443]"),
            ["192.0.2.9"]
        );
        let src = "[(network-traffic:src_ref.type = 'ipv6-addr' AND network-traffic:src_ref.value = '2001:db8::7')]";
        assert_eq!(values(src).unwrap(), [("2001:db8::7".into(), Some(Direction::Src))]);
        let domain_ip = "[domain-name:value = 'c2.example.org' AND domain-name:resolves_to_refs[*].value = '192.0.2.77']";
        assert_eq!(ok(domain_ip), ["c2.example.org", "192.0.2.77"]);
        assert!(values("[network-traffic:dst_port = '443']").unwrap_err().contains("no value"));
    }
}
