//! skopeo interop: OCI layouts copied into `berth registry serve` and back out are
//! byte-identical (manifest digests, every blob, `skopeo inspect --raw`), over plain HTTP,
//! with htpasswd authentication, and over TLS; the referrers API lists an artifact pushed
//! by skopeo.

use std::path::Path;

use berth_test_support::{
    Descriptor, Digest, Http, Layer, OciLayout, Registry, RegistryOptions, image_config,
    requires_tool,
};
use serde_json::Value;

use crate::common::{Skopeo, verify_tree_in_registry};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const TAG: &str = "v1";
const SBOM_TYPE: &str = "application/vnd.example.sbom.v1+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    PlainHttp,
    Htpasswd,
    Tls,
}

/// A registry for one transport and a skopeo configured to reach it.
struct Peer {
    registry: Registry,
    skopeo: Skopeo,
    transport: Transport,
}

impl Peer {
    fn start(transport: Transport) -> Peer {
        let opts = match transport {
            Transport::PlainHttp => RegistryOptions::new(),
            Transport::Htpasswd => RegistryOptions::new().user(USER, PASSWORD),
            Transport::Tls => RegistryOptions::new().tls(),
        };
        let peer = Peer {
            registry: Registry::start(opts),
            skopeo: Skopeo::new(),
            transport,
        };
        if transport == Transport::Htpasswd {
            let authfile = peer.skopeo.authfile();
            let host = peer.registry.host();
            peer.skopeo.run(&[
                "login",
                "--authfile",
                path_str(&authfile),
                "--tls-verify=false",
                "--username",
                USER,
                "--password",
                PASSWORD,
                &host,
            ]);
        }
        peer
    }

    fn http(&self) -> Http {
        let h = self.registry.http();
        match self.transport {
            Transport::Htpasswd => h.basic(USER, PASSWORD),
            _ => h,
        }
    }

    fn cert_dir(&self) -> String {
        let c = self
            .registry
            .certs()
            .expect("TLS registry has certificates");
        path_str(&c.cert_dir).to_owned()
    }

    fn docker_ref(&self, repo: &str, tag: &str) -> String {
        format!("docker://{}/{repo}:{tag}", self.registry.host())
    }

    /// Flags for the destination (push) side.
    fn dest_flags(&self) -> Vec<String> {
        match self.transport {
            Transport::PlainHttp => vec!["--dest-tls-verify=false".into()],
            Transport::Htpasswd => vec![
                "--dest-tls-verify=false".into(),
                "--dest-creds".into(),
                format!("{USER}:{PASSWORD}"),
            ],
            Transport::Tls => vec!["--dest-cert-dir".into(), self.cert_dir()],
        }
    }

    /// Flags for the source (pull) side: the auth case uses the file `skopeo login` wrote.
    fn src_flags(&self) -> Vec<String> {
        match self.transport {
            Transport::PlainHttp => vec!["--src-tls-verify=false".into()],
            Transport::Htpasswd => vec![
                "--src-tls-verify=false".into(),
                "--src-authfile".into(),
                path_str(&self.skopeo.authfile()).to_owned(),
            ],
            Transport::Tls => vec!["--src-cert-dir".into(), self.cert_dir()],
        }
    }

    fn inspect_flags(&self) -> Vec<String> {
        match self.transport {
            Transport::PlainHttp => vec!["--tls-verify=false".into()],
            Transport::Htpasswd => vec![
                "--tls-verify=false".into(),
                "--authfile".into(),
                path_str(&self.skopeo.authfile()).to_owned(),
            ],
            Transport::Tls => vec!["--cert-dir".into(), self.cert_dir()],
        }
    }

