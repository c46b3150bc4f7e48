//! Throughput of the SHA-2 implementations berth could hash blobs with.
//!
//! Compares RustCrypto `sha2` 0.10 and `ring` 0.17 (`ring::digest`) for
//! sha256 and sha512, plus `berth_oci::Digester` (whichever backend it uses
//! today), in three shapes:
//!
//! - `64MiB`: one `update` over a 64 MiB buffer (large layer blobs);
//! - `4KiB one-shot`: a fresh digest of each 4 KiB slice of that buffer
//!   (per-digest set-up and finalisation cost: manifests, configs);
//! - `4KiB stream`: one digest fed the 64 MiB buffer in 4 KiB `update`s
//!   (a reader hashing as it copies, as `VerifyingReader` does).
//!
//! Each cell is the best of several rounds (other work on the machine only
//! ever slows a round down). Run it in release mode:
//!
//! ```text
//! cargo run --release -p berth-oci --example digest_bench
//! ```
//!
//! Results and the choice made from them live in `docs/digest-bench.md`.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark's output is its table on stdout"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use berth_oci::{Algorithm, Digester};
use sha2::Digest as _;

const BIG: usize = 64 * 1024 * 1024;
const SMALL: usize = 4 * 1024;
const ROUNDS: usize = 5;

#[derive(Clone, Copy)]
enum Backend {
    Sha2,
    Ring,
    Berth,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sha2 => "sha2 0.10",
            Backend::Ring => "ring 0.17",
            Backend::Berth => "berth Digester",
        }
    }
}

/// One-shot digest of `data`; returns the first output byte so the work
/// cannot be optimised away.
fn one_shot(backend: Backend, alg: Algorithm, data: &[u8]) -> u8 {
    match (backend, alg) {
        (Backend::Sha2, Algorithm::Sha256) => sha2::Sha256::digest(data)[0],
        (Backend::Sha2, Algorithm::Sha512) => sha2::Sha512::digest(data)[0],
        (Backend::Ring, Algorithm::Sha256) => {
            ring::digest::digest(&ring::digest::SHA256, data).as_ref()[0]
        }
        (Backend::Ring, Algorithm::Sha512) => {
            ring::digest::digest(&ring::digest::SHA512, data).as_ref()[0]
        }
        (Backend::Berth, alg) => berth_oci::Digest::of(alg, data).hex().as_bytes()[0],
    }
}

/// One digest fed `data` in `chunk`-sized updates.
fn streamed(backend: Backend, alg: Algorithm, data: &[u8], chunk: usize) -> u8 {
    match (backend, alg) {
        (Backend::Sha2, Algorithm::Sha256) => {
            let mut h = sha2::Sha256::new();
            for c in data.chunks(chunk) {
                h.update(c);
            }
            h.finalize()[0]
        }
        (Backend::Sha2, Algorithm::Sha512) => {
            let mut h = sha2::Sha512::new();
            for c in data.chunks(chunk) {
                h.update(c);
            }
            h.finalize()[0]
        }
        (Backend::Ring, alg) => {
            let mut ctx = ring::digest::Context::new(match alg {
                Algorithm::Sha256 => &ring::digest::SHA256,
                Algorithm::Sha512 => &ring::digest::SHA512,
            });
            for c in data.chunks(chunk) {
                ctx.update(c);
            }
            ctx.finish().as_ref()[0]
        }
        (Backend::Berth, alg) => {
            let mut d = Digester::new(alg);
            for c in data.chunks(chunk) {
                d.update(c);
            }
            d.finalize().hex().as_bytes()[0]
        }
    }
}

fn best_of(mut f: impl FnMut() -> u8) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        black_box(f());
        best = best.min(start.elapsed());
    }
    best
}

fn gib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / (1024.0 * 1024.0 * 1024.0)
}

fn main() {
    // Deterministic, incompressible-looking input (xorshift64).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..BIG)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();

    println!(
        "| algorithm | implementation | 64MiB GiB/s | 4KiB one-shot GiB/s | 4KiB one-shot ns/digest | 4KiB stream GiB/s |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        for backend in [Backend::Sha2, Backend::Ring, Backend::Berth] {
            let big = best_of(|| one_shot(backend, alg, black_box(&data)));
            let small = best_of(|| {
                let mut acc = 0u8;
                for c in data.chunks(SMALL) {
                    acc ^= one_shot(backend, alg, black_box(c));
                }
                acc
            });
            let stream = best_of(|| streamed(backend, alg, black_box(&data), SMALL));
            let digests = BIG / SMALL;
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.0} | {:.2} |",
                alg.as_str(),
                backend.name(),
                gib_per_s(BIG, big),
                gib_per_s(BIG, small),
                small.as_nanos() as f64 / digests as f64,
                gib_per_s(BIG, stream),
            );
        }
    }
}
