//! TAXII 2.1 pull: a list whose source is a TAXII collection. Each refresh asks the API root
//! for the collection's objects (`GET {api root}/collections/{id}/objects/`, TAXII media
//! type), page by page (`limit`, then `next`), and after the first pull only what was added
//! since (`added_after` = the `X-TAXII-Date-Added-Last` of the last pull). The objects are kept
//! by id, newest version (`modified`) first, in the state directory; the list's content is
//! them as one STIX bundle, which the `stix` format reads (so a revoked or expired indicator
//! leaves). Credentials come from files, are read at each pull and never shown.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use reqwest::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The TAXII 2.1 media type.
const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Pages one pull reads at most.
const MAX_PAGES: usize = 10_000;

/// Where the objects come from (`taxii = { url = ..., collection = ... }`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The API root, e.g. `https://taxii.example.org/api1/`.
    pub url: String,
    /// The collection's id.
    pub collection: String,
    /// Basic authentication: the user, with `password_file`.
    pub user: Option<String>,
    /// A file holding the password.
    pub password_file: Option<PathBuf>,
    /// A file holding an API key or token, sent as `Authorization: Bearer <token>`...
    pub token_file: Option<PathBuf>,
    /// ...or in this header instead (`X-Api-Key`, ...).
    pub token_header: Option<String>,
    /// Objects asked for a page.
    #[serde(default = "page")]
    pub page_size: u32,
    /// Objects the collection may hold at most (every version kept is its newest): a pull that
    /// would pass it fails, and the collection stays as it was.
    #[serde(default = "most_objects")]
    pub max_objects: usize,
}

fn most_objects() -> usize {
    1_000_000
}

fn page() -> u32 {
    1000
}

impl Source {
    /// What is wrong with it.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.user.is_some() != self.password_file.is_some() {
            out.push("taxii: give `user` and `password_file` together".into());
        }
        if self.password_file.is_some() && self.token_file.is_some() {
            out.push("taxii: give one of `password_file` and `token_file`".into());
        }
        if self.token_header.is_some() && self.token_file.is_none() {
            out.push("taxii: `token_header` needs `token_file`".into());
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.~".contains(c);
        if self.collection.is_empty() || !self.collection.chars().all(ok) {
            out.push(format!("taxii: collection {:?} is not a collection id", self.collection));
        }
        if self.max_objects == 0 {
            out.push("taxii: max_objects is 0".into());
        }
        if self.page_size == 0 {
            out.push("taxii: page_size is 0".into());
        }
        out
    }

    /// The collection's objects endpoint.
    fn objects_url(&self) -> String {
        format!("{}/collections/{}/objects/", self.url.trim_end_matches('/'), self.collection)
    }

    /// `req` with the credentials, read from their files.
    fn authorize(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        let read = |f: &PathBuf| -> Result<String> {
            let text = std::fs::read_to_string(f).with_context(|| {
                format!("cannot read the TAXII credential file {}", f.display())
            })?;
            let secret = text.trim().to_string();
            anyhow::ensure!(
                !secret.is_empty(),
                "the TAXII credential file {} is empty",
                f.display()
            );
            Ok(secret)
        };
        Ok(match (&self.user, &self.password_file, &self.token_file, &self.token_header) {
            (Some(user), Some(pw), _, _) => req.basic_auth(user, Some(read(pw)?)),
            (_, _, Some(token), Some(h)) => req.header(h.as_str(), read(token)?),
            (_, _, Some(token), None) => req.bearer_auth(read(token)?),
            _ => req,
        })
    }
}

/// A collection as pulled so far (kept in `<state>/taxii-<list>.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Collection {
    /// `added_after` of the next pull.
    pub added_after: Option<String>,
    /// The newest version of each object, by id, as its JSON text (a collection of 100,000
    /// indicators is kept as text, not as a tree of values).
    pub objects: BTreeMap<String, Box<RawValue>>,
}

/// What merging reads of an object.
#[derive(Deserialize)]
struct Version<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    modified: Option<std::borrow::Cow<'a, str>>,
}

