//! `berth_image::spec`: image config + `berth run` flags → runtime config. Each flag's
//! effect, docker's precedence rules, user resolution inside a root the test builds (a
//! hostile `/etc/passwd` symlink included), and one end-to-end run of a built spec over a
//! busybox rootfs with berth-runtime, runc and crun, checked from inside.

use std::path::{Path, PathBuf};

use berth_image::spec::{
    IdRange, ImageConfig, Network, PODMAN_CAPABILITIES, ResourceFlags, RunOptions, SpecError,
    SpecNotes, Userns, build_spec, default_capabilities,
};
use berth_runtime_spec::{Capability, LinuxNamespaceType, Spec};
use berth_test_support::write_file;
use serde_json::json;

/// A root filesystem with an `/etc/passwd` and `/etc/group` of its own.
struct Root {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\naudio:x:29:app\nappgrp:x:1001:\nstaff:x:50:\n";

impl Root {
    fn new() -> Root {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("rootfs");
        std::fs::create_dir_all(path.join("etc")).unwrap();
        write_file(path.join("etc/passwd"), PASSWD.as_bytes());
        write_file(path.join("etc/group"), GROUP.as_bytes());
        Root { _tmp: tmp, path }
    }
}

fn image(config: serde_json::Value) -> ImageConfig {
    ImageConfig::parse(
        json!({ "architecture": "amd64", "os": "linux", "config": config })
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

fn opts() -> RunOptions {
    RunOptions {
        image: "example/app:1".into(),
        ..RunOptions::default()
    }
}

fn build(img: &ImageConfig, o: &RunOptions) -> (Spec, SpecNotes) {
    let root = Root::new();
    build_spec(img, &root.path, o).unwrap()
}

fn build_err(img: &ImageConfig, o: &RunOptions) -> String {
    let root = Root::new();
    build_spec(img, &root.path, o).unwrap_err().to_string()
}

fn args(spec: &Spec) -> Vec<String> {
    spec.process.as_ref().unwrap().args.clone().unwrap()
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process.as_ref().unwrap().env.clone().unwrap()
}

fn caps(spec: &Spec) -> Vec<&'static str> {
    let mut v: Vec<_> = spec
        .process
        .as_ref()
        .unwrap()
        .capabilities
        .as_ref()
        .unwrap()
        .bounding
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.as_str())
        .collect();
    v.sort_unstable();
    v
}

fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux
        .as_ref()
        .unwrap()
        .namespaces
        .iter()
        .flatten()
        .map(|n| (n.typ, n.path.clone()))
        .collect()
}

fn has_ns(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|(t, _)| *t == typ)
}

/// The mount at `dest`, and its options.
fn mount(spec: &Spec, dest: &str) -> (berth_runtime_spec::Mount, Vec<String>) {
    let m = spec
        .mounts
        .iter()
        .flatten()
        .find(|m| m.destination == Path::new(dest))
        .unwrap_or_else(|| panic!("no mount at {dest}"));
    (m.clone(), m.options.clone().unwrap_or_default())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

#[test]
fn parses_docker_config_with_nulls_history_and_diff_ids() {
    let text = br#"{"architecture":"amd64","os":"linux","config":{"User":"","Env":null,"Entrypoint":null,"Cmd":["sh"],"Volumes":null,"WorkingDir":"","Labels":{"a":"b"},"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT"},
        "rootfs":{"type":"layers","diff_ids":["sha256:aa","sha256:bb"]},"history":[{"created_by":"ADD x","empty_layer":false},{"created_by":"CMD","empty_layer":true}]}"#;
    let img = ImageConfig::parse(text).unwrap();
    assert_eq!(
        img.rootfs.as_ref().unwrap().diff_ids,
        s(&["sha256:aa", "sha256:bb"])
    );
    assert_eq!(img.history.as_ref().unwrap()[1].empty_layer, Some(true));
    let (spec, notes) = build(&img, &opts());
    assert_eq!(args(&spec), s(&["sh"]));
    assert_eq!(notes.stop_signal, "SIGQUIT");
    assert_eq!(notes.exposed_ports, s(&["80/tcp"]));
    assert_eq!(notes.labels.get("a").map(String::as_str), Some("b"));
    assert!(matches!(
        ImageConfig::parse(b"[1]"),
        Err(SpecError::Config(_))
    ));
}

