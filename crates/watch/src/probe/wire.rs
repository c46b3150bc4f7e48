//! The byte layouts the BPF programs write to the ring buffer and read from the policy map
//! (`crates/watch/bpf/watch.bpf.c`: `struct header`, `exec_event`, `open_event`,
//! `connect_event`, `policy`), decoded and encoded here without `unsafe`. Both sides are
//! little-endian (the object is built for `bpfel`); change both files together.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::event::{Bind, Connect, Event, Exec, FileOrigin, OpenWrite};

pub(crate) const KIND_EXEC: u32 = 1;
pub(crate) const KIND_OPEN_WRITE: u32 = 2;
pub(crate) const KIND_CONNECT: u32 = 3;
pub(crate) const KIND_BIND: u32 = 4;

const HEADER_LEN: usize = 32;
/// `struct exec_event`: header, ino, dev, origin, flags, args_len, args_size, mnt_ns,
/// pid_ns_level, filename, args.
pub(crate) const FILENAME_MAX_LEN: usize = 256;
pub(crate) const ARGS_MAX_LEN: usize = 1024;
const EXEC_FILENAME_OFFSET: usize = HEADER_LEN + 40;
const EXEC_LEN: usize = EXEC_FILENAME_OFFSET + FILENAME_MAX_LEN + ARGS_MAX_LEN;
/// `struct open_event`: header, flags, path_len, path.
pub(crate) const PATH_MAX_LEN: usize = 256;
const OPEN_LEN: usize = HEADER_LEN + 8 + PATH_MAX_LEN;
/// `struct connect_event`: header, family, port, type, blocked, pad, addr.
const CONNECT_LEN: usize = HEADER_LEN + 16 + 16;

/// At most this many arguments of an exec are reported (the kernel side bounds their bytes).
pub const ARGV_MAX: usize = 16;

const EXEC_ARGS_TRUNCATED: u32 = 1;
const EXEC_INTERPRETED: u32 = 4;

const ORIGIN_NOT_OVERLAY: u32 = 0;
const ORIGIN_LOWER: u32 = 1;
const ORIGIN_UPPER: u32 = 2;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const SOCK_STREAM: u32 = 1;

/// `struct policy`: enforce, count, then `ALLOW_MAX` entries of `struct allow` (family, port,
/// pad, `addr[4]`, `mask[4]`).
pub const ALLOW_MAX: usize = 32;
const ALLOW_LEN: usize = 8 + 16 + 16;
pub(crate) const POLICY_LEN: usize = 8 + ALLOW_MAX * ALLOW_LEN;

