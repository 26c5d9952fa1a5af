//! CrowdSec bouncer mode: a list whose source is a CrowdSec Local API. takedown polls
//! `GET /v1/decisions/stream` with the bouncer's `X-Api-Key` (`startup=true` first, then the
//! deltas), keeps the active `ban` decisions of scope `Ip` and `Range`, each by its id with its
//! end of validity, and the list's content is the values those decisions ban. The decisions
//! survive restarts (a file in the state directory); a deleted one leaves at once (only that
//! decision: a `captcha` deleted beside a `ban` on the same address leaves the ban, as does
//! one of two bans), and each leaves when its duration ends; a value leaves the maps when its
//! last ban has left.

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
    /// The Local API's id of the decision (0 when a server gives none).
    #[serde(default)]
    id: i64,
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

/// The active ban decisions of one value: decision id -> end of validity (Unix seconds).
pub type Bans = BTreeMap<i64, u64>;

/// The active decisions: value (an address or network) -> its bans.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    #[serde(deserialize_with = "bans_of_each_value")]
    pub active: BTreeMap<String, Bans>,
    /// When the stream was last read successfully (Unix seconds; 0: never).
    #[serde(default)]
    pub polled: u64,
    /// The stream has been read from its start (`startup=true`) since the daemon started.
    #[serde(skip)]
    pub started: bool,
}

/// Reads what a state file holds for each value: its bans (decision id -> end), or one end
/// (written before ids were kept: a ban of no known id).
fn bans_of_each_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Bans>, D::Error> {
    use serde::de::Error;
    let saved = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    let bans = |v: serde_json::Value| -> Option<Bans> {
        if let Some(until) = v.as_u64() {
            return Some(Bans::from([(0, until)]));
        }
        let each = v.as_object()?.iter();
        each.map(|(id, until)| Some((id.parse().ok()?, until.as_u64()?))).collect()
    };
    let each = saved.into_iter().map(|(value, v)| match bans(v) {
        Some(b) => Ok((value, b)),
        None => Err(D::Error::custom(format!("unreadable decisions of {value:?}"))),
    });
    each.collect()
}

/// Decisions not taken in one answer, by kind (`captcha on Ip`): how many, and the first value.
pub type Skipped = BTreeMap<String, (usize, String)>;

impl Decision {
    /// Why takedown does not take this decision, if it does not.
    fn not_taken(&self) -> Option<String> {
        // One address or network a decision: a value with a line break or a space in it
        // would become two lines of the list.
        if self.value.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Some("not one address or network".into());
        }
        let scope = self.scope.to_ascii_lowercase();
        if self.kind != "ban" || !matches!(scope.as_str(), "ip" | "range") {
            return Some(format!("{} on {}", self.kind, self.scope));
        }
        None
    }
}

impl Decisions {
    /// Applies one answer of the stream at `now`: bans of scope Ip or Range join, deleted ones
    /// leave (that decision only). Returns the decisions not taken, by kind.
    fn apply(&mut self, delta: Delta, now: u64) -> Skipped {
        let mut skipped = Skipped::new();
        for d in delta.deleted.iter().filter(|d| d.not_taken().is_none()) {
            self.delete(d);
        }
        for d in delta.new {
            let why = match (d.not_taken(), go_duration(&d.duration)) {
                (Some(why), _) => why,
                (None, None) => format!("unreadable duration {:?}", d.duration),
                (None, Some(left)) => {
                    let until = now.saturating_add(left.as_secs().max(1));
                    let end = self.active.entry(d.value).or_default().entry(d.id).or_insert(until);
                    *end = (*end).max(until);
                    continue;
                }
            };
            skipped.entry(why).or_insert((0, d.value)).0 += 1;
        }
        skipped
    }

    /// Takes out one deleted ban: by its id; a ban whose id is unknown (a server that gives
    /// none, a state written before ids were kept) takes out the value's bans of no known id.
    fn delete(&mut self, d: &Decision) {
        let Some(bans) = self.active.get_mut(&d.value) else { return };
        if bans.remove(&d.id).is_none() {
            bans.remove(&0);
        }
        if bans.is_empty() {
            self.active.remove(&d.value);
        }
    }

