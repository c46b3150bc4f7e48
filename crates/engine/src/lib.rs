//! berth-engine: what `berth create|start|run|stop|kill|rm|ps|logs|wait|exec` do, from a
//! prepared bundle (a root filesystem and a runtime-spec [`Spec`]) on.
//!
//! Containers are created and started through a runtime binary with runc's command line
//! (`berth-runtime` by default, `runc` or `crun` by name), as containerd does. Each container
//! has a record directory `STATE/containers/ID/` (`container.json`, written atomically under
//! the container's flock), a name in `STATE/names/` (under `STATE/names.lock`), and, while it
//! exists, a monitor process ([`monitor`]) that holds its stdio (pipes, or the pty master of
//! a `-t` container), writes its log ([`logs`]), records its exit code, and relays callers
//! attached through its socket ([`attach`]: `run -it`, `attach`).

pub mod attach;
pub mod attachments;
pub mod cgwarm;
pub mod connect;
pub mod error;
pub mod etcfiles;
mod exec;
pub mod hostrules;
pub mod logs;
pub mod monitor;
pub mod netns;
pub mod network;
mod oom;
pub mod pasta;
mod pidwait;
pub mod record;
pub mod runtime;
pub mod setup;
pub mod shaping;
pub mod volumes;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_fsutil::FileLock;
use berth_runtime_spec::Spec;

pub use attach::Stdio as AttachStdio;
pub use attach::{DEFAULT_DETACH_KEYS, parse_detach_keys};
pub use attachments::{Attachments, HostIds, SnapshotRef};
pub use error::{EngineError, Result};
pub use record::{Record, SbomRecord, Status, VerifiedSbom};

use record::Layout;
use runtime::Runtime;

