//! `berth cert generate-test NAME`: as `notation cert generate-test`, a key and a self-signed
//! code-signing certificate (`CN=NAME,O=Notary,L=Seattle,ST=WA,C=US`), stored as key NAME,
//! and the certificate added to berth's trust store as
//! `<config>/truststore/x509/ca/NAME/NAME.crt`, so that berth verifies what the key signs.
//! notation's test key is RSA 2048 (`--bits`); berth's is ECDSA P-256 (`--curve p384`), as
//! ring generates no RSA keys. With `--ca`, a test CA and a leaf under it: the key gets the
//! chain [leaf, CA] and the trust store the CA.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;

use anyhow::Context;
use berth_trust::certgen::{self, CertParams};
use berth_trust::keys::{AddOptions, SigningKey, chain_pem};
use clap::{Args, Subcommand};

use super::key::{CurveArg, key_store, report_added};

/// `berth cert …`.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    command: CertCommand,
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Generate a test key and self-signed certificate, and trust the certificate.
    GenerateTest(GenerateTestArgs),
}

#[derive(Debug, Args)]
pub struct GenerateTestArgs {
    /// The certificate's common name, also the key's and the trust store's name
    /// ([a-zA-Z0-9_.-]+).
    name: String,
    /// The curve of the key.
    #[arg(long, value_enum, default_value = "p256")]
    curve: CurveArg,
    /// Make it the default signing key.
    #[arg(long)]
    default: bool,
    /// Make a test CA and a leaf certificate under it (instead of one self-signed).
    #[arg(long)]
    ca: bool,
    /// Validity in days.
    #[arg(long, default_value_t = certgen::DEFAULT_VALIDITY_DAYS)]
    days: u32,
    /// Replace a key and trust store certificate of the same name.
    #[arg(long)]
    force: bool,
}

pub fn run(args: CertArgs) -> anyhow::Result<()> {
    match args.command {
        CertCommand::GenerateTest(a) => generate_test(a, true),
    }
}

/// A test key and certificate named `name`, made the default key and trusted: what the
/// first signed push makes when signing is on and there is no key yet.
pub fn generate_default_test_key(name: &str) -> anyhow::Result<()> {
    generate_test(
        GenerateTestArgs {
            name: name.to_string(),
            curve: CurveArg::P256,
            default: true,
            ca: false,
            days: certgen::DEFAULT_VALIDITY_DAYS,
            force: false,
        },
        false,
    )
}

/// `name_to_stdout`: print the key's name on standard output, as `berth cert generate-test`
/// does (not when a push makes the key: its output is the pushed digest).
fn generate_test(a: GenerateTestArgs, name_to_stdout: bool) -> anyhow::Result<()> {
    let config = crate::dirs::config_dir()?;
    let store = key_store()?;
    if !berth_trust::truststore::is_valid_store_name(&a.name)
        || !berth_trust::keys::is_valid_key_name(&a.name)
    {
        anyhow::bail!(berth_trust::keys::KeyError::InvalidName(a.name));
    }
    let trust_dir = config.join("truststore/x509/ca").join(&a.name);
    let trust_file = trust_dir.join(format!("{}.crt", a.name));
    if !a.force {
        if store.contains(&a.name) {
            anyhow::bail!(berth_trust::keys::KeyError::Exists(a.name));
        }
        if trust_file.exists() {
            anyhow::bail!(
                "{} already exists (pass --force to replace it)",
                trust_file.display()
            );
        }
    }
    let key = SigningKey::generate(a.curve.spec())?;
    let (chain, anchor) = if a.ca {
        let (leaf, ca, _ca_key) = certgen::generate_test_ca(&a.name, &key, a.days)?;
        (vec![leaf, ca.clone()], ca)
    } else {
        let cert = certgen::self_signed(&CertParams::test(&a.name, a.days), &key)?;
        (vec![cert.clone()], cert)
    };
    store
        .add(
            &a.name,
            &key,
            Some(&chain),
            AddOptions {
                force: a.force,
                default: a.default,
            },
        )
        .with_context(|| format!("failed to store key {:?}", a.name))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&trust_dir)
        .with_context(|| format!("failed to create {}", trust_dir.display()))?;
    berth_fsutil::atomic_write(
        &trust_file,
        chain_pem(std::slice::from_ref(&anchor)).as_bytes(),
    )
    .with_context(|| format!("failed to write {}", trust_file.display()))?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "added {} to the trust store {}",
        anchor.subject,
        trust_file.display()
    );
    report_added(
        &store,
        &a.name,
        &key,
        chain.first(),
        a.default,
        name_to_stdout,
    )
}
