//! STIX 2.1 bundles and TAXII envelopes (format `stix`): indicators whose pattern compares
//! addresses or domains (see [`super::stix_pattern`]), and address objects given alone.
//!
//! - Of the versions of one indicator (same `id`), only the newest (`modified`, compared as a
//!   time) counts: a newest version that is revoked revokes.
//! - An indicator counts from its `valid_from` to its `valid_until`; the earliest of those
//!   moments still to come is kept, and the daemon reads the list again then.
//! - An `ipv4-addr`, `ipv6-addr` or `domain-name` object is an entry only when given alone: one
//!   that observed-data holds (or another object points to) is a sighting, and one an indicator
//!   is based on lives and ends with that indicator's pattern (an object cannot be revoked).
//!
//! Each object is read on its own, so that one malformed object costs only itself; the
//! "line" of an object is its rank in the bundle.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ParsedList, token::shown};

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    objects: Option<Vec<&'a RawValue>>,
}

/// The properties of an object that takedown reads; the rest are skipped unread.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Object<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pattern: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pattern_type: Option<Cow<'a, str>>,
    revoked: bool,
    #[serde(borrow)]
    modified: Option<Cow<'a, str>>,
    #[serde(borrow)]
    valid_from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    valid_until: Option<Cow<'a, str>>,
    object_refs: Vec<String>,
    src_ref: Option<String>,
    dst_ref: Option<String>,
    resolves_to_refs: Vec<String>,
    source_ref: Option<String>,
    target_ref: Option<String>,
}

const ADDRESS_OBJECTS: [&str; 3] = ["ipv4-addr", "ipv6-addr", "domain-name"];

/// Parses a bundle at time `now` (Unix seconds).
pub fn parse(text: &str, list: &mut ParsedList, now: u64) -> Result<()> {
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => bail!("invalid JSON at line {}: {e}", e.line()),
    };
    let Some(raw) = envelope.objects else {
        bail!("a STIX bundle without \"objects\"");
    };
    // Two passes over the objects, each read and dropped at once: a bundle of 100,000
    // indicators never lives in memory as objects, only as its text.
    let seen = Seen::of(&raw, list);
    let mut sightings = None;
    for (i, r) in raw.iter().enumerate() {
        let line = i + 1;
        let Ok(obj) = serde_json::from_str::<Object>(r.get()) else { continue };
        let id = shown(&obj.id);
        match obj.kind.as_ref() {
            k if ADDRESS_OBJECTS.contains(&k) => {
                if seen.held.contains(obj.id.as_ref()) {
                    let (first, n) = sightings.get_or_insert((line, 0));
                    *first = (*first).min(line);
                    *n += 1;
                    continue;
                }
                match &obj.value {
                    Some(v) => list.push_field(line, v),
                    None => list.skip(line, format!("{id}: no value")),
                }
            }
            "indicator" if seen.newest.get(obj.id.as_ref()).map(|n| n.1) == Some(line) => {
                indicator(&obj, &id, line, list, now)
            }
            _ => {} // older versions, malware, relationships, identities...: not entries
        }
    }
    if let Some((line, n)) = sightings {
        let what = "held by observed-data, another object or an indicator's pattern";
        list.warn(line, format!("{n} address objects {what}: sightings, not entries"));
    }
    Ok(())
}

/// The time of an object's version (its `modified`), compared as a time (`...00.500Z` is
/// after `...00Z`); `None`, older than any, when missing or unreadable.
pub fn version_time(modified: Option<&str>) -> Option<jiff::Timestamp> {
    modified.and_then(|m| m.parse::<jiff::Timestamp>().ok())
}

/// What the first pass over a bundle learns.
#[derive(Default)]
struct Seen<'a> {
    /// The newest version of each indicator id: its time and line.
    newest: HashMap<Cow<'a, str>, (Option<jiff::Timestamp>, usize)>,
    /// The ids of the address objects that are no entries of their own: held by
    /// observed-data, pointed to by another object (a network-traffic's `dst_ref`, a domain's
    /// `resolves_to_refs`), or at one end of a relationship with an indicator.
    held: HashSet<String>,
}

impl<'a> Seen<'a> {
    /// Reads every object once; notes those that cannot be read.
    fn of(raw: &[&'a RawValue], list: &mut ParsedList) -> Self {
        let mut seen = Seen::default();
        for (i, r) in raw.iter().enumerate() {
            match serde_json::from_str::<Object>(r.get()) {
                Ok(o) => seen.take(o, i + 1),
                Err(e) => list.skip(i + 1, format!("object {}: unreadable: {e}", i + 1)),
            }
        }
        seen
    }

    fn take(&mut self, o: Object<'a>, line: usize) {
        match o.kind.as_ref() {
            "indicator" => {
                let at = version_time(o.modified.as_deref());
                let newest = self.newest.entry(o.id).or_insert((at, line));
                if at > newest.0 {
                    *newest = (at, line);
                }
            }
            "observed-data" => self.held.extend(o.object_refs),
            "relationship" => {
                let ends = [o.source_ref, o.target_ref].map(Option::unwrap_or_default);
                if ends.iter().any(|e| e.starts_with("indicator--")) {
                    self.held.extend(ends);
                }
            }
            _ => {
                let refs = [o.src_ref, o.dst_ref].into_iter().flatten();
                self.held.extend(refs.chain(o.resolves_to_refs));
            }
        }
    }
}

/// A moment of an indicator's validity, in Unix seconds, or a note on why it is unreadable.
fn moment(obj_id: &str, name: &str, at: Option<&str>) -> Result<Option<u64>, String> {
    let Some(at) = at else { return Ok(None) };
    match at.parse::<jiff::Timestamp>() {
        Ok(t) => Ok(Some(t.as_second().max(0) as u64)),
        Err(_) => Err(format!("{obj_id}: unreadable {name} {:?}", shown(at))),
    }
}

fn indicator(obj: &Object, id: &str, line: usize, list: &mut ParsedList, now: u64) {
    if obj.revoked {
        return list.skip(line, format!("{id}: revoked"));
    }
    let (from, until) = match (
        moment(id, "valid_from", obj.valid_from.as_deref()),
        moment(id, "valid_until", obj.valid_until.as_deref()),
    ) {
        (Ok(f), Ok(u)) => (f, u),
        (Err(why), _) | (_, Err(why)) => return list.skip(line, why),
    };
    if until.is_some_and(|u| u <= now) {
        list.expired += 1;
        let u = obj.valid_until.as_deref().map(shown).unwrap_or_default();
        return list.skip(line, format!("{id}: valid until {u}, passed"));
    }
    if let Some(f) = from.filter(|f| *f > now) {
        list.pending += 1;
        list.changes_at = Some(list.changes_at.map_or(f, |c| c.min(f)));
        let f = obj.valid_from.as_deref().map(shown).unwrap_or_default();
        return list.skip(line, format!("{id}: valid from {f}, not yet"));
    }
    if obj.pattern_type.as_deref().is_some_and(|t| t != "stix") {
        return list.skip(line, format!("{id}: not a STIX pattern"));
    }
    match super::stix_pattern::values(obj.pattern.as_deref().unwrap_or("")) {
        Ok(values) => {
            for (v, said) in values {
                list.push_field_as(line, &v, said);
            }
            if let Some(t) = until {
                list.changes_at = Some(list.changes_at.map_or(t, |e| e.min(t)));
            }
        }
        Err(why) => list.skip(line, format!("{id}: {why}")),
    }
}