/// How to start a monitor: a program and the arguments before `STATE_ROOT ID`
/// (the `berth` binary and `__monitor`).
#[derive(Debug, Clone)]
pub struct MonitorCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// What a new container is made of.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// `--name`; a name is generated when `None`.
    pub name: Option<String>,
    /// The image reference, recorded for `ps` ("" for a bare bundle).
    pub image: String,
    /// The runtime configuration; `root.path` is replaced by `rootfs`.
    pub spec: Spec,
    /// The container's root filesystem, already prepared (mounted) by the caller.
    pub rootfs: PathBuf,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--runtime PATH|NAME`; `None` is `berth-runtime`.
    pub runtime: Option<String>,
    /// `--stop-signal` (default SIGTERM).
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: seconds `stop` waits before SIGKILL when not told (recorded).
    pub stop_timeout: Option<u64>,
    /// The log's rotation size (default [`logs::DEFAULT_MAX_SIZE`]).
    pub log_max_size: Option<u64>,
    /// `-t`: give the container a pty (`process.terminal` is set to match); the monitor
    /// receives and holds its master.
    pub terminal: bool,
    /// `-i`: keep the container's stdin open; attached callers feed it.
    pub stdin: bool,
    /// The container's id, when the caller chose it ([`new_id`]) to name what it set up
    /// beforehand; generated when `None`.
    pub id: Option<String>,
    /// What the caller set up for the container (recorded; undone when it is removed). On a
    /// failed `create` the caller undoes it ([`Attachments::teardown`]).
    pub attachments: Attachments,
    /// The image's SBOM the trust gate verified, kept beside the record ([`Record::sbom`]).
    pub sbom: Option<VerifiedSbom>,
}

/// A monitor started before its container was prepared ([`Engine::spawn_monitor`]); dropped
/// without being used, it exits without doing anything.
#[derive(Debug)]
pub struct EarlyMonitor {
    id: String,
    child: std::process::Child,
    go: std::os::fd::OwnedFd,
}

impl EarlyMonitor {
    /// The id of the container it waits for.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The runtime config in the bundle `bundle` (a container's directory).
pub(crate) fn bundle_spec(bundle: &Path) -> Result<Spec> {
    let config = bundle.join("config.json");
    std::fs::read(&config)
        .map_err(|e| EngineError::io("reading", &config, e))
        .and_then(|d| {
            serde_json::from_slice(&d).map_err(|source| EngineError::Corrupt {
                path: config.clone(),
                source,
            })
        })
}

/// `berth exec` options: the process is the container's own (`config.json`'s `process`:
/// capabilities, no_new_privileges, rlimits, AppArmor, environment) with these changes.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command (required).
    pub args: Vec<String>,
    /// `-e KEY=VALUE`: added to (or replacing in) the container's environment.
    pub env: Vec<String>,
    /// `-u UID[:GID]` or `-u NAME[:GROUP]`, names resolved through the container's own
    /// `/etc/passwd` and `/etc/group` (inside its root).
    pub user: Option<String>,
    /// `-w DIR`: an absolute directory inside the container.
    pub cwd: Option<String>,
    /// `-t`: a pty for the process (the runtime relays it to the caller's terminal).
    pub terminal: bool,
    /// `-i`: the caller's stdin is the process's stdin (else /dev/null).
    pub stdin: bool,
    /// `-d`: the runtime starts the process and returns at once; the process runs on with
    /// its stdio on /dev/null (its output goes nowhere, as docker's `exec -d`), `-i` and
    /// `-t` ignored.
    pub detach: bool,
}

/// `logs` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// `--tail N`: the last N entries only.
    pub tail: Option<usize>,
    /// `--timestamps`: each line prefixed with its time.
    pub timestamps: bool,
}

/// The engine over one state root.
#[derive(Debug, Clone)]
pub struct Engine {
    layout: Layout,
    monitor: MonitorCommand,
    search_path: Vec<PathBuf>,
}

/// How an attached `run`, `start -a` or `attach` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The container exited: its exit code (`None` when unknown).
    Exited(Option<i32>),
    /// The caller typed its detach keys: the container runs on.
    Detached,
}

/// A created container whose monitor still reports to us (for `run`).
#[derive(Debug)]
pub struct Created {
    pub record: Record,
    /// The container's log, opened for reading before its monitor had the container: an
    /// `--rm` container can exit and be removed (its directory with it) before the caller
    /// looks, and this descriptor still reads all it wrote.
    pub log: Option<std::fs::File>,
    monitor: BufReader<std::process::ChildStdout>,
}

impl Engine {
    /// An engine keeping its state under `state_root` (`/var/lib/berth` for root).
    pub fn new(state_root: impl Into<PathBuf>, monitor: MonitorCommand) -> Result<Engine> {
        let layout = Layout {
            root: state_root.into(),
        };
        for d in [layout.containers(), layout.names(), layout.runtime_root()] {
            std::fs::create_dir_all(&d)
                .map_err(|e| EngineError::io("creating the state directory", d, e))?;
        }
        record::sweep_removals(&layout);
        Ok(Engine {
            layout,
            monitor,
            search_path: Vec::new(),
        })
    }

    /// Where runtimes given by name are looked for after the binary's own directory (the
    /// CLI passes `PATH`).
    pub fn with_search_path(mut self, dirs: Vec<PathBuf>) -> Engine {
        self.search_path = dirs;
        self
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// The runtime root (`--root`) the engine gives every runtime.
    pub fn runtime_root(&self) -> PathBuf {
        self.layout.runtime_root()
    }

    /// A container's directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.layout.dir(id)
    }

    /// Resolve a full id, a name, or a unique id prefix (as docker does) to the full id.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        if reference.is_empty() {
            return Err(EngineError::NotFound(String::new()));
        }
        if reference.len() == 64 && self.layout.record(reference).exists() {
            return Ok(reference.to_owned());
        }
        if record::valid_name(reference)
            && let Ok(id) = record::name_owner(&self.layout.names().join(reference))
            && self.layout.record(&id).exists()
        {
            return Ok(id);
        }
        let ids = record::ids(&self.layout)?;
        let hits: Vec<&String> = ids.iter().filter(|i| i.starts_with(reference)).collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound(reference.to_owned())),
            many => Err(EngineError::Ambiguous {
                reference: reference.to_owned(),
                count: many.len(),
            }),
        }
    }

    /// `berth create`: the record, the bundle, the monitor, `RUNTIME create`.
    pub fn create(&self, opts: CreateOptions) -> Result<Record> {
        self.create_attached(opts).map(|c| c.record)
    }

    /// `create`, keeping the monitor's report channel (for [`Engine::wait_created`]).
    pub fn create_attached(&self, opts: CreateOptions) -> Result<Created> {
        self.create_with(opts, false, None)
    }

    /// Create and start, keeping the monitor's report channel (for [`Engine::wait_created`]):
    /// `run` and `run -d`, where nobody attaches between the two. The monitor runs `RUNTIME
    /// run --detach` (create and start in one runtime process) and records the container
    /// `running` in the same durable write that records its pids, before it reports: one
    /// record write and no round trip through this process instead of
    /// [`Engine::create_attached`] + [`Engine::start`].
    pub fn create_started(&self, opts: CreateOptions) -> Result<Created> {
        self.create_with(opts, true, None)
    }

    /// Start the monitor of container `id` (a new id, [`new_id`]) before the container is
    /// prepared, so that its exec and start-up overlap the caller's work (snapshot, mounts,
    /// config); it waits on a pipe, touching nothing, until [`Engine::create_started_by`]
    /// hands it the container, and exits quietly when the pipe closes first (the caller
    /// failed, or was killed).
    pub fn spawn_monitor(&self, id: &str) -> Result<EarlyMonitor> {
        let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| EngineError::io("creating the monitor's pipe", "pipe", e.into()))?;
        let child = Command::new(&self.monitor.program)
            .args(&self.monitor.args)
            .arg(&self.layout.root)
            .arg(id)
            .arg(monitor::START_FLAG)
            .arg(monitor::WAIT_FLAG)
            .stdin(Stdio::from(go_r))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| EngineError::io("starting the monitor", &self.monitor.program, e))?;
        Ok(EarlyMonitor {
            id: id.to_owned(),
            child,
            go: go_w,
        })
    }

    /// [`Engine::create_started`] through a monitor started beforehand
    /// ([`Engine::spawn_monitor`] with `opts.id`'s id).
    pub fn create_started_by(&self, opts: CreateOptions, monitor: EarlyMonitor) -> Result<Created> {
        if opts.id.as_deref() != Some(monitor.id.as_str()) {
            return Err(EngineError::Invalid(format!(
                "the monitor started for container {} was given another container",
                monitor.id
            )));
        }
        self.create_with(opts, true, Some(monitor))
    }

    fn create_with(
        &self,
        opts: CreateOptions,
        start: bool,
        early: Option<EarlyMonitor>,
    ) -> Result<Created> {
        let mut spec = opts.spec;
        let terminal = opts.terminal
            || spec
                .process
                .as_ref()
                .is_some_and(|p| p.terminal.unwrap_or(false));
        if let Some(p) = spec.process.as_mut() {
            p.terminal = terminal.then_some(true);
        }
        let rootfs = std::path::absolute(&opts.rootfs)
            .map_err(|e| EngineError::io("resolving the root filesystem", &opts.rootfs, e))?;
        if !rootfs.is_dir() {
            return Err(EngineError::Invalid(format!(
                "the root filesystem {} is not a directory",
                rootfs.display()
            )));
        }
        let runtime_path = runtime::resolve(
            opts.runtime.as_deref().unwrap_or(runtime::DEFAULT_RUNTIME),
            &self.search_path,
        )?;
        let id = match opts.id {
            Some(id)
                if id.len() == 64 && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                id
            }
            Some(id) => {
                return Err(EngineError::Invalid(format!(
                    "invalid container id {id:?}: ids are 64 lowercase hex digits"
                )));
            }
            None => random_id()?,
        };
        let name = match opts.name {
            Some(n) if !record::valid_name(&n) => return Err(EngineError::InvalidName(n)),
            Some(n) => n,
            None => format!("berth_{}", &id[..12]),
        };
        let dir = self.layout.dir(&id);
        // 0700: the attach socket, the log and the record are the engine's, not the
        // containers' (a neighbour container's root is not the host's root under userns)
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .map_err(|e| EngineError::io("creating the container directory", &dir, e))?;
        let cleanup = |e: EngineError| {
            let _ = std::fs::remove_dir_all(&dir);
            e
        };
        record::reserve_name(&self.layout, &name, &id).map_err(cleanup)?;
        let cleanup = |e: EngineError| {
            let _ = record::release_name(&self.layout, &name, &id);
            let _ = std::fs::remove_dir_all(&dir);
            e
        };
        // the container's directory is its bundle (config.json beside the record): one
        // directory to make and to sync fewer (records of older containers name a `bundle`
        // subdirectory, which works the same)
        let bundle = dir.clone();
        let root = spec.root.get_or_insert_with(Default::default);
        root.path = rootfs.clone();
        let config = serde_json::to_vec(&spec)
            .map_err(|e| EngineError::Invalid(format!("serializing config.json: {e}")))
            .map_err(cleanup)?;
        // written with the record below: config.json, the SBOM, the record and the name
        // synced at once, then their directory
        let mut beside: Vec<(&str, &[u8])> = vec![("config.json", &config)];
        let sbom = match &opts.sbom {
            Some(s) => {
                beside.push((record::SBOM_FILE, &s.content));
                Some(SbomRecord {
                    manifest: s.manifest.clone(),
                    artifact_type: s.artifact_type.clone(),
                    signer: s.signer.clone(),
                    sha256: berth_oci::Digest::sha256_of(&s.content).to_string(),
                })
            }
            None => None,
        };
        let rec = Record {
            id: id.clone(),
            name: name.clone(),
            image: opts.image,
            created: record::now(),
            bundle,
            runtime: runtime_path,
            runtime_root: self.layout.runtime_root(),
            status: Status::Creating,
            exit_code: None,
            started: None,
            finished: None,
            note: None,
            log_path: dir.join("container.log"),
            log_max_size: opts.log_max_size.unwrap_or(logs::DEFAULT_MAX_SIZE),
            auto_remove: opts.auto_remove,
            monitor_pid: None,
            init_pid: None,
            init_start: None,
            stop_signal: opts.stop_signal.unwrap_or_else(|| "SIGTERM".to_owned()),
            terminal,
            stdin: opts.stdin,
            stop_timeout: opts.stop_timeout,
            oom_killed: false,
            attachments: opts.attachments,
            sbom,
        };
        record::write_new(&self.layout, &rec, &beside).map_err(cleanup)?;
        // made here (the monitor appends to it) and held open for reading: see `Created::log`
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&rec.log_path)
            .and_then(|_| std::fs::File::open(&rec.log_path))
            .map_err(|e| EngineError::io("creating", &rec.log_path, e))
            .map_err(cleanup)?;
        let monitor_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("monitor.log"))
            .map_err(|e| EngineError::io("creating", dir.join("monitor.log"), e))
            .map_err(cleanup)?;
        let mut child = match early {
            Some(EarlyMonitor { child, go, .. }) => {
                // it opens monitor.log itself once it has the container
                drop(monitor_log);
                rustix::io::write(&go, monitor::GO)
                    .map_err(|e| {
                        EngineError::io("handing the container to its monitor", &dir, e.into())
                    })
                    .map_err(cleanup)?;
                child
            }
            None => {
                let mut monitor = Command::new(&self.monitor.program);
                monitor
                    .args(&self.monitor.args)
                    .arg(&self.layout.root)
                    .arg(&id);
                if start {
                    monitor.arg(monitor::START_FLAG);
                }
                monitor
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::from(monitor_log))
                    .spawn()
                    .map_err(|e| EngineError::io("starting the monitor", &self.monitor.program, e))
                    .map_err(cleanup)?
            }
        };
        // the first process forks the monitor and exits at once
        let _ = child.wait();
        let Some(out) = child.stdout.take() else {
            return Err(cleanup(EngineError::Monitor {
                id: id.clone(),
                message: "no report pipe".to_owned(),
            }));
        };
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        if line.trim() != "ok" {
            let message = line
                .trim()
                .strip_prefix("error: ")
                .unwrap_or(line.trim())
                .to_owned();
            let message = if message.is_empty() {
                "the monitor exited without a report".to_owned()
            } else {
                message
            };
            let rt = Runtime {
                path: rec.runtime.clone(),
                root: rec.runtime_root.clone(),
            };
            let _ = rt.delete_force(&id);
            return Err(cleanup(EngineError::Monitor {
                id: id.clone(),
                message,
            }));
        }
        let record = match record::read(&self.layout, &id) {
            Ok(r) => r,
            // an --rm container that already ran, exited and was removed by its monitor:
            // the record as written stands in (its exit comes on the report pipe, its
            // output through `log`)
            Err(EngineError::NotFound(_)) if rec.auto_remove && start => Record {
                status: Status::Running,
                ..rec
            },
            Err(e) => return Err(e),
        };
        Ok(Created {
            record,
            log: Some(log),
            monitor: reader,
        })
    }

    /// `berth start`.
    pub fn start(&self, reference: &str) -> Result<Record> {
        let id = self.resolve(reference)?;
        let rec = self.reconcile(&id)?;
        if rec.status != Status::Created {
            return Err(EngineError::State {
                id,
                status: rec.status.as_str().to_owned(),
                what: "only a created container can be started (create a new one with `berth run`)"
                    .to_owned(),
            });
        }
        if let Err(e) = runtime_of(&rec).start(&id) {
            // a runtime can fail after it released the init: runc removing its exec.fifo
            // after a container that exited at once was already deleted by its monitor. An
            // init that is gone ran (or was killed): its monitor records what happened
            let gone = rec
                .init_pid
                .is_some_and(|pid| !record::alive(pid, rec.init_start));
            if !gone {
                return Err(e);
            }
        }
        let (_, rec) = record::update(&self.layout, &id, |r| {
            if r.status == Status::Created {
                r.status = Status::Running;
                r.started = Some(record::now());
            }
        })
        .or_else(|e| match e {
            // an --rm container that already exited and was removed
            EngineError::NotFound(_) => Ok(((), rec.clone())),
            e => Err(e),
        })?;
        Ok(rec)
    }

    /// `berth run -d`: create and start.
    pub fn run_detached(&self, opts: CreateOptions) -> Result<Record> {
        self.create_started(opts).map(|c| c.record)
    }

    /// `berth run` in the foreground (output goes to the log; attach is not implemented):
    /// create, start, and wait for the exit code (`None` when unknown). Works with `--rm`.
    pub fn run(&self, opts: CreateOptions) -> Result<Option<i32>> {
        let c = self.create_started(opts)?;
        self.wait_created(c)
    }

    /// Foreground `berth run` with the caller attached (`run -it`, `run -i`, and plain
    /// `run`): create, attach `io` to the monitor, start, relay until the container's output
    /// ends (the caller's terminal raw for `-t`, restored on every path), and return the
    /// container's exit code (`None` when unknown). Killing the caller leaves the container
    /// running under its monitor (its `-i` stdin is closed, as docker's `StdinOnce`).
    pub fn run_attached(&self, opts: CreateOptions, io: &AttachStdio) -> Result<Option<i32>> {
        let c = self.create_attached(opts)?;
        self.start_attached(c, io)
    }

    /// The second half of [`Engine::run_attached`], for a caller that releases its own
    /// locks between the create and the start: attach `io` to the monitor of a container
    /// [`Engine::create_attached`] made, start it, relay until its output ends and return
    /// its exit code. A failed attach or start removes the container.
    pub fn start_attached(&self, c: Created, io: &AttachStdio) -> Result<Option<i32>> {
        match self.start_attached_with(c, io, None)? {
            Attached::Exited(code) => Ok(code),
            Attached::Detached => Ok(None),
        }
    }

    /// [`Engine::start_attached`] that also ends when the caller types `detach` keys on its
    /// stdin (`run -it --detach-keys`): the container runs on under its monitor.
    pub fn start_attached_with(
        &self,
        c: Created,
        io: &AttachStdio,
        detach: Option<&[u8]>,
    ) -> Result<Attached> {
        let id = c.record.id.clone();
        let (terminal, stdin) = (c.record.terminal, c.record.stdin);
        let socket = self.layout.attach_socket(&id);
        let conn = match attach::connect(&socket, io, stdin && io.stdin.is_some()) {
            Ok(conn) => conn,
            Err(e) => {
                let _ = self.remove(&id, true);
                return Err(EngineError::io("attaching to the monitor at", socket, e));
            }
        };
        if let Err(e) = self.start(&id) {
            let _ = self.remove(&id, true);
            return Err(e);
        }
        let how = attach::relay(conn, io, terminal, detach)
            .map_err(|e| EngineError::io("relaying the stdio of container", &id, e))?;
        if how == attach::Relayed::Detached {
            return Ok(Attached::Detached);
        }
        self.wait_created(c).map(Attached::Exited)
    }

    /// `berth start -a -i`: attach `io` to a created container's monitor, start it, and
    /// relay until its output ends (its exit code) or the caller types `detach` keys.
    pub fn start_and_attach(
        &self,
        reference: &str,
        io: &AttachStdio,
        detach: Option<&[u8]>,
    ) -> Result<Attached> {
        let (rec, conn) = self.connect_monitor(
            reference,
            io,
            &[Status::Created],
            "start -a -i needs a created container whose monitor runs",
        )?;
        self.start(&rec.id)?;
        self.relay_attached(&rec.id, conn, io, rec.terminal, detach)
    }

    /// Connect `io` to the monitor of a container in one of `states` whose monitor runs.
    fn connect_monitor(
        &self,
        reference: &str,
        io: &AttachStdio,
        states: &[Status],
        what: &str,
    ) -> Result<(Record, std::os::unix::net::UnixStream)> {
        let id = self.resolve(reference)?;
        let rec = self.reconcile(&id)?;
        if !states.contains(&rec.status) || !self.monitor_alive(&id) {
            return Err(EngineError::State {
                id,
                status: rec.status.as_str().to_owned(),
                what: what.to_owned(),
            });
        }
        let socket = self.layout.attach_socket(&id);
        let conn = attach::connect(&socket, io, rec.stdin && io.stdin.is_some())
            .map_err(|e| EngineError::io("attaching to the monitor at", &socket, e))?;
        Ok((rec, conn))
    }

    fn relay_attached(
        &self,
        id: &str,
        conn: std::os::unix::net::UnixStream,
        io: &AttachStdio,
        terminal: bool,
        detach: Option<&[u8]>,
    ) -> Result<Attached> {
        let how = attach::relay(conn, io, terminal, detach)
            .map_err(|e| EngineError::io("relaying the stdio of container", id, e))?;
        if how == attach::Relayed::Detached {
            return Ok(Attached::Detached);
        }
        match self.wait(id, Some(Duration::from_secs(10))) {
            Err(EngineError::NotFound(_)) => Ok(Attached::Exited(None)),
            r => r.map(Attached::Exited),
        }
    }

    /// `berth attach`: the caller's stdio to a running container until its output ends
    /// (the container exited); returns the exit code as [`Engine::wait`] does.
    pub fn attach(&self, reference: &str, io: &AttachStdio) -> Result<Option<i32>> {
        match self.attach_with(reference, io, None)? {
            Attached::Exited(code) => Ok(code),
            Attached::Detached => Ok(None),
        }
    }

    /// [`Engine::attach`] that also ends when the caller types `detach` keys on its stdin:
    /// the container runs on (its stdin kept open for the next attach).
    pub fn attach_with(
        &self,
        reference: &str,
        io: &AttachStdio,
        detach: Option<&[u8]>,
    ) -> Result<Attached> {
        let (rec, conn) = self.connect_monitor(
            reference,
            io,
            &[Status::Created, Status::Running],
            "only a container whose monitor runs can be attached",
        )?;
        self.relay_attached(&rec.id, conn, io, rec.terminal, detach)
    }

    /// Wait for a container created by [`Engine::create_attached`] through its monitor's
    /// report (works for `--rm` containers, whose record is gone when they exit).
    pub fn wait_created(&self, c: Created) -> Result<Option<i32>> {
        self.wait_created_with(c, || {})
    }

    /// [`Engine::wait_created`], calling `log_grew` each time the monitor reports that the
    /// container's log grew (a foreground `run` relays it from there).
    pub fn wait_created_with(
        &self,
        mut c: Created,
        mut log_grew: impl FnMut(),
    ) -> Result<Option<i32>> {
        let mut line = String::new();
        loop {
            line.clear();
            let _ = c.monitor.read_line(&mut line);
            if line.as_bytes() == monitor::REPORT_LOG {
                log_grew();
            } else {
                break;
            }
        }
        match line.trim().strip_prefix("exit ") {
            Some(code) => Ok(code.parse().ok()),
            // the monitor died: fall back to the record
            None => self.wait(&c.record.id, None),
        }
    }

    /// A record with its status reconciled with reality: a container whose monitor and init
    /// are both gone has exited, with an unknown code.
    pub fn reconcile(&self, id: &str) -> Result<Record> {
        let rec = record::read(&self.layout, id)?;
        if !matches!(rec.status, Status::Created | Status::Running) || self.monitor_alive(id) {
            return Ok(rec);
        }
        if let Some(pid) = rec.init_pid
            && record::alive(pid, rec.init_start)
        {
            return Ok(rec);
        }
        let (_, rec) = record::update(&self.layout, id, |r| {
            if matches!(r.status, Status::Created | Status::Running) {
                r.status = Status::Exited;
                r.exit_code = None;
                r.finished = Some(record::now());
                r.note = Some(
                    "exit code unknown: the monitor and the container's init are gone".to_owned(),
                );
            }
        })?;
        let _ = runtime_of(&rec).delete_force(id);
        Ok(rec)
    }

    fn monitor_alive(&self, id: &str) -> bool {
        let path = self.layout.monitor_lock(id);
        if !self.layout.dir(id).is_dir() {
            return false;
        }
        matches!(
            FileLock::try_exclusive_unlinkable(&path, || Ok(())),
            Ok(None)
        )
    }

    /// `berth ps [-a]`, oldest first. A container whose record cannot be read is left out
    /// ([`Engine::list_checked`] says which): one broken record does not hide the others,
    /// nor stop `run` or `prune`.
    pub fn list(&self, all: bool) -> Result<Vec<Record>> {
        self.list_checked(all).map(|(records, _)| records)
    }

    /// [`Engine::list`], and the containers it left out because their record is corrupt
    /// (each error names the file; `rm -f` discards such a container).
    pub fn list_checked(&self, all: bool) -> Result<(Vec<Record>, Vec<EngineError>)> {
        let mut out = Vec::new();
        let mut corrupt = Vec::new();
        for id in record::ids(&self.layout)? {
            match self.reconcile(&id) {
                Ok(r) if all || r.status != Status::Exited => out.push(r),
                Ok(_) | Err(EngineError::NotFound(_)) => {}
                Err(e @ EngineError::Corrupt { .. }) => corrupt.push(e),
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok((out, corrupt))
    }

    /// The id of every container on disk, its record readable or not: what a clean-up of
    /// unrecorded leftovers must leave alone.
    pub fn ids(&self) -> Result<Vec<String>> {
        record::ids(&self.layout)
    }

    /// Where the container `id` keeps its image's verified SBOM ([`Record::sbom`]).
    pub fn sbom_path(&self, id: &str) -> PathBuf {
        self.layout.sbom(id)
    }

    /// `berth inspect CONTAINER`.
    pub fn inspect(&self, reference: &str) -> Result<Record> {
        let id = self.resolve(reference)?;
        self.reconcile(&id)
    }

    /// `berth update --network-bandwidth`: shape the container's first CNI network (or a
    /// rootless container's pasta namespace) with `bw` while it runs
    /// ([`shaping::update_bandwidth`]); the record says what holds after, a failure included
    /// (then the container is unshaped).
    pub fn update_network_bandwidth(
        &self,
        reference: &str,
        bw: network::Bandwidth,
    ) -> Result<Record> {
        let id = self.resolve(reference)?;
        // a rootless container's shaping is in its namespace, which other containers may
        // share: they are read before its record is locked (the listing locks each record)
        let pasta = self
            .inspect(&id)?
            .attachments
            .network
            .is_some_and(|n| n.pasta.is_some());
        let others: Vec<Record> = if pasta {
            self.list(false)?
                .into_iter()
                .filter(|o| o.id != id)
                .collect()
        } else {
            Vec::new()
        };
        let ((), rec) = record::update(&self.layout, &id, |r| -> Result<()> {
            if r.attachments
                .network
                .as_ref()
                .is_some_and(|n| n.pasta.is_some())
            {
                let holders = shaping::net_admin_holders(r, &others)?;
                if !holders.is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "CAP_NET_ADMIN in the network namespace of container {id} (held by \
                         {}) could remove shaping made there (a rootless container's): run \
                         without --privileged or --cap-add NET_ADMIN to cap the bandwidth",
                        holders.join(", ")
                    )));
                }
            }
            let att = r.attachments.network.as_mut().ok_or_else(|| {
                EngineError::Invalid(format!(
                    "container {id} has no network of its own (--network none, host, \
                     container: or ns:): nothing to shape"
                ))
            })?;
            shaping::update_bandwidth(att, bw)
        })
        .and_then(|(outcome, rec)| outcome.map(|()| ((), rec)))?;
        Ok(rec)
    }

    /// `berth kill -s SIGNAL`.
    pub fn kill(&self, reference: &str, signal: &str) -> Result<()> {
        let id = self.resolve(reference)?;
        let rec = self.reconcile(&id)?;
        if !matches!(rec.status, Status::Created | Status::Running) {
            return Err(EngineError::State {
                id,
                status: rec.status.as_str().to_owned(),
                what: "it is not running".to_owned(),
            });
        }
        runtime_of(&rec).kill(&id, signal)
    }

    /// `berth wait`: the exit code (`None` when unknown); `timeout` bounds the wait.
    pub fn wait(&self, reference: &str, timeout: Option<Duration>) -> Result<Option<i32>> {
        let id = self.resolve(reference)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        loop {
            let rec = self.reconcile(&id)?;
            if rec.status == Status::Exited {
                return Ok(rec.exit_code);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(EngineError::State {
                    id,
                    status: rec.status.as_str().to_owned(),
                    what: "still running after the wait's timeout".to_owned(),
                });
            }
            // woken by the init's exit; its monitor records it within milliseconds, which
            // the backoff, started again, looks for (a second at a time: a record that
            // changes otherwise — a restart — is seen within one)
            let init = rec
                .init_pid
                .and_then(|pid| pidwait::Exit::watch(pid, || record::alive(pid, rec.init_start)));
            match init {
                Some(exit) => {
                    let slice = deadline.map_or(Duration::from_secs(1), |d| {
                        (d - now).min(Duration::from_secs(1))
                    });
                    if exit.wait(slice) {
                        backoff = Backoff::new();
                    }
                }
                None => backoff.pause(),
            }
        }
    }

    /// Wait, until `deadline`, for the monitor of container `id` (pid `pid`, as recorded) to
    /// finish: woken by its exit, where the kernel watches it (a pidfd), rather than looking
    /// every 50 ms. Its lock says whether it still runs.
    fn await_monitor(&self, id: &str, pid: Option<i32>, deadline: Instant) {
        let mut backoff = Backoff::new();
        while self.monitor_alive(id) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            // the lock is still held after the pidfd is open: the pid is still the monitor's
            match pid.and_then(|p| pidwait::Exit::watch(p, || self.monitor_alive(id))) {
                Some(exit) => {
                    exit.wait((deadline - now).min(Duration::from_secs(1)));
                }
                None => backoff.pause(),
            }
        }
    }

    /// `berth stop -t`: the stop signal, then SIGKILL after `timeout`.
    pub fn stop(&self, reference: &str, timeout: Duration) -> Result<Option<i32>> {
        let id = self.resolve(reference)?;
        let rec = self.reconcile(&id)?;
        if !matches!(rec.status, Status::Created | Status::Running) {
            return Ok(rec.exit_code);
        }
        let rt = runtime_of(&rec);
        let _ = rt.kill(&id, &rec.stop_signal);
        match self.wait(&id, Some(timeout)) {
            Ok(code) => return Ok(code),
            Err(EngineError::NotFound(_)) => return Ok(None),
            Err(_) => {}
        }
        let _ = rt.kill(&id, "SIGKILL");
        match self.wait(&id, Some(Duration::from_secs(10))) {
            Err(EngineError::NotFound(_)) => Ok(None),
            r => r,
        }
    }

    /// `berth rm [-f]`: `force` kills a running container first.
    pub fn remove(&self, reference: &str, force: bool) -> Result<()> {
        self.remove_or_discard(reference, force).map(drop)
    }

    /// [`Engine::remove`], saying whether the container was one whose record could not be
    /// read, discarded (`rm -f`): what its record held is then left for the caller to collect
    /// as a killed `run`'s (`setup::collect_killed_runs`).
    pub fn remove_or_discard(&self, reference: &str, force: bool) -> Result<bool> {
        let id = self.resolve(reference)?;
        let rec = match self.reconcile(&id) {
            Ok(rec) => rec,
            Err(EngineError::Corrupt { .. }) if force => return self.discard(&id).map(|()| true),
            Err(e) => return Err(e),
        };
        let rt = runtime_of(&rec);
        if matches!(
            rec.status,
            Status::Created | Status::Running | Status::Creating
        ) {
            // a created container is removed as docker does, without -f: its init only
            // waits for `start`
            if !force && rec.status == Status::Running {
                return Err(EngineError::State {
                    id,
                    status: rec.status.as_str().to_owned(),
                    what: "cannot remove a running container: stop it first or use `rm -f`"
                        .to_owned(),
                });
            }
            let _ = rt.kill(&id, "SIGKILL");
            if let Some(pid) = rec.init_pid
                && record::alive(pid, rec.init_start)
                && let Some(p) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            // the monitor records the exit, gives the networks back and exits: its exit is
            // what is waited for (the record's `exited` comes before the networks' DEL)
            self.await_monitor(
                &id,
                rec.monitor_pid,
                Instant::now() + Duration::from_secs(10),
            );
            match self.wait(&id, Some(Duration::from_secs(10))) {
                Ok(_) | Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // let an exiting monitor finish its bookkeeping first
        self.await_monitor(
            &id,
            rec.monitor_pid,
            Instant::now() + Duration::from_secs(10),
        );
        // what the monitor recorded last (its networks released at the exit)
        let rec = record::read(&self.layout, &id).unwrap_or(rec);
        // runc, crun and berth-runtime keep a container's state in `ROOT/ID`: when the
        // monitor's `delete` already removed it, another is a wasted process
        if self.layout.runtime_root().join(&id).exists() {
            rt.delete_force(&id)?;
        }
        record::remove(&self.layout, &rec).map(|()| false)
    }

    /// `rm -f` of a container whose record cannot be read. Its runtime state is deleted with
    /// the default runtime, killing what still runs (best effort: which runtime the record
    /// named is lost with it); its directory and its names go. What the record listed — the
    /// mounted root filesystem, the snapshot, volumes, host ids, a network — is then
    /// unrecorded, and is taken away as a killed `run`'s is (`setup::collect_killed_runs`,
    /// which `berth rm` calls next, and every `run` and `system prune` too).
    fn discard(&self, id: &str) -> Result<()> {
        if self.layout.runtime_root().join(id).exists()
            && let Ok(path) = runtime::resolve(runtime::DEFAULT_RUNTIME, &self.search_path)
        {
            let rt = Runtime {
                path,
                root: self.layout.runtime_root(),
            };
            let _ = rt.kill(id, "SIGKILL");
            let _ = rt.delete_force(id);
        }
        record::discard(&self.layout, id)
    }

    /// `berth container prune`: remove every exited container; returns their ids. A
    /// container whose record cannot be read is not one of them (`rm -f` discards it).
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for rec in self.list(true)? {
            if rec.status == Status::Exited {
                match self.remove(&rec.id, false) {
                    Ok(()) | Err(EngineError::NotFound(_)) => out.push(rec.id),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// `berth exec CONTAINER CMD…` with the caller's stdio (stdin included); returns the
    /// exit code.
    pub fn exec(&self, reference: &str, args: &[String]) -> Result<i32> {
        let io = AttachStdio::inherit(true)
            .map_err(|e| EngineError::io("duplicating the caller's stdio", "/proc/self/fd", e))?;
        let opts = ExecOptions {
            args: args.to_vec(),
            stdin: true,
            ..ExecOptions::default()
        };
        self.exec_with(reference, &opts, &io)
    }

    /// `berth exec [-i] [-t] [-e] [-u] [-w]`: run a process in a running container through
    /// `RUNTIME exec --process FILE` with the caller's stdio; returns its exit code. With
    /// `-t` the runtime gives the process a pty and relays it to `io` (a terminal), as
    /// `runc exec -t` does in the foreground.
    pub fn exec_with(&self, reference: &str, opts: &ExecOptions, io: &AttachStdio) -> Result<i32> {
        let id = self.resolve(reference)?;
        let rec = self.reconcile(&id)?;
        if rec.status != Status::Running {
            return Err(EngineError::State {
                id,
                status: rec.status.as_str().to_owned(),
                what: "exec needs a running container".to_owned(),
            });
        }
        if opts.args.is_empty() {
            return Err(EngineError::Invalid("exec needs a command".to_owned()));
        }
        let spec = bundle_spec(&rec.bundle)?;
        let rootfs = spec
            .root
            .as_ref()
            .map(|r| r.path.clone())
            .unwrap_or_default();
        let mut process = spec.process.unwrap_or_default();
        process.args = Some(opts.args.clone());
        let terminal = opts.terminal && !opts.detach;
        process.terminal = terminal.then_some(true);
        // the size is the runtime's to set before the process runs (it races otherwise: the
        // foreground runtime copies it from its own terminal only after the exec)
        process.console_size = terminal
            .then(|| io.window_size())
            .flatten()
            .map(|(rows, cols)| berth_runtime_spec::ConsoleSize {
                height: rows.into(),
                width: cols.into(),
            });
        let mut env = process.env.take().unwrap_or_default();
        for kv in &opts.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            env.push(kv.clone());
        }
        process.env = Some(env);
        if let Some(cwd) = &opts.cwd {
            if !cwd.starts_with('/') {
                return Err(EngineError::Invalid(format!(
                    "the working directory {cwd:?} is not absolute"
                )));
            }
            process.cwd = PathBuf::from(cwd);
        }
        if let Some(user) = &opts.user {
            let (uid, gid) = exec::resolve_user(&rootfs, user)?;
            process.user.uid = uid;
            process.user.gid = gid;
            process.user.additional_gids = None;
        }
        let dir = self.layout.dir(&id);
        let file = dir.join(format!("exec-{}.json", &random_id()?[..16]));
        let data = serde_json::to_vec(&process)
            .map_err(|e| EngineError::Invalid(format!("serializing the exec process: {e}")))?;
        berth_fsutil::atomic_write(&file, &data).map_err(|source| EngineError::Fs {
            what: "writing",
            path: file.clone(),
            source,
        })?;
        let rt = runtime_of(&rec);
        let mut cmd = rt.command(["exec".as_ref(), "--process".as_ref(), file.as_os_str()]);
        if terminal {
            // crun relays a `--process` terminal in the foreground only with `--tty` too
            cmd.arg("--tty");
        }
        if opts.detach {
            cmd.arg("--detach");
        }
        cmd.arg(&id);
        let dup = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone()
                .map_err(|e| EngineError::io("duplicating the caller's stdio for", &id, e))
        };
        if opts.detach {
            // the runtime hands its stdio down to the process, which outlives this call:
            // /dev/null, so that nothing of the caller's is held open (the runtime's own
            // errors are lost with it; its exit status still tells)
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        } else {
            match (&io.stdin, opts.stdin) {
                (Some(i), true) => cmd.stdin(dup(i)?),
                _ => cmd.stdin(Stdio::null()),
            };
            cmd.stdout(dup(&io.stdout)?).stderr(dup(&io.stderr)?);
        }
        let st = cmd.status();
        let _ = std::fs::remove_file(&file);
        let st = st.map_err(|source| EngineError::RuntimeSpawn {
            runtime: rt.path.clone(),
            id: id.clone(),
            op: "exec",
            source,
        })?;
        if opts.detach && !st.success() {
            return Err(EngineError::Runtime {
                runtime: rt.path.clone(),
                op: "exec --detach",
                id,
                stderr: format!(
                    "{st} (the process could not be started; run it without -d to see why)"
                ),
            });
        }
        Ok(st
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&st).map(|s| 128 + s))
            .unwrap_or(125))
    }

    /// `berth logs`: each entry passed to `out` (stream, text) as it is read; with `follow`,
    /// until the container has exited.
    pub fn logs(
        &self,
        reference: &str,
        opts: LogOptions,
        mut out: impl FnMut(&str, &str) -> std::io::Result<()>,
    ) -> Result<()> {
        let id = self.resolve(reference)?;
        let rec = record::read(&self.layout, &id)?;
        let path = rec.log_path.clone();
        let (mut entries, mut offset) =
            logs::read_all(&path).map_err(|e| EngineError::io("reading the log", &path, e))?;
        if let Some(n) = opts.tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        let emit = |entries: &[logs::Entry],
                    out: &mut dyn FnMut(&str, &str) -> std::io::Result<()>| {
            for e in entries {
                let text = if opts.timestamps {
                    format!("{} {}", e.time, e.log)
                } else {
                    e.log.clone()
                };
                out(&e.stream, &text)
                    .map_err(|err| EngineError::io("writing the logs of", &path, err))?;
            }
            Ok::<(), EngineError>(())
        };
        emit(&entries, &mut out)?;
        if !opts.follow {
            return Ok(());
        }
        loop {
            let running = match self.reconcile(&id) {
                Ok(r) => r.status != Status::Exited,
                Err(EngineError::NotFound(_)) => false,
                Err(e) => return Err(e),
            };
            let mut new = Vec::new();
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < offset {
                // rotated: the rest of the old file, then the new one
                let _ = logs::read_since(&logs::rotated(&path), offset, &mut new);
                offset = 0;
            }
            if let Ok(o) = logs::read_since(&path, offset, &mut new) {
                offset = o;
            }
            emit(&new, &mut out)?;
            if !running && new.is_empty() {
                return Ok(());
            }
            pause(Duration::from_millis(100));
        }
    }
}

