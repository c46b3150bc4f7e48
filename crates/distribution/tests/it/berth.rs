//! Against the built `berth registry serve`: anonymous, htpasswd with bearer tokens, TLS,
//! and a crash in the middle of a download.

use std::sync::Arc;
use std::time::Duration;

use berth_distribution::{
    BlobPush, BytesSource, ClientOptions, ConnectCause, Credential, CredentialsConfig, Error,
    FileSource, PlainHttp, RetryPolicy, Secret, StaticCredentials, referrers_tag,
};
use berth_test_support::{MEDIA_MANIFEST, Registry, RegistryOptions, requires_tool};
use tokio::io::AsyncReadExt;

use crate::common::{
    artifact, blob, block_on, client, image, options, plain_client, pull_blob, push_image, repo,
    with_user,
};

#[test]
fn push_and_pull_small_and_chunked_blobs_and_manifests() {
    let reg = Registry::start(RegistryOptions::new());
    // Auto on a loopback registry: HTTPS is tried, then plain HTTP
    let c = plain_client();
    let r = repo(&reg.host(), "team/app");
    block_on(async {
        let img = image(1, &[1000, 3000]);
        push_image(&c, &r, &img, "v1").await;
        for (d, data) in &img.blobs {
            let again = c
                .push_blob(&r, d, data.len() as u64, BytesSource(data.clone().into()))
                .await
                .unwrap();
            assert_eq!(
                again,
                BlobPush::AlreadyPresent,
                "HEAD first, no second upload"
            );
            assert_eq!(pull_blob(&c, &r, d, Some(data.len() as u64)).await, *data);
            assert_eq!(c.head_blob(&r, d).await.unwrap(), Some(data.len() as u64));
        }
        let m = c.get_manifest(&r, "v1", &[]).await.unwrap();
        assert_eq!(
            (m.bytes.as_ref(), &m.digest),
            (img.manifest.as_slice(), &img.digest)
        );
        assert_eq!(m.media_type, MEDIA_MANIFEST);
        let by_digest = c.get_manifest(&r, img.digest.as_str(), &[]).await.unwrap();
        assert_eq!(by_digest, m);
        let head = c.head_manifest(&r, "v1", &[]).await.unwrap().unwrap();
        assert_eq!(head.digest.as_ref(), Some(&img.digest));
        assert_eq!(head.size, Some(img.manifest.len() as u64));
        assert_eq!(c.head_manifest(&r, "nope", &[]).await.unwrap(), None);
        let missing = c.get_manifest(&r, "nope", &[]).await.unwrap_err();
        assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
        assert!(
            missing.to_string().contains("MANIFEST_UNKNOWN"),
            "{missing}"
        );
        let (d, _) = blob(99, 10);
        assert_eq!(c.head_blob(&r, &d).await.unwrap(), None);

        // 40 MiB from a file, in 16 MiB chunks, back through the verifier into a file
        let dir = tempfile::tempdir().unwrap();
        let (d, big) = blob(7, 40 << 20);
        let src = dir.path().join("big");
        berth_fsutil::atomic_write(&src, &big).unwrap();
        let chunked = client(ClientOptions {
            chunk_size: 16 << 20,
            ..options()
        });
        let pushed = chunked
            .push_blob(&r, &d, big.len() as u64, FileSource::new(&src))
            .await
            .unwrap();
        assert_eq!(pushed, BlobPush::Uploaded);
        assert_eq!(c.head_blob(&r, &d).await.unwrap(), Some(40 << 20));
        let dest = dir.path().join("back");
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&dest)
            .await
            .unwrap();
        let n = c.get_blob(&r, &d, Some(40 << 20), &mut f).await.unwrap();
        assert_eq!(n, 40 << 20);
        drop(f);
        let mut back = Vec::new();
        tokio::fs::File::open(&dest)
            .await
            .unwrap()
            .read_to_end(&mut back)
            .await
            .unwrap();
        assert!(back == big, "the downloaded blob differs");
    });
}

