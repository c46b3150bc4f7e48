//! `berth conformance verify` and its library: berth's verifier conforms; notation conforms
//! but for the deviations listed (and explained) in [`NOTATION_DEVIATIONS`]; and every case
//! can fail — deliberately broken verifiers (test doubles, each breaking one rule) fail
//! exactly the cases of that rule.
//!
//! The doubles here are `true` (accepts everything) and `false` (refuses everything); those
//! that each break one rule are in `verifier_doubles`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_conformance::signing::verifier::{
    self, VerifierOptions, check_verifier, must_accept_ids, must_refuse_ids,
};
use berth_conformance::{Report, Status, Subject, Workflow};
use berth_test_support::{Registry, RegistryOptions, requires_tool};

/// Where notation fails the corpus, and why. Each is a verdict notation v1.3.2 gives that
/// the specification forbids; the test fails if notation's failures are not exactly these.
pub const NOTATION_DEVIATIONS: [(&str, &str); 2] = [
    (
        "verifier.unknown-critical-header",
        "notation accepts a JWS whose crit lists a header it does not know \
         (io.cncf.conformance.unknownCritical); signature-specification.md \"Extended \
         attributes\" says unknown critical attributes MUST cause verification to fail",
    ),
    (
        "verifier.unknown-critical-header-cose",
        "the same in a COSE_Sign1 (crit, label 2): notation-core-go reads signed attributes \
         it does not know as extended attributes, which notation-go hands to a verification \
         plugin when the envelope names one; with none named it verifies without them",
    ),
];

/// The library run of `command` against a fresh registry (without the vectors), each case
/// given `timeout`.
fn run(command: &str, timeout: Duration) -> Result<Report, berth_conformance::signing::Error> {
    run_with(command, timeout, None)
}

fn run_with(
    command: &str,
    timeout: Duration,
    tsa: Option<verifier::Tsa>,
) -> Result<Report, berth_conformance::signing::Error> {
    let reg = Registry::start(RegistryOptions::new());
    let work = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check_verifier(&VerifierOptions {
        client: crate::client(&reg.host(), None),
        registry: reg.host(),
        namespace: "conformance/signing".into(),
        command: verifier::parse_command(command).unwrap(),
        workdir: work.path().to_owned(),
        vectors: None,
        timeout,
        tsa,
        openssl: "openssl".into(),
    }))
}

pub(crate) fn check(command: &str) -> Report {
    run(command, Duration::from_secs(60)).unwrap()
}

/// [`check`] with a test TSA: every case runs, the timestamp ones included.
pub(crate) fn check_with_tsa(command: &str) -> Report {
    let tsa = berth_test_support::TestTsa::start();
    run_with(command, Duration::from_secs(60), Some(tsa_of(&tsa))).unwrap()
}

/// The library's view of a test TSA: its URL and root.
fn tsa_of(tsa: &berth_test_support::TestTsa) -> verifier::Tsa {
    let root = std::fs::read(tsa.root()).unwrap();
    verifier::Tsa {
        url: tsa.url(),
        root: berth_trust::Certificate::parse_many(&root)
            .unwrap()
            .remove(0),
    }
}

