//! Trust on first use for signing identities, as SSH's `known_hosts` does for host keys: the
//! first verified signature seen for a repository pins its signer (the leaf certificate's
//! SHA-256 and subject); a later image of that repository signed by anyone else is refused
//! with both identities named and the exact command that accepts the new one
//! (`berth trust accept REPO --certificate sha256:…`).
//!
//! The pin store is one JSON file (`berth.pins/v1`), written atomically with mode 0600 and
//! refused when group or others may write it. Deciding ([`PinStore::check`]) is pure; the
//! caller saves the store when it changed.
//!
//! ```text
//! {
//!   "version": "berth.pins/v1",
//!   "pins": {
//!     "registry.example/team/app": {
//!       "certificateSha256": "sha256:…", "subject": "CN=ci,O=Acme,ST=WA,C=US",
//!       "pinnedAt": "2026-12-04T18:00:00Z",
//!       "refused": {"certificateSha256": "sha256:…", "subject": "…", "seenAt": "…"}
//!     }
//!   }
//! }
//! ```

use crate::roles::VerifiedSignature;
use crate::time::Timestamp;
use crate::verify::{Outcome, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The `version` of the pin file.
pub const PINS_VERSION: &str = "berth.pins/v1";

/// A signing identity: the leaf certificate's SHA-256 (what is compared) and its subject
/// (what a person reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    /// `sha256:` and 64 lowercase hex digits.
    pub certificate_sha256: String,
    pub subject: String,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{}", self.certificate_sha256)
        } else {
            write!(f, "{} ({})", self.certificate_sha256, self.subject)
        }
    }
}

impl Identity {
    /// The signer of a verified signature, if it has a certificate.
    pub fn of(sig: &VerifiedSignature) -> Option<Identity> {
        let leaf = sig.leaf()?;
        let fp = sig.certificate_sha256()?;
        Some(Identity {
            certificate_sha256: format!("sha256:{}", crate::roles::hex_digest(&fp)),
            subject: leaf.subject.to_string(),
        })
    }
}

/// An identity that was refused for a repository, kept so that `accept` can pin it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Refused {
    #[serde(flatten)]
    pub identity: Identity,
    pub seen_at: String,
}

/// One repository's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pin {
    #[serde(flatten)]
    pub identity: Identity,
    pub pinned_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    version: String,
    #[serde(default)]
    pins: BTreeMap<String, Pin>,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TofuOutcome {
    /// No pin existed: this identity is pinned now (save the store).
    FirstUse(Identity),
    /// A signature is by the pinned identity.
    Match(Identity),
}

/// A repository's image signed by another identity than the pinned one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the signing identity of {repository} changed: it was pinned to {pinned} on {pinned_at}, and this image is signed by {presented}\nhint: if the change is expected (a renewed or rotated signing certificate), accept it with: berth trust accept {repository} --certificate {}",
    presented.certificate_sha256
)]
pub struct IdentityChanged {
    pub repository: String,
    pub pinned: Identity,
    pub pinned_at: String,
    pub presented: Identity,
}

/// Why the pin store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TofuError {
    #[error(transparent)]
    Changed(Box<IdentityChanged>),
    #[error("no valid signature on the image of {repository} to pin or to check against its pin")]
    NoValidSignature { repository: String },
    #[error("{repository} has no pin")]
    NoPin { repository: String },
    #[error(
        "no refused identity is recorded for {repository}; to pin a certificate by hand give --certificate sha256:HEX"
    )]
    NothingToAccept { repository: String },
    #[error(
        "the identity refused for {repository} is {refused}, not {given}: pull the image again to see which identity it carries"
    )]
    NotTheRefused {
        repository: String,
        refused: Identity,
        given: String,
    },
    #[error("{0:?} is not a certificate SHA-256 (sha256: and 64 hex digits)")]
    BadFingerprint(String),
    #[error("failed to read the pin store {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the pin store {path} is not valid ({PINS_VERSION})")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the pin store {path} has version {version:?}; this berth reads {PINS_VERSION}")]
    Version { path: PathBuf, version: String },
    #[error(
        "the pin store {path} may be written by group or others (mode {mode:o}): run chmod 600 {path}"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("failed to write the pin store {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
}

/// The pins of every repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinStore {
    pins: BTreeMap<String, Pin>,
}

/// Whether this signature is verified and its chain trusted (a logged authenticity failure
/// does not pin).
fn trusted(sig: &VerifiedSignature) -> bool {
    let v = sig.verdict();
    v.passed
        && v.steps
            .iter()
            .any(|s| s.step == Step::Authenticity && s.outcome == Outcome::Passed)
}

