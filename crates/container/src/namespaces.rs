//! Namespaces: which to create, which to join by path (user first), the uid/gid maps the
//! runtime writes for a new user namespace, and time namespace offsets.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_runtime_spec::{Linux, LinuxIdMapping, LinuxNamespaceType};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use crate::ipc::{Context, Failure};

/// The clone/unshare flag of a namespace type.
pub(crate) fn flag(t: LinuxNamespaceType) -> UnshareFlags {
    match t {
        LinuxNamespaceType::Mount => UnshareFlags::NEWNS,
        LinuxNamespaceType::Cgroup => UnshareFlags::NEWCGROUP,
        LinuxNamespaceType::Uts => UnshareFlags::NEWUTS,
        LinuxNamespaceType::Ipc => UnshareFlags::NEWIPC,
        LinuxNamespaceType::User => UnshareFlags::NEWUSER,
        LinuxNamespaceType::Pid => UnshareFlags::NEWPID,
        LinuxNamespaceType::Network => UnshareFlags::NEWNET,
        LinuxNamespaceType::Time => UnshareFlags::NEWTIME,
    }
}

/// The name of a namespace under /proc/<pid>/ns/.
pub(crate) fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn link_type(t: LinuxNamespaceType) -> LinkNameSpaceType {
    match t {
        LinuxNamespaceType::Mount => LinkNameSpaceType::Mount,
        LinuxNamespaceType::Cgroup => LinkNameSpaceType::ControlGroup,
        LinuxNamespaceType::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        LinuxNamespaceType::Ipc => LinkNameSpaceType::InterProcessCommunication,
        LinuxNamespaceType::User => LinkNameSpaceType::User,
        LinuxNamespaceType::Pid => LinkNameSpaceType::ProcessID,
        LinuxNamespaceType::Network => LinkNameSpaceType::Network,
        LinuxNamespaceType::Time => LinkNameSpaceType::Time,
    }
}

/// Order in which namespaces are joined: user first (it grants the rights to join the
/// others), mount last (the other paths are resolved in the current mount namespace, and
/// all are opened before any is joined anyway).
const JOIN_ORDER: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// Every namespace type.
const ALL: &[LinuxNamespaceType] = JOIN_ORDER;

/// The namespace plan of a config: what to create, what to join.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Flags of the namespaces to create.
    pub new: UnshareFlags,
    /// Namespaces to join: (type, path), in join order.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            new: UnshareFlags::empty(),
            join: Vec::new(),
        }
    }
}

impl Plan {
    pub(crate) fn of(linux: &Linux) -> Plan {
        let mut plan = Plan {
            new: UnshareFlags::empty(),
            join: Vec::new(),
        };
        let nss = linux.namespaces.as_deref().unwrap_or_default();
        for t in JOIN_ORDER {
            for ns in nss.iter().filter(|n| n.typ == *t) {
                match &ns.path {
                    Some(p) => plan.join.push((*t, p.clone())),
                    None => plan.new |= flag(*t),
                }
            }
        }
        plan
    }

    /// Joining the namespaces of a running container's init (exec).
    pub(crate) fn join_all_of(pid: i32, types: &[LinuxNamespaceType]) -> Plan {
        let mut plan = Plan::default();
        for t in JOIN_ORDER {
            if types.contains(t) {
                plan.join.push((
                    *t,
                    PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(*t))),
                ));
            }
        }
        plan
    }

    pub(crate) fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(flag(t))
    }

    /// The container has a namespace of type `t` other than the runtime's: a new one or
    /// one joined by path.
    pub(crate) fn separates(&self, t: LinuxNamespaceType) -> bool {
        self.creates(t) || self.join.iter().any(|(j, _)| *j == t)
    }

    /// Open every namespace to join, then join them (user first). A namespace the process
    /// is already in is skipped (joining one's own user namespace fails with EINVAL).
    /// Whether a user namespace other than the process's own was joined: the caller then
    /// becomes its root, as runc's nsexec does, before making anything in the container.
    ///
    /// A namespace that user namespace does not own — another container's network
    /// namespace, shared with `--network container:` by a container with a user namespace
    /// of its own — is joined before it, while the runtime still has the capabilities of its
    /// own user namespace over it (from inside the container's, setns(2) is refused with
    /// EPERM); crun joins in two passes for the same reason.
    pub(crate) fn join(&self) -> Result<bool, Failure> {
        let mut joined_user = false;
        let mut files = Vec::with_capacity(self.join.len());
        for (t, p) in &self.join {
            let f = File::open(p)
                .ctx(|| format!("failed to open {} namespace {}", proc_name(*t), p.display()))?;
            check_kind(&f, *t, p)?;
            files.push((*t, p, f));
        }
        let user = files
            .iter()
            .find(|(t, p, _)| *t == LinuxNamespaceType::User && !same_ns(p, "user"))
            .and_then(|(_, _, f)| f.metadata().ok());
        let foreign = |f: &File| -> bool {
            use std::os::unix::fs::MetadataExt;
            let Some(user) = &user else {
                return false;
            };
            crate::sys::namespace_owner(f.as_fd())
                .ok()
                .and_then(|owner| File::from(owner).metadata().ok())
                .is_some_and(|o| o.dev() != user.dev() || o.ino() != user.ino())
        };
        let (before, after): (Vec<_>, Vec<_>) = files
            .iter()
            .partition(|(t, _, f)| *t != LinuxNamespaceType::User && foreign(f));
        for (t, p, f) in before {
            rustix::thread::move_into_link_name_space(f.as_fd(), Some(link_type(*t)))
                .ctx(|| format!("failed to join {} namespace {}", proc_name(*t), p.display()))?;
        }
        for (t, p, f) in after {
            if *t == LinuxNamespaceType::User && same_ns(p, "user") {
                continue;
            }
            rustix::thread::move_into_link_name_space(f.as_fd(), Some(link_type(*t)))
                .ctx(|| format!("failed to join {} namespace {}", proc_name(*t), p.display()))?;
            joined_user |= *t == LinuxNamespaceType::User;
        }
        Ok(joined_user)
    }
}

