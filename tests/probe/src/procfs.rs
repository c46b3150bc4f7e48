//! Parsers for the /proc files the probe reads. Pure functions over text, so they are
//! unit-tested on samples; malformed lines are skipped, never a panic.

use serde_json::{Value, json};

/// The value of `Key:` in a /proc/<pid>/status text, trimmed.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then_some(v.trim())
    })
}

/// The whitespace-separated numbers of a status field (`Uid:`, `Groups:`).
pub fn status_numbers(status: &str, key: &str) -> Option<Vec<u64>> {
    let v = status_field(status, key)?;
    v.split_whitespace().map(|n| n.parse().ok()).collect()
}

/// A hexadecimal status field (`CapEff:`) as a number.
pub fn status_hex(status: &str, key: &str) -> Option<u64> {
    u64::from_str_radix(status_field(status, key)?, 16).ok()
}

/// `uid_map`/`gid_map` lines as `[inside, outside, count]` triples.
pub fn id_map(text: &str) -> Vec<[u64; 3]> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace().map(|n| n.parse::<u64>().ok());
            let t = [it.next()??, it.next()??, it.next()??];
            it.next().is_none().then_some(t)
        })
        .collect()
}

/// Undo the octal escapes (`\040` for a space) the kernel puts in mountinfo fields.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (u32::from(b[i + 1] - b'0') << 6)
                | (u32::from(b[i + 2] - b'0') << 3)
                | u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of /proc/self/mountinfo as a JSON object; `None` for a malformed line.
///
/// Format (proc(5)): `id parent major:minor root mount_point options [optional…] - fstype
/// source super_options`.
pub fn mountinfo_line(line: &str) -> Option<Value> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    if sep < 6 || fields.len() < sep + 3 {
        return None;
    }
    let id: u64 = fields[0].parse().ok()?;
    let parent: u64 = fields[1].parse().ok()?;
    Some(json!({
        "id": id,
        "parent": parent,
        "major_minor": fields[2],
        "root": unescape_octal(fields[3]),
        "mount_point": unescape_octal(fields[4]),
        "options": fields[5].split(',').collect::<Vec<_>>(),
        "optional": &fields[6..sep],
        "fs_type": fields[sep + 1],
        "source": unescape_octal(fields[sep + 2]),
        "super_options": fields.get(sep + 3).map_or(Vec::new(), |s| s.split(',').collect()),
    }))
}

/// /proc/self/mountinfo as a JSON array (malformed lines skipped).
pub fn mountinfo(text: &str) -> Value {
    Value::Array(text.lines().filter_map(mountinfo_line).collect())
}

/// /proc/self/cgroup as `[{"id", "controllers", "path"}]`.
pub fn cgroup(text: &str) -> Value {
    Value::Array(
        text.lines()
            .filter_map(|line| {
                let (id, rest) = line.split_once(':')?;
                let (controllers, path) = rest.split_once(':')?;
                let id: u64 = id.parse().ok()?;
                let controllers: Vec<&str> = if controllers.is_empty() {
                    Vec::new()
                } else {
                    controllers.split(',').collect()
                };
                Some(json!({"id": id, "controllers": controllers, "path": path}))
            })
            .collect(),
    )
}

/// The numeric entries of a /proc listing, sorted.
/// The interface names of /proc/net/dev (two header lines, then `name: counters…`).
pub fn net_devs(text: &str) -> Value {
    let mut names: Vec<&str> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    names.sort_unstable();
    Value::from(names)
}

pub fn pids<I: IntoIterator<Item = String>>(names: I) -> Vec<u64> {
    let mut v: Vec<u64> = names
        .into_iter()
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|n| n.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tprobe\nUmask:\t0022\nState:\tR (running)\nUid:\t0\t0\t0\t0\nGid:\t5\t5\t5\t5\nGroups:\t1 2 3 \nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\n";

    #[test]
    fn net_devs_lists_interface_names_sorted() {
        let text = "Inter-|   Receive\n face |bytes\n    lo: 0 0 0\nberth0: 1 2 3\n";
        assert_eq!(net_devs(text), serde_json::json!(["berth0", "lo"]));
    }

    #[test]
    fn status_fields_are_found_by_exact_key() {
        assert_eq!(status_field(STATUS, "Seccomp"), Some("2"));
        assert_eq!(status_field(STATUS, "Seccomp_filters"), Some("1"));
        assert_eq!(status_field(STATUS, "Umask"), Some("0022"));
        assert_eq!(status_field(STATUS, "Missing"), None);
        assert_eq!(status_numbers(STATUS, "Uid"), Some(vec![0, 0, 0, 0]));
        assert_eq!(status_numbers(STATUS, "Groups"), Some(vec![1, 2, 3]));
        assert_eq!(status_hex(STATUS, "CapEff"), Some(0xa804_25fb));
        assert_eq!(status_hex(STATUS, "Name"), None);
        assert_eq!(status_numbers(STATUS, "Name"), None);
    }

    #[test]
    fn id_maps_parse_triples_and_skip_junk() {
        let m = id_map("         0     100000      65536\n1 2\nx y z\n  5 6 7 8\n");
        assert_eq!(m, vec![[0, 100_000, 65_536]]);
        assert!(id_map("").is_empty());
    }

    #[test]
    fn mountinfo_lines_parse_with_optional_fields_and_escapes() {
        let line = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue";
        let v = mountinfo_line(line).unwrap();
        assert_eq!(v["id"], 36);
        assert_eq!(v["parent"], 35);
        assert_eq!(v["root"], "/mnt1");
        assert_eq!(v["mount_point"], "/mnt two");
        assert_eq!(v["options"], json!(["rw", "noatime"]));
        assert_eq!(v["optional"], json!(["master:1", "shared:2"]));
        assert_eq!(v["fs_type"], "ext3");
        assert_eq!(v["source"], "/dev/root");
        assert_eq!(v["super_options"], json!(["rw", "errors=continue"]));
        let plain = mountinfo_line("1 0 0:5 / / ro - tmpfs tmpfs rw").unwrap();
        assert_eq!(plain["optional"], json!([]));
        assert!(mountinfo_line("garbage").is_none());
        assert!(mountinfo_line("1 2 - x").is_none());
        assert!(mountinfo_line("a 2 0:1 / / rw - t s o").is_none());
        assert_eq!(
            mountinfo("garbage\n1 0 0:5 / / ro - tmpfs tmpfs rw\n")
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn octal_escapes_decode_and_broken_ones_stay_literal() {
        assert_eq!(unescape_octal("a\\040b\\011c\\134"), "a b\tc\\");
        assert_eq!(unescape_octal("\\04"), "\\04");
        assert_eq!(unescape_octal("\\999"), "\\999");
        assert_eq!(unescape_octal("\\777"), "\\777");
    }

    #[test]
    fn cgroup_lines_parse_v1_and_v2() {
        let v = cgroup("12:cpu,cpuacct:/berth-x\n0::/\nbad\n");
        assert_eq!(
            v,
            json!([
                {"id": 12, "controllers": ["cpu", "cpuacct"], "path": "/berth-x"},
                {"id": 0, "controllers": [], "path": "/"},
            ])
        );
    }

    #[test]
    fn pid_listing_keeps_numbers_only() {
        let names = ["1", "self", "42", "", "sys", "7"].map(String::from);
        assert_eq!(pids(names), vec![1, 7, 42]);
    }
}
