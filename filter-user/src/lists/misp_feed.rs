//! MISP feeds: a directory (or URL) holding `manifest.json`, which names each event by uuid,
//! and one `<uuid>.json` a event. A feed is read as one list: its events joined into a JSON
//! array, which the `misp` format reads. A uuid that is not one (path separators, dots) is
//! refused, so a manifest cannot name a file outside the feed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The file that names a feed's events.
pub const MANIFEST: &str = "manifest.json";

/// The feed directory `path` names: a directory holding a manifest, or the manifest itself.
pub fn feed_dir(path: &Path) -> Option<PathBuf> {
    if path.is_dir() && path.join(MANIFEST).is_file() {
        return Some(path.to_path_buf());
    }
    let named = path.file_name().is_some_and(|n| n == MANIFEST);
    named.then(|| path.parent().unwrap_or(Path::new(".")).to_path_buf())
}

/// One event a manifest names: its uuid and its `timestamp` (changed when the event is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    pub uuid: String,
    pub timestamp: String,
}

/// The events a manifest names, in its order.
pub fn events(manifest: &[u8]) -> Result<Vec<FeedEvent>> {
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(manifest).context("the manifest is not a JSON object")?;
    let mut out = Vec::with_capacity(doc.len());
    for (uuid, meta) in doc {
        let ok = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !ok {
            bail!(
                "the manifest names {:?}, which is not an event uuid",
                super::token::shown(&uuid)
            );
        }
        let timestamp = match meta.get("timestamp") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        out.push(FeedEvent { uuid, timestamp });
    }
    Ok(out)
}

/// The event files of a feed, joined: `[event, event, ...]`.
pub fn join<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(b"]\n");
    out
}

/// Reads the feed in directory `dir`: the manifest, then every event it names (all of it at
/// most `max` bytes).
pub fn read_dir(dir: &Path, max: u64) -> Result<Vec<u8>> {
    let manifest = super::read_file(&dir.join(MANIFEST), max)?;
    let mut left = max.saturating_sub(manifest.len() as u64);
    let mut bodies = Vec::new();
    for e in events(&manifest).with_context(|| format!("{}", dir.join(MANIFEST).display()))? {
        let body = super::read_file(&dir.join(format!("{}.json", e.uuid)), left)
            .with_context(|| format!("the feed {} is incomplete or too large", dir.display()))?;
        left -= body.len() as u64;
        bodies.push(body);
    }
    Ok(join(bodies.iter().map(Vec::as_slice)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_events_and_nothing_else() {
        let m = br#"{"5f1e0c9a-1b2c-4d5e-8f90-0a1b2c3d4e5f":{"info":"x","timestamp":"1700000000"},
                     "aa-bb":{"timestamp":1700000001}}"#;
        let got = events(m).unwrap();
        assert_eq!(got[0].timestamp, "1700000000");
        assert_eq!((got[1].uuid.as_str(), got[1].timestamp.as_str()), ("aa-bb", "1700000001"));
        for bad in [&br#"{"../../etc/passwd":{}}"#[..], br#"{"a/b":{}}"#, br#"[1]"#] {
            assert!(events(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(join([&b"{}"[..], b"{}"]), b"[{},\n{}]\n");
    }
}
