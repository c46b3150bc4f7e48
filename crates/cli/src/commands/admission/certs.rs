//! `berth admission certs --out DIR`: a CA and the webhook's TLS serving certificate, as the
//! Kubernetes API server checks it when it calls the webhook through its Service: issued by
//! the CA of the webhook configurations' `caBundle`, valid for `NAME.NS.svc` (the name the
//! API server verifies), `NAME.NS.svc.cluster.local`, `NAME`, `NAME.NS` and any `--dns`
//! names and IP addresses (127.0.0.1 for a webhook run outside the cluster). ECDSA P-256,
//! made by berth-trust's certgen.
//!
//! Files in DIR: `ca.crt`, `ca.key` (0600; keep it, or move it offline), `tls.crt` (the
//! serving certificate, then the CA), `tls.key` (0600), `ca-bundle.b64` (the `caBundle`
//! value: base64 of ca.crt). When DIR already holds `ca.crt` and `ca.key`, that CA issues the
//! new serving certificate, so running the command again rotates the certificate and the
//! webhook configurations stay valid; `--new-ca` replaces the CA too. tls.key is written
//! before tls.crt, each atomically, and the webhook reloads them when they change.
//!
//! With `--manifests OUT`, the manifests of `deploy/kubernetes/` are written to OUT with the
//! caBundle and the TLS Secret filled in, and the Service's name and namespace replaced by
//! `--service`/`--namespace`: `kubectl apply -k OUT` deploys the webhook.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_trust::Certificate;
use berth_trust::Timestamp;
use berth_trust::certgen::{self, CertParams, SubjectAltName};
use berth_trust::keys::{KeySpec, SigningKey, chain_pem};
use clap::Args;

/// The Service name the manifests of deploy/kubernetes use.
const DEFAULT_SERVICE: &str = "berth-admission";
/// The namespace the manifests of deploy/kubernetes use.
const DEFAULT_NAMESPACE: &str = "berth-system";

/// deploy/kubernetes, as it was when this binary was built: (file name, text).
const MANIFESTS: &[(&str, &str)] = &[
    (
        "kustomization.yaml",
        include_str!("../../../../../deploy/kubernetes/kustomization.yaml"),
    ),
    (
        "namespace.yaml",
        include_str!("../../../../../deploy/kubernetes/namespace.yaml"),
    ),
    (
        "rbac.yaml",
        include_str!("../../../../../deploy/kubernetes/rbac.yaml"),
    ),
    (
        "configmap.yaml",
        include_str!("../../../../../deploy/kubernetes/configmap.yaml"),
    ),
    (
        "secret.yaml",
        include_str!("../../../../../deploy/kubernetes/secret.yaml"),
    ),
    (
        "deployment.yaml",
        include_str!("../../../../../deploy/kubernetes/deployment.yaml"),
    ),
    (
        "webhooks.yaml",
        include_str!("../../../../../deploy/kubernetes/webhooks.yaml"),
    ),
];

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, ca.key, tls.crt, tls.key and ca-bundle.b64 (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The webhook's Service name.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_SERVICE)]
    service: String,
    /// The webhook's namespace.
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// Validity of the serving certificate, in days.
    #[arg(long, value_name = "N", default_value_t = 365)]
    days: u32,
    /// Validity of a new CA, in days.
    #[arg(long, value_name = "N", default_value_t = 3650)]
    ca_days: u32,
    /// Another DNS name or IP address for the serving certificate (repeatable).
    #[arg(long = "dns", value_name = "NAME|IP")]
    extra: Vec<String>,
    /// Make a new CA even when DIR holds one (the webhook configurations' caBundle changes).
    #[arg(long)]
    new_ca: bool,
    /// Write deploy/kubernetes's manifests here, with the caBundle and TLS Secret filled in.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// In the manifests' webhook configurations, call the webhook at this base URL
    /// (`clientConfig.url`, e.g. a webhook run outside the cluster) instead of through its
    /// Service; its host is added to the certificate's names.
    #[arg(long, value_name = "https://HOST[:PORT]", requires = "manifests")]
    url: Option<String>,
    /// In the manifests' kustomization.yaml, run this image (what
    /// scripts/build-admission-image pushed; a digest, `REPO@sha256:…`, pins it).
    #[arg(
        long,
        value_name = "IMAGE",
        requires = "manifests",
        value_parser = crate::commands::image::parse_reference
    )]
    image: Option<berth_oci::Reference>,
}

