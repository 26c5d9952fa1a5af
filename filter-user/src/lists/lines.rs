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

/// Texts from this size on are parsed on several threads.
const PARALLEL_BYTES: usize = 1 << 20;

/// One entry a line (see [`parse_chunk`]); a large text is cut at line ends into one piece a
/// CPU (at most 8), parsed at once, and joined in order with its line numbers.
pub fn parse_lines(text: &str, list: &mut ParsedList) {
    let threads = crate::parallel::threads(8);
    if threads < 2 || text.len() < PARALLEL_BYTES {
        parse_chunk(text, list);
        return;
    }
    let mut pieces = Vec::with_capacity(threads);
    let mut rest = text;
    for left in (1..=threads).rev() {
        let cut = match rest.len() / left {
            0 => rest.len(),
            // A byte search: `n` need not fall on a character boundary; a cut after b'\n' does.
            n => rest.as_bytes()[n..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| n + i + 1),
        };
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    let parts: Vec<(ParsedList, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|piece| {
                let mut part = list.empty_like();
                s.spawn(move || {
                    // An entry takes a line of 8 bytes at least (7 for the last): room for
                    // every one is reserved at once (address space only, until written), so
                    // the entries are never copied to a larger buffer.
                    part.entries.reserve(piece.len() / 8 + 1);
                    let lines = parse_chunk(piece, &mut part);
                    (part, lines)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("parse thread")).collect()
    });
    let mut before = 0;
    for (part, lines) in parts {
        list.absorb(part, before);
        before += lines;
    }
}

/// One entry a line: the first field (extra columns after a blank are ignored, but an address
/// among them, or right after a comment sign, is noted: it is not loaded). Lines are numbered
/// from 1; returns how many there were.
fn parse_chunk(text: &str, list: &mut ParsedList) -> usize {
    let (mut count, mut bare) = (0, 0);
    for (i, raw) in text.lines().enumerate() {
        count = i + 1;
        if let Some(ip) = bare_ipv4(raw) {
            list.push_ipv4(i + 1, ip);
            bare += 1;
            continue;
        }
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
    if bare > 0 {
        *list.kinds.entry(super::Kind::Ip).or_default() += bare;
    }
    count
}

/// The address of a line that is an IPv4 address and nothing else (most lines of the largest
/// lists), read in one pass over its bytes: four decimal octets of one to three digits, none
/// above 255 and none with a leading zero, which is exactly what `Ipv4Addr::from_str` accepts.
/// Any other line is left to the general field rules.
fn bare_ipv4(line: &str) -> Option<std::net::Ipv4Addr> {
    let bytes = line.as_bytes();
    if !(7..=15).contains(&bytes.len()) {
        return None;
    }
    let (mut octets, mut done, mut value, mut digits) = ([0u8; 4], 0, 0u16, 0);
    for &b in bytes {
        match b {
            b'0'..=b'9' if digits < 3 && !(digits == 1 && value == 0) => {
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && done < 3 && value <= 255 => {
                octets[done] = value as u8;
                (done, value, digits) = (done + 1, 0, 0);
            }
            _ => return None,
        }
    }
    if done != 3 || digits == 0 || value > 255 {
        return None;
    }
    octets[3] = value as u8;
    Some(octets.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_list_parsed_in_pieces_is_the_list_parsed_whole() {
        let mut text = String::new();
        for i in 0..120_000u32 {
            let [a, b, c, d] = i.to_be_bytes();
            match i % 1000 {
                7 => text.push_str("not-an-ip-\u{e9}\u{e9}\n"),
                8 => text.push_str(&format!("10.{b}.{c}.{d} 198.51.100.1\n")),
                9 => text.push_str("# comment \u{2603}\n\n"),
                _ => text.push_str(&format!("{}.{b}.{c}.{d}\n", a + 1)),
            }
        }
        assert!(text.len() > PARALLEL_BYTES);
        let (mut whole, mut pieces) = (ParsedList::default(), ParsedList::default());
        parse_chunk(&text, &mut whole);
        parse_lines(&text, &mut pieces);
        assert_eq!(pieces.entries, whole.entries);
        assert_eq!(pieces.skipped, whole.skipped);
        assert_eq!(pieces.warnings, whole.warnings);
        assert_eq!(pieces.kinds, whole.kinds);
        assert_eq!(whole.skipped.len(), 120);
        assert_eq!(whole.entries.last().unwrap().line, text.lines().count());
    }

    #[test]
    fn the_bare_address_reader_accepts_exactly_what_the_standard_parser_accepts() {
        // Every string of digits and dots from a seeded generator, biased towards four
        // groups, plus octets with leading zeros and above 255.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut checked = 0;
        for _ in 0..300_000 {
            let line: String = match next(2) {
                0 => (0..4)
                    .map(|_| match next(4) {
                        0 => format!("0{}", next(30)),
                        _ => next(300).to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("."),
                _ => {
                    (0..7 + next(9)).map(|_| b"0123456789..."[next(13) as usize] as char).collect()
                }
            };
            let expected = line.parse::<std::net::Ipv4Addr>().ok();
            let plain = (7..=15).contains(&line.len());
            assert_eq!(bare_ipv4(&line), expected.filter(|_| plain), "{line:?}");
            checked += usize::from(expected.is_some());
        }
        assert!(checked > 20_000, "the generator made too few valid addresses: {checked}");
    }

    #[test]
    fn a_bare_address_line_reads_as_the_general_rules_read_it() {
        let lines = [
            "192.0.2.1",
            "1.2.3.4",
            "255.255.255.255",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "192.0.2.300",
            "192.0.2.1 ",
            "192.0.2.2\r",
            "123456789012345",
        ];
        let text = lines.join("\n");
        let mut fast = ParsedList::default();
        parse_chunk(&text, &mut fast);
        let mut general = ParsedList::default();
        for (i, line) in text.lines().enumerate() {
            if let Some(field) = content(line).split_ascii_whitespace().next() {
                general.push_field(i + 1, field);
            }
        }
        assert_eq!(fast.entries, general.entries);
        assert_eq!(fast.skipped, general.skipped);
        assert_eq!(fast.kinds, general.kinds);
        assert_eq!(fast.entries.len(), 5);
    }
}
