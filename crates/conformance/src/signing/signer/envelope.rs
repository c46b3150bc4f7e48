//! The envelope's rules: structure, protected and unprotected headers, `alg`, the signature
//! value, times.

use berth_trust::{EnvelopeFormat, SignatureAlgorithm, Timestamp};

use super::*;

/// The `envelope.*` rules.
pub(super) fn rules(r: &mut Results, cx: &Cx<'_>) {
    let Cx {
        d,
        format,
        input,
        time_header,
        signing_time,
        leaf,
        ..
    } = *cx;
    // envelope.structure
    r.add(
        "envelope.structure",
        d.structure.is_empty(),
        match format {
            Some(EnvelopeFormat::Cose) => "a COSE_Sign1_Tagged: tag 18 over [protected bstr (a non-empty map), unprotected map, payload bstr, signature bstr]",
            _ => "a flattened JWS JSON object with exactly payload, protected, header and signature, base64url without padding",
        },
        if d.structure.is_empty() { "as required".into() } else { d.structure.join("; ") },
        input,
    );

    // envelope.required-headers
    let mut missing = Vec::new();
    for h in ["alg", "cty", "crit", H_SCHEME] {
        if d.get(h).is_none() {
            missing.push(h.to_owned());
        }
    }
    let mut misplaced = Vec::new();
    if let Some(t) = time_header {
        if d.get(t).is_none() {
            missing.push(t.to_owned());
        }
        if t == H_TIME && d.get(H_AUTH_TIME).is_some() {
            misplaced.push(format!(
                "{H_AUTH_TIME} is only valid for notary.x509.signingAuthority"
            ));
        }
    }
    r.add(
        "envelope.required-headers",
        missing.is_empty() && misplaced.is_empty(),
        format!("alg, cty, crit, {H_SCHEME}, and {H_TIME} (notary.x509) or {H_AUTH_TIME} (notary.x509.signingAuthority)"),
        if missing.is_empty() && misplaced.is_empty() {
            format!("present: {}", d.protected.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "))
        } else {
            let mut v = Vec::new();
            if !missing.is_empty() {
                v.push(format!("missing: {}", missing.join(", ")));
            }
            v.extend(misplaced);
            v.join("; ")
        },
        input,
    );

    // envelope.signing-scheme
    r.add(
        "envelope.signing-scheme",
        time_header.is_some(),
        "notary.x509 or notary.x509.signingAuthority",
        match d.get(H_SCHEME) {
            Some(v) => v.to_string(),
            None => "absent".into(),
        },
        input,
    );

    // envelope.crit
    let crit = match d.get("crit") {
        Some(Hv::List(l)) => Ok(l.clone()),
        Some(other) => Err(format!("crit is {other}, not an array of names")),
        None => Err("crit is absent".into()),
    };
    let mut must: Vec<&str> = vec![H_SCHEME];
    must.extend(CRITICAL_WHEN_PRESENT.iter().filter(|h| d.get(h).is_some()));
    let crit_faults: Vec<String> = match &crit {
        Err(e) => vec![e.clone()],
        Ok(list) => {
            let mut f = Vec::new();
            for m in &must {
                if !list.iter().any(|c| c == m) {
                    f.push(format!("{m} is not listed"));
                }
            }
            let mut seen = Vec::new();
            for c in list {
                if seen.contains(&c) {
                    f.push(format!("{c} is listed twice"));
                }
                seen.push(c);
                let registered = match format {
                    Some(EnvelopeFormat::Cose) => {
                        c.parse::<i64>().is_ok_and(|n| (0..=8).contains(&n))
                    }
                    _ => JWS_REGISTERED.contains(&c.as_str()),
                };
                if registered {
                    f.push(format!("{c} is a registered header and must not be listed"));
                } else if c == H_TIME {
                    f.push(format!("{c} is informational and must not be critical"));
                } else if d.get(c).is_none() {
                    f.push(format!("{c} is listed but not in the protected header"));
                }
            }
            f
        }
    };
    r.add(
        "envelope.crit",
        crit_faults.is_empty(),
        format!(
            "crit = [{}] (plus extended headers the signer marks critical)",
            must.join(", ")
        ),
        match (&crit, crit_faults.is_empty()) {
            (Ok(l), true) => format!("crit = {l:?}"),
            (Ok(l), false) => format!("crit = {l:?}: {}", crit_faults.join("; ")),
            (Err(_), _) => crit_faults.join("; "),
        },
        input,
    );

    // envelope.cty
    r.add(
        "envelope.cty",
        d.text("cty") == Some(PAYLOAD_CTY),
        PAYLOAD_CTY,
        d.get("cty").map_or_else(|| "absent".into(), Hv::to_string),
        input,
    );

    // envelope.alg
    let alg = alg_of(d);
    let want_alg = leaf.map(|l| SignatureAlgorithm::for_key(&l.public_key));
    let (alg_ok, alg_expected) = match (&alg, &want_alg) {
        (Ok(a), Some(Ok(w))) => (
            a == w,
            format!(
                "{} (the signing certificate has {})",
                w.name(),
                leaf.map(|l| l.public_key.describe()).unwrap_or_default()
            ),
        ),
        (_, Some(Err(e))) => (false, format!("no algorithm: {e}")),
        (_, None) => (
            false,
            "the algorithm of the signing certificate's key (there is no certificate)".into(),
        ),
        (Err(_), Some(Ok(w))) => (false, w.name().to_owned()),
    };
    r.add(
        "envelope.alg",
        alg_ok,
        alg_expected,
        match &alg {
            Ok(a) => a.name().to_owned(),
            Err(e) => e.clone(),
        },
        input,
    );

    // envelope.signature
    // checked under the algorithm the key selects (the header's, for a key outside the
    // table), so that a wrong alg header fails envelope.alg alone
    let verify_alg = match &want_alg {
        Some(Ok(w)) => Ok(*w),
        _ => alg.clone(),
    };
    let sig_check = match (&verify_alg, leaf, &d.signed, &d.signature) {
        (Ok(a), Some(l), Some(signed), Some(sig)) => a.verify(&l.public_key, signed, sig),
        (Err(e), ..) => Err(format!("cannot check: {e}")),
        (_, None, ..) => Err("cannot check: no signing certificate".into()),
        _ => Err("cannot check: the signed bytes or the signature could not be read".into()),
    };
    r.add(
        "envelope.signature",
        sig_check.is_ok(),
        "a signature over the signed bytes that the signing certificate's key verifies",
        match &sig_check {
            Ok(()) => "verifies".to_owned(),
            Err(e) => e.clone(),
        },
        input,
    );

    // envelope.time-format and envelope.time-fraction
    let times: Vec<(&str, Result<Timestamp, String>)> = [H_TIME, H_AUTH_TIME, H_EXPIRY]
        .into_iter()
        .filter_map(|h| time_of(d, h).map(|t| (h, t)))
        .collect();
    let time_faults: Vec<String> = times
        .iter()
        .filter_map(|(_, t)| t.as_ref().err().cloned())
        .collect();
    let shown: Vec<String> = times
        .iter()
        .map(|(h, _)| format!("{h} = {}", d.get(h).map(Hv::to_string).unwrap_or_default()))
        .collect();
    r.add(
        "envelope.time-format",
        time_faults.is_empty(),
        match format {
            Some(EnvelopeFormat::Cose) => {
                "epoch-based date/time: CBOR tag 1 over an integer (RFC 8949 3.4.2)"
            }
            _ => "RFC 3339 date-time strings",
        },
        if time_faults.is_empty() {
            shown.join("; ")
        } else {
            time_faults.join("; ")
        },
        input,
    );
    let fractional: Vec<&str> = times
        .iter()
        .filter(|(h, _)| matches!(d.get(h), Some(Hv::Text(s)) if s.len() > 19 && s.as_bytes()[19] == b'.'))
        .map(|(h, _)| *h)
        .collect();
    r.add(
        "envelope.time-fraction",
        fractional.is_empty(),
        "no fractional seconds",
        if fractional.is_empty() {
            shown.join("; ")
        } else {
            format!("fractional seconds in {}", fractional.join(", "))
        },
        input,
    );

    // envelope.expiry
    let expiry = time_of(d, H_EXPIRY);
    let (exp_ok, exp_actual) = match (&expiry, signing_time) {
        (None, _) => (true, "no expiry".to_owned()),
        (Some(Ok(e)), Some(s)) => (*e > s, format!("expiry {e}, signing time {s}")),
        (Some(Ok(e)), None) => (false, format!("expiry {e} but no readable signing time")),
        (Some(Err(e)), _) => (false, e.clone()),
    };
    r.add("envelope.expiry", exp_ok, "expiry later than the signing time (an expiry at or before it makes a signature expired when made)", exp_actual, input);

    // envelope.unprotected-headers
    let allowed: &[&str] = match format {
        Some(EnvelopeFormat::Cose) => &[
            "x5chain (33)",
            "io.cncf.notary.timestampSignature",
            "io.cncf.notary.signingAgent",
        ],
        _ => &[
            "x5c",
            "io.cncf.notary.timestampSignature",
            "io.cncf.notary.signingAgent",
        ],
    };
    let extra: Vec<&String> = d
        .unprotected
        .iter()
        .filter(|h| !allowed.contains(&h.as_str()))
        .collect();
    r.add(
        "envelope.unprotected-headers",
        extra.is_empty(),
        allowed.join(", "),
        if extra.is_empty() {
            format!("[{}]", d.unprotected.join(", "))
        } else {
            format!(
                "unexpected: {}",
                extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        input,
    );
}
