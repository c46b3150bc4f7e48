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
//! timestamp_url = "http://timestamp.example/tsa"   # RFC 3161 timestamps on signed pushes
//! timestamp_root_cert = "tsa-root.crt"             # its root (relative: to this file's dir)
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
    /// An RFC 3161 timestamp authority for signatures made on push (with
    /// `timestamp_root_cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_url: Option<String>,
    /// The timestamp authority's root certificate (a relative path is under the
    /// configuration directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_root_cert: Option<PathBuf>,
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

    /// The timestamp authority signed pushes use: both `timestamp_url` and
    /// `timestamp_root_cert`, or neither (as `notation sign` requires of its flags).
    pub fn timestamper(&self) -> anyhow::Result<Option<berth_trust::tsa::Timestamper>> {
        match (&self.timestamp_url, &self.timestamp_root_cert) {
            (None, None) => Ok(None),
            (Some(url), Some(root)) => {
                let root = crate::dirs::config_dir()?.join(root);
                super::sign::timestamper(url, &root).map(Some)
            }
            (url, _) => anyhow::bail!(
                "[trust] of {} sets {} without {}: set both or neither",
                path().map(|p| p.display().to_string()).unwrap_or_default(),
                if url.is_some() {
                    "timestamp_url"
                } else {
                    "timestamp_root_cert"
                },
                if url.is_some() {
                    "timestamp_root_cert"
                } else {
                    "timestamp_url"
                },
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
                timestamp_url: Some("http://127.0.0.1:1/tsa".into()),
                timestamp_root_cert: Some("tsa-root.crt".into()),
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
