//! Provenance back to the source commit: an in-toto Statement v1 whose predicate is SLSA
//! provenance v1, naming the image it describes (`subject`), the git repository and commit it
//! was built from (`buildDefinition.resolvedDependencies`), the builder and the build's start
//! and end.
//!
//! The statement travels as an OCI artifact (artifact type [`MEDIA_TYPE`]) whose `subject` is
//! the image, and is signed with a Notary signature like any other manifest. This module only
//! makes and reads the statement and decides whether it names a required source; walking the
//! registry and verifying the statement's signature belong to the callers.
//!
//! Reading follows SLSA's parsing rules: unknown fields are ignored, the `predicateType` must
//! be exactly SLSA provenance v1 and `_type` exactly in-toto Statement v1. Repository names are
//! compared in a canonical form (`host/path`, lowercase host, no scheme, user, port-less
//! `scp`-style colon or `.git` suffix), commits as full hexadecimal object names only: an
//! abbreviated commit is refused, because a prefix is cheap to collide.

use std::collections::BTreeMap;
use std::fmt;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The media type of an in-toto statement, and the artifact type of its OCI artifact.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v1's `predicateType`.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The annotation docker buildx and others put on the layer naming the predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// berth's build type: a build described by its source and builder only.
pub const BUILD_TYPE: &str = "https://berth.dev/attest/source/v1";
/// The largest statement read: far above any real provenance, small enough to hold.
pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// Why a statement could not be made, read or accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProvenanceError {
    /// Not JSON, or JSON not shaped as an in-toto statement.
    #[error("provenance statement is malformed: {0}")]
    Malformed(String),
    /// More than [`MAX_STATEMENT_BYTES`].
    #[error("provenance statement is {0} bytes, more than the {MAX_STATEMENT_BYTES} read")]
    TooLarge(usize),
    /// `_type` or `predicateType` is not the one this reader knows.
    #[error("provenance statement has {field} {found:?}, expected {expected:?}")]
    WrongType {
        /// `_type` or `predicateType`.
        field: &'static str,
        /// What the statement says.
        found: String,
        /// What berth reads.
        expected: &'static str,
    },
    /// The statement does not name the image it is attached to.
    #[error("provenance statement is about {found}, not about the image {image}")]
    OtherSubject {
        /// The image's digest.
        image: String,
        /// The subjects' digests, comma-separated.
        found: String,
    },
    /// The statement names no git source.
    #[error(
        "provenance statement names no git source (no resolvedDependencies entry with a git+ uri and a gitCommit digest)"
    )]
    NoSource,
    /// The statement names another repository or commit than required.
    #[error("provenance names source {found}, but {required} is required")]
    OtherSource {
        /// What was required.
        required: String,
        /// What the statement names.
        found: String,
    },
    /// A requirement or a source given by the user is not usable.
    #[error("{0}")]
    BadSource(String),
}

/// A git source: repository (canonical `host/path`) and full commit object name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Canonical repository name, e.g. `github.com/acme/app`.
    pub repository: String,
    /// The full commit object name (40 hex for SHA-1 repositories, 64 for SHA-256).
    pub commit: String,
    /// The ref the build checked out, when known (`refs/heads/main`).
    pub reference: Option<String>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repository, self.commit)
    }
}

impl Source {
    /// A source from a repository URL as git prints it (`https://…`, `ssh://…`,
    /// `git@host:path`, a local path) and a commit.
    pub fn new(
        repository_url: &str,
        commit: &str,
        reference: Option<String>,
    ) -> Result<Source, ProvenanceError> {
        Ok(Source {
            repository: canonical_repository(repository_url)?,
            commit: full_commit(commit)?,
            reference,
        })
    }

    /// The SLSA `uri` for this source: `git+https://host/path`, with the ref after `@` when
    /// known (the form SLSA's examples use).
    fn uri(&self) -> String {
        match &self.reference {
            Some(r) => format!("git+https://{}@{r}", self.repository),
            None => format!("git+https://{}", self.repository),
        }
    }
}

/// What `--require-source REPO[@COMMIT]` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRequirement {
    /// Canonical repository name.
    pub repository: String,
    /// A full commit, when one is required.
    pub commit: Option<String>,
}

