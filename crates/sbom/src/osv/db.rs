//! Importing osv.dev exports into the local database, and reading it back per package.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use berth_fsutil::{AtomicFile, FileLock, FsError};
use berth_oci::timefmt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::osv::layout::{self, FORMAT_VERSION, MAGIC, TRAILER_LEN};
use crate::osv::record::{MAX_RECORD_BYTES, Record, RecordError, ecosystem_base};
use crate::osv::view::RecordView;
use crate::zip::{ZipError, ZipReader};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no OSV database in {dir}\nhint: import an osv.dev export first (e.g. Debian/all.zip)")]
    Missing { dir: PathBuf },
    #[error("failed to read the OSV database {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the OSV database {path} is corrupt: {problem}\nhint: delete it and import the exports again"
    )]
    Corrupt { path: PathBuf, problem: String },
    #[error("failed to lock {path} for an import")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read the OSV export {path}")]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the OSV export {path} holds no records with an affected package")]
    EmptySource { path: PathBuf },
    #[error("failed to read the OSV export")]
    Zip(#[from] ZipError),
    #[error("refused the OSV export: a record is malformed (the database is unchanged)")]
    Record(#[from] RecordError),
    #[error("failed to write the OSV database in {dir} (the previous one is unchanged)")]
    Write {
        dir: PathBuf,
        #[source]
        source: FsError,
    },
    #[error("failed to write the OSV database in {dir} (the previous one is unchanged)")]
    WriteIo {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What the database holds: written into it by each import, shown by every report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format_version: u32,
    /// When the database file was built (RFC 3339).
    pub built: String,
    /// The newest `modified` of any record in it: how fresh the data is.
    pub newest_modified: Option<String>,
    pub exports: Vec<ExportMeta>,
}

/// One imported export (one ecosystem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMeta {
    /// The OSV ecosystem most of its records' affected packages name (`Debian`): importing
    /// an export of the same ecosystem replaces it.
    pub ecosystem: String,
    /// Where it was imported from.
    pub source: String,
    pub imported: String,
    pub records: u64,
    pub newest_modified: Option<String>,
    /// Its records' bytes in the file.
    pub data_offset: u64,
    pub data_len: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub source: PathBuf,
    pub ecosystem: String,
    /// Records stored.
    pub records: u64,
    /// Withdrawn records, left out.
    pub withdrawn: u64,
    /// Records whose id appeared before in the same export, left out.
    pub duplicates: u64,
    /// Records with no affected package (nothing to match), left out.
    pub unmatched: u64,
    /// The export that was replaced, if this ecosystem had been imported before.
    pub replaced: Option<ExportMeta>,
    /// The database as it is now.
    pub meta: Meta,
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

/// An open database: the trailer, meta and index in memory, records read on demand. The
/// open file stays the one read even if an import replaces it meanwhile.
#[derive(Debug)]
pub struct Database {
    file: File,
    path: PathBuf,
    meta: Meta,
    index: Vec<u8>,
    n_keys: usize,
    n_refs: usize,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// One record's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ref {
    offset: u64,
    len: u32,
}

impl Database {
    /// Open the database in `db_dir`.
    pub fn open(db_dir: &Path) -> Result<Database, DbError> {
        let path = layout::db_file(db_dir);
        match File::open(&path) {
            Ok(file) => Database::from_file(file, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DbError::Missing {
                dir: db_dir.to_owned(),
            }),
            Err(source) => Err(DbError::Read { path, source }),
        }
    }

    fn from_file(file: File, path: PathBuf) -> Result<Database, DbError> {
        let corrupt = |problem: &str| DbError::Corrupt {
            path: path.clone(),
            problem: problem.to_owned(),
        };
        let read_err = |source| DbError::Read {
            path: path.clone(),
            source,
        };
        let len = file.metadata().map_err(read_err)?.len();
        if len < TRAILER_LEN as u64 {
            return Err(corrupt("shorter than its trailer"));
        }
        let mut trailer = [0u8; TRAILER_LEN];
        file.read_exact_at(&mut trailer, len - TRAILER_LEN as u64)
            .map_err(read_err)?;
        if &trailer[..8] != MAGIC {
            return Err(corrupt("no BERTHOSV trailer"));
        }
        let version = u32_at(&trailer, 8).unwrap_or(0);
        if version != FORMAT_VERSION {
            return Err(corrupt(&format!(
                "format version {version}, this berth reads {FORMAT_VERSION}"
            )));
        }
        let field = |at| u64_at(&trailer, at).unwrap_or(u64::MAX);
        let (index_off, index_len, meta_off, meta_len) =
            (field(16), field(24), field(32), field(40));
        let body = len - TRAILER_LEN as u64;
        let within = |off: u64, n: u64| off.checked_add(n).is_some_and(|end| end <= body);
        if !within(index_off, index_len) || !within(meta_off, meta_len) {
            return Err(corrupt("index or meta lies outside the file"));
        }
        let mut meta_bytes = vec![0u8; meta_len as usize];
        file.read_exact_at(&mut meta_bytes, meta_off)
            .map_err(read_err)?;
        let meta: Meta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| corrupt(&format!("meta is not valid: {e}")))?;
        let mut index = vec![0u8; index_len as usize];
        file.read_exact_at(&mut index, index_off)
            .map_err(read_err)?;
        let n_keys = u32_at(&index, 0).ok_or_else(|| corrupt("index too short"))? as usize;
        let n_refs = u32_at(&index, 4).ok_or_else(|| corrupt("index too short"))? as usize;
        let keys_at = 8 + n_keys * 16 + n_refs * 12;
        if keys_at > index.len() {
            return Err(corrupt("index tables larger than the index"));
        }
        let db = Database {
            file,
            path,
            meta,
            index,
            n_keys,
            n_refs,
        };
        // every entry's key and refs must lie inside the index
        for i in 0..n_keys {
            db.entry(i)?;
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The number of distinct (ecosystem, package) keys.
    pub fn package_count(&self) -> usize {
        self.n_keys
    }

    fn keys_at(&self) -> usize {
        8 + self.n_keys * 16 + self.n_refs * 12
    }

    /// Key bytes and ref range of entry `i`.
    fn entry(&self, i: usize) -> Result<(&[u8], usize, usize), DbError> {
        let corrupt = || DbError::Corrupt {
            path: self.path.clone(),
            problem: format!("index entry {i} is out of range"),
        };
        let at = 8 + i * 16;
        let get = |o| u32_at(&self.index, at + o).map(|v| v as usize);
        let (ko, kl, r0, rn) = (
            get(0).ok_or_else(corrupt)?,
            get(4).ok_or_else(corrupt)?,
            get(8).ok_or_else(corrupt)?,
            get(12).ok_or_else(corrupt)?,
        );
        let start = self.keys_at() + ko;
        let key = self.index.get(start..start + kl).ok_or_else(corrupt)?;
        if r0.checked_add(rn).is_none_or(|end| end > self.n_refs) {
            return Err(corrupt());
        }
        Ok((key, r0, rn))
    }

    fn ref_at(&self, r: usize) -> Ref {
        let at = 8 + self.n_keys * 16 + r * 12;
        Ref {
            offset: u64_at(&self.index, at).unwrap_or(0),
            len: u32_at(&self.index, at + 8).unwrap_or(0),
        }
    }

    fn lookup(&self, key: &[u8]) -> Result<Vec<Ref>, DbError> {
        let (mut lo, mut hi) = (0usize, self.n_keys);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, r0, rn) = self.entry(mid)?;
            match k.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Ok((r0..r0 + rn).map(|r| self.ref_at(r)).collect());
                }
            }
        }
        Ok(Vec::new())
    }

    /// The records whose affected packages include `name` in OSV ecosystem
    /// `ecosystem` (with or without a `:release` suffix; every release's records are
    /// returned, the caller matches releases).
    pub fn records_for(&self, ecosystem: &str, name: &str) -> Result<Vec<Record>, DbError> {
        let key = layout::key(ecosystem_base(ecosystem), name);
        let mut out = Vec::new();
        for r in self.lookup(&key)? {
            let mut buf = vec![0u8; r.len as usize];
            self.file
                .read_exact_at(&mut buf, r.offset)
                .map_err(|source| DbError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            let label = format!("{}@{}", self.path.display(), r.offset);
            let rec = Record::parse(&buf, &label).map_err(|e| DbError::Corrupt {
                path: self.path.clone(),
                problem: e.to_string(),
            })?;
            out.push(rec);
        }
        Ok(out)
    }

    /// What a scan reads: each record of `name` in `ecosystem` (as [`Database::records_for`]
    /// selects them), read into one reused buffer and handed to `f` as a [`RecordView`]
    /// that borrows from it, one at a time: no record outlives its turn, so memory stays
    /// that of the largest record whatever the package's count. (One `pread` per record:
    /// reading several records of a package per call, past the others' between them,
    /// copied twice the bytes for a quarter fewer calls on the busiest bench scan.)
    pub(crate) fn for_each_view<E>(
        &self,
        ecosystem: &str,
        name: &str,
        mut f: impl FnMut(RecordView<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<DbError>,
    {
        let key = layout::key(ecosystem_base(ecosystem), name);
        let mut buf = Vec::new();
        for r in self.lookup(&key)? {
            if r.len as usize > MAX_RECORD_BYTES {
                return Err(DbError::Corrupt {
                    path: self.path.clone(),
                    problem: format!(
                        "the record at byte {} is {} bytes, over the {MAX_RECORD_BYTES}-byte limit",
                        r.offset, r.len
                    ),
                }
                .into());
            }
            buf.resize(r.len as usize, 0);
            self.file
                .read_exact_at(&mut buf, r.offset)
                .map_err(|source| DbError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            let view = RecordView::parse(&buf).map_err(|e| DbError::Corrupt {
                path: self.path.clone(),
                problem: format!("the record at byte {} does not read back: {e}", r.offset),
            })?;
            f(view)?;
        }
        Ok(())
    }

    /// Every key's refs (for merging).
    fn all_refs(&self) -> Result<Vec<(Vec<u8>, Ref)>, DbError> {
        let mut out = Vec::with_capacity(self.n_refs);
        for i in 0..self.n_keys {
            let (k, r0, rn) = self.entry(i)?;
            for r in r0..r0 + rn {
                out.push((k.to_vec(), self.ref_at(r)));
            }
        }
        Ok(out)
    }
}

fn newer(a: &Option<String>, b: &str) -> bool {
    match a {
        None => true,
        Some(a) => timefmt::parse_rfc3339(b) > timefmt::parse_rfc3339(a),
    }
}

/// A record read from an export, with where it came from.
struct SourceRecord {
    label: String,
    bytes: Vec<u8>,
}

/// Read an export's records one by one: a zip of `<ID>.json` or a directory tree of them.
fn for_each_record(
    source: &Path,
    mut f: impl FnMut(SourceRecord) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let src_err = |source_err| DbError::Source {
        path: source.to_owned(),
        source: source_err,
    };
    let md = std::fs::metadata(source).map_err(src_err)?;
    if md.is_dir() {
        let mut files = Vec::new();
        let mut stack = vec![source.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(src_err)? {
                let entry = entry.map_err(src_err)?;
                let p = entry.path();
                let ft = entry.file_type().map_err(src_err)?;
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() && p.extension().is_some_and(|e| e == "json") {
                    files.push(p);
                }
            }
        }
        files.sort();
        for p in files {
            let mut bytes = Vec::new();
            File::open(&p)
                .and_then(|fh| fh.take(MAX_RECORD_BYTES as u64 + 1).read_to_end(&mut bytes))
                .map_err(|e| DbError::Source {
                    path: p.clone(),
                    source: e,
                })?;
            f(SourceRecord {
                label: p.display().to_string(),
                bytes,
            })?;
        }
    } else {
        let mut zip = ZipReader::open(source)?;
        let names: Vec<(usize, String)> = zip
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.name.ends_with(".json"))
            .map(|(i, e)| (i, e.name.clone()))
            .collect();
        for (i, name) in names {
            let bytes = zip.read(i, MAX_RECORD_BYTES as u64)?;
            f(SourceRecord {
                label: format!("{}!{name}", source.display()),
                bytes,
            })?;
        }
    }
    Ok(())
}

/// Import an osv.dev export (`source`: a zip of `<ID>.json`, or a directory of them) into
/// the database in `db_dir`, creating it if needed. The export replaces the one of the same
/// ecosystem; other ecosystems are kept. The database is rebuilt beside the old one and
/// renamed over it: a failed or killed import leaves the old database as it was.
///
/// A malformed record fails the whole import, naming its file and field: an export with a
/// record berth cannot read is not half-imported.
pub fn import(source: &Path, db_dir: &Path) -> Result<ImportReport, DbError> {
    let started = Instant::now();
    let write_err = |source| DbError::Write {
        dir: db_dir.to_owned(),
        source,
    };
    let io_err = |source| DbError::WriteIo {
        dir: db_dir.to_owned(),
        source,
    };
    berth_fsutil::create_dir_all_durable(db_dir).map_err(write_err)?;
    let lock_path = layout::import_lock(db_dir);
    let _lock = FileLock::exclusive(&lock_path).map_err(|source| DbError::Lock {
        path: lock_path.clone(),
        source,
    })?;
    let mut warnings = Vec::new();
    // temporary files of imports that were killed
    if let Ok(rd) = std::fs::read_dir(db_dir) {
        for entry in rd.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(layout::is_stale_temp)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let old = match Database::open(db_dir) {
        Ok(db) => Some(db),
        Err(DbError::Missing { .. }) => None,
        Err(e @ DbError::Corrupt { .. }) => {
            warnings.push(format!("{e}; it is rebuilt from this export alone"));
            None
        }
        Err(e) => return Err(e),
    };

    let dest = layout::db_file(db_dir);
    let mut out = BufWriter::with_capacity(1 << 20, AtomicFile::create(&dest).map_err(write_err)?);
    let mut pos = 0u64;
    let mut index: BTreeMap<Vec<u8>, Vec<Ref>> = BTreeMap::new();
    let mut seen = HashSet::new();
    let (mut records, mut withdrawn, mut duplicates, mut unmatched) = (0u64, 0u64, 0u64, 0u64);
    let mut newest: Option<String> = None;
    let mut eco_count: HashMap<String, u64> = HashMap::new();

    for_each_record(source, |rec| {
        let doc: Value = serde_json::from_slice(&rec.bytes).map_err(|e| RecordError {
            file: rec.label.clone(),
            field: ".".into(),
            problem: format!("not JSON: {e}"),
        })?;
        let parsed = Record::from_value(&doc, &rec.label)?;
        if parsed.withdrawn.is_some() {
            withdrawn += 1;
            return Ok(());
        }
        if !seen.insert(parsed.id.clone()) {
            duplicates += 1;
            return Ok(());
        }
        let mut keys: Vec<Vec<u8>> = parsed
            .affected
            .iter()
            .filter_map(|a| a.package.as_ref())
            .map(|p| layout::key(p.ecosystem_base(), &p.name))
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            unmatched += 1;
            return Ok(());
        }
        for p in parsed.affected.iter().filter_map(|a| a.package.as_ref()) {
            *eco_count.entry(p.ecosystem_base().to_owned()).or_default() += 1;
        }
        let bytes = serde_json::to_vec(&doc).map_err(|e| io_err(io::Error::other(e)))?;
        let len = u32::try_from(bytes.len()).map_err(|_| RecordError {
            file: rec.label.clone(),
            field: ".".into(),
            problem: "too large".into(),
        })?;
        out.write_all(&bytes).map_err(io_err)?;
        for k in keys {
            index.entry(k).or_default().push(Ref { offset: pos, len });
        }
        pos += u64::from(len);
        records += 1;
        if newer(&newest, &parsed.modified) {
            newest = Some(parsed.modified.clone());
        }
        Ok(())
    })?;
    if records == 0 {
        return Err(DbError::EmptySource {
            path: source.to_owned(),
        });
    }
    let ecosystem = eco_count
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(e, _)| e.clone())
        .unwrap_or_default();
    let now = timefmt::rfc3339(SystemTime::now());
    let mut exports = vec![ExportMeta {
        ecosystem: ecosystem.clone(),
        source: source.display().to_string(),
        imported: now.clone(),
        records,
        newest_modified: newest.clone(),
        data_offset: 0,
        data_len: pos,
    }];

    // keep the other ecosystems' exports: copy their bytes, move their refs
    let mut replaced = None;
    if let Some(old) = &old {
        let old_refs = old.all_refs()?;
        for e in &old.meta.exports {
            if e.ecosystem == ecosystem {
                replaced = Some(e.clone());
                continue;
            }
            let mut f = &old.file;
            f.seek(SeekFrom::Start(e.data_offset))
                .map_err(|source| DbError::Read {
                    path: old.path.clone(),
                    source,
                })?;
            let copied = io::copy(&mut f.take(e.data_len), &mut out).map_err(io_err)?;
            if copied != e.data_len {
                return Err(DbError::Corrupt {
                    path: old.path.clone(),
                    problem: format!("export {} is cut short", e.ecosystem),
                });
            }
            let end = e.data_offset + e.data_len;
            for (k, r) in &old_refs {
                if r.offset >= e.data_offset && r.offset < end {
                    index.entry(k.clone()).or_default().push(Ref {
                        offset: r.offset - e.data_offset + pos,
                        len: r.len,
                    });
                }
            }
            exports.push(ExportMeta {
                data_offset: pos,
                ..e.clone()
            });
            if newer(&newest, e.newest_modified.as_deref().unwrap_or("")) {
                newest = e.newest_modified.clone();
            }
            pos += e.data_len;
        }
    }
    exports.sort_by(|a, b| a.ecosystem.cmp(&b.ecosystem));

    // the index
    let index_off = pos;
    let n_refs: usize = index.values().map(Vec::len).sum();
    let mut idx = Vec::with_capacity(8 + index.len() * 16 + n_refs * 12);
    let too_big = || io_err(io::Error::other("index larger than 4 GiB"));
    idx.extend_from_slice(
        &u32::try_from(index.len())
            .map_err(|_| too_big())?
            .to_le_bytes(),
    );
    idx.extend_from_slice(&u32::try_from(n_refs).map_err(|_| too_big())?.to_le_bytes());
    let (mut key_off, mut ref_no) = (0u32, 0u32);
    for (k, refs) in &index {
        let kl = u32::try_from(k.len()).map_err(|_| too_big())?;
        let rn = u32::try_from(refs.len()).map_err(|_| too_big())?;
        for v in [key_off, kl, ref_no, rn] {
            idx.extend_from_slice(&v.to_le_bytes());
        }
        key_off = key_off.checked_add(kl).ok_or_else(too_big)?;
        ref_no = ref_no.checked_add(rn).ok_or_else(too_big)?;
    }
    for refs in index.values() {
        for r in refs {
            idx.extend_from_slice(&r.offset.to_le_bytes());
            idx.extend_from_slice(&r.len.to_le_bytes());
        }
    }
    for k in index.keys() {
        idx.extend_from_slice(k);
    }
    out.write_all(&idx).map_err(io_err)?;
    pos += idx.len() as u64;

    let meta = Meta {
        format_version: FORMAT_VERSION,
        built: now,
        newest_modified: newest,
        exports,
    };
    let meta_bytes = serde_json::to_vec(&meta).map_err(|e| io_err(io::Error::other(e)))?;
    let meta_off = pos;
    out.write_all(&meta_bytes).map_err(io_err)?;
    let mut trailer = Vec::with_capacity(TRAILER_LEN);
    trailer.extend_from_slice(MAGIC);
    trailer.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    trailer.extend_from_slice(&0u32.to_le_bytes());
    for v in [
        index_off,
        idx.len() as u64,
        meta_off,
        meta_bytes.len() as u64,
    ] {
        trailer.extend_from_slice(&v.to_le_bytes());
    }
    out.write_all(&trailer).map_err(io_err)?;
    let atomic = out.into_inner().map_err(|e| io_err(e.into_error()))?;
    // verify: the file we are about to rename into place opens as a database
    atomic
        .commit_verified(|p| {
            let f = File::open(p)?;
            Database::from_file(f, p.to_owned())?;
            Ok(())
        })
        .map_err(write_err)?;
    Ok(ImportReport {
        source: source.to_owned(),
        ecosystem,
        records,
        withdrawn,
        duplicates,
        unmatched,
        replaced,
        meta,
        warnings,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
