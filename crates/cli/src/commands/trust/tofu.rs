//! `berth trust pins` and `berth trust accept REPO`: the trust-on-first-use pin store
//! (`berth_trust::tofu`), by default `CONFIG/trust/pins.json` (CONFIG: `$XDG_CONFIG_HOME/berth`,
//! or `/etc/berth` for root).

use anyhow::Context;
use berth_trust::Timestamp;
use berth_trust::tofu::PinStore;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `berth trust …`.
#[derive(Debug, Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Turn signing on push on: every `berth push` signs (the first makes a key if needed).
    Init(super::init::InitArgs),
    /// List the signing identity pinned for each repository (trust on first use).
    Pins(PinsArgs),
    /// Pin the signing identity last refused for a repository (or the certificate given).
    Accept(AcceptArgs),
    /// Forget a repository's pin: its next signed image is pinned anew.
    Forget(ForgetArgs),
}

#[derive(Debug, Args)]
struct StoreArgs {
    /// The pin store (default: CONFIG/trust/pins.json).
    #[arg(long, value_name = "FILE")]
    pins: Option<PathBuf>,
}

impl StoreArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.pins {
            Some(p) => Ok(p.clone()),
            None => Ok(crate::dirs::config_dir()?.join("trust/pins.json")),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct PinsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Args)]
struct AcceptArgs {
    /// The repository (REGISTRY/PATH, as the refusal names it).
    repository: String,
    /// The certificate to pin (sha256:HEX, as the refusal prints it); required when no
    /// refused identity is recorded.
    #[arg(long, value_name = "SHA256")]
    certificate: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
struct ForgetArgs {
    /// The repository.
    repository: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: TrustArgs) -> anyhow::Result<()> {
    match args.command {
        TrustCommand::Init(a) => super::init::run(a),
        TrustCommand::Pins(a) => pins(a),
        TrustCommand::Accept(a) => accept(a),
        TrustCommand::Forget(a) => forget(a),
    }
}

fn pins(args: PinsArgs) -> anyhow::Result<()> {
    let path = args.store.path()?;
    let store = PinStore::load(&path)?;
    if let Format::Json = args.format {
        let v: serde_json::Value =
            serde_json::from_slice(&store.to_json()).context("failed to render the pin store")?;
        return crate::commands::image::print(&serde_json::to_string_pretty(&v)?);
    }
    if store.pins().next().is_none() {
        return crate::commands::image::print(&format!(
            "no pins in {} (the first verified image of a repository pins its signer)",
            path.display()
        ));
    }
    let mut out = String::new();
    for (repo, pin) in store.pins() {
        out.push_str(&format!(
            "{repo}\n  pinned  {} since {}\n",
            pin.identity, pin.pinned_at
        ));
        if let Some(r) = &pin.refused {
            out.push_str(&format!(
                "  refused {} on {} (accept: berth trust accept {repo} --certificate {})\n",
                r.identity, r.seen_at, r.identity.certificate_sha256
            ));
        }
    }
    crate::commands::image::print(out.trim_end())
}

fn accept(args: AcceptArgs) -> anyhow::Result<()> {
    let path = args.store.path()?;
    let mut store = PinStore::load(&path)?;
    let (old, new) = store.accept(
        &args.repository,
        args.certificate.as_deref(),
        Timestamp::now(),
    )?;
    store.save(&path)?;
    let line = match old {
        Some(o) => format!("{}: pinned {new} (was {o})", args.repository),
        None => format!("{}: pinned {new}", args.repository),
    };
    crate::commands::image::print(&line)
}

fn forget(args: ForgetArgs) -> anyhow::Result<()> {
    let path = args.store.path()?;
    let mut store = PinStore::load(&path)?;
    let pin = store.remove(&args.repository)?;
    store.save(&path)?;
    crate::commands::image::print(&format!(
        "{}: forgot {}; its next verified image pins its signer",
        args.repository, pin.identity
    ))
}
