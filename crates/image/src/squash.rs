//! An image's layers as one view, without unpacking them (berth-sbom's cataloguers,
//! berth-watch's profiles): tar entry names as clean absolute paths, and each layer's
//! removals — whiteouts, opaque directories, entries that replace a lower one — recorded as
//! the layer is read and applied to the lower view when it ends (image-spec "layer.md",
//! "Whiteouts": `.wh.NAME` deletes `NAME` and everything under it from the lower layers,
//! `.wh..wh..opq` everything the lower layers put in its directory; an entry replaces the
//! lower path, and a non-directory replaces the lower subtree).
//!
//! The views are path-keyed `BTreeMap`s whose values the caller chooses (what it kept of each
//! file); [`LayerEdits::apply`] removes from any number of them.

use std::collections::BTreeMap;

/// An entry's name as an absolute, clean path (`./usr/bin/x` → `/usr/bin/x`), or `None`
/// for the root itself or a name with a `..` component.
pub fn clean(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len() + 1);
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `name` in the directory `dir` (both clean, `dir` absolute).
pub fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// `path` and everything under it.
pub fn remove_tree<V>(map: &mut BTreeMap<String, V>, path: &str) {
    map.remove(path);
    remove_under(map, path);
}

/// Everything under the directory `dir` (not `dir` itself).
pub fn remove_under<V>(map: &mut BTreeMap<String, V>, dir: &str) {
    let prefix = if dir == "/" {
        "/".to_owned()
    } else {
        format!("{dir}/")
    };
    let keys: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        map.remove(&k);
    }
}

/// What one layer removes from the layers below it.
#[derive(Debug, Default)]
pub struct LayerEdits {
    /// Paths of this layer's entries: (path, is a directory).
    touched: Vec<(String, bool)>,
    whiteouts: Vec<String>,
    opaque: Vec<String>,
}

impl LayerEdits {
    /// Record a tar entry at clean `path` that is a whiteout (`.wh.NAME`) or an opaque
    /// marker (`.wh..wh..opq`); `true` when it was one (the entry itself is then no file).
    pub fn tar_whiteout(&mut self, path: &str) -> bool {
        let Some((dir, base)) = path.rsplit_once('/') else {
            return false;
        };
        let dir = if dir.is_empty() { "/" } else { dir };
        if base == ".wh..wh..opq" {
            self.opaque.push(dir.to_owned());
            true
        } else if let Some(name) = base.strip_prefix(".wh.") {
            self.whiteouts.push(join(dir, name));
            true
        } else {
            false
        }
    }

    /// `path` and everything under it are gone (an overlayfs whiteout, in a directory
    /// layer).
    pub fn whiteout(&mut self, path: String) {
        self.whiteouts.push(path);
    }

    /// The lower layers' contents of directory `dir` are hidden (an overlayfs opaque
    /// directory).
    pub fn opaque(&mut self, dir: String) {
        self.opaque.push(dir);
    }

    /// This layer has an entry at `path`: it replaces the lower one, and the lower subtree
    /// too unless it is a directory.
    pub fn touch(&mut self, path: String, is_dir: bool) {
        self.touched.push((path, is_dir));
    }

    /// Remove from the lower view `view` what this layer deletes or replaces; the caller
    /// then adds the layer's own entries.
    pub fn apply<V>(&self, view: &mut BTreeMap<String, V>) {
        for p in &self.whiteouts {
            remove_tree(view, p);
        }
        for d in &self.opaque {
            remove_under(view, d);
        }
        for (p, is_dir) in &self.touched {
            view.remove(p);
            if !*is_dir {
                remove_under(view, p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        assert_eq!(clean("./usr/bin/x").as_deref(), Some("/usr/bin/x"));
        assert_eq!(clean("usr//lib/").as_deref(), Some("/usr/lib"));
        assert_eq!(clean("./"), None);
        assert_eq!(clean("a/../../etc"), None);
    }

    #[test]
    fn a_layer_removes_whiteouts_opaque_contents_and_replaced_subtrees() {
        let mut view: BTreeMap<String, u8> = [
            "/a", "/a/x", "/ab", "/b/y", "/b/z", "/c", "/c/old", "/d/keep", "/e",
        ]
        .into_iter()
        .map(|p| (p.to_owned(), 0))
        .collect();
        let mut e = LayerEdits::default();
        assert!(e.tar_whiteout("/.wh.a"));
        assert!(e.tar_whiteout("/b/.wh..wh..opq"));
        assert!(!e.tar_whiteout("/d/file"));
        e.touch("/c".into(), false); // a file replaces the directory /c
        e.touch("/d".into(), true); // a directory keeps what is under it
        e.apply(&mut view);
        assert_eq!(
            view.keys().map(String::as_str).collect::<Vec<_>>(),
            ["/ab", "/d/keep", "/e"]
        );
    }
}
