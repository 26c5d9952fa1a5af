//! Keeping the pinned filter this daemon's own, every two seconds: pins removed under it are
//! made again (under the directory's lock), maps another process wrote get this daemon's plan
//! back, and a bpf filesystem that would end with the daemon (mounted in its mount namespace
//! alone) is said loudly. Each finding is logged and kept in the status (`takedown status`).

use std::os::unix::fs::MetadataExt;

use super::{Daemon, status::utc};
use crate::maps::{pins::Pins, sync};

/// Keys of the daemon's standing warnings.
const MOUNT: &str = "mount";
const WRITER: &str = "writer";

impl Daemon {
    /// Pins again what was removed from the pin directory under the running filter, saying so
    /// loudly (its links are held, so the filter kept enforcing). The directory's lock comes
    /// first: when another daemon took it meanwhile, this one pins nothing there any more.
    pub fn check_pins(&mut self) {
        let Some(pins) = self.settings.pins.clone() else { return };
        let Some(lost) = self.filter.as_ref().and_then(|f| f.lost_pins()) else { return };
        if !self.holds_lock_on(&pins) {
            match pins.lock() {
                Ok(lock) => self.pin_lock = Some(lock),
                Err(e) => {
                    log::error!(
                        "pins removed under the running filter ({lost}), and {e:#}: this daemon \
                         pins nothing there any more (its filter stays attached while it runs)"
                    );
                    self.settings.pins = None;
                    return;
                }
            }
        }
        let Some(filter) = self.filter.as_mut() else { return };
        match filter.pin_again() {
            Ok(()) => log::error!("pins removed under the running filter ({lost}): pinned again"),
            Err(e) => log::error!("pins removed under the running filter ({lost}): {e:#}"),
        }
    }

    /// True when the lock held is on the pin directory there now (not on one removed).
    fn holds_lock_on(&self, pins: &Pins) -> bool {
        let held = self.pin_lock.as_ref().and_then(|f| f.metadata().ok());
        let there = std::fs::metadata(pins.dir()).ok();
        held.zip(there).is_some_and(|(a, b)| (a.dev(), a.ino()) == (b.dev(), b.ino()))
    }

    /// When another process wrote the maps since this daemon last did, writes the daemon's
    /// plan back (what the maps hold, read anew, moved to what the daemon applied).
    pub fn check_writers(&mut self) {
        let Some(filter) = self.filter.as_mut() else { return };
        match filter.maps_mut().addr.written_elsewhere() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return log::warn!("cannot read who wrote the maps last: {e:#}"),
        }
        let back = filter
            .maps()
            .plan()
            .and_then(|held| sync::apply(&mut filter.maps_mut().addr, &held, &self.applied));
        let what = match back {
            Ok(c) => format!(
                "this daemon wrote its lists back ({} entries written, {} deleted)",
                c.written, c.deleted
            ),
            Err(e) => format!("writing this daemon's lists back failed: {e:#}"),
        };
        let why = format!(
            "at {} another process (not this daemon) changed the pinned maps; {what}",
            utc(super::now())
        );
        log::error!("{why}");
        self.warnings.insert(WRITER, why);
        self.write_status();
    }

    /// Says when the pins come to end with this daemon (their bpf filesystem mounted in its
    /// mount namespace alone), and when that is over.
    pub fn check_mount(&mut self) {
        let why = self.settings.pins.as_ref().and_then(Pins::ends_with_process);
        if why.as_ref() == self.warnings.get(MOUNT) {
            return;
        }
        match &why {
            Some(why) => log::error!("{why}"),
            None => log::warn!("the pin directory's bpf filesystem is mounted on the host again"),
        }
        match why {
            Some(why) => self.warnings.insert(MOUNT, why),
            None => self.warnings.remove(MOUNT),
        };
        self.write_status();
    }

    /// Why the pinned filter ends with this daemon, if it does.
    pub fn ends_with_daemon(&self) -> Option<String> {
        self.settings.pins.as_ref().and_then(Pins::ends_with_process)
    }
}
