//! CrowdSec bouncer mode: a list whose source is a CrowdSec Local API. takedown polls
//! `GET /v1/decisions/stream` with the bouncer's `X-Api-Key` (`startup=true` first, then the
//! deltas), keeps the active `ban` decisions of scope `Ip` and `Range` with their end of
//! validity, and the list's content is those decisions. The decisions survive restarts (a file
//! in the state directory), deleted ones leave at once, and each leaves the maps when its
//! duration ends.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Where the decisions come from (`crowdsec = { url = ..., api_key_file = ... }`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The Local API, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// A file holding the bouncer API key (`cscli bouncers add takedown`); never shown.
    pub api_key_file: PathBuf,
}

impl Source {
    /// The key, read from its file.
    fn key(&self) -> Result<String> {
        let text = std::fs::read_to_string(&self.api_key_file).with_context(|| {
            format!("cannot read the API key file {}", self.api_key_file.display())
        })?;
        let key = text.trim().to_string();
        anyhow::ensure!(
            !key.is_empty(),
            "the API key file {} is empty",
            self.api_key_file.display()
        );
        Ok(key)
    }
}

/// One decision as the stream gives it.
#[derive(Debug, Deserialize)]
struct Decision {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    value: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    duration: String,
}

/// One answer of the stream.
#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default, deserialize_with = "null_is_empty")]
    new: Vec<Decision>,
    #[serde(default, deserialize_with = "null_is_empty")]
    deleted: Vec<Decision>,
}

fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Decision>, D::Error> {
    Ok(Option::<Vec<Decision>>::deserialize(d)?.unwrap_or_default())
}

/// The active decisions: value (an address or network) -> end of validity (Unix seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    pub active: BTreeMap<String, u64>,
    /// When the stream was last read successfully (Unix seconds; 0: never).
    #[serde(default)]
    pub polled: u64,
    /// The stream has been read from its start (`startup=true`) since the daemon started.
    #[serde(skip)]
    pub started: bool,
}

impl Decisions {
    /// Applies one answer of the stream at `now`: bans of scope Ip or Range join (or extend),
    /// deleted ones leave. Returns the decisions skipped, with why.
    fn apply(&mut self, delta: Delta, now: u64) -> Vec<String> {
        let mut skipped = Vec::new();
        for d in delta.deleted {
            self.active.remove(&d.value);
        }
        for d in delta.new {
            // One address or network a decision: a value with a line break or a space in it
            // would become two lines of the list.
            if d.value.contains(|c: char| c.is_whitespace() || c.is_control()) {
                skipped.push(format!("{:?}: not one address or network", d.value));
                continue;
            }
            let scope = d.scope.to_ascii_lowercase();
            if d.kind != "ban" || !matches!(scope.as_str(), "ip" | "range") {
                skipped.push(format!("{} {}: only ban decisions on Ip or Range", d.kind, d.scope));
                continue;
            }
            match go_duration(&d.duration) {
                Some(left) => {
                    let until = now.saturating_add(left.as_secs().max(1));
                    let e = self.active.entry(d.value).or_insert(until);
                    *e = (*e).max(until);
                }
                None => skipped.push(format!("{}: unreadable duration {:?}", d.value, d.duration)),
            }
        }
        skipped
    }

