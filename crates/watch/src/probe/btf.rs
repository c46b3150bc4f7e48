//! The layout of overlayfs' `struct ovl_inode` (where its `vfs_inode` and `__upperdentry` are),
//! read from the kernel's BTF: in `/sys/kernel/btf/vmlinux` when overlayfs is built in, in the
//! module's split BTF (`/sys/kernel/btf/overlay`, whose type and string numbers continue
//! vmlinux's) when it is a module, as on Debian's kernels. The exec probe gets the two offsets
//! as constants: CO-RE relocates against vmlinux only, and a program whose relocation found no
//! `ovl_inode` would be refused on every kernel with overlayfs as a module.
//!
//! Format: the kernel's Documentation/bpf/btf.rst (header, type records, string section).

/// Byte offsets of `vfs_inode` and `__upperdentry` in `struct ovl_inode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OvlLayout {
    pub vfs_inode: u32,
    pub upper_dentry: u32,
}

/// A BTF blob that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed BTF: {what} at byte {at}")]
pub struct BtfFormatError {
    pub what: &'static str,
    pub at: usize,
}

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;

fn u16_at(b: &[u8], at: usize) -> Result<u16, BtfFormatError> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(BtfFormatError {
            what: "truncated",
            at,
        })
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfFormatError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(BtfFormatError {
            what: "truncated",
            at,
        })
}

struct Sections<'a> {
    types: &'a [u8],
    types_at: usize,
    strings: &'a [u8],
}

fn sections(b: &[u8]) -> Result<Sections<'_>, BtfFormatError> {
    if u16_at(b, 0)? != MAGIC {
        return Err(BtfFormatError {
            what: "bad magic (not little-endian BTF)",
            at: 0,
        });
    }
    let hdr_len = u32_at(b, 4)? as usize;
    let type_off = u32_at(b, 8)? as usize;
    let type_len = u32_at(b, 12)? as usize;
    let str_off = u32_at(b, 16)? as usize;
    let str_len = u32_at(b, 20)? as usize;
    let section = |off: usize, len: usize, what: &'static str| {
        let start = hdr_len.checked_add(off);
        let end = start.and_then(|s| s.checked_add(len));
        match (start, end) {
            (Some(s), Some(e)) if e <= b.len() => Ok((s, &b[s..e])),
            _ => Err(BtfFormatError { what, at: 8 }),
        }
    };
    let (types_at, types) = section(type_off, type_len, "type section out of bounds")?;
    let (_, strings) = section(str_off, str_len, "string section out of bounds")?;
    Ok(Sections {
        types,
        types_at,
        strings,
    })
}

