//! `ManifestInfo::parse` on arbitrary bytes with each of a few
//! Content-Types: never panics, and what it returns is consistent.
#![no_main]

use berth_oci::media_type::{self, *};
use berth_oci::{ManifestInfo, ManifestKind, descriptor_digest};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some(OCI_MANIFEST),
    Some(OCI_INDEX),
    Some(DOCKER_MANIFEST_V2),
    Some(DOCKER_MANIFEST_LIST),
    Some(DOCKER_MANIFEST_V1_SIGNED),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some("application/vnd.example.artifact+json"),
];

fuzz_target!(|data: &[u8]| {
    for &content_type in CONTENT_TYPES {
        let Ok(info) = ManifestInfo::parse(data, content_type) else {
            continue;
        };
        match info.kind {
            ManifestKind::Image => {
                assert!(media_type::is_image_manifest(&info.media_type));
                assert!(info.config.is_some());
                assert!(info.manifests.is_empty());
                assert!(info.artifact_type.is_some());
            }
            ManifestKind::Index => {
                assert!(media_type::is_index(&info.media_type));
                assert!(info.config.is_none() && info.layers.is_empty());
            }
            ManifestKind::Unknown => {
                assert!(!media_type::is_image_manifest(&info.media_type));
                assert!(!media_type::is_index(&info.media_type));
            }
        }
        assert!(!media_type::is_docker_schema1(&info.media_type));
        // Every descriptor handed out has a digest berth can use.
        for d in info
            .referenced_blobs()
            .chain(info.referenced_manifests())
            .chain(info.subject.iter())
        {
            descriptor_digest(d).expect("descriptor digests are validated");
        }
        assert_eq!(
            info.referenced_blobs().count(),
            usize::from(info.config.is_some()) + info.layers.len()
        );
    }
});
