//! The certificate chain's rules (signature-specification.md, "Certificate Requirements").

use berth_trust::Timestamp;

use super::*;

/// The `chain.*` rules.
pub(super) fn rules(r: &mut Results, cx: &Cx<'_>) {
    let Cx {
        chain,
        cert_faults,
        input,
        signing_time,
        leaf,
        ..
    } = *cx;
    // chain.present
    let chain_ok = cert_faults.is_empty() && !chain.is_empty();
    r.add(
        "chain.present",
        chain_ok,
        "a non-empty chain of DER certificates, leaf first",
        if chain_ok {
            format!("{} certificate(s)", chain.len())
        } else if cert_faults.is_empty() {
            "an empty chain".into()
        } else {
            cert_faults.join("; ")
        },
        input,
    );

    // chain.order
    let mut order_faults = Vec::new();
    for (i, pair) in chain.windows(2).enumerate() {
        if !pair[0].names_issuer(&pair[1]) {
            order_faults.push(format!(
                "certificate {i}'s issuer ({}) is not certificate {}'s subject ({})",
                pair[0].issuer,
                i + 1,
                pair[1].subject
            ));
        } else if let Err(e) = pair[0].verify_signed_by(&pair[1]) {
            order_faults.push(format!(
                "certificate {i} is not signed by certificate {}: {e}",
                i + 1
            ));
        }
    }
    if let Some(root) = chain.last() {
        if !root.is_self_issued() {
            order_faults.push(format!(
                "the last certificate ({}) is not a self-signed root",
                root.subject
            ));
        } else if let Err(e) = root.verify_signed_by(root) {
            order_faults.push(format!("the root does not verify with its own key: {e}"));
        }
    }
    r.add(
        "chain.order",
        !chain.is_empty() && order_faults.is_empty(),
        "leaf, intermediates, root: each certificate issued and signed by the next; the last self-signed",
        if chain.is_empty() { "no certificates".into() } else if order_faults.is_empty() { "in order".into() } else { order_faults.join("; ") },
        input,
    );

    // chain.leaf-basic-constraints
    let (bc_ok, bc_actual) = match leaf.map(|l| l.basic_constraints) {
        None => (false, "no signing certificate".to_owned()),
        Some(None) => (true, "absent".to_owned()),
        Some(Some(b)) => (!b.ca, format!("cA={}", b.ca)),
    };
    r.add(
        "chain.leaf-basic-constraints",
        bc_ok,
        "absent, or cA=false",
        bc_actual,
        input,
    );

    // chain.leaf-key-usage
    let forbidden_bits: u16 =
        (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
    let (ku_ok, ku_actual) = match leaf.map(|l| l.key_usage) {
        None => (false, "no signing certificate".to_owned()),
        Some(None) => (false, "absent".to_owned()),
        Some(Some(k)) => {
            let mut f = Vec::new();
            if !k.critical {
                f.push("not critical".to_owned());
            }
            if !k.has(KeyUsage::DIGITAL_SIGNATURE) {
                f.push("no digitalSignature".to_owned());
            }
            let bad = key_usage_names(k.bits & forbidden_bits);
            if !bad.is_empty() {
                f.push(format!("forbidden {}", bad.join("+")));
            }
            let shown = format!(
                "{}{}",
                key_usage_names(k.bits).join("+"),
                if k.critical { " (critical)" } else { "" }
            );
            judged(&f, shown, "")
        }
    };
    r.add("chain.leaf-key-usage", ku_ok, "critical keyUsage with digitalSignature and none of keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly", ku_actual, input);

    // chain.leaf-eku
    let (eku_ok, eku_actual) = match leaf.map(|l| &l.ext_key_usage) {
        None => (false, "no signing certificate".to_owned()),
        Some(None) => (true, "absent".to_owned()),
        Some(Some(ekus)) => {
            let bad: Vec<&str> = ekus
                .iter()
                .filter(|o| EKU_FORBIDDEN.iter().any(|(f, _)| f == o))
                .map(|o| eku_name(o))
                .collect();
            let shown = ekus
                .iter()
                .map(|o| eku_name(o))
                .collect::<Vec<_>>()
                .join("+");
            judged(&bad, shown, "forbidden ")
        }
    };
    r.add("chain.leaf-eku", eku_ok, "absent, or codeSigning (or other usages) without anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection, timeStamping", eku_actual, input);

    // chain.ca-constraints
    let mut ca_faults = Vec::new();
    if chain.len() > 1 {
        for (i, c) in chain.iter().enumerate().skip(1) {
            match c.basic_constraints {
                Some(b) if b.ca => {
                    // CA certificates below this one in the chain
                    let below = (i - 1) as u64;
                    if let Some(p) = b.path_len
                        && below > p
                    {
                        ca_faults.push(format!("certificate {i}: pathLenConstraint {p} with {below} CA certificate(s) below"));
                    }
                }
                Some(_) => ca_faults.push(format!("certificate {i}: cA=false")),
                None => ca_faults.push(format!("certificate {i}: no basicConstraints")),
            }
            match c.key_usage {
                Some(k) if k.critical && k.has(KeyUsage::KEY_CERT_SIGN) => {}
                Some(k) if !k.critical => {
                    ca_faults.push(format!("certificate {i}: keyUsage not critical"))
                }
                Some(_) => ca_faults.push(format!("certificate {i}: no keyCertSign")),
                None => ca_faults.push(format!("certificate {i}: no keyUsage")),
            }
        }
    }
    r.add(
        "chain.ca-constraints",
        ca_faults.is_empty(),
        "basicConstraints cA=true and a critical keyUsage with keyCertSign on every certificate after the leaf",
        if chain.len() <= 1 { "no CA certificates (a single self-signed certificate is judged as a leaf)".into() } else if ca_faults.is_empty() { "as required".into() } else { ca_faults.join("; ") },
        input,
    );

    // chain.key-size
    let weak: Vec<String> = chain
        .iter()
        .enumerate()
        .filter(|(_, c)| !key_ok(&c.public_key))
        .map(|(i, c)| format!("certificate {i}: {}", c.public_key.describe()))
        .collect();
    r.add(
        "chain.key-size",
        !chain.is_empty() && weak.is_empty(),
        "RSA ≥ 2048 bits or EC P-256/P-384/P-521",
        if chain.is_empty() {
            "no certificates".into()
        } else if weak.is_empty() {
            chain
                .iter()
                .map(|c| c.public_key.describe())
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            weak.join("; ")
        },
        input,
    );

    // chain.validity
    // without a readable signing time (another rule's failure), at the time of checking
    let (at, when) = match signing_time {
        Some(t) => (t, "the signing time"),
        None => (
            Timestamp::now(),
            "the time of checking (no readable signing time)",
        ),
    };
    let bad: Vec<String> = chain
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.valid_at(at))
        .map(|(i, c)| format!("certificate {i} valid {} to {}", c.not_before, c.not_after))
        .collect();
    let val_ok = !chain.is_empty() && bad.is_empty();
    let val_actual = if bad.is_empty() {
        format!("all valid at {when}, {at}")
    } else {
        format!("at {when}, {at}: {}", bad.join("; "))
    };
    r.add(
        "chain.validity",
        val_ok,
        "notBefore ≤ signing time ≤ notAfter for every certificate",
        val_actual,
        input,
    );
}
