//! `berth key generate | list | import | export | rm`: signing keys in berth's key store,
//! `<config>/keys/` (berth_trust::keys): NAME.key (PKCS#8 PEM, mode 0600) and NAME.crt (the
//! certificate chain, leaf first), plus the default key. `generate` makes an ECDSA key
//! (P-256 unless `--curve p384`) and a self-signed code-signing certificate for it, so the key
//! can sign at once; RSA keys are imported (`openssl genpkey -algorithm RSA`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use berth_trust::certgen;
use berth_trust::keys::{AddOptions, KeySpec, KeyStore, SigningKey, chain_pem};
use berth_trust::{Certificate, Timestamp};
use clap::{Args, Subcommand, ValueEnum};

/// `berth key …`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate an ECDSA key and a self-signed code-signing certificate for it.
    Generate(GenerateArgs),
    /// List the keys (the default one is marked *).
    #[command(alias = "ls")]
    List(ListArgs),
    /// Import a private key (PKCS#8, SEC1 or PKCS#1 PEM, or PKCS#8 DER) and its certificate
    /// chain.
    Import(ImportArgs),
    /// Print a key: the private key (PKCS#8 PEM), its public key, or its certificate chain.
    Export(ExportArgs),
    /// Remove keys and their certificates.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Make a key the default signing key.
    SetDefault(NameArg),
}

/// The ECDSA curves berth generates keys on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CurveArg {
    P256,
    P384,
}

impl CurveArg {
    pub fn spec(self) -> KeySpec {
        match self {
            CurveArg::P256 => KeySpec::EcP256,
            CurveArg::P384 => KeySpec::EcP384,
        }
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The key's name ([a-zA-Z0-9_.-]+); also the certificate's common name.
    name: String,
    /// The curve.
    #[arg(long, value_enum, default_value = "p256")]
    curve: CurveArg,
    /// Make it the default signing key.
    #[arg(long)]
    default: bool,
    /// Replace a key of the same name.
    #[arg(long)]
    force: bool,
    /// Validity of the certificate, in days.
    #[arg(long, default_value_t = certgen::DEFAULT_VALIDITY_DAYS)]
    days: u32,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Names only.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The key's name ([a-zA-Z0-9_.-]+).
    name: String,
    /// The private key file.
    #[arg(long)]
    key: PathBuf,
    /// The certificate chain file (PEM, leaf first; or one DER certificate).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Make it the default signing key.
    #[arg(long)]
    default: bool,
    /// Replace a key of the same name.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The key's name.
    name: String,
    /// The public key only (SubjectPublicKeyInfo PEM).
    #[arg(long, conflicts_with = "cert")]
    public: bool,
    /// The certificate chain (PEM, leaf first).
    #[arg(long)]
    cert: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The keys' names.
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The key's name.
    name: String,
}

/// The key store under berth's configuration directory.
pub fn key_store() -> anyhow::Result<KeyStore> {
    Ok(KeyStore::new(crate::dirs::config_dir()?))
}

pub fn run(args: KeyArgs) -> anyhow::Result<()> {
    let store = key_store()?;
    match args.command {
        KeyCommand::Generate(a) => generate(&store, a),
        KeyCommand::List(a) => list(&store, a),
        KeyCommand::Import(a) => import(&store, a),
        KeyCommand::Export(a) => export(&store, a),
        KeyCommand::Rm(a) => {
            for name in &a.names {
                store
                    .remove(name)
                    .with_context(|| format!("failed to remove key {name:?}"))?;
                writeln!(std::io::stdout().lock(), "{name}")?;
            }
            Ok(())
        }
        KeyCommand::SetDefault(a) => {
            store.set_default(&a.name)?;
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}: marked as the default signing key",
                a.name
            );
            Ok(())
        }
    }
}

fn generate(store: &KeyStore, a: GenerateArgs) -> anyhow::Result<()> {
    if !a.force && store.contains(&a.name) {
        anyhow::bail!(berth_trust::keys::KeyError::Exists(a.name));
    }
    let key = SigningKey::generate(a.curve.spec())?;
    let cert = certgen::self_signed(&certgen::CertParams::test(&a.name, a.days), &key)
        .context("failed to make the certificate")?;
    store
        .add(
            &a.name,
            &key,
            Some(std::slice::from_ref(&cert)),
            AddOptions {
                force: a.force,
                default: a.default,
            },
        )
        .with_context(|| format!("failed to store key {:?}", a.name))?;
    report_added(store, &a.name, &key, Some(&cert), a.default, true)
}

