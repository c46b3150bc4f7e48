//! A reader for the zip archives berth reads: the exports osv.dev publishes
//! (`<ecosystem>/all.zip`) and Java archives in image layers (jars, wars, ears, and jars
//! nested in them). The central directory (zip64 included: the Debian export has more than
//! 65 535 entries), stored and deflated entries, CRC-32 checked. APPNOTE.TXT 6.3.10,
//! sections 4.3 and 4.5.
//!
//! berth's own rather than the `zip` crate: these ~250 lines need only `flate2`, already in
//! the workspace (the zlib-rs backend), where `zip` brings its own tree of optional
//! compressors, `indexmap`, `crc32fast` and `zopfli` to trim with feature flags, and reads
//! much more than the two methods an export uses.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::DeflateDecoder;

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("failed to read zip archive {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a zip archive berth reads: {problem}")]
    Format { path: PathBuf, problem: String },
    #[error("zip archive {path}: entry {entry}: {problem}")]
    Entry {
        path: PathBuf,
        entry: String,
        problem: String,
    },
}

/// One file in the archive, as its central directory describes it.
#[derive(Debug, Clone)]
pub struct ZipEntry {
    pub name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    pub size: u64,
    local_offset: u64,
}

/// A zip archive being read: a file ([`ZipReader::open`]) or any seekable reader
/// ([`ZipReader::new`]).
#[derive(Debug)]
pub struct ZipReader<R = File> {
    file: R,
    path: PathBuf,
    len: u64,
    entries: Vec<ZipEntry>,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64le(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

impl ZipReader<File> {
    pub fn open(path: &Path) -> Result<ZipReader<File>, ZipError> {
        let file = File::open(path).map_err(|source| ZipError::Io {
            path: path.to_owned(),
            source,
        })?;
        ZipReader::new(file, path)
    }
}

impl<R: Read + Seek> ZipReader<R> {
    /// Read the central directory of the archive `file`; `path` names it in errors.
    pub fn new(mut file: R, path: &Path) -> Result<ZipReader<R>, ZipError> {
        let io_err = |source| ZipError::Io {
            path: path.to_owned(),
            source,
        };
        let bad = |problem: &str| ZipError::Format {
            path: path.to_owned(),
            problem: problem.to_owned(),
        };
        let len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
        // The end of central directory record: 22 bytes plus a comment of up to 65 535.
        let tail_len = len.min(22 + 65_535);
        let tail = read_at(&mut file, len - tail_len, tail_len as usize).map_err(io_err)?;
        let eocd = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| u32le(&tail, i) == EOCD_SIG)
            .ok_or_else(|| bad("no end of central directory record"))?;
        let e = &tail[eocd..];
        let mut count = u64::from(u16le(e, 10));
        let mut cd_size = u64::from(u32le(e, 12));
        let mut cd_offset = u64::from(u32le(e, 16));
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            // zip64: the locator sits just before the end record
            let eocd_abs = len - tail_len + eocd as u64;
            if eocd_abs < 20 {
                return Err(bad("zip64 locator missing"));
            }
            let loc = read_at(&mut file, eocd_abs - 20, 20).map_err(io_err)?;
            if u32le(&loc, 0) != ZIP64_LOCATOR_SIG {
                return Err(bad("zip64 locator missing"));
            }
            let z64_at = u64le(&loc, 8);
            if z64_at.checked_add(56).is_none_or(|end| end > len) {
                return Err(bad("zip64 end record out of range"));
            }
            let z = read_at(&mut file, z64_at, 56).map_err(io_err)?;
            if u32le(&z, 0) != ZIP64_EOCD_SIG {
                return Err(bad("zip64 end record has a bad signature"));
            }
            count = u64le(&z, 32);
            cd_size = u64le(&z, 40);
            cd_offset = u64le(&z, 48);
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) {
            return Err(bad("central directory lies outside the file"));
        }
        // each central header is at least 46 bytes: a bound on the count before allocating
        if count > cd_size / 46 + 1 {
            return Err(bad("entry count larger than the central directory holds"));
        }
        let cd = read_at(&mut file, cd_offset, cd_size as usize).map_err(io_err)?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut at = 0usize;
        for _ in 0..count {
            if at + 46 > cd.len() || u32le(&cd, at) != CENTRAL_SIG {
                return Err(bad("truncated or corrupt central directory"));
            }
            let flags = u16le(&cd, at + 8);
            let method = u16le(&cd, at + 10);
            let crc = u32le(&cd, at + 16);
            let mut compressed = u64::from(u32le(&cd, at + 20));
            let mut size = u64::from(u32le(&cd, at + 24));
            let name_len = usize::from(u16le(&cd, at + 28));
            let extra_len = usize::from(u16le(&cd, at + 30));
            let comment_len = usize::from(u16le(&cd, at + 32));
            let mut local_offset = u64::from(u32le(&cd, at + 42));
            let name_end = at + 46 + name_len;
            let extra_end = name_end + extra_len;
            if extra_end + comment_len > cd.len() {
                return Err(bad("truncated central directory entry"));
            }
            let name = String::from_utf8_lossy(&cd[at + 46..name_end]).into_owned();
            // zip64 extended information: only the fields saturated above, in this order
            let mut x = name_end;
            while x + 4 <= extra_end {
                let id = u16le(&cd, x);
                let n = usize::from(u16le(&cd, x + 2));
                let body_end = (x + 4 + n).min(extra_end);
                if id == 0x0001 {
                    let mut p = x + 4;
                    for field in [&mut size, &mut compressed, &mut local_offset] {
                        if *field == 0xFFFF_FFFF && p + 8 <= body_end {
                            *field = u64le(&cd, p);
                            p += 8;
                        }
                    }
                }
                x = x + 4 + n;
            }
            entries.push(ZipEntry {
                name,
                method,
                flags,
                crc,
                compressed,
                size,
                local_offset,
            });
            at = extra_end + comment_len;
        }
        Ok(ZipReader {
            file,
            path: path.to_owned(),
            len,
            entries,
        })
    }

    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// The contents of entry `index`, at most `limit` bytes (larger entries are refused
    /// before inflating, and an entry that inflates past its declared size is refused).
    pub fn read(&mut self, index: usize, limit: u64) -> Result<Vec<u8>, ZipError> {
        let path = self.path.clone();
        let Some(e) = self.entries.get(index).cloned() else {
            return Err(ZipError::Format {
                path,
                problem: format!("no entry {index}"),
            });
        };
        let bad = |problem: String| ZipError::Entry {
            path: path.clone(),
            entry: e.name.clone(),
            problem,
        };
        let io_err = |source| ZipError::Io {
            path: path.clone(),
            source,
        };
        if e.flags & 1 != 0 {
            return Err(bad("encrypted".into()));
        }
        if e.size > limit {
            return Err(bad(format!(
                "{} bytes is larger than the {limit}-byte limit",
                e.size
            )));
        }
        if e.local_offset
            .checked_add(30)
            .is_none_or(|end| end > self.len)
        {
            return Err(bad("local header lies outside the file".into()));
        }
        let local = read_at(&mut self.file, e.local_offset, 30).map_err(io_err)?;
        if u32le(&local, 0) != LOCAL_SIG {
            return Err(bad("local header has a bad signature".into()));
        }
        let data_at =
            e.local_offset + 30 + u64::from(u16le(&local, 26)) + u64::from(u16le(&local, 28));
        if data_at
            .checked_add(e.compressed)
            .is_none_or(|end| end > self.len)
        {
            return Err(bad("data lies outside the file".into()));
        }
        self.file.seek(SeekFrom::Start(data_at)).map_err(io_err)?;
        let raw = (&mut self.file).take(e.compressed);
        let mut out = Vec::with_capacity(e.size as usize);
        match e.method {
            0 => {
                raw.take(e.size + 1).read_to_end(&mut out).map_err(io_err)?;
            }
            8 => {
                DeflateDecoder::new(raw)
                    .take(e.size + 1)
                    .read_to_end(&mut out)
                    .map_err(|err| bad(format!("bad deflate stream: {err}")))?;
            }
            m => {
                return Err(bad(format!(
                    "compression method {m} (only stored and deflate are read)"
                )));
            }
        }
        if out.len() as u64 != e.size {
            return Err(bad(format!(
                "{} bytes where the directory says {}",
                out.len(),
                e.size
            )));
        }
        if crc32(&out) != e.crc {
            return Err(bad("CRC-32 mismatch".into()));
        }
        Ok(out)
    }
}

fn read_at(file: &mut (impl Read + Seek), at: u64, len: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3, reflected), as zip uses.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_check_value() {
        // the CRC-32 check value of "123456789" (Williams, "A painless guide", 1993)
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
