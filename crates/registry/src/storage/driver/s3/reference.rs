//! What [`super::S3Driver`]'s `adopt` stores at its target instead of a copy of every
//! byte: a small object naming the written file and its segments.
//!
//! The object is told apart by user metadata ([`META_PATH`], [`META_SIZE`]) that only this
//! driver sets: object storage returns it with every GET and HEAD, and no client can set
//! it on a blob's content, so no content, whatever its bytes, is ever taken for a
//! reference. The body lists the segments, so a read needs no listing. A move of a
//! reference stores it again (never a server-side copy, which a server might make
//! without the metadata).

use object_store::{Attribute, AttributeValue, Attributes};
use serde::{Deserialize, Serialize};

/// The user metadata (`x-amz-meta-…`) naming the written file a reference object stands for.
pub(super) const META_PATH: &str = "berth-reference";
/// The user metadata holding the size of the content a reference object stands for.
pub(super) const META_SIZE: &str = "berth-reference-size";
/// The most bytes a reference object may hold (a written file of some thousands of
/// segments); a larger one is refused as corrupt rather than read into memory.
pub(super) const MAX_LEN: usize = 1 << 20;

/// The most segments a reference names. Data written in more pieces (a client that sent
/// thousands of small chunks) is copied into one object instead: a reference to it would
/// make every read thousands of GETs, and its body could outgrow [`MAX_LEN`] — a blob
/// that then could not be read, which later pushes of the same digest would find "already
/// there". 1 000 `[offset, size]` pairs are at most about 45 KB of JSON.
pub(super) const MAX_SEGMENTS: usize = 1000;

/// A reference object's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Reference {
    /// The written file (a driver path) whose segments hold the content.
    pub path: String,
    /// The content's size: the end of the last segment.
    pub size: u64,
    /// Each segment's offset and size, in offset order, contiguous from 0.
    pub segments: Vec<(u64, u64)>,
}

impl Reference {
    /// A reference to `segments` of the written file `path`; `None` unless they are
    /// contiguous from 0 and end at `size`.
    pub fn new(path: &str, size: u64, segments: Vec<(u64, u64)>) -> Option<Reference> {
        let r = Reference {
            path: path.to_owned(),
            size,
            segments,
        };
        r.is_whole().then_some(r)
    }

    fn is_whole(&self) -> bool {
        let mut end = 0u64;
        for &(offset, size) in &self.segments {
            if offset != end {
                return false;
            }
            let Some(next) = end.checked_add(size) else {
                return false;
            };
            end = next;
        }
        end == self.size
    }

    /// Parse a body read from an object carrying the reference metadata; `None` if it is
    /// not one this driver wrote (or its segments do not add up).
    pub fn parse(body: &[u8], meta_path: &str) -> Option<Reference> {
        let r: Reference = serde_json::from_slice(body).ok()?;
        (r.path == meta_path && r.is_whole()).then_some(r)
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The metadata that marks the object.
    pub fn attributes(&self) -> Attributes {
        let mut a = Attributes::new();
        a.insert(
            Attribute::Metadata(META_PATH.into()),
            AttributeValue::from(self.path.clone()),
        );
        a.insert(
            Attribute::Metadata(META_SIZE.into()),
            AttributeValue::from(self.size.to_string()),
        );
        a
    }
}

/// What an object's metadata says when it is a reference: the written file's path and the
/// content's size; `None` for an ordinary object.
pub(super) fn marked(attributes: &Attributes) -> Option<(String, Option<u64>)> {
    let path = attributes.get(&Attribute::Metadata(META_PATH.into()))?;
    let size = attributes
        .get(&Attribute::Metadata(META_SIZE.into()))
        .and_then(|v| v.trim().parse().ok());
    Some((path.to_string(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_contiguous_segments_from_zero_make_a_reference() {
        assert!(Reference::new("a/data", 10, vec![(0, 4), (4, 6)]).is_some());
        assert!(Reference::new("a/data", 10, vec![(0, 4), (5, 5)]).is_none());
        assert!(Reference::new("a/data", 10, vec![(1, 9)]).is_none());
        assert!(Reference::new("a/data", 11, vec![(0, 10)]).is_none());
        assert!(Reference::new("a/data", 0, vec![]).is_some());
        assert!(Reference::new("a/data", u64::MAX, vec![(0, u64::MAX), (u64::MAX, 1)]).is_none());
    }

    #[test]
    fn a_body_parses_back_only_under_its_own_path() {
        let r = Reference::new("v1/_uploaddata/x/data", 9, vec![(0, 5), (5, 4)]).unwrap();
        let body = r.body();
        assert_eq!(Reference::parse(&body, "v1/_uploaddata/x/data"), Some(r));
        assert_eq!(Reference::parse(&body, "v1/_uploaddata/y/data"), None);
        assert_eq!(Reference::parse(b"{}", "v1/_uploaddata/x/data"), None);
        assert_eq!(Reference::parse(b"not json", "p"), None);
    }

    #[test]
    fn the_metadata_marks_a_reference() {
        let r = Reference::new("p/data", 3, vec![(0, 3)]).unwrap();
        assert_eq!(marked(&r.attributes()), Some(("p/data".into(), Some(3))));
        assert_eq!(marked(&Attributes::new()), None);
    }
}
