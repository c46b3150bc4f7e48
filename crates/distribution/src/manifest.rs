//! Manifests and tags: `GET`/`HEAD`/`PUT` of manifests with digest verification, and tag
//! lists with `Link` pagination (distribution-spec "Pulling manifests", "Pushing
//! manifests", "Listing tags").

use berth_oci::{Digest, Digester, media_type, validate_tag};
use bytes::Bytes;
use http::Method;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LINK};

use crate::auth::Scopes;
use crate::body::{Body, read_body};
use crate::client::{Client, Repository};
use crate::error::Error;
use crate::transport::{Endpoint, Op, Outgoing};
use crate::url::{encode, next_link, resolve};

/// Largest manifest read (distribution-spec suggests registries accept at least 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest tag list page read.
const MAX_TAGS_BODY: usize = 16 << 20;
/// Tag-list pages followed at most.
const MAX_PAGES: usize = 10_000;

/// The `Accept` list for manifests when the caller gives none: OCI and Docker, images
/// and indexes.
pub const DEFAULT_MANIFEST_ACCEPT: [&str; 4] = [
    media_type::OCI_INDEX,
    media_type::OCI_MANIFEST,
    media_type::DOCKER_MANIFEST_LIST,
    media_type::DOCKER_MANIFEST_V2,
];

/// A manifest as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The exact bytes (their digest is `digest`).
    pub bytes: Bytes,
    /// The `Content-Type` (without parameters), else the body's `mediaType`, else `""`.
    pub media_type: String,
    /// The verified digest of `bytes`.
    pub digest: Digest,
}

/// What a `HEAD` of a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub media_type: Option<String>,
    /// `Docker-Content-Digest`, when the registry sent a valid one.
    pub digest: Option<Digest>,
    pub size: Option<u64>,
}

/// A manifest reference: a tag or a digest.
pub(crate) enum RefKind {
    Tag,
    Digest(Digest),
}

pub(crate) fn parse_reference(reference: &str) -> Result<RefKind, Error> {
    if reference.contains(':') {
        Digest::parse(reference)
            .map(RefKind::Digest)
            .map_err(|e| Error::InvalidInput {
                what: "digest",
                value: reference.to_owned(),
                reason: e.to_string(),
            })
    } else {
        validate_tag(reference)
            .map(|()| RefKind::Tag)
            .map_err(|e| Error::InvalidInput {
                what: "tag",
                value: reference.to_owned(),
                reason: e.to_string(),
            })
    }
}

