//! JSON lists: Spamhaus DROP JSON lines and CrowdSec decision streams.

use anyhow::{Result, bail};
use serde_json::Value;

use super::ParsedList;

/// One JSON object a line; objects with a `cidr` are entries, the others (the final metadata
/// line) carry no entry.
pub fn parse_spamhaus(text: &str, list: &mut ParsedList) {
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(o)) => match o.get("cidr") {
                Some(Value::String(cidr)) => list.push_field(line, cidr),
                Some(other) => list.skip(
                    line,
                    format!("cidr is not a string: {}", super::token::shown(&other.to_string())),
                ),
                None => {} // metadata record
            },
            Ok(_) => list.skip(line, "not a JSON object".into()),
            Err(e) => list.skip(line, format!("invalid JSON: {e}")),
        }
    }
}

/// `{"new":[{"scope":"Ip"|"Range","value":...}], "deleted":[...]}`: the `new` decisions with
/// an address scope are entries. As a full list, `deleted` decisions are simply absent.
pub fn parse_crowdsec(text: &str, list: &mut ParsedList) -> Result<()> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => bail!("invalid JSON at line {}: {e}", e.line()),
    };
    let Some(new) = doc.get("new") else {
        return Ok(()); // only deletions (or null): nothing to enforce
    };
    let decisions = match new {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        _ => bail!("\"new\" is not an array"),
    };
    for (i, d) in decisions.iter().enumerate() {
        let scope = d.get("scope").and_then(Value::as_str).unwrap_or("");
        let value = d.get("value").and_then(Value::as_str);
        match (scope.to_ascii_lowercase().as_str(), value) {
            ("ip" | "range", Some(v)) => {
                let before = list.skipped.len();
                list.push_field(1, v);
                if let Some(note) = list.skipped.get_mut(before) {
                    note.reason = format!("new[{i}]: {}", note.reason);
                }
            }
            ("ip" | "range", None) => list.skip(1, format!("new[{i}]: decision without a value")),
            _ => list.skip(
                1,
                format!(
                    "new[{i}]: scope {:?} is not an address or range",
                    super::token::shown(scope)
                ),
            ),
        }
    }
    Ok(())
}
