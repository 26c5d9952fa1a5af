//! Time as takedown keeps it: Unix seconds, shown as RFC 3339 UTC, and the furthest end a
//! source may give an entry. Below every layer.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Unix seconds as an RFC 3339 UTC time ("2026-11-28T07:27:01Z").
pub fn utc(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .map_or_else(|_| format!("{secs} s"), |t| t.to_string())
}

/// The furthest end a decision or list entry may have, from now (ten years): an end further
/// off (or past what an `Instant` or 64 bits hold) is cut to it, a ban staying a ban.
pub const FURTHEST: u64 = 10 * 365 * 86_400;
