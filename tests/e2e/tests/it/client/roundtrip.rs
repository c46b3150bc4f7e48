//! Round trips of `copy`, `pull`, `push`, `images`, `inspect`, `tag`, `rmi`, `image prune`
//! and `login` against `berth registry serve` and docker-registry, checked against skopeo.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_test_support::{
    ChildGuard, Digest, DockerRegistry, Layer, OciLayout, Registry, RegistryOptions, image_config,
    requires_tool, wait_until,
};
use serde_json::Value;

use crate::common::Skopeo;

use super::{Env, PASSWORD, USER, host_arch, multi_arch, single_image, tagged_digest};

fn skopeo_to_layout(skopeo: &Skopeo, src: &str, dir: &Path, tag: &str, all: bool) {
    let dst = format!("oci:{}:{tag}", dir.display());
    let src = format!("docker://{src}");
    let mut args = vec!["copy", "--src-tls-verify=false"];
    if all {
        args.push("--all");
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo.run(&args);
}

#[test]
fn copy_layout_to_registry_then_skopeo_reads_identical_image() {
    requires_tool!("skopeo");
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let a = env.path("a");
    let digest = single_image(&a, "v1", 1);
    let dst = format!("{}/x:v1", registry.host());
    let out = env.berth(&["copy", &format!("oci:{}:v1", a.display()), &dst]);
    assert_eq!(
        out.trim(),
        digest.as_str(),
        "copy prints the manifest digest"
    );

    let skopeo = Skopeo::new();
    let b = env.path("b");
    skopeo_to_layout(&skopeo, &dst, &b, "v1", false);
    assert_eq!(tagged_digest(&b, "v1"), digest.as_str());
    assert_eq!(OciLayout::blob_digests(&a), OciLayout::blob_digests(&b));

    // Copying again finds every blob present.
    let again = env.try_berth(&["copy", &format!("oci:{}:v1", a.display()), &dst]);
    assert!(again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("exists"),
        "second copy skips blobs: {stderr}"
    );
    assert!(
        !stderr.contains("copying"),
        "second copy uploads nothing: {stderr}"
    );
}

#[test]
fn pull_lists_image_and_copy_back_matches_skopeo() {
    requires_tool!("skopeo");
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let skopeo = Skopeo::new();
    let a = env.path("a");
    let digest = single_image(&a, "v1", 7);
    let reference = format!("{}/pulled:v1", registry.host());
    skopeo.run(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", a.display()),
        &format!("docker://{reference}"),
    ]);

    let out = env.berth(&["pull", "--quiet", &reference]);
    assert_eq!(out.trim(), digest.as_str());
    let images: Value = serde_json::from_str(&env.berth(&["images", "--format", "json"])).unwrap();
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["name"], reference.as_str());
    assert_eq!(images[0]["digest"], digest.as_str());
    assert!(env.berth(&["images"]).contains(&reference));

    let inspect: Value = serde_json::from_str(&env.berth(&["inspect", &reference])).unwrap();
    assert_eq!(inspect["source"], "store");
    assert_eq!(inspect["digest"], digest.as_str());
    assert_eq!(inspect["layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["config"]["architecture"], host_arch());
    let raw = env.try_berth(&["inspect", "--raw", &reference]);
    assert_eq!(raw.stdout, OciLayout::read_blob(&a, &digest));

    let c = env.path("c");
    let d = env.path("d");
    env.berth(&["copy", "-q", &reference, &format!("oci:{}:v1", c.display())]);
    skopeo_to_layout(&skopeo, &reference, &d, "v1", false);
    assert_eq!(tagged_digest(&c, "v1"), tagged_digest(&d, "v1"));
    assert_eq!(OciLayout::blob_digests(&c), OciLayout::blob_digests(&d));

    // The store as a source: to a layout, and pushed under another name.
    let e = env.path("e");
    env.berth(&[
        "copy",
        "-q",
        &format!("store:{reference}"),
        &format!("oci:{}", e.display()),
    ]);
    assert_eq!(OciLayout::blob_digests(&e), OciLayout::blob_digests(&a));
    let other = format!("{}/pushed:v2", registry.host());
    env.berth(&["tag", &reference, &other]);
    assert_eq!(env.berth(&["push", "-q", &other]).trim(), digest.as_str());
    let raw = skopeo.run(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{other}"),
    ]);
    assert_eq!(raw, OciLayout::read_blob(&a, &digest));
}

