//! A raw tar writer for test layers: it writes exactly the bytes asked for, hostile names
//! included (the `tar` crate's builder refuses `..` and absolute names, as it should).

use std::io::Write;

pub const REG: u8 = b'0';
pub const LNK: u8 = b'1';
pub const SYM: u8 = b'2';
pub const CHR: u8 = b'3';
pub const BLK: u8 = b'4';
pub const DIR: u8 = b'5';
pub const FIFO: u8 = b'6';

/// One entry's header fields.
#[derive(Debug, Clone)]
pub struct Hdr<'a> {
    pub name: &'a [u8],
    pub typ: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub link: &'a [u8],
    pub dev: (u32, u32),
    /// PAX records for this entry (written as an `x` header before it).
    pub pax: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'a> Hdr<'a> {
    pub fn new(name: &'a [u8], typ: u8) -> Hdr<'a> {
        Hdr {
            name,
            typ,
            mode: if typ == DIR { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: b"",
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
}

/// A tar stream being built.
#[derive(Debug, Default)]
pub struct Tar {
    pub buf: Vec<u8>,
}

fn octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    field[..w].copy_from_slice(&s.as_bytes()[s.len() - w..]);
    field[w] = 0;
}

fn raw_header(name: &[u8], typ: u8, size: u64, h: &Hdr<'_>) -> [u8; 512] {
    let mut b = [0u8; 512];
    let n = name.len().min(100);
    b[..n].copy_from_slice(&name[..n]);
    octal(&mut b[100..108], u64::from(h.mode));
    octal(&mut b[108..116], u64::from(h.uid));
    octal(&mut b[116..124], u64::from(h.gid));
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], h.mtime);
    b[156] = typ;
    let l = h.link.len().min(100);
    b[157..157 + l].copy_from_slice(&h.link[..l]);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], u64::from(h.dev.0));
    octal(&mut b[337..345], u64::from(h.dev.1));
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|x| u64::from(*x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
    b
}

fn pad(buf: &mut Vec<u8>) {
    let r = buf.len() % 512;
    if r != 0 {
        buf.resize(buf.len() + 512 - r, 0);
    }
}

fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// A whole entry: PAX header if any, the header, the data.
    pub fn add(&mut self, h: Hdr<'_>, data: &[u8]) -> &mut Tar {
        if !h.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &h.pax {
                body.extend(pax_record(k, v));
            }
            let ph = raw_header(
                b"PaxHeaders/x",
                b'x',
                body.len() as u64,
                &Hdr::new(b"", b'x'),
            );
            self.buf.extend_from_slice(&ph);
            self.buf.extend_from_slice(&body);
            pad(&mut self.buf);
        }
        let hdr = raw_header(h.name, h.typ, data.len() as u64, &h);
        self.buf.extend_from_slice(&hdr);
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    /// A GNU long-name (`L`) header for the next entry, with `len` bytes of name.
    pub fn gnu_longname(&mut self, name: &[u8]) -> &mut Tar {
        let h = Hdr::new(b"././@LongLink", b'L');
        let mut data = name.to_vec();
        data.push(0);
        let hdr = raw_header(b"././@LongLink", b'L', data.len() as u64, &h);
        self.buf.extend_from_slice(&hdr);
        self.buf.extend_from_slice(&data);
        pad(&mut self.buf);
        self
    }

    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Tar {
        self.add(Hdr::new(name, REG), data)
    }
    pub fn dir(&mut self, name: &[u8]) -> &mut Tar {
        self.add(Hdr::new(name, DIR), b"")
    }
    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Tar {
        let mut h = Hdr::new(name, SYM);
        h.link = target;
        self.add(h, b"")
    }
    pub fn hardlink(&mut self, name: &[u8], target: &[u8]) -> &mut Tar {
        let mut h = Hdr::new(name, LNK);
        h.link = target;
        self.add(h, b"")
    }

    /// The stream with its end-of-archive marker (two zero blocks).
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024, 0);
        out
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).unwrap()
}
