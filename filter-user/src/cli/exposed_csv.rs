//! `takedown exposed --csv`: a line a contact. Millions can be asked for (a list that covers
//! most of the Internet): each line is put together in one buffer, the numbers by `itoa` and
//! each day's date by jiff once, not through `format!` (which took half of the command's time).

use std::{io::Write, net::IpAddr};

use takedown::{clock::utc, daemon::journal::exposure::Exposed};

pub const HEADER: &str = "host,remote,entry,protocol,port,opened_by,first,last,connections";

/// Makes hosts into lines.
#[derive(Default)]
pub struct Lines {
    times: Times,
}

impl Lines {
    /// Host `e`'s lines, a contact a line.
    pub fn of(&mut self, e: &Exposed) -> Vec<u8> {
        let mut host = Vec::new();
        ip(&mut host, e.host);
        let mut lines = Vec::with_capacity(e.contacts.len() * 100);
        let mut n = itoa::Buffer::new();
        for c in &e.contacts {
            lines.extend_from_slice(&host);
            lines.push(b',');
            ip(&mut lines, c.remote);
            lines.push(b',');
            ip(&mut lines, c.entry.addr());
            lines.push(b'/');
            lines.extend_from_slice(n.format(c.entry.prefix_len()).as_bytes());
            for field in [c.proto, n.format(c.port), c.opened_by] {
                lines.push(b',');
                lines.extend_from_slice(field.as_bytes());
            }
            lines.push(b',');
            self.times.put(&mut lines, c.first);
            lines.push(b',');
            self.times.put(&mut lines, c.last);
            lines.push(b',');
            lines.extend_from_slice(n.format(c.count).as_bytes());
            lines.push(b'\n');
        }
        lines
    }
}

/// Address `a` as `Display` writes it.
fn ip(buf: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => {
            let mut n = itoa::Buffer::new();
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(n.format(o).as_bytes());
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(buf, "{a}");
        }
    }
}

/// Times as `utc` writes them ("2026-11-28T07:27:01Z"): the date ("2026-11-28T") from it once
/// a day, the time of day by arithmetic.
#[derive(Default)]
struct Times {
    day: Option<u64>,
    /// The day's date, empty when `utc` does not write it so.
    date: String,
}

impl Times {
    fn put(&mut self, buf: &mut Vec<u8>, secs: u64) {
        let day = secs / 86_400;
        if self.day != Some(day) {
            let midnight = utc(day * 86_400);
            let shaped = midnight.len() == 20 && midnight.ends_with("T00:00:00Z");
            self.date = if shaped { midnight[..11].to_string() } else { String::new() };
            self.day = Some(day);
        }
        if self.date.is_empty() {
            buf.extend_from_slice(utc(secs).as_bytes());
            return;
        }
        buf.extend_from_slice(self.date.as_bytes());
        let s = secs % 86_400;
        for (i, v) in [s / 3600, s / 60 % 60, s % 60].into_iter().enumerate() {
            if i > 0 {
                buf.push(b':');
            }
            buf.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
        }
        buf.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_utc_writes_them() {
        let mut t = Times::default();
        for secs in [0, 59, 86_399, 86_400, 1_764_314_821, 1_764_314_821 + 86_399, 4_294_967_295] {
            let mut buf = Vec::new();
            t.put(&mut buf, secs);
            assert_eq!(String::from_utf8(buf).unwrap(), utc(secs), "{secs}");
        }
    }
}
