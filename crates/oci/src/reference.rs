//! Image references (`[registry/]repository[:tag][@digest]`) normalised the
//! way docker and containerd do it: distribution/reference's
//! `ParseNormalizedNamed` followed by "latest" as the default tag.
//!
//! Normalisation rules, in order:
//! - a reference that is exactly 64 lowercase hex characters is refused (it
//!   is an image ID, not a name);
//! - with no `/`, the whole reference is a Docker Hub official image:
//!   `busybox` is `docker.io/library/busybox`, and `localhost:5000` is the
//!   image `docker.io/library/localhost` with tag `5000`;
//! - otherwise the part before the first `/` is a registry host if it is
//!   `localhost`, contains `.` or `:`, or contains an upper-case letter
//!   (repository names are lowercase, host names need not be); else the
//!   registry is `docker.io` and the whole name is the repository;
//! - `index.docker.io` is rewritten to `docker.io`; on `docker.io`, a
//!   single-component repository gets the `library/` prefix;
//! - the tag defaults to `latest` only when there is no digest; a reference
//!   may carry both (`name:tag@digest`), and both are kept.
//!
//! Two deliberate differences from distribution/reference: a first component
//! taken as a host must be a valid host (distribution silently falls back to
//! an empty domain for things like `foo_bar.com/x`), and the whole name
//! (`registry/repository`) is limited to 255 bytes, as distribution-spec
//! notes clients do (distribution now limits only the repository part).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{Digest, DigestError, truncate};
use crate::name::{MAX_NAME_LEN, NameError, validate_repository_name, validate_tag};

/// Registry of references that name none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Tag of references that carry neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Legacy name of Docker Hub, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";

/// A normalised image reference.
///
/// `Display` gives the full normalised form
/// (`docker.io/library/busybox:latest`), which parses back to an equal
/// `Reference`; [`Reference::familiar`] gives the short form docker prints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is the empty string.
    #[error("image reference is empty")]
    Empty,
    /// The overall shape is wrong.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidFormat {
        /// The rejected reference (cut to 128 characters).
        reference: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The repository path has upper-case letters.
    #[error("invalid image reference {reference:?}: repository name must be lowercase")]
    Uppercase {
        /// The rejected reference (cut to 128 characters).
        reference: String,
    },
    /// The part taken as a registry host is not a valid host.
    #[error("invalid registry host {registry:?} in image reference {reference:?}: {reason}")]
    InvalidRegistry {
        /// The rejected reference (cut to 128 characters).
        reference: String,
        /// The host part.
        registry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The repository path does not follow the distribution-spec grammar.
    #[error("invalid repository name in image reference {reference:?}")]
    InvalidRepository {
        /// The rejected reference (cut to 128 characters).
        reference: String,
        /// What the name validation found.
        #[source]
        source: NameError,
    },
    /// The tag is malformed.
    #[error("invalid tag in image reference {reference:?}")]
    InvalidTag {
        /// The rejected reference (cut to 128 characters).
        reference: String,
        /// What the tag validation found.
        #[source]
        source: NameError,
    },
    /// The digest is malformed or of an unsupported algorithm.
    #[error("invalid digest in image reference {reference:?}")]
    InvalidDigest {
        /// The rejected reference (cut to 128 characters).
        reference: String,
        /// What the digest parser found.
        #[source]
        source: DigestError,
    },
    /// `registry/repository` is longer than 255 bytes.
    #[error(
        "image reference {reference:?} names a repository of {len} bytes (registry/name), over the limit of {max}"
    )]
    NameTooLong {
        /// The rejected reference (cut to 128 characters).
        reference: String,
        /// Length of `registry/repository` after normalisation.
        len: usize,
        /// The limit, 255.
        max: usize,
    },
}

