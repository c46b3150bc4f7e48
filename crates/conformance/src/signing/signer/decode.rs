//! A lenient decoding of an envelope (JWS flattened JSON or COSE_Sign1): as much as can be
//! read, with each structural fault noted instead of stopping at it, so that every rule can
//! be judged on its own.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_trust::EnvelopeFormat;
use berth_trust::Timestamp;
use berth_trust::cbor::{self, Value as Cbor};
use berth_trust::cert::Certificate;
use serde_json::{Map, Value};

use super::describe_chain;

/// A protected header value, as far as the rules read it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Hv {
    Text(String),
    Int(i64),
    /// COSE tag 1 with an integer.
    Epoch(i64),
    /// `crit` (COSE integer labels as their decimal text).
    List(Vec<String>),
    /// Anything else, described.
    Other(String),
}

impl std::fmt::Display for Hv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hv::Text(s) => write!(f, "{s:?}"),
            Hv::Int(i) => write!(f, "{i}"),
            Hv::Epoch(t) => write!(f, "1({t}) = {}", Timestamp(*t)),
            Hv::List(l) => write!(f, "{l:?}"),
            Hv::Other(o) => f.write_str(o),
        }
    }
}

/// What could be read of an envelope.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) format: Option<EnvelopeFormat>,
    /// Structure faults (the `envelope.structure` rule).
    pub(super) structure: Vec<String>,
    /// Protected headers by name (COSE labels 1, 2, 3 as `alg`, `crit`, `cty`; other
    /// integer labels as their decimal text).
    pub(super) protected: Vec<(String, Hv)>,
    pub(super) unprotected: Vec<String>,
    pub(super) payload: Option<Vec<u8>>,
    pub(super) signed: Option<Vec<u8>>,
    pub(super) signature: Option<Vec<u8>>,
    pub(super) chain_der: Option<Vec<Vec<u8>>>,
    /// Faults of the chain's encoding.
    pub(super) chain_faults: Vec<String>,
}

impl Decoded {
    pub(super) fn get(&self, name: &str) -> Option<&Hv> {
        self.protected
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub(super) fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Hv::Text(s)) => Some(s),
            _ => None,
        }
    }

    pub(super) fn readable(&self, chain: &[Certificate]) -> String {
        let mut out = format!(
            "format: {}\nprotected header:\n",
            match self.format {
                Some(EnvelopeFormat::Jws) => "JWS (application/jose+json)",
                Some(EnvelopeFormat::Cose) => "COSE_Sign1 (application/cose)",
                None => "unknown",
            }
        );
        for (k, v) in &self.protected {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        out.push_str(&format!(
            "unprotected header: {}\n",
            self.unprotected.join(", ")
        ));
        if let Some(p) = &self.payload {
            out.push_str(&format!("payload: {}\n", String::from_utf8_lossy(p)));
        }
        out.push_str(&describe_chain(chain));
        out
    }
}