pub(super) fn report_added(
    store: &KeyStore,
    name: &str,
    key: &SigningKey,
    leaf: Option<&Certificate>,
    default: bool,
    name_to_stdout: bool,
) -> anyhow::Result<()> {
    let _ = writeln!(
        std::io::stderr().lock(),
        "wrote key: {} ({})",
        store.key_path(name)?.display(),
        key.spec()
    );
    if let Some(cert) = leaf {
        let _ = writeln!(
            std::io::stderr().lock(),
            "wrote certificate: {} ({}, expires {})",
            store.cert_path(name)?.display(),
            cert.subject,
            cert.not_after
        );
    }
    if default {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{name}: marked as the default signing key"
        );
    }
    if name_to_stdout {
        writeln!(std::io::stdout().lock(), "{name}")?;
    }
    Ok(())
}

fn import(store: &KeyStore, a: ImportArgs) -> anyhow::Result<()> {
    let data =
        std::fs::read(&a.key).with_context(|| format!("failed to read {}", a.key.display()))?;
    let key = SigningKey::from_pem_or_der(&data)
        .with_context(|| format!("failed to import the key {}", a.key.display()))?;
    let chain = match &a.cert {
        Some(path) => {
            let data = std::fs::read(path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            Some(Certificate::parse_many(&data).with_context(|| {
                format!("failed to read the certificates of {}", path.display())
            })?)
        }
        None => None,
    };
    store
        .add(
            &a.name,
            &key,
            chain.as_deref(),
            AddOptions {
                force: a.force,
                default: a.default,
            },
        )
        .with_context(|| format!("failed to import key {:?}", a.name))?;
    if chain.is_none() {
        let _ = writeln!(
            std::io::stderr().lock(),
            "note: {} has no certificate; it cannot sign until one is added (berth key import {} --key … --cert … --force)",
            a.name,
            a.name
        );
    }
    report_added(
        store,
        &a.name,
        &key,
        chain.as_ref().and_then(|c| c.first()),
        a.default,
        true,
    )
}

fn export(store: &KeyStore, a: ExportArgs) -> anyhow::Result<()> {
    let out = if a.cert {
        let chain = store
            .chain(&a.name)?
            .with_context(|| format!("key {:?} has no certificate", a.name))?;
        chain_pem(&chain)
    } else {
        let key = store.load(&a.name)?;
        if a.public {
            key.public_key_pem()
        } else {
            key.to_pkcs8_pem()
        }
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("failed to write to stdout")
}

fn list(store: &KeyStore, a: ListArgs) -> anyhow::Result<()> {
    let entries = store.list()?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for e in &entries {
            writeln!(out, "{}", e.name)?;
        }
        return Ok(());
    }
    let now = Timestamp::now();
    let mut rows = vec![[
        "NAME".to_string(),
        "KEY".to_string(),
        "CERTIFICATE".to_string(),
        "EXPIRES".to_string(),
    ]];
    for e in &entries {
        let spec = match store.load(&e.name) {
            Ok(k) => k.spec().to_string(),
            Err(err) => format!("unreadable: {err}"),
        };
        let (subject, expires) = match store.chain(&e.name) {
            Ok(Some(chain)) => match chain.first() {
                Some(c) => (
                    c.subject.to_string(),
                    if c.not_after < now {
                        format!("{} (expired)", c.not_after)
                    } else {
                        c.not_after.to_string()
                    },
                ),
                None => ("-".to_string(), "-".to_string()),
            },
            Ok(None) => ("-".to_string(), "-".to_string()),
            Err(err) => (format!("unreadable: {err}"), "-".to_string()),
        };
        let name = if e.is_default {
            format!("{} *", e.name)
        } else {
            e.name.clone()
        };
        rows.push([name, spec, subject, expires]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        writeln!(
            out,
            "{:w0$}   {:w1$}   {:w2$}   {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    Ok(())
}
