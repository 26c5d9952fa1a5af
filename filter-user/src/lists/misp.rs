//! MISP events (format `misp`) and MISP's CSV export (format `misp-csv`).
//!
//! JSON: one event `{"Event":{...}}` (a feed's event file), a search result
//! `{"response":[{"Event":...},...]}`, or an array of events (what a feed becomes once its
//! events are fetched), or one event with no wrapper (pymisp's `MISPEvent.to_json()`). The
//! attributes of each event and of its objects count. Types `ip-dst`, `ip-src`, `hostname`
//! (and their `|port` forms, the port coming off), `domain` and `domain|ip` are entries;
//! `ip-src` blocks packets from the address and `ip-dst` packets to it, unless the list gives a
//! direction. Only attributes marked `to_ids` load unless the list says `misp_all`; deleted and
//! decayed attributes (and the attributes of deleted objects) never do. Every skipped
//! attribute or object is noted with its uuid; attributes of other types (hashes, URLs, ...)
//! are not addresses and are passed over. The "line" of an attribute is its rank in the
//! document.

use anyhow::{Result, bail};
use serde_json::Value;

use super::{ParsedList, entry::Direction, token::shown};

/// One attribute, as either export gives it.
struct Attribute<'a> {
    uuid: &'a str,
    kind: &'a str,
    value: &'a str,
    to_ids: bool,
    deleted: bool,
}

/// Parses a MISP JSON document at time `now` (Unix seconds): an attribute whose decay ends
/// later sets the list's `changes_at`.
pub fn parse_json(text: &str, list: &mut ParsedList, now: u64) -> Result<()> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => bail!("invalid JSON at line {}: {e}", e.line()),
    };
    let Some(events) = events(&doc) else {
        bail!(
            "not a MISP event (no \"Event\" object, \"response\", array of events, or event \
             with \"info\" and \"Attribute\")"
        );
    };
    let mut rank = 0;
    for event in events {
        let objects = event.get("Object").and_then(Value::as_array).into_iter().flatten();
        let nested = objects.clone().filter(|o| !truthy(o.get("deleted")));
        let attrs = event.get("Attribute").and_then(Value::as_array).into_iter().flatten();
        let nested = nested.flat_map(|o| o.get("Attribute").and_then(Value::as_array));
        for a in attrs.chain(nested.flatten()) {
            rank += 1;
            let decays = super::misp_decay::decays_at(a);
            if super::misp_decay::flagged(a) || decays.is_some_and(|t| t <= now) {
                let uuid = a.get("uuid").and_then(Value::as_str).unwrap_or("?");
                list.expired += 1;
                list.skip(rank, format!("attribute {}: decayed", shown(uuid)));
                continue;
            }
            let field = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
            let attr = Attribute {
                uuid: a.get("uuid").and_then(Value::as_str).unwrap_or("?"),
                kind: field("type"),
                value: field("value"),
                to_ids: truthy(a.get("to_ids")),
                deleted: truthy(a.get("deleted")),
            };
            let before = list.len();
            attribute(list, rank, &attr);
            if let Some(t) = decays.filter(|_| list.len() > before) {
                list.changes_at = Some(list.changes_at.map_or(t, |e| e.min(t)));
            }
        }
        // Deleted objects are noted after the attributes, so that ranks stay those of attributes.
        for o in objects.clone().filter(|o| truthy(o.get("deleted"))) {
            rank += 1;
            let uuid = shown(o.get("uuid").and_then(Value::as_str).unwrap_or("?"));
            list.skip(rank, format!("object {uuid}: deleted (its attributes with it)"));
        }
    }
    Ok(())
}

/// The events of a document: `{"Event":...}`, `{"response":[...]}`, `[...]`, or one event
/// with no wrapper (pymisp's `MISPEvent.to_json()`).
fn events(doc: &Value) -> Option<Vec<&Value>> {
    if let Some(e) = doc.get("Event") {
        return Some(vec![e]);
    }
    let has = |k: &str| doc.get(k).is_some();
    if has("info") && (has("Attribute") || has("Object")) {
        return Some(vec![doc]);
    }
    let items = doc.get("response").unwrap_or(doc).as_array()?;
    Some(items.iter().map(|v| v.get("Event").unwrap_or(v)).collect())
}

/// MISP writes booleans as `true`, `1`, `"1"` or `"True"` depending on the export.
pub(super) fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "1" | "true"),
        _ => false,
    }
}

/// The columns MISP's CSV export has, of those read.
const CSV_NEEDED: [&str; 3] = ["type", "value", "to_ids"];

