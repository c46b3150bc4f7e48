//! The id-range allocator: each container its own range of host ids from `/etc/subuid` and
//! `/etc/subgid`, never overlapping another container's (podman's `--userns=auto`).
//!
//! State: one JSON file, `<state>/idranges.json` (`{"version":1,"ranges":{OWNER:{"start":N,
//! "size":N}}}`), read and replaced atomically under an exclusive `flock` on
//! `<state>/idranges.lock`, so two `berth run`s at once (threads or processes) never pick
//! overlapping ranges. A range is held until [`IdAllocator::release`] (container removal).
//!
//! Which ids: the ranges `/etc/subuid` **and** `/etc/subgid` both grant (a container's uid
//! and gid maps use the same host range) to `root` (or uid 0); when there is none for root,
//! to the user `containers`, as podman does for `--userns=auto` as root. With neither, the
//! error says what line to add.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IdmapError;
use crate::spec::{IdRange, pick_range, subid_ranges};

/// The size of a container's range unless the caller asks otherwise (podman's default for
/// `--userns=auto` is sized from the image; 65536 covers every id an image can name in
/// practice, `nobody` = 65534 included).
pub const DEFAULT_RANGE_SIZE: u32 = 65536;

/// The user whose subordinate ids are used when root has none (podman's default).
pub const FALLBACK_USER: &str = "containers";

const STATE_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    ranges: BTreeMap<String, Held>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Held {
    start: u32,
    size: u32,
}

/// Allocates id ranges to containers (see the module documentation). Cheap to create; holds
/// no file open between calls.
#[derive(Debug, Clone)]
pub struct IdAllocator {
    state_dir: PathBuf,
    subuid: PathBuf,
    subgid: PathBuf,
}

impl IdAllocator {
    /// An allocator keeping its state in `state_dir` (created when first needed), with the
    /// host's `/etc/subuid` and `/etc/subgid`.
    pub fn new(state_dir: impl Into<PathBuf>) -> IdAllocator {
        IdAllocator::with_subid_files(state_dir, "/etc/subuid", "/etc/subgid")
    }

