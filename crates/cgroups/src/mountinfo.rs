//! `/proc/<pid>/mountinfo`, the fields the runtime needs (cgroup discovery, `--no-pivot`,
//! the host mounts of a container without a mount namespace).

use std::path::PathBuf;

/// One line of `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount id (field 1; unique while mounted, reused after).
    pub id: u64,
    /// Id of the parent mount (field 2).
    pub parent: u64,
    /// The mount's root within its filesystem (field 4), e.g. "/" or "/docker/abc".
    pub root: String,
    /// Where it is mounted (field 5), unescaped.
    pub mount_point: PathBuf,
    /// Filesystem type, e.g. "cgroup", "cgroup2", "proc", "sysfs".
    pub fs_type: String,
    /// Super-block options; for cgroup v1 they name the controllers ("rw,cpu,cpuacct").
    pub super_options: Vec<String>,
}

/// A line that is not mountinfo's format.
#[derive(Debug, thiserror::Error)]
#[error("malformed mountinfo line {line:?}")]
pub struct MalformedLine {
    pub line: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(digits)) = (bytes[i], octal) {
            let value = digits
                .iter()
                .fold(0u16, |acc, d| acc * 8 + u16::from(d - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse the text of `/proc/<pid>/mountinfo`.
pub fn parse(text: &str) -> Result<Vec<MountInfo>, MalformedLine> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let malformed = || MalformedLine {
            line: line.to_owned(),
        };
        let (before, after) = line.split_once(" - ").ok_or_else(malformed)?;
        let fields: Vec<&str> = before.split(' ').collect();
        if fields.len() < 6 {
            return Err(malformed());
        }
        let after: Vec<&str> = after.split(' ').collect();
        if after.len() < 3 {
            return Err(malformed());
        }
        mounts.push(MountInfo {
            id: fields[0].parse().map_err(|_| malformed())?,
            parent: fields[1].parse().map_err(|_| malformed())?,
            root: unescape(fields[3]),
            mount_point: PathBuf::from(unescape(fields[4])),
            fs_type: after[0].to_owned(),
            super_options: after[2].split(',').map(str::to_owned).collect(),
        });
    }
    Ok(mounts)
}
