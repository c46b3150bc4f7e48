//! A small read-only reader of SQLite database files: enough to scan the rows of one table
//! (rpm's `Packages` table in `rpmdb.sqlite`).
//!
//! Format: <https://www.sqlite.org/fileformat2.html> — the 100-byte header, table b-trees
//! (interior pages 0x05, leaf pages 0x0d), records (serial types), overflow pages. Only what a
//! table scan needs: no indexes, no WAL (a database with pending `-wal` frames shows its last
//! checkpoint), no free-list. Every page number, offset and length is checked; a page is
//! visited at most once, so a hostile file cannot loop.

/// Why a database could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    #[error("not an SQLite 3 database (bad header)")]
    NotSqlite,
    #[error("corrupt SQLite database: {0}")]
    Corrupt(&'static str),
    #[error("no table named {0:?} in the SQLite schema")]
    NoTable(String),
}

/// One column value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Blob(Vec<u8>),
    Text(Vec<u8>),
}

/// A database file in memory.
#[derive(Debug)]
pub struct Database<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// An SQLite varint at `pos`: (value, length).
fn varint(b: &[u8], pos: usize) -> Result<(u64, usize), SqliteError> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b
            .get(pos + i)
            .ok_or(SqliteError::Corrupt("varint past end"))?;
        if i == 8 {
            return Ok(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(SqliteError::Corrupt("varint"))
}

impl<'a> Database<'a> {
    pub fn open(data: &'a [u8]) -> Result<Database<'a>, SqliteError> {
        if data.len() < 100 || !data.starts_with(b"SQLite format 3\0") {
            return Err(SqliteError::NotSqlite);
        }
        let raw = be(&data[16..18]) as usize;
        let page_size = if raw == 1 { 65536 } else { raw };
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(SqliteError::Corrupt("page size"));
        }
        let reserved = usize::from(data[20]);
        let usable = page_size
            .checked_sub(reserved)
            .filter(|u| *u >= 480)
            .ok_or(SqliteError::Corrupt("reserved bytes"))?;
        Ok(Database {
            data,
            page_size,
            usable,
        })
    }

    fn page(&self, n: u64) -> Result<&'a [u8], SqliteError> {
        let n = usize::try_from(n).map_err(|_| SqliteError::Corrupt("page number"))?;
        if n == 0 {
            return Err(SqliteError::Corrupt("page number 0"));
        }
        let start = (n - 1)
            .checked_mul(self.page_size)
            .ok_or(SqliteError::Corrupt("page number"))?;
        self.data
            .get(start..start + self.page_size)
            .ok_or(SqliteError::Corrupt("page past end of file"))
    }

    /// The rows of the table b-tree rooted at `root`, each as its column values.
    pub fn scan(&self, root: u64) -> Result<Vec<Vec<Value>>, SqliteError> {
        let mut rows = Vec::new();
        let total_pages = self.data.len() / self.page_size;
        let mut seen = vec![false; total_pages + 1];
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            let idx = usize::try_from(n).map_err(|_| SqliteError::Corrupt("page number"))?;
            match seen.get_mut(idx) {
                Some(s) if !*s => *s = true,
                Some(_) => return Err(SqliteError::Corrupt("b-tree page visited twice")),
                None => return Err(SqliteError::Corrupt("page past end of file")),
            }
            let page = self.page(n)?;
            let hdr = if n == 1 { 100 } else { 0 };
            let kind = *page.get(hdr).ok_or(SqliteError::Corrupt("page header"))?;
            let ncells = be(page
                .get(hdr + 3..hdr + 5)
                .ok_or(SqliteError::Corrupt("page header"))?) as usize;
            let (ptrs, interior) = match kind {
                0x05 => (hdr + 12, true),
                0x0d => (hdr + 8, false),
                _ => return Err(SqliteError::Corrupt("not a table b-tree page")),
            };
            if interior {
                let right = be(&page[hdr + 8..hdr + 12]);
                stack.push(right);
            }
            let mut children = Vec::new();
            for i in 0..ncells {
                let off = be(page
                    .get(ptrs + 2 * i..ptrs + 2 * i + 2)
                    .ok_or(SqliteError::Corrupt("cell pointer"))?)
                    as usize;
                if interior {
                    let child = be(page
                        .get(off..off + 4)
                        .ok_or(SqliteError::Corrupt("interior cell"))?);
                    children.push(child);
                } else {
                    let payload = self.leaf_payload(page, off, &mut seen)?;
                    rows.push(record(&payload)?);
                }
            }
            // children in key order: pop left first
            stack.extend(children.into_iter().rev());
        }
        Ok(rows)
    }

    /// The whole payload of the leaf cell at `off`, following overflow pages.
    fn leaf_payload(
        &self,
        page: &[u8],
        off: usize,
        seen: &mut [bool],
    ) -> Result<Vec<u8>, SqliteError> {
        let (size, a) = varint(page, off)?;
        let (_rowid, b) = varint(page, off + a)?;
        let start = off + a + b;
        let size = usize::try_from(size).map_err(|_| SqliteError::Corrupt("payload size"))?;
        if size > self.data.len() {
            return Err(SqliteError::Corrupt("payload larger than the file"));
        }
        let u = self.usable;
        let x = u - 35;
        let local = if size <= x {
            size
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + ((size - m) % (u - 4));
            if k <= x { k } else { m }
        };
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(
            page.get(start..start + local)
                .ok_or(SqliteError::Corrupt("cell past end of page"))?,
        );
        if local < size {
            let mut next = be(page
                .get(start + local..start + local + 4)
                .ok_or(SqliteError::Corrupt("overflow pointer"))?);
            while out.len() < size {
                let idx = usize::try_from(next).map_err(|_| SqliteError::Corrupt("page number"))?;
                match seen.get_mut(idx) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(SqliteError::Corrupt("overflow chain")),
                }
                let p = self.page(next)?;
                next = be(&p[0..4]);
                let take = (size - out.len()).min(u - 4);
                out.extend_from_slice(
                    p.get(4..4 + take)
                        .ok_or(SqliteError::Corrupt("overflow page"))?,
                );
            }
        }
        Ok(out)
    }

    /// The root page of the table `name`, from the schema table (`sqlite_schema`).
    pub fn table_root(&self, name: &str) -> Result<u64, SqliteError> {
        for row in self.scan(1)? {
            let is_table = matches!(row.first(), Some(Value::Text(t)) if t == b"table");
            let named = matches!(row.get(1), Some(Value::Text(t)) if t.eq_ignore_ascii_case(name.as_bytes()));
            if is_table && named {
                return match row.get(3) {
                    Some(Value::Int(n)) if *n > 0 => Ok(*n as u64),
                    _ => Err(SqliteError::Corrupt("schema root page")),
                };
            }
        }
        Err(SqliteError::NoTable(name.to_owned()))
    }
}