/// True when `header` (lower-cased names) is MISP's CSV export.
pub fn is_csv_header(names: &[String]) -> bool {
    CSV_NEEDED.iter().all(|c| names.iter().any(|n| n == c))
}

/// Parses MISP's CSV export (`uuid,event_id,category,type,value,comment,to_ids,...`).
pub fn parse_csv(text: &str, list: &mut ParsedList) -> Result<()> {
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let names: Vec<String> = reader.headers()?.iter().map(str::to_ascii_lowercase).collect();
    if !is_csv_header(&names) {
        bail!("no MISP CSV header (needs the columns {})", CSV_NEEDED.join(", "));
    }
    let col = |c: &str| names.iter().position(|n| n == c);
    let (kind, value, to_ids) = (col("type"), col("value"), col("to_ids"));
    let (uuid, deleted) = (col("uuid"), col("deleted"));
    for record in reader.records() {
        let (record, line) = match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                (r, line)
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                list.skip(line, format!("unreadable CSV record: {e}"));
                continue;
            }
        };
        let get = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
        let flag = |i| truthy(Some(&Value::String(get(i).into())));
        let attr = Attribute {
            uuid: if get(uuid).is_empty() { "?" } else { get(uuid) },
            kind: get(kind),
            value: get(value),
            to_ids: flag(to_ids),
            deleted: flag(deleted),
        };
        attribute(list, line, &attr);
    }
    Ok(())
}

/// Adds one attribute, or notes why not.
fn attribute(list: &mut ParsedList, line: usize, a: &Attribute) {
    let (said, values): (Option<Direction>, Vec<&str>) = match a.kind {
        "ip-dst" => (Some(Direction::Dst), vec![a.value]),
        "ip-src" => (Some(Direction::Src), vec![a.value]),
        "ip-dst|port" => (Some(Direction::Dst), vec![without_port(a.value)]),
        "ip-src|port" => (Some(Direction::Src), vec![without_port(a.value)]),
        "domain" | "hostname" => (None, vec![a.value]),
        "hostname|port" => (None, vec![without_port(a.value)]),
        "domain|ip" => (None, a.value.splitn(2, '|').collect()),
        _ => return, // hashes, URLs, e-mail addresses...: not network entries
    };
    let id = shown(a.uuid);
    if a.deleted {
        return list.skip(line, format!("attribute {id}: deleted"));
    }
    if !a.to_ids && !list.misp_all {
        return list.skip(
            line,
            format!("attribute {id}: to_ids is off (--misp-all or misp_all = true takes it)"),
        );
    }
    for v in values {
        list.push_field_as(line, v.trim(), said);
    }
}

