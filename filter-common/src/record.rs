//! Records the program writes whole into a ring buffer ([`Event`], [`Connection`]), read back
//! by user space.

use crate::{Connection, Event};

/// A record of plain integers, any bit pattern a value.
///
/// # Safety
///
/// Only for `repr(C)` structs whose fields are integers or arrays of them.
pub unsafe trait Record: Copy {
    /// The record in `bytes` (a ring buffer's item), if they hold a whole one.
    fn read(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < core::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the bytes hold a `Self` (any bit pattern is one: the trait's contract); read
        // without alignment.
        Some(unsafe { (bytes.as_ptr() as *const Self).read_unaligned() })
    }
}

// SAFETY: repr(C), integers and arrays of integers.
unsafe impl Record for Event {}
// SAFETY: as above.
unsafe impl Record for Connection {}
