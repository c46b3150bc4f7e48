//! Against Debian's `docker-registry` (CNCF distribution 2.8): no referrers API (the tag
//! schema fallback is used), Basic authentication from htpasswd.

use berth_distribution::{BlobPush, BytesSource, ClientOptions, Error, FileSource, referrers_tag};
use berth_test_support::{MEDIA_MANIFEST, requires_tool};

use crate::common::{
    DockerRegistry, artifact, blob, block_on, client, image, options, plain_client, pull_blob,
    push_image, repo, with_user,
};

#[test]
fn docker_registry_push_pull_mount_tags_and_referrers_fallback() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    let c = client(ClientOptions {
        chunk_size: 16 << 20,
        ..options()
    });
    let r = repo(&reg.host(), "team/app");
    block_on(async {
        let img = image(21, &[1500, 2500]);
        push_image(&c, &r, &img, "v1").await;
        for (d, data) in &img.blobs {
            let again = c
                .push_blob(&r, d, data.len() as u64, BytesSource(data.clone().into()))
                .await
                .unwrap();
            assert_eq!(again, BlobPush::AlreadyPresent);
            assert_eq!(pull_blob(&c, &r, d, Some(data.len() as u64)).await, *data);
        }
        let m = c.get_manifest(&r, "v1", &[]).await.unwrap();
        assert_eq!(m.digest, img.digest);
        assert_eq!(m.bytes.as_ref(), img.manifest.as_slice());

        // 40 MiB in 16 MiB chunks
        let dir = tempfile::tempdir().unwrap();
        let (d, big) = blob(22, 40 << 20);
        let src = dir.path().join("big");
        berth_fsutil::atomic_write(&src, &big).unwrap();
        assert_eq!(
            c.push_blob(&r, &d, big.len() as u64, FileSource::new(&src))
                .await
                .unwrap(),
            BlobPush::Uploaded
        );
        assert!(pull_blob(&c, &r, &d, Some(40 << 20)).await == big);

        // mount into another repository
        let other = repo(&reg.host(), "team/other");
        assert!(c.mount_blob(&other, &d, "team/app").await.unwrap());
        assert_eq!(c.head_blob(&other, &d).await.unwrap(), Some(40 << 20));

        // no referrers API: pushing a manifest with a subject updates the tag index
        let (sig, sig_d) = artifact(&c, &r, &img, "application/vnd.example.sig", b"sig").await;
        c.put_manifest(&r, sig_d.as_str(), &sig, MEDIA_MANIFEST)
            .await
            .unwrap();
        let (sbom, sbom_d) = artifact(&c, &r, &img, "application/vnd.example.sbom", b"sbom").await;
        c.put_manifest(&r, sbom_d.as_str(), &sbom, MEDIA_MANIFEST)
            .await
            .unwrap();
        // pushing the same one again does not duplicate it
        c.put_manifest(&r, sig_d.as_str(), &sig, MEDIA_MANIFEST)
            .await
            .unwrap();
        let tags = c.tags(&r).await.unwrap();
        assert!(tags.contains(&referrers_tag(&img.digest)), "{tags:?}");
        let all = c.referrers(&r, &img.digest, None).await.unwrap();
        let digests: Vec<String> = all.iter().map(|d| d.digest().to_string()).collect();
        assert_eq!(digests, [sig_d.to_string(), sbom_d.to_string()]);
        let sigs = c
            .referrers(&r, &img.digest, Some("application/vnd.example.sig"))
            .await
            .unwrap();
        assert_eq!(sigs.len(), 1);
        assert_eq!(sigs[0].digest().to_string(), sig_d.to_string());
        // a subject without referrers
        let (nothing, _) = blob(23, 1);
        assert!(c.referrers(&r, &nothing, None).await.unwrap().is_empty());

        // tag pagination
        for i in 0..5 {
            c.put_manifest(&r, &format!("p{i}"), &img.manifest, MEDIA_MANIFEST)
                .await
                .unwrap();
        }
        let mut paged = c.tags_paged(&r, Some(2)).await.unwrap();
        paged.sort();
        let mut all_tags = c.tags(&r).await.unwrap();
        all_tags.sort();
        assert_eq!(paged, all_tags);
        assert_eq!(paged.len(), 7, "{paged:?}");
    });
}

#[test]
fn docker_registry_basic_auth() {
    requires_tool!("docker-registry", "htpasswd");
    let reg = DockerRegistry::start(Some(("bob", "pw-123")));
    let host = reg.host();
    let r = repo(&host, "private/app");
    block_on(async {
        let good = client(with_user(options(), &host, "bob", "pw-123"));
        good.ping(&host).await.unwrap();
        let img = image(24, &[3000]);
        push_image(&good, &r, &img, "v1").await;
        assert_eq!(
            good.get_manifest(&r, "v1", &[]).await.unwrap().digest,
            img.digest
        );

        let wrong = client(with_user(options(), &host, "bob", "nope"));
        let e = wrong.get_manifest(&r, "v1", &[]).await.unwrap_err();
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

        let e = plain_client()
            .get_manifest(&r, "v1", &[])
            .await
            .unwrap_err();
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
    });
}
