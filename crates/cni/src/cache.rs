//! The result cache, laid out and written as libcni's (`libcni/api.go`, `cacheAdd`), so that
//! DEL works after a restart or a killed engine and CHECK has its `prevResult`:
//!
//! ```text
//! <cache dir>/
//!   results/
//!     <network>-<container id>-<ifname>   {"kind": "cniCacheV1", "containerId", "config"
//!                                          (the list's JSON, base64 as Go encodes []byte),
//!                                          "ifName", "networkName", "netns", "cniArgs",
//!                                          "capabilityArgs", "result"}
//! ```
//!
//! Files are replaced atomically, their content fsynced before the rename (berth-fsutil's
//! `atomic_rewrite`), so a crash leaves the old entry or the new one, never a torn file; the
//! rename is not waited for (libcni does not sync at all). An entry a crash lost is DEL's
//! `prevResult` only: DEL then goes from the network's list, as CNI allows.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{CniError, Result};

/// The `kind` of a cache entry libcni writes and reads.
pub const CACHE_KIND: &str = "cniCacheV1";

/// One attachment as the cache keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub args: Vec<(String, String)>,
    pub capability_args: Map<String, Value>,
    /// The network configuration list the ADD ran with (JSON).
    pub config: Vec<u8>,
    /// The final result of the ADD, as the plugins printed it.
    pub result: Option<Value>,
    /// The file it came from.
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    kind: String,
    #[serde(rename = "containerId")]
    container_id: String,
    #[serde(default)]
    config: String,
    #[serde(rename = "ifName")]
    ifname: String,
    #[serde(rename = "networkName")]
    network: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    netns: String,
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<(String, String)>,
    #[serde(
        rename = "capabilityArgs",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    capability_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
}

/// `<cache dir>/results`.
pub fn results_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("results")
}

/// `<cache dir>/results/<network>-<container id>-<ifname>`; the three are validated by the
/// caller (no `/`, not empty).
pub fn entry_path(cache_dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    results_dir(cache_dir).join(format!("{network}-{container_id}-{ifname}"))
}

pub(crate) fn write(cache_dir: &Path, a: &Attachment) -> Result<PathBuf> {
    let entry = Entry {
        kind: CACHE_KIND.to_owned(),
        container_id: a.container_id.clone(),
        config: base64_encode(&a.config),
        ifname: a.ifname.clone(),
        network: a.network.clone(),
        netns: a.netns.clone(),
        args: a.args.clone(),
        capability_args: a.capability_args.clone(),
        result: a.result.clone(),
    };
    let path = entry_path(cache_dir, &a.network, &a.container_id, &a.ifname);
    let data = serde_json::to_vec(&entry).map_err(|e| CniError::CorruptCache {
        path: path.clone(),
        reason: format!("cannot encode the entry: {e}"),
    })?;
    berth_fsutil::create_dir_all_durable(&results_dir(cache_dir))
        .map_err(|source| CniError::WriteCache { source })?;
    berth_fsutil::atomic_rewrite(&path, &data).map_err(|source| CniError::WriteCache { source })?;
    Ok(path)
}

/// The entry at `path`; `None` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Attachment>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CniError::ReadCache {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse(&data, path).map(Some)
}

fn parse(data: &[u8], path: &Path) -> Result<Attachment> {
    let corrupt = |reason: String| CniError::CorruptCache {
        path: path.to_owned(),
        reason,
    };
    let e: Entry = serde_json::from_slice(data).map_err(|e| corrupt(e.to_string()))?;
    if e.kind != CACHE_KIND {
        return Err(corrupt(format!("kind {:?} is not {CACHE_KIND:?}", e.kind)));
    }
    let config = base64_decode(&e.config).ok_or_else(|| corrupt("config is not base64".into()))?;
    Ok(Attachment {
        network: e.network,
        container_id: e.container_id,
        ifname: e.ifname,
        netns: e.netns,
        args: e.args,
        capability_args: e.capability_args,
        config,
        result: e.result,
        path: path.to_owned(),
    })
}

pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CniError::RemoveCache {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Every readable entry, sorted by file name; `container_id` keeps only that container's.
/// Unreadable entries are returned apart, with why.
pub(crate) fn list(
    cache_dir: &Path,
    container_id: Option<&str>,
) -> Result<(Vec<Attachment>, Vec<CniError>)> {
    let dir = results_dir(cache_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => return Err(CniError::ReadCache { path: dir, source }),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for p in paths {
        // atomic writes' temporary files start with a dot
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'))
        {
            continue;
        }
        match read(&p) {
            Ok(Some(a)) if container_id.is_none_or(|c| a.container_id == c) => out.push(a),
            Ok(_) => {}
            Err(e) => bad.push(e),
        }
    }
    Ok((out, bad))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (Go's `encoding/json` for `[]byte`).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (ci, chunk) in s.chunks(4).enumerate() {
        let last = ci == s.len() / 4 - 1;
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if c == b'=' && last && i >= 2 {
                pad += 1;
                0
            } else if pad > 0 {
                return None;
            } else {
                B64.iter().position(|&x| x == c)? as u32
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_as_go_encodes() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"{\"name\":\"x\"}", "eyJuYW1lIjoieCJ9"),
        ] {
            assert_eq!(base64_encode(raw), enc);
            assert_eq!(base64_decode(enc).unwrap(), raw);
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "=Zm9"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