pub(crate) fn failed(report: &Report) -> BTreeSet<String> {
    report
        .with_status(Status::Fail)
        .map(|c| c.info.id.clone())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// `berth conformance verify --verifier COMMAND --vectors … --json --html --junit` into
/// `dir`; the JSON report, and whether the command exited 0.
pub fn verify_command(command: &str, dir: &Path) -> (Report, bool, String) {
    verify_command_with(command, dir, None)
}

/// [`verify_command`], with the timestamp cases when a TSA is given.
fn verify_command_with(
    command: &str,
    dir: &Path,
    tsa: Option<&berth_test_support::TestTsa>,
) -> (Report, bool, String) {
    let mut cmd = Command::new(berth_test_support::berth_bin());
    if let Some(tsa) = tsa {
        cmd.arg("conformance")
            .arg("verify")
            .arg("--tsa-url")
            .arg(tsa.url())
            .arg("--tsa-root")
            .arg(tsa.root());
    } else {
        cmd.args(["conformance", "verify"]);
    }
    let out = berth_test_support::run_with_timeout(
        cmd.args(["--verifier", command, "--vectors"])
            .arg(berth_test_support::notation_vectors())
            .arg("--workdir")
            .arg(dir.join("cases"))
            .arg("--json")
            .arg(dir.join("report.json"))
            .arg("--html")
            .arg(dir.join("report.html"))
            .arg("--junit")
            .arg(dir.join("report.xml")),
        Duration::from_secs(600),
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap())
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{text}"));
    (report, out.status.success(), text)
}

fn berth_verify() -> String {
    format!(
        "{} verify --plain-http {{image}}",
        berth_test_support::berth_bin().display()
    )
}

#[test]
fn berths_verifier_conforms() {
    requires_tool!("openssl");
    let tsa = berth_test_support::TestTsa::start();
    let dir = tempfile::tempdir().unwrap();
    let (report, ok, out) = verify_command_with(&berth_verify(), dir.path(), Some(&tsa));
    assert!(ok, "{out}");
    assert_eq!(report.subject, Subject::Verifier);
    assert!(report.conformant);
    assert_eq!(report.verdict(), "conforms");
    assert_eq!(failed(&report), BTreeSet::new(), "{out}");
    // The whole corpus ran (the weak-key case too: openssl is here), and notation's vectors.
    assert_eq!(report.with_status(Status::Skip).count(), 0, "{out}");
    let ids: BTreeSet<String> = report.checks.iter().map(|c| c.info.id.clone()).collect();
    for id in must_accept_ids().iter().chain(&must_refuse_ids()) {
        assert!(ids.contains(id), "{id} did not run");
    }
    assert_eq!(report.summary.len(), 2);
    assert_eq!(report.summary[1].workflow, Workflow::Vectors);
    assert_eq!(report.summary[1].counts.pass, 9);
    assert!(out.contains("conforms"), "{out}");
    // Each check says what it gave the verifier, what it did and what the spec requires.
    for c in &report.checks {
        let e = c.evidence.as_ref().unwrap();
        assert!(e.required.starts_with("MUST "), "{}", c.info.id);
        assert!(e.observed.starts_with("accepted") || e.observed.starts_with("refused"));
        assert!(e.input.iter().any(|i| i.label.starts_with("trust policy")));
        assert!(
            c.info
                .spec_url
                .starts_with("https://github.com/notaryproject/specifications/blob/v1.1.0/specs/")
                && c.info.spec_url.contains(".md#"),
            "{}",
            c.info.spec_url
        );
    }
    let jws = report
        .checks
        .iter()
        .find(|c| c.info.id == "verifier.unknown-critical-header")
        .unwrap();
    let input = &jws.evidence.as_ref().unwrap().input;
    assert!(input.iter().any(|i| i.label == "signature envelope"
        && i.text.contains("\"io.cncf.conformance.unknownCritical\"")));
    let eku = report
        .checks
        .iter()
        .find(|c| c.info.id == "verifier.leaf-not-code-signing")
        .unwrap();
    assert!(
        eku.evidence
            .as_ref()
            .unwrap()
            .input
            .iter()
            .any(|i| i.text.contains("extendedKeyUsage: serverAuth"))
    );
}

#[test]
fn notation_conforms_but_for_its_listed_deviations() {
    requires_tool!("notation", "openssl");
    let tsa = berth_test_support::TestTsa::start();
    let dir = tempfile::tempdir().unwrap();
    let (report, ok, out) = verify_command_with(
        "notation verify --insecure-registry {image}",
        dir.path(),
        Some(&tsa),
    );
    let expected: BTreeSet<String> = NOTATION_DEVIATIONS
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(failed(&report), expected, "{out}");
    assert_eq!(ok, expected.is_empty(), "{out}");
    assert_eq!(
        report.verdict(),
        format!("does not conform: {} MUST violations", expected.len())
    );
    assert!(
        out.contains("fail verifier.unknown-critical-header [MUST]"),
        "{out}"
    );
}

#[test]
fn a_verifier_that_accepts_everything_fails_exactly_the_must_refuse_cases() {
    requires_tool!("openssl");
    let report = check_with_tsa("true {image}");
    assert_eq!(failed(&report), must_refuse_ids().into_iter().collect());
    let n = must_refuse_ids().len();
    assert_eq!(
        report.verdict(),
        format!("does not conform: {n} MUST violations")
    );
    assert!(n >= 15, "{n}");
}

#[test]
fn a_verifier_that_refuses_everything_fails_exactly_the_must_accept_cases() {
    requires_tool!("openssl");
    let report = check_with_tsa("false {image}");
    assert_eq!(failed(&report), must_accept_ids().into_iter().collect());
}

/// Without openssl the weak-key case cannot be made: it is reported as not run, with the
/// reason (in the report and on stdout) — not as passed, and the rest of the corpus runs.
#[test]
fn without_openssl_the_weak_key_case_is_not_run_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth_test_support::run_with_timeout(
        Command::new(berth_test_support::berth_bin())
            .args(["conformance", "verify", "--verifier", "true {image}"])
            .args(["--openssl", "/nonexistent/openssl", "--json"])
            .arg(dir.path().join("report.json")),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Report =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let weak = report
        .checks
        .iter()
        .find(|c| c.info.id == "verifier.weak-rsa-key")
        .unwrap();
    assert_eq!(weak.outcome.status, Status::Skip);
    assert!(
        weak.outcome
            .reason
            .contains("/nonexistent/openssl was not found")
            && weak.outcome.reason.contains("1024-bit RSA key"),
        "{}",
        weak.outcome.reason
    );
    assert!(
        stdout.contains(
            "skip verifier.weak-rsa-key [MUST] not run: /nonexistent/openssl was not found"
        ),
        "{stdout}"
    );
    assert_eq!(report.with_status(Status::Skip).count(), 1);
    let mut refused: BTreeSet<String> = must_refuse_ids().into_iter().collect();
    refused.remove("verifier.weak-rsa-key");
    refused.remove("verifier.timestamp-after-expiry"); // no TSA given
    assert_eq!(failed(&report), refused);
}

/// A wrong --vectors directory is said at once, before the corpus is built: with a registry
/// nothing listens on, building the corpus would fail on its first push instead.
#[test]
fn a_wrong_vectors_directory_is_refused_before_the_corpus_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth_test_support::run_with_timeout(
        Command::new(berth_test_support::berth_bin())
            .args([
                "conformance",
                "verify",
                "--verifier",
                "true {image}",
                "--vectors",
            ])
            .arg(dir.path())
            .arg("--json")
            .arg(dir.path().join("report.json")),
        Duration::from_secs(120),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("holds no notation test vectors") && err.contains("hint: give the directory"),
        "{err}"
    );
    assert!(!dir.path().join("report.json").exists());
}

