//! What `berth watch` reads from procfs about another process (`berth_watch::containers`):
//! a container's `/proc/PID/mountinfo` (its root overlay: escaped lower and upper
//! directories) and `/proc/PID/cgroup`, and the host's mountinfo (the cgroup2 mount). A
//! container's root can hold paths of any bytes, so: never panics; the cgroup2 path found
//! is absolute; no lower directory found is empty.
#![no_main]

use berth_watch::containers::{cgroup2_mount, parse_cgroup2_path, root_overlay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(o) = root_overlay(&text) {
        assert!(o.lower.iter().all(|l| !l.as_os_str().is_empty()), "{o:?}");
    }
    let _ = cgroup2_mount(&text);
    if let Some(p) = parse_cgroup2_path(&text) {
        assert!(p.starts_with('/'), "{p:?}");
    }
});
