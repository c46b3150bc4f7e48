//! v2 `unified`: each `linux.resources.unified` key is a file in the cgroup, written last so it
//! overrides the other settings (runc `setUnified`), in key order, one write per line.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(unified) = &r.unified else {
        return Ok(());
    };
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        let invalid = |reason: String| CgroupError::InvalidResource {
            what: format!("unified resource {key:?}"),
            reason,
        };
        if key.contains('/') || key.is_empty() || key == "." || key == ".." {
            return Err(invalid("must be a file name (no slashes)".to_owned()));
        }
        for line in unified[key].split('\n').filter(|l| !l.is_empty()) {
            match fs::write(fs, dir, key, line) {
                Err(err) if err.is_not_found() || err.raw_os_error() == Some(libc::EPERM) => {
                    // say which controller is missing when that is the reason
                    let Some((controller, _)) = key.split_once('.') else {
                        return Err(invalid(
                            "must be in the form CONTROLLER.PARAMETER".to_owned(),
                        ));
                    };
                    let available = fs::read(fs, dir, "cgroup.controllers").unwrap_or_default();
                    if controller != "cgroup"
                        && !available.split_whitespace().any(|c| c == controller)
                    {
                        return Err(invalid(format!(
                            "can't be set: controller {controller:?} not available"
                        )));
                    }
                    return Err(err);
                }
                other => other?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;

    fn resources(pairs: &[(&str, &str)]) -> LinuxResources {
        LinuxResources {
            unified: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn keys_are_files_written_line_by_line() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(
            t.fs(),
            &dir,
            &resources(&[
                ("memory.high", "1000"),
                ("io.max", "8:0 rbps=1\n8:16 wbps=2\n"),
            ]),
        )
        .unwrap();
        let w: Vec<String> = t
            .writes()
            .into_iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        assert_eq!(
            w,
            [
                "c/io.max=8:0 rbps=1",
                "c/io.max=8:16 wbps=2",
                "c/memory.high=1000"
            ]
        );
    }

    #[test]
    fn bad_keys_and_missing_controllers_are_clear_errors() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let err = set(t.fs(), &dir, &resources(&[("../x", "1")])).unwrap_err();
        assert!(err.to_string().contains("no slashes"), "{err}");
        t.set_file("c/cgroup.controllers", "cpu pids\n");
        let err = set(t.fs(), &dir, &resources(&[("misc.max", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid unified resource \"misc.max\": can't be set: controller \"misc\" not available"
        );
        let err = set(t.fs(), &dir, &resources(&[("nodot", "1")])).unwrap_err();
        assert!(err.to_string().contains("CONTROLLER.PARAMETER"), "{err}");
        let err = set(t.fs(), &dir, &resources(&[("cpu.nonexistent", "1")])).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
}
