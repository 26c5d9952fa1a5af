//! The contract's layout version as pins carry it (filter-common's `LAYOUT_VERSION`, stored in
//! the pinned config array at `CFG_LAYOUT`, which is pinned last): whether pinned maps can be
//! adopted by this build, or must be migrated.

use aya::maps::{Array, Map, MapData};
use filter_common::{CFG_LAYOUT, LAYOUT_VERSION, MAP_CONFIG};

use super::pins::Pins;

/// What the pin directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinned {
    /// No pinned maps.
    Nothing,
    /// Maps of this build's layout.
    Current,
    /// Maps of another layout (0: the first, unversioned one, or an incomplete pin set).
    Other(u32),
}

/// What is said of maps pinned by a build of layout `v`, not this one's.
pub fn other_layout(v: u32) -> String {
    format!("the pinned maps have contract layout {v}, this build uses {LAYOUT_VERSION}")
}

/// The layout of the maps pinned at `pins`.
pub fn pinned(pins: &Pins) -> Pinned {
    if !pins.has_maps() {
        return Pinned::Nothing;
    }
    match layout_of(pins) {
        Some(LAYOUT_VERSION) => Pinned::Current,
        Some(other) => Pinned::Other(other),
        None => Pinned::Other(0),
    }
}

fn layout_of(pins: &Pins) -> Option<u32> {
    let map = Map::from_map_data(MapData::from_pin(pins.map(MAP_CONFIG)).ok()?).ok()?;
    let config: Array<&MapData, u32> = Array::try_from(&map).ok()?;
    config.get(&CFG_LAYOUT, 0).ok()
}