fn decode_jws(bytes: &[u8], d: &mut Decoded) {
    let top: Map<String, Value> = match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return d
                .structure
                .push("the envelope is JSON but not an object".into());
        }
        Err(e) => return d.structure.push(format!("the envelope is not JSON: {e}")),
    };
    if top.contains_key("signatures") {
        d.structure.push(
            "general JWS JSON serialization (`signatures`): only the flattened form is allowed"
                .into(),
        );
    }
    for k in top.keys() {
        if !matches!(k.as_str(), "payload" | "protected" | "header" | "signature") {
            d.structure
                .push(format!("unexpected top-level member {k:?}"));
        }
    }
    let b64 = |name: &str, d: &mut Decoded| -> Option<(String, Vec<u8>)> {
        match top.get(name) {
            Some(Value::String(s)) => match URL_SAFE_NO_PAD.decode(s) {
                Ok(b) => Some((s.clone(), b)),
                Err(e) => {
                    d.structure
                        .push(format!("{name} is not base64url without padding: {e}"));
                    None
                }
            },
            Some(_) => {
                d.structure.push(format!("{name} is not a string"));
                None
            }
            None => {
                d.structure.push(format!("{name} is missing"));
                None
            }
        }
    };
    let protected = b64("protected", d);
    let payload = b64("payload", d);
    d.signature = b64("signature", d).map(|(_, b)| b);
    if let (Some((p, _)), Some((q, _))) = (&protected, &payload) {
        d.signed = Some(format!("{p}.{q}").into_bytes());
    }
    d.payload = payload.map(|(_, b)| b);
    if let Some((_, pb)) = protected {
        match serde_json::from_slice::<Value>(&pb) {
            Ok(Value::Object(m)) => {
                for (k, v) in m {
                    let hv = match v {
                        Value::String(s) => Hv::Text(s),
                        Value::Number(n) => n.as_i64().map_or(Hv::Other(n.to_string()), Hv::Int),
                        Value::Array(items) if k == "crit" => {
                            match items
                                .iter()
                                .map(|i| i.as_str().map(str::to_owned))
                                .collect()
                            {
                                Some(l) => Hv::List(l),
                                None => Hv::Other(Value::Array(items).to_string()),
                            }
                        }
                        other => Hv::Other(other.to_string()),
                    };
                    d.protected.push((k, hv));
                }
            }
            _ => d
                .structure
                .push("the protected header is not a JSON object".into()),
        }
    }
    match top.get("header") {
        Some(Value::Object(h)) => {
            d.unprotected = h.keys().cloned().collect();
            match h.get("x5c") {
                Some(Value::Array(items)) => {
                    let mut chain = Vec::new();
                    for (i, c) in items.iter().enumerate() {
                        match c.as_str().map(|s| STANDARD.decode(s)) {
                            Some(Ok(der)) => chain.push(der),
                            _ => d
                                .chain_faults
                                .push(format!("x5c[{i}] is not a base64 string")),
                        }
                    }
                    d.chain_der = Some(chain);
                }
                Some(_) => d.chain_faults.push("x5c is not an array".into()),
                None => d.chain_faults.push("x5c is missing".into()),
            }
        }
        Some(_) => d.structure.push("header is not an object".into()),
        None => {
            d.structure.push("header is missing".into());
            d.chain_faults
                .push("no unprotected header, so no x5c".into());
        }
    }
}

fn cose_label(v: &Cbor<'_>) -> String {
    match v {
        Cbor::Text(t) => match *t {
            "alg" | "crit" | "cty" => format!("{t:?}"),
            _ => (*t).to_owned(),
        },
        other => match other.as_i64() {
            Some(1) => "alg".into(),
            Some(2) => "crit".into(),
            Some(3) => "cty".into(),
            Some(n) => n.to_string(),
            None => format!("{other:?}"),
        },
    }
}

fn cose_crit_entry(v: &Cbor<'_>) -> String {
    match v {
        Cbor::Text(t) => (*t).to_owned(),
        other => other
            .as_i64()
            .map_or_else(|| format!("{other:?}"), |n| n.to_string()),
    }
}

/// The certificates of an `x5chain` (label 33): an array of byte strings, or one.
fn x5chain(v: &Cbor<'_>, d: &mut Decoded) {
    match v {
        Cbor::Array(certs) => {
            let mut chain = Vec::new();
            for (i, c) in certs.iter().enumerate() {
                match c {
                    Cbor::Bytes(b) => chain.push(b.to_vec()),
                    _ => d
                        .chain_faults
                        .push(format!("x5chain[{i}] is not a byte string")),
                }
            }
            d.chain_der = Some(chain);
        }
        Cbor::Bytes(b) => d.chain_der = Some(vec![b.to_vec()]),
        _ => d.chain_faults.push("x5chain is malformed".into()),
    }
}

