//! berth's configuration file, `<config>/berth.toml` (`$XDG_CONFIG_HOME/berth`, `/etc/berth`
//! for root). Today it holds the trust settings `berth trust init` writes:
//!
//! ```toml
//! [trust]
//! sign_on_push = true     # every `berth push` signs what it pushed
//! key = "alice.example"   # the signing key (default: the key store's default key)
//! envelope = "jws"        # or "cose"
//! pin_signers = true      # trust on first use: pull and run refuse a repository's image
//!                         # signed by another identity than the first one seen
//! ```
//!
//! Unknown keys are refused, so a typo does not silently leave signing off.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The file's name in the configuration directory.
pub const FILE: &str = "berth.toml";

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub trust: TrustSection,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Sign every pushed image with no flag.
    #[serde(default)]
    pub sign_on_push: bool,
    /// The signing key's name (else the key store's default key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `jws` (default) or `cose`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    /// Trust on first use of each repository's signer (with a trust policy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pin_signers: bool,
}

impl TrustSection {
    pub fn envelope_format(&self) -> anyhow::Result<berth_trust::EnvelopeFormat> {
        match self.envelope.as_deref() {
            None | Some("jws") => Ok(berth_trust::EnvelopeFormat::Jws),
            Some("cose") => Ok(berth_trust::EnvelopeFormat::Cose),
            Some(other) => anyhow::bail!(
                "envelope = {other:?} in [trust] of {}: it is \"jws\" or \"cose\"",
                path().map(|p| p.display().to_string()).unwrap_or_default()
            ),
        }
    }
}

/// `<config>/berth.toml`.
pub fn path() -> anyhow::Result<PathBuf> {
    Ok(crate::dirs::config_dir()?.join(FILE))
}

/// The configuration, or the defaults when there is no file.
pub fn load() -> anyhow::Result<Config> {
    let p = path()?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", p.display())),
    };
    toml::from_str(&text).with_context(|| format!("invalid configuration {}", p.display()))
}

/// Writes `config` atomically (mode 0644: it holds no secret).
pub fn save(config: &Config) -> anyhow::Result<PathBuf> {
    let p = path()?;
    if let Some(dir) = p.parent() {
        berth_fsutil::create_dir_all_durable(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let text = toml::to_string(config).context("failed to encode the configuration")?;
    berth_fsutil::atomic_write(&p, text.as_bytes())
        .with_context(|| format!("failed to write {}", p.display()))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_typos() {
        let c = Config {
            trust: TrustSection {
                sign_on_push: true,
                key: Some("alice.example".into()),
                envelope: None,
                pin_signers: true,
            },
        };
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), c);
        assert!(toml::from_str::<Config>("[trust]\nsign_on_psh = true\n").is_err());
        assert_eq!(
            toml::from_str::<Config>("").unwrap(),
            Config::default(),
            "an empty file is the defaults"
        );
    }
}
