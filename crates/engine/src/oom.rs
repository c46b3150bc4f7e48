//! Whether the OOM killer killed a process of a container: the `oom_kill` counter of its
//! memory cgroup (cgroup v2 `memory.events`, v1 `memory.oom_control`), read at the path its
//! bundle's `linux.cgroupsPath` names, in every place a runtime may have put it.

use std::path::Path;

/// `oom_kill` above 0 in the container's memory cgroup (`false` when unknown).
pub fn killed(bundle: &Path) -> bool {
    let Some(path) = cgroups_path(bundle) else {
        return false;
    };
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return false;
    }
    let candidates = [
        (
            Path::new("/sys/fs/cgroup/memory").join(rel),
            "memory.oom_control",
        ),
        (
            Path::new("/sys/fs/cgroup/unified").join(rel),
            "memory.events",
        ),
        (Path::new("/sys/fs/cgroup").join(rel), "memory.events"),
    ];
    candidates.iter().any(|(dir, file)| {
        std::fs::read_to_string(dir.join(file)).is_ok_and(|text| oom_kills(&text) > 0)
    })
}

fn cgroups_path(bundle: &Path) -> Option<String> {
    let bytes = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("linux")?
        .get("cgroupsPath")?
        .as_str()
        .map(str::to_owned)
}

/// The `oom_kill N` line of `memory.events` or `memory.oom_control`.
fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::oom_kills;

    #[test]
    fn reads_the_oom_kill_counter_of_v1_and_v2() {
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            oom_kills("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n"),
            1
        );
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\n"), 0);
    }
}
