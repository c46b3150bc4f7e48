//! What `run` and `create` do before the engine, on the CLI's side: find the init, find the
//! image (pulling it per `--pull`, with progress) and make its layers snapshots, then hand
//! the flags to `berth_engine::setup`, which sets the container up (snapshot, host ids,
//! networks, volumes, `/etc` files, runtime config) and undoes it on failure. Prints the
//! warnings the set-up returns.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_engine::setup::{ImageInput, RunRequest};
use berth_engine::{CreateOptions, Engine};
use berth_fsutil::FileLock;
use berth_image::rootfs::{EnsureOptions, ensure_layers, resolve};
use berth_image::spec::ImageConfig;

use super::run::RunArgs;

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
    let mut sbom = None;
    if pulling {
        sbom = pull(args, &store, &snap, &reference)?;
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
        sbom = crate::commands::trust::gate::before_run(
            || args.registry.client(),
            &reference,
            &record,
            args.quiet,
        )?;
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

    let dir = args.data.dir()?;
    let request = request(args, init, &dir)?;
    let image = ImageInput {
        name: &name,
        config: &config,
        top: layers.top(),
        snapshots: &snap,
    };
    match berth_engine::setup::prepare(engine, &request, &image, id) {
        Ok(mut p) => {
            let mut err = std::io::stderr().lock();
            for line in &p.warnings {
                let _ = writeln!(err, "warning: {line}");
            }
            // kept beside the container's record, for `berth watch`
            p.opts.sbom = sbom;
            Ok(Prepared {
                opts: p.opts,
                host_ids_lock: p.host_ids_lock,
            })
        }
        Err(failed) => {
            if let Some(t) = failed.cleanup {
                let _ = writeln!(std::io::stderr().lock(), "warning: cleaning up: {t}");
            }
            Err(setup_error(failed.error))
        }
    }
}

/// A set-up error for the CLI: an engine error as itself, so that `Failure::run` finds it
/// (and its exit code) in the chain.
fn setup_error(e: berth_engine::setup::SetupError) -> anyhow::Error {
    match e {
        berth_engine::setup::SetupError::Engine(e) => e.into(),
        e => e.into(),
    }
}

/// The engine's request for `args`: the flags, and what only the CLI knows of the host.
fn request(args: &RunArgs, init: Option<PathBuf>, dir: &Path) -> anyhow::Result<RunRequest> {
    Ok(RunRequest {
        name: args.name.clone(),
        rm: args.rm,
        env: args.env.clone(),
        env_file: args.env_file.clone(),
        volume: args.volume.clone(),
        tmpfs: args.tmpfs.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        entrypoint: args.entrypoint.clone(),
        hostname: args.hostname.clone(),
        read_only: args.read_only,
        publish: args.publish.clone(),
        publish_all: args.publish_all,
        ip: args.ip,
        ip6: args.ip6,
        mac_address: args.mac_address.clone(),
        network_alias: args.network_alias.clone(),
        network_bandwidth: args.network_bandwidth.clone(),
        annotation: args.annotation.clone(),
        add_host: args.add_host.clone(),
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_option: args.dns_option.clone(),
        init,
        resources: berth_image::spec::ResourceFlags {
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
        },
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        security_opt: args.security_opt.clone(),
        userns: args.userns.clone(),
        privileged: args.privileged,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        runtime: args.runtime.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        network: args.network.clone(),
        interactive: args.interactive,
        tty: args.tty,
        args: args.args.clone(),
        rootless: crate::rootless::active(),
        search_path: crate::dirs::search_path(),
        host_env: crate::dirs::host_env(),
        data_dir: dir.to_owned(),
        network_dirs: network_dirs(dir)?,
    })
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
) -> anyhow::Result<Option<berth_engine::VerifiedSbom>> {
    let client = args.registry.client()?;
    let opts = berth_transfer::CopyOptions {
        all_platforms: false,
        platform: args
            .platform
            .clone()
            .unwrap_or_else(berth_oci::Platform::host),
        referrers: false,
    };
    let allowed = crate::commands::trust::gate::before_pull(&client, reference, args.quiet)?;
    crate::commands::image::pull::pull_unpack(
        &client,
        store,
        snap,
        &allowed.fetch,
        reference,
        &opts,
        args.quiet,
    )
    .with_context(|| format!("failed to pull {reference}"))?;
    Ok(allowed.sbom)
}

/// `berth_engine::setup::lock_host_ids`, for the commands that remove what `run` uses.
pub fn lock_host_ids(dir: &Path) -> anyhow::Result<FileLock> {
    berth_engine::setup::lock_host_ids(dir).map_err(setup_error)
}

/// `berth_engine::setup::collect_killed_runs` for the data directory `dir`.
pub fn collect_killed_runs(
    dir: &Path,
    snap: &berth_image::snapshot::SnapshotStore,
    live: &HashSet<String>,
) -> anyhow::Result<usize> {
    let dirs = network_dirs(dir)?;
    berth_engine::setup::collect_killed_runs(dir, &dirs, snap, live).map_err(setup_error)
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