    fn copy(&self, flags: Vec<String>, from: &str, to: &str) {
        let mut args: Vec<String> =
            vec!["copy".into(), "--all".into(), "--preserve-digests".into()];
        args.extend(flags);
        args.push(from.to_owned());
        args.push(to.to_owned());
        self.skopeo
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn push(&self, layout: &OciLayout, tag: &str, repo: &str) {
        self.copy(
            self.dest_flags(),
            &layout.skopeo_ref(tag),
            &self.docker_ref(repo, tag),
        );
    }

    fn pull(&self, repo: &str, tag: &str, dir: &Path) {
        self.copy(
            self.src_flags(),
            &self.docker_ref(repo, tag),
            &format!("oci:{}:{tag}", dir.display()),
        );
    }

    fn inspect_raw(&self, repo: &str, tag: &str) -> Vec<u8> {
        let mut args: Vec<String> = vec!["inspect".into(), "--raw".into()];
        args.extend(self.inspect_flags());
        args.push(self.docker_ref(repo, tag));
        self.skopeo
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Push every tag of a fresh layout built by `build`, check the registry serves it
/// byte-identical, pull it back into a second layout and compare blob by blob. Returns the
/// peer and the tagged descriptors for further checks.
fn round_trip(
    transport: Transport,
    repo: &str,
    build: impl FnOnce(&mut OciLayout) -> Vec<(String, Descriptor)>,
) -> (Peer, Vec<(String, Descriptor)>) {
    let peer = Peer::start(transport);
    let work = tempfile::tempdir().expect("tempdir");
    let src_dir = work.path().join("src");
    let mut src = OciLayout::new(&src_dir);
    let tagged = build(&mut src);
    let http = peer.http();

    for (tag, desc) in &tagged {
        peer.push(&src, tag, repo);
        verify_tree_in_registry(&http, repo, &desc.digest, &src_dir);
        let raw = peer.inspect_raw(repo, tag);
        assert_eq!(
            Digest::sha256_of(&raw),
            desc.digest,
            "skopeo inspect --raw {repo}:{tag} differs from the pushed manifest:\n{}",
            String::from_utf8_lossy(&raw)
        );
    }

    let dst_dir = work.path().join("dst");
    for (tag, desc) in &tagged {
        peer.pull(repo, tag, &dst_dir);
        let entry = OciLayout::resolve_tag(&dst_dir, tag)
            .unwrap_or_else(|| panic!("pulled layout has no {tag}"));
        assert_eq!(
            entry["digest"].as_str(),
            Some(desc.digest.as_str()),
            "pulled {repo}:{tag} has another manifest digest"
        );
    }
    let src_blobs = OciLayout::blob_digests(&src_dir);
    let dst_blobs = OciLayout::blob_digests(&dst_dir);
    assert_eq!(
        dst_blobs, src_blobs,
        "the pulled layout's blobs differ from the pushed layout's"
    );
    for d in &dst_blobs {
        let got = OciLayout::read_blob(&dst_dir, d);
        assert_eq!(&Digest::sha256_of(&got), d, "pulled blob {d} is corrupt");
        assert_eq!(got, OciLayout::read_blob(&src_dir, d), "blob {d}");
    }
    (peer, tagged)
}

fn single_layer_image(transport: Transport) {
    round_trip(transport, "interop/single", |l| {
        let layers = [Layer::random(1, 1 << 20)];
        let d = l.image(&layers, &image_config("linux", "amd64", &layers));
        l.tag(&d, TAG);
        vec![(TAG.into(), d)]
    });
}

fn fifty_layer_image(transport: Transport) {
    round_trip(transport, "interop/fifty", |l| {
        let layers: Vec<Layer> = (0..50)
            .map(|i| Layer::random(100 + i, 1024 + (i as usize * 997) % 16384))
            .collect();
        let d = l.image(&layers, &image_config("linux", "amd64", &layers));
        l.tag(&d, TAG);
        vec![(TAG.into(), d)]
    });
}

fn multi_arch_index(transport: Transport) {
    round_trip(transport, "interop/multi", |l| {
        let mut platforms = Vec::new();
        for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
            let layers = [
                Layer::random(200 + i as u64, 64 * 1024),
                Layer::random(210 + i as u64, 3000),
            ];
            let m = l.image(&layers, &image_config("linux", arch, &layers));
            platforms.push(m.with_platform("linux", arch));
        }
        let index = l.index(&platforms);
        l.tag(&index, TAG);
        vec![(TAG.into(), index)]
    });
}

fn artifact_with_subject(transport: Transport) {
    let repo = "interop/artifact";
    let (peer, tagged) = round_trip(transport, repo, |l| {
        let layers = [Layer::random(300, 10_000)];
        let subject = l.image(&layers, &image_config("linux", "amd64", &layers));
        l.tag(&subject, TAG);
        let sbom = l.artifact(
            &subject,
            SBOM_TYPE,
            &[("application/spdx+json", br#"{"spdxVersion":"SPDX-2.3"}"#)],
        );
        l.tag(&sbom, "sbom");
        vec![(TAG.into(), subject), ("sbom".into(), sbom)]
    });
    let (subject, sbom) = (&tagged[0].1, &tagged[1].1);
    let http = peer.http();
    let path = format!("/v2/{repo}/referrers/{}", subject.digest);

    let r = http.get(&path);
    r.expect_status(200, "GET referrers");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/vnd.oci.image.index.v1+json")),
        "referrers Content-Type: {:?}",
        r.header("content-type")
    );
    let listed = referrers(&r.json());
    assert_eq!(listed.len(), 1, "referrers of the subject: {}", r.text());
    assert_eq!(listed[0]["digest"].as_str(), Some(sbom.digest.as_str()));
    assert_eq!(listed[0]["artifactType"].as_str(), Some(SBOM_TYPE));
    assert_eq!(listed[0]["size"].as_u64(), Some(sbom.size));
    assert_eq!(
        listed[0]["mediaType"].as_str(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    let r = http.get(&format!("{path}?artifactType={}", query_escape(SBOM_TYPE)));
    r.expect_status(200, "GET referrers filtered to the SBOM type");
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(referrers(&r.json()).len(), 1, "{}", r.text());

    let r = http.get(&format!(
        "{path}?artifactType={}",
        query_escape("application/vnd.example.signature+json")
    ));
    r.expect_status(200, "GET referrers filtered to another type");
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert!(referrers(&r.json()).is_empty(), "{}", r.text());
}

/// Percent-encode a query value (`+` would otherwise arrive as a space).
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn referrers(index: &Value) -> Vec<Value> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("referrers response is not an index: {index}"))
        .clone()
}

macro_rules! transport_tests {
    ($module:ident, $transport:expr, $($tool:expr),*) => {
        mod $module {
            use super::*;

            #[test]
            fn single_layer_image_round_trips_byte_identical() {
                requires_tool!("skopeo" $(, $tool)*);
                single_layer_image($transport);
            }

            #[test]
            fn fifty_layer_image_round_trips_byte_identical() {
                requires_tool!("skopeo" $(, $tool)*);
                fifty_layer_image($transport);
            }

            #[test]
            fn multi_arch_index_round_trips_with_all_platforms() {
                requires_tool!("skopeo" $(, $tool)*);
                multi_arch_index($transport);
            }

            #[test]
            fn artifact_with_subject_is_listed_by_the_referrers_api() {
                requires_tool!("skopeo" $(, $tool)*);
                artifact_with_subject($transport);
            }
        }
    };
}

transport_tests!(plain_http, Transport::PlainHttp,);
transport_tests!(htpasswd, Transport::Htpasswd, "htpasswd");
transport_tests!(tls, Transport::Tls, "openssl");