/// `f_type` of nsfs, the filesystem of /proc/<pid>/ns/* and of bind mounts of them.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Refuse, before joining, a file that is not a namespace or is one of another type, with
/// an error saying which (setns(2) would only say EINVAL). The type comes from the
/// descriptor (`NS_GET_NSTYPE`), so a bind-mounted namespace (`/run/netns/<name>`) is typed
/// as well as `/proc/<pid>/ns/net`.
fn check_kind(f: &File, t: LinuxNamespaceType, path: &Path) -> Result<(), Failure> {
    let want = proc_name(t);
    let fs = rustix::fs::fstatfs(f)
        .ctx(|| format!("failed to inspect {want} namespace {}", path.display()))?;
    #[allow(
        clippy::useless_conversion,
        reason = "f_type is i64 on x86_64 and aarch64 but narrower elsewhere"
    )]
    let f_type = i64::from(fs.f_type);
    if f_type != NSFS_MAGIC {
        return Err(Failure::new(format!(
            "failed to join {want} namespace {}: not a namespace file",
            path.display()
        )));
    }
    let kind = crate::sys::namespace_type(f.as_fd())
        .ctx(|| format!("failed to read the type of namespace {}", path.display()))?;
    if i64::from(kind) != i64::from(flag(t).bits()) {
        let actual = ALL
            .iter()
            .find(|a| i64::from(flag(**a).bits()) == i64::from(kind))
            .map_or("another", |a| proc_name(*a));
        return Err(Failure::new(format!(
            "failed to join {want} namespace {}: it is a {actual} namespace",
            path.display()
        )));
    }
    Ok(())
}

fn same_ns(path: &Path, name: &str) -> bool {
    match (
        std::fs::metadata(path),
        std::fs::metadata(format!("/proc/self/ns/{name}")),
    ) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.ino() == b.ino() && a.dev() == b.dev()
        }
        _ => false,
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

fn write_proc(path: &str, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// How the id maps of a new user namespace get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdMapPlan {
    /// Write `deny` to `/proc/<pid>/setgroups` first (an unprivileged process may write
    /// a gid_map only then).
    pub deny_setgroups: bool,
    /// Through newuidmap (else written directly).
    pub uid_tool: bool,
    /// Through newgidmap (else written directly).
    pub gid_tool: bool,
}

impl IdMapPlan {
    /// runc's rules: root writes the maps itself; an unprivileged runtime (`euid` not 0)
    /// writes a single mapping of its own id itself (the kernel allows exactly that, with
    /// setgroups denied for the gid map) and anything else through the setuid
    /// newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
    pub(crate) fn new(
        uid: &[LinuxIdMapping],
        gid: &[LinuxIdMapping],
        euid: u32,
        egid: u32,
    ) -> Self {
        let self_map = |maps: &[LinuxIdMapping], id: u32| {
            maps.len() == 1 && maps[0].size == 1 && maps[0].host_id == id
        };
        let unprivileged = euid != 0;
        let gid_self = self_map(gid, egid);
        IdMapPlan {
            deny_setgroups: unprivileged && gid_self,
            uid_tool: unprivileged && !uid.is_empty() && !self_map(uid, euid),
            gid_tool: unprivileged && !gid.is_empty() && !gid_self,
        }
    }
}

