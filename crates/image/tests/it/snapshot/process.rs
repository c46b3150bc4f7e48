//! Helper processes: this test binary run again with `--exact child_…` and a role in the
//! environment, so that a crash is a real `SIGKILL` of a real process holding real locks.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

pub const ROLE: &str = "BERTH_SNAP_CHILD_ROLE";
pub const ROOT: &str = "BERTH_SNAP_CHILD_ROOT";

/// The role this process was started for, when it is a helper.
pub fn role() -> Option<(String, std::path::PathBuf)> {
    #[expect(clippy::disallowed_methods, reason = "a helper process reads its role")]
    let role = std::env::var(ROLE).ok()?;
    #[expect(clippy::disallowed_methods, reason = "a helper process reads its role")]
    let root = std::env::var(ROOT).ok()?;
    Some((role, root.into()))
}

/// A helper process, killed by PID on drop.
pub struct Helper {
    pub child: Child,
    pub out: BufReader<ChildStdout>,
    stdin: Option<std::process::ChildStdin>,
}

impl Helper {
    /// Run the ignored test `test` (a `child_…` function) with `role` and `root`.
    pub fn spawn(test: &str, role: &str, root: &Path) -> Helper {
        Helper::start(test, role, root, Stdio::null())
    }

    /// As [`Helper::spawn`], with a pipe to its stdin: [`Helper::release`] sends it a line.
    pub fn spawn_with_stdin(test: &str, role: &str, root: &Path) -> Helper {
        Helper::start(test, role, root, Stdio::piped())
    }

    fn start(test: &str, role: &str, root: &Path, stdin: Stdio) -> Helper {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(ROOT, root)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Helper { child, out, stdin }
    }

    /// Send the helper the line it waits for.
    pub fn release(&mut self) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("started with spawn_with_stdin");
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Read the helper's stdout up to a line containing `marker` (what it prints when it
    /// reached a point). Blocks only as long as the helper runs: EOF ends it.
    pub fn wait_for(&mut self, marker: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "helper exited before printing {marker:?}");
            // libtest may have printed `test NAME ... ` on the same line first.
            if let Some(at) = line.find(marker) {
                return line[at..].trim_end().to_owned();
            }
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn wait_success(&mut self) {
        // Drain stdout so the helper never blocks on a full pipe.
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.out, &mut rest);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "helper failed: {status}; output: {rest}");
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
    }
}

/// Print a marker line for the parent and stop until killed (the parent SIGKILLs us).
pub fn announce_and_hang(marker: &str) -> ! {
    use std::io::Write;
    let mut out = std::io::stdout();
    writeln!(out, "{marker}").unwrap();
    out.flush().unwrap();
    // Sleep in pause(2) until the SIGKILL arrives.
    loop {
        rustix::event::pause();
    }
}

/// A crash hook that announces `reached {point:?}` and hangs at `point` (none: no hook).
pub fn hang_at(
    point: Option<berth_image::snapshot::CrashPoint>,
) -> Option<berth_image::snapshot::CrashHook> {
    point.map(|p| {
        std::sync::Arc::new(move |at: berth_image::snapshot::CrashPoint| {
            if at == p {
                announce_and_hang(&format!("reached {at:?}"));
            }
        }) as _
    })
}

/// Run helper `test` with `role` (`POINT:OP`), wait until it announces it reached POINT, and
/// `SIGKILL` it there.
pub fn kill_at(test: &str, root: &Path, role: &str) {
    let mut h = Helper::spawn(test, role, root);
    let point = role.split_once(':').unwrap().0;
    let line = h.wait_for("reached");
    assert!(
        line.to_lowercase().contains(point),
        "{line} (wanted {point})"
    );
    h.kill();
}
