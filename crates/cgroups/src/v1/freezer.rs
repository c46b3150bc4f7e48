//! v1 `freezer`: pause and resume through `freezer.state`.
//!
//! Freezing writes FROZEN and polls until the kernel reports FROZEN rather than FREEZING, with
//! runc's bounded schedule (1000 attempts; every 50th thaws and waits 10 ms so that tasks being
//! forked can settle). A freeze that fails is thawed back: a half-frozen container is worse
//! than a running one.

use std::path::Path;
use std::time::Duration;

use crate::FreezerState;
use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

const STATE: &str = "freezer.state";
const ATTEMPTS: u32 = 1000;

fn freeze(fs: &dyn CgroupFs, dir: &Path) -> Result<(), CgroupError> {
    let mut last = String::new();
    for i in 0..ATTEMPTS {
        if i % 50 == 49 {
            fs::write(fs, dir, STATE, "THAWED")?;
            fs::pause(Duration::from_millis(10));
        }
        fs::write(fs, dir, STATE, "FROZEN")?;
        if i % 25 == 24 {
            fs::pause(Duration::from_micros(10));
        }
        last = fs::read_trimmed(fs, dir, STATE)?;
        match last.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => {}
            _ => {
                return Err(CgroupError::FreezerState {
                    path: dir.to_owned(),
                    state: last,
                    expected: "FROZEN or FREEZING".to_owned(),
                });
            }
        }
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.to_owned(),
        state: last,
        attempts: ATTEMPTS,
    })
}

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, state: FreezerState) -> Result<(), CgroupError> {
    match state {
        FreezerState::Thawed => fs::write(fs, dir, STATE, "THAWED"),
        FreezerState::Frozen => freeze(fs, dir).inspect_err(|_| {
            let _ = fs::write(fs, dir, STATE, "THAWED");
        }),
    }
}

pub(super) fn get(fs: &dyn CgroupFs, dir: &Path) -> Result<FreezerState, CgroupError> {
    for _ in 0..ATTEMPTS {
        let state = match fs::read_trimmed(fs, dir, STATE) {
            Ok(state) => state,
            // no freezer file (or the cgroup is gone): not frozen
            Err(err) if err.is_not_found() || err.raw_os_error() == Some(libc::ENODEV) => {
                return Ok(FreezerState::Thawed);
            }
            Err(err) => return Err(err),
        };
        match state.as_str() {
            "THAWED" => return Ok(FreezerState::Thawed),
            "FROZEN" => {
                // frozen by an ancestor only counts as thawed for this container (as runc)
                return match fs::optional(fs::read_trimmed(fs, dir, "freezer.self_freezing"))?
                    .as_deref()
                {
                    Some("0") => Ok(FreezerState::Thawed),
                    _ => Ok(FreezerState::Frozen),
                };
            }
            "FREEZING" => fs::pause(Duration::from_millis(1)),
            _ => {
                return Err(CgroupError::FreezerState {
                    path: dir.to_owned(),
                    state,
                    expected: "THAWED, FREEZING or FROZEN".to_owned(),
                });
            }
        }
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.to_owned(),
        state: "FREEZING".to_owned(),
        attempts: ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;

    #[test]
    fn freeze_and_thaw_write_the_state_file() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("freezer/c");
        set(t.fs(), &dir, FreezerState::Frozen).unwrap();
        assert_eq!(t.read("freezer/c/freezer.state"), "FROZEN");
        t.set_file("freezer/c/freezer.self_freezing", "1\n");
        assert_eq!(get(t.fs(), &dir).unwrap(), FreezerState::Frozen);
        set(t.fs(), &dir, FreezerState::Thawed).unwrap();
        assert_eq!(get(t.fs(), &dir).unwrap(), FreezerState::Thawed);
    }

    #[test]
    fn frozen_by_an_ancestor_is_thawed_and_a_gone_cgroup_is_thawed() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("freezer/c");
        t.set_file("freezer/c/freezer.state", "FROZEN\n");
        t.set_file("freezer/c/freezer.self_freezing", "0\n");
        assert_eq!(get(t.fs(), &dir).unwrap(), FreezerState::Thawed);
        assert_eq!(
            get(t.fs(), &t.root().join("freezer/gone")).unwrap(),
            FreezerState::Thawed
        );
    }

    #[test]
    fn a_failed_freeze_thaws_back() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("freezer/c");
        t.set_file("freezer/c/freezer.state", "THAWED\n");
        t.fail_write("freezer/c/freezer.state", 0, 1); // FROZEN is "ignored": state stays THAWED
        let err = set(t.fs(), &dir, FreezerState::Frozen).unwrap_err();
        assert!(matches!(err, CgroupError::FreezerState { .. }), "{err}");
        assert_eq!(t.writes().last().unwrap().1, "THAWED");
    }
}
