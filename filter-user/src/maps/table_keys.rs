//! The keys of the bucketised tables (filter-common's `table4` layout): how an exact address
//! or a prefix of the plan becomes a table's 32-bit word and buckets, and back. An IPv4 key is
//! its word; an IPv6 key's word is a hash of it, and the key is stored beside the value.

use filter_common::{
    V4Key, V6Key,
    table4::{
        V6Stored, v4_buckets, v4_prefix_of, v4_prefix_word, v4_word, v6_buckets, v6_hash,
        v6_len_of_tag, v6_tag, v6_word,
    },
};

use crate::plan::PrefixKey;

/// A key of a table: its word and buckets, the key stored beside its value (IPv6), and back.
pub trait Word: Copy + Ord {
    /// The word its slot holds.
    fn word(&self) -> u32;
    /// Its two buckets, of `count`.
    fn buckets(&self, count: u32) -> [u32; 2];
    /// The key stored beside its value (IPv6); None where the word is the key (IPv4).
    fn stored(&self) -> Option<V6Stored>;
    /// The key of a slot's word and of the key stored beside its value.
    fn of_slot(word: u32, stored: Option<V6Stored>) -> Self;
    /// The key in messages.
    fn show(&self) -> String;
}

/// An exact address.
impl Word for V4Key {
    fn word(&self) -> u32 {
        v4_word(self)
    }
    fn buckets(&self, count: u32) -> [u32; 2] {
        v4_buckets(self.word(), count)
    }
    fn stored(&self) -> Option<V6Stored> {
        None
    }
    fn of_slot(word: u32, _: Option<V6Stored>) -> Self {
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
    fn buckets(&self, count: u32) -> [u32; 2] {
        v4_buckets(self.word(), count)
    }
    fn stored(&self) -> Option<V6Stored> {
        None
    }
    fn of_slot(word: u32, _: Option<V6Stored>) -> Self {
        let (len, addr) = v4_prefix_of(word);
        (len as u8, addr)
    }
    fn show(&self) -> String {
        format!("{}/{}", std::net::Ipv4Addr::from(self.1), self.0)
    }
}

/// An IPv6 key as stored: its halves and the tag of its length.
fn stored6(addr: &V6Key, len: u32) -> V6Stored {
    let n = u128::from_be_bytes(*addr);
    V6Stored { hi: (n >> 64) as u64, lo: n as u64, tag: v6_tag(len) }
}

/// The address of a stored IPv6 key.
fn addr6(s: &V6Stored) -> V6Key {
    ((u128::from(s.hi) << 64) | u128::from(s.lo)).to_be_bytes()
}

/// The hash of an IPv6 key, from the key as it is stored ([`Word::stored`]).
fn hash6(k: &impl Word) -> u64 {
    let s = k.stored().unwrap_or_default();
    v6_hash(s.hi, s.lo, s.tag)
}

/// An exact IPv6 address.
impl Word for V6Key {
    fn word(&self) -> u32 {
        v6_word(hash6(self))
    }
    fn buckets(&self, count: u32) -> [u32; 2] {
        v6_buckets(hash6(self), count)
    }
    fn stored(&self) -> Option<V6Stored> {
        Some(stored6(self, 128))
    }
    fn of_slot(_: u32, stored: Option<V6Stored>) -> Self {
        addr6(&stored.unwrap_or_default())
    }
    fn show(&self) -> String {
        std::net::Ipv6Addr::from(*self).to_string()
    }
}

/// An IPv6 prefix shorter than /128: (length, masked address).
impl Word for PrefixKey<16> {
    fn word(&self) -> u32 {
        v6_word(hash6(self))
    }
    fn buckets(&self, count: u32) -> [u32; 2] {
        v6_buckets(hash6(self), count)
    }
    fn stored(&self) -> Option<V6Stored> {
        Some(stored6(&self.1, u32::from(self.0)))
    }
    fn of_slot(_: u32, stored: Option<V6Stored>) -> Self {
        let s = stored.unwrap_or_default();
        (v6_len_of_tag(s.tag) as u8, addr6(&s))
    }
    fn show(&self) -> String {
        format!("{}/{}", std::net::Ipv6Addr::from(self.1), self.0)
    }
}
