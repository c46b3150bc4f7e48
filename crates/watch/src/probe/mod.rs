//! The eBPF probes (`crates/watch/bpf/watch.bpf.c`, compiled by `scripts/build-bpf` and
//! embedded) and their loader.
//!
//! [`Probes::load`] checks what the kernel side needs and says exactly what is missing (root
//! or the capabilities, the kernel's BTF, a cgroup2 mount, tracefs), loads the object with
//! `aya` (CO-RE: the kernel structs' offsets relocated against `/sys/kernel/btf/vmlinux`) and
//! attaches:
//! - `tp_btf/sched_process_exec` → [`Event::Exec`] with argv, the executable's inode and device,
//!   and whether it came from an overlay's upper or lower layers (`struct ovl_inode`'s layout is
//!   read from the kernel's BTF here, the overlay module's when overlayfs is one, and handed to
//!   the program as constants: CO-RE relocates against vmlinux only);
//! - `tracepoint/syscalls/sys_enter_{openat,openat2,open,creat}` → [`Event::OpenWrite`] for the write,
//!   create and truncate flags (the path prefixes are applied here, in user space); a path not
//!   yet paged in at the call's entry is read at its exit (`sys_exit_*`), when the kernel has
//!   copied it;
//! - `cgroup/connect4` and `connect6`, on the cgroup2 root → [`Event::Connect`], and EPERM for a
//!   connect outside a cgroup's enforced allow-list ([`Probes::set_connect_policy`]);
//!   `cgroup/sendmsg4` and `sendmsg6` hold an unconnected UDP socket's `sendto` to the same
//!   list (only a refused one is reported: every datagram would be an event otherwise);
//! - `cgroup/bind4` and `bind6`, on the cgroup2 root → [`Event::Bind`] for a bind to a port
//!   (not 0), never refused.
//!
//! Only the cgroups given to [`Probes::watch_cgroup`] are reported (the filter runs in the
//! kernel). All events share one ring buffer; a full buffer counts the lost event in a per-CPU
//! counter that [`Probes::next_events`] turns into [`Event::Dropped`], so nothing is lost
//! silently.

mod btf;
mod control;
mod events;
mod host;
pub mod wire;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aya::maps::{HashMap, MapError, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, CgroupAttachMode, CgroupSockAddr, ProgramError, TracePoint};
use aya::{Btf, BtfError, Ebpf, EbpfError, EbpfLoader, Endianness};
use berth_errdefs::ErrorKind;

use crate::event::Event;
pub use control::ProbeControl;
pub use events::EventReader;
pub use wire::{ALLOW_MAX, ARGV_MAX, AllowedDestination, PolicyError, WireError};

/// The BPF object, built by `scripts/build-bpf` from `bpf/watch.bpf.c`.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../bpf/watch.bpf.o");

/// The ring buffer's size unless [`ProbeOptions::ring_buffer_bytes`] says otherwise: 8 MiB,
/// about 6,000 exec events (1,344 bytes each) waiting to be read.
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 8 << 20;

/// The open-for-write programs and the syscall tracepoints they attach to.
const OPEN_TRACEPOINTS: [(&str, &str); 4] = [
    ("handle_openat", "sys_enter_openat"),
    ("handle_openat2", "sys_enter_openat2"),
    ("handle_open", "sys_enter_open"),
    ("handle_creat", "sys_enter_creat"),
];

/// Where tracefs is mounted when it is not (the syscall tracepoints need it).
pub const TRACEFS: &str = "/sys/kernel/tracing";
const TRACEFS_DEBUGFS: &str = "/sys/kernel/debug/tracing";

/// How to load the probes.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The ring buffer's size in bytes: a power of two, at least one page.
    pub ring_buffer_bytes: u32,
    /// Report opens for write only under these paths (`/etc` covers `/etc/passwd`, not
    /// `/etcetera`); empty: every path. A relative path (to the process' working directory or a
    /// directory descriptor) cannot be placed by prefix and is always reported.
    pub write_prefixes: Vec<PathBuf>,
    /// The cgroup2 hierarchy's root, where the connect programs attach; `None`: the cgroup2
    /// mount found in `/proc/self/mountinfo`.
    pub cgroup2_root: Option<PathBuf>,
    /// The kernel's BTF.
    pub btf: PathBuf,
    /// Attach the open-for-write tracepoints. Off, no syscall tracepoint is attached at all:
    /// opens cost nothing, and no [`Event::OpenWrite`] is reported (a watcher with no
    /// write-watched paths).
    pub opens: bool,
    /// Also report the execs and connects of cgroups that are neither watched nor ignored
    /// ([`ProbeControl::ignore_cgroup`]): a container's first ones, made before user space
    /// found it and watched its cgroup, are then not missed (such a connect is reported, not
    /// blocked: its policy is not known yet). Off: only watched cgroups'.
    pub unwatched: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            write_prefixes: Vec::new(),
            cgroup2_root: None,
            btf: PathBuf::from("/sys/kernel/btf/vmlinux"),
            opens: true,
            unwatched: false,
        }
    }
}