impl PinStore {
    /// Parses a pin file's bytes.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<PinStore, TofuError> {
        let f: File = serde_json::from_slice(bytes).map_err(|source| TofuError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if f.version != PINS_VERSION {
            return Err(TofuError::Version {
                path: path.to_owned(),
                version: f.version,
            });
        }
        Ok(PinStore { pins: f.pins })
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let f = File {
            version: PINS_VERSION.to_string(),
            pins: self.pins.clone(),
        };
        let mut v = serde_json::to_vec_pretty(&f).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Reads the pin store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<PinStore, TofuError> {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PinStore::default()),
            Err(source) => {
                return Err(TofuError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if meta.mode() & 0o022 != 0 {
            return Err(TofuError::Permissions {
                path: path.to_owned(),
                mode: meta.mode() & 0o7777,
            });
        }
        let bytes = std::fs::read(path).map_err(|source| TofuError::Read {
            path: path.to_owned(),
            source,
        })?;
        PinStore::parse(&bytes, path)
    }

    /// Writes the pin store atomically (temporary file, fsync, rename, fsync directory) with
    /// mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), TofuError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let werr = |source| TofuError::Write {
            path: path.to_owned(),
            source,
        };
        let io = |source| {
            werr(berth_fsutil::FsError::Write {
                path: path.to_owned(),
                source,
            })
        };
        let mut f = berth_fsutil::AtomicFile::create(path).map_err(werr)?;
        if let Some(file) = f.file() {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        f.write_all(&self.to_json()).map_err(io)?;
        f.commit().map_err(werr)?;
        Ok(())
    }

    /// The pin of a repository.
    pub fn get(&self, repository: &str) -> Option<&Pin> {
        self.pins.get(repository)
    }

    /// Every pin, by repository.
    pub fn pins(&self) -> impl Iterator<Item = (&String, &Pin)> {
        self.pins.iter()
    }

    /// Checks the signatures of an image of `repository` against its pin. Without a pin, the
    /// first trusted signature's signer is pinned ([`TofuOutcome::FirstUse`]). With one, the
    /// image passes when any trusted signature is by the pinned certificate; otherwise it is
    /// refused ([`TofuError::Changed`]) and the new identity is recorded as refused, so that
    /// `accept` can pin exactly it. Save the store after `FirstUse` and `Changed`.
    pub fn check(
        &mut self,
        repository: &str,
        signatures: &[VerifiedSignature],
        now: Timestamp,
    ) -> Result<TofuOutcome, TofuError> {
        let signers: Vec<Identity> = signatures
            .iter()
            .filter(|s| trusted(s))
            .filter_map(Identity::of)
            .collect();
        let Some(first) = signers.first() else {
            return Err(TofuError::NoValidSignature {
                repository: repository.to_string(),
            });
        };
        let Some(pin) = self.pins.get_mut(repository) else {
            self.pins.insert(
                repository.to_string(),
                Pin {
                    identity: first.clone(),
                    pinned_at: now.to_string(),
                    refused: None,
                },
            );
            return Ok(TofuOutcome::FirstUse(first.clone()));
        };
        if let Some(same) = signers
            .iter()
            .find(|s| s.certificate_sha256 == pin.identity.certificate_sha256)
        {
            if pin.identity.subject.is_empty() {
                // pinned by fingerprint alone: learn the subject
                pin.identity.subject = same.subject.clone();
            }
            return Ok(TofuOutcome::Match(pin.identity.clone()));
        }
        pin.refused = Some(Refused {
            identity: first.clone(),
            seen_at: now.to_string(),
        });
        Err(TofuError::Changed(Box::new(IdentityChanged {
            repository: repository.to_string(),
            pinned: pin.identity.clone(),
            pinned_at: pin.pinned_at.clone(),
            presented: first.clone(),
        })))
    }

    /// Replaces a repository's pin with the identity last refused for it (which must be
    /// `certificate` when given), or, with no refusal recorded, with `certificate` alone (its
    /// subject is learnt at the next check). Returns the previous pin and the new one.
    pub fn accept(
        &mut self,
        repository: &str,
        certificate: Option<&str>,
        now: Timestamp,
    ) -> Result<(Option<Identity>, Identity), TofuError> {
        let given = match certificate {
            Some(c) => Some(normalise_fingerprint(c)?),
            None => None,
        };
        let old = self.pins.get(repository).cloned();
        let refused = old.as_ref().and_then(|p| p.refused.clone());
        let identity = match (refused, given) {
            (Some(r), None) => r.identity,
            (Some(r), Some(g)) if r.identity.certificate_sha256 == g => r.identity,
            (Some(r), Some(g)) => {
                return Err(TofuError::NotTheRefused {
                    repository: repository.to_string(),
                    refused: r.identity,
                    given: g,
                });
            }
            (None, Some(g)) => Identity {
                certificate_sha256: g,
                subject: String::new(),
            },
            (None, None) => {
                return Err(TofuError::NothingToAccept {
                    repository: repository.to_string(),
                });
            }
        };
        self.pins.insert(
            repository.to_string(),
            Pin {
                identity: identity.clone(),
                pinned_at: now.to_string(),
                refused: None,
            },
        );
        Ok((old.map(|p| p.identity), identity))
    }

    /// Forgets a repository's pin (the next image pins anew).
    pub fn remove(&mut self, repository: &str) -> Result<Pin, TofuError> {
        self.pins
            .remove(repository)
            .ok_or_else(|| TofuError::NoPin {
                repository: repository.to_string(),
            })
    }
}

/// `sha256:` + lowercase hex, from the forms people paste (with or without `sha256:`,
/// upper case, openssl's colons).
pub fn normalise_fingerprint(s: &str) -> Result<String, TofuError> {
    crate::roles::parse_sha256_text(s)
        .map(|d| format!("sha256:{}", crate::roles::hex_digest(&d)))
        .ok_or_else(|| TofuError::BadFingerprint(s.to_string()))
}
