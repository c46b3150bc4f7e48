//! The cgroup v2 manager (unified hosts): one directory, one file per controller here; devices
//! through an eBPF program (`bpf.rs`).

pub(crate) mod bpf;
mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod io;
mod memory;
mod pids;
mod rdma;
mod unified;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime_spec::LinuxResources;

use super::error::CgroupError;
use super::fs::{self, CgroupFs};
use super::stats::{PsiStats, Stats, parse_psi};
use super::{CgroupManager, CgroupMode, CgroupMounts, CgroupState, FreezerState, UnifiedState};

/// A PSI file (`cpu.pressure`...), None when the kernel has no PSI for the cgroup.
pub(crate) fn psi(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
) -> Result<Option<PsiStats>, CgroupError> {
    let text = match fs.read(&dir.join(file)) {
        Ok(text) => text,
        Err(err)
            if err.kind() == std::io::ErrorKind::NotFound
                || err.raw_os_error() == Some(libc::EOPNOTSUPP) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.join(file),
                source,
            });
        }
    };
    parse_psi(&text)
        .map(Some)
        .map_err(|reason| CgroupError::Parse {
            path: dir.join(file),
            reason,
        })
}

#[derive(Debug)]
pub(crate) struct V2Manager {
    fs: Arc<dyn CgroupFs>,
    mount_point: PathBuf,
    path: PathBuf,
}

impl V2Manager {
    pub(crate) fn new(fs: Arc<dyn CgroupFs>, state: UnifiedState) -> Self {
        Self {
            fs,
            mount_point: state.mount_point,
            path: state.path,
        }
    }

    /// Create the cgroup and its parents, enabling every available controller for the
    /// children of each level above it (runc `CreateCgroupPath`).
    fn create(&self) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        let available = fs::read_trimmed(fs, &self.mount_point, "cgroup.controllers")?;
        let enable: Vec<String> = available
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        let relative =
            self.path
                .strip_prefix(&self.mount_point)
                .map_err(|_| CgroupError::InvalidState {
                    reason: format!(
                        "{} is not below {}",
                        self.path.display(),
                        self.mount_point.display()
                    ),
                })?;
        let mut levels = vec![self.mount_point.clone()];
        for component in relative.components() {
            let next = levels.last().map(|l| l.join(component)).unwrap_or_default();
            levels.push(next);
        }
        let mut created: Vec<PathBuf> = Vec::new();
        let result = (|| {
            for (i, level) in levels.iter().enumerate() {
                if i > 0 {
                    match fs.create_dir(level) {
                        Ok(()) => created.push(level.clone()),
                        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(source) => {
                            return Err(CgroupError::CreateDir {
                                path: level.clone(),
                                source,
                            });
                        }
                    }
                    check_type(fs, level)?;
                }
                if i + 1 < levels.len() && !enable.is_empty() {
                    // Some controllers may not be delegated to us: enable what we can; a
                    // limit that needs a missing one fails later, naming its file.
                    if fs::write(fs, level, "cgroup.subtree_control", &enable.join(" ")).is_err() {
                        for one in &enable {
                            let _ = fs::write(fs, level, "cgroup.subtree_control", one);
                        }
                    }
                }
            }
            Ok(())
        })();
        if result.is_err() {
            for dir in created.iter().rev() {
                let _ = fs.remove_dir(dir);
            }
        }
        result
    }
}

/// A cgroup left "domain invalid" by processes in its parent can still be used threaded.
fn check_type(fs: &dyn CgroupFs, dir: &Path) -> Result<(), CgroupError> {
    let Some(typ) = fs::optional(fs::read_trimmed(fs, dir, "cgroup.type"))? else {
        return Ok(());
    };
    if typ == "domain invalid" {
        fs::write(fs, dir, "cgroup.type", "threaded").map_err(|_| CgroupError::CgroupType {
            path: dir.to_owned(),
            reason: "it is in an invalid state (\"domain invalid\") and cannot be made threaded"
                .to_owned(),
        })?;
    }
    Ok(())
}

impl V2Manager {
    /// The limits in `r`; the device rules (the eBPF program) too when `devices`.
    fn write(&self, r: &LinuxResources, devices: bool) -> Result<(), CgroupError> {
        let (fs, dir) = (self.fs.as_ref(), self.path.as_path());
        pids::set(fs, dir, r)?;
        memory::set(fs, dir, r)?;
        io::set(fs, dir, r)?;
        cpu::set(fs, dir, r)?;
        if devices {
            devices::set(fs, dir, r)?;
        }
        cpuset::set(fs, dir, r)?;
        hugetlb::set(fs, dir, r)?;
        rdma::set(fs, dir, r)?;
        unified::set(fs, dir, r)
    }
}

