//! What `berth run` and `berth create` do between an image in the local store and a
//! container the engine can create: the container's writable snapshot prepared and mounted,
//! its user namespace's host ids allocated, its networks attached (CNI, pasta or another
//! container's), its named and anonymous volumes bound, its `/etc` files written, and its
//! runtime config built from the image's config and the flags ([`RunRequest`]). Everything
//! set up is recorded in [`Attachments`] as soon as it exists and undone on any failure, here
//! or (through the record) when the container is removed.
//!
//! The caller (the CLI) parses flags, finds and pulls the image and unpacks its layers
//! ([`ImageInput`]), and prints the warnings [`Prepared`] carries.

mod error;
mod net;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use berth_fsutil::FileLock;
use berth_image::idmap::{IdAllocator, IdmapMode};
use berth_image::rootfs::prepare as prepare_snapshot;
use berth_image::snapshot::mount_all;
use berth_image::spec::{IdRange, ImageConfig, Network, RunOptions, Userns, build_spec};

use error::{Context, bail};
pub use error::{Result, SetupError};
pub use net::default_network;
use net::{
    NetworkSlot, annotations, attach_networks, bind_etc_files, etc_files, link_names,
    shared_network,
};

use crate::{Attachments, CreateOptions, Engine, HostIds, SnapshotRef};

/// The ids each container's user namespace maps (podman's `--userns=auto` default size).
pub const HOST_IDS_PER_CONTAINER: u32 = 65536;

/// Where `--init`'s binary is mounted inside the container (docker's path).
pub const INIT_DEST: &str = "/sbin/docker-init";

/// `berth run`'s flags as the set-up needs them (docker's meanings), and the host's
/// context the CLI knows (rootless or not, its search path and environment, the
/// directories of the data directory's networks).
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub name: Option<String>,
    pub rm: bool,
    pub env: Vec<String>,
    pub env_file: Vec<PathBuf>,
    pub volume: Vec<String>,
    pub tmpfs: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub hostname: Option<String>,
    pub read_only: bool,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub ip: Option<std::net::IpAddr>,
    /// `--ip6`: the IPv6 address on a dual-stack first network.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--mac-address`, as given (checked by [`crate::network::parse_mac`]).
    pub mac_address: Option<String>,
    /// `--network-alias`: more names on user-defined networks.
    pub network_alias: Vec<String>,
    pub network_bandwidth: Option<String>,
    pub annotation: Vec<String>,
    pub add_host: Vec<String>,
    pub dns: Vec<std::net::IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    /// `--init`: the init binary found on the host, run as the container's PID 1.
    pub init: Option<PathBuf>,
    pub resources: berth_image::spec::ResourceFlags,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// `auto` or `host`.
    pub userns: String,
    pub privileged: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub runtime: Option<String>,
    pub cgroup_parent: Option<String>,
    /// `--network`, when given.
    pub network: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub args: Vec<String>,
    /// An ordinary user's berth (inside its rootless user namespace).
    pub rootless: bool,
    /// Where helpers (pasta) are looked for.
    pub search_path: Vec<PathBuf>,
    /// The caller's environment, for `-e NAME` without a value.
    pub host_env: std::collections::BTreeMap<String, String>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The data directory's networks, plugins and CNI state.
    pub network_dirs: crate::network::NetworkDirs,
}

impl RunRequest {
    /// `--network`, or the default when none was given ([`default_network`]).
    pub fn network(&self) -> &str {
        self.network
            .as_deref()
            .unwrap_or_else(|| default_network(self.rootless))
    }
}

/// The image a container is made of, its layers already unpacked into `snapshots`.
#[derive(Debug)]
pub struct ImageInput<'a> {
    /// Its name, as the store records it.
    pub name: &'a str,
    pub config: &'a ImageConfig,
    /// The chain ID of its top layer (`None`: no layers).
    pub top: Option<&'a berth_oci::Digest>,
    pub snapshots: &'a berth_image::snapshot::SnapshotStore,
}

