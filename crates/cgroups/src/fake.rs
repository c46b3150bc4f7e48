//! A fake cgroupfs in a tempdir, for unit tests without root.
//!
//! It behaves like the kernel where the code depends on it: `mkdir` fills a new cgroup with
//! the files of its hierarchy (from a template); writing `cgroup.procs` adds a pid; writing
//! `cgroup.freeze` updates `cgroup.events`; `devices.allow`/`devices.deny` update `devices.list`;
//! `rmdir` fails with EBUSY while the cgroup has children or processes. Files the kernel would
//! not offer are absent, so writing them fails with ENOENT. Every write is recorded, and a
//! write can be made to fail with an errno (or be silently dropped with errno 0).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tempfile::TempDir;

use super::devices::{Access, DevType, Emulator, WILDCARD};
use super::error::CgroupError;
use super::fs::CgroupFs;
use super::v2::bpf::Program;
use super::{CgroupManager, CgroupMode, CgroupState, HierarchyState, UnifiedState};

#[derive(Debug, Default)]
pub(crate) struct FakeFs {
    writes: Mutex<Vec<(PathBuf, String)>>,
    failures: Mutex<Vec<(PathBuf, i32, usize)>>,
    templates: Mutex<Vec<(PathBuf, BTreeMap<String, String>)>>,
    programs: Mutex<Vec<(PathBuf, Program)>>,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl FakeFs {
    fn template_for(&self, dir: &Path) -> BTreeMap<String, String> {
        let templates = self.templates.lock().unwrap();
        templates
            .iter()
            .filter(|(mount, _)| dir.starts_with(mount))
            .max_by_key(|(mount, _)| mount.components().count())
            .map(|(_, files)| files.clone())
            .unwrap_or_default()
    }

    fn injected_failure(&self, path: &Path) -> Option<i32> {
        let mut failures = self.failures.lock().unwrap();
        let index = failures.iter().position(|(p, _, n)| p == path && *n > 0)?;
        failures[index].2 -= 1;
        Some(failures[index].1)
    }

    fn update_devices(path: &Path, value: &str, allow: bool) -> io::Result<()> {
        let list_path = path.with_file_name("devices.list");
        let list = std::fs::read_to_string(&list_path)?;
        let mut emulator = Emulator::from_list(&list).map_err(io::Error::other)?;
        let fields: Vec<&str> = value.split([' ', ':']).collect();
        let [typ, major, minor, access] = fields[..] else {
            return Err(errno(libc::EINVAL));
        };
        let typ = match typ {
            "a" => DevType::All,
            "b" => DevType::Block,
            "c" => DevType::Char,
            _ => return Err(errno(libc::EINVAL)),
        };
        let number = |n: &str| {
            if n == "*" {
                Ok(WILDCARD)
            } else {
                n.parse().map_err(|_| errno(libc::EINVAL))
            }
        };
        let rule = super::devices::Rule {
            typ,
            major: number(major)?,
            minor: number(minor)?,
            access: Access::parse(access).ok_or_else(|| errno(libc::EINVAL))?,
            allow,
        };
        emulator.apply_as_kernel(&rule);
        let mut text = String::new();
        if emulator.default_allow {
            text.push_str("a *:* rwm\n");
        } else {
            for r in emulator.exceptions() {
                text.push_str(&r.cgroup_string());
                text.push('\n');
            }
        }
        #[expect(clippy::disallowed_methods, reason = "test fake of a kernel file")]
        std::fs::write(&list_path, text)
    }
}

impl CgroupFs for FakeFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    #[expect(clippy::disallowed_methods, reason = "test fake of kernel files")]
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        if !path.is_file() {
            return Err(errno(libc::ENOENT));
        }
        self.writes
            .lock()
            .unwrap()
            .push((path.to_owned(), value.to_owned()));
        match self.injected_failure(path) {
            Some(0) => return Ok(()),
            Some(code) => return Err(errno(code)),
            None => {}
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match name {
            "cgroup.procs" => {
                let mut text = std::fs::read_to_string(path)?;
                text.push_str(value.trim());
                text.push('\n');
                std::fs::write(path, text)
            }
            "cgroup.freeze" => {
                let frozen = value.trim() == "1";
                let events = path.with_file_name("cgroup.events");
                let text = std::fs::read_to_string(&events).unwrap_or_default();
                let text: String = text
                    .lines()
                    .map(|l| {
                        if l.starts_with("frozen ") {
                            format!("frozen {}\n", u8::from(frozen))
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                std::fs::write(&events, text)?;
                std::fs::write(path, value)
            }
            "freezer.state" => {
                let frozen = value.trim() == "FROZEN";
                std::fs::write(
                    path.with_file_name("freezer.self_freezing"),
                    if frozen { "1\n" } else { "0\n" },
                )?;
                std::fs::write(path, value)
            }
            "devices.allow" => Self::update_devices(path, value, true),
            "devices.deny" => Self::update_devices(path, value, false),
            _ => std::fs::write(path, value),
        }
    }

    #[expect(clippy::disallowed_methods, reason = "test fake of kernel files")]
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)?;
        for (file, content) in self.template_for(path) {
            std::fs::write(path.join(file), content)?;
        }
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        if !path.is_dir() {
            return Err(errno(libc::ENOENT));
        }
        if !self.subdirs(path)?.is_empty() {
            return Err(errno(libc::EBUSY));
        }
        if std::fs::read_to_string(path.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty()) {
            return Err(errno(libc::EBUSY));
        }
        std::fs::remove_dir_all(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn subdirs(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    fn files(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    fn attach_device_filter(&self, dir: &Path, program: &Program) -> Result<(), CgroupError> {
        if !dir.is_dir() {
            return Err(CgroupError::Bpf {
                op: "open the cgroup for",
                path: dir.to_owned(),
                source: errno(libc::ENOENT),
            });
        }
        self.programs
            .lock()
            .unwrap()
            .push((dir.to_owned(), program.clone()));
        Ok(())
    }
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const UNLIMITED: &str = "9223372036854771712\n";

/// The files of a new v1 cgroup, per hierarchy directory name.
fn v1_template(hierarchy: &str) -> BTreeMap<String, String> {
    let mut t = files(&[
        ("cgroup.procs", ""),
        ("tasks", ""),
        ("notify_on_release", "0\n"),
    ]);
    for controller in hierarchy.split(',') {
        let more: &[(&str, &str)] = match controller {
            "cpu" => &[
                ("cpu.shares", "1024\n"),
                ("cpu.cfs_period_us", "100000\n"),
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.cfs_burst_us", "0\n"),
                ("cpu.idle", "0\n"),
                ("cpu.rt_period_us", "1000000\n"),
                ("cpu.rt_runtime_us", "0\n"),
                (
                    "cpu.stat",
                    "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
                ),
            ],
            "cpuacct" => &[
                ("cpuacct.stat", "user 0\nsystem 0\n"),
                ("cpuacct.usage", "0\n"),
                ("cpuacct.usage_percpu", "0 0 \n"),
                ("cpuacct.usage_all", "cpu user system\n0 0 0\n1 0 0\n"),
            ],
            "cpuset" => &[
                ("cpuset.cpus", "\n"),
                ("cpuset.mems", "\n"),
                ("cpuset.cpu_exclusive", "0\n"),
                ("cpuset.mem_exclusive", "0\n"),
                ("cpuset.mem_hardwall", "0\n"),
                ("cpuset.memory_migrate", "0\n"),
                ("cpuset.memory_pressure", "0\n"),
                ("cpuset.memory_spread_page", "0\n"),
                ("cpuset.memory_spread_slab", "0\n"),
                ("cpuset.sched_load_balance", "1\n"),
                ("cpuset.sched_relax_domain_level", "-1\n"),
            ],
            "memory" => &[
                ("memory.limit_in_bytes", UNLIMITED),
                ("memory.soft_limit_in_bytes", UNLIMITED),
                ("memory.memsw.limit_in_bytes", UNLIMITED),
                ("memory.usage_in_bytes", "0\n"),
                ("memory.max_usage_in_bytes", "0\n"),
                ("memory.failcnt", "0\n"),
                ("memory.memsw.usage_in_bytes", "0\n"),
                ("memory.memsw.max_usage_in_bytes", "0\n"),
                ("memory.memsw.failcnt", "0\n"),
                ("memory.kmem.usage_in_bytes", "0\n"),
                ("memory.kmem.max_usage_in_bytes", "0\n"),
                ("memory.kmem.failcnt", "0\n"),
                ("memory.kmem.limit_in_bytes", UNLIMITED),
                ("memory.kmem.tcp.usage_in_bytes", "0\n"),
                ("memory.kmem.tcp.max_usage_in_bytes", "0\n"),
                ("memory.kmem.tcp.failcnt", "0\n"),
                ("memory.kmem.tcp.limit_in_bytes", UNLIMITED),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                ),
                ("memory.swappiness", "60\n"),
                ("memory.use_hierarchy", "1\n"),
                ("memory.stat", "cache 0\nrss 0\n"),
            ],
            "devices" => &[
                ("devices.allow", ""),
                ("devices.deny", ""),
                ("devices.list", "a *:* rwm\n"),
            ],
            "freezer" => &[
                ("freezer.state", "THAWED\n"),
                ("freezer.self_freezing", "0\n"),
                ("freezer.parent_freezing", "0\n"),
            ],
            "blkio" => &[
                ("blkio.throttle.read_bps_device", ""),
                ("blkio.throttle.write_bps_device", ""),
                ("blkio.throttle.read_iops_device", ""),
                ("blkio.throttle.write_iops_device", ""),
                ("blkio.throttle.io_service_bytes_recursive", "Total 0\n"),
                ("blkio.throttle.io_serviced_recursive", "Total 0\n"),
                ("blkio.bfq.io_service_bytes_recursive", "Total 0\n"),
                ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
            ],
            "pids" => &[("pids.max", "max\n"), ("pids.current", "0\n")],
            "hugetlb" => &[
                ("hugetlb.2MB.limit_in_bytes", UNLIMITED),
                ("hugetlb.2MB.rsvd.limit_in_bytes", UNLIMITED),
                ("hugetlb.2MB.usage_in_bytes", "0\n"),
                ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
                ("hugetlb.2MB.max_usage_in_bytes", "0\n"),
                ("hugetlb.2MB.rsvd.max_usage_in_bytes", "0\n"),
                ("hugetlb.2MB.failcnt", "0\n"),
                ("hugetlb.2MB.rsvd.failcnt", "0\n"),
                ("hugetlb.1GB.limit_in_bytes", UNLIMITED),
                ("hugetlb.1GB.rsvd.limit_in_bytes", UNLIMITED),
                ("hugetlb.1GB.usage_in_bytes", "0\n"),
                ("hugetlb.1GB.max_usage_in_bytes", "0\n"),
                ("hugetlb.1GB.failcnt", "0\n"),
            ],
            "net_cls" => &[("net_cls.classid", "0\n")],
            "net_prio" => &[
                ("net_prio.ifpriomap", "lo 0\n"),
                ("net_prio.prioidx", "1\n"),
            ],
            "rdma" => &[("rdma.max", ""), ("rdma.current", "")],
            _ => &[],
        };
        t.extend(files(more));
    }
    t
}

const V2_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma\n";
const PSI: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

fn v2_template() -> BTreeMap<String, String> {
    files(&[
        ("cgroup.procs", ""),
        ("cgroup.threads", ""),
        ("cgroup.controllers", V2_CONTROLLERS),
        ("cgroup.subtree_control", ""),
        ("cgroup.type", "domain\n"),
        ("cgroup.freeze", "0\n"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("cpu.weight", "100\n"),
        ("cpu.max", "max 100000\n"),
        ("cpu.max.burst", "0\n"),
        ("cpu.idle", "0\n"),
        (
            "cpu.stat",
            "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
        ),
        ("cpu.pressure", PSI),
        ("cpuset.cpus", "\n"),
        ("cpuset.mems", "\n"),
        ("io.max", ""),
        ("io.weight", "default 100\n"),
        ("io.stat", ""),
        ("io.pressure", PSI),
        ("memory.max", "max\n"),
        ("memory.low", "0\n"),
        ("memory.high", "max\n"),
        ("memory.swap.max", "max\n"),
        ("memory.current", "0\n"),
        ("memory.peak", "0\n"),
        ("memory.swap.current", "0\n"),
        ("memory.stat", "anon 0\nfile 0\n"),
        ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
        ("memory.pressure", PSI),
        ("pids.max", "max\n"),
        ("pids.current", "0\n"),
        ("hugetlb.2MB.max", "max\n"),
        ("hugetlb.2MB.rsvd.max", "max\n"),
        ("hugetlb.2MB.current", "0\n"),
        ("hugetlb.2MB.rsvd.current", "0\n"),
        ("hugetlb.2MB.events", "max 0\n"),
        ("hugetlb.1GB.max", "max\n"),
        ("hugetlb.1GB.rsvd.max", "max\n"),
        ("hugetlb.1GB.current", "0\n"),
        ("hugetlb.1GB.events", "max 0\n"),
        ("rdma.max", ""),
    ])
}

/// The v1 hierarchies of the fake host: directory name and controllers.
const V1_HIERARCHIES: &[(&str, &[&str])] = &[
    ("cpu,cpuacct", &["cpu", "cpuacct"]),
    ("cpuset", &["cpuset"]),
    ("memory", &["memory"]),
    ("devices", &["devices"]),
    ("freezer", &["freezer"]),
    ("blkio", &["blkio"]),
    ("pids", &["pids"]),
    ("hugetlb", &["hugetlb"]),
    ("net_cls,net_prio", &["net_cls", "net_prio"]),
    ("rdma", &["rdma"]),
    ("systemd", &["name=systemd"]),
];

pub(crate) struct FakeTree {
    dir: TempDir,
    pub fs: Arc<FakeFs>,
}

impl FakeTree {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            fs: Arc::new(FakeFs::default()),
        }
    }

    fn add_root(&self, rel: &str, template: BTreeMap<String, String>, root_files: &[(&str, &str)]) {
        let mount = self.root().join(rel);
        std::fs::create_dir_all(&mount).unwrap();
        for (file, content) in &template {
            #[expect(clippy::disallowed_methods, reason = "test fixture")]
            std::fs::write(mount.join(file), content).unwrap();
        }
        for (file, content) in root_files {
            #[expect(clippy::disallowed_methods, reason = "test fixture")]
            std::fs::write(mount.join(file), content).unwrap();
        }
        self.fs.templates.lock().unwrap().push((mount, template));
    }

    /// A legacy host: every v1 hierarchy of [`V1_HIERARCHIES`] under the tempdir.
    pub(crate) fn v1_tree() -> Self {
        let t = Self::new();
        for (name, _) in V1_HIERARCHIES {
            let root_files: &[(&str, &str)] = if *name == "cpuset" {
                &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")]
            } else {
                &[]
            };
            t.add_root(name, v1_template(name), root_files);
        }
        t
    }

    /// A unified host: the tempdir is /sys/fs/cgroup.
    pub(crate) fn v2_tree() -> Self {
        let t = Self::new();
        t.add_root("", v2_template(), &[("cgroup.procs", "1\n")]);
        t
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn fs(&self) -> &dyn CgroupFs {
        self.fs.as_ref()
    }

    /// Create a cgroup (parents included) as the kernel would, writes not recorded.
    pub(crate) fn mkcg(&self, rel: &str) -> PathBuf {
        let path = self.root().join(rel);
        let mut missing = Vec::new();
        let mut p = path.clone();
        while !p.exists() {
            missing.push(p.clone());
            p = p.parent().unwrap().to_owned();
        }
        for dir in missing.iter().rev() {
            self.fs.create_dir(dir).unwrap();
        }
        path
    }

    /// Recorded writes, paths relative to the tree.
    pub(crate) fn writes(&self) -> Vec<(String, String)> {
        self.fs
            .writes
            .lock()
            .unwrap()
            .iter()
            .map(|(p, v)| {
                (
                    p.strip_prefix(self.root())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    v.clone(),
                )
            })
            .collect()
    }

    pub(crate) fn clear_writes(&self) {
        self.fs.writes.lock().unwrap().clear();
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        self.read_abs(&self.root().join(rel))
    }

    pub(crate) fn read_abs(&self, path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[expect(clippy::disallowed_methods, reason = "test fixture")]
    pub(crate) fn set_file(&self, rel: &str, content: &str) {
        std::fs::write(self.root().join(rel), content).unwrap();
    }

    pub(crate) fn remove_file(&self, rel: &str) {
        std::fs::remove_file(self.root().join(rel)).unwrap();
    }

    /// Change a file of the template of every hierarchy (for cgroups created later).
    pub(crate) fn set_template_file(&self, file: &str, content: &str) {
        for (_, t) in self.fs.templates.lock().unwrap().iter_mut() {
            t.insert(file.to_owned(), content.to_owned());
        }
    }

    /// Make the next `times` writes to `rel` fail with `errno` (0: succeed without effect).
    pub(crate) fn fail_write(&self, rel: &str, errno: i32, times: usize) {
        self.fs
            .failures
            .lock()
            .unwrap()
            .push((self.root().join(rel), errno, times));
    }

    pub(crate) fn programs(&self) -> Vec<(PathBuf, Program)> {
        self.fs.programs.lock().unwrap().clone()
    }

    fn v1_state(&self, name: &str, mode: CgroupMode) -> CgroupState {
        CgroupState {
            mode,
            hierarchies: V1_HIERARCHIES
                .iter()
                .map(|(dir, controllers)| HierarchyState {
                    controllers: controllers.iter().map(|c| (*c).to_owned()).collect(),
                    mount_point: self.root().join(dir),
                    path: self.root().join(dir).join(name),
                })
                .collect(),
            unified: (mode == CgroupMode::Hybrid).then(|| UnifiedState {
                mount_point: self.root().join("unified"),
                path: self.root().join("unified").join(name),
            }),
        }
    }

    pub(crate) fn v1_fixture() -> Fixture {
        let tree = Self::v1_tree();
        let state = tree.v1_state("ctr", CgroupMode::Legacy);
        Fixture { tree, state }
    }

    pub(crate) fn hybrid_fixture() -> Fixture {
        let tree = Self::v1_tree();
        let mut template = v2_template();
        template.insert("cgroup.controllers".to_owned(), "\n".to_owned());
        tree.add_root("unified", template, &[]);
        let state = tree.v1_state("ctr", CgroupMode::Hybrid);
        Fixture { tree, state }
    }

    pub(crate) fn v2_fixture() -> Fixture {
        let tree = Self::v2_tree();
        let state = CgroupState {
            mode: CgroupMode::Unified,
            hierarchies: Vec::new(),
            unified: Some(UnifiedState {
                mount_point: tree.root().to_owned(),
                path: tree.root().join("ctr"),
            }),
        };
        Fixture { tree, state }
    }
}

/// A fake host and the resolved state of one container on it.
pub(crate) struct Fixture {
    pub tree: FakeTree,
    pub state: CgroupState,
}

impl Fixture {
    pub(crate) fn manager(&self) -> Box<dyn CgroupManager> {
        super::from_state_with(&self.state, self.tree.fs.clone()).unwrap()
    }

    /// Every directory of the container.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .state
            .hierarchies
            .iter()
            .map(|h| h.path.clone())
            .collect();
        dirs.extend(self.state.unified.iter().map(|u| u.path.clone()));
        dirs
    }

    /// The directory holding the container's processes (v1: devices; v2: the cgroup).
    fn procs_dir(&self) -> PathBuf {
        match self.state.mode {
            CgroupMode::Unified => self.state.unified.as_ref().unwrap().path.clone(),
            _ => self
                .state
                .hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == "devices"))
                .unwrap()
                .path
                .clone(),
        }
    }

    /// A child cgroup (as a container's own sub-cgroups) holding `pid`.
    pub(crate) fn add_child_with_pid(&self, name: &str, pid: i32) {
        let child = self.procs_dir().join(name);
        self.tree.fs.create_dir(&child).unwrap();
        self.tree
            .fs
            .write(&child.join("cgroup.procs"), &pid.to_string())
            .unwrap();
    }

    /// Empty `cgroup.procs` everywhere, as if every process exited.
    #[expect(clippy::disallowed_methods, reason = "test fixture")]
    pub(crate) fn all_processes_exit(&self) {
        for entry in walk(self.tree.root()) {
            if entry.file_name().is_some_and(|n| n == "cgroup.procs")
                && entry.parent() != Some(self.tree.root())
            {
                std::fs::write(&entry, "").unwrap();
            }
        }
    }

    /// Make the kernel's OOM kill counter read `n`.
    pub(crate) fn set_oom_kills(&self, n: u64) {
        #[expect(clippy::disallowed_methods, reason = "test fixture")]
        match self.state.mode {
            CgroupMode::Unified => {
                let dir = &self.state.unified.as_ref().unwrap().path;
                std::fs::write(
                    dir.join("memory.events"),
                    format!("low 0\nhigh 0\nmax 1\noom 1\noom_kill {n}\n"),
                )
                .unwrap();
            }
            _ => {
                let dir = &self
                    .state
                    .hierarchies
                    .iter()
                    .find(|h| h.controllers.iter().any(|c| c == "memory"))
                    .unwrap()
                    .path;
                std::fs::write(
                    dir.join("memory.oom_control"),
                    format!("oom_kill_disable 0\nunder_oom 0\noom_kill {n}\n"),
                )
                .unwrap();
            }
        }
    }

    /// Whether the device policy in force lets the container do `access` on a device.
    pub(crate) fn device_allowed(
        &self,
        typ: DevType,
        major: u32,
        minor: u32,
        access: Access,
    ) -> bool {
        match self.state.mode {
            CgroupMode::Unified => {
                let dir = &self.state.unified.as_ref().unwrap().path;
                let programs = self.tree.programs();
                let (_, program) = programs
                    .iter()
                    .rev()
                    .find(|(d, _)| d == dir)
                    .expect("no device program attached");
                super::v2::bpf::interpreter::run(program, typ, access, major, minor)
            }
            _ => {
                let dir = self.procs_dir();
                let list = self.tree.read_abs(&dir.join("devices.list"));
                let emulator = Emulator::from_list(&list).unwrap();
                // the kernel's check: an exception covering the whole request, or allow-all
                emulator.default_allow
                    || emulator.exceptions().iter().any(|r| {
                        r.typ == typ
                            && (r.major == WILDCARD || r.major == i64::from(major))
                            && (r.minor == WILDCARD || r.minor == i64::from(minor))
                            && r.access.contains(access)
                    })
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
