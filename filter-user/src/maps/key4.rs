//! The keys of the IPv4 tables (`table4`): how an exact address or a prefix of the plan
//! becomes a table's 32-bit word (filter-common's `table4` layout), and back.

use filter_common::{
    V4Key,
    table4::{v4_prefix_of, v4_prefix_word, v4_word},
};

use crate::plan::PrefixKey;

/// A key of an IPv4 table: how it becomes the table's word, and back.
pub trait Word: Copy + Ord {
    fn word(&self) -> u32;
    fn of_word(word: u32) -> Self;
    /// The key in messages.
    fn show(&self) -> String;
}

/// An exact address.
impl Word for V4Key {
    fn word(&self) -> u32 {
        v4_word(self)
    }
    fn of_word(word: u32) -> Self {
        word.to_ne_bytes()
    }
    fn show(&self) -> String {
        std::net::Ipv4Addr::from(*self).to_string()
    }
}

/// A prefix shorter than /32: (length, masked address).
impl Word for PrefixKey<4> {
    fn word(&self) -> u32 {
        v4_prefix_word(u32::from(self.0), u32::from_be_bytes(self.1))
    }
    fn of_word(word: u32) -> Self {
        let (len, addr) = v4_prefix_of(word);
        (len as u8, addr)
    }
    fn show(&self) -> String {
        format!("{}/{}", std::net::Ipv4Addr::from(self.1), self.0)
    }
}