/// Create options with everything they need set up, the host-id lock to hold until the
/// container is created (so that another `run` cannot take the same host ids), and the
/// warnings for the caller to print (what the flags opened up).
#[derive(Debug)]
pub struct Prepared {
    pub opts: CreateOptions,
    pub host_ids_lock: FileLock,
    pub warnings: Vec<String>,
}

/// A failed set-up, after what it had set up was undone; `cleanup` is the failure of that
/// undoing, if it failed (for the caller to warn of).
#[derive(Debug)]
pub struct Failed {
    pub error: SetupError,
    pub cleanup: Option<Box<crate::EngineError>>,
}

impl From<SetupError> for Failed {
    fn from(error: SetupError) -> Failed {
        Failed {
            error,
            cleanup: None,
        }
    }
}

/// Set up container `id` (else a new id) of `image` for `args`.
pub fn prepare(
    engine: &Engine,
    args: &RunRequest,
    image: &ImageInput<'_>,
    id: Option<&str>,
) -> std::result::Result<Prepared, Failed> {
    let id = match id {
        Some(id) => id.to_owned(),
        None => crate::new_id().map_err(SetupError::from)?,
    };
    let dir = &args.data_dir;
    let snap = image.snapshots;
    let mut attachments = Attachments::default();
    let ids_lock = lock_host_ids(dir)?;
    // every container on disk, its record readable or not
    let live: HashSet<String> = engine
        .ids()
        .map_err(SetupError::from)?
        .into_iter()
        .collect();
    collect_killed_runs(dir, &args.network_dirs, snap, &live)?;
    let img = Image {
        name: image.name,
        config: image.config,
        top: image.top,
    };
    let new = NewContainer {
        id: &id,
        dir,
        live: &live,
    };
    let mut warnings = Vec::new();
    let set_up = set_up(
        engine,
        args,
        snap,
        &img,
        &new,
        &mut attachments,
        &mut warnings,
    );
    match set_up.map(|mut opts| {
        if let Some(init) = &args.init {
            let mut mounts = opts.spec.mounts.take().unwrap_or_default();
            apply_init(&mut opts.spec, init, &mut mounts);
            opts.spec.mounts = Some(mounts);
        }
        opts
    }) {
        Ok(opts) => Ok(Prepared {
            opts,
            host_ids_lock: ids_lock,
            warnings,
        }),
        Err(error) => Err(Failed {
            error,
            cleanup: attachments.teardown().err().map(Box::new),
        }),
    }
}

/// Make `init` the process's PID 1: bound read-only at [`INIT_DEST`], the command after
/// `--` as its arguments.
pub fn apply_init(
    spec: &mut berth_runtime_spec::Spec,
    init: &Path,
    mounts: &mut Vec<berth_runtime_spec::Mount>,
) {
    if let Some(p) = spec.process.as_mut() {
        let mut args = vec![INIT_DEST.to_owned(), "--".to_owned()];
        args.extend(p.args.take().unwrap_or_default());
        p.args = Some(args);
    }
    mounts.retain(|m| m.destination != Path::new(INIT_DEST));
    mounts.push(berth_runtime_spec::Mount {
        destination: PathBuf::from(INIT_DEST),
        typ: Some("bind".into()),
        source: Some(init.to_owned()),
        options: Some(
            ["bind", "rprivate", "ro", "nosuid", "nodev"]
                .map(String::from)
                .to_vec(),
        ),
        ..Default::default()
    });
}

/// The container being set up: its id, the data directory, and the ids of every record
/// (read once, under the host-id lock).
struct NewContainer<'a> {
    id: &'a str,
    dir: &'a Path,
    live: &'a HashSet<String>,
}

/// The image a container is made of.
struct Image<'a> {
    name: &'a str,
    config: &'a ImageConfig,
    top: Option<&'a berth_oci::Digest>,
}