impl Client {
    /// [`DEFAULT_MANIFEST_ACCEPT`]. The body's digest is checked against the reference when
    /// it is a digest, else against `Docker-Content-Digest` when the registry sends one.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), reference = %reference))]
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        accept: &[&str],
    ) -> Result<Manifest, Error> {
        let kind = parse_reference(reference)?;
        let op = Op {
            name: "get manifest",
            target: repo.target(Some(&reference)),
        };
        let out = Outgoing::new(
            Method::GET,
            Endpoint::Path(repo.path(&format!("manifests/{reference}"))),
        )
        .header(ACCEPT, &accept_header(accept));
        let reply = self
            .expect(&op, repo.registry(), Scopes::pull(repo.name()), out, &[200])
            .await?;
        let content_type = reply
            .header(CONTENT_TYPE)
            .map(|c| media_type::essence(c).to_owned());
        let header_digest = reply
            .header(crate::DOCKER_CONTENT_DIGEST)
            .and_then(|d| Digest::parse(d).ok());
        let bytes = read_body(&op, reply.resp, MAX_MANIFEST_BYTES, self.idle()).await?;
        let expected = match kind {
            RefKind::Digest(d) => Some(d),
            RefKind::Tag => header_digest,
        };
        let digest = match expected {
            Some(want) => {
                let mut h = Digester::new(want.algorithm());
                h.update(&bytes);
                let actual = h.finalize();
                if actual != want {
                    return Err(Error::DigestMismatch {
                        target: repo.target(Some(&want)),
                        actual,
                    });
                }
                actual
            }
            None => Digest::sha256_of(&bytes),
        };
        let media_type = content_type
            .filter(|c| !c.is_empty() && c != "application/octet-stream" && c != "text/plain")
            .or_else(|| body_media_type(&bytes))
            .unwrap_or_default();
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` a manifest: `None` when the registry does not have it.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), reference = %reference))]
    pub async fn head_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<ManifestHead>, Error> {
        parse_reference(reference)?;
        let op = Op {
            name: "check manifest",
            target: repo.target(Some(&reference)),
        };
        let out = Outgoing::new(
            Method::HEAD,
            Endpoint::Path(repo.path(&format!("manifests/{reference}"))),
        )
        .header(ACCEPT, &accept_header(accept));
        let Some(reply) = self.pull_if_found(&op, repo, out).await? else {
            return Ok(None);
        };
        Ok(Some(ManifestHead {
            media_type: reply
                .header(CONTENT_TYPE)
                .map(|c| media_type::essence(c).to_owned()),
            digest: reply
                .header(crate::DOCKER_CONTENT_DIGEST)
                .and_then(|d| Digest::parse(d).ok()),
            size: reply.header(CONTENT_LENGTH).and_then(|l| l.parse().ok()),
        }))
    }

    /// Push a manifest under `reference` (a tag, or its own digest). Returns its digest,
    /// checked against the registry's `Docker-Content-Digest`. A manifest with a `subject`
    /// pushed to a registry without the referrers API (no `OCI-Subject` in the answer) is
    /// also added to the subject's referrers tag index (distribution-spec "Pushing
    /// Manifests with Subject").
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), reference = %reference))]
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, Error> {
        let digest = match parse_reference(reference)? {
            RefKind::Digest(d) => {
                let mut h = Digester::new(d.algorithm());
                h.update(bytes);
                let actual = h.finalize();
                if actual != d {
                    return Err(Error::InvalidInput {
                        what: "manifest reference",
                        value: reference.to_owned(),
                        reason: format!("the manifest's digest is {actual}"),
                    });
                }
                d
            }
            RefKind::Tag => Digest::sha256_of(bytes),
        };
        let op = Op {
            name: "push manifest",
            target: repo.target(Some(&reference)),
        };
        let out = Outgoing::new(
            Method::PUT,
            Endpoint::Path(repo.path(&format!("manifests/{reference}"))),
        )
        .header(CONTENT_TYPE, media_type)
        .body(Body::Bytes(Bytes::copy_from_slice(bytes)));
        let reply = self
            .expect(
                &op,
                repo.registry(),
                Scopes::push(repo.name()),
                out,
                &[200, 201, 202, 204],
            )
            .await?;
        if let Some(d) = reply
            .header(crate::DOCKER_CONTENT_DIGEST)
            .and_then(|d| Digest::parse(d).ok())
            && d.algorithm() == digest.algorithm()
            && d != digest
        {
            return Err(Error::InvalidResponse {
                operation: op.name,
                target: op.target,
                reason: format!("the registry stored it as {d}, not {digest}"),
            });
        }
        let subject_handled = reply.header(crate::OCI_SUBJECT).is_some();
        drop(reply);
        if !subject_handled {
            self.referrers_fallback_after_push(repo, &digest, bytes, media_type)
                .await?;
        }
        Ok(digest)
    }

    /// All tags of `repo`, following `Link` pagination.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name()))]
    pub async fn tags(&self, repo: &Repository) -> Result<Vec<String>, Error> {
        self.tags_paged(repo, None).await
    }

    /// All tags of `repo`, asking for pages of `page_size` (`?n=`), following `Link`.
    pub async fn tags_paged(
        &self,
        repo: &Repository,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, Error> {
        let op = Op {
            name: "list tags of",
            target: repo.target(None),
        };
        let mut path = repo.path("tags/list");
        if let Some(n) = page_size {
            path = format!("{path}?n={}", encode(&n.to_string()));
        }
        let mut endpoint = Endpoint::Path(path);
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let out = Outgoing::new(Method::GET, endpoint.clone());
            let reply = self
                .expect(&op, repo.registry(), Scopes::pull(repo.name()), out, &[200])
                .await?;
            let next = reply
                .header(LINK)
                .and_then(next_link)
                .and_then(|l| resolve(&reply.url, l));
            let body = read_body(&op, reply.resp, MAX_TAGS_BODY, self.idle()).await?;
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let page: TagList =
                serde_json::from_slice(&body).map_err(|source| Error::InvalidDocument {
                    what: "tag list",
                    target: op.target.clone(),
                    source,
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(url) if seen.insert(url.clone()) => endpoint = Endpoint::Url(url),
                _ => return Ok(tags),
            }
        }
        Ok(tags)
    }
}

/// The `Accept` header value for `accept` (default list when empty).
fn accept_header(accept: &[&str]) -> String {
    if accept.is_empty() {
        DEFAULT_MANIFEST_ACCEPT.join(", ")
    } else {
        accept.join(", ")
    }
}

/// The `mediaType` field of a JSON body.
fn body_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(bytes)
        .ok()?
        .media_type
        .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(matches!(parse_reference("v1.0").unwrap(), RefKind::Tag));
        assert!(matches!(
            parse_reference(Digest::sha256_of(b"x").as_ref()).unwrap(),
            RefKind::Digest(_)
        ));
        assert!(parse_reference("../x").is_err());
        assert!(parse_reference("md5:abc").is_err());
    }

    #[test]
    fn accept_defaults() {
        assert!(accept_header(&[]).contains(media_type::OCI_INDEX));
        assert_eq!(accept_header(&["a/b"]), "a/b");
        assert_eq!(
            body_media_type(br#"{"mediaType":"x/y"}"#).as_deref(),
            Some("x/y")
        );
        assert_eq!(body_media_type(b"[]"), None);
    }
}
