//! Parsers of what procfs says about a process: its cgroup2 path (`/proc/PID/cgroup`), the
//! overlay at its root and the cgroup2 mount (`/proc/PID/mountinfo`, proc(5)), its pid
//! namespace's depth (`/proc/PID/status`).

use std::path::PathBuf;

use berth_fsutil::mountinfo;

use super::OverlayRoot;

/// The cgroup2 path of a `/proc/PID/cgroup` (its `0::/…` line).
pub fn parse_cgroup2_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_owned())
        .filter(|p| p.starts_with('/'))
}

/// The cgroup2 hierarchy's root as a mountinfo shows it mounted: `/sys/fs/cgroup` on a
/// unified host, `/sys/fs/cgroup/unified` on a hybrid one, else the first cgroup2 mount of the
/// hierarchy's root (a mount of a subtree, `root` other than `/`, is not one: `/proc/PID/cgroup`
/// paths are relative to the root). What the probes attach to and attribution joins paths to.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<PathBuf> = mountinfo::parse(mountinfo)
        .into_iter()
        .filter(|m| m.fstype == "cgroup2" && m.root == "/")
        .map(|m| m.mount_point)
        .collect();
    for preferred in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Some(m) = mounts.iter().find(|m| m.as_os_str() == preferred) {
            return Some(m.clone());
        }
    }
    mounts.into_iter().next()
}

/// `\c` → `c` (overlayfs' escapes of `:` and `,` in a path).
fn unbackslash(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Split overlayfs' `lowerdir=` value on unescaped `:` (`\:` is a colon in a path; `::`
/// separates data-only layers, which hold no files of their own to execute).
fn split_lowerdirs(v: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => {
                if !cur.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut cur)));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(PathBuf::from(cur));
    }
    out
}

/// The overlay mounted at `/` in a process' mountinfo (the last mount there: the one it
/// sees), or `None` when its root is not an overlay.
pub fn root_overlay(mountinfo: &str) -> Option<OverlayRoot> {
    let root = mountinfo::parse(mountinfo)
        .into_iter()
        .rfind(|m| m.mount_point.as_os_str() == "/")?;
    if root.fstype != "overlay" {
        return None;
    }
    // mountinfo escapes a comma, space or backslash in a value as octal (`\054`, `\040`,
    // `\134`): the raw text splits on `,`. Once unescaped, overlayfs shows the paths it was
    // given, with `\:` and `\,` for a colon and a comma in a path (proc(5), overlayfs.rst).
    let mut lower = Vec::new();
    let mut upper = None;
    for opt in root.super_option_list() {
        if let Some(v) = opt.strip_prefix("lowerdir=") {
            lower.extend(split_lowerdirs(v));
        } else if let Some(v) = opt.strip_prefix("lowerdir+=") {
            lower.extend(
                Some(unbackslash(v))
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from),
            );
        } else if let Some(v) = opt.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(unbackslash(v)));
        }
    }
    Some(OverlayRoot { lower, upper })
}

/// How deep a process' pid namespace is, from its `/proc/PID/status`: `NSpid` lists its pid
/// in each namespace from the initial one down (one entry: the initial namespace, level 0).
pub(super) fn pid_ns_level(status: &str) -> Option<u32> {
    let pids = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let n = pids.split_whitespace().count();
    u32::try_from(n.checked_sub(1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_namespace_level_is_the_number_of_nspid_entries_less_one() {
        assert_eq!(pid_ns_level("Name:\tsh\nNSpid:\t4242\n"), Some(0));
        assert_eq!(
            pid_ns_level("NSpid:\t4242\t17\t1\nNStgid:\t4242\n"),
            Some(2)
        );
        assert_eq!(pid_ns_level("Name:\tsh\n"), None);
        assert_eq!(pid_ns_level("NSpid:\n"), None);
    }

    #[test]
    fn cgroup2_path_is_the_0_line() {
        let text = "10:hugetlb:/x\n1:cpu:/x\n0::/berth/c1\n";
        assert_eq!(parse_cgroup2_path(text).as_deref(), Some("/berth/c1"));
        assert_eq!(parse_cgroup2_path("1:cpu:/x\n"), None);
    }

    #[test]
    fn cgroup2_mount_prefers_the_unified_locations() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                      27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup2_mount("27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw\n"),
            None
        );
        // a bind mount of a subtree of the hierarchy (a container's view) is not its root;
        // a mount point with a space is read unescaped
        let other = "40 31 0:27 /ctr /tmp/sub rw - cgroup2 cgroup2 rw\n\
                     41 31 0:27 / /tmp/with\\040space rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(other), Some(PathBuf::from("/tmp/with space")));
    }

    #[test]
    fn root_overlay_splits_escaped_lowerdirs() {
        // as the kernel shows a mount of lowerdir=/l/a\:b\,c d:/l/e (a directory "a:b,c d")
        let m = "100 90 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l/a\\134:b\\134\\054c\\040d:/l/e,upperdir=/u\\040x,workdir=/w,uuid=on\n\
                 101 100 0:5 / /proc rw - proc proc rw\n";
        let o = root_overlay(m).unwrap();
        assert_eq!(
            o.lower,
            vec![PathBuf::from("/l/a:b,c d"), PathBuf::from("/l/e")]
        );
        assert_eq!(o.upper, Some(PathBuf::from("/u x")));
        let plus = "1 0 0:1 / / ro - overlay overlay ro,lowerdir+=/l1,lowerdir+=/l\\040two,datadir+=/d,redirect_dir=on\n";
        let o = root_overlay(plus).unwrap();
        assert_eq!(o.lower, vec![PathBuf::from("/l1"), PathBuf::from("/l two")]);
        assert_eq!(o.upper, None);
        assert_eq!(
            root_overlay("100 90 8:1 / / rw - ext4 /dev/sda1 rw\n"),
            None
        );
        // not a byte: kept as written (found by the watch_procfs fuzz target)
        let big = "1 0 0:1 / / rw - overlay overlay rw,lowerdir=/l\\777,upperdir=/u\n";
        assert_eq!(
            root_overlay(big).unwrap().lower,
            vec![PathBuf::from("/l777")]
        );
    }
}
