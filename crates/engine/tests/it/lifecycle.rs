//! The engine's lifecycle against real containers (busybox bundles), as root, with
//! berth-runtime, runc and crun side by side.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{RUNTIMES, env, runtime_bin};
use berth_engine::{CreateOptions, Engine, EngineError, LogOptions, MonitorCommand, Status};
use berth_runtime_spec::Spec;
use berth_test_support::{Bundle, kill_pid_and_wait, wait_until};

/// A bundle running `sh -c SCRIPT`, and create options for it.
fn container(script: &str, runtime: &Path) -> (Bundle, CreateOptions) {
    let mut b = Bundle::new();
    b.args(&["/bin/sh", "-c", script]);
    let spec: Spec = serde_json::from_value(b.config().clone()).unwrap();
    let opts = CreateOptions {
        name: None,
        image: String::new(),
        spec,
        rootfs: b.rootfs(),
        auto_remove: false,
        runtime: Some(runtime.to_string_lossy().into_owned()),
        stop_signal: None,
        log_max_size: None,
        terminal: false,
        stdin: false,
        id: None,
        stop_timeout: None,
        attachments: Default::default(),
        sbom: None,
    };
    (b, opts)
}

fn logs(engine: &Engine, id: &str, opts: LogOptions) -> Vec<(String, String)> {
    let mut out = Vec::new();
    engine
        .logs(id, opts, |s, t| {
            out.push((s.to_owned(), t.to_owned()));
            Ok(())
        })
        .unwrap();
    out
}

/// Nothing of the container is left on the host: its runtime state, its cgroups, its mounts.
fn assert_no_leftovers(engine: &Engine, id: &str, bundle: &Bundle) {
    assert!(
        !engine.container_dir(id).exists(),
        "record of {id} left behind"
    );
    assert!(
        !engine.runtime_root().join(id).exists(),
        "runtime state of {id} left behind"
    );
    let cg = bundle.cgroups_path().unwrap();
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = ctl.path().join(cg.trim_start_matches('/'));
        assert!(!p.exists(), "cgroup {} left behind", p.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "a mount of {id} left behind");
    assert!(
        !mounts.contains(bundle.rootfs().to_str().unwrap()),
        "a mount of the rootfs left behind"
    );
}

#[test]
fn run_detached_logs_follow_stop_rm() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (b, opts) = container(
            "trap 'echo bye; exit 3' TERM; echo hello; echo oops >&2; while true; do sleep 0.1; done",
            &bin,
        );
        let rec = env
            .engine
            .run_detached(opts)
            .unwrap_or_else(|e| panic!("{rt}: {e}"));
        assert_eq!(rec.status, Status::Running, "{rt}");
        let e = env.engine.clone();
        let id = rec.id.clone();
        let followed = Arc::new(Mutex::new(Vec::new()));
        let f2 = followed.clone();
        let follower = std::thread::spawn(move || {
            e.logs(
                &id,
                LogOptions {
                    follow: true,
                    ..Default::default()
                },
                |s, t| {
                    f2.lock().unwrap().push((s.to_owned(), t.to_owned()));
                    Ok(())
                },
            )
        });
        assert!(
            wait_until(Duration::from_secs(10), || logs(
                &env.engine,
                &rec.id,
                LogOptions::default()
            )
            .len()
                >= 2),
            "{rt}: no output in the log"
        );
        let l = logs(&env.engine, &rec.id, LogOptions::default());
        assert!(
            l.contains(&("stdout".to_owned(), "hello\n".to_owned())),
            "{rt}: {l:?}"
        );
        assert!(
            l.contains(&("stderr".to_owned(), "oops\n".to_owned())),
            "{rt}: {l:?}"
        );
        let code = env
            .engine
            .stop(&rec.id[..12], Duration::from_secs(10))
            .unwrap();
        assert_eq!(code, Some(3), "{rt}: the trap's exit code");
        follower.join().unwrap().unwrap();
        let f = followed.lock().unwrap().clone();
        assert_eq!(
            f.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().last(),
            Some(&"bye\n"),
            "{rt}: logs -f ends with the last line: {f:?}"
        );
        let ts = logs(
            &env.engine,
            &rec.id,
            LogOptions {
                tail: Some(1),
                timestamps: true,
                follow: false,
            },
        );
        assert_eq!(ts.len(), 1, "{rt}");
        assert!(
            ts[0].1.ends_with(" bye\n") && ts[0].1.starts_with("20"),
            "{rt}: {ts:?}"
        );
        let r = env.engine.inspect(&rec.name).unwrap();
        assert_eq!((r.status, r.exit_code), (Status::Exited, Some(3)), "{rt}");
        env.engine.remove(&rec.id, false).unwrap();
        assert_no_leftovers(&env.engine, &rec.id, &b);
        assert!(matches!(
            env.engine.inspect(&rec.id),
            Err(EngineError::NotFound(_))
        ));
    }
}

