//! A small zip reader for jars: the central directory (APPNOTE.TXT 4.3.12, 4.3.16) and
//! entries stored (method 0) or deflated (method 8), inflated through flate2 with a size
//! bound. No zip64, no encryption: such entries are skipped.

use std::io::Read;

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    method: u16,
    compressed: usize,
    uncompressed: u64,
    local_header: usize,
}

fn le(b: &[u8], at: usize, len: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(len)?)?;
    Some(s.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
}

/// The entries of the archive `data`, or `None` when it is not a readable zip.
pub fn entries(data: &[u8]) -> Option<Vec<ZipEntry>> {
    // the end of central directory record: 22 bytes and a comment of up to 64 KiB
    let min = data.len().saturating_sub(22 + 65535);
    let eocd = (min..=data.len().checked_sub(22)?)
        .rev()
        .find(|&i| data.get(i..i + 4) == Some(b"PK\x05\x06"))?;
    let count = le(data, eocd + 10, 2)? as usize;
    let mut at = usize::try_from(le(data, eocd + 16, 4)?).ok()?;
    let mut out = Vec::with_capacity(count.min(65536));
    for _ in 0..count {
        if data.get(at..at + 4)? != b"PK\x01\x02" {
            return None;
        }
        let method = le(data, at + 10, 2)? as u16;
        let compressed = usize::try_from(le(data, at + 20, 4)?).ok()?;
        let uncompressed = le(data, at + 24, 4)?;
        let name_len = le(data, at + 28, 2)? as usize;
        let extra_len = le(data, at + 30, 2)? as usize;
        let comment_len = le(data, at + 32, 2)? as usize;
        let local_header = usize::try_from(le(data, at + 42, 4)?).ok()?;
        let name = data.get(at + 46..at + 46 + name_len)?;
        out.push(ZipEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            compressed,
            uncompressed,
            local_header,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(out)
}

/// The contents of `e`, if at most `max` bytes, stored or deflated.
pub fn read(data: &[u8], e: &ZipEntry, max: u64) -> Option<Vec<u8>> {
    if e.uncompressed > max {
        return None;
    }
    let h = e.local_header;
    if data.get(h..h + 4)? != b"PK\x03\x04" {
        return None;
    }
    let start = h + 30 + le(data, h + 26, 2)? as usize + le(data, h + 28, 2)? as usize;
    let raw = data.get(start..start.checked_add(e.compressed)?)?;
    match e.method {
        0 => Some(raw.to_vec()),
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(raw)
                .take(max + 1)
                .read_to_end(&mut out)
                .ok()?;
            (out.len() as u64 <= max).then_some(out)
        }
        _ => None,
    }
}
