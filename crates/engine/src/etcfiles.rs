//! The files every container gets of its own, as docker and podman give them: `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf`, written in a directory of the container's and
//! bind-mounted over the image's.
//!
//! - `hosts`: the loopback names, the container's hostname (and name) on its address — the
//!   loopback address while it has none of its own (podman's choice; docker leaves it out
//!   and some programs then wait on DNS for their own name) — and each `--add-host`; in the
//!   host's network namespace, the host's own `/etc/hosts` with the additions.
//! - `resolv.conf`: the host's, with loopback nameservers dropped when the container has a
//!   network namespace of its own (they would be the container's own loopback there); with
//!   none left, Google's public resolvers, as docker and podman fall back to. A host whose
//!   `/etc/resolv.conf` only points at systemd-resolved's stub (127.0.0.53) is read through
//!   `/run/systemd/resolve/resolv.conf`, the upstream servers, as podman does. `--dns`,
//!   `--dns-search` and `--dns-option` replace the host's lines of their kind.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Docker's and podman's fallback when the host has no usable nameserver.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// systemd-resolved's list of upstream servers, read when `/etc/resolv.conf` is its stub.
pub const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// What the files say.
#[derive(Debug, Clone, Default)]
pub struct EtcOptions {
    pub hostname: String,
    /// The container's name (an alias in `hosts`).
    pub name: Option<String>,
    /// The container's own address on its network (none yet: `--network none`).
    pub address: Option<IpAddr>,
    /// Its IPv6 address there too, on a dual-stack network (docker lists both).
    pub address6: Option<IpAddr>,
    /// The container shares the host's network namespace.
    pub host_network: bool,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<(String, IpAddr)>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
}

/// `--add-host NAME:IP` (IPv6 addresses as `NAME:::1` or `NAME:[::1]`).
pub fn parse_add_host(s: &str) -> Result<(String, IpAddr), String> {
    let bad = || format!("invalid --add-host {s:?}: give NAME:IP (such as db:10.0.0.5)");
    let (name, ip) = s.split_once(':').ok_or_else(bad)?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((name.to_owned(), ip.parse().map_err(|_| bad())?))
}

/// `/etc/hostname`.
pub fn hostname_file(opts: &EtcOptions) -> String {
    format!("{}\n", opts.hostname)
}

