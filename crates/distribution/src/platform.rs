//! Choosing the manifest for a platform from an image index, as containerd's
//! `platforms.Only` matcher does: the OS must match, the architecture is normalised
//! (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`), and an older CPU variant
//! of the same architecture is accepted when the exact one is missing (`arm/v7` runs
//! `arm/v6`; `amd64/v3` runs `amd64/v2` and `amd64`), the closest variant preferred.

use berth_oci::oci_spec::image::Descriptor;

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

/// The descriptor in `index` (an OCI index or Docker manifest list, as bytes) that best
/// matches `os`/`architecture`/`variant`; `None` when none does or `index` is not an index.
pub fn select_platform(
    index: &[u8],
    os: &str,
    architecture: &str,
    variant: Option<&str>,
) -> Option<Descriptor> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Descriptor>,
    }
    let index: Index = serde_json::from_slice(index).ok()?;
    let (arch, want) = normalize(architecture, variant);
    let mut best: Option<(u32, Descriptor)> = None;
    for d in index.manifests {
        let Some(p) = d.platform().as_ref() else {
            continue;
        };
        if !p.os().to_string().eq_ignore_ascii_case(os) {
            continue;
        }
        let (have_arch, have) = normalize(&p.architecture().to_string(), p.variant().as_deref());
        if have_arch != arch {
            continue;
        }
        let Some(dist) = distance(&arch, &want, &have) else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| dist < *b) {
            best = Some((dist, d));
        }
    }
    best.map(|(_, d)| d)
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
                    "digest": berth_oci::Digest::sha256_of(&[i as u8]).to_string(),
                    "size": i + 1,
                    "platform": p,
                })
            })
            .collect();
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap()
    }

    /// The size (1-based position) of the chosen entry.
    fn pick(idx: &[u8], os: &str, arch: &str, variant: Option<&str>) -> Option<u64> {
        select_platform(idx, os, arch, variant).map(|d| d.size())
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
        assert_eq!(select_platform(b"not json", "linux", "amd64", None), None);
        assert_eq!(select_platform(b"{}", "linux", "amd64", None), None);
        let no_platform = br#"{"manifests":[{"mediaType":"a/b","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}"#;
        assert_eq!(select_platform(no_platform, "linux", "amd64", None), None);
    }
}