/// Why the probes could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "loading the eBPF probes needs root, or CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON and \
         CAP_NET_ADMIN; this process lacks {missing}\nhint: run berth watch as root"
    )]
    NotPrivileged { missing: String },
    #[error("failed to read {path}")]
    ReadHost { path: PathBuf, source: io::Error },
    #[error(
        "no kernel BTF at {path}: the probes are CO-RE and need a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf { path: PathBuf, source: io::Error },
    #[error("failed to parse the kernel BTF at {path}")]
    Btf { path: PathBuf, source: BtfError },
    #[error("failed to read struct ovl_inode's layout from the kernel BTF at {path}")]
    OverlayBtf {
        path: PathBuf,
        source: btf::BtfFormatError,
    },
    #[error(
        "overlayfs is loaded but neither /sys/kernel/btf/vmlinux nor {module} describes its struct \
         ovl_inode: the exec probe could not tell a container's upper layer from its image's\nhint: \
         a kernel built with CONFIG_DEBUG_INFO_BTF_MODULES=y"
    )]
    NoOverlayLayout { module: PathBuf },
    #[error(
        "no cgroup2 hierarchy is mounted (none in /proc/self/mountinfo): containers are told \
         apart by their cgroup2 id\nhint: mount -t cgroup2 none /sys/fs/cgroup (or \
         /sys/fs/cgroup/unified on a cgroup v1 host)"
    )]
    NoCgroup2,
    #[error("failed to open the cgroup2 root {path}")]
    Cgroup2Root { path: PathBuf, source: io::Error },
    #[error(
        "tracefs is not mounted and cannot be mounted at {TRACEFS}: the open-for-write \
         tracepoints need it\nhint: mount -t tracefs tracefs {TRACEFS}"
    )]
    Tracefs { source: io::Error },
    #[error("ring buffer size {bytes} is not a power of two of at least one page ({page} bytes)")]
    RingBufferSize { bytes: u32, page: u32 },
    #[error(
        "failed to load the BPF object (its maps, or its relocations against the kernel's BTF)"
    )]
    Object { source: EbpfError },
    #[error("BPF program {program} is missing from the embedded object or has another type")]
    MissingProgram { program: &'static str },
    #[error("the kernel refused BPF program {program}; the verifier's last lines:\n{log_tail}")]
    Refused {
        program: &'static str,
        log_tail: String,
        source: io::Error,
    },
    #[error("failed to load BPF program {program}")]
    Program {
        program: &'static str,
        source: ProgramError,
    },
    #[error("failed to attach BPF program {program} to {target}")]
    Attach {
        program: &'static str,
        target: String,
        source: ProgramError,
    },
    #[error("BPF map {map} is missing from the embedded object or has another type")]
    MissingMap { map: &'static str },
    #[error("failed to update BPF map {map} for cgroup {cgroup_id}")]
    MapUpdate {
        map: &'static str,
        cgroup_id: u64,
        source: MapError,
    },
    #[error("failed to read BPF map {map}")]
    MapRead { map: &'static str, source: MapError },
    #[error("invalid connect policy for cgroup {cgroup_id}")]
    Policy { cgroup_id: u64, source: PolicyError },
    #[error("failed to wait for events on the ring buffer")]
    Poll { source: io::Error },
}

impl ProbeError {
    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProbeError::NotPrivileged { .. } => ErrorKind::Denied,
            ProbeError::NoBtf { .. }
            | ProbeError::NoCgroup2
            | ProbeError::Tracefs { .. }
            | ProbeError::NoOverlayLayout { .. } => ErrorKind::Unavailable,
            ProbeError::RingBufferSize { .. } | ProbeError::Policy { .. } => {
                ErrorKind::InvalidInput
            }
            ProbeError::Refused { source, .. } | ProbeError::Poll { source }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                ErrorKind::Denied
            }
            _ => ErrorKind::Internal,
        }
    }
}