#[test]
fn a_verifier_that_hangs_is_killed_and_fails() {
    let started = std::time::Instant::now();
    let report = run(
        "sh -c 'sleep 613; true' {image}",
        Duration::from_millis(200),
    )
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(120));
    // The shell's child went with it: no live `sleep 613` is left.
    let left: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            (cmdline == b"sleep\x00613\x00" && state != 'Z').then_some(dir)
        })
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(report.with_status(Status::Pass).count(), 0);
    let c = &report.checks[0];
    assert!(
        c.evidence
            .as_ref()
            .unwrap()
            .observed
            .contains("did not finish within 200ms: killed"),
        "{:?}",
        c.evidence
    );
}

#[test]
fn a_verifier_that_cannot_start_stops_the_run() {
    let err = run("/nonexistent/verifier {image}", Duration::from_secs(10)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("could not run the implementation \"/nonexistent/verifier {image}\"")
            && msg.contains("could not start \"/nonexistent/verifier\""),
        "{msg}"
    );
}

/// The timestamp cases with a real RFC 3161 TSA (openssl's, test-support's `TestTsa`): berth
/// accepts the expired certificate timestamped inside its validity and refuses the one
/// timestamped after; a verifier that accepts everything fails the second, one that refuses
/// everything the first.
#[test]
fn timestamp_cases_with_a_real_tsa() {
    requires_tool!("openssl");
    let tsa = berth_test_support::TestTsa::start();
    let tsa = || Some(tsa_of(&tsa));
    let ids = [
        "verifier.timestamped-expired-leaf",
        "verifier.timestamp-after-expiry",
    ];
    let report = run_with(&berth_verify(), Duration::from_secs(60), tsa()).unwrap();
    let ran: BTreeSet<_> = report.checks.iter().map(|c| c.info.id.as_str()).collect();
    assert!(ids.iter().all(|id| ran.contains(id)), "{ran:?}");
    assert_eq!(failed(&report), BTreeSet::new());
    let report = run_with("true {image}", Duration::from_secs(60), tsa()).unwrap();
    assert!(failed(&report).contains(ids[1]) && !failed(&report).contains(ids[0]));
    let report = run_with("false {image}", Duration::from_secs(60), tsa()).unwrap();
    assert!(failed(&report).contains(ids[0]) && !failed(&report).contains(ids[1]));
}

