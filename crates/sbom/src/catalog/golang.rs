//! Go binaries' build information: the `\xff Go buildinf:` blob in the `.go.buildinfo`
//! section (Go's `debug/buildinfo`). Go ≥ 1.18 writes the Go version and the module
//! information inline as varint-prefixed strings (flag bit 2); older binaries hold pointers
//! and are not read. The module information is `go version -m`'s text: `path`, `mod` (the
//! main module), `dep` lines and `=>` lines replacing the dependency above them.
//!
//! As syft does, the main module (version `(devel)` when built from a work tree without VCS
//! information), every dependency (replacements applied) and the Go standard library
//! (`stdlib`, version `go1.X.Y`, purl `pkg:golang/stdlib@1.X.Y`) are reported.

use super::{elf, package};
use crate::package::{Ecosystem, Package, Purl};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// The Go version and module information of a binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.22.1`.
    pub go_version: String,
    /// The main module's path and version.
    pub main: Option<(String, String)>,
    /// Dependencies' paths and versions, replacements applied.
    pub deps: Vec<(String, String)>,
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The build information blob's start in `data`: the `.go.buildinfo` section if the binary
/// has section headers, else the magic searched for at 16-byte alignment.
fn blob(data: &[u8]) -> Option<&[u8]> {
    if let Some(s) = elf::section(data, ".go.buildinfo")
        && s.starts_with(MAGIC)
    {
        return Some(s);
    }
    let mut at = 0;
    while at + 32 <= data.len() {
        let rest = data.get(at..)?;
        let i = rest.windows(MAGIC.len()).position(|w| w == MAGIC)?;
        let pos = at + i;
        if pos % 16 == 0 {
            return data.get(pos..);
        }
        at = pos + 1;
    }
    None
}

/// Parse the build information blob (starting with the magic).
pub fn parse_blob(b: &[u8]) -> Option<BuildInfo> {
    if !b.starts_with(MAGIC) {
        return None;
    }
    let flags = *b.get(15)?;
    if flags & 2 == 0 {
        return None; // Go < 1.18: pointers into the data segment
    }
    let mut pos = 32;
    let mut string = || -> Option<String> {
        let (len, n) = uvarint(b.get(pos..)?)?;
        let len = usize::try_from(len).ok()?;
        let start = pos + n;
        let s = b.get(start..start.checked_add(len)?)?;
        pos = start + len;
        Some(String::from_utf8_lossy(s).into_owned())
    };
    let go_version = string()?;
    let mut modinfo = string().unwrap_or_default();
    // 16-byte sentinels around the module information
    if modinfo.len() >= 33 && modinfo.as_bytes().get(modinfo.len() - 17) == Some(&b'\n') {
        modinfo = modinfo
            .get(16..modinfo.len() - 16)
            .unwrap_or_default()
            .to_owned();
    }
    let mut info = BuildInfo {
        go_version,
        ..BuildInfo::default()
    };
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] => info.main = Some(((*path).into(), (*version).into())),
            ["dep", path, version, ..] => info.deps.push(((*path).into(), (*version).into())),
            ["=>", path, version, ..] => {
                if let Some(last) = info.deps.last_mut() {
                    *last = ((*path).into(), (*version).into());
                } else if let Some(main) = info.main.as_mut() {
                    *main = ((*path).into(), (*version).into());
                }
            }
            _ => {}
        }
    }
    Some(info)
}

/// The purl of a Go module path and version.
pub fn purl(path: &str, version: &str) -> Purl {
    match path.rsplit_once('/') {
        Some((ns, name)) => Purl::new("golang", Some(ns), name, version),
        None => Purl::new("golang", None, path, version),
    }
}

/// The packages a Go binary's build information names (none for other files).
pub fn from_elf(data: &[u8]) -> Vec<Package> {
    let Some(info) = blob(data).and_then(parse_blob) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut module = |path: &str, version: &str| {
        if path.is_empty() {
            return;
        }
        out.push(package(
            Ecosystem::Go,
            path,
            version,
            purl(path, version),
            "go-binary",
        ));
    };
    if let Some((path, version)) = &info.main {
        module(path, version);
    }
    for (path, version) in &info.deps {
        module(path, version);
    }
    if let Some(v) = info.go_version.strip_prefix("go") {
        let v = v.split_whitespace().next().unwrap_or(v);
        out.push(package(
            Ecosystem::Go,
            "stdlib",
            &info.go_version,
            Purl::new("golang", None, "stdlib", v),
            "go-binary",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_of(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8); // pointer size
        b.push(2); // inline strings (Go >= 1.18)
        b.resize(32, 0);
        for s in [version.as_bytes(), modinfo.as_bytes()] {
            let mut n = s.len();
            while n >= 0x80 {
                b.push((n as u8) | 0x80);
                n >>= 7;
            }
            b.push(n as u8);
            b.extend_from_slice(s);
        }
        b
    }

    #[test]
    fn replacements_apply_to_the_dependency_above_them() {
        let sentinel = "0123456789abcdef";
        let info = format!(
            "{sentinel}path\tex.com/m\nmod\tex.com/m\tv1.0.0\t\ndep\tgolang.org/x/sys\tv0.1.0\th1:x\n=>\tgithub.com/fork/sys\tv0.2.0\th1:y\ndep\tgithub.com/a/b\tv1.2.3+incompatible\th1:z\nbuild\tGOOS=linux\n{sentinel}"
        );
        let b = blob_of("go1.22.1", &info);
        let parsed = parse_blob(&b).unwrap();
        assert_eq!(parsed.go_version, "go1.22.1");
        assert_eq!(parsed.main, Some(("ex.com/m".into(), "v1.0.0".into())));
        assert_eq!(
            parsed.deps,
            vec![
                ("github.com/fork/sys".into(), "v0.2.0".into()),
                ("github.com/a/b".into(), "v1.2.3+incompatible".into())
            ]
        );
        // found without section headers too (the magic at 16-byte alignment)
        let mut elf = vec![0u8; 48];
        elf.extend_from_slice(&b);
        let pkgs = from_elf(&elf);
        let purls: Vec<String> = pkgs.iter().map(|p| p.purl.to_string()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/ex.com/m@v1.0.0",
                "pkg:golang/github.com/fork/sys@v0.2.0",
                "pkg:golang/github.com/a/b@v1.2.3%2Bincompatible",
                "pkg:golang/stdlib@1.22.1"
            ]
        );
        // Go < 1.18 (pointers): not read
        let mut old = b.clone();
        old[15] = 0;
        assert!(parse_blob(&old).is_none());
    }
}