impl Version<'_> {
    fn of(raw: &RawValue) -> Option<Version<'_>> {
        serde_json::from_str(raw.get()).ok()
    }

    fn time(&self) -> Option<jiff::Timestamp> {
        crate::lists::version_time(self.modified.as_deref())
    }
}

/// One page of the objects endpoint.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    more: bool,
    next: Option<String>,
    #[serde(default)]
    objects: Vec<Box<RawValue>>,
}

impl Collection {
    /// Takes in `objects`: a version replaces the one kept unless it is older (`modified`,
    /// compared as a time).
    fn merge(&mut self, objects: Vec<Box<RawValue>>) {
        for o in objects {
            let Some(v) = Version::of(&o) else { continue };
            let Some(id) = v.id.as_deref().map(String::from) else { continue };
            let kept = self.objects.get(&id).and_then(|old| Version::of(old));
            if kept.is_none_or(|old| v.time() >= old.time()) {
                self.objects.insert(id, o);
            }
        }
    }

    /// The objects as one STIX bundle (the list's content).
    pub fn bundle(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Bundle<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            id: &'a str,
            objects: Vec<&'a RawValue>,
        }
        let objects = self.objects.values().map(AsRef::as_ref).collect();
        let bundle = Bundle { kind: "bundle", id: "bundle--takedown-taxii", objects };
        serde_json::to_vec(&bundle).unwrap_or_default()
    }

    /// Pulls what was added since the last pull (everything the first time), at most
    /// `max_bytes` of answers; on failure nothing changes.
    pub async fn pull(
        &mut self,
        client: &reqwest::Client,
        source: &Source,
        (timeout, max_bytes): (Duration, u64),
        deadline: &super::fetch::Deadline,
    ) -> Result<usize> {
        let mut next = self.clone();
        let (mut cursor, mut bytes, mut added) = (None::<String>, 0u64, 0);
        for _ in 0..MAX_PAGES {
            deadline.check().map_err(anyhow::Error::msg)?;
            let room = max_bytes - bytes;
            let (added_after, cursor_now) = (next.added_after.as_deref(), cursor.as_deref());
            let (page, last) =
                get_page(client, source, added_after, cursor_now, deadline.bound(timeout), room)
                    .await?;
            bytes += page.len() as u64;
            if bytes > max_bytes {
                bail!("the collection's answers exceed the {max_bytes} byte limit");
            }
            let env: Envelope = serde_json::from_slice(&page)
                .context("the TAXII server's answer is not an envelope")?;
            added += env.objects.len();
            next.merge(env.objects);
            if next.objects.len() > source.max_objects {
                bail!(
                    "the collection would hold more than {} objects (raise the list's taxii \
                     max_objects)",
                    source.max_objects
                );
            }
            // Without `next`, a server pages by `added_after` alone.
            match (env.more, env.next, last) {
                (true, Some(n), _) => cursor = Some(n),
                (true, None, Some(l)) if next.added_after.as_ref() != Some(&l) => {
                    next.added_after = Some(l);
                }
                (true, None, _) => bail!("the TAXII server says there is more but gives no way on"),
                (false, _, last) => {
                    next.added_after = last.or(next.added_after);
                    *self = next;
                    return Ok(added);
                }
            }
        }
        bail!("the collection did not end within {MAX_PAGES} pages")
    }
}

