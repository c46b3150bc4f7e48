//! The registry's storage layout: the only place that builds storage paths.
//!
//! ```text
//! <root>/
//!   v1/                                       LAYOUT_VERSION
//!     blobs/<alg>/<hex[0..2]>/<hex>/data       content, visible only once its digest is verified
//!     blobs/<alg>/<hex[0..2]>/<hex>/lastref    when the blob was last newly referenced (upload
//!                                             commit, mount, manifest push): unix milliseconds,
//!                                             the garbage collector's clock; written before
//!                                             `data` first appears
//!     _trash/<alg>-<hex>                      a blob the collector has moved aside (transient)
//!     _gc/lease/<generation, 20 digits>       the collector's lease (JSON: owner, acquired,
//!                                             expires, released): the highest generation
//!                                             holds it; created only with `put_new`
//!     repositories/<name>/                    <name> passed validate_repository_name: no `..`,
//!                                             no leading `_`, so it never collides with the below
//!       _layers/<alg>/<hex>/link                blob linked into the repository (content: digest)
//!       _manifests/revisions/<alg>/<hex>/link   manifest in the repository (content: RevisionMeta JSON)
//!       _manifests/tags/<tag>/current/link      tag (content: manifest digest)
//!       _referrers/<alg>/<subject hex>/<alg>-<hex>
//!                                             a manifest whose `subject` is that digest
//!                                             (content: its descriptor JSON)
//!       _uploads/<session id>/data              bytes received so far
//!       _uploads/<session id>/startedat         when the session began (unix milliseconds)
//! ```
//!
//! Blob content is shared by every repository; a repository sees a blob only through its
//! `_layers` link, so access to a digest is always scoped by repository.

use berth_oci::Digest;

/// Bump when the layout changes incompatibly.
pub const LAYOUT_VERSION: &str = "v1";

pub fn blobs_root() -> String {
    format!("{LAYOUT_VERSION}/blobs")
}

pub fn blob_data(d: &Digest) -> String {
    let hex = d.hex();
    format!(
        "{LAYOUT_VERSION}/blobs/{}/{}/{}/data",
        d.algorithm().as_str(),
        &hex[..2],
        hex
    )
}

/// The garbage collector's "last referenced" record of a blob (see [`crate::storage`]).
pub fn blob_last_referenced(d: &Digest) -> String {
    let hex = d.hex();
    format!(
        "{LAYOUT_VERSION}/blobs/{}/{}/{}/lastref",
        d.algorithm().as_str(),
        &hex[..2],
        hex
    )
}

/// Where the collector moves a blob's content aside before deciding to delete it.
pub fn blob_trash(d: &Digest) -> String {
    format!(
        "{LAYOUT_VERSION}/_trash/{}-{}",
        d.algorithm().as_str(),
        d.hex()
    )
}

/// Where the garbage collector's numbered lease objects live (see `lease.rs`).
pub fn lease_dir() -> String {
    format!("{LAYOUT_VERSION}/_gc/lease")
}

/// One generation of the lease; zero-padded so that names sort as numbers.
pub fn lease(generation: u64) -> String {
    format!("{LAYOUT_VERSION}/_gc/lease/{generation:020}")
}

pub fn repositories_root() -> String {
    format!("{LAYOUT_VERSION}/repositories")
}

pub fn repo(name: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}")
}

pub fn layer_link(name: &str, d: &Digest) -> String {
    format!(
        "{LAYOUT_VERSION}/repositories/{name}/_layers/{}/{}/link",
        d.algorithm().as_str(),
        d.hex()
    )
}

pub fn layers_dir(name: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_layers")
}

pub fn revision_link(name: &str, d: &Digest) -> String {
    format!(
        "{LAYOUT_VERSION}/repositories/{name}/_manifests/revisions/{}/{}/link",
        d.algorithm().as_str(),
        d.hex()
    )
}

pub fn revisions_dir(name: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_manifests/revisions")
}

pub fn tags_dir(name: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_manifests/tags")
}

pub fn tag_link(name: &str, tag: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_manifests/tags/{tag}/current/link")
}

pub fn tag_dir(name: &str, tag: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_manifests/tags/{tag}")
}

pub fn referrers_dir(name: &str, subject: &Digest) -> String {
    format!(
        "{LAYOUT_VERSION}/repositories/{name}/_referrers/{}/{}",
        subject.algorithm().as_str(),
        subject.hex()
    )
}

pub fn referrer_entry(name: &str, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{}/{}-{}",
        referrers_dir(name, subject),
        referrer.algorithm().as_str(),
        referrer.hex()
    )
}

pub fn uploads_dir(name: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_uploads")
}

pub fn upload_dir(name: &str, id: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_uploads/{id}")
}

/// The name of an upload session's data in its directory ([`upload_dir`]).
pub const UPLOAD_DATA: &str = "data";
/// The name of an upload session's start marker in its directory ([`upload_dir`]).
pub const UPLOAD_STARTED: &str = "startedat";

pub fn upload_data(name: &str, id: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_uploads/{id}/{UPLOAD_DATA}")
}

pub fn upload_started(name: &str, id: &str) -> String {
    format!("{LAYOUT_VERSION}/repositories/{name}/_uploads/{id}/{UPLOAD_STARTED}")
}

/// Where the data of upload sessions lives on a driver that adopts written files by
/// reference ([`crate::storage::Driver::reference_min`]): apart from the sessions, so that
/// a session's end does not delete data a blob now references. One directory per session,
/// named by its id (server-made, unique across repositories).
pub fn upload_data_root() -> String {
    format!("{LAYOUT_VERSION}/_uploaddata")
}

pub fn upload_data_dir(id: &str) -> String {
    format!("{LAYOUT_VERSION}/_uploaddata/{id}")
}

/// The session's data in [`upload_data_dir`] (named as in the session's own directory).
pub fn upload_data_apart(id: &str) -> String {
    format!("{LAYOUT_VERSION}/_uploaddata/{id}/{UPLOAD_DATA}")
}

/// The name of the owner record in [`upload_data_dir`]: the digest of the blob that
/// references the data, created (conditionally) by the commit before the reference, or
/// [`UPLOAD_DATA_REAPED`] by the collector that deletes data no session or blob owns.
pub const UPLOAD_DATA_OWNER: &str = "owner";
pub const UPLOAD_DATA_REAPED: &str = "reaped";

pub fn upload_data_owner(id: &str) -> String {
    format!("{LAYOUT_VERSION}/_uploaddata/{id}/{UPLOAD_DATA_OWNER}")
}

/// The session whose data kept apart is at `path` (what a blob's reference names), if it
/// is such data.
pub fn upload_data_id_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix(&format!("{}/", upload_data_root()))?;
    let (id, name) = rest.split_once('/')?;
    (!id.is_empty() && !id.contains('/') && name == UPLOAD_DATA).then(|| id.to_owned())
}

/// Parse `<alg>/<hex>` directory names back into a digest (listing `_layers` or `revisions`).
pub fn digest_from_parts(alg: &str, hex: &str) -> Option<Digest> {
    Digest::parse(&format!("{alg}:{hex}")).ok()
}
