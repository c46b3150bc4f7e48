//! What the probes need from the host, read from `/proc` text: the process' effective
//! capabilities (`/proc/self/status`) and the mounts (`/proc/self/mountinfo`). Pure functions
//! over the text, so they are tested without root.

use std::path::PathBuf;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set (`CapEff:` in `/proc/PID/status`).
pub(crate) fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The capabilities missing to load tracing and cgroup programs: `None` with
/// CAP_SYS_ADMIN (which covers all of them), or with CAP_BPF + CAP_PERFMON (tracing) +
/// CAP_NET_ADMIN (cgroup socket programs); else their names.
pub(crate) fn missing_caps(cap_eff: u64) -> Option<String> {
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return None;
    }
    let missing: Vec<&str> = [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|&(cap, _)| !has(cap))
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        None
    } else {
        Some(missing.join(", "))
    }
}

/// One line of `/proc/self/mountinfo` (proc(5)): its mount point and filesystem type, the
/// root of the mount within its filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
}

/// `\040` and the other octal escapes the kernel writes for spaces, tabs, newlines and
/// backslashes in mount points.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let digit = |c: u8| u16::from(c - b'0');
            let v = digit(b[i + 1]) * 64 + digit(b[i + 2]) * 8 + digit(b[i + 3]);
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let fstype = after.split(' ').next()?;
            Some(Mount {
                root: unescape(fields.get(3)?),
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

/// The cgroup2 hierarchy's root as mounted: `/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one (the first cgroup2 mount of the hierarchy's root).
pub(crate) fn cgroup2_root(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.root == "/")
        .map(|m| m.mount_point.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
40 31 0:27 /ctr /tmp/with\\040space rw shared:10 - cgroup2 cgroup2 rw
";

    #[test]
    fn cgroup2_root_on_a_hybrid_host_is_the_unified_mount() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 5);
        assert_eq!(
            cgroup2_root(&mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(mounts[4].mount_point, PathBuf::from("/tmp/with space"));
        assert_eq!(mounts[4].root, "/ctr");
        assert_eq!(cgroup2_root(&parse_mountinfo(&HYBRID[..200])), None);
    }

    #[test]
    fn privileges_need_sys_admin_or_bpf_perfmon_net_admin() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
        assert_eq!(missing_caps(0x1ff_ffff_ffff), None);
        assert_eq!(missing_caps(1 << CAP_SYS_ADMIN), None);
        assert_eq!(
            missing_caps(1 << CAP_BPF),
            Some("CAP_PERFMON, CAP_NET_ADMIN".to_owned())
        );
        assert_eq!(
            missing_caps((1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_NET_ADMIN)),
            None
        );
        assert_eq!(effective_caps("Name:\tx\n"), None);
    }
}