    /// Takes out the decisions whose time has passed at `now`; true when one did.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.active.len();
        self.active.retain(|_, until| *until > now);
        self.active.len() != before
    }

    /// When the next decision ends.
    pub fn next_expiry(&self) -> Option<u64> {
        self.active.values().copied().min()
    }

    /// The list's content: one address or network a line.
    pub fn text(&self) -> String {
        self.active.keys().map(|v| format!("{v}\n")).collect()
    }

    /// Reads the stream once (from its start the first time) and applies it at `now`; returns
    /// the decisions skipped.
    pub async fn poll(
        &mut self,
        client: &reqwest::Client,
        source: &Source,
        timeout: Duration,
        max_bytes: u64,
        now: u64,
    ) -> Result<Vec<String>> {
        let key = source.key()?;
        let startup = if self.started { "false" } else { "true" };
        let url =
            format!("{}/v1/decisions/stream?startup={startup}", source.url.trim_end_matches('/'));
        let resp = client
            .get(&url)
            .header("X-Api-Key", key)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("the Local API cannot be reached: {}", super::source::describe(e))
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the Local API refused the bouncer API key (HTTP {status})");
        }
        if !status.is_success() {
            bail!("the Local API answered HTTP {status}");
        }
        let body = super::source::bounded_body(resp, max_bytes).await;
        let body = body.map_err(|(_, why)| anyhow::anyhow!("the Local API's answer: {why}"))?;
        let delta: Delta = serde_json::from_slice(&body)
            .context("the Local API's answer is not a decision stream")?;
        if !self.started {
            // The start of the stream is the whole truth: what it lacks is no longer decided.
            self.active.clear();
        }
        self.started = true;
        self.polled = now;
        Ok(self.apply(delta, now))
    }
}

/// A Go duration ("4h", "3h59m58.123s", "-1s", "150ms") as a length of time, at most
/// [`super::expiry::FURTHEST`] (a longer one, even past what 64 bits hold, is cut to that: a
/// ban stays a ban); None when it is not one or is negative.
fn go_duration(s: &str) -> Option<Duration> {
    if s.starts_with('-') || s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().ok()?;
        total += n * match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        rest = next;
    }
    total.is_finite().then(|| Duration::from_secs_f64(total.min(super::expiry::FURTHEST as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_crowdsec_writes_them() {
        assert_eq!(go_duration("4h"), Some(Duration::from_secs(14_400)));
        assert_eq!(go_duration("3h59m58.5s"), Some(Duration::from_secs_f64(14_398.5)));
        assert_eq!(go_duration("150ms"), Some(Duration::from_millis(150)));
        assert_eq!(go_duration("-1s"), None);
        // Past what 64 bits of seconds hold: cut to the furthest end, never wrapped.
        let furthest = Some(Duration::from_secs(crate::daemon::expiry::FURTHEST));
        for huge in ["99999999999999999999h", "10000000000000000000s", "18446744073000000000s"] {
            assert_eq!(go_duration(huge), furthest, "{huge}");
        }
        assert_eq!(go_duration("4 hours"), None);
    }

    #[test]
    fn the_stream_adds_deletes_skips_and_expires() {
        let mut d = Decisions::default();
        let delta: Delta = serde_json::from_str(
            r#"{"new":[{"scope":"Ip","value":"192.0.2.7","type":"ban","duration":"10s"},
                      {"scope":"Range","value":"198.51.100.0/24","type":"ban","duration":"1h"},
                      {"scope":"Ip","value":"203.0.113.9","type":"captcha","duration":"1h"},
                      {"scope":"Country","value":"XX","type":"ban","duration":"1h"}],
                "deleted":null}"#,
        )
        .unwrap();
        let skipped = d.apply(delta, 1000);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(d.text(), "192.0.2.7\n198.51.100.0/24\n");
        assert_eq!(d.next_expiry(), Some(1010));
        let delta: Delta = serde_json::from_str(
            r#"{"new":null,"deleted":[{"scope":"Range","value":"198.51.100.0/24","type":"ban","duration":"0s"}]}"#,
        )
        .unwrap();
        d.apply(delta, 1001);
        assert_eq!(d.text(), "192.0.2.7\n");
        assert!(!d.expire(1009));
        assert!(d.expire(1010));
        assert_eq!(d.text(), "");
    }

    #[test]
    fn a_value_with_a_line_break_is_one_skipped_decision_not_two_entries() {
        let mut d = Decisions::default();
        let delta: Delta = serde_json::from_str(
            r#"{"new":[{"scope":"Ip","value":"192.0.2.7\n198.51.100.9","type":"ban","duration":"1h"}],
                "deleted":null}"#,
        )
        .unwrap();
        let skipped = d.apply(delta, 1000);
        assert_eq!(d.text(), "");
        assert!(skipped[0].contains("not one address or network"), "{skipped:?}");
    }
}