/// What the loader counted since the probes were loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeCounters {
    /// Events read from the ring buffer and decoded.
    pub received: u64,
    /// Events the kernel side could not deliver (ring buffer full).
    pub dropped: u64,
    /// Opens for write outside [`ProbeOptions::write_prefixes`], read and not returned.
    pub filtered: u64,
    /// Ring buffer records that did not decode (the object and the decoder disagree: a bug).
    pub malformed: u64,
}

/// The loaded and attached probes. Dropping it (or both halves of [`Probes::split`])
/// detaches and unloads them.
#[derive(Debug)]
pub struct Probes {
    control: ProbeControl,
    events: EventReader,
    cgroup2_root: PathBuf,
    tracefs_mounted: bool,
    open_programs: Vec<&'static str>,
}

fn read_host(path: &str) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|source| ProbeError::ReadHost {
        path: PathBuf::from(path),
        source,
    })
}

/// The last `n` lines of a verifier log (the error is at its end).
fn log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn load_error(program: &'static str, e: ProgramError) -> ProbeError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => ProbeError::Refused {
            program,
            log_tail: log_tail(&verifier_log.to_string(), 12),
            source: io_error,
        },
        source => ProbeError::Program { program, source },
    }
}

fn tracefs_ready() -> bool {
    [TRACEFS, TRACEFS_DEBUGFS]
        .iter()
        .any(|p| Path::new(p).join("events/syscalls").is_dir())
}

/// Mount tracefs at [`TRACEFS`] unless it is mounted there or under debugfs; `true` when this
/// call mounted it.
fn ensure_tracefs() -> Result<bool, ProbeError> {
    if tracefs_ready() {
        return Ok(false);
    }
    rustix::mount::mount(
        "tracefs",
        TRACEFS,
        "tracefs",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        None,
    )
    .map_err(|e| ProbeError::Tracefs { source: e.into() })?;
    if !tracefs_ready() {
        return Err(ProbeError::Tracefs {
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{TRACEFS}/events/syscalls is missing after the mount (CONFIG_FTRACE_SYSCALLS off?)"
                ),
            ),
        });
    }
    tracing::info!(
        path = TRACEFS,
        "mounted tracefs for the syscall tracepoints"
    );
    Ok(true)
}

fn take_map(ebpf: &mut Ebpf, map: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(map).ok_or(ProbeError::MissingMap { map })
}

fn program<'a, T>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program>,
{
    let p = ebpf
        .program_mut(program)
        .ok_or(ProbeError::MissingProgram { program })?;
    p.try_into()
        .map_err(|_| ProbeError::MissingProgram { program })
}

impl Probes {
    /// Check the host, load the probes and attach them. No cgroup is watched yet.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn load(options: ProbeOptions) -> Result<Probes, ProbeError> {
        let cap_eff = host::effective_caps(&read_host("/proc/self/status")?).unwrap_or(0);
        if let Some(missing) = host::missing_caps(cap_eff) {
            return Err(ProbeError::NotPrivileged { missing });
        }
        if let Err(source) = std::fs::metadata(&options.btf) {
            return Err(ProbeError::NoBtf {
                path: options.btf.clone(),
                source,
            });
        }
        let btf = Btf::parse_file(&options.btf, Endianness::default()).map_err(|source| {
            ProbeError::Btf {
                path: options.btf.clone(),
                source,
            }
        })?;
        let cgroup2_root = match options.cgroup2_root.clone() {
            Some(root) => root,
            None => crate::containers::cgroup2_mount(&read_host("/proc/self/mountinfo")?)
                .ok_or(ProbeError::NoCgroup2)?,
        };
        let cgroup_root = File::open(&cgroup2_root).map_err(|source| ProbeError::Cgroup2Root {
            path: cgroup2_root.clone(),
            source,
        })?;
        let page = u32::try_from(rustix::param::page_size()).unwrap_or(4096);
        let bytes = options.ring_buffer_bytes;
        if bytes < page || !bytes.is_power_of_two() {
            return Err(ProbeError::RingBufferSize { bytes, page });
        }
        // only the syscall tracepoints need tracefs
        let tracefs_mounted = if options.opens {
            ensure_tracefs()?
        } else {
            false
        };
        let ovl = overlay_layout(&options.btf)?.unwrap_or(btf::OvlLayout {
            vfs_inode: 0,
            upper_dentry: 0,
        });

        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("events", bytes)
            .override_global("ovl_vfs_inode_offset", &ovl.vfs_inode, true)
            .override_global("ovl_upperdentry_offset", &ovl.upper_dentry, true)
            .override_global("report_unwatched", &u32::from(options.unwatched), true)
            .load(OBJECT)
            .map_err(|source| ProbeError::Object { source })?;