#[test]
fn rm_flag_leaves_nothing_and_exit_codes() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        for (script, want) in [("exit 0", 0), ("echo x; exit 42", 42), ("exit 255", 255)] {
            let (b, mut opts) = container(script, &bin);
            opts.auto_remove = true;
            opts.name = Some(format!("rm-{}", std::process::id()));
            let code = env.engine.run(opts).unwrap_or_else(|e| panic!("{rt}: {e}"));
            assert_eq!(code, Some(want), "{rt}: {script}");
            assert!(
                env.engine.list(true).unwrap().is_empty(),
                "{rt}: --rm left a record"
            );
            assert!(
                std::fs::read_dir(env.engine.root().join("names"))
                    .unwrap()
                    .next()
                    .is_none(),
                "{rt}: --rm left a name"
            );
            assert_no_leftovers_quick(&env.engine, &b);
        }
        // without --rm the code stays in the record
        let (_b, opts) = container("exit 5", &bin);
        let c = env.engine.create(opts).unwrap();
        assert_eq!(
            env.engine.inspect(&c.id).unwrap().status,
            Status::Created,
            "{rt}"
        );
        env.engine.start(&c.id).unwrap();
        assert_eq!(
            env.engine
                .wait(&c.id, Some(Duration::from_secs(10)))
                .unwrap(),
            Some(5),
            "{rt}"
        );
        assert_eq!(env.engine.prune().unwrap(), vec![c.id.clone()], "{rt}");
    }
}

/// An `--rm` container started by its monitor (`create_started`) can exit and be removed —
/// its directory and log with it — before the caller reads anything: the caller's
/// `Created::log`, opened before the monitor had the container, still reads all it wrote
/// (a foreground `run --rm` of a quick command printed nothing, or failed with "no such
/// container", when the caller opened the log or read the record afterwards: seen in CI).
#[test]
fn an_rm_containers_output_is_read_after_its_monitor_removed_it() {
    use std::io::Read;
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (_b, mut opts) = container("echo quick output; exit 3", &bin);
        opts.auto_remove = true;
        let mut created = env
            .engine
            .create_started(opts)
            .unwrap_or_else(|e| panic!("{rt}: {e}"));
        let dir = created.record.log_path.parent().unwrap().to_owned();
        let mut log = created
            .log
            .take()
            .expect("the log, opened before the start");
        // the exit is reported after the removal
        let code = env.engine.wait_created(created).unwrap();
        assert_eq!(code, Some(3), "{rt}");
        assert!(
            !dir.exists(),
            "{rt}: the --rm container's directory is gone"
        );
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        assert!(text.contains("quick output"), "{rt}: {text:?}");
    }
}