pub fn run(a: CertsArgs) -> anyhow::Result<()> {
    for (what, v) in [("--service", &a.service), ("--namespace", &a.namespace)] {
        if !is_dns_label(v) {
            anyhow::bail!(
                "{what} {v:?} is not a valid Kubernetes name (lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit)"
            );
        }
    }
    if a.days == 0 || a.ca_days == 0 {
        anyhow::bail!("--days and --ca-days must be at least 1");
    }
    if !a.out.exists() {
        // private keys go in here: a directory only its owner can enter
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&a.out)
            .with_context(|| format!("failed to create {}", a.out.display()))?;
    }
    let url_host = a.url.as_deref().map(url_host).transpose()?;
    let (ca, ca_key, reused) = load_or_make_ca(&a)?;
    let extra: Vec<String> = a.extra.iter().cloned().chain(url_host).collect();
    let names = serving_names(&a.service, &a.namespace, &extra);
    let key = SigningKey::generate(KeySpec::EcP256)?;
    let primary = format!("{}.{}.svc", a.service, a.namespace);
    let leaf = certgen::server_leaf(
        &CertParams {
            subject: berth_trust::cert::DistinguishedName(vec![("CN".to_string(), primary)]),
            ..CertParams::test("unused", a.days)
        },
        &key,
        &ca,
        &ca_key,
        &names,
    )
    .with_context(|| {
        format!(
            "failed to make the serving certificate for {}",
            list(&names)
        )
    })?;
    if leaf.not_after > ca.not_after {
        anyhow::bail!(
            "the serving certificate would outlive its CA (CA valid until {}): pass --new-ca, or fewer --days",
            ca.not_after
        );
    }
    let ca_pem = chain_pem(std::slice::from_ref(&ca));
    let bundle = STANDARD.encode(ca_pem.as_bytes());
    let out = &a.out;
    if !reused {
        write(&out.join("ca.key"), ca_key.to_pkcs8_pem().as_bytes(), 0o600)?;
        write(&out.join("ca.crt"), ca_pem.as_bytes(), 0o644)?;
    }
    // the key first: a webhook that reloads on the certificate's change finds the new key
    write(&out.join("tls.key"), key.to_pkcs8_pem().as_bytes(), 0o600)?;
    let chain = chain_pem(&[leaf.clone(), ca.clone()]);
    write(&out.join("tls.crt"), chain.as_bytes(), 0o644)?;
    write(
        &out.join("ca-bundle.b64"),
        format!("{bundle}\n").as_bytes(),
        0o644,
    )?;
    if let Some(dir) = &a.manifests {
        write_manifests(
            dir,
            (&a.service, &a.namespace),
            a.url.as_deref(),
            a.image.as_ref(),
            &bundle,
            &chain,
            &key,
        )?;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{} CA {} (valid until {})",
        if reused { "reused" } else { "made" },
        ca.subject,
        ca.not_after
    );
    let _ = writeln!(
        err,
        "made serving certificate for {} (valid until {}) in {}",
        list(&names),
        leaf.not_after,
        out.display()
    );
    if let Some(dir) = &a.manifests {
        let _ = writeln!(
            err,
            "wrote the manifests to {}: kubectl apply -k {}",
            dir.display(),
            dir.display()
        );
    }
    drop(err);
    // the caBundle value on stdout, for scripts
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{bundle}").context("failed to write to standard output")?;
    Ok(())
}

/// The names the API server and in-cluster clients may use for the Service, then the extra
/// ones, without repeats.
fn serving_names(service: &str, namespace: &str, extra: &[String]) -> Vec<SubjectAltName> {
    let mut names: Vec<SubjectAltName> = Vec::new();
    let standard = [
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        service.to_string(),
        format!("{service}.{namespace}"),
    ];
    for n in standard.iter().chain(extra) {
        let san = SubjectAltName::parse(n.trim());
        if !names.contains(&san) {
            names.push(san);
        }
    }
    names
}