/// `berth conformance sign --signer COMMAND --json FILE`: the JSON report, whether it exited
/// 0, and its output.
fn sign_command(command: &str, dir: &Path) -> (Report, bool, String) {
    let json = dir.join("sign.json");
    let out = berth_test_support::run_with_timeout(
        Command::new(berth_test_support::berth_bin())
            .args(["conformance", "sign", "--signer", command, "--json"])
            .arg(&json)
            .arg("--html")
            .arg(dir.join("sign.html")),
        Duration::from_secs(300),
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap())
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{text}"));
    (report, out.status.success(), text)
}

#[test]
fn berth_conformance_sign_judges_berths_signer_and_a_signer_that_signs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let berth = berth_test_support::berth_bin();
    let command = berth_conformance::signing::registry::berth_command(&berth, "cose");
    let (report, ok, out) = sign_command(&command, dir.path());
    assert!(ok, "{out}");
    assert_eq!(report.subject, Subject::Signer);
    assert_eq!(report.verdict(), "conforms");
    // One check per rule of the signer rules, and the image check; each with evidence.
    assert!(report.checks.len() > 20, "{}", report.checks.len());
    assert!(report.checks.iter().all(|c| {
        c.evidence.is_some()
            && c.info
                .spec_url
                .starts_with("https://github.com/notaryproject/specifications/")
    }));
    assert!(dir.path().join("sign.html").is_file());
    // A signer that signs nothing: exactly the one rule it breaks.
    let (report, ok, out) = sign_command("true {image}", dir.path());
    assert!(!ok, "{out}");
    assert_eq!(failed(&report), set(&["signer.signs-each-image"]));
    assert_eq!(report.verdict(), "does not conform: 1 MUST violation");
    assert!(out.contains("fail signer.signs-each-image [MUST]"), "{out}");
}

#[test]
fn berth_conformance_sign_finds_notation_conformant() {
    requires_tool!("notation");
    let dir = tempfile::tempdir().unwrap();
    let (report, ok, out) = sign_command(
        berth_conformance::signing::registry::NOTATION_COMMAND,
        dir.path(),
    );
    assert!(ok, "{out}");
    assert_eq!(failed(&report), BTreeSet::new());
}
