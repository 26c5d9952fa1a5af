//! A terminal for the tests of `takedown watch`: a tmux server of the test's own (its own
//! socket), killed on drop.

use std::process::{Command, Output};

pub struct Tmux(String);

impl Tmux {
    /// A server named for this test and process.
    pub fn new(name: &str) -> Self {
        Self(format!("td-{name}-{}", std::process::id()))
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(["-L", &self.0]).args(args).output().expect("tmux")
    }

    /// Runs `cmd` in a detached 80x24 session named `session`.
    pub fn start(&self, session: &str, cmd: &str) {
        let out = self.run(&["new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// What session `session` shows.
    pub fn screen(&self, session: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", session]).stdout)
            .into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}