        let exec: &mut BtfTracePoint = program(&mut ebpf, "handle_exec")?;
        exec.load("sched_process_exec", &btf)
            .map_err(|e| load_error("handle_exec", e))?;
        exec.attach().map_err(|source| ProbeError::Attach {
            program: "handle_exec",
            target: "tp_btf/sched_process_exec".to_owned(),
            source,
        })?;

        let mut open_programs = Vec::new();
        let open_tracepoints: &[(&str, &str)] = if options.opens {
            &OPEN_TRACEPOINTS
        } else {
            &[]
        };
        for &(name, tracepoint) in open_tracepoints {
            // open(2) and creat(2) are not on every architecture (arm64 has only openat),
            // openat2 since 5.6
            if !tracefs_has_event(tracepoint) {
                tracing::debug!(tracepoint, "no such syscall tracepoint on this kernel");
                continue;
            }
            let p: &mut TracePoint = program(&mut ebpf, name)?;
            p.load().map_err(|e| load_error(name, e))?;
            p.attach("syscalls", tracepoint)
                .map_err(|source| ProbeError::Attach {
                    program: name,
                    target: format!("tracepoint syscalls/{tracepoint}"),
                    source,
                })?;
            open_programs.push(tracepoint);
        }
        // the exits report the opens whose path was not yet readable at the entry (a page not
        // faulted in yet): one program on each attached call's exit
        if !open_programs.is_empty() {
            let exit: &mut TracePoint = program(&mut ebpf, "handle_open_exit")?;
            exit.load().map_err(|e| load_error("handle_open_exit", e))?;
            for enter in &open_programs {
                let tracepoint = enter.replacen("sys_enter_", "sys_exit_", 1);
                exit.attach("syscalls", &tracepoint)
                    .map_err(|source| ProbeError::Attach {
                        program: "handle_open_exit",
                        target: format!("tracepoint syscalls/{tracepoint}"),
                        source,
                    })?;
            }
        }

        for name in [
            "connect4", "connect6", "sendmsg4", "sendmsg6", "bind4", "bind6",
        ] {
            let p: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            p.load().map_err(|e| load_error(name, e))?;
            // a BPF link (what aya makes on 5.7+) is always attached as one of many
            // (BPF_F_ALLOW_MULTI), beside other tools' programs and other berth instances';
            // the kernel refuses any attach flag on a link, so "Single" (no flag) it is
            p.attach(&cgroup_root, CgroupAttachMode::Single)
                .map_err(|source| ProbeError::Attach {
                    program: name,
                    target: format!("cgroup {}", cgroup2_root.display()),
                    source,
                })?;
        }

