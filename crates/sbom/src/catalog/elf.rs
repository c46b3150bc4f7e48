//! The little of ELF the binary cataloguers need: a section's bytes by name (32- and 64-bit,
//! either byte order). Every offset is checked against the file.

/// The bytes of the section `name` in the ELF file `data`, if it has one.
pub fn section<'a>(data: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if data.get(..4)? != b"\x7fELF" {
        return None;
    }
    let is64 = match data.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match data.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let num = |at: usize, len: usize| -> Option<u64> {
        let b = data.get(at..at.checked_add(len)?)?;
        Some(if le {
            b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x))
        } else {
            b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
        })
    };
    let word = if is64 { 8 } else { 4 };
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (num(0x28, 8)?, num(0x3a, 2)?, num(0x3c, 2)?, num(0x3e, 2)?)
    } else {
        (num(0x20, 4)?, num(0x2e, 2)?, num(0x30, 2)?, num(0x32, 2)?)
    };
    let shoff = usize::try_from(shoff).ok()?;
    let shentsize = usize::try_from(shentsize).ok()?;
    if shentsize < if is64 { 64 } else { 40 } {
        return None;
    }
    // (name offset, file offset, size) of section i
    let header = |i: u64| -> Option<(u64, usize, usize)> {
        let at = shoff.checked_add(usize::try_from(i).ok()?.checked_mul(shentsize)?)?;
        let name = num(at, 4)?;
        let (off, size) = (num(at + 8 + 2 * word, word)?, num(at + 8 + 3 * word, word)?);
        Some((
            name,
            usize::try_from(off).ok()?,
            usize::try_from(size).ok()?,
        ))
    };
    let bytes = |off: usize, size: usize| data.get(off..off.checked_add(size)?);
    let (_, stroff, strsize) = header(shstrndx)?;
    let strtab = bytes(stroff, strsize)?;
    for i in 0..shnum {
        let Some((n, off, size)) = header(i) else {
            continue;
        };
        let Some(s) = strtab.get(usize::try_from(n).ok()?..) else {
            continue;
        };
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        if &s[..end] == name.as_bytes() {
            return bytes(off, size);
        }
    }
    None
}
