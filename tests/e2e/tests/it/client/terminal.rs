//! What a person at a terminal sees: progress bars and the login prompt, driven through a
//! real pseudo-terminal (util-linux `script`), and plain output when not on a terminal.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use berth_test_support::{
    ChildGuard, Registry, RegistryOptions, berth_bin, requires_tool, run_with_timeout, wait_until,
};

use super::{Env, PASSWORD, USER, single_image};

/// Run `berth args` on a pseudo-terminal, answering each prompt of `dialogue` when it
/// appears; returns the exit status and what the terminal showed (stdout and stderr
/// together, as a person sees them).
fn on_terminal(env: &Env, args: &[&str], dialogue: &[(&str, &str)]) -> (ExitStatus, String) {
    let line = std::iter::once(berth_bin().display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .inspect(|a| {
            assert!(
                a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/:._-=@".contains(c)),
                "argument needs quoting: {a}"
            );
        })
        .collect::<Vec<_>>()
        .join(" ");
    let screen = env.path("screen");
    let mut cmd = Command::new("script");
    cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env("XDG_DATA_HOME", env.path("data"))
        .env("DOCKER_CONFIG", env.path("docker"))
        .env("HOME", env.path(""))
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&screen)
                .unwrap(),
        )
        .stderr(Stdio::inherit());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let child = guard.child().unwrap();
    // Keep the terminal's input open until the command ends: script(1) hangs up on EOF.
    let mut keyboard = child.stdin.take().unwrap();
    let shown =
        || String::from_utf8_lossy(&std::fs::read(&screen).unwrap_or_default()).into_owned();
    let mut seen = 0;
    for (prompt, answer) in dialogue {
        assert!(
            wait_until(Duration::from_secs(30), || shown()[seen..].contains(prompt)),
            "no {prompt:?} prompt; the terminal shows:\n{}",
            shown()
        );
        seen = shown().len();
        keyboard
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        keyboard.flush().unwrap();
    }
    let mut status = None;
    wait_until(Duration::from_secs(60), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    drop(keyboard);
    let status = status.unwrap_or_else(|| {
        panic!(
            "berth {args:?} did not finish; the terminal shows:\n{}",
            shown()
        )
    });
    (status, shown())
}

#[test]
fn pull_draws_progress_bars_on_a_terminal_and_plain_lines_elsewhere() {
    requires_tool!("script");
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let a = env.path("a");
    let digest = single_image(&a, "v1", 31);
    let reference = format!("{}/bars:v1", registry.host());
    env.berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &reference]);

    let (status, shown) = on_terminal(&env, &["pull", &reference], &[]);
    assert!(status.success(), "pull on a terminal failed:\n{shown}");
    assert!(shown.contains('\u{1b}'), "no terminal drawing:\n{shown}");
    assert!(shown.contains("total"), "no overall bar:\n{shown}");
    assert!(
        shown.contains(&digest.as_str()[..19]),
        "no digest on the terminal:\n{shown}"
    );
    assert!(
        !shown.contains("copying sha256:"),
        "plain lines on a terminal:\n{shown}"
    );

    let other = Env::new();
    let plain = other.try_berth(&["pull", &reference]);
    assert!(plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes off a terminal:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("copying sha256:").count(),
        3,
        "one line per blob (config and two layers):\n{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout).trim(),
        digest.as_str()
    );

    let quiet = Env::new();
    let out = quiet.try_berth(&["pull", "--quiet", &reference]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn login_prompts_for_the_user_and_a_hidden_password_on_a_terminal() {
    requires_tool!("script", "htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let env = Env::new();
    let host = registry.host();

    let (status, shown) = on_terminal(
        &env,
        &["login", &host],
        &[("Username: ", USER), ("Password: ", PASSWORD)],
    );
    assert!(status.success(), "login on a terminal failed:\n{shown}");
    assert!(shown.contains("login succeeded"), "{shown}");
    assert!(shown.contains(USER), "the user name is echoed:\n{shown}");
    assert!(
        !shown.contains(PASSWORD),
        "the password was echoed:\n{shown}"
    );
    let stored = std::fs::read_to_string(env.path("docker/config.json")).unwrap();
    assert!(stored.contains(&host), "{stored}");

    // Without a terminal and without --password-stdin there is nobody to ask.
    let piped = Env::new();
    let out = run_with_timeout(
        piped
            .command(&["login", "-u", USER, &host])
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdin is not a terminal"), "{stderr}");
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    assert!(!piped.path("docker/config.json").exists());
}
