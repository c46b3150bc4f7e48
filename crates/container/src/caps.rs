//! Capabilities: the five sets of `process.capabilities`, applied in runc's order around
//! the uid switch (bounding drop → keepcaps → setuid → capset → ambient raise).

use berth_oci::runtime::{Capabilities, Capability, LinuxCapabilities};
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
pub fn number(cap: Capability) -> u32 {
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
pub fn set_of(caps: Option<&Capabilities>) -> CapabilitySet {
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
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), Failure> {
    let keep = set_of(caps.bounding.as_ref()).bits();
    for n in 0..=last_cap() {
        if keep & (1 << n) == 0 && sys::capbset_read(n) == Some(true) {
            sys::capbset_drop(n)
                .ctx(|| format!("failed to drop capability {n} from the bounding set"))?;
        }
    }
    Ok(())
}

/// Set effective/permitted/inheritable, then raise the ambient set.
pub fn apply(caps: &LinuxCapabilities) -> Result<(), Failure> {
    let sets = CapabilitySets {
        effective: set_of(caps.effective.as_ref()),
        permitted: set_of(caps.permitted.as_ref()),
        inheritable: set_of(caps.inheritable.as_ref()),
    };
    rustix::thread::set_capabilities(None, sets).ctx(|| "failed to set capabilities".to_owned())?;
    for c in caps.ambient.iter().flatten() {
        let n = number(*c);
        // raising an ambient cap needs it in permitted and inheritable; runc ignores failures
        // for caps the kernel does not know, we report the rest
        sys::ambient_raise(n).ctx(|| format!("failed to raise ambient capability CAP_{c}"))?;
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
}
