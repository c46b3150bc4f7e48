//! What the probes need from the host, read from `/proc` text: the process' effective
//! capabilities (`/proc/self/status`; the cgroup2 root comes from
//! [`crate::containers::cgroup2_mount`]). Pure functions over the text, so they are tested
//! without root.

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set (`CapEff:` in `/proc/PID/status`).
pub(crate) fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The capabilities missing to load tracing and cgroup programs: `None` with
/// CAP_SYS_ADMIN (which covers all of them), or with CAP_BPF + CAP_PERFMON (tracing) +
/// CAP_NET_ADMIN (cgroup socket programs); else their names.
pub(crate) fn missing_caps(cap_eff: u64) -> Option<String> {
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return None;
    }
    let missing: Vec<&str> = [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|&(cap, _)| !has(cap))
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        None
    } else {
        Some(missing.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_need_sys_admin_or_bpf_perfmon_net_admin() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
        assert_eq!(missing_caps(0x1ff_ffff_ffff), None);
        assert_eq!(missing_caps(1 << CAP_SYS_ADMIN), None);
        assert_eq!(
            missing_caps(1 << CAP_BPF),
            Some("CAP_PERFMON, CAP_NET_ADMIN".to_owned())
        );
        assert_eq!(
            missing_caps((1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_NET_ADMIN)),
            None
        );
        assert_eq!(effective_caps("Name:\tx\n"), None);
    }
}
