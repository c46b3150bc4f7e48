//! `-u user[:group]` and the image's `User`: resolved through the image's own `/etc/passwd`
//! and `/etc/group`, read inside the root filesystem (never the host's), with runc's
//! (`libcontainer/user.GetExecUser`) and so docker's rules.

use std::io::Read;
use std::path::Path;

use super::SpecError;

/// The process identity a user spec resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups of `/etc/group` listing the user, when no group was
    /// given explicitly (runc's rule).
    pub additional_gids: Vec<u32>,
    /// The passwd entry's name, when one matched.
    pub name: Option<String>,
    pub home: Option<String>,
}

/// The largest passwd or group file read (a hostile image cannot make us read gigabytes).
const MAX_DB: u64 = 16 << 20;

/// `etc/passwd` or `etc/group` of `root`, resolved inside it; a missing file reads empty.
fn read_db(root: &Path, rel: &str) -> Result<String, SpecError> {
    let err = |source: std::io::Error| SpecError::UserDb {
        file: rel.to_owned(),
        root: root.to_owned(),
        source,
    };
    let file = match berth_fsutil::open_in_root(root, rel) {
        Ok(f) => f,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(String::new()),
        Err(e) => return Err(err(std::io::Error::other(e))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_DB).read_to_end(&mut bytes).map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Resolve `spec` (`user`, `uid`, `user:group`, `uid:gid`; empty is root) inside `root`.
/// `image` names the image in errors.
pub fn resolve_user(root: &Path, spec: &str, image: &str) -> Result<ResolvedUser, SpecError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // docker: no user is root, and root's supplementary groups apply
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let numeric_uid = user_arg.parse::<u32>().ok();
    let passwd = read_db(root, "etc/passwd")?;
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        let (uid, gid) = (f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?);
        let matches = match numeric_uid {
            Some(n) => uid == n,
            None => f[0] == user_arg,
        };
        matches.then(|| (f[0].to_owned(), uid, gid, f[5].to_owned()))
    });
    let mut user = match (entry, numeric_uid) {
        (Some((name, uid, gid, home)), _) => ResolvedUser {
            uid,
            gid,
            additional_gids: Vec::new(),
            name: Some(name),
            home: Some(home),
        },
        (None, Some(uid)) => ResolvedUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
            name: None,
            home: None,
        },
        (None, None) => {
            return Err(SpecError::NoSuchUser {
                user: user_arg.to_owned(),
                image: image.to_owned(),
            });
        }
    };
    if group_arg.is_none() && user.name.is_none() {
        return Ok(user);
    }
    let groups = read_db(root, "etc/group")?;
    let parsed = groups.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some((f[0], f[2].parse::<u32>().ok()?, f[3]))
    });
    match group_arg {
        Some(g) => {
            user.gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => parsed
                    .clone()
                    .find(|(name, _, _)| *name == g)
                    .map(|(_, gid, _)| gid)
                    .ok_or_else(|| SpecError::NoSuchGroup {
                        group: g.to_owned(),
                        image: image.to_owned(),
                    })?,
            };
        }
        None => {
            let name = user.name.clone().unwrap_or_default();
            for (_, gid, members) in parsed {
                if members.split(',').any(|m| m.trim() == name)
                    && !user.additional_gids.contains(&gid)
                {
                    user.additional_gids.push(gid);
                }
            }
        }
    }
    Ok(user)
}