#[test]
fn cross_repository_mount() {
    let reg = Registry::start(RegistryOptions::new());
    let c = plain_client();
    let (src, dst) = (repo(&reg.host(), "src/a"), repo(&reg.host(), "dst/b"));
    block_on(async {
        let (d, data) = blob(11, 5000);
        c.push_blob(&src, &d, 5000, BytesSource(data.into()))
            .await
            .unwrap();
        assert!(c.mount_blob(&dst, &d, "src/a").await.unwrap());
        assert_eq!(c.head_blob(&dst, &d).await.unwrap(), Some(5000));
        // a blob the source does not have: declined, the session cancelled
        let (unknown, _) = blob(12, 10);
        assert!(!c.mount_blob(&dst, &unknown, "src/a").await.unwrap());
        assert_eq!(c.head_blob(&dst, &unknown).await.unwrap(), None);
    });
}

#[test]
fn referrers_through_the_api() {
    let reg = Registry::start(RegistryOptions::new());
    let c = plain_client();
    let r = repo(&reg.host(), "signed/app");
    block_on(async {
        let img = image(2, &[500]);
        push_image(&c, &r, &img, "v1").await;
        let (m, d) = artifact(&c, &r, &img, "application/vnd.example.sig", b"signature").await;
        assert_eq!(
            c.put_manifest(&r, d.as_str(), &m, MEDIA_MANIFEST)
                .await
                .unwrap(),
            d
        );
        let all = c.referrers(&r, &img.digest, None).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].digest().to_string(), d.to_string());
        assert_eq!(
            all[0]
                .artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("application/vnd.example.sig")
        );
        let none = c
            .referrers(&r, &img.digest, Some("application/vnd.example.sbom"))
            .await
            .unwrap();
        assert!(none.is_empty());
        // the registry has the API (OCI-Subject): no fallback tag was written
        let tags = c.tags(&r).await.unwrap();
        assert_eq!(tags, ["v1"], "no {} tag", referrers_tag(&img.digest));
    });
}

#[test]
fn tags_follow_link_pagination() {
    let reg = Registry::start(RegistryOptions::new());
    let c = plain_client();
    let r = repo(&reg.host(), "many/tags");
    block_on(async {
        let img = image(3, &[100]);
        push_image(&c, &r, &img, "t0").await;
        for i in 1..7 {
            c.put_manifest(&r, &format!("t{i}"), &img.manifest, MEDIA_MANIFEST)
                .await
                .unwrap();
        }
        let want: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        let mut paged = c.tags_paged(&r, Some(2)).await.unwrap();
        paged.sort();
        assert_eq!(paged, want);
        let mut all = c.tags(&r).await.unwrap();
        all.sort();
        assert_eq!(all, want);
    });
}

