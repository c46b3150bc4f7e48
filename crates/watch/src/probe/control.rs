//! [`ProbeControl`]: which cgroups are watched and their connect policies, written to the BPF
//! maps. Usable from another thread than the one reading events ([`super::EventReader`]).

use std::sync::Arc;

use aya::Ebpf;
use aya::maps::{HashMap, MapData, MapError};

use super::ProbeError;
use super::wire::{self, AllowedDestination};

/// The maps that select and police cgroups. Holds the programs loaded while it lives (with
/// the [`super::EventReader`] split from the same [`super::Probes`]).
pub struct ProbeControl {
    pub(super) _ebpf: Arc<Ebpf>,
    pub(super) watched: HashMap<MapData, u64, u8>,
    pub(super) policies: HashMap<MapData, u64, [u8; wire::POLICY_LEN]>,
    pub(super) ignored: HashMap<MapData, u64, u8>,
}

impl std::fmt::Debug for ProbeControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeControl").finish_non_exhaustive()
    }
}

impl ProbeControl {
    /// Report the events of the cgroup with this id (see [`super::cgroup_id`]).
    pub fn watch_cgroup(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.watched
            .insert(cgroup_id, 1, 0)
            .map_err(|source| ProbeError::MapUpdate {
                map: "watched",
                cgroup_id,
                source,
            })
    }

    /// Stop reporting a cgroup's events (no error when it was not watched).
    pub fn unwatch_cgroup(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        remove_key(&mut self.watched, "watched", cgroup_id)
    }

    /// With [`super::ProbeOptions::unwatched`]: stop reporting the execs and connects of a
    /// cgroup that is not watched (one found to be no container to watch). Watching it later reports them
    /// again. The kernel keeps the most recent 16,384 such cgroups.
    pub fn ignore_cgroup(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.ignored
            .insert(cgroup_id, 1, 0)
            .map_err(|source| ProbeError::MapUpdate {
                map: "ignored",
                cgroup_id,
                source,
            })
    }

    /// The connect policy of a cgroup: with `enforce`, a connect (IPv4 or IPv6, TCP or UDP) to
    /// a destination outside `allow`, or a `sendto`/`sendmsg` there on an unconnected UDP
    /// socket, fails with EPERM and its event says `blocked` (an
    /// IPv4-mapped IPv6 destination is checked against the IPv4 entries too); without, the
    /// destinations are not checked. At most [`super::ALLOW_MAX`] entries. The policy applies
    /// whether or not the cgroup is watched (only a watched one's connects are reported).
    pub fn set_connect_policy(
        &mut self,
        cgroup_id: u64,
        enforce: bool,
        allow: &[AllowedDestination],
    ) -> Result<(), ProbeError> {
        let value = wire::encode_policy(enforce, allow)
            .map_err(|source| ProbeError::Policy { cgroup_id, source })?;
        self.policies
            .insert(cgroup_id, value, 0)
            .map_err(|source| ProbeError::MapUpdate {
                map: "policies",
                cgroup_id,
                source,
            })
    }

    /// Remove a cgroup's connect policy (its connects are no longer checked).
    pub fn clear_connect_policy(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        remove_key(&mut self.policies, "policies", cgroup_id)
    }
}

fn remove_key<V: aya::Pod>(
    map: &mut HashMap<MapData, u64, V>,
    name: &'static str,
    cgroup_id: u64,
) -> Result<(), ProbeError> {
    match map.remove(&cgroup_id) {
        Ok(()) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(source) => Err(ProbeError::MapUpdate {
            map: name,
            cgroup_id,
            source,
        }),
    }
}