impl Reference {
    /// Parses and normalises a reference (see the module documentation).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let reference = || truncate(s);
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::InvalidFormat {
                reference: reference(),
                reason: "a 64-character hex string is an image ID, not a repository name",
            });
        }

        let (registry, remainder, explicit_registry) = split_registry(s);

        // remainder = path [":" tag] ["@" digest]; neither the path nor the
        // tag may contain '@' or ':', so the first of each splits.
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((before, after)) => (before, Some(after)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((before, after)) => (before, Some(after)),
            None => (name_and_tag, None),
        };

        if explicit_registry {
            validate_registry_host(registry).map_err(|reason| ReferenceError::InvalidRegistry {
                reference: reference(),
                registry: truncate(registry),
                reason,
            })?;
        }
        if path.is_empty() {
            return Err(ReferenceError::InvalidFormat {
                reference: reference(),
                reason: "repository name is missing",
            });
        }
        if path.chars().any(char::is_uppercase) {
            return Err(ReferenceError::Uppercase {
                reference: reference(),
            });
        }
        let name_len = registry.len() + 1 + path.len();
        if name_len > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong {
                reference: reference(),
                len: name_len,
                max: MAX_NAME_LEN,
            });
        }
        validate_repository_name(path).map_err(|source| ReferenceError::InvalidRepository {
            reference: reference(),
            source,
        })?;
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|source| ReferenceError::InvalidTag {
                reference: reference(),
                source,
            })?;
        }
        let digest = digest.map(Digest::parse).transpose().map_err(|source| {
            ReferenceError::InvalidDigest {
                reference: reference(),
                source,
            }
        })?;
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository: path.to_owned(),
            tag,
            digest,
        })
    }

    /// Registry host, with port if any: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path within the registry: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when the reference had neither tag nor digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form docker prints: `busybox:latest`, `myorg/app:1.0`,
    /// `ghcr.io/o/app@sha256:…` (Docker Hub's domain and official `library/`
    /// namespace dropped). Unlike docker, `docker.io/` stays when dropping it
    /// would make the first path component read as a host
    /// (`docker.io/foo.com/bar`), so the result always parses back to `self`.
    pub fn familiar(&self) -> String {
        let mut out = String::new();
        let short = match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest,
            _ => &self.repository,
        };
        // Docker drops "docker.io/" even when the path then starts with
        // something read as a host ("docker.io/foo.com/bar" would print as
        // "foo.com/bar", which names registry foo.com). Keep it there, so
        // the familiar form always parses back to the same reference.
        let ambiguous = short
            .split_once('/')
            .is_some_and(|(first, _)| names_registry(first));
        if self.registry == DEFAULT_REGISTRY && !ambiguous {
            out.push_str(short);
        } else {
            out.push_str(&self.registry);
            out.push('/');
            out.push_str(&self.repository);
        }
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
    }
}

/// Splits off the registry as distribution's `splitDockerDomain` does.
/// Returns (registry, remainder, whether the registry was written out).
fn split_registry(s: &str) -> (&str, String, bool) {
    let Some((first, rest)) = s.split_once('/') else {
        return (DEFAULT_REGISTRY, format!("{OFFICIAL_PREFIX}{s}"), false);
    };
    let (registry, remainder, explicit) = if first == LEGACY_DEFAULT_REGISTRY {
        (DEFAULT_REGISTRY, rest, true)
    } else if names_registry(first) {
        (first, rest, true)
    } else {
        (DEFAULT_REGISTRY, s, false)
    };
    let remainder = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
        format!("{OFFICIAL_PREFIX}{remainder}")
    } else {
        remainder.to_owned()
    };
    (registry, remainder, explicit)
}

/// Whether the first `/`-separated component of a reference with more than
/// one is a registry host rather than a Docker Hub namespace.
fn names_registry(first: &str) -> bool {
    first == "localhost" || first.contains(['.', ':']) || first.chars().any(char::is_uppercase)
}

/// distribution/reference `domainAndPort`: a DNS-ish name (components of
/// ASCII letters, digits and inner '-', joined by '.'; IPv4 fits this) or a
/// bracketed IPv6 address without zone, then optionally `:` and digits.
fn validate_registry_host(host: &str) -> Result<(), &'static str> {
    let port = if let Some(after_bracket) = host.strip_prefix('[') {
        let Some((addr, rest)) = after_bracket.split_once(']') else {
            return Err("IPv6 address is missing its closing ']'");
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(
                "IPv6 address may only contain hex digits and ':' (no zone or embedded IPv4)",
            );
        }
        if rest.is_empty() {
            None
        } else {
            match rest.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("only ':' and a port may follow an IPv6 address"),
            }
        }
    } else {
        let (name, port) = match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        };
        for component in name.split('.') {
            let bytes = component.as_bytes();
            let ok = !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && bytes.first() != Some(&b'-')
                && bytes.last() != Some(&b'-');
            if !ok {
                return Err(
                    "host name components must be ASCII letters, digits and inner '-', joined by '.'",
                );
            }
        }
        port
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err("port must be a decimal number");
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