/// A ring buffer record that is not one of the layouts above: the object and this decoder
/// disagree (a bug, never the traced program's doing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("ring buffer record of {len} bytes is too short for event kind {kind} ({need} bytes)")]
    Short { kind: u32, len: usize, need: usize },
    #[error("ring buffer record has unknown event kind {kind}")]
    UnknownKind { kind: u32 },
    #[error("exec event has unknown file origin {origin}")]
    UnknownOrigin { origin: u32 },
    #[error("connect event has unknown address family {family}")]
    UnknownFamily { family: u16 },
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The bytes of a NUL-terminated string in a fixed buffer (all of it when there is no NUL),
/// lossily as UTF-8: paths and arguments are bytes to the kernel.
fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The kernel's `dev_t` (`MAJOR << 20 | MINOR`, include/linux/kdev_t.h) as user space's
/// `st_dev` (glibc's `makedev`: the 12 low bits of the major at 8..20, the 20 high bits
/// at 44..64; the 8 low bits of the minor at 0..8, the rest at 20..44).
pub fn kernel_dev_to_user(dev: u32) -> u64 {
    let major = u64::from(dev >> 20);
    let minor = u64::from(dev & 0xfffff);
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// Split the `NUL`-separated argument block into at most [`ARGV_MAX`] arguments; the flag
/// says whether any were cut (more arguments, or a block longer than the probe's bound).
fn split_args(block: &[u8], block_size: u64) -> (Vec<String>, bool) {
    let mut truncated = block_size > block.len() as u64;
    let mut argv = Vec::new();
    let mut rest = block;
    while !rest.is_empty() {
        if argv.len() == ARGV_MAX {
            truncated = true;
            break;
        }
        match rest.iter().position(|&c| c == 0) {
            Some(end) => {
                argv.push(String::from_utf8_lossy(&rest[..end]).into_owned());
                rest = &rest[end + 1..];
            }
            None => {
                // the bound cut the last argument in the middle
                argv.push(String::from_utf8_lossy(rest).into_owned());
                truncated = true;
                break;
            }
        }
    }
    (argv, truncated)
}

struct Header {
    kind: u32,
    pid: u32,
    uid: u32,
    ppid: u32,
    cgroup_id: u64,
    boot_ns: u64,
}

fn need(kind: u32, b: &[u8], len: usize) -> Result<(), WireError> {
    if b.len() < len {
        return Err(WireError::Short {
            kind,
            len: b.len(),
            need: len,
        });
    }
    Ok(())
}

/// Decode one ring buffer record.
pub fn decode(b: &[u8]) -> Result<Event, WireError> {
    need(0, b, HEADER_LEN)?;
    let h = Header {
        kind: u32_at(b, 0),
        pid: u32_at(b, 4),
        uid: u32_at(b, 8),
        ppid: u32_at(b, 12),
        cgroup_id: u64_at(b, 16),
        boot_ns: u64_at(b, 24),
    };
    match h.kind {
        KIND_EXEC => decode_exec(&h, b),
        KIND_OPEN_WRITE => decode_open(&h, b),
        KIND_CONNECT | KIND_BIND => decode_connect(&h, b),
        kind => Err(WireError::UnknownKind { kind }),
    }
}

fn decode_exec(h: &Header, b: &[u8]) -> Result<Event, WireError> {
    need(h.kind, b, EXEC_LEN)?;
    let at = HEADER_LEN;
    let ino = u64_at(b, at);
    let dev = u32_at(b, at + 8);
    let origin = match u32_at(b, at + 12) {
        ORIGIN_NOT_OVERLAY => FileOrigin::NotOverlay,
        ORIGIN_LOWER => FileOrigin::Lower,
        ORIGIN_UPPER => FileOrigin::Upper,
        origin => return Err(WireError::UnknownOrigin { origin }),
    };
    let flags = u32_at(b, at + 16);
    let args_len = (u32_at(b, at + 20) as usize).min(ARGS_MAX_LEN);
    let args_size = u64_at(b, at + 24);
    let mnt_ns = u64::from(u32_at(b, at + 32));
    let pid_ns_level = u32_at(b, at + 36);
    let filename = c_str(&b[EXEC_FILENAME_OFFSET..EXEC_FILENAME_OFFSET + FILENAME_MAX_LEN]);
    let args_at = EXEC_FILENAME_OFFSET + FILENAME_MAX_LEN;
    let (argv, cut) = split_args(&b[args_at..args_at + args_len], args_size);
    Ok(Event::Exec(Exec {
        cgroup_id: h.cgroup_id,
        pid: h.pid,
        ppid: h.ppid,
        uid: h.uid,
        boot_ns: h.boot_ns,
        filename,
        argv,
        argv_truncated: cut || flags & EXEC_ARGS_TRUNCATED != 0,
        interpreted: flags & EXEC_INTERPRETED != 0,
        ino,
        dev: kernel_dev_to_user(dev),
        origin,
        mnt_ns,
        pid_ns_level,
    }))
}

fn decode_open(h: &Header, b: &[u8]) -> Result<Event, WireError> {
    need(h.kind, b, OPEN_LEN)?;
    let flags = u32_at(b, HEADER_LEN);
    let path_len = i32_at(b, HEADER_LEN + 4);
    let path = if path_len > 0 {
        c_str(&b[HEADER_LEN + 8..HEADER_LEN + 8 + PATH_MAX_LEN])
    } else {
        String::new()
    };
    Ok(Event::OpenWrite(OpenWrite {
        cgroup_id: h.cgroup_id,
        pid: h.pid,
        uid: h.uid,
        boot_ns: h.boot_ns,
        path,
        flags,
    }))
}

fn decode_connect(h: &Header, b: &[u8]) -> Result<Event, WireError> {
    need(h.kind, b, CONNECT_LEN)?;
    let at = HEADER_LEN;
    let family = u16_at(b, at);
    let port = u16_at(b, at + 2);
    let sock_type = u32_at(b, at + 4);
    let blocked = u32_at(b, at + 8) != 0;
    let mut addr = [0u8; 16];
    addr.copy_from_slice(&b[at + 16..at + 32]);
    let ip = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(addr)),
        family => return Err(WireError::UnknownFamily { family }),
    };
    if h.kind == KIND_BIND {
        return Ok(Event::Bind(Bind {
            cgroup_id: h.cgroup_id,
            pid: h.pid,
            uid: h.uid,
            boot_ns: h.boot_ns,
            address: SocketAddr::new(ip, port),
            stream: sock_type == SOCK_STREAM,
        }));
    }
    Ok(Event::Connect(Connect {
        cgroup_id: h.cgroup_id,
        pid: h.pid,
        uid: h.uid,
        boot_ns: h.boot_ns,
        destination: SocketAddr::new(ip, port),
        stream: sock_type == SOCK_STREAM,
        blocked,
    }))
}

