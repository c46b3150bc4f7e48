//! `exec -u`: user and group names resolved through the container's own `/etc/passwd` and
//! `/etc/group`, read inside its root (no symlink escapes).

use std::io::Read;
use std::path::Path;

use crate::error::{EngineError, Result};

/// `UID[:GID]` or `NAME[:GROUP]` → (uid, gid). A bare uid takes its passwd entry's group
/// when there is one, else 0 (docker's behaviour).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd");
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let (name, uid, gid) = (f.first()?, f.get(2)?, f.get(3)?);
        let (uid, gid): (u32, u32) = (uid.parse().ok()?, gid.parse().ok()?);
        (*name == u || uid.to_string() == u).then_some((uid, gid))
    });
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(n), _) => n,
        (Err(_), Some((uid, _))) => uid,
        (Err(_), None) => {
            return Err(EngineError::Invalid(format!(
                "no user {u:?} in the container's /etc/passwd"
            )));
        }
    };
    let gid = match g {
        None => entry.map_or(0, |(_, gid)| gid),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read_in_root(rootfs, "etc/group")
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (*f.first()? == g).then(|| f.get(2)?.parse().ok())?
                })
                .ok_or_else(|| {
                    EngineError::Invalid(format!("no group {g:?} in the container's /etc/group"))
                })?,
        },
    };
    Ok((uid, gid))
}

fn read_in_root(rootfs: &Path, rel: &str) -> String {
    let mut s = String::new();
    if let Ok(f) = berth_fsutil::open_in_root(rootfs, rel) {
        let _ = f.take(4 << 20).read_to_string(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn names_and_numbers_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        berth_fsutil::atomic_write(
            d.path().join("etc/passwd"),
            b"root:x:0:0::/root:/bin/sh\nnobody:x:65534:65533::/:/bin/false\n",
        )
        .unwrap();
        berth_fsutil::atomic_write(d.path().join("etc/group"), b"wheel:x:10:\n").unwrap();
        let r = |u| resolve_user(d.path(), u);
        assert_eq!(r("nobody").unwrap(), (65534, 65533));
        assert_eq!(r("65534").unwrap(), (65534, 65533));
        assert_eq!(r("1234").unwrap(), (1234, 0));
        assert_eq!(r("nobody:wheel").unwrap(), (65534, 10));
        assert_eq!(r("7:8").unwrap(), (7, 8));
        assert!(r("ghost").is_err());
        assert!(r("root:ghosts").is_err());
    }
}