    /// Takes out the decisions whose time has passed at `now`; true when a value left.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.active.len();
        for bans in self.active.values_mut() {
            bans.retain(|_, until| *until > now);
        }
        self.active.retain(|_, bans| !bans.is_empty());
        self.active.len() != before
    }

    /// When the next decision ends.
    pub fn next_expiry(&self) -> Option<u64> {
        self.active.values().flat_map(|b| b.values()).copied().min()
    }

    /// The list's content: one address or network a line.
    pub fn text(&self) -> String {
        self.active.keys().map(|v| format!("{v}\n")).collect()
    }

    /// Reads the stream once (from its start the first time) and applies it at `now`; returns
    /// the decisions not taken.
    pub async fn poll(
        &mut self,
        client: &reqwest::Client,
        source: &Source,
        timeout: Duration,
        max_bytes: u64,
        now: u64,
    ) -> Result<Skipped> {
        let key = source.key()?;
        let startup = if self.started { "false" } else { "true" };
        let url =
            format!("{}/v1/decisions/stream?startup={startup}", source.url.trim_end_matches('/'));
        let resp =
            client.get(&url).header("X-Api-Key", key).timeout(timeout).send().await.map_err(
                |e| {
                    anyhow::anyhow!("the Local API cannot be reached: {}", super::http::describe(e))
                },
            )?;
        let status = resp.status();
        if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the Local API refused the bouncer API key (HTTP {status})");
        }
        if !status.is_success() {
            bail!("the Local API answered HTTP {status}");
        }
        let body = super::http::bounded_body(resp, max_bytes).await;
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

/// Says in the log which decisions of one answer were not taken, by kind.
pub fn log_not_taken(list: &str, skipped: &Skipped) {
    if skipped.is_empty() {
        return;
    }
    let n: usize = skipped.values().map(|(n, _)| n).sum();
    let each: Vec<String> =
        skipped.iter().map(|(why, (n, first))| format!("{n} {why} (first {first:?})")).collect();
    log::info!(
        "list {list}: {n} decisions not taken (takedown enforces ban decisions on Ip and Range): {}",
        each.join(", ")
    );
}

/// A Go duration ("4h", "3h59m58.123s", "-1s", "150ms") as a length of time, at most
/// [`crate::clock::FURTHEST`] (a longer one, even past what 64 bits hold, is cut to that: a
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
    total.is_finite().then(|| Duration::from_secs_f64(total.min(crate::clock::FURTHEST as f64)))
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
        let furthest = Some(Duration::from_secs(crate::clock::FURTHEST));
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
        assert_eq!(skipped["captcha on Ip"], (1, "203.0.113.9".into()), "{skipped:?}");
        assert_eq!(skipped["ban on Country"], (1, "XX".into()), "{skipped:?}");
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
        assert!(skipped.contains_key("not one address or network"), "{skipped:?}");
    }

    fn delta(text: &str) -> Delta {
        serde_json::from_str(text).unwrap()
    }

    /// As crowdsec 1.4.6's stream gives them: each decision with its id; deleting a captcha
    /// (or one of two bans) on an address leaves the other ban in force.
    #[test]
    fn a_deletion_takes_out_that_decision_only() {
        let mut d = Decisions::default();
        d.apply(
            delta(
                r#"{"new":[{"id":1,"scope":"Ip","value":"192.0.2.7","type":"ban","duration":"1h"},
                          {"id":2,"scope":"Ip","value":"192.0.2.7","type":"captcha","duration":"1h"},
                          {"id":3,"scope":"Ip","value":"192.0.2.7","type":"ban","duration":"2h"}],
                    "deleted":[]}"#,
            ),
            1000,
        );
        let gone = |id: i64, kind: &str| {
            delta(&format!(
                r#"{{"new":[],"deleted":[{{"id":{id},"scope":"Ip","value":"192.0.2.7","type":"{kind}","duration":"-1s"}}]}}"#
            ))
        };
        d.apply(gone(2, "captcha"), 1001);
        assert_eq!(d.text(), "192.0.2.7\n", "a captcha deleted: the bans stay");
        d.apply(gone(3, "ban"), 1002);
        assert_eq!(d.text(), "192.0.2.7\n", "one of two bans deleted: the other stays");
        assert_eq!(d.next_expiry(), Some(4600));
        d.apply(gone(1, "ban"), 1003);
        assert_eq!(d.text(), "", "the last ban deleted");
    }

    /// A state file written before ids were kept reads as one ban of no known id, which the
    /// next deletion of a ban on that value takes out.
    #[test]
    fn a_state_file_without_ids_still_reads() {
        let mut d: Decisions =
            serde_json::from_str(r#"{"active":{"192.0.2.7":5000,"192.0.2.8":6000},"polled":9}"#)
                .unwrap();
        assert_eq!(d.text(), "192.0.2.7\n192.0.2.8\n");
        assert_eq!(d.next_expiry(), Some(5000));
        d.apply(
            delta(
                r#"{"new":[],"deleted":[{"id":41,"scope":"Ip","value":"192.0.2.7","type":"ban","duration":"-1s"}]}"#,
            ),
            1000,
        );
        assert_eq!(d.text(), "192.0.2.8\n");
        let saved = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Decisions>(&saved).unwrap(), d);
    }
}
