//! The direction an entry blocks.

use filter_common::{FLAG_BOTH, FLAG_DST, FLAG_SRC};

/// Which packets an entry blocks.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets whose source address matches.
    Src,
    /// Packets whose destination address matches.
    Dst,
    /// Both (the default).
    #[default]
    Both,
}

impl Direction {
    /// The `FLAG_*` bits of filter-common for this direction.
    pub const fn flags(self) -> u32 {
        match self {
            Self::Src => FLAG_SRC,
            Self::Dst => FLAG_DST,
            Self::Both => FLAG_BOTH,
        }
    }

    /// The flags for an entry of an enforcing (drop) or a monitor (count, report, pass) list.
    pub const fn flags_for(self, monitor: bool) -> u32 {
        if monitor { self.flags() << 2 } else { self.flags() }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Src => "src",
            Self::Dst => "dst",
            Self::Both => "both",
        })
    }
}
