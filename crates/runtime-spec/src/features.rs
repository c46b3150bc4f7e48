//! What a runtime says it supports (runtime-spec features.md, features-linux.md): the
//! document `runc features` and `berth-runtime features` print, for an engine to read
//! before it writes a config.
//!
//! Every field is optional, as the spec has it: absent means unknown, not unsupported.
//! Names (namespaces, capabilities, seccomp actions, …) are kept as strings, so a runtime
//! newer than berth still parses; unknown fields are ignored.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The features document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// The oldest runtime-spec version the runtime accepts.
    pub oci_version_min: String,
    /// The newest runtime-spec version the runtime accepts.
    pub oci_version_max: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_options: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<LinuxFeatures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    /// Config annotations whose values may make a config unsafe (runtime-spec 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub potentially_unsafe_config_annotations: Option<Vec<String>>,
}

/// `linux`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxFeatures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupFeatures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompFeatures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor: Option<Enabled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<Enabled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<Enabled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_extensions: Option<MountExtensionsFeatures>,
    /// `netDevices` (runtime-spec 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_devices: Option<Enabled>,
}

/// `linux.cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupFeatures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<bool>,
}

/// `linux.seccomp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompFeatures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operators: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_flags: Option<Vec<String>>,
    /// The known flags the running kernel accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_flags: Option<Vec<String>>,
}

/// A feature that is only on or off (`apparmor`, `selinux`, `intelRdt`, `idmap`, …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `linux.mountExtensions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountExtensionsFeatures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idmap: Option<Enabled>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `runc features` (runc 1.1.5, Debian 12: `tests/fixtures/runtime-spec/make.sh`) parses
    /// and writes back the same document.
    #[test]
    fn runcs_features_round_trip() {
        let text = include_str!("../../../tests/fixtures/runtime-spec/runc-features.json");
        let f: Features = serde_json::from_str(text).unwrap();
        assert_eq!(f.oci_version_max, "1.0.2-dev");
        let linux = f.linux.as_ref().unwrap();
        assert!(
            linux
                .namespaces
                .as_ref()
                .unwrap()
                .contains(&"user".to_owned())
        );
        assert_eq!(linux.cgroup.as_ref().unwrap().systemd_user, Some(true));
        assert_eq!(linux.seccomp.as_ref().unwrap().enabled, Some(true));
        // absent is unknown, not false
        assert_eq!(linux.intel_rdt, None);
        assert_eq!(linux.cgroup.as_ref().unwrap().rdma, None);
        let back = serde_json::to_value(&f).unwrap();
        let want: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, want);
    }
}