/// The values of a record (header of serial types, then the body).
fn record(p: &[u8]) -> Result<Vec<Value>, SqliteError> {
    let (hlen, n) = varint(p, 0)?;
    let hlen = usize::try_from(hlen).map_err(|_| SqliteError::Corrupt("record header"))?;
    if hlen > p.len() || hlen < n {
        return Err(SqliteError::Corrupt("record header length"));
    }
    let mut types = Vec::new();
    let mut pos = n;
    while pos < hlen {
        let (t, l) = varint(p, pos)?;
        types.push(t);
        pos += l;
    }
    let mut body = hlen;
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        let len = match t {
            0 | 8 | 9 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(SqliteError::Corrupt("reserved serial type")),
            t => usize::try_from((t - 12) / 2).map_err(|_| SqliteError::Corrupt("length"))?,
        };
        let bytes = p
            .get(
                body..body
                    .checked_add(len)
                    .ok_or(SqliteError::Corrupt("length"))?,
            )
            .ok_or(SqliteError::Corrupt("record body past payload"))?;
        body += len;
        out.push(match t {
            0 => Value::Null,
            8 => Value::Int(0),
            9 => Value::Int(1),
            1..=6 => {
                let raw = be(bytes);
                let bits = len * 8;
                let v = if bits < 64 && raw & (1 << (bits - 1)) != 0 {
                    (raw | (!0u64 << bits)) as i64
                } else {
                    raw as i64
                };
                Value::Int(v)
            }
            7 => Value::Float(f64::from_bits(be(bytes))),
            t if t % 2 == 0 => Value::Blob(bytes.to_vec()),
            _ => Value::Text(bytes.to_vec()),
        });
    }
    Ok(out)
}
