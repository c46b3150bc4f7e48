//! Platforms (`os/arch[/variant]`) and choosing the manifest for one from an image index,
//! as containerd's `platforms.Only` matcher does: the OS must match, the architecture is
//! normalised (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`; `arm64` means
//! `arm64/v8` and `amd64` has no variant), and an older CPU variant of the same
//! architecture is accepted when the exact one is missing (`arm/v7` runs `arm/v6`;
//! `amd64/v3` runs `amd64/v2` and `amd64`), the closest variant preferred.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Descriptor;

/// An operating system, CPU architecture and optional variant, as in an index entry's
/// `platform` (image-spec "image-index.md").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// A `--platform` value that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64/v8")]
pub struct PlatformError(pub String);

impl Platform {
    /// This machine: linux and the OCI name of the CPU architecture this was built for.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] if !variant.is_empty() => (*os, *arch, Some(*variant)),
            _ => return Err(PlatformError(s.to_owned())),
        };
        if os.is_empty() || arch.is_empty() {
            return Err(PlatformError(s.to_owned()));
        }
        Ok(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
        })
    }

    /// Whether a manifest for `other` runs here, and how far its variant is from this
    /// one's (0 = the same platform); `None` when it cannot run.
    pub fn distance(&self, other: &Platform) -> Option<u32> {
        if !other.os.eq_ignore_ascii_case(&self.os) {
            return None;
        }
        let (arch, want) = normalize(&self.architecture, self.variant.as_deref());
        let (have_arch, have) = normalize(&other.architecture, other.variant.as_deref());
        if have_arch != arch {
            return None;
        }
        distance(&arch, &want, &have)
    }

    /// Whether a manifest for `other` runs on this platform.
    pub fn matches(&self, other: &Platform) -> bool {
        self.distance(other).is_some()
    }

    /// The descriptor in `index` (an OCI index or Docker manifest list, as bytes) that best
    /// matches this platform, the first of equals; `None` when none does or `index` is not
    /// an index.
    pub fn select(&self, index: &[u8]) -> Option<Descriptor> {
        #[derive(serde::Deserialize)]
        struct Index {
            manifests: Vec<Descriptor>,
        }
        let index: Index = serde_json::from_slice(index).ok()?;
        let mut best: Option<(u32, Descriptor)> = None;
        for d in index.manifests {
            let Some(p) = d.platform().as_ref() else {
                continue;
            };
            let have = Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            };
            let Some(dist) = self.distance(&have) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| dist < *b) {
                best = Some((dist, d));
            }
        }
        best.map(|(_, d)| d)
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        Platform::parse(s)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// `(architecture, variant)` normalised; the variant is `""` for the baseline.
fn normalize(arch: &str, variant: Option<&str>) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.unwrap_or("").to_ascii_lowercase();
    match arch.as_str() {
        "i386" | "386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = if variant == "8" || variant == "v8" {
                String::new()
            } else {
                variant
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".to_owned(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

/// `vN` → N.
fn level(variant: &str) -> Option<u32> {
    variant.strip_prefix('v')?.parse().ok()
}

/// How far a candidate's variant is from the wanted one (0 = exact), or `None` when the
/// candidate cannot run.
fn distance(arch: &str, want: &str, have: &str) -> Option<u32> {
    if want == have {
        return Some(0);
    }
    let (want_level, baseline) = match arch {
        "amd64" => (
            if want.is_empty() {
                Some(1)
            } else {
                level(want)
            },
            1,
        ),
        "arm" => (level(want), 5),
        _ => return None,
    };
    let want_level = want_level?;
    let have_level = if have.is_empty() && arch == "amd64" {
        1
    } else {
        level(have)?
    };
    (have_level >= baseline && have_level <= want_level).then(|| want_level - have_level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index(platforms: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        let manifests: Vec<_> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut p = json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    p["variant"] = json!(v);
                }
                json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": crate::Digest::sha256_of(&[i as u8]).to_string(),
                    "size": i + 1,
                    "platform": p,
                })
            })
            .collect();
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap()
    }

    /// The size (1-based position) of the chosen entry.
    fn pick(idx: &[u8], os: &str, arch: &str, variant: Option<&str>) -> Option<u64> {
        select(idx, os, arch, variant).map(|d| d.size())
    }

    fn select(idx: &[u8], os: &str, arch: &str, variant: Option<&str>) -> Option<Descriptor> {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
        }
        .select(idx)
    }

    #[test]
    fn table() {
        let multi = index(&[
            ("linux", "amd64", None),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("windows", "amd64", None),
            ("unknown", "unknown", None),
            ("linux", "amd64", Some("v3")),
        ]);
        let cases: &[(&str, &str, Option<&str>, Option<u64>)] = &[
            ("linux", "amd64", None, Some(1)),
            ("linux", "x86_64", None, Some(1)),
            ("linux", "amd64", Some("v1"), Some(1)),
            ("linux", "amd64", Some("v3"), Some(7)),
            ("linux", "amd64", Some("v4"), Some(7)),
            ("linux", "amd64", Some("v2"), Some(1)),
            ("windows", "amd64", None, Some(5)),
            ("linux", "arm", Some("v7"), Some(3)),
            ("linux", "armhf", None, Some(3)),
            ("linux", "arm", None, Some(3)),
            ("linux", "arm", Some("v6"), Some(2)),
            ("linux", "arm", Some("v8"), Some(3)),
            ("linux", "arm", Some("v5"), None),
            ("linux", "arm64", None, Some(4)),
            ("linux", "aarch64", Some("v8"), Some(4)),
            ("linux", "riscv64", None, None),
            ("darwin", "arm64", None, None),
            ("LINUX", "AMD64", None, Some(1)),
        ];
        for (os, arch, variant, want) in cases {
            assert_eq!(
                pick(&multi, os, arch, *variant),
                *want,
                "{os}/{arch}/{variant:?}"
            );
        }
    }

    #[test]
    fn first_of_equals_and_bad_input() {
        let dup = index(&[("linux", "amd64", None), ("linux", "amd64", None)]);
        assert_eq!(pick(&dup, "linux", "amd64", None), Some(1));
        assert_eq!(select(b"not json", "linux", "amd64", None), None);
        assert_eq!(select(b"{}", "linux", "amd64", None), None);
        let no_platform = br#"{"manifests":[{"mediaType":"a/b","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}"#;
        assert_eq!(select(no_platform, "linux", "amd64", None), None);
    }

    #[test]
    fn platform_parses_os_arch_and_variant() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into())
            }
        );
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            "linux/arm/v7".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "", "linux/arm/"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_platform_uses_oci_architecture_names() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert_ne!(host.architecture, "x86_64");
        assert_ne!(host.architecture, "aarch64");
    }

    #[test]
    fn matching_defaults_arm64_to_v8_and_amd64_to_no_variant() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/amd64").matches(&p("linux/amd64/v1")));
        assert!(p("linux/amd64/v3").matches(&p("linux/amd64")));
        assert!(!p("linux/amd64").matches(&p("linux/amd64/v3")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert_eq!(p("linux/arm/v7").distance(&p("linux/arm/v6")), Some(1));
    }
}