/// `/etc/hosts`; `host_hosts` is the host's `/etc/hosts` (used with the host's network).
pub fn hosts_file(opts: &EtcOptions, host_hosts: &str) -> String {
    let mut out = String::new();
    if opts.host_network {
        out.push_str(host_hosts);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str("127.0.0.1\tlocalhost\n");
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        let mut names = opts.hostname.clone();
        if let Some(n) = opts.name.as_ref().filter(|n| **n != opts.hostname) {
            names.push(' ');
            names.push_str(n);
        }
        let addr = opts
            .address
            .map_or_else(|| "127.0.0.1".to_owned(), |a| a.to_string());
        out.push_str(&format!("{addr}\t{names}\n"));
        if let Some(a6) = opts.address6.filter(|_| opts.address.is_some()) {
            out.push_str(&format!("{a6}\t{names}\n"));
        }
    }
    for (name, ip) in &opts.add_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// `/etc/resolv.conf` from the host's (`host_resolv`) and the flags.
pub fn resolv_conf(opts: &EtcOptions, host_resolv: &str) -> String {
    let mut nameservers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host_resolv.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    let keep = opts.host_network
                        || ns
                            .split('%')
                            .next()
                            .and_then(|a| a.parse::<IpAddr>().ok())
                            .is_some_and(|a| !a.is_loopback());
                    if keep {
                        nameservers.push(ns.to_owned());
                    }
                }
            }
            // the last of `search` and `domain` wins, as in resolv.conf(5)
            Some("search" | "domain") => search = words.map(str::to_owned).collect(),
            Some("options") => options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    if !opts.dns.is_empty() {
        nameservers = opts.dns.iter().map(ToString::to_string).collect();
    } else if nameservers.is_empty() {
        nameservers = FALLBACK_NAMESERVERS.map(str::to_owned).to_vec();
    }
    if !opts.dns_search.is_empty() {
        // `--dns-search .` clears the host's search domains, as docker's
        search = opts
            .dns_search
            .iter()
            .filter(|s| *s != ".")
            .cloned()
            .collect();
    }
    if !opts.dns_options.is_empty() {
        options.clone_from(&opts.dns_options);
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The host's resolver configuration: `/etc/resolv.conf`, or systemd-resolved's upstream
/// list when that file only names its stub (127.0.0.53) and the container has a network of
/// its own. A host without the file gives an empty text (the fallback servers then).
pub fn host_resolv_conf(host_network: bool) -> String {
    let etc = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let only_stub = {
        let servers: Vec<&str> = etc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(str::trim)
            .collect();
        !servers.is_empty() && servers.iter().all(|s| *s == "127.0.0.53")
    };
    if only_stub
        && !host_network
        && let Ok(upstream) = std::fs::read_to_string(RESOLVED_UPSTREAM)
    {
        return upstream;
    }
    etc
}

/// Append `IP\tNAMES` lines to a container's `/etc/hosts` at `path`, in place (it is bound
/// into the container: a rename would leave the container the old file). Best effort: a
/// container whose file is gone is skipped.
pub fn append_hosts(path: &Path, lines: &[(IpAddr, String)]) {
    use std::io::Write as _;
    if lines.is_empty() {
        return;
    }
    let text: String = lines
        .iter()
        .map(|(ip, names)| format!("{ip}\t{names}\n"))
        .collect();
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Take the lines of the addresses `ips` out of a container's `/etc/hosts` at `path`, in
/// place (see [`append_hosts`]). Best effort, as it; a file over 1 MiB is left as it is.
pub fn remove_hosts(path: &Path, ips: &[IpAddr]) {
    use std::io::{Seek as _, Write as _};
    if ips.is_empty() {
        return;
    }
    // the container can write its file: one grown past any real hosts file is left alone
    const LARGEST: u64 = 1 << 20;
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| {
        std::io::Read::read_to_string(&mut std::io::Read::take(f, LARGEST + 1), &mut text)
    });
    if !matches!(read, Ok(n) if (n as u64) <= LARGEST) {
        return;
    }
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| {
            let first = line.split_whitespace().next();
            !first
                .and_then(|w| w.parse::<IpAddr>().ok())
                .is_some_and(|ip| ips.contains(&ip))
        })
        .collect();
    if kept.len() == text.len() {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
        // shorter than before: written from the start, then cut to its length
        let _ = f
            .seek(std::io::SeekFrom::Start(0))
            .and_then(|_| f.write_all(kept.as_bytes()))
            .and_then(|()| f.set_len(kept.len() as u64));
    }
}

