//! berth against real Kubernetes: a real kube-apiserver over etcd on 127.0.0.1
//! ([`berth_test_support::KubeApiServer`]), the Kubernetes API's own JSON fixtures
//! (k8s.io/api's testdata) and the objects kubectl makes. The binaries are built from the Go
//! module proxy by `scripts/test`; a machine without them skips these tests (fails under
//! `BERTH_TEST_REQUIRE_TOOLS=1`).

mod apiserver;
mod fixtures;
mod pull_secrets;
mod webhook;
