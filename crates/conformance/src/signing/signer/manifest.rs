//! The payload's and the signature manifest's rules, and how the signature was found.

use berth_trust::EnvelopeFormat;
use serde_json::{Map, Value};

use super::*;

/// The `payload.*` and `manifest.*` rules.
#[expect(
    clippy::too_many_arguments,
    reason = "what check_signature read of the manifest, passed on as it is"
)]
pub(super) fn rules(
    r: &mut Results,
    cx: &Cx<'_>,
    manifest_bytes: &[u8],
    envelope_bytes: &[u8],
    how_pushed: &HowPushed,
    manifest: Option<Map<String, Value>>,
    layers: &[Value],
    layer_type: &str,
) {
    let Cx {
        d,
        format,
        chain,
        input,
        subject,
        ..
    } = *cx;
    let manifest_text = String::from_utf8_lossy(manifest_bytes).into_owned();
    let subject_text = format!(
        "signed image: mediaType {}, digest {}, size {}",
        subject.media_type(),
        subject.digest(),
        subject.size()
    );
    // payload.structure and payload.target
    let target = d
        .payload
        .as_deref()
        .map(|p| -> Result<Map<String, Value>, String> {
            let v: Value =
                serde_json::from_slice(p).map_err(|e| format!("the payload is not JSON: {e}"))?;
            let t = v
                .get("targetArtifact")
                .and_then(Value::as_object)
                .ok_or("no targetArtifact object")?;
            let mut f = Vec::new();
            if !t.get("mediaType").is_some_and(Value::is_string) {
                f.push("mediaType");
            }
            let digest = t.get("digest").and_then(Value::as_str);
            if digest.is_none_or(|s| Digest::parse(s).is_err()) {
                f.push("digest");
            }
            if !t.get("size").is_some_and(Value::is_u64) {
                f.push("size");
            }
            let annotations_ok = match t.get("annotations") {
                None => true,
                Some(Value::Object(a)) => a.values().all(Value::is_string),
                Some(_) => false,
            };
            if !annotations_ok {
                f.push("annotations (a string-to-string map)");
            }
            if f.is_empty() {
                Ok(t.clone())
            } else {
                Err(format!("targetArtifact without a valid {}", f.join(", ")))
            }
        });
    r.add(
        "payload.structure",
        matches!(target, Some(Ok(_))),
        "{\"targetArtifact\": {\"mediaType\", \"digest\", \"size\", optional string-to-string \"annotations\"}}",
        match &target {
            Some(Ok(_)) => "as required".into(),
            Some(Err(e)) => e.clone(),
            None => "no payload".into(),
        },
        input,
    );
    let want_target = want_target_text(subject);
    // what the payload names, read even when the descriptor is otherwise malformed
    let named = d.payload.as_deref().and_then(|p| {
        serde_json::from_slice::<Value>(p)
            .ok()?
            .get("targetArtifact")?
            .as_object()
            .cloned()
    });
    let (tgt_ok, tgt_actual) = match &named {
        Some(t) => same_descriptor(t, subject),
        None => (false, "no readable targetArtifact".to_owned()),
    };
    r.add(
        "payload.target",
        tgt_ok,
        want_target,
        tgt_actual,
        format!("{input}{subject_text}\n"),
    );

    // the signature manifest
    let m = manifest.unwrap_or_default();
    let minput = format!("signature manifest: {manifest_text}\n{subject_text}\n");
    let mt = m.get("mediaType").and_then(Value::as_str);
    r.add(
        "manifest.media-type",
        mt == Some(OCI_MANIFEST),
        OCI_MANIFEST,
        mt.map_or_else(
            || {
                if manifest_bytes.is_empty() {
                    "no manifest".into()
                } else {
                    "no mediaType".into()
                }
            },
            str::to_owned,
        ),
        &minput,
    );
    let artifact_type = m.get("artifactType").and_then(Value::as_str);
    let config = m.get("config").and_then(Value::as_object);
    let config_type = config
        .and_then(|c| c.get("mediaType"))
        .and_then(Value::as_str);
    let (type_ok, type_actual) = match (artifact_type, config_type) {
        (None, Some(ARTIFACT_TYPE)) => (
            true,
            format!("config.mediaType {ARTIFACT_TYPE}, no artifactType: the v1.1.0 form"),
        ),
        (Some(ARTIFACT_TYPE), Some(OCI_EMPTY)) => (
            true,
            format!(
                "artifactType {ARTIFACT_TYPE} with config.mediaType {OCI_EMPTY}: the form the main branch prefers"
            ),
        ),
        (a, c) => (
            false,
            format!(
                "artifactType {}, config.mediaType {}",
                a.unwrap_or("absent"),
                c.unwrap_or("absent")
            ),
        ),
    };
    r.add(
        "manifest.type",
        type_ok,
        format!("config.mediaType {ARTIFACT_TYPE} without artifactType (v1.1.0), or artifactType {ARTIFACT_TYPE} with config.mediaType {OCI_EMPTY} (main branch: preferred)"),
        type_actual,
        &minput,
    );
    let cdig = config.and_then(|c| c.get("digest")).and_then(Value::as_str);
    let csize = config.and_then(|c| c.get("size")).and_then(Value::as_u64);
    r.add(
        "manifest.config",
        cdig == Some(EMPTY_JSON_DIGEST) && csize == Some(2),
        format!("digest {EMPTY_JSON_DIGEST}, size 2"),
        format!(
            "digest {}, size {}",
            cdig.unwrap_or("absent"),
            csize.map_or("absent".into(), |s| s.to_string())
        ),
        &minput,
    );
    let env_digest = Digest::sha256_of(envelope_bytes).to_string();
    let mut layer_faults = Vec::new();
    if layers.len() != 1 {
        layer_faults.push(format!("{} layers", layers.len()));
    }
    if let Some(l) = layers.first() {
        if format.is_none() || EnvelopeFormat::from_media_type(layer_type).is_err() {
            layer_faults.push(format!("media type {layer_type:?}"));
        }
        if l.get("digest").and_then(Value::as_str) != Some(env_digest.as_str()) {
            layer_faults.push(format!(
                "digest {} is not the envelope's {env_digest}",
                l.get("digest").and_then(Value::as_str).unwrap_or("absent")
            ));
        }
        if l.get("size").and_then(Value::as_u64) != Some(envelope_bytes.len() as u64) {
            layer_faults.push(format!(
                "size {} is not the envelope's {}",
                l.get("size").map_or("absent".into(), Value::to_string),
                envelope_bytes.len()
            ));
        }
    }
    r.add(
        "manifest.layer",
        layer_faults.is_empty(),
        format!(
            "one layer, application/jose+json or application/cose, digest {env_digest}, size {}",
            envelope_bytes.len()
        ),
        if layer_faults.is_empty() {
            format!("one {layer_type} layer")
        } else {
            layer_faults.join("; ")
        },
        &minput,
    );
    let subj = m.get("subject").and_then(Value::as_object);
    let (s_ok, s_actual) = match subj {
        None => (false, "no subject".to_owned()),
        Some(s) => same_descriptor(s, subject),
    };
    r.add(
        "manifest.subject",
        s_ok,
        want_target_text(subject),
        s_actual,
        &minput,
    );
    let want_thumbs: Vec<String> = chain
        .iter()
        .map(|c| Digest::sha256_of(c.der()).hex().to_string())
        .collect();
    let annotation = m
        .get("annotations")
        .and_then(|a| a.get(ANNOTATION_THUMBPRINT))
        .and_then(Value::as_str);
    let (th_ok, th_actual) = match annotation {
        None => (false, "absent".to_owned()),
        Some(a) => match serde_json::from_str::<Vec<String>>(a) {
            Ok(list) => (
                !chain.is_empty()
                    && list.len() == want_thumbs.len()
                    && list
                        .iter()
                        .zip(&want_thumbs)
                        .all(|(g, w)| g.eq_ignore_ascii_case(w)),
                a.to_owned(),
            ),
            Err(_) => (false, format!("{a:?} is not a JSON array of strings")),
        },
    };
    r.add(
        "manifest.thumbprints",
        th_ok,
        serde_json::Value::from(want_thumbs).to_string(),
        th_actual,
        format!("{minput}{}", describe_chain(chain)),
    );
    match how_pushed {
        HowPushed::Given => {}
        HowPushed::ReferrersApi => r.add(
            "manifest.discoverable",
            true,
            "listed by the referrers API or in the sha256-<hex> tag index",
            "listed by the referrers API",
            &minput,
        ),
        HowPushed::TagFallback => r.add(
            "manifest.discoverable",
            true,
            "listed by the referrers API or in the sha256-<hex> tag index",
            "listed in the referrers tag index",
            &minput,
        ),
        HowPushed::NotListed(where_) => r.add(
            "manifest.discoverable",
            false,
            "listed by the referrers API or in the sha256-<hex> tag index",
            format!("listed by neither; found {where_}"),
            &minput,
        ),
    }
}