#[test]
fn kill9_of_monitor_init_or_both_keeps_ps_true() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        // 1. the init killed: the monitor records 137
        let (_b1, o) = container("sleep 1000", &bin);
        let r = env.engine.run_detached(o).unwrap();
        let init = r.init_pid.unwrap();
        assert!(kill_pid_and_wait(init, Duration::from_secs(10)));
        let code = env
            .engine
            .wait(&r.id, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(code, Some(137), "{rt}: {:?}", env.engine.inspect(&r.id));
        env.engine.remove(&r.id, false).unwrap();

        // 2. the monitor killed: the container keeps running and ps says so; stop still works
        let (b2, o) = container("sleep 1000", &bin);
        let r = env.engine.run_detached(o).unwrap();
        let mon = r.monitor_pid.unwrap();
        assert!(kill_pid_and_wait(mon, Duration::from_secs(10)));
        let ps = env.engine.list(false).unwrap();
        assert!(
            ps.iter()
                .any(|p| p.id == r.id && p.status == Status::Running),
            "{rt}: {ps:?}"
        );
        env.engine.stop(&r.id, Duration::from_secs(2)).unwrap();
        let i = env.engine.inspect(&r.id).unwrap();
        assert_eq!((i.status, i.exit_code), (Status::Exited, None), "{rt}");
        assert!(i.note.is_some(), "{rt}");
        env.engine.remove(&r.id, false).unwrap();
        assert_no_leftovers(&env.engine, &r.id, &b2);

        // 3. both killed: exited, code unknown, rm works and leaves nothing
        let (b3, o) = container("sleep 1000", &bin);
        let r = env.engine.run_detached(o).unwrap();
        assert!(kill_pid_and_wait(
            r.monitor_pid.unwrap(),
            Duration::from_secs(10)
        ));
        assert!(kill_pid_and_wait(
            r.init_pid.unwrap(),
            Duration::from_secs(10)
        ));
        let ps = env.engine.list(true).unwrap();
        let p = ps.iter().find(|p| p.id == r.id).unwrap();
        assert_eq!((p.status, p.exit_code), (Status::Exited, None), "{rt}");
        assert!(env.engine.list(false).unwrap().is_empty(), "{rt}");
        env.engine.remove(&r.id, false).unwrap();
        assert_no_leftovers(&env.engine, &r.id, &b3);
    }
}

#[test]
fn kill9_of_the_runtime_mid_create_and_start() {
    let Some(env) = env() else { return };
    let Some(real) = runtime_bin("berth-runtime") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // a runtime that is killed -9 in the middle of one command and runs the real one otherwise
    let wrapper = |verb: &str| {
        let p = dir.path().join(format!("rt-dies-on-{verb}"));
        berth_test_support::write_file(
            &p,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = {verb} ] && kill -9 $$; done\nexec {} \"$@\"\n",
                real.display()
            )
            .as_bytes(),
        );
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&p).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p
    };
    let (b, o) = container("sleep 1000", &wrapper("create"));
    let err = env.engine.create(o).unwrap_err();
    assert!(matches!(err, EngineError::Monitor { .. }), "{err}");
    assert!(
        env.engine.list(true).unwrap().is_empty(),
        "a failed create left a record"
    );
    assert_no_leftovers_quick(&env.engine, &b);

    let (b, o) = container("sleep 1000", &wrapper("start"));
    let c = env.engine.create(o).unwrap();
    let err = env.engine.start(&c.id).unwrap_err();
    assert!(
        matches!(err, EngineError::Runtime { op: "start", .. }),
        "{err}"
    );
    assert_eq!(env.engine.inspect(&c.id).unwrap().status, Status::Created);
    env.engine.remove(&c.id, true).unwrap();
    assert_no_leftovers(&env.engine, &c.id, &b);

    // `run -d`: the monitor runs `RUNTIME run --detach` (create and start in one runtime
    // process); a runtime killed -9 in it between its create and its start (a real `create`,
    // then the kill: the init made and waiting, the runtime's state written) fails the run
    // and leaves nothing (no record, init, cgroup or runtime state)
    let p = dir.path().join("rt-dies-in-run");
    berth_test_support::write_file(
        &p,
        format!(
            "#!/bin/sh
             case \" $* \" in *' run '*) ;; *) exec {real} \"$@\" ;; esac
             args=\"\"
             for a in \"$@\"; do
             case \"$a\" in run) a=create ;; --detach) continue ;; esac
             args=\"$args '$a'\"
             done
             eval \"{real} $args\" && kill -9 $$
             exit 1
",
            real = real.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (b, o) = container("sleep 1000", &p);
    let err = env.engine.run_detached(o).unwrap_err();
    assert!(
        matches!(&err, EngineError::Monitor { message, .. } if message.contains("run exited with")),
        "{err}"
    );
    assert!(
        env.engine.list(true).unwrap().is_empty(),
        "a failed start left a record"
    );
    assert_no_leftovers_quick(&env.engine, &b);
}

/// `run -d` (and a foreground `run`): the container is created and started by its monitor
/// before the call returns, and its record, written once after both, says `running` with its
/// start time and pids (no `created` record in between, no `start` by the caller).
#[test]
fn create_started_returns_a_running_record() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (_b, opts) = container("echo started; sleep 1000", &bin);
        let c = env
            .engine
            .create_started(opts)
            .unwrap_or_else(|e| panic!("{rt}: {e}"));
        for r in [c.record.clone(), env.engine.inspect(&c.record.id).unwrap()] {
            assert_eq!(r.status, Status::Running, "{rt}");
            assert!(r.started.is_some(), "{rt}: no start time");
            assert!(
                r.init_pid.is_some() && r.monitor_pid.is_some(),
                "{rt}: {r:?}"
            );
        }
        assert!(
            wait_until(Duration::from_secs(10), || logs(
                &env.engine,
                &c.record.id,
                LogOptions::default()
            )
            .contains(&("stdout".to_owned(), "started\n".to_owned()))),
            "{rt}: the container did not run"
        );
        let id = c.record.id.clone();
        env.engine.remove(&id, true).unwrap();
        assert!(!env.engine.container_dir(&id).exists(), "{rt}");
    }
}