/// `192.0.2.1|443` or `2001:db8::1|443` without its port.
fn without_port(value: &str) -> &str {
    value.rsplit_once('|').map_or(value, |(addr, _)| addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_in_every_spelling_and_ports_come_off() {
        for (v, want) in [("true", true), ("1", true), ("\"1\"", true), ("\"True\"", true)] {
            assert_eq!(truthy(Some(&serde_json::from_str(v).unwrap())), want, "{v}");
        }
        for v in ["false", "0", "\"0\"", "null", "\"no\""] {
            assert!(!truthy(Some(&serde_json::from_str(v).unwrap())), "{v}");
        }
        assert_eq!(without_port("192.0.2.1|443"), "192.0.2.1");
        assert_eq!(without_port("2001:db8::1|8080"), "2001:db8::1");
        assert_eq!(without_port("192.0.2.1"), "192.0.2.1");
    }

    fn read(text: &str, direction: Option<Direction>, misp_all: bool) -> ParsedList {
        let opts = crate::lists::ListOptions { direction, misp_all, ..Default::default() };
        crate::lists::parse_text(std::path::Path::new("event.json"), text, &opts).unwrap()
    }

    fn got(l: &ParsedList) -> Vec<String> {
        let nets = l.entries.iter().map(|e| format!("{} {}", e.net, e.direction));
        nets.chain(l.domains.iter().map(|d| format!("{} {}", d.name, d.direction))).collect()
    }

    const EVENT: &str = r#"{"Event":{"info":"Operation example","Attribute":[
        {"uuid":"a1","type":"ip-dst","value":"203.0.113.7","to_ids":true},
        {"uuid":"a2","type":"ip-src","value":"198.51.100.0/24","to_ids":"1"},
        {"uuid":"a3","type":"ip-dst|port","value":"2001:db8:bad::7|443","to_ids":true},
        {"uuid":"a4","type":"domain","value":"c2.example","to_ids":true},
        {"uuid":"a5","type":"domain|ip","value":"drop.example|192.0.2.55","to_ids":true},
        {"uuid":"a6","type":"ip-dst","value":"192.0.2.66","to_ids":false},
        {"uuid":"a7","type":"ip-dst","value":"192.0.2.77","to_ids":true,"deleted":true},
        {"uuid":"a8","type":"sha256","value":"e3b0c44298fc1c149afbf4c8996fb924","to_ids":true},
        {"uuid":"a9","type":"ip-dst","value":"not-an-ip","to_ids":true},
        {"uuid":"a10","type":"ip-dst","value":"192.0.2.100","to_ids":true,
         "decay_score":[{"score":12.5,"decayed":true,"DecayingModel":{"name":"NIDS"}}]},
        {"uuid":"a11","type":"ip-dst","value":"192.0.2.111","to_ids":true,
         "decay_score":[{"score":80.0,"decayed":false,"DecayingModel":{"name":"NIDS"}}]}],
      "Object":[{"name":"ip-port","Attribute":[
        {"uuid":"b1","type":"ip-src|port","value":"192.0.2.88|8080","to_ids":true}]},
        {"name":"gone","deleted":true,"Attribute":[
        {"uuid":"b2","type":"ip-dst","value":"192.0.2.99","to_ids":true}]}]}}"#;

    #[test]
    fn an_event_gives_its_address_attributes_with_their_sides() {
        let l = read(EVENT, None, false);
        assert_eq!(l.format, crate::lists::Format::Misp, "detected");
        assert_eq!(
            got(&l),
            [
                "203.0.113.7/32 dst",
                "198.51.100.0/24 src",
                "2001:db8:bad::7/128 dst",
                "192.0.2.55/32 both",
                "192.0.2.111/32 dst",
                "192.0.2.88/32 src",
                "c2.example both",
                "drop.example both",
            ]
        );
        let notes: Vec<String> =
            l.skipped.iter().map(|n| format!("{}: {}", n.line, n.reason)).collect();
        assert_eq!(notes.len(), 5, "{notes:?}");
        assert!(notes[0].starts_with("6: attribute a6: to_ids is off"), "{notes:?}");
        assert_eq!(notes[1], "7: attribute a7: deleted");
        assert!(notes[2].starts_with("9: ") && notes[2].contains("not-an-ip"), "{notes:?}");
        assert_eq!(notes[3], "10: attribute a10: decayed");
        assert_eq!(notes[4], "13: object ?: deleted (its attributes with it)");
    }

    #[test]
    fn the_list_direction_and_misp_all_override_the_attributes() {
        let l = read(EVENT, Some(Direction::Both), true);
        assert!(l.entries.iter().all(|e| e.direction == Direction::Both));
        assert!(l.entries.iter().any(|e| e.net.to_string() == "192.0.2.66/32"), "to_ids off");
        assert!(!l.entries.iter().any(|e| e.net.to_string() == "192.0.2.77/32"), "deleted");
        let search = format!(r#"{{"response":[{EVENT}]}}"#);
        assert_eq!(got(&read(&search, None, false)), got(&read(EVENT, None, false)));
        let feed = format!("[{EVENT},{EVENT}]");
        assert_eq!(read(&feed, None, false).entries.len(), 12);
    }

    #[test]
    fn the_csv_export_reads_like_the_events() {
        let csv = "uuid,event_id,category,type,value,comment,to_ids,date,object_relation\n\
            c1,1,Network activity,ip-dst,203.0.113.7,,1,1700000000,\n\
            c2,1,Network activity,ip-src|port,198.51.100.9|22,,True,1700000000,\n\
            c3,1,Network activity,hostname,C2.Example.,,1,1700000000,\n\
            c4,1,Network activity,ip-dst,192.0.2.66,,0,1700000000,\n\
            c5,1,Payload delivery,md5,d41d8cd98f00b204e9800998ecf8427e,,1,1700000000,\n";
        let l = read(csv, None, false);
        assert_eq!(l.format, crate::lists::Format::MispCsv, "detected");
        assert_eq!(got(&l), ["203.0.113.7/32 dst", "198.51.100.9/32 src", "c2.example both"]);
        assert_eq!(l.skipped.len(), 1);
        assert_eq!(l.skipped[0].line, 5);
        assert!(l.skipped[0].reason.starts_with("attribute c4: to_ids is off"));
    }
}
