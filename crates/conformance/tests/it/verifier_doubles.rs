//! Every case of the verifier corpus can fail, each for its own rule: deliberately broken
//! verifiers, each berth's verifier with exactly one rule switched off (or one part the
//! specification requires missing), fail exactly the cases of that rule — and between them
//! every case, so none passes by accident (as the broken-registry proxy does for the
//! distribution checks).
//!
//! A double is a shell script around `berth verify`, broken one of three ways:
//! - **policy**: it rewrites the case's trust policy (berth's copy) with `sed` first — a
//!   verifier that ignores `trustedIdentities`, `registryScopes`, expiry, a verification
//!   level, the overrides, or the `tsa` store;
//! - **ignore**: it runs berth's verifier and turns a refusal for one rule's reason (an
//!   extended regex over berth's message for that rule) into an acceptance — a verifier
//!   that does not enforce that rule. A case broken in one way only passes the other
//!   steps, so the double accepts exactly where a verifier without the rule would; and the
//!   cases it must fail show that berth refuses each case for the reason it was built for,
//!   not an accidental other one;
//! - **lacks**: it turns an acceptance of what it cannot handle (a JWS, a COSE_Sign1) into
//!   a refusal — a verifier missing a part every implementation must support, which the
//!   MUST-accept cases catch.

use std::collections::BTreeSet;
use std::path::Path;

use berth_conformance::signing::verifier::{must_accept_ids, must_refuse_ids};
use berth_test_support::{requires_tool, write_file};

use super::signing::{check, check_with_tsa, failed};

