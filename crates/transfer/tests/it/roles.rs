//! One conformance suite for the content roles, run by every implementation: the local
//! store (under a lease), an OCI image layout, and a registry repository (Debian's
//! `docker-registry` on 127.0.0.1).

use std::sync::Arc;

use berth_distribution::{Client, ClientOptions, Repository};
use berth_oci::Digest;
use berth_store::{OciLayout, PruneOptions, Store};
use berth_test_support::{DockerRegistry, random_bytes, requires_tool};
use berth_transfer::{
    BlobProgress, ErrorKind, Ingester, NoProgress, Provider, Put, RegistryContent, copy_blob,
};
use tokio::io::AsyncWriteExt;

use crate::{layer, runtime};

/// A destination and source of one kind, with what keeps it alive.
struct Subject {
    name: &'static str,
    ingester: Box<dyn Ingester>,
    provider: Box<dyn Provider>,
    _keep: Box<dyn std::any::Any>,
}

fn store_subject() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let lease = store.lease("roles test").unwrap();
    Subject {
        name: "store",
        ingester: Box::new(store.ingester(&lease)),
        provider: Box::new(store),
        _keep: Box::new((dir, lease)),
    }
}

fn layout_subject() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path().join("layout")).unwrap();
    Subject {
        name: "layout",
        ingester: Box::new(layout.clone()),
        provider: Box::new(layout),
        _keep: Box::new(dir),
    }
}

fn registry_subject(reg: &DockerRegistry, repo: &str) -> Subject {
    let client = Client::new(ClientOptions::default()).unwrap();
    let content = RegistryContent::new(client, Repository::new(&reg.host(), repo).unwrap());
    Subject {
        name: "registry",
        ingester: Box::new(content.clone()),
        provider: Box::new(content),
        _keep: Box::new(()),
    }
}

/// Every implementation, for `check`.
fn each_subject(check: impl Fn(&Subject)) {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    for subject in [
        store_subject(),
        layout_subject(),
        registry_subject(&reg, "roles/test"),
    ] {
        check(&subject);
    }
}

fn no_bar() -> Arc<dyn BlobProgress> {
    Arc::new(NoProgress)
}

#[test]
fn writer_commits_verified_content_that_the_provider_reads_back() {
    each_subject(|s| {
        let data = random_bytes(1, 3 << 20);
        let (digest, desc) = layer(&data);
        runtime().block_on(async {
            assert!(!s.ingester.exists(&desc).await.unwrap(), "{}", s.name);
            let mut w = s.ingester.writer("k", &desc, &no_bar()).await.unwrap();
            w.write_all(&data).await.unwrap();
            let put = w.commit(data.len() as u64, digest.clone()).await.unwrap();
            assert_ne!(put, Put::Mounted, "{}", s.name);
            assert!(s.ingester.exists(&desc).await.unwrap(), "{}", s.name);
            let mut back = Vec::new();
            s.provider.fetch(&desc, &mut back).await.unwrap();
            assert!(back == data, "{}: the content read back differs", s.name);
        });
    });
}

#[test]
fn writer_refuses_content_that_does_not_match_its_digest() {
    each_subject(|s| {
        let data = random_bytes(2, 100_000);
        let (digest, desc) = layer(&data);
        let mut evil = data.clone();
        evil[50_000] ^= 0xff;
        runtime().block_on(async {
            let mut w = s.ingester.writer("k", &desc, &no_bar()).await.unwrap();
            w.write_all(&evil).await.unwrap();
            let err = w.commit(data.len() as u64, digest).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err:?}", s.name);
            assert!(!s.ingester.exists(&desc).await.unwrap(), "{}", s.name);
        });
    });
}

#[test]
fn aborted_writer_leaves_nothing_visible() {
    each_subject(|s| {
        let data = random_bytes(3, 200_000);
        let (_, desc) = layer(&data);
        runtime().block_on(async {
            let mut w = s.ingester.writer("k", &desc, &no_bar()).await.unwrap();
            w.write_all(&data[..100_000]).await.unwrap();
            w.abort().await.unwrap();
            assert!(!s.ingester.exists(&desc).await.unwrap(), "{}", s.name);
        });
    });
}

#[test]
fn copy_blob_between_every_pair_of_kinds() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    let kinds: [fn(&DockerRegistry, &str) -> Subject; 3] = [
        |_, _| store_subject(),
        |_, _| layout_subject(),
        registry_subject,
    ];
    for (i, from) in kinds.iter().enumerate() {
        for (j, to) in kinds.iter().enumerate() {
            let (from, to) = (from(&reg, "roles/from"), to(&reg, "roles/to"));
            let data = random_bytes(100 + (i * 3 + j) as u64, 1 << 20);
            let (digest, desc) = layer(&data);
            runtime().block_on(async {
                let mut w = from.ingester.writer("k", &desc, &no_bar()).await.unwrap();
                w.write_all(&data).await.unwrap();
                w.commit(data.len() as u64, digest).await.unwrap();
                let put = copy_blob(&*from.provider, &*to.ingester, &desc, &NoProgress)
                    .await
                    .unwrap();
                let expected = if i == j && from.name == "registry" {
                    // another repository of the same registry: linked, not transferred
                    Put::Mounted
                } else {
                    Put::Copied
                };
                assert_eq!(put, expected, "{} -> {}", from.name, to.name);
                let mut back = Vec::new();
                to.provider.fetch(&desc, &mut back).await.unwrap();
                assert!(
                    back == data,
                    "{} -> {}: content differs",
                    from.name,
                    to.name
                );
            });
        }
    }
}

#[test]
fn blobs_copied_into_the_store_are_leased_until_the_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("data")).unwrap();
    let layout = OciLayout::create(dir.path().join("layout")).unwrap();
    let data = random_bytes(7, 1 << 20);
    let (digest, desc) = layer(&data);
    layout
        .write_blob(&data[..], &digest, Some(data.len() as u64))
        .unwrap();
    let lease = store.lease("copy test").unwrap();
    let put = runtime()
        .block_on(copy_blob(
            &layout,
            &store.ingester(&lease),
            &desc,
            &NoProgress,
        ))
        .unwrap();
    assert_eq!(put, Put::Copied);
    // no image names the blob and no grace period protects it: only the lease does
    let no_grace = PruneOptions {
        grace: std::time::Duration::ZERO,
        ..PruneOptions::default()
    };
    let report = store.prune(no_grace).unwrap();
    assert!(report.removed_blobs.is_empty(), "{report:?}");
    drop(lease);
    let report = store.prune(no_grace).unwrap();
    assert_eq!(report.removed_blobs, vec![digest]);
}

#[test]
fn a_store_ingester_leases_what_it_checks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let lease = store.lease("exists test").unwrap();
    let (digest, desc) = layer(b"not here yet");
    let present = runtime()
        .block_on(store.ingester(&lease).exists(&desc))
        .unwrap();
    assert!(!present);
    assert_eq!(lease.digests(), vec![digest as Digest]);
}