/// The container's snapshot, mount, host ids, volumes and runtime config, each recorded in
/// `attachments` as soon as it exists (for the caller to undo on failure).
fn set_up(
    engine: &Engine,
    args: &RunRequest,
    snap: &berth_image::snapshot::SnapshotStore,
    image: &Image<'_>,
    new: &NewContainer<'_>,
    attachments: &mut Attachments,
    warnings: &mut Vec<String>,
) -> Result<CreateOptions> {
    let (id, dir, live) = (new.id, new.dir, new.live);
    let name = image.name;
    // the mount point first: it marks a set-up in progress, for `collect_killed_runs`
    let rootfs = dir.join("rootfs").join(id);
    create_mount_point(&rootfs)?;
    attachments.rootfs_mount = Some(rootfs.clone());
    // the user namespace's host ids first: the snapshot is prepared for them
    if args.rootless
        && args.cgroup_parent.is_none()
        && let Some(flag) = args.resources.first_given()
    {
        // crun would drop it silently on a cgroup v1 host; berth says so instead
        bail!(
            "{flag} needs a cgroup, and rootless berth has none for the container: run as root, \
             or delegate a cgroup v2 subtree to your user and pass it as --cgroup-parent"
        );
    }
    // (rootless: the container shares berth's own user namespace, see `rootless`)
    let host_ids = match args.userns.as_str() {
        _ if args.rootless => None,
        "host" => None,
        _ => Some(allocate_host_ids(dir, id, live)?),
    };
    attachments.host_ids = host_ids.map(|r| HostIds {
        host_start: r.host_start,
        size: r.size,
        allocator: Some((dir.to_owned(), id.to_owned())),
    });
    // the networks' CNI ADD (plugin processes, most of a bridged set-up's time) on a thread
    // of its own while the snapshot is prepared and mounted: the two share nothing but the
    // host ids, allocated above
    let slot = NetworkSlot::default();
    let (mounted, address) = std::thread::scope(|s| {
        let net = s.spawn(|| attach_networks(engine, args, image.config, id, host_ids, &slot));
        let mounted = mount_rootfs(args, snap, image, id, host_ids, &rootfs, attachments);
        let address = net.join().unwrap_or_else(|_| {
            Err(SetupError::step(
                "attaching the container to its networks panicked".to_owned(),
                std::io::Error::other("panic"),
            ))
        });
        (mounted, address)
    });
    attachments.network = slot.into_inner();
    mounted?;
    let address = address?;
    let shared = shared_network(engine, args)?;
    let mut opts = run_options(args, name, id, host_ids)?;
    if let Some(other) = &shared {
        opts.network = berth_image::spec::Network::Path(other.netns.clone());
        if let Ok(h) = std::fs::read_to_string(other.etc.join("hostname")) {
            opts.hostname = Some(h.trim().to_owned());
        }
    }
    if let Some(att) = &attachments.network {
        opts.network = berth_image::spec::Network::Path(att.netns.clone());
        // made for this container, owned by the user namespace it runs in (the pinned one
        // of its range, or rootless berth's own, which it shares)
        opts.network_owned = true;
    }
    let peers = link_names(engine, dir, args.name.as_deref(), attachments);
    let (mut spec, notes) = build_spec(image.config, &rootfs, &opts)?;
    let shaped_inside = attachments
        .network
        .as_ref()
        .is_some_and(|n| n.pasta.is_some() && n.bandwidth.is_some())
        || shared.as_ref().is_some_and(|o| o.shaped_inside);
    if shaped_inside && crate::shaping::lifts_shaping(&spec) {
        bail!(
            "--network-bandwidth (or a kubernetes.io bandwidth annotation, or --network \
             container: of a capped container) and CAP_NET_ADMIN (--privileged or --cap-add): \
             a rootless container's traffic is shaped in its own network namespace, where that \
             capability could remove the limit; drop one of them"
        );
    }
    let annotations = annotations(args)?;
    if !annotations.is_empty() {
        spec.annotations
            .get_or_insert_with(Default::default)
            .extend(annotations);
    }
    if let Some(userns) = attachments.network.as_ref().and_then(|n| n.userns.clone())
        && let Some(linux) = spec.linux.as_mut()
    {
        // the user namespace that owns the network namespace, joined by path (its map is
        // the one the config states)
        for ns in linux.namespaces.iter_mut().flatten() {
            if ns.typ == berth_runtime_spec::LinuxNamespaceType::User {
                ns.path = Some(userns.clone());
            }
        }
    }
    if let Some(p) = &spec.process {
        ensure_workdir(&rootfs, &p.cwd)?;
    }
    // (printed by the caller: libraries never print)
    warnings.extend(notes.opened.iter().cloned());
    warnings.extend(notes.ignored_labels.iter().map(|l| {
        format!("the image's label {l} is not passed to the runtime as an annotation: runtimes act on it")
    }));
    let mut mounts = spec.mounts.take().unwrap_or_default();
    named_volumes(
        &notes.named_volumes,
        &rootfs,
        new,
        host_ids,
        &mut mounts,
        attachments,
    )?;
    let volumes = dir.join("volumes").join(id);
    for (i, dest) in notes.anonymous_volumes.iter().enumerate() {
        let src = volumes.join(i.to_string());
        if i == 0 {
            attachments.volumes.push(volumes.clone());
        }
        std::fs::create_dir_all(&src)
            .with_context(|| format!("failed to create the volume {}", src.display()))?;
        if let Some(r) = host_ids {
            // the container's root owns its anonymous volumes (docker's userns-remap does so)
            let owner = Some(rustix::fs::Uid::from_raw(r.host_start));
            let group = Some(rustix::fs::Gid::from_raw(r.host_start));
            rustix::fs::chown(&src, owner, group).with_context(|| {
                format!(
                    "failed to give the volume {} to the container's root",
                    src.display()
                )
            })?;
        }
        // docker's copy-up: the image's content at that path, owners as the container sees them
        berth_image::volume::seed(&rootfs, dest, &src)?;
        mounts.push(berth_runtime_spec::Mount {
            destination: dest.clone(),
            typ: Some("bind".into()),
            source: Some(src),
            // nodev: the seed may hold the image's device nodes, now on a host filesystem
            options: Some(vec![
                "rbind".into(),
                "rprivate".into(),
                "nodev".into(),
                "rw".into(),
            ]),
            ..Default::default()
        });
    }
    match &shared {
        // the other container's files, as docker shares them with its network
        Some(other) => bind_etc_files(&other.etc, &mut mounts),
        None => etc_files(
            args,
            &spec,
            &dir.join("etc").join(id),
            host_ids,
            (address, peers),
            &mut mounts,
            attachments,
        )?,
    }
    spec.mounts = Some(mounts);
    // rootless without --cgroup-parent: no cgroupsPath, so that the runtime's rootless
    // cgroup manager runs the container without a cgroup when the user has none to give
    let parent = match &args.cgroup_parent {
        Some(p) => Some(p.trim_end_matches('/')),
        None if args.rootless => None,
        None => Some("/berth"),
    };
    if let Some(parent) = parent {
        if !parent.is_empty()
            && (!parent.starts_with('/') || parent.split('/').any(|c| c == ".." || c == "."))
        {
            bail!(
                "--cgroup-parent {parent}: give an absolute cgroup path without . or .. (such as /berth)"
            );
        }
        if let Some(linux) = spec.linux.as_mut() {
            linux.cgroups_path = Some(PathBuf::from(format!("{parent}/{id}")));
        }
    }
    Ok(CreateOptions {
        name: args.name.clone(),
        image: name.to_owned(),
        spec,
        rootfs,
        auto_remove: args.rm,
        runtime: args.runtime.clone(),
        stop_signal: Some(notes.stop_signal),
        stop_timeout: args.stop_timeout,
        log_max_size: None,
        terminal: args.tty,
        stdin: args.interactive,
        id: Some(id.to_owned()),
        attachments: attachments.clone(),
        sbom: None,
    })
}

