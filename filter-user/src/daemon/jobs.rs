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

/// A `takedown refresh` waiting for the results of its lists.
struct Waiting {
    write: OwnedWriteHalf,
    lists: Vec<usize>,
    results: Vec<Option<RefreshResult>>,
}

#[derive(Default)]
pub(super) struct Jobs {
    set: JoinSet<Outcome>,
    /// The list each task fetches.
    lists: HashMap<tokio::task::Id, usize>,
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

    /// Starts a fetch of every list in `lists`, and answers on `write` once each has its result.
    pub fn refresh(&mut self, d: &mut Daemon, lists: Vec<usize>, write: OwnedWriteHalf) {
        for &i in &lists {
            self.start(d, i);
        }
        let results = vec![None; lists.len()];
        self.replies.push(Waiting { write, lists, results });
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

    /// List `i` has its result: answers the refreshes that have all of theirs.
    pub fn done(&mut self, d: &Daemon, i: usize) {
        for w in &mut self.replies {
            for (k, _) in w.lists.iter().enumerate().filter(|(_, l)| **l == i) {
                w.results[k] = Some(d.refresh_result(i));
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
