//! `berth images`: sizes from the manifests, platforms from the configs, `-q`, the
//! repository filter; and bad references as usage errors in every command taking one.

use berth_test_support::OciLayout;
use serde_json::Value;

use super::{Env, host_arch, multi_arch, single_image};

/// Config plus layers of the image manifest `digest` in the layout at `dir`.
fn content_size(dir: &std::path::Path, digest: &str) -> u64 {
    let d = digest.parse().unwrap();
    let m: Value = serde_json::from_slice(&OciLayout::read_blob(dir, &d)).unwrap();
    let mut size = m["config"]["size"].as_u64().unwrap();
    for l in m["layers"].as_array().unwrap() {
        size += l["size"].as_u64().unwrap();
    }
    size
}

#[test]
fn images_shows_size_platform_and_quiet_ids() {
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    let single = single_image(&a, "v1", 51);
    let multi = multi_arch(&b, "v1");
    env.berth(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", a.display()),
        "store:127.0.0.1:5000/team/single:v1",
    ]);
    env.berth(&[
        "tag",
        "127.0.0.1:5000/team/single:v1",
        "127.0.0.1:5000/team/single:v2",
    ]);
    env.berth(&[
        "copy",
        "-q",
        "--all-platforms",
        &format!("oci:{}:v1", b.display()),
        "store:127.0.0.1:5000/team/multi:v1",
    ]);

    // JSON: the content size of the single image, and of both platforms of the index
    let json: Value = serde_json::from_str(&env.berth(&["images", "--format", "json"])).unwrap();
    let by_name = |n: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {json}"))
            .clone()
    };
    let s = by_name("127.0.0.1:5000/team/single:v1");
    assert_eq!(s["contentSize"], content_size(&a, single.as_str()), "{s}");
    let platform = format!("linux/{}", host_arch());
    assert_eq!(s["imagePlatform"], platform.as_str(), "{s}");
    let m = by_name("127.0.0.1:5000/team/multi:v1");
    let index: Value = serde_json::from_slice(&OciLayout::read_blob(&b, &multi)).unwrap();
    let children: u64 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| content_size(&b, c["digest"].as_str().unwrap()))
        .sum();
    assert_eq!(m["contentSize"], children, "{m}");
    assert_eq!(m["imagePlatform"], "index: 2 platforms", "{m}");

    // the table: the platform column and a size with its unit
    let table = env.berth(&["images"]);
    let line = |n: &str| {
        table
            .lines()
            .find(|l| l.starts_with(n))
            .unwrap_or_else(|| panic!("no {n} in\n{table}"))
            .to_owned()
    };
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("PLATFORM") && header.contains("SIZE"),
        "{table}"
    );
    let single_line = line("127.0.0.1:5000/team/single:v1 ");
    assert!(single_line.contains(&platform), "{table}");
    assert!(single_line.trim_end().ends_with("kB"), "{table}");
    assert!(
        line("127.0.0.1:5000/team/multi:v1 ").contains("index: 2 platforms"),
        "{table}"
    );

    // -q: each id once (two names share the single image), like docker images -q
    let quiet = env.berth(&["images", "-q"]);
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort_unstable();
    let mut want = vec![&single.as_str()[7..19], &multi.as_str()[7..19]];
    want.sort_unstable();
    assert_eq!(ids, want, "{quiet}");

    // the repository filter, with and without a tag
    let filtered = env.berth(&["images", "-q", "127.0.0.1:5000/team/multi"]);
    assert_eq!(filtered.trim(), &multi.as_str()[7..19]);
    let filtered = env.berth(&["images", "127.0.0.1:5000/team/single:v2"]);
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert!(filtered.contains("single:v2"), "{filtered}");
}

#[test]
fn bad_references_are_usage_errors() {
    let env = Env::new();
    let a = env.path("a");
    single_image(&a, "v1", 52);
    env.berth(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", a.display()),
        "store:ok:v1",
    ]);
    for args in [
        vec!["images", "Bad/Name"],
        vec!["inspect", "Bad/Name"],
        vec!["tag", "ok:v1", "Bad/Name"],
        vec!["tag", "Bad/Name", "ok:v2"],
        vec!["rmi", "ok:v1", "Bad/Name"],
        vec!["pull", "Bad/Name"],
        vec!["push", "Bad/Name"],
        vec!["pull", "oci:./layout"],
        vec!["copy", "Bad/Name", "oci:./x"],
    ] {
        let out = env.try_berth(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
    // nothing was removed by the refused rmi
    assert!(env.berth(&["images"]).contains("ok:v1"));
}
