//! Cases follow distribution/reference's normalize_test.go and
//! reference_test.go, run through `ParseNormalizedNamed` semantics.

use super::*;
use crate::{Algorithm, DigestError};

const D256: &str = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
const F256: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Format,
    Uppercase,
    Registry,
    Repository,
    Tag,
    Digest,
    TooLong,
}

fn kind(e: &ReferenceError) -> Kind {
    match e {
        ReferenceError::Empty => Kind::Empty,
        ReferenceError::InvalidFormat { .. } => Kind::Format,
        ReferenceError::Uppercase { .. } => Kind::Uppercase,
        ReferenceError::InvalidRegistry { .. } => Kind::Registry,
        ReferenceError::InvalidRepository { .. } => Kind::Repository,
        ReferenceError::InvalidTag { .. } => Kind::Tag,
        ReferenceError::InvalidDigest { .. } => Kind::Digest,
        ReferenceError::NameTooLong { .. } => Kind::TooLong,
    }
}

/// (input, full normalised form, familiar form)
fn valid_cases() -> Vec<(String, String, String)> {
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    let f512 = format!("sha512:{}", "f".repeat(128));
    vec![
        // TestParseDockerRef
        s(
            "busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            format!("busybox@{D256}"),
            format!("docker.io/library/busybox@{D256}"),
            format!("busybox@{D256}"),
        ),
        s(
            "library/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "docker.io/busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "library/busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        s(
            "gcr.io/library/busybox",
            "gcr.io/library/busybox:latest",
            "gcr.io/library/busybox:latest",
        ),
        (
            // docker keeps both tag and digest here (ParseDockerRef would drop the tag).
            format!("gcr.io/library/busybox:latest@{D256}"),
            format!("gcr.io/library/busybox:latest@{D256}"),
            format!("gcr.io/library/busybox:latest@{D256}"),
        ),
        // TestParseReferenceWithTagAndDigest
        (
            format!("busybox:latest@{D256}"),
            format!("docker.io/library/busybox:latest@{D256}"),
            format!("busybox:latest@{D256}"),
        ),
        // TestValidateReferenceName / TestParseRepositoryInfo
        s(
            "docker/docker",
            "docker.io/docker/docker:latest",
            "docker/docker:latest",
        ),
        s(
            "index.docker.io/docker/docker",
            "docker.io/docker/docker:latest",
            "docker/docker:latest",
        ),
        s(
            "index.docker.io/library/debian",
            "docker.io/library/debian:latest",
            "debian:latest",
        ),
        s(
            "index.docker.io/debian",
            "docker.io/library/debian:latest",
            "debian:latest",
        ),
        s(
            "docker.io/debian",
            "docker.io/library/debian:latest",
            "debian:latest",
        ),
        s("fooo/bar", "docker.io/fooo/bar:latest", "fooo/bar:latest"),
        s(
            "index.docker.io/fooo/bar",
            "docker.io/fooo/bar:latest",
            "fooo/bar:latest",
        ),
        s(
            "nonlibrary/ubuntu",
            "docker.io/nonlibrary/ubuntu:latest",
            "nonlibrary/ubuntu:latest",
        ),
        s(
            "other/library",
            "docker.io/other/library:latest",
            "other/library:latest",
        ),
        s(
            "library/foo/bar",
            "docker.io/library/foo/bar:latest",
            "library/foo/bar:latest",
        ),
        s(
            "store/foo/bar",
            "docker.io/store/foo/bar:latest",
            "store/foo/bar:latest",
        ),
        s(
            "ubuntu-12.04-base",
            "docker.io/library/ubuntu-12.04-base:latest",
            "ubuntu-12.04-base:latest",
        ),
        s(
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/docker/docker:latest",
            "127.0.0.1:5000/docker/docker:latest",
        ),
        s(
            "127.0.0.1:8000/privatebase",
            "127.0.0.1:8000/privatebase:latest",
            "127.0.0.1:8000/privatebase:latest",
        ),
        s(
            "example.com:8000/private/moonbase",
            "example.com:8000/private/moonbase:latest",
            "example.com:8000/private/moonbase:latest",
        ),
        s(
            "192.168.0.1",
            "docker.io/library/192.168.0.1:latest",
            "192.168.0.1:latest",
        ),
        s(
            "192.168.0.1:80",
            "docker.io/library/192.168.0.1:80",
            "192.168.0.1:80",
        ),
        s(
            "192.168.0.1:8/debian",
            "192.168.0.1:8/debian:latest",
            "192.168.0.1:8/debian:latest",
        ),
        s(
            "192.168.1.1/repo",
            "192.168.1.1/repo:latest",
            "192.168.1.1/repo:latest",
        ),
        s(
            "192.168.1.1:5000/repo:5050",
            "192.168.1.1:5000/repo:5050",
            "192.168.1.1:5000/repo:5050",
        ),
        s(
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker:latest",
            "[fc00::1]:5000/docker:latest",
        ),
        s(
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
        ),
        s(
            "[2001:db8::1]/repo",
            "[2001:db8::1]/repo:latest",
            "[2001:db8::1]/repo:latest",
        ),
        s(
            "[2001:db8::]:5000/repo",
            "[2001:db8::]:5000/repo:latest",
            "[2001:db8::]:5000/repo:latest",
        ),
        s("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        (
            format!("[2001:db8::1]:5000/repo:tag@{F256}"),
            format!("[2001:db8::1]:5000/repo:tag@{F256}"),
            format!("[2001:db8::1]:5000/repo:tag@{F256}"),
        ),
        (
            format!("localhost:5000/a/b:tag@{F256}"),
            format!("localhost:5000/a/b:tag@{F256}"),
            format!("localhost:5000/a/b:tag@{F256}"),
        ),
        (
            format!("test:5000/repo@{F256}"),
            format!("test:5000/repo@{F256}"),
            format!("test:5000/repo@{F256}"),
        ),
        s(
            "localhost/foo",
            "localhost/foo:latest",
            "localhost/foo:latest",
        ),
        // No '/': a familiar name, so "host:port" reads as name:tag.
        s(
            "localhost:5000",
            "docker.io/library/localhost:5000",
            "localhost:5000",
        ),
        s(
            "localhost",
            "docker.io/library/localhost:latest",
            "localhost:latest",
        ),
        s(
            "test.com:tag",
            "docker.io/library/test.com:tag",
            "test.com:tag",
        ),
        s(
            "test.com:5000",
            "docker.io/library/test.com:5000",
            "test.com:5000",
        ),
        s(
            "foo_bar.com:8080",
            "docker.io/library/foo_bar.com:8080",
            "foo_bar.com:8080",
        ),
        s(
            "foo/foo_bar.com:8080",
            "docker.io/foo/foo_bar.com:8080",
            "foo/foo_bar.com:8080",
        ),
        s(
            "test_com/foo",
            "docker.io/test_com/foo:latest",
            "test_com/foo:latest",
        ),
        s("test.com/foo", "test.com/foo:latest", "test.com/foo:latest"),
        s(
            "test-com:8080/foo",
            "test-com:8080/foo:latest",
            "test-com:8080/foo:latest",
        ),
        s(
            "xn--n3h.com:18080/foo",
            "xn--n3h.com:18080/foo:latest",
            "xn--n3h.com:18080/foo:latest",
        ),
        s(
            "xn--n3h.com/myimage:xn--n3h.com",
            "xn--n3h.com/myimage:xn--n3h.com",
            "xn--n3h.com/myimage:xn--n3h.com",
        ),
        (
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{f512}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{f512}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{f512}"),
        ),
        s(
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app:test.example.com",
        ),
        s(
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
        ),
        s(
            "lowercase:Uppercase",
            "docker.io/library/lowercase:Uppercase",
            "lowercase:Uppercase",
        ),
        // An upper-case first component is a host, not a namespace.
        s("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
        s("FOO/bar", "FOO/bar:latest", "FOO/bar:latest"),
        s(
            "Docker/docker",
            "Docker/docker:latest",
            "Docker/docker:latest",
        ),
        s(
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest",
        ),
        s(
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest",
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest",
        ),
        s(
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
        ),
        s(
            "docker-rules/docker",
            "docker.io/docker-rules/docker:latest",
            "docker-rules/docker:latest",
        ),
        s(
            "docker---rules/docker",
            "docker.io/docker---rules/docker:latest",
            "docker---rules/docker:latest",
        ),
        s(
            "dock__er/docker",
            "docker.io/dock__er/docker:latest",
            "dock__er/docker:latest",
        ),
        s("d/docker", "docker.io/d/docker:latest", "d/docker:latest"),
        s("jess/t", "docker.io/jess/t:latest", "jess/t:latest"),
        s(
            "example.com:8000/named:tagged",
            "example.com:8000/named:tagged",
            "example.com:8000/named:tagged",
        ),
        s(
            "ghcr.io/o/app:_v1",
            "ghcr.io/o/app:_v1",
            "ghcr.io/o/app:_v1",
        ),
    ]
}

fn invalid_cases() -> Vec<(String, Kind)> {
    let s = |a: &str, k: Kind| (a.to_owned(), k);
    vec![
        s("", Kind::Empty),
        s("Busybox", Kind::Uppercase),
        s("Uppercase:tag", Kind::Uppercase),
        s("test:5000/Uppercase/lowercase:tag", Kind::Uppercase),
        s("docker/Docker", Kind::Uppercase),
        s("docker.io/docker/Docker", Kind::Uppercase),
        s("a:b:c", Kind::Tag),
        s(":justtag", Kind::Repository),
        (format!("@{F256}"), Kind::Repository),
        s(
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            Kind::Digest,
        ),
        (
            format!("validname@invaliddigest:{}", "f".repeat(64)),
            Kind::Digest,
        ),
        (format!("busybox@sha384:{}", "f".repeat(96)), Kind::Digest),
        (format!("busybox@sha256:{}", "F".repeat(64)), Kind::Digest),
        s("busybox@", Kind::Digest),
        s("busybox:", Kind::Tag),
        s("busybox:-x", Kind::Tag),
        (format!("busybox:{}", "a".repeat(129)), Kind::Tag),
        s("aa/asdf$$^/aa", Kind::Repository),
        s("https://github.com/docker/docker", Kind::Registry),
        s("-docker", Kind::Repository),
        s("-docker/docker", Kind::Repository),
        s("docker-/docker", Kind::Repository),
        s("-docker.io/docker/docker", Kind::Registry),
        s("docker///docker", Kind::Repository),
        s("docker.io/docker///docker", Kind::Repository),
        s("____/____", Kind::Repository),
        s("_docker/_docker", Kind::Repository),
        // '.' in the first component makes it a host.
        s("dock..er/docker", Kind::Registry),
        s("dock_.er/docker", Kind::Registry),
        s("dock-.er/docker", Kind::Registry),
        s("docker/", Kind::Repository),
        s("a//b", Kind::Repository),
        s("[fc00::1]", Kind::Repository),
        s("[fc00::1]:5000", Kind::Repository),
        s("[2001:db8::1]:tag", Kind::Repository),
        s("fc00::1:5000/debian", Kind::Registry),
        s("[fe80::1%eth0]:5000/debian", Kind::Registry),
        s("[fe80::1%@invalidzone]:5000/repo", Kind::Registry),
        s("[2001:db8:3:4::192.0.2.33]:5000/debian", Kind::Registry),
        s("[::1/foo", Kind::Registry),
        s("[::1]x/foo", Kind::Registry),
        s("localhost:/foo", Kind::Registry),
        s("example.com:port/foo", Kind::Registry),
        s("foo_bar.com/x", Kind::Registry),
        s("localhost:5000/", Kind::Format),
        s(
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            Kind::Format,
        ),
        s("a b", Kind::Repository),
        s("a/../b", Kind::Repository),
        s("%2e%2e", Kind::Repository),
        s("café", Kind::Repository),
        (format!("{}a:tag", "a/".repeat(128)), Kind::TooLong),
        // distribution accepts this one (it limits only the path); berth
        // limits registry/name as a whole.
        (
            format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
            Kind::TooLong,
        ),
    ]
}

#[test]
fn table_has_at_least_forty_cases() {
    assert!(valid_cases().len() + invalid_cases().len() >= 40);
}

#[test]
fn valid_references_normalise() {
    for (input, full, familiar) in valid_cases() {
        let r =
            Reference::parse(&input).unwrap_or_else(|e| panic!("{input:?} should parse, got: {e}"));
        assert_eq!(r.to_string(), full, "full form of {input:?}");
        assert_eq!(r.familiar(), familiar, "familiar form of {input:?}");
        // Both forms parse back to the same reference.
        assert_eq!(
            Reference::parse(&full).as_ref(),
            Ok(&r),
            "reparse of {full:?}"
        );
        assert_eq!(
            Reference::parse(&familiar).as_ref(),
            Ok(&r),
            "reparse of {familiar:?}"
        );
        assert_eq!(input.parse::<Reference>().as_ref(), Ok(&r));
    }
}

#[test]
fn invalid_references_are_rejected_with_the_right_error() {
    for (input, expected) in invalid_cases() {
        match Reference::parse(&input) {
            Ok(r) => panic!("{input:?} should fail, parsed as {r}"),
            Err(e) => assert_eq!(kind(&e), expected, "{input:?}: {e}"),
        }
    }
}

#[test]
fn accessors() {
    let r = Reference::parse(&format!("localhost:5000/a/b:tag@{F256}")).unwrap();
    assert_eq!(r.registry(), "localhost:5000");
    assert_eq!(r.repository(), "a/b");
    assert_eq!(r.tag(), Some("tag"));
    assert_eq!(r.digest().map(Digest::as_str), Some(F256));
    assert_eq!(r.name(), "localhost:5000/a/b");

    let r = Reference::parse("busybox").unwrap();
    assert_eq!(r.registry(), "docker.io");
    assert_eq!(r.repository(), "library/busybox");
    assert_eq!(r.tag(), Some("latest"));
    assert_eq!(r.digest(), None);

    // Digest only: no default tag.
    let r = Reference::parse(&format!("busybox@{D256}")).unwrap();
    assert_eq!(r.tag(), None);
    assert_eq!(r.digest().map(Digest::algorithm), Some(Algorithm::Sha256));
}

#[test]
fn name_length_limit_counts_registry() {
    // docker.io/ is 10 bytes: a 245-byte path is the longest allowed there.
    let path = format!("ns/{}", "a".repeat(242));
    assert_eq!(path.len(), 245);
    let r = Reference::parse(&path).unwrap();
    assert_eq!(r.name().len(), 255);
    let err = Reference::parse(&format!("{path}a")).unwrap_err();
    assert!(
        matches!(
            err,
            ReferenceError::NameTooLong {
                len: 256,
                max: 255,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("255"), "{err}");
}

#[test]
fn error_messages_name_input_and_problem() {
    let err = Reference::parse("Busybox").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid image reference \"Busybox\": repository name must be lowercase"
    );

    let err = Reference::parse("a:b:c").unwrap_err();
    assert_eq!(err.to_string(), "invalid tag in image reference \"a:b:c\"");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some(
            "invalid name or tag \"b:c\": tag may only contain ASCII letters, digits, '_', '.' and '-'"
        )
    );

    let err = Reference::parse(&format!("busybox@sha384:{}", "f".repeat(96))).unwrap_err();
    assert!(matches!(
        &err,
        ReferenceError::InvalidDigest { source: DigestError::Unsupported { algorithm }, .. }
            if algorithm == "sha384"
    ));

    let err = Reference::parse("fc00::1:5000/debian").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid registry host \"fc00::1:5000\""),
        "{err}"
    );

    // Huge inputs are cut in errors.
    let long = format!("{}!", "a".repeat(10_000));
    let msg = Reference::parse(&long).unwrap_err().to_string();
    assert!(msg.len() < 400, "{msg}");
}

#[test]
fn serde_as_string() {
    let r = Reference::parse("busybox").unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"docker.io/library/busybox:latest\"");
    let back: Reference = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert!(serde_json::from_str::<Reference>("\"Busybox\"").is_err());
}

#[test]
fn registry_host_matches_distribution_domain_regex() {
    // domainAndPort from distribution/reference regexp.go.
    let component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let re = regex::Regex::new(&format!(
        r"^(?:{component}(?:\.{component})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?$"
    ))
    .unwrap();
    let alphabet = ['a', 'F', '0', '-', '.', ':', '[', ']', '_'];
    for len in 1..=5u32 {
        for mut n in 0..alphabet.len().pow(len) {
            let host: String = (0..len)
                .map(|_| {
                    let c = alphabet[n % alphabet.len()];
                    n /= alphabet.len();
                    c
                })
                .collect();
            assert_eq!(
                validate_registry_host(&host).is_ok(),
                re.is_match(&host),
                "disagreement on host {host:?}"
            );
        }
    }
}