/// How a double is broken.
enum Break {
    /// `sed -e EXPR` over the case's berth trust policy before verifying.
    Policy(&'static str),
    /// A refusal whose output matches this extended regex becomes an acceptance.
    Ignore(&'static str),
    /// An acceptance whose output matches this extended regex becomes a refusal (a verifier
    /// that lacks something the specification requires it to support).
    Lacks(&'static str),
}

struct Double {
    name: &'static str,
    /// The rule it does not follow.
    rule: &'static str,
    broken: Break,
    /// It needs the timestamp cases (a test TSA).
    tsa: bool,
    /// The cases it must fail, and no other.
    fails: &'static [&'static str],
}

const DOUBLES: &[Double] = &[
    Double {
        name: "any-identity",
        rule: "the signing certificate's subject must match trustedIdentities",
        broken: Break::Policy(
            r#"s/\"trustedIdentities\":\[[^]]*\]/\"trustedIdentities\":[\"*\"]/"#,
        ),
        tsa: false,
        fails: &["verifier.identity-not-trusted"],
    },
    Double {
        name: "any-scope",
        rule: "a statement applies only to the repositories of its registryScopes",
        broken: Break::Policy(
            r##"s#\"registryScopes\":\[[^]]*\]#\"registryScopes\":[\"$repo\"]#"##,
        ),
        tsa: false,
        fails: &["verifier.scope-not-matching"],
    },
    Double {
        name: "no-expiry",
        rule: "strict enforces the signature's io.cncf.notary.expiry",
        broken: Break::Policy(
            r#"s/\"signatureVerification\":{\"level\":\"strict\"}/\"signatureVerification\":{\"level\":\"strict\",\"override\":{\"expiry\":\"log\"}}/"#,
        ),
        tsa: false,
        fails: &["verifier.expired-signature"],
    },
    Double {
        name: "always-strict",
        rule: "permissive, audit and skip only log what strict enforces",
        broken: Break::Policy(r#"s/\"level\":\"[a-z]*\"/\"level\":\"strict\"/"#),
        tsa: false,
        fails: &[
            "verifier.audit-logs-authenticity",
            "verifier.permissive-logs-expired-leaf",
            "verifier.permissive-logs-expiry",
            "verifier.skip-accepts-unsigned",
        ],
    },
    Double {
        name: "permissive-as-audit",
        rule: "permissive enforces authenticity",
        broken: Break::Policy(r#"s/\"level\":\"permissive\"/\"level\":\"audit\"/"#),
        tsa: false,
        fails: &["verifier.permissive-enforces-authenticity"],
    },
    Double {
        name: "audit-as-skip",
        rule: "audit enforces integrity (only skip verifies nothing)",
        // skip takes no trust stores, identities or overrides: dropped with the level
        broken: Break::Policy(
            r#"/\"level\":\"audit\"/{s/\"level\":\"audit\"/\"level\":\"skip\"/;s/,\"override\":{[^}]*}//;s/,\"trustStores\":\[[^]]*\]//;s/,\"trustedIdentities\":\[[^]]*\]//}"#,
        ),
        tsa: false,
        fails: &[
            "verifier.audit-enforces-integrity",
            "verifier.override-audit-authenticity-enforce",
        ],
    },
    Double {
        name: "no-overrides",
        rule: "a level's override changes what it enforces or logs",
        broken: Break::Policy(r#"s/,\"override\":{[^}]*}//"#),
        tsa: false,
        fails: &[
            "verifier.override-audit-authenticity-enforce",
            "verifier.override-permissive-timestamp-enforce",
            "verifier.override-strict-expiry-log",
        ],
    },
    Double {
        name: "no-signature-needed",
        rule: "an artifact without a signature fails verification",
        broken: Break::Ignore(r#"failed signature verification: no signature found"#),
        tsa: false,
        fails: &["verifier.unsigned"],
    },
    Double {
        name: "no-integrity",
        rule: "the envelope's signature must verify with the signing certificate's key",
        broken: Break::Ignore(
            r#"integrity \(enforce\): failed: the signature does not verify with the signing certificate's key"#,
        ),
        tsa: false,
        // berth takes the first certificate of the chain as the signer's: with the root
        // first, the signature does not verify with its key (integrity fails before the
        // chain's order is looked at).
        fails: &[
            "verifier.audit-enforces-integrity",
            "verifier.chain-out-of-order",
            "verifier.corrupted-signature",
        ],
    },
    Double {
        name: "any-target",
        rule: "the payload's digest, size and media type must be the artifact's",
        broken: Break::Ignore(r#"integrity \(enforce\): failed: the signature is over sha256:"#),
        tsa: false,
        fails: &[
            "verifier.subject-swapped",
            "verifier.wrong-digest",
            "verifier.wrong-media-type",
            "verifier.wrong-size",
        ],
    },
    Double {
        name: "any-eku",
        rule: "a code-signing leaf's extendedKeyUsage names no other purpose",
        broken: Break::Ignore(
            r#"authenticity \(enforce\): failed: signing certificate .*extendedKeyUsage must not contain"#,
        ),
        tsa: false,
        fails: &["verifier.leaf-not-code-signing"],
    },
    Double {
        name: "ignores-critical",
        rule: "unknown critical attributes fail verification",
        broken: Break::Ignore(r#"failed: unknown critical header"#),
        tsa: false,
        fails: &[
            "verifier.unknown-critical-header",
            "verifier.unknown-critical-header-cose",
        ],
    },
    Double {
        name: "any-algorithm",
        rule: "the algorithm is one of the specification's, and the signing key's",
        broken: Break::Ignore(
            r#"failed: (signature algorithm [A-Z0-9]+ does not match the signing certificate's key|invalid protected header: signature algorithm "[^"]*" is not allowed)"#,
        ),
        tsa: false,
        fails: &[
            "verifier.algorithm-mismatch",
            "verifier.algorithm-not-allowed",
        ],
    },
    Double {
        name: "any-key-size",
        rule: "RSA keys are 2048 bits or more",
        broken: Break::Ignore(
            r#"failed: invalid certificate chain: signing key RSA [0-9]+ is not allowed"#,
        ),
        tsa: false,
        fails: &["verifier.weak-rsa-key"],
    },
    Double {
        name: "any-chain",
        rule: "the chain is complete, leaf to root",
        broken: Break::Ignore(
            r#"authenticity \(enforce\): failed: certificate [0-9]+ .*: its issuer is not the subject of the next certificate"#,
        ),
        tsa: false,
        fails: &["verifier.chain-without-root"],
    },
    Double {
        name: "any-root",
        rule: "the chain ends in a certificate of the policy's trust store",
        broken: Break::Ignore(
            r#"authenticity \(enforce\): failed: the certificate chain does not lead to a certificate of the policy's trust stores"#,
        ),
        tsa: false,
        fails: &[
            "verifier.override-audit-authenticity-enforce",
            "verifier.permissive-enforces-authenticity",
            "verifier.untrusted-root",
        ],
    },
    Double {
        name: "any-content-type",
        rule: "cty is the Notary payload type",
        broken: Break::Ignore(
            r#"integrity \(enforce\): failed: payload content type "[^"]*" is not application/vnd\.cncf\.notary\.payload\.v1\+json"#,
        ),
        tsa: false,
        fails: &["verifier.unsupported-content-type"],
    },
    Double {
        name: "no-authentic-timestamp",
        rule: "the chain must be valid now, or at the time of a trusted timestamp",
        broken: Break::Ignore(r#"authenticTimestamp \(enforce\): failed: "#),
        tsa: true,
        fails: &[
            "verifier.expired-leaf",
            "verifier.override-permissive-timestamp-enforce",
            "verifier.timestamp-after-expiry",
        ],
    },
    Double {
        name: "jws-unsupported",
        rule: "every implementation supports the JWS envelope",
        broken: Break::Lacks(r#"^signature sha256:[0-9a-f]+ \(application/jose\+json\)"#),
        tsa: true,
        fails: &[
            "verifier.audit-logs-authenticity",
            "verifier.override-strict-expiry-log",
            "verifier.permissive-logs-expired-leaf",
            "verifier.permissive-logs-expiry",
            "verifier.timestamped-expired-leaf",
            "verifier.valid-jws",
        ],
    },
    Double {
        name: "cose-unsupported",
        rule: "every implementation supports the COSE_Sign1 envelope",
        broken: Break::Lacks(r#"^signature sha256:[0-9a-f]+ \(application/cose\)"#),
        tsa: false,
        fails: &["verifier.valid-cose"],
    },
    Double {
        name: "no-timestamps",
        rule: "a trusted timestamp from the chain's validity makes an expired chain valid",
        // a verifier that does not read timestamp countersignatures: as if the policy
        // named no tsa store
        broken: Break::Policy(r#"s/,\"tsa:[^\"]*\"//;s/\"tsa:[^\"]*\",//"#),
        tsa: true,
        fails: &["verifier.timestamped-expired-leaf"],
    },
];

/// Writes `double`'s script into `dir`; its verifier command line.
fn script(dir: &Path, double: &Double) -> String {
    let berth = berth_test_support::berth_bin();
    let berth = berth.display();
    let path = dir.join(format!("{}.sh", double.name));
    let body = match double.broken {
        Break::Policy(sed) => format!(
            "#!/bin/sh\n# a verifier that does not follow: {rule}\nset -e\nconfig=\"$1\"; image=\"$2\"; repo=\"${{image%@*}}\"\nsed -i -e \"{sed}\" \"$config/berth/trustpolicy.json\"\nexec {berth} verify --plain-http \"$image\"\n",
            rule = double.rule,
        ),
        Break::Ignore(pattern) | Break::Lacks(pattern) => {
            let patterns = dir.join(format!("{}.pattern", double.name));
            write_file(&patterns, format!("{pattern}\n").as_bytes());
            let (when, verdict) = match double.broken {
                Break::Ignore(_) => (
                    "-ne 0",
                    "echo 'broken verifier: ignored that failure'; exit 0",
                ),
                _ => (
                    "-eq 0",
                    "echo 'broken verifier: cannot handle that'; exit 1",
                ),
            };
            format!(
                "#!/bin/sh\n# a verifier that does not follow: {rule}\nout=$({berth} verify --plain-http \"$2\" 2>&1); code=$?\nprintf '%s\\n' \"$out\"\nif [ \"$code\" {when} ] && printf '%s\\n' \"$out\" | grep -Eqf {patterns}; then\n  {verdict}\nfi\nexit \"$code\"\n",
                rule = double.rule,
                patterns = patterns.display(),
            )
        }
    };
    write_file(&path, body.as_bytes());
    format!("sh {} {{config}} {{image}}", path.display())
}

/// Runs the corpus against the double `name` and checks that it fails exactly its cases.
fn prove(name: &str) {
    requires_tool!("openssl");
    let double = DOUBLES
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no double {name}"));
    let dir = tempfile::tempdir().unwrap();
    let command = script(dir.path(), double);
    let report = if double.tsa {
        check_with_tsa(&command)
    } else {
        check(&command)
    };
    let got = failed(&report);
    let want: BTreeSet<String> = double.fails.iter().map(|s| s.to_string()).collect();
    let observed: String = report
        .checks
        .iter()
        .filter(|c| got.symmetric_difference(&want).any(|id| *id == c.info.id))
        .map(|c| {
            format!(
                "  {}: {}\n",
                c.info.id,
                c.evidence.as_ref().map_or("", |e| e.observed.as_str())
            )
        })
        .collect();
    assert_eq!(got, want, "{name} ({}):\n{observed}", double.rule);
}

/// One test per double (they run in parallel), named as the double.
macro_rules! doubles {
    ($($test:ident: $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                prove($name);
            }
        )*

        /// Every double has its test.
        const TESTED: &[&str] = &[$($name),*];
    };
}

doubles! {
    ignores_trusted_identities: "any-identity",
    ignores_registry_scopes: "any-scope",
    ignores_expiry: "no-expiry",
    treats_every_level_as_strict: "always-strict",
    treats_permissive_as_audit: "permissive-as-audit",
    treats_audit_as_skip: "audit-as-skip",
    ignores_overrides: "no-overrides",
    needs_no_signature: "no-signature-needed",
    ignores_integrity: "no-integrity",
    ignores_the_target: "any-target",
    ignores_extended_key_usage: "any-eku",
    ignores_unknown_critical_headers: "ignores-critical",
    ignores_the_algorithm: "any-algorithm",
    ignores_the_key_size: "any-key-size",
    ignores_an_incomplete_chain: "any-chain",
    ignores_the_trust_store: "any-root",
    ignores_the_content_type: "any-content-type",
    ignores_the_authentic_timestamp: "no-authentic-timestamp",
    lacks_jws: "jws-unsupported",
    lacks_cose: "cose-unsupported",
    lacks_timestamps: "no-timestamps",
}

/// Between them the doubles fail every case: none can pass by accident. (Each double's test
/// proves it fails exactly the cases listed for it.)
#[test]
fn every_case_is_failed_by_a_double_breaking_its_rule() {
    let names: BTreeSet<&str> = DOUBLES.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        TESTED.iter().copied().collect(),
        "a double without its test"
    );
    let caught: BTreeSet<&str> = DOUBLES
        .iter()
        .flat_map(|d| d.fails.iter().copied())
        .collect();
    let uncaught: Vec<String> = must_refuse_ids()
        .into_iter()
        .filter(|id| !caught.contains(id.as_str()))
        .collect();
    assert!(uncaught.is_empty(), "no broken verifier fails {uncaught:?}");
    // and every MUST-accept case, by a double lacking something it must support
    let uncaught: Vec<String> = must_accept_ids()
        .into_iter()
        .filter(|id| !caught.contains(id.as_str()))
        .collect();
    assert!(uncaught.is_empty(), "no broken verifier fails {uncaught:?}");
    // and no double lists a case the corpus does not have
    let all: BTreeSet<String> = must_refuse_ids()
        .into_iter()
        .chain(must_accept_ids())
        .collect();
    for d in DOUBLES {
        for id in d.fails {
            assert!(all.contains(*id), "{}: {id} is not a case", d.name);
        }
    }
}
