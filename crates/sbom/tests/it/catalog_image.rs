//! Cataloguing an image's layers without unpacking them: the Debian tree split in layers,
//! language packages added over it, then deleted (whiteouts), hidden (an opaque directory)
//! and re-added by later layers; berth's squashed view against syft's on the same OCI
//! layout, and the peak memory of cataloguing the Debian image.
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
use std::time::Instant;

use berth_oci::Digest;
use berth_sbom::catalog::catalog_layers;
use berth_sbom::layers::{LayerBlob, ScanLimits};
use berth_sbom::package::{Inventory, Package};
use berth_test_support::{Layer, MEDIA_LAYER_GZIP, OciLayout, image_config};

use crate::catalog_lang::{cargo_auditable_build, go_build, npm_install, pip_install};
use crate::catalog_support::*;

/// The Debian tree as two GNU tar layers: everything but /usr/share, then /usr/share.
fn debian_layers() -> Vec<Vec<u8>> {
    let root = debian_rootfs();
    vec![
        gnu_tar(&root, &["--exclude=./usr/share", "."]),
        gnu_tar(&root, &["./usr/share"]),
    ]
}

fn catalog(layers: &[Layer]) -> Inventory {
    let blobs = layers.iter().map(|l| LayerBlob {
        reader: l.data.as_slice(),
        media_type: MEDIA_LAYER_GZIP.to_owned(),
        diff_id: l.diff_id.clone(),
    });
    catalog_layers("test-image", None, blobs, &ScanLimits::default()).unwrap()
}

fn find<'a>(inv: &'a Inventory, found_by: &str, name: &str) -> Vec<&'a Package> {
    inv.packages
        .iter()
        .filter(|p| p.found_by == found_by && p.name == name)
        .collect()
}

fn layer_of(p: &Package) -> &Digest {
    p.locations[0].layer.as_ref().expect("a layer")
}

#[test]
fn layers_with_whiteouts_and_opaque_dirs_equal_syfts_squashed_view() {
    let tmp = tempfile::tempdir().unwrap();
    // layer 2: Python, npm, Go, Rust and Java packages over Debian
    let l2 = tmp.path().join("l2");
    let site = l2.join("usr/lib/python3/dist-packages");
    pip_install(&site, &["six==1.16.0", "PyYAML==6.0.1"]);
    npm_install(&l2.join("app"), &["left-pad@1.3.0", "debug@4.3.4"]);
    fs::create_dir_all(l2.join("usr/local/bin")).unwrap();
    go_build(&tmp.path().join("go"), &l2.join("usr/local/bin/hello"));
    cargo_auditable_build(&tmp.path().join("rs"), &l2.join("usr/local/bin/rsapp"));
    fs::create_dir_all(l2.join("opt/lib")).unwrap();
    fs::copy(
        "/usr/share/java/commons-io-2.11.0.jar",
        l2.join("opt/lib/commons-io-2.11.0.jar"),
    )
    .expect("hint: apt-get install libcommons-io-java");
    let six_info = fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("six-") && n.ends_with(".dist-info"))
        .unwrap();
    let six_metadata = fs::read(site.join(&six_info).join("METADATA")).unwrap();
    let left_pad = fs::read(l2.join("app/node_modules/left-pad/package.json")).unwrap();
    let hello = fs::read(l2.join("usr/local/bin/hello")).unwrap();

    // layer 3: six deleted, node_modules made opaque with left-pad alone re-added, the Go
    // binary deleted, and `apt-get remove` of one package (a new dpkg status)
    let status = fs::read_to_string(debian_rootfs().join("var/lib/dpkg/status")).unwrap();
    let removed = "e2fsprogs";
    let new_status: Vec<&str> = status
        .split("\n\n")
        .filter(|p| !p.starts_with(&format!("Package: {removed}\n")))
        .collect();
    assert!(
        new_status.len() < status.split("\n\n").count(),
        "{removed} was installed"
    );
    let new_status = new_status.join("\n\n");
    let l3 = tar_of(&[
        ("usr/lib/python3/dist-packages/", None),
        (
            &format!("usr/lib/python3/dist-packages/.wh.{six_info}"),
            Some(b""),
        ),
        ("app/node_modules/", None),
        ("app/node_modules/.wh..wh..opq", Some(b"")),
        ("app/node_modules/left-pad/", None),
        ("app/node_modules/left-pad/package.json", Some(&left_pad)),
        ("usr/local/bin/.wh.hello", Some(b"")),
        ("var/lib/dpkg/status", Some(new_status.as_bytes())),
    ]);
    // layer 4: six and the Go binary re-added
    let l4 = tar_of(&[
        (
            &format!("usr/lib/python3/dist-packages/{six_info}/METADATA"),
            Some(&six_metadata),
        ),
        ("usr/local/bin/hello", Some(&hello)),
    ]);

    let mut tars = debian_layers();
    tars.push(gnu_tar(&l2, &["."]));
    tars.push(l3);
    tars.push(l4);
    let layers: Vec<Layer> = tars.iter().map(|t| Layer::from_tar(t)).collect();
    drop(tars);
    let ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();

    let started = Instant::now();
    let inv = catalog(&layers);
    eprintln!(
        "catalogued {} packages in {:?}",
        inv.packages.len(),
        started.elapsed()
    );
    assert!(inv.unsupported.is_empty(), "{:?}", inv.unsupported);
    assert_eq!(inv.subject.layers.len(), 5);
    // deleted and re-added: seen from the later layer
    let six = find(&inv, "python", "six");
    assert_eq!(six.len(), 1);
    assert_eq!(layer_of(six[0]), ids[4]);
    let go = find(&inv, "go-binary", "github.com/google/uuid");
    assert_eq!(go.len(), 1);
    assert_eq!(layer_of(go[0]), ids[4]);
    // untouched: from the layer that added it
    assert_eq!(layer_of(find(&inv, "python", "pyyaml")[0]), ids[2]);
    assert_eq!(layer_of(find(&inv, "cargo-auditable", "itoa")[0]), ids[2]);
    assert_eq!(layer_of(find(&inv, "java", "commons-io")[0]), ids[2]);
    // hidden by the opaque directory: debug and ms; left-pad re-added in it
    assert!(find(&inv, "npm", "debug").is_empty());
    assert!(find(&inv, "npm", "ms").is_empty());
    assert_eq!(layer_of(find(&inv, "npm", "left-pad")[0]), ids[3]);
    // the lockfile beside node_modules still names them
    assert_eq!(find(&inv, "npm-lock", "debug").len(), 1);
    // the new dpkg status: one package fewer, every package now from layer 3
    assert!(find(&inv, "dpkg", removed).is_empty());
    let libc = find(&inv, "dpkg", "libc6");
    assert_eq!(layer_of(libc[0]), ids[3]);
    // licences come from copyright files in the /usr/share layer
    assert!(!libc[0].licenses.is_empty());
    assert_eq!(
        inv.distro.as_ref().map(|d| d.id.as_str()),
        Some("debian"),
        "os-release through the /etc/os-release symlink"
    );

    // syft on the same image, squashed (its default scope): image scans read installed
    // packages (package.json, binaries), not lockfiles
    let mut layout = OciLayout::new(tmp.path().join("layout"));
    let config = image_config("linux", "amd64", &layers);
    let manifest = layout.image(&layers, &config);
    layout.tag(&manifest, "latest");
    let theirs = syft(
        &format!("oci-dir:{}", layout.dir().display()),
        &[
            "deb",
            "python",
            "npm",
            "go-module",
            "rust-crate",
            "java-archive",
        ],
    );
    let ours = ours(
        &inv,
        &[
            "dpkg",
            "python",
            "npm",
            "go-binary",
            "cargo-auditable",
            "java",
        ],
    );
    assert_same("the layered image", &ours, &theirs, &[]);
}