        let ring = RingBuf::try_from(take_map(&mut ebpf, "events")?).map_err(|source| {
            ProbeError::MapRead {
                map: "events",
                source,
            }
        })?;
        let watched = HashMap::try_from(take_map(&mut ebpf, "watched")?).map_err(|source| {
            ProbeError::MapRead {
                map: "watched",
                source,
            }
        })?;
        let policies = HashMap::try_from(take_map(&mut ebpf, "policies")?).map_err(|source| {
            ProbeError::MapRead {
                map: "policies",
                source,
            }
        })?;
        let ignored = HashMap::try_from(take_map(&mut ebpf, "ignored")?).map_err(|source| {
            ProbeError::MapRead {
                map: "ignored",
                source,
            }
        })?;
        let drops = PerCpuArray::try_from(take_map(&mut ebpf, "drops")?).map_err(|source| {
            ProbeError::MapRead {
                map: "drops",
                source,
            }
        })?;
        tracing::debug!(
            cgroup2_root = %cgroup2_root.display(),
            ring_buffer_bytes = bytes,
            ?open_programs,
            "eBPF probes attached"
        );
        let ebpf = Arc::new(ebpf);
        Ok(Probes {
            control: ProbeControl {
                _ebpf: Arc::clone(&ebpf),
                watched,
                policies,
                ignored,
            },
            events: EventReader {
                _ebpf: ebpf,
                ring,
                drops,
                counters: ProbeCounters::default(),
                write_prefixes: options.write_prefixes,
                drops_read: None,
            },
            cgroup2_root,
            tracefs_mounted,
            open_programs,
        })
    }

    /// The cgroup2 hierarchy's root the connect programs are attached to (where a container's
    /// cgroup, and a test's, must be for its events to be told apart).
    pub fn cgroup2_root(&self) -> &Path {
        &self.cgroup2_root
    }

    /// Whether [`Probes::load`] mounted tracefs (it was not mounted).
    pub fn mounted_tracefs(&self) -> bool {
        self.tracefs_mounted
    }

    /// The syscall tracepoints the open-for-write probe is attached to.
    pub fn open_tracepoints(&self) -> &[&'static str] {
        &self.open_programs
    }

    /// Report the events of the cgroup with this id (see [`cgroup_id`]).
    pub fn watch_cgroup(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.control.watch_cgroup(cgroup_id)
    }

    /// Stop reporting a cgroup's events (no error when it was not watched).
    pub fn unwatch_cgroup(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.control.unwatch_cgroup(cgroup_id)
    }

    /// See [`ProbeControl::ignore_cgroup`].
    pub fn ignore_cgroup(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.control.ignore_cgroup(cgroup_id)
    }

    /// See [`ProbeControl::set_connect_policy`].
    pub fn set_connect_policy(
        &mut self,
        cgroup_id: u64,
        enforce: bool,
        allow: &[AllowedDestination],
    ) -> Result<(), ProbeError> {
        self.control.set_connect_policy(cgroup_id, enforce, allow)
    }

    /// Remove a cgroup's connect policy (its connects are no longer checked).
    pub fn clear_connect_policy(&mut self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.control.clear_connect_policy(cgroup_id)
    }

    /// What was counted since the probes were loaded.
    pub fn counters(&self) -> ProbeCounters {
        self.events.counters()
    }

    /// See [`EventReader::next_events`].
    pub fn next_events(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>, ProbeError> {
        self.events.next_events(timeout)
    }

    /// The two halves, for a reader thread blocked in [`EventReader::next_events`] while
    /// another adds and removes cgroups as containers come and go. The probes stay attached
    /// until both are dropped.
    pub fn split(self) -> (ProbeControl, EventReader) {
        (self.control, self.events)
    }
}

/// `struct ovl_inode`'s layout: from vmlinux's BTF when overlayfs is built in, else from the
/// overlay module's split BTF beside it (the module loaded first if it is not: `fsopen(2)` asks
/// the kernel for the filesystem type, which loads its module as a mount would, and mounts
/// nothing). `None`: this kernel has no overlayfs.
fn overlay_layout(vmlinux_path: &Path) -> Result<Option<btf::OvlLayout>, ProbeError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ProbeError::ReadHost {
            path: path.to_owned(),
            source,
        })
    };
    let parse_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ProbeError::OverlayBtf { path, source }
    };
    let vmlinux = read(vmlinux_path)?;
    if let Some(layout) = btf::ovl_layout(&vmlinux, None).map_err(parse_error(vmlinux_path))? {
        return Ok(Some(layout));
    }
    let module = vmlinux_path.with_file_name("overlay");
    if !module.exists() {
        match rustix::mount::fsopen("overlay", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC) {
            Ok(_fd) => tracing::info!("loaded the overlay module to read its BTF"),
            Err(rustix::io::Errno::NODEV) => {
                tracing::info!("no overlayfs on this kernel: every exec is NotOverlay");
                return Ok(None);
            }
            Err(e) => tracing::debug!(error = %e, "fsopen(\"overlay\")"),
        }
    }
    if !module.exists() {
        return Err(ProbeError::NoOverlayLayout { module });
    }
    let split = read(&module)?;
    btf::ovl_layout(&split, Some(&vmlinux))
        .map_err(parse_error(&module))?
        .map(Some)
        .ok_or(ProbeError::NoOverlayLayout { module })
}

fn tracefs_has_event(tracepoint: &str) -> bool {
    [TRACEFS, TRACEFS_DEBUGFS].iter().any(|root| {
        Path::new(root)
            .join("events/syscalls")
            .join(tracepoint)
            .is_dir()
    })
}

/// A cgroup's id as the probes see it (`bpf_get_current_cgroup_id()`): the inode number of its
/// directory in the cgroup2 hierarchy.
pub fn cgroup_id(dir: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(dir)?.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_log_tail_keeps_the_last_lines() {
        let log = "0: R1=ctx()\n1: (85) call bpf_ringbuf_reserve#131\n\n2: R0=ringbuf_mem_or_null\ninvalid mem access 'ringbuf_mem_or_null'\nprocessed 3 insns\n";
        assert_eq!(
            log_tail(log, 2),
            "invalid mem access 'ringbuf_mem_or_null'\nprocessed 3 insns"
        );
        assert_eq!(log_tail("", 5), "");
    }
}