#[test]
fn all_platforms_copies_the_index_and_pull_selects_the_host() {
    requires_tool!("skopeo");
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let skopeo = Skopeo::new();
    let a = env.path("a");
    let index = multi_arch(&a, "multi");
    let reference = format!("{}/multi:v1", registry.host());
    let out = env.berth(&[
        "copy",
        "--all-platforms",
        &format!("oci:{}:multi", a.display()),
        &reference,
    ]);
    assert_eq!(out.trim(), index.as_str());
    let raw = skopeo.run(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]);
    assert_eq!(raw, OciLayout::read_blob(&a, &index));

    // Back to a layout with every platform: identical to skopeo --all.
    let b = env.path("b");
    let c = env.path("c");
    env.berth(&[
        "copy",
        "-q",
        "--all-platforms",
        &reference,
        &format!("oci:{}:v1", b.display()),
    ]);
    skopeo_to_layout(&skopeo, &reference, &c, "v1", true);
    assert_eq!(tagged_digest(&b, "v1"), index.as_str());
    assert_eq!(tagged_digest(&c, "v1"), index.as_str());
    assert_eq!(OciLayout::blob_digests(&b), OciLayout::blob_digests(&c));
    assert_eq!(OciLayout::blob_digests(&b), OciLayout::blob_digests(&a));

    // A pull selects one platform.
    let out = env.berth(&["pull", "-q", "--platform", "linux/arm64", &reference]);
    let images: Value = serde_json::from_str(&env.berth(&["images", "--format", "json"])).unwrap();
    assert_eq!(images[0]["platform"], "linux/arm64");
    assert_eq!(images[0]["digest"], out.trim());
    assert_ne!(out.trim(), index.as_str());

    // Every platform into the store, then pushed elsewhere from it.
    let out = env.berth(&["pull", "-q", "--all-platforms", &reference]);
    assert_eq!(out.trim(), index.as_str());
    let copy = format!("{}/multi-copy:v1", registry.host());
    env.berth(&["tag", &reference, &copy]);
    assert_eq!(env.berth(&["push", "-q", &copy]).trim(), index.as_str());
    let raw = skopeo.run(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{copy}"),
    ]);
    assert_eq!(raw, OciLayout::read_blob(&a, &index));

    let missing = env.try_berth(&["pull", "-q", "--platform", "linux/s390x", &reference]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no manifest for platform linux/s390x"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn login_checks_the_password_before_storing_it() {
    requires_tool!("skopeo", "htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let env = Env::new();
    let skopeo = Skopeo::new();
    let a = env.path("a");
    let digest = single_image(&a, "v1", 21);
    let reference = format!("{}/private:v1", registry.host());
    skopeo.run(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("oci:{}:v1", a.display()),
        &format!("docker://{reference}"),
    ]);
    let config = env.path("docker/config.json");

    let anonymous = env.try_berth(&["pull", "-q", &reference]);
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("hint: run berth login"));

    let host = registry.host();
    let wrong = env.berth_stdin(&["login", "-u", USER, "--password-stdin", &host], "wrong\n");
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).starts_with("error: login to"));
    assert!(!config.exists(), "a failed login stores nothing");

    let right = env.berth_stdin(
        &["login", "-u", USER, "--password-stdin", &host],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(stored["auths"][&host]["auth"].is_string(), "{stored}");

    assert_eq!(
        env.berth(&["pull", "-q", &reference]).trim(),
        digest.as_str()
    );

    env.berth(&["logout", &host]);
    let stored: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(stored["auths"].get(&host).is_none(), "{stored}");
}