/// Bind each named volume (`-v NAME:DST`), made when missing and filled from the image
/// when empty, as docker does. In a user namespace with a range the volume is bound
/// id-mapped for it (`DIR/volume-mounts/ID/N`, recorded in `attachments.mounts`): it keeps
/// the ids containers see, so containers of different ranges share it.
fn named_volumes(
    named: &[berth_image::spec::NamedVolume],
    rootfs: &Path,
    new: &NewContainer<'_>,
    host_ids: Option<IdRange>,
    mounts: &mut Vec<berth_runtime_spec::Mount>,
    attachments: &mut Attachments,
) -> Result<()> {
    let store = crate::volumes::Volumes::new(new.dir);
    for (i, v) in named.iter().enumerate() {
        let (volume, _) = store
            .create(&v.name, &Default::default())
            .with_context(|| format!("failed to create volume {}", v.name))?;
        attachments.named_volumes.push(v.name.clone());
        let source = match host_ids {
            Some(range) => {
                let at =
                    crate::attachments::SetUpDirs::mounts_in(new.dir, new.id).join(i.to_string());
                std::fs::create_dir_all(&at)
                    .with_context(|| format!("failed to create {}", at.display()))?;
                attachments.mounts.push(at.clone());
                berth_image::idmap::bind_idmapped(&volume.mountpoint, &at, range).with_context(
                    || {
                        format!(
                            "failed to bind volume {} id-mapped for the container",
                            v.name
                        )
                    },
                )?;
                at
            }
            None => volume.mountpoint.clone(),
        };
        if crate::volumes::is_empty(&volume.mountpoint)? {
            // written to the volume itself, owners as the container sees them
            let unshift = host_ids.map_or(0, |r| r.host_start);
            berth_image::volume::seed_unshifted(
                rootfs,
                &v.destination,
                &volume.mountpoint,
                unshift,
            )
            .with_context(|| format!("failed to fill volume {} from the image", v.name))?;
        }
        // nosuid, nodev: a volume is shared by containers of different ranges (and outlives
        // them); what one container's root left in it (a setuid-root binary, a file with
        // capabilities, a device node the image seeded) gives another none of its powers
        let mut options: Vec<String> = ["rbind", "rprivate", "nosuid", "nodev"]
            .map(String::from)
            .into();
        options.push(if v.read_only { "ro" } else { "rw" }.to_owned());
        mounts.push(berth_runtime_spec::Mount {
            destination: v.destination.clone(),
            typ: Some("bind".into()),
            source: Some(source),
            options: Some(options),
            ..Default::default()
        });
    }
    Ok(())
}

