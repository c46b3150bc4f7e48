//! Where layer and config blobs come from: the local content store or an OCI layout.

use std::io::Read;

use berth_oci::{Digest, VerifyingReader};

/// Read access to an image's blobs by digest.
pub trait BlobSource: Sync {
    /// Open a blob for streaming (a layer). Its digest is checked as it is read.
    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send + '_>>;
    /// Read a small blob (a manifest, an index, a config), verified.
    fn read(&self, digest: &Digest) -> std::io::Result<Vec<u8>>;
}

fn io(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

impl BlobSource for berth_store::Store {
    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send + '_>> {
        let f = self.open_blob(digest).map_err(io)?;
        Ok(Box::new(VerifyingReader::new(f, digest.clone(), None)))
    }
    fn read(&self, digest: &Digest) -> std::io::Result<Vec<u8>> {
        self.read_blob(digest).map_err(io)
    }
}

impl BlobSource for berth_store::OciLayout {
    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send + '_>> {
        let f = self.open_blob(digest).map_err(io)?;
        Ok(Box::new(VerifyingReader::new(f, digest.clone(), None)))
    }
    fn read(&self, digest: &Digest) -> std::io::Result<Vec<u8>> {
        self.read_blob(digest).map_err(io)
    }
}
