//! A strict reader of the CBOR subset (RFC 8949) COSE_Sign1 uses: integers, byte and text
//! strings, arrays, maps, tags, booleans and null, definite lengths only, bounded nesting,
//! no duplicate map keys, no trailing bytes.

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Uint(u64),
    /// -1 - n
    Nint(u64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Value<'a>>),
    Map(Vec<(Value<'a>, Value<'a>)>),
    Tag(u64, Box<Value<'a>>),
    Bool(bool),
    Null,
}

impl Value<'_> {
    /// An integer key or value as i64.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Uint(n) => i64::try_from(*n).ok(),
            Value::Nint(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }
}

const MAX_DEPTH: usize = 16;
const MAX_ITEMS: u64 = 4096;

pub fn decode(data: &[u8]) -> Result<Value<'_>, String> {
    let mut d = Decoder { data, pos: 0 };
    let v = d.value(0)?;
    if d.pos != data.len() {
        return Err(format!(
            "{} trailing bytes after the CBOR item",
            data.len() - d.pos
        ));
    }
    Ok(v)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("truncated CBOR")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "CBOR length too large")?;
        let end = self.pos.checked_add(n).ok_or("CBOR length too large")?;
        let s = self.data.get(self.pos..end).ok_or("truncated CBOR")?;
        self.pos = end;
        Ok(s)
    }

    fn argument(&mut self, info: u8) -> Result<u64, String> {
        let (n, min) = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => (1, 24u64),
            25 => (2, 0x100),
            26 => (4, 0x1_0000),
            27 => (8, 0x1_0000_0000),
            31 => return Err("indefinite-length CBOR items are not allowed".to_string()),
            _ => return Err(format!("reserved CBOR additional information {info}")),
        };
        let bytes = self.take(n)?;
        let v = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if v < min {
            return Err("non-shortest CBOR integer encoding".to_string());
        }
        Ok(v)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, String> {
        if depth > MAX_DEPTH {
            return Err("CBOR nested too deeply".to_string());
        }
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        if major == 7 {
            return match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 => Ok(Value::Null),
                _ => Err(format!(
                    "CBOR simple value or float 0x{initial:02x} is not allowed"
                )),
            };
        }
        let arg = self.argument(info)?;
        match major {
            0 => Ok(Value::Uint(arg)),
            1 => Ok(Value::Nint(arg)),
            2 => Ok(Value::Bytes(self.take(arg)?)),
            3 => {
                let s = self.take(arg)?;
                std::str::from_utf8(s)
                    .map(Value::Text)
                    .map_err(|_| "CBOR text string is not UTF-8".to_string())
            }
            4 => {
                if arg > MAX_ITEMS {
                    return Err("CBOR array too long".to_string());
                }
                (0..arg)
                    .map(|_| self.value(depth + 1))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            5 => {
                if arg > MAX_ITEMS {
                    return Err("CBOR map too long".to_string());
                }
                let mut entries: Vec<(Value<'a>, Value<'a>)> = Vec::new();
                for _ in 0..arg {
                    let k = self.value(depth + 1)?;
                    if entries.iter().any(|(e, _)| *e == k) {
                        return Err("duplicate CBOR map key".to_string());
                    }
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                Ok(Value::Map(entries))
            }
            6 => Ok(Value::Tag(arg, Box::new(self.value(depth + 1)?))),
            _ => Err("invalid CBOR major type".to_string()),
        }
    }
}

/// Appends a CBOR head (major type + argument) in shortest form.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= 0xff {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// The COSE `Sig_structure` a COSE_Sign1 signature is over (RFC 9052 4.4):
/// `["Signature1", body_protected, external_aad = h'', payload]`.
pub fn cose_sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(protected.len() + payload.len() + 32);
    write_head(&mut signed, 4, 4);
    write_head(&mut signed, 3, 10);
    signed.extend_from_slice(b"Signature1");
    write_head(&mut signed, 2, protected.len() as u64);
    signed.extend_from_slice(protected);
    write_head(&mut signed, 2, 0);
    write_head(&mut signed, 2, payload.len() as u64);
    signed.extend_from_slice(payload);
    signed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness() {
        assert_eq!(decode(&[0x01]), Ok(Value::Uint(1)));
        assert_eq!(decode(&[0x20]).map(|v| v.as_i64()), Ok(Some(-1)));
        assert!(decode(&[0x18, 0x01]).is_err(), "non-shortest");
        assert!(decode(&[0x9f, 0xff]).is_err(), "indefinite");
        assert!(
            decode(&[0xa2, 0x01, 0x01, 0x01, 0x02]).is_err(),
            "duplicate key"
        );
        assert!(decode(&[0x01, 0x01]).is_err(), "trailing");
        assert!(decode(&[0xf9, 0x00, 0x00]).is_err(), "float");
        let mut deep = vec![0x81; 40];
        deep.push(0x01);
        assert!(decode(&deep).is_err(), "depth");
        let mut out = Vec::new();
        write_head(&mut out, 2, 300);
        assert_eq!(out, vec![0x59, 0x01, 0x2c]);
    }
}