fn assert_no_leftovers_quick(engine: &Engine, bundle: &Bundle) {
    assert!(
        std::fs::read_dir(engine.runtime_root())
            .unwrap()
            .next()
            .is_none(),
        "runtime state left"
    );
    let cg = bundle.cgroups_path().unwrap();
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !ctl.path().join(cg.trim_start_matches('/')).exists(),
            "cgroup left"
        );
    }
}

#[test]
fn concurrent_creates_keep_records_and_names_whole() {
    let Some(env) = env() else { return };
    let Some(bin) = runtime_bin("berth-runtime") else {
        return;
    };
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for i in 0..6 {
        let engine = env.engine.clone();
        let bin = bin.clone();
        let results = results.clone();
        threads.push(std::thread::spawn(move || {
            let (b, mut o) = container("echo hi", &bin);
            // threads 0..3 race for one name, the others have their own
            o.name = Some(if i < 3 {
                "shared".to_owned()
            } else {
                format!("own{i}")
            });
            let r = engine.run(o).map(|_| ());
            results
                .lock()
                .unwrap()
                .push((i, r.map_err(|e| e.to_string())));
            b
        }));
    }
    let _bundles: Vec<Bundle> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let results = results.lock().unwrap().clone();
    let won: Vec<_> = results
        .iter()
        .filter(|(i, r)| *i < 3 && r.is_ok())
        .collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one create gets the shared name: {results:?}"
    );
    for (i, r) in &results {
        if *i >= 3 {
            assert!(r.is_ok(), "{i}: {r:?}");
        } else if let Err(e) = r {
            assert!(e.contains("already in use"), "{e}");
        }
    }
    let ps = env.engine.list(true).unwrap();
    assert_eq!(ps.len(), 4, "{ps:?}");
    assert!(ps.iter().all(|p| p.exit_code == Some(0)));
    for p in &ps {
        assert_eq!(
            logs(&env.engine, &p.id, LogOptions::default()),
            vec![("stdout".into(), "hi\n".into())]
        );
    }
    // names and unique prefixes resolve; an ambiguous prefix does not
    assert_eq!(
        env.engine.resolve("shared").unwrap(),
        ps.iter().find(|p| p.name == "shared").unwrap().id
    );
    for p in &ps {
        assert_eq!(env.engine.resolve(&p.id[..12]).unwrap(), p.id);
    }
    assert!(env.engine.resolve("").is_err());
    assert_eq!(env.engine.prune().unwrap().len(), 4);
}

#[test]
fn exec_runs_in_the_container() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (_b, o) = container("sleep 1000", &bin);
        let r = env.engine.run_detached(o).unwrap();
        let code = env
            .engine
            .exec(&r.id, &["/bin/sh".into(), "-c".into(), "exit 9".into()])
            .unwrap();
        assert_eq!(code, 9, "{rt}");
        env.engine.remove(&r.id, true).unwrap();
        assert!(env.engine.list(true).unwrap().is_empty());
    }
}