/// Prepare the container's writable snapshot (shifted into `host_ids`' range when there is
/// one) and mount it on `rootfs`, each recorded in `attachments` as it exists.
fn mount_rootfs(
    args: &RunRequest,
    snap: &berth_image::snapshot::SnapshotStore,
    image: &Image<'_>,
    id: &str,
    host_ids: Option<IdRange>,
    rootfs: &Path,
    attachments: &mut Attachments,
) -> Result<()> {
    let name = image.name;
    let mount_failed = || {
        format!(
            "failed to mount the root filesystem on {}",
            rootfs.display()
        )
    };
    let snapshot_ref = SnapshotRef {
        root: snap.root().to_owned(),
        driver: snap.driver().name().to_owned(),
        key: id.to_owned(),
    };
    match host_ids {
        Some(range) => {
            // the image's layers shown shifted into the range (id-mapped lower layers, or a
            // chowned copy per range where the kernel cannot): nothing copied per container
            let mut ranged =
                berth_image::idmap::prepare(snap, id, image.top, range, IdmapMode::Auto)
                    .with_context(|| format!("failed to prepare a snapshot of {name}"))?;
            attachments.snapshot = Some(snapshot_ref);
            reachable_by(rootfs, range)?;
            let volatile = args.rm && make_volatile(&mut ranged.mounts);
            if let Err(e) = berth_image::idmap::mount(&ranged, rootfs) {
                if !volatile {
                    return Err(e).with_context(mount_failed);
                }
                // a kernel before 5.10 has no `volatile`
                strip_volatile(&mut ranged.mounts);
                berth_image::idmap::mount(&ranged, rootfs).with_context(mount_failed)?;
            }
        }
        None => {
            let mut mounts = prepare_snapshot(snap, id, image.top)
                .with_context(|| format!("failed to prepare a snapshot of {name}"))?;
            attachments.snapshot = Some(snapshot_ref);
            let volatile = args.rm && make_volatile(&mut mounts);
            if let Err(e) = mount_all(&mounts, rootfs) {
                if !volatile {
                    return Err(e).with_context(mount_failed);
                }
                strip_volatile(&mut mounts);
                mount_all(&mounts, rootfs).with_context(mount_failed)?;
            }
        }
    }
    Ok(())
}