/// One destination a connect policy allows: an address prefix and a port (`None`: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedDestination {
    pub addr: IpAddr,
    /// Prefix length in bits: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix_len: u8,
    pub port: Option<u16>,
}

impl AllowedDestination {
    /// Exactly one address and port.
    pub fn exact(destination: SocketAddr) -> Self {
        AllowedDestination {
            addr: destination.ip(),
            prefix_len: if destination.is_ipv4() { 32 } else { 128 },
            port: Some(destination.port()),
        }
    }
}

/// Why a policy cannot be written to the kernel's map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("a connect policy holds at most {max} allowed destinations, not {count}")]
    TooMany { count: usize, max: usize },
    #[error("prefix length {prefix_len} is too long for {addr} (at most {max})")]
    Prefix {
        addr: IpAddr,
        prefix_len: u8,
        max: u8,
    },
}

/// The `struct policy` bytes for the map: the address bytes and the mask in network byte
/// order, as the BPF program compares them against `user_ip4`/`user_ip6`.
pub fn encode_policy(
    enforce: bool,
    allow: &[AllowedDestination],
) -> Result<[u8; POLICY_LEN], PolicyError> {
    if allow.len() > ALLOW_MAX {
        return Err(PolicyError::TooMany {
            count: allow.len(),
            max: ALLOW_MAX,
        });
    }
    let mut out = [0u8; POLICY_LEN];
    out[0..4].copy_from_slice(&u32::from(enforce).to_le_bytes());
    out[4..8].copy_from_slice(&(allow.len() as u32).to_le_bytes());
    for (i, a) in allow.iter().enumerate() {
        let (family, bytes, max): (u16, [u8; 16], u8) = match a.addr {
            IpAddr::V4(v4) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v4.octets());
                (AF_INET, b, 32)
            }
            IpAddr::V6(v6) => (AF_INET6, v6.octets(), 128),
        };
        if a.prefix_len > max {
            return Err(PolicyError::Prefix {
                addr: a.addr,
                prefix_len: a.prefix_len,
                max,
            });
        }
        let mut mask = [0u8; 16];
        for (bit, byte) in mask.iter_mut().enumerate().take(usize::from(max) / 8) {
            let set = (usize::from(a.prefix_len)).saturating_sub(bit * 8).min(8);
            *byte = if set == 0 { 0 } else { 0xffu8 << (8 - set) };
        }
        let at = 8 + i * ALLOW_LEN;
        out[at..at + 2].copy_from_slice(&family.to_le_bytes());
        out[at + 2..at + 4].copy_from_slice(&a.port.unwrap_or(0).to_le_bytes());
        for j in 0..16 {
            out[at + 8 + j] = bytes[j] & mask[j];
            out[at + 24 + j] = mask[j];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&41u32.to_le_bytes()); // pid
        b.extend_from_slice(&1000u32.to_le_bytes()); // uid
        b.extend_from_slice(&7u32.to_le_bytes()); // ppid
        b.extend_from_slice(&1234u64.to_le_bytes()); // cgroup
        b.extend_from_slice(&99u64.to_le_bytes()); // boot_ns
        b
    }

    fn exec_record(args: &[u8], args_size: u64, flags: u32) -> Vec<u8> {
        let mut b = header(KIND_EXEC);
        b.extend_from_slice(&5u64.to_le_bytes()); // ino
        b.extend_from_slice(&((8u32 << 20) | 3).to_le_bytes()); // dev 8:3
        b.extend_from_slice(&ORIGIN_UPPER.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&(args.len() as u32).to_le_bytes());
        b.extend_from_slice(&args_size.to_le_bytes());
        b.extend_from_slice(&4026531841u32.to_le_bytes()); // mnt_ns
        b.extend_from_slice(&2u32.to_le_bytes()); // pid_ns_level
        let mut name = [0u8; FILENAME_MAX_LEN];
        name[..9].copy_from_slice(b"/bin/true");
        b.extend_from_slice(&name);
        let mut a = [0u8; ARGS_MAX_LEN];
        a[..args.len()].copy_from_slice(args);
        b.extend_from_slice(&a);
        b
    }

    #[test]
    fn exec_record_decodes_argv_dev_and_origin() {
        let args = b"/bin/true\0a\0b\0";
        let Event::Exec(e) = decode(&exec_record(args, args.len() as u64, 0)).unwrap() else {
            panic!("not an exec")
        };
        assert_eq!(e.argv, ["/bin/true", "a", "b"]);
        assert!(!e.argv_truncated);
        assert!(!e.interpreted);
        assert_eq!((e.pid, e.uid, e.ppid, e.cgroup_id), (41, 1000, 7, 1234));
        assert_eq!(e.filename, "/bin/true");
        assert_eq!(e.mnt_ns, 4026531841);
        assert_eq!(e.pid_ns_level, 2);
        assert_eq!(e.origin, FileOrigin::Upper);
        // glibc makedev(8, 3) == 0x803
        assert_eq!(e.dev, 0x803);
    }

    #[test]
    fn argv_over_the_bound_is_flagged_truncated() {
        // a block cut in the middle of an argument (and a script: flag 4)
        let Event::Exec(e) = decode(&exec_record(b"/bin/x\0long", 3000, 1 | 4)).unwrap() else {
            panic!("not an exec")
        };
        assert_eq!(e.argv, ["/bin/x", "long"]);
        assert!(e.argv_truncated);
        assert!(e.interpreted);
        // more than ARGV_MAX arguments
        let many: Vec<u8> = (0..20).flat_map(|_| b"x\0".iter().copied()).collect();
        let Event::Exec(e) = decode(&exec_record(&many, many.len() as u64, 0)).unwrap() else {
            panic!("not an exec")
        };
        assert_eq!(e.argv.len(), ARGV_MAX);
        assert!(e.argv_truncated);
    }

    #[test]
    fn kernel_dev_converts_like_glibc_makedev() {
        // an NVMe partition, an anonymous device (overlayfs'), and a major and minor past the
        // old 8-bit encoding (the kernel's dev_t has 12 bits of major), against the libc crate's makedev (glibc's formula)
        for (major, minor) in [(259u32, 1u32), (0, 0x2a), (0xabc, 0x56789), (4095, 0xfffff)] {
            assert_eq!(
                kernel_dev_to_user((major << 20) | minor),
                libc::makedev(major, minor),
                "{major}:{minor}"
            );
        }
    }

    #[test]
    fn short_and_unknown_records_are_errors_not_panics() {
        assert!(matches!(decode(&[1, 0, 0]), Err(WireError::Short { .. })));
        assert!(matches!(
            decode(&header(KIND_EXEC)),
            Err(WireError::Short { .. })
        ));
        assert_eq!(
            decode(&header(77)),
            Err(WireError::UnknownKind { kind: 77 })
        );
    }

    #[test]
    fn connect_record_decodes_ipv6_and_port() {
        let mut b = header(KIND_CONNECT);
        b.extend_from_slice(&AF_INET6.to_le_bytes());
        b.extend_from_slice(&443u16.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes()); // SOCK_DGRAM
        b.extend_from_slice(&1u32.to_le_bytes()); // blocked
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let Event::Connect(c) = decode(&b).unwrap() else {
            panic!("not a connect")
        };
        assert_eq!(c.destination, "[::1]:443".parse().unwrap());
        assert!(c.blocked);
        assert!(!c.stream);
    }

    #[test]
    fn policy_masks_addresses_to_their_prefix() {
        let p = encode_policy(
            true,
            &[AllowedDestination {
                addr: "10.1.2.3".parse().unwrap(),
                prefix_len: 12,
                port: Some(53),
            }],
        )
        .unwrap();
        assert_eq!(&p[0..8], &[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&p[8..12], &[2, 0, 53, 0]);
        assert_eq!(&p[16..20], &[10, 0, 0, 0]); // 10.1.2.3/12 → 10.0.0.0
        assert_eq!(&p[32..36], &[0xff, 0xf0, 0, 0]);
        assert_eq!(
            encode_policy(
                false,
                &[AllowedDestination {
                    addr: "::1".parse().unwrap(),
                    prefix_len: 129,
                    port: None
                }]
            ),
            Err(PolicyError::Prefix {
                addr: "::1".parse().unwrap(),
                prefix_len: 129,
                max: 128
            })
        );
        let too_many = vec![AllowedDestination::exact("127.0.0.1:1".parse().unwrap()); 33];
        assert!(matches!(
            encode_policy(true, &too_many),
            Err(PolicyError::TooMany { count: 33, .. })
        ));
    }
}
