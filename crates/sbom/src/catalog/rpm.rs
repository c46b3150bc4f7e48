//! rpm's database: `rpmdb.sqlite` (rpm ≥ 4.16: Fedora ≥ 33, RHEL ≥ 9, openSUSE), its
//! `Packages` table's `blob` column holding one rpm header per package.
//!
//! Header format (rpm's `lib/header.c`, "Package header structure" in the rpm file format
//! documentation): `il` index entries and `dl` bytes of data, both big-endian 32-bit counts,
//! then `il` entries of (tag, type, offset, count), then the data store. Only the tags berth
//! reports are read. Berkeley DB (`Packages`) and NDB (`Packages.db`) databases are reported
//! as unsupported.

use super::sqlite::{Database, Value};
use super::{osrelease, package};
use crate::package::{Distro, Ecosystem, Package, Purl, SourcePackage};

const SQLITE_PATHS: [&str; 2] = [
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];

pub fn is_sqlite(path: &str) -> bool {
    SQLITE_PATHS.contains(&path)
}

/// Why an rpm database at `path` is not read, when it is one berth does not read.
pub fn unsupported_database(path: &str) -> Option<&'static str> {
    let dir = ["/var/lib/rpm/", "/usr/lib/sysimage/rpm/"]
        .iter()
        .find_map(|d| path.strip_prefix(d))?;
    match dir {
        "Packages" => Some(
            "rpm Berkeley DB database (Packages): unsupported, berth reads only rpmdb.sqlite (rpm >= 4.16); packages installed by rpm are not reported",
        ),
        "Packages.db" => Some(
            "rpm NDB database (Packages.db, SUSE): unsupported, berth reads only rpmdb.sqlite (rpm >= 4.16); packages installed by rpm are not reported",
        ),
        _ => None,
    }
}

/// The tags berth reads from a header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: String,
    pub license: String,
    pub source_rpm: String,
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// A header blob as rpmdb stores it (no lead, no magic), or why it cannot be read.
pub fn parse_header(blob: &[u8]) -> Result<Header, &'static str> {
    let il = u32_at(blob, 0).ok_or("header shorter than 8 bytes")? as usize;
    let dl = u32_at(blob, 4).ok_or("header shorter than 8 bytes")? as usize;
    let store_at = il
        .checked_mul(16)
        .and_then(|n| n.checked_add(8))
        .ok_or("index count overflows")?;
    let store = blob
        .get(store_at..store_at.checked_add(dl).ok_or("data length overflows")?)
        .ok_or("index or data store past the end of the header")?;
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let (Some(tag), Some(ty), Some(off), Some(count)) = (
            u32_at(blob, e),
            u32_at(blob, e + 4),
            u32_at(blob, e + 8),
            u32_at(blob, e + 12),
        ) else {
            return Err("index entry past the end");
        };
        let off = off as usize;
        let string = || -> Result<String, &'static str> {
            let s = store
                .get(off..)
                .ok_or("string offset past the data store")?;
            let end = s
                .iter()
                .position(|&b| b == 0)
                .ok_or("string without its NUL")?;
            Ok(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        let is_string = ty == TYPE_STRING || ty == TYPE_I18NSTRING;
        match tag {
            TAG_NAME | TAG_VERSION | TAG_RELEASE | TAG_LICENSE | TAG_ARCH | TAG_SOURCERPM
                if is_string =>
            {
                let v = string()?;
                match tag {
                    TAG_NAME => h.name = v,
                    TAG_VERSION => h.version = v,
                    TAG_RELEASE => h.release = v,
                    TAG_LICENSE => h.license = v,
                    TAG_ARCH => h.arch = v,
                    _ => h.source_rpm = v,
                }
            }
            TAG_EPOCH if ty == TYPE_INT32 && count >= 1 => {
                h.epoch = Some(u32_at(store, off).ok_or("epoch past the data store")?);
            }
            _ => {}
        }
    }
    if h.name.is_empty() {
        return Err("header without a NAME tag");
    }
    Ok(h)
}

/// The purl syft writes for an rpm package.
pub fn purl(h: &Header, distro: Option<&Distro>) -> Purl {
    let mut p = Purl::new(
        "rpm",
        distro.map(|d| d.id.as_str()),
        &h.name,
        &format!("{}-{}", h.version, h.release),
    )
    .qualifier("arch", &h.arch)
    .qualifier("upstream", &h.source_rpm);
    if let Some(e) = h.epoch {
        p = p.qualifier("epoch", &e.to_string());
    }
    if let Some(d) = distro {
        p = p.qualifier("distro", &osrelease::purl_qualifier(d));
    }
    p
}

/// The headers in an `rpmdb.sqlite` file.
pub fn parse_sqlite(data: &[u8]) -> Result<Vec<Result<Header, &'static str>>, String> {
    let db = Database::open(data).map_err(|e| format!("rpmdb.sqlite: {e}"))?;
    let root = db
        .table_root("Packages")
        .map_err(|e| format!("rpmdb.sqlite: {e}"))?;
    let rows = db.scan(root).map_err(|e| format!("rpmdb.sqlite: {e}"))?;
    Ok(rows
        .into_iter()
        .map(|row| match row.get(1) {
            Some(Value::Blob(b)) => parse_header(b),
            _ => Err("Packages row without a blob"),
        })
        .collect())
}

pub fn catalog(data: &[u8], distro: Option<&Distro>) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    for h in parse_sqlite(data)? {
        let h = h.map_err(|e| format!("rpmdb.sqlite: corrupt rpm header: {e}"))?;
        // gpg-pubkey "packages" are imported signing keys, not software (syft skips them too)
        if h.name == "gpg-pubkey" {
            continue;
        }
        let vr = format!("{}-{}", h.version, h.release);
        let version = match h.epoch {
            Some(e) => format!("{e}:{vr}"),
            None => vr,
        };
        let mut p = package(Ecosystem::Rpm, &h.name, &version, purl(&h, distro), "rpm");
        if !h.license.is_empty() {
            p.licenses = vec![h.license.clone()];
        }
        if let Some(src) = source_package(&h.source_rpm) {
            p.source = Some(src);
        }
        out.push(p);
    }
    Ok(out)
}

/// `openssl-3.0.7-27.el9.src.rpm` → (`openssl`, `3.0.7-27.el9`).
fn source_package(srpm: &str) -> Option<SourcePackage> {
    let base = srpm.strip_suffix(".rpm")?;
    let base = base.rsplit_once('.').map(|(b, _arch)| b)?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some(SourcePackage {
        name: name.to_owned(),
        version: format!("{version}-{release}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        let s = source_package("openssl-3.0.7-27.el9.src.rpm").unwrap();
        assert_eq!(
            (s.name.as_str(), s.version.as_str()),
            ("openssl", "3.0.7-27.el9")
        );
        assert!(source_package("x").is_none());
    }

    #[test]
    fn short_headers_are_errors() {
        assert!(parse_header(&[]).is_err());
        assert!(parse_header(&[0, 0, 0, 1, 0, 0, 0, 0]).is_err());
        assert!(parse_header(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
