//! The language cataloguers (Python, npm, Rust, Go, Java) on packages installed here by the
//! real tools (pip, npm, go build, cargo auditable) and the machine's own files, against syft.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "tests fail by panicking, helpers included, and report measurements"
)]

use std::fs;
use std::path::Path;
use std::process::Command;

use berth_sbom::catalog::catalog_dir;
use berth_sbom::layers::ScanLimits;
use berth_sbom::package::Ecosystem;

use crate::catalog_support::*;

/// berth's packages of `found_by` in the directory `root` equal syft's of `syft_types`,
/// but for `allowed`; returns how many berth found.
fn dir_matches_syft(
    root: &Path,
    found_by: &[&str],
    syft_types: &[&str],
    allowed: &[Allowed],
) -> usize {
    let inv = catalog_dir(root, &ScanLimits::default()).unwrap();
    assert!(inv.unsupported.is_empty(), "{:?}", inv.unsupported);
    let ours = ours(&inv, found_by);
    let theirs = syft(&format!("dir:{}", root.display()), syft_types);
    assert_same(&root.display().to_string(), &ours, &theirs, allowed);
    ours.len()
}

/// Python distributions installed by pip from PyPI's wheels (`name==version`), into
/// `target`: offline, from the sha256-pinned wheelhouse `scripts/test` fills.
pub fn pip_install(target: &Path, wheels: &[&str]) {
    let wheelhouse = crate::tools::sbom_wheels(wheels);
    run(Command::new(crate::tools::sbom_python())
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            "--find-links",
        ])
        .arg(wheelhouse)
        .arg("--target")
        .arg(target)
        .args(wheels)
        .env("PIP_ROOT_USER_ACTION", "ignore"));
}

/// npm packages installed by `npm install` into the project `dir`.
pub fn npm_install(dir: &Path, packages: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    put(
        dir.join("package.json"),
        r#"{"name":"fixture-app","version":"1.0.0","private":true}"#,
    );
    // from npm's cache, which scripts/test fills (prefetch_sbom_fixtures); the registry only
    // for what is missing there
    run(Command::new("npm")
        .args([
            "install",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            "--silent",
        ])
        .args(packages)
        .current_dir(dir));
}

/// A Go program using one module, built by `go build` into `out`.
pub fn go_build(work: &Path, out: &Path) {
    fs::create_dir_all(work).unwrap();
    put(
        work.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/google/uuid\"\n)\n\nfunc main() { fmt.Println(uuid.NewString()) }\n",
    );
    put(
        work.join("go.mod"),
        "module example.com/hello\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n",
    );
    run(Command::new("go").args(["mod", "tidy"]).current_dir(work));
    run(Command::new("go")
        .args(["build", "-o"])
        .arg(out)
        .arg(".")
        .current_dir(work));
}

/// A Rust program using one crate, built by `cargo auditable build` into `out`; its
/// Cargo.lock copied beside it.
pub fn cargo_auditable_build(work: &Path, out: &Path) {
    fs::create_dir_all(work.join("src")).unwrap();
    put(
        work.join("Cargo.toml"),
        "[package]\nname = \"rsapp\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"=1.0.11\"\n\n[workspace]\n",
    );
    put(
        work.join("src/main.rs"),
        "fn main() { let mut b = itoa::Buffer::new(); println!(\"{}\", b.format(42)); }\n",
    );
    let out_cmd = Command::new("cargo")
        .args(["auditable", "--version"])
        .output();
    assert!(
        out_cmd.is_ok_and(|o| o.status.success()),
        "cargo auditable is not installed\nhint: cargo install --locked cargo-auditable@0.7.7 (scripts/test does this)"
    );
    // offline: itoa is in cargo's registry cache, which scripts/test fills
    // (prefetch_sbom_fixtures)
    run(Command::new("cargo")
        .args(["auditable", "build", "-q", "--offline"])
        .env("CARGO_TARGET_DIR", work.join("target"))
        .current_dir(work));
    fs::copy(work.join("target/debug/rsapp"), out).unwrap();
}

#[test]
fn python_wheels_installed_by_pip_equal_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site-packages");
    pip_install(
        &site,
        &["six==1.16.0", "PyYAML==6.0.1", "Flask-Cors==4.0.0"],
    );
    let inv = catalog_dir(&site, &ScanLimits::default()).unwrap();
    let cors = inv
        .packages
        .iter()
        .find(|p| p.name == "flask-cors")
        .unwrap();
    assert_eq!(cors.purl.to_string(), "pkg:pypi/flask-cors@4.0.0");
    assert_eq!(cors.licenses, vec!["MIT"]);
    assert_eq!(dir_matches_syft(&site, &["python"], &["python"], &[]), 3);
}

