//! Whether this process runs in a user namespace other than the initial one: what decides,
//! below the runtime and the snapshotter, which privileged operations can work (root in a
//! user namespace cannot set `trusted.*` xattrs, create device nodes or manage cgroups it
//! was not given).

/// The uid_map of the initial user namespace.
const INITIAL_UID_MAP: [u64; 3] = [0, 0, 4_294_967_295];

/// Whether `uid_map` (the text of `/proc/self/uid_map`) is the initial user namespace's
/// (`0 0 4294967295`), as moby/sys `userns.RunningInUserNS` reads it.
pub fn is_initial_user_namespace(uid_map: &str) -> bool {
    let lines: Vec<&str> = uid_map.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        return false;
    }
    let nums: Vec<u64> = lines[0]
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    nums == INITIAL_UID_MAP
}

/// Whether this process runs in a user namespace other than the initial one.
pub fn running_in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_initial_user_namespace(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_user_namespace_is_recognised() {
        assert!(is_initial_user_namespace(
            "         0          0 4294967295\n"
        ));
        assert!(!is_initial_user_namespace(
            "         0       1001          1\n"
        ));
        assert!(!is_initial_user_namespace("0 1001 1\n1 200000 65536\n"));
        assert!(!is_initial_user_namespace("0 0 65536\n"));
        // an empty map (a new namespace not yet mapped) is not the initial one
        assert!(!is_initial_user_namespace(""));
    }
}