/// Write the three files into `dir` (created; mode 0644 files, owned by `owner` when the
/// container's root is not host root) and return `(destination, source)` pairs to bind.
pub fn write(
    dir: &Path,
    opts: &EtcOptions,
    owner: Option<u32>,
) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let host_hosts = if opts.host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        String::new()
    };
    let files = [
        ("hostname", hostname_file(opts)),
        ("hosts", hosts_file(opts, &host_hosts)),
        (
            "resolv.conf",
            resolv_conf(opts, &host_resolv_conf(opts.host_network)),
        ),
    ];
    let mut binds = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        // not fsynced (as docker writes them): only a living container reads them (its
        // runtime binds them; `--network container:` binds a running one's), and no
        // container outlives a crash; its record then shows it exited for good
        berth_fsutil::atomic_replace(&path, text.as_bytes()).map_err(std::io::Error::other)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        if let Some(id) = owner {
            rustix::fs::chown(
                &path,
                Some(rustix::fs::Uid::from_raw(id)),
                Some(rustix::fs::Gid::from_raw(id)),
            )?;
        }
        binds.push((Path::new("/etc").join(name), path));
    }
    Ok(binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> EtcOptions {
        EtcOptions {
            hostname: "abc123".into(),
            name: Some("web".into()),
            ..EtcOptions::default()
        }
    }

    #[test]
    fn hosts_name_the_container_on_loopback_until_it_has_an_address() {
        let h = hosts_file(&opts(), "");
        assert_eq!(
            h,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tabc123 web\n"
        );
        let mut o = opts();
        o.address = Some("10.88.0.5".parse().unwrap());
        o.add_hosts = vec![parse_add_host("db:10.0.0.9").unwrap()];
        let h = hosts_file(&o, "");
        assert!(h.contains("10.88.0.5\tabc123 web\n"), "{h}");
        assert!(h.ends_with("10.0.0.9\tdb\n"), "{h}");
        // dual-stack: the IPv6 address names the container too, after the IPv4 one
        o.address6 = Some("fd8a:b3e7:6c2d:1::5".parse().unwrap());
        let h = hosts_file(&o, "");
        assert!(
            h.contains("10.88.0.5\tabc123 web\nfd8a:b3e7:6c2d:1::5\tabc123 web\n"),
            "{h}"
        );
    }

    #[test]
    fn host_network_hosts_are_the_hosts_with_additions() {
        let mut o = opts();
        o.host_network = true;
        o.add_hosts = vec![parse_add_host("v6:[::2]").unwrap()];
        assert_eq!(
            hosts_file(&o, "127.0.0.1 localhost\n10.1.1.1 me"),
            "127.0.0.1 localhost\n10.1.1.1 me\n::2\tv6\n"
        );
    }

    #[test]
    fn add_host_is_checked() {
        assert!(parse_add_host("nocolon").is_err());
        assert!(parse_add_host(":1.2.3.4").is_err());
        assert!(parse_add_host("x:notanip").is_err());
        assert_eq!(
            parse_add_host("six:::1").unwrap(),
            ("six".into(), "::1".parse().unwrap())
        );
    }

    #[test]
    fn resolv_drops_loopback_servers_in_a_private_network_and_falls_back() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n";
        assert_eq!(
            resolv_conf(&opts(), host),
            "search corp.example\nnameserver 10.0.0.2\noptions edns0 trust-ad\n"
        );
        assert_eq!(
            resolv_conf(&opts(), "nameserver 127.0.0.1\nnameserver ::1\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        // the host's network: its loopback resolver is reachable, kept
        let mut o = opts();
        o.host_network = true;
        assert_eq!(
            resolv_conf(&o, "nameserver 127.0.0.53\n"),
            "nameserver 127.0.0.53\n"
        );
    }

    #[test]
    fn dns_flags_replace_the_hosts_lines() {
        let mut o = opts();
        o.dns = vec!["1.1.1.1".parse().unwrap()];
        o.dns_search = vec![".".into()];
        o.dns_options = vec!["ndots:2".into()];
        assert_eq!(
            resolv_conf(&o, "nameserver 10.0.0.2\nsearch a.example\noptions edns0\n"),
            "nameserver 1.1.1.1\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_lines_are_appended_and_taken_out_in_place() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        berth_fsutil::atomic_write(&path, b"127.0.0.1\tlocalhost\n10.90.0.2\tme\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let a: IpAddr = "10.90.0.3".parse().unwrap();
        let b: IpAddr = "fd8a::3".parse().unwrap();
        append_hosts(&path, &[(a, "web api".into()), (b, "web api".into())]);
        append_hosts(&path, &[("10.90.0.4".parse().unwrap(), "db".into())]);
        remove_hosts(&path, &[a, b]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "127.0.0.1\tlocalhost\n10.90.0.2\tme\n10.90.0.4\tdb\n"
        );
        // the same file: a container that binds it sees the change
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        // a file the container grew past any hosts file is left as it is
        let big = format!("10.90.0.4\tdb\n{}", "#\n".repeat(600_000));
        berth_fsutil::atomic_write(&path, big.as_bytes()).unwrap();
        remove_hosts(&path, &["10.90.0.4".parse().unwrap()]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), big);
        // a missing file is no error
        append_hosts(&dir.path().join("gone"), &[(a, "x".into())]);
        remove_hosts(&dir.path().join("gone"), &[a]);
    }
}