#[test]
fn python_dist_and_egg_info_of_this_machine_equal_syfts() {
    let dist = Path::new("/usr/lib/python3/dist-packages");
    assert!(
        dist.is_dir(),
        "no {dist:?}; hint: apt-get install python3-yaml python3-six python3-jwt python3-pygments python3-attr python3-cryptography"
    );
    let n = dir_matches_syft(dist, &["python"], &["python"], &[]);
    assert!(n > 5, "{n}");
}

#[test]
fn npm_install_packages_and_lockfile_equal_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    npm_install(
        &app,
        &["left-pad@1.3.0", "@types/node@20.11.0", "debug@4.3.4"],
    );
    let inv = catalog_dir(&app, &ScanLimits::default()).unwrap();
    let installed: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.found_by == "npm")
        .collect();
    let locked: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.found_by == "npm-lock")
        .collect();
    // debug's dependency ms and @types/node's undici-types come along; the app itself is in
    // both its package.json and the lockfile's "" entry
    assert_eq!(installed.len(), 6, "{installed:#?}");
    assert_eq!(locked.len(), 6, "{locked:#?}");
    let types = locked.iter().find(|p| p.name == "@types/node").unwrap();
    assert_eq!(types.purl.to_string(), "pkg:npm/%40types/node@20.11.0");
    assert_eq!(types.ecosystem, Ecosystem::Npm);
    // syft reads only the lockfile in a directory; the installed package.json files name the
    // same packages
    dir_matches_syft(&app, &["npm", "npm-lock"], &["npm"], &[]);
}

#[test]
fn go_binary_built_here_equals_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    go_build(&tmp.path().join("src"), &bin.join("hello"));
    let inv = catalog_dir(&bin, &ScanLimits::default()).unwrap();
    let names: Vec<_> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["example.com/hello", "github.com/google/uuid", "stdlib"]
    );
    assert_eq!(inv.packages[0].locations[0].path, "/hello");
    dir_matches_syft(&bin, &["go-binary"], &["go-module"], &[]);
}

#[test]
fn cargo_auditable_binary_and_lockfile_equal_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let work = tmp.path().join("src");
    cargo_auditable_build(&work, &bin.join("rsapp"));
    fs::copy(work.join("Cargo.lock"), bin.join("Cargo.lock")).unwrap();
    let inv = catalog_dir(&bin, &ScanLimits::default()).unwrap();
    let audited: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.found_by == "cargo-auditable")
        .map(|p| p.purl.to_string())
        .collect();
    assert_eq!(audited, ["pkg:cargo/itoa@1.0.11", "pkg:cargo/rsapp@0.1.0"]);
    dir_matches_syft(&bin, &["cargo", "cargo-auditable"], &["rust-crate"], &[]);
}

#[test]
fn java_archives_with_pom_properties_equal_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir_all(&lib).unwrap();
    let jars = [
        "commons-io-2.11.0.jar",
        "commons-cli-1.5.0.jar",
        "aopalliance-1.0.jar",
    ];
    for jar in jars {
        let from = Path::new("/usr/share/java").join(jar);
        assert!(
            from.is_file(),
            "{from:?} missing; hint: apt-get install libcommons-io-java libcommons-cli-java libaopalliance-java"
        );
        fs::copy(&from, lib.join(jar)).unwrap();
    }
    // a fat jar holding two of them one level deep, as Spring Boot packs them
    run(Command::new(crate::tools::DEBIAN_PYTHON).arg("-c").arg(format!(
        "import zipfile\nz = zipfile.ZipFile('{0}/app.jar', 'w', zipfile.ZIP_DEFLATED)\nz.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\\n')\nz.writestr('META-INF/maven/com.example/app/pom.properties', 'groupId=com.example\\nartifactId=app\\nversion=2.0.0\\n')\nz.write('{0}/commons-io-2.11.0.jar', 'BOOT-INF/lib/commons-io-2.11.0.jar', zipfile.ZIP_STORED)\nz.write('{0}/commons-cli-1.5.0.jar', 'BOOT-INF/lib/commons-cli-1.5.0.jar')\nz.close()",
        lib.display()
    )));
    let inv = catalog_dir(&lib, &ScanLimits::default()).unwrap();
    let app: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.locations[0].path == "/app.jar")
        .map(|p| p.purl.to_string())
        .collect();
    assert_eq!(
        app,
        [
            "pkg:maven/com.example/app@2.0.0",
            "pkg:maven/commons-cli/commons-cli@1.5.0",
            "pkg:maven/commons-io/commons-io@2.11.0",
        ]
    );
    dir_matches_syft(
        &lib,
        &["java"],
        &["java-archive"],
        &[(
            "syft:pkg:maven/aopalliance/aopalliance@1.0",
            "aopalliance-1.0.jar has no pom.properties: syft guesses coordinates from the file name and manifest, berth reports only recorded ones",
        )],
    );
}
