//! v2 freezer: `cgroup.freeze`, confirmed through `cgroup.events` ("frozen 1"), polled with a
//! bounded wait (10 s, as runc). Thawing a cgroup without the file is a no-op; freezing one is
//! an error.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::FreezerState;
use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

const TIMEOUT: Duration = Duration::from_secs(10);

fn events_frozen(fs: &dyn CgroupFs, dir: &Path) -> Result<bool, CgroupError> {
    Ok(fs::read_key(fs, dir, "cgroup.events", "frozen")? == 1)
}

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, state: FreezerState) -> Result<(), CgroupError> {
    let value = match state {
        FreezerState::Frozen => "1",
        FreezerState::Thawed => "0",
    };
    match fs::write(fs, dir, "cgroup.freeze", value) {
        Err(err) if err.is_not_found() && state == FreezerState::Thawed => return Ok(()),
        other => other?,
    }
    let actual = get(fs, dir)?;
    if actual != state {
        return Err(CgroupError::FreezerState {
            path: dir.to_owned(),
            state: format!("{actual:?}"),
            expected: format!("{state:?}"),
        });
    }
    Ok(())
}

pub(super) fn get(fs: &dyn CgroupFs, dir: &Path) -> Result<FreezerState, CgroupError> {
    let wanted = match fs::read_trimmed(fs, dir, "cgroup.freeze") {
        Ok(v) => v,
        Err(err) if err.is_not_found() || err.raw_os_error() == Some(libc::ENODEV) => {
            return Ok(FreezerState::Thawed);
        }
        Err(err) => return Err(err),
    };
    match wanted.as_str() {
        "0" => Ok(FreezerState::Thawed),
        "1" => {
            // freezing is asynchronous: wait for the kernel to report it done
            let deadline = Instant::now() + TIMEOUT;
            let mut delay = Duration::from_millis(1);
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                if events_frozen(fs, dir)? {
                    return Ok(FreezerState::Frozen);
                }
                if Instant::now() >= deadline {
                    return Err(CgroupError::FreezeTimeout {
                        path: dir.to_owned(),
                        state: "frozen 0".to_owned(),
                        attempts,
                    });
                }
                fs::pause(delay);
                delay = (delay * 2).min(Duration::from_millis(10));
            }
        }
        other => Err(CgroupError::FreezerState {
            path: dir.to_owned(),
            state: other.to_owned(),
            expected: "0 or 1".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;

    #[test]
    fn freeze_waits_for_events_and_thaw_writes_zero() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(t.fs(), &dir, FreezerState::Frozen).unwrap();
        assert_eq!(t.read("c/cgroup.freeze"), "1");
        assert_eq!(get(t.fs(), &dir).unwrap(), FreezerState::Frozen);
        set(t.fs(), &dir, FreezerState::Thawed).unwrap();
        assert_eq!(get(t.fs(), &dir).unwrap(), FreezerState::Thawed);
    }

    #[test]
    fn no_freeze_file_thaws_quietly_but_cannot_freeze() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.remove_file("c/cgroup.freeze");
        set(t.fs(), &dir, FreezerState::Thawed).unwrap();
        let err = set(t.fs(), &dir, FreezerState::Frozen).unwrap_err();
        assert!(
            err.is_not_found() && err.to_string().contains("cgroup.freeze"),
            "{err}"
        );
    }
}