#[test]
fn entrypoint_and_cmd_by_docker_rules() {
    let img = image(json!({"Entrypoint": ["/ep", "-x"], "Cmd": ["c1", "c2"]}));
    assert_eq!(args(&build(&img, &opts()).0), s(&["/ep", "-x", "c1", "c2"]));
    // arguments replace Cmd only
    let o = RunOptions {
        args: s(&["a"]),
        ..opts()
    };
    assert_eq!(args(&build(&img, &o).0), s(&["/ep", "-x", "a"]));
    // --entrypoint replaces Entrypoint and drops the image's Cmd
    let o = RunOptions {
        entrypoint: Some("/other".into()),
        ..opts()
    };
    assert_eq!(args(&build(&img, &o).0), s(&["/other"]));
    let o = RunOptions {
        entrypoint: Some("/other".into()),
        args: s(&["z"]),
        ..opts()
    };
    assert_eq!(args(&build(&img, &o).0), s(&["/other", "z"]));
    // an empty --entrypoint clears it
    let o = RunOptions {
        entrypoint: Some(String::new()),
        args: s(&["ls", "/"]),
        ..opts()
    };
    assert_eq!(args(&build(&img, &o).0), s(&["ls", "/"]));
    // nothing to run: docker's error
    let o = RunOptions {
        entrypoint: Some(String::new()),
        ..opts()
    };
    assert!(build_err(&img, &o).contains("no command specified"));
    assert!(build_err(&image(json!({})), &opts()).contains("no command specified"));
}

#[test]
fn env_precedence_path_hostname_term() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("env");
    write_file(
        &file,
        b"# comment\n\nA=file\nB=file\nFROMHOST\nUNSET_IN_HOST\n",
    );
    let img = image(json!({"Cmd": ["sh"], "Env": ["A=image", "C=image"]}));
    let mut o = RunOptions {
        env: s(&["B=flag", "C=flag"]),
        env_files: vec![file],
        hostname: Some("box".into()),
        tty: true,
        ..opts()
    };
    o.host_env.insert("FROMHOST".into(), "yes".into());
    let e = env(&build(&img, &o).0);
    assert_eq!(
        e,
        s(&[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=box",
            "TERM=xterm",
            "A=file",
            "C=flag",
            "B=flag",
            "FROMHOST=yes",
        ])
    );
    // the image's PATH replaces docker's default; no TERM without -t
    let img = image(json!({"Cmd": ["sh"], "Env": ["PATH=/opt/bin"]}));
    let e = env(&build(&img, &opts()).0);
    assert_eq!(e, s(&["PATH=/opt/bin", "HOSTNAME=berth"]));
    let o = RunOptions {
        env: s(&["BAD KEY=1"]),
        ..opts()
    };
    assert!(build_err(&img, &o).contains("contains whitespaces"));
    let o = RunOptions {
        env: s(&["=1"]),
        ..opts()
    };
    assert!(build_err(&img, &o).contains("invalid environment variable"));
    let o = RunOptions {
        env_files: vec![tmp.path().join("missing")],
        ..opts()
    };
    assert!(build_err(&img, &o).contains("--env-file"));
}

#[test]
fn workdir_default_image_and_flag() {
    let cwd = |img: &ImageConfig, o: &RunOptions| build(img, o).0.process.unwrap().cwd;
    assert_eq!(cwd(&image(json!({"Cmd": ["sh"]})), &opts()), Path::new("/"));
    let img = image(json!({"Cmd": ["sh"], "WorkingDir": "/srv"}));
    assert_eq!(cwd(&img, &opts()), Path::new("/srv"));
    assert_eq!(
        cwd(
            &img,
            &RunOptions {
                workdir: Some("/tmp".into()),
                ..opts()
            }
        ),
        Path::new("/tmp")
    );
    assert!(
        build_err(
            &img,
            &RunOptions {
                workdir: Some("rel".into()),
                ..opts()
            }
        )
        .contains("absolute path")
    );
}

fn user_of(root: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), SpecError> {
    let img = image(json!({"Cmd": ["sh"], "User": user}));
    let (spec, _) = build_spec(&img, root, &opts())?;
    let u = spec.process.unwrap().user;
    Ok((u.uid, u.gid, u.additional_gids.unwrap_or_default()))
}

