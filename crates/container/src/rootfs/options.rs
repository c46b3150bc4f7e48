//! Mount options of `mounts[].options` → mount(2) flags, propagation flags and data, as
//! runc's `parseMountOptions`.

/// Parsed options of one mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MountOptions {
    /// MS_* flags to set.
    pub flags: u64,
    /// MS_* flags explicitly cleared ("rw", "suid", ...).
    pub cleared: u64,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<u64>,
    /// Filesystem-specific data ("mode=755,size=65536k").
    pub data: String,
}

const MS_RDONLY: u64 = libc::MS_RDONLY;
const MS_NOSUID: u64 = libc::MS_NOSUID;
const MS_NODEV: u64 = libc::MS_NODEV;
const MS_NOEXEC: u64 = libc::MS_NOEXEC;
const MS_SYNCHRONOUS: u64 = libc::MS_SYNCHRONOUS;
const MS_REMOUNT: u64 = libc::MS_REMOUNT;
const MS_MANDLOCK: u64 = libc::MS_MANDLOCK;
const MS_DIRSYNC: u64 = libc::MS_DIRSYNC;
const MS_NOATIME: u64 = libc::MS_NOATIME;
const MS_NODIRATIME: u64 = libc::MS_NODIRATIME;
const MS_BIND: u64 = libc::MS_BIND;
const MS_REC: u64 = libc::MS_REC;
const MS_SILENT: u64 = libc::MS_SILENT;
const MS_RELATIME: u64 = libc::MS_RELATIME;
const MS_STRICTATIME: u64 = libc::MS_STRICTATIME;
const MS_LAZYTIME: u64 = libc::MS_LAZYTIME;
const MS_I_VERSION: u64 = libc::MS_I_VERSION;

/// Propagation option → flags.
pub(crate) fn propagation_flags(opt: &str) -> Option<u64> {
    Some(match opt {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | MS_REC,
        _ => return None,
    })
}

/// Parse options; `Err(option)` for an option this runtime refuses (idmapped and
/// recursive-attribute mounts are not supported yet).
pub(crate) fn parse(options: &[String]) -> Result<MountOptions, String> {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (u64, u64) = match opt.as_str() {
            "defaults" => (0, 0),
            "async" => (0, MS_SYNCHRONOUS),
            "atime" => (0, MS_NOATIME),
            "bind" => (MS_BIND, 0),
            "dev" => (0, MS_NODEV),
            "diratime" => (0, MS_NODIRATIME),
            "dirsync" => (MS_DIRSYNC, 0),
            "exec" => (0, MS_NOEXEC),
            "iversion" => (MS_I_VERSION, 0),
            "noiversion" => (0, MS_I_VERSION),
            "lazytime" => (MS_LAZYTIME, 0),
            "nolazytime" => (0, MS_LAZYTIME),
            "loud" => (0, MS_SILENT),
            "mand" => (MS_MANDLOCK, 0),
            "nomand" => (0, MS_MANDLOCK),
            "noatime" => (MS_NOATIME, 0),
            "nodev" => (MS_NODEV, 0),
            "nodiratime" => (MS_NODIRATIME, 0),
            "noexec" => (MS_NOEXEC, 0),
            "norelatime" => (0, MS_RELATIME),
            "nostrictatime" => (0, MS_STRICTATIME),
            "nosuid" => (MS_NOSUID, 0),
            "rbind" => (MS_BIND | MS_REC, 0),
            "relatime" => (MS_RELATIME, 0),
            "remount" => (MS_REMOUNT, 0),
            "ro" => (MS_RDONLY, 0),
            "rw" => (0, MS_RDONLY),
            "silent" => (MS_SILENT, 0),
            "strictatime" => (MS_STRICTATIME, 0),
            "suid" => (0, MS_NOSUID),
            "sync" => (MS_SYNCHRONOUS, 0),
            // runc extension (copy the image's content up into a tmpfs): not supported, ignored
            "tmpcopyup" => (0, 0),
            "idmap" | "ridmap" => return Err(opt.clone()),
            other if other.starts_with('r') && recursive_attr(other) => return Err(opt.clone()),
            other => {
                if let Some(p) = propagation_flags(other) {
                    o.propagation.push(p);
                } else {
                    data.push(other.to_owned());
                }
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared = (o.cleared | clear) & !set;
    }
    o.data = data.join(",");
    Ok(o)
}

/// "rro", "rnosuid", ... (mount_setattr recursive attributes).
fn recursive_attr(opt: &str) -> bool {
    matches!(
        opt,
        "rro"
            | "rrw"
            | "rnosuid"
            | "rsuid"
            | "rnodev"
            | "rdev"
            | "rnoexec"
            | "rexec"
            | "rnodiratime"
            | "rdiratime"
            | "rrelatime"
            | "rnorelatime"
            | "rnoatime"
            | "ratime"
            | "rstrictatime"
            | "rnostrictatime"
            | "rnosymfollow"
            | "rsymfollow"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MS_NOSUID | MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = p(&["rbind", "ro", "rslave"]);
        assert_eq!(o.flags, MS_BIND | MS_REC | MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | MS_REC]);
        let o = p(&["ro", "rw"]);
        assert_eq!(o.flags, 0);
        assert!(parse(&["idmap".to_owned()]).is_err());
        assert!(parse(&["rro".to_owned()]).is_err());
    }
}
