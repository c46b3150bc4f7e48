//! `berth trust init [--key NAME] [--envelope jws|cose]`: turns signing on push on
//! (`sign_on_push = true` in berth.toml). The first `berth push` after it makes a key and a
//! certificate when there is none; every push then signs with no flag.

use std::io::Write;

use clap::Args;

use super::sign::EnvelopeArg;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Sign with this key (default: the key store's default key, made at the first push when
    /// there is none).
    #[arg(long, short, value_name = "NAME")]
    key: Option<String>,
    /// The envelope format of the signatures.
    #[arg(long, value_enum)]
    envelope: Option<EnvelopeArg>,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let mut config = super::config::load()?;
    config.trust.sign_on_push = true;
    if let Some(k) = args.key {
        if !super::key::key_store()?.contains(&k) {
            anyhow::bail!(
                "no signing key {k:?}\nhint: `berth key list` shows the keys; leave out --key to have the first push make one"
            );
        }
        config.trust.key = Some(k);
    }
    if let Some(e) = args.envelope {
        config.trust.envelope = Some(
            match e {
                EnvelopeArg::Jws => "jws",
                EnvelopeArg::Cose => "cose",
            }
            .to_string(),
        );
    }
    let path = super::config::save(&config)?;
    let key = match &config.trust.key {
        Some(k) => format!("key {k:?}"),
        None => match super::key::key_store()?.default_key()? {
            Some(k) => format!("the default key {k:?}"),
            None => "a key the first push makes".to_string(),
        },
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "signing on: every `berth push` now signs what it pushed, with {key} ({})\nto verify images on `berth pull` and `berth run`, write a trust policy to {} (README: \"Signing and verifying\")",
        path.display(),
        path.with_file_name("trustpolicy.oci.json").display()
    );
    Ok(())
}