/// One page: its body and its `X-TAXII-Date-Added-Last`.
async fn get_page(
    client: &reqwest::Client,
    source: &Source,
    added_after: Option<&str>,
    cursor: Option<&str>,
    timeout: Duration,
    max: u64,
) -> Result<(Vec<u8>, Option<String>)> {
    let mut url = reqwest::Url::parse(&source.objects_url()).context("taxii url")?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("limit", &source.page_size.to_string());
        if let Some(a) = added_after {
            q.append_pair("added_after", a);
        }
        if let Some(n) = cursor {
            q.append_pair("next", n);
        }
    }
    let req = client.get(url).timeout(timeout);
    let req = source.authorize(req.header(header::ACCEPT, MEDIA_TYPE))?;
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!("the TAXII server cannot be reached: {}", super::http::describe(e))
    })?;
    match resp.status() {
        s if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN => {
            bail!("the TAXII server refused the credentials (HTTP {s})")
        }
        StatusCode::NOT_FOUND => bail!("{}", not_found(client, source, timeout).await),
        s if !s.is_success() => bail!("the TAXII server answered HTTP {s}"),
        _ => {}
    }
    let last = resp.headers().get("x-taxii-date-added-last");
    let last = last.and_then(|v| v.to_str().ok()).map(String::from);
    let body = super::http::bounded_body(resp, max).await;
    let body = body.map_err(|(_, why)| anyhow::anyhow!("the TAXII server's answer: {why}"))?;
    Ok((body, last))
}

/// What a 404 of the objects endpoint means: no such API root (a wrong `url`), or no such
/// collection in it; the API root is asked to tell.
async fn not_found(client: &reqwest::Client, source: &Source, timeout: Duration) -> String {
    let ask = source.authorize(client.get(&source.url).timeout(timeout));
    let ask = ask.map(|r| r.header(header::ACCEPT, MEDIA_TYPE));
    let root = match ask {
        Ok(req) => req.send().await.ok().map(|r| r.status()),
        Err(_) => None,
    };
    let url = super::http::redact(&source.url);
    match root {
        Some(StatusCode::NOT_FOUND) => {
            format!("the TAXII server has no API root {url} (HTTP 404): check the list's taxii url")
        }
        _ => format!(
            "the TAXII server's API root {url} has no collection {} (HTTP 404)",
            source.collection
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: &str, modified: &str) -> Box<RawValue> {
        let v = serde_json::json!({"type": "indicator", "id": id, "modified": modified});
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn the_newest_version_of_each_object_is_kept() {
        let mut c = Collection::default();
        c.merge(vec![
            obj("indicator--a", "2026-01-02T00:00:00Z"),
            obj("indicator--b", "2026-01-01T00:00:00Z"),
        ]);
        c.merge(vec![
            obj("indicator--a", "2026-01-01T00:00:00Z"),
            obj("indicator--b", "2026-01-03T00:00:00Z"),
        ]);
        let modified = |c: &Collection, id: &str| {
            let v: serde_json::Value = serde_json::from_str(c.objects[id].get()).unwrap();
            v["modified"].as_str().unwrap().to_string()
        };
        assert_eq!(modified(&c, "indicator--a"), "2026-01-02T00:00:00Z", "older version ignored");
        assert_eq!(modified(&c, "indicator--b"), "2026-01-03T00:00:00Z");
        // Times, not strings: medallion writes a later version with more digits.
        c.merge(vec![obj("indicator--b", "2026-01-03T00:00:00.500Z")]);
        assert_eq!(modified(&c, "indicator--b"), "2026-01-03T00:00:00.500Z");
        c.merge(vec![obj("indicator--b", "2026-01-03T00:00:00Z")]);
        assert_eq!(modified(&c, "indicator--b"), "2026-01-03T00:00:00.500Z");
        let bundle: serde_json::Value = serde_json::from_slice(&c.bundle()).unwrap();
        assert_eq!(bundle["type"], "bundle");
        assert_eq!(bundle["objects"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn credentials_come_in_pairs_and_ids_are_ids() {
        let s: Source = toml::from_str(
            "url = \"https://t.example/api1/\"\ncollection = \"../x\"\nuser = \"gw\"\ntoken_header = \"X-Api-Key\"\npage_size = 0\n",
        )
        .unwrap();
        let p = s.problems().join("; ");
        for want in [
            "`user` and `password_file`",
            "`token_header` needs",
            "not a collection id",
            "page_size is 0",
        ] {
            assert!(p.contains(want), "{want}: {p}");
        }
        assert_eq!(
            Source { collection: "c1".into(), ..s }.objects_url(),
            "https://t.example/api1/collections/c1/objects/"
        );
    }
}