/// `--rm`: the container's writable layer is deleted when it exits, and never mounted again
/// (after a crash too it is only removed), so nothing written to it has to reach the disk.
/// overlayfs's `volatile` option (Linux 5.10) skips its syncs, above all the sync of the
/// whole upper filesystem when the overlay is unmounted, which waits for every other
/// writer's dirty data on that filesystem (podman mounts its `--rm` containers so). Whether
/// an overlay mount was marked.
fn make_volatile(mounts: &mut [berth_image::snapshot::Mount]) -> bool {
    let mut any = false;
    for m in mounts {
        if m.kind == "overlay" && m.option("upperdir").is_some() {
            if !m.options.iter().any(|o| o == "volatile") {
                m.options.push("volatile".to_owned());
            }
            any = true;
        }
    }
    any
}

fn strip_volatile(mounts: &mut [berth_image::snapshot::Mount]) {
    for m in mounts {
        m.options.retain(|o| o != "volatile");
    }
}

pub fn lock_host_ids(dir: &Path) -> Result<FileLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join("host-ids.lock");
    FileLock::exclusive(&path).with_context(|| format!("failed to lock {}", path.display()))
}

/// Undo what `run`s killed before their record existed left behind — the root filesystem's
/// mount, snapshot, volumes, `/etc` files and host ids (`SetUpDirs::collect_unrecorded`),
/// and their networks (`network::collect_orphans`) — given the ids of every record. The
/// caller holds [`lock_host_ids`], which every `run` holds from its set-up to its record.
pub fn collect_killed_runs(
    dir: &Path,
    network_dirs: &crate::network::NetworkDirs,
    snap: &berth_image::snapshot::SnapshotStore,
    live: &HashSet<String>,
) -> Result<usize> {
    let set_up = crate::attachments::SetUpDirs {
        dir: dir.to_owned(),
        snapshots: (snap.root().to_owned(), snap.driver().name().to_owned()),
    };
    let mut cleaned = set_up
        .collect_unrecorded(&|c| live.contains(c))
        .context("failed to clean up after runs killed during set-up")?;
    if dir.join("netns").is_dir() {
        let dirs = network_dirs.clone();
        for id in crate::network::collect_orphans(&dirs, &|c| live.contains(c))
            .context("failed to clean up the networks of runs killed during set-up")?
        {
            if !cleaned.contains(&id) {
                cleaned.push(id);
            }
        }
    }
    Ok(cleaned.len())
}

fn create_mount_point(rootfs: &Path) -> Result<()> {
    std::fs::create_dir_all(rootfs)
        .with_context(|| format!("failed to create {}", rootfs.display()))
}

/// The runtime mounts the root filesystem as the container's root, a host id of `range`:
/// every directory above it must let others search it. berth's own directories (the data
/// directory and its `rootfs/`) are made so (0711, as docker's `--userns-remap` root); one
/// above them that is not is an error saying which, instead of the runtime's bare EACCES.
fn reachable_by(rootfs: &Path, range: IdRange) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let berth_dirs = rootfs.parent().and_then(|r| Some((r, r.parent()?)));
    for dir in rootfs.ancestors().skip(1) {
        let meta = std::fs::metadata(dir)
            .with_context(|| format!("failed to read the mode of {}", dir.display()))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o001 != 0 {
            continue;
        }
        if berth_dirs.is_some_and(|(r, d)| dir == r || dir == d) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711))
                .with_context(|| format!("failed to make {} searchable", dir.display()))?;
            continue;
        }
        bail!(
            "the container's root filesystem {} is out of reach of its user namespace's root \
             (host uid {}): {} has mode {mode:o} and owner {}, without search permission for \
             others\nhint: `chmod o+x {}`, choose a --data directory others can traverse, or \
             run with --userns=host",
            rootfs.display(),
            range.host_start,
            dir.display(),
            meta.uid(),
            dir.display()
        );
    }
    Ok(())
}

