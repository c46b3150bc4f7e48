//! Named volumes, as `docker volume` keeps them: `DIR/named-volumes/NAME/` holds the
//! volume's `volume.json` (docker's `volume inspect` fields) and its data in `_data`.
//!
//! A volume appears whole or not at all: it is made in `DIR/named-volumes/.new-NAME-RANDOM`
//! and renamed into place, and removed by renaming it to `.removing-NAME-RANDOM` first
//! (what a killed process leaves under a dot name is swept by the next listing). The
//! directory is 0700: a volume's files keep the owners its containers see (root is 0), so
//! no other host user may reach them. Which containers use a volume is in their records
//! ([`crate::Attachments::named_volumes`]); refusing to remove one in use is the caller's,
//! under the lock every `run` holds until its record exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// A named volume, with the fields of `docker volume inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Where its data is on the host (`…/NAME/_data`).
    #[serde(rename = "Mountpoint")]
    pub mountpoint: PathBuf,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "Labels", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "Scope")]
    pub scope: String,
}

/// The named volumes under one data directory.
#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    /// The volumes of data directory `dir` (`dir/named-volumes`, made when first needed).
    pub fn new(dir: &Path) -> Volumes {
        Volumes {
            root: dir.join("named-volumes"),
        }
    }

    fn dir(&self, name: &str) -> Result<PathBuf> {
        if !berth_image::spec::valid_volume_name(name) {
            return Err(EngineError::Invalid(format!(
                "{name:?} is not a valid volume name: use [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            )));
        }
        Ok(self.root.join(name))
    }

    /// Volume `name`, or `None`.
    pub fn get(&self, name: &str) -> Result<Option<Volume>> {
        let file = self.dir(name)?.join("volume.json");
        match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                EngineError::Invalid(format!(
                    "volume {name}: {} is not a volume record ({e}); remove the volume's \
                     directory by hand",
                    file.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io("reading", &file, e)),
        }
    }

    /// Volume `name`, made (empty, owned by root, 0755) when missing; `true` when this call
    /// made it. Two callers at once get the same volume.
    pub fn create(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(Volume, bool)> {
        let dir = self.dir(name)?;
        if let Some(v) = self.get(name)? {
            return Ok((v, false));
        }
        self.make_root()?;
        let tmp = self
            .root
            .join(format!(".new-{name}-{}", &crate::new_id()?[..12]));
        let volume = Volume {
            name: name.to_owned(),
            driver: "local".into(),
            mountpoint: dir.join("_data"),
            created_at: berth_runtime_spec::timefmt::rfc3339_nano(std::time::SystemTime::now()),
            labels: labels.clone(),
            scope: "local".into(),
        };
        let made = (|| {
            std::fs::create_dir(&tmp).map_err(|e| EngineError::io("creating", &tmp, e))?;
            let data = tmp.join("_data");
            std::fs::create_dir(&data).map_err(|e| EngineError::io("creating", &data, e))?;
            set_mode(&data, 0o755)?;
            let json = serde_json::to_vec_pretty(&volume)
                .map_err(|e| EngineError::Invalid(format!("volume {name}: {e}")))?;
            berth_fsutil::atomic_write(tmp.join("volume.json"), &json).map_err(|source| {
                EngineError::Fs {
                    what: "writing the volume record",
                    path: tmp.join("volume.json"),
                    source,
                }
            })?;
            berth_fsutil::rename_durable(&tmp, &dir).map_err(|source| EngineError::Fs {
                what: "creating the volume",
                path: dir.clone(),
                source,
            })
        })();
        match made {
            Ok(()) => Ok((volume, true)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // another process made it first: that one is the volume
                match self.get(name)? {
                    Some(v) => Ok((v, false)),
                    None => Err(e),
                }
            }
        }
    }

    /// Every volume, by name; half-made or half-removed ones of killed processes are swept.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::io("listing", &self.root, e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| EngineError::io("listing", &self.root, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".new-") || name.starts_with(".removing-") {
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            }
            if let Some(v) = self.get(&name).ok().flatten() {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Remove volume `name` and its data (`NotFound` when there is none). The caller checks
    /// that no container uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = self.dir(name)?;
        if self.get(name)?.is_none() {
            return Err(EngineError::NotFound(format!("no such volume: {name}")));
        }
        let doomed = self
            .root
            .join(format!(".removing-{name}-{}", &crate::new_id()?[..12]));
        berth_fsutil::rename_durable(&dir, &doomed).map_err(|source| EngineError::Fs {
            what: "removing the volume",
            path: dir.clone(),
            source,
        })?;
        std::fs::remove_dir_all(&doomed).map_err(|e| EngineError::io("removing", &doomed, e))
    }

    fn make_root(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| EngineError::io("creating", &self.root, e))?;
        set_mode(&self.root, 0o700)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| EngineError::io("setting the mode of", path, e))
}

/// Whether directory `dir` has no entries (a volume never filled).
pub fn is_empty(dir: &Path) -> Result<bool> {
    let mut rd = std::fs::read_dir(dir).map_err(|e| EngineError::io("listing", dir, e))?;
    Ok(rd.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_idempotent_list_sweeps_and_remove_removes() {
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::new(d.path());
        let labels = BTreeMap::from([("team".to_owned(), "db".to_owned())]);
        let (a, made) = v.create("data", &labels).unwrap();
        assert!(made);
        assert_eq!(a.mountpoint, d.path().join("named-volumes/data/_data"));
        assert!(a.mountpoint.is_dir());
        let (b, made) = v.create("data", &BTreeMap::new()).unwrap();
        assert!(!made);
        assert_eq!(a, b, "the first creation's record stands");
        std::fs::create_dir(d.path().join("named-volumes/.new-x-123")).unwrap();
        assert_eq!(v.list().unwrap(), vec![a.clone()]);
        assert!(!d.path().join("named-volumes/.new-x-123").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("named-volumes"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        berth_fsutil::atomic_write(a.mountpoint.join("f"), b"x").unwrap();
        v.remove("data").unwrap();
        assert!(v.get("data").unwrap().is_none());
        assert!(matches!(v.remove("data"), Err(EngineError::NotFound(_))));
        assert!(
            std::fs::read_dir(d.path().join("named-volumes"))
                .unwrap()
                .next()
                .is_none()
        );
        for bad in ["", "a", "../x", "a/b", ".hidden", "-x"] {
            assert!(v.create(bad, &BTreeMap::new()).is_err(), "{bad:?}");
        }
    }
}