#[test]
fn the_monitor_outlives_its_caller() {
    let Some(env) = env() else { return };
    let Some(bin) = runtime_bin("berth-runtime") else {
        return;
    };
    let (_b, o) = container("sleep 1000", &bin);
    let r = env.engine.run_detached(o).unwrap();
    let mon = r.monitor_pid.unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{mon}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let (ppid, sid): (i32, i32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    // double-forked and in its own session: not our child, so our exit cannot take it along
    assert_ne!(
        ppid,
        std::process::id() as i32,
        "the monitor is the caller's child"
    );
    assert_eq!(sid, mon, "the monitor leads its own session");
    let status = std::fs::read_to_string(format!("/proc/{mon}/status")).unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    eprintln!("monitor peak RSS: {hwm}");
    env.engine.remove(&r.id, true).unwrap();
}

/// Not a test on its own: the caller process of `the_monitor_survives_its_caller_exiting`.
#[test]
#[ignore = "run by the_monitor_survives_its_caller_exiting as its short-lived caller"]
fn helper_caller_creates_and_exits() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the parent test passes its state root"
    )]
    let (Some(root), Some(rt)) = (
        std::env::var_os("BERTH_ENGINE_HELPER_ROOT"),
        std::env::var_os("BERTH_ENGINE_HELPER_RUNTIME"),
    ) else {
        panic!("run by the_monitor_survives_its_caller_exiting only");
    };
    let engine = Engine::new(
        PathBuf::from(root),
        MonitorCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_berth-engine-monitor")),
            args: vec![],
        },
    )
    .unwrap();
    let (b, mut o) = container("echo up; sleep 1000", Path::new(&rt));
    o.name = Some("survivor".to_owned());
    engine.run_detached(o).unwrap();
    // the bundle's directory must outlive this process (the container runs from it): the
    // parent test removes it
    #[allow(
        clippy::print_stdout,
        reason = "tells the parent test what to clean up"
    )]
    {
        println!("\nBUNDLE={}", b.path().display());
    }
    std::mem::forget(b);
}

#[test]
fn the_monitor_survives_its_caller_exiting() {
    let Some(env) = env() else { return };
    let Some(bin) = runtime_bin("berth-runtime") else {
        return;
    };
    let out = berth_test_support::run_with_timeout(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "lifecycle::helper_caller_creates_and_exits",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("BERTH_ENGINE_HELPER_ROOT", env.engine.root())
            .env("BERTH_ENGINE_HELPER_RUNTIME", &bin),
        Duration::from_secs(60),
    );
    /// Removes the helper's bundle however this test ends.
    struct RemoveDir(PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let cleanup = stdout
        .lines()
        .find_map(|l| Some(RemoveDir(PathBuf::from(l.split_once("BUNDLE=")?.1))));
    assert!(out.status.success(), "{stdout}");
    assert!(
        cleanup.is_some(),
        "the helper did not name its bundle: {stdout:?}"
    );
    // the caller is gone; the container still runs and its monitor still logs
    let ps = env.engine.list(false).unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0].status, Status::Running);
    assert!(wait_until(Duration::from_secs(10), || {
        logs(&env.engine, "survivor", LogOptions::default())
            == vec![("stdout".to_owned(), "up\n".to_owned())]
    }));
    assert_eq!(
        env.engine.stop("survivor", Duration::from_secs(1)).unwrap(),
        Some(137)
    );
    let record_bundle = ps[0].bundle.clone();
    env.engine.remove("survivor", false).unwrap();
    assert!(!record_bundle.exists());
}

#[test]
fn a_command_not_found_or_not_executable_gives_dockers_codes() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        for (cmd, want) in [("/nonexistent", 127), ("/etc/passwd", 126)] {
            let (_b, mut o) = container("true", &bin);
            o.spec.process.as_mut().unwrap().args = Some(vec![cmd.to_owned()]);
            o.auto_remove = true;
            // the runtime refuses at create or start (an error with the code), or the
            // process fails to exec (the container's own code, as the runtime reports it)
            let code = match env.engine.run(o) {
                Ok(code) => code.unwrap_or(-1),
                Err(e) => e.exit_code(),
            };
            assert_eq!(code, want, "{rt}: {cmd}");
            assert!(
                env.engine.list(true).unwrap().is_empty(),
                "{rt}: {cmd} left a record"
            );
        }
    }
}
