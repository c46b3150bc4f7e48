//! The byte stream under the tar parser: decompression, the diff ID hash and the limits.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use berth_oci::{Algorithm, Digester};

use super::{Compression, Limits};

/// Which limit stopped the stream, shared between the reader (inside the tar parser) and the
/// unpack loop, which turns it into [`super::UnpackError::Limit`].
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// Uncompressed bytes read so far.
    pub total: Cell<u64>,
    /// Bytes read since the unpack loop last asked for the next header (headers, long names,
    /// PAX records, padding): bounded by `max_metadata_bytes`.
    pub metadata: Cell<u64>,
    /// Whether the parser is between entries (reading headers) rather than in entry data.
    pub in_headers: Cell<bool>,
    pub hit: Cell<Option<(&'static str, u64)>>,
}

/// The decompressed layer, hashed and metered as the tar parser reads it.
pub(super) struct LayerReader<'a> {
    inner: Box<dyn Read + 'a>,
    digester: Digester,
    meter: Rc<Meter>,
    limits: Limits,
}

impl<'a> LayerReader<'a> {
    pub fn new(
        raw: impl Read + 'a,
        compression: Compression,
        limits: Limits,
        meter: Rc<Meter>,
    ) -> io::Result<LayerReader<'a>> {
        let inner: Box<dyn Read + 'a> = match compression {
            // The tar parser reads 512-byte headers: buffer them (the decoders below buffer
            // their input themselves).
            Compression::None => Box::new(io::BufReader::with_capacity(128 * 1024, raw)),
            // Multi-member, as Go's gzip reader (what docker and containerd use) reads it.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            // libzstd's default window limit (128 MiB, window_log_max 27) bounds its memory.
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        };
        Ok(LayerReader {
            inner,
            digester: Digester::new(Algorithm::Sha256),
            meter,
            limits,
        })
    }

    /// Read the rest of the stream (the tar's trailing zero blocks and padding) into the
    /// hash: the diff ID covers every uncompressed byte.
    pub fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.read(&mut buf)? != 0 {}
        Ok(())
    }

    pub fn finish(self) -> berth_oci::Digest {
        self.digester.finalize()
    }
}

fn limit_error(meter: &Meter, limit: &'static str, value: u64) -> io::Error {
    meter.hit.set(Some((limit, value)));
    io::Error::other(format!("limit {limit} = {value} exceeded"))
}

impl Read for LayerReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = buf.get(..n).unwrap_or_default();
        self.digester.update(chunk);
        let n64 = n as u64;
        let total = self.meter.total.get().saturating_add(n64);
        self.meter.total.set(total);
        if total > self.limits.max_uncompressed_bytes {
            return Err(limit_error(
                &self.meter,
                "max_uncompressed_bytes",
                self.limits.max_uncompressed_bytes,
            ));
        }
        if self.meter.in_headers.get() {
            let meta = self.meter.metadata.get().saturating_add(n64);
            self.meter.metadata.set(meta);
            if meta > self.limits.max_metadata_bytes {
                return Err(limit_error(
                    &self.meter,
                    "max_metadata_bytes",
                    self.limits.max_metadata_bytes,
                ));
            }
        }
        Ok(n)
    }
}