impl fmt::Display for SourceRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.commit {
            Some(c) => write!(f, "{}@{c}", self.repository),
            None => f.write_str(&self.repository),
        }
    }
}

impl SourceRequirement {
    /// Parses `REPO[@COMMIT]`. The commit is the part after the last `@` when that part is
    /// hexadecimal; `git@host:path` keeps its user.
    pub fn parse(s: &str) -> Result<SourceRequirement, ProvenanceError> {
        let (repo, commit) = match s.rsplit_once('@') {
            Some((r, c)) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (r, Some(full_commit(c)?))
            }
            _ => (s, None),
        };
        Ok(SourceRequirement {
            repository: canonical_repository(repo)?,
            commit,
        })
    }

    /// Whether `source` is what is required.
    pub fn check(&self, source: &Source) -> Result<(), ProvenanceError> {
        let same_repo = self.repository == source.repository;
        let same_commit = self
            .commit
            .as_ref()
            .is_none_or(|c| c.eq_ignore_ascii_case(&source.commit));
        if same_repo && same_commit {
            Ok(())
        } else {
            Err(ProvenanceError::OtherSource {
                required: self.to_string(),
                found: source.to_string(),
            })
        }
    }
}

/// Facts about the build besides its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// `runDetails.builder.id`: who ran the build (a CI job URL, `berth://HOST/USER`).
    pub builder_id: String,
    /// When the build started.
    pub started: Option<Timestamp>,
    /// When it ended.
    pub finished: Option<Timestamp>,
    /// `runDetails.metadata.invocationId`, e.g. a CI run id.
    pub invocation_id: Option<String>,
}

/// An in-toto Statement v1, as read or made. Unknown fields of the predicate are kept in
/// [`Statement::predicate`] untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// `https://in-toto.io/Statement/v1`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// What the statement is about.
    pub subject: Vec<ResourceDescriptor>,
    /// `https://slsa.dev/provenance/v1`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The SLSA predicate.
    pub predicate: serde_json::Value,
}

