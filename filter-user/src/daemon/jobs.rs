//! The fetches under way beside the daemon's loop: scheduled refreshes, SIGHUP and
//! `takedown refresh` all start jobs here (one a list at most: a list being fetched is not
//! fetched twice, its result serves whoever asked), and a `takedown refresh` is answered when
//! every list it named has its result, without the loop waiting on any of them.

use std::collections::HashMap;

use tokio::{io::AsyncWriteExt, net::unix::OwnedWriteHalf, task::JoinSet};

use super::{
    Daemon,
    control::{RefreshResult, Reply},
    fetch::Outcome,
};

/// A `takedown refresh` waiting for the results of its lists: each list's result counts from
/// the fetch that ends `round` (a fetch under way when it was asked began before it: the next
/// one is its own).
struct Waiting {
    write: OwnedWriteHalf,
    lists: Vec<(usize, u64)>,
    results: Vec<Option<RefreshResult>>,
}

#[derive(Default)]
pub(super) struct Jobs {
    set: JoinSet<Outcome>,
    /// The list each task fetches.
    lists: HashMap<tokio::task::Id, usize>,
    /// Fetches of each list ended so far.
    rounds: HashMap<usize, u64>,
    /// Lists to fetch again once their fetch under way ends (asked for meanwhile).
    again: std::collections::HashSet<usize>,
    replies: Vec<Waiting>,
}

impl Jobs {
    /// Starts a fetch of list `i`, unless one is under way.
    pub fn start(&mut self, d: &mut Daemon, i: usize) {
        if d.slots[i].fetching {
            return;
        }
        let job = d.start_job(i);
        let task = self.set.spawn_local(job.run());
        self.lists.insert(task.id(), i);
    }

    /// Fetches every list (SIGHUP): those being fetched, again once that fetch ends.
    pub fn every(&mut self, d: &mut Daemon) {
        for i in 0..d.slots.len() {
            if d.slots[i].fetching {
                self.again.insert(i);
            } else {
                self.start(d, i);
            }
        }
    }

    /// Starts a fetch of every list in `lists`, and answers on `write` once each has the
    /// result of a fetch that began after this request.
    pub fn refresh(&mut self, d: &mut Daemon, lists: Vec<usize>, write: OwnedWriteHalf) {
        let mut waits = Vec::with_capacity(lists.len());
        for i in lists {
            let round = self.rounds.get(&i).copied().unwrap_or(0);
            if d.slots[i].fetching {
                self.again.insert(i);
                waits.push((i, round + 2));
            } else {
                self.start(d, i);
                waits.push((i, round + 1));
            }
        }
        let results = vec![None; waits.len()];
        self.replies.push(Waiting { write, lists: waits, results });
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Waits for the next job to end; None when none runs.
    pub async fn next(&mut self) -> Option<(usize, Result<Outcome, String>)> {
        let done = self.set.join_next_with_id().await?;
        let (id, outcome) = match done {
            Ok((id, outcome)) => (id, Ok(outcome)),
            Err(e) => (e.id(), Err(format!("the refresh failed: {e}"))),
        };
        Some((self.lists.remove(&id)?, outcome))
    }

    /// List `i` has its result: fetches it again if that was asked for meanwhile, and answers
    /// the refreshes that have all of theirs.
    pub fn done(&mut self, d: &mut Daemon, i: usize) {
        let round = self.rounds.entry(i).or_default();
        *round += 1;
        let round = *round;
        if self.again.remove(&i) {
            self.start(d, i);
        }
        for w in &mut self.replies {
            for (k, _) in w.lists.iter().enumerate().filter(|(_, l)| l.0 == i && l.1 <= round) {
                w.results[k].get_or_insert_with(|| d.refresh_result(i));
            }
        }
        let (ready, waiting) = std::mem::take(&mut self.replies)
            .into_iter()
            .partition(|w: &Waiting| w.results.iter().all(Option::is_some));
        self.replies = waiting;
        for w in ready {
            let results: Vec<RefreshResult> = w.results.into_iter().flatten().collect();
            let reply = Reply { ok: results.iter().all(|r| r.ok), results, error: None };
            tokio::task::spawn_local(send(w.write, reply));
        }
    }
}

/// Writes a reply (one JSON line); a client that went away is no error of the daemon's.
pub(super) async fn send(mut write: OwnedWriteHalf, reply: Reply) {
    if let Ok(mut line) = serde_json::to_string(&reply) {
        line.push('\n');
        let _ = write.write_all(line.as_bytes()).await;
    }
}