/// Write the uid/gid maps of the new user namespace of `pid` (runtime side), as
/// [`IdMapPlan`] says.
pub(crate) fn write_id_maps(pid: i32, linux: &Linux) -> Result<(), Failure> {
    let uid = linux.uid_mappings.as_deref().unwrap_or_default();
    let gid = linux.gid_mappings.as_deref().unwrap_or_default();
    let plan = IdMapPlan::new(
        uid,
        gid,
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    if plan.deny_setgroups {
        write_proc(&format!("/proc/{pid}/setgroups"), "deny")
            .ctx(|| format!("failed to write deny to /proc/{pid}/setgroups"))?;
    }
    if plan.uid_tool {
        run_idmap_tool("newuidmap", pid, uid)?;
    } else if !uid.is_empty() {
        write_proc(&format!("/proc/{pid}/uid_map"), &map_text(uid))
            .ctx(|| format!("failed to write /proc/{pid}/uid_map"))?;
    }
    if plan.gid_tool {
        run_idmap_tool("newgidmap", pid, gid)?;
    } else if !gid.is_empty() {
        write_proc(&format!("/proc/{pid}/gid_map"), &map_text(gid))
            .ctx(|| format!("failed to write /proc/{pid}/gid_map"))?;
    }
    Ok(())
}

fn run_idmap_tool(tool: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<(), Failure> {
    let mut cmd = Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id.to_string(),
            m.host_id.to_string(),
            m.size.to_string(),
        ]);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::new(format!(
                "{tool} not found in PATH: a non-root user needs it to map ids other than its own \
                 (hint: install the uidmap package, or map only your own uid and gid, size 1)"
            )));
        }
        Err(e) => return Err(e).ctx(|| format!("failed to run {tool}")),
    };
    if out.status.success() {
        Ok(())
    } else {
        // newuidmap says which range /etc/subuid does not grant
        Err(Failure::new(format!(
            "{tool} {pid}{} failed ({}): {} (hint: the ranges must be granted to this user in {})",
            maps.iter()
                .map(|m| format!(" {} {} {}", m.container_id, m.host_id, m.size))
                .collect::<String>(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            if tool == "newuidmap" {
                "/etc/subuid"
            } else {
                "/etc/subgid"
            }
        )))
    }
}

/// Write time namespace offsets of the calling process's new time namespace (before any
/// process enters it).
pub(crate) fn write_time_offsets(linux: &Linux) -> Result<(), Failure> {
    let Some(offsets) = &linux.time_offsets else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs.unwrap_or(0),
            off.nanosecs.unwrap_or(0)
        ));
    }
    if text.is_empty() {
        return Ok(());
    }
    write_proc("/proc/self/timens_offsets", &text)
        .ctx(|| "failed to write /proc/self/timens_offsets".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(v: &[(u32, u32, u32)]) -> Vec<LinuxIdMapping> {
        v.iter()
            .map(|(c, h, s)| {
                serde_json::from_value(
                    serde_json::json!({"containerID": c, "hostID": h, "size": s}),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn id_maps_are_written_as_runc_writes_them() {
        let own = maps(&[(0, 1000, 1)]);
        let wide = maps(&[(0, 1000, 1), (1, 200_000, 65_536)]);
        let root_range = maps(&[(0, 100_000, 65_536)]);
        // root writes everything itself and never denies setgroups
        assert_eq!(
            IdMapPlan::new(&root_range, &root_range, 0, 0),
            IdMapPlan {
                deny_setgroups: false,
                uid_tool: false,
                gid_tool: false
            }
        );
        // a user mapping only itself: directly, with setgroups denied first
        assert_eq!(
            IdMapPlan::new(&own, &own, 1000, 1000),
            IdMapPlan {
                deny_setgroups: true,
                uid_tool: false,
                gid_tool: false
            }
        );
        // more than itself: newuidmap/newgidmap, setgroups left to them
        assert_eq!(
            IdMapPlan::new(&wide, &wide, 1000, 1000),
            IdMapPlan {
                deny_setgroups: false,
                uid_tool: true,
                gid_tool: true
            }
        );
        // its own uid but another user's: the tool for what the kernel would refuse
        assert_eq!(
            IdMapPlan::new(&own, &maps(&[(0, 1001, 1)]), 1000, 1000),
            IdMapPlan {
                deny_setgroups: false,
                uid_tool: false,
                gid_tool: true
            }
        );
        // a single id but not size 1 is not "its own"
        assert!(IdMapPlan::new(&maps(&[(0, 1000, 2)]), &own, 1000, 1000).uid_tool);
    }
}
