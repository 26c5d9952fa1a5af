//! Starting the filter from a plan, whatever the pin directory holds: new maps (filled, then
//! pinned), adoption of pinned maps of this layout (moved to the plan by `sync`), or migration
//! of pinned maps of another layout, too small for the plan, or without the IPv4 prefix hints
//! a plan with IPv4 prefixes uses. A migration fills new maps
//! first and pins them over the old ones; attaching then replaces the program through each
//! pinned link, so the old program enforces on the old maps until that moment: no gap.

use anyhow::Result;

use super::{
    filter::{Capacities, Filter},
    pins::Pins,
    sync::{self, Applied, Changes},
    version::{self, Pinned},
};
use crate::plan::{Plan, diff::Diff};

/// How the filter started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// New maps (nothing was pinned, or no pins are used).
    Fresh,
    /// Pinned maps were adopted; they held this many entries.
    Adopted { held: usize },
    /// Pinned maps were replaced by new ones, for this reason.
    Migrated { why: String },
}

/// A filter started from a plan.
pub struct Started {
    pub filter: Filter,
    pub start: Start,
    pub changes: Changes,
    /// What the pinned maps held, when this start read them (adopted, or replaced by larger
    /// ones): the start added only the rest.
    pub held: Option<Plan>,
    /// The move from what adopted maps held to the plan.
    pub diff: Option<Box<Diff>>,
}

/// Loads the program with maps holding `plan` (not attached yet); maps hold at most `max`
/// entries each, and have room for the connection journal when `journal`.
pub fn start(pins: Option<&Pins>, plan: &Plan, max: u32, journal: bool) -> Result<Started> {
    let fresh = Changes { written: plan.len(), deleted: 0 };
    let sizes = Capacities::for_plan(plan, max)?.with_journal(journal);
    let Some(pins) = pins else {
        let filter = Filter::load_filled(&sizes, |m| fill(m, plan))?;
        return Ok(Started { filter, start: Start::Fresh, changes: fresh, held: None, diff: None });
    };
    let (why, held) = match version::pinned(pins) {
        Pinned::Nothing => (None, None),
        Pinned::Other(v) => (Some(version::other_layout(v)), None),
        Pinned::Current => {
            let filter = Filter::adopt(&sizes, pins)?;
            let held = filter.maps().plan()?;
            match adopt(filter, held, plan, journal)? {
                Ok(started) => return Ok(started),
                Err((why, held)) => (Some(why), Some(held)),
            }
        }
    };
    let filter = grow(pins, plan, max, journal)?;
    let start = why.map_or(Start::Fresh, |why| Start::Migrated { why });
    Ok(Started { filter, start, changes: fresh, held, diff: None })
}

/// Loads the program with new maps sized for `plan`, filled, then pinned at `pins` over what
/// is pinned there (attaching then replaces the program through the pinned links); with room
/// for the connection journal when `journal`.
pub fn grow(pins: &Pins, plan: &Plan, max: u32, journal: bool) -> Result<Filter> {
    let sizes = Capacities::for_plan(plan, max)?.with_journal(journal);
    Filter::load_pinned(&sizes, pins, |m| fill(m, plan))
}

fn fill(maps: &mut super::FilterMaps, plan: &Plan) -> Result<()> {
    sync::fill(&mut maps.addr, plan)?;
    maps.set_layout()
}

/// Moves the pinned maps `filter` holds (`held`) to `plan`; or, when they cannot hold it (no
/// IPv4 prefix hints, no room for the journal, too small), why not, writing nothing.
fn adopt(
    mut filter: Filter,
    held: Plan,
    plan: &Plan,
    journal: bool,
) -> Result<Result<Started, (String, Plan)>> {
    let caps = filter.maps().capacities()?;
    let why = if caps.lacks_hints(plan) {
        "the pinned maps have no IPv4 prefix hints (they were created without IPv4 prefixes)"
    } else if journal && !caps.journal {
        "the pinned maps have no room for the connection journal (they were created without it)"
    } else {
        let moved = sync::apply_within(&mut filter.maps_mut().addr, &held, plan, &caps)?;
        return Ok(match moved {
            Applied::Done(changes, diff) => {
                let start = Start::Adopted { held: held.len() };
                Ok(Started { filter, start, changes, held: Some(held), diff: Some(diff) })
            }
            Applied::Overflow(o) => Err((format!("the pinned {o}"), held)),
        });
    };
    Ok(Err((why.into(), held)))
}
