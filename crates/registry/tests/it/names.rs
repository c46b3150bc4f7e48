//! A request path never escapes the storage root, and invalid names are NAME_INVALID.

use crate::TestRegistry;

#[test]
fn invalid_names_are_refused_and_nothing_is_created() {
    let r = TestRegistry::start();
    let long = "a".repeat(300);
    for name in [
        "..",
        "a/..",
        "../../etc",
        "%2e%2e",
        "a/%2e%2e/b",
        "Upper",
        "a//b",
        "_x",
        "a/_manifests",
        long.as_str(),
    ] {
        for path in [
            format!("/v2/{name}/tags/list"),
            format!("/v2/{name}/manifests/latest"),
            format!("/v2/{name}/blobs/uploads/"),
        ] {
            let method = if path.ends_with("uploads/") {
                "POST"
            } else {
                "GET"
            };
            let resp = r.req(method, &path, &[], b"");
            assert!(
                resp.status == 400 || resp.status == 404,
                "{method} {path}: {}",
                resp.status
            );
            if resp.status == 400 {
                assert_eq!(resp.code(), "NAME_INVALID", "{path}");
            }
        }
    }
    // nothing was written anywhere for those names
    let repos = r.root.join("v1/repositories");
    assert!(!repos.exists() || std::fs::read_dir(&repos).unwrap().next().is_none());
    assert!(!r.root.parent().unwrap().join("etc").exists());
}

#[test]
fn longest_valid_name_works() {
    let r = TestRegistry::start();
    // 255 characters in all, components of at most 63 (filesystem-friendly)
    let part = "a".repeat(63);
    let name = format!("{part}/{part}/{part}/{}", "b".repeat(255 - 3 * 64));
    assert_eq!(name.len(), 255);
    r.push_image(&name, "t", &[b"x"]);
    assert_eq!(r.get(&format!("/v2/{name}/manifests/t")).status, 200);
    let too_long = format!("{name}c");
    assert_eq!(r.get(&format!("/v2/{too_long}/tags/list")).status, 400);
}
