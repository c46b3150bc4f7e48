//! JWS JSON flattened serialisation of the Notary envelope (signature-envelope-jws.md).

use crate::envelope::*;
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    payload: String,
    protected: String,
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize)]
struct Unprotected {
    #[serde(default)]
    x5c: Vec<String>,
    #[serde(rename = "io.cncf.notary.signingAgent")]
    signing_agent: Option<String>,
    #[serde(rename = "io.cncf.notary.timestampSignature")]
    timestamp_signature: Option<String>,
}

fn err(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Jws(msg.into())
}

fn b64url(field: &str, s: &str) -> Result<Vec<u8>, EnvelopeError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| err(format!("{field} is not base64url without padding: {e}")))
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let f: Flattened = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
    let protected_bytes = b64url("protected", &f.protected)?;
    let payload = b64url("payload", &f.payload)?;
    let signature = b64url("signature", &f.signature)?;
    let protected: Map<String, Value> = serde_json::from_slice(&protected_bytes)
        .map_err(|e| EnvelopeError::Header(format!("not a JSON object: {e}")))?;

    let string = |name: &str| -> Result<Option<String>, EnvelopeError> {
        match protected.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(EnvelopeError::Header(format!("{name} is not a string"))),
        }
    };
    let time = |name: &str| -> Result<Option<Timestamp>, EnvelopeError> {
        match string(name)? {
            None => Ok(None),
            Some(s) => Timestamp::parse_rfc3339(&s).map(Some).ok_or_else(|| {
                EnvelopeError::Header(format!("{name} {s:?} is not an RFC 3339 time"))
            }),
        }
    };
    let alg_name =
        string("alg")?.ok_or_else(|| EnvelopeError::Header("alg is missing".to_string()))?;
    let algorithm = SignatureAlgorithm::from_jws(&alg_name).ok_or_else(|| {
        EnvelopeError::Header(format!("signature algorithm {alg_name:?} is not allowed"))
    })?;
    let content_type =
        string("cty")?.ok_or_else(|| EnvelopeError::Header("cty is missing".to_string()))?;
    let critical = match protected.get("crit") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| EnvelopeError::Header("crit holds a non-string".to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(EnvelopeError::Header(
                "crit must be a non-empty array of strings".to_string(),
            ));
        }
        None => return Err(EnvelopeError::Header("crit is missing".to_string())),
    };
    let scheme = string(H_SIGNING_SCHEME)?
        .ok_or_else(|| EnvelopeError::Header(format!("{H_SIGNING_SCHEME} is missing")))?;
    let headers = RawHeaders {
        algorithm,
        content_type,
        critical,
        present: protected.keys().cloned().collect(),
        signing_scheme: SigningScheme::parse(&scheme)?,
        signing_time: time(H_SIGNING_TIME)?,
        authentic_signing_time: time(H_AUTHENTIC_SIGNING_TIME)?,
        expiry: time(H_EXPIRY)?,
        verification_plugin: string(H_PLUGIN)?,
        verification_plugin_min_version: string(H_PLUGIN_MIN_VERSION)?,
    };
    let chain = f
        .header
        .x5c
        .iter()
        .map(|c| {
            STANDARD
                .decode(c)
                .map_err(|e| EnvelopeError::Chain(format!("x5c entry is not base64: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timestamp_token = match &f.header.timestamp_signature {
        Some(t) => Some(
            STANDARD
                .decode(t)
                .map_err(|e| err(format!("timestampSignature is not base64: {e}")))?,
        ),
        None => None,
    };
    // JWS signing input: ASCII(BASE64URL(protected) || '.' || BASE64URL(payload))
    let mut signed = Vec::with_capacity(f.protected.len() + 1 + f.payload.len());
    signed.extend_from_slice(f.protected.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(f.payload.as_bytes());
    Envelope::assemble(
        EnvelopeFormat::Jws,
        RawEnvelope {
            headers,
            payload,
            chain_der: chain,
            signing_agent: f.header.signing_agent,
            timestamp_token,
            signed_bytes: signed,
            signature,
        },
    )
}