#[test]
fn htpasswd_users_get_bearer_tokens_and_bad_credentials_are_clear_errors() {
    requires_tool!("htpasswd");
    let reg = Registry::start(RegistryOptions::new().user("alice", "s3cret"));
    let host = reg.host();
    let r = repo(&host, "team/app");
    block_on(async {
        let good = client(with_user(options(), &host, "alice", "s3cret"));
        good.ping(&host).await.unwrap();
        let img = image(4, &[2000]);
        push_image(&good, &r, &img, "v1").await;
        assert_eq!(
            good.get_manifest(&r, "v1", &[]).await.unwrap().digest,
            img.digest
        );
        // a mount needs a token for two repositories
        let other = repo(&host, "team/other");
        assert!(
            good.mount_blob(&other, &img.blobs[1].0, "team/app")
                .await
                .unwrap()
        );

        let anonymous = plain_client();
        let e = anonymous.get_manifest(&r, "v1", &[]).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Unauthorized {
                    had_credentials: false,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.hint().unwrap(), format!("hint: run berth login {host}"));

        let wrong = client(with_user(options(), &host, "alice", "wrong"));
        for e in [
            wrong.ping(&host).await.unwrap_err(),
            wrong.get_manifest(&r, "v1", &[]).await.unwrap_err(),
        ] {
            assert!(
                matches!(
                    e,
                    Error::Unauthorized {
                        had_credentials: true,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("refused the credentials"), "{e}");
            assert!(
                e.hint()
                    .unwrap()
                    .contains("check the username and password"),
                "{e:?}"
            );
        }

        // credentials from a docker config.json written by login()
        let dir = tempfile::tempdir().unwrap();
        let cfg = CredentialsConfig::new(dir.path().join("config.json"));
        cfg.login(&host, "alice", &Secret::new("s3cret")).unwrap();
        let from_file = client(ClientOptions {
            credentials: Some(Arc::new(cfg)),
            ..options()
        });
        let m = from_file.get_manifest(&r, "v1", &[]).await.unwrap();
        assert_eq!(m.digest, img.digest);
    });

    // an identity token (OAuth2 refresh token, docker's `identitytoken`) instead of a password
    let refresh = reg
        .http()
        .basic("alice", "s3cret")
        .get("/token?service=berth-registry&offline_token=true&client_id=test")
        .json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let with_token = client(ClientOptions {
        credentials: Some(Arc::new(StaticCredentials::new().with(
            &host,
            Credential::IdentityToken {
                username: "alice".into(),
                token: Secret::new(refresh),
            },
        ))),
        ..options()
    });
    block_on(async {
        let tags = with_token.tags(&r).await.unwrap();
        assert_eq!(tags, ["v1"]);
    });
}

#[test]
fn tls_with_the_test_ca() {
    requires_tool!("openssl");
    let reg = Registry::start(RegistryOptions::new().tls());
    let host = reg.host();
    let ca = reg.certs().unwrap().ca_pem();
    block_on(async {
        let untrusted = client(options());
        let e = untrusted.ping(&host).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Connect {
                    cause: ConnectCause::Certificate,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.hint().unwrap().contains("CA certificate"), "{e:?}");

        let trusted = client(ClientOptions {
            extra_root_certificates: vec![ca],
            ..options()
        });
        let r = repo(&host, "tls/app");
        let img = image(5, &[4000]);
        push_image(&trusted, &r, &img, "v1").await;
        for (d, data) in &img.blobs {
            assert_eq!(pull_blob(&trusted, &r, d, None).await, *data);
        }

        let insecure = client(ClientOptions {
            insecure_skip_verify: true,
            ..options()
        });
        insecure.ping(&host).await.unwrap();

        let plain = client(ClientOptions {
            plain_http: PlainHttp::Always,
            ..options()
        });
        assert!(plain.ping(&host).await.is_err());
    });
}

#[test]
fn https_only_against_a_plain_registry_hints_plain_http() {
    let reg = Registry::start(RegistryOptions::new());
    let c = client(ClientOptions {
        plain_http: PlainHttp::Never,
        ..options()
    });
    let e = block_on(c.ping(&reg.host())).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Connect {
                cause: ConnectCause::PlainHttpServer,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.hint().unwrap(),
        "hint: the registry speaks plain HTTP; add --plain-http"
    );
}

#[test]
fn download_resumes_after_the_registry_is_killed_and_restarted() {
    let mut reg = Registry::start(RegistryOptions::new());
    let host = reg.host();
    let r = repo(&host, "crash/app");
    let (d, data) = blob(8, 40 << 20);
    let c = client(ClientOptions {
        retry: RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        },
        ..options()
    });
    block_on(async {
        c.push_blob(&r, &d, data.len() as u64, BytesSource(data.clone().into()))
            .await
            .unwrap();
        // The sink is a small pipe; its reader stops after 1 MiB, so the download stalls
        // mid-body while the registry is SIGKILLed and restarted.
        let (mut writer, mut reader) = tokio::io::duplex(64 * 1024);
        let download = {
            let (c, r, d) = (c.clone(), r.clone(), d.clone());
            tokio::spawn(async move {
                let res = c.get_blob(&r, &d, Some(40 << 20), &mut writer).await;
                drop(writer);
                res
            })
        };
        let mut got = vec![0u8; 1 << 20];
        reader.read_exact(&mut got).await.unwrap();
        let mut reg = tokio::task::spawn_blocking(move || {
            reg.kill9();
            reg.restart();
            reg
        })
        .await
        .unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        got.extend_from_slice(&rest);
        let res = download.await.unwrap();
        if reg.host() == host {
            let n =
                res.unwrap_or_else(|e| panic!("the download did not resume: {e:?}\n{}", reg.log()));
            assert_eq!(n, 40 << 20);
            assert!(got == data, "the resumed download differs");
        } else {
            // restarted on another port: the client cannot know; it must fail cleanly
            let e = res.unwrap_err();
            assert!(
                matches!(e, Error::Connect { .. } | Error::Transport { .. }),
                "{e:?}"
            );
        }
        reg.kill9();
    });
}
