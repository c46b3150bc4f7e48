//! Test support for berth: real processes owned by guards, fixtures, and tool requirements.
//!
//! What it owns: a [`Registry`] guard that runs the built `berth registry serve` on
//! `127.0.0.1:0` in a temporary data directory and kills it by PID on `Drop` (panics
//! included); an [`OciLayout`] fixture builder (images, multi-arch indexes, artifacts with a
//! `subject`) filled with deterministic incompressible layers; a small HTTP client ([`Http`])
//! and a raw-socket one ([`raw_request`]) for the requests a polite client never sends;
//! [`wait_until`] for polling a condition against a deadline; and [`requires_tool!`] /
//! [`requires_root!`], which skip a test on a laptop but fail it when
//! `BERTH_TEST_REQUIRE_TOOLS=1` (as `scripts/test` sets).
//!
//! For conformance checks: a [`BrokenRegistry`], a proxy in front of a real registry
//! that breaks one named thing ([`Break`]) on the requests a [`Matcher`] selects.
//!
//! For the OCI runtime: a [`Bundle`] builder (busybox-static rootfs with the static probe
//! from `tests/probe` at `/probe`, [`probe_bin`]; a `runc spec`-like config.json), a
//! [`Runtime`] handle over any runc-compatible binary (runc, crun, berth-runtime) with its
//! own `--root`, a [`ContainerGuard`] that kills and deletes its container on `Drop` and
//! checks its cgroups are gone, and a [`LoopDevice`] guard.
//!
//! For Kubernetes: a [`KubeApiServer`] (etcd and kube-apiserver on 127.0.0.1 with an admin
//! kubeconfig, killed by PID on `Drop`), [`kubectl_client`] for `--dry-run=client` objects,
//! and [`k8s_api_testdata`], the Kubernetes API's own JSON fixtures in Go's module cache.
//!
//! For timestamping: a [`TestTsa`], an RFC 3161 timestamp authority on 127.0.0.1 that
//! answers through `openssl ts -reply` (or misbehaves as a [`TsaMode`] says).
//!
//! For the admission webhook: an [`AdmissionHarness`] that plays the Kubernetes API server
//! (webhook configurations read from the manifests, TLS verified against their `caBundle`,
//! `?timeout=`, JSON patches applied with [`jsonpatch`]), and [`ReviewBuilder`] for
//! AdmissionReview requests of every workload kind.
//!
//! For object storage: an [`S3Server`] (`s3s-fs` or moto's server on 127.0.0.1 with a
//! bucket, and curl-signed requests to it), [`DockerRegistry::on_s3`] (docker-registry's
//! own S3 driver on it), and [`Nginx`], a round-robin proxy in front of registry replicas.
//!
//! What it does not own: assertions about registry behaviour. Those live in the tests.
//!
//! The one design decision: tests run the *built binary* (`berth_bin()`), never the server
//! in-process, so a SIGKILL in a test is a real crash and a restart is a real restart.
//! Build it first (`cargo build -p berth-cli`; `scripts/test` builds the whole workspace).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test support: failing loudly is the point"
)]

mod admission;
mod broken;
mod bundle;
mod console;
mod docker_registry;
mod fs;
mod http;
pub mod jsonpatch;
mod kube;
mod layout;
mod loopdev;
mod nginx;
mod probe;
mod process;
mod pty;
mod registry;
mod review;
mod revocation;
mod rng;
mod runtime;
mod s3;
mod tls;
mod tmpfs;
mod tools;
mod tree;
mod tsa;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use admission::{
    Admission, AdmissionHarness, Call, Webhook, WebhookKind, label_selector_matches, yaml_documents,
};
pub use broken::{Break, BrokenRegistry, Endpoint, Matcher, RefKind};
pub use bundle::{
    BUSYBOX, Bundle, DEFAULT_CAPS, DEFAULT_HOSTNAME, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS,
    busybox_static_available,
};
pub use console::{ConsoleSocket, read_pty};
pub use docker_registry::DockerRegistry;
pub use fs::{set_mtime, walk_files, write_file};
pub use http::{Http, RawResponse, Resp, raw_request, with_query};
pub use kube::{
    K8S_API_TESTDATA_ENV, K8S_API_VERSION, KUBECTL_TIMEOUT, KubeApiServer, k8s_api_testdata,
    kubectl_client,
};
pub use layout::{
    ARTIFACT_EMPTY_CONFIG, Descriptor, Layer, MEDIA_INDEX, MEDIA_LAYER_GZIP, MEDIA_MANIFEST,
    OciLayout, gzip_stored, image_config,
};
pub use loopdev::LoopDevice;
pub use nginx::{Nginx, ProxiedRequest};
pub use probe::{PROBE_BIN_ENV, is_static_elf, probe_bin};
pub use process::{
    ChildGuard, kill_pid_and_wait, read_output_file, run_under_strace, run_with_timeout,
};
pub use pty::PtySession;
pub use registry::{Registry, RegistryOptions, set_last_referenced};
pub use review::{ReviewBuilder, WorkloadKind, images_of, new_uid};
pub use revocation::{CrlServer, LeafInfo, OcspResponder, RevocationPki, ca_config, ec_key};
pub use rng::{XorShift, random_bytes};
pub use runtime::{
    BERTH_RUNTIME_BIN_ENV, COMMAND_TIMEOUT, ContainerGuard, RtOutput, Runtime, cgroup_dirs,
    cgroup_mounts, hybrid_cgroup2_controllers, in_sigwait, remove_leftover_cgroups,
};
pub use s3::{
    MOTO_SERVER_ENV, S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY, S3Kind, S3Response,
    S3Server, Signing,
};
pub use tls::TestCerts;
pub use tmpfs::Tmpfs;
pub use tools::{
    EXPECT_CGROUP_ENV, cgroup_v2_or_skip, check_cgroup_mode, debian_rootfs, expected_cgroup_mode,
    is_root, passwd_ids, skip_or_fail, tool_available,
};
pub use tree::{Node, diff_trees, node, tree};
pub use tsa::{TestTsa, TsaMode, openssl_ec_request, openssl_root};

