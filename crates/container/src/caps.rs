//! Capabilities: the five sets of `process.capabilities`, applied in runc's order around
//! the uid switch (bounding drop → keepcaps → setuid → capset → ambient raise).

use berth_runtime_spec::{Capabilities, Capability, LinuxCapabilities};
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::ipc::{Context, Failure};
use crate::sys;

/// Names of capabilities by number (`CAP_` + name).
pub const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The number of a capability.
pub(crate) fn number(cap: Capability) -> u32 {
    // displayed as the spec spells it, `CAP_*`; the table has the bare names
    let name = cap.to_string();
    let name = name.strip_prefix("CAP_").unwrap_or(&name);
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|p| p as u32)
        .unwrap_or(u32::MAX)
}

/// Parse `CAP_NET_ADMIN` / `NET_ADMIN` (any case).
pub fn parse(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The bit set of a set of capabilities.
pub(crate) fn set_of(caps: Option<&Capabilities>) -> CapabilitySet {
    let mut bits = 0u64;
    for c in caps.into_iter().flatten() {
        let n = number(*c);
        if n < 64 {
            bits |= 1 << n;
        }
    }
    CapabilitySet::from_bits_retain(bits)
}

/// Highest capability number the kernel knows (probing the bounding set).
fn last_cap() -> u32 {
    let mut n = 0;
    while n < 63 && sys::capbset_read(n + 1).is_some() {
        n += 1;
    }
    n
}

/// Drop from the bounding set everything the config's bounding set lacks.
pub(crate) fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), Failure> {
    let keep = set_of(caps.bounding.as_ref()).bits();
    for n in 0..=last_cap() {
        if keep & (1 << n) == 0 && sys::capbset_read(n) == Some(true) {
            sys::capbset_drop(n)
                .ctx(|| format!("failed to drop capability {n} from the bounding set"))?;
        }
    }
    Ok(())
}

/// Ambient capabilities that cannot be raised: capabilities(7) keeps a capability out of the
/// ambient set unless it is both permitted and inheritable. runc warns about these and goes
/// on (up to 1.1 its capability package dropped the error, and runc 1.1's `spec` lists its
/// default capabilities as ambient without making them inheritable), so berth skips them too
/// and [`crate::Container::create`] and [`crate::Container::exec`] report them as warnings.
/// In capability-number order.
pub(crate) fn unraisable_ambient(caps: &LinuxCapabilities) -> Vec<Capability> {
    let allowed = set_of(caps.permitted.as_ref()) & set_of(caps.inheritable.as_ref());
    let mut out: Vec<Capability> = caps
        .ambient
        .iter()
        .flatten()
        .copied()
        .filter(|c| !allowed.contains(set_of(Some(&[*c].into_iter().collect()))))
        .collect();
    out.sort_by_key(|c| number(*c));
    out
}

/// The warnings for [`unraisable_ambient`], one line each.
pub(crate) fn ambient_warnings(caps: Option<&LinuxCapabilities>) -> Vec<String> {
    caps.map(unraisable_ambient)
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            format!(
                "ambient capability {c} is not both permitted and inheritable: not raised (the kernel refuses it; runc skips it too)"
            )
        })
        .collect()
}

/// Set effective/permitted/inheritable, then raise the ambient set (but for the
/// [`unraisable_ambient`] ones and those the running kernel does not know, which runc
/// skips as well).
pub(crate) fn apply(caps: &LinuxCapabilities) -> Result<(), Failure> {
    let sets = CapabilitySets {
        effective: set_of(caps.effective.as_ref()),
        permitted: set_of(caps.permitted.as_ref()),
        inheritable: set_of(caps.inheritable.as_ref()),
    };
    rustix::thread::set_capabilities(None, sets).ctx(|| "failed to set capabilities".to_owned())?;
    let skip = unraisable_ambient(caps);
    let last = last_cap();
    for c in caps.ambient.iter().flatten() {
        let n = number(*c);
        if skip.contains(c) || n > last {
            continue;
        }
        sys::ambient_raise(n).ctx(|| format!("failed to raise ambient capability {c}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel_headers() {
        assert_eq!(number(Capability::Chown), 0);
        assert_eq!(number(Capability::SysAdmin), 21);
        assert_eq!(number(Capability::NetBindService), 10);
        assert_eq!(number(Capability::CheckpointRestore), 40);
        assert_eq!(parse("CAP_KILL"), Some(Capability::Kill));
        assert_eq!(parse("cap_kill"), Some(Capability::Kill));
        assert_eq!(parse("CAP_NOPE"), None);
        let set = set_of(Some(
            &[Capability::Kill, Capability::Bpf].into_iter().collect(),
        ));
        assert_eq!(set, CapabilitySet::KILL | CapabilitySet::BPF);
    }

    #[test]
    fn ambient_caps_need_permitted_and_inheritable() {
        let set = |c: &[Capability]| Some(c.iter().copied().collect());
        // runc 1.1's `spec`: the defaults as ambient, nothing inheritable.
        let runc11 = LinuxCapabilities {
            bounding: set(&[Capability::Kill, Capability::AuditWrite]),
            effective: set(&[Capability::Kill, Capability::AuditWrite]),
            permitted: set(&[Capability::Kill, Capability::AuditWrite]),
            inheritable: None,
            ambient: set(&[Capability::NetBindService, Capability::Kill]),
        };
        assert_eq!(
            unraisable_ambient(&runc11),
            [Capability::Kill, Capability::NetBindService]
        );
        let warnings = ambient_warnings(Some(&runc11));
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0]
                .starts_with("ambient capability CAP_KILL is not both permitted and inheritable"),
            "{warnings:?}"
        );
        // permitted and inheritable: raisable, no warning.
        let ok = LinuxCapabilities {
            inheritable: set(&[Capability::Kill, Capability::AuditWrite]),
            ambient: set(&[Capability::Kill]),
            ..runc11.clone()
        };
        assert!(unraisable_ambient(&ok).is_empty());
        assert!(ambient_warnings(Some(&ok)).is_empty());
        assert!(ambient_warnings(None).is_empty());
        // inheritable but not permitted: refused by the kernel as well.
        let not_permitted = LinuxCapabilities {
            permitted: set(&[Capability::AuditWrite]),
            ..ok
        };
        assert_eq!(unraisable_ambient(&not_permitted), [Capability::Kill]);
    }
}
