//! A small deterministic CBOR writer (RFC 8949 §4.2.1 "core deterministic encoding") for the
//! COSE_Sign1 envelopes berth produces: shortest heads, definite lengths, map keys sorted by
//! their encoded bytes. The output reads back through [`crate::cbor::decode`].

use crate::cbor::write_head;

/// An owned CBOR item to encode.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Item>),
    Map(Vec<(Item, Item)>),
    Tag(u64, Box<Item>),
}

impl Item {
    pub fn text(s: &str) -> Item {
        Item::Text(s.to_string())
    }

    /// The deterministic encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Item::Int(n) if *n >= 0 => write_head(out, 0, n.unsigned_abs()),
            // -1 - n  →  major 1 with argument n
            Item::Int(n) => write_head(out, 1, (-1 - *n).unsigned_abs()),
            Item::Bytes(b) => {
                write_head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Item::Text(t) => {
                write_head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Item::Array(items) => {
                write_head(out, 4, items.len() as u64);
                for i in items {
                    i.encode_into(out);
                }
            }
            Item::Map(entries) => {
                let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
                    .iter()
                    .map(|(k, v)| (k.encode(), v.encode()))
                    .collect();
                encoded.sort_by(|a, b| a.0.cmp(&b.0));
                encoded.dedup_by(|a, b| a.0 == b.0);
                write_head(out, 5, encoded.len() as u64);
                for (k, v) in encoded {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
            }
            Item::Tag(tag, inner) => {
                write_head(out, 6, *tag);
                inner.encode_into(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::{Value, decode};

    #[test]
    fn deterministic_and_readable() {
        assert_eq!(Item::Int(-7).encode(), vec![0x26]);
        assert_eq!(Item::Int(-37).encode(), vec![0x38, 0x24]);
        assert_eq!(Item::Int(33).encode(), vec![0x18, 0x21]);
        // keys sorted by encoding: 1 < 3 < "a", whatever the insertion order
        let m = Item::Map(vec![
            (Item::text("a"), Item::Int(1)),
            (Item::Int(3), Item::Bytes(vec![1, 2])),
            (
                Item::Int(1),
                Item::Tag(1, Box::new(Item::Int(1_700_000_000))),
            ),
        ]);
        let enc = m.encode();
        assert_eq!(&enc[..2], &[0xa3, 0x01]);
        let Ok(Value::Map(entries)) = decode(&enc) else {
            panic!("not a map: {enc:02x?}");
        };
        assert_eq!(entries[0].0, Value::Uint(1));
        assert_eq!(entries[1].0, Value::Uint(3));
        assert_eq!(entries[2].0, Value::Text("a"));
    }
}