/// The host ids for a new container's user namespace: a free range of
/// [`HOST_IDS_PER_CONTAINER`] ids that `/etc/subuid` and `/etc/subgid` both grant to root
/// (else to `containers`, as podman), none shared with another container
/// ([`IdAllocator`], its state in the data directory). Ranges of containers whose records are
/// gone (removed, or never created by a killed `run`) are given back first; the caller holds
/// [`lock_host_ids`] until the new container's record exists, so a range being set up is
/// never taken for a missing one.
fn allocate_host_ids(dir: &Path, id: &str, live: &HashSet<String>) -> Result<IdRange> {
    let alloc = IdAllocator::new(dir);
    alloc.release_missing(|owner| live.contains(owner))?;
    Ok(alloc.allocate(id, HOST_IDS_PER_CONTAINER)?)
}

fn run_options(
    args: &RunRequest,
    image: &str,
    id: &str,
    id_range: Option<IdRange>,
) -> Result<RunOptions> {
    let network = match args.network() {
        "none" => Network::None,
        "host" => Network::Host,
        // (joined by path once the container is found (`shared_network`) or the networks
        // attached (`attach_networks`))
        n if n.starts_with("container:") => Network::None,
        n if !n.starts_with("ns:") => Network::None,
        n => match n.strip_prefix("ns:") {
            Some(p) if p.starts_with('/') => Network::Path(PathBuf::from(p)),
            _ => bail!("--network {n}: give the namespace's absolute path (ns:/run/netns/NAME)"),
        },
    };
    Ok(RunOptions {
        image: image.to_owned(),
        args: args.args.clone(),
        entrypoint: args.entrypoint.clone(),
        env: args.env.clone(),
        host_env: args.host_env.clone(),
        env_files: args.env_file.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: Some(
            args.hostname
                .clone()
                .unwrap_or_else(|| id.get(..12).unwrap_or(id).to_owned()),
        ),
        tty: args.tty,
        read_only: args.read_only,
        tmpfs: args.tmpfs.clone(),
        volumes: args.volume.clone(),
        resources: args.resources.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        security_opt: args.security_opt.clone(),
        privileged: args.privileged,
        init: args.init.is_some(),
        stop_signal: args.stop_signal.clone(),
        network,
        // (set once the networks are attached)
        network_owned: false,
        userns: if args.userns == "host" {
            Userns::Host
        } else {
            Userns::Auto
        },
        id_range,
        rootless: args.rootless,
    })
}

/// Create the working directory inside the container's root filesystem when it is missing,
/// as docker does (runc would, other runtimes refuse): each component made with `mkdirat`
/// under its parent opened with in-root resolution, so a symlink in the image cannot point
/// it outside.
fn ensure_workdir(rootfs: &Path, cwd: &Path) -> Result<()> {
    use rustix::fs::{Mode, mkdirat};
    use std::path::Component;
    let fail = |e: std::io::Error| {
        SetupError::step(
            format!(
                "failed to create the working directory {} in the container",
                cwd.display()
            ),
            e,
        )
    };
    let root = std::fs::File::open(rootfs).map_err(fail)?;
    let mut rel = PathBuf::new();
    for c in cwd.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        let parent = berth_fsutil::open_dir_in_root_at(&root, rel.as_os_str()).map_err(fail)?;
        match mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fail(e.into())),
        }
        rel.push(name);
    }
    Ok(())
}