/// in-toto's ResourceDescriptor, the fields berth reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResourceDescriptor {
    /// A name for the resource (an image's repository, `registry/repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URI (`git+https://host/path@ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests by algorithm: `sha256`, `gitCommit`.
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// A statement that the image `image` (`name` is its repository) was built from `source`
    /// by `build`.
    pub fn new(name: &str, image: &Digest, source: &Source, build: &Build) -> Statement {
        let subject = ResourceDescriptor {
            name: Some(name.to_string()),
            uri: None,
            digest: BTreeMap::from([(image.algorithm().to_string(), image.hex().to_string())]),
        };
        let dependency = ResourceDescriptor {
            name: None,
            uri: Some(source.uri()),
            digest: BTreeMap::from([("gitCommit".to_string(), source.commit.clone())]),
        };
        let mut metadata = serde_json::Map::new();
        if let Some(id) = &build.invocation_id {
            metadata.insert("invocationId".into(), id.clone().into());
        }
        if let Some(t) = build.started {
            metadata.insert("startedOn".into(), t.to_string().into());
        }
        if let Some(t) = build.finished {
            metadata.insert("finishedOn".into(), t.to_string().into());
        }
        let predicate = serde_json::json!({
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": { "uri": source.uri(), "digest": { "gitCommit": source.commit } },
                },
                "resolvedDependencies": [dependency],
            },
            "runDetails": {
                "builder": { "id": build.builder_id },
                "metadata": metadata,
            },
        });
        Statement {
            type_: STATEMENT_TYPE.to_string(),
            subject: vec![subject],
            predicate_type: SLSA_PROVENANCE_V1.to_string(),
            predicate,
        }
    }

    /// The statement as the bytes of its OCI layer.
    pub fn to_json(&self) -> Vec<u8> {
        // A Statement is strings, arrays and maps only: serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a statement, refusing anything that is not an in-toto v1 statement with a SLSA
    /// provenance v1 predicate.
    pub fn parse(bytes: &[u8]) -> Result<Statement, ProvenanceError> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(ProvenanceError::TooLarge(bytes.len()));
        }
        let st: Statement =
            serde_json::from_slice(bytes).map_err(|e| ProvenanceError::Malformed(e.to_string()))?;
        if st.type_ != STATEMENT_TYPE {
            return Err(ProvenanceError::WrongType {
                field: "_type",
                found: st.type_,
                expected: STATEMENT_TYPE,
            });
        }
        if st.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(ProvenanceError::WrongType {
                field: "predicateType",
                found: st.predicate_type,
                expected: SLSA_PROVENANCE_V1,
            });
        }
        if !st.predicate.is_object() {
            return Err(ProvenanceError::Malformed(
                "the predicate is not a JSON object".into(),
            ));
        }
        Ok(st)
    }

    /// Whether one of the subjects is `image` (same algorithm and hex).
    pub fn is_about(&self, image: &Digest) -> Result<(), ProvenanceError> {
        let alg = image.algorithm().to_string();
        let hit = self.subject.iter().any(|s| {
            s.digest
                .get(&alg)
                .is_some_and(|h| h.eq_ignore_ascii_case(image.hex()))
        });
        if hit {
            return Ok(());
        }
        let found = self
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
            .collect::<Vec<_>>()
            .join(", ");
        Err(ProvenanceError::OtherSubject {
            image: image.to_string(),
            found: if found.is_empty() {
                "no digest".into()
            } else {
                found
            },
        })
    }

    /// The git sources the statement names: every `resolvedDependencies` entry with a `git+`
    /// uri and a `gitCommit` digest, in order.
    pub fn sources(&self) -> Vec<Source> {
        let deps = self
            .predicate
            .pointer("/buildDefinition/resolvedDependencies")
            .and_then(|v| v.as_array());
        let mut out = Vec::new();
        for dep in deps.into_iter().flatten() {
            let Ok(rd) = serde_json::from_value::<ResourceDescriptor>(dep.clone()) else {
                continue;
            };
            let (Some(uri), Some(commit)) = (rd.uri, rd.digest.get("gitCommit")) else {
                continue;
            };
            let Some(rest) = uri.strip_prefix("git+") else {
                continue;
            };
            // `git+https://host/path@refs/heads/main`: the ref follows the last `@` after
            // the host; a user (`git+ssh://git@host/…`) precedes the host.
            let (repo, reference) = split_ref(rest);
            if let Ok(src) = Source::new(repo, commit, reference) {
                out.push(src);
            }
        }
        out
    }

    /// The builder id, when the statement names one.
    pub fn builder_id(&self) -> Option<&str> {
        self.predicate
            .pointer("/runDetails/builder/id")
            .and_then(|v| v.as_str())
    }

    /// Accepts the statement for `image` under `required`: it is about the image and one of
    /// its sources is the required one. Returns that source.
    pub fn check(
        &self,
        image: &Digest,
        required: &SourceRequirement,
    ) -> Result<Source, ProvenanceError> {
        self.is_about(image)?;
        let sources = self.sources();
        if sources.is_empty() {
            return Err(ProvenanceError::NoSource);
        }
        let mut last = None;
        for s in sources {
            match required.check(&s) {
                Ok(()) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ProvenanceError::NoSource))
    }
}

/// Splits `https://host/path@ref` into the URL and the ref; the `@` of a user before the
/// host is not a ref separator.
fn split_ref(url: &str) -> (&str, Option<String>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    match url[host_end..].rfind('@') {
        Some(i) => (
            &url[..host_end + i],
            Some(url[host_end + i + 1..].to_string()),
        ),
        None => (url, None),
    }
}

