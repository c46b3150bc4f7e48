//! What `run` and `create` do before the engine: find the image (pulling it per `--pull`),
//! make its layers snapshots, prepare the container's writable snapshot and mount it,
//! allocate its user namespace's host ids, and build its runtime config from the image's
//! config and the flags. Everything set up is recorded in [`Attachments`] and undone on any
//! failure, here or (through the record) when the container is removed.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_engine::{Attachments, CreateOptions, Engine, HostIds, SnapshotRef};
use berth_fsutil::FileLock;
use berth_image::idmap::{IdAllocator, IdmapMode};
use berth_image::rootfs::{EnsureOptions, ensure_layers, prepare, resolve};
use berth_image::snapshot::mount_all;
use berth_image::spec::{IdRange, ImageConfig, Network, RunOptions, Userns, build_spec};

use super::run::RunArgs;

/// The ids each container's user namespace maps (podman's `--userns=auto` default size).
pub const HOST_IDS_PER_CONTAINER: u32 = 65536;

/// The create options for `args`, with everything they need set up; the returned lock (held
/// until the container is created) keeps another `run` from taking the same host ids.
/// `id`: the container's id when the caller chose it (a monitor already waits for it);
/// else a new one.
pub fn create_options(
    engine: &Engine,
    args: &RunArgs,
    id: Option<&str>,
) -> anyhow::Result<Prepared> {
    // a bad name fails before anything is pulled, made or mounted
    if let Some(n) = args
        .name
        .as_deref()
        .filter(|n| !berth_engine::record::valid_name(n))
    {
        return Err(berth_engine::EngineError::InvalidName(n.to_owned()).into());
    }
    // found first: a missing init fails before anything is pulled or set up
    let init = if args.init || args.init_path.is_some() {
        let search = crate::dirs::search_path();
        Some(super::init::find(args.init_path.as_deref(), &search)?)
    } else {
        None
    };
    let data = args.data.image_data();
    let store = data.open()?;
    let reference = berth_oci::Reference::parse(&args.image)
        .with_context(|| format!("invalid image reference {:?}", args.image))?;
    let name = reference.to_string();
    let present = store.image(&name)?.is_some();
    let snap = data.snapshots()?;
    let pulling = args.pull == "always" || (args.pull == "missing" && !present);
    if pulling {
        pull(args, &store, &snap, &reference)?;
    } else if !present {
        anyhow::bail!(
            "no image {name} in the local store and --pull never\nhint: `berth pull {name}`, `berth load` or `berth import` it first"
        );
    }
    let record = store
        .image(&name)?
        .with_context(|| format!("image {name} vanished from the local store"))?;
    if !pulling {
        // A local image is held to the trust policy as a pulled one is, before it is unpacked.
        let client = args.registry.client()?;
        crate::commands::trust::gate::before_run(&client, &reference, &record, args.quiet)?;
    }
    let platform = match (&args.platform, &record.platform) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => berth_oci::Platform::parse(p)
            .with_context(|| format!("image {name} records an invalid platform {p:?}"))?,
        (None, None) => berth_oci::Platform::host(),
    };
    let layers = resolve(&store, &record.digest, &platform)
        .with_context(|| format!("failed to read image {name}"))?;
    let ensure = EnsureOptions {
        image_name: Some(name.clone()),
        ..EnsureOptions::default()
    };
    ensure_layers(&snap, &store, &layers, &ensure)
        .with_context(|| format!("failed to unpack image {name}"))?;
    let config = ImageConfig::parse(&store.read_blob(&layers.config)?)
        .with_context(|| format!("failed to read the config of image {name}"))?;

    let id = match id {
        Some(id) => id.to_owned(),
        None => berth_engine::new_id()?,
    };
    let dir = args.data.dir()?;
    let mut attachments = Attachments::default();
    let ids_lock = lock_host_ids(&dir)?;
    let live: HashSet<String> = engine.list(true)?.into_iter().map(|r| r.id).collect();
    collect_killed_runs(&dir, &snap, &live)?;
    let image = Image {
        name: &name,
        config: &config,
        top: layers.top(),
    };
    let new = NewContainer {
        id: &id,
        dir: &dir,
        live: &live,
    };
    let set_up = set_up(engine, args, &snap, &image, &new, &mut attachments);
    match set_up.map(|mut opts| {
        if let Some(init) = &init {
            let mut mounts = opts.spec.mounts.take().unwrap_or_default();
            super::init::apply(&mut opts.spec, init, &mut mounts);
            opts.spec.mounts = Some(mounts);
        }
        opts
    }) {
        Ok(opts) => Ok(Prepared {
            opts,
            host_ids_lock: ids_lock,
        }),
        Err(e) => {
            if let Err(t) = attachments.teardown() {
                let _ = writeln!(std::io::stderr().lock(), "warning: cleaning up: {t}");
            }
            Err(e)
        }
    }
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
    args: &RunArgs,
    snap: &berth_image::snapshot::SnapshotStore,
    image: &Image<'_>,
    new: &NewContainer<'_>,
    attachments: &mut Attachments,
) -> anyhow::Result<CreateOptions> {
    let (id, dir, live) = (new.id, new.dir, new.live);
    let name = image.name;
    // the mount point first: it marks a set-up in progress, for `collect_killed_runs`
    let rootfs = dir.join("rootfs").join(id);
    create_mount_point(&rootfs)?;
    attachments.rootfs_mount = Some(rootfs.clone());
    // the user namespace's host ids first: the snapshot is prepared for them
    if crate::rootless::active()
        && args.cgroup_parent.is_none()
        && let Some(flag) = limit_asked(args)
    {
        // crun would drop it silently on a cgroup v1 host; berth says so instead
        anyhow::bail!(
            "{flag} needs a cgroup, and rootless berth has none for the container: run as root, \
             or delegate a cgroup v2 subtree to your user and pass it as --cgroup-parent"
        );
    }
    // (rootless: the container shares berth's own user namespace, see `rootless`)
    let host_ids = match args.userns.as_str() {
        _ if crate::rootless::active() => None,
        "host" => None,
        _ => Some(allocate_host_ids(dir, id, live)?),
    };
    attachments.host_ids = host_ids.map(|r| HostIds {
        host_start: r.host_start,
        size: r.size,
        allocator: Some((dir.to_owned(), id.to_owned())),
    });
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
            reachable_by(&rootfs, range)?;
            let volatile = args.rm && make_volatile(&mut ranged.mounts);
            if let Err(e) = berth_image::idmap::mount(&ranged, &rootfs) {
                if !volatile {
                    return Err(e).with_context(mount_failed);
                }
                // a kernel before 5.10 has no `volatile`
                strip_volatile(&mut ranged.mounts);
                berth_image::idmap::mount(&ranged, &rootfs).with_context(mount_failed)?;
            }
        }
        None => {
            let mut mounts = prepare(snap, id, image.top)
                .with_context(|| format!("failed to prepare a snapshot of {name}"))?;
            attachments.snapshot = Some(snapshot_ref);
            let volatile = args.rm && make_volatile(&mut mounts);
            if let Err(e) = mount_all(&mounts, &rootfs) {
                if !volatile {
                    return Err(e).with_context(mount_failed);
                }
                strip_volatile(&mut mounts);
                mount_all(&mounts, &rootfs).with_context(mount_failed)?;
            }
        }
    }
    let shared = shared_network(engine, args)?;
    let mut opts = run_options(args, name, id, host_ids)?;
    if let Some(other) = &shared {
        opts.network = berth_image::spec::Network::Path(other.netns.clone());
        if let Ok(h) = std::fs::read_to_string(other.etc.join("hostname")) {
            opts.hostname = Some(h.trim().to_owned());
        }
    }
    let address = attach_networks(
        engine,
        args,
        image.config,
        dir,
        id,
        host_ids,
        &mut opts,
        attachments,
    )?;
    let peers = link_names(engine, dir, args.name.as_deref(), attachments);
    let (mut spec, notes) = build_spec(image.config, &rootfs, &opts)?;
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
    let mut err = std::io::stderr().lock();
    for line in &notes.opened {
        let _ = writeln!(err, "warning: {line}");
    }
    drop(err);
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
        None if crate::rootless::active() => None,
        None => Some("/berth"),
    };
    if let Some(parent) = parent {
        if !parent.is_empty()
            && (!parent.starts_with('/') || parent.split('/').any(|c| c == ".." || c == "."))
        {
            anyhow::bail!(
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
) -> anyhow::Result<()> {
    let store = berth_engine::volumes::Volumes::new(new.dir);
    for (i, v) in named.iter().enumerate() {
        let (volume, _) = store
            .create(&v.name, &Default::default())
            .with_context(|| format!("failed to create volume {}", v.name))?;
        attachments.named_volumes.push(v.name.clone());
        let source = match host_ids {
            Some(range) => {
                let at = berth_engine::attachments::SetUpDirs::mounts_in(new.dir, new.id)
                    .join(i.to_string());
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
        if berth_engine::volumes::is_empty(&volume.mountpoint)? {
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
        let mut options: Vec<String> = ["rbind", "rprivate", "nodev"].map(String::from).into();
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

/// The container's own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`
/// (`berth_engine::etcfiles`), in `DIR/etc/ID` (removed with the container), bound over the
/// image's unless a `-v` or `--tmpfs` already covers the path.
fn etc_files(
    args: &RunArgs,
    spec: &berth_runtime_spec::Spec,
    files: &Path,
    host_ids: Option<IdRange>,
    (address, peers): (Option<std::net::IpAddr>, Vec<(String, std::net::IpAddr)>),
    mounts: &mut Vec<berth_runtime_spec::Mount>,
    attachments: &mut Attachments,
) -> anyhow::Result<()> {
    use berth_engine::etcfiles::{EtcOptions, parse_add_host};
    let mut add_hosts = peers;
    for h in &args.add_host {
        add_hosts.push(parse_add_host(h).map_err(anyhow::Error::msg)?);
    }
    let opts = EtcOptions {
        hostname: spec.hostname.clone().unwrap_or_default(),
        name: args.name.clone(),
        address,
        host_network: args.network() == "host",
        add_hosts,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
    };
    attachments.volumes.push(files.to_owned());
    berth_engine::etcfiles::write(files, &opts, host_ids.map(|r| r.host_start)).with_context(
        || {
            format!(
                "failed to write the container's /etc files in {}",
                files.display()
            )
        },
    )?;
    bind_etc_files(files, mounts);
    Ok(())
}

/// Bind `DIR/{hostname,hosts,resolv.conf}` over the image's, unless a mount covers one.
fn bind_etc_files(files: &Path, mounts: &mut Vec<berth_runtime_spec::Mount>) {
    for name in ["hostname", "hosts", "resolv.conf"] {
        let (dest, src) = (Path::new("/etc").join(name), files.join(name));
        if !src.exists() {
            continue;
        }
        if mounts.iter().any(|m| m.destination == dest) {
            continue;
        }
        mounts.push(berth_runtime_spec::Mount {
            destination: dest,
            typ: Some("bind".into()),
            source: Some(src),
            options: Some(
                ["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"]
                    .map(String::from)
                    .to_vec(),
            ),
            ..Default::default()
        });
    }
}

/// The network a container joins when `run` and `create` are given no `--network` (the one
/// place this is decided): the default bridge network `berth0`, as docker's and podman's
/// `run` join theirs; for rootless berth, which cannot make a bridge, `pasta`, as rootless
/// podman's.
pub fn default_network() -> &'static str {
    if crate::rootless::active() {
        berth_engine::pasta::NETWORK
    } else {
        "bridge"
    }
}

/// The CNI networks `--network` names (`bridge` is the default network, `berth0`), or
/// `None` for none, host, pasta, container: and ns:.
fn cni_networks(args: &RunArgs) -> Option<Vec<String>> {
    let n = args.network();
    if matches!(n, "none" | "host" | berth_engine::pasta::NETWORK)
        || n.starts_with("container:")
        || n.starts_with("ns:")
    {
        return None;
    }
    Some(
        n.split(',')
            .map(|n| match n {
                "bridge" => berth_engine::network::DEFAULT_NETWORK.to_owned(),
                other => other.to_owned(),
            })
            .collect(),
    )
}

/// Where networks, plugins and CNI state live for the data directory `dir`.
pub fn network_dirs(dir: &Path) -> anyhow::Result<berth_engine::network::NetworkDirs> {
    let mut plugins = crate::dirs::cni_plugin_dirs();
    plugins.dedup();
    Ok(berth_engine::network::NetworkDirs {
        config: vec![
            crate::dirs::config_dir()?.join("networks"),
            PathBuf::from(berth_engine::network::SYSTEM_CONFIG_DIR),
        ],
        plugins,
        cache: dir.join("cni/cache"),
        netns: dir.join("netns"),
        ipam: dir.join("cni/networks"),
    })
}

/// Attach the container to the CNI networks `--network` names (a pinned namespace, CNI
/// ADD), recorded in `attachments` at once; point the spec at the namespace. The address on
/// the first network, for /etc/hosts.
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one container's set-up"
)]
fn attach_networks(
    engine: &Engine,
    args: &RunArgs,
    config: &ImageConfig,
    dir: &Path,
    id: &str,
    host_ids: Option<IdRange>,
    opts: &mut RunOptions,
    attachments: &mut Attachments,
) -> anyhow::Result<Option<std::net::IpAddr>> {
    let mut ports = args
        .publish
        .iter()
        .map(|p| berth_engine::network::parse_publish(p).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let flag = args
        .network_bandwidth
        .as_deref()
        .map(|b| berth_engine::network::parse_bandwidth(b).map_err(anyhow::Error::msg))
        .transpose()?;
    let from_annotations = berth_engine::shaping::kubernetes_bandwidth(&annotations(args)?)
        .map_err(anyhow::Error::msg)?;
    let bandwidth = berth_engine::shaping::merge(flag, from_annotations);
    if args.network() == berth_engine::pasta::NETWORK {
        return attach_pasta(
            engine,
            dir,
            id,
            &ports,
            bandwidth.is_some(),
            opts,
            attachments,
        );
    }
    let Some(networks) = cni_networks(args) else {
        if !ports.is_empty() || bandwidth.is_some() || args.publish_all || args.ip.is_some() {
            anyhow::bail!(
                "-p, -P, --ip and --network-bandwidth (or the kubernetes.io bandwidth \
                 annotations) need a network of the container's own: run with --network bridge \
                 (or a network's name), not --network {}",
                args.network()
            );
        }
        return Ok(None);
    };
    if crate::rootless::active() {
        anyhow::bail!(
            "--network {}: rootless berth cannot make bridge networks yet; use --network none \
             or --network host",
            args.network()
        );
    }
    // (the host-id lock is held: no other `run` is between attaching and its record)
    let records = engine.list(true)?;
    if args.publish_all {
        // docker's -P: each exposed port on a free port of the ephemeral range, one no
        // other container publishes and nothing on the host listens on
        let exposed = config
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.as_ref())
            .map(|m| {
                m.keys()
                    .map(|k| berth_engine::network::parse_exposed(k).map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        let mut taken: Vec<(u16, String)> = records
            .iter()
            .filter_map(|r| r.attachments.network.as_ref())
            .flat_map(|n| n.published_ports())
            .collect();
        taken.extend(ports.iter().map(|p| (p.host_port, p.protocol.clone())));
        let range = berth_engine::network::ephemeral_port_range();
        ports.extend(
            berth_engine::network::publish_free(&exposed, &taken, range)
                .context("-P: failed to find free host ports")?,
        );
    }
    let req = berth_engine::network::NetworkRequest {
        networks,
        ports,
        bandwidth,
        ip: args.ip,
        userns: host_ids.map(|r| (r.host_start, r.size)),
    };
    let dirs = network_dirs(dir)?;
    let (att, addresses) = berth_engine::network::attach(&dirs, id, &req, |a| {
        attachments.network = Some(a.clone());
    })
    .with_context(|| {
        if args.network.is_none() {
            "failed to attach the container to the default network berth0 (--network none \
             runs it without a network)"
        } else {
            "failed to attach the container to its networks"
        }
    })?;
    opts.network = berth_image::spec::Network::Path(att.netns.clone());
    attachments.network = Some(att);
    Ok(addresses.first().copied().flatten())
}

/// `--annotation KEY=VALUE`s, as the runtime config's annotations hold them.
fn annotations(args: &RunArgs) -> anyhow::Result<std::collections::HashMap<String, String>> {
    args.annotation
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => anyhow::bail!("invalid --annotation {a:?}: give KEY=VALUE"),
        })
        .collect()
}

/// Rootless `--network pasta`: the container's namespace attached to pasta
/// (`berth_engine::pasta`), `-p` forwarded by it.
fn attach_pasta(
    engine: &Engine,
    dir: &Path,
    id: &str,
    ports: &[berth_engine::network::PortMapping],
    bandwidth: bool,
    opts: &mut RunOptions,
    attachments: &mut Attachments,
) -> anyhow::Result<Option<std::net::IpAddr>> {
    if !crate::rootless::active() {
        anyhow::bail!(
            "--network pasta is rootless berth's network (an ordinary user's); as root use \
             --network bridge or a network's name"
        );
    }
    if bandwidth {
        anyhow::bail!(
            "--network-bandwidth (and the kubernetes.io bandwidth annotations) shape a CNI \
             network's veth (the bandwidth plugin); pasta has none: rootless containers cannot \
             be capped yet"
        );
    }
    let dirs = network_dirs(dir)?;
    // (the host-id lock is held: no other `run` is between attaching and its record)
    let live: std::collections::HashSet<String> =
        engine.list(true)?.into_iter().map(|r| r.id).collect();
    berth_engine::network::collect_orphans(&dirs, &|c| live.contains(c))
        .context("failed to clean up the networks of containers whose run was killed")?;
    let (att, address) =
        berth_engine::pasta::attach(&dirs, id, ports, &crate::dirs::search_path(), |a| {
            attachments.network = Some(a.clone())
        })?;
    opts.network = berth_image::spec::Network::Path(att.netns.clone());
    attachments.network = Some(att);
    Ok(address)
}

/// Names on user-defined networks (not the default one, as docker's): the running
/// containers sharing a network with this one, for its /etc/hosts; and this one's name and
/// address appended to theirs (in place: the files are bind-mounted). Best effort: a peer
/// whose file cannot be written is skipped.
fn link_names(
    engine: &Engine,
    dir: &Path,
    name: Option<&str>,
    attachments: &Attachments,
) -> Vec<(String, std::net::IpAddr)> {
    use std::io::Write as _;
    let Some(own) = &attachments.network else {
        return Vec::new();
    };
    let user_defined: Vec<&(String, std::net::IpAddr)> = own
        .addresses
        .iter()
        .filter(|(n, _)| n != berth_engine::network::DEFAULT_NETWORK)
        .collect();
    if user_defined.is_empty() {
        return Vec::new();
    }
    let mut peers = Vec::new();
    for r in engine.list(false).unwrap_or_default() {
        let Some(theirs) = &r.attachments.network else {
            continue;
        };
        for (net, ip) in &user_defined {
            let Some((_, their_ip)) = theirs.addresses.iter().find(|(n, _)| n == net) else {
                continue;
            };
            peers.push((r.name.clone(), *their_ip));
            if let Some(name) = name
                && let Ok(mut f) = std::fs::OpenOptions::new()
                    .append(true)
                    .open(dir.join("etc").join(&r.id).join("hosts"))
            {
                let _ = writeln!(f, "{ip}\t{name}");
            }
        }
    }
    peers
}

/// `--network container:NAME|ID`: the running container's network namespace and its /etc
/// files.
struct SharedNetwork {
    netns: PathBuf,
    etc: PathBuf,
}

fn shared_network(engine: &Engine, args: &RunArgs) -> anyhow::Result<Option<SharedNetwork>> {
    let Some(reference) = args.network().strip_prefix("container:") else {
        return Ok(None);
    };
    if args.hostname.is_some() {
        anyhow::bail!(
            "--hostname and --network container:{reference} conflict: the container takes the \
             other's hostname"
        );
    }
    let other = engine
        .inspect(reference)
        .with_context(|| format!("--network container:{reference}"))?;
    let pid = other
        .init_pid
        .filter(|_| other.status == berth_engine::Status::Running)
        .with_context(|| {
            format!(
                "--network container:{reference}: the container is not running ({}); start it first",
                other.status.as_str()
            )
        })?;
    let dir = args.data.dir()?;
    Ok(Some(SharedNetwork {
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        etc: dir.join("etc").join(&other.id),
    }))
}

/// The first resource flag of `args` that only a cgroup can enforce.
fn limit_asked(args: &RunArgs) -> Option<&'static str> {
    [
        (args.memory.is_some(), "--memory"),
        (args.memory_swap.is_some(), "--memory-swap"),
        (args.cpus.is_some(), "--cpus"),
        (args.cpu_shares.is_some(), "--cpu-shares"),
        (args.pids_limit.is_some(), "--pids-limit"),
        (args.blkio_weight.is_some(), "--blkio-weight"),
        (!args.device_read_bps.is_empty(), "--device-read-bps"),
        (!args.device_write_bps.is_empty(), "--device-write-bps"),
        (!args.device_read_iops.is_empty(), "--device-read-iops"),
        (!args.device_write_iops.is_empty(), "--device-write-iops"),
    ]
    .into_iter()
    .find_map(|(asked, flag)| asked.then_some(flag))
}

/// Create options and the host-id lock to hold until the container is created.
pub struct Prepared {
    opts: CreateOptions,
    host_ids_lock: FileLock,
}

impl Prepared {
    /// The options, and the lock to drop once the container's record exists.
    pub fn into_parts(self) -> (CreateOptions, FileLock) {
        (self.opts, self.host_ids_lock)
    }
}

/// Pull `reference` into the store, unpacking each layer as soon as its blob has arrived
/// (`berth pull --unpack`'s path).
fn pull(
    args: &RunArgs,
    store: &berth_store::Store,
    snap: &berth_image::snapshot::SnapshotStore,
    reference: &berth_oci::Reference,
) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    let opts = berth_transfer::CopyOptions {
        all_platforms: false,
        platform: args
            .platform
            .clone()
            .unwrap_or_else(berth_oci::Platform::host),
        referrers: false,
    };
    let fetch = crate::commands::trust::gate::before_pull(&client, reference, args.quiet)?;
    crate::commands::image::pull::pull_unpack(
        &client, store, snap, &fetch, reference, &opts, args.quiet,
    )
    .with_context(|| format!("failed to pull {reference}"))?;
    Ok(())
}

pub fn lock_host_ids(dir: &Path) -> anyhow::Result<FileLock> {
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
    snap: &berth_image::snapshot::SnapshotStore,
    live: &HashSet<String>,
) -> anyhow::Result<usize> {
    let set_up = berth_engine::attachments::SetUpDirs {
        dir: dir.to_owned(),
        snapshots: (snap.root().to_owned(), snap.driver().name().to_owned()),
    };
    let mut cleaned = set_up
        .collect_unrecorded(&|c| live.contains(c))
        .context("failed to clean up after runs killed during set-up")?;
    if dir.join("netns").is_dir() {
        let dirs = network_dirs(dir)?;
        for id in berth_engine::network::collect_orphans(&dirs, &|c| live.contains(c))
            .context("failed to clean up the networks of runs killed during set-up")?
        {
            if !cleaned.contains(&id) {
                cleaned.push(id);
            }
        }
    }
    Ok(cleaned.len())
}

fn create_mount_point(rootfs: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(rootfs)
        .with_context(|| format!("failed to create {}", rootfs.display()))
}

/// The runtime mounts the root filesystem as the container's root, a host id of `range`:
/// every directory above it must let others search it. berth's own directories (the data
/// directory and its `rootfs/`) are made so (0711, as docker's `--userns-remap` root); one
/// above them that is not is an error saying which, instead of the runtime's bare EACCES.
fn reachable_by(rootfs: &Path, range: IdRange) -> anyhow::Result<()> {
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
        anyhow::bail!(
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
fn allocate_host_ids(dir: &Path, id: &str, live: &HashSet<String>) -> anyhow::Result<IdRange> {
    let alloc = IdAllocator::new(dir);
    alloc.release_missing(|owner| live.contains(owner))?;
    Ok(alloc.allocate(id, HOST_IDS_PER_CONTAINER)?)
}

fn run_options(
    args: &RunArgs,
    image: &str,
    id: &str,
    id_range: Option<IdRange>,
) -> anyhow::Result<RunOptions> {
    let network = match args.network() {
        "none" => Network::None,
        "host" => Network::Host,
        // (joined by path once the container is found (`shared_network`) or the networks
        // attached (`attach_networks`))
        n if n.starts_with("container:") => Network::None,
        n if !n.starts_with("ns:") => Network::None,
        n => match n.strip_prefix("ns:") {
            Some(p) if p.starts_with('/') => Network::Path(PathBuf::from(p)),
            _ => anyhow::bail!(
                "--network {n}: give the namespace's absolute path (ns:/run/netns/NAME)"
            ),
        },
    };
    Ok(RunOptions {
        image: image.to_owned(),
        args: args.args.clone(),
        entrypoint: args.entrypoint.clone(),
        env: args.env.clone(),
        host_env: crate::dirs::host_env(),
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
        memory: args.memory,
        memory_swap: args.memory_swap,
        cpus: args.cpus,
        cpu_shares: args.cpu_shares,
        pids_limit: args.pids_limit,
        blkio_weight: args.blkio_weight,
        device_read_bps: args.device_read_bps.clone(),
        device_write_bps: args.device_write_bps.clone(),
        device_read_iops: args.device_read_iops.clone(),
        device_write_iops: args.device_write_iops.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        security_opt: args.security_opt.clone(),
        privileged: args.privileged,
        init: args.init || args.init_path.is_some(),
        stop_signal: args.stop_signal.clone(),
        network,
        userns: if args.userns == "host" {
            Userns::Host
        } else {
            Userns::Auto
        },
        id_range,
        rootless: crate::rootless::active(),
    })
}

/// Create the working directory inside the container's root filesystem when it is missing,
/// as docker does (runc would, other runtimes refuse): each component made with `mkdirat`
/// under its parent opened with in-root resolution, so a symlink in the image cannot point
/// it outside.
fn ensure_workdir(rootfs: &Path, cwd: &Path) -> anyhow::Result<()> {
    use rustix::fs::{Mode, mkdirat};
    use std::path::Component;
    let fail = |e: std::io::Error| {
        anyhow::Error::new(e).context(format!(
            "failed to create the working directory {} in the container",
            cwd.display()
        ))
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
