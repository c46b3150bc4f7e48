//! Shared by the catalog tests: syft as the peer, layer tarballs, and the comparison.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "tests fail by panicking, helpers included, and report measurements"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_sbom::package::Inventory;

/// One package as compared: name, version, purl (qualifiers sorted, as berth writes them).
pub type Key = (String, String, String);

/// A purl with its qualifiers sorted by key (syft keeps the order it added them in; the
/// purl specification's canonical form, which berth writes, sorts them), percent-decoded
/// but for `%2F`, `%3F`, `%26`, `%3D`, `%40` (berth encodes every character but the
/// unreserved ones, packageurl-go leaves a few, `:` and `(` among them: the same purl).
pub fn canonical_purl(purl: &str) -> String {
    let purl = decode(purl);
    match purl.split_once('?') {
        Some((head, q)) => {
            let mut qs: Vec<&str> = q.split('&').collect();
            qs.sort_by_key(|kv| kv.split('=').next().unwrap_or_default().to_owned());
            format!("{head}?{}", qs.join("&"))
        }
        None => purl,
    }
}

/// syft's `syft-json` document for `target`.
fn syft_json(target: &str) -> serde_json::Value {
    let out = Command::new(crate::tools::syft())
        .args(["scan", target, "-o", "syft-json", "-q"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("run syft");
    assert!(
        out.status.success(),
        "syft {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("syft json")
}

/// syft's packages for `target` (`dir:PATH`, `oci-dir:PATH`), of the syft `types` given.
pub fn syft(target: &str, types: &[&str]) -> BTreeSet<Key> {
    let doc = syft_json(target);
    doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| types.contains(&a["type"].as_str().unwrap_or_default()))
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_owned(),
                a["version"].as_str().unwrap_or_default().to_owned(),
                canonical_purl(a["purl"].as_str().unwrap_or_default()),
            )
        })
        .collect()
}

/// syft's licences of each package of the `types` given in `target`, by package name.
pub fn syft_licenses(target: &str, types: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let doc = syft_json(target);
    doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| types.contains(&a["type"].as_str().unwrap_or_default()))
        .map(|a| {
            let names = a["licenses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["value"].as_str().map(str::to_owned))
                .collect();
            (a["name"].as_str().unwrap_or_default().to_owned(), names)
        })
        .collect()
}

/// berth's packages, as compared, of the cataloguers (`found_by`) given.
pub fn ours(inv: &Inventory, found_by: &[&str]) -> BTreeSet<Key> {
    inv.packages
        .iter()
        .filter(|p| found_by.contains(&p.found_by.as_str()))
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                canonical_purl(&p.purl.to_string()),
            )
        })
        .collect()
}

/// A difference berth and syft are known to have, and why: matched against the purl of a
/// package only one of them reports (`ours:` or `syft:` prefix, then a purl prefix).
pub type Allowed<'a> = (&'a str, &'a str);

/// Fails on any difference not in `allowed`, and on any `allowed` entry that matched
/// nothing (the list stays minimal).
#[track_caller]
pub fn assert_same(what: &str, ours: &BTreeSet<Key>, syft: &BTreeSet<Key>, allowed: &[Allowed]) {
    let mut used = vec![false; allowed.len()];
    let mut unexplained = Vec::new();
    let only =
        |a: &BTreeSet<Key>, b: &BTreeSet<Key>| -> Vec<Key> { a.difference(b).cloned().collect() };
    for (side, diffs) in [("ours", only(ours, syft)), ("syft", only(syft, ours))] {
        for k in diffs {
            let hit = allowed.iter().position(|(pat, _)| {
                pat.split_once(':')
                    .is_some_and(|(s, p)| s == side && k.2.starts_with(p))
            });
            match hit {
                Some(i) => used[i] = true,
                None => unexplained.push(format!("only {side}: {k:?}")),
            }
        }
    }
    let unused: Vec<_> = allowed
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(a, _)| a.0)
        .collect();
    assert!(
        unexplained.is_empty() && unused.is_empty(),
        "{what}: berth and syft differ ({} berth, {} syft packages)\n{}\nallow-list entries that matched nothing: {unused:?}",
        ours.len(),
        syft.len(),
        unexplained.join("\n")
    );
}

/// A tar of `entries`: (path, Some(contents)) for a file, (path, None) for a directory.
pub fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_ustar();
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, *d).expect("tar append");
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, path, &[][..]).expect("tar append");
            }
        }
    }
    b.into_inner().expect("tar")
}

/// A tar of the directory `root` (files under `sub`), as GNU tar writes it.
pub fn gnu_tar(root: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("tar")
        .args(["--format=posix", "--numeric-owner", "-C"])
        .arg(root)
        .args(["-cf", "-"])
        .args(args)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Debian root file system `scripts/make-debian-rootfs` builds; fails loudly without.
pub fn debian_rootfs() -> PathBuf {
    berth_test_support::debian_rootfs().unwrap_or_else(|| {
        panic!("no Debian root filesystem\nhint: run scripts/make-debian-rootfs (debootstrap; scripts/test runs it)")
    })
}

/// Run `cmd`, failing the test with its output on error.
#[track_caller]
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "failed to run {cmd:?}: {e}\nhint: scripts/test installs every tool these tests \
                 run (its DEBIAN_PACKAGES and install_sbom_tools)"
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = &s[i + 1..i + 3];
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                if !matches!(v, b'/' | b'?' | b'&' | b'=' | b'@' | b'%') {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.extend_from_slice(format!("%{hex}").to_ascii_uppercase().as_bytes());
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Write a fixture file (parents created).
pub fn put(path: impl AsRef<Path>, data: impl AsRef<[u8]>) {
    berth_test_support::write_file(path, data.as_ref());
}