/// The canonical name of a git repository: `host/path`, lowercase host, without scheme,
/// user, port, `.git` suffix or trailing slash. `git@host:org/repo.git`,
/// `https://host/org/repo`, `ssh://git@host:22/org/repo.git` and `host/org/repo` are all
/// `host/org/repo`. A local path (no host) is kept as an absolute path.
pub fn canonical_repository(url: &str) -> Result<String, ProvenanceError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(ProvenanceError::BadSource(
            "an empty repository name: give it as HOST/PATH, e.g. github.com/acme/app".into(),
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProvenanceError::BadSource(format!(
            "repository {url:?} contains whitespace or control characters"
        )));
    }
    let url = url.strip_prefix("git+").unwrap_or(url);
    let (host, path) = if let Some(i) = url.find("://") {
        let scheme = &url[..i];
        let rest = &url[i + 3..];
        if scheme == "file" {
            return Ok(trim_repo_path(rest).to_string());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host.split_once(':').map_or(host, |(h, _)| h);
        (host, path)
    } else if url.starts_with('/') {
        return Ok(trim_repo_path(url).to_string());
    } else if let Some((before, path)) = url.split_once(':')
        && !before.contains('/')
    {
        // scp-like: [user@]host:path
        let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
        (host, path)
    } else {
        url.split_once('/').unwrap_or((url, ""))
    };
    let path = trim_repo_path(path.trim_start_matches('/'));
    if host.is_empty() || path.is_empty() {
        return Err(ProvenanceError::BadSource(format!(
            "repository {url:?} has no host or no path: give it as HOST/PATH, e.g. github.com/acme/app"
        )));
    }
    Ok(format!("{}/{path}", host.to_ascii_lowercase()))
}

fn trim_repo_path(p: &str) -> &str {
    let p = p.trim_end_matches('/');
    p.strip_suffix(".git").unwrap_or(p).trim_end_matches('/')
}

