//! `os-release(5)`: the distribution an image is.

use crate::layers::FileView;
use crate::package::{Distro, Package};

/// Where os-release lives, in the order `os-release(5)` says to look.
pub const PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The distribution named by the first os-release file in `view` (symlinks resolved).
pub fn from_view(view: &FileView<Vec<Package>>) -> Option<Distro> {
    PATHS
        .iter()
        .find_map(|p| view.data(p))
        .and_then(|(_, _, data)| parse(data))
}

/// Unquote a shell-style os-release value (`"Debian GNU/Linux"`, `'x'`, `a\"b`).
fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The distribution an os-release file names; `None` without an `ID`.
pub fn parse(data: &[u8]) -> Option<Distro> {
    let text = String::from_utf8_lossy(data);
    let mut d = Distro::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = unquote(v);
        let opt = || (!v.is_empty()).then(|| v.clone());
        match k.trim() {
            "ID" => d.id = v.to_ascii_lowercase(),
            "VERSION_ID" => d.version_id = opt(),
            "VERSION_CODENAME" => d.codename = opt(),
            "ID_LIKE" => d.id_like = v.split_whitespace().map(str::to_owned).collect(),
            "PRETTY_NAME" => d.pretty_name = opt(),
            _ => {}
        }
    }
    (!d.id.is_empty()).then_some(d)
}

/// The `distro` purl qualifier syft writes: `ID-VERSION_ID` (`debian-12`), or the ID alone.
pub fn purl_qualifier(d: &Distro) -> String {
    match &d.version_id {
        Some(v) => format!("{}-{v}", d.id),
        None => d.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_and_comments() {
        let d = parse(b"# c\nID=debian\nVERSION_ID=\"12\"\nID_LIKE='rhel fedora'\nPRETTY_NAME=\"A \\\"B\\\"\"\n")
            .unwrap();
        assert_eq!(d.id, "debian");
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(d.id_like, vec!["rhel", "fedora"]);
        assert_eq!(d.pretty_name.as_deref(), Some("A \"B\""));
        assert_eq!(purl_qualifier(&d), "debian-12");
        assert!(parse(b"NAME=x\n").is_none());
    }
}