fn list(names: &[SubjectAltName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An RFC 1123 label, as Kubernetes names Services and namespaces.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The CA of DIR (ca.crt + ca.key) unless `--new-ca`, else a new one: (CA, its key, reused).
fn load_or_make_ca(a: &CertsArgs) -> anyhow::Result<(Certificate, SigningKey, bool)> {
    let (crt, key) = (a.out.join("ca.crt"), a.out.join("ca.key"));
    if !a.new_ca && crt.exists() && key.exists() {
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("failed to read {}", p.display()));
        let ca = Certificate::parse_many(&read(&crt)?)
            .with_context(|| format!("failed to parse the CA certificate {}", crt.display()))?
            .into_iter()
            .next()
            .with_context(|| format!("{} holds no certificate", crt.display()))?;
        let ca_key = SigningKey::from_pem_or_der(&read(&key)?)
            .with_context(|| format!("failed to read the CA key {}", key.display()))?;
        if !ca_key.matches(&ca) || !ca.is_ca() {
            anyhow::bail!(
                "{} is not the key of the CA certificate {} (pass --new-ca to replace both)",
                key.display(),
                crt.display()
            );
        }
        if !ca.valid_at(Timestamp::now()) {
            anyhow::bail!(
                "the CA certificate {} expired on {} (pass --new-ca to replace it, and apply the new caBundle)",
                crt.display(),
                ca.not_after
            );
        }
        return Ok((ca, ca_key, true));
    }
    if crt.exists() != key.exists() && !a.new_ca {
        anyhow::bail!(
            "{} holds only one of ca.crt and ca.key (pass --new-ca to make a new CA)",
            a.out.display()
        );
    }
    let ca_key = SigningKey::generate(KeySpec::EcP256)?;
    let mut params = CertParams::test(&format!("{} webhook CA", a.service), a.ca_days);
    params.subject = berth_trust::cert::DistinguishedName(vec![
        ("O".to_string(), "berth".to_string()),
        (
            "CN".to_string(),
            format!("{}.{} webhook CA", a.service, a.namespace),
        ),
    ]);
    let ca = certgen::ca(&params, &ca_key).context("failed to make the CA certificate")?;
    Ok((ca, ca_key, false))
}

/// Write `data` to `path` atomically with `mode` (set before the data is written).
fn write(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = berth_fsutil::AtomicFile::create(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    if let Some(file) = f.file() {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to set the mode of {}", f.temp_path().display()))?;
    }
    f.write_all(data)
        .with_context(|| format!("failed to write {}", f.temp_path().display()))?;
    f.commit()
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// deploy/kubernetes's manifests into `dir`: the Service name and namespace replaced, the
/// webhook configurations' `caBundle: ""` and the Secret's `tls.crt: ""`/`tls.key: ""`
/// filled in. The templates are berth's own, so each placeholder is counted: a template
/// that lost one is a bug, not a silently incomplete deployment.
fn write_manifests(
    dir: &Path,
    (service, namespace): (&str, &str),
    url: Option<&str>,
    image: Option<&berth_oci::Reference>,
    bundle: &str,
    chain: &str,
    key: &SigningKey,
) -> anyhow::Result<()> {
    let fill = |text: &str, placeholder: &str, value: &str, want: usize, file: &str| {
        let found = text.matches(placeholder).count();
        if found != want {
            anyhow::bail!(
                "the built-in {file} has {found} `{placeholder}` where {want} were expected (a bug in berth)"
            );
        }
        Ok(text.replace(placeholder, value))
    };
    for (name, template) in MANIFESTS {
        let mut text = replace_names(
            template,
            &[(DEFAULT_NAMESPACE, namespace), (DEFAULT_SERVICE, service)],
        );
        let mut mode = 0o644;
        match *name {
            "webhooks.yaml" => {
                text = fill(
                    &text,
                    "caBundle: \"\"",
                    &format!("caBundle: {bundle}"),
                    2,
                    name,
                )?;
                if let Some(base) = url {
                    for path in ["/mutate", "/validate"] {
                        let block = format!(
                            "      service:\n        name: {service}\n        namespace: {namespace}\n        path: {path}\n        port: 443\n"
                        );
                        let by_url =
                            format!("      url: \"{}{path}\"\n", base.trim_end_matches('/'));
                        text = fill(&text, &block, &by_url, 1, name)?;
                    }
                }
            }
            "kustomization.yaml" => {
                if let Some(image) = image {
                    text = fill(&text, DEFAULT_IMAGE_ENTRY, &image_entry(image), 1, name)?;
                }
            }
            "secret.yaml" => {
                let crt = STANDARD.encode(chain.as_bytes());
                let k = STANDARD.encode(key.to_pkcs8_pem().as_bytes());
                text = fill(&text, "tls.crt: \"\"", &format!("tls.crt: {crt}"), 1, name)?;
                text = fill(&text, "tls.key: \"\"", &format!("tls.key: {k}"), 1, name)?;
                mode = 0o600;
            }
            _ => {}
        }
        write(&dir.join(name), text.as_bytes(), mode)?;
    }
    Ok(())
}

/// What kustomization.yaml's `images:` entry says without `--image` (after its `name:`).
const DEFAULT_IMAGE_ENTRY: &str = "    newName: ghcr.io/berth-dev/berth\n    newTag: \"0.1.0\"\n";

/// The `images:` entry's lines for `image`: its name, and its digest or else its tag.
fn image_entry(image: &berth_oci::Reference) -> String {
    let pin = match (image.digest(), image.tag()) {
        (Some(d), _) => format!("    digest: {d}\n"),
        (None, Some(t)) => format!("    newTag: \"{t}\"\n"),
        (None, None) => String::new(),
    };
    format!("    newName: {}\n{pin}", image.name())
}

/// The host of a webhook base URL `https://HOST[:PORT]` (no path: the manifests add
/// `/mutate` and `/validate`), as a certificate name.
fn url_host(url: &str) -> anyhow::Result<String> {
    let bad = || {
        anyhow::anyhow!(
            "--url {url:?} is not https://HOST[:PORT] (the API server calls webhooks over https only; the paths are added)"
        )
    };
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(bad());
    }
    // [v6]:port, host:port, host
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']').map(|(h, _)| h).ok_or_else(bad)?
    } else {
        rest.split_once(':').map_or(rest, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(host.to_string())
}

/// `text` with each `from` replaced by its `to` in one pass, so that a replacement is never
/// replaced again (a namespace named like the Service, say).
fn replace_names(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = pairs
            .iter()
            .filter_map(|(from, to)| rest.find(from).map(|at| (at, *from, *to)))
            .min_by_key(|(at, from, _)| (*at, std::cmp::Reverse(from.len())));
        match next {
            Some((at, from, to)) => {
                out.push_str(&rest[..at]);
                out.push_str(to);
                rest = &rest[at + from.len()..];
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_every_form_of_the_service_name_once() {
        let n = serving_names(
            "hook",
            "sys",
            &["127.0.0.1".to_string(), "hook".to_string()],
        );
        assert_eq!(
            list(&n),
            "DNS:hook.sys.svc, DNS:hook.sys.svc.cluster.local, DNS:hook, DNS:hook.sys, IP:127.0.0.1"
        );
        assert!(is_dns_label("berth-system"));
        for bad in ["", "Berth", "a.b", "-a", "a-", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn webhook_urls_name_their_host() {
        for (url, host) in [
            ("https://127.0.0.1:8443", "127.0.0.1"),
            ("https://hook.example/", "hook.example"),
            ("https://[::1]:9443", "::1"),
        ] {
            assert_eq!(url_host(url).unwrap(), host, "{url}");
        }
        for bad in [
            "http://127.0.0.1",
            "https://",
            "https://h/validate",
            "https://u@h",
            "h:1",
        ] {
            assert!(url_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_image_entry_pins_a_digest_else_names_the_tag() {
        let r = |s: &str| berth_oci::Reference::parse(s).unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            image_entry(&r(&format!("reg.example:5000/ops/berth-admission@{d}"))),
            format!("    newName: reg.example:5000/ops/berth-admission\n    digest: {d}\n")
        );
        assert_eq!(
            image_entry(&r("reg.example/berth-admission:0.2.0")),
            "    newName: reg.example/berth-admission\n    newTag: \"0.2.0\"\n"
        );
    }

    #[test]
    fn names_are_replaced_once() {
        assert_eq!(
            replace_names(
                "berth-admission.berth-system berth-admission-tls",
                &[
                    ("berth-system", "berth-admission"),
                    ("berth-admission", "x")
                ]
            ),
            "x.berth-admission x-tls"
        );
    }

    #[test]
    fn every_template_has_its_placeholders() {
        for (name, text) in MANIFESTS {
            assert!(
                text.contains(DEFAULT_NAMESPACE) || *name == "kustomization.yaml",
                "{name}"
            );
        }
        let kustomization = MANIFESTS.iter().find(|(n, _)| *n == "kustomization.yaml");
        assert_eq!(
            kustomization.map(|(_, t)| t.matches(DEFAULT_IMAGE_ENTRY).count()),
            Some(1)
        );
        let webhooks = MANIFESTS.iter().find(|(n, _)| *n == "webhooks.yaml");
        assert_eq!(
            webhooks.map(|(_, t)| t.matches("caBundle: \"\"").count()),
            Some(2)
        );
    }
}