    /// [`IdAllocator::new`] with other subordinate-id files (tests, another root).
    pub fn with_subid_files(
        state_dir: impl Into<PathBuf>,
        subuid: impl Into<PathBuf>,
        subgid: impl Into<PathBuf>,
    ) -> IdAllocator {
        IdAllocator {
            state_dir: state_dir.into(),
            subuid: subuid.into(),
            subgid: subgid.into(),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.state_dir.join("idranges.json")
    }

    /// The range `owner` (a container id) holds, allocating a free one of `size` ids if it
    /// holds none. Idempotent: the same owner gets the same range until it is released.
    pub fn allocate(&self, owner: &str, size: u32) -> Result<IdRange, IdmapError> {
        if size == 0 {
            return Err(IdmapError::InvalidSize { size });
        }
        let _lock = self.lock()?;
        let mut state = self.read()?;
        if let Some(h) = state.ranges.get(owner) {
            return Ok(IdRange {
                host_start: h.start,
                size: h.size,
            });
        }
        let (user, available) = self.available()?;
        let in_use: Vec<IdRange> = state
            .ranges
            .values()
            .map(|h| IdRange {
                host_start: h.start,
                size: h.size,
            })
            .collect();
        let range = pick_range(&available, &in_use, size).ok_or_else(|| IdmapError::Exhausted {
            size,
            user: user.clone(),
            in_use: in_use.len(),
            subuid: self.subuid.clone(),
            subgid: self.subgid.clone(),
        })?;
        state.ranges.insert(
            owner.to_owned(),
            Held {
                start: range.host_start,
                size: range.size,
            },
        );
        self.write(&state)?;
        tracing::debug!(
            owner,
            user,
            start = range.host_start,
            size,
            "allocated id range"
        );
        Ok(range)
    }

    /// Give back `owner`'s range (when its container is removed); returns it, or `None` when
    /// it held none.
    pub fn release(&self, owner: &str) -> Result<Option<IdRange>, IdmapError> {
        let _lock = self.lock()?;
        let mut state = self.read()?;
        let Some(h) = state.ranges.remove(owner) else {
            return Ok(None);
        };
        // its content durable, the replacement not waited for: a release lost in a crash is
        // a crash a moment before it, and `release_missing` gives the range back then
        self.write_with(&state, |p, d| berth_fsutil::atomic_rewrite(p, d))?;
        Ok(Some(IdRange {
            host_start: h.start,
            size: h.size,
        }))
    }

    /// Every range held, by owner.
    pub fn list(&self) -> Result<BTreeMap<String, IdRange>, IdmapError> {
        let _lock = self.lock()?;
        Ok(self
            .read()?
            .ranges
            .into_iter()
            .map(|(k, h)| {
                (
                    k,
                    IdRange {
                        host_start: h.start,
                        size: h.size,
                    },
                )
            })
            .collect())
    }

    /// Release the range of every owner for which `exists(owner)` is false (containers
    /// removed by a process that was killed before releasing); returns the owners released.
    pub fn release_missing(
        &self,
        exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, IdmapError> {
        let _lock = self.lock()?;
        let mut state = self.read()?;
        let gone: Vec<String> = state
            .ranges
            .keys()
            .filter(|k| !exists(k))
            .cloned()
            .collect();
        if !gone.is_empty() {
            for k in &gone {
                state.ranges.remove(k);
            }
            self.write(&state)?;
        }
        Ok(gone)
    }

    /// The user whose ids are used and the ranges granted to it in both files.
    fn available(&self) -> Result<(String, Vec<IdRange>), IdmapError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(String::new()),
                _ => Err(IdmapError::ReadSubids {
                    path: p.to_owned(),
                    source: e,
                }),
            })
        };
        let (uids, gids) = (read(&self.subuid)?, read(&self.subgid)?);
        for (user, id) in [("root", 0), (FALLBACK_USER, u32::MAX)] {
            let both = intersect(
                &subid_ranges(&uids, user, id),
                &subid_ranges(&gids, user, id),
            );
            if !both.is_empty() {
                return Ok((user.to_owned(), both));
            }
        }
        Err(IdmapError::NoSubids {
            users: format!("root or {FALLBACK_USER}"),
            subuid: self.subuid.clone(),
            subgid: self.subgid.clone(),
        })
    }

    fn lock(&self) -> Result<berth_fsutil::FileLock, IdmapError> {
        let err = |action| {
            let path = self.state_dir.clone();
            move |source| IdmapError::State {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&self.state_dir).map_err(err("create the directory of"))?;
        berth_fsutil::FileLock::exclusive(&self.state_dir.join("idranges.lock"))
            .map_err(err("lock"))
    }

    fn read(&self) -> Result<State, IdmapError> {
        let path = self.state_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: STATE_VERSION,
                    ranges: BTreeMap::new(),
                });
            }
            Err(source) => {
                return Err(IdmapError::State {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| IdmapError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(IdmapError::Corrupt {
                path,
                reason: format!("version {} is not {STATE_VERSION}", state.version),
            });
        }
        Ok(state)
    }

    fn write(&self, state: &State) -> Result<(), IdmapError> {
        self.write_with(state, |p, d| berth_fsutil::atomic_write(p, d))
    }

    fn write_with(
        &self,
        state: &State,
        write: impl FnOnce(&Path, &[u8]) -> Result<(), berth_fsutil::FsError>,
    ) -> Result<(), IdmapError> {
        let path = self.state_path();
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| IdmapError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write(&path, &bytes).map_err(|source| IdmapError::Persist { path, source })
    }
}

/// The ids in both `a` and `b`, as ranges.
fn intersect(a: &[IdRange], b: &[IdRange]) -> Vec<IdRange> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let start = u64::from(x.host_start).max(u64::from(y.host_start));
            let end = x.end().min(y.end());
            if start < end
                && let (Ok(host_start), Ok(size)) =
                    (u32::try_from(start), u32::try_from(end - start))
            {
                out.push(IdRange { host_start, size });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host_start: u32, size: u32) -> IdRange {
        IdRange { host_start, size }
    }

    #[test]
    fn intersection_of_subuid_and_subgid() {
        assert_eq!(intersect(&[r(100, 100)], &[r(150, 100)]), vec![r(150, 50)]);
        assert_eq!(intersect(&[r(100, 10)], &[r(200, 10)]), vec![]);
        assert_eq!(
            intersect(&[r(0, 1000)], &[r(10, 10), r(500, 10)]),
            vec![r(10, 10), r(500, 10)]
        );
    }
}