pub use berth_oci::Digest;

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// Poll `probe` until it returns `true` or `timeout` elapses; returns whether it did.
///
/// The pause between probes starts at 1 ms and doubles up to 50 ms, so a condition that
/// becomes true quickly is seen quickly and a slow one does not burn a core.
pub fn wait_until(timeout: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if probe() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        backoff(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "wait_until is the one place tests pause: a short backoff between probes of a condition"
)]
fn backoff(d: Duration) {
    std::thread::sleep(d);
}

/// The workspace root (the directory holding the root `Cargo.toml` and `target/`).
pub fn workspace_root() -> PathBuf {
    // tests/support → tests → root
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .expect("tests/support has a grandparent directory")
}

/// notation's test vectors (data only, never copied into the repository):
/// `BERTH_NOTATION_VECTORS`, else `shared/vectors/notation` beside the repository. Panics
/// when they are missing: tests that need them cannot run without.
pub fn notation_vectors() -> PathBuf {
    let dir = tools::env_os("BERTH_NOTATION_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vectors/notation"));
    assert!(
        dir.join("README.md").is_file(),
        "notation test vectors not found at {} (set BERTH_NOTATION_VECTORS): these tests need them",
        dir.display()
    );
    dir
}

/// The `berth` binary to test: `$CARGO_BIN_EXE_berth` when cargo or nextest set it, else
/// `berth` next to the running test executable's profile directory
/// (`target/<profile>/deps/it-… → target/<profile>/berth`), else `<workspace>/target/debug/berth`.
///
/// Panics with a hint when it has not been built: integration tests of other crates cannot
/// make cargo build a binary of `berth-cli`, so `scripts/test` builds the workspace first.
pub fn berth_bin() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(p) = tools::env_os("CARGO_BIN_EXE_berth") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test> or target/<profile>/<test>
        for dir in exe.ancestors().skip(1).take(2) {
            candidates.push(dir.join("berth"));
        }
    }
    candidates.push(workspace_root().join("target/debug/berth"));
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "the berth binary is not built (looked at {candidates:?})\nhint: run `cargo build -p berth-cli` first; scripts/test builds the whole workspace"
    );
}

/// Skip the test (return from it) unless every named tool is on `PATH`; with
/// `BERTH_TEST_REQUIRE_TOOLS=1` a missing tool fails the test instead.
///
/// ```no_run
/// # fn t() {
/// berth_test_support::requires_tool!("skopeo", "openssl");
/// // … runs only when both are installed
/// # }
/// ```
#[macro_export]
macro_rules! requires_tool {
    ($($tool:expr),+ $(,)?) => {
        $(
            if !$crate::tool_available($tool)
                && $crate::skip_or_fail(&format!("the tool `{}` is not on PATH", $tool))
            {
                return;
            }
        )+
    };
}

/// Skip the test unless it runs as root; with `BERTH_TEST_REQUIRE_TOOLS=1` not being root
/// fails the test instead.
#[macro_export]
macro_rules! requires_root {
    () => {
        if !$crate::is_root() && $crate::skip_or_fail("the test needs root") {
            return;
        }
    };
}
