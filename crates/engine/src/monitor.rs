//! The per-container monitor (conmon's and containerd's shim's job), run as
//! `MONITOR STATE_ROOT ID` (the `berth` binary's hidden `__monitor` mode, or the
//! `berth-monitor` binary): single-threaded, no async runtime.
//!
//! It forks once more and the parent exits (so the caller reaps it at once and the monitor
//! is reparented away from the `berth` command), starts a new session, becomes the child
//! subreaper, holds `monitor.lock` for its whole life (how others tell that it is alive),
//! runs `RUNTIME create` with the container's stdout/stderr on two pipes, relays those to
//! the log (`crate::logs`), waits for the init (a pidfd in the same poll as the pipes),
//! records the exit code, runs `RUNTIME delete --force` and, for `--rm`, removes the record.
//!
//! It talks to the engine through its stdout, a pipe: `ok\n` once the container is created
//! (or `error: MESSAGE\n`), then `exit CODE\n` (`exit unknown\n`) when the init is gone.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use berth_fsutil::FileLock;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{
    Pid, PidfdFlags, WaitOptions, getpid, pidfd_open, set_child_subreaper, setsid, wait,
};

use crate::logs::LogWriter;
use crate::record::{self, Layout, Status};
use crate::runtime::Runtime;

/// The monitor's entry point; returns the process exit status.
pub fn main(args: &[OsString]) -> i32 {
    let [root, id] = args else {
        let _ = writeln!(std::io::stderr(), "usage: MONITOR STATE_ROOT CONTAINER_ID");
        return 2;
    };
    let Some(id) = id.to_str().map(str::to_owned) else {
        return 2;
    };
    // SAFETY: the monitor is single-threaded (it is a fresh process that started no thread),
    // so the child of fork() may run any code.
    #[allow(
        unsafe_code,
        reason = "fork: the daemonizing second fork, no rustix equivalent"
    )]
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => {
            let _ = writeln!(
                std::io::stdout(),
                "error: fork: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        0 => {}
        _ => return 0,
    }
    let _ = setsid();
    let layout = Layout {
        root: PathBuf::from(root),
    };
    let mut ready = std::io::stdout();
    match monitor(&layout, &id, &mut ready) {
        Ok(()) => 0,
        Err(message) => {
            let _ = writeln!(ready, "error: {}", message.replace('\n', " "));
            let _ = writeln!(std::io::stderr(), "monitor {id}: {message}");
            1
        }
    }
}

fn monitor(layout: &Layout, id: &str, ready: &mut impl Write) -> Result<(), String> {
    let lock_path = layout.monitor_lock(id);
    let _alive = FileLock::exclusive(&lock_path)
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    set_child_subreaper(Some(getpid())).map_err(|e| format!("PR_SET_CHILD_SUBREAPER: {e}"))?;
    let rec = record::read(layout, id).map_err(|e| e.to_string())?;
    let rt = Runtime {
        path: rec.runtime.clone(),
        root: rec.runtime_root.clone(),
    };
    let dir = layout.dir(id);
    let pid_file = dir.join("init.pid");
    let rt_log = dir.join("runtime.log");
    let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    let mut log = LogWriter::open(&rec.log_path, rec.log_max_size)
        .map_err(|e| format!("opening the log {}: {e}", rec.log_path.display()))?;

    let status = {
        let mut cmd = rt.command([
            "--log".as_ref(),
            rt_log.as_os_str(),
            "create".as_ref(),
            "--bundle".as_ref(),
            rec.bundle.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            id.as_ref(),
        ]);
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        cmd.status()
        // cmd (and with it our copies of the write ends) is dropped here
    };
    let status = status.map_err(|e| format!("running {} create: {e}", rt.path.display()))?;
    if !status.success() {
        let mut msg = std::fs::read_to_string(&rt_log).unwrap_or_default();
        let mut err = String::new();
        let _ = File::from(err_r).read_to_string(&mut err);
        msg.push_str(&err);
        return Err(format!(
            "{} create exited with {status}: {}",
            rt.path.display(),
            msg.trim()
        ));
    }
    let pid_text = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
    let init: i32 = pid_text
        .trim()
        .parse()
        .map_err(|_| format!("bad pid file {}: {pid_text:?}", pid_file.display()))?;
    let init_pid =
        Pid::from_raw(init).ok_or_else(|| format!("bad pid {init} in {}", pid_file.display()))?;
    let start = record::proc_start_time(init);
    record::update(layout, id, |r| {
        r.status = Status::Created;
        r.monitor_pid = Some(getpid().as_raw_nonzero().get());
        r.init_pid = Some(init);
        r.init_start = start;
    })
    .map_err(|e| e.to_string())?;
    let _ = ready.write_all(b"ok\n");
    let _ = ready.flush();

    let pidfd = pidfd_open(init_pid, PidfdFlags::empty()).ok();
    let (code, note) = relay(&mut log, [Some(out_r), Some(err_r)], pidfd, init_pid);
    let _ = log.flush();
    // read before `delete` removes the cgroup
    let oom_killed = crate::oom::killed(&rec.bundle);
    let _ = rt.delete_force(id);
    let auto_remove = match record::update(layout, id, |r| {
        r.oom_killed = oom_killed;
        r.status = Status::Exited;
        r.exit_code = code;
        r.finished = Some(record::now());
        r.note = note.clone();
        r.auto_remove
    }) {
        Ok((a, rec)) => a.then_some(rec),
        Err(_) => None, // removed meanwhile (`rm -f`)
    };
    if let Some(rec) = auto_remove {
        record::remove(layout, &rec).map_err(|e| e.to_string())?;
    }
    // reported last: whoever waits sees the record (or its absence, for --rm) final
    let _ = match code {
        Some(c) => writeln!(ready, "exit {c}"),
        None => writeln!(ready, "exit unknown"),
    };
    let _ = ready.flush();
    Ok(())
}

