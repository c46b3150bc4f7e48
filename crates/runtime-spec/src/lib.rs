//! The OCI runtime-spec vocabulary for berth: the configuration types (`config.json`,
//! runtime-spec v1.2 with the v1.3 additions berth reads) and the RFC 3339 timestamps of
//! runtime state ([`timefmt`]).
//!
//! **Owns** the serde types a runtime reads and an image tool writes; **does not own** what
//! a config means (validation against the host, seccomp compilation: `berth-container`) nor
//! anything of images or registries (`berth-oci`). Its only dependencies are serde and
//! serde_json, so that `berth-runtime`, which depends on it, compiles no builder, getter,
//! regex or hashing code.
//!
//! Shape: plain `pub` fields and `Default`, one struct per spec object, JSON names
//! exactly as the spec spells them (camelCase, `blockIO`, `hostID`, …). Optional fields are
//! `Option` and are not written when `None`; unknown fields are ignored (runtime-spec
//! config.md "Extensibility": runtimes "MUST otherwise ignore them"). Enums carry the spec's
//! spelling (`CAP_*`, `SCMP_*`, `RLIMIT_*`, namespace and device types). Numbers have the
//! spec's width and sign: memory limits are `i64` (-1 is unlimited), `pids.limit` is
//! `i64`, cpu `shares`/`period` are `u64` and `quota` is `i64`.
//!
//! What serde cannot check is checked where the value is read: `execCPUAffinity` lists are
//! validated while parsing ([`ExecCpuAffinity`]); everything else about a config's meaning
//! is the runtime's to validate (`berth_container::spec`).
//!
//! The other platforms' sections (`solaris`, `windows`, `vm`, `zos`, `freebsd`) are kept as
//! raw JSON: berth runs Linux containers and only carries them through.

/// `Serialize` and `Display` for a fieldless enum spelled as fixed strings (one table gives
/// each variant its spec spelling), and `Deserialize` of exactly those spellings unless
/// the enum is marked `lenient` (it then writes its own).
macro_rules! spelled_enum {
    (lenient $(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Every spelling, in the spec's order.
            pub const NAMES: &'static [&'static str] = &[$($text,)+];

            /// The spec's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant spelled `s`, exactly.
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

    };
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($body:tt)+ }) => {
        spelled_enum!(lenient $(#[$meta])* $vis enum $name { $($body)+ });

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                $name::from_name(&s)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&s, $name::NAMES))
            }
        }
    };
}

mod linux;
mod process;
#[cfg(test)]
mod tests;
pub mod timefmt;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use linux::*;
pub use process::*;

/// A container's configuration: the whole `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// `ociVersion`.
    #[serde(default, rename = "ociVersion")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
    /// Carried through, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solaris: Option<serde_json::Value>,
    /// Carried through, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<serde_json::Value>,
    /// Carried through, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<serde_json::Value>,
    /// Carried through, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zos: Option<serde_json::Value>,
    /// Carried through, not interpreted (runtime-spec 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freebsd: Option<serde_json::Value>,
}

/// `root`: the container's root filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Absolute, or relative to the bundle. REQUIRED by the spec, but an absent one reads as
    /// empty (the bundle directory itself), as runc's and oci-spec's parsers read it.
    #[serde(default)]
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
}

/// One entry of `mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub destination: PathBuf,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// Id-mapped mount (runtime-spec 1.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_mappings: Option<Vec<LinuxIdMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_mappings: Option<Vec<LinuxIdMapping>>,
}

/// `hooks`: what runs at each point of the lifecycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Deprecated by the spec in favour of `createRuntime`; still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prestart: Option<Vec<Hook>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_runtime: Option<Vec<Hook>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_container: Option<Vec<Hook>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_container: Option<Vec<Hook>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poststart: Option<Vec<Hook>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poststop: Option<Vec<Hook>>,
}

/// One hook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Seconds; the spec requires it to be greater than zero when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}