/// A full commit object name, lowercased: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn full_commit(commit: &str) -> Result<String, ProvenanceError> {
    let ok = matches!(commit.len(), 40 | 64) && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(commit.to_ascii_lowercase())
    } else {
        Err(ProvenanceError::BadSource(format!(
            "commit {commit:?} is not a full commit object name (40 or 64 hex digits): an abbreviated one is cheap to collide; give `git rev-parse COMMIT`'s output"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "0123456789abcdef0123456789abcdef01234567";
    const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn image() -> Digest {
        Digest::sha256_of(b"an image manifest")
    }

    fn build() -> Build {
        Build {
            builder_id: "https://ci.example/runner/7".into(),
            started: Some(Timestamp(1_700_000_000)),
            finished: Some(Timestamp(1_700_000_100)),
            invocation_id: Some("run-42".into()),
        }
    }

    #[test]
    fn repository_names_are_canonical() {
        for url in [
            "https://github.com/acme/app",
            "https://github.com/acme/app.git",
            "https://GitHub.com/acme/app/",
            "git+https://github.com/acme/app",
            "http://user:pw@github.com:8443/acme/app.git",
            "ssh://git@github.com:22/acme/app.git",
            "git@github.com:acme/app.git",
            "github.com:acme/app",
            "github.com/acme/app",
        ] {
            assert_eq!(
                canonical_repository(url).unwrap(),
                "github.com/acme/app",
                "{url}"
            );
        }
        assert_eq!(
            canonical_repository("/srv/git/app.git").unwrap(),
            "/srv/git/app"
        );
        assert_eq!(
            canonical_repository("file:///srv/git/app").unwrap(),
            "/srv/git/app"
        );
        for bad in [
            "",
            "github.com",
            "https://github.com/",
            "a b/c",
            "git@host:",
        ] {
            assert!(canonical_repository(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn commits_must_be_full() {
        assert_eq!(full_commit(&C1.to_uppercase()).unwrap(), C1);
        assert!(full_commit(&"a".repeat(64)).is_ok());
        for bad in ["0123456", &C1[..39], &format!("{C1}0"), &"g".repeat(40)] {
            assert!(full_commit(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_statement_round_trips_and_names_its_source() {
        let src = Source::new(
            "git@github.com:acme/app.git",
            C1,
            Some("refs/heads/main".into()),
        )
        .unwrap();
        let st = Statement::new("registry.local/acme/app", &image(), &src, &build());
        let back = Statement::parse(&st.to_json()).unwrap();
        assert_eq!(back, st);
        assert_eq!(back.sources(), vec![src.clone()]);
        assert_eq!(back.builder_id(), Some("https://ci.example/runner/7"));
        let v: serde_json::Value = serde_json::from_slice(&st.to_json()).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], image().hex());
        assert_eq!(
            v["predicate"]["buildDefinition"]["resolvedDependencies"][0]["uri"],
            "git+https://github.com/acme/app@refs/heads/main"
        );
        assert_eq!(
            v["predicate"]["runDetails"]["metadata"]["startedOn"],
            "2023-11-14T22:13:20Z"
        );
        let req = SourceRequirement::parse(&format!("https://github.com/acme/app@{C1}")).unwrap();
        assert_eq!(back.check(&image(), &req).unwrap(), src);
        let any_commit = SourceRequirement::parse("github.com/acme/app").unwrap();
        assert!(back.check(&image(), &any_commit).is_ok());
    }

    #[test]
    fn another_commit_repository_or_image_is_refused() {
        let src = Source::new("https://github.com/acme/app", C1, None).unwrap();
        let st = Statement::new("r/acme/app", &image(), &src, &build());
        let other_commit = SourceRequirement::parse(&format!("github.com/acme/app@{C2}")).unwrap();
        assert!(matches!(
            st.check(&image(), &other_commit),
            Err(ProvenanceError::OtherSource { .. })
        ));
        let other_repo = SourceRequirement::parse("github.com/acme/app-fork").unwrap();
        assert!(matches!(
            st.check(&image(), &other_repo),
            Err(ProvenanceError::OtherSource { .. })
        ));
        let req = SourceRequirement::parse("github.com/acme/app").unwrap();
        let err = st
            .check(&Digest::sha256_of(b"another image"), &req)
            .unwrap_err();
        assert!(matches!(err, ProvenanceError::OtherSubject { .. }), "{err}");
        assert!(SourceRequirement::parse("github.com/acme/app@0123abc").is_err());
    }

    #[test]
    fn foreign_or_malformed_statements_are_refused_and_unknown_fields_ignored() {
        let src = Source::new("https://github.com/acme/app", C1, None).unwrap();
        let st = Statement::new("r/acme/app", &image(), &src, &build());
        let mut v: serde_json::Value = serde_json::from_slice(&st.to_json()).unwrap();
        v["predicate"]["runDetails"]["byproducts"] = serde_json::json!([{"name": "log"}]);
        v["extra"] = serde_json::json!(1);
        assert!(Statement::parse(&serde_json::to_vec(&v).unwrap()).is_ok());
        let mut w = v.clone();
        w["predicateType"] = "https://slsa.dev/provenance/v0.2".into();
        assert!(matches!(
            Statement::parse(&serde_json::to_vec(&w).unwrap()),
            Err(ProvenanceError::WrongType {
                field: "predicateType",
                ..
            })
        ));
        let mut w = v.clone();
        w["_type"] = "https://in-toto.io/Statement/v0.1".into();
        assert!(Statement::parse(&serde_json::to_vec(&w).unwrap()).is_err());
        assert!(matches!(
            Statement::parse(b"[1]"),
            Err(ProvenanceError::Malformed(_))
        ));
        let big = vec![b' '; MAX_STATEMENT_BYTES + 1];
        assert!(matches!(
            Statement::parse(&big),
            Err(ProvenanceError::TooLarge(_))
        ));
        // A dependency without a gitCommit, or not git+, names no source.
        let mut w = v;
        w["predicate"]["buildDefinition"]["resolvedDependencies"] =
            serde_json::json!([{"uri": "https://github.com/acme/app", "digest": {"sha1": C1}}]);
        let st = Statement::parse(&serde_json::to_vec(&w).unwrap()).unwrap();
        let req = SourceRequirement::parse("github.com/acme/app").unwrap();
        assert_eq!(st.check(&image(), &req), Err(ProvenanceError::NoSource));
    }

    #[test]
    fn refs_are_split_from_urls_but_users_are_not() {
        assert_eq!(
            split_ref("ssh://git@github.com/acme/app@refs/tags/v1"),
            ("ssh://git@github.com/acme/app", Some("refs/tags/v1".into()))
        );
        assert_eq!(
            split_ref("https://github.com/acme/app"),
            ("https://github.com/acme/app", None)
        );
    }
}