/// Relay the two pipes to the log until the init has exited and the pipes are drained (or
/// stay quiet for a moment: a process outside a pid namespace may keep them open).
fn relay(
    log: &mut LogWriter,
    mut pipes: [Option<OwnedFd>; 2],
    pidfd: Option<OwnedFd>,
    init: Pid,
) -> (Option<i32>, Option<String>) {
    let mut exit: Option<(Option<i32>, Option<String>)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let drain = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    let tick = rustix::event::Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
        let mut which: Vec<usize> = Vec::with_capacity(3);
        for (i, p) in pipes.iter().enumerate() {
            if let Some(p) = p {
                fds.push(PollFd::new(p, PollFlags::IN));
                which.push(i);
            }
        }
        if exit.is_none()
            && let Some(pfd) = &pidfd
        {
            fds.push(PollFd::new(pfd, PollFlags::IN));
            which.push(2);
        }
        if exit.is_some() && fds.is_empty() {
            break;
        }
        // without a pidfd, look at the init once a second
        let timeout = if exit.is_some() {
            Some(&drain)
        } else if pidfd.is_none() {
            Some(&tick)
        } else {
            None
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => 0,
        };
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .zip(&which)
            .map(|(f, &w)| (w, f.revents()))
            .collect();
        drop(fds);
        if n == 0 && exit.is_some() {
            break;
        }
        for (w, rev) in ready {
            if rev.is_empty() {
                continue;
            }
            if w == 2 {
                continue;
            }
            let Some(fd) = pipes[w].as_ref() else {
                continue;
            };
            match rustix::io::read(fd.as_fd(), &mut buf) {
                Ok(0) => pipes[w] = None,
                Ok(k) => {
                    let _ = log.feed(w, buf.get(..k).unwrap_or_default());
                }
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(_) => pipes[w] = None,
            }
        }
        // reap every child we have (runtime leftovers reparented to us, and the init)
        loop {
            // wait(), not waitpid(None): that is wait4(0), our process group only, and the
            // init leads its own. __WALL: runc's init is a clone() child that does not signal SIGCHLD on exit
            // (CLONE_PARENT from its stage-1), which a plain wait does not see
            let all = WaitOptions::from_bits_retain(libc::__WALL.cast_unsigned());
            match wait(WaitOptions::NOHANG | all) {
                Ok(Some((pid, st))) => {
                    if pid == init {
                        let code = st
                            .exit_status()
                            .or_else(|| st.terminating_signal().map(|s| 128 + s));
                        exit = Some((code, None));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    // no children: the init is not ours (or is gone)
                    if exit.is_none() && !record::alive(init.as_raw_nonzero().get(), None) {
                        exit = Some((
                            None,
                            Some("the init was not the monitor's child".to_owned()),
                        ));
                    }
                    break;
                }
            }
        }
    }
    exit.unwrap_or((None, None))
}
