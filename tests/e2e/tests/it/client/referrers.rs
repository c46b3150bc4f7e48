//! `berth copy --referrers`: an image with an SBOM and a signature on that SBOM moves from
//! an OCI layout to berth's registry (referrers API), on to docker-registry (no referrers
//! API: the client keeps the `sha256-<hex>` tag index), back to a layout, into the local
//! store (`pull --referrers`) and through `save --referrers` / `load`.

use berth_test_support::{
    DockerRegistry, Http, Layer, OciLayout, Registry, RegistryOptions, image_config, requires_tool,
};
use serde_json::Value;

use super::{Env, host_arch};

const SBOM_TYPE: &str = "application/spdx+json";
const SIG_TYPE: &str = "application/vnd.example.signature.v1+json";

fn listed(index: &Value) -> Vec<String> {
    let mut v: Vec<String> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn copy_with_referrers_carries_an_sbom_and_its_signature_across_registries_and_layouts() {
    requires_tool!("docker-registry");
    let berth = Registry::start(RegistryOptions::new());
    let docker = DockerRegistry::start(None);
    let env = Env::new();
    let a = env.path("a");
    let mut layout = OciLayout::new(&a);
    let layers = [Layer::random(61, 20_000)];
    let image = layout.image(&layers, &image_config("linux", host_arch(), &layers));
    layout.tag(&image, "v1");
    let sbom = layout.artifact(
        &image,
        SBOM_TYPE,
        &[(SBOM_TYPE, br#"{"spdxVersion":"SPDX-2.3"}"#)],
    );
    layout.tag(&sbom, "sbom");
    let sig = layout.artifact(&sbom, SIG_TYPE, &[(SIG_TYPE, b"signature bytes")]);
    layout.tag(&sig, "sig");

    // Layout → berth's registry, which answers the referrers API.
    let on_berth = format!("{}/signed:v1", berth.host());
    let out = env.try_berth(&[
        "copy",
        "--referrers",
        &format!("oci:{}:v1", a.display()),
        &on_berth,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("copied 2 referrers"), "{stderr}");
    let http = berth.http();
    let r = http.get(&format!("/v2/signed/referrers/{}", image.digest));
    r.expect_status(200, "referrers of the image");
    assert_eq!(listed(&r.json()), vec![sbom.digest.to_string()]);
    let r = http.get(&format!("/v2/signed/referrers/{}", sbom.digest));
    assert_eq!(listed(&r.json()), vec![sig.digest.to_string()]);

    // berth's registry → docker-registry: no referrers API there, so the tag fallback.
    let on_docker = format!("{}/signed:v1", docker.host());
    let out = env.try_berth(&["copy", "--referrers", &on_berth, &on_docker]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dhttp = Http::new(&format!("http://{}", docker.host()), None);
    let fallback = |d: &berth_test_support::Digest| {
        let tag = d.as_str().replace(':', "-");
        let r = dhttp.request(
            "GET",
            &format!("/v2/signed/manifests/{tag}"),
            &[("Accept", "application/vnd.oci.image.index.v1+json")],
            None,
        );
        r.expect_status(200, "the referrers tag index");
        listed(&r.json())
    };
    assert_eq!(fallback(&image.digest), vec![sbom.digest.to_string()]);
    assert_eq!(fallback(&sbom.digest), vec![sig.digest.to_string()]);

    // docker-registry → a layout: the referrers are listed, untagged, in index.json.
    let b = env.path("b");
    let out = env.try_berth(&[
        "copy",
        "--referrers",
        &on_docker,
        &format!("oci:{}:v1", b.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(b.join("index.json")).unwrap()).unwrap();
    let mut want = vec![
        image.digest.to_string(),
        sbom.digest.to_string(),
        sig.digest.to_string(),
    ];
    want.sort();
    assert_eq!(listed(&index), want, "{index}");
    assert_eq!(OciLayout::blob_digests(&b), OciLayout::blob_digests(&a));

    // Without --referrers only the image moves.
    let c = env.path("c");
    env.berth(&["copy", "-q", &on_docker, &format!("oci:{}:v1", c.display())]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(c.join("index.json")).unwrap()).unwrap();
    assert_eq!(listed(&index), vec![image.digest.to_string()]);

    // Into the local store: `pull --referrers` keeps them beside the image, garbage
    // collection keeps them as long as the image, and `copy --referrers store:…` finds them.
    let to_layout = |env: &Env, from: &str, dir: &str| {
        let d = env.path(dir);
        env.berth(&[
            "copy",
            "-q",
            "--referrers",
            from,
            &format!("oci:{}:v1", d.display()),
        ]);
        let index: Value =
            serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        listed(&index)
    };
    env.berth(&["pull", "-q", "--referrers", &on_docker]);
    env.berth(&["image", "prune", "--grace", "0s"]);
    let in_store = format!("store:{on_docker}");
    assert_eq!(to_layout(&env, &in_store, "d"), want);

    // save --referrers writes them into an oci-archive, untagged beside the image; load
    // into another store keeps them, and does not take them for unnamed images.
    let archive = env.path("signed.tar");
    let archive_arg = archive.to_str().unwrap();
    env.berth(&[
        "save",
        "-q",
        "--referrers",
        "--format",
        "oci-archive",
        "-o",
        archive_arg,
        &on_docker,
    ]);
    let other = Env::new();
    let loaded = other.berth(&["load", "-q", "-i", archive_arg]);
    assert!(loaded.contains(&on_docker), "{loaded}");
    other.berth(&["image", "prune", "--grace", "0s"]);
    assert_eq!(to_layout(&other, &in_store, "e"), want);

    // A docker-archive cannot hold them: refused, not dropped.
    let out = env.try_berth(&[
        "save",
        "-q",
        "--referrers",
        "-o",
        env.path("d.tar").to_str().unwrap(),
        &on_docker,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot hold referrers"), "{stderr}");
    assert!(!env.path("d.tar").exists());
}
