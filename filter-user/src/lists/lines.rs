//! Line-oriented formats: plain, FireHOL netset, Spamhaus DROP text, maltrail-style trails, and
//! hosts files.

use super::{ParsedList, detect::SINKS};

/// The part of a line before its comment. `#` and `;` start a comment anywhere, except in a
/// line holding a URL, where they must stand at the start or after a blank.
fn content(line: &str) -> &str {
    if line.contains("://") {
        let mut prev_blank = true;
        for (i, c) in line.char_indices() {
            if (c == '#' || c == ';') && prev_blank {
                return &line[..i];
            }
            prev_blank = c.is_whitespace();
        }
        line
    } else {
        line.split(['#', ';']).next().unwrap_or("")
    }
}

/// One entry a line: the first field (extra columns after a blank are ignored, but an address
/// among them, or right after a comment sign, is noted: it is not loaded).
pub fn parse_lines(text: &str, list: &mut ParsedList) {
    for (i, raw) in text.lines().enumerate() {
        let body = content(raw);
        let mut fields = body.split_ascii_whitespace();
        let Some(field) = fields.next() else { continue };
        list.push_field(i + 1, field);
        let after_comment = raw.get(body.len() + 1..).unwrap_or("");
        if fields.any(is_address) {
            list.warn(i + 1, "several addresses on one line: only the first is loaded".into());
        } else if after_comment.split_ascii_whitespace().next().is_some_and(is_address) {
            let sign = &raw[body.len()..=body.len()];
            list.warn(i + 1, format!("an address after {sign:?} is read as a comment: not loaded"));
        }
    }
}

fn is_address(field: &str) -> bool {
    field.parse::<std::net::IpAddr>().is_ok() || field.parse::<ipnet::IpNet>().is_ok()
}

/// `SINK name [name...]`: every name is a domain entry; the sink is not an entry.
pub fn parse_hosts(text: &str, list: &mut ParsedList) {
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut fields = content(raw).split_ascii_whitespace();
        let Some(sink) = fields.next() else { continue };
        if !SINKS.contains(&sink) {
            list.skip(
                line,
                format!(
                    "not a hosts line (first column {:?} is not a sink address)",
                    super::token::shown(sink)
                ),
            );
            continue;
        }
        let mut any = false;
        for name in fields {
            any = true;
            match super::token::domain(name) {
                Some(d) => list.push(line, super::Target::Domain(d), super::Kind::Domain, None),
                None => {
                    list.skip(line, format!("not a valid domain: {:?}", super::token::shown(name)))
                }
            }
        }
        if !any {
            list.skip(line, "hosts line without a name".into());
        }
    }
}
