//! Media types of OCI (image-spec "Media Types") and Docker (Image Manifest
//! V2, Schema 2) content, as plain strings.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image configuration.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Zstd-compressed OCI layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The empty JSON descriptor (`{}`), used as config or layer of artifacts.
pub const OCI_EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
/// Digest of the two bytes `{}` that [`OCI_EMPTY_JSON`] descriptors point at.
pub const OCI_EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (the Docker counterpart of an OCI index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker container image configuration.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Gzip-compressed Docker layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Gzip-compressed Docker layer that registries do not serve (Windows base layers).
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Signed Docker schema 1 manifest (deprecated, refused by berth).
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Unsigned Docker schema 1 manifest (deprecated, refused by berth).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// An SPDX JSON document (`berth sbom --attach`'s referrer `artifactType`, as syft/oras use).
pub const SPDX_JSON: &str = "application/spdx+json";
/// A CycloneDX JSON document (a referrer `artifactType`).
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// A `berth scan` report, schema `berth.scan/v1` (`berth scan --attach`'s referrer
/// `artifactType`: vendor tree, named after the report's schema and version).
pub const BERTH_SCAN_REPORT: &str = "application/vnd.berth.scan.v1+json";

/// Whether `media_type` is a list of manifests: an OCI index or a Docker
/// manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is a single-image manifest: OCI or Docker schema 2.
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST_V2
}

/// Whether `media_type` is a Docker schema 1 manifest, signed or not.
pub fn is_docker_schema1(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_V1 || media_type == DOCKER_MANIFEST_V1_SIGNED
}

/// The media type of a `Content-Type` header value: the part before any
/// `;` parameters, trimmed (`"application/json; charset=utf-8"` →
/// `"application/json"`).
pub fn essence(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(is_index(OCI_INDEX));
        assert!(is_index(DOCKER_MANIFEST_LIST));
        assert!(!is_index(OCI_MANIFEST));
        assert!(is_image_manifest(OCI_MANIFEST));
        assert!(is_image_manifest(DOCKER_MANIFEST_V2));
        assert!(!is_image_manifest(OCI_INDEX));
        assert!(!is_image_manifest(DOCKER_MANIFEST_V1));
        assert!(is_docker_schema1(DOCKER_MANIFEST_V1));
        assert!(is_docker_schema1(DOCKER_MANIFEST_V1_SIGNED));
        assert!(!is_image_manifest(
            "application/vnd.oci.image.manifest.v1+json "
        ));
    }

    #[test]
    fn essence_strips_parameters() {
        assert_eq!(
            essence("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(essence(" application/json "), "application/json");
        assert_eq!(essence(OCI_MANIFEST), OCI_MANIFEST);
        assert_eq!(essence(""), "");
    }

    #[test]
    fn constants_match_oci_spec_crate() {
        use oci_spec::image::MediaType;
        assert_eq!(MediaType::ImageManifest.as_ref(), OCI_MANIFEST);
        assert_eq!(MediaType::ImageIndex.as_ref(), OCI_INDEX);
        assert_eq!(MediaType::ImageConfig.as_ref(), OCI_CONFIG);
        assert_eq!(MediaType::ImageLayer.as_ref(), OCI_LAYER_TAR);
        assert_eq!(MediaType::ImageLayerGzip.as_ref(), OCI_LAYER_GZIP);
        assert_eq!(MediaType::ImageLayerZstd.as_ref(), OCI_LAYER_ZSTD);
        assert_eq!(MediaType::EmptyJSON.as_ref(), OCI_EMPTY_JSON);
        assert_eq!(
            crate::Digest::sha256_of(b"{}").as_str(),
            OCI_EMPTY_JSON_DIGEST
        );
    }
}
