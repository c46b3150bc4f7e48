//! The cgroup v1 manager (legacy and hybrid hosts): one hierarchy per controller (or group of
//! co-mounted controllers), one file per controller here. On hybrid hosts the container also
//! joins the unified hierarchy, where nothing is set (as runc).

mod blkio;
mod cpu;
mod cpuacct;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod memory;
mod net_cls;
mod net_prio;
mod pids;
mod rdma;

pub(crate) use rdma::lines as rdma_lines;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime_spec::LinuxResources;

use super::error::CgroupError;
use super::fs::{self, CgroupFs};
use super::stats::Stats;
use super::{CgroupManager, CgroupMounts, CgroupState, FreezerState, V1_CONTROLLERS};

/// The directory of a controller, or the error for a config that needs it.
pub(super) fn require<'a>(
    dir: Option<&'a Path>,
    controller: &str,
    what: &str,
) -> Result<&'a Path, CgroupError> {
    dir.ok_or_else(|| CgroupError::ControllerNotMounted {
        controller: controller.to_owned(),
        what: what.to_owned(),
    })
}

#[derive(Debug)]
pub(crate) struct V1Manager {
    fs: Arc<dyn CgroupFs>,
    state: CgroupState,
}

impl V1Manager {
    pub(crate) fn new(fs: Arc<dyn CgroupFs>, state: CgroupState) -> Self {
        Self { fs, state }
    }

    fn hierarchy(&self, controller: &str) -> Option<&super::HierarchyState> {
        self.state
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    fn path(&self, controller: &str) -> Option<&Path> {
        self.hierarchy(controller).map(|h| h.path.as_path())
    }

    /// Every directory this manager owns, each once.
    fn all_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for h in &self.state.hierarchies {
            if !paths.contains(&h.path) {
                paths.push(h.path.clone());
            }
        }
        if let Some(u) = &self.state.unified {
            paths.push(u.path.clone());
        }
        paths
    }

    /// The limits in `r`; the device rules too when `devices`.
    fn write(&self, r: &LinuxResources, devices: bool) -> Result<(), CgroupError> {
        if r.unified.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::UnifiedOnV1);
        }
        let fs = self.fs.as_ref();
        cpuset::set(fs, self.path("cpuset"), r)?;
        if devices {
            devices::set(fs, self.path("devices"), r)?;
        }
        memory::set(fs, self.path("memory"), r)?;
        cpu::set(fs, self.path("cpu"), r)?;
        pids::set(fs, self.path("pids"), r)?;
        blkio::set(fs, self.path("blkio"), r)?;
        hugetlb::set(fs, self.path("hugetlb"), r)?;
        net_cls::set(fs, self.path("net_cls"), r)?;
        net_prio::set(fs, self.path("net_prio"), r)?;
        rdma::set(fs, self.path("rdma"), r)?;
        Ok(())
    }
}

impl CgroupManager for V1Manager {
    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        let mut done: Vec<&Path> = Vec::new();
        for controller in V1_CONTROLLERS {
            let Some(h) = self.hierarchy(controller) else {
                continue;
            };
            if done.contains(&h.path.as_path()) {
                continue;
            }
            done.push(&h.path);
            match *controller {
                "cpuset" => cpuset::apply(fs, &h.mount_point, &h.path, pid)?,
                // Named hierarchies are joined when possible, never required (runc NameGroup).
                "name=systemd" | "misc" => {
                    let _ = fs::mkdir_all(fs, &h.mount_point, &h.path)
                        .and_then(|_| fs::join(fs, &h.path, pid));
                }
                _ => {
                    fs::mkdir_all(fs, &h.mount_point, &h.path)?;
                    fs::join(fs, &h.path, pid)?;
                }
            }
        }
        for h in &self.state.hierarchies {
            if !done.contains(&h.path.as_path()) {
                fs::mkdir_all(fs, &h.mount_point, &h.path)?;
                fs::join(fs, &h.path, pid)?;
            }
        }
        if let Some(u) = &self.state.unified {
            // Hybrid: join the unified hierarchy too, ignoring errors (as runc).
            let _ =
                fs::mkdir_all(fs, &u.mount_point, &u.path).and_then(|_| fs::join(fs, &u.path, pid));
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        self.write(r, true)
    }

