//! Where images are copied from and to: a registry reference (`[docker://]REF`), an OCI
//! image layout (`oci:PATH[:TAG]`), the local store (`store:NAME`), or an image archive
//! (`docker-archive:PATH[:REF]`, `oci-archive:PATH[:TAG]`), named as skopeo names them.

use std::path::PathBuf;

use berth_oci::Reference;

use crate::{Result, TransferError};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A repository on a registry, by tag or digest.
    Registry(Reference),
    /// An OCI image layout directory and the `org.opencontainers.image.ref.name` of the
    /// image in it (`None`: the only image of the layout as a source, untagged as a
    /// destination).
    Layout { path: PathBuf, tag: Option<String> },
    /// An image of the local store, by its normalised reference.
    Store(String),
    /// A `docker save` archive, and the name of the image in it (`RepoTags`): as a
    /// source, `None` is its only image; as a destination, the image is written unnamed.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// A tar of an OCI image layout, and the `org.opencontainers.image.ref.name` of the
    /// image in it, as for [`Endpoint::Layout`].
    OciArchive { path: PathBuf, tag: Option<String> },
}

impl Endpoint {
    /// `oci:PATH[:TAG]`, `store:NAME`, `docker-archive:PATH[:REF]`,
    /// `oci-archive:PATH[:TAG]`, else a registry reference (`docker://` optional).
    pub fn parse(s: &str) -> Result<Endpoint> {
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = archive_location(s, rest)?;
            let reference = reference.map(store_name).transpose()?;
            return Ok(Endpoint::DockerArchive { path, reference });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = archive_location(s, rest)?;
            let tag = tag.map(str::to_owned);
            return Ok(Endpoint::OciArchive { path, tag });
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if !p.is_empty() && !t.is_empty() && !t.contains('/') => {
                    (p, Some(t.to_owned()))
                }
                _ => (rest, None),
            };
            if path.is_empty() {
                return Err(TransferError::LayoutPathMissing {
                    location: s.to_owned(),
                });
            }
            return Ok(Endpoint::Layout {
                path: PathBuf::from(path),
                tag,
            });
        }
        if let Some(name) = s.strip_prefix("store:") {
            return Ok(Endpoint::Store(store_name(name)?));
        }
        let r = s.strip_prefix("docker://").unwrap_or(s);
        Ok(Endpoint::Registry(parse_reference(r)?))
    }
}

/// `PATH[:NAME]` of an archive location: as skopeo, the path ends at the first colon and
/// the name (a reference, which may hold colons) is the rest.
fn archive_location<'a>(location: &str, rest: &'a str) -> Result<(PathBuf, Option<&'a str>)> {
    let (path, name) = match rest.split_once(':') {
        Some((p, n)) if !n.is_empty() => (p, Some(n)),
        _ => (rest.trim_end_matches(':'), None),
    };
    if path.is_empty() {
        return Err(TransferError::ArchivePathMissing {
            location: location.to_owned(),
        });
    }
    Ok((PathBuf::from(path), name))
}

/// The key under which the store records `name`: the full normalised reference.
fn store_name(name: &str) -> Result<String> {
    Ok(parse_reference(name)?.to_string())
}

fn parse_reference(r: &str) -> Result<Reference> {
    Reference::parse(r).map_err(|source| TransferError::InvalidReference {
        reference: r.to_owned(),
        source,
    })
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Registry(r) => write!(f, "{r}"),
            Endpoint::Layout { path, tag: Some(t) } => write!(f, "oci:{}:{t}", path.display()),
            Endpoint::Layout { path, tag: None } => write!(f, "oci:{}", path.display()),
            Endpoint::Store(n) => write!(f, "store:{n}"),
            Endpoint::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}", path.display())?;
                reference.iter().try_for_each(|r| write!(f, ":{r}"))
            }
            Endpoint::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}", path.display())?;
                tag.iter().try_for_each(|t| write!(f, ":{t}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_of_location() {
        assert_eq!(
            Endpoint::parse("oci:/tmp/a:v1").unwrap(),
            Endpoint::Layout {
                path: "/tmp/a".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Endpoint::parse("oci:dir").unwrap(),
            Endpoint::Layout {
                path: "dir".into(),
                tag: None
            }
        );
        assert_eq!(
            Endpoint::parse("store:busybox").unwrap(),
            Endpoint::Store("docker.io/library/busybox:latest".into())
        );
        let Endpoint::Registry(r) = Endpoint::parse("docker://127.0.0.1:5000/x:v1").unwrap() else {
            panic!("not a registry endpoint");
        };
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert!(Endpoint::parse("oci:").is_err());
        assert_eq!(
            Endpoint::parse("docker-archive:/tmp/a.tar:127.0.0.1:5000/x:v1").unwrap(),
            Endpoint::DockerArchive {
                path: "/tmp/a.tar".into(),
                reference: Some("127.0.0.1:5000/x:v1".into())
            }
        );
        assert_eq!(
            Endpoint::parse("docker-archive:a.tar").unwrap(),
            Endpoint::DockerArchive {
                path: "a.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            Endpoint::parse("oci-archive:a.tar:v1").unwrap(),
            Endpoint::OciArchive {
                path: "a.tar".into(),
                tag: Some("v1".into())
            }
        );
        assert!(Endpoint::parse("docker-archive:").is_err());
        assert!(Endpoint::parse("oci-archive::v1").is_err());
    }
}
