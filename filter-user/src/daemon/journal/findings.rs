//! What `exposure::find_each` found, a share of the inside hosts a reader, made into output:
//! each share's hosts made by a thread of its own (by the caller's when there is one share,
//! or when no thread can be made), sent in batches, and taken in the order of the hosts'
//! addresses.

use std::{
    net::IpAddr,
    sync::mpsc::{self, Receiver, Sender},
    thread::Scope,
};

use super::{exposure::Exposed, found::Found};

/// Batches of made hosts a share holds back at most, waiting for the others'.
const HELD: usize = 4;
/// A batch ends at this many contacts (a host counting one at least): a send a host cost a
/// million hosts of one contact each twice the time.
const BATCH: usize = 1024;

/// What the readers found, a share of the inside hosts each.
pub struct Findings(pub(super) Vec<Found>);

/// Hosts made, with their addresses, sent at once.
type Batch<R> = Vec<(IpAddr, R)>;

/// A share's hosts, made, with their addresses.
type Made<'a, R> = Box<dyn Iterator<Item = (IpAddr, R)> + 'a>;

impl Findings {
    /// Each host found, made into an `R` by a maker `maker` makes (one a share), given to
    /// `take` in the order of the hosts' addresses; stops at `take`'s first error and returns
    /// it.
    pub fn each<R: Send, M: FnMut(Exposed) -> R, E>(
        self,
        maker: impl Fn() -> M + Sync,
        take: impl FnMut(R) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut shares = self.0;
        if shares.len() <= 1 {
            let hosts = shares.pop().into_iter().flat_map(Found::into_hosts);
            return hosts.map(maker()).try_for_each(take);
        }
        std::thread::scope(|s| {
            let parts: Vec<Made<R>> = (shares.into_iter())
                .map(|found| match spawned(s, &maker) {
                    Some((give, told)) => {
                        let _ = give.send(found);
                        Box::new(told.into_iter().flatten()) as Made<R>
                    }
                    None => {
                        let mut make = maker();
                        Box::new(found.into_hosts().map(move |e| (e.host, make(e))))
                    }
                })
                .collect();
            by_address(parts).try_for_each(take)
        })
    }

    /// Every host found, in the order of their addresses.
    pub fn all(self) -> Vec<Exposed> {
        let mut hosts = Vec::new();
        let Ok(()) = self.each(
            || |e| e,
            |e| {
                hosts.push(e);
                Ok::<_, std::convert::Infallible>(())
            },
        );
        hosts
    }
}

/// A thread that makes the hosts of the share it is given, in batches; none if no thread can
/// be made (the share is then still the caller's).
fn spawned<'scope, R: Send + 'scope, M: FnMut(Exposed) -> R>(
    s: &'scope Scope<'scope, '_>,
    maker: &'scope (impl Fn() -> M + Sync),
) -> Option<(Sender<Found>, Receiver<Batch<R>>)> {
    let (give, given) = mpsc::channel::<Found>();
    let (tell, told) = mpsc::sync_channel(HELD);
    let work = move || {
        let Ok(found) = given.recv() else { return };
        let (mut make, mut batch, mut contacts) = (maker(), Vec::new(), 0);
        for e in found.into_hosts() {
            contacts += e.contacts.len().max(1);
            batch.push((e.host, make(e)));
            if contacts >= BATCH {
                if tell.send(std::mem::take(&mut batch)).is_err() {
                    return;
                }
                contacts = 0;
            }
        }
        let _ = tell.send(batch);
    };
    std::thread::Builder::new().spawn_scoped(s, work).ok().map(|_| (give, told))
}

/// What every share made, in the order of the hosts' addresses (each share's are).
fn by_address<R>(parts: Vec<Made<R>>) -> impl Iterator<Item = R> {
    let mut parts: Vec<_> = parts.into_iter().map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let next = parts.iter_mut().enumerate().filter_map(|(i, p)| Some((p.peek()?.0, i)));
        let (_, i) = next.min()?;
        parts[i].next().map(|(_, r)| r)
    })
}