    fn update(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        self.write(r, false)
    }

    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError> {
        let dir = self.path("freezer").ok_or(CgroupError::NoFreezer)?;
        freezer::set(self.fs.as_ref(), dir, state)
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        match self.path("freezer") {
            Some(dir) => freezer::get(self.fs.as_ref(), dir),
            None => Ok(FreezerState::Thawed),
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = self
            .path("devices")
            .or_else(|| self.state.hierarchies.first().map(|h| h.path.as_path()))
            .ok_or_else(|| CgroupError::InvalidState {
                reason: "no v1 hierarchy".to_owned(),
            })?;
        fs::all_pids(self.fs.as_ref(), dir)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let fs = self.fs.as_ref();
        let mut stats = Stats::default();
        if let Some(dir) = self.path("cpu") {
            cpu::stats(fs, dir, &mut stats)?;
        }
        if let Some(dir) = self.path("cpuacct") {
            cpuacct::stats(fs, dir, &mut stats)?;
        }
        if let Some(dir) = self.path("cpuset") {
            cpuset::stats(fs, dir, &mut stats)?;
        }
        if let Some(dir) = self.path("memory") {
            memory::stats(fs, dir, &mut stats)?;
        }
        if let Some(dir) = self.path("pids") {
            pids::stats(fs, dir, &mut stats)?;
        }
        if let Some(dir) = self.path("blkio") {
            blkio::stats(fs, dir, &mut stats)?;
        }
        if let Some(dir) = self.path("hugetlb") {
            hugetlb::stats(fs, dir, &mut stats)?;
        }
        Ok(stats)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let dir = require(self.path("memory"), "memory", "OOM kill counting")?;
        fs::read_key(self.fs.as_ref(), dir, "memory.oom_control", "oom_kill")
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let mut failed = Vec::new();
        let mut first = None;
        let deadline = std::time::Instant::now() + fs::REMOVE_BUSY_BUDGET;
        for path in self.all_paths() {
            if let Err(err) = fs::remove_path(self.fs.as_ref(), &path, deadline) {
                failed.push(path);
                first.get_or_insert(err);
            }
        }
        match first {
            None => Ok(()),
            Some(err) => Err(CgroupError::Destroy {
                paths: failed,
                source: Box::new(err),
            }),
        }
    }

    fn state(&self) -> CgroupState {
        self.state.clone()
    }

    fn mounts(&self) -> CgroupMounts {
        CgroupMounts::V1 {
            hierarchies: self
                .state
                .hierarchies
                .iter()
                .map(|h| {
                    let name = h.mount_point.file_name().map_or_else(
                        || h.controllers.join(","),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    (name, h.path.clone())
                })
                .collect(),
            unified: self.state.unified.as_ref().map(|u| u.path.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance;
    use super::super::fake::FakeTree;

    conformance::suite!(FakeTree::v1_fixture);

    #[test]
    fn unified_resources_are_refused_on_v1_with_runcs_message() {
        let f = FakeTree::v1_fixture();
        let m = f.manager();
        m.apply(1).unwrap();
        let r = berth_runtime_spec::LinuxResources {
            unified: Some([("memory.high".to_owned(), "1".to_owned())].into()),
            ..Default::default()
        };
        let err = m.set(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: cannot use unified on cgroup v1"
        );
    }

    #[test]
    fn hybrid_joins_the_unified_hierarchy_but_sets_nothing_there() {
        let f = FakeTree::hybrid_fixture();
        let m = f.manager();
        m.apply(77).unwrap();
        let unified = f.state.unified.clone().unwrap().path;
        assert_eq!(f.tree.read_abs(&unified.join("cgroup.procs")), "77\n");
        m.set(&berth_runtime_spec::LinuxResources::default())
            .unwrap();
        assert!(
            f.tree
                .writes()
                .iter()
                .all(|(p, _)| !p.starts_with("unified/") || p.ends_with("cgroup.procs"))
        );
        match m.mounts() {
            crate::CgroupMounts::V1 {
                unified: Some(u),
                hierarchies,
            } => {
                assert_eq!(u, unified);
                assert!(hierarchies.iter().any(|(name, _)| name == "cpu,cpuacct"));
            }
            other => panic!("unexpected mounts {other:?}"),
        }
        f.all_processes_exit();
        m.destroy().unwrap();
        assert!(!unified.exists());
    }
}
