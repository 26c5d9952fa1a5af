//! One takedown entry: a network, the direction it blocks, and where it came from.

use filter_common::{FLAG_BOTH, FLAG_DST, FLAG_SRC};
use ipnet::IpNet;

/// Which packets an entry blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
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
}

/// A parsed list line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The network, host bits already masked.
    pub net: IpNet,
    /// Which packets it blocks.
    pub direction: Direction,
    /// 1-based line number in its list.
    pub line: usize,
}
