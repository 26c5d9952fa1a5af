//! Counted nouns for messages: "1 entry", "2 entries".

/// `n` and the noun in its number: `counted(1, "entry", "entries")` is "1 entry".
pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "1 entry", "2 entries".
pub fn entries(n: usize) -> String {
    counted(n as u64, "entry", "entries")
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(super::entries(0), "0 entries");
        assert_eq!(super::entries(1), "1 entry");
        assert_eq!(super::entries(2), "2 entries");
        assert_eq!(super::counted(1u32, "line", "lines"), "1 line");
    }
}