/// The string at `off`: in the base's section below its length, in the blob's own above
/// (split BTF numbers its strings after the base's).
fn name<'a>(off: u32, own: &'a [u8], base: Option<&'a [u8]>) -> &'a [u8] {
    let off = off as usize;
    let (section, off) = match base {
        Some(base) if off < base.len() => (base, off),
        Some(base) => (own, off - base.len()),
        None => (own, off),
    };
    let s = section.get(off..).unwrap_or_default();
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// Bytes of kind-specific data after a type record's 12 bytes (btf.rst, "Type Encoding").
fn extra_len(kind: u32, vlen: usize, at: usize) -> Result<usize, BtfFormatError> {
    Ok(match kind {
        1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
        3 => 12,                      // ARRAY
        4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
        6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
        2 | 7..=12 | 16 | 18 => 0,    // PTR, FWD, TYPEDEF…FUNC, FLOAT, TYPE_TAG
        _ => {
            return Err(BtfFormatError {
                what: "unknown type kind",
                at,
            });
        }
    })
}

/// `struct ovl_inode`'s layout in `btf` (split on `base` when given: the vmlinux BTF), or
/// `None` when the blob has no such struct.
pub fn ovl_layout(btf: &[u8], base: Option<&[u8]>) -> Result<Option<OvlLayout>, BtfFormatError> {
    let own = sections(btf)?;
    let base_strings = match base {
        Some(b) => Some(sections(b)?.strings),
        None => None,
    };
    let t = own.types;
    let mut at = 0;
    while at < t.len() {
        let name_off = u32_at(t, at)?;
        let info = u32_at(t, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let bitfield_offsets = info >> 31 == 1;
        let extra = extra_len(kind, vlen, own.types_at + at)?;
        if kind == KIND_STRUCT
            && vlen > 0
            && name(name_off, own.strings, base_strings) == b"ovl_inode"
        {
            let (mut vfs_inode, mut upper_dentry) = (None, None);
            for m in 0..vlen {
                let m_at = at + 12 + 12 * m;
                let member = name(u32_at(t, m_at)?, own.strings, base_strings);
                let mut bits = u32_at(t, m_at + 8)?;
                if bitfield_offsets {
                    bits &= 0xff_ffff;
                }
                match member {
                    b"vfs_inode" => vfs_inode = Some(bits / 8),
                    b"__upperdentry" => upper_dentry = Some(bits / 8),
                    _ => {}
                }
            }
            return match (vfs_inode, upper_dentry) {
                (Some(vfs_inode), Some(upper_dentry)) => Ok(Some(OvlLayout {
                    vfs_inode,
                    upper_dentry,
                })),
                _ => Err(BtfFormatError {
                    what: "struct ovl_inode without vfs_inode or __upperdentry",
                    at: own.types_at + at,
                }),
            };
        }
        at += 12 + extra;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: header, types, strings.
    fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
        b.extend_from_slice(&0u32.to_le_bytes()); // type_off
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes()); // str_off
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend_from_slice(types);
        b.extend_from_slice(strings);
        b
    }

    fn record(name_off: u32, kind: u32, vlen: u32, size: u32) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&name_off.to_le_bytes());
        r.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
        r.extend_from_slice(&size.to_le_bytes());
        r
    }

    fn member(name_off: u32, bits: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&name_off.to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&bits.to_le_bytes());
        m
    }

    #[test]
    fn split_btf_names_come_from_the_base_and_the_module() {
        // base strings: "\0vfs_inode\0" (vfs_inode at 1); module strings continue at 11:
        // "\0ovl_inode\0__upperdentry\0" → ovl_inode at 12, __upperdentry at 22
        let mut base_types = record(0, 1, 0, 4);
        base_types.extend_from_slice(&[0, 0, 0, 32]);
        let base = blob(&base_types, b"\0vfs_inode\0");
        let mut types = record(0, 1, 0, 4); // an INT and its 4 bytes
        types.extend_from_slice(&[0, 0, 0, 32]);
        types.extend(record(0, 13, 2, 0)); // a FUNC_PROTO with two params
        types.extend_from_slice(&[0; 16]);
        types.extend(record(12, 4, 2, 696)); // struct ovl_inode
        types.extend(member(1, 256)); // vfs_inode at bit 256
        types.extend(member(22, 5184)); // __upperdentry at bit 5184
        let module = blob(&types, b"\0ovl_inode\0__upperdentry\0");
        assert_eq!(
            ovl_layout(&module, Some(&base)).unwrap(),
            Some(OvlLayout {
                vfs_inode: 32,
                upper_dentry: 648
            })
        );
        // without the base the names do not resolve
        assert_eq!(ovl_layout(&module, None).unwrap(), None);
    }

    #[test]
    fn malformed_btf_is_an_error_not_a_panic() {
        assert!(ovl_layout(b"", None).is_err());
        assert!(ovl_layout(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0], None).is_err());
        let mut huge = blob(&[], b"\0");
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ovl_layout(&huge, None).is_err());
        let bad_kind = blob(&record(0, 31, 0, 0), b"\0");
        assert_eq!(
            ovl_layout(&bad_kind, None).unwrap_err().what,
            "unknown type kind"
        );
        let cut = blob(&record(1, 4, 3, 8), b"\0ovl_inode\0");
        assert!(ovl_layout(&cut, None).is_err());
    }

    /// This machine's kernel BTF (overlayfs built in here): the offsets bpftool shows for
    /// `struct ovl_inode` on the machines this was written on (6.18: 32 and 648), or, on
    /// another kernel, a layout where the dentry pointer follows the inode.
    #[test]
    fn the_running_kernel_s_ovl_inode_is_found() {
        let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux")
            .expect("/sys/kernel/btf/vmlinux: the probes need a kernel with BTF");
        let layout = match ovl_layout(&vmlinux, None).unwrap() {
            Some(l) => l,
            None => {
                let module = std::fs::read("/sys/kernel/btf/overlay")
                    .expect("no ovl_inode in vmlinux and no overlay module BTF: modprobe overlay");
                ovl_layout(&module, Some(&vmlinux)).unwrap().unwrap()
            }
        };
        assert!(layout.upper_dentry > layout.vfs_inode, "{layout:?}");
        assert_eq!(layout.upper_dentry % 8, 0, "{layout:?}");
    }
}