/// The engine waits on other processes (the monitor, the init) by polling their records.
#[allow(
    clippy::disallowed_methods,
    reason = "polling another process's state, not a test"
)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// Polling another process's state that usually changes within milliseconds (a killed
/// container's exit, its monitor's last bookkeeping): the first looks come soon, later ones
/// back off to 50 ms, so a quick change is not paid for with a whole interval (`berth rm` of
/// a created container slept 50 ms after its SIGKILL).
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(50);

    fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    fn pause(&mut self) {
        pause(self.0);
        self.0 = (self.0 * 2).min(Backoff::MAX);
    }
}

fn runtime_of(rec: &Record) -> Runtime {
    Runtime {
        path: rec.runtime.clone(),
        root: rec.runtime_root.clone(),
    }
}

/// Start, on a thread, the kernel's wait that the runtime's first cgroup write would
/// otherwise pay on the critical path of a container's start, and keep the lock's fast path
/// set up until the returned guard is dropped ([`cgwarm`]): call it first thing in a command
/// that will start a container and drop the guard once the container started. Best effort:
/// nothing is reported, and nothing depends on it.
pub fn warm_up_cgroup_lock() -> cgwarm::WarmUp {
    cgwarm::WarmUp::start()
}

/// A new container id (for [`CreateOptions::id`]).
pub fn new_id() -> Result<String> {
    random_id()
}

/// 64 random hex digits, as docker's ids.
fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    let mut filled = 0;
    while filled < b.len() {
        let n = rustix::rand::getrandom(&mut b[filled..], rustix::rand::GetRandomFlags::empty())
            .map_err(|e| EngineError::io("reading random bytes", "getrandom", e.into()))?;
        filled += n;
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
