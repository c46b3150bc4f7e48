//! `/proc/PID/mountinfo` (proc(5)), read once for the snapshotter's "is this in use?", the
//! watch probes' cgroup2 root and a container's overlay root.
//!
//! The kernel escapes a space, tab, newline and backslash in a field as three octal digits
//! (`\040`, `\011`, `\012`, `\134`); [`unescape`] undoes that. Super options are kept as
//! the kernel wrote them ([`Mount::super_options`]), because a comma inside one of their
//! values is escaped the same way and only the raw text splits on `,` correctly
//! ([`Mount::super_option_list`]).

use std::path::PathBuf;

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The filesystem's device (`major`, `minor`).
    pub dev: (u32, u32),
    /// The root of the mount within its filesystem (a bind mount's source directory).
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// The per-superblock options, still escaped.
    pub super_options: String,
}

impl Mount {
    /// The super options, split on the commas that separate them, each unescaped.
    pub fn super_option_list(&self) -> Vec<String> {
        self.super_options.split(',').map(unescape).collect()
    }
}

/// Undo mountinfo's octal escapes (three digits, at most `\377`; anything else is kept as
/// it is).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of a mountinfo text, in its order (lines that do not parse are skipped).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let mut r = right.split(' ');
            let (maj, min) = l.get(2)?.split_once(':')?;
            Some(Mount {
                dev: (maj.parse().ok()?, min.parse().ok()?),
                root: unescape(l.get(3)?),
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                fstype: r.next()?.to_owned(),
                source: unescape(r.next().unwrap_or_default()),
                super_options: r.next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// The current process's mounts.
pub fn current() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_and_unescaped() {
        let text = "36 35 98:0 /sub /mnt/a\\040b rw,noatime master:1 - overlay my\\040src rw,lowerdir=/s/1,upperdir=/x\\054y\n\
                    garbage line\n\
                    31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, (98, 0));
        assert_eq!(m[0].root, "/sub");
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(
            (m[0].fstype.as_str(), m[0].source.as_str()),
            ("overlay", "my src")
        );
        assert_eq!(
            m[0].super_option_list(),
            ["rw", "lowerdir=/s/1", "upperdir=/x,y"]
        );
        assert_eq!(m[1].fstype, "cgroup2");
    }

    #[test]
    fn escapes_above_a_byte_are_kept_as_text() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("\\777\\400\\04"), "\\777\\400\\04");
        assert_eq!(unescape("\\377").as_bytes(), "\u{fffd}".as_bytes());
    }
}