#[test]
fn rmi_then_prune_removes_the_blobs() {
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let a = env.path("a");
    single_image(&a, "v1", 31);
    let reference = format!("{}/gone:v1", registry.host());
    env.berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &reference]);
    env.berth(&["pull", "-q", &reference]);
    assert_eq!(env.store_blobs().len(), 4, "manifest, config, two layers");

    // Referenced blobs survive a prune.
    env.berth(&["image", "prune", "--grace", "0s"]);
    assert_eq!(env.store_blobs().len(), 4);

    env.berth(&["rmi", &reference]);
    let images: Value = serde_json::from_str(&env.berth(&["images", "--format", "json"])).unwrap();
    assert_eq!(images, serde_json::json!([]));
    let dry = env.berth(&["image", "prune", "--dry-run", "--grace", "0s"]);
    assert!(dry.contains("would remove 4 blobs"), "{dry}");
    assert_eq!(env.store_blobs().len(), 4);
    let out = env.berth(&["image", "prune", "--grace", "0s"]);
    assert!(out.contains("removed 4 blobs"), "{out}");
    assert!(env.store_blobs().is_empty(), "{:?}", env.store_blobs());

    let again = env.try_berth(&["rmi", &reference]);
    assert_eq!(again.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    assert_eq!(env.try_berth(&["pull"]).status.code(), Some(2));
    assert_eq!(
        env.try_berth(&["pull", "--platform", "linux", "x"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn registry_to_registry_between_berth_and_docker_registry() {
    requires_tool!("skopeo", "docker-registry");
    let berth_registry = Registry::start(RegistryOptions::new());
    let docker = DockerRegistry::start(None);
    let env = Env::new();
    let skopeo = Skopeo::new();

    // One layer larger than a monolithic upload (8 MiB): pushed in chunks.
    let a = env.path("a");
    let mut layout = OciLayout::new(&a);
    let layers = [Layer::random(41, 10 << 20), Layer::random(42, 1000)];
    let desc = layout.image(&layers, &image_config("linux", host_arch(), &layers));
    layout.tag(&desc, "v1");

    let src = format!("{}/src:v1", berth_registry.host());
    env.berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &src]);
    // Same registry (blobs mounted), then to another registry (blobs streamed through).
    let mounted = format!("{}/mounted:v1", berth_registry.host());
    let out = env.try_berth(&["copy", &src, &mounted]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        desc.digest.as_str()
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert_eq!(progress.matches("mounted sha256:").count(), 3, "{progress}");
    let dst = format!("docker://{}/dst:v1", docker.host());
    assert_eq!(
        env.berth(&["copy", "-q", &src, &dst]).trim(),
        desc.digest.as_str()
    );
    for (name, r) in [("mounted", mounted.as_str()), ("dst", &dst[9..])] {
        let b = env.path(name);
        skopeo_to_layout(&skopeo, r, &b, "v1", false);
        assert_eq!(tagged_digest(&b, "v1"), desc.digest.as_str(), "{name}");
        assert_eq!(
            OciLayout::blob_digests(&b),
            OciLayout::blob_digests(&a),
            "{name}"
        );
    }

    // Not in the store: inspect asks the registry.
    let inspect: Value =
        serde_json::from_str(&env.berth(&["inspect", &format!("{}/dst:v1", docker.host())]))
            .unwrap();
    assert_eq!(inspect["source"], "registry");
    assert_eq!(inspect["digest"], desc.digest.as_str());
    assert_eq!(inspect["config"]["architecture"], host_arch());

    // A large layer streamed into the store.
    assert_eq!(
        env.berth(&["pull", "-q", &dst]).trim(),
        desc.digest.as_str()
    );
    assert_eq!(env.store_blobs().len(), 4);

    // A multi-platform index into docker-registry and back out with berth.
    let m = env.path("m");
    let index = multi_arch(&m, "multi");
    let multi = format!("{}/multi:v1", docker.host());
    env.berth(&[
        "copy",
        "-q",
        "--all-platforms",
        &format!("oci:{}:multi", m.display()),
        &multi,
    ]);
    let raw = skopeo.run(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{multi}"),
    ]);
    assert_eq!(raw, OciLayout::read_blob(&m, &index));
    let back = env.path("back");
    env.berth(&[
        "copy",
        "-q",
        "--all-platforms",
        &multi,
        &format!("oci:{}:v1", back.display()),
    ]);
    assert_eq!(tagged_digest(&back, "v1"), index.as_str());
    assert_eq!(OciLayout::blob_digests(&back), OciLayout::blob_digests(&m));
}

/// Two `berth pull`s of the same image at once, with `berth image prune --grace 0s` running
/// in a loop beside them: both pulls succeed, the store holds one record and only blobs that
/// match their digests, and the pulled image is whole (its leases kept prune off its blobs).
#[test]
fn concurrent_pulls_with_prune_running_keep_the_store_whole() {
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let src = env.path("src");
    let mut layout = OciLayout::new(&src);
    let layers: Vec<Layer> = (0..8).map(|i| Layer::random(900 + i, 2 << 20)).collect();
    let config = image_config("linux", host_arch(), &layers);
    let desc = layout.image(&layers, &config);
    layout.tag(&desc, "v1");
    let reference = format!("{}/race/app:v1", registry.host());
    env.berth(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", src.display()),
        &reference,
    ]);

    let mut pulls: Vec<ChildGuard> = (0..2)
        .map(|_| {
            let mut cmd = env.command(&["pull", "-q", &reference]);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            ChildGuard::spawn(&mut cmd)
        })
        .collect();
    let mut statuses: Vec<Option<std::process::ExitStatus>> = vec![None, None];
    let mut prunes = 0;
    // bounded: at most 200 prunes, each bounded by run_with_timeout
    while statuses.iter().any(Option::is_none) && prunes < 200 {
        let out = env.try_berth(&["image", "prune", "--grace", "0s"]);
        assert!(
            out.status.success(),
            "prune failed during a pull: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        prunes += 1;
        for (i, p) in pulls.iter_mut().enumerate() {
            if statuses[i].is_none() {
                statuses[i] = p.child().and_then(|c| c.try_wait().ok().flatten());
            }
        }
    }
    for (i, p) in pulls.iter_mut().enumerate() {
        if statuses[i].is_none() {
            let finished = wait_until(Duration::from_secs(120), || {
                statuses[i] = p.child().and_then(|c| c.try_wait().ok().flatten());
                statuses[i].is_some()
            });
            assert!(finished, "pull {i} did not finish");
        }
        assert!(
            statuses[i].is_some_and(|s| s.success()),
            "pull {i} failed: {:?}",
            statuses[i]
        );
    }
    assert!(prunes >= 1, "no prune overlapped the pulls");

    let images: Value = serde_json::from_str(&env.berth(&["images", "--format", "json"])).unwrap();
    assert_eq!(images.as_array().map(Vec::len), Some(1), "{images}");
    for blob in env.store_blobs() {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&blob).unwrap();
        assert_eq!(
            Digest::sha256_of(&data).hex(),
            name,
            "corrupt blob {}",
            blob.display()
        );
    }
    // the stored image is whole: it copies out to a layout with the same manifest digest
    let out = env.path("out");
    env.berth(&[
        "copy",
        "-q",
        &format!("store:{reference}"),
        &format!("oci:{}:v1", out.display()),
    ]);
    assert_eq!(tagged_digest(&out, "v1"), desc.digest.to_string());
    // and a prune with nothing in flight keeps all of it
    env.berth(&["image", "prune", "--grace", "0s"]);
    assert_eq!(env.store_blobs().len(), 10, "manifest, config and 8 layers");
}