#[test]
fn user_names_numbers_and_supplementary_groups() {
    let root = Root::new();
    // a name: its passwd gid and the groups listing it
    assert_eq!(
        user_of(&root.path, "app").unwrap(),
        (1000, 1001, vec![10, 29])
    );
    // a number with an entry: the same
    assert_eq!(
        user_of(&root.path, "1000").unwrap(),
        (1000, 1001, vec![10, 29])
    );
    // no user: root, with root's groups (as docker shows for `id`)
    assert_eq!(user_of(&root.path, "").unwrap(), (0, 0, vec![10]));
    // a number without an entry needs none: gid 0, no groups
    assert_eq!(user_of(&root.path, "4242").unwrap(), (4242, 0, vec![]));
    assert_eq!(user_of(&root.path, "4242:77").unwrap(), (4242, 77, vec![]));
    // an explicit group (name or number): no supplementary groups (runc's rule)
    assert_eq!(
        user_of(&root.path, "app:staff").unwrap(),
        (1000, 50, vec![])
    );
    assert_eq!(user_of(&root.path, "app:7").unwrap(), (1000, 7, vec![]));
    // unknown names are errors naming the image
    let e = user_of(&root.path, "ghost").unwrap_err().to_string();
    assert!(
        e.contains("\"ghost\"") && e.contains("example/app:1") && e.contains("/etc/passwd"),
        "{e}"
    );
    let e = user_of(&root.path, "app:ghosts").unwrap_err().to_string();
    assert!(e.contains("\"ghosts\"") && e.contains("/etc/group"), "{e}");
    // -u wins over the image's User
    let img = image(json!({"Cmd": ["sh"], "User": "app"}));
    let (spec, _) = build_spec(
        &img,
        &root.path,
        &RunOptions {
            user: Some("nobody".into()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(spec.process.unwrap().user.uid, 65534);
    // numeric ids work without any /etc/passwd
    std::fs::remove_file(root.path.join("etc/passwd")).unwrap();
    assert_eq!(user_of(&root.path, "5:6").unwrap(), (5, 6, vec![]));
    assert!(user_of(&root.path, "app").is_err());
}

#[test]
fn hostile_passwd_symlink_resolves_inside_the_root() {
    // the host side: a passwd with a user only the host has, at an absolute path
    let host = tempfile::tempdir().unwrap();
    let host_passwd = host.path().join("passwd");
    write_file(&host_passwd, b"hostonly:x:4321:4321::/:/bin/sh\n");
    let root = Root::new();
    let etc = root.path.join("etc");
    std::fs::remove_file(etc.join("passwd")).unwrap();
    std::os::unix::fs::symlink(&host_passwd, etc.join("passwd")).unwrap();
    // read from the host this would resolve; inside the root the target does not exist
    let e = user_of(&root.path, "hostonly").unwrap_err().to_string();
    assert!(e.contains("hostonly") && e.contains("example/app:1"), "{e}");
    // the same absolute path inside the root is what is read
    let inside = root.path.join(host_passwd.strip_prefix("/").unwrap());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    write_file(&inside, b"hostonly:x:7:8::/:/bin/sh\n");
    assert_eq!(user_of(&root.path, "hostonly").unwrap().0, 7);
    // a relative escape (../../..) also stays inside
    std::fs::remove_file(etc.join("passwd")).unwrap();
    let depth = root.path.components().count() + 2;
    let rel = format!(
        "{}{}",
        "../".repeat(depth),
        host_passwd.strip_prefix("/").unwrap().display()
    );
    std::os::unix::fs::symlink(&rel, etc.join("passwd")).unwrap();
    assert_eq!(user_of(&root.path, "hostonly").unwrap().0, 7);
    // the host's /etc/passwd through an absolute link: root's own entry (uid 0) would
    // match either way, so check a name only the host has is not found
    std::fs::remove_file(etc.join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", etc.join("passwd")).unwrap();
    assert!(
        user_of(&root.path, "daemon").is_err(),
        "the host's /etc/passwd was read"
    );
}

#[test]
fn default_caps_are_a_subset_of_podmans_and_locked_down() {
    let img = image(json!({"Cmd": ["sh"]}));
    let (spec, notes) = build(
        &img,
        &RunOptions {
            id_range: Some(IdRange {
                host_start: 100000,
                size: 65536,
            }),
            ..opts()
        },
    );
    assert!(
        default_capabilities()
            .iter()
            .all(|c| PODMAN_CAPABILITIES.contains(c))
    );
    assert_eq!(caps(&spec), ["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let p = spec.process.as_ref().unwrap();
    assert_eq!(p.no_new_privileges, Some(true));
    let c = p.capabilities.as_ref().unwrap();
    assert!(c.ambient.is_none() && c.inheritable.is_none());
    let linux = spec.linux.as_ref().unwrap();
    assert_eq!(linux.seccomp, Some(berth_image::spec::default_seccomp()));
    let masked = linux.masked_paths.clone().unwrap();
    assert!(
        berth_runtime_spec::defaults::MASKED_PATHS
            .iter()
            .all(|m| masked.iter().any(|x| x == m))
    );
    assert_eq!(
        linux.readonly_paths.as_deref().unwrap().len(),
        berth_runtime_spec::defaults::READONLY_PATHS.len()
    );
    assert_eq!(
        linux.resources.as_ref().unwrap().devices,
        Some(berth_runtime_spec::defaults::device_rules())
    );
    let dests: Vec<_> = spec
        .mounts
        .iter()
        .flatten()
        .map(|m| m.destination.display().to_string())
        .collect();
    for d in [
        "/proc",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        assert!(dests.iter().any(|x| x == d), "{d} missing from {dests:?}");
    }
    assert!(mount(&spec, "/sys").1.contains(&"ro".to_owned()));
    // the user namespace with the given range, and a private network namespace
    assert!(has_ns(&spec, LinuxNamespaceType::User) && has_ns(&spec, LinuxNamespaceType::Network));
    let m = linux.uid_mappings.as_ref().unwrap()[0];
    assert_eq!((m.container_id, m.host_id, m.size), (0, 100000, 65536));
    assert_eq!(linux.gid_mappings, linux.uid_mappings);
    assert!(notes.opened.is_empty(), "{:?}", notes.opened);
    assert_eq!(spec.root.as_ref().unwrap().readonly, Some(false));
}

#[test]
fn cap_add_drop_and_all() {
    let img = image(json!({"Cmd": ["sh"]}));
    let run = |add: &[&str], drop: &[&str]| {
        build(
            &img,
            &RunOptions {
                cap_add: s(add),
                cap_drop: s(drop),
                ..opts()
            },
        )
    };
    let (spec, notes) = run(&["net_admin", "CAP_CHOWN"], &["kill"]);
    assert_eq!(
        caps(&spec),
        ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]
    );
    assert!(
        notes
            .opened
            .iter()
            .any(|l| l.contains("CAP_CHOWN, CAP_NET_ADMIN")),
        "{:?}",
        notes.opened
    );
    let (spec, _) = run(&["CHOWN"], &["ALL"]);
    assert_eq!(caps(&spec), ["CAP_CHOWN"]);
    let (spec, _) = run(&[], &["all"]);
    assert!(caps(&spec).is_empty());
    let (spec, notes) = run(&["ALL"], &["SYS_ADMIN"]);
    assert_eq!(caps(&spec).len(), Capability::ALL.len() - 1);
    assert!(!caps(&spec).contains(&"CAP_SYS_ADMIN"));
    assert!(notes.opened.iter().any(|l| l.contains("--cap-add ALL")));
    assert!(
        build_err(
            &img,
            &RunOptions {
                cap_add: s(&["CAP_NOPE"]),
                ..opts()
            }
        )
        .contains("unknown capability")
    );
}

#[test]
fn privileged_opens_up_and_says_so() {
    let img = image(json!({"Cmd": ["sh"]}));
    let (spec, notes) = build(
        &img,
        &RunOptions {
            privileged: true,
            cap_drop: s(&["ALL"]),
            ..opts()
        },
    );
    assert_eq!(caps(&spec).len(), Capability::ALL.len());
    let linux = spec.linux.as_ref().unwrap();
    assert!(
        linux.seccomp.is_none() && linux.masked_paths.is_none() && linux.readonly_paths.is_none()
    );
    let dev = &linux.resources.as_ref().unwrap().devices.as_ref().unwrap()[0];
    assert!(dev.allow);
    assert_eq!(
        spec.process.as_ref().unwrap().no_new_privileges,
        Some(false)
    );
    assert!(!mount(&spec, "/sys").1.contains(&"ro".to_owned()));
    assert!(
        notes
            .opened
            .iter()
            .any(|l| l.starts_with("--privileged: all capabilities, no seccomp"))
    );
}

#[test]
fn security_opts() {
    let img = image(json!({"Cmd": ["sh"]}));
    let so = |v: &[&str]| RunOptions {
        security_opt: s(v),
        ..opts()
    };
    let (spec, notes) = build(&img, &so(&["no-new-privileges=false"]));
    assert_eq!(spec.process.unwrap().no_new_privileges, Some(false));
    assert!(notes.opened[0].contains("no-new-privileges=false"));
    let (spec, _) = build(&img, &so(&["no-new-privileges:true"]));
    assert_eq!(spec.process.unwrap().no_new_privileges, Some(true));
    let (spec, notes) = build(&img, &so(&["seccomp=unconfined"]));
    assert!(spec.linux.unwrap().seccomp.is_none());
    assert!(notes.opened[0].contains("seccomp=unconfined"));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.json");
    write_file(&file, br#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#);
    let (spec, _) = build(&img, &so(&[&format!("seccomp={}", file.display())]));
    let sc = spec.linux.unwrap().seccomp.unwrap();
    assert_eq!(sc.syscalls.unwrap()[0].names, s(&["read", "write"]));
    assert_eq!(sc.architectures.unwrap().len(), 2);
    write_file(&file, br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_PTRACE"]}}]}"#);
    assert!(
        build_err(&img, &so(&[&format!("seccomp={}", file.display())]))
            .contains("conditional rules")
    );
    assert!(build_err(&img, &so(&["apparmor=x"])).contains("unsupported"));
}

#[test]
fn mounts_volumes_tmpfs_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    std::fs::create_dir(&src).unwrap();
    let img =
        image(json!({"Cmd": ["sh"], "Volumes": {"/var/lib/db": {}, "/data": {}, "/cache": {}}}));
    let o = RunOptions {
        volumes: vec![format!("{}:/data:ro", src.display()), "/anon".into()],
        tmpfs: s(&["/cache:size=1m", "/run"]),
        read_only: true,
        ..opts()
    };
    let (spec, notes) = build(&img, &o);
    let (data, data_opts) = mount(&spec, "/data");
    assert_eq!(data.source.as_deref(), Some(src.as_path()));
    assert!(data_opts.contains(&"ro".to_owned()) && data_opts.contains(&"rbind".to_owned()));
    let (cache, cache_opts) = mount(&spec, "/cache");
    assert_eq!(cache.typ.as_deref(), Some("tmpfs"));
    assert!(
        cache_opts.contains(&"size=1m".to_owned()) && cache_opts.contains(&"noexec".to_owned())
    );
    assert_eq!(mount(&spec, "/run").0.typ.as_deref(), Some("tmpfs"));
    assert_eq!(
        notes.anonymous_volumes,
        vec![PathBuf::from("/anon"), PathBuf::from("/var/lib/db")]
    );
    assert_eq!(spec.root.unwrap().readonly, Some(true));
    assert!(
        build_err(
            &img,
            &RunOptions {
                volumes: s(&["/nonexistent-berth:/x"]),
                ..opts()
            }
        )
        .contains("does not exist")
    );
    // a name is a named volume, for the engine; it covers the image's volume there
    let (spec, notes) = build(
        &img,
        &RunOptions {
            volumes: s(&["db-data:/var/lib/db:ro", "named.2:/x"]),
            ..opts()
        },
    );
    assert_eq!(
        notes.named_volumes,
        vec![
            berth_image::spec::NamedVolume {
                name: "db-data".into(),
                destination: "/var/lib/db".into(),
                read_only: true,
            },
            berth_image::spec::NamedVolume {
                name: "named.2".into(),
                destination: "/x".into(),
                read_only: false,
            },
        ]
    );
    assert!(
        !notes
            .anonymous_volumes
            .contains(&PathBuf::from("/var/lib/db"))
    );
    assert!(
        spec.mounts
            .iter()
            .flatten()
            .all(|m| m.destination != Path::new("/x")),
        "the engine binds named volumes, not the spec"
    );
    for bad in ["a:/x", "-a:/x", "a/b:/x", "a b:/x", "rel", "vol:/x:rx"] {
        let e = build_err(
            &img,
            &RunOptions {
                volumes: s(&[bad]),
                ..opts()
            },
        );
        assert!(e.contains(&format!("-v {bad}")), "{bad}: {e}");
    }
    assert!(
        build_err(
            &img,
            &RunOptions {
                volumes: vec![format!("{}:rel", src.display())],
                ..opts()
            }
        )
        .contains("absolute")
    );
    assert!(
        build_err(
            &img,
            &RunOptions {
                tmpfs: s(&["rel"]),
                ..opts()
            }
        )
        .contains("absolute")
    );
}

#[test]
fn network_and_userns_modes() {
    let img = image(json!({"Cmd": ["sh"]}));
    let range = Some(IdRange {
        host_start: 200000,
        size: 65536,
    });
    let (spec, notes) = build(
        &img,
        &RunOptions {
            network: Network::Host,
            id_range: range,
            ..opts()
        },
    );
    assert!(!has_ns(&spec, LinuxNamespaceType::Network));
    assert!(notes.opened.iter().any(|l| l.contains("--network host")));
    // sysfs bound from the host (a user namespace cannot mount one for the host's netns)
    assert_eq!(mount(&spec, "/sys").0.typ.as_deref(), Some("bind"));
    // a namespace joined by path: bound too, unless it was made for the container in the
    // user namespace it runs in (berth's CNI and pasta networks), where sysfs is mounted
    for (owned, typ) in [(false, "bind"), (true, "sysfs")] {
        let (spec, _) = build(
            &img,
            &RunOptions {
                network: Network::Path("/run/netns/x".into()),
                network_owned: owned,
                id_range: range,
                ..opts()
            },
        );
        let (m, options) = mount(&spec, "/sys");
        assert_eq!(m.typ.as_deref(), Some(typ), "owned: {owned}");
        assert!(
            options.contains(&"ro".to_owned()),
            "owned: {owned}: {options:?}"
        );
    }
    let (spec, _) = build(
        &img,
        &RunOptions {
            network: Network::Path("/run/netns/x".into()),
            ..opts()
        },
    );
    assert!(namespaces(&spec).contains(&(
        LinuxNamespaceType::Network,
        Some(PathBuf::from("/run/netns/x"))
    )));
    let (spec, notes) = build(
        &img,
        &RunOptions {
            userns: Userns::Host,
            id_range: range,
            ..opts()
        },
    );
    assert!(!has_ns(&spec, LinuxNamespaceType::User) && spec.linux.unwrap().uid_mappings.is_none());
    assert!(notes.opened.iter().any(|l| l.contains("--userns=host")));
    // a one-id range: devpts cannot name gid 5
    let one = Some(IdRange {
        host_start: 300000,
        size: 1,
    });
    let (spec, _) = build(
        &img,
        &RunOptions {
            id_range: one,
            ..opts()
        },
    );
    assert!(
        !mount(&spec, "/dev/pts")
            .1
            .iter()
            .any(|o| o.starts_with("gid="))
    );
    let (spec, _) = build(
        &img,
        &RunOptions {
            id_range: range,
            ..opts()
        },
    );
    assert!(mount(&spec, "/dev/pts").1.contains(&"gid=5".to_owned()));
    let (spec, notes) = build(&img, &opts());
    assert!(!has_ns(&spec, LinuxNamespaceType::User));
    assert!(
        notes
            .opened
            .iter()
            .any(|l| l.contains("without an id range"))
    );
}

#[test]
fn stop_signal_hostname_init_tty() {
    let img = image(json!({"Cmd": ["sh"], "StopSignal": "USR1"}));
    let (spec, notes) = build(
        &img,
        &RunOptions {
            hostname: Some("h1".into()),
            init: true,
            tty: true,
            ..opts()
        },
    );
    assert_eq!(notes.stop_signal, "SIGUSR1");
    assert!(notes.init);
    assert_eq!(spec.hostname.as_deref(), Some("h1"));
    assert_eq!(spec.process.unwrap().terminal, Some(true));
    let (_, notes) = build(
        &img,
        &RunOptions {
            stop_signal: Some("9".into()),
            ..opts()
        },
    );
    assert_eq!(notes.stop_signal, "9");
    let (_, notes) = build(&image(json!({"Cmd": ["sh"]})), &opts());
    assert_eq!(notes.stop_signal, "SIGTERM");
    assert!(
        build_err(
            &img,
            &RunOptions {
                stop_signal: Some("SIGNOPE".into()),
                ..opts()
            }
        )
        .contains("invalid signal")
    );
}

#[test]
fn resources_and_docker_errors() {
    let img = image(json!({"Cmd": ["sh"]}));
    let o = RunOptions {
        resources: ResourceFlags {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            cpu_shares: Some(1),
            pids_limit: Some(100),
            blkio_weight: Some(300),
            ..Default::default()
        },
        ..opts()
    };
    let (spec, _) = build(&img, &o);
    let res = spec.linux.unwrap().resources.unwrap();
    let mem = res.memory.unwrap();
    assert_eq!((mem.limit, mem.swap), (Some(64 << 20), Some(128 << 20)));
    let cpu = res.cpu.unwrap();
    assert_eq!(
        (cpu.quota, cpu.period, cpu.shares),
        (Some(50_000), Some(100_000), Some(2))
    );
    assert_eq!(res.pids.unwrap().limit, 100);
    assert_eq!(res.block_io.unwrap().weight, Some(300));
    let (spec, _) = build(
        &img,
        &RunOptions {
            resources: ResourceFlags {
                memory: Some(64 << 20),
                memory_swap: Some(-1),
                ..Default::default()
            },
            ..opts()
        },
    );
    assert_eq!(
        spec.linux.unwrap().resources.unwrap().memory.unwrap().swap,
        Some(-1)
    );
    let err = |o: RunOptions| build_err(&img, &o);
    assert!(
        err(RunOptions {
            resources: ResourceFlags {
                memory: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Default::default()
            },
            ..opts()
        })
        .contains("should be larger than memory limit")
    );
    assert!(
        err(RunOptions {
            resources: ResourceFlags {
                memory_swap: Some(32 << 20),
                ..Default::default()
            },
            ..opts()
        })
        .contains("always set the memory limit")
    );
    assert!(
        err(RunOptions {
            resources: ResourceFlags {
                memory: Some(1 << 20),
                ..Default::default()
            },
            ..opts()
        })
        .contains("6MB")
    );
    assert!(
        err(RunOptions {
            resources: ResourceFlags {
                cpus: Some(100_000.0),
                ..Default::default()
            },
            ..opts()
        })
        .contains("Range of CPUs")
    );
    assert!(
        err(RunOptions {
            resources: ResourceFlags {
                blkio_weight: Some(5),
                ..Default::default()
            },
            ..opts()
        })
        .contains("from 10 to 1000")
    );
}

#[test]
fn device_throttles_by_major_minor() {
    berth_test_support::requires_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("blk");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &dev,
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(7, 200),
    )
    .unwrap();
    let d = dev.display();
    let img = image(json!({"Cmd": ["sh"]}));
    let o = RunOptions {
        resources: ResourceFlags {
            device_read_bps: vec![format!("{d}:1mb")],
            device_write_bps: vec![format!("{d}:2m")],
            device_read_iops: vec![format!("{d}:100")],
            device_write_iops: vec![format!("{d}:200")],
            ..Default::default()
        },
        ..opts()
    };
    let (spec, _) = build(&img, &o);
    let b = spec.linux.unwrap().resources.unwrap().block_io.unwrap();
    let t = |v: Option<Vec<berth_runtime_spec::LinuxThrottleDevice>>| {
        let x = v.unwrap()[0];
        (x.major, x.minor, x.rate)
    };
    assert_eq!(t(b.throttle_read_bps_device), (7, 200, 1 << 20));
    assert_eq!(t(b.throttle_write_bps_device), (7, 200, 2 << 20));
    assert_eq!(t(b.throttle_read_iops_device), (7, 200, 100));
    assert_eq!(t(b.throttle_write_iops_device), (7, 200, 200));
    let err = |v: String| {
        build_err(
            &img,
            &RunOptions {
                resources: ResourceFlags {
                    device_read_bps: vec![v],
                    ..Default::default()
                },
                ..opts()
            },
        )
    };
    assert!(err(format!("{}:1m", tmp.path().display())).contains("not a block device"));
    assert!(err("/nonexistent-dev:1m".into()).contains("/nonexistent-dev"));
    assert!(err("nocolon".into()).contains("bad format"));
    let e = build_err(
        &img,
        &RunOptions {
            resources: ResourceFlags {
                device_read_iops: vec![format!("{d}:1k")],
                ..Default::default()
            },
            ..opts()
        },
    );
    assert!(e.contains("whole number"), "{e}");
}

/// The spec as built, run by `runtime` over a busybox bundle; returns the container's stdout.
fn run_in(runtime: &str, img: &ImageConfig, o: &RunOptions) -> String {
    let rt = berth_test_support::Runtime::find(runtime)
        .unwrap_or_else(|| panic!("{runtime} not found (build -p berth-runtime-cli first)"));
    let mut bundle = berth_test_support::Bundle::new();
    write_file(bundle.rootfs().join("etc/passwd"), PASSWD.as_bytes());
    write_file(bundle.rootfs().join("etc/group"), GROUP.as_bytes());
    let (mut spec, _) = build_spec(img, &bundle.rootfs(), o).unwrap();
    if let Some(linux) = spec.linux.as_mut() {
        linux.cgroups_path = bundle.cgroups_path().map(PathBuf::from);
    }
    *bundle.config_mut() = serde_json::to_value(&spec).unwrap();
    let out = rt.run(&bundle);
    assert!(
        out.success(),
        "{runtime}: {}\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
    out.stdout_str()
}

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} missing in {out}"))
        .trim()
        .to_owned()
}

#[test]
fn built_spec_runs_locked_down_in_berth_runtime_runc_and_crun() {
    berth_test_support::requires_root!();
    berth_test_support::requires_tool!("runc");
    berth_test_support::requires_tool!("crun");
    let script = "id; cat /proc/self/uid_map; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status";
    let img = image(json!({"Entrypoint": ["sh", "-c"], "Cmd": [script], "User": "app"}));
    let range = IdRange {
        host_start: 100000,
        size: 65536,
    };
    for runtime in ["berth-runtime", "runc", "crun"] {
        // the image's user, by name: uid, gid and supplementary groups from the image's files
        let out = run_in(
            runtime,
            &img,
            &RunOptions {
                id_range: Some(range),
                ..opts()
            },
        );
        assert!(
            out.contains("uid=1000(app) gid=1001(appgrp)"),
            "{runtime}: {out}"
        );
        assert!(
            out.contains("10(wheel)") && out.contains("29(audio)"),
            "{runtime}: {out}"
        );
        // container 0 is host 100000: the user namespace is there
        let map: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(map, ["0", "100000", "65536"], "{runtime}: {out}");
        assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{runtime}");
        assert_eq!(status_field(&out, "Seccomp"), "2", "{runtime}");
        // CAP_KILL (5) and CAP_NET_BIND_SERVICE (10) bound; none effective for a non-root user
        assert_eq!(
            status_field(&out, "CapBnd"),
            "0000000000000420",
            "{runtime}"
        );
        assert_eq!(
            status_field(&out, "CapEff"),
            "0000000000000000",
            "{runtime}"
        );
        // as root with --cap-add CHOWN and no-new-privileges=false: effective = the set
        let o = RunOptions {
            id_range: Some(range),
            user: Some("0".into()),
            cap_add: s(&["CHOWN"]),
            security_opt: s(&["no-new-privileges=false"]),
            ..opts()
        };
        let out = run_in(runtime, &img, &o);
        assert!(out.contains("uid=0(root) gid=0(root)"), "{runtime}: {out}");
        assert_eq!(
            status_field(&out, "CapEff"),
            "0000000000000421",
            "{runtime}"
        );
        assert_eq!(
            status_field(&out, "CapBnd"),
            "0000000000000421",
            "{runtime}"
        );
        assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{runtime}");
    }
}

#[test]
fn defaults_beyond_runtime_spec_proc_flags_masks_io_uring_pids() {
    use berth_image::spec::{
        DEFAULT_PIDS_LIMIT, EXTRA_DENIED_SYSCALLS, EXTRA_MASKED_PATHS, default_seccomp,
    };
    let img = image(json!({"Cmd": ["sh"]}));
    let (spec, _) = build(&img, &opts());
    let (_, proc_opts) = mount(&spec, "/proc");
    for f in ["nosuid", "noexec", "nodev"] {
        assert!(proc_opts.iter().any(|o| o == f), "{proc_opts:?}");
    }
    let linux = spec.linux.as_ref().unwrap();
    let masked = linux.masked_paths.clone().unwrap();
    for p in EXTRA_MASKED_PATHS {
        assert!(masked.iter().any(|m| m == p), "{p} in {masked:?}");
    }
    let allowed: Vec<&str> = linux
        .seccomp
        .as_ref()
        .unwrap()
        .syscalls
        .iter()
        .flatten()
        .filter(|r| r.action == berth_runtime_spec::LinuxSeccompAction::ScmpActAllow)
        .flat_map(|r| r.names.iter().map(String::as_str))
        .collect();
    assert!(allowed.contains(&"read") && allowed.contains(&"clone"));
    for s in EXTRA_DENIED_SYSCALLS {
        assert!(!allowed.contains(&s), "{s} allowed");
    }
    // Docker's profile as runtime-spec has it does allow them: the removal is what denies
    let docker = berth_runtime_spec::defaults::seccomp::profile();
    assert!(
        docker
            .syscalls
            .iter()
            .flatten()
            .any(|r| r.names.iter().any(|n| n == "io_uring_setup"))
    );
    assert_ne!(default_seccomp(), docker);
    let pids = |o: &RunOptions| {
        build(&img, o)
            .0
            .linux
            .unwrap()
            .resources
            .unwrap()
            .pids
            .unwrap()
            .limit
    };
    assert_eq!(pids(&opts()), DEFAULT_PIDS_LIMIT);
    for unlimited in [0, -1] {
        let o = RunOptions {
            resources: ResourceFlags {
                pids_limit: Some(unlimited),
                ..Default::default()
            },
            ..opts()
        };
        assert_eq!(pids(&o), -1);
    }
    // --privileged opens the masks but /proc keeps its flags, as docker's
    let o = RunOptions {
        privileged: true,
        ..opts()
    };
    let (spec, _) = build(&img, &o);
    assert!(mount(&spec, "/proc").1.iter().any(|f| f == "noexec"));
    assert!(spec.linux.unwrap().masked_paths.is_none());
}
