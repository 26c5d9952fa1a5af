//! The UDP flows the journal saw lately, in either direction: a datagram the kernel reported
//! again (its flow slot was taken by another flow, or emptied on the hour) is no new
//! connection, and keeps the direction of the first datagram.

use std::{collections::HashMap, net::IpAddr};

/// A flow is known this long after its last report.
const KEEP_SECS: u64 = 120;
/// Flows kept at most (the oldest half goes past it).
const MAX_FLOWS: usize = 1 << 20;

type End = (IpAddr, u16);

/// Recently reported UDP flows, by their two ends in order.
#[derive(Default)]
pub struct RecentFlows {
    seen: HashMap<(End, End), u64>,
}

impl RecentFlows {
    /// True when the flow between `a` and `b` was reported within the last two minutes (in
    /// either direction); notes it at `now` either way.
    pub fn known(&mut self, a: End, b: End, now: u64) -> bool {
        let key = if a <= b { (a, b) } else { (b, a) };
        if self.seen.len() >= MAX_FLOWS {
            self.forget_before(now.saturating_sub(KEEP_SECS / 2));
        }
        let last = self.seen.insert(key, now);
        last.is_some_and(|t| now.saturating_sub(t) <= KEEP_SECS)
    }

    /// Forgets the flows not reported since `now` minus two minutes.
    pub fn expire(&mut self, now: u64) {
        self.forget_before(now.saturating_sub(KEEP_SECS));
    }

    fn forget_before(&mut self, t: u64) {
        self.seen.retain(|_, last| *last >= t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_no_new_flow_and_an_old_flow_is_new_again() {
        let (a, b) = (("10.0.0.2".parse().unwrap(), 5353), ("203.0.113.7".parse().unwrap(), 53));
        let mut r = RecentFlows::default();
        assert!(!r.known(a, b, 1000));
        assert!(r.known(b, a, 1001), "the reply");
        assert!(!r.known(a, b, 1200), "two minutes later");
        r.expire(2000);
        assert!(!r.known(b, a, 2001));
    }
}