impl CgroupManager for V2Manager {
    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.create()?;
        fs::join(self.fs.as_ref(), &self.path, pid)
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        self.write(r, true)
    }

    fn update(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        self.write(r, false)
    }

    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError> {
        freezer::set(self.fs.as_ref(), &self.path, state)
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        freezer::get(self.fs.as_ref(), &self.path)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::all_pids(self.fs.as_ref(), &self.path)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let (fs, dir) = (self.fs.as_ref(), self.path.as_path());
        let mut stats = Stats::default();
        pids::stats(fs, dir, &mut stats)?;
        memory::stats(fs, dir, &mut stats)?;
        stats.memory.psi = psi(fs, dir, "memory.pressure")?;
        io::stats(fs, dir, &mut stats)?;
        stats.blkio.psi = psi(fs, dir, "io.pressure")?;
        cpu::stats(fs, dir, &mut stats)?;
        stats.cpu.psi = psi(fs, dir, "cpu.pressure")?;
        hugetlb::stats(fs, dir, &mut stats)?;
        Ok(stats)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        fs::read_key(self.fs.as_ref(), &self.path, "memory.events", "oom_kill")
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = std::time::Instant::now() + fs::REMOVE_BUSY_BUDGET;
        fs::remove_path(self.fs.as_ref(), &self.path, deadline)
    }

    fn state(&self) -> CgroupState {
        CgroupState {
            mode: CgroupMode::Unified,
            hierarchies: Vec::new(),
            unified: Some(UnifiedState {
                mount_point: self.mount_point.clone(),
                path: self.path.clone(),
            }),
        }
    }

    fn mounts(&self) -> CgroupMounts {
        CgroupMounts::V2(self.path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance;
    use super::super::fake::FakeTree;
    use super::*;

    conformance::suite!(FakeTree::v2_fixture);

    #[test]
    fn apply_enables_the_available_controllers_down_to_the_parent() {
        let t = FakeTree::v2_tree();
        let state = UnifiedState {
            mount_point: t.root().to_owned(),
            path: t.root().join("a/b/ctr"),
        };
        let m = V2Manager::new(t.fs.clone(), state);
        m.apply(9).unwrap();
        let enabled: Vec<String> = t
            .writes()
            .into_iter()
            .filter(|(p, _)| p.ends_with("cgroup.subtree_control"))
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        let all = "+cpuset +cpu +io +memory +hugetlb +pids +rdma";
        assert_eq!(
            enabled,
            [
                format!("cgroup.subtree_control={all}"),
                format!("a/cgroup.subtree_control={all}"),
                format!("a/b/cgroup.subtree_control={all}"),
            ]
        );
        assert_eq!(t.read("a/b/ctr/cgroup.procs"), "9\n");
    }

    #[test]
    fn a_failed_create_removes_the_directories_it_made() {
        let t = FakeTree::v2_tree();
        let state = UnifiedState {
            mount_point: t.root().to_owned(),
            path: t.root().join("x/y"),
        };
        t.set_template_file("cgroup.type", "domain invalid");
        t.fail_write("x/cgroup.type", libc::EOPNOTSUPP, 1);
        let m = V2Manager::new(t.fs.clone(), state);
        let err = m.apply(1).unwrap_err();
        assert!(matches!(err, CgroupError::CgroupType { .. }), "{err}");
        assert!(!t.root().join("x").exists());
    }

    #[test]
    fn a_domain_invalid_cgroup_is_made_threaded() {
        let t = FakeTree::v2_tree();
        t.set_template_file("cgroup.type", "domain invalid");
        let state = UnifiedState {
            mount_point: t.root().to_owned(),
            path: t.root().join("x"),
        };
        V2Manager::new(t.fs.clone(), state).apply(-1).unwrap();
        assert_eq!(t.read("x/cgroup.type"), "threaded");
        assert_eq!(t.read("x/cgroup.procs"), "");
    }

    #[test]
    fn without_controllers_nothing_is_enabled() {
        // this host's hybrid cgroup2: no controllers at all
        let t = FakeTree::v2_tree();
        t.set_file("cgroup.controllers", "\n");
        let state = UnifiedState {
            mount_point: t.root().to_owned(),
            path: t.root().join("a/ctr"),
        };
        V2Manager::new(t.fs.clone(), state).apply(5).unwrap();
        assert!(
            t.writes()
                .iter()
                .all(|(p, _)| !p.ends_with("subtree_control"))
        );
    }
}