fn decode_cose(bytes: &[u8], d: &mut Decoded) {
    let top = match cbor::decode(bytes) {
        Ok(v) => v,
        Err(e) => return d.structure.push(format!("not CBOR: {e}")),
    };
    let inner = match top {
        Cbor::Tag(18, inner) => *inner,
        Cbor::Tag(t, inner) => {
            d.structure
                .push(format!("CBOR tag {t}, not 18 (COSE_Sign1_Tagged)"));
            *inner
        }
        other => {
            d.structure
                .push("untagged: COSE_Sign1_Tagged (CBOR tag 18) is required".into());
            other
        }
    };
    let Cbor::Array(items) = inner else {
        return d.structure.push("COSE_Sign1 is not an array".into());
    };
    if items.len() != 4 {
        return d
            .structure
            .push(format!("COSE_Sign1 has {} elements, not 4", items.len()));
    }
    let mut protected_bytes: &[u8] = &[];
    match &items[0] {
        Cbor::Bytes(p) if !p.is_empty() => {
            protected_bytes = p;
            match cbor::decode(p) {
                Ok(Cbor::Map(entries)) => {
                    for (k, v) in entries {
                        let name = cose_label(&k);
                        if name == "33" {
                            // x5chain may also be protected (signature-envelope-cose.md)
                            x5chain(&v, d);
                            d.protected
                                .push(("x5chain (33)".into(), Hv::Other("certificates".into())));
                            continue;
                        }
                        let hv = match v {
                            Cbor::Text(t) => Hv::Text(t.to_owned()),
                            Cbor::Tag(1, t) if t.as_i64().is_some() => {
                                Hv::Epoch(t.as_i64().unwrap_or_default())
                            }
                            Cbor::Array(a) if name == "crit" => {
                                Hv::List(a.iter().map(cose_crit_entry).collect())
                            }
                            other => other
                                .as_i64()
                                .map_or_else(|| Hv::Other(format!("{other:?}")), Hv::Int),
                        };
                        d.protected.push((name, hv));
                    }
                }
                Ok(_) => d.structure.push("the protected header is not a map".into()),
                Err(e) => d
                    .structure
                    .push(format!("the protected header is not CBOR: {e}")),
            }
        }
        Cbor::Bytes(_) => d.structure.push("the protected header is empty".into()),
        _ => d
            .structure
            .push("the protected header is not a byte string".into()),
    }
    match &items[1] {
        Cbor::Map(entries) => {
            for (k, v) in entries {
                let name = cose_label(k);
                if name == "33" {
                    x5chain(v, d);
                }
                d.unprotected.push(if name == "33" {
                    "x5chain (33)".into()
                } else {
                    name
                });
            }
            if d.chain_der.is_none() && d.chain_faults.is_empty() {
                d.chain_faults.push("x5chain (label 33) is missing".into());
            }
        }
        _ => d
            .structure
            .push("the unprotected header is not a map".into()),
    }
    match &items[2] {
        Cbor::Bytes(p) => d.payload = Some(p.to_vec()),
        Cbor::Null => d
            .structure
            .push("detached payload (nil): the payload must be attached".into()),
        _ => d.structure.push("the payload is not a byte string".into()),
    }
    match &items[3] {
        Cbor::Bytes(s) => d.signature = Some(s.to_vec()),
        _ => d
            .structure
            .push("the signature is not a byte string".into()),
    }
    if let Some(payload) = &d.payload {
        d.signed = Some(cbor::cose_sig_structure(protected_bytes, payload));
    }
}

pub(super) fn decode(envelope: &[u8], format: Option<EnvelopeFormat>) -> Decoded {
    let mut d = Decoded::default();
    let format = format.unwrap_or(if envelope.first() == Some(&b'{') {
        EnvelopeFormat::Jws
    } else {
        EnvelopeFormat::Cose
    });
    d.format = Some(format);
    match format {
        EnvelopeFormat::Jws => decode_jws(envelope, &mut d),
        EnvelopeFormat::Cose => decode_cose(envelope, &mut d),
    }
    d
}
