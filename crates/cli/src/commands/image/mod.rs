//! Image commands: `berth pull | push | copy | save | load | import | images | inspect |
//! tag | rmi`, and
//! `berth image prune`. The copying is `berth-transfer`'s.

pub mod copy;
pub mod images;
pub mod import;
pub mod inspect;
pub mod load;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod save;
pub mod tag;
pub mod unpack;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_distribution::{Client, ClientOptions, PlainHttp};
use berth_store::Store;
use clap::{Args, Subcommand};

/// `berth image …`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Remove blobs no image in the local store references.
    Prune(prune::PruneArgs),
    /// Unpack an image's layers into snapshots (what a container mounts).
    Unpack(unpack::UnpackArgs),
}

pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    match args.command {
        ImageCommand::Prune(a) => prune::run(a),
        ImageCommand::Unpack(a) => unpack::run(a),
    }
}

/// Where the local store lives.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data directory (default: $XDG_DATA_HOME/berth, or /var/lib/berth for root); the
    /// local store is its `store/` folder.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn open(&self) -> anyhow::Result<Store> {
        let dir = crate::dirs::data_dir(self.data.clone())?;
        Store::open(&dir)
            .with_context(|| format!("failed to open the local store in {}", dir.display()))
    }

    /// The snapshots under `<data>/snapshots` (overlay where overlayfs works, else native).
    pub fn snapshots(&self) -> anyhow::Result<berth_image::snapshot::SnapshotStore> {
        let dir = crate::dirs::data_dir(self.data.clone())?.join("snapshots");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        // the driver the root was made with (a probe mount on every command otherwise)
        let driver =
            recorded_driver(&dir).unwrap_or_else(|| berth_image::snapshot::Driver::detect(&dir));
        berth_image::snapshot::SnapshotStore::open(&dir, driver)
            .with_context(|| format!("failed to open the snapshots in {}", dir.display()))
    }

    /// The snapshots, when any were ever made (`rmi` does not create them).
    pub fn existing_snapshots(
        &self,
    ) -> anyhow::Result<Option<berth_image::snapshot::SnapshotStore>> {
        let dir = crate::dirs::data_dir(self.data.clone())?.join("snapshots");
        if !dir.exists() {
            return Ok(None);
        }
        self.snapshots().map(Some)
    }
}

/// The driver recorded in a snapshot root's `metadata.json`, when it has one.
fn recorded_driver(dir: &std::path::Path) -> Option<berth_image::snapshot::Driver> {
    let bytes = std::fs::read(dir.join("metadata.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match v.get("driver")?.as_str()? {
        "overlay" => Some(berth_image::snapshot::Driver::Overlay),
        "native" => Some(berth_image::snapshot::Driver::Native),
        _ => None,
    }
}

/// How to reach registries.
#[derive(Debug, Args)]
pub struct RegistryFlags {
    /// Use plain HTTP (default: only for loopback registries that do not speak TLS).
    #[arg(long)]
    pub plain_http: bool,
    /// Accept any TLS certificate (test registries only).
    #[arg(long, alias = "insecure-skip-verify")]
    pub insecure: bool,
}

impl RegistryFlags {
    /// A client with the credentials of docker's `config.json`, then of the containers
    /// `auth.json` files.
    pub fn client(&self) -> anyhow::Result<Client> {
        let credentials = crate::dirs::credentials()?;
        Client::new(ClientOptions {
            credentials: Some(Arc::new(credentials)),
            plain_http: if self.plain_http {
                PlainHttp::Always
            } else {
                PlainHttp::Auto
            },
            insecure_skip_verify: self.insecure,
            ..ClientOptions::default()
        })
        .context("failed to set up the registry client")
    }
}

/// `--platform` / `--all-platforms`, shared by `pull` and `copy`.
#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// The platform to take from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<berth_oci::Platform>,
    /// Take every platform of a multi-platform image, and the index.
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
}

impl PlatformArgs {
    /// The copy options these flags select.
    pub fn copy_options(&self) -> berth_transfer::CopyOptions {
        berth_transfer::CopyOptions {
            all_platforms: self.all_platforms,
            platform: self
                .platform
                .clone()
                .unwrap_or_else(berth_oci::Platform::host),
            referrers: false,
        }
    }
}

/// The registry reference `pull` and `push` operate on, refusing layouts and store names
/// (a clap value parser: a bad reference is a usage error, exit status 2).
pub fn parse_registry_reference(arg: &str) -> Result<berth_oci::Reference, String> {
    match berth_transfer::Endpoint::parse(arg).map_err(|e| format!("{e:#}"))? {
        berth_transfer::Endpoint::Registry(r) => Ok(r),
        _ => Err(format!(
            "{arg} is not a registry reference\nhint: use `berth copy` for OCI layouts"
        )),
    }
}

/// An image reference argument (a clap value parser: a bad one is a usage error, exit
/// status 2, as for any other malformed argument).
pub fn parse_reference(arg: &str) -> Result<berth_oci::Reference, String> {
    berth_oci::Reference::parse(arg).map_err(|e| e.to_string())
}

/// A `--platform` argument (`os/arch[/variant]`).
pub fn parse_platform(arg: &str) -> Result<berth_oci::Platform, String> {
    berth_oci::Platform::parse(arg).map_err(|e| e.to_string())
}

/// A `copy` location argument, checked the same way.
pub fn parse_endpoint(arg: &str) -> Result<berth_transfer::Endpoint, String> {
    berth_transfer::Endpoint::parse(arg).map_err(|e| format!("{e:#}"))
}

/// Run one copy with progress on stderr (none with `quiet`), clearing the bars before the
/// command prints its result.
pub fn copy(
    client: &Client,
    store: Option<&Store>,
    src: &berth_transfer::Endpoint,
    dst: &berth_transfer::Endpoint,
    opts: &berth_transfer::CopyOptions,
    quiet: bool,
) -> anyhow::Result<berth_transfer::Copied> {
    let progress = crate::progress::Progress::new(crate::progress::Mode::detect(quiet));
    let copied = runtime()?.block_on(berth_transfer::copy(
        client, store, src, dst, opts, &progress,
    ));
    progress.finish();
    Ok(copied?)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Write `line` to stdout.
pub fn print(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").context("failed to write to stdout")
}
