//! COSE_Sign1 serialisation of the Notary envelope (signature-envelope-cose.md, RFC 9052).

use crate::cbor::{self, Value};
use crate::envelope::*;
use crate::time::Timestamp;

const TAG_COSE_SIGN1: u64 = 18;
const LABEL_ALG: i64 = 1;
const LABEL_CRIT: i64 = 2;
const LABEL_CONTENT_TYPE: i64 = 3;
const LABEL_X5CHAIN: i64 = 33;

fn err(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Cose(msg.into())
}

/// A header label: an integer or a text string.
#[derive(Debug, Clone, PartialEq)]
enum Label<'a> {
    Int(i64),
    Text(&'a str),
}

fn label<'a>(v: &Value<'a>) -> Result<Label<'a>, EnvelopeError> {
    match v {
        Value::Text(t) => Ok(Label::Text(t)),
        other => other
            .as_i64()
            .map(Label::Int)
            .ok_or_else(|| err("header label is neither an integer nor text")),
    }
}

fn label_name(l: &Label<'_>) -> String {
    match l {
        Label::Int(i) => i.to_string(),
        Label::Text(t) => (*t).to_string(),
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let top = cbor::decode(bytes).map_err(err)?;
    let Value::Tag(TAG_COSE_SIGN1, inner) = top else {
        return Err(err("not a tagged COSE_Sign1 (CBOR tag 18)"));
    };
    let Value::Array(items) = *inner else {
        return Err(err("COSE_Sign1 is not an array"));
    };
    let [protected_v, unprotected_v, payload_v, signature_v] = <[Value<'_>; 4]>::try_from(items)
        .map_err(|items| err(format!("COSE_Sign1 has {} elements, not 4", items.len())))?;
    let Value::Bytes(protected_bytes) = protected_v else {
        return Err(err("protected header is not a byte string"));
    };
    let Value::Map(unprotected) = unprotected_v else {
        return Err(err("unprotected header is not a map"));
    };
    let payload = match payload_v {
        Value::Bytes(p) => p.to_vec(),
        Value::Null => return Err(err("detached payloads are not allowed")),
        _ => return Err(err("payload is not a byte string")),
    };
    let Value::Bytes(signature) = signature_v else {
        return Err(err("signature is not a byte string"));
    };
    if protected_bytes.is_empty() {
        return Err(EnvelopeError::Header(
            "protected header is empty".to_string(),
        ));
    }
    let Value::Map(protected) = cbor::decode(protected_bytes).map_err(EnvelopeError::Header)?
    else {
        return Err(EnvelopeError::Header(
            "protected header is not a map".to_string(),
        ));
    };
    let mut prot: Vec<(Label<'_>, Value<'_>)> = Vec::new();
    for (k, v) in protected {
        prot.push((label(&k)?, v));
    }
    let get = |l: Label<'_>| prot.iter().find(|(k, _)| *k == l).map(|(_, v)| v);
    let text = |name: &'static str| -> Result<Option<String>, EnvelopeError> {
        match get(Label::Text(name)) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some((*s).to_string())),
            Some(_) => Err(EnvelopeError::Header(format!(
                "{name} is not a text string"
            ))),
        }
    };
    let time = |name: &'static str| -> Result<Option<Timestamp>, EnvelopeError> {
        match get(Label::Text(name)) {
            None => Ok(None),
            // CBOR tag 1: epoch-based date/time, integer seconds
            Some(Value::Tag(1, t)) => t.as_i64().map(|s| Some(Timestamp(s))).ok_or_else(|| {
                EnvelopeError::Header(format!("{name} is not an integer epoch time"))
            }),
            Some(_) => Err(EnvelopeError::Header(format!(
                "{name} is not a tag-1 epoch time"
            ))),
        }
    };
    let alg_id = get(Label::Int(LABEL_ALG))
        .ok_or_else(|| EnvelopeError::Header("alg (label 1) is missing".to_string()))?
        .as_i64()
        .ok_or_else(|| EnvelopeError::Header("alg (label 1) is not an integer".to_string()))?;
    let algorithm = SignatureAlgorithm::from_cose(alg_id).ok_or_else(|| {
        EnvelopeError::Header(format!("signature algorithm {alg_id} is not allowed"))
    })?;
    let content_type = match get(Label::Int(LABEL_CONTENT_TYPE)) {
        Some(Value::Text(t)) => (*t).to_string(),
        Some(_) => {
            return Err(EnvelopeError::Header(
                "content type (label 3) is not text".to_string(),
            ));
        }
        None => {
            return Err(EnvelopeError::Header(
                "content type (label 3) is missing".to_string(),
            ));
        }
    };
    let critical = match get(Label::Int(LABEL_CRIT)) {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| label(v).map(|l| label_name(&l)))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(EnvelopeError::Header(
                "crit must be a non-empty array".to_string(),
            ));
        }
        None => {
            return Err(EnvelopeError::Header(
                "crit (label 2) is missing".to_string(),
            ));
        }
    };
    let scheme = text(H_SIGNING_SCHEME)?
        .ok_or_else(|| EnvelopeError::Header(format!("{H_SIGNING_SCHEME} is missing")))?;
    let headers = RawHeaders {
        algorithm,
        content_type,
        critical,
        present: prot.iter().map(|(k, _)| label_name(k)).collect(),
        signing_scheme: SigningScheme::parse(&scheme)?,
        signing_time: time(H_SIGNING_TIME)?,
        authentic_signing_time: time(H_AUTHENTIC_SIGNING_TIME)?,
        expiry: time(H_EXPIRY)?,
        verification_plugin: text(H_PLUGIN)?,
        verification_plugin_min_version: text(H_PLUGIN_MIN_VERSION)?,
    };

    let mut chain = Vec::new();
    let mut signing_agent = None;
    let mut timestamp_token = None;
    for (k, v) in &unprotected {
        match (label(k)?, v) {
            (Label::Int(LABEL_X5CHAIN), Value::Array(certs)) => {
                for c in certs {
                    let Value::Bytes(c) = c else {
                        return Err(EnvelopeError::Chain(
                            "x5chain entry is not a byte string".to_string(),
                        ));
                    };
                    chain.push(c.to_vec());
                }
            }
            (Label::Int(LABEL_X5CHAIN), Value::Bytes(c)) => chain.push(c.to_vec()),
            (Label::Int(LABEL_X5CHAIN), _) => {
                return Err(EnvelopeError::Chain("x5chain is malformed".to_string()));
            }
            (Label::Text(H_SIGNING_AGENT), Value::Text(t)) => {
                signing_agent = Some((*t).to_string())
            }
            (Label::Text(H_TIMESTAMP_SIGNATURE), Value::Bytes(t)) => {
                timestamp_token = Some(t.to_vec())
            }
            (Label::Text(n @ (H_SIGNING_AGENT | H_TIMESTAMP_SIGNATURE)), _) => {
                return Err(err(format!("unprotected header {n} has the wrong type")));
            }
            _ => {}
        }
    }
    let signed = cbor::cose_sig_structure(protected_bytes, &payload);
    Envelope::assemble(
        EnvelopeFormat::Cose,
        RawEnvelope {
            headers,
            payload,
            chain_der: chain,
            signing_agent,
            timestamp_token,
            signed_bytes: signed,
            signature: signature.to_vec(),
        },
    )
}
