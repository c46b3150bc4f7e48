use berth_sbom::package::{Ecosystem, Purl};

#[test]
fn purls_are_encoded_as_the_purl_specification_says() {
    let deb = Purl::new("deb", Some("debian"), "libc6", "2.36-9+deb12u4")
        .qualifier("arch", "amd64")
        .qualifier("distro", "debian-12");
    assert_eq!(
        deb.to_string(),
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    );
    // a scoped npm package: the scope is the namespace, its '@' percent-encoded
    let npm = Purl::new("npm", Some("@types"), "node", "20.1.0");
    assert_eq!(npm.to_string(), "pkg:npm/%40types/node@20.1.0");
    // Go module paths are namespace segments, each encoded on its own
    let go = Purl::new("golang", Some("github.com/spf13"), "cobra", "v1.8.0");
    assert_eq!(go.to_string(), "pkg:golang/github.com/spf13/cobra@v1.8.0");
    // qualifiers sorted by key, whatever the order they were added in
    let apk = Purl::new("apk", Some("alpine"), "musl", "1.2.4-r2")
        .qualifier("distro", "alpine-3.19.1")
        .qualifier("arch", "x86_64");
    assert_eq!(
        apk.to_string(),
        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
    );
    // everything but the unreserved characters is encoded, as packageurl-go (syft) does:
    // a Debian epoch's ':' too
    let vim = Purl::new("deb", Some("debian"), "vim", "2:9.0.1378-2");
    assert_eq!(vim.to_string(), "pkg:deb/debian/vim@2%3A9.0.1378-2");
    assert_eq!(vim.version(), "2:9.0.1378-2");
}

#[test]
fn ecosystems_carry_osv_names_and_purl_types() {
    for (eco, osv, purl) in [
        (Ecosystem::Debian, "Debian", "deb"),
        (Ecosystem::Alpine, "Alpine", "apk"),
        (Ecosystem::CratesIo, "crates.io", "cargo"),
        (Ecosystem::Go, "Go", "golang"),
        (Ecosystem::Npm, "npm", "npm"),
        (Ecosystem::PyPI, "PyPI", "pypi"),
        (Ecosystem::Maven, "Maven", "maven"),
    ] {
        assert_eq!(eco.osv_name(), osv, "{eco:?}");
        assert_eq!(eco.purl_type(), purl, "{eco:?}");
        assert_eq!(Ecosystem::from_osv_name(osv), Some(eco), "{osv}");
    }
    // OSV qualifies distribution ecosystems with a release: "Debian:12", "Alpine:v3.19"
    assert_eq!(
        Ecosystem::from_osv_name("Debian:12"),
        Some(Ecosystem::Debian)
    );
    assert_eq!(
        Ecosystem::from_osv_name("Alpine:v3.19"),
        Some(Ecosystem::Alpine)
    );
    // RPM distributions each have their own OSV ecosystem; all are RPM's version order
    for name in [
        "Red Hat:enterprise_linux:9::appstream",
        "Rocky Linux:9",
        "AlmaLinux:9",
        "openSUSE:Tumbleweed",
        "SUSE:Linux Enterprise Server 15 SP5",
    ] {
        assert_eq!(
            Ecosystem::from_osv_name(name),
            Some(Ecosystem::Rpm),
            "{name}"
        );
    }
    assert_eq!(Ecosystem::Rpm.purl_type(), "rpm");
    assert_eq!(Ecosystem::from_osv_name("Hackage"), None);
}