/// Memory: cataloguing the Debian image (two layers read from files) in a child process of
/// this test binary, whose peak resident size (VmHWM) is then the cataloguer's alone.
#[test]
fn debian_image_catalogues_in_bounded_memory() {
    const CHILD: &str = "BERTH_SBOM_TEST_MEMORY_CHILD";
    #[expect(
        clippy::disallowed_methods,
        reason = "the child process of this test is told so by its parent"
    )]
    let child = std::env::var_os(CHILD);
    if let Some(dir) = child {
        let dir = Path::new(&dir);
        let mut blobs = Vec::new();
        for i in 0..2 {
            let diff_id: Digest = fs::read_to_string(dir.join(format!("{i}.diffid")))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            blobs.push(LayerBlob {
                reader: fs::File::open(dir.join(format!("{i}.tar"))).unwrap(),
                media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
                diff_id,
            });
        }
        let started = Instant::now();
        let inv = catalog_layers("debian", None, blobs, &ScanLimits::default()).unwrap();
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .unwrap()
            .trim()
            .to_owned();
        println!(
            "CHILD packages={} elapsed_ms={} hwm={hwm}",
            inv.packages.len(),
            started.elapsed().as_millis()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = debian_rootfs();
    for (i, args) in [vec!["--exclude=./usr/share", "."], vec!["./usr/share"]]
        .iter()
        .enumerate()
    {
        let path = tmp.path().join(format!("{i}.tar"));
        put(&path, gnu_tar(&root, args));
        let out = run(Command::new("sha256sum").arg(&path));
        let hex = String::from_utf8_lossy(&out)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        put(
            tmp.path().join(format!("{i}.diffid")),
            format!("sha256:{hex}"),
        );
    }
    let exe = std::env::current_exe().unwrap();
    let out = run(Command::new(exe)
        .args([
            "--exact",
            "catalog_image::debian_image_catalogues_in_bounded_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, tmp.path()));
    let out = String::from_utf8_lossy(&out);
    let line = out
        .lines()
        .find_map(|l| l.find("CHILD ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("the child printed no result:\n{out}"));
    eprintln!("{line}");
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .and_then(|v| v.trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    assert!(field("packages=") > 80, "{line}");
    let hwm_kb: u64 = line
        .split("hwm=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        hwm_kb < 200 * 1024,
        "peak resident memory {hwm_kb} kB, over 200 MiB"
    );
}
