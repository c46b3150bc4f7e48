//! Tests of the calls that fork (`Container::create`, `exec`): those are only sound in a
//! single-threaded process, and require a [`SingleThreaded`] proof. libtest runs every test
//! on a thread of its own, so this binary has no harness (`harness = false`): `main`, the
//! process's only thread, takes the proof — which is itself the test that `check` accepts a
//! single-threaded process — and runs each test in turn, reporting as libtest does.
//!
//! As libtest: arguments not starting with `-` filter tests by substring, `--skip <s>` leaves
//! out the tests containing `<s>`, `--exact` matches whole names, `--list` lists; other flags
//! (`--nocapture`, `--test-threads`, ...) are accepted and ignored.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test runner: fails tests by panicking and reports on stdout"
)]

mod runtime_core;
mod threads;

use std::process::ExitCode;

use berth_container::SingleThreaded;

type Test = (&'static str, fn(SingleThreaded));

const TESTS: &[Test] = &[
    (
        "threads::check_accepts_this_single_threaded_process",
        threads::check_accepts_this_single_threaded_process,
    ),
    (
        "threads::a_second_thread_makes_check_and_create_refuse",
        threads::a_second_thread_makes_check_and_create_refuse,
    ),
    (
        "runtime_core::library_lifecycle_with_status_derived_from_the_init",
        runtime_core::library_lifecycle_with_status_derived_from_the_init,
    ),
    (
        "runtime_core::library_failed_create_reports_the_init_errno_and_leaves_nothing",
        runtime_core::library_failed_create_reports_the_init_errno_and_leaves_nothing,
    ),
    (
        "runtime_core::library_refuses_invalid_ids_and_bundles",
        runtime_core::library_refuses_invalid_ids_and_bundles,
    ),
];

fn main() -> ExitCode {
    let proof = match SingleThreaded::check() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("the forking tests need a single-threaded process: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    let (mut exact, mut list) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skip" => skips.extend(args.next()),
            "--exact" => exact = true,
            "--list" => list = true,
            _ if a.starts_with('-') => {}
            _ => filters.push(a),
        }
    }
    let matches = |name: &str, f: &String| {
        if exact {
            name == f
        } else {
            name.contains(f.as_str())
        }
    };
    let chosen: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s.as_str())))
        .collect();
    if list {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, test) in chosen.iter().copied() {
        let ok = std::panic::catch_unwind(|| test(proof)).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    let passed = chosen.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed\n");
        ExitCode::SUCCESS
    } else {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed\n",
            failed.len()
        );
        ExitCode::FAILURE
    }
}
