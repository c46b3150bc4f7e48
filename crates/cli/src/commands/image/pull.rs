//! `berth pull REF`: a registry image into the local store; prints its digest. With
//! `--unpack`, its layers are unpacked into snapshots while it downloads ([`pull_unpack`]).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use berth_image::rootfs::{
    Arrivals, EnsureOptions, EnsureReport, LayerGate, ensure_layers_gated, resolve_manifest,
};
use berth_image::snapshot::SnapshotStore;
use berth_oci::{Digest, ManifestInfo, Reference};
use berth_store::Store;
use berth_transfer::{BlobProgress, Copied, CopyOptions, Endpoint, Put};
use clap::Args;

use super::{DataArgs, PlatformArgs, RegistryFlags};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image (`busybox`, `host:port/repo:tag`, `repo@sha256:…`).
    #[arg(value_parser = super::parse_registry_reference)]
    reference: Reference,
    #[command(flatten)]
    platforms: PlatformArgs,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Also unpack the layers into snapshots (as `berth image unpack`), each as soon as it
    /// has downloaded.
    #[arg(long)]
    unpack: bool,
    /// Also keep the image's referrers (signatures, SBOMs, attestations) in the local
    /// store, found with the referrers API or its tag fallback; `save --referrers` and
    /// `copy --referrers store:NAME …` carry them on.
    #[arg(long, short = 'r')]
    referrers: bool,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: PullArgs) -> anyhow::Result<()> {
    let reference = args.reference;
    let store = args.data.open()?;
    let client = args.registry.client()?;
    let mut opts = args.platforms.copy_options();
    opts.referrers = args.referrers;
    // With a trust policy, the digest the policy accepted is what is fetched.
    let fetch = crate::commands::trust::gate::before_pull(&client, &reference, args.quiet)?.fetch;
    if args.unpack && !opts.all_platforms && !opts.referrers {
        let snap = args.data.snapshots()?;
        let copied = pull_unpack(
            &client, &store, &snap, &fetch, &reference, &opts, args.quiet,
        )?;
        return super::print(copied.digest.as_str());
    }
    let src = Endpoint::Registry(fetch);
    let dst = Endpoint::Store(reference.to_string());
    let copied = super::copy(&client, Some(&store), &src, &dst, &opts, args.quiet)?;
    pulled(&reference, &copied, args.quiet);
    if args.unpack {
        let snap = args.data.snapshots()?;
        super::unpack::unpack_image(&store, &snap, &reference.to_string(), None, args.quiet)?;
    }
    super::print(copied.digest.as_str())
}

fn pulled(reference: &Reference, copied: &Copied, quiet: bool) {
    if !quiet {
        let platform = copied.platform.as_deref().unwrap_or("as published");
        let _ = writeln!(std::io::stderr().lock(), "pulled {reference} ({platform})");
    }
}

/// Pull `reference` (one platform) into `store` and unpack its layers into `snap` while it
/// downloads: each layer is unpacked as soon as its blob is committed to the store (verified
/// against its digest), in parallel with the downloads still running, and still checked
/// against its diff ID before its snapshot is committed. When the pull fails, the unpack
/// stops and removes what it made: nothing is left committed. What `berth run` does for an
/// image it does not have.
/// `fetch` is what is fetched (the digest a trust policy verified, else `reference`), and
/// `reference` the name it is recorded under in the store.
pub fn pull_unpack(
    client: &berth_distribution::Client,
    store: &Store,
    snap: &SnapshotStore,
    fetch: &Reference,
    reference: &Reference,
    opts: &CopyOptions,
    quiet: bool,
) -> anyhow::Result<Copied> {
    let name = reference.to_string();
    let src = Endpoint::Registry(fetch.clone());
    let dst = Endpoint::Store(name.clone());
    let arrivals = Arc::new(Arrivals::new());
    let progress = crate::progress::Progress::new(crate::progress::Mode::detect(quiet));
    let tee = Tee {
        inner: &progress,
        arrivals: arrivals.clone(),
    };
    let started = Instant::now();
    let (copied, unpacked) = std::thread::scope(|s| {
        let unpacker = s.spawn(|| unpack_as_pulled(store, snap, &name, &arrivals));
        let copied = super::runtime().and_then(|rt| {
            rt.block_on(berth_transfer::copy(
                client,
                Some(store),
                &src,
                &dst,
                opts,
                &tee,
            ))
            .map_err(anyhow::Error::from)
        });
        match &copied {
            Ok(_) => arrivals.finish(),
            Err(_) => arrivals.fail("the pull failed"),
        }
        let unpacked = unpacker
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the unpack thread panicked")));
        (copied, unpacked)
    });
    progress.finish();
    // The pull's error first: the unpack only stopped because of it.
    let copied = copied?;
    pulled(reference, &copied, quiet);
    let report = unpacked.with_context(|| format!("failed to unpack image {name}"))?;
    if !quiet {
        super::unpack::summary(&name, " while pulling", &report, started, snap);
    }
    Ok(copied)
}

/// The unpack side of [`pull_unpack`]: the image manifest as the pull reports it, its config
/// once stored, then every layer as it arrives.
fn unpack_as_pulled(
    store: &Store,
    snap: &SnapshotStore,
    name: &str,
    arrivals: &Arrivals,
) -> anyhow::Result<EnsureReport> {
    let (digest, bytes) = arrivals.wait_manifest().map_err(anyhow::Error::msg)?;
    let info = ManifestInfo::parse(&bytes, None)
        .with_context(|| format!("image manifest {digest} is not valid"))?;
    let config = info
        .config
        .as_ref()
        .with_context(|| format!("image manifest {digest} has no config"))?;
    let config = berth_oci::descriptor_digest(config)
        .with_context(|| format!("image manifest {digest} names an invalid config"))?;
    arrivals.wait(&config).map_err(anyhow::Error::msg)?;
    let image = resolve_manifest(store, &digest, &bytes)
        .with_context(|| format!("failed to read image {name}"))?;
    let opts = EnsureOptions {
        image_name: Some(name.to_owned()),
        ..EnsureOptions::default()
    };
    Ok(ensure_layers_gated(snap, store, &image, &opts, arrivals)?)
}

/// The progress display, also telling the unpack what has arrived.
struct Tee<'a> {
    inner: &'a crate::progress::Progress,
    arrivals: Arc<Arrivals>,
}

impl berth_transfer::Progress for Tee<'_> {
    fn manifest(&self, digest: &Digest) {
        berth_transfer::Progress::manifest(self.inner, digest);
    }

    fn exists(&self, digest: &Digest) {
        berth_transfer::Progress::exists(self.inner, digest);
        self.arrivals.ready(digest);
    }

    fn blob(&self, digest: &Digest, size: u64) -> Arc<dyn BlobProgress> {
        Arc::new(TeeBlob {
            inner: berth_transfer::Progress::blob(self.inner, digest, size),
            digest: digest.clone(),
            arrivals: self.arrivals.clone(),
        })
    }

    fn image(&self, digest: &Digest, bytes: &[u8]) {
        self.arrivals.manifest(digest, bytes);
    }
}

struct TeeBlob {
    inner: Arc<dyn BlobProgress>,
    digest: Digest,
    arrivals: Arc<Arrivals>,
}

impl BlobProgress for TeeBlob {
    fn inc(&self, n: u64) {
        self.inner.inc(n);
    }

    fn restart_at(&self, offset: u64) {
        self.inner.restart_at(offset);
    }

    fn done(&self, how: Put) {
        self.inner.done(how);
        self.arrivals.ready(&self.digest);
    }
}
